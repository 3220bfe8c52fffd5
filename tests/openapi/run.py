"""Validates real answers of a running Coffer server against its own OpenAPI document (openapi.mjs, Ajv):

    COFFER_BIN=build/coffer python3 tests/openapi/run.py [-v]

Installs the pinned packages (package.json + package-lock.json: ajv, ajv-formats) with `npm ci` in a temporary
directory, starts `coffer server` with the integration harness (ephemeral port), runs `node openapi.mjs` against it
and stops the server, exactly as tests/compat/run.py does (its run_suite); without node the suite is one skipped
test, saying why. The last line is `RESULT passed=N failed=N skipped=N`; exit status 1 when anything failed.
"""

import importlib.util
import os

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("compat_run", os.path.join(os.path.dirname(HERE), "compat", "run.py"))
compat = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compat)


def main():
    compat.run_suite(HERE, "openapi", "openapi.mjs", "answers vs the document")


if __name__ == "__main__":
    main()
