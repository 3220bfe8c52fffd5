#!/usr/bin/env python3
"""Dynamic secrets (docs/dynamic-secrets.md): how fast leases are made on PostgreSQL, and how long `coffer run
--lease` takes to start its command.

    python3 bench/leases.py BUILD_DIR

Starts a throwaway PostgreSQL cluster (scripts/pg.sh, port 5433; skipped with a note when PostgreSQL is not
installed or the port is taken), a Coffer server on a fresh data directory, a `postgres` app connection with a
CREATEROLE login and one dynamic secret granting a NOLOGIN role. Then:

- leases per second: BENCH_LEASES (100) `POST /api/v1/dynamic-secrets/leases` one after another on one
  keep-alive connection, then as many from BENCH_LEASE_CLIENTS (4) threads; each lease is a CREATE ROLE, a GRANT
  and a GRANT at the cluster in one session (the connection is opened per lease, as the provider does);
- run start: BENCH_RUN_ROUNDS (10) times `coffer run --lease NAME -- true`, the median time from the start of
  coffer to the command starting (the command writes its start time to a pipe), and the whole run including
  the revocation at exit, against `coffer run -- true` without a lease.

The leases made are revoked by the server at their end or dropped with the cluster. Prints one table (also
bench/results/leases.txt and .json). Tokens and the connection's password travel only in the environment and in
request bodies.
"""

import http.client
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import ROOT, Server, write_results

LEASES = int(os.environ.get("BENCH_LEASES", "100"))
CLIENTS = int(os.environ.get("BENCH_LEASE_CLIENTS", "4"))
RUN_ROUNDS = int(os.environ.get("BENCH_RUN_ROUNDS", "10"))
PG_SCRIPT = os.path.join(ROOT, "scripts", "pg.sh")


def psql(directory, sql):
    bindir = sorted(os.listdir("/usr/lib/postgresql"))[-1]
    subprocess.run([os.path.join("/usr/lib/postgresql", bindir, "bin", "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                    "-d", "postgresql:///postgres?host=%s&port=5433&user=coffer" % directory, "-c", sql],
                   check=True, capture_output=True)


def lease_once(conn, token, body):
    conn.request("POST", "/api/v1/dynamic-secrets/leases", body=json.dumps(body),
                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    r = conn.getresponse()
    raw = r.read()
    if r.status != 201:
        sys.exit("bench: lease answered %d: %s" % (r.status, raw[:300]))


def leases_per_second(server, body, clients):
    per_client = max(1, LEASES // clients)

    def work():
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        for _ in range(per_client):
            lease_once(conn, server.token, body)
        conn.close()

    threads = [threading.Thread(target=work) for _ in range(clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return per_client * clients / (time.monotonic() - start)


def run_start(coffer, env, args):
    """(ms from starting coffer to the command starting, ms of the whole run) of one `coffer run`."""
    read_fd, write_fd = os.pipe()
    start = time.monotonic()
    proc = subprocess.Popen([coffer, "run"] + args + ["--silent", "--", "sh", "-c", "echo >&%d" % write_fd],
                            env=env, pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(write_fd)
    os.read(read_fd, 1)
    started = time.monotonic()
    _, err = proc.communicate(timeout=60)
    done = time.monotonic()
    os.close(read_fd)
    if proc.returncode != 0:
        sys.exit("bench: coffer run failed: %s" % err.decode(errors="replace")[-300:])
    return (started - start) * 1000, (done - start) * 1000


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: python3 bench/leases.py BUILD_DIR")
    coffer = os.path.join(os.path.abspath(sys.argv[1]), "coffer")
    if not os.path.isdir("/usr/lib/postgresql"):
        print("bench leases: skipped, PostgreSQL is not installed")
        return
    work = tempfile.mkdtemp(prefix="coffer-bench-leases-")
    os.chmod(work, 0o755)
    pgdir = os.path.join(work, "pg")
    r = subprocess.run([PG_SCRIPT, "start", pgdir], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        print("bench leases: skipped, scripts/pg.sh start failed: " + r.stderr[-200:])
        return
    server = None
    try:
        password = secrets.token_hex(16)
        with open(os.path.join(pgdir, "data", "pg_hba.conf"), "w") as f:
            f.write("local all coffer trust\nlocal all all scram-sha-256\n")
        psql(pgdir, "SELECT pg_reload_conf()")
        psql(pgdir, "CREATE ROLE bench_dyn LOGIN CREATEROLE PASSWORD '%s'" % password)
        psql(pgdir, "CREATE ROLE bench_read NOLOGIN; GRANT bench_read TO bench_dyn WITH ADMIN OPTION")
        token = secrets.token_hex(24)
        server = Server(coffer, work, "server", token)
        project = server.call("POST", "/api/v2/workspace", {"projectName": "bench-leases"})["project"]
        conn = server.call("POST", "/api/v1/app-connections/postgres", {
            "name": "bench-pg", "method": "username-and-password",
            "credentials": {"host": pgdir, "port": 5433, "database": "postgres", "username": "bench_dyn",
                            "password": password}})["appConnection"]
        place = {"projectSlug": project["slug"], "environmentSlug": "dev", "path": "/"}
        server.call("POST", "/api/v1/dynamic-secrets", dict(place, name="bench", defaultTTL="1h", maxTTL="1h",
                    provider={"type": "postgres", "inputs": {"grantRole": "bench_read",
                                                             "connectionId": conn["id"]}}))
        body = dict(place, dynamicSecretName="bench")
        lease_once(http.client.HTTPConnection("127.0.0.1", server.port, timeout=60), token, body)  # warm-up
        serial = leases_per_second(server, body, 1)
        parallel = leases_per_second(server, body, CLIENTS)

        env = dict(os.environ, COFFER_TOKEN=token, COFFER_API_URL="http://127.0.0.1:%d" % server.port)
        base = ["--projectId", project["slug"], "--env", "dev"]
        plain = [run_start(coffer, env, base) for _ in range(RUN_ROUNDS)]
        leased = [run_start(coffer, env, base + ["--lease", "bench"]) for _ in range(RUN_ROUNDS)]
        figures = {
            "leases_per_s_serial": round(serial, 1),
            "leases_per_s_%d_clients" % CLIENTS: round(parallel, 1),
            "run_start_ms_plain": round(statistics.median(p[0] for p in plain), 1),
            "run_start_ms_lease": round(statistics.median(p[0] for p in leased), 1),
            "run_total_ms_lease": round(statistics.median(p[1] for p in leased), 1),
        }
        text = ("Dynamic secrets (PostgreSQL %s, %d leases, %d runs)\n"
                "  leases created per second, one client        %8.1f\n"
                "  leases created per second, %d clients         %8.1f\n"
                "  coffer run -- true: start of the command     %8.1f ms (median)\n"
                "  coffer run --lease: start of the command     %8.1f ms (median)\n"
                "  coffer run --lease: whole run with revocation %7.1f ms (median)\n"
                % (sorted(os.listdir("/usr/lib/postgresql"))[-1], LEASES, RUN_ROUNDS, serial, CLIENTS, parallel,
                   figures["run_start_ms_plain"], figures["run_start_ms_lease"], figures["run_total_ms_lease"]))
        print(text, end="")
        write_results("leases", text, figures)
    finally:
        if server:
            server.stop()
        subprocess.run([PG_SCRIPT, "stop", pgdir], capture_output=True, timeout=120)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
