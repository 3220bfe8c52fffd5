#!/usr/bin/env python3
"""Agents polling (bench/README.md "Agents polling"): what do a thousand `coffer agent`s polling one folder cost
the server, with and without the list's ETag?

    python3 bench/agentpoll.py BUILD_DIR

One server on a fresh data directory, one project with a folder of BENCH_AGENT_SECRETS (50) secrets of 100-byte
values, and BENCH_AGENT_IDENTITIES (10) machine identities (viewer), whose access tokens the simulated agents
share round-robin. BENCH_AGENTS (1000) agents poll `GET /api/v3/secrets/raw` of that folder every INTERVAL
seconds, for each INTERVAL of BENCH_AGENT_INTERVALS ("5 10 30"), the requests spread evenly over the interval,
for BENCH_AGENT_SECONDS (6) per scenario, on 16 keep-alive connections, each agent having polled once before
(it holds the tag of its identity's answer):

- `304`: each agent sends `If-None-Match` with the tag of its last answer, as `coffer agent` does; the folder
  does not change, so every answer after an agent's first is a 304 without a body;
- `200`: the same requests without `If-None-Match`: every answer is the full list (from the list cache).

Both run twice: on a server with its list cache (the default), which answers the full list from memory, and on one
with `--cache-size 0`, which renders the list (decrypting every value) for each full answer. The figure is the
server's CPU time (utime + stime from /proc/PID/stat) over the scenario divided by its wall
time, as a percentage of one core, and the bytes answered per second. Prints one table (also
bench/results/agentpoll.txt and .json). Tokens travel in memory only.
"""

import http.client
import os
import shutil
import sys
import tempfile
import threading
import time

from benchlib import Server, write_results

AGENTS = int(os.environ.get("BENCH_AGENTS", "1000"))
IDENTITIES = int(os.environ.get("BENCH_AGENT_IDENTITIES", "10"))
SECRETS = int(os.environ.get("BENCH_AGENT_SECRETS", "50"))
SECONDS = float(os.environ.get("BENCH_AGENT_SECONDS", "6"))
INTERVALS = [int(x) for x in os.environ.get("BENCH_AGENT_INTERVALS", "5 10 30").split()]
CONNECTIONS = 16


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tags_of(server, path, tokens):
    """The tag each token's first answer carries: what every agent sharing the token has after its first poll."""
    tags = []
    for token in tokens:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.request("GET", path, headers={"Authorization": "Bearer " + token})
        r = conn.getresponse()
        r.read()
        tags.append(r.getheader("ETag"))
        conn.close()
    return tags


def scenario(server, path, tokens, interval, conditional):
    """Runs one scenario; returns (server CPU %, answered bytes per second, 304 share, failures, requests)."""
    total = int(AGENTS * SECONDS / interval)
    step = interval / AGENTS
    tags = tags_of(server, path, tokens)
    etags = [tags[agent % len(tokens)] for agent in range(AGENTS)]
    lock = threading.Lock()
    state = {"next": 0, "bytes": 0, "not_modified": 0, "failed": 0}
    start = time.monotonic() + 0.2

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        while True:
            with lock:
                k = state["next"]
                state["next"] += 1
            if k >= total:
                break
            delay = start + k * step - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            agent = k % AGENTS
            headers = {"Authorization": "Bearer " + tokens[agent % len(tokens)]}
            if conditional and etags[agent]:
                headers["If-None-Match"] = etags[agent]
            try:
                conn.request("GET", path, headers=headers)
                r = conn.getresponse()
                body = r.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                with lock:
                    state["failed"] += 1
                continue
            with lock:
                state["bytes"] += len(body)
                if r.status == 304:
                    state["not_modified"] += 1
                elif r.status != 200:
                    state["failed"] += 1
            etags[agent] = r.getheader("ETag")
        conn.close()

    before = cpu_seconds(server.proc.pid)
    wall = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - wall
    used = cpu_seconds(server.proc.pid) - before
    return 100.0 * used / wall, state["bytes"] / wall, state["not_modified"] / max(total, 1), state["failed"], total


def seed(server):
    """The project, its folder and the identities' tokens on server: (list path, tokens)."""
    pid = server.call("POST", "/api/v2/workspace", {"projectName": "agentpoll"})["project"]["id"]
    server.call("POST", "/api/v3/secrets/batch/raw", {
        "workspaceId": pid, "environment": "dev", "secretPath": "/",
        "secrets": [{"secretKey": "KEY_%03d" % i, "secretValue": os.urandom(50).hex()} for i in range(SECRETS)]})
    tokens = []
    for i in range(IDENTITIES):
        identity = server.call("POST", "/api/v1/identities", {"name": "agent-%d" % i})["identity"]
        ua = server.call("POST", "/api/v1/auth/universal-auth/identities/" + identity["id"],
                         {"accessTokenTTL": 86400, "accessTokenMaxTTL": 86400})["identityUniversalAuth"]
        secret = server.call("POST", "/api/v1/auth/universal-auth/identities/%s/client-secrets" % identity["id"],
                             {"description": "bench"})["clientSecret"]
        server.call("POST", "/api/v2/workspace/%s/identity-memberships/%s" % (pid, identity["id"]),
                    {"role": "viewer"})
        tokens.append(server.call("POST", "/api/v1/auth/universal-auth/login",
                                  {"clientId": ua["clientId"], "clientSecret": secret}, token=None)["accessToken"])
    return "/api/v3/secrets/raw?workspaceId=%s&environment=dev&secretPath=%%2F" % pid, tokens


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: python3 bench/agentpoll.py BUILD_DIR")
    coffer = os.path.join(os.path.abspath(sys.argv[1]), "coffer")
    if not os.access(coffer, os.X_OK):
        sys.exit("bench: '%s' is missing: build first" % coffer)
    work = tempfile.mkdtemp(prefix="coffer-agentpoll-")
    admin = "bench-agentpoll-" + os.urandom(12).hex()
    servers = []
    try:
        rows, figures = [], {}
        for label, args in (("list cache", ()), ("no cache", ("--cache-size", "0"))):
            server = Server(coffer, work, "agentpoll-%d" % len(servers), admin, args=args)
            servers.append(server)
            path, tokens = seed(server)
            for interval in INTERVALS:
                for conditional in (True, False):
                    cpu, rate, share, failed, total = scenario(server, path, tokens, interval, conditional)
                    name = "%s, every %ds, %s" % (label, interval, "If-None-Match" if conditional else "full")
                    rows.append("%-38s %7.0f/s %8.1f%% %12.0f %8.0f%% %6d" % (
                        name, total / SECONDS, cpu, rate, share * 100, failed))
                    figures[name] = {"requests_per_s": total / SECONDS, "server_cpu_pct": cpu,
                                     "bytes_per_s": rate, "not_modified_share": share, "failed": failed}
            server.stop()
        text = ("%d agents polling one folder of %d secrets (%d identities, %d connections, %.0fs per scenario)\n"
                "%-38s %9s %9s %12s %9s %6s\n" % (AGENTS, SECRETS, IDENTITIES, CONNECTIONS, SECONDS, "scenario",
                                                  "requests", "srv CPU", "bytes/s", "304s", "failed")
                + "\n".join(rows) + "\n")
        print(text, end="")
        write_results("agentpoll", text, figures)
        if any(f["failed"] for f in figures.values()):
            sys.exit("bench: some polls failed")
    finally:
        for server in servers:
            if server.proc.poll() is None:
                server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
