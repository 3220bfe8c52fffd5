#!/usr/bin/env python3
"""Coffer's store benchmark (issue 7; bench/README.md "Stores and nodes"): list 100 secrets and write one secret,
on SQLite and on PostgreSQL, with one node and with two nodes, in the same run.

    python3 bench/stores.py BUILD_DIR

It starts a throwaway PostgreSQL cluster (scripts/pg.sh, removed at the end), then for each set-up starts the
node(s) with one root key, seeds 100 secrets of about 500 bytes through the API, and runs wrk for
BENCH_SECONDS (default 5) against every node at once, BENCH_CONNECTIONS (default 64) connections spread over the
nodes: `GET /api/v3/secrets/raw` (list) and `PATCH /api/v3/secrets/raw/KEY_nnn` (write: each request a new
version, acknowledged after its commit). Prints one table (also written to bench/results/stores.txt). Tokens
travel in environment variables only.
"""

import base64
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import http.client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "64").split()[-1])
THREADS = int(os.environ.get("BENCH_THREADS", "2"))

# Each wrk thread of each node writes its own range of the 100 keys in turn (a range at least as long as the
# thread's connections), so that concurrent writes go to different secrets, as a team's do: one secret hammered by
# 64 writers at once gets some 409 "changed concurrently; retry" answers by design (docs/api.md). wrk runs LuaJIT
# (Lua 5.1): no integer division operator.
WRITE_LUA = """
local token = os.getenv("BENCH_TOKEN")
local pid = os.getenv("BENCH_PROJECT")
local first = tonumber(os.getenv("BENCH_NODE")) * tonumber(os.getenv("BENCH_THREADS"))
local size = math.floor(100 / tonumber(os.getenv("BENCH_RANGES")))
local threads = 0
setup = function(thread)
    thread:set("range", first + threads)
    threads = threads + 1
end
wrk.method = "PATCH"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
    n = n + 1
    local key = string.format("KEY_%03d", range * size + (n % size) + 1)
    local body = '{"workspaceId":"' .. pid .. '","environment":"dev","secretValue":"written-' .. n .. '"}'
    return wrk.format(nil, "/api/v3/secrets/raw/" .. key, nil, body)
end
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(port, method, path, token, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, body=None if body is None else json.dumps(body),
                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    if resp.status != 200:
        sys.exit("bench: %s %s answered %d: %s" % (method, path.split("?")[0], resp.status, raw[:300]))
    return json.loads(raw)


class Node:
    def __init__(self, coffer, work, name, db, root_key, token):
        self.port = free_port()
        self.data = os.path.join(work, name)
        os.mkdir(self.data, 0o700)
        self.log = open(os.path.join(work, name + ".log"), "wb")
        env = dict(os.environ, COFFER_BOOTSTRAP_TOKEN=token, COFFER_ROOT_KEY=root_key)
        args = [coffer, "server", "--addr", "127.0.0.1:%d" % self.port, "--data-dir", self.data]
        if db:
            args += ["--db", db]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", "/api/status")
                if c.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        sys.exit("bench: a coffer node did not start (see %s.log)" % name)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def seed(port, token):
    pid = call(port, "POST", "/api/v2/workspace", token, {"projectName": "bench-" + secrets.token_hex(4)})
    pid = pid["project"]["id"]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    items = [{"secretKey": "KEY_%03d" % (i + 1), "secretValue": "".join(secrets.choice(alphabet) for _ in range(300)),
              "secretComment": "benchmark secret %03d" % (i + 1)} for i in range(100)]
    call(port, "POST", "/api/v3/secrets/batch/raw", token, {"workspaceId": pid, "environment": "dev",
                                                            "secrets": items})
    return pid


def wrk(nodes, path_or_lua, connections, token, pid, work):
    """wrk against every node at once; returns (total req/s, worst p99 ms, errors)."""
    per_node = max(1, connections // len(nodes))
    procs = []
    for i, node in enumerate(nodes):
        env = dict(os.environ, BENCH_TOKEN=token, BENCH_PROJECT=pid, BENCH_NODE=str(i),
                   BENCH_THREADS=str(THREADS), BENCH_RANGES=str(len(nodes) * THREADS))
        if path_or_lua.endswith(".lua"):
            args = ["-s", path_or_lua, "http://127.0.0.1:%d/" % node.port]
        else:
            args = ["-s", os.path.join(ROOT, "bench", "auth.lua"), "http://127.0.0.1:%d%s" % (node.port, path_or_lua)]
        procs.append(subprocess.Popen(["wrk", "-t%d" % THREADS, "-c%d" % per_node, "-d%ds" % SECONDS, "--latency"]
                                      + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env))
    total, worst, errors = 0.0, 0.0, 0
    for p in procs:
        out = p.communicate()[0].decode()
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if not m:
            sys.exit("bench: wrk failed:\n" + out)
        total += float(m.group(1))
        m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
        if m:
            worst = max(worst, float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)])
        for pattern in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"):
            m = re.search(pattern, out)
            if m:
                errors += sum(int(g) for g in m.groups())
    return total, worst, errors


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: python3 bench/stores.py BUILD_DIR")
    coffer = os.path.join(os.path.abspath(sys.argv[1]), "coffer")
    if not os.access(coffer, os.X_OK):
        sys.exit("bench: %s is missing: build first" % coffer)
    work = tempfile.mkdtemp(prefix="coffer-bench-stores-")
    os.chmod(work, 0o755)
    pg_dir = os.path.join(work, "pg")
    nodes = []
    rows = []
    try:
        base = subprocess.run([os.path.join(ROOT, "scripts", "pg.sh"), "start", pg_dir], check=True,
                              capture_output=True, timeout=120,
                              env=dict(os.environ, PG_DURABLE="1")).stdout.decode().strip()
        lua = os.path.join(work, "write.lua")
        with open(lua, "w") as f:
            f.write(WRITE_LUA)
        token = "bench-" + secrets.token_hex(24)
        for label, backend, count in (("SQLite, 1 node", "sqlite", 1), ("PostgreSQL, 1 node", "postgres", 1),
                                      ("PostgreSQL, 2 nodes", "postgres", 2)):
            root_key = base64.b64encode(os.urandom(32)).decode()
            db = None
            if backend == "postgres":
                name = "bench_%d" % len(rows)
                subprocess.run([os.path.join(ROOT, "scripts", "pg.sh"), "createdb", pg_dir, name], check=True,
                               capture_output=True, timeout=60)
                db = base.replace(":///?", ":///%s?" % name)
            nodes = [Node(coffer, work, "%s-%d-%d" % (backend, count, i), db, root_key, token) for i in range(count)]
            pid = seed(nodes[0].port, token)
            list_path = "/api/v3/secrets/raw?workspaceId=%s&environment=dev&secretPath=/" % pid
            wrk(nodes, list_path, 16, token, pid, work)  # warm-up
            lst = wrk(nodes, list_path, CONNECTIONS, token, pid, work)
            wr = wrk(nodes, lua, CONNECTIONS, token, pid, work)
            rows.append((label, lst, wr))
            for node in nodes:
                node.stop()
            nodes = []
        lines = ["Coffer store benchmark, %s, %d cores, wrk %d threads, %d connections over the nodes, %d s per run"
                 % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.cpu_count() or 0, THREADS, CONNECTIONS,
                    SECONDS),
                 "", "%-22s %14s %10s %14s %10s %10s" % ("set-up", "list 100 /s", "p99", "write one /s", "p99",
                                                         "errors")]
        base_list = rows[0][1][0] or 1
        base_write = rows[0][2][0] or 1
        for label, lst, wr in rows:
            lines.append("%-22s %14s %10s %14s %10s %10d" % (label, "{:,.0f}".format(lst[0]), "%.1f ms" % lst[1],
                                                          "{:,.0f}".format(wr[0]), "%.1f ms" % wr[1], lst[2] + wr[2]))
        lines.append("")
        for label, lst, wr in rows[1:]:
            lines.append("%-22s list %.2fx, write %.2fx of SQLite on one node" % (label, lst[0] / base_list,
                                                                                wr[0] / base_write))
        lines.append("Each write is a new version of one of the 100 secrets, acknowledged after its commit; writers of every node")
        lines.append("take turns (one transaction-scoped advisory lock on PostgreSQL), reads run side by side.")
        lines.append("PostgreSQL runs on this machine (scripts/pg.sh with PG_DURABLE=1: fsync and synchronous_commit on,")
        lines.append("as SQLite's synchronous=FULL), on a unix socket.")
        text = "\n".join(lines) + "\n"
        sys.stdout.write(text)
        os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
        with open(os.path.join(ROOT, "bench", "results", "stores.txt"), "w") as f:
            f.write(text)
        with open(os.path.join(ROOT, "bench", "results", "stores.json"), "w") as f:
            json.dump({label: {"list_rps": lst[0], "list_p99_ms": lst[1], "write_rps": wr[0], "write_p99_ms": wr[1],
                               "errors": lst[2] + wr[2]} for label, lst, wr in rows}, f, indent=1)
        if any(lst[2] or wr[2] for _, lst, wr in rows):
            sys.exit("bench: some requests failed; the figures above are not valid")
    finally:
        for node in nodes:
            node.stop()
        subprocess.run([os.path.join(ROOT, "scripts", "pg.sh"), "stop", pg_dir], capture_output=True, timeout=120)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
