"""Sealed traffic: replays, tampering, forgeries, nonces and wire privacy.

tw-probe runs each scenario with the real libtickwire sealing code; the
server runs at debug level so every drop is logged with its reason, and
the shutdown summary gives the exact counts.
"""

import os
import unittest

from harness import Match, issue_token, probe

DEBUG = {"log": {"level": "debug"}}
OTHER_ADDRESS = "127.0.0.2"


def drop_line(reason):
    return rf"dropped \d+ bytes on channel 2: {reason}$"


class SealedReplay(unittest.TestCase):
    def test_captured_input_replayed_everywhere_is_dropped(self):
        with Match(DEBUG, name="replay") as m:
            seen = probe(m, "replay", "--player", "500", "--bind",
                         OTHER_ADDRESS)
            self.assertEqual(seen["a_ack"], 3)
            self.assertTrue(seen["both_stayed"])
            copies = seen["same_peer"]
            # Same peer: the counter is already in its replay window.
            m.log.wait_for(drop_line("replayed"), count=copies, timeout=5)
            # Another logged-in peer: its window has never seen the counter,
            # so the tag is checked, and it fails under that peer's own key.
            m.log.wait_for(drop_line("bad_seal"), count=seen["other_peer"],
                           timeout=5)
            # A peer that never logged in may send nothing but a login.
            m.log.wait_for(drop_line("wrong_state"),
                           count=seen["unauthenticated"], timeout=5)
            rc, _ = m.stop()
            self.assertEqual(rc, 0)
            self.assertEqual(m.summary_counter("dropped", "replayed"), copies)
            self.assertEqual(m.summary_counter("dropped", "bad_seal"),
                             seen["other_peer"])
            self.assertEqual(m.summary_counter("dropped", "wrong_state"),
                             seen["unauthenticated"])


class Tampering(unittest.TestCase):
    HOLD_MS = 1500

    def test_flipped_byte_in_flight_is_bad_seal(self):
        with Match(DEBUG, name="tamper") as m:
            seen = probe(m, "tamper", "--player", "600", "--hold-ms",
                         str(self.HOLD_MS))
            self.assertEqual(seen["tampered"], 1)
            m.log.wait_for(drop_line("bad_seal"), timeout=5)
            # The session lives on: snapshots keep coming (30 Hz, allow
            # half for a loaded host) and later inputs are applied.
            self.assertTrue(seen["stayed"], seen["reason"])
            self.assertGreater(seen["snapshots_after"],
                               self.HOLD_MS * 30 // 1000 // 2)
            self.assertGreater(seen["ack_after"], seen["tampered_seq"])
            self.assertEqual(seen["open_failures"], 0)
            rc, _ = m.stop()
            self.assertEqual(rc, 0)
            self.assertEqual(m.summary_counter("dropped", "bad_seal"), 1)
            self.assertEqual(m.summary_counter("dropped", "replayed"), 0)


class Forgery(unittest.TestCase):
    def test_forged_inputs_never_dispatched(self):
        with Match(DEBUG, name="forged") as m:
            seen = probe(m, "forged", "--player", "700")
            # A flipped tag bit, a wrong key at the genuine packet's counter
            # and a wrong key 1000 counters ahead: none moves the player.
            self.assertTrue(seen["still_while_forged"])
            # The genuine packet is still accepted afterwards, so no
            # forgery moved the replay window.
            self.assertTrue(seen["genuine_applied"])
            self.assertTrue(seen["moved_after_genuine"])
            self.assertTrue(seen["stayed"], seen["reason"])
            m.log.wait_for(drop_line("bad_seal"), count=seen["forged_sent"],
                           timeout=5)
            rc, _ = m.stop()
            self.assertEqual(rc, 0)
            self.assertEqual(m.summary_counter("dropped", "bad_seal"),
                             seen["forged_sent"])
            self.assertEqual(m.summary_counter("dropped", "replayed"), 0)


class Nonces(unittest.TestCase):
    def test_no_nonce_repeats_across_reconnects(self):
        with Match(name="nonces") as m:
            seen = probe(m, "nonces", "--player", "800", "--hold-ms", "800")
            self.assertEqual(seen["duplicates"], 0)
            # Three sessions (first, reconnect, replacement), two keys each.
            self.assertEqual(seen["keys"], 6)
            self.assertEqual(seen["replaced_reason"],
                             "replaced by a newer login")
            self.assertEqual(seen["open_failures"], 0)
            c2s, s2c = seen["c2s"], seen["s2c"]
            self.assertGreater(c2s[0], 0, "no reliable client packets")
            self.assertGreater(c2s[2], 0, "no input packets")
            self.assertGreater(s2c[0], 0, "no reliable server packets")
            self.assertGreater(s2c[1], 0, "no snapshots")


class NoncesAcrossRestart(unittest.TestCase):
    def test_token_reused_after_restart_repeats_no_nonce(self):
        # The server remembers used tokens in memory only, so it refuses
        # tokens created before it started. Creation times have one-second
        # resolution: a token minted in the second the server restarted
        # still logs in, and then its nonces must not repeat.
        m = Match(name="restart")
        try:
            m.start()
            token = issue_token(m, 850)
            record = os.path.join(m.dir, "nonces.txt")
            first = probe(m, "login", "--token", token, "--record", record,
                          "--hold-ms", "500")
            self.assertTrue(first["logged_in"])
            self.assertEqual(m.stop()[0], 0)

            m.start()
            again = probe(m, "login", "--token", token, "--record", record,
                          "--hold-ms", "500")
            if again["logged_in"]:
                with open(record) as f:
                    uses = f.read().split("\n")
                uses = [u for u in uses if u]
                self.assertGreater(len(uses), 20)
                repeats = len(uses) - len(set(uses))
                self.assertEqual(repeats, 0, "nonces repeated under a key")
            else:
                self.assertEqual(again["reason"],
                                 "token issued before the server started")
            self.assertEqual(m.stop()[0], 0)
        finally:
            m.__exit__(None, None, None)


class WirePrivacy(unittest.TestCase):
    NAME = "Zebulon-Quixote-7"

    def test_name_and_positions_never_in_clear(self):
        with Match(name="privacy") as m:
            seen = probe(m, "privacy", "--player", "900", "--name",
                         self.NAME, "--hold-ms", "1500")
            self.assertTrue(seen["logged_in"])
            self.assertGreater(seen["datagrams"], 50)
            self.assertGreater(seen["positions"], 10, "the bot did not move")
            leaks = seen["leaks"]
            self.assertEqual(leaks["name"], 0)
            self.assertEqual(leaks["float_pair"], 0)
            self.assertEqual(leaks["u16_pair"], 0)
            self.assertEqual(leaks["entity_bits"], 0)
            # The same search finds the patterns in the decrypted payloads,
            # so it is able to see a leak.
            control = seen["control"]
            self.assertGreater(control["float_pair"], 0)
            self.assertEqual(control["entity_bits"], seen["positions"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
