"""The list cache (core/listcache.h, docs/server.md --cache-size): a folder list's rendered body is served again
until a change that can alter it, only to callers allowed to read the folder, and its reads are audited as uncached
ones are. The server runs with --log-level debug, whose lines say whether a list was rendered for the cache or
answered from it; no value ever appears in them."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_audit import AuditHelpers  # noqa: E402
from test_identities import IdentityHelpers  # noqa: E402

HIT = "answered from the list cache"
RENDERED = "rendered for the list cache"


class CacheHelpers:
    def listed(self, pid, path="/", token=..., cacheable=True, **query):
        """(status, {key: value}, whether the cache answered) of one v3 list."""
        mark = self.server.stderr_len()
        r = self.list_secrets(pid, path=path, token=token, **query) if token is not ... else \
            self.list_secrets(pid, path=path, **query)
        # the log line is written before the answer, read from the server's stderr by a thread of the
        # harness: wait for it (a list that is not cacheable writes neither line)
        deadline = time.time() + (2 if cacheable else 0.2)
        log = self.server.stderr_since(mark)
        while HIT not in log and RENDERED not in log and time.time() < deadline:
            time.sleep(0.01)
            log = self.server.stderr_since(mark)
        values = {s["secretKey"]: s["secretValue"] for s in r.json["secrets"]} if r.status == 200 else None
        return r.status, values, HIT in log

    def list_secrets(self, pid, env="dev", path="/", token=..., **query):
        q = {"workspaceId": pid, "environment": env, "secretPath": path}
        q.update(query)
        return self.api("GET", "/api/v3/secrets/raw", query=q, token=token)


class ListCache(CacheHelpers, IdentityHelpers, AuditHelpers, harness.ServerTestCase):
    server_args = ("--log-level", "debug")

    def test_second_list_is_cached_and_a_write_retires_it(self):
        pid = self.create_project()["id"]
        self.set_secret(pid, "A", "canary-list-a1")
        self.assertEqual(self.listed(pid), (200, {"A": "canary-list-a1"}, False))
        self.assertEqual(self.listed(pid), (200, {"A": "canary-list-a1"}, True))
        # every change that alters the list: an update, a new secret, a rollback, a delete, a tag
        self.update_secret(pid, "A", secretValue="canary-list-a2")
        self.assertEqual(self.listed(pid), (200, {"A": "canary-list-a2"}, False))
        self.set_secret(pid, "B", "canary-list-b1")
        self.assertEqual(self.listed(pid)[1], {"A": "canary-list-a2", "B": "canary-list-b1"})
        self.assertTrue(self.listed(pid)[2])
        r = self.api("DELETE", "/api/v3/secrets/raw/B", body={"workspaceId": pid, "environment": "dev"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.listed(pid), (200, {"A": "canary-list-a2"}, False))
        self.assertTrue(self.listed(pid)[2])
        self.ok("POST", "/api/v1/projects/%s/tags" % pid, body={"slug": "t1", "color": "#fff"})
        self.assertFalse(self.listed(pid)[2])
        # flags are part of the key: a hidden-value list is a body of its own
        status, values, hit = self.listed(pid, viewSecretValue="false")
        self.assertEqual((status, hit), (200, False))
        self.assertNotEqual(values["A"], "canary-list-a2")
        self.assertEqual(self.listed(pid), (200, {"A": "canary-list-a2"}, True))
        # expanded, recursive and import lists are never cached
        for query in ({"expandSecretReferences": "true"}, {"recursive": "true"}, {"include_imports": "true"}):
            for _ in range(2):
                self.assertFalse(self.listed(pid, cacheable=False, **query)[2], query)
        self.assertNotIn("canary-list", self.server.stderr + self.server.stdout)

    def test_cached_read_is_audited_like_an_uncached_one(self):
        pid = self.create_project()["id"]
        self.set_secret(pid, "K1", "v1")
        self.set_secret(pid, "K2", "v2")
        self.assertFalse(self.listed(pid)[2])
        self.assertTrue(self.listed(pid)[2])
        events = self.events(action="secrets.list", projectId=pid)
        self.assertEqual(len(events), 2)
        for event in events:
            self.assertEqual(sorted(event["keys"]), ["K1", "K2"])
            self.assertEqual((event["environment"], event["secretPath"], event["result"]), ("dev", "/", "ok"))

    def test_cached_long_list_is_audited_in_full(self):
        pid = self.create_project()["id"]
        keys = ["K%02d_" % i + "X" * 96 for i in range(60)]  # 6,059 bytes of names: more than an event holds
        self.ok("POST", "/api/v3/secrets/batch/raw", body={
            "workspaceId": pid, "environment": "dev", "secretPath": "/",
            "secrets": [{"secretKey": k, "secretValue": "v"} for k in keys]})
        self.assertFalse(self.listed(pid)[2])
        self.assertTrue(self.listed(pid)[2])
        by_request = {}
        for event in self.events(action="secrets.list", projectId=pid):
            by_request.setdefault(event["requestId"], []).append(event)
        self.assertEqual(len(by_request), 2)
        for events in by_request.values():
            self.assertGreater(len(events), 1)
            self.assertEqual(sorted(k for e in events for k in e["keys"]), sorted(keys))

    def test_rights_are_checked_on_every_cached_read(self):
        pid = self.create_project()["id"]
        self.create_folder(pid, "dev", "app")
        self.set_secret(pid, "TOP", "top")
        self.set_secret(pid, "DEEP", "deep", path="/app")
        m = self.machine(pid, "viewer")
        for path in ("/", "/app"):
            self.listed(pid, path=path)  # rendered by the admin
            self.assertEqual(self.listed(pid, path=path, token=m["token"])[2], True, path)
        # a rule narrowed to /app: the cached body of / is refused, the one of /app still served
        self.add_member(pid, m["id"], "viewer", rules=[{"actions": ["read"], "secretPath": "/app/**"}])
        status, _, hit = self.listed(pid, path="/", token=m["token"], cacheable=False)
        self.assertEqual((status, hit), (403, False))
        self.assertEqual(self.listed(pid, path="/app", token=m["token"]), (200, {"DEEP": "deep"}, True))
        # a caller who may read only part of the environment never gets a body of a place it may not read,
        # and a secret added to / is in the next list of whoever may read it
        self.set_secret(pid, "TOP2", "top2")
        self.assertEqual(self.listed(pid, path="/", token=m["token"], cacheable=False)[0], 403)
        self.assertEqual(self.listed(pid, path="/")[1], {"TOP": "top", "TOP2": "top2"})
        # recursive lists of the partial reader are built for it, never from a cache
        r = self.list_secrets(pid, path="/", token=m["token"], recursive="true")
        self.assertEqual(r.status, 403, r.body)
        # no membership: refused although the body is cached
        self.api("DELETE", "/api/v2/workspace/%s/identity-memberships/%s" % (pid, m["id"]))
        self.assertEqual(self.listed(pid, path="/app", token=m["token"], cacheable=False)[0], 403)

    def test_root_key_rotation_then_restart(self):
        """The operator rotates the root key of a stopped server (the store's triggers bump the content version
        in the same transaction: tests/unit/store_test.c); the restarted server lists what was stored."""
        pid = self.create_project()["id"]
        self.set_secret(pid, "R", "rotated-value")
        self.listed(pid)
        self.assertTrue(self.listed(pid)[2])
        self.server.stop()
        rc, out, err = harness.run(["operator", "rotate-root-key", "--data-dir", self.server.data_dir])
        self.assertEqual(rc, 0, err)
        self.server.start()
        self.assertEqual(self.listed(pid), (200, {"R": "rotated-value"}, False))
        self.assertTrue(self.listed(pid)[2])


class OneCache(CacheHelpers, IdentityHelpers, AuditHelpers, harness.ServerTestCase):
    """The body of one secret read (current version, not expanded, found in the folder itself) is cached the same
    way."""
    server_args = ("--log-level", "debug")

    def got(self, pid, key, token=..., cacheable=True, **query):
        """(status, value, whether the cache answered) of one v3 read."""
        mark = self.server.stderr_len()
        q = dict({"workspaceId": pid, "environment": "dev", "secretPath": "/"}, **query)
        r = self.api("GET", "/api/v3/secrets/raw/" + key, query=q, token=token)
        deadline = time.time() + (2 if cacheable else 0.2)
        log = self.server.stderr_since(mark)
        while HIT not in log and RENDERED not in log and time.time() < deadline:
            time.sleep(0.01)
            log = self.server.stderr_since(mark)
        return r.status, r.json["secret"]["secretValue"] if r.status == 200 else None, HIT in log

    def test_one_secret_cached_until_it_changes_and_rights_checked(self):
        pid = self.create_project()["id"]
        self.create_folder(pid, "dev", "app")
        self.set_secret(pid, "ONE", "canary-one-1")
        self.assertEqual(self.got(pid, "ONE"), (200, "canary-one-1", False))
        self.assertEqual(self.got(pid, "ONE"), (200, "canary-one-1", True))
        self.update_secret(pid, "ONE", secretValue="canary-one-2")
        self.assertEqual(self.got(pid, "ONE"), (200, "canary-one-2", False))
        self.assertEqual(self.got(pid, "ONE"), (200, "canary-one-2", True))
        # hidden values, older versions, expanded reads: hidden is a body of its own, the others never cached
        self.assertEqual(self.got(pid, "ONE", viewSecretValue="false")[2], False)
        self.assertEqual(self.got(pid, "ONE", viewSecretValue="false")[2], True)
        for query in ({"version": "1"}, {"expandSecretReferences": "true"}):
            for _ in range(2):
                self.assertFalse(self.got(pid, "ONE", cacheable=False, **query)[2], query)
        self.assertEqual(self.got(pid, "ONE", cacheable=False, version="1")[1], "canary-one-1")
        # an identity gets the cached body while it may read /, not once a rule narrows it to /app
        m = self.machine(pid, "viewer")
        self.assertEqual(self.got(pid, "ONE", token=m["token"]), (200, "canary-one-2", True))
        self.add_member(pid, m["id"], "viewer", rules=[{"actions": ["read"], "secretPath": "/app/**"}])
        self.assertEqual(self.got(pid, "ONE", token=m["token"], cacheable=False)[0], 403)
        self.assertEqual(self.got(pid, "ONE"), (200, "canary-one-2", True))
        # a deleted secret is gone at once
        r = self.api("DELETE", "/api/v3/secrets/raw/ONE", body={"workspaceId": pid, "environment": "dev"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.got(pid, "ONE", cacheable=False)[0], 404)
        events = self.events(action="secrets.read", projectId=pid)
        self.assertTrue(events)
        self.assertTrue(all(e["keys"] == ["ONE"] for e in events), events)
        self.assertEqual(sum(1 for e in events if e["result"] == "ok"), 13)  # every 200 above
        self.assertNotIn("canary-one", self.server.stderr + self.server.stdout)

    def test_a_secret_answered_by_an_import_is_not_cached(self):
        src = self.create_project()["id"]
        self.set_secret(src, "IMP", "from-prod", env="prod")
        self.ok("POST", "/api/v2/secret-imports", body={
            "projectId": src, "environment": "dev", "path": "/",
            "import": {"environment": "prod", "path": "/"}})
        for _ in range(2):
            self.assertEqual(self.got(src, "IMP", cacheable=False, include_imports="true"),
                             (200, "from-prod", False))


class CacheOff(CacheHelpers, harness.ServerTestCase):
    server_args = ("--log-level", "debug", "--cache-size", "0")

    def test_nothing_is_cached(self):
        pid = self.create_project()["id"]
        self.set_secret(pid, "A", "a")
        mark = self.server.stderr_len()
        for _ in range(3):
            self.assertEqual(self.listed(pid, cacheable=False), (200, {"A": "a"}, False))
        self.assertNotIn(RENDERED, self.server.stderr_since(mark))


class SmallCache(CacheHelpers, harness.ServerTestCase):
    # room for one body of a 20-secret folder (~13 KB), not two
    server_args = ("--log-level", "debug", "--cache-size", "20000")

    def test_eviction_under_the_bound(self):
        pids = [self.create_project()["id"] for _ in range(2)]
        for pid in pids:
            r = self.api("POST", "/api/v3/secrets/batch/raw", body={
                "workspaceId": pid, "environment": "dev",
                "secrets": [{"secretKey": "K%02d" % i, "secretValue": "x" * 64} for i in range(20)]})
            self.assertEqual(r.status, 200, r.body)
        self.listed(pids[0])
        self.assertTrue(self.listed(pids[0])[2])
        self.listed(pids[1])  # evicts the first
        self.assertTrue(self.listed(pids[1])[2])
        self.assertFalse(self.listed(pids[0])[2])

    def test_bad_sizes_refused(self):
        for bad in ("-1", "lots", "1e9", str(64 * 1024 ** 3 + 1)):
            rc, out, err = harness.run(["server", "--cache-size", bad, "--data-dir", self.server.data_dir + "-x"])
            self.assertNotEqual(rc, 0, err)
            self.assertIn("cache-size", err)


if __name__ == "__main__":
    unittest.main()
