"""Validates real answers of a running Coffer server against its own OpenAPI document (openapi.mjs, Ajv):

    COFFER_BIN=build/coffer python3 tests/openapi/run.py [-v]

Installs the pinned packages (package.json + package-lock.json: ajv, ajv-formats) with `npm ci` in a temporary
directory, starts `coffer server` with the integration harness (ephemeral port), runs `node openapi.mjs` against it
and stops the server, exactly as tests/compat/run.py does (its run_suite), the server's store split into unseal
shares first (the script unseals it, and seals it at the end); without node the suite is one skipped
test, saying why. The last line is `RESULT passed=N failed=N skipped=N`; exit status 1 when anything failed.
"""

import importlib.util
import os

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("compat_run", os.path.join(os.path.dirname(HERE), "compat", "run.py"))
compat = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compat)


def split_into_shares(server):
    """Moves the server's store to 3 unseal shares (threshold 2) and restarts it, sealed, so that the script
    validates the answers of unseal and seal too; the shares go to the script (COFFER_UNSEAL_SHARES), which
    unseals the server first. The server also gets a directory for file syncs (COFFER_SYNC_FILE_DIR, given
    to the script too)."""
    server.stop()
    rc, out, err = compat.harness.run(["operator", "init", "--shares", "3", "--threshold", "2", "--data-dir",
                                       server.data_dir])
    if rc != 0:
        raise RuntimeError("coffer operator init failed: %s" % err)
    shares = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("Unseal share ")]
    # file syncs write below this directory (removed with the data directory)
    sync_dir = os.path.join(server.data_dir, "sync-files")
    os.makedirs(sync_dir, exist_ok=True)
    server.extra_env["COFFER_SYNC_FILE_DIR"] = sync_dir
    server.start()
    return {"COFFER_UNSEAL_SHARES": ",".join(shares), "COFFER_SYNC_FILE_DIR": sync_dir}


def main():
    compat.run_suite(HERE, "openapi", "openapi.mjs", "answers vs the document", prepare=split_into_shares)


if __name__ == "__main__":
    main()
