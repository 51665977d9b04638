"""tickwire-server's command line: --check, --help and bad configs."""

import json
import os
import subprocess
import tempfile
import unittest

from harness import BIN, REPO, free_udp_port

SERVER = os.path.join(BIN, "tickwire-server")


def server(*args):
    return subprocess.run([SERVER, *args], capture_output=True, text=True,
                          timeout=20)


class ServerCli(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tw-cli-")

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def assert_rejected(self, path, *needles):
        p = server("--config", path, "--check")
        self.assertEqual(p.returncode, 2, p.stderr)
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertIn(path, lines[0])
        for needle in needles:
            self.assertIn(needle, lines[0])

    def test_check_accepts_example_config(self):
        p = server("--config", os.path.join(REPO, "configs", "match.json"),
                   "--check")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_missing_file(self):
        self.assert_rejected(os.path.join(self.dir, "absent.json"))

    def test_invalid_json_names_line_and_column(self):
        path = self.write("bad.json", '{\n  "match": {\n    "tick_hz": ,\n')
        self.assert_rejected(path, "line 3")

    def test_unknown_key_names_its_path(self):
        path = self.write("unknown.json", '{"match": {"tick_hzz": 30}}')
        self.assert_rejected(path, "match.tick_hzz")

    def test_wrong_type_names_key(self):
        path = self.write("type.json", '{"match": {"tick_hz": "fast"}}')
        self.assert_rejected(path, "match.tick_hz")

    def test_out_of_range_gives_allowed_range(self):
        path = self.write("range.json", '{"match": {"tick_hz": 100000}}')
        self.assert_rejected(path, "match.tick_hz", "1..240")

    def test_missing_key_file_explains_keygen(self):
        cfg = {"security": {"key_file": os.path.join(self.dir, "none.key")},
               "server": {"port": free_udp_port()}}
        path = self.write("nokey.json", json.dumps(cfg))
        p = server("--config", path)
        self.assertEqual(p.returncode, 1)
        self.assertIn("tickwire-token keygen", p.stderr)

    def test_help_exits_zero(self):
        p = server("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("--config", p.stdout)

    def test_unknown_flag_is_usage_error(self):
        p = server("--bogus")
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
