"""Runs Coffer's integration suites (tests/integration/test_*.py) and prints one line per suite plus a
machine-readable total for scripts/test.sh:

    python3 tests/integration/run.py [--jobs N] [--timeout S] [-v] [suite ...]

Each suite (module) runs in its own Python process (its own session, so a suite that times out is killed
together with the servers it started); up to --jobs suites run at once. Failure details are printed after the
suite's line. The last line is `RESULT passed=N failed=N skipped=N`. Exit status 1 when anything failed.
COFFER_BIN selects the binary (see harness.py).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
MARK = "@@ITEST-RESULT@@ "


def run_one(name, verbose):
    """Child mode: runs one module, prints unittest's report to stdout and a MARK line with the counts."""
    sys.path.insert(0, HERE)
    loader = unittest.TestLoader()
    try:
        suite = loader.loadTestsFromName(name)
    except Exception as e:  # an import error is one failure
        print("cannot load %s: %r" % (name, e))
        print(MARK + json.dumps({"passed": 0, "failed": 1, "skipped": 0, "failures": [name]}))
        return 1
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2 if verbose else 1).run(suite)
    bad = result.failures + result.errors + [(t, "unexpected success") for t in result.unexpectedSuccesses]
    # A test can fail and then also error in tearDown: count it once. Class-level errors (setUpClass,
    # tearDownClass) are not TestCases and not in testsRun; each counts as one failure.
    failed_ids = []
    for t, _ in bad:
        t = getattr(t, "test_case", t)  # a subTest counts as its test
        tid = t.id() if hasattr(t, "id") else str(t)
        if tid not in failed_ids:
            failed_ids.append(tid)
    failed_tests = {getattr(t, "test_case", t).id() for t, _ in bad if isinstance(t, unittest.TestCase)}
    passed = result.testsRun - len(failed_tests) - len(result.skipped)
    print(MARK + json.dumps({"passed": max(passed, 0), "failed": len(failed_ids), "skipped": len(result.skipped),
                             "failures": failed_ids}))
    return 0 if not bad else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("ITEST_JOBS", "2")))
    ap.add_argument("--timeout", type=float, default=float(os.environ.get("ITEST_SUITE_TIMEOUT", "240")))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("suites", nargs="*")
    a = ap.parse_args()
    if a.child:
        sys.exit(run_one(a.child, a.verbose))

    # Children run in this directory: make a relative COFFER_BIN absolute first.
    if os.environ.get("COFFER_BIN"):
        os.environ["COFFER_BIN"] = os.path.abspath(os.environ["COFFER_BIN"])
    sys.path.insert(0, HERE)
    import harness
    if not os.access(harness.COFFER_BIN, os.X_OK):
        print("no coffer binary at %s (set COFFER_BIN)" % harness.COFFER_BIN)
        print("RESULT passed=0 failed=1 skipped=0")
        sys.exit(1)

    names = a.suites or sorted(f[:-3] for f in os.listdir(HERE) if f.startswith("test_") and f.endswith(".py"))
    names = [n[:-3] if n.endswith(".py") else os.path.basename(n) for n in names]
    pending = list(names)
    running = {}
    results = {}
    while pending or running:
        while pending and len(running) < max(1, a.jobs):
            n = pending.pop(0)
            out = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), "itest-%d-%s.log" % (os.getpid(), n)), "w+")
            cmd = [sys.executable, os.path.abspath(__file__), "--child", n] + (["-v"] if a.verbose else [])
            p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=HERE, start_new_session=True)
            running[n] = (p, out, time.monotonic())
        time.sleep(0.05)
        for n, (p, out, started) in list(running.items()):
            timed_out = p.poll() is None and time.monotonic() - started > a.timeout
            if timed_out:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            if p.poll() is None:
                continue
            del running[n]
            out.seek(0)
            text = out.read()
            out.close()
            os.unlink(out.name)
            counts = None
            for line in text.splitlines():
                if line.startswith(MARK):
                    counts = json.loads(line[len(MARK):])
            if counts is None:
                counts = {"passed": 0, "failed": 1, "skipped": 0,
                          "failures": ["%s (%s)" % (n, "timed out after %ds" % a.timeout if timed_out
                                                    else "runner exited %s without a result" % p.returncode)]}
            results[n] = (counts, text, time.monotonic() - started)
            try:  # servers left behind by a crashed child
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            line = "  integration %-18s %d passed, %d failed" % (n, counts["passed"], counts["failed"])
            if counts["skipped"]:
                line += ", %d skipped" % counts["skipped"]
            print(line + " (%.1fs)" % results[n][2], flush=True)
            if counts["failed"] or a.verbose:
                body = "\n".join(l for l in text.splitlines() if not l.startswith(MARK))
                print("\n".join("    | " + l for l in body.splitlines()[-400:]), flush=True)

    total = {"passed": 0, "failed": 0, "skipped": 0}
    for counts, _, _ in results.values():
        for k in total:
            total[k] += counts[k]
    print("RESULT passed=%d failed=%d skipped=%d" % (total["passed"], total["failed"], total["skipped"]))
    sys.exit(1 if total["failed"] else 0)


if __name__ == "__main__":
    main()
