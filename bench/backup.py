#!/usr/bin/env python3
"""Backups (bench/README.md "Backups"): how long `coffer operator backup`, `backup --verify` and `restore` take on
a store of BENCH_BACKUP_SECRETS (100,000) secrets, and whether a server under reads keeps answering meanwhile.

    python3 bench/backup.py BUILD_DIR

One server on a fresh data directory, one project, the secrets (values of 100 bytes) seeded through the API in
batches of 1,000 over 10 folders. Then, while a client reads one secret in a loop, the backup is taken (its
wall time, the backup's size, and the reads answered during it with their slowest); then `--verify`; then
`restore` into a new data directory holding the same root key, whose server must list every secret back. Prints
one table (also bench/results/backup.txt and .json).
"""

import http.client
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import Server, write_results

SECRETS = int(os.environ.get("BENCH_BACKUP_SECRETS", "100000"))
FOLDERS = 10
BATCH = 1000


def seed(server):
    pid = server.call("POST", "/api/v2/workspace", {"projectName": "bk-" + secrets.token_hex(3)})["project"]["id"]
    per_folder = SECRETS // FOLDERS
    value = "v" * 100
    for f in range(FOLDERS):
        server.call("POST", "/api/v1/folders", {"workspaceId": pid, "environment": "dev", "name": "f%d" % f})
        for start in range(0, per_folder, BATCH):
            server.call("POST", "/api/v3/secrets/batch/raw", {
                "workspaceId": pid, "environment": "dev", "secretPath": "/f%d" % f,
                "secrets": [{"secretKey": "KEY_%06d" % k, "secretValue": value}
                            for k in range(start, min(per_folder, start + BATCH))]})
    return pid, per_folder * FOLDERS


def timed(args, env=None):
    start = time.monotonic()
    proc = subprocess.run(args, capture_output=True, env=env)
    took = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit("bench: %s failed:\n%s" % (" ".join(args[1:3]), proc.stderr.decode()[-2000:]))
    return took, proc.stdout.decode().strip()


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: python3 bench/backup.py BUILD_DIR")
    coffer = os.path.abspath(os.path.join(sys.argv[1], "coffer"))
    work = tempfile.mkdtemp(prefix="coffer-bench-backup-")
    token = "bench-" + secrets.token_hex(24)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COFFER_")}
    server = None
    try:
        server = Server(coffer, work, "source", token)
        t0 = time.monotonic()
        pid, n = seed(server)
        seed_s = time.monotonic() - t0
        path = os.path.join(work, "store.cbk")

        stop = threading.Event()
        reads = []

        def reader():
            c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            while not stop.is_set():
                start = time.monotonic()
                c.request("GET", "/api/v3/secrets/raw/KEY_000001?workspaceId=%s&environment=dev&secretPath=/f0" % pid,
                          headers={"Authorization": "Bearer " + token})
                r = c.getresponse()
                r.read()
                reads.append((r.status, time.monotonic() - start))

        t = threading.Thread(target=reader)
        t.start()
        time.sleep(0.5)
        before = len(reads)
        backup_s, _ = timed([coffer, "operator", "backup", "--to", path, "--data-dir", server.data], env)
        during = reads[before:]
        stop.set()
        t.join(60)
        verify_s, _ = timed([coffer, "operator", "backup", "--verify", path, "--data-dir", server.data], env)
        target = os.path.join(work, "restored")
        os.mkdir(target, 0o700)
        shutil.copy(os.path.join(server.data, "root.key"), target)
        restore_s, _ = timed([coffer, "operator", "restore", "--from", path, "--data-dir", target], env)
        server.stop()
        server = None
        # the restored store, read back by a server of its own
        listed = 0
        proc = subprocess.Popen([coffer, "server", "--addr", "127.0.0.1:0", "--data-dir", target],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=dict(env, COFFER_BOOTSTRAP_TOKEN=token))
        port = None
        deadline = time.monotonic() + 30
        for line in proc.stdout:
            text = line.decode(errors="replace")
            m = re.search(r"listening on https?://[^ ]*:(\d+) ", text)
            if m:
                port = int(m.group(1))
                break
            if time.monotonic() > deadline:
                break
        if port:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            c.request("GET", "/api/v3/secrets/raw?workspaceId=%s&environment=dev&recursive=true" % pid,
                      headers={"Authorization": "Bearer " + token})
            r = c.getresponse()
            body = r.read()
            if r.status == 200:
                listed = len(json.loads(body)["secrets"])
        proc.terminate()
        proc.wait(30)
        failed = sum(1 for s, _ in during if s != 200)
        slowest = max((d for _, d in during), default=0.0) * 1000
        size = os.path.getsize(path)
        rows = [("secrets seeded", "%d (%.1f s)" % (n, seed_s)),
                ("backup (while reading)", "%.2f s" % backup_s),
                ("backup file", "%.1f MB" % (size / 1e6)),
                ("reads during the backup", "%d, %d failed, slowest %.1f ms" % (len(during), failed, slowest)),
                ("backup --verify", "%.2f s" % verify_s),
                ("restore", "%.2f s" % restore_s),
                ("secrets listed by the restored server", "%d of %d" % (listed, n))]
        text = "backup of a %d-secret store\n" % n + "".join("  %-40s %s\n" % r for r in rows)
        print(text, end="")
        write_results("backup", text, {"secrets": n, "backup_s": backup_s, "verify_s": verify_s,
                                       "restore_s": restore_s, "bytes": size, "reads_during": len(during),
                                       "reads_failed": failed, "slowest_read_ms": slowest, "listed": listed})
        if listed != n or failed:
            sys.exit(1)
    finally:
        if server:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
