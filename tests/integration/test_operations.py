"""Operations against a running server: health, metrics, Agones, SIGHUP."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

from harness import Match, free_tcp_port, temp_dir

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agones_test import FakeSdk  # noqa: E402

PROMTOOL = shutil.which("promtool")


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read().decode()


class Operations(unittest.TestCase):
    @unittest.skipIf(PROMTOOL is None, "promtool is not installed")
    def test_health_and_metrics_during_a_match(self):
        port = free_tcp_port()
        with Match({"http": {"port": port}}, name="http") as m:
            bots = m.client(16, 6)
            m.log.wait_for(r"joined slot", count=16, timeout=15)
            # The tick thread publishes once a second; wait for a snapshot
            # that has seen every login.
            deadline = time.monotonic() + 5
            while True:
                status, body = get(f"http://127.0.0.1:{port}/healthz")
                health = json.loads(body)
                if health.get("players_active") == 16:
                    break
                self.assertLess(time.monotonic(), deadline, body)
                time.sleep(0.2)
            self.assertEqual(status, 200)
            self.assertEqual(health["status"], "ok")
            self.assertEqual(health["match_id"], 1)
            self.assertGreater(health["messages_in"], 0)

            status, metrics = get(f"http://127.0.0.1:{port}/metrics")
            self.assertEqual(status, 200)
            self.assertIn("tickwire_players_active 16", metrics)
            self.assertIn("tickwire_tick_duration_seconds_bucket", metrics)
            check = subprocess.run([PROMTOOL, "check", "metrics"],
                                   input=metrics, capture_output=True,
                                   text=True, timeout=30)
            self.assertEqual(check.returncode, 0,
                             check.stdout + check.stderr)
            rc, report, out = bots.wait()
            self.assertEqual(rc, 0, out)

    def test_agones_ready_health_then_shutdown_at_match_end(self):
        sdk = FakeSdk({})
        thread = threading.Thread(target=sdk.serve_forever, daemon=True)
        thread.start()
        try:
            env = dict(os.environ,
                       AGONES_SDK_HTTP_PORT=str(sdk.server_address[1]))
            m = Match({"match": {"duration_s": 3},
                       "agones": {"health_interval_ms": 300}},
                      name="agones")
            with m.start(env=env):
                self.assertEqual(m.proc.wait(timeout=10), 0)
        finally:
            sdk.shutdown()
        paths = [c.path for c in sdk.calls]
        self.assertEqual(paths[0], "/ready", paths)
        self.assertEqual(paths[-1], "/shutdown", paths)
        health = [c.at for c in sdk.calls if c.path == "/health"]
        self.assertGreaterEqual(len(health), 5, paths)
        gaps = [b - a for a, b in zip(health, health[1:])]
        self.assertLess(max(gaps), 1.0, gaps)
        self.assertGreater(min(gaps), 0.1, gaps)
        self.assertEqual(set(paths), {"/ready", "/health", "/shutdown"})

    def test_sighup_reopens_log_without_losing_lines(self):
        logdir = temp_dir("tw-logs-")
        path = os.path.join(logdir, "server.log")
        with Match({"log": {"path": path, "level": "debug"}},
                   name="sighup") as m:
            bots = m.client(8, 4)
            m.log.wait_for(r"joined slot", count=8, timeout=15)
            os.rename(path, path + ".1")
            m.proc.send_signal(signal.SIGHUP)
            bots.wait()
            rc, _ = m.stop()
            self.assertEqual(rc, 0)
        with open(path + ".1") as f:
            rotated = f.read().splitlines()
        with open(path) as f:
            fresh = f.read().splitlines()
        self.assertGreater(len(rotated), 0)
        self.assertGreater(len(fresh), 0)
        # stderr received every line; the two files together hold them all.
        self.assertEqual(rotated + fresh, m.log.text().splitlines())


if __name__ == "__main__":
    unittest.main(verbosity=2)
