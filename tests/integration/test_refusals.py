"""Login refusals: each reason reaches the client and is printed in words.

Every case logs in with `tickwire-client --token FILE` (or tw-probe where
the client cannot misbehave), checks the reason on the client's stderr,
then stops the server and checks the matching refusal counter.
"""

import json
import time
import unittest

from harness import Match, issue_token, probe, token_client

SKEW_S = 30


class Refusals(unittest.TestCase):
    def run_refused(self, m, token, reason):
        c = token_client(m, token, 5)
        rc, report, out = c.wait()
        stderr = c.log.text()
        self.assertEqual(rc, 1, out)
        self.assertIn(f"disconnected by the server: {reason}", stderr)
        self.assertEqual(report["logged_in"], 0)
        return stderr

    def stop_and_count(self, m, reason):
        rc, _ = m.stop()
        self.assertEqual(rc, 0)
        return m.summary_counter("refused", reason)

    def test_corrupted_seal_is_bad_token(self):
        with Match(name="badtoken") as m:
            path = issue_token(m, 100)
            with open(path) as f:
                token = json.load(f)
            sealed = token["sealed"]
            flipped = "B" if sealed[10] != "B" else "C"
            token["sealed"] = sealed[:10] + flipped + sealed[11:]
            bad = path + ".bad"
            with open(bad, "w") as f:
                json.dump(token, f)
            self.run_refused(m, bad, "bad token")
            self.assertEqual(self.stop_and_count(m, "bad token"), 1)

    def test_expired_token_is_refused(self):
        with Match(name="expired") as m:
            now = int(time.time())
            token = issue_token(m, 101, ttl=60, now=now - 120)
            self.run_refused(m, token, "token expired")
            self.assertEqual(self.stop_and_count(m, "token expired"), 1)

    def test_other_match_is_wrong_match(self):
        with Match(name="wrongmatch") as m:
            token = issue_token(m, 102, match_id=2)
            self.run_refused(m, token, "wrong match")
            self.assertEqual(self.stop_and_count(m, "wrong match"), 1)

    def test_second_use_of_token_is_reused(self):
        with Match(name="reused") as m:
            token = issue_token(m, 103)
            owner = token_client(m, token, 3)
            m.log.wait_for(r"joined slot", timeout=10)
            self.run_refused(m, token, "token reused")

            rc, report, out = owner.wait()
            self.assertEqual(rc, 0, out)
            self.assertEqual(report["logged_in"], 1)
            self.assertEqual(report["timeouts"], 0)
            self.assertEqual(report["disconnects"].get("token reused", 0), 0)
            self.assertEqual(self.stop_and_count(m, "token reused"), 1)

    def test_third_player_of_two_is_server_full(self):
        with Match({"match": {"max_players": 2}}, name="full") as m:
            crowd = m.client(2, 3)
            m.log.wait_for(r"joined slot", count=2, timeout=10)
            token = issue_token(m, 5000)
            self.run_refused(m, token, "server full")
            rc, report, out = crowd.wait()
            self.assertEqual(rc, 0, out)
            self.assertEqual(report["logged_in"], 2)

            # A refusal for lack of room does not use the token up.
            client = token_client(m, token, 3)
            rc, report, out = client.wait()
            self.assertEqual(rc, 0, out + client.log.text())
            self.assertEqual(report["logged_in"], 1)
            self.assertEqual(self.stop_and_count(m, "server full"), 1)

    def test_other_connect_version_is_refused(self):
        with Match(name="version") as m:
            seen = probe(m, "version", "--version", "99")
            self.assertTrue(seen["connected"])
            self.assertEqual(seen["reason"], "version mismatch")
            self.assertEqual(self.stop_and_count(m, "version mismatch"), 1)

    def test_other_login_protocol_is_refused(self):
        with Match(name="loginversion") as m:
            path = issue_token(m, 104)
            with open(path) as f:
                token = json.load(f)
            token["protocol"] = 2
            other = path + ".v2"
            with open(other, "w") as f:
                json.dump(token, f)
            self.run_refused(m, other, "version mismatch")
            self.assertEqual(self.stop_and_count(m, "version mismatch"), 1)

    def test_token_from_future_beyond_skew(self):
        with Match({"security": {"token_skew_s": SKEW_S}},
                   name="skew") as m:
            now = int(time.time())
            ahead = issue_token(m, 105, now=now + SKEW_S + 30)
            self.run_refused(
                m, ahead, r"token issued in the future (clock skew)")
            self.assertEqual(self.stop_and_count(
                m, "token issued in the future (clock skew)"), 1)

    def test_token_from_future_within_skew(self):
        with Match({"security": {"token_skew_s": SKEW_S}},
                   name="skewok") as m:
            now = int(time.time())
            ahead = issue_token(m, 106, now=now + SKEW_S - 5)
            # Three seconds leave room for a slow (sanitizer) build to log in.
            client = token_client(m, ahead, 3)
            rc, report, out = client.wait()
            self.assertEqual(rc, 0, out + client.log.text())
            self.assertEqual(report["logged_in"], 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
