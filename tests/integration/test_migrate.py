"""`coffer operator migrate --from sqlite:PATH --to postgres://...` (docs/server.md).

Runs in the PostgreSQL pass of `make test` (skipped, saying so, on SQLite). A server on SQLite is populated with
everything a store holds (folders, versions, imports, tags, identities with client secrets and memberships, JWT
auth, a notification channel, the audit log), stopped, and copied into an empty PostgreSQL database. A server on
PostgreSQL with the same root key then reads every secret back identically (every version), logs in with the old
client secret, and `coffer audit verify` still finds the chain intact. The copy goes back to a new SQLite file with
the same checksums. Refused: a destination that holds data (and it is left as it was), the same database twice,
an unreachable destination, and a source that is not a database.
"""

import os
import re
import shutil
import tempfile
import unittest

import harness
from harness import Server

ONLY_PG = unittest.skipUnless(harness.PG_DIR, "PostgreSQL only: the destination is a PostgreSQL database "
                                              "(make test runs this suite in its PostgreSQL pass)")

LINE = re.compile(r"^\s+(\w+)\s+(\d+) rows\s+checksum ([0-9a-f]+)\s+identical$", re.M)


def tables(out):
    return {m.group(1): (int(m.group(2)), m.group(3)) for m in LINE.finditer(out)}


@ONLY_PG
class Migrate(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="coffer-migrate-")
        cls.sqlite = os.path.join(cls.dir, "source.db")
        src = Server(data_dir=os.path.join(cls.dir, "data"), args=["--db", cls.sqlite])
        src.start()
        try:
            cls.populate(src)
        finally:
            cls.rc = src.stop()
            cls.source_log = src.stderr
        cls.root_key = os.path.join(cls.dir, "data", "root.key")

    @classmethod
    def tearDownClass(cls):
        if not os.environ.get("KEEP"):
            shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def populate(cls, s):
        def ok(method, path, body=None, query=None):
            r = s.api(method, path, body=body, query=query)
            assert r.status == 200, (method, path, r.status, r.body[:300])
            return r.json

        cls.pid = ok("POST", "/api/v2/workspace", {"projectName": harness.unique("migrated")})["project"]["id"]
        ok("POST", "/api/v1/folders", {"workspaceId": cls.pid, "environment": "dev", "name": "backend", "path": "/"})
        ok("POST", "/api/v1/folders", {"workspaceId": cls.pid, "environment": "dev", "name": "api",
                                       "path": "/backend"})
        cls.values = {}
        for path, key, values in (("/", "ROOT_KEY", ["r1", "r2", "r3"]),
                                  ("/backend/api", "DB_PASSWORD", ["p@ss\nword", "", "ünïcödé ✓"]),
                                  ("/backend", "EMPTY", [""])):
            body = {"workspaceId": cls.pid, "environment": "dev", "secretPath": path, "secretValue": values[0]}
            ok("POST", "/api/v3/secrets/raw/" + key, body)
            for v in values[1:]:
                ok("PATCH", "/api/v3/secrets/raw/" + key, dict(body, secretValue=v))
            cls.values[(path, key)] = values
        ok("POST", "/api/v3/secrets/raw/PROD_ONLY", {"workspaceId": cls.pid, "environment": "prod",
                                                     "secretValue": "prod-value", "secretComment": "c",
                                                     "expiresAt": "2031-01-01T00:00:00Z"})
        cls.values[("prod", "PROD_ONLY")] = ["prod-value"]
        ident = ok("POST", "/api/v1/identities", {"name": harness.unique("migrated-id")})["identity"]
        ua = ok("POST", "/api/v1/auth/universal-auth/identities/" + ident["id"], {})["identityUniversalAuth"]
        cs = ok("POST", "/api/v1/auth/universal-auth/identities/%s/client-secrets" % ident["id"],
                {"description": "first"})
        ok("POST", "/api/v1/auth/universal-auth/identities/%s/client-secrets" % ident["id"], {"description": "2nd"})
        ok("POST", "/api/v2/workspace/%s/identity-memberships/%s" % (cls.pid, ident["id"]), {"role": "viewer"})
        cls.client_id, cls.client_secret = ua["clientId"], cs["clientSecret"]
        cls.identity = ident["id"]
        ok("POST", "/api/v1/notifications/channels", {"projectId": cls.pid, "type": "webhook", "name": "hook",
                                                      "url": "https://hooks.example.com/x", "signingSecret": "s" * 24})
        cls.connection = ok("POST", "/api/v1/app-connections/github",
                            {"method": "personal-access-token", "name": "migrated-gh",
                             "credentials": {"personalAccessToken": "github_pat_" + "m" * 30,
                                             "host": "http://127.0.0.1:9"}})["appConnection"]
        pg = ok("POST", "/api/v1/app-connections/postgres",
                {"method": "username-and-password", "name": "migrated-pg",
                 "credentials": {"host": "/nonexistent", "port": 5433, "database": "postgres",
                                 "username": "dyn", "password": "dyn-password"}})["appConnection"]
        ok("POST", "/api/v1/dynamic-secrets", {"projectSlug": cls.pid, "environmentSlug": "dev", "name": "db",
                                               "provider": {"type": "postgres", "inputs": {
                                                   "grantRole": "app_read", "connectionId": pg["id"]}}})
        ok("POST", "/api/v1/audit/checkpoints")

    def migrate(self, *args):
        return harness.run(["operator", "migrate"] + list(args), env=harness.base_env())

    def pg_server(self, uri):
        d = os.path.join(tempfile.mkdtemp(prefix="coffer-migrated-", dir=self.dir))
        shutil.copy(self.root_key, os.path.join(d, "root.key"))
        os.chmod(os.path.join(d, "root.key"), 0o600)
        # The audit log's head file goes along with the root key (docs/server.md), or verify reports it missing.
        shutil.copy(os.path.join(os.path.dirname(self.root_key), "audit-head.json"), d)
        s = Server(data_dir=d, env={"COFFER_DB": uri})
        s.start()
        self.addCleanup(s.cleanup)
        self.addCleanup(s.stop)
        return s

    def test_sqlite_to_postgres_and_back(self):
        self.assertEqual(self.rc, 0)
        uri = harness.new_pg_database()
        rc, out, err = self.migrate("--from", "sqlite:" + self.sqlite, "--to", uri)
        self.assertEqual(rc, 0, out + err)
        copied = tables(out)
        self.assertEqual(copied["secret_versions"][0], 8)
        self.assertEqual(copied["identity_client_secrets"][0], 2)
        self.assertEqual(copied["dynamic_secrets"][0], 1)
        self.assertGreater(copied["audit_events"][0], 10)
        self.assertIn("every table verified", out)

        s = self.pg_server(uri)
        for (where, key), values in self.values.items():
            env, path = ("prod", "/") if where == "prod" else ("dev", where)
            r = s.api("GET", "/api/v3/secrets/raw/" + key, query={"workspaceId": self.pid, "environment": env,
                                                                  "secretPath": path})
            self.assertEqual(r.status, 200, r.body[:300])
            self.assertEqual(r.json["secret"]["secretValue"], values[-1])
            self.assertEqual(r.json["secret"]["version"], len(values))
            for version, value in enumerate(values, 1):
                r = s.api("GET", "/api/v3/secrets/raw/" + key,
                          query={"workspaceId": self.pid, "environment": env, "secretPath": path,
                                 "version": version})
                self.assertEqual(r.json["secret"]["secretValue"], value, (key, version))
        r = s.api("GET", "/api/v3/secrets/raw/PROD_ONLY", query={"workspaceId": self.pid, "environment": "prod"})
        self.assertEqual((r.json["secret"]["secretComment"], r.json["secret"]["expiresAt"][:10]), ("c", "2031-01-01"))
        # the old client secret logs in, and the token reads
        r = s.api("POST", "/api/v1/auth/universal-auth/login", token=None,
                  body={"clientId": self.client_id, "clientSecret": self.client_secret})
        self.assertEqual(r.status, 200, r.body[:300])
        r = s.api("GET", "/api/v3/secrets/raw/ROOT_KEY", query={"workspaceId": self.pid, "environment": "dev"},
                  token=r.json["accessToken"])
        self.assertEqual(r.json["secret"]["secretValue"], "r3")
        secrets = s.api("GET", "/api/v1/auth/universal-auth/identities/%s/client-secrets" % self.identity).json
        self.assertEqual([c["description"] for c in secrets["clientSecretData"]], ["2nd", "first"])
        # the app connection came along, its sealed credentials still open (the check gets as far as
        # GitHub's address, which refuses: a 400, not the 500 of credentials that do not open)
        self.assertEqual(copied["app_connections"][0], 2)
        got = s.api("GET", "/api/v1/app-connections/github/" + self.connection["id"]).json["appConnection"]
        self.assertEqual(got["credentials"], self.connection["credentials"])
        r = s.api("POST", "/api/v1/app-connections/github/%s/check" % self.connection["id"])
        self.assertEqual(r.status, 400, r.body[:300])
        # the audit chain came along intact, and grows on PostgreSQL
        rc, out2, err2 = s.cli("audit", "verify")
        self.assertEqual(rc, 0, out2 + err2)
        self.assertIn("intact", out2 + err2)
        # a new client secret after the copy: the sequence behind the list order carried on
        r = s.api("POST", "/api/v1/auth/universal-auth/identities/%s/client-secrets" % self.identity,
                  body={"description": "3rd"})
        self.assertEqual(r.status, 200, r.body[:300])
        s.stop()

        # and back, into a new SQLite file: the same rows and checksums
        back = os.path.join(self.dir, "back.db")
        rc, out3, err3 = self.migrate("--from", uri, "--to", back)
        self.assertEqual(rc, 0, out3 + err3)
        there, again = copied, tables(out3)
        for table, (rows, checksum) in there.items():
            if table in ("audit_events", "audit_contexts", "audit_checkpoints", "identity_client_secrets",
                         "identity_access_tokens", "meta", "app_connections"):
                continue  # the server on PostgreSQL added rows (and recorded a connection check)
            self.assertEqual(again[table], (rows, checksum), table)
        self.assertEqual(again["identity_client_secrets"][0], 3)
        self.assertEqual(again["app_connections"][0], 2)

    def test_refusals(self):
        uri = harness.new_pg_database()
        rc, out, err = self.migrate("--from", "sqlite:" + self.sqlite, "--to", uri)
        self.assertEqual(rc, 0, out + err)
        before = harness.psql(uri, "SELECT COUNT(*) FROM secret_versions")
        # the destination holds data now: refused, and left as it was
        rc, out, err = self.migrate("--from", "sqlite:" + self.sqlite, "--to", uri)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("already holds data", err)
        self.assertEqual(harness.psql(uri, "SELECT COUNT(*) FROM secret_versions"), before)
        rc, out, err = self.migrate("--from", uri, "--to", uri)
        self.assertEqual(rc, 2)
        self.assertIn("same database", err)
        rc, out, err = self.migrate("--from", "sqlite:" + self.sqlite,
                                    "--to", "postgresql://coffer:hunter2@/x?host=/nonexistent-dir-for-coffer")
        self.assertEqual(rc, 1)
        self.assertIn("unreachable", err)
        self.assertNotIn("hunter2", out + err)
        junk = os.path.join(self.dir, "junk.db")
        with open(junk, "wb") as f:
            f.write(b"this is not a database" * 100)
        rc, out, err = self.migrate("--from", junk, "--to", harness.new_pg_database())
        self.assertEqual(rc, 1)
        self.assertIn("--from", err)
        rc, out, err = self.migrate("--from", os.path.join(self.dir, "missing.db"), "--to", harness.new_pg_database())
        self.assertEqual(rc, 1)
        self.assertIn("does not exist", err)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "missing.db")))
        rc, out, err = self.migrate("--from", "sqlite:" + self.sqlite)
        self.assertEqual(rc, 2)
        self.assertIn("--to", err)


if __name__ == "__main__":
    unittest.main()
