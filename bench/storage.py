#!/usr/bin/env python3
"""Stored bytes per request (bench/README.md "Storage"): how much the store grows under a read-heavy mix.

    python3 bench/storage.py BUILD_DIR

A `coffer server` (SQLite) on a fresh data directory is seeded with one folder of 100 secrets and a machine
identity (universal auth, TTL a day, viewer on the project). Then BENCH_STORAGE_REQUESTS (default 10,000) requests
run over 4 keep-alive connections as the identity, in a fixed read-heavy mix: of every 20 requests, 10 list the
folder (100 keys each), 9 read one secret and 1 logs in (a new access token). Every request is answered before the
figures are read. The store's size is its used pages ((page_count - freelist_count) * page_size, WAL included: read
through SQLite's own view of the file, after the audit log has written every event), taken before and after the
mix; the growth per request and per read request is the figure, split by what grew (SQLite's dbstat: audit events
and key sets, access tokens, the rest).

With BENCH_STORAGE_RETENTION=D (a duration, e.g. 2s), this build also runs with `--audit-retention D` ("retained"
row): after the mix the script waits until the archiver has moved every event older than D out of the store (D plus
a few seconds), so that the store's growth is what a retention keeps; the bytes the archive files took on disk are
shown beside it (B/read archived), since retention moves the events rather than dropping them.

With BENCH_STORAGE_BEFORE=PATH (another `coffer` binary, e.g. one built from the main branch), the same mix runs
against it in the same run, one after the other, BENCH_STORAGE_ROUNDS times each (default 1; the figures are
counts of bytes, not timings, so they barely move), and the table shows both and their ratio (medians). Prints one
table (also bench/results/storage.txt, figures in storage.json). Tokens and the client secret stay in this
process.
"""

import http.client
import json
import os
import secrets
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time

from benchlib import Server, write_results

REQUESTS = int(os.environ.get("BENCH_STORAGE_REQUESTS", "10000"))
ROUNDS = int(os.environ.get("BENCH_STORAGE_ROUNDS", "1"))
RETENTION = os.environ.get("BENCH_STORAGE_RETENTION")
CLIENTS = 4
# one cycle of the mix: 10 lists, 9 single reads, 1 login
MIX = ["list"] * 10 + ["one"] * 9 + ["login"]


def seed(s):
    """Returns (project id, client id, client secret)."""
    pid = s.call("POST", "/api/v2/workspace", {"projectName": "storage-" + secrets.token_hex(3)})["project"]["id"]
    s.call("POST", "/api/v3/secrets/batch/raw", {
        "workspaceId": pid, "environment": "dev", "secretPath": "/",
        "secrets": [{"secretKey": "KEY_%03d" % (i + 1), "secretValue": "v" * 32} for i in range(100)]})
    ident = s.call("POST", "/api/v1/identities", {"name": "storage-" + secrets.token_hex(3)})["identity"]["id"]
    ua = s.call("POST", "/api/v1/auth/universal-auth/identities/" + ident,
                {"accessTokenTTL": 86400, "accessTokenMaxTTL": 86400})["identityUniversalAuth"]
    cs = s.call("POST", "/api/v1/auth/universal-auth/identities/%s/client-secrets" % ident, {})
    s.call("POST", "/api/v2/workspace/%s/identity-memberships/%s" % (pid, ident), {"role": "viewer"})
    return pid, ua["clientId"], cs["clientSecret"]


def flush_audit(s):
    """Listing the audit log waits until every event recorded so far is committed."""
    s.call("GET", "/api/v1/audit/events?limit=1")


def used(data_dir):
    """(bytes used, {group: bytes}, {table: rows}) of the SQLite store, WAL included."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data_dir, "coffer.db"), uri=True, timeout=30)
    try:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        pages = db.execute("PRAGMA page_count").fetchone()[0] - db.execute("PRAGMA freelist_count").fetchone()[0]
        groups = {"audit": 0, "tokens": 0, "other": 0}
        for name, size in db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
            group = ("audit" if name.startswith("audit_") else
                     "tokens" if name.startswith("identity_access_tokens") else "other")
            groups[group] += size
        rows = {t: db.execute("SELECT COUNT(*) FROM %s" % t).fetchone()[0]
                for t in ("audit_events", "identity_access_tokens")}
        return pages * page_size, groups, rows
    finally:
        db.close()


def drive(s, pid, client_id, client_secret, token):
    """Runs the mix; returns the number of (read requests, logins). Exits on any answer but 200."""
    counts = {"list": 0, "one": 0, "login": 0}
    lock = threading.Lock()
    failures = []
    list_path = "/api/v3/secrets/raw?workspaceId=%s&environment=dev&secretPath=/" % pid
    one_path = "/api/v3/secrets/raw/KEY_001?workspaceId=%s&environment=dev" % pid
    login_body = json.dumps({"clientId": client_id, "clientSecret": client_secret})

    def client(index):
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
        for i in range(index, REQUESTS, CLIENTS):
            kind = MIX[i % len(MIX)]
            if kind == "login":
                c.request("POST", "/api/v1/auth/universal-auth/login", body=login_body,
                          headers={"Content-Type": "application/json"})
            else:
                c.request("GET", list_path if kind == "list" else one_path,
                          headers={"Authorization": "Bearer " + token})
            r = c.getresponse()
            r.read()
            if r.status != 200:
                failures.append("%s answered %d" % (kind, r.status))
                break
            with lock:
                counts[kind] += 1
        c.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        sys.exit("bench: storage: " + failures[0])
    return counts["list"] + counts["one"], counts["login"]


def archive_bytes(data_dir):
    directory = os.path.join(data_dir, "audit-archive")
    if not os.path.isdir(directory):
        return 0
    return sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory))


def retention_seconds(text):
    units = {"s": 1, "m": 60, "h": 3600}
    return float(text[:-1]) * units[text[-1]] if text and text[-1] in units else float(text)


def wait_archived(s, seconds):
    """Waits until no event older than the retention is left in the store (at most the retention + 30 s)."""
    deadline = time.monotonic() + seconds + 30
    time.sleep(seconds)
    while time.monotonic() < deadline:
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(s.data, "coffer.db"), uri=True, timeout=30)
        try:
            oldest = db.execute("SELECT MIN(time_us) FROM audit_events").fetchone()[0]
        finally:
            db.close()
        if oldest is None or oldest > (time.time() - seconds - 1.5) * 1e6:
            return
        time.sleep(0.5)
    sys.exit("bench: storage: events older than the retention were not archived in time")


def measure(coffer, work, name, args=()):
    token = "bench-" + secrets.token_hex(24)
    s = Server(coffer, work, name, token, args=args)
    try:
        pid, client_id, client_secret = seed(s)
        access = s.call("POST", "/api/v1/auth/universal-auth/login",
                        {"clientId": client_id, "clientSecret": client_secret}, token=None)["accessToken"]
        flush_audit(s)
        before, groups_before, rows_before = used(s.data)
        archived_before = archive_bytes(s.data)
        reads, logins = drive(s, pid, client_id, client_secret, access)
        flush_audit(s)
        if args:
            wait_archived(s, retention_seconds(RETENTION))
        after, groups_after, rows_after = used(s.data)
        archived = archive_bytes(s.data) - archived_before
    finally:
        s.stop()
    requests = reads + logins
    return {
        "requests": requests, "reads": reads, "logins": logins,
        "bytes": after - before,
        "per_request": (after - before) / requests,
        "per_read": (after - before) / reads,
        "groups_per_request": {g: (groups_after[g] - groups_before[g]) / requests for g in groups_after},
        "rows": {t: rows_after[t] - rows_before[t] for t in rows_after},
        "archived_per_read": archived / reads,
    }


def median_of(runs):
    keys = ("bytes", "per_request", "per_read", "archived_per_read")
    out = dict(runs[0])
    for k in keys:
        out[k] = statistics.median(r[k] for r in runs)
    out["groups_per_request"] = {g: statistics.median(r["groups_per_request"][g] for r in runs)
                                 for g in runs[0]["groups_per_request"]}
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: python3 bench/storage.py BUILD_DIR")
    if REQUESTS < len(MIX) or ROUNDS < 1:
        sys.exit("bench: BENCH_STORAGE_REQUESTS must be at least %d and BENCH_STORAGE_ROUNDS at least 1" % len(MIX))
    binaries = [("this build", os.path.join(os.path.abspath(sys.argv[1]), "coffer"))]
    before = os.environ.get("BENCH_STORAGE_BEFORE")
    if before:
        if not os.access(before, os.X_OK):
            sys.exit("bench: BENCH_STORAGE_BEFORE '%s' is not an executable" % before)
        binaries.insert(0, ("before", os.path.abspath(before)))
    if RETENTION:
        binaries.append(("retained", os.path.join(os.path.abspath(sys.argv[1]), "coffer")))
    work = tempfile.mkdtemp(prefix="coffer-bench-storage-")
    try:
        runs = {label: [] for label, _ in binaries}
        for r in range(ROUNDS):
            for label, coffer in binaries:  # back to back, in the same order every round
                args = ["--audit-retention", RETENTION] if label == "retained" else []
                runs[label].append(measure(coffer, work, "%s-%d" % (label.replace(" ", "-"), r), args))
        results = {label: median_of(rs) for label, rs in runs.items()}
        first = results[binaries[0][0]]
        lines = ["Stored bytes per request, SQLite: %d requests over %d connections (of each 20: 10 lists of 100 keys, "
                 "9 reads of one secret, 1 login), %d round(s), medians" % (first["requests"], CLIENTS, ROUNDS), "",
                 "%-11s %11s %9s %9s %9s %9s %9s %13s %11s %9s" % (
                     "binary", "grew", "B/req", "B/read", "audit", "tokens", "other", "audit events", "tokens",
                     "archived")]
        for label, _ in binaries:
            x = results[label]
            g = x["groups_per_request"]
            lines.append("%-11s %11s %9.0f %9.0f %9.0f %9.0f %9.0f %13s %11s %9.0f" % (
                label, "{:,}".format(int(x["bytes"])), x["per_request"], x["per_read"], g["audit"], g["tokens"],
                g["other"], "{:,}".format(x["rows"]["audit_events"]), "{:,}".format(x["rows"]["identity_access_tokens"]),
                x["archived_per_read"]))
        lines.append("(audit, tokens, other: bytes per request that each part of the store grew by; archived: bytes "
                     "per read request of the audit archive files, outside the store)")
        if RETENTION:
            lines.append("retained: --audit-retention %s, measured once events older than it were archived" % RETENTION)
        if before:
            lines.append("")
            lines.append("this build / before: %.2fx bytes per read request" % (
                results["this build"]["per_read"] / results["before"]["per_read"]))
            if RETENTION:
                lines.append("retained / before: %.2fx bytes per read request" % (
                    results["retained"]["per_read"] / results["before"]["per_read"]))
        text = "\n".join(lines) + "\n"
        sys.stdout.write(text)
        write_results("storage", text, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
