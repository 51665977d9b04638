"""Loopback match: bots log in, receive snapshots and stay in sync."""

import signal
import unittest

from harness import Match, check

# Quantization is 1/16 unit, so a prediction that matches the server is at
# most half a step off on each axis (0.044 units); allow a little more for
# inputs lost and skipped on a busy machine.
PREDICTION_TOLERANCE = 0.1


class LoopbackMatch(unittest.TestCase):
    def test_32_bots_stay_in_sync(self):
        with Match(name="sync") as m:
            rc, report, out = m.client(32, 5).wait()
            self.assertEqual(rc, 0, out)
            self.assertEqual(report["logged_in"], 32)
            self.assertEqual(report["errors"], 0)
            self.assertEqual(report["timeouts"], 0)
            expected = report["expected_snapshots_per_sec"]
            self.assertEqual(expected, m.config["match"]["tick_hz"])
            self.assertGreaterEqual(report["snapshots_per_sec_min"],
                                    0.8 * expected)
            self.assertLessEqual(report["prediction_error"]["p99"],
                                 PREDICTION_TOLERANCE)
            self.assertEqual(report["events"]["gaps"], 0)
            rc, _ = m.stop()
            self.assertEqual(rc, 0)

    def test_sigterm_disconnects_with_shutdown(self):
        with Match(name="shutdown") as m:
            client = m.client(16, 20)
            m.log.wait_for(r"joined slot", count=16, timeout=15)
            rc, elapsed = m.stop(signal.SIGTERM)
            self.assertEqual(rc, 0)
            self.assertLess(elapsed, 1.0)
            _, report, out = client.wait()
            self.assertEqual(report["disconnects"].get("shutdown"), 16, out)
            self.assertEqual(report["timeouts"], 0)

    def test_bots_reconnect_after_server_restart(self):
        with Match(name="restart") as m:
            client = m.client(4, 10, "--reconnect")
            m.log.wait_for(r"joined slot", count=4, timeout=15)
            rc, _ = m.stop(signal.SIGTERM)
            self.assertEqual(rc, 0)
            m.start()
            m.log.wait_for(r"joined slot", count=4, timeout=15)
            rc, report, out = client.wait()
            self.assertEqual(report["reconnects"], 4, out)
            self.assertEqual(report["timeouts"], 0)
            self.assertEqual(report["errors"], 0)

    def test_match_ends_after_its_duration(self):
        with Match({"match": {"duration_s": 3}}, name="duration") as m:
            rc, report, out = m.client(8, 20).wait()
            self.assertEqual(m.proc.wait(timeout=5), 0)
            self.assertEqual(report["disconnects"].get("match ended"), 8, out)
            self.assertEqual(report["errors"], 0)
            m.log.wait_for(r"result: player", count=8, timeout=2)

    def test_empty_match_ends_after_timeout(self):
        with Match({"match": {"empty_timeout_s": 1}}, name="empty") as m:
            self.assertEqual(m.proc.wait(timeout=5), 0)
            m.log.wait_for(r"match empty for 1 s", timeout=2)

    def test_sigint_stops_an_idle_server(self):
        with Match(name="idle") as m:
            rc, elapsed = m.stop(signal.SIGINT)
            self.assertEqual(rc, 0)
            self.assertLess(elapsed, 1.0)
            check("summary" in m.log.text(), "no shutdown summary logged")


if __name__ == "__main__":
    unittest.main(verbosity=2)
