"""A store slowed on purpose (every commit holds its transaction 200 ms)
under a burst of trades: the store falls behind, which /healthz shows as
store lag, but the tick never waits for it, so no tick overruns."""

import json
import re
import threading
import time
import unittest
import urllib.error
import urllib.request

from harness import Match, check_store, free_tcp_port

BOTS = 16
SECONDS = 8


def overruns(log_text):
    found = re.findall(r"summary: .* overruns (\d+)", log_text)
    if not found:
        raise AssertionError("no summary line with overruns")
    return int(found[-1])


class SlowStore(unittest.TestCase):
    def test_slow_commits_do_not_stall_the_tick(self):
        port = free_tcp_port()
        cfg = {"store": {"test_commit_delay_ms": 200},
               "http": {"host": "127.0.0.1", "port": port}}
        with Match(cfg, name="trade-slow") as m:
            lags = []
            stop = threading.Event()

            def poll():
                url = f"http://127.0.0.1:{port}/healthz"
                while not stop.is_set():
                    try:
                        with urllib.request.urlopen(url, timeout=2) as r:
                            lags.append(json.load(r)["store_lag_ms"])
                    except urllib.error.HTTPError as e:
                        # 503 "degraded" (store lag) carries the same body.
                        lags.append(json.load(e)["store_lag_ms"])
                    except OSError:
                        pass
                    stop.wait(0.25)

            poller = threading.Thread(target=poll, daemon=True)
            poller.start()
            rc, report, out = m.client(BOTS, SECONDS, "--trade-rate",
                                       "120").wait()
            stop.set()
            poller.join(timeout=5)
            self.assertEqual(rc, 0, out)
            rc, _ = m.stop(timeout=20)
            self.assertEqual(rc, 0)

            self.assertEqual(overruns(m.log.text()), 0)
            self.assertGreater(report["trades"]["done"], 10)
            self.assertGreaterEqual(max(lags, default=0), 200,
                                    "the store never fell behind")
            check_store(self, m, BOTS)
            print(f"\n{report['trades']['done']} trades, store lag up to "
                  f"{max(lags)} ms, tick overruns 0")


if __name__ == "__main__":
    unittest.main(verbosity=2)
