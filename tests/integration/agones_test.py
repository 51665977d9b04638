#!/usr/bin/python3
"""Checks the Agones SDK calls of agones.c against a fake SDK server.

usage: agones_test.py DRIVER LOG_DIR SCENARIO

The fake server listens on 127.0.0.1 on a port the kernel picks, responds to
POST /ready, /health and /shutdown like the Agones sidecar's REST gateway,
and logs method, path and arrival time of every call to
LOG_DIR/agones_calls_SCENARIO.log. The driver runs with a short health
interval; the checks allow generous timing slack for a loaded machine.
"""

import http.server
import os
import socket
import subprocess
import sys
import threading
import time

SDK_PATHS = ("/ready", "/health", "/shutdown")
DRIVER_TIMEOUT_S = 30


class Call:
    def __init__(self, method, path, at, body, content_type):
        self.method = method
        self.path = path
        self.at = at
        self.body = body
        self.content_type = content_type

    def __repr__(self):
        return f"{self.method} {self.path} @{self.at:.3f}"


class FakeSdk(http.server.ThreadingHTTPServer):
    """Records every request. The first fail_counts[path] requests to a
    path get 503, and a negative count makes every request to it fail."""

    def __init__(self, fail_counts):
        super().__init__(("127.0.0.1", 0), Handler)
        self.calls = []
        self.lock = threading.Lock()
        self.fail_counts = dict(fail_counts)
        self.start = time.monotonic()

    def record(self, call):
        with self.lock:
            self.calls.append(call)
            remaining = self.fail_counts.get(call.path, 0)
            if remaining > 0:
                self.fail_counts[call.path] = remaining - 1
            return remaining != 0


class Handler(http.server.BaseHTTPRequestHandler):
    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, 65536)) if length else b""
        call = Call(self.command, self.path,
                    time.monotonic() - self.server.start, body,
                    self.headers.get("Content-Type"))
        fail = self.server.record(call)
        if self.command != "POST" or self.path not in SDK_PATHS:
            status, reply = 404, b'{"error":"not found"}'
        elif fail:
            status, reply = 503, b'{"error":"injected failure"}'
        else:
            status, reply = 200, b"{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    def log_message(self, format, *args):
        pass


def free_port():
    """Returns a loopback port that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(driver, port, args):
    env = dict(os.environ, AGONES_SDK_HTTP_PORT=str(port))
    begin = time.monotonic()
    proc = subprocess.run([driver] + [str(a) for a in args], env=env,
                          timeout=DRIVER_TIMEOUT_S, capture_output=True,
                          text=True)
    elapsed = time.monotonic() - begin
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise AssertionError(f"driver exited with {proc.returncode}")
    return elapsed


def with_server(driver, log_path, args, fail_counts=None):
    server = FakeSdk(fail_counts or {})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        run(driver, server.server_address[1], args)
    finally:
        server.shutdown()
        server.server_close()
    with open(log_path, "w") as log:
        for c in server.calls:
            log.write(f"{c.method} {c.path} {c.at:.3f}\n")
    print("calls:", server.calls)
    return server.calls


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def check_common(calls):
    for c in calls:
        check(c.method == "POST" and c.path in SDK_PATHS,
              f"unexpected call {c}")
        check(c.body == b"{}", f"{c} sent body {c.body!r}, expected {{}}")
        check(c.content_type == "application/json",
              f"{c} sent Content-Type {c.content_type}")
    check(calls and calls[0].path == "/ready", f"first call is not Ready")
    check(calls[-1].path == "/shutdown", "last call is not Shutdown")


def health_gaps_ok(health, interval, low=0.5, high=2.0):
    for a, b in zip(health, health[1:]):
        gap = b.at - a.at
        check(interval * low <= gap <= interval * high,
              f"health gap {gap:.3f} s outside "
              f"{interval * low:.2f}..{interval * high:.2f}")


def scenario_lifecycle(driver, log_path):
    """Ready, Health every 0.3 s for 1.5 s, Shutdown, nothing else."""
    calls = with_server(driver, log_path, [300, 1500, 200])
    check_common(calls)
    paths = [c.path for c in calls]
    check(paths.count("/ready") == 1, "Ready sent more than once")
    check(paths.count("/shutdown") == 1, "Shutdown sent more than once")
    health = [c for c in calls if c.path == "/health"]
    # 1.5 s at 0.3 s is 4 or 5 pings; allow one more or two fewer.
    check(3 <= len(health) <= 6, f"{len(health)} Health calls, expected ~5")
    first = health[0].at - calls[0].at
    check(0.15 <= first <= 0.6, f"first Health {first:.3f} s after Ready")
    health_gaps_ok(health, 0.3)
    check(calls[-1].at - calls[0].at <= 3.0, "Shutdown came too late")


def scenario_ready_retry(driver, log_path):
    """The first Ready fails with 503; the driver retries after ~0.2 s."""
    calls = with_server(driver, log_path, [300, 1200, 200],
                        fail_counts={"/ready": 1})
    check_common(calls)
    paths = [c.path for c in calls]
    check(paths[:2] == ["/ready", "/ready"], f"no Ready retry: {paths}")
    gap = calls[1].at - calls[0].at
    check(0.1 <= gap <= 0.8, f"Ready retried after {gap:.3f} s, not ~0.2")
    check(paths.count("/ready") == 2, "Ready sent more than twice")
    first_health = paths.index("/health")
    check(first_health == 2, "Health sent before Ready succeeded")


def scenario_stall(driver, log_path):
    """Heartbeats stop at 0.6 s; Health must pause once they are 0.3 s old."""
    calls = with_server(driver, log_path, [200, 2000, 200, 600, 300])
    check_common(calls)
    ready = calls[0].at
    health = [c.at - ready for c in calls if c.path == "/health"]
    check(len(health) >= 1, "no Health before the stall")
    # Last heartbeat at ~0.6 s, stale after 0.9 s; one interval of slack.
    late = [t for t in health if t > 1.3]
    check(not late, f"Health during the stall at {late}")


def scenario_shutdown_gives_up(driver, log_path):
    """Every Shutdown fails: exactly TW_AGONES_SHUTDOWN_ATTEMPTS tries."""
    calls = with_server(driver, log_path, [300, 600, 200],
                        fail_counts={"/shutdown": -1})
    check_common(calls)
    shutdowns = [c for c in calls if c.path == "/shutdown"]
    check(len(shutdowns) == 3, f"{len(shutdowns)} Shutdown tries, not 3")
    check(all(c.path == "/shutdown" for c in calls[-3:]),
          "calls after the first Shutdown")


def scenario_sdk_down(driver, log_path):
    """Nothing listens: the driver still finishes, within a bound."""
    elapsed = run(driver, free_port(), [300, 600, 200])
    with open(log_path, "w") as log:
        log.write(f"no server; driver took {elapsed:.3f} s\n")
    # 3 refused Shutdowns with 0.2 s retries; 1 s timeouts are the worst.
    check(elapsed < 6.0, f"driver took {elapsed:.1f} s with the SDK down")


SCENARIOS = {
    "lifecycle": scenario_lifecycle,
    "ready_retry": scenario_ready_retry,
    "stall": scenario_stall,
    "shutdown_gives_up": scenario_shutdown_gives_up,
    "sdk_down": scenario_sdk_down,
}


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in SCENARIOS:
        sys.exit(f"usage: {sys.argv[0]} DRIVER LOG_DIR "
                 f"{{{','.join(SCENARIOS)}}}")
    driver, log_dir, name = sys.argv[1:]
    log_path = os.path.join(log_dir, f"agones_calls_{name}.log")
    try:
        SCENARIOS[name](driver, log_path)
    except AssertionError as e:
        print(f"FAIL {name}: {e}")
        sys.exit(1)
    print(f"PASS {name}")


if __name__ == "__main__":
    main()
