#!/usr/bin/env python3
"""Load shape and soak (bench/README.md "Load shape and soak").

    python3 bench/load.py shape BUILD_DIR     # 64 clients mixing reads, writes and logins; 10,000 idle connections
    python3 bench/load.py soak BUILD_DIR      # SOAK_MINUTES (default 3) of the same mix; RSS and fds stay flat
    python3 bench/load.py store BUILD_DIR     # SOAK_MINUTES of reads under --audit-retention SOAK_RETENTION (30s):
                                              # the store's size stays flat once two retentions are behind;
                                              # SOAK_DELAY_MS paces each client (0: as fast as they can)

One `coffer server` on a fresh data directory (limits raised so that 10,000 connections from one address are
allowed: --max-connections 12000 --max-connections-per-ip 12000 --idle-timeout 300), seeded through the API with a
project of 100 secrets and a machine identity. The mix (bench/mix.lua) sends, in turn, a list of the 100 secrets,
an update of one secret (each wrk thread its own keys) and a universal-auth login. Exits 1 when a request failed
or a target is missed: shape: no errors and p99 under 250 ms with 64 clients, and normal requests still answered
(no errors, p99 under 250 ms) while 10,000 idle keep-alive connections are open; soak: no errors, RSS at the end
within 10% (+2 MB) of its value after the first minute, open descriptors within 16 of it; store: no errors, the
store's files (coffer.db and its write-ahead log) at the end within 10% (+1 MB) of their size once two retentions
and 30 s are behind. Tokens travel in environment variables only.
"""

import os
import resource
import secrets
import shutil
import socket
import sqlite3
import sys
import tempfile
import time

from benchlib import Server, wrk as run_wrk, write_results

P99_LIMIT_MS = 250
LIMITS = ["--max-connections", "12000", "--max-connections-per-ip", "12000", "--idle-timeout", "300"]


def seed(s):
    pid = s.call("POST", "/api/v2/workspace", {"projectName": "load-" + secrets.token_hex(3)})["project"]["id"]
    s.call("POST", "/api/v3/secrets/batch/raw", {"workspaceId": pid, "environment": "dev", "secrets": [
        {"secretKey": "KEY_%03d" % (i + 1), "secretValue": secrets.token_hex(150)} for i in range(100)]})
    ident = s.call("POST", "/api/v1/identities", {"name": "load-" + secrets.token_hex(3)})["identity"]["id"]
    ua = s.call("POST", "/api/v1/auth/universal-auth/identities/" + ident,
                {"accessTokenTTL": 86400, "accessTokenMaxTTL": 86400})["identityUniversalAuth"]
    cs = s.call("POST", "/api/v1/auth/universal-auth/identities/%s/client-secrets" % ident, {})
    return pid, ua["clientId"], cs["clientSecret"], ident


def wrk(s, seconds, connections, env, script="mix.lua", path="/"):
    return run_wrk("http://127.0.0.1:%d%s" % (s.port, path), script, connections, seconds, env)


def idle_connections(s, n):
    """n keep-alive connections that each made one request and then stay open, idle."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 512)), hard))
    request = b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n"
    socks = []
    for _ in range(n):
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        sock.sendall(request)
        socks.append(sock)
    answered = 0
    for sock in socks:
        data = sock.recv(4096)
        answered += data.startswith(b"HTTP/1.1 200")
    return socks, answered


def shape(coffer, work, token):
    s = Server(coffer, work, "data", token, args=LIMITS)
    try:
        pid, client_id, client_secret, _ = seed(s)
        env = {"BENCH_TOKEN": token, "BENCH_PROJECT": pid, "BENCH_CLIENT_ID": client_id,
               "BENCH_CLIENT_SECRET": client_secret}
        seconds = int(os.environ.get("BENCH_SECONDS", "5"))
        wrk(s, 1, 16, env)  # warm-up
        mix = wrk(s, seconds, 64, env)
        socks, answered = idle_connections(s, 10000)
        list_path = "/api/v3/secrets/raw?workspaceId=%s&environment=dev&secretPath=/" % pid
        busy = wrk(s, seconds, 16, env, script="auth.lua", path=list_path)
        alive = s.proc.poll() is None
        open_fds = s.fds()
        for sock in socks:
            sock.close()
        lines = ["Coffer load shape, %s, %d cores, wrk 2 threads, %d s per run" % (
                     time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.cpu_count() or 0, seconds), "",
                 "%-52s %10s %10s %7s" % ("scenario", "req/s", "p99", "errors"),
                 "%-52s %10s %10s %7d" % ("64 clients: list 100 / write one / login, in turn",
                                          "{:,.0f}".format(mix[0]), "%.1f ms" % mix[1], mix[2]),
                 "%-52s %10s %10s %7d" % ("list 100, 16 clients, beside 10,000 idle connections",
                                          "{:,.0f}".format(busy[0]), "%.1f ms" % busy[1], busy[2]),
                 "", "idle connections opened and answered: %d of 10,000; server fds with them open: %d; "
                     "server alive: %s" % (answered, open_fds, alive)]
        ok = (mix[2] == 0 and mix[1] <= P99_LIMIT_MS and busy[2] == 0 and busy[1] <= P99_LIMIT_MS and
              answered == 10000 and alive)
        lines.append("targets (no errors, p99 <= %d ms, every idle connection answered): %s" % (
            P99_LIMIT_MS, "met" if ok else "MISSED"))
        figures = {"mix_rps": mix[0], "mix_p99_ms": mix[1], "mix_errors": mix[2], "idle_list_rps": busy[0],
                   "idle_list_p99_ms": busy[1], "idle_list_errors": busy[2], "idle_answered": answered}
        return lines, ok, figures
    finally:
        s.stop()


def soak(coffer, work, token):
    minutes = float(os.environ.get("SOAK_MINUTES", "3"))
    s = Server(coffer, work, "data", token, args=LIMITS)
    try:
        pid, client_id, client_secret, _ = seed(s)
        env = {"BENCH_TOKEN": token, "BENCH_PROJECT": pid, "BENCH_CLIENT_ID": client_id,
               "BENCH_CLIENT_SECRET": client_secret}
        samples, errors, total = [], 0, 0.0
        end = time.monotonic() + minutes * 60
        while time.monotonic() < end:
            rps, p99, e = wrk(s, 10, 32, env)
            errors += e
            total += rps * 10
            samples.append((time.monotonic(), s.rss_mb(), s.fds(), rps, p99))
            print("soak: %5.0f s  RSS %6.1f MB  fds %4d  %7.0f req/s  p99 %6.1f ms  errors %d" % (
                minutes * 60 - (end - samples[-1][0]), samples[-1][1], samples[-1][2], rps, p99, errors), flush=True)
        settled = next((x for x in samples if x[0] - samples[0][0] >= 50), samples[0])
        last = samples[-1]
        rss_ok = last[1] <= settled[1] * 1.10 + 2
        fds_ok = abs(last[2] - settled[2]) <= 16
        ok = errors == 0 and rss_ok and fds_ok and s.proc.poll() is None
        lines = ["Coffer soak, %s, %.1f minutes of list 100 / write one / login in turn, 32 clients" % (
                     time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), minutes),
                 "requests: about {:,.0f}; errors: {}".format(total, errors),
                 "RSS: %.1f MB after the first minute, %.1f MB at the end (max %.1f)" % (
                     settled[1], last[1], max(x[1] for x in samples)),
                 "open descriptors: %d after the first minute, %d at the end" % (settled[2], last[2]),
                 "targets (no errors, RSS within 10%% + 2 MB, fds within 16): %s" % ("met" if ok else "MISSED")]
        return lines, ok, {"requests": total, "errors": errors, "rss_settled_mb": settled[1], "rss_end_mb": last[1],
                           "fds_settled": settled[2], "fds_end": last[2]}
    finally:
        s.stop()


def files_bytes(directory, names=None):
    """The bytes of the files in directory (only those named, when names is given); 0 when it does not exist."""
    try:
        entries = os.listdir(directory)
    except FileNotFoundError:
        return 0
    return sum(os.path.getsize(os.path.join(directory, e)) for e in entries if names is None or e in names)


def audit_rows(data_dir):
    """The audit events in the store now, read beside the running server (WAL readers do not block it)."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data_dir, "coffer.db"), uri=True, timeout=10)
    try:
        return db.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0]
    finally:
        db.close()


def store_soak(coffer, work, token):
    """Read-heavy traffic under an audit retention: the store's size must stop growing once the retention's worth
    of events is kept, while the archive takes the rest."""
    minutes = float(os.environ.get("SOAK_MINUTES", "3"))
    retention = os.environ.get("SOAK_RETENTION", "30s")
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if retention[-1:] not in units:
        sys.exit("SOAK_RETENTION: expected a number and a unit (s, m, h, d), such as 30s, not %r" % retention)
    retention_s = units[retention[-1]] * float(retention[:-1])
    s = Server(coffer, work, "data", token, args=LIMITS + ["--audit-retention", retention])
    try:
        pid, client_id, client_secret, ident = seed(s)
        s.call("POST", "/api/v2/workspace/%s/identity-memberships/%s" % (pid, ident), {"role": "viewer"})
        access = s.call("POST", "/api/v1/auth/universal-auth/login",
                        {"clientId": client_id, "clientSecret": client_secret}, token=None)["accessToken"]
        pause = os.environ.get("SOAK_DELAY_MS", "0")
        env = {"BENCH_TOKEN": access, "BENCH_PROJECT": pid, "BENCH_DELAY_MS": pause}
        store_files = ("coffer.db", "coffer.db-wal")
        archive = os.path.join(s.data, "audit-archive")
        samples, errors, total = [], 0, 0.0
        started = time.monotonic()
        end = started + minutes * 60
        while time.monotonic() < end:
            rps, p99, e = wrk(s, 10, 32, env, script="reads.lua")
            errors += e
            total += rps * 10
            sample = (time.monotonic() - started, total, files_bytes(s.data, store_files), files_bytes(archive),
                      audit_rows(s.data), rps, p99)
            samples.append(sample)
            print("store soak: %5.0f s  %9.0f requests  store %7.1f MB  archive %7.1f MB  events kept %7d  "
                  "%6.0f req/s  p99 %6.1f ms  errors %d" % (sample[0], sample[1], sample[2] / 1e6, sample[3] / 1e6,
                                                           sample[4], rps, p99, errors), flush=True)
        # settled: once two retentions (and the archiver's first passes) are behind
        settle_s = 2 * retention_s + 30
        settled = next((x for x in samples if x[0] >= settle_s), samples[-1])
        last = samples[-1]
        grown = last[2] - settled[2]
        size_ok = last[2] <= settled[2] * 1.10 + 1e6
        ok = errors == 0 and size_ok and s.proc.poll() is None and last[0] > settle_s
        after = last[1] - settled[1]
        lines = ["Coffer store soak, %s, %.1f minutes of list 100 / get one in turn, one machine identity's token, "
                 "32 clients%s, --audit-retention %s" % (
                     time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), minutes,
                     " pausing %s ms before each request" % pause if pause != "0" else "", retention),
                 "requests: about {:,.0f}; errors: {}".format(total, errors),
                 "store (coffer.db + WAL): %.1f MB at %.0f s (settled), %.1f MB at the end (%+.1f MB over the %d "
                 "requests after it); max %.1f MB" % (settled[2] / 1e6, settled[0], last[2] / 1e6, grown / 1e6,
                                                     after, max(x[2] for x in samples) / 1e6),
                 "audit events kept: %d settled, %d at the end" % (settled[4], last[4]),
                 "archive: %.1f MB at the end, %.0f B per request" % (last[3] / 1e6, last[3] / max(total, 1)),
                 "targets (no errors, store at the end within 10%% + 1 MB of its settled size, run longer than two "
                 "retentions + 30 s): %s" % ("met" if ok else "MISSED")]
        return lines, ok, {"requests": total, "errors": errors, "retention": retention,
                           "store_settled_bytes": settled[2], "store_end_bytes": last[2],
                           "store_max_bytes": max(x[2] for x in samples), "events_settled": settled[4],
                           "events_end": last[4], "archive_bytes": last[3]}
    finally:
        s.stop()


MODES = {"shape": shape, "soak": soak, "store": store_soak}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in MODES:
        sys.exit("usage: python3 bench/load.py shape|soak|store BUILD_DIR")
    coffer = os.path.join(os.path.abspath(sys.argv[2]), "coffer")
    work = tempfile.mkdtemp(prefix="coffer-bench-load-")
    try:
        token = "bench-" + secrets.token_hex(24)
        lines, ok, figures = MODES[sys.argv[1]](coffer, work, token)
        text = "\n".join(lines) + "\n"
        sys.stdout.write(text)
        write_results(sys.argv[1], text, figures)
        sys.exit(0 if ok else 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
