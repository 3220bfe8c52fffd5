#!/usr/bin/env python3
"""The one table of `make bench` : every scenario's figure from this run's results
(bench/results/*.json, written by run.sh, stores.py, load.py shape, scale.py, bigfolder.py, agentpoll.py,
storage.py and durable.py), each HTTP throughput also as a ratio of the ceiling measured in the same run: bench/baseline, a
minimal libmicrohttpd server answering the same list response from memory, at the same number of connections (64
unless a row says otherwise). Then the performance issue's goal table: each goal with the issue's figure, this run's
and `met` or `MISSED` (`?` where a result file is missing).

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


def share(part, whole):
    """part as a fraction of whole, or None when either is missing."""
    return part / whole if part and whole else None


def goal_table(core, run, stores, big, storage):
    """The performance issue's goal table: each row with the issue's "today" figure, this run's figure and
    the goal, `met` or `MISSED`; a row whose result file (or scenario) is missing shows `?`."""
    durable = load("durable") or {}
    # bench/durable.py keeps its builds in command-line order: the last one is this build.
    this_durable = list(durable.values())[-1] if durable else {}
    sqlite = stores.get("SQLite, 1 node") or {}
    meta = core["meta"]
    rows = []

    def row(name, today, value, text, goal, ok):
        rows.append((name, today, "?" if value is None else text, goal,
                     "?" if value is None else ("met" if ok else "MISSED")))

    def pct(f):
        return "%.1f%%" % (100 * f)

    list_share = share(run("coffer list").get("rps"), run("baseline list").get("rps"))
    row("list 100, 64 conns, share of baseline list", "13%", list_share, list_share and pct(list_share),
        ">= 50%", list_share is not None and list_share >= 0.5)
    one_share = share(run("coffer one").get("rps"), run("baseline one").get("rps"))
    row("get one, 64 conns, share of baseline get-one", "~26%", one_share, one_share and pct(one_share),
        ">= 50%", one_share is not None and one_share >= 0.5)
    p99_one, p99_list = run("coffer one").get("p99"), run("coffer list").get("p99")
    both = p99_one if p99_one is not None and p99_list is not None else None
    row("read p99 at 64 conns (get one / list)", "9.6 / 39.8 ms", both,
        both is not None and "%.1f / %.1f ms" % (p99_one, p99_list), "<= 5 / 10 ms",
        both is not None and p99_one <= 5 and p99_list <= 10)
    # The same figure for the ceiling: a goal below the bare server's own p99 in the same run cannot be met by
    # work done per request, since wrk and the server share the two cores (scheduling delay is in both).
    b_one, b_list = run("baseline one").get("p99"), run("baseline list").get("p99")
    both = b_one if b_one is not None and b_list is not None else None
    rows.append(("  ... the baseline's own p99 (get one / list)", "-",
                 "?" if both is None else "%.1f / %.1f ms" % (b_one, b_list), "-", "-"))
    logins = this_durable.get("login_rps")
    row("universal-auth logins/s, tokens durable", "2,520", logins, logins and "{:,.0f}".format(logins),
        ">= 5,000", logins is not None and logins >= 5000)
    write_p99 = this_durable.get("write_p99_ms", sqlite.get("write_p99_ms"))
    row("write one secret p99 at 64 conns, durable", "35 ms", write_p99,
        write_p99 is not None and "%.1f ms" % write_p99, "<= 10 ms", write_p99 is not None and write_p99 <= 10)
    # What each durable write leaves on the disk (log pages, checkpoints, the request log): not a goal, the figure
    # the write path's cost follows most closely (bench/README.md "Durable writes").
    write_kb, write_rps = this_durable.get("write_kb"), this_durable.get("write_rps")
    rows.append(("  ... writes/s, and KB stored per write", "~2,600/s", "?" if write_kb is None else
                 "{:,.0f}/s, {:.1f} KB".format(write_rps or 0, write_kb), "-", "-"))
    run_ms, true_ms = core.get("run_true_median_ms"), core.get("true_median_ms")
    row("`coffer run -- true` median", "41 ms (`true` 3 ms)", run_ms,
        run_ms is not None and "%.1f ms (`true` %.1f ms)" % (run_ms, true_ms), "<= 20 ms",
        run_ms is not None and run_ms <= 20)
    rss_kb, pss_kb = meta.get("rss_start"), meta.get("pss_start")
    rss_mb = int(rss_kb) / 1024 if rss_kb else None
    row("idle RSS after start (PSS)", "13.5 MB", rss_mb,
        rss_mb is not None and "%.1f MB (%s)" % (rss_mb, "%.1f MB" % (int(pss_kb) / 1024) if pss_kb else "PSS ?"),
        "<= 10 MB", rss_mb is not None and rss_mb <= 10)
    rss_idle_kb, pss_idle_kb = meta.get("rss_before"), meta.get("pss_before")
    idle_mb = int(rss_idle_kb) / 1024 if rss_idle_kb else None
    # Informational: the goal is the RSS right after start (the row above); a seeded server has opened
    # connections and filled caches, so this row has no goal of its own.
    rows.append(("  ... idle after seeding, before the load (PSS)", "-",
                 "?" if idle_mb is None else "%.1f MB (%s)" % (idle_mb, "%.1f MB" % (int(pss_idle_kb) / 1024)
                                                               if pss_idle_kb else "PSS ?"), "-", "-"))
    # What no change to Coffer's own code can go below: the same libraries, mapped and initialised, under the
    # baseline's server (bench/floor, right after start). Not a goal of its own: the row says how far it is.
    floor_kb = meta.get("rss_floor")
    floor_mb = int(floor_kb) / 1024 if floor_kb else None
    rows.append(("  ... the floor: Coffer's start-up libraries, no Coffer code (PSS)", "-",
                 "?" if floor_mb is None else "%.1f MB (%s)" % (
                     floor_mb, "%.1f MB" % (int(meta["pss_floor"]) / 1024) if meta.get("pss_floor") else "PSS ?"),
                 "-", "-"))
    ratio = big["new"]["ratio"] if big else None
    row("list of a 10,000-secret folder vs 1,000", "27x", ratio, ratio is not None and "%.1fx" % ratio, "<= 12x",
        ratio is not None and ratio <= 12)
    per_read = storage["this build"]["per_read"] if storage else None
    row("stored bytes per read request (audit + tokens)", "~600 B", per_read,
        per_read is not None and "%.0f B" % per_read, "<= 100 B", per_read is not None and per_read <= 100)

    width = max(len(r[0]) for r in rows)
    rounds = int(meta.get("rounds", 1))
    out = ["Goals of the performance issue (this run; `?`: its result file or scenario is missing; bench/run.sh's "
           "rows: %s)" % ("medians of %d rounds" % rounds if rounds > 1 else "one round"), "",
           "%-*s %20s %26s %14s  %s" % (width, "figure", "today (issue)", "this run", "goal", "result")]
    for name, today, figure, goal, result in rows:
        out.append("%-*s %20s %26s %14s  %s" % (width, name, today, figure, goal, result))
    return out


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

    agents = load("agentpoll")
    if agents:
        for name, figures in agents.items():
            if "every 10s" in name:
                other("1,000 agents polling every 10 s (%s): server CPU" % name.split(", every")[0] +
                      (", If-None-Match" if name.endswith("If-None-Match") else ", full lists"),
                      "%.1f%% of a core" % figures["server_cpu_pct"])

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

    missing = [n for n in ("stores", "shape", "scale", "bigfolder", "agentpoll", "storage", "durable")
               if not load(n)]
    width = max(len(r[0]) for r in rows)
    lines = ["Coffer, every benchmark of this run (%s, %s cores); HTTP figures at %d connections unless noted, "
             "and as a share of the baseline ceiling" % (core["meta"]["date"], core["meta"]["cores"], conns), ""]
    lines.append("%-*s %18s %10s %10s" % (width, "scenario", "figure", "p99", "of ceiling"))
    for name, figure, p99, ratio in rows:
        lines.append("%-*s %18s %10s %10s" % (width, name, figure, p99, ratio))
    if missing:
        lines.append("")
        lines.append("not in this table (not run): " + ", ".join(missing))
    lines.append("")
    lines.extend(goal_table(core, run, stores, big, storage))
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    with open(os.path.join(RESULTS, "summary.txt"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
