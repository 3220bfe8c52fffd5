"""Validates real answers of a running Coffer server against its own OpenAPI document (openapi.mjs, Ajv):

    COFFER_BIN=build/coffer python3 tests/openapi/run.py [-v]

Installs the pinned packages (package.json + package-lock.json: ajv, ajv-formats) with `npm ci` in a temporary
directory, starts `coffer server` with the integration harness (ephemeral port), runs `node openapi.mjs` against it
and stops the server, exactly as tests/compat/run.py does (its run_suite), the server's store split into unseal
shares first (the script unseals it, and seals it at the end), with a file-sync directory, single sign-on at
the OpenID Connect stand-in of tests/fakes, and the Entra ID stand-in there for dynamic secrets' leases; without node the suite is one skipped
test, saying why. The last line is `RESULT passed=N failed=N skipped=N`; exit status 1 when anything failed.
"""

import atexit
import importlib.util
import json
import os
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("compat_run", os.path.join(os.path.dirname(HERE), "compat", "run.py"))
compat = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compat)


# single sign-on at tests/fakes/entra_oidc.py (the application and user the script signs in with)
TENANT = "7f3c2a1e-9b4d-4c8e-a2f1-5d6e7f8a9b0c"
CLIENT_ID = "5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
SSO_USER = "sso-reader@contoso.example"


def with_sso(server):
    """Starts the OpenID Connect stand-in (stopped when this program exits) with the application and one
    user, and points the server at it, on a port chosen beforehand since the redirect URL names it. Returns
    the script's environment: the stand-in's address and the user's login."""
    from test_syncs import Fake  # noqa: E402 (the integration suites' stand-in runner)
    fake = Fake("entra_oidc.py")
    atexit.register(fake.close)
    secret = "openapi-" + os.urandom(12).hex()
    port = compat.harness.free_port()
    callback = "http://127.0.0.1:%d/api/v1/sso/oidc/callback" % port
    fake.call("POST", "/_fake/entra/apps", {"tenant": TENANT, "clientId": CLIENT_ID, "secret": secret,
                                            "redirectUris": [callback]})
    fake.call("POST", "/_fake/entra/users", {"tenant": TENANT, "login": SSO_USER, "oid": "oid-openapi",
                                             "name": "SSO Reader"})
    secret_file = os.path.join(fake.dir, "client-secret")
    with open(secret_file, "w") as f:
        f.write(secret + "\n")
    server.addr = "127.0.0.1:%d" % port
    server.args += ["--oidc-entra-tenant", TENANT, "--oidc-entra-authority", fake.url, "--oidc-graph-url",
                    fake.url, "--oidc-client-id", CLIENT_ID, "--oidc-client-secret-file", secret_file,
                    "--oidc-redirect-url", callback]
    return {"COFFER_SSO_LOGIN": SSO_USER}


def with_entra():
    """Starts the Entra ID and Microsoft Graph stand-in (stopped when this program exits) with an application
    that may manage the applications it owns and one it owns: what the azure-entra-id-app dynamic secret
    leases client secrets of. Returns the script's environment (COFFER_ENTRA: JSON of the stand-in's address,
    the tenant, the managing application's id and secret, the managed application's ids)."""
    from test_syncs import Fake  # noqa: E402
    fake = Fake("azure.py")
    atexit.register(fake.close)
    tenant, rotator, app_id, object_id = (str(uuid.uuid4()) for _ in range(4))
    secret = "rotator-" + uuid.uuid4().hex
    far = int(time.time()) + 400 * 86400
    for path, body in (("/_fake/entra/apps", {"tenant": tenant, "clientId": rotator,
                                              "secrets": [{"value": secret, "expiresAt": far}]}),
                       ("/_fake/graph/roles", {"tenant": tenant, "clientId": rotator,
                                               "roles": ["Application.ReadWrite.OwnedBy"]}),
                       ("/_fake/graph/applications", {"tenant": tenant, "objectId": object_id, "appId": app_id,
                                                      "owners": [rotator]})):
        status, answer = fake.call("POST", path, body)
        if status != 200:
            raise RuntimeError("the Entra stand-in refused %s: %s" % (path, answer))
    return {"COFFER_ENTRA": json.dumps({"url": fake.url, "tenant": tenant, "clientId": rotator, "secret": secret,
                                        "appId": app_id, "objectId": object_id})}


def prepare_server(server):
    """Moves the server's store to 3 unseal shares (threshold 2) and restarts it, sealed, so that the script
    validates the answers of unseal and seal too; the shares go to the script (COFFER_UNSEAL_SHARES), which
    unseals the server first. The server also gets a directory for file syncs (COFFER_SYNC_FILE_DIR, given
    to the script too), single sign-on at a stand-in (with_sso) and an Entra ID stand-in for the leases of a
    dynamic secret (with_entra)."""
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
    sso = with_sso(server)
    entra = with_entra()
    server.start()
    return dict(sso, **entra, COFFER_UNSEAL_SHARES=",".join(shares), COFFER_SYNC_FILE_DIR=sync_dir)


def main():
    compat.run_suite(HERE, "openapi", "openapi.mjs", "answers vs the document", prepare=prepare_server)


if __name__ == "__main__":
    main()
