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
import tempfile
import unittest

import harness
from test_expiry import stamp, DAY
from test_identities import IdentityHelpers

BASE = "/api/v1/app-connections"
PAT = "ado-pat-" + "Q7v" * 10 + "wxyz"          # ends in wxyz
CLIENT_SECRET = "entra-secret-" + "k9P" * 8 + "T0p5"
GITHUB_PAT = "github_pat_" + "Zr4" * 12 + "LAST"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0c1f5e9a-3b7d-4e2a-9c61-7a2b3c4d5e6f"
SECRETS = [PAT, CLIENT_SECRET, GITHUB_PAT]


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
        for directory in harness.store_dirs(self.server.data_dir):
            for root, _, files in os.walk(directory):
                for name in files:
                    with open(os.path.join(root, name), "rb") as f:
                        data = f.read()
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
        ]
        for app, method, credentials, field, words in cases:
            with self.subTest(app=app, method=method, field=field):
                r = self.create(app, method, credentials)
                body = self.assertError(r, 422, "ValidationFailure", words)
                self.assertEqual(body["details"][0]["field"], field)
                self.assertNoSecret(r.body.decode(), "an error")
        self.assertError(self.create("gitlab", "access-token", ok), 422, "ValidationFailure",
                         "azure-devops, azure-key-vault or github")
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
                                 "only the admin may manage app connections")
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


if __name__ == "__main__":
    unittest.main()
