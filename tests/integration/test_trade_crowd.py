"""64 trading bots for 20 s: nothing duplicated or lost, every trade a bot
saw committed is in the store, and repeated requests are not applied
twice."""

import unittest

from harness import Match, check_store, committed_trade_ids

BOTS = 64
SECONDS = 20


class TradeCrowd(unittest.TestCase):
    def test_64_bots_trading_conserve_items(self):
        with Match(name="trade-crowd") as m:
            rc, report, out = m.client(
                BOTS, SECONDS, "--trade-rate", "60", "--trade-duplicate",
                "20", "--trade-retry-ms", "500").wait()
            self.assertEqual(rc, 0, out)
            rc, _ = m.stop(timeout=15)
            self.assertEqual(rc, 0)

            trades = report["trades"]
            self.assertEqual(report["errors"], 0)
            self.assertEqual(trades["answer_mismatches"], 0)
            self.assertGreater(trades["duplicates"], 0)
            self.assertGreaterEqual(trades["repeat_answers"],
                                    trades["duplicates"])
            self.assertGreaterEqual(trades["done"], 200, trades)
            # Both parties of every trade stayed online to see it end.
            self.assertEqual(trades["done_by_bots"], 2 * trades["done"])

            audit = check_store(self, m, BOTS)
            stored = committed_trade_ids(m.store_path())
            seen = set(trades["done_ids"])
            self.assertEqual(len(seen), trades["done"])
            self.assertEqual(seen - stored, set(), "done but not stored")
            self.assertEqual(audit["trades_committed"], len(stored))
            print(f"\n{len(seen)} trades seen done, {len(stored)} stored, "
                  f"refused {trades['refused']}, failed {trades['failed']}, "
                  f"{trades['duplicates']} duplicate requests")


if __name__ == "__main__":
    unittest.main(verbosity=2)
