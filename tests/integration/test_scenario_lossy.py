"""The lossy-short lab scenario: 10 s of 15 % bursty loss, 150 ms RTT and
30 ms jitter through tickwire-relay. Every bot logs in once and stays,
and the reliable event stream arrives without gaps, duplicates or
reordering."""

import json
import os
import subprocess
import tempfile
import unittest

from harness import BIN, REPO

SCENARIO = os.path.join(REPO, "sims", "scenario")

# Checks the scenario file must carry; the run fails if any of them fails.
REQUIRED = ["not_logged_in", "server.logins_per_player_max",
            "timeline.connected_at_end", "timeouts", "server.timeouts",
            "disconnects", "events.gaps", "events.duplicates",
            "events.out_of_order"]


class LossyScenario(unittest.TestCase):
    def test_lossy_short_keeps_bots_and_events(self):
        with open(os.path.join(REPO, "sims", "profiles", "lossy.json")) as f:
            profile = json.load(f)
        self.assertEqual(profile["delay_ms"] * 2, 150)
        self.assertEqual(profile["jitter_ms"], 30)
        ge = profile["gilbert_elliott"]
        mean_loss = ge["p_good_to_bad"] / (ge["p_good_to_bad"]
                                           + ge["p_bad_to_good"])
        self.assertAlmostEqual(mean_loss, 0.15, places=3)

        with tempfile.TemporaryDirectory(prefix="tw-lossy-") as out:
            p = subprocess.run(
                ["/usr/bin/python3", SCENARIO, "lossy-short", "--out", out,
                 "--build", os.path.dirname(BIN)],
                capture_output=True, text=True, timeout=90)
            summary = ""
            if os.path.exists(os.path.join(out, "summary.md")):
                with open(os.path.join(out, "summary.md")) as f:
                    summary = f.read()
            self.assertEqual(p.returncode, 0,
                             p.stdout + p.stderr + "\n" + summary)
            with open(os.path.join(out, "metrics.json")) as f:
                result = json.load(f)

        checks = {c["metric"]: c for c in result["checks"]}
        for name in REQUIRED:
            self.assertIn(name, checks)
            self.assertEqual(checks[name]["result"], "pass", checks[name])
        m = result["metrics"]
        bots = result["scenario"]["bots"]
        self.assertEqual(m["logged_in"], bots)
        self.assertEqual(m["server.logins"], bots)
        self.assertEqual(m["events.gaps"], 0)
        # The relay really dropped packets: the link was impaired.
        self.assertGreater(m["relay.down.drop_percent"], 5)
        self.assertGreater(m["relay.up.drop_percent"], 5)
        # Trades join the scenario as a "pending" check until the client
        # reports them; then the check must pass like the others.
        trade = checks.get("trades.completed")
        if trade and trade["result"] != "pending":
            self.assertEqual(trade["result"], "pass", trade)


if __name__ == "__main__":
    unittest.main()
