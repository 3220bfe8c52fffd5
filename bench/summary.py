#!/usr/bin/env python3
"""The one table of `make bench` : every scenario's figure from this run's results
(bench/results/*.json, written by run.sh, stores.py, load.py shape, scale.py, bigfolder.py and storage.py),
each HTTP throughput also as a ratio of the ceiling measured in the same run: bench/baseline, a minimal
libmicrohttpd server answering the same list response from memory, at the same number of connections (64 unless a
row says otherwise).

    python3 bench/summary.py        (prints the table and writes bench/results/summary.txt)
"""

import json
import os
import sys

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def load(name):
    try:
        with open(os.path.join(RESULTS, name + ".json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def main():
    core = load("latest")
    if not core:
        sys.exit("bench: no bench/results/latest.json: run `make bench` (bench/run.sh) first")
    conns = max(int(c) for c in core["meta"]["connections"].split())
    runs = core["runs"]

    def run(scenario, c=conns):
        return runs.get("%s|%d" % (scenario, c)) or {}

    ceiling = run("baseline list").get("rps")
    rows = []

    def http(name, rps, p99=None, ceiling_rps=ceiling):
        ratio = "%.1f%%" % (100 * rps / ceiling_rps) if rps and ceiling_rps else "-"
        rows.append((name, "{:,.0f} req/s".format(rps) if rps else "?", "%.1f ms" % p99 if p99 else "-", ratio))

    def other(name, figure):
        rows.append((name, figure, "-", "-"))

    http("baseline: list from memory (the ceiling)", ceiling, run("baseline list").get("p99"))
    http("list 100 secrets (admin)", run("coffer list").get("rps"), run("coffer list").get("p99"))
    http("list 100 secrets (machine identity)", run("identity list").get("rps"), run("identity list").get("p99"))
    http("get one secret", run("coffer one").get("rps"), run("coffer one").get("p99"))
    http("get one secret (machine identity; vs baseline one)", run("identity one").get("rps"),
         run("identity one").get("p99"), run("baseline one").get("rps"))
    stores = load("stores") or {}
    for label in ("SQLite, 1 node", "PostgreSQL, 1 node", "PostgreSQL, 2 nodes"):
        s = stores.get(label)
        if s:
            if label != "SQLite, 1 node":
                http("list 100 secrets, %s" % label, s["list_rps"], s["list_p99_ms"])
            http("write one secret, %s" % label, s["write_rps"], s["write_p99_ms"])
    http("universal-auth login", run("coffer login").get("rps"), run("coffer login").get("p99"))
    http("JWT login (JWKS cached)", run("coffer jwt-login").get("rps"), run("coffer jwt-login").get("p99"))
    shape = load("shape")
    if shape:
        http("64 clients: list / write / login mix", shape["mix_rps"], shape["mix_p99_ms"])
        http("list beside 10,000 idle connections (16 conns)", shape["idle_list_rps"], shape["idle_list_p99_ms"],
             run("baseline list", 16).get("rps"))
    if core.get("run_true_median_ms") is not None:
        other("`coffer run -- true` (median; `true` alone %.2f ms)" % core["true_median_ms"],
              "%.2f ms" % core["run_true_median_ms"])
    other("cold start to first answered request", "%s ms" % core["meta"]["start_ms"])
    other("RSS idle, after load", "%.1f MB, %.1f MB" % (int(core["meta"]["rss_before"]) / 1024,
                                                       int(core["meta"]["rss_after"]) / 1024))
    scale = load("scale")
    if scale:
        large, small = scale["large"], scale["small"]
        other("RSS with {:,} secrets stored".format(large["secrets"]), "%.1f MB" % large["rss_mb"])
        http("list one folder of 100, in a store of {:,} secrets and {:,} identities (16 conns)".format(
                 large["secrets"], large["identities"]),
             large["list_rps"], large["list_p99_ms"], run("baseline list", 16).get("rps"))
        other("  ... as a ratio of the same on a 100-secret store", "%.2fx" % (large["list_rps"] / small["list_rps"]))
        other("login among {:,} identities, ratio to one identity".format(large["identities"]),
              "%.2fx" % (large["login_rps"] / small["login_rps"]))

    big = load("bigfolder")
    if big:
        new = big["new"]
        other("list a folder of {:,} secrets (one connection, median)".format(big["small"]),
              "%.1f ms" % new["small_ms"])
        other("list a folder of {:,} secrets (one connection, median)".format(big["large"]),
              "%.1f ms" % new["large_ms"])
        other("  ... ratio {:,} / {:,} (linear: {:.1f}x; target <= 12x)".format(
                  big["large"], big["small"], big["large"] / big["small"]),
              "%.1fx" % new["ratio"])
        if "old" in big:
            other("  ... the same ratio, old build of this run", "%.1fx" % big["old"]["ratio"])

    storage = load("storage")
    if storage:
        now = storage["this build"]
        figure = "%.0f B" % now["per_read"]
        if "before" in storage:
            figure += " (%.2fx before)" % (now["per_read"] / storage["before"]["per_read"])
        other("stored bytes per read request (audit + tokens), read-heavy mix", figure)
        if "retained" in storage:
            kept = storage["retained"]
            figure = "%.0f B" % kept["per_read"]
            if "before" in storage:
                figure += " (%.2fx before)" % (kept["per_read"] / storage["before"]["per_read"])
            other("  ... with --audit-retention, once older events are archived", figure)
            other("  ... archive files written outside the store, per read request",
                  "%.0f B" % kept["archived_per_read"])

    missing = [n for n in ("stores", "shape", "scale", "bigfolder", "storage") if not load(n)]
    width = max(len(r[0]) for r in rows)
    lines = ["Coffer, every benchmark of this run (%s, %s cores); HTTP figures at %d connections unless noted, "
             "and as a share of the baseline ceiling" % (core["meta"]["date"], core["meta"]["cores"], conns), ""]
    lines.append("%-*s %18s %10s %10s" % (width, "scenario", "figure", "p99", "of ceiling"))
    for name, figure, p99, ratio in rows:
        lines.append("%-*s %18s %10s %10s" % (width, name, figure, p99, ratio))
    if missing:
        lines.append("")
        lines.append("not in this table (not run): " + ", ".join(missing))
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    with open(os.path.join(RESULTS, "summary.txt"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
