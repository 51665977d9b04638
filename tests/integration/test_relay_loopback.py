"""tickwire-relay on loopback: the lan profile between two clients and a
UDP echo server, then the stats file, and its rejection of bad input."""

import json
import os
import re
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import BIN, REPO

RELAY = os.path.join(BIN, "tickwire-relay")
PROFILES = os.path.join(REPO, "sims", "profiles")
PACKETS_PER_CLIENT = 200
DEADLINE_S = 20.0


def echo_server(sock, peers, stop):
    """Echoes every datagram back to its sender and records the senders."""
    while not stop.is_set():
        ready, _, _ = select.select([sock], [], [], 0.1)
        if not ready:
            continue
        data, addr = sock.recvfrom(65536)
        peers.add(addr)
        sock.sendto(data, addr)


def wait_for_listen_line(proc, deadline):
    """Returns the HOST, PORT the relay reports on its first log lines."""
    pattern = re.compile(r"listening on (\S+):(\d+),")
    lines = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        match = pattern.search(line)
        if match:
            return match.group(1), int(match.group(2))
    raise AssertionError("relay did not report its address: %r" % lines)


class RelayLoopback(unittest.TestCase):
    """One relay run shared by the checks below."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="tw-relay-")
        cls.stats_path = os.path.join(cls.tmp.name, "stats.json")
        deadline = time.monotonic() + DEADLINE_S

        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        server.bind(("127.0.0.1", 0))
        cls.peers, stop = set(), threading.Event()
        thread = threading.Thread(target=echo_server,
                                  args=(server, cls.peers, stop))
        thread.start()
        proc = subprocess.Popen(
            [RELAY, "--listen", "127.0.0.1:0",
             "--upstream", "127.0.0.1:%d" % server.getsockname()[1],
             "--profile", "lan", "--profile-dir", PROFILES, "--seed", "7",
             "--stats", cls.stats_path, "--duration", str(DEADLINE_S)],
            stderr=subprocess.PIPE, text=True)
        cls.received = {0: set(), 1: set()}
        try:
            host, port = wait_for_listen_line(proc, deadline)
            clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                       for _ in range(2)]
            for seq in range(PACKETS_PER_CLIENT):
                for index, client in enumerate(clients):
                    payload = b"%d:%d:" % (index, seq) + b"x" * 100
                    client.sendto(payload, (host, port))
                # Pace the load to stay well within the default socket buffers.
                if seq % 20 == 19:
                    time.sleep(0.005)
            expected = 2 * PACKETS_PER_CLIENT
            while (time.monotonic() < deadline and
                   sum(len(r) for r in cls.received.values()) < expected):
                ready, _, _ = select.select(clients, [], [], 0.2)
                for client in ready:
                    index, seq = client.recv(65536).split(b":")[:2]
                    cls.received[int(index)].add(int(seq))
            proc.send_signal(signal.SIGTERM)
            _, cls.stderr = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            stop.set()
            thread.join()
            server.close()
        cls.returncode = proc.returncode

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_relay_exits_cleanly_on_sigterm(self):
        self.assertEqual(self.returncode, 0, self.stderr)
        self.assertIn("relay: up", self.stderr)
        self.assertIn("relay: down", self.stderr)

    def test_every_echo_comes_back(self):
        for index in (0, 1):
            self.assertEqual(len(self.received[index]), PACKETS_PER_CLIENT)

    def test_server_sees_one_peer_per_client(self):
        self.assertEqual(len(self.peers), 2)

    def test_stats_file_counts_traffic(self):
        with open(self.stats_path) as f:
            stats = json.load(f)
        up = stats["directions"]["up"]
        down = stats["directions"]["down"]
        self.assertEqual(stats["profile"], "lan")
        self.assertEqual(stats["seed"], "7")
        self.assertEqual(stats["stop_reason"], "SIGTERM")
        self.assertEqual(stats["mappings"]["created"], 2)
        self.assertEqual(up["received"], 2 * PACKETS_PER_CLIENT)
        self.assertEqual(up["forwarded"], 2 * PACKETS_PER_CLIENT)
        self.assertEqual(up["bytes_forwarded"], up["bytes_received"])
        self.assertEqual(down["received"], 2 * PACKETS_PER_CLIENT)
        self.assertEqual(down["forwarded"], 2 * PACKETS_PER_CLIENT)
        self.assertEqual(up["dropped_loss"], 0)


class RelayRejectsBadInput(unittest.TestCase):
    def run_relay(self, *args):
        return subprocess.run([RELAY, *args], capture_output=True,
                              text=True, timeout=20)

    def assert_rejected(self, proc, needle):
        self.assertEqual(proc.returncode, 2, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, proc.stderr)
        self.assertIn(needle, lines[0])

    def test_out_of_range_profile_value(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            f.write('{"source": "test", "loss_percent": 120}')
            f.flush()
            proc = self.run_relay("--listen", "127.0.0.1:0", "--upstream",
                                  "127.0.0.1:9", "--profile", f.name)
        self.assert_rejected(proc, "loss_percent")

    def test_missing_upstream(self):
        proc = self.run_relay("--listen", "127.0.0.1:0", "--profile", "lan")
        self.assert_rejected(proc, "missing --upstream")

    def test_hostname_upstream(self):
        proc = self.run_relay("--listen", "127.0.0.1:0", "--upstream",
                              "example.invalid:9", "--profile", "lan",
                              "--profile-dir", PROFILES)
        self.assert_rejected(proc, "invalid --upstream")


if __name__ == "__main__":
    unittest.main(verbosity=2)
