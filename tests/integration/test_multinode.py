"""Several Coffer nodes on one PostgreSQL database (docs/server.md "Several nodes").

Runs in the PostgreSQL pass of `make test` (skipped, saying so, on SQLite). Every node is a real `coffer server`
process with its own data directory and the same root key (COFFER_ROOT_KEY) and database (COFFER_DB). Checked:

- nodes started at the same moment on an empty database apply the migrations exactly once;
- a write on A reads back on B at once, and the other way round;
- one secret edited concurrently on both nodes ends with one version per acknowledged write (none lost); the
  audit chain's appends and the other writes take separate locks, so neither waits for the other;
- a token revoked on A, an identity deleted on A, and a token whose client secret was revoked on A are refused by B
  on its next request; ended tokens are pruned with both nodes pruning at once, and a live token keeps working on
  both; `coffer operator rotate-admin-token` ends the old admin token on both nodes at once;
- a folder list cached on B follows a write, a new secret and a narrowed rule made on A at B's next request;
- a node killed (-9) in the middle of a stream of requests spread over two nodes: every request that failed on it
  succeeds when re-sent to the survivor;
- the expiry-notice job runs on one node at a time: with two nodes each notice is delivered exactly once, the
  node without the job answers `notifications run` with 409, and when the job's node dies the other takes over;
- a database that goes away: requests fail fast with 503 naming the cause, and the node recovers by itself when
  the database returns; a database that stops answering (SIGSTOP) cannot hold a request past the timeout.
"""

import base64
import datetime
import os
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

import harness
from harness import ADMIN_TOKEN, Server
from test_notifications import Receiver

ONLY_PG = unittest.skipUnless(harness.PG_DIR, "PostgreSQL only: nodes share one PostgreSQL database "
                                              "(make test runs this suite in its PostgreSQL pass)")


def root_key():
    return base64.b64encode(os.urandom(32)).decode()


def start_nodes(n, uri, key, env=None, args=()):
    """n servers on database uri with root key key, started at the same moment."""
    nodes = [Server(env=dict({"COFFER_DB": uri, "COFFER_ROOT_KEY": key}, **(env or {})), args=args)
             for _ in range(n)]
    errors = []

    def start(node):
        try:
            node.start()
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=start, args=(node,)) for node in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        for node in nodes:
            node.cleanup()
        raise errors[0]
    return nodes


def stop_nodes(nodes):
    """Stops each node with SIGTERM; fails on a sanitizer report or an exit status other than 0."""
    for node in nodes:
        rc = node.stop()
        report = node.sanitizer_report()
        node.cleanup()
        assert report is None, report
        assert rc == 0, "a node exited %s" % rc


def later(days):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


class NodeHelpers:
    def project(self, node):
        r = node.api("POST", "/api/v2/workspace", body={"projectName": harness.unique("multi")})
        self.assertEqual(r.status, 200, r.body)
        return r.json["project"]["id"]

    def put(self, node, pid, key, value, create=False, **extra):
        body = dict({"workspaceId": pid, "environment": "dev", "secretValue": value}, **extra)
        return node.api("POST" if create else "PATCH", "/api/v3/secrets/raw/" + key, body=body)

    def get(self, node, pid, key, token=...):
        return node.api("GET", "/api/v3/secrets/raw/" + key, query={"workspaceId": pid, "environment": "dev"},
                        token=token)

    def machine(self, node, pid, ua=None):
        """An identity with universal auth (settings ua) and a viewer membership of pid; returns (id, client id,
        secret)."""
        ident = node.api("POST", "/api/v1/identities", body={"name": harness.unique("node-id")}).json["identity"]
        ua = node.api("POST", "/api/v1/auth/universal-auth/identities/%s" % ident["id"], body=ua or {})
        self.assertEqual(ua.status, 200, ua.body)
        cs = node.api("POST", "/api/v1/auth/universal-auth/identities/%s/client-secrets" % ident["id"], body={})
        self.assertEqual(cs.status, 200, cs.body)
        r = node.api("POST", "/api/v2/workspace/%s/identity-memberships/%s" % (pid, ident["id"]),
                     body={"role": "viewer"})
        self.assertEqual(r.status, 200, r.body)
        return ident["id"], ua.json["identityUniversalAuth"]["clientId"], cs.json["clientSecret"]

    def login(self, node, client_id, secret):
        r = node.api("POST", "/api/v1/auth/universal-auth/login", body={"clientId": client_id,
                                                                          "clientSecret": secret}, token=None)
        self.assertEqual(r.status, 200, r.body)
        return r.json["accessToken"]


@ONLY_PG
class TwoNodes(NodeHelpers, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.uri = harness.new_pg_database()
        cls.key = root_key()
        cls.a, cls.b = start_nodes(2, cls.uri, cls.key)

    @classmethod
    def tearDownClass(cls):
        stop_nodes((cls.a, cls.b))

    def test_started_together_migrated_once(self):
        for node in (self.a, self.b):
            r = node.api("GET", "/api/status", token=None)
            self.assertEqual((r.status, r.json["store"]), (200, "postgres"))
        rows = harness.psql(self.uri, "SELECT version, COUNT(*) FROM schema_migrations GROUP BY version")
        self.assertGreaterEqual(len(rows), 8)
        self.assertEqual({count for _, count in rows}, {"1"}, rows)
        # both nodes logged their start; exactly one applied the migrations
        applied = [node for node in (self.a, self.b) if "applied database migration 0001" in node.stderr]
        self.assertEqual(len(applied), 1)

    def test_write_on_one_read_on_the_other(self):
        pid = self.project(self.a)
        self.assertEqual(self.put(self.a, pid, "SHARED", "from-a", create=True).status, 200)
        r = self.get(self.b, pid, "SHARED")
        self.assertEqual((r.status, r.json["secret"]["secretValue"]), (200, "from-a"))
        self.assertEqual(self.put(self.b, pid, "SHARED", "from-b").status, 200)
        r = self.get(self.a, pid, "SHARED")
        self.assertEqual((r.json["secret"]["secretValue"], r.json["secret"]["version"]), ("from-b", 2))

    def test_concurrent_edits_lose_nothing(self):
        pid = self.project(self.a)
        r = self.put(self.a, pid, "RACED", "v0", create=True)
        self.assertEqual(r.status, 200, r.body)
        sid = r.json["secret"]["id"]
        acknowledged = []
        lock = threading.Lock()

        def edit(node, name):
            for i in range(15):
                value = "%s-%d" % (name, i)
                r = self.put(node, pid, "RACED", value)
                if r.status == 200:
                    with lock:
                        acknowledged.append(value)

        threads = [threading.Thread(target=edit, args=(n, name)) for n, name in ((self.a, "a"), (self.b, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(acknowledged), 30, "every edit should succeed (writers queue, none is refused)")
        versions = []
        for offset in (0, 100):
            r = self.b.api("GET", "/api/v1/secret/%s/secret-versions" % sid, query={"offset": offset, "limit": 100})
            self.assertEqual(r.status, 200, r.body)
            versions += r.json["secretVersions"]
        self.assertEqual(len(versions), 31)
        self.assertEqual(sorted(v["version"] for v in versions), list(range(1, 32)))
        self.assertEqual(sorted(v["secretValue"] for v in versions if v["version"] > 1), sorted(acknowledged))

    # Coffer's advisory locks (store/postgres.c): the class, and the ids of the writers' and the audit chain's.
    LOCK_CLASS, LOCK_WRITE, LOCK_AUDIT = 1131374194, 1, 4

    def hold_lock(self, lock, seconds):
        """A session of its own holding Coffer's advisory lock for seconds; returns its psql process once the
        lock is held."""
        holder = harness.psql_start(self.uri, "SELECT pg_advisory_lock(%d, %d); SELECT pg_sleep(%d)"
                                    % (self.LOCK_CLASS, lock, seconds))
        held = ("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %d AND objid = %d"
                " AND granted" % (self.LOCK_CLASS, lock))
        deadline = time.monotonic() + 10
        while harness.psql(self.uri, held) != [["1"]]:
            if holder.poll() is not None:
                self.fail("psql ended: %s" % holder.stderr.read().decode())
            self.assertLess(time.monotonic(), deadline, "the lock was not taken")
            time.sleep(0.05)
        return holder

    def test_audit_appends_and_other_writes_do_not_wait_for_each_other(self):
        """The audit chain's tables have a lock of their own: while another session holds the writers' lock, a
        read on either node is still appended to the chain at once (that node's audit list waits for its
        appends); while one holds the audit lock, secret writes still go through. The chain stays intact across
        both nodes."""
        pid = self.project(self.a)
        self.assertEqual(self.put(self.a, pid, "LOCKED", "v1", create=True).status, 200)
        holder = self.hold_lock(self.LOCK_WRITE, 4)
        try:
            started = time.monotonic()
            for node in (self.a, self.b):
                read = self.get(node, pid, "LOCKED").headers["X-Request-Id"]
                r = node.api("GET", "/api/v1/audit/events", query={"projectId": pid, "limit": 1000})
                self.assertEqual(r.status, 200, r.body)
                self.assertIn(read, [e["requestId"] for e in r.json["events"]], r.body)
            self.assertLess(time.monotonic() - started, 2.5, "the audit appends waited for the writers' lock")
            self.assertIsNone(holder.poll(), "the writers' lock was let go too early for the check to hold")
        finally:
            holder.wait(timeout=30)
        holder = self.hold_lock(self.LOCK_AUDIT, 4)
        try:
            started = time.monotonic()
            for i, node in enumerate((self.a, self.b)):
                r = self.put(node, pid, "LOCKED", "v%d" % (i + 2))
                self.assertEqual(r.status, 200, r.body)
            self.assertLess(time.monotonic() - started, 2.5, "a secret write waited for the audit lock")
            self.assertIsNone(holder.poll(), "the audit lock was let go too early for the check to hold")
        finally:
            holder.wait(timeout=30)
        self.assertEqual(self.get(self.b, pid, "LOCKED").json["secret"]["secretValue"], "v3")
        for node in (self.a, self.b):
            report = node.api("POST", "/api/v1/audit/verify").json
            self.assertEqual(report["ok"], True, report)

    def test_revocation_and_deletion_on_a_refused_by_b(self):
        pid = self.project(self.a)
        self.assertEqual(self.put(self.a, pid, "SEEN", "x", create=True).status, 200)
        ident, client_id, secret = self.machine(self.a, pid)
        token = self.login(self.a, client_id, secret)
        self.assertEqual(self.get(self.b, pid, "SEEN", token=token).status, 200)
        r = self.a.api("POST", "/api/v1/auth/token/revoke", body={"accessToken": token}, token=None)
        self.assertEqual(r.status, 200, r.body)
        r = self.get(self.b, pid, "SEEN", token=token)
        self.assertEqual(r.status, 401, r.body)
        self.assertIn("revoked", r.json["message"])
        # a fresh token from B, then the identity deleted on A
        token = self.login(self.b, client_id, secret)
        self.assertEqual(self.get(self.a, pid, "SEEN", token=token).status, 200)
        self.assertEqual(self.a.api("DELETE", "/api/v1/identities/%s" % ident).status, 200)
        r = self.get(self.b, pid, "SEEN", token=token)
        self.assertEqual(r.status, 401, r.body)

    def test_access_grant_and_revocation_on_a_honoured_by_b(self):
        """B caches a user's access grants with its other lookups: a grant given and revoked on A changes what B
        allows at B's next request."""
        pid = self.project(self.a)
        self.assertEqual(self.put(self.a, pid, "GRANTED", "x", create=True).status, 200)
        email = harness.unique("asker") + "@example.com"
        r = self.a.api("POST", "/api/v1/users", body={"email": email, "password": "correct horse battery"})
        self.assertEqual(r.status, 200, r.body)
        r = self.b.api("POST", "/api/v1/auth/login", token=None,
                       body={"email": email, "password": "correct horse battery",
                             "personalAccessToken": {"name": "t", "expiresIn": "1d"}})
        self.assertEqual(r.status, 200, r.body)
        pat = r.json["token"]
        self.assertEqual(self.get(self.b, pid, "GRANTED", token=pat).status, 403)  # B caches "no grants"
        r = self.a.api("POST", "/api/v1/access-requests", token=pat,
                       body={"projectId": pid, "environment": "dev", "duration": "1h", "reason": "multinode"})
        self.assertEqual(r.status, 200, r.body)
        rid = r.json["accessRequest"]["id"]
        self.assertEqual(self.a.api("POST", "/api/v1/access-requests/%s/grant" % rid).status, 200)
        r = self.get(self.b, pid, "GRANTED", token=pat)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.a.api("POST", "/api/v1/access-requests/%s/revoke" % rid).status, 200)
        r = self.get(self.b, pid, "GRANTED", token=pat)
        self.assertEqual(r.status, 403, r.body)

    def test_client_secret_revoked_on_a_ends_its_token_on_b(self):
        pid = self.project(self.a)
        self.assertEqual(self.put(self.a, pid, "CS", "x", create=True).status, 200)
        ident, client_id, secret = self.machine(self.a, pid)
        token = self.login(self.b, client_id, secret)
        self.assertEqual(self.get(self.b, pid, "CS", token=token).status, 200)
        secret_id = self.a.api("GET", "/api/v1/auth/universal-auth/identities/%s/client-secrets"
                               % ident).json["clientSecretData"][0]["id"]
        r = self.a.api("POST", "/api/v1/auth/universal-auth/identities/%s/client-secrets/%s/revoke"
                       % (ident, secret_id))
        self.assertEqual(r.status, 200, r.body)
        r = self.get(self.b, pid, "CS", token=token)
        self.assertEqual(r.status, 401, r.body)
        self.assertIn("client secret", r.json["message"])

    def test_cached_lookups_follow_changes_made_on_the_other_node(self):
        """Each node caches the token, project, environment, folder and membership lookups of its requests
        (docs/architecture.md, "Lookup cache"). B answers twice before each change so that its second answer
        comes from its cache; the change made on A is honoured by B's very next request."""
        pid = self.project(self.a)
        r = self.a.api("POST", "/api/v1/folders", body={"workspaceId": pid, "environment": "dev", "name": "app"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.put(self.a, pid, "TOP", "top", create=True).status, 200)
        self.assertEqual(self.put(self.a, pid, "DEEP", "deep", create=True, secretPath="/app").status, 200)
        ident, client_id, secret = self.machine(self.a, pid)
        token = self.login(self.a, client_id, secret)

        def deep(node):
            return node.api("GET", "/api/v3/secrets/raw/DEEP",
                            query={"workspaceId": pid, "environment": "dev", "secretPath": "/app"}, token=token)

        for _ in range(2):
            self.assertEqual(deep(self.b).status, 200)
            self.assertEqual(self.get(self.b, pid, "TOP", token=token).status, 200)
        # a narrowed rule: reads under /app only
        r = self.a.api("POST", "/api/v2/workspace/%s/identity-memberships/%s" % (pid, ident),
                       body={"role": "viewer", "rules": [{"actions": ["read"], "secretPath": "/app/**"}]})
        self.assertEqual(r.status, 200, r.body)
        r = self.get(self.b, pid, "TOP", token=token)
        self.assertEqual(r.status, 403, r.body)
        for _ in range(2):
            self.assertEqual(deep(self.b).status, 200)
        # the folder deleted on A
        r = self.a.api("DELETE", "/api/v1/folders/app", body={"workspaceId": pid, "environment": "dev", "path": "/"})
        self.assertEqual(r.status, 200, r.body)
        r = deep(self.b)
        self.assertEqual(r.status, 404, r.body)
        # the membership removed on A
        r = self.a.api("DELETE", "/api/v2/workspace/%s/identity-memberships/%s" % (pid, ident))
        self.assertEqual(r.status, 200, r.body)
        r = self.get(self.b, pid, "TOP", token=token)
        self.assertEqual(r.status, 403, r.body)
        self.assertIn("not a member", r.json["message"])
        # the environment renamed on A: its old slug names nothing on B
        for _ in range(2):
            self.assertEqual(self.get(self.b, pid, "TOP").status, 200)
        r = self.a.api("PATCH", "/api/v1/workspace/%s/environments/dev" % pid, body={"slug": "development"})
        self.assertEqual(r.status, 200, r.body)
        r = self.get(self.b, pid, "TOP")
        self.assertEqual(r.status, 404, r.body)
        # the same node's own change, seen by its next request
        r = self.b.api("PATCH", "/api/v1/workspace/%s/environments/development" % pid, body={"slug": "dev"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.get(self.b, pid, "TOP").status, 200)
        self.assertEqual(self.get(self.a, pid, "TOP").status, 200)

    def test_both_nodes_prune_ended_tokens(self):
        """Every node runs the token pruning (docs/server.md "Housekeeping"): with both clocks moved past the end
        of short tokens plus the hour's margin, both prune at their next pass, at once; the rows go, no node
        reports an error, and a live token keeps working on both."""
        pid = self.project(self.a)
        self.assertEqual(self.put(self.a, pid, "PRUNED", "x", create=True).status, 200)
        short, client_id, secret = self.machine(self.a, pid, {"accessTokenTTL": 60, "accessTokenMaxTTL": 60})
        for i in range(20):
            self.login(self.a if i % 2 else self.b, client_id, secret)
        _, live_id, live_secret = self.machine(self.b, pid)
        live = self.login(self.a, live_id, live_secret)
        count = "SELECT COUNT(*) FROM identity_access_tokens WHERE identity_id = '%s'" % short
        self.assertEqual(harness.psql(self.uri, count), [["20"]])
        marks = [node.stderr_len() for node in (self.a, self.b)]
        for node in (self.a, self.b):
            node.advance_clock(3720)
            self.addCleanup(node.advance_clock, -3720)
        deadline = time.monotonic() + 15
        while harness.psql(self.uri, count) != [["0"]] and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(harness.psql(self.uri, count), [["0"]])
        for node, mark in zip((self.a, self.b), marks):
            self.assertEqual(self.get(node, pid, "PRUNED", token=live).status, 200)
            log = node.stderr_since(mark)
            self.assertNotIn("error msg=\"access token pruning", log)

    def test_admin_token_rotation_is_honoured_by_every_node(self):
        """On nodes of their own: the class's nodes (and the ones other tests start) keep the bootstrap token."""
        uri, key = harness.new_pg_database(), root_key()
        nodes = start_nodes(2, uri, key)
        try:
            for node in nodes:
                self.assertEqual(node.api("GET", "/api/v1/identities").status, 200)
            env = harness.base_env({"COFFER_DB": uri, "COFFER_ROOT_KEY": key})
            rc, out, err = harness.run(["operator", "rotate-admin-token", "--data-dir", nodes[0].data_dir],
                                       env=env)
            self.assertEqual(rc, 0, err)
            new = out.split("admin token: ", 1)[1].split()[0]
            for node in nodes:
                self.assertEqual(node.api("GET", "/api/v1/identities", token=ADMIN_TOKEN).status, 401)
                self.assertEqual(node.api("GET", "/api/v1/identities", token=new).status, 200)
        finally:
            for node in nodes:
                rc = node.stop()
                report = node.sanitizer_report()
                node.cleanup()
                self.assertIsNone(report, report)
                self.assertEqual(rc, 0, "a node exited %s" % rc)

    def test_node_killed_mid_stream_requests_resent_succeed(self):
        pid = self.project(self.a)
        for i in range(10):
            self.assertEqual(self.put(self.a, pid, "K%d" % i, "v", create=True).status, 200)
        c = start_nodes(1, self.uri, self.key)[0]
        try:
            failed_on_c, results = [], []
            stop, killed = threading.Event(), threading.Event()

            def one(node, i):
                key = "K%d" % (i % 10)
                if i % 2:
                    return self.put(node, pid, key, "w%d" % i)
                return self.get(node, pid, key)

            def stream():
                # runs until the kill and 40 requests past it, however fast the nodes answer
                i, after_kill = 0, 0
                while not stop.is_set() and after_kill < 40:
                    if killed.is_set():
                        after_kill += 1
                    node = c if i % 2 == 0 else self.b
                    try:
                        r = one(node, i)
                        results.append(r.status)
                        if node is c and r.status >= 500:
                            failed_on_c.append(i)
                    except OSError:
                        if node is not c:
                            raise
                        failed_on_c.append(i)
                    i += 1

            t = threading.Thread(target=stream)
            t.start()
            time.sleep(0.7)
            c.kill9()
            killed.set()
            t.join(60)
            stop.set()
            self.assertFalse(t.is_alive())
            self.assertTrue(failed_on_c, "the kill should have cut some requests to C")
            for i in failed_on_c:
                r = one(self.b, i)
                self.assertEqual(r.status, 200, "request %d re-sent to B: %s" % (i, r.body[:200]))
            self.assertTrue(all(s == 200 for s in results), set(results))
        finally:
            c.cleanup()


@ONLY_PG
class ListCacheTwoNodes(NodeHelpers, unittest.TestCase):
    """Each node keeps rendered folder lists (core/listcache.h) under the database's content version: a write or a
    narrowed rule on A is honoured by B's next list, whose body B had cached. The nodes log at debug level, which
    says when a list was answered from the cache."""

    @classmethod
    def setUpClass(cls):
        cls.uri = harness.new_pg_database()
        cls.a, cls.b = start_nodes(2, cls.uri, root_key(), args=("--log-level", "debug"))

    @classmethod
    def tearDownClass(cls):
        stop_nodes((cls.a, cls.b))

    def listed(self, node, pid, path="/", token=...):
        mark = node.stderr_len()
        r = node.api("GET", "/api/v3/secrets/raw", query={"workspaceId": pid, "environment": "dev",
                                                            "secretPath": path}, token=token)
        deadline = time.time() + (2 if r.status == 200 else 0.2)
        log = node.stderr_since(mark)
        while "list cache" not in log and time.time() < deadline:
            time.sleep(0.01)
            log = node.stderr_since(mark)
        values = {s["secretKey"]: s["secretValue"] for s in r.json["secrets"]} if r.status == 200 else None
        return r.status, values, "answered from the list cache" in log

    def test_b_lists_what_a_wrote_and_honours_a_narrowed_rule(self):
        pid = self.project(self.a)
        r = self.a.api("POST", "/api/v1/folders", body={"workspaceId": pid, "environment": "dev", "name": "app"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.put(self.a, pid, "TOP", "top-1", create=True).status, 200)
        self.assertEqual(self.put(self.a, pid, "DEEP", "deep", create=True, secretPath="/app").status, 200)
        self.assertEqual(self.listed(self.b, pid)[:2], (200, {"TOP": "top-1"}))
        self.assertEqual(self.listed(self.b, pid), (200, {"TOP": "top-1"}, True))
        # a write on A: B's next list shows it (rendered again), then serves the new body
        self.assertEqual(self.put(self.a, pid, "TOP", "top-2").status, 200)
        self.assertEqual(self.listed(self.b, pid), (200, {"TOP": "top-2"}, False))
        self.assertEqual(self.listed(self.b, pid), (200, {"TOP": "top-2"}, True))
        # a secret added on A
        self.assertEqual(self.put(self.a, pid, "NEW", "new", create=True).status, 200)
        self.assertEqual(self.listed(self.b, pid)[1], {"TOP": "top-2", "NEW": "new"})
        # an identity reading / and /app from B's cache, until A narrows its rule to /app
        ident, client_id, secret = self.machine(self.a, pid)
        token = self.login(self.a, client_id, secret)
        for path in ("/", "/app"):
            self.listed(self.b, pid, path)
            self.assertTrue(self.listed(self.b, pid, path, token=token)[2], path)
        r = self.a.api("POST", "/api/v2/workspace/%s/identity-memberships/%s" % (pid, ident),
                       body={"role": "viewer", "rules": [{"actions": ["read"], "secretPath": "/app/**"}]})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.listed(self.b, pid, "/", token=token)[0], 403)
        self.assertEqual(self.listed(self.b, pid, "/app", token=token), (200, {"DEEP": "deep"}, True))
        self.assertEqual(self.listed(self.a, pid, "/", token=token)[0], 403)


@ONLY_PG
class NotificationJob(NodeHelpers, unittest.TestCase):
    """The expiry-notice job on one node at a time."""

    def setUp(self):
        self.uri = harness.new_pg_database()
        self.nodes = start_nodes(2, self.uri, root_key(), env={"COFFER_NOTIFY_INTERVAL": "1s",
                                                                "COFFER_NOTIFY_RETRY_BASE": "1s"})
        self.receiver = Receiver()

    def tearDown(self):
        self.receiver.close()
        for node in self.nodes:
            node.stop()
            report = node.sanitizer_report()
            node.cleanup()
            self.assertIsNone(report, report)

    def notices_for(self, key):
        return [n for n in self.receiver.accepted() if key in json_text(n)]

    def wait_for(self, key, count, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.notices_for(key)) < count:
            time.sleep(0.2)
        return self.notices_for(key)

    def test_each_notice_once_and_failover(self):
        a, b = self.nodes
        pid = self.project(a)
        r = a.api("POST", "/api/v1/notifications/channels",
                  body={"projectId": pid, "type": "webhook", "name": "hook", "url": self.receiver.url})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.put(a, pid, "EXPIRING_SOON", "v", create=True, expiresAt=later(10)).status, 200)
        self.assertEqual(len(self.wait_for("EXPIRING_SOON", 1)), 1)
        time.sleep(3)  # several more passes on both nodes: nothing new
        self.assertEqual(len(self.notices_for("EXPIRING_SOON")), 1, self.receiver.accepted())
        # one node holds the job; the other says so
        statuses = sorted(node.api("POST", "/api/v1/notifications/run", body={}).status for node in self.nodes)
        self.assertEqual(statuses, [200, 409])
        holder = [node for node in self.nodes
                  if node.api("POST", "/api/v1/notifications/run", body={}).status == 200][0]
        other = b if holder is a else a
        r = other.api("POST", "/api/v1/notifications/run", body={})
        self.assertIn("another coffer server", r.json["message"])
        # the holder dies; the other takes the job over and delivers what comes next, once
        holder.kill9()
        self.assertEqual(self.put(other, pid, "EXPIRING_LATER", "v", create=True, expiresAt=later(5)).status, 200)
        self.assertEqual(len(self.wait_for("EXPIRING_LATER", 1)), 1)
        time.sleep(2)
        self.assertEqual(len(self.notices_for("EXPIRING_LATER")), 1)
        self.assertEqual(len(self.notices_for("EXPIRING_SOON")), 1)
        self.assertEqual(other.api("POST", "/api/v1/notifications/run", body={}).status, 200)


def json_text(notice):
    import json
    return json.dumps(notice)


@ONLY_PG
class DatabaseOutage(NodeHelpers, unittest.TestCase):
    """A cluster of its own (scripts/pg.sh), halted and resumed, and frozen with SIGSTOP."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="coffer-pgout-")
        os.chmod(self.dir, 0o755)
        self.pg = os.path.join(self.dir, "pg")
        out = subprocess.run([harness.PG_SCRIPT, "start", self.pg], check=True, capture_output=True, timeout=120)
        base = out.stdout.decode().strip()
        subprocess.run([harness.PG_SCRIPT, "createdb", self.pg, "outage"], check=True, capture_output=True,
                       timeout=60)
        self.uri = base.replace(":///?", ":///outage?")
        self.node = Server(env={"COFFER_DB": self.uri}, args=["--db-timeout", "2"])
        self.node.start()
        self.pid = self.project(self.node)
        self.assertEqual(self.put(self.node, self.pid, "K", "v", create=True).status, 200)

    def tearDown(self):
        self.node.stop()
        report = self.node.sanitizer_report()
        self.node.cleanup()
        subprocess.run([harness.PG_SCRIPT, "stop", self.pg], capture_output=True, timeout=120)
        os.rmdir(self.dir)
        self.assertIsNone(report, report)

    def assertFast503(self, what, *words):
        t0 = time.monotonic()
        r = self.get(self.node, self.pid, "K")
        took = time.monotonic() - t0
        self.assertEqual(r.status, 503, "%s: %s" % (what, r.body[:300]))
        self.assertLess(took, 4.0, "%s took %.1f s" % (what, took))
        for word in words:
            self.assertIn(word, r.json["message"])
        self.assertNotIn("password", r.json["message"])
        return r

    def recovered(self, timeout=10):
        """The first answer of 200 to a read within timeout seconds (or the last answer): the node reconnects
        by itself, without a restart."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.get(self.node, self.pid, "K")
            if r.status == 200 or time.monotonic() > deadline:
                return r
            time.sleep(0.2)

    def test_halted_then_back(self):
        subprocess.run([harness.PG_SCRIPT, "halt", self.pg], check=True, capture_output=True, timeout=60)
        self.assertFast503("a request while the database is down", "unreachable")
        self.assertFast503("and another", "unreachable")
        self.assertEqual(self.node.api("GET", "/api/status", token=None).status, 503)
        subprocess.run([harness.PG_SCRIPT, "resume", self.pg], check=True, capture_output=True, timeout=60)
        r = self.recovered()
        self.assertEqual((r.status, r.json["secret"]["secretValue"]), (200, "v"))
        w = self.put(self.node, self.pid, "K", "v2")
        self.assertEqual(w.status, 200, w.body[:300])
        self.assertTrue(self.node.alive())

    def test_every_request_after_a_restart_is_served(self):
        """Each worker thread's session dies with the database; none of them may answer its first request
        after the restart with 503 (the dead session is replaced before a read or a write begins)."""
        for i in range(4):  # touch the sessions of every worker thread
            self.assertEqual(self.get(self.node, self.pid, "K").status, 200)
        subprocess.run([harness.PG_SCRIPT, "halt", self.pg], check=True, capture_output=True, timeout=60)
        subprocess.run([harness.PG_SCRIPT, "resume", self.pg], check=True, capture_output=True, timeout=60)
        answers = []
        for i in range(8):
            r = self.get(self.node, self.pid, "K") if i % 2 else self.put(self.node, self.pid, "K", "w%d" % i)
            answers.append((r.status, r.body[:200]))
        self.assertEqual([a for a in answers if a[0] != 200], [])
        self.assertTrue(self.node.alive())

    def test_frozen_database_cannot_hold_a_request(self):
        with open(os.path.join(self.pg, "data", "postmaster.pid")) as f:
            postmaster = f.readline().strip()
        children = subprocess.run(["pgrep", "-P", postmaster], capture_output=True).stdout.split()
        pids = [postmaster] + [p.decode() for p in children]
        self.assertGreater(len(pids), 2)  # the postmaster, its helpers, the node's sessions
        for p in pids:
            os.kill(int(p), signal.SIGSTOP)
        try:
            # the session's query hits the deadline, or a new session's connect_timeout: either way, at once
            r = self.assertFast503("a request while the database is frozen")
            self.assertRegex(r.json["message"], "did not answer|timeout expired")
        finally:
            for p in pids:
                os.kill(int(p), signal.SIGCONT)
        r = self.recovered()
        self.assertEqual(r.status, 200, r.body[:300])


if __name__ == "__main__":
    unittest.main()
