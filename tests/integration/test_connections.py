"""App connections (docs/syncs.md "Connections", docs/api.md "App connections", docs/cli.md "connections").

- Every app and method is created through the API (and the CLI, from a file and from standard input); the
  credentials never come back: not in the answer, a GET, a list, `coffer connections` output (table or JSON),
  the audit log, the server's log or the store's files (they are sealed); what is shown instead is named (the
  last four characters of a long token, a certificate's thumbprint and notAfter as the expiry, a key's
  fingerprint).
- Validation: every missing field, unknown app, method or field, wrong type, bad PEM, mismatched key, size cap,
  duplicate name, bad expiry is refused with a message naming the field, never quoting a credential.
- Only the admin token may manage connections (an identity gets 403 on every route).
- A connection's credential expiry is in GET /api/v1/expiring and `coffer expiring` (the admin's, not with a
  project) and gets an expiry notice on a server-wide channel.
- Update (rename, re-describe, re-date, re-key), delete, 404s in Infisical's wording; the engine's view
  (lookup/open) is covered by the unit tests.
- Check: answers with the outside system's verdict (see CheckAgainstFakes once the providers are built in); a
  provider that is not built in yet answers 503 naming it, and the failure is recorded on the connection.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import harness
from test_expiry import stamp, DAY
from test_identities import IdentityHelpers

BASE = "/api/v1/app-connections"
PAT = "ado-pat-" + "Q7v" * 10 + "wxyz"          # ends in wxyz
CLIENT_SECRET = "entra-secret-" + "k9P" * 8 + "T0p5"
GITHUB_PAT = "github_pat_" + "Zr4" * 12 + "LAST"
PG_PASSWORD = "pg pass with spaces-5d21"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0c1f5e9a-3b7d-4e2a-9c61-7a2b3c4d5e6f"
SECRETS = [PG_PASSWORD, PAT, CLIENT_SECRET, GITHUB_PAT]


def pem_material(directory):
    """(certificate + key PEM, RSA private key PEM, another key PEM) made with the openssl CLI."""
    cert, key = harness.make_cert(directory, cn="coffer-sync")
    with open(cert) as c, open(key) as k:
        cert_and_key = c.read() + k.read()
    rsa = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
                         check=True, capture_output=True, timeout=60).stdout.decode()
    other = subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
                           check=True, capture_output=True, timeout=60).stdout.decode()
    return cert_and_key, rsa, other


class Connections(IdentityHelpers, harness.ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix="coffer-conn-")
        cls.cert_and_key, cls.rsa_key, cls.other_key = pem_material(cls.tmp)
        # Key lines of the PEMs are secrets too: no log may hold them.
        cls.pem_lines = [line for pem in (cls.cert_and_key, cls.rsa_key) for line in pem.splitlines()
                         if line and not line.startswith("-----")
                         and "PRIVATE" not in line][-3:]

    def create(self, app, method, credentials, name=None, **extra):
        body = {"method": method, "name": name or harness.unique("conn"), "credentials": credentials}
        body.update(extra)
        return self.api("POST", "%s/%s" % (BASE, app), body=body)

    def created(self, app, method, credentials, **kw):
        r = self.create(app, method, credentials, **kw)
        self.assertEqual(r.status, 200, r.body[:600])
        return r.json["appConnection"]

    def assertNoSecret(self, text, where):
        for secret in SECRETS + self.pem_lines:
            self.assertNotIn(secret, text, "%s holds a credential" % where)

    def all_methods(self):
        return [
            ("azure-devops", "access-token", {"accessToken": PAT, "orgName": "contoso"}),
            ("azure-devops", "client-secret", {"tenantId": TENANT, "clientId": CLIENT,
                                               "clientSecret": CLIENT_SECRET, "orgName": "contoso"}),
            ("azure-devops", "certificate", {"tenantId": TENANT, "clientId": CLIENT,
                                             "certificate": self.cert_and_key, "orgName": "contoso",
                                             "instanceUrl": "https://dev.azure.com"}),
            ("azure-key-vault", "client-secret", {"tenantId": TENANT, "clientId": CLIENT,
                                                  "clientSecret": CLIENT_SECRET,
                                                  "authorityHost": "https://login.microsoftonline.com"}),
            ("azure-key-vault", "certificate", {"tenantId": TENANT, "clientId": CLIENT,
                                                "certificate": self.cert_and_key}),
            ("github", "app", {"appId": "123456", "privateKey": self.rsa_key, "installationId": "987654"}),
            ("github", "personal-access-token", {"personalAccessToken": GITHUB_PAT,
                                                 "host": "https://api.github.com"}),
            ("postgres", "username-and-password", {"host": "db.internal", "port": 5432, "database": "app",
                                                   "username": "coffer_rotator", "password": PG_PASSWORD,
                                                   "sslEnabled": True}),
            ("mysql", "username-and-password", {"host": "/run/mysqld/mysqld.sock", "port": 3306, "database": "app",
                                                "username": "coffer_dyn", "password": PG_PASSWORD}),
        ]

    def test_each_app_and_method_and_the_credentials_never_come_back(self):
        made = {}
        for app, method, credentials in self.all_methods():
            c = self.created(app, method, credentials, description="for %s %s" % (app, method))
            self.assertEqual((c["app"], c["method"], c["version"]), (app, method, 1))
            self.assertNoSecret(json.dumps(c), "the create answer")
            made[(app, method)] = c
        shown = {k: v["credentials"] for k, v in made.items()}
        self.assertEqual(shown[("azure-devops", "access-token")], {"orgName": "contoso", "accessTokenHint": "****wxyz"})
        self.assertEqual(shown[("azure-devops", "client-secret")],
                         {"tenantId": TENANT, "clientId": CLIENT, "orgName": "contoso", "clientSecretHint": "****T0p5"})
        self.assertRegex(shown[("azure-key-vault", "certificate")]["certificateThumbprint"], "^[0-9A-F]{40}$")
        self.assertRegex(shown[("github", "app")]["privateKeyFingerprint"], "^SHA256:[A-Za-z0-9+/]{43}$")
        self.assertEqual(shown[("github", "app")]["appId"], "123456")
        self.assertEqual(shown[("github", "personal-access-token")],
                         {"personalAccessTokenHint": "****LAST", "host": "https://api.github.com"})
        # a password a person chose: not even a hint of it
        self.assertEqual(shown[("postgres", "username-and-password")],
                         {"host": "db.internal", "port": 5432, "database": "app", "username": "coffer_rotator",
                          "sslEnabled": True})
        self.assertEqual(shown[("mysql", "username-and-password")],
                         {"host": "/run/mysqld/mysqld.sock", "port": 3306, "database": "app", "username": "coffer_dyn"})
        # A certificate says when it expires (harness.make_cert: 2 days).
        cert_expiry = made[("azure-key-vault", "certificate")]["expiresAt"]
        self.assertTrue(cert_expiry and cert_expiry[:10] in (stamp(2 * DAY)[:10], stamp(DAY)[:10]), cert_expiry)
        self.assertIsNone(made[("azure-devops", "access-token")]["expiresAt"])
        # GET, list (all and per app), the CLI in both outputs: no credential anywhere.
        for (app, _), c in made.items():
            got = self.ok("GET", "%s/%s/%s" % (BASE, app, c["id"]))["appConnection"]
            self.assertEqual(got, c)
        listed = self.ok("GET", BASE)["appConnections"]
        self.assertTrue({c["id"] for c in made.values()} <= {c["id"] for c in listed})
        ado = self.ok("GET", BASE + "/azure-devops")["appConnections"]
        self.assertTrue(ado and all(c["app"] == "azure-devops" for c in ado))
        self.assertNoSecret(json.dumps(listed), "the list")
        for args in (("connections", "list"), ("connections", "list", "--output", "json"),
                     ("connections", "get", made[("github", "app")]["name"])):
            rc, out, err = self.cli(*args)
            self.assertEqual(rc, 0, err)
            self.assertNoSecret(out + err, " ".join(args))
        rc, out, _ = self.cli("connections", "list", "--app", "github")
        self.assertIn(made[("github", "app")]["name"], out)
        self.assertNotIn(made[("azure-devops", "access-token")]["name"], out)
        # The audit log records every use; none of its records holds a credential.
        events = self.ok("GET", "/api/v1/audit/events", query={"limit": "1000"})
        actions = {e["action"] for e in events["events"]}
        self.assertIn("app-connections.create", actions)
        self.assertIn("app-connections.get", actions)
        self.assertNoSecret(json.dumps(events), "the audit log")
        self.assertNoSecret(self.server.stderr, "the server log")
        # Sealed at rest: not in the store's files.
        for name, data in harness.store_files(self.server.data_dir):
            for secret in SECRETS:
                self.assertNotIn(secret.encode(), data, "%s holds a credential in clear" % name)

    def test_validation_names_the_field(self):
        ok = {"accessToken": PAT, "orgName": "contoso"}
        cases = [
            ("azure-devops", "access-token", {"orgName": "contoso"}, "credentials.accessToken",
             "credentials.accessToken is required for azure-devops access-token"),
            ("azure-devops", "client-secret", {"tenantId": TENANT, "clientId": CLIENT, "orgName": "o"},
             "credentials.clientSecret", "credentials.clientSecret is required"),
            ("azure-key-vault", "certificate", {"tenantId": TENANT, "clientId": CLIENT},
             "credentials.certificate", "required for azure-key-vault certificate"),
            ("github", "app", {"appId": "1", "privateKey": self.rsa_key}, "credentials.installationId", "required"),
            ("azure-devops", "oauth", ok, "method", "access-token, client-secret or certificate"),
            ("azure-devops", "access-token", dict(ok, scope="x"), "credentials", "credentials.scope: not a field"),
            ("azure-devops", "access-token", dict(ok, orgName=7), "credentials.orgName", "a string is expected"),
            ("azure-devops", "access-token", dict(ok, orgName=""), "credentials.orgName", "must not be empty"),
            ("azure-devops", "access-token", dict(ok, accessToken=PAT + "\n"), "credentials.accessToken",
             "stray newline"),
            ("azure-devops", "access-token", dict(ok, instanceUrl="ftp://x"), "credentials.instanceUrl", "URL"),
            ("azure-devops", "access-token", "a string", "credentials", "an object is required"),
            ("azure-key-vault", "certificate", {"tenantId": TENANT, "clientId": CLIENT, "certificate": "junk"},
             "credentials.certificate", "no PEM certificate"),
            ("azure-key-vault", "certificate",
             {"tenantId": TENANT, "clientId": CLIENT,
              "certificate": self.cert_and_key.split("-----BEGIN PRIVATE KEY-----")[0]},
             "credentials.certificate", "private key"),
            ("azure-key-vault", "certificate",
             {"tenantId": TENANT, "clientId": CLIENT,
              "certificate": self.cert_and_key.split("-----BEGIN PRIVATE KEY-----")[0] + self.other_key},
             "credentials.certificate", "not the certificate's"),
            ("github", "app", {"appId": "1", "privateKey": "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n", "installationId": "2"},
             "credentials.privateKey", "no PEM private key"),
            ("azure-devops", "access-token", dict(ok, accessToken="x" * 17000), "credentials", "at most 16384 bytes"),
            ("postgres", "username-and-password", {"host": "h", "port": 0, "database": "d", "username": "u",
                                                   "password": PG_PASSWORD}, "credentials.port", "a port from 1 to 65535"),
            ("postgres", "username-and-password", {"host": "h", "port": 5432, "database": "d", "username": "u"},
             "credentials.password", "credentials.password is required for postgres username-and-password"),
            ("mysql", "username-and-password", {"host": "h", "port": 70000, "database": "d", "username": "u",
                                                "password": PG_PASSWORD}, "credentials.port", "a port from 1 to 65535"),
            ("mysql", "username-and-password", {"host": "h", "port": 3306, "database": "d", "password": PG_PASSWORD},
             "credentials.username", "credentials.username is required for mysql username-and-password"),
        ]
        for app, method, credentials, field, words in cases:
            with self.subTest(app=app, method=method, field=field):
                r = self.create(app, method, credentials)
                body = self.assertError(r, 422, "ValidationFailure", words)
                self.assertEqual(body["details"][0]["field"], field)
                self.assertNoSecret(r.body.decode(), "an error")
        self.assertError(self.create("gitlab", "access-token", ok), 422, "ValidationFailure",
                         "azure-client-secrets, azure-devops, azure-key-vault, github, mysql, postgres or webhook")
        self.assertError(self.api("POST", BASE + "/azure-devops", body={"method": "access-token", "name": "n"}),
                         422, "ValidationFailure", "credentials: required")
        self.assertError(self.create("azure-devops", "access-token", ok, name="bad name!"), 422, None, "name:")
        self.assertError(self.create("azure-devops", "access-token", ok, expiresAt="soon"), 422, None, "expiresAt")
        name = harness.unique("taken")
        self.created("azure-devops", "access-token", ok, name=name)
        self.assertError(self.create("github", "personal-access-token", {"personalAccessToken": GITHUB_PAT},
                                     name=name), 400, "BadRequest", "already exists")
        self.assertError(self.api("GET", BASE + "/azure-devops/" + "0" * 8), 404, "NotFound",
                         "App Connection with ID")
        self.assertError(self.api("GET", BASE + "/bitbucket"), 422, "ValidationFailure", "app:")
        self.assertNoSecret(self.server.stderr, "the server log")

    def test_only_the_admin(self):
        c = self.created("azure-devops", "access-token", {"accessToken": PAT, "orgName": "contoso"})
        token = self.machine()["token"]
        one = "%s/azure-devops/%s" % (BASE, c["id"])
        for method, path, body in (("GET", BASE, None), ("GET", BASE + "/azure-devops", None), ("GET", one, None),
                                   ("PATCH", one, {"name": "mine"}), ("DELETE", one, None),
                                   ("POST", one + "/check", None),
                                   ("POST", BASE + "/azure-devops",
                                    {"method": "access-token", "name": "x",
                                     "credentials": {"accessToken": PAT, "orgName": "o"}})):
            with self.subTest(method=method, path=path):
                self.assertError(self.api(method, path, body=body, token=token), 403, "PermissionDenied",
                                 "only the admin or an org admin may manage app connections")
        self.assertEqual(self.ok("GET", one)["appConnection"]["name"], c["name"])
        rc, out, err = self.cli("connections", "list", token=token)
        self.assertEqual(rc, 1)
        self.assertIn("only the admin", err)

    def test_update_and_delete(self):
        c = self.created("azure-devops", "access-token", {"accessToken": PAT, "orgName": "contoso"})
        one = "%s/azure-devops/%s" % (BASE, c["id"])
        new_name = harness.unique("renamed")
        u = self.ok("PATCH", one, body={"name": new_name, "description": "prod pipelines",
                                        "expiresAt": "2030-01-02T03:04:05Z"})["appConnection"]
        self.assertEqual((u["name"], u["description"], u["expiresAt"], u["version"]),
                         (new_name, "prod pipelines", "2030-01-02T03:04:05.000Z", 2))
        self.assertEqual(u["credentials"], c["credentials"])
        u = self.ok("PATCH", one, body={"expiresAt": None})["appConnection"]
        self.assertIsNone(u["expiresAt"])
        # New credentials replace the old whole; a new method needs them.
        u = self.ok("PATCH", one, body={"credentials": {"accessToken": "n" * 20 + "NEW1", "orgName": "fabrikam"}})
        self.assertEqual(u["appConnection"]["credentials"], {"orgName": "fabrikam", "accessTokenHint": "****NEW1"})
        self.assertError(self.api("PATCH", one, body={"method": "client-secret"}), 422, None,
                         "credentials: required to change the method")
        self.assertError(self.api("PATCH", one, body={"method": "client-secret",
                                                      "credentials": {"accessToken": PAT, "orgName": "o"}}),
                         422, None, "credentials.accessToken: not a field of azure-devops client-secret")
        u = self.ok("PATCH", one, body={"method": "client-secret",
                                        "credentials": {"tenantId": TENANT, "clientId": CLIENT,
                                                        "clientSecret": CLIENT_SECRET, "orgName": "o"}})
        self.assertEqual(u["appConnection"]["method"], "client-secret")
        # Another app's path does not reach it; delete answers with what was deleted, then 404.
        self.assertError(self.api("GET", "%s/github/%s" % (BASE, c["id"])), 404, "NotFound", c["id"])
        gone = self.ok("DELETE", one)["appConnection"]
        self.assertEqual(gone["id"], c["id"])
        self.assertError(self.api("GET", one), 404, "NotFound", "App Connection with ID '%s' not found" % c["id"])
        self.assertError(self.api("DELETE", one), 404, "NotFound")
        self.assertError(self.api("PATCH", one, body={"name": "x"}), 404, "NotFound")

    def test_cli(self):
        name = harness.unique("cli")
        path = os.path.join(self.tmp, "ado.json")
        with open(path, "w") as f:
            json.dump({"accessToken": PAT, "orgName": "contoso"}, f)
        rc, out, err = self.cli("connections", "create", "--app", "azure-devops", "--method", "access-token",
                                "--name", name, "--credentials-file", path, "--expires-at", stamp(20 * DAY))
        self.assertEqual(rc, 0, err)
        self.assertIn(name, out)
        self.assertIn("orgName=contoso", out)
        self.assertNoSecret(out + err, "create")
        # From standard input, and a PEM from its own file.
        rc, out, err = self.cli("connections", "create", "--app", "github", "--method", "personal-access-token",
                                "--name", name + "-gh", "--credentials-file", "-", "--output", "json",
                                input=json.dumps({"personalAccessToken": GITHUB_PAT}))
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["appConnection"]["credentials"]["personalAccessTokenHint"], "****LAST")
        key_path = os.path.join(self.tmp, "app.pem")
        with open(key_path, "w") as f:
            f.write(self.rsa_key)
        ids_path = os.path.join(self.tmp, "app.json")
        with open(ids_path, "w") as f:
            json.dump({"appId": "42", "installationId": "4242"}, f)
        rc, out, err = self.cli("connections", "create", "--app", "github", "--method", "app", "--name",
                                name + "-app", "--credentials-file", ids_path, "--pem-file", key_path)
        self.assertEqual(rc, 0, err)
        self.assertIn("appId=42", out)
        # get / update / check / remove by name.
        rc, out, err = self.cli("connections", "update", name, "--description", "ci", "--expires-at", "none",
                                "--output", "json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["appConnection"]["description"], "ci")
        rc, out, err = self.cli("connections", "update", name, "--credentials-file", "-",
                                input=json.dumps({"accessToken": "m" * 20 + "ROT8", "orgName": "contoso"}))
        self.assertEqual(rc, 0, err)
        rc, out, err = self.cli("connections", "get", name, "--output", "json")
        self.assertEqual(json.loads(out)["appConnection"]["credentials"]["accessTokenHint"], "****ROT8")
        rc, out, err = self.cli("connections", "remove", name + "-gh")
        self.assertEqual(rc, 0, err)
        self.assertIn("removed app connection %s-gh" % name, out)
        rc, out, err = self.cli("connections", "get", name + "-gh")
        self.assertEqual(rc, 1)
        self.assertIn("not found", err)
        # Usage errors, bad files, and why credentials are not taken from argv.
        self.assertEqual(self.cli("connections", "create", "--app", "github")[0], 2)
        self.assertEqual(self.cli("connections", "create", "--app", "github", "--method", "app", "--name", "x")[0], 2)
        rc, out, err = self.cli("connections", "create", "--app", "github", "--method", "app", "--name", "x",
                                "--credentials-file", "-", input="{not json " + GITHUB_PAT)
        self.assertEqual(rc, 2)
        self.assertIn("not a JSON object", err)
        self.assertNoSecret(err, "a parse error")
        rc, out, err = self.cli("connections", "create", "--help")
        self.assertEqual(rc, 0)
        self.assertIn("never on the command line", out)
        rc, out, err = self.cli("connections", "create", "--app", "github", "--method", "app", "--name", "x",
                                "--credentials-file", os.path.join(self.tmp, "missing.json"))
        self.assertEqual(rc, 1)
        self.assertIn("missing.json", err)
        rc, out, _ = self.cli("completion", "bash")
        self.assertIn("connections", out)
        self.assertIn("--credentials-file", out)

    def test_expiry_in_coffer_expiring_and_notices(self):
        name = harness.unique("expiring-pat")
        c = self.created("azure-devops", "access-token", {"accessToken": PAT, "orgName": "contoso"}, name=name,
                         expiresAt=stamp(5 * DAY))
        items = self.ok("GET", "/api/v1/expiring", query={"within": "30d"})["items"]
        mine = [i for i in items if i["kind"] == "connection" and i["appConnection"]["id"] == c["id"]]
        self.assertEqual(len(mine), 1, items)
        self.assertEqual(mine[0]["status"], "expiring")
        self.assertEqual(mine[0]["appConnection"], {"id": c["id"], "name": name, "app": "azure-devops",
                                                    "method": "access-token"})
        self.assertIn('the credential of app connection "%s" (azure-devops access-token) expires at' % name,
                      mine[0]["message"])
        only = self.ok("GET", "/api/v1/expiring", query={"within": "30d", "include": "connections"})["items"]
        self.assertTrue(only and all(i["kind"] == "connection" for i in only))
        self.assertFalse([i for i in self.ok("GET", "/api/v1/expiring", query={"within": "3d"})["items"]
                          if i["kind"] == "connection" and i["appConnection"]["id"] == c["id"]])
        rc, out, err = self.cli("expiring", "--within", "30d", "--include", "connections", "--fail")
        self.assertEqual(rc, 3, out + err)
        self.assertIn(name, out)
        # A project's view and an identity's do not hold organisation-wide connections.
        project = self.create_project(harness.unique("p"))
        self.assertEqual(self.ok("GET", "/api/v1/expiring", query={"within": "30d", "projectId": project["id"],
                                                                   "include": "connections"})["items"], [])
        machine = self.machine(project["id"], "admin")
        r = self.api("GET", "/api/v1/expiring", query={"within": "30d"}, token=machine["token"])
        self.assertEqual(r.status, 200)
        self.assertFalse([i for i in r.json["items"] if i["kind"] == "connection"])
        # A server-wide channel gets the notice (the 7d threshold), once, with no credential in it.
        from test_notifications import Receiver
        hook = Receiver()
        try:
            self.ok("POST", "/api/v1/notifications/channels", body={"type": "webhook", "url": hook.url,
                                                                   "signingSecret": "s" * 32})
            self.ok("POST", "/api/v1/notifications/run")
            self.ok("POST", "/api/v1/notifications/run")
            notices = [n for n in hook.accepted() if name in json.dumps(n)]
            self.assertEqual(len(notices), 1, hook.accepted())
            self.assertEqual(notices[0]["threshold"], "7d")
            self.assertNoSecret(json.dumps(hook.accepted()), "a notice")
        finally:
            hook.close()

    def test_check_without_the_provider_says_so(self):
        c = self.created("azure-key-vault", "client-secret",
                         {"tenantId": TENANT, "clientId": CLIENT, "clientSecret": CLIENT_SECRET})
        one = "%s/azure-key-vault/%s" % (BASE, c["id"])
        r = self.api("POST", one + "/check")
        if r.status == 503:
            self.assertError(r, 503, None, "azure-key-vault provider")
            got = self.ok("GET", one)["appConnection"]
            self.assertEqual(got["lastCheckStatus"], "failed")
            self.assertIn("azure-key-vault", got["lastCheckMessage"])
            self.assertTrue(got["lastCheckedAt"])
        else:
            # The provider is built in: a check against the real Entra ID endpoint from a test is not
            # possible; it must fail as the outside system's verdict, never as a 401/403 of Coffer.
            self.assertNotIn(r.status, (401, 403), r.body[:400])
        self.assertNoSecret(self.server.stderr, "the server log")


class GitHubFake:
    """tests/fakes/github.py on an ephemeral port."""

    def __init__(self, directory):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes", "github.py")
        self.proc = subprocess.Popen([sys.executable, script, "--port", "0", "--log",
                                      os.path.join(directory, "github.log")],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.url = "http://127.0.0.1:%d" % int(self.proc.stdout.readline())

    def control(self, path, body=None):
        req = urllib.request.Request(self.url + path, method="POST" if body is not None else "GET",
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"{}")

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.proc.stdout.close()


class AzureFake(GitHubFake):
    """tests/fakes/azure.py (Entra ID under /entra, Azure DevOps under /ado, Key Vault under /kv)."""

    def __init__(self, directory):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes", "azure.py")
        self.proc = subprocess.Popen([sys.executable, script, "--port", "0", "--state-dir", directory],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.url = "http://127.0.0.1:%d" % int(self.proc.stdout.readline())


class CheckAgainstFakes(harness.ServerTestCase):
    """POST .../check against the stand-ins of tests/fakes/: the verdict and the expiry the system reports are
    recorded; a credential the system refuses is a 400 naming the system and its answer (never a 401/403 that
    would read as a bad Coffer token), and the CLI says so without asking to log in again."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix="coffer-conn-check-")
        cls.github = GitHubFake(cls.tmp)
        cls.azure = AzureFake(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        cls.github.close()
        cls.azure.close()
        super().tearDownClass()

    def create(self, app, method, credentials):
        return self.ok("POST", "%s/%s" % (BASE, app), body={"method": method, "name": harness.unique("chk"),
                                                           "credentials": credentials})["appConnection"]

    def test_github_token_ok_then_expired(self):
        token = self.github.control("/_fake/pats", {"permissions": {"secrets": "write"},
                                                   "repositories": ["contoso/app"], "expiresIn": 10 * 86400})["token"]
        c = self.create("github", "personal-access-token", {"personalAccessToken": token, "host": self.github.url})
        one = "%s/github/%s" % (BASE, c["id"])
        answer = self.ok("POST", one + "/check")
        self.assertTrue(answer["check"]["ok"])
        got = answer["appConnection"]
        self.assertEqual((got["lastCheckStatus"], got["lastCheckMessage"]), ("ok", "ok"))
        # The expiry GitHub reports is learnt, and so listed as expiring.
        self.assertEqual(got["expiresAt"][:10], stamp(10 * DAY)[:10])
        items = self.ok("GET", "/api/v1/expiring", query={"within": "30d", "include": "connections"})["items"]
        self.assertIn(c["id"], [i["appConnection"]["id"] for i in items])
        rc, out, err = self.cli("connections", "check", c["name"])
        self.assertEqual(rc, 0, err)
        self.assertIn("authenticated as", out)
        # The token expires at GitHub: a precise 400, recorded, and the CLI does not blame the Coffer login.
        self.github.control("/_fake/expire", {"token": token})
        r = self.api("POST", one + "/check")
        self.assertError(r, 400, "BadRequest", "GitHub refused", "401", "Bad credentials")
        got = self.ok("GET", one)["appConnection"]
        self.assertEqual(got["lastCheckStatus"], "failed")
        self.assertIn("GitHub refused", got["lastCheckMessage"])
        rc, out, err = self.cli("connections", "check", c["id"])
        self.assertEqual(rc, 1)
        self.assertIn("GitHub refused", err)
        self.assertNotIn("login", err.lower())
        self.assertNotIn(token, r.body.decode() + out + err + self.server.stderr)
        for line in self.github.control("/_fake/log"):
            self.assertNotIn(token, json.dumps(line))

    def test_azure_devops_pat_ok_then_expired(self):
        token = "ado" + "P4t" * 17
        self.azure.control("/_fake/ado/orgs", {"org": "contoso", "projects": [
            {"name": "payments", "id": "7c2f3e1a-0000-4000-8000-00000000000a"}]})
        self.azure.control("/_fake/ado/pats", {"org": "contoso", "token": token,
                                               "scopes": ["vso.variablegroups_manage"],
                                               "expiresAt": int(time.time()) + 3 * 86400})
        c = self.create("azure-devops", "access-token", {"accessToken": token, "orgName": "contoso",
                                                         "instanceUrl": self.azure.url + "/ado"})
        one = "%s/azure-devops/%s" % (BASE, c["id"])
        # Without vso.project the check names the scope Azure DevOps asked for.
        self.assertError(self.api("POST", one + "/check"), 400, "BadRequest", "lacks scope", "vso.project")
        token = "ado" + "Q9r" * 17
        self.azure.control("/_fake/ado/pats", {"org": "contoso", "token": token,
                                               "scopes": ["vso.project", "vso.variablegroups_manage"],
                                               "expiresAt": int(time.time()) + 3 * 86400})
        self.ok("PATCH", one, body={"credentials": {"accessToken": token, "orgName": "contoso",
                                                    "instanceUrl": self.azure.url + "/ado"}})
        self.assertTrue(self.ok("POST", one + "/check")["check"]["ok"])
        self.azure.control("/_fake/ado/pats/expire", {"token": token})
        r = self.api("POST", one + "/check")
        self.assertError(r, 400, "BadRequest", "Azure DevOps")
        got = self.ok("GET", one)["appConnection"]
        self.assertEqual(got["lastCheckStatus"], "failed")
        self.assertNotIn(token, r.body.decode() + self.server.stderr + json.dumps(self.azure.control("/_fake/log")))

    def test_entra_client_secret_ok_then_expired(self):
        secret = "kv" + "S3c" * 14
        client = "5a1c2d3e-0000-4000-8000-0000000000c1"
        self.azure.control("/_fake/entra/apps", {"tenant": TENANT, "clientId": client,
                                                 "secrets": [{"value": secret,
                                                              "expiresAt": int(time.time()) + 86400}]})
        c = self.create("azure-key-vault", "client-secret", {"tenantId": TENANT, "clientId": client,
                                                             "clientSecret": secret,
                                                             "authorityHost": self.azure.url + "/entra"})
        one = "%s/azure-key-vault/%s" % (BASE, c["id"])
        self.assertTrue(self.ok("POST", one + "/check")["check"]["ok"])
        self.azure.control("/_fake/entra/expire", {"clientId": client})
        r = self.api("POST", one + "/check")
        self.assertError(r, 400, "BadRequest", "AADSTS7000222")
        self.assertIn("AADSTS7000222", self.ok("GET", one)["appConnection"]["lastCheckMessage"])
        rc, out, err = self.cli("connections", "check", c["name"])
        self.assertEqual(rc, 1)
        self.assertIn("AADSTS7000222", err)
        self.assertNotIn("login", err.lower())
        self.assertNotIn(secret, r.body.decode() + out + err + self.server.stderr
                         + json.dumps(self.azure.control("/_fake/log")))

    def test_github_app_reports_its_permissions(self):
        key = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
                             check=True, capture_output=True, timeout=60).stdout
        public = subprocess.run(["openssl", "pkey", "-pubout"], input=key, check=True, capture_output=True,
                                timeout=60).stdout.decode()
        self.github.control("/_fake/apps", {"appId": "4711", "publicKey": public, "installations": [
            {"id": "815", "permissions": {"secrets": "write", "metadata": "read"}, "repositories": ["contoso/app"]}]})
        c = self.create("github", "app", {"appId": "4711", "installationId": "815", "privateKey": key.decode(),
                                          "host": self.github.url})
        answer = self.ok("POST", "%s/github/%s/check" % (BASE, c["id"]))
        self.assertIn("secrets:write", answer["check"]["scopes"])
        self.assertIn("installation token minted", answer["check"]["detail"])
        # An app the system does not know: 401 from GitHub, a 400 here.
        other = self.create("github", "app", {"appId": "999", "installationId": "815", "privateKey": key.decode(),
                                              "host": self.github.url})
        r = self.api("POST", "%s/github/%s/check" % (BASE, other["id"]))
        self.assertError(r, 400, "BadRequest", "GitHub")


if __name__ == "__main__":
    unittest.main()
