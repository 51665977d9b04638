"""Hostile peers during a match: drops are counted, bots are unaffected."""

import json
import os
import subprocess
import unittest

from harness import BIN, Match

HOSTILE = os.path.join(os.path.dirname(BIN), "tests", "tw-hostile")
PYENET_PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "hostile_pyenet.py")


class HostilePeers(unittest.TestCase):
    def test_10000_hostile_packets_during_64_bot_match(self):
        with Match(name="hostile") as m:
            bots = m.client(64, 12)
            m.log.wait_for(r"joined slot", count=64, timeout=20)
            flood = subprocess.run(
                [HOSTILE, "--server", m.address(), "--key", m.key,
                 "--peers", "8", "--packets", "10000", "--rate", "2000"],
                capture_output=True, text=True, timeout=90)
            self.assertEqual(flood.returncode, 0, flood.stderr)
            sent = json.loads(flood.stdout)
            self.assertEqual(sent["packets"], 10000)
            self.assertGreater(sent["logins"], 0)

            pyenet = subprocess.run(
                ["/usr/bin/python3", PYENET_PEER, "127.0.0.1", str(m.port),
                 "1000"], capture_output=True, text=True, timeout=90)
            self.assertEqual(pyenet.returncode, 0, pyenet.stderr)

            rc, report, out = bots.wait()
            self.assertEqual(rc, 0, out)
            self.assertEqual(report["logged_in"], 64)
            self.assertEqual(report["errors"], 0)
            self.assertEqual(report["timeouts"], 0)
            self.assertIsNone(m.proc.poll(), "server died during the flood")

            rc, _ = m.stop()
            self.assertEqual(rc, 0)
            for reason in ("unknown_id", "wrong_state", "bad_seal",
                           "truncated", "wrong_channel"):
                self.assertGreater(m.summary_counter("dropped", reason), 0,
                                   f"no drops counted as {reason}")

    def test_python_enet_client_with_wrong_version_is_refused(self):
        with Match(name="pyversion") as m:
            p = subprocess.run(
                ["/usr/bin/python3", PYENET_PEER, "127.0.0.1", str(m.port),
                 "50", "99"], capture_output=True, text=True, timeout=60)
            rc, _ = m.stop()
            self.assertEqual(rc, 0)
            self.assertGreater(
                m.summary_counter("refused", "version mismatch"), 0, p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
