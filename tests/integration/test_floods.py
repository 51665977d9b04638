"""Floods while 32 bots play: the bots see no error and the server's tick
p99 stays under its period."""

import unittest

from harness import Match


class FloodsDuringMatch(unittest.TestCase):
    def check_match(self, m, bots):
        rc, report, out = bots.wait()
        self.assertEqual(rc, 0, out)
        self.assertEqual(report["logged_in"], 32)
        self.assertEqual(report["errors"], 0)
        self.assertEqual(report["timeouts"], 0)
        rc, _ = m.stop()
        self.assertEqual(rc, 0)
        period_us = 1e6 / m.config["match"]["tick_hz"]
        summary = m.summary()
        self.assertLess(summary["tick_p99_us"], period_us, summary)

    def test_connects_that_never_log_in(self):
        with Match(name="connect-flood") as m:
            bots = m.client(32, 10)
            m.log.wait_for(r"joined slot", count=32, timeout=15)
            for _ in range(4):
                r = m.attack("half-open", "--bind", "127.0.0.2", "--count",
                             "2000")
                self.assertEqual(r["sent"], 2000)
            self.check_match(m, bots)
            self.assertGreater(m.summary_counter(
                "refused", "too many connections from this address"), 0)

    def test_oversized_and_fragmented_packets(self):
        with Match(name="fragment-flood") as m:
            bots = m.client(32, 10)
            m.log.wait_for(r"joined slot", count=32, timeout=15)
            r = m.attack("flood", "--peers", "16", "--count", "20000")
            self.assertEqual(r["packets"], 20000)
            self.assertGreater(r["oversized"], 0)
            self.assertGreater(r["lying"], 0)
            self.check_match(m, bots)
            self.assertGreater(m.summary_counter("dropped", "bad_datagram"),
                               0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
