#!/usr/bin/env python3
"""Durable writes, old build against new build in the same run (bench/README.md "Durable writes A/B"):

    python3 bench/durable.py [OLD_BUILD_DIR] NEW_BUILD_DIR [MORE_BUILD_DIRS...]

With one build directory (as `make bench` runs it without BENCH_OLD) it measures that build alone.

For each round (ROUNDS, default 3) and each build in turn, it starts `coffer server` on a fresh data directory,
seeds 100 secrets and a machine identity with universal auth (no use limit), then runs wrk with BENCH_CONNECTIONS
(default 64) connections for BENCH_SECONDS (default 3): universal-auth logins (bench/login.lua; each stores an
access token, acknowledged after its commit), then writes of one secret (the PATCH of bench/stores.py). The builds
alternate within each round so that the load of the machine falls on them alike; the table gives medians over the
rounds and every figure as a ratio of the first build's. Tokens and the client secret travel in environment
variables only. Python's standard library only.
"""

import os
import re
import secrets
import shutil
import statistics
import sys
import tempfile

from benchlib import Server, wrk, write_results
import stores

SECONDS = int(os.environ.get("BENCH_SECONDS", "3"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "64").split()[-1])
FIGURES = ("login_rps", "login_p99_ms", "write_rps", "write_p99_ms", "commits_per_sync", "write_kb")


def written_bytes(pid):
    """Bytes the process has had written to storage so far (/proc/PID/io write_bytes: counted as pages are
    dirtied, so a page written twice before it reaches the disk counts once)."""
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    return 0


def one_run(coffer, work, name, lua):
    """The four figures of one server started from coffer, and the number of failed requests."""
    token = "bench-" + secrets.token_hex(24)
    server = Server(coffer, work, name, token)
    try:
        pid = stores.seed(server)
        iid = server.call("POST", "/api/v1/identities", {"name": "bench-durable"})["identity"]["id"]
        ua = server.call("POST", "/api/v1/auth/universal-auth/identities/" + iid,
                         {"accessTokenTTL": 86400, "accessTokenMaxTTL": 86400})["identityUniversalAuth"]
        secret = server.call("POST", "/api/v1/auth/universal-auth/identities/%s/client-secrets" % iid,
                             {})["clientSecret"]
        login = wrk("http://127.0.0.1:%d/api/v1/auth/universal-auth/login" % server.port, "login.lua",
                    CONNECTIONS, SECONDS, {"BENCH_CLIENT_ID": ua["clientId"], "BENCH_CLIENT_SECRET": secret})
        env = {"BENCH_TOKEN": token, "BENCH_PROJECT": pid, "BENCH_NODE": "0", "BENCH_THREADS": "2",
               "BENCH_RANGES": "2"}
        before = written_bytes(server.proc.pid)
        write = wrk("http://127.0.0.1:%d/" % server.port, lua, CONNECTIONS, SECONDS, env)
        write_kb = (written_bytes(server.proc.pid) - before) / 1024 / max(1, write[0] * SECONDS)
    finally:
        server.stop()
    return ((login[0], login[1], write[0], write[1], commits_per_sync(work, name), write_kb),
            login[2] + write[2])


def commits_per_sync(work, name):
    """Deferred commits per sync of the log over the whole run, from the line the server logs when it stops
    (docs/server.md "Group commit across requests"); 0 for a build that syncs every commit itself."""
    with open(os.path.join(work, name + ".log"), errors="replace") as f:
        found = re.search(r"(\d+) deferred commits in (\d+) syncs", f.read())
    return int(found.group(1)) / max(1, int(found.group(2))) if found else 0.0


def main():
    builds = [os.path.abspath(b) for b in sys.argv[1:]]
    if not builds:
        sys.exit("usage: python3 bench/durable.py [OLD_BUILD_DIR] NEW_BUILD_DIR [MORE_BUILD_DIRS...]")
    for b in builds:
        if not os.access(os.path.join(b, "coffer"), os.X_OK):
            sys.exit("bench: %s/coffer is missing: build first" % b)
    runs = {b: {f: [] for f in FIGURES} for b in builds}
    errors = 0
    work = tempfile.mkdtemp(prefix="coffer-bench-durable-")
    try:
        lua = os.path.join(work, "write.lua")
        with open(lua, "w") as f:
            f.write(stores.WRITE_LUA)
        for r in range(ROUNDS):
            for i, b in enumerate(builds):
                figures, failed = one_run(os.path.join(b, "coffer"), work, "r%d-b%d" % (r, i), lua)
                errors += failed
                for name, value in zip(FIGURES, figures):
                    runs[b][name].append(value)
                print("round %d, %s: login %.0f/s p99 %.1f ms, write one %.0f/s p99 %.1f ms, %.1f commits/sync, "
                      "%.1f KB stored per write" % ((r, b) + figures), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    medians = {b: {f: statistics.median(v) for f, v in runs[b].items()} for b in builds}
    first = medians[builds[0]]
    lines = ["Durable writes, %d connections, %d s per run, medians of %d rounds; ratios against %s" % (
        CONNECTIONS, SECONDS, ROUNDS, builds[0]), "",
        "%-40s %14s %12s %14s %12s %8s %14s" % ("build", "logins/s", "login p99", "writes/s", "write p99",
                                                 "per sync", "KB per write")]
    for b in builds:
        m = medians[b]
        lines.append("%-40s %7.0f %5.2fx %6.1f ms %4.2fx %7.0f %5.2fx %6.1f ms %4.2fx %8.1f %7.1f %5.2fx" % (
            b[-40:], m["login_rps"], m["login_rps"] / first["login_rps"], m["login_p99_ms"],
            m["login_p99_ms"] / first["login_p99_ms"], m["write_rps"], m["write_rps"] / first["write_rps"],
            m["write_p99_ms"], m["write_p99_ms"] / first["write_p99_ms"], m["commits_per_sync"],
            m["write_kb"], m["write_kb"] / first["write_kb"] if first["write_kb"] else 0.0))
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    write_results("durable", text, medians)
    if errors:
        sys.exit("bench: %d requests failed; the figures above are not valid" % errors)


if __name__ == "__main__":
    main()
