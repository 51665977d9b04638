"""Trade rules with scripted players (tw-trade-probe): contention and
acting for someone else, and a confirm followed at once by a disconnect on
a link with 100 ms of delay each way (through tickwire-relay)."""

import json
import os
import re
import subprocess
import unittest

from harness import BIN, Match, check_store, committed_trade_ids, store_query

PROBE = os.path.join(os.path.dirname(BIN), "tests", "tw-trade-probe")
RELAY = os.path.join(BIN, "tickwire-relay")


def probe(match, scenario, server=None, *extra):
    p = subprocess.run(
        [PROBE, "--server", server or match.address(), "--key", match.key,
         "--scenario", scenario, *extra],
        capture_output=True, text=True, timeout=90)
    if p.returncode != 0:
        raise AssertionError(f"tw-trade-probe {scenario} exited "
                             f"{p.returncode}:\n{p.stderr}")
    return json.loads(p.stdout)


class Relay:
    """tickwire-relay in front of the match with a delay-only profile."""

    def __init__(self, match, delay_ms):
        self.profile = os.path.join(match.dir, "delay.json")
        with open(self.profile, "w") as f:
            json.dump({"name": "delay", "source": "test: fixed delay",
                       "delay_ms": delay_ms}, f)
        self.proc = subprocess.Popen(
            [RELAY, "--listen", "127.0.0.1:0", "--upstream", match.address(),
             "--profile", self.profile, "--duration", "80"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        rx = re.compile(r"listening on (\S+:\d+),")
        for line in self.proc.stderr:
            found = rx.search(line)
            if found:
                self.address = found.group(1)
                return
        raise AssertionError("relay did not report its address")

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=5)


def answer(obs, key):
    return obs[key]["status"], obs[key]["reason"]


class TradeRules(unittest.TestCase):
    def test_one_trade_per_player_and_only_for_oneself(self):
        with Match(name="trade-contend") as m:
            obs = probe(m, "contend")
            # X asks Y and Z in one flush: the second is refused.
            self.assertEqual(answer(obs, "request_y"), ("ok", "none"))
            self.assertEqual(answer(obs, "request_z"),
                             ("rejected", "wrong_state"))
            # Y and Z accept in the same tick: only the named partner may.
            self.assertEqual(answer(obs, "accept_y"), ("ok", "none"))
            self.assertEqual(answer(obs, "accept_z"),
                             ("rejected", "not_in_trade"))
            self.assertEqual(answer(obs, "accept_by_requester"),
                             ("rejected", "not_your_turn"))
            self.assertEqual(answer(obs, "confirm_by_outsider"),
                             ("rejected", "not_in_trade"))
            # A confirm carrying Y's id is dropped as oversized, and X's
            # confirm never counts as Y's.
            self.assertFalse(obs["padded_confirm_answered"])
            self.assertFalse(obs["b_confirmed_after_a"])
            self.assertEqual(obs["state_after_a"], "open")
            self.assertEqual(answer(obs, "trade"), ("committed", "none"))
            # The sword moved once; offering it again is refused.
            self.assertEqual(answer(obs, "offer_sword_again"),
                             ("rejected", "item_not_owned"))
            self.assertFalse(obs["x_holds_sword"])
            self.assertTrue(obs["y_holds_sword"])
            rc, _ = m.stop()
            self.assertEqual(rc, 0)
            self.assertEqual(m.summary_counter("dropped", "oversized"), 1)
            check_store(self, m, 3)
            owner = store_query(m.store_path(),
                                "SELECT owner FROM items WHERE item_id = ?",
                                (obs["sword_id"],))
            self.assertEqual(owner, [(5001,)])
            self.assertEqual(committed_trade_ids(m.store_path()),
                             {obs["trade_id"]})

    def test_confirm_then_disconnect_applies_whole_or_nothing(self):
        cfg = {"server": {"peer_timeout_ms": 2000,
                          "peer_timeout_min_ms": 1000}}
        with Match(cfg, name="trade-leave") as m:
            relay = Relay(m, 100)
            try:
                obs = probe(m, "confirm-leave", relay.address,
                            "--rounds", "6")
            finally:
                relay.close()
            rc, _ = m.stop()
            self.assertEqual(rc, 0)
            check_store(self, m, 2)
            path = m.store_path()
            stored = committed_trade_ids(path)
            outcomes = []
            for r in obs["rounds"]:
                moved = store_query(
                    path, "SELECT giver, item_id, quantity FROM trade_items"
                    " WHERE trade_id = ? ORDER BY giver", (r["trade_id"],))
                seen = r["partner_saw"]["status"]
                if r["trade_id"] in stored:
                    # Whole: both sides moved exactly what they offered.
                    self.assertEqual(seen, "committed", r)
                    self.assertEqual(moved, [
                        (5000, r["x_item"], r["x_quantity"]),
                        (5001, r["y_item"], r["y_quantity"])], r)
                    # X was gone before the result: it comes at login.
                    self.assertEqual(r.get("notice", {}).get("status"),
                                     "committed", r)
                else:
                    # Nothing: no item rows, and the partner was told.
                    self.assertEqual(seen, "failed", r)
                    self.assertEqual(moved, [], r)
                outcomes.append((r["drop"], seen))
            self.assertIn("committed", {s for _, s in outcomes})
            self.assertIn("failed", {s for _, s in outcomes})
            print(f"\n{outcomes}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
