#!/usr/bin/env python3
"""Coffer at scale (bench/README.md "Scale"): does a big store slow the request path?

    python3 bench/scale.py BUILD_DIR

Two servers on fresh data directories, measured in the same run:
- small: one project, one folder of 100 secrets, one machine identity;
- large: one project with 1,000 folders of 100 secrets each (100,000 secrets) and 1,000 machine identities.
Both are seeded through the API (8 clients in parallel). Then wrk (BENCH_SECONDS, default 5; 16 connections)
lists one folder of 100 secrets and logs in with one identity, on each; the large store's figures are shown as a
ratio of the small one's: a request that scanned the whole store would fall far below 1. The large server's
resident memory with 100,000 secrets stored is reported too. Prints one table (also bench/results/scale.txt).
Tokens and client secrets travel in environment variables only.
"""

import concurrent.futures
import os
import secrets
import shutil
import sys
import tempfile
import time

from benchlib import Server, wrk, write_results

SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
FOLDERS = int(os.environ.get("BENCH_SCALE_FOLDERS", "1000"))
IDENTITIES = int(os.environ.get("BENCH_SCALE_IDENTITIES", "1000"))
PER_FOLDER = 100


def seed(server, folders, identities):
    """Returns (project id, the path of a folder in the middle, (client id, client secret) of an identity)."""
    pid = server.call("POST", "/api/v2/workspace", {"projectName": "scale-" + secrets.token_hex(3)})["project"]["id"]
    value = "v" * 100

    def folder(i):
        name = "f%04d" % i
        server.call("POST", "/api/v1/folders", {"workspaceId": pid, "environment": "dev", "name": name})
        server.call("POST", "/api/v3/secrets/batch/raw", {
            "workspaceId": pid, "environment": "dev", "secretPath": "/" + name,
            "secrets": [{"secretKey": "KEY_%03d" % k, "secretValue": value} for k in range(PER_FOLDER)]})

    def identity(i):
        ident = server.call("POST", "/api/v1/identities", {"name": "scale-%05d" % i})["identity"]["id"]
        ua = server.call("POST", "/api/v1/auth/universal-auth/identities/" + ident,
                         {"accessTokenTTL": 86400, "accessTokenMaxTTL": 86400})["identityUniversalAuth"]
        cs = server.call("POST", "/api/v1/auth/universal-auth/identities/%s/client-secrets" % ident, {})
        server.call("POST", "/api/v2/workspace/%s/identity-memberships/%s" % (pid, ident), {"role": "viewer"})
        return ua["clientId"], cs["clientSecret"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(folder, range(folders)))
        creds = list(pool.map(identity, range(identities)))
    return pid, "/f%04d" % (folders // 2), creds[identities // 2]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: python3 bench/scale.py BUILD_DIR")
    coffer = os.path.join(os.path.abspath(sys.argv[1]), "coffer")
    work = tempfile.mkdtemp(prefix="coffer-bench-scale-")
    servers = []
    try:
        token = "bench-" + secrets.token_hex(24)
        results = {}
        for name, folders, identities in (("small", 1, 1), ("large", FOLDERS, IDENTITIES)):
            t0 = time.monotonic()
            s = Server(coffer, work, name, token)
            servers.append(s)
            pid, path, (client_id, client_secret) = seed(s, folders, identities)
            seeded_s = time.monotonic() - t0
            listing = s.call("GET", "/api/v3/secrets/raw?workspaceId=%s&environment=dev&secretPath=%s" % (pid, path))
            assert len(listing["secrets"]) == PER_FOLDER, len(listing["secrets"])
            list_url = "http://127.0.0.1:%d/api/v3/secrets/raw?workspaceId=%s&environment=dev&secretPath=%s" % (
                s.port, pid, path)
            lst = wrk(list_url, "auth.lua", 16, SECONDS, {"BENCH_TOKEN": token})
            login = wrk("http://127.0.0.1:%d/api/v1/auth/universal-auth/login" % s.port, "login.lua", 16, SECONDS,
                        {"BENCH_CLIENT_ID": client_id, "BENCH_CLIENT_SECRET": client_secret})
            time.sleep(1)
            results[name] = (folders * PER_FOLDER, identities, lst, login, s.rss_mb(), seeded_s)
            s.stop()
            servers.remove(s)
        lines = ["Coffer at scale, %s, %d cores, wrk 2 threads, 16 connections, %d s per run" % (
                     time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.cpu_count() or 0, SECONDS), "",
                 "%-7s %9s %10s %13s %9s %11s %9s %9s %9s" % ("store", "secrets", "identities", "list 100 /s",
                                                              "p99", "logins /s", "p99", "RSS MB", "seeded")]
        for name in ("small", "large"):
            n, ids, lst, login, rss, seeded_s = results[name]
            lines.append("%-7s %9s %10s %13s %9s %11s %9s %9.1f %8.0fs" % (
                name, "{:,}".format(n), "{:,}".format(ids), "{:,.0f}".format(lst[0]), "%.1f ms" % lst[1],
                "{:,.0f}".format(login[0]), "%.1f ms" % login[1], rss, seeded_s))
        small, large = results["small"], results["large"]
        lines.append("")
        lines.append("large / small: list one folder %.2fx, login %.2fx (1.00 = no slower with %dx the secrets)" % (
            large[2][0] / small[2][0], large[3][0] / small[3][0], large[0] // small[0]))
        errors = sum(r[2][2] + r[3][2] for r in results.values())
        if errors:
            lines.append("WARNING: %d requests failed; the figures are not valid" % errors)
        text = "\n".join(lines) + "\n"
        sys.stdout.write(text)
        write_results("scale", text, {
            name: {"secrets": r[0], "identities": r[1], "list_rps": r[2][0], "list_p99_ms": r[2][1],
                   "login_rps": r[3][0], "login_p99_ms": r[3][1], "rss_mb": r[4]} for name, r in results.items()})
        if errors:
            sys.exit(1)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
