#!/usr/bin/env python3
"""`coffer scan` against ripgrep and secretlint on the same generated corpus (part of `make bench`).

Generates, in a temporary directory removed at the end (never committed):
- a corpus of BENCH_SCAN_MIB MiB (default 1024) of source-like text in 4 MiB files, with secrets of every
  built-in rule's shape planted at known lines (the ground truth; fake tokens made here, never real ones);
- a clean corpus of a quarter of that size made the same way without plants, for false positives.
Then, side by side in one run:
- coffer scan (all built-in rules, one Hyperscan pass; the default thread count: one per core);
- ripgrep with the same rule set as one alternation (its Rust regex engine: the lookarounds, which it does
  not support, are dropped; everything else as written);
- secretlint with its recommended preset (npm, bench/scan-npm/package.json + lock file, installed with
  `npm ci` on first use) on the first part only (see below): at its speed the whole corpus would take most
  of an hour; its MiB/s and recall are measured on that part;
- coffer scan git over this repository's own history.
For each: MiB/s (wall clock, best of BENCH_SCAN_ROUNDS runs, default 5, with their median; the files are in
the page cache after generation; coffer scan with its compiled-rules cache, filled by the first run, and with
--no-cache) and MiB per CPU-second (user + system: less sensitive to other load on the machine),
planted secrets found and missed (recall), and findings on the clean corpus (false positives). ripgrep runs on
the first BENCH_SCAN_PART_MIB MiB (default 64) too: its engine is slow with this alternation (under 1 MiB/s),
and coffer scan is measured on that part as well. Prints the table and writes bench/results/scan.txt and scan.json.
With BENCH_SCAN_BASELINE set to another coffer binary (a build of an older commit, say), that binary is measured
on the same corpus right after this one (2 threads and 1 thread, with its recall and false positives): a
before/after comparison in one run, under the same load. The load averages (1, 5 and 15 minutes) at the start and
at the end of the run are printed and kept in scan.json.

    python3 bench/scan.py BUILD_DIR
    BENCH_SCAN_BASELINE=/tmp/coffer-old BENCH_SCAN_PART_MIB=16 python3 bench/scan.py BUILD_DIR
"""

import base64
import json
import os
import random
import re
import resource
import shutil
import string
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
NPM_DIR = os.path.join(ROOT, "bench", "scan-npm")
FILE_MIB = 4
PLANTS_PER_FILE = 4

ALNUM = string.ascii_letters + string.digits
WORDS = ("account user order invoice payment cache session request handler config server client queue "
         "worker report export import render widget layout buffer stream parser token_count retry "
         "timeout metrics logger router schema record field value index").split()


def gen(rng, alphabet, n):
    return "".join(rng.choice(alphabet) for _ in range(n))


# Planted secrets: (rule, function making (line, secret)). Shapes as tests/unit/scan_test.c makes them.
def p_github(r):
    s = "ghp_" + gen(r, ALNUM, 36)
    return "    GITHUB_TOKEN: '%s'" % s, s


def p_aws(r):
    s = "AKIA" + gen(r, string.ascii_uppercase + "234567", 16)
    return "aws_access_key_id = %s" % s, s


def p_entra(r):
    s = gen(r, ALNUM, 3) + gen(r, string.digits, 1) + "Q~" + gen(r, ALNUM + "_~.-", 34)
    return "  clientSecret: \"%s\"," % s, s


def p_storage(r):
    s = gen(r, ALNUM + "+/", 86) + "=="
    return "conn = \"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=%s;\"" % s, s


def p_slack(r):
    s = "xoxb-" + gen(r, string.digits, 11) + "-" + gen(r, string.digits, 12) + "-" + gen(r, ALNUM, 24)
    return "SLACK = '%s'" % s, s


def p_stripe(r):
    s = "sk_live_" + gen(r, ALNUM, 24)
    return "stripe.api_key = \"%s\"" % s, s


def p_gitlab(r):
    s = "glpat-" + gen(r, ALNUM + "_-", 20)
    return "gitlab_token=%s" % s, s


def p_gcp(r):
    s = "AIza" + gen(r, ALNUM + "_-", 35)
    return "const key = '%s';" % s, s


def p_pem(r):
    return "-----BEGIN RSA PRIVATE KEY-----", "-----BEGIN RSA PRIVATE KEY-----"


def p_jwt(r):
    s = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ" + gen(r, ALNUM + "_-", 30) + "." + gen(r, ALNUM + "_-", 43)
    return "Authorization: Bearer %s" % s, s


def p_pg(r):
    s = gen(r, ALNUM, 16)
    return "DATABASE_URL = \"postgres://app:%s@db.internal:5432/app\"" % s, s


def p_password(r):
    s = gen(r, ALNUM, 20)
    return "    db_password = \"%s\"" % s, s


def p_coffer(r):
    s = "cfcs_" + gen(r, ALNUM + "_-", 43)
    return "COFFER_CLIENT_SECRET=%s" % s, s


def p_ado(r):
    s = gen(r, "abcdefghijklmnopqrstuvwxyz234567", 52)
    return "AZURE_DEVOPS_PAT=%s" % s, s


PLANTS = [p_github, p_aws, p_entra, p_storage, p_slack, p_stripe, p_gitlab, p_gcp, p_pem, p_jwt, p_pg,
          p_password, p_coffer, p_ado]


def clean_line(r):
    w = lambda: r.choice(WORDS)
    n = lambda: r.randrange(1, 5000)
    kind = r.randrange(16)
    if kind == 0:
        return "    def %s_%d(self, %s_%d):" % (w(), n(), w(), n())
    if kind == 1:
        return "        return self._%s.get(\"%s_%d\", None)" % (w(), w(), n())
    if kind == 2:
        return "// TODO: refactor %s handling in %s.c (see %s_%d)" % (w(), w(), w(), n())
    if kind == 3:
        return "const %sConfig = { timeout: %d, retries: %d };" % (w(), n(), n())
    if kind == 4:
        return "# sha256 %s" % gen(r, "0123456789abcdef", 64)
    if kind == 5:
        return "commit %s" % gen(r, "0123456789abcdef", 40)
    if kind == 6:
        return "    id = \"%08x-%04x-%04x-%04x-%012x\"" % (r.getrandbits(32), r.getrandbits(16), r.getrandbits(16),
                                                      r.getrandbits(16), r.getrandbits(48))
    if kind == 7:
        return "    password = os.environ[\"%s_PASSWORD\"]" % w().upper()
    if kind == 8:
        return "    token = request.headers.get(\"Authorization\")"
    if kind == 9:
        return "<img src=\"data:image/png;base64,%s\">" % base64.b64encode(r.randbytes(60)).decode()
    if kind == 10:
        return "url = \"https://%s.example.com/%s/%d\"" % (w(), w(), n())
    if kind == 11:
        return "    if (%s && %s.length > %d) {" % (w(), w(), n())
    if kind == 12:
        return "    \"%s\": \"%s %s %s\"," % (w(), w(), w(), w())
    if kind == 13:
        return "import %s.%s as %s" % (w(), w(), w())
    if kind == 14:
        return "    %s_password = get_password(\"%s\")" % (w(), w())
    return "    }"


def make_block(r, size):
    """About size bytes of clean lines, as a list of byte strings with their newlines."""
    lines, total = [], 0
    while total < size:
        line = (clean_line(r) + "\n").encode()
        lines.append(line)
        total += len(line)
    return lines


def write_corpus(directory, mib, r, block, plant):
    """Writes mib MiB in FILE_MIB files; returns the planted [(path, line, secret)]."""
    truth = []
    os.makedirs(directory)
    nfiles = max(1, mib // FILE_MIB)
    for i in range(nfiles):
        rot = r.randrange(len(block))
        lines = block[rot:] + block[:rot]
        path = os.path.join(directory, "d%02d" % (i % 16), "file%04d.src" % i)
        if plant:
            positions = sorted(r.sample(range(len(lines)), PLANTS_PER_FILE))
            for k, pos in enumerate(reversed(positions)):
                maker = PLANTS[(i * PLANTS_PER_FILE + k) % len(PLANTS)]
                text, secret = maker(r)
                lines.insert(pos, (text + "\n").encode())
                truth.append([path, pos + 1, maker.__name__[2:], secret])
            # the later insertions moved nothing before them: recompute lines from the final list
            index = {id(line): n + 1 for n, line in enumerate(lines)}
            del index
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(b"".join(lines))
    if plant:
        # positions were taken before insertion, in descending order: each planted line's final number is its
        # position plus the plants above it in the same file
        fixed = []
        by_file = {}
        for t in truth:
            by_file.setdefault(t[0], []).append(t)
        for path, items in by_file.items():
            items.sort(key=lambda t: t[1])
            for k, t in enumerate(items):
                fixed.append([path, t[1] + k, t[2], t[3]])
        truth = fixed
    return truth


def strip_lookarounds(regex):
    """regex without its (?<!...), (?<=...), (?!...) and (?=...) groups (ripgrep's default engine has none)."""
    out, i = [], 0
    while i < len(regex):
        if regex.startswith(("(?<!", "(?<=", "(?!", "(?="), i):
            depth, j = 0, i
            in_class = False
            while j < len(regex):
                c = regex[j]
                if c == "\\":
                    j += 2
                    continue
                if in_class:
                    in_class = c != "]"
                elif c == "[":
                    in_class = True
                    if regex[j + 1:j + 2] == "]":
                        j += 1
                elif c == "(":
                    depth += 1
                elif c == ")":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            i = j + 1
            continue
        out.append(regex[i])
        i += 1
    return "".join(out)


def builtin_regexes():
    """The built-in rules' regular expressions, read from src/scan/rules.c's table."""
    src = open(os.path.join(ROOT, "src", "scan", "rules.c")).read()
    start = src.index("builtins[] = {")
    table = src[start:src.index("\n};", start)]
    regexes = []
    for entry in re.finditer(r'\{"([a-z0-9-]+)",\s*"[^"]*",\s*((?:"(?:[^"\\]|\\.)*"\s*)+)', table):
        parts = re.findall(r'"((?:[^"\\]|\\.)*)"', entry.group(2))
        text = "".join(parts)
        regexes.append((entry.group(1), text.encode().decode("unicode_escape")))
    return regexes


def timed(cmd, cwd=None, env=None, timeout=3600):
    """(wall seconds, process); the process's CPU seconds (user + system) in proc.cpu."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, timeout=timeout)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc.cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, proc


def best(rounds, cmd, **kw):
    """The fastest of rounds runs, as timed() gives it, with the median wall time in proc.median."""
    runs = [timed(cmd, **kw) for _ in range(rounds)]
    walls = sorted(run[0] for run in runs)
    fastest = min(runs, key=lambda run: run[0])
    fastest[1].median = walls[len(walls) // 2]
    return fastest


def score(truth, hits):
    """(found, missed) of truth's (path, line) in hits, a set of (path, line)."""
    found = sum(1 for t in truth if (t[0], t[1]) in hits)
    return found, len(truth) - found


def coffer_hits(out):
    data = json.loads(out)
    return {(os.path.normpath(f["path"]), f["line"]) for f in data["findings"]}, len(data["findings"])


def rg_hits(out, root):
    hits = set()
    for line in out.decode("utf-8", "replace").splitlines():
        m = re.match(r"^(.*?):(\d+):", line)
        if m:
            hits.add((os.path.normpath(m.group(1)), int(m.group(2))))
    return hits, len(hits)


def secretlint_hits(out):
    hits = set()
    try:
        data = json.loads(out)
    except ValueError:
        return hits, 0
    count = 0
    for result in data:
        for m in result.get("messages", []):
            count += 1
            hits.add((os.path.normpath(result["filePath"]), m["loc"]["start"]["line"]))
    return hits, count


def main():
    if len(sys.argv) != 2:
        print("usage: python3 bench/scan.py BUILD_DIR", file=sys.stderr)
        return 2
    coffer = os.path.abspath(os.path.join(sys.argv[1], "coffer"))
    if not os.access(coffer, os.X_OK):
        print("bench/scan.py: %s is missing: build first" % coffer, file=sys.stderr)
        return 1
    mib = int(os.environ.get("BENCH_SCAN_MIB", "1024"))
    part_mib = int(os.environ.get("BENCH_SCAN_PART_MIB", "64"))
    rounds = int(os.environ.get("BENCH_SCAN_ROUNDS", "5"))
    rng = random.Random(int(os.environ.get("BENCH_SCAN_SEED", "7")))
    baseline = os.environ.get("BENCH_SCAN_BASELINE")
    if baseline and not os.access(baseline, os.X_OK):
        print("bench/scan.py: BENCH_SCAN_BASELINE=%s is not an executable" % baseline, file=sys.stderr)
        return 1
    load_start = os.getloadavg()
    work = tempfile.mkdtemp(prefix="coffer-scan-bench-")
    rows, notes = [], []
    try:
        t0 = time.monotonic()
        block = make_block(rng, FILE_MIB * 1024 * 1024)
        corpus, clean = os.path.join(work, "corpus"), os.path.join(work, "clean")
        truth = write_corpus(corpus, mib, rng, block, True)
        write_corpus(clean, max(FILE_MIB, mib // 4), rng, block, False)
        corpus_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(corpus) for f in fs)
        clean_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(clean) for f in fs)
        print("scan bench: corpus %.0f MiB (%d planted secrets), clean %.0f MiB, made in %.0f s"
              % (corpus_bytes / 2**20, len(truth), clean_bytes / 2**20, time.monotonic() - t0), flush=True)

        def add(tool, seconds, nbytes, found, missed, fp, note="", cpu=None):
            rows.append({"tool": tool, "seconds": round(seconds, 3), "mib": round(nbytes / 2**20, 1),
                         "mib_per_s": round(nbytes / 2**20 / seconds, 1) if seconds else None,
                         "mib_per_cpu_s": round(nbytes / 2**20 / cpu, 1) if cpu else None,
                         "found": found, "missed": missed, "false_positives": fp, "note": note})

        # coffer scan (and the baseline binary, on the same corpus)
        # the compiled-rules cache: a directory of this run's own; the first run fills it
        cache_env = dict(os.environ, XDG_CACHE_HOME=os.path.join(work, "cache"))

        def coffer_rows(binary, label, note=""):
            secs, proc = best(rounds, [binary, "scan", "--output", "json", "."], cwd=corpus, env=cache_env)
            first_note = ("compiled rules cached; median of %d runs %.0f MiB/s" %
                          (rounds, corpus_bytes / 2**20 / proc.median) + ("; " + note if note else ""))
            if proc.returncode not in (0, 1):
                raise SystemExit("%s scan failed: %s" % (binary, proc.stderr.decode()[-2000:]))
            hits, _ = coffer_hits(proc.stdout)
            found, missed = score([[os.path.relpath(t[0], corpus), t[1]] for t in truth],
                                  {(os.path.normpath(p), l) for p, l in hits})
            _, cproc = timed([binary, "scan", "--output", "json", "."], cwd=clean, env=cache_env)
            add("%s (%d rules, %d threads)" % (label, len(builtin_regexes()), os.cpu_count() or 1), secs,
                corpus_bytes, found, missed, coffer_hits(cproc.stdout)[1], first_note, cpu=proc.cpu)
            # the same with the rules compiled at every run (a first run, or a CI agent without a cache)
            secs0, proc0 = best(rounds, [binary, "scan", "--no-cache", "--output", "json", "."], cwd=corpus)
            if proc0.returncode in (0, 1):
                add("%s --no-cache" % label, secs0, corpus_bytes, None, None, None,
                    "rules compiled at start; median of %d runs %.0f MiB/s"
                    % (rounds, corpus_bytes / 2**20 / proc0.median), cpu=proc0.cpu)
            missed_rules = sorted({t[2] for t in truth
                                   if (os.path.relpath(t[0], corpus), t[1]) not in
                                   {(os.path.normpath(p), l) for p, l in hits}})
            if missed_rules:
                notes.append("%s missed planted: %s" % (label, ", ".join(missed_rules)))
            secs1, proc1 = timed([binary, "scan", "--threads", "1", "--output", "json", "."], cwd=corpus,
                                 env=cache_env)
            add("%s, 1 thread" % label, secs1, corpus_bytes, None, None, None, note, cpu=proc1.cpu)

        coffer_rows(coffer, "coffer scan")
        if baseline:
            coffer_rows(baseline, "baseline coffer scan", "BENCH_SCAN_BASELINE=" + baseline)

        # the part of the corpus the slower tools get: its first files
        part = os.path.join(work, "part")
        os.makedirs(part)
        part_truth, part_bytes = [], 0
        files = sorted(os.path.join(d, f) for d, _, fs in os.walk(corpus) for f in fs)
        for f in files[:max(1, part_mib // FILE_MIB)]:
            rel = os.path.relpath(f, corpus)
            os.makedirs(os.path.join(part, os.path.dirname(rel)), exist_ok=True)
            os.link(f, os.path.join(part, rel))
            part_bytes += os.path.getsize(f)
            part_truth += [[rel, t[1]] for t in truth if t[0] == f]
        cpart = os.path.join(work, "cpart")
        os.makedirs(cpart)
        cfiles = sorted(os.path.join(d, f) for d, _, fs in os.walk(clean) for f in fs)
        for f in cfiles[:max(1, part_mib // FILE_MIB)]:
            os.link(f, os.path.join(cpart, os.path.basename(f)))
        secs, proc = best(rounds, [coffer, "scan", "--output", "json", "."], cwd=part, env=cache_env)
        hits, _ = coffer_hits(proc.stdout)
        found, missed = score(part_truth, hits)
        _, cproc = timed([coffer, "scan", "--output", "json", "."], cwd=cpart)
        add("coffer scan, first part", secs, part_bytes, found, missed, coffer_hits(cproc.stdout)[1],
            "first %d MiB, as the tools below" % (part_bytes // 2**20), cpu=proc.cpu)

        # ripgrep, the same rules as one alternation
        rg = shutil.which("rg")
        if rg:
            alternation = "|".join("(?:%s)" % strip_lookarounds(rx) for _, rx in builtin_regexes())
            cmd = [rg, "--no-config", "-n", "--no-heading", "--with-filename", "-e", alternation, "."]
            secs, proc = timed(cmd, cwd=part)
            if proc.returncode not in (0, 1):
                notes.append("ripgrep failed: " + proc.stderr.decode()[-500:])
            else:
                hits, _ = rg_hits(proc.stdout, part)
                found, missed = score(part_truth, hits)
                _, cproc = timed(cmd, cwd=cpart)
                add("ripgrep %s (one alternation)" % subprocess.run([rg, "--version"], capture_output=True,
                                                                     text=True).stdout.split()[1],
                    secs, part_bytes, found, missed, rg_hits(cproc.stdout, cpart)[1],
                    "first %d MiB; lookarounds dropped; FP as lines" % (part_bytes // 2**20), cpu=proc.cpu)
        else:
            notes.append("ripgrep not installed (sh scripts/deps.sh): left out")

        # secretlint on the first part of the corpus
        npx = shutil.which("npx")
        if npx and shutil.which("npm"):
            if not os.path.exists(os.path.join(NPM_DIR, "node_modules", ".bin", "secretlint")):
                subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NPM_DIR,
                               check=True, timeout=600)
            with open(os.path.join(part, ".secretlintrc.json"), "w") as f:
                json.dump({"rules": [{"id": "@secretlint/secretlint-rule-preset-recommend"}]}, f)
            bin_ = os.path.join(NPM_DIR, "node_modules", ".bin", "secretlint")
            env = dict(os.environ, NODE_PATH=os.path.join(NPM_DIR, "node_modules"))
            # --output: node cuts a large answer written to a pipe at exit
            report = os.path.join(work, "secretlint.json")
            secs, proc = timed([bin_, "--format", "json", "--output", report, "--secretlintrc",
                                ".secretlintrc.json", "--secretlintignore", "/dev/null", "**/*.src"], cwd=part,
                               env=env, timeout=3600)
            with open(report, "rb") as f:
                hits, _ = secretlint_hits(f.read())
            if proc.returncode not in (0, 1):
                notes.append("secretlint failed: " + proc.stderr.decode()[-500:])
            hits = {(os.path.relpath(p, part) if os.path.isabs(p) else p, l) for p, l in hits}
            found, missed = score(part_truth, hits)
            shutil.copy(os.path.join(part, ".secretlintrc.json"), cpart)
            creport = os.path.join(work, "secretlint-clean.json")
            timed([bin_, "--format", "json", "--output", creport, "--secretlintrc", ".secretlintrc.json",
                   "--secretlintignore", "/dev/null", "*.src"], cwd=cpart, env=env, timeout=3600)
            version = subprocess.run([bin_, "--version"], capture_output=True, text=True, env=env).stdout.strip()
            with open(creport, "rb") as f:
                clean_count = secretlint_hits(f.read())[1]
            add("secretlint %s (recommended preset)" % version, secs, part_bytes, found, missed, clean_count,
                "first %d MiB" % (part_bytes // 2**20), cpu=proc.cpu)
        else:
            notes.append("node/npm not installed: secretlint left out")

        # this repository's history
        if os.path.isdir(os.path.join(ROOT, ".git")) or os.path.isfile(os.path.join(ROOT, ".git")):
            secs, proc = best(rounds, [coffer, "scan", "git", "--output", "json", ROOT], env=cache_env)
            if proc.returncode in (0, 1):
                summary = json.loads(proc.stdout)["summary"]
                add("coffer scan git (%d commits of this repository)" % summary["commits"], secs,
                    summary["bytes"], summary["findings"], None, None, "added lines; libgit2 diffs", cpu=proc.cpu)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()
    lines = ["coffer scan benchmark, %s, %d cores, load average %.1f (other work on the machine counts)"
             % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.cpu_count() or 1, load[0]),
             "load averages (1, 5, 15 min): %.1f %.1f %.1f at the start, %.1f %.1f %.1f at the end"
             % (load_start + load),
             "",
             "%-44s %7s %8s %8s %9s %6s %6s %6s" % ("tool", "MiB", "seconds", "MiB/s", "MiB/CPU-s", "found",
                                                      "missed", "FP")]
    for row in rows:
        lines.append("%-44s %7s %8s %8s %9s %6s %6s %6s  %s" % (
            row["tool"][:44], row["mib"], row["seconds"], row["mib_per_s"], row["mib_per_cpu_s"] or "",
            "" if row["found"] is None else row["found"], "" if row["missed"] is None else row["missed"],
            "" if row["false_positives"] is None else row["false_positives"], row["note"]))
    first = rows[0] if rows else {}
    goal = first.get("mib_per_s") or 0
    lines.append("")
    lines.append("goal: >= 1024 MiB/s with all rules: %s (%.0f MiB/s); recall 100%% on planted secrets: %s"
                 % ("met" if goal >= 1024 else "MISSED", goal,
                    "met" if first.get("missed") == 0 else "MISSED"))
    if first.get("mib_per_cpu_s"):
        lines.append("at %.0f MiB per CPU-second, %d idle cores would give about %.0f MiB/s"
                     % (first["mib_per_cpu_s"], os.cpu_count() or 1, first["mib_per_cpu_s"] * (os.cpu_count() or 1)))
    lines += notes
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "scan.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(RESULTS, "scan.json"), "w") as f:
        json.dump({"rows": rows, "notes": notes, "load": load[0], "load_start": list(load_start),
                   "load_end": list(load)}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
