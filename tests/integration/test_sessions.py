"""Session lifecycle: token replay, idle peers and reconnection."""

import json
import unittest

from harness import (Match, issue_token, probe, start_probe, token_client)

# A second loopback address, so a replayed login comes from another host.
OTHER_ADDRESS = "127.0.0.2"


class TokenReplay(unittest.TestCase):
    def assert_owner_unharmed(self, owner):
        rc, report, out = owner.wait()
        self.assertEqual(rc, 0, out)
        self.assertEqual(report["logged_in"], 1)
        self.assertEqual(report["timeouts"], 0)
        self.assertEqual(report["errors"], 0)
        self.assertEqual(sum(report["disconnects"].values()), 0,
                         report["disconnects"])

    def test_used_token_replayed_from_other_address(self):
        with Match(name="s1") as m:
            token = issue_token(m, 200, "owner")
            owner = token_client(m, token, 3)
            m.log.wait_for(r"joined slot", timeout=10)

            # While the owner plays.
            seen = probe(m, "login", "--token", token, "--bind",
                         OTHER_ADDRESS, "--hold-ms", "0")
            self.assertFalse(seen["logged_in"])
            self.assertEqual(seen["reason"], "token reused")
            self.assert_owner_unharmed(owner)

            # After the owner left: the token stays used until it expires.
            seen = probe(m, "login", "--token", token, "--bind",
                         OTHER_ADDRESS, "--hold-ms", "0")
            self.assertEqual(seen["reason"], "token reused")

            # After the owner came back with a fresh token.
            owner = token_client(m, issue_token(m, 200, "owner"), 3)
            m.log.wait_for(r"joined slot", count=2, timeout=10)
            seen = probe(m, "login", "--token", token, "--bind",
                         OTHER_ADDRESS, "--hold-ms", "0")
            self.assertEqual(seen["reason"], "token reused")
            self.assert_owner_unharmed(owner)

            rc, _ = m.stop()
            self.assertEqual(rc, 0)
            self.assertEqual(m.summary_counter("refused", "token reused"), 3)

    def test_copied_token_used_first_is_replaced(self):
        # A token is a bearer credential: whoever logs in first wins, and
        # the owner recovers with a fresh token for the same player.
        with Match(name="s1first") as m:
            token = issue_token(m, 201, "owner")
            thief, thief_log = start_probe(m, "login", "--token", token,
                                           "--bind", OTHER_ADDRESS,
                                           "--hold-ms", "8000")
            try:
                thief_log.wait_for(r"logged in", timeout=10)
                c = token_client(m, token, 2)
                rc, _, out = c.wait()
                self.assertEqual(rc, 1, out)
                self.assertIn("disconnected by the server: token reused",
                              c.log.text())

                owner = token_client(m, issue_token(m, 201, "owner"), 2)
                self.assert_owner_unharmed(owner)
                out, _ = thief.communicate(timeout=15)
                seen = json.loads(out)
                self.assertTrue(seen["logged_in"])
                self.assertEqual(seen["reason"], "replaced by a newer login")
            finally:
                if thief.poll() is None:
                    thief.kill()
                    thief.wait()
                thief.stdout.close()
                thief.stderr.close()


class IdlePeer(unittest.TestCase):
    LOGIN_TIMEOUT_MS = 500

    def test_idle_peer_dropped_and_slot_reused(self):
        # One ENet slot: the second peer can only get in once the idle
        # peer's slot is free again.
        config = {"server": {"max_connections": 1},
                  "match": {"max_players": 1},
                  "security": {"login_timeout_ms": self.LOGIN_TIMEOUT_MS,
                               "max_connections": 1}}
        with Match(config, name="idle") as m:
            seen = probe(m, "idle", "--player", "300")
            self.assertTrue(seen["connected"])
            self.assertEqual(seen["reason"], "login timeout")
            self.assertGreaterEqual(seen["elapsed_ms"],
                                    self.LOGIN_TIMEOUT_MS)
            # One tick (33 ms) of lateness, plus scheduling on a busy host.
            self.assertLess(seen["elapsed_ms"], self.LOGIN_TIMEOUT_MS + 1000)
            self.assertTrue(seen["next_logged_in"])
            rc, _ = m.stop()
            self.assertEqual(rc, 0)
            self.assertEqual(m.summary_counter("refused", "login timeout"), 1)


class Reconnection(unittest.TestCase):
    def test_second_login_replaces_first_peer(self):
        with Match(name="replace") as m:
            seen = probe(m, "replace", "--player", "400", "--bind",
                         OTHER_ADDRESS)
            self.assertEqual(seen["first_reason"],
                             "replaced by a newer login")
            self.assertTrue(seen["second_logged_in"])
            self.assertEqual(seen["second_reason"], "connected")
            self.assertEqual(seen["second_slot"], seen["first_slot"])
            self.assertTrue(seen["second_snapshots"])
            # Alone in the match, the player sees exactly itself; a stale
            # copy would spawn at the same place and show up as a second.
            self.assertEqual(seen["first_max_entities"], 1)
            self.assertEqual(seen["second_max_entities"], 1)
            rc, _ = m.stop()
            self.assertEqual(rc, 0)
            self.assertEqual(m.log.count(r"joined slot"), 2)
            self.assertEqual(m.log.count(r"replacing peer"), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
