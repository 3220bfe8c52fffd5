"""What the Python benchmarks of bench/ share: a `coffer server` on a fresh data directory, admin calls to it, and a
wrk run reduced to its figures. Python's standard library only; tokens travel in environment variables only."""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`coffer server` on 127.0.0.1 with data in WORK/NAME (and a log in WORK/NAME.log), admin token TOKEN; extra
    flags in args, extra environment in env. Started and answering /api/status when constructed."""

    def __init__(self, coffer, work, name, token, args=(), env=None):
        self.port = free_port()
        self.token = token
        self.data = os.path.join(work, name)
        os.mkdir(self.data, 0o700)
        self.log = open(os.path.join(work, name + ".log"), "wb")
        self.proc = subprocess.Popen(
            [coffer, "server", "--addr", "127.0.0.1:%d" % self.port, "--data-dir", self.data] + list(args),
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(os.environ, COFFER_BOOTSTRAP_TOKEN=token, **(env or {})))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", "/api/status")
                # /api/status answers a moment before the admin token from COFFER_BOOTSTRAP_TOKEN is stored;
                # the "listening on" line comes after it (src/server/server.c)
                if c.getresponse().status == 200 and self._listening():
                    return
                time.sleep(0.01)
            except OSError:
                time.sleep(0.05)
        sys.exit("bench: the server %s did not start (see %s.log)" % (name, name))

    def _listening(self):
        self.log.flush()
        with open(self.log.name, "rb") as f:
            return b"listening on" in f.read()

    def call(self, method, path, body=None, token=...):
        """One request, the admin token by default; exits naming the request when the answer is not 200."""
        token = self.token if token is ... else token
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        c.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        r = c.getresponse()
        raw = r.read()
        c.close()
        if r.status != 200:
            # an error body never carries a secret value
            sys.exit("bench: %s %s answered %d: %s" % (method, path.split("?")[0], r.status, raw[:300]))
        return json.loads(raw)

    def rss_mb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def wrk_start(url, script, connections, seconds, env, threads=2):
    """A wrk process running SCRIPT (a file of bench/, or a path) against URL."""
    if not os.path.isabs(script):
        script = os.path.join(ROOT, "bench", script)
    return subprocess.Popen(["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds, "--latency", "-s",
                             script, url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=dict(os.environ, **env))


def wrk_result(proc):
    """(requests per second, p99 in ms, failed requests: non-2xx and socket errors) of a finished wrk."""
    out = proc.communicate()[0].decode()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    if not rps or not p99:
        sys.exit("bench: wrk failed:\n" + out)
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(g) for g in m.groups())
    return float(rps.group(1)), float(p99.group(1)) * UNITS_MS[p99.group(2)], errors


def wrk(url, script, connections, seconds, env, threads=2):
    return wrk_result(wrk_start(url, script, connections, seconds, env, threads))


def write_results(name, text, figures):
    """bench/results/NAME.txt (the printed table) and NAME.json (the figures, for bench/summary.py)."""
    results = os.path.join(ROOT, "bench", "results")
    os.makedirs(results, exist_ok=True)
    with open(os.path.join(results, name + ".txt"), "w") as f:
        f.write(text)
    with open(os.path.join(results, name + ".json"), "w") as f:
        json.dump(figures, f, indent=1)
