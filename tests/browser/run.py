"""Runs the web dashboard's browser tests (browser.mjs) against a real Coffer server:

    COFFER_BIN=build/coffer python3 tests/browser/run.py [-v]

The run is tests/compat/run.py's (pinned packages installed with `npm ci` into a temporary directory, a real
`coffer server` from the integration harness, the script's failing lines and a summary, the server checked for
sanitizer reports and for the credentials the script sent), with Debian's Chromium as the browser:
1. Without Chromium (/usr/bin/chromium, or CHROMIUM=path) the suite is skipped, loudly: one skipped test with the
   reason. A browser is never downloaded.
2. Screenshots of every page at 1280x800 and 390x844 are written to COFFER_SCREENSHOTS (default: a new
   temporary directory, kept); the script prints where, and the overview's time to interactive.
The last line is `RESULT passed=N failed=N skipped=N`; exit status 1 when anything failed.
"""

import importlib.util
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("compat_run", os.path.join(os.path.dirname(HERE), "compat", "run.py"))
compat = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compat)

# Seeding 1,500 secrets and several Argon2id sign-ins take a while under the sanitizers.
compat.NODE_TIMEOUT = float(os.environ.get("BROWSER_NODE_TIMEOUT", "600"))


def main():
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not (os.path.isfile(chromium) and os.access(chromium, os.X_OK)):
        print("  browser SKIPPED: NO CHROMIUM at %s: install Debian's package (apt-get install chromium; "
              "scripts/deps.sh does) or set CHROMIUM; the dashboard was NOT tested in a browser" % chromium,
              flush=True)
        compat.result(0, 0, 1)
    node = shutil.which("node")
    if node:
        version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
        if int(version.lstrip("v").split(".")[0] or 0) < 20:
            print("  browser SKIPPED: playwright-core needs Node 20 or later, this is %s" % version, flush=True)
            compat.result(0, 0, 1)
    compat.run_suite(HERE, "browser", "browser.mjs", "dashboard in Chromium")


if __name__ == "__main__":
    main()
