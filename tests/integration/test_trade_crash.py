"""Trading bots while the server is killed with SIGKILL at five random
moments and restarted on the same port and store: afterwards the audit is
consistent, every kind adds up to the starter items, and every trade a bot
saw committed is in the store.

TW_CRASH_SEED picks the kill moments (default: random, printed)."""

import os
import random
import signal
import time
import unittest

from harness import Match, check_store, committed_trade_ids

BOTS = 64
SECONDS = 36
KILLS = 5
# Bots notice a dead server within 2.5 s (their --reconnect peer timeout)
# and come back after a short backoff; leave them time to trade between.
MIN_GAP_S = 4.0
FIRST_S, LAST_S = 3.0, 28.0


def kill_moments(rng):
    while True:
        moments = sorted(rng.uniform(FIRST_S, LAST_S) for _ in range(KILLS))
        gaps = [b - a for a, b in zip(moments, moments[1:])]
        if min(gaps) >= MIN_GAP_S:
            return moments


class TradeCrash(unittest.TestCase):
    def test_sigkill_during_trades_loses_nothing(self):
        seed = int(os.environ.get("TW_CRASH_SEED", random.randrange(1 << 30)))
        moments = kill_moments(random.Random(seed))
        print(f"\nseed {seed}: kills at "
              + ", ".join(f"{t:.1f}" for t in moments) + " s")
        with Match(name="trade-crash") as m:
            start = time.monotonic()
            client = m.client(BOTS, SECONDS, "--trade-rate", "60",
                              "--reconnect", "--trade-duplicate", "10",
                              timeout=SECONDS + 30)
            for at in moments:
                time.sleep(max(0.0, start + at - time.monotonic()))
                m.proc.send_signal(signal.SIGKILL)
                m.proc.wait(timeout=5)
                m.start()
            rc, report, out = client.wait()
            rc, _ = m.stop(timeout=15)
            self.assertEqual(rc, 0)

            trades = report["trades"]
            self.assertEqual(report["logged_in"], BOTS)
            # Every bot was back in play at the end and left on its own.
            self.assertEqual(report["timeline"][-1]["connected"], BOTS, out)
            self.assertEqual(report["timeouts"], 0, out)
            self.assertGreaterEqual(report["reconnects"], BOTS * KILLS)
            self.assertEqual(trades["answer_mismatches"], 0)
            self.assertGreater(trades["done"], 100, trades)

            audit = check_store(self, m, BOTS)
            stored = committed_trade_ids(m.store_path())
            seen = set(trades["done_ids"])
            self.assertEqual(seen - stored, set(), "done but not stored")
            print(f"{len(seen)} trades seen done, {len(stored)} stored, "
                  f"{report['reconnects']} reconnects, "
                  f"{trades['unresolved']} cut off while committing, "
                  f"{audit['pending_notices']} notices pending")


if __name__ == "__main__":
    unittest.main(verbosity=2)
