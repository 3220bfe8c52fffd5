#!/usr/bin/env python3
"""Big folders (bench/README.md "Big folders"): does listing a folder cost time in proportion to its secrets?

    python3 bench/bigfolder.py BUILD_DIR [OLD_BUILD_DIR]

One server on a fresh data directory, one project, one folder of SMALL (1,000) and one of LARGE (10,000) secrets
(values of 100 bytes), seeded through the API in batches. Each folder is listed with
`GET /api/v3/secrets/raw` over one keep-alive connection, `BENCH_BIGFOLDER_REQUESTS` (9) times after one warm-up
request (the small one LARGE / SMALL times as often); the figures are medians: the time from sending the request to the last byte of the answer, and the
server's CPU time per list (utime + stime from /proc/PID/stat around the requests, divided by their number). The
ratio large / small is 10.0 for a linear list; above that, something grows faster than the folder.

The servers run with `--cache-size 0`: the response cache would otherwise answer the 1,000 list from memory and
the 10,000 list (bigger than the cache) from the store, and the ratio would compare a memory copy with a full
list. Both lists are therefore made from the store every time, as the ratio means. A binary older than the cache
(no `--cache-size` flag in its `server --help`) runs without the flag: it has no cache to switch off.

Given OLD_BUILD_DIR too (a build of an older commit), the same is measured on its `coffer` back to back with
BUILD_DIR's, `BENCH_ROUNDS` (3) rounds alternating the two, and each figure is the median over the rounds, with
the new one as a ratio of the old. Prints one table (also bench/results/bigfolder.txt and .json).
The admin token travels in the environment only.
"""

import http.client
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import Server, write_results

SMALL = int(os.environ.get("BENCH_BIGFOLDER_SMALL", "1000"))
LARGE = int(os.environ.get("BENCH_BIGFOLDER_LARGE", "10000"))
REQUESTS = int(os.environ.get("BENCH_BIGFOLDER_REQUESTS", "9"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
BATCH = 1000  # CF_BATCH_MAX: the most secrets one batch write takes


def seed(server):
    """Returns the project id; folders /small and /large hold SMALL and LARGE secrets."""
    pid = server.call("POST", "/api/v2/workspace", {"projectName": "big-" + secrets.token_hex(3)})["project"]["id"]
    value = "v" * 100
    for name, count in (("small", SMALL), ("large", LARGE)):
        server.call("POST", "/api/v1/folders", {"workspaceId": pid, "environment": "dev", "name": name})
        for start in range(0, count, BATCH):
            server.call("POST", "/api/v3/secrets/batch/raw", {
                "workspaceId": pid, "environment": "dev", "secretPath": "/" + name,
                "secrets": [{"secretKey": "KEY_%05d" % k, "secretValue": value}
                            for k in range(start, min(count, start + BATCH))]})
    return pid


def cpu_seconds(pid):
    """The process's user + system CPU time so far (all its threads)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(server, pid, folder, expected):
    """(median seconds per list, server CPU seconds per list) over the lists of FOLDER: REQUESTS of the large
    one and as many more of the small one as it is smaller, so that both measure about as much work (the CPU
    clock counts in ticks of 10 ms)."""
    count = REQUESTS * (max(1, LARGE // SMALL) if expected == SMALL else 1)
    path = "/api/v3/secrets/raw?workspaceId=%s&environment=dev&secretPath=/%s" % (pid, folder)
    headers = {"Authorization": "Bearer " + server.token}
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    times = []
    try:
        for i in range(count + 1):
            if i == 1:
                cpu0 = cpu_seconds(server.proc.pid)
            t0 = time.perf_counter()
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            body = r.read()
            elapsed = time.perf_counter() - t0
            if r.status != 200:
                sys.exit("bench: listing /%s answered %d: %s" % (folder, r.status, body[:300]))
            if i == 0:
                # one check of the answer, outside the timed requests: every secret is there
                listed = body.count(b'"secretKey":')
                if listed != expected:
                    sys.exit("bench: /%s listed %d secrets, not %d" % (folder, listed, expected))
            else:
                times.append(elapsed)
        cpu = (cpu_seconds(server.proc.pid) - cpu0) / count
    finally:
        conn.close()
    return statistics.median(times), cpu


def no_cache_args(coffer):
    """The flags that switch COFFER's response cache off; none for a binary that has no cache."""
    help_text = subprocess.run([coffer, "server", "--help"], capture_output=True, text=True).stdout
    return ["--cache-size", "0"] if "--cache-size" in help_text else []


def one_round(coffer, work, name):
    """{"small": (s, cpu), "large": (s, cpu)} for one server of COFFER, its response cache off."""
    token = "bench-" + secrets.token_hex(24)
    server = Server(coffer, work, name, token, args=no_cache_args(coffer))
    try:
        pid = seed(server)
        return {"small": measure(server, pid, "small", SMALL), "large": measure(server, pid, "large", LARGE)}
    finally:
        server.stop()
        shutil.rmtree(server.data, ignore_errors=True)


def medians(rounds):
    return {size: tuple(statistics.median(r[size][k] for r in rounds) for k in (0, 1)) for size in ("small", "large")}


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python3 bench/bigfolder.py BUILD_DIR [OLD_BUILD_DIR]")
    if min(SMALL, LARGE, REQUESTS, ROUNDS) < 1:
        sys.exit("bench: BENCH_BIGFOLDER_SMALL, _LARGE, _REQUESTS and BENCH_ROUNDS must be at least 1")
    builds = [("new", os.path.join(os.path.abspath(sys.argv[1]), "coffer"))]
    if len(sys.argv) == 3:
        builds.append(("old", os.path.join(os.path.abspath(sys.argv[2]), "coffer")))
    for _, coffer in builds:
        if not os.access(coffer, os.X_OK):
            sys.exit("bench: '%s' is missing: build first" % coffer)
    work = tempfile.mkdtemp(prefix="coffer-bench-bigfolder-")
    try:
        rounds = {label: [] for label, _ in builds}
        for i in range(ROUNDS if len(builds) > 1 else 1):
            # alternate which goes first, so that neither always meets a warmer or busier machine
            for label, coffer in (builds if i % 2 == 0 else builds[::-1]):
                rounds[label].append(one_round(coffer, work, "%s-%d" % (label, i)))
        figures = {label: medians(r) for label, r in rounds.items()}
        lines = ["Big folders, %s, %d cores: one folder of %s and one of %s secrets (100-byte values), "
                 "median of %d lists over one connection, response cache off%s" % (
                     time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.cpu_count() or 0,
                     "{:,}".format(SMALL), "{:,}".format(LARGE), REQUESTS,
                     ", median of %d rounds" % ROUNDS if len(builds) > 1 else ""), "",
                 "%-6s %14s %14s %14s %14s %12s %12s" % ("build", "small list", "large list", "small CPU",
                                                          "large CPU", "time ratio", "CPU ratio")]
        result = {"small": SMALL, "large": LARGE}
        for label, _ in builds:
            f = figures[label]
            time_ratio = f["large"][0] / f["small"][0]
            cpu_ratio = f["large"][1] / f["small"][1] if f["small"][1] else float("nan")
            lines.append("%-6s %11.2f ms %11.2f ms %11.2f ms %11.2f ms %11.1fx %11.1fx" % (
                label, f["small"][0] * 1000, f["large"][0] * 1000, f["small"][1] * 1000, f["large"][1] * 1000,
                time_ratio, cpu_ratio))
            result[label] = {"small_ms": f["small"][0] * 1000, "large_ms": f["large"][0] * 1000,
                             "small_cpu_ms": f["small"][1] * 1000, "large_cpu_ms": f["large"][1] * 1000,
                             "ratio": time_ratio, "cpu_ratio": cpu_ratio}
        lines.append("")
        lines.append("time ratio: large list / small list (%.1fx is linear; the target is <= 12x)" % (LARGE / SMALL))
        if len(builds) > 1:
            new, old = figures["new"], figures["old"]
            lines.append("new / old: small list %.2fx, large list %.2fx of the old time (below 1: faster)" % (
                new["small"][0] / old["small"][0], new["large"][0] / old["large"][0]))
        text = "\n".join(lines) + "\n"
        sys.stdout.write(text)
        write_results("bigfolder", text, result)
        if figures["new"]["large"][0] / figures["new"]["small"][0] > 12 * LARGE / SMALL / 10:
            print("bench: big folder list is not linear (target missed)")
            if os.environ.get("BENCH_STRICT") == "1":
                sys.exit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
