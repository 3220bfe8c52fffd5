#!/usr/bin/env python3
"""Coffer's store benchmark (bench/README.md "Stores and nodes"): list 100 secrets and write one secret,
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
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import ROOT, Server, wrk_result, wrk_start, write_results

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


def seed(node):
    pid = node.call("POST", "/api/v2/workspace", {"projectName": "bench-" + secrets.token_hex(4)})["project"]["id"]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    items = [{"secretKey": "KEY_%03d" % (i + 1), "secretValue": "".join(secrets.choice(alphabet) for _ in range(300)),
              "secretComment": "benchmark secret %03d" % (i + 1)} for i in range(100)]
    node.call("POST", "/api/v3/secrets/batch/raw", {"workspaceId": pid, "environment": "dev", "secrets": items})
    return pid


def wrk(nodes, path_or_lua, connections, token, pid):
    """wrk against every node at once, the connections spread evenly; (total req/s, worst p99 ms, errors)."""
    procs = []
    for i, node in enumerate(nodes):
        env = {"BENCH_TOKEN": token, "BENCH_PROJECT": pid, "BENCH_NODE": str(i), "BENCH_THREADS": str(THREADS),
               "BENCH_RANGES": str(len(nodes) * THREADS)}
        if path_or_lua.endswith(".lua"):
            url, script = "http://127.0.0.1:%d/" % node.port, path_or_lua
        else:
            url, script = "http://127.0.0.1:%d%s" % (node.port, path_or_lua), "auth.lua"
        procs.append(wrk_start(url, script, max(1, connections // len(nodes)), SECONDS, env, THREADS))
    results = [wrk_result(p) for p in procs]
    return sum(r[0] for r in results), max(r[1] for r in results), sum(r[2] for r in results)


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
            nodes = [Server(coffer, work, "%s-%d-%d" % (backend, count, i), token,
                            args=["--db", db] if db else [], env={"COFFER_ROOT_KEY": root_key})
                     for i in range(count)]
            pid = seed(nodes[0])
            list_path = "/api/v3/secrets/raw?workspaceId=%s&environment=dev&secretPath=/" % pid
            wrk(nodes, list_path, 16, token, pid)  # warm-up
            lst = wrk(nodes, list_path, CONNECTIONS, token, pid)
            wr = wrk(nodes, lua, CONNECTIONS, token, pid)
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
        write_results("stores", text, {
            label: {"list_rps": lst[0], "list_p99_ms": lst[1], "write_rps": wr[0], "write_p99_ms": wr[1],
                    "errors": lst[2] + wr[2]} for label, lst, wr in rows})
        if any(lst[2] or wr[2] for _, lst, wr in rows):
            sys.exit("bench: some requests failed; the figures above are not valid")
    finally:
        for node in nodes:
            node.stop()
        subprocess.run([os.path.join(ROOT, "scripts", "pg.sh"), "stop", pg_dir], capture_output=True, timeout=120)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
