"""Runs the Infisical SDK compatibility checks (compat.mjs) against a real Coffer server:

    COFFER_BIN=build/coffer python3 tests/compat/run.py [-v]

1. Without `node` on PATH the suite is skipped, loudly: one skipped test, with the reason.
2. Installs the pinned packages with `npm ci` (package.json + package-lock.json) into a fresh temporary
   directory, so that concurrent runs and stale node_modules cannot interfere; npm's cache makes repeated
   runs fast. An install failure is a test failure.
3. Starts `coffer server` with the integration harness (ephemeral port, temporary data directory, bootstrap
   admin token), runs `node compat.mjs` against it, prints its failing lines and its "NOTE ..." figures (every line
   with -v) and one
   summary line, then stops the server (a server that
   died, exited non-zero or printed a sanitizer report is one more failure).
The last line is `RESULT passed=N failed=N skipped=N`, as for tests/integration/run.py; exit status 1 when
anything failed. Python standard library only.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import harness  # noqa: E402

NPM_TIMEOUT = float(os.environ.get("COMPAT_NPM_TIMEOUT", "300"))
NODE_TIMEOUT = float(os.environ.get("COMPAT_NODE_TIMEOUT", "180"))
VERBOSE = "-v" in sys.argv[1:]


def result(passed, failed, skipped):
    print("RESULT passed=%d failed=%d skipped=%d" % (passed, failed, skipped), flush=True)
    sys.exit(1 if failed else 0)


def indent(text):
    return "\n".join("    | " + line for line in text.rstrip().splitlines())


def main():
    run_suite(HERE, "compat", "compat.mjs", "@infisical/sdk")


def run_suite(here, label, script, what, server_env=None, prepare=None):
    """Runs the Node script of directory `here` (with its pinned packages) against a fresh server (started with
    server_env); label prefixes the report lines, what names the suite in its summary line. prepare, when
    given, is called with the started server and returns more environment for the script (it may restart the
    server). Exits with the suite's result."""
    node = shutil.which("node")
    if not node:
        print("  %s SKIPPED: node is not installed (the checks need Node 20 and npm)" % label, flush=True)
        result(0, 0, 1)
    npm = shutil.which("npm")
    if not npm:
        print("  %s: node is installed but npm is not: cannot install %s" % (label, what), flush=True)
        result(0, 1, 0)
    if not os.access(harness.COFFER_BIN, os.X_OK):
        print("  %s: no coffer binary at %s (set COFFER_BIN)" % (label, harness.COFFER_BIN), flush=True)
        result(0, 1, 0)

    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="coffer-%s-" % label)
    server = None
    try:
        # the script with the modules it imports (the other .mjs files of its directory)
        modules = sorted(f for f in os.listdir(here) if f.endswith(".mjs") and f != script)
        for name in ["package.json", "package-lock.json", script] + modules:
            shutil.copy(os.path.join(here, name), work)
        env = dict(os.environ, npm_config_update_notifier="false", npm_config_fund="false",
                   npm_config_audit="false")
        try:
            npm_run = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=work,
                                     env=env, capture_output=True, text=True, timeout=NPM_TIMEOUT)
            npm_rc, npm_out = npm_run.returncode, npm_run.stdout + npm_run.stderr
        except subprocess.TimeoutExpired:
            npm_rc, npm_out = "timeout", "npm ci did not finish within %ds" % NPM_TIMEOUT
        if npm_rc != 0:
            print("  %s: npm ci failed (%s):\n%s" % (label, npm_rc, indent(npm_out[-3000:])), flush=True)
            result(0, 1, 0)

        server = harness.Server(env=server_env)
        server.start()
        extra_env = prepare(server) if prepare else {}
        node_env = dict(os.environ, COFFER_URL=server.url, COFFER_ADMIN_TOKEN=server.token,
                        COFFER_BIN=os.path.abspath(harness.COFFER_BIN), **extra_env)
        try:
            run = subprocess.run([node, script], cwd=work, env=node_env, capture_output=True, text=True,
                                 timeout=NODE_TIMEOUT)
            out, rc = run.stdout + run.stderr, run.returncode
        except subprocess.TimeoutExpired as e:
            out = ((e.stdout or b"").decode("utf-8", "replace") if isinstance(e.stdout, bytes) else (e.stdout or ""))
            out += "\n%s did not finish within %ds" % (script, NODE_TIMEOUT)
            rc = "timeout"
        passed = failed = skipped = 0
        counted = False
        for line in out.splitlines():
            m = re.match(r"(?:COMPAT|SUITE) passed=(\d+) failed=(\d+) skipped=(\d+)", line)
            if m:
                passed, failed, skipped = (int(x) for x in m.groups())
                counted = True
        if not counted or (rc != 0 and failed == 0):
            failed += 1
            print("  %s: %s exited %s without a complete result" % (label, script, rc), flush=True)
        # A "SENT [...]" line lists credentials (or their tails) the script sent: none may be in the server log.
        for line in out.splitlines():
            if line.startswith("SENT "):
                leaked = [t for t in json.loads(line[5:]) if t and t in server.stderr + server.stdout]
                if leaked:
                    failed += 1
                    print("  %s: %d credential(s) the script sent appear in the server log" % (label, len(leaked)),
                          flush=True)
                else:
                    passed += 1
        lines = [l for l in out.splitlines() if not l.startswith(("COMPAT ", "SUITE ", "SENT "))]
        if not VERBOSE and not failed:  # only the figures a script reports ("NOTE ...")
            lines = [l for l in lines if l.startswith("NOTE ")]
        elif not VERBOSE:  # the failures, and whatever else the script printed (crashes, stack traces)
            lines = [l for l in lines if not l.startswith("ok - ")]
        if lines:
            print(indent("\n".join(lines)), flush=True)

        was_alive = server.alive()
        code = server.stop()
        report = server.sanitizer_report()
        if report or not was_alive or code != 0:
            failed += 1
            print("  %s: the server %s:\n%s" % (label,
                "printed a sanitizer report" if report else "died" if not was_alive else "exited %s" % code,
                indent((report or server.stderr)[-4000:])), flush=True)
        print("  %s %-23s %d passed, %d failed%s (%.1fs)" % (
            label, what, passed, failed, ", %d skipped" % skipped if skipped else "",
            time.monotonic() - started), flush=True)
        result(passed, failed, skipped)
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
