"""Runs the web dashboard's browser tests (browser.mjs) against a real Coffer server:

    COFFER_BIN=build/coffer python3 tests/browser/run.py [-v]

The run is tests/compat/run.py's (pinned packages installed with `npm ci` into a temporary directory, a real
`coffer server` from the integration harness, the script's failing lines and a summary, the server checked for
sanitizer reports and for the credentials the script sent), with Debian's Chromium as the browser:
1. Without Chromium (/usr/bin/chromium, or CHROMIUM=path) the suite is skipped, loudly: one skipped test with the
   reason. A browser is never downloaded.
2. Screenshots of every page at 1280x800 and 390x844 are written to COFFER_SCREENSHOTS (default: a new
   temporary directory, kept); the script prints where, and the overview's time to interactive.
3. File syncs may write below a temporary directory (COFFER_SYNC_FILE_DIR, for the server and the script), and a
   second server with single sign-on at the Entra ID stand-in (tests/fakes/entra_oidc.py, set up as
   tests/integration/test_sso.py does) is named to the script in COFFER_SSO_URL, COFFER_SSO_FAKE_URL and
   COFFER_SSO_TENANT; its sanitizer report, if any, fails the run.
The last line is `RESULT passed=N failed=N skipped=N`; exit status 1 when anything failed.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("compat_run", os.path.join(os.path.dirname(HERE), "compat", "run.py"))
compat = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compat)
harness = compat.harness
import test_sso  # noqa: E402  (tests/integration is on the path through compat)
import test_syncs  # noqa: E402

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
    # File syncs write below this directory (manage.mjs checks one); single sign-on is tested against a second
    # server, started with the Entra ID stand-in, since the first one checks the sign-in page without SSO.
    sync_dir = tempfile.mkdtemp(prefix="coffer-browser-sync-")
    os.environ["COFFER_SYNC_FILE_DIR"] = sync_dir
    fake = sso = None
    try:
        fake, sso = start_sso()
        os.environ.update(COFFER_SSO_URL=sso.url, COFFER_SSO_FAKE_URL=fake.url, COFFER_SSO_TENANT=test_sso.TENANT)
        compat.run_suite(HERE, "browser", "browser.mjs", "dashboard in Chromium",
                         server_env={"COFFER_SYNC_FILE_DIR": sync_dir})
    finally:
        if sso is not None:
            report = sso.sanitizer_report()
            sso.stop()
            sso.cleanup()
            if report:
                print("  browser: the single sign-on server printed a sanitizer report:\n%s" % compat.indent(report),
                      flush=True)
                compat.result(0, 1, 0)
        if fake is not None:
            fake.close()
        shutil.rmtree(sync_dir, ignore_errors=True)


def start_sso():
    """The Entra ID stand-in and a server whose single sign-on goes to it (as tests/integration/test_sso.py
    starts them): returns (fake, server)."""
    fake = test_syncs.Fake("entra_oidc.py")
    try:
        port = harness.free_port()
        callback = "http://127.0.0.1:%d%s" % (port, test_sso.CALLBACK)
        fake.call("POST", "/_fake/entra/apps", {"tenant": test_sso.TENANT, "clientId": test_sso.CLIENT_ID,
                                                 "secret": test_sso.SECRET, "redirectUris": [callback]})
        secret_file = os.path.join(fake.dir, "client-secret")
        with open(secret_file, "w") as f:
            f.write(test_sso.SECRET + "\n")
        server = harness.Server(args=["--oidc-entra-tenant", test_sso.TENANT, "--oidc-entra-authority", fake.url,
                                      "--oidc-graph-url", fake.url, "--oidc-client-id", test_sso.CLIENT_ID,
                                      "--oidc-client-secret-file", secret_file, "--oidc-redirect-url", callback],
                                addr="127.0.0.1:%d" % port)
        try:
            server.start()
        except Exception:
            server.cleanup()
            raise
        return fake, server
    except Exception:
        fake.close()
        raise


if __name__ == "__main__":
    main()
