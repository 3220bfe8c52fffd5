"""Dynamic secrets and leases on a real throwaway PostgreSQL cluster (scripts/pg.sh, the cluster of
test_rotations): the issued login works and can do what the granted role allows and no more, and stops working
after revocation and, by itself, after VALID UNTIL; a lease that ended while no server ran is revoked at the next
start (test clock); a target that is down is retried with backoff and reported on a channel; hostile names and
placeholders cannot inject SQL; `coffer run --lease` revokes on exit and on SIGTERM; the rights (the "lease"
action); bad input; no credential in any log."""
import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

import harness
from harness import ServerTestCase
from test_rotations import harness_wait
from test_identities import IdentityHelpers
from test_rotations import Cluster, pg_installed

DYN_PASSWORD = "dyn-admin-" + os.urandom(6).hex()


@unittest.skipUnless(pg_installed(), "PostgreSQL is not installed")
class DynamicSecrets(IdentityHelpers, ServerTestCase):
    server_args = ("--notify-interval", "1s", "--notify-retry-base", "1s")

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster()
        try:
            su = cls.cluster.su
            # least privilege: CREATEROLE and ADMIN OPTION on the granted role, no superuser
            su("CREATE ROLE dynadmin LOGIN CREATEROLE PASSWORD '%s'" % DYN_PASSWORD)
            su("CREATE ROLE app_read NOLOGIN")
            su("GRANT app_read TO dynadmin WITH ADMIN OPTION")
            su("CREATE TABLE public.shared (v text); INSERT INTO public.shared VALUES ('visible')")
            su("CREATE TABLE public.private (v text); INSERT INTO public.private VALUES ('hidden')")
            su("GRANT SELECT ON public.shared TO app_read")
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
        self.project = self.create_project()
        self.pid = self.project["id"]
        self.conn = self.ok("POST", "/api/v1/app-connections/postgres", body={
            "name": harness.unique("pg"), "method": "username-and-password",
            "credentials": {"host": self.cluster.dir, "port": 5433, "database": "postgres",
                            "username": "dynadmin", "password": DYN_PASSWORD}})["appConnection"]

    # ---- helpers ----

    def place(self, **extra):
        b = {"projectSlug": self.project["slug"], "environmentSlug": "dev", "path": "/"}
        b.update(extra)
        return b

    def create_dynamic(self, name=None, inputs=None, **extra):
        body = self.place(name=name or harness.unique("db"),
                          provider={"type": "postgres",
                                    "inputs": dict(inputs or {"grantRole": "app_read"},
                                                   connectionId=self.conn["id"])},
                          defaultTTL="1h", maxTTL="4h")
        body.update(extra)
        return self.ok("POST", "/api/v1/dynamic-secrets", body=body)["dynamicSecret"]

    def lease(self, name, token=..., **extra):
        r = self.api("POST", "/api/v1/dynamic-secrets/leases", body=self.place(dynamicSecretName=name, **extra),
                     token=token)
        self.assertEqual(r.status, 201, r.body[:500])
        return r.json

    def query(self, user, password, sql):
        """Runs sql as user; (ok, output)."""
        bindir = sorted(os.listdir("/usr/lib/postgresql"))[-1]
        env = dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="5")
        r = subprocess.run([os.path.join("/usr/lib/postgresql", bindir, "bin", "psql"), "-X", "-q", "-A", "-t", "-w",
                            "-v", "ON_ERROR_STOP=1", "-d", self.cluster.uri(user), "-c", sql],
                           env=env, capture_output=True, text=True, timeout=30)
        return r.returncode == 0, (r.stdout + r.stderr).strip()

    def role_exists(self, user):
        return self.cluster.su("SELECT count(*) FROM pg_roles WHERE rolname = '%s'" % user)[0][0] == "1"

    def leases_of(self, ds, **query):
        leases = self.ok("GET", "/api/v1/dynamic-secrets/leases", query=query)["leases"]
        return [l for l in leases if l["dynamicSecretId"] == ds["id"]]

    def lease_state(self, lease_id):
        return self.ok("GET", "/api/v1/dynamic-secrets/leases/" + lease_id)["lease"]

    # ---- tests ----

    def test_issued_login_does_what_the_role_allows_and_dies_with_its_lease(self):
        ds = self.create_dynamic()
        self.assertNotIn(DYN_PASSWORD, json.dumps(ds))
        self.assertEqual((ds["type"], ds["defaultTTL"], ds["maxTTL"]), ("postgres", "3600s", "14400s"))
        rc, out, err = self.cli("leases", "create", ds["name"], "--projectId", self.project["slug"], "--env", "dev")
        self.assertEqual(rc, 0, out + err)
        fields = dict(line.split("=", 1) for line in out.splitlines() if "=" in line and not line.startswith("#"))
        lease_id = out.splitlines()[0].split()[2]
        user, password = fields["DB_USERNAME"], fields["DB_PASSWORD"]
        self.assertEqual((fields["DB_HOST"], fields["DB_PORT"], fields["DB_NAME"]),
                         (self.cluster.dir, "5433", "postgres"))
        self.assertTrue(user.startswith("coffer_"), user)
        self.assertEqual(self.query(user, password, "SELECT v FROM public.shared"), (True, "visible"))
        ok, msg = self.query(user, password, "SELECT v FROM public.private")
        self.assertFalse(ok)
        self.assertIn("permission denied", msg)
        ok, msg = self.query(user, password, "CREATE ROLE escalate")
        self.assertFalse(ok, "the leased login may create roles")
        until = self.cluster.su("SELECT rolvaliduntil IS NOT NULL FROM pg_roles WHERE rolname = '%s'" % user)
        self.assertEqual(until[0][0], "t", "no VALID UNTIL on the role")

        # the inventory shows the live lease, never its password
        rc, out, err = self.cli("inventory", "--projectId", self.pid)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("live leases:", out)
        self.assertIn(user, out)
        self.assertNotIn(password, out)
        # listed as the caller's own, renewed within the maximum, refused past it
        rc, out, err = self.cli("leases", "list")
        self.assertEqual(rc, 0, out + err)
        self.assertIn(lease_id, out)
        before = self.lease_state(lease_id)["expireAt"]
        rc, out, err = self.cli("leases", "renew", lease_id, "--ttl", "2h")
        self.assertEqual(rc, 0, out + err)
        self.assertGreater(self.lease_state(lease_id)["expireAt"], before)
        rc, out, err = self.cli("leases", "list", "--name", ds["name"], "--projectId", self.pid, "--env", "dev")
        self.assertEqual(rc, 0, out + err)
        self.assertIn(user, out)
        rc, out, err = self.cli("leases", "get", lease_id, "--output", "json")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(json.loads(out)["lease"]["externalEntityId"], user)
        self.assertNotIn(password, out)
        r = self.api("POST", "/api/v1/dynamic-secrets/leases/%s/renew" % lease_id, body={"ttl": "5h"})
        self.assertError(r, 422, None, "maxTTL")

        rc, out, err = self.cli("leases", "revoke", lease_id)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("revoked", out)
        self.assertFalse(self.role_exists(user), "the role was not dropped")
        self.assertFalse(self.query(user, password, "SELECT 1")[0])
        r = self.api("DELETE", "/api/v1/dynamic-secrets/leases/" + lease_id)
        self.assertError(r, 409, None, "revoked")

        events = json.dumps(self.ok("GET", "/api/v1/audit/events", query={"limit": "1000"}))
        for action in ("dynamic-secrets.lease-create", "dynamic-secrets.lease-renew", "dynamic-secrets.lease-revoke"):
            self.assertIn(action, events)
        for secret in (password, DYN_PASSWORD):
            self.assertNotIn(secret, events)
            self.assertNotIn(secret, self.server.stderr)
            self.assertNotIn(secret, self.server.stdout)
        # the lease's password reaches PostgreSQL only as a SCRAM verifier (the statement log has all)
        self.assertIn(user, self.cluster.log())
        self.assertNotIn(password, self.cluster.log())

    def test_valid_until_ends_the_login_without_coffer_and_the_next_start_revokes(self):
        ds = self.create_dynamic()
        data = self.lease(ds["name"], ttl="2s")
        user, password = data["data"]["DB_USERNAME"], data["data"]["DB_PASSWORD"]
        self.assertTrue(self.query(user, password, "SELECT 1")[0])
        self.server.stop()
        try:
            time.sleep(2.5)  # PostgreSQL's own clock: the test clock cannot move it
            self.assertTrue(self.role_exists(user))
            ok, msg = self.query(user, password, "SELECT 1")
            self.assertFalse(ok, "the login works after VALID UNTIL")
        finally:
            self.server.start()
        got, _ = harness_wait(lambda: not self.role_exists(user), 15)
        self.assertTrue(got, "the lease that ended while the server was stopped was not revoked at its start")
        self.assertEqual(self.lease_state(data["lease"]["id"])["status"], "revoked")
        events = json.dumps(self.ok("GET", "/api/v1/audit/events", query={"limit": "1000"}))
        self.assertIn("dynamic-secrets.lease-revoke", events)
        self.assertIn("lease revocation", events)

    def test_lease_ending_while_stopped_is_revoked_at_start_on_the_test_clock(self):
        ds = self.create_dynamic()
        data = self.lease(ds["name"])  # one hour
        user = data["data"]["DB_USERNAME"]
        self.server.stop()
        try:
            self.advance_clock(3601)
        finally:
            self.server.start()
        got, _ = harness_wait(lambda: not self.role_exists(user), 15)
        self.assertTrue(got, "not revoked at the next start")
        self.assertEqual(self.lease_state(data["lease"]["id"])["status"], "revoked")

    def test_target_down_is_retried_with_backoff_and_reported(self):
        from test_notifications import Receiver
        receiver = Receiver()
        self.addCleanup(receiver.close)
        self.ok("POST", "/api/v1/notifications/channels",
                body={"type": "webhook", "url": receiver.url, "workspaceId": self.pid, "name": "ops"})
        ds = self.create_dynamic()
        data = self.lease(ds["name"])
        lease_id, user = data["lease"]["id"], data["data"]["DB_USERNAME"]
        self.cluster.halt()
        try:
            self.advance_clock(3601)
            for attempt in range(1, 4):
                got, _ = harness_wait(lambda: self.lease_state(lease_id)["revokeAttempts"] >= attempt, 20)
                self.assertTrue(got, "no revocation attempt %d" % attempt)
                lease = self.lease_state(lease_id)
                self.assertEqual(lease["status"], "active")
                self.assertIn("postgresql", lease["lastError"])
                self.advance_clock(5 * 2 ** (attempt - 1) + 1)  # past the backoff
            got, _ = harness_wait(lambda: receiver.accepted(), 15)
            self.assertTrue(got, "no alert on the channel")
            self.assertEqual(got[0]["event"], "coffer.lease", got[0])
            self.assertEqual(got[0]["item"]["leaseId"], lease_id)
            self.assertNotIn(DYN_PASSWORD, json.dumps(got))
        finally:
            self.cluster.resume()
        self.advance_clock(600)
        got, _ = harness_wait(lambda: self.lease_state(lease_id)["status"] == "revoked", 20)
        self.assertTrue(got, "not revoked once the target was back")
        self.assertFalse(self.role_exists(user))
        print("TEST: lease revoked after %d failed attempts" % self.lease_state(lease_id)["revokeAttempts"])

    def test_hostile_names_and_placeholders_cannot_inject(self):
        hostile = 'app_read"; DROP TABLE public.shared; --'
        ds = self.create_dynamic(inputs={"grantRole": hostile})
        r = self.api("POST", "/api/v1/dynamic-secrets/leases", body=self.place(dynamicSecretName=ds["name"]))
        self.assertError(r, 409, None, "does not exist")
        self.assertEqual(self.cluster.su("SELECT v FROM public.shared")[0][0], "visible")
        self.assertEqual(self.cluster.su("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'coffer_%'")[0][0],
                         str(len(self.ok("GET", "/api/v1/dynamic-secrets/leases", query={"all": "true"})["leases"])))
        # a custom template: the placeholders are quoted by libpq, the rest is the administrator's SQL
        ds = self.create_dynamic(inputs={
            "usernamePrefix": "tmpl_",
            "creationStatement": "CREATE ROLE {{username}} LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}};"
                                 " COMMENT ON ROLE {{username}} IS {{expiration}};"})
        data = self.lease(ds["name"])
        user = data["data"]["DB_USERNAME"]
        self.assertTrue(user.startswith("tmpl_"))
        self.assertTrue(self.query(user, data["data"]["DB_PASSWORD"], "SELECT 1")[0])
        self.assertFalse(self.query(user, data["data"]["DB_PASSWORD"], "SELECT v FROM public.shared")[0])
        for inputs, field, words in (
                ({"grantRole": "r", "creationStatement": "CREATE ROLE {{username}} {{evil}}"},
                 "inputs.creationStatement", "double braces"),
                ({"grantRole": "r", "usernamePrefix": "Bad\"Prefix"}, "inputs.usernamePrefix", "a-z"),
                ({"grantRole": "x" * 64}, "inputs.grantRole", "63"),
                ({}, "inputs.grantRole", "required"),
                ({"grantRole": "r", "password": "nope"}, "inputs", "not a setting")):
            body = self.place(name=harness.unique("bad"), provider={"type": "postgres", "inputs": dict(
                inputs, connectionId=self.conn["id"])})
            self.assertError(self.api("POST", "/api/v1/dynamic-secrets", body=body), 422, None, words)

    def test_run_lease_revokes_on_exit_and_on_sigterm(self):
        ds = self.create_dynamic()
        out_file = os.path.join(tempfile.mkdtemp(prefix="coffer-dyn-"), "seen")
        spec = "%s:DB_USERNAME=PGUSER,DB_PASSWORD=PGPASSWORD" % ds["name"]
        rc, out, err = self.cli("run", "--projectId", self.project["slug"], "--env", "dev", "--lease", spec, "--",
                                "sh", "-c", 'echo "$PGUSER" > %s; test -n "$PGPASSWORD"' % out_file)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("revoked lease", err)
        with open(out_file) as f:
            user = f.read().strip()
        self.assertTrue(user.startswith("coffer_"), user)
        self.assertFalse(self.role_exists(user), "not revoked when the command exited")

        # SIGTERM: passed on to the command, then the lease is revoked
        proc = subprocess.Popen([harness.COFFER_BIN, "run", "--projectId", self.project["slug"], "--env", "dev",
                                 "--lease", spec, "--", "sleep", "30"],
                                env=self.server.cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        try:
            # the lease is listed once its login exists (its row is written just before)
            got, _ = harness_wait(lambda: [l for l in self.leases_of(ds) if l["externalEntityId"]], 15)
            self.assertTrue(got, "no lease while the command runs")
            live = got[0]["externalEntityId"]
            self.assertTrue(self.role_exists(live))
            time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
        self.assertEqual(proc.returncode, 128 + signal.SIGTERM, err)
        self.assertIn("revoked lease", err)
        self.assertFalse(self.role_exists(live), "not revoked on SIGTERM")

        # --keep-lease leaves it; bad specs are usage errors
        rc, out, err = self.cli("run", "--projectId", self.project["slug"], "--env", "dev", "--lease", ds["name"],
                                "--keep-lease", "--", "true")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(len(self.leases_of(ds)), 1)
        for bad in ("db:", "db:A", "db:=B", "/", "db:A=B,"):
            rc, out, err = self.cli("run", "--projectId", self.pid, "--lease", bad, "--", "true")
            self.assertEqual(rc, 2, bad + err)
            self.assertIn("--lease", err)
        rc, out, err = self.cli("run", "--projectId", self.pid, "--lease", "missing", "--", "true")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("not found", err)

    def test_lease_right_is_not_implied_by_reading(self):
        ds = self.create_dynamic()
        reader = self.machine(self.pid, "member", [{"actions": ["read"], "environment": "dev", "secretPath": "/**"}])
        viewer = self.machine(self.pid, "viewer")
        leaser = self.machine(self.pid, "member", [{"actions": ["read", "lease"], "environment": "dev",
                                                    "secretPath": "/**"}])
        for who in (reader, viewer):
            r = self.api("POST", "/api/v1/dynamic-secrets/leases", body=self.place(dynamicSecretName=ds["name"]),
                         token=who["token"])
            self.assertError(r, 403, None, "lease from")
        mine = self.lease(ds["name"], token=leaser["token"])
        self.lease(ds["name"])  # the admin's
        own = self.api("GET", "/api/v1/dynamic-secrets/leases", token=leaser["token"]).json["leases"]
        self.assertEqual([l["id"] for l in own], [mine["lease"]["id"]])
        self.assertError(self.api("GET", "/api/v1/dynamic-secrets/leases", query={"all": "true"},
                                  token=leaser["token"]), 403)
        self.assertEqual(len(self.leases_of(ds, all="true")), 2)
        # another identity cannot see, renew or revoke it
        other = self.machine(self.pid, "member", [{"actions": ["lease"], "environment": "dev", "secretPath": "/**"}])
        r = self.api("DELETE", "/api/v1/dynamic-secrets/leases/" + mine["lease"]["id"], token=other["token"])
        self.assertError(r, 404)
        r = self.api("POST", "/api/v1/dynamic-secrets", token=leaser["token"], body=self.place(
            name="nope", provider={"type": "postgres", "inputs": {"grantRole": "app_read",
                                                                "connectionId": self.conn["id"]}}))
        self.assertError(r, 403)
        # removing the dynamic secret revokes its leases first
        rc, out, err = self.cli("dynamic-secrets", "remove", ds["name"], "--projectId", self.pid, "--env", "dev")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.cluster.su("SELECT count(*) FROM pg_roles WHERE rolname = '%s'"
                                         % mine["data"]["DB_USERNAME"])[0][0], "0")

    def test_management_and_bad_input(self):
        rc, out, err = self.cli("dynamic-secrets", "create", "ro", "--projectId", self.pid, "--env", "dev",
                                "--provider", "postgres", "--connectionId", self.conn["id"],
                                "--inputs", '{"grantRole": "app_read"}', "--default-ttl", "15m", "--max-ttl", "1h")
        self.assertEqual(rc, 0, out + err)
        rc, out, err = self.cli("dynamic-secrets", "list", "--projectId", self.pid, "--env", "dev")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("ro", out)
        self.assertIn("900s", out)
        rc, out, err = self.cli("dynamic-secrets", "update", "ro", "--projectId", self.pid, "--env", "dev",
                                "--new-name", "ro2", "--max-ttl", "2h", "--output", "json")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(json.loads(out)["dynamicSecret"]["maxTTL"], "7200s")
        rc, out, err = self.cli("dynamic-secrets", "get", "ro2", "--projectId", self.pid, "--env", "dev")
        self.assertEqual(rc, 0, out + err)
        # the inputs as read (with the connection) go back unchanged; another connection is refused
        ds = self.ok("GET", "/api/v1/dynamic-secrets/ro2", query=self.place())["dynamicSecret"]
        self.assertEqual(ds["inputs"]["connectionId"], self.conn["id"])
        self.ok("PATCH", "/api/v1/dynamic-secrets/ro2", body=self.place(data={"inputs": ds["inputs"]}))
        other = dict(ds["inputs"], connectionId="00000000-0000-4000-8000-000000000000")
        self.assertError(self.api("PATCH", "/api/v1/dynamic-secrets/ro2", body=self.place(data={"inputs": other})),
                         422, None, "cannot change")
        rc, out, err = self.cli("dynamic-secrets", "create", "x", "--projectId", self.pid, "--provider", "postgres")
        self.assertEqual(rc, 2, out + err)
        rc, out, err = self.cli("dynamic-secrets", "create", "x", "--projectId", self.pid, "--provider", "postgres",
                                "--connectionId", self.conn["id"], "--inputs", "[1]")
        self.assertEqual(rc, 2, out + err)
        self.assertIn("JSON object", err)
        rc, out, err = self.cli("leases", "create", "ro2", "--projectId", self.pid, "--ttl", "3h")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("maxTTL", err)
        base = {"provider": {"type": "postgres", "inputs": {"grantRole": "app_read", "connectionId": self.conn["id"]}}}
        for extra, status, words in (
                ({"name": "ro2"}, 400, "already exists"),
                ({"name": "leases"}, 422, "reserved"),
                ({"name": "Bad Name!"}, 422, "name"),
                ({"defaultTTL": "2h", "maxTTL": "1h"}, 422, "defaultTTL"),
                ({"defaultTTL": "1 fortnight"}, 422, "duration"),
                ({"maxTTL": "400d"}, 422, "366d"),
                ({"provider": {"type": "oracle", "inputs": {}}}, 422, "unknown dynamic secret provider"),
                ({"provider": {"type": "postgres", "inputs": {"grantRole": "r"}}}, 422, "connectionId"),
                ({"provider": {"type": "postgres", "inputs": {"grantRole": "r",
                                                              "connectionId": "00000000-0000-4000-8000-000000000000"}}},
                 422, "not found"),
                ({"provider": "postgres"}, 422, "provider"),
                ({"environmentSlug": "nowhere"}, 404, None)):
            body = self.place(name=harness.unique("d"), **base)
            body.update(extra)
            self.assertError(self.api("POST", "/api/v1/dynamic-secrets", body=body), status, None,
                             *([words] if words else []))
        self.assertError(self.api("GET", "/api/v1/dynamic-secrets/leases/not-a-uuid"), 422, None, "leaseId")
        self.assertError(self.api("GET", "/api/v1/dynamic-secrets/leases/00000000-0000-4000-8000-000000000000"), 404)
        self.assertError(self.api("POST", "/api/v1/dynamic-secrets/leases", body=self.place(
            dynamicSecretName="ro2", ttl=-5)), 422, None, "ttl")
        self.assertError(self.api("POST", "/api/v1/dynamic-secrets/leases", body=self.place(
            dynamicSecretName="missing")), 404, None, "missing")
        self.assertError(self.api("GET", "/api/v1/dynamic-secrets", query={"projectSlug": self.pid}), 422, None,
                         "environmentSlug")


@unittest.skipUnless(pg_installed() and harness.PG_DIR, "two nodes share one PostgreSQL store: the PostgreSQL pass")
class TwoNodes(unittest.TestCase):
    """Two servers on one PostgreSQL store, each with its revocation worker: an ended lease is revoked once."""

    def test_two_nodes_revoke_a_lease_once(self):
        from test_multinode import root_key, start_nodes, stop_nodes
        if not harness.test_build():
            self.skipTest(harness.NOT_A_TEST_BUILD)
        cluster = Cluster()
        self.addCleanup(cluster.stop)
        cluster.su("CREATE ROLE dynadmin LOGIN CREATEROLE PASSWORD '%s'" % DYN_PASSWORD)
        cluster.su("CREATE ROLE app_read NOLOGIN; GRANT app_read TO dynadmin WITH ADMIN OPTION")
        nodes = start_nodes(2, harness.new_pg_database(), root_key())
        try:
            a, b = nodes

            def ok(node, method, path, body=None, query=None):
                r = node.api(method, path, body=body, query=query)
                self.assertIn(r.status, (200, 201), r.body[:300])
                return r.json

            project = ok(a, "POST", "/api/v2/workspace", {"projectName": harness.unique("two")})["project"]
            conn = ok(a, "POST", "/api/v1/app-connections/postgres", {
                "name": harness.unique("pg"), "method": "username-and-password",
                "credentials": {"host": cluster.dir, "port": 5433, "database": "postgres", "username": "dynadmin",
                                "password": DYN_PASSWORD}})["appConnection"]
            place = {"projectSlug": project["slug"], "environmentSlug": "dev", "path": "/"}
            ok(a, "POST", "/api/v1/dynamic-secrets", dict(place, name="db", provider={
                "type": "postgres", "inputs": {"grantRole": "app_read", "connectionId": conn["id"]}}))
            leases = [ok(a if i % 2 else b, "POST", "/api/v1/dynamic-secrets/leases",
                         dict(place, dynamicSecretName="db"))["lease"]["id"] for i in range(6)]
            for node in nodes:
                node.advance_clock(3601)

            def all_revoked():
                return all(ok(a, "GET", "/api/v1/dynamic-secrets/leases/" + i)["lease"]["status"] == "revoked"
                           for i in leases)
            got, _ = harness_wait(all_revoked, 30)
            self.assertTrue(got, "not every lease was revoked")

            # A node's audit writer stores its events shortly after the lease row says "revoked":
            # wait until every lease has its event, then count them.
            def revoke_events():
                events = ok(a, "GET", "/api/v1/audit/events", query={"limit": "1000"})
                text = json.dumps([e for e in events["events"]
                                   if e.get("action") == "dynamic-secrets.lease-revoke"])
                return text if all("lease %s," % i in text for i in leases) else None
            text, _ = harness_wait(revoke_events, 30)
            self.assertTrue(text, "a revoked lease has no revocation event")
            for lease_id in leases:
                self.assertEqual(text.count("lease %s," % lease_id), 1, "lease %s revoked %d times"
                                 % (lease_id, text.count("lease %s," % lease_id)))
            self.assertEqual(cluster.su("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'coffer_%'")[0][0], "0")
        finally:
            stop_nodes(nodes)


if __name__ == "__main__":
    unittest.main()
