"""Secret rotations (docs/rotation.md) end to end: the real server, the real CLI, a real throwaway PostgreSQL
cluster (scripts/pg.sh) for the postgres-credentials rotator.

Checked: the API's shapes (/api/v2/secret-rotations, Infisical's envelope and field names) and its refusals with
the problem named (unknown type, missing or unknown mapping output, a missing, unknown or wrong-app connection,
gracePeriod < 0, a schedule out of range, an unknown folder); the CLI (list, get, status with history, run
--dry-run, plan, remove). Against PostgreSQL: a rotation issues a password on the idle role, stores user and
password as new versions of the mapped secrets, verifies them and, after the grace period (moved with the test
clock), revokes the previous role's password, which PostgreSQL then refuses while the new one logs in; the grace
period keeps the old password working until it ends; a stopped cluster leaves the old credential in place, the
status naming step and cause, and an alert on a channel; a server killed at every step of a rotation
(COFFER_TEST_ROTATION_CRASH_AT, a test build only) finishes after a restart with exactly one working password;
no password in the server log or the cluster's statement log.
"""

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

import harness
from harness import ServerTestCase
from test_syncs import WithFakes

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PG_SCRIPT = os.path.join(REPO, "scripts", "pg.sh")
ROTATOR_PASSWORD = "rotator-pass-" + uuid.uuid4().hex[:12]
LEASE_S = 5 * 60  # the rotation claim's lease (core/rotations.c CLAIM_LEASE_MS)


def pg_installed():
    return os.path.isdir("/usr/lib/postgresql") and any(
        os.path.exists(os.path.join("/usr/lib/postgresql", v, "bin", "initdb"))
        for v in os.listdir("/usr/lib/postgresql"))


class Cluster:
    """A throwaway PostgreSQL cluster whose pg_hba.conf asks every role but the bootstrap superuser for a SCRAM
    password, with every statement logged (so that the log can be searched for passwords)."""

    def __init__(self):
        self.top = tempfile.mkdtemp(prefix="coffer-rotpg-")
        self.dir = os.path.join(self.top, "pg")
        os.chmod(self.top, 0o755)  # as root, the cluster runs as an unprivileged user that must reach it
        deadline = time.monotonic() + 120
        while True:  # one cluster at a time on this machine (port 5433): wait for another to go
            r = subprocess.run([PG_SCRIPT, "start", self.dir], capture_output=True, text=True, timeout=120)
            if r.returncode == 0:
                break
            shutil.rmtree(self.dir, ignore_errors=True)
            if time.monotonic() > deadline:
                raise unittest.SkipTest("scripts/pg.sh start failed: " + r.stderr[-500:])
            time.sleep(5)
        with open(os.path.join(self.dir, "data", "pg_hba.conf"), "w") as f:
            f.write("local all coffer trust\nlocal all all scram-sha-256\n")
        self.su("ALTER SYSTEM SET log_statement = 'all'")
        self.su("CREATE ROLE rotator LOGIN CREATEROLE PASSWORD '%s'" % ROTATOR_PASSWORD)
        self.su("CREATE ROLE app_blue LOGIN PASSWORD 'blue-initial'")
        self.su("CREATE ROLE app_green LOGIN PASSWORD 'green-initial'")
        self.su("SELECT pg_reload_conf()")
        for _ in range(100):
            if not self.can_login("app_blue", "wrong"):
                break
            time.sleep(0.05)

    def uri(self, user="coffer"):
        return "postgresql:///postgres?host=%s&port=5433&user=%s" % (self.dir, user)

    def su(self, query):
        return harness.psql(self.uri(), query)

    def can_login(self, user, password):
        bindir = sorted(os.listdir("/usr/lib/postgresql"))[-1]
        env = dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="5")
        r = subprocess.run([os.path.join("/usr/lib/postgresql", bindir, "bin", "psql"), "-X", "-q", "-A", "-t",
                            "-w", "-d", self.uri(user), "-c", "SELECT current_user"],
                           env=env, capture_output=True, text=True, timeout=30)
        return r.returncode == 0 and r.stdout.strip() == user

    def log(self):
        try:
            with open(os.path.join(self.dir, "server.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def halt(self):
        subprocess.run([PG_SCRIPT, "halt", self.dir], capture_output=True, timeout=120, check=True)

    def resume(self):
        subprocess.run([PG_SCRIPT, "resume", self.dir], capture_output=True, timeout=120, check=True)

    def stop(self):
        subprocess.run([PG_SCRIPT, "stop", self.dir], capture_output=True, timeout=120)
        shutil.rmtree(self.top, ignore_errors=True)


class RotationHelpers:
    def pg_connection(self, cluster):
        return self.ok("POST", "/api/v1/app-connections/postgres", body={
            "name": harness.unique("pg"), "method": "username-and-password",
            "credentials": {"host": cluster.dir, "port": 5433, "database": "postgres", "username": "rotator",
                            "password": ROTATOR_PASSWORD}})["appConnection"]

    def body(self, pid, conn_id, **extra):
        b = {"name": harness.unique("rot"), "projectId": pid, "environment": "dev", "secretPath": "/",
             "connectionId": conn_id, "parameters": {"username1": "app_blue", "username2": "app_green"},
             "secretsMapping": {"username": "DB_USER", "password": "DB_PASSWORD"}, "gracePeriod": 0}
        b.update(extra)
        return b

    def rotation(self, rid):
        return self.ok("GET", "/api/v2/secret-rotations/any/" + rid)["secretRotation"]

    def wait_rotation(self, rid, predicate, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            r = self.rotation(rid)
            if predicate(r):
                return r
            if time.monotonic() > deadline:
                self.fail("rotation %s never got there: %s" % (rid, json.dumps(r, indent=1)))
            time.sleep(0.1)

    def done(self, rid, generation, timeout=30):
        return self.wait_rotation(rid, lambda r: r["generation"] >= generation and r["pendingStep"] is None
                                  and r["rotationStatus"] == "succeeded", timeout)

    def secret(self, pid, key):
        r = self.get_secret(pid, key)
        self.assertEqual(r.status, 200, r.body[:300])
        return r.json["secret"]


class RotationApi(RotationHelpers, ServerTestCase):
    """The API's refusals and the CLI, without a provider being called."""

    def setUp(self):
        super().setUp()
        self.pid = self.create_project()["id"]
        self.conn = self.ok("POST", "/api/v1/app-connections/postgres", body={
            "name": harness.unique("pg"), "method": "username-and-password",
            "credentials": {"host": "/nonexistent-coffer-pg", "port": 5433, "database": "postgres",
                            "username": "rotator", "password": "not-used-" + uuid.uuid4().hex}})["appConnection"]

    def test_refusals_name_the_problem(self):
        other_app = self.ok("POST", "/api/v1/app-connections/github", body={
            "name": harness.unique("gh"), "method": "personal-access-token",
            "credentials": {"personalAccessToken": "ghp_" + uuid.uuid4().hex, "host": "http://127.0.0.1:9"}}
        )["appConnection"]
        cases = [
            ({"secretsMapping": {"username": "DB_USER"}}, 422, "'password' is required"),
            ({"secretsMapping": {"username": "DB_USER", "password": "DB_PASSWORD", "token": "T"}}, 422,
             "'token' is not an output"),
            ({"secretsMapping": {"username": "SAME", "password": "SAME"}}, 422, "same key"),
            ({"secretsMapping": {"username": "DB_USER", "password": "bad key!"}}, 422, "secretsMapping"),
            ({"secretsMapping": None}, 422, "secretsMapping is required"),
            ({"parameters": {"username1": "app_blue"}}, 422, "username2"),
            ({"connectionId": None}, 422, "connectionId is required"),
            ({"connectionId": str(uuid.uuid4())}, 422, "not found"),
            ({"connectionId": other_app["id"]}, 422, "is a github connection, not postgres"),
            ({"gracePeriod": -1}, (400, 422), "gracePeriod"),
            ({"rotationInterval": 100000}, (400, 422), "rotationInterval"),
            ({"rotateAtUtc": {"hours": 24, "minutes": 0}}, (400, 422), "hours"),
            ({"consumers": [{"type": "carrier-pigeon", "config": {}}]}, 422, "unknown consumer type"),
            ({"consumers": {"type": "x"}}, 422, "consumers must be an array"),
            ({"secretPath": "/missing"}, 422, "/missing"),
            ({"environment": "nope"}, (404, 422), "nope"),
        ]
        for extra, status, words in cases:
            with self.subTest(extra=extra):
                body = self.body(self.pid, self.conn["id"])
                for k, v in extra.items():
                    if v is None:
                        body.pop(k, None)
                    else:
                        body[k] = v
                r = self.api("POST", "/api/v2/secret-rotations/postgres-credentials", body=body)
                statuses = status if isinstance(status, tuple) else (status,)
                self.assertIn(r.status, statuses, r.body[:400])
                self.assertError(r, r.status, None, words)
        r = self.api("POST", "/api/v2/secret-rotations/carrier-pigeon", body=self.body(self.pid, self.conn["id"]))
        self.assertError(r, 404, "NotFound", "carrier-pigeon")
        self.assertEqual(self.ok("GET", "/api/v2/secret-rotations",
                                 query={"projectId": self.pid})["secretRotations"], [])
        self.assertError(self.api("GET", "/api/v2/secret-rotations/any/" + str(uuid.uuid4())), 404, "NotFound")
        self.assertError(self.api("GET", "/api/v2/secret-rotations/any/not-a-uuid"), 422, None, "rotationId")

    def test_shapes_dry_run_cli_and_remove(self):
        body = self.body(self.pid, self.conn["id"], isAutoRotationEnabled=False, rotationInterval=30,
                         rotateAtUtc={"hours": 2, "minutes": 30}, gracePeriod=600)
        r = self.ok("POST", "/api/v2/secret-rotations/postgres-credentials", body=body)["secretRotation"]
        for field in ("id", "name", "type", "projectId", "connectionId", "environment", "folder", "parameters",
                      "secretsMapping", "isAutoRotationEnabled", "rotationInterval", "rotateAtUtc",
                      "rotationStatus", "lastRotatedAt", "nextRotationAt", "consumers", "gracePeriod",
                      "generation", "pendingStep", "lastErrorStep", "lastErrorCause"):
            self.assertIn(field, r)
        self.assertEqual((r["type"], r["isAutoRotationEnabled"], r["rotationInterval"], r["gracePeriod"]),
                         ("postgres-credentials", False, 30, 600))
        self.assertEqual(r["rotateAtUtc"], {"hours": 2, "minutes": 30})
        self.assertEqual((r["rotationStatus"], r["generation"], r["nextRotationAt"]), ("idle", 0, None))
        self.assertError(self.api("POST", "/api/v2/secret-rotations/postgres-credentials",
                                  body=dict(body)), 400, None, "already exists")

        dry = self.ok("POST", "/api/v2/secret-rotations/any/%s/rotate-secrets" % r["id"],
                      query={"dryRun": "true"})
        steps = [c["step"] for c in dry["calls"]]
        self.assertIn("issue", steps)
        self.assertIn("store", steps)
        self.assertIn("revoke", steps)
        self.assertEqual(self.rotation(r["id"])["generation"], 0, "a dry run rotated")
        rc, out, err = self.cli("rotations", "run", r["id"], "--dry-run")
        self.assertEqual(rc, 0, err)
        self.assertIn("nothing was called", out)
        self.assertIn("DB_PASSWORD", out)

        rc, out, err = self.cli("rotations", "list", "--projectId", self.pid)
        self.assertEqual(rc, 0, err)
        self.assertIn(r["name"], out)
        self.assertIn("postgres-credentials", out)
        rc, out, err = self.cli("rotations", "status", r["id"])
        self.assertEqual(rc, 0, err)
        self.assertIn("generation:    0", out)

        # plan: a secret with an end date and no rotation is flagged; exit 1
        self.set_secret(self.pid, "LEGACY_TOKEN", "t-" + uuid.uuid4().hex,
                        expiresAt=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 30 * 86400)))
        rc, out, err = self.cli("rotations", "plan", "--projectId", self.pid)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("LEGACY_TOKEN", out)
        self.assertIn("no rotation", out)

        rc, out, err = self.cli("rotations", "remove", r["id"])
        self.assertEqual(rc, 0, err)
        self.assertError(self.api("GET", "/api/v2/secret-rotations/any/" + r["id"]), 404, "NotFound")
        rc, out, err = self.cli("rotations", "create", "postgres-credentials", "--projectId", self.pid,
                                "--name", "x", "--parameters", "{", "--mapping", "{}")
        self.assertEqual(rc, 2, out + err)
        self.assertIn("--parameters", err)


@unittest.skipUnless(pg_installed(), "PostgreSQL server binaries not installed (apt-get install postgresql)")
class PostgresRotation(RotationHelpers, ServerTestCase):
    """The postgres-credentials rotator end to end on a real cluster."""

    server_args = ("--notify-interval", "1s", "--notify-retry-base", "1s")

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster()
        try:
            super().setUpClass()
        except Exception:
            cls.cluster.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.cluster.stop()

    def setUp(self):
        super().setUp()
        self.pid = self.create_project()["id"]
        self.conn = self.pg_connection(self.cluster)

    def create(self, **extra):
        return self.ok("POST", "/api/v2/secret-rotations/postgres-credentials",
                       body=self.body(self.pid, self.conn["id"], **extra))["secretRotation"]

    def assert_only_current_works(self, rid):
        """The mapped secrets log in; the other role's password is revoked (NULL): exactly one working login."""
        user, password = self.secret(self.pid, "DB_USER"), self.secret(self.pid, "DB_PASSWORD")
        self.assertTrue(self.cluster.can_login(user["secretValue"], password["secretValue"]),
                        "the stored credential does not log in")
        other = "app_green" if user["secretValue"] == "app_blue" else "app_blue"
        rows = self.cluster.su("SELECT rolpassword IS NULL FROM pg_authid WHERE rolname = '%s'" % other)
        return user, password, other, rows[0][0] == "t"

    def test_rotation_end_to_end(self):
        r = self.create(gracePeriod=3600, daysBeforeExpiry=7, lifetime=30 * 86400)
        r = self.done(r["id"], 1)
        user = self.secret(self.pid, "DB_USER")
        password = self.secret(self.pid, "DB_PASSWORD")
        self.assertEqual(user["secretValue"], "app_blue")
        self.assertTrue(self.cluster.can_login("app_blue", password["secretValue"]))
        self.assertFalse(self.cluster.can_login("app_blue", "blue-initial"))
        first_password = password["secretValue"]
        self.assertEqual(r["currentCredentialId"], "app_blue")
        self.assertIsNotNone(r["nextRotationAt"])

        # the second rotation moves to the other role; the old one works through the grace period
        r = self.ok("POST", "/api/v2/secret-rotations/any/%s/rotate-secrets" % r["id"])["secretRotation"]
        r = self.wait_rotation(r["id"], lambda x: x["pendingStep"] == "grace")
        self.assertEqual((r["currentCredentialId"], r["previousCredentialId"]), ("app_green", "app_blue"))
        user = self.secret(self.pid, "DB_USER")
        password = self.secret(self.pid, "DB_PASSWORD")
        self.assertEqual(user["secretValue"], "app_green")
        self.assertTrue(self.cluster.can_login("app_green", password["secretValue"]))
        self.assertTrue(self.cluster.can_login("app_blue", first_password), "revoked before the grace period")
        self.advance_clock(3601)
        r = self.done(r["id"], 2)
        self.assertFalse(self.cluster.can_login("app_blue", first_password),
                         "the previous password still works after the grace period")
        self.assertTrue(self.cluster.can_login("app_green", password["secretValue"]))

        steps = [e["step"] for e in self.ok("GET", "/api/v2/secret-rotations/any/%s/history" % r["id"])["history"]]
        for step in ("start", "issue", "store", "verify", "syncs", "grace", "revoke"):
            self.assertIn(step, steps)
        rc, out, err = self.cli("rotations", "status", r["id"])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("generation:    2 (credential app_green", out)

        # no password in the server's log, the cluster's statement log, or the audit log
        events = json.dumps(self.ok("GET", "/api/v1/audit/events", query={"limit": "1000"}))
        self.assertIn("secret-rotations.revoke", events)
        for secret in (first_password, password["secretValue"], ROTATOR_PASSWORD):
            self.assertNotIn(secret, self.server.stderr)
            self.assertNotIn(secret, self.server.stdout)
            self.assertNotIn(secret, self.cluster.log())
            self.assertNotIn(secret, events)
            self.assertNotIn(secret, json.dumps(self.rotation(r["id"])))

    def test_outage_keeps_the_old_credential_and_alerts(self):
        from test_notifications import Receiver
        receiver = Receiver()
        self.addCleanup(receiver.close)
        self.ok("POST", "/api/v1/notifications/channels",
                body={"type": "webhook", "url": receiver.url, "workspaceId": self.pid, "name": "ops"})
        r = self.done(self.create()["id"], 1)
        before = self.secret(self.pid, "DB_PASSWORD")["secretValue"]
        self.cluster.halt()
        try:
            r = self.ok("POST", "/api/v2/secret-rotations/any/%s/rotate-secrets" % r["id"])["secretRotation"]
            self.assertEqual(r["rotationStatus"], "failed", r)
            self.assertEqual(r["lastErrorStep"], "issue")
            self.assertIn(r["lastErrorCause"], ("unreachable", "connection", "internal"))
            self.assertIsNotNone(r["nextAttemptAt"])
            rc, out, err = self.cli("rotations", "status", r["id"])
            self.assertEqual(rc, 1, out + err)
            self.assertIn("step, cause:   issue", out)
            got, _ = harness_wait(lambda: receiver.accepted(), 15)
            self.assertTrue(got, "no alert on the channel")
            self.assertEqual(got[0]["event"], "coffer.rotation", got[0])
            self.assertEqual((got[0]["item"]["step"], got[0]["item"]["rotationId"]), ("issue", r["id"]))
        finally:
            self.cluster.resume()
        self.assertEqual(self.secret(self.pid, "DB_PASSWORD")["secretValue"], before)
        self.assertTrue(self.cluster.can_login("app_blue", before), "the old credential stopped working")
        # the retry (asked for here) finishes once the cluster is back
        self.ok("POST", "/api/v2/secret-rotations/any/%s/rotate-secrets" % r["id"])
        self.done(r["id"], 2)

    def test_adopting_the_role_in_use_rotates_the_other_first(self):
        # the application logs in as app_blue today: adopting it, the first rotation sets app_green
        r = self.api("POST", "/api/v2/secret-rotations/postgres-credentials",
                     body=self.body(self.pid, self.conn["id"], currentCredentialId="app_red"))
        self.assertError(r, 422, None, "currentCredentialId", "is not one of the rotation's roles")
        r = self.create(currentCredentialId="app_blue")
        self.assertEqual((r["generation"], r["currentCredentialId"], r["nextRotationAt"]), (0, "app_blue", None))
        self.assertTrue(self.cluster.can_login("app_blue", "blue-initial"))
        r = self.ok("POST", "/api/v2/secret-rotations/any/%s/rotate-secrets" % r["id"])["secretRotation"]
        r = self.done(r["id"], 1)
        self.assertEqual((r["currentCredentialId"], r["previousCredentialId"]), ("app_green", None))
        self.assertEqual(self.secret(self.pid, "DB_USER")["secretValue"], "app_green")
        self.assertTrue(self.cluster.can_login("app_green", self.secret(self.pid, "DB_PASSWORD")["secretValue"]))
        self.assertFalse(self.cluster.can_login("app_blue", "blue-initial"),
                         "the adopted role's password still works after the first rotation")

    def test_kill9_at_every_step_recovers(self):
        if not harness.test_build():
            self.skipTest(harness.NOT_A_TEST_BUILD)
        for point in ("issue-before", "issue", "store", "verify", "revoke"):
            with self.subTest(point=point):
                r = self.done(self.create()["id"], 1)
                self.server.extra_env["COFFER_TEST_ROTATION_CRASH_AT"] = point
                self.server.restart()
                try:  # the server exits in the middle of this request
                    self.api("POST", "/api/v2/secret-rotations/any/%s/rotate-secrets" % r["id"], timeout=10)
                except OSError:
                    pass
                deadline = time.monotonic() + 20
                while self.server.alive() and time.monotonic() < deadline:
                    time.sleep(0.05)
                self.assertFalse(self.server.alive(), "the server did not stop at " + point)
                del self.server.extra_env["COFFER_TEST_ROTATION_CRASH_AT"]
                self.server.start()
                self.advance_clock(LEASE_S + 1)  # the dead process's claim runs out
                r = self.done(r["id"], 2, timeout=60)
                user, _, other, other_revoked = self.assert_only_current_works(r["id"])
                self.assertEqual(user["secretValue"], "app_green")
                self.assertTrue(other_revoked, "%s: the previous role still has a password" % point)
                print("TEST: kill -9 at %s: resumed and finished at generation %d" % (point, r["generation"]))


class EntraApp:
    """An Entra ID application to rotate in tests/fakes/azure.py (self.fake): a rotator application that may manage
    the applications it owns (Application.ReadWrite.OwnedBy), the owned application, and the
    azure-client-secrets connection of the rotator (self.graph_conn)."""

    def control(self, path, body, fake=None):
        status, answer = (fake or self.fake).call("POST", path, body)
        self.assertEqual(status, 200, answer)
        return answer

    def entra_setup(self):
        f = self.fake
        self.tenant = str(uuid.uuid4())
        self.rotator_id, self.rotator_secret = str(uuid.uuid4()), "rotator-" + uuid.uuid4().hex
        self.app_id, self.object_id = str(uuid.uuid4()), str(uuid.uuid4())
        far = int(time.time()) + 400 * 86400
        # the rotator's own application: may manage the applications it owns
        self.control("/_fake/entra/apps", {"tenant": self.tenant, "clientId": self.rotator_id,
                                           "secrets": [{"value": self.rotator_secret, "expiresAt": far}]})
        self.control("/_fake/graph/roles", {"tenant": self.tenant, "clientId": self.rotator_id,
                                            "roles": ["Application.ReadWrite.OwnedBy"]})
        # the rotated application
        self.control("/_fake/graph/applications", {"tenant": self.tenant, "objectId": self.object_id,
                                                   "appId": self.app_id, "owners": [self.rotator_id]})
        self.graph_conn = self.ok("POST", "/api/v1/app-connections/azure-client-secrets", body={
            "name": harness.unique("entra"), "method": "client-secret",
            "credentials": {"tenantId": self.tenant, "clientId": self.rotator_id,
                            "clientSecret": self.rotator_secret, "authorityHost": f.url + "/entra",
                            "graphHost": f.url + "/graph"}})["appConnection"]

    def entra_rotation(self, fields):
        """Creates an azure-client-secret rotation of the application in self.pid with fields (consumers, schedule,
        ...) added to its name, place, connection, parameters and mapping (AZURE_CLIENT_ID, AZURE_CLIENT_SECRET)."""
        body = {"name": harness.unique("entra-rot"), "projectId": self.pid, "environment": "dev",
                "secretPath": "/", "connectionId": self.graph_conn["id"],
                "parameters": {"objectId": self.object_id, "clientId": self.app_id},
                "secretsMapping": {"clientId": "AZURE_CLIENT_ID", "clientSecret": "AZURE_CLIENT_SECRET"}}
        body.update(fields)
        return self.ok("POST", "/api/v2/secret-rotations/azure-client-secret", body=body)["secretRotation"]

    def token_with(self, secret):
        """The Entra v2.0 token endpoint's answer to the rotated application with secret: (status, body)."""
        import urllib.parse
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.fake.port, timeout=10)
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": self.app_id,
                                       "client_secret": secret,
                                       "scope": "https://graph.microsoft.com/.default"})
        c.request("POST", "/entra/%s/oauth2/v2.0/token" % self.tenant, body=form,
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        return r.status, body


class AzureRotation(WithFakes, EntraApp, RotationHelpers, ServerTestCase):
    """The incident: an Entra ID client secret behind an Azure DevOps service connection, rotated through Microsoft
    Graph and pushed to the service connection, against tests/fakes/azure.py (its Entra, Graph and Azure DevOps
    share their state: a secret removed through Graph stops working for the service connection too)."""

    FAKES = {"fake": "azure.py"}

    server_args = ("--notify-interval", "1s", "--notify-retry-base", "1s")

    def setUp(self):
        super().setUp()
        self.pid = self.create_project()["id"]
        f = self.fake
        self.entra_setup()
        self.initial = "initial-" + uuid.uuid4().hex
        # Azure DevOps: an organization, a PAT that may manage service connections, the service connection
        self.org, self.pat = harness.unique("org"), "pat-" + uuid.uuid4().hex
        self.control("/_fake/ado/orgs", {"org": self.org, "projects": [{"name": "Shop"}]})
        self.control("/_fake/ado/pats", {"org": self.org, "token": self.pat,
                                         "scopes": ["vso.serviceendpoint_manage", "vso.project"]})
        self.endpoint = str(uuid.uuid4())
        self.control("/_fake/ado/endpoints", {"org": self.org, "project": "Shop", "id": self.endpoint,
                                              "name": "azure-prod", "tenantId": self.tenant,
                                              "clientId": self.app_id, "key": self.initial})
        self.ado_conn = self.ok("POST", "/api/v1/app-connections/azure-devops", body={
            "name": harness.unique("ado"), "method": "access-token",
            "credentials": {"accessToken": self.pat, "orgName": self.org,
                            "instanceUrl": f.url + "/ado"}})["appConnection"]

    def create(self, **extra):
        return self.entra_rotation(dict({
            "consumers": [{"type": "azure-devops-service-connection", "connectionId": self.ado_conn["id"],
                           "config": {"project": "Shop", "endpointId": self.endpoint}}],
            "gracePeriod": 3600, "daysBeforeExpiry": 14, "lifetime": 90 * 86400}, **extra))

    def live_credentials(self):
        return self.fake.call("GET", "/_fake/graph/state", query={"objectId": self.object_id})[1][
            "passwordCredentials"]

    def test_adopting_the_secret_in_use_retires_it_after_the_first_rotation(self):
        if not harness.test_build():
            self.skipTest(harness.NOT_A_TEST_BUILD)
        # the secret the service connection holds today, made in the portal 70 days ago, 20 days left
        key_id, ends = str(uuid.uuid4()), int(time.time()) + 20 * 86400
        end_text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ends))
        self.control("/_fake/entra/apps", {"tenant": self.tenant, "clientId": self.app_id, "secrets": [
            {"value": self.initial, "expiresAt": ends, "keyId": key_id, "displayName": "made in the portal",
             "endDateTime": end_text}]})
        self.assertEqual(self.fake.call("POST", "/_fake/ado/use-endpoint",
                                        {"org": self.org, "id": self.endpoint})[0], 200)
        for wrong, words in ((str(uuid.uuid4()), "has no client secret with keyId"),
                             ("not-a-key", "is not a client secret's keyId")):
            r = self.api("POST", "/api/v2/secret-rotations/azure-client-secret",
                         body={"name": harness.unique("adopt"), "projectId": self.pid, "environment": "dev",
                               "secretPath": "/", "connectionId": self.graph_conn["id"],
                               "parameters": {"objectId": self.object_id, "clientId": self.app_id},
                               "secretsMapping": {"clientId": "A", "clientSecret": "B"},
                               "currentCredentialId": wrong})
            self.assertError(r, 422, None, "currentCredentialId", words)
        r = self.create(currentCredentialId=key_id)
        # adopted: nothing issued, the end date read from Graph, the next rotation 14 days before it
        self.assertEqual((r["generation"], r["currentCredentialId"]), (0, key_id), r)
        self.assertEqual(r["currentCredentialExpiresAt"][:19], end_text[:19])
        self.assertEqual(r["nextRotationAt"][:10],
                         time.strftime("%Y-%m-%d", time.gmtime(ends - 14 * 86400)))
        self.assertEqual([c["keyId"] for c in self.live_credentials()], [key_id])
        r2 = self.api("PATCH", "/api/v2/secret-rotations/azure-client-secret/" + r["id"],
                      body={"currentCredentialId": key_id})
        self.assertError(r2, 422, None, "currentCredentialId", "only be given when the rotation is created")

        # the first rotation: the adopted secret works through the grace period, then is removed
        self.ok("POST", "/api/v2/secret-rotations/any/%s/rotate-secrets" % r["id"])
        r = self.wait_rotation(r["id"], lambda x: x["pendingStep"] == "grace", timeout=60)
        self.assertEqual(r["previousCredentialId"], key_id)
        self.assertEqual(self.token_with(self.initial)[0], 200, "the adopted secret was removed too early")
        self.advance_clock(3601)
        r = self.done(r["id"], 1)
        status, body = self.token_with(self.initial)
        self.assertEqual(status, 401, body)
        self.assertIn("AADSTS7000215", body)
        self.assertEqual([c["keyId"] for c in self.live_credentials()], [r["currentCredentialId"]])
        self.assertEqual(self.fake.call("POST", "/_fake/ado/use-endpoint",
                                        {"org": self.org, "id": self.endpoint})[0], 200)

    def test_an_app_connection_consumer_takes_each_new_secret(self):
        if not harness.test_build():
            self.skipTest(harness.NOT_A_TEST_BUILD)
        # a Coffer connection that signs in as the rotated application with the secret in use today
        key_id, ends = str(uuid.uuid4()), int(time.time()) + 20 * 86400
        self.control("/_fake/entra/apps", {"tenant": self.tenant, "clientId": self.app_id, "secrets": [
            {"value": self.initial, "expiresAt": ends, "keyId": key_id, "displayName": "made in the portal",
             "endDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ends))}]})
        # its check reads its own service principal through Graph, which needs a read permission
        self.control("/_fake/graph/roles", {"tenant": self.tenant, "clientId": self.app_id,
                                            "roles": ["Application.Read.All"]})
        f = self.fake
        conn = self.ok("POST", "/api/v1/app-connections/azure-client-secrets", body={
            "name": harness.unique("as-app"), "method": "client-secret",
            "expiresAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ends)),
            "credentials": {"tenantId": self.tenant, "clientId": self.app_id, "clientSecret": self.initial,
                            "authorityHost": f.url + "/entra", "graphHost": f.url + "/graph"}})["appConnection"]
        check = "/api/v1/app-connections/azure-client-secrets/%s/check" % conn["id"]
        self.ok("POST", check)
        consumer = {"type": "app-connection", "connectionId": conn["id"]}
        # refusals: a connection with no client secret field, a missing connection
        for bad, words in (({"type": "app-connection", "connectionId": self.ado_conn["id"]}, "has no 'clientSecret'"),
                           ({"type": "app-connection", "connectionId": str(uuid.uuid4())}, "not found"),
                           ({"type": "app-connection"}, "connection's UUID is required")):
            r = self.api("POST", "/api/v2/secret-rotations/azure-client-secret", body={
                "name": harness.unique("bad"), "projectId": self.pid, "environment": "dev", "secretPath": "/",
                "connectionId": self.graph_conn["id"],
                "parameters": {"objectId": self.object_id, "clientId": self.app_id},
                "secretsMapping": {"clientId": "A", "clientSecret": "B"}, "consumers": [bad]})
            self.assertError(r, 422, None, "consumers[0].connectionId", words)
        r = self.create(currentCredentialId=key_id, consumers=[consumer])
        # before: the connection's credential is listed by the plan as covered by the rotation
        rc, out, err = self.cli("rotations", "plan", "--projectId", self.pid)
        self.assertIn("connection " + conn["name"], out)
        row = [l for l in out.splitlines() if ("connection " + conn["name"]) in l][0]
        self.assertIn(r["name"], row)
        self.assertNotIn("no rotation", row)
        rc, out, err = self.cli("rotations", "run", r["id"], "--dry-run")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("app connection " + conn["name"], out)

        self.ok("POST", "/api/v2/secret-rotations/any/%s/rotate-secrets" % r["id"])
        r = self.wait_rotation(r["id"], lambda x: x["pendingStep"] == "grace", timeout=60)
        self.advance_clock(3601)
        r = self.done(r["id"], 1)
        self.assertEqual(self.token_with(self.initial)[0], 401)
        # the connection now signs in with the new secret, and carries its end date
        self.ok("POST", check)
        got = self.ok("GET", "/api/v1/app-connections/azure-client-secrets/" + conn["id"])["appConnection"]
        self.assertEqual(got["expiresAt"][:10], r["currentCredentialExpiresAt"][:10])
        new = self.secret(self.pid, "AZURE_CLIENT_SECRET")["secretValue"]
        self.assertNotIn(new, json.dumps(got))
        history = json.dumps(self.ok("GET", "/api/v2/secret-rotations/any/%s/history" % r["id"]))
        self.assertIn("(app-connection) updated and verified", history)
        for secret in (new, self.initial):
            self.assertNotIn(secret, self.server.stderr)
            self.assertNotIn(secret, history)

    def test_rotation_with_a_pipeline_running_sees_zero_failures(self):
        if not harness.test_build():
            self.skipTest(harness.NOT_A_TEST_BUILD)
        r = self.done(self.create()["id"], 1)
        first = self.secret(self.pid, "AZURE_CLIENT_SECRET")
        self.assertEqual(self.secret(self.pid, "AZURE_CLIENT_ID")["secretValue"], self.app_id)
        self.assertEqual(first["expiresAt"][:10], r["currentCredentialExpiresAt"][:10])
        self.assertEqual(self.fake.call("POST", "/_fake/ado/use-endpoint",
                                        {"org": self.org, "id": self.endpoint})[0], 200)

        # a pipeline signing in through the service connection every 100 ms, across a whole rotation
        counts = {"ok": 0, "failed": 0}
        failures = []
        stop = threading.Event()

        def pipeline():
            while not stop.is_set():
                status, answer = self.fake.call("POST", "/_fake/ado/use-endpoint",
                                                {"org": self.org, "id": self.endpoint})
                if status == 200:
                    counts["ok"] += 1
                else:
                    counts["failed"] += 1
                    failures.append(answer)
                stop.wait(0.1)

        self.control("/_fake/entra/propagation", {"seconds": 2})  # a new secret works only after 2 s
        worker = threading.Thread(target=pipeline, daemon=True)
        worker.start()
        try:
            time.sleep(0.5)
            self.ok("POST", "/api/v2/secret-rotations/any/%s/rotate-secrets" % r["id"])
            r = self.wait_rotation(r["id"], lambda x: x["pendingStep"] == "grace", timeout=60)
            time.sleep(0.5)
            self.advance_clock(3601)
            r = self.done(r["id"], 2, timeout=30)
            time.sleep(0.5)
        finally:
            stop.set()
            worker.join(10)
        print("TEST: pipeline across a rotation: %d sign-ins, %d failures" % (counts["ok"], counts["failed"]))
        self.assertEqual(counts["failed"], 0, failures[:3])
        self.assertGreater(counts["ok"], 10)

        second = self.secret(self.pid, "AZURE_CLIENT_SECRET")
        self.assertNotEqual(second["secretValue"], first["secretValue"])
        status, body = self.token_with(first["secretValue"])
        self.assertEqual(status, 401, body)
        self.assertIn("AADSTS7000215", body)
        self.assertEqual(self.token_with(second["secretValue"])[0], 200)
        ep = self.fake.call("GET", "/_fake/ado/endpoints", query={"org": self.org, "id": self.endpoint})[1]
        import hashlib
        self.assertEqual(ep["keySha256"], "sha256:" + hashlib.sha256(second["secretValue"].encode()).hexdigest())
        live = self.live_credentials()
        self.assertEqual([c["keyId"] for c in live], [r["currentCredentialId"]], live)
        # the plan: the client secret is covered by this rotation, 14 days before its end date
        rc, out, err = self.cli("rotations", "plan", "--projectId", self.pid)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("AZURE_CLIENT_SECRET", out)
        self.assertIn(r["name"], out)

        # no secret value in the server's log or the fake's request log
        log = self.fake.log() if hasattr(self.fake, "log") else []
        for secret in (first["secretValue"], second["secretValue"], self.rotator_secret, self.pat):
            self.assertNotIn(secret, self.server.stderr)
            self.assertNotIn(secret, self.server.stdout)
            self.assertNotIn(secret, json.dumps(log))

    def alerts_channel(self):
        from test_notifications import Receiver
        receiver = Receiver()
        self.addCleanup(receiver.close)
        self.ok("POST", "/api/v1/notifications/channels",
                body={"type": "webhook", "url": receiver.url, "workspaceId": self.pid, "name": "ops"})
        return receiver

    def graph_fault_keeps_the_old_secret(self, receiver, start, stop, cause, words, retry_after=None):
        """One rotation (gracePeriod 0) done, then a rotation asked for while start() makes Graph fail: it fails
        at issue with cause and words in its error, alerts, keeps the previous secret working everywhere and
        removes nothing, and (retry_after) waits at least the Retry-After Graph sent before its next attempt;
        once stop() ends the fault the engine's own retry finishes the rotation."""
        r = self.done(self.create(gracePeriod=0)["id"], 1)
        before = self.secret(self.pid, "AZURE_CLIENT_SECRET")["secretValue"]
        self.fake.call("DELETE", "/_fake/log")
        start()
        try:
            r = self.ok("POST", "/api/v2/secret-rotations/any/%s/rotate-secrets" % r["id"])["secretRotation"]
            self.assertEqual((r["rotationStatus"], r["lastErrorStep"], r["lastErrorCause"]),
                             ("failed", "issue", cause), r)
            self.assertIn(words, r["lastRotationMessage"])
            self.assertIsNotNone(r["nextAttemptAt"])
            if retry_after:
                import datetime
                at = [datetime.datetime.fromisoformat(r[k].replace("Z", "+00:00"))
                      for k in ("updatedAt", "nextAttemptAt")]
                self.assertGreaterEqual((at[1] - at[0]).total_seconds(), retry_after - 0.5, r)
            got, _ = harness_wait(lambda: [a for a in receiver.accepted()
                                           if a.get("item", {}).get("rotationId") == r["id"]], 15)
            self.assertTrue(got, "no alert on the channel")
            self.assertEqual((got[0]["event"], got[0]["item"]["step"], got[0]["item"]["cause"]),
                             ("coffer.rotation", "issue", cause), got[0])
            rc, out, err = self.cli("rotations", "status", r["id"])
            self.assertEqual(rc, 1, out + err)
            self.assertIn("step, cause:   issue, " + cause, out)
            # while Graph fails, the old secret still signs in, for Coffer's readers and for the pipeline
            self.assertEqual(self.secret(self.pid, "AZURE_CLIENT_SECRET")["secretValue"], before)
            self.assertEqual(self.token_with(before)[0], 200, "the old secret stopped working")
            self.assertEqual(self.fake.call("POST", "/_fake/ado/use-endpoint",
                                            {"org": self.org, "id": self.endpoint})[0], 200)
            removes = [e for e in self.fake.log() if e["path"].endswith("/removePassword")]
            self.assertEqual(removes, [], "a secret was removed during the fault")
        finally:
            stop()
        # no one asks again: the engine retries on its own once the fault is over
        r = self.done(r["id"], 2, timeout=90)
        after = self.secret(self.pid, "AZURE_CLIENT_SECRET")["secretValue"]
        self.assertNotEqual(after, before)
        self.assertEqual(self.token_with(after)[0], 200)
        self.assertEqual(self.token_with(before)[0], 401, "the previous secret was not revoked")
        self.assertEqual(self.fake.call("POST", "/_fake/ado/use-endpoint",
                                        {"org": self.org, "id": self.endpoint})[0], 200)
        return r

    def test_graph_throttling_keeps_the_old_secret_and_alerts(self):
        receiver = self.alerts_channel()
        self.graph_fault_keeps_the_old_secret(
            receiver,
            lambda: self.control("/_fake/throttle", {"count": 100000, "retryAfter": 1, "prefix": "/graph"}),
            lambda: self.control("/_fake/throttle", {"count": 0, "retryAfter": 0, "prefix": "/graph"}),
            "throttled", "(429 TooManyRequests)", 1)

    def test_graph_outage_keeps_the_old_secret_and_alerts(self):
        receiver = self.alerts_channel()
        for status, retry_after, words in ((503, 3, "(503 serviceNotAvailable)"),
                                           (500, None, "(500 generalException)")):
            with self.subTest(status=status):
                started = []

                def start():
                    started.append(time.time())
                    self.control("/_fake/graph/outage", {"status": status, "retryAfter": retry_after})

                r = self.graph_fault_keeps_the_old_secret(
                    receiver, start, lambda: self.control("/_fake/graph/outage", {"status": 0}),
                    "unreachable", words, retry_after)
                # each Graph call was tried 4 times (3 waits of Retry-After) before the engine took over
                failed = [e for e in self.fake.log() if e["path"].startswith("/graph/") and e["status"] == status]
                self.assertGreaterEqual(len(failed), 4, failed[-1:])
                print("TEST: Graph %d outage: %d answers of %d, old secret valid throughout, rotation %s done "
                      "after it" % (status, len(failed), status, r["id"]))

    def test_service_connection_user_role_cannot_push(self):
        """The PAT's identity has only the User role on the service connection: the push is refused, the status
        and the alert name the missing Administrator role, the service connection keeps the previous secret
        (which still works), and granting the role lets the engine finish."""
        receiver = self.alerts_channel()
        r = self.done(self.create(gracePeriod=0)["id"], 1)
        before = self.secret(self.pid, "AZURE_CLIENT_SECRET")["secretValue"]
        self.fake.call("DELETE", "/_fake/log")
        self.control("/_fake/ado/endpoints/roles", {"org": self.org, "id": self.endpoint, "identity": "pat-user",
                                                    "role": "User"})
        r = self.ok("POST", "/api/v2/secret-rotations/any/%s/rotate-secrets" % r["id"])["secretRotation"]
        self.assertEqual((r["rotationStatus"], r["lastErrorStep"], r["lastErrorCause"]),
                         ("failed", "push", "consumer"), r)
        self.assertIn("lacks the Administrator role on the service connection to update the service connection",
                      r["lastRotationMessage"])
        self.assertIn("ServiceEndpointException", r["lastRotationMessage"])
        rc, out, err = self.cli("rotations", "status", r["id"])
        self.assertEqual(rc, 1, out + err)
        self.assertIn("step, cause:   push, consumer", out)
        self.assertIn("Administrator role", out)
        got, _ = harness_wait(lambda: [a for a in receiver.accepted()
                                       if a.get("item", {}).get("step") == "push"], 15)
        self.assertTrue(got, "no alert on the channel")
        self.assertIn("Administrator role", got[0]["item"]["error"])
        ep = self.fake.call("GET", "/_fake/ado/endpoints", query={"org": self.org, "id": self.endpoint})[1]
        import hashlib
        self.assertEqual(ep["keySha256"], "sha256:" + hashlib.sha256(before.encode()).hexdigest())
        self.assertEqual(self.token_with(before)[0], 200, "the old secret stopped working")
        self.assertEqual(self.fake.call("POST", "/_fake/ado/use-endpoint",
                                        {"org": self.org, "id": self.endpoint})[0], 200)
        self.assertEqual([e for e in self.fake.log() if e["path"].endswith("/removePassword")], [],
                         "a secret was removed while the push was refused")
        self.control("/_fake/ado/endpoints/roles", {"org": self.org, "id": self.endpoint, "identity": "pat-user",
                                                    "role": "Administrator"})
        r = self.done(r["id"], 2, timeout=90)
        after = self.secret(self.pid, "AZURE_CLIENT_SECRET")["secretValue"]
        self.assertEqual(self.fake.call("GET", "/_fake/ado/endpoints",
                                        query={"org": self.org, "id": self.endpoint})[1]["keySha256"],
                         "sha256:" + hashlib.sha256(after.encode()).hexdigest())
        self.assertEqual(self.fake.call("POST", "/_fake/ado/use-endpoint",
                                        {"org": self.org, "id": self.endpoint})[0], 200)

    def test_kill9_at_every_step_leaves_no_orphan(self):
        if not harness.test_build():
            self.skipTest(harness.NOT_A_TEST_BUILD)
        for point in ("issue-before", "issue", "store", "verify", "push", "revoke"):
            with self.subTest(point=point):
                r = self.done(self.create(gracePeriod=0)["id"], 1)
                self.server.extra_env["COFFER_TEST_ROTATION_CRASH_AT"] = point
                self.server.restart()
                try:  # the server exits in the middle of this request
                    self.api("POST", "/api/v2/secret-rotations/any/%s/rotate-secrets" % r["id"], timeout=30)
                except OSError:
                    pass
                deadline = time.monotonic() + 30
                while self.server.alive() and time.monotonic() < deadline:
                    time.sleep(0.05)
                self.assertFalse(self.server.alive(), "the server did not stop at " + point)
                del self.server.extra_env["COFFER_TEST_ROTATION_CRASH_AT"]
                self.server.start()
                self.advance_clock(LEASE_S + 1)
                r = self.done(r["id"], 2, timeout=60)
                mine = [c for c in self.live_credentials() if r["id"] in (c["displayName"] or "")]
                self.assertEqual([c["keyId"] for c in mine], [r["currentCredentialId"]],
                                 "%s: orphaned or missing credentials: %r" % (point, mine))
                secret = self.secret(self.pid, "AZURE_CLIENT_SECRET")["secretValue"]
                self.assertEqual(self.token_with(secret)[0], 200)
                self.assertEqual(self.fake.call("POST", "/_fake/ado/use-endpoint",
                                                {"org": self.org, "id": self.endpoint})[0], 200)
                removes = [e["body"]["keyId"] for e in self.fake.log()
                           if e["path"].endswith("/removePassword")]
                self.assertEqual(len(removes), len(set(removes)), "%s: a credential revoked twice" % point)
                print("TEST: kill -9 at %s (Entra): resumed, %d live credential(s) of the rotation, %d removePassword"
                      " call(s) in all, none repeated" % (point, len(mine), len(removes)))

    def test_bad_inputs(self):
        cases = [
            ({"connectionId": self.ado_conn["id"]}, "is a azure-devops connection, not azure-client-secrets"),
            ({"secretsMapping": {"clientSecret": "S"}}, "'clientId' is required"),
            ({"parameters": {}}, "objectId"),
            ({"consumers": [{"type": "azure-devops-service-connection", "connectionId": self.graph_conn["id"],
                             "config": {"project": "Shop", "endpointId": self.endpoint}}]}, "not azure-devops"),
            ({"consumers": [{"type": "azure-devops-service-connection", "connectionId": self.ado_conn["id"],
                             "config": {"project": "Shop"}}]}, "endpointId"),
            ({"gracePeriod": -5}, "gracePeriod"),
            ({"parameters": {"objectId": self.object_id, "clientId": self.app_id, "verifyTimeoutMs": 600000}},
             '"verifyTimeoutMs" must be an integer from 0 to 180000'),
        ]
        for extra, words in cases:
            with self.subTest(extra=extra):
                r = self.api("POST", "/api/v2/secret-rotations/azure-client-secret",
                             body=dict({"name": harness.unique("bad"), "projectId": self.pid,
                                        "environment": "dev", "secretPath": "/",
                                        "connectionId": self.graph_conn["id"],
                                        "parameters": {"objectId": self.object_id, "clientId": self.app_id},
                                        "secretsMapping": {"clientId": "A", "clientSecret": "B"}}, **extra))
                self.assertIn(r.status, (400, 422), r.body[:300])
                self.assertError(r, r.status, None, words)


def harness_wait(predicate, timeout):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        got = predicate()
        if got:
            return got, time.monotonic() - start
        time.sleep(0.1)
    return None, timeout


if __name__ == "__main__":
    unittest.main()
