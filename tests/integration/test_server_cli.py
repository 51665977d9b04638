"""tickwire-server's command line: --check, --help and bad configs."""

import json
import os
import subprocess
import unittest

from harness import BIN, REPO, free_udp_port, run, temp_dir

SERVER = os.path.join(BIN, "tickwire-server")


def server(*args):
    return subprocess.run([SERVER, *args], capture_output=True, text=True,
                          timeout=20)


class ServerCli(unittest.TestCase):
    def setUp(self):
        self.dir = temp_dir("tw-cli-")

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
        # The example names match.key relative to the working directory.
        run([os.path.join(BIN, "tickwire-token"), "keygen", "--out",
             os.path.join(self.dir, "match.key")])
        p = subprocess.run(
            [SERVER, "--config", os.path.join(REPO, "configs", "match.json"),
             "--check"], capture_output=True, text=True, timeout=20,
            cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_check_rejects_what_startup_would(self):
        key = os.path.join(self.dir, "k.key")
        run([os.path.join(BIN, "tickwire-token"), "keygen", "--out", key])
        fifo = os.path.join(self.dir, "fifo")
        os.mkfifo(fifo)
        cases = [
            ({"security": {"key_file": ""}}, "security.key_file"),
            ({"security": {"key_file": os.path.join(self.dir, "no.key")}},
             "security.key_file"),
            ({"server": {"host": "not-an-ip"}}, "server.host"),
            ({"http": {"port": 8080, "host": "999.1.1.1"}}, "http.host"),
            ({"log": {"path": self.dir}}, "log.path"),
            ({"log": {"path": fifo}}, "log.path"),
            ({"log": {"path": os.path.join(self.dir, "no", "x.log")}},
             "log.path"),
            ({"store": {"path": self.dir}}, "store.path"),
        ]
        for extra, key_name in cases:
            cfg = {"security": {"key_file": key}}
            for section, values in extra.items():
                cfg.setdefault(section, {}).update(values)
            path = self.write("env.json", json.dumps(cfg))
            with self.subTest(key=key_name, cfg=extra):
                self.assert_rejected(path, key_name)

    def test_config_that_is_a_fifo_is_rejected(self):
        fifo = os.path.join(self.dir, "config.fifo")
        os.mkfifo(fifo)
        self.assert_rejected(fifo, "not a regular file")

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
        cfg = {"security": {"key_file": ""},
               "server": {"port": free_udp_port()}}
        path = self.write("nokey.json", json.dumps(cfg))
        p = server("--config", path)
        self.assertEqual(p.returncode, 2)
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
