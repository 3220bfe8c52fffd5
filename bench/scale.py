#!/usr/bin/env python3
"""Coffer at scale (issue 8 point 6; bench/README.md "Scale"): does a big store slow the request path?

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
import http.client
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
FOLDERS = int(os.environ.get("BENCH_SCALE_FOLDERS", "1000"))
IDENTITIES = int(os.environ.get("BENCH_SCALE_IDENTITIES", "1000"))
PER_FOLDER = 100


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, coffer, work, name, token):
        self.port = free_port()
        self.token = token
        data = os.path.join(work, name)
        os.mkdir(data, 0o700)
        self.log = open(os.path.join(work, name + ".log"), "wb")
        self.proc = subprocess.Popen([coffer, "server", "--addr", "127.0.0.1:%d" % self.port, "--data-dir", data],
                                     stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=dict(os.environ, COFFER_BOOTSTRAP_TOKEN=token))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", "/api/status")
                if c.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        sys.exit("bench: a server did not start")

    def call(self, method, path, body=None, token=...):
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
            sys.exit("bench: %s %s -> %d %s" % (method, path.split("?")[0], r.status, raw[:200]))
        return json.loads(raw)

    def rss_mb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


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


def wrk(url, script, env):
    out = subprocess.run(["wrk", "-t2", "-c16", "-d%ds" % SECONDS, "--latency", "-s", script, url],
                         capture_output=True, env=dict(os.environ, **env), timeout=SECONDS + 60).stdout.decode()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not rps:
        sys.exit("bench: wrk failed:\n" + out)
    return (float(rps.group(1)), float(p99.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)] if p99 else 0,
            int(errors.group(1)) if errors else 0)


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
            lst = wrk(list_url, os.path.join(ROOT, "bench", "auth.lua"), {"BENCH_TOKEN": token})
            login = wrk("http://127.0.0.1:%d/api/v1/auth/universal-auth/login" % s.port,
                        os.path.join(ROOT, "bench", "login.lua"),
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
        lines.append("large / small: list one folder %.2fx, login %.2fx (1.00 = no slower with 1,000x the data)" % (
            large[2][0] / small[2][0], large[3][0] / small[3][0]))
        errors = sum(r[2][2] + r[3][2] for r in results.values())
        if errors:
            lines.append("WARNING: %d requests failed; the figures are not valid" % errors)
        text = "\n".join(lines) + "\n"
        sys.stdout.write(text)
        os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
        with open(os.path.join(ROOT, "bench", "results", "scale.txt"), "w") as f:
            f.write(text)
        with open(os.path.join(ROOT, "bench", "results", "scale.json"), "w") as f:
            json.dump({name: {"secrets": r[0], "identities": r[1], "list_rps": r[2][0], "list_p99_ms": r[2][1],
                              "login_rps": r[3][0], "login_p99_ms": r[3][1], "rss_mb": r[4]}
                       for name, r in results.items()}, f, indent=1)
        if errors:
            sys.exit(1)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
