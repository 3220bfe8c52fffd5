"""Runs the JWT-auth suite with real tokens (jose.mjs: tokens minted with the npm `jose` library) against a real
Coffer server, with the runner of the SDK compatibility suite (tests/compat/run.py):

    COFFER_BIN=build/coffer python3 tests/jose/run.py [-v]

Skipped loudly without node; `npm ci` of the pinned `jose` into a temporary directory; the last line is
`RESULT passed=N failed=N skipped=N`. Besides the script's checks, one more: none of the JWTs it sent appears in
the server's log.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "compat"))

import run as compat  # noqa: E402

if __name__ == "__main__":
    # The negative catalogue fails many logins of one identity on purpose: no lockout here (the throttle has its
    # own tests in tests/integration/test_jwt_auth.py).
    compat.run_suite(HERE, "jose", "jose.mjs", "jose JWT auth", server_env={"COFFER_LOGIN_MAX_FAILURES": "100000"})
