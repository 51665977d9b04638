"""Loopback test harness: starts tickwire-server and clients in a temp dir.

Everything binds to 127.0.0.1. Every wait has a deadline, and the server is
killed when a test leaves the `Match` context, whatever happened.
"""

import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.environ.get("TW_BIN", os.path.join(os.getcwd(), "bin"))
TESTS_BIN = os.path.join(os.path.dirname(BIN), "tests")
VALGRIND = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite", "--track-origins=yes"]
REPO = os.environ.get("TW_REPO", os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))


def temp_dir(prefix):
    """Makes a temp directory that is removed when the test process exits,
    unless TW_KEEP_TMP=1 keeps it for a post-mortem."""
    path = tempfile.mkdtemp(prefix=prefix)
    if os.environ.get("TW_KEEP_TMP") != "1":
        atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def free_udp_port():
    """Returns a UDP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_tcp_port():
    """Returns a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def deep_merge(base, extra):
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = value
    return base


class LineWatcher:
    """Collects a stream's lines on a thread; tests wait for patterns."""

    def __init__(self, stream, echo_prefix=None):
        self.lines = []
        self.cond = threading.Condition()
        self.closed = False
        self.echo_prefix = echo_prefix
        self.thread = threading.Thread(target=self._pump, args=(stream,),
                                       daemon=True)
        self.thread.start()

    def _pump(self, stream):
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def count(self, pattern):
        rx = re.compile(pattern)
        with self.cond:
            return sum(1 for line in self.lines if rx.search(line))

    def wait_for(self, pattern, count=1, timeout=10.0):
        """Blocks until `count` lines match; raises on timeout or EOF."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = sum(1 for line in self.lines if rx.search(line))
                if found >= count:
                    return
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    tail = "\n".join(self.lines[-20:])
                    raise AssertionError(
                        f"waited for {count} x /{pattern}/, saw {found}; "
                        f"last lines:\n{tail}")
                self.cond.wait(left)

    def text(self):
        with self.cond:
            return "\n".join(self.lines)


class Match:
    """A running tickwire-server on a free loopback port."""

    def __init__(self, config=None, name="match", valgrind=False, env=None):
        self.dir = temp_dir(f"tw-{name}-")
        self.port = free_udp_port()
        self.key = os.path.join(self.dir, "match.key")
        run([os.path.join(BIN, "tickwire-token"), "keygen", "--out", self.key])
        with open(os.path.join(REPO, "configs", "match.json")) as f:
            cfg = json.load(f)
        deep_merge(cfg, {
            "server": {"host": "127.0.0.1", "port": self.port},
            "security": {"key_file": self.key},
            "store": {"path": os.path.join(self.dir, "store.db")},
            "log": {"path": ""},
            "http": {"port": 0},
        })
        deep_merge(cfg, config or {})
        self.config = cfg
        self.config_path = os.path.join(self.dir, "match.json")
        with open(self.config_path, "w") as f:
            json.dump(cfg, f, indent=2)
        self.proc = None
        self.log = None
        # TW_VALGRIND=1 puts every server of a test run under valgrind.
        # Valgrind cannot run ASan binaries; there ASan checks instead.
        self.valgrind = (valgrind or os.environ.get("TW_VALGRIND") == "1") \
            and os.environ.get("TW_SANITIZED") != "1"
        self.env = env

    def start(self, extra_args=(), env=None):
        """Starts the server, under valgrind when asked (exit 99 on errors).

        env replaces the environment; without it, self.env is added to ours.
        """
        prefix = VALGRIND if self.valgrind else []
        if env is None and self.env:
            env = dict(os.environ, **self.env)
        self.proc = subprocess.Popen(
            [*prefix, os.path.join(BIN, "tickwire-server"), "--config",
             self.config_path, *extra_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.dir,
            env=env)
        self.log = LineWatcher(self.proc.stderr)
        self.log.wait_for(r"listening on", timeout=30 if self.valgrind else 10)
        return self

    def __enter__(self):
        return self if self.proc else self.start()

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if exc[0] is not None and self.log:
            sys.stderr.write("--- server log ---\n" + self.log.text()[-6000:]
                             + "\n")

    def address(self):
        return f"127.0.0.1:{self.port}"

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Signals the server; returns (exit status, seconds until exit)."""
        start = time.monotonic()
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=timeout)
        elapsed = time.monotonic() - start
        self.log.thread.join(timeout=2)
        return rc, elapsed

    def summary_counter(self, kind, reason):
        """Reads 'summary: KIND REASON: N' from the shutdown log lines."""
        rx = re.compile(rf"summary: {kind} {re.escape(reason)}: (\d+)")
        for line in self.log.text().splitlines():
            m = rx.search(line)
            if m:
                return int(m.group(1))
        return 0

    def audit(self):
        """Runs --audit on the match's store; returns (exit status, report)."""
        p = subprocess.run(
            [os.path.join(BIN, "tickwire-server"), "--config",
             self.config_path, "--audit"],
            capture_output=True, text=True, timeout=60, cwd=self.dir)
        try:
            report = json.loads(p.stdout)
        except ValueError:
            raise AssertionError(f"--audit printed no JSON:\n{p.stdout}\n"
                                 f"{p.stderr}")
        return p.returncode, report

    def store_path(self):
        return self.config["store"]["path"]

    def starter_totals(self, players):
        """Returns {kind: quantity} minted for `players` new players."""
        totals = {}
        for grant in self.config["store"]["starter_items"]:
            totals[grant["kind"]] = (totals.get(grant["kind"], 0)
                                     + grant["quantity"] * players)
        return totals

    def summary(self):
        """Returns the fields of the shutdown summary line as a dict."""
        rx = re.compile(r"summary: up .* tick p50 (\d+)us p99 (\d+)us max "
                        r"(\d+)us overruns (\d+) skipped (\d+) unreliable "
                        r"over mtu (\d+) rss ([\d.]+)MiB")
        for line in self.log.text().splitlines():
            m = rx.search(line)
            if m:
                keys = ("tick_p50_us", "tick_p99_us", "tick_max_us",
                        "overruns", "skipped", "unreliable_over_mtu")
                out = {k: int(v) for k, v in zip(keys, m.groups())}
                out["rss_mib"] = float(m.group(7))
                return out
        raise AssertionError("no summary line in the server log")

    def rss_bytes(self):
        """Returns the server's resident set size from /proc."""
        with open(f"/proc/{self.proc.pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def attack(self, mode, *args, timeout=90):
        """Runs tw-attack against this server; returns its JSON line."""
        p = subprocess.run(
            [os.path.join(TESTS_BIN, "tw-attack"), mode, "--server",
             self.address(), *args], capture_output=True, text=True,
            timeout=timeout)
        if p.returncode != 0:
            raise AssertionError(f"tw-attack {mode} exited {p.returncode}:\n"
                                 f"{p.stderr}{p.stdout}")
        return json.loads(p.stdout)

    def client(self, bots, duration, *extra, report=True, timeout=None):
        """Starts tickwire-client; returns a Client to wait on."""
        return Client(self, bots, duration, extra, report, timeout)


class Client:
    def __init__(self, match, bots, duration, extra, report, timeout):
        self.report_path = os.path.join(
            match.dir, f"report-{time.monotonic_ns()}.json")
        args = [os.path.join(BIN, "tickwire-client"), "--server",
                match.address(), "--key", match.key, "--bots", str(bots),
                "--duration", str(duration), "--quiet", *extra]
        if report:
            args += ["--report", self.report_path]
        self.timeout = timeout or duration + 30
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=match.dir)
        self.log = LineWatcher(self.proc.stderr)

    def wait(self):
        """Waits for the client; returns (exit status, report dict, stdout)."""
        out = self.proc.stdout.read().decode()
        rc = self.proc.wait(timeout=self.timeout)
        self.log.thread.join(timeout=2)
        self.proc.stdout.close()
        self.proc.stderr.close()
        report = None
        if os.path.exists(self.report_path):
            with open(self.report_path) as f:
                report = json.load(f)
        return rc, report, out


def run(args, **kw):
    """Runs a command to completion; raises with its output on failure."""
    p = subprocess.run(args, capture_output=True, text=True, timeout=60, **kw)
    if p.returncode != 0:
        raise AssertionError(f"{args} exited {p.returncode}:\n{p.stderr}")
    return p


def check(condition, message):
    if not condition:
        raise AssertionError(message)


PROBE = os.path.join(os.path.dirname(BIN), "tests", "tw-probe")


def issue_token(match, player, name="player", match_id=None, ttl=600,
                now=None):
    """Mints a token file with tickwire-token; returns its path.

    now (Unix seconds) sets the issue time, to mint expired or
    future-dated tokens.
    """
    path = os.path.join(match.dir, f"token-{time.monotonic_ns()}.json")
    mid = match.config["match"]["match_id"] if match_id is None else match_id
    args = [os.path.join(BIN, "tickwire-token"), "issue", "--key", match.key,
            "--player", str(player), "--name", name, "--match", str(mid),
            "--ttl", str(ttl), "--out", path]
    if now is not None:
        args += ["--now", str(now)]
    run(args)
    return path


def token_client(match, token, duration, report=True):
    """Starts tickwire-client for one bot logging in with a token file."""
    return TokenClient(match, token, duration, report)


class TokenClient(Client):
    def __init__(self, match, token, duration, report):
        self.report_path = os.path.join(
            match.dir, f"report-{time.monotonic_ns()}.json")
        args = [os.path.join(BIN, "tickwire-client"), "--server",
                match.address(), "--token", token, "--duration",
                str(duration), "--quiet"]
        if report:
            args += ["--report", self.report_path]
        self.timeout = duration + 30
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=match.dir)
        self.log = LineWatcher(self.proc.stderr)


def probe(match, scenario, *extra, timeout=30):
    """Runs one tw-probe scenario to completion; returns its JSON output."""
    p = subprocess.run([PROBE, "--server", match.address(), "--key",
                        match.key, "--scenario", scenario, *extra],
                       capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(
            f"tw-probe {scenario} exited {p.returncode}:\n{p.stderr}")
    return json.loads(p.stdout)


def start_probe(match, scenario, *extra):
    """Starts a tw-probe scenario; returns (Popen, LineWatcher on stderr)."""
    proc = subprocess.Popen([PROBE, "--server", match.address(), "--key",
                             match.key, "--scenario", scenario, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc, LineWatcher(proc.stderr)


def store_query(path, sql, args=()):
    """Runs one read query on a store file no server is using."""
    import sqlite3
    db = sqlite3.connect(path, timeout=5)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def committed_trade_ids(path):
    return {row[0] for row in store_query(path, "SELECT trade_id FROM trades")}


def held_totals(path):
    """Returns {kind: quantity held} summed over every item row."""
    return dict(store_query(
        path, "SELECT kind, SUM(quantity) FROM items GROUP BY kind"))


def check_store(test, match, players):
    """Asserts what a studio checks after a match: --audit says consistent
    and every kind adds up to the starter items of `players` players."""
    rc, audit = match.audit()
    test.assertEqual(rc, 0, audit)
    test.assertTrue(audit["consistent"], audit)
    test.assertEqual(audit["players"], players)
    test.assertLessEqual(audit["max_owners_per_item"], 1)
    path = match.store_path()
    test.assertEqual(held_totals(path), match.starter_totals(players))
    return audit
