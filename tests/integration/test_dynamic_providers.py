"""Dynamic secrets of the providers other than PostgreSQL, end to end through the API and the CLI: a real throwaway
MariaDB (scripts/mariadb.sh) and the Entra ID / Microsoft Graph stand-in (tests/fakes/azure.py). A leased MariaDB
login may SELECT but not INSERT and is refused once its lease is revoked or its `coffer run` has exited; hostile
templates are refused. A leased Entra ID client secret obtains a token at the stand-in's token endpoint until its
lease is revoked; its lease cannot be renewed past the secret's endDateTime, which Graph cannot move.

Neither depends on the storage backend (the lease engine runs on both in test_dynamic_secrets.py): both classes
skip themselves on the PostgreSQL pass."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest
import uuid

import harness
from harness import ServerTestCase
from test_rotations import EntraApp
from test_syncs import WithFakes

ON_POSTGRES = "the providers do not depend on the storage backend: run on the SQLite pass"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ADMIN_PASSWORD = "dyn-admin-" + os.urandom(6).hex()


def mariadb_installed():
    return os.path.exists("/usr/sbin/mariadbd") and shutil.which("mariadb") is not None


def fields_of(out):
    """The KEY=VALUE lines of `coffer leases create` and its lease id (the first line's third word)."""
    fields = dict(line.split("=", 1) for line in out.splitlines() if "=" in line and not line.startswith("#"))
    return out.splitlines()[0].split()[2], fields


class DynamicHelpers:
    def place(self, **extra):
        b = {"projectSlug": self.project["slug"], "environmentSlug": "dev", "path": "/"}
        b.update(extra)
        return b

    def create_dynamic(self, provider, inputs, **extra):
        body = self.place(name=harness.unique("dyn"), provider={"type": provider, "inputs": inputs},
                          defaultTTL="1h", maxTTL="4h")
        body.update(extra)
        return self.ok("POST", "/api/v1/dynamic-secrets", body=body)["dynamicSecret"]

    def lease_state(self, lease_id):
        return self.ok("GET", "/api/v1/dynamic-secrets/leases/" + lease_id)["lease"]


@unittest.skipIf(harness.BACKEND == "postgres", ON_POSTGRES)
@unittest.skipUnless(mariadb_installed(), "MariaDB is not installed (scripts/deps.sh installs mariadb-server)")
class MariaDBLeases(DynamicHelpers, ServerTestCase):
    """The `mysql` provider against a real MariaDB listening on a Unix socket."""

    @classmethod
    def setUpClass(cls):
        # the server runs as `mysql` when the tests run as root: its directory's parent must be searchable
        cls.mdb_dir = os.path.join(tempfile.gettempdir(), "coffer-mdb-" + uuid.uuid4().hex[:12])
        # output to a file, not a pipe: the server the script leaves running would hold a pipe open
        with tempfile.TemporaryFile("w+") as log:
            rc = subprocess.run(["sh", os.path.join(ROOT, "scripts", "mariadb.sh"), "start", cls.mdb_dir],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=120).returncode
            log.seek(0)
            text = log.read()
        if rc != 0:
            cls.stop_mariadb()
            raise RuntimeError("scripts/mariadb.sh start failed: " + text[-2000:])
        cls.socket = text.strip().splitlines()[-1]
        try:
            cls.root("CREATE DATABASE appdb; CREATE TABLE appdb.t (v VARCHAR(32));"
                     " INSERT INTO appdb.t VALUES ('visible');"
                     " CREATE DATABASE otherdb; CREATE TABLE otherdb.t (v VARCHAR(32));"
                     " CREATE USER 'dynadmin'@'%%' IDENTIFIED BY '%s';"
                     " GRANT CREATE USER ON *.* TO 'dynadmin'@'%%';"
                     " GRANT SELECT, INSERT ON appdb.* TO 'dynadmin'@'%%' WITH GRANT OPTION" % ADMIN_PASSWORD)
            super().setUpClass()
        except Exception:
            cls.stop_mariadb()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.stop_mariadb()

    @classmethod
    def stop_mariadb(cls):
        subprocess.run(["sh", os.path.join(ROOT, "scripts", "mariadb.sh"), "stop", cls.mdb_dir],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)

    @classmethod
    def root(cls, sql):
        r = subprocess.run(["mariadb", "--no-defaults", "--socket=" + cls.socket, "-u", "root", "-N", "-B",
                            "-e", sql], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("mariadb as root: " + r.stderr)
        return r.stdout.strip()

    def query(self, user, password, sql):
        """Runs sql as user through the socket: (ok, output). The password goes in the environment, not argv."""
        r = subprocess.run(["mariadb", "--no-defaults", "--socket=" + self.socket, "-u", user, "-N", "-B",
                            "--connect-timeout=5", "-e", sql],
                           env=dict(os.environ, MYSQL_PWD=password), capture_output=True, text=True, timeout=30)
        return r.returncode == 0, (r.stdout + r.stderr).strip()

    def user_exists(self, user):
        return self.root("SELECT COUNT(*) FROM mysql.user WHERE User = '%s'" % user) == "1"

    def setUp(self):
        super().setUp()
        self.project = self.create_project()
        self.conn = self.ok("POST", "/api/v1/app-connections/mysql", body={
            "name": harness.unique("mdb"), "method": "username-and-password",
            "credentials": {"host": self.socket, "port": 3306, "database": "appdb", "username": "dynadmin",
                            "password": ADMIN_PASSWORD}})["appConnection"]

    def test_leased_login_selects_but_cannot_insert_and_dies_with_its_lease(self):
        ds = self.create_dynamic("mysql", {"connectionId": self.conn["id"]})
        self.assertEqual(ds["type"], "mysql")
        self.assertNotIn(ADMIN_PASSWORD, json.dumps(ds))
        rc, out, err = self.cli("leases", "create", ds["name"], "--projectId", self.project["slug"], "--env", "dev")
        self.assertEqual(rc, 0, out + err)
        lease_id, fields = fields_of(out)
        user, password = fields["DB_USERNAME"], fields["DB_PASSWORD"]
        self.assertRegex(user, r"^cf_%s_[a-z0-9]{12}$" % lease_id.replace("-", "")[:8])
        self.assertEqual(self.query(user, password, "SELECT v FROM appdb.t"), (True, "visible"))
        ok, msg = self.query(user, password, "INSERT INTO appdb.t VALUES ('written')")
        self.assertFalse(ok, "the leased login may INSERT")
        self.assertIn("denied", msg)
        ok, msg = self.query(user, password, "SELECT v FROM otherdb.t")
        self.assertFalse(ok, "the leased login reads another database")
        self.assertFalse(self.query(user, "wrong" + password, "SELECT 1")[0])
        # renewal moves the lease's end only (MariaDB keeps none on a login)
        before = self.lease_state(lease_id)["expireAt"]
        rc, out, err = self.cli("leases", "renew", lease_id, "--ttl", "2h")
        self.assertEqual(rc, 0, out + err)
        self.assertGreater(self.lease_state(lease_id)["expireAt"], before)
        self.assertTrue(self.query(user, password, "SELECT 1")[0])

        rc, out, err = self.cli("leases", "revoke", lease_id)
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.lease_state(lease_id)["status"], "revoked")
        ok, msg = self.query(user, password, "SELECT 1")
        self.assertFalse(ok, "the login works after its lease was revoked")
        self.assertIn("Access denied", msg)
        self.assertFalse(self.user_exists(user))
        self.assertEqual(self.root("SELECT v FROM appdb.t"), "visible")

    def test_run_lease_gives_a_working_login_revoked_on_exit(self):
        ds = self.create_dynamic("mysql", {"connectionId": self.conn["id"]})
        seen = os.path.join(tempfile.mkdtemp(prefix="coffer-mdb-run-"), "seen")
        self.addCleanup(shutil.rmtree, os.path.dirname(seen), True)
        script = ('echo "$MYUSER" > %s; MYSQL_PWD="$MYPASS" mariadb --no-defaults --socket=%s -u "$MYUSER" -N -B '
                  '-e "SELECT v FROM appdb.t" >> %s' % (seen, self.socket, seen))
        rc, out, err = self.cli("run", "--projectId", self.project["slug"], "--env", "dev",
                                "--lease", ds["name"] + ":DB_USERNAME=MYUSER,DB_PASSWORD=MYPASS",
                                "--", "sh", "-c", script)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("revoked lease", err)
        with open(seen) as f:
            user, value = f.read().split()
        self.assertTrue(user.startswith("cf_"), user)
        self.assertEqual(value, "visible", "the command's login could not SELECT")
        self.assertFalse(self.user_exists(user), "the login outlived `coffer run`")

    def test_hostile_templates_and_names_are_refused(self):
        cid = self.conn["id"]
        for inputs, words in (
                ({"creationStatement": "CREATE USER {{username}} IDENTIFIED BY '{{password}}'"},
                 "single quotes"),
                ({"creationStatement": "CREATE USER '{{username}}'@'%' IDENTIFIED BY '{{password}}' -- {{username}}"},
                 "creationStatement"),
                ({"creationStatement": "CREATE USER '{{username}}'@'%' IDENTIFIED BY '{{password}}';"
                                       " GRANT ALL ON *.* TO '{{evil}}'@'%'"}, "creationStatement"),
                ({"database": "appdb`.* TO x; DROP DATABASE appdb; --"}, "database"),
                ({"privileges": ["SELECT", "ALL PRIVILEGES; DROP DATABASE appdb"]}, "privileges"),
                ({"revocationStatement": "DROP USER '{{password}}'@'%'"}, "revocationStatement"),
                ({"renewStatement": "SELECT 1"}, "renewStatement")):
            body = self.place(name=harness.unique("bad"), provider={"type": "mysql",
                                                                     "inputs": dict(inputs, connectionId=cid)})
            self.assertError(self.api("POST", "/api/v1/dynamic-secrets", body=body), 422, None, words)
        # a login that may not create users: 409 naming the statement, no lease left behind
        self.root("CREATE USER 'weak'@'%%' IDENTIFIED BY '%s'; GRANT SELECT ON appdb.* TO 'weak'@'%%'"
                  % ADMIN_PASSWORD)
        weak = self.ok("POST", "/api/v1/app-connections/mysql", body={
            "name": harness.unique("weak"), "method": "username-and-password",
            "credentials": {"host": self.socket, "port": 3306, "database": "appdb", "username": "weak",
                            "password": ADMIN_PASSWORD}})["appConnection"]
        ds = self.create_dynamic("mysql", {"connectionId": weak["id"]})
        r = self.api("POST", "/api/v1/dynamic-secrets/leases", body=self.place(dynamicSecretName=ds["name"]))
        self.assertError(r, 409, None, "creation statement 1 of 2")
        self.assertNotIn(ADMIN_PASSWORD, r.body.decode())
        leases = self.ok("GET", "/api/v1/dynamic-secrets/leases", query={"all": "true"})["leases"]
        self.assertEqual([l for l in leases if l["dynamicSecretId"] == ds["id"] and l["status"] == "active"], [])
        self.assertEqual(self.root("SELECT v FROM appdb.t"), "visible")


@unittest.skipIf(harness.BACKEND == "postgres", ON_POSTGRES)
class EntraLeases(WithFakes, EntraApp, DynamicHelpers, ServerTestCase):
    """The `azure-entra-id-app` provider against tests/fakes/azure.py: Graph's addPassword/removePassword and the
    Entra ID v2.0 token endpoint, with their permission rules."""

    FAKES = {"fake": "azure.py"}

    def setUp(self):
        super().setUp()
        self.entra_setup()
        self.project = self.create_project()

    def graph_secrets(self):
        """The keyIds the stand-in's application holds."""
        state = self.fake.call("GET", "/_fake/graph/state", query={"objectId": self.object_id})[1]
        return [c["keyId"] for c in state["passwordCredentials"]]

    def test_leased_client_secret_obtains_a_token_until_revoked(self):
        ds = self.create_dynamic("azure-entra-id-app", {"connectionId": self.graph_conn["id"],
                                                        "objectId": self.object_id, "clientId": self.app_id})
        self.assertNotIn(self.rotator_secret, json.dumps(ds))
        r = self.api("POST", "/api/v1/dynamic-secrets/leases", body=self.place(dynamicSecretName=ds["name"]))
        self.assertEqual(r.status, 201, r.body[:500])
        lease, data = r.json["lease"], r.json["data"]
        self.assertEqual((data["CLIENT_ID"], data["TENANT_ID"]), (self.app_id, self.tenant))
        self.assertEqual(lease["externalEntityId"], self.graph_secrets()[0])
        status, body = self.token_with(data["CLIENT_SECRET"])
        self.assertEqual(status, 200, body)
        self.assertIn("access_token", json.loads(body))

        # a second lease through the CLI: its own secret, revoked on its own
        rc, out, err = self.cli("leases", "create", ds["name"], "--projectId", self.project["slug"], "--env", "dev")
        self.assertEqual(rc, 0, out + err)
        other_id, other = fields_of(out)
        self.assertNotEqual(other["CLIENT_SECRET"], data["CLIENT_SECRET"])
        self.assertEqual(len(self.graph_secrets()), 2)

        rc, out, err = self.cli("leases", "revoke", lease["id"])
        self.assertEqual(rc, 0, out + err)
        status, body = self.token_with(data["CLIENT_SECRET"])
        self.assertEqual(status, 401, body)
        self.assertIn("AADSTS7000215", body)
        self.assertNotIn(lease["externalEntityId"], self.graph_secrets())
        self.assertEqual(self.token_with(other["CLIENT_SECRET"])[0], 200, "revoking one lease ended the other's")
        self.ok("DELETE", "/api/v1/dynamic-secrets/leases/" + other_id)
        self.assertEqual(self.token_with(other["CLIENT_SECRET"])[0], 401)
        self.assertEqual(self.graph_secrets(), [])

    def test_renewal_stops_at_the_secrets_end_date(self):
        ds = self.create_dynamic("azure-entra-id-app", {"connectionId": self.graph_conn["id"],
                                                        "objectId": self.object_id, "clientId": self.app_id})
        r = self.api("POST", "/api/v1/dynamic-secrets/leases",
                     body=self.place(dynamicSecretName=ds["name"], ttl="1h"))
        self.assertEqual(r.status, 201, r.body[:500])
        lease = r.json["lease"]
        state = self.fake.call("GET", "/_fake/graph/state", query={"objectId": self.object_id})[1]
        end_date = state["passwordCredentials"][0]["endDateTime"]
        # within maxTTL (4h), but past the secret's endDateTime: refused, naming the end
        r = self.api("POST", "/api/v1/dynamic-secrets/leases/%s/renew" % lease["id"], body={"ttl": "2h"})
        self.assertError(r, 409, None, "cannot be renewed past", end_date[:16])
        self.assertEqual(self.lease_state(lease["id"])["expireAt"], lease["expireAt"])
        rc, out, err = self.cli("leases", "renew", lease["id"], "--ttl", "3h")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("cannot be renewed past", err)
        # shortening is allowed; the lease then still ends before its secret
        r = self.api("POST", "/api/v1/dynamic-secrets/leases/%s/renew" % lease["id"], body={"ttl": "30m"})
        self.assertEqual(r.status, 200, r.body[:500])
        self.assertLess(self.lease_state(lease["id"])["expireAt"], lease["expireAt"])

    def test_bad_inputs(self):
        cid = self.graph_conn["id"]
        for inputs, words in (({"connectionId": cid, "clientId": self.app_id}, "objectId"),
                              ({"connectionId": cid, "objectId": self.object_id}, "clientId"),
                              ({"connectionId": cid, "objectId": self.object_id, "clientId": self.app_id,
                                "clientSecret": "x"}, "clientSecret")):
            body = self.place(name=harness.unique("bad"), provider={"type": "azure-entra-id-app", "inputs": inputs})
            self.assertError(self.api("POST", "/api/v1/dynamic-secrets", body=body), 422, None, words)
        # an application the connection's principal does not own: 409 naming the permission, nothing kept
        foreign = str(uuid.uuid4())
        self.control("/_fake/graph/applications", {"tenant": self.tenant, "objectId": foreign,
                                                   "appId": str(uuid.uuid4()), "owners": []})
        ds = self.create_dynamic("azure-entra-id-app", {"connectionId": cid, "objectId": foreign,
                                                        "clientId": self.app_id})
        r = self.api("POST", "/api/v1/dynamic-secrets/leases", body=self.place(dynamicSecretName=ds["name"]))
        self.assertError(r, 409, None, "Application.ReadWrite.OwnedBy")
        self.assertNotIn(self.rotator_secret, r.body.decode())


if __name__ == "__main__":
    unittest.main()
