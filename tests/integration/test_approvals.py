"""Approvals (docs/approvals.md): approval policies and change requests, through the real server and CLI.

- policies: created and deleted by project admins only, bad input 422/404 naming the field, listed;
- a user's write (v3 and v4, single and batch) to a covered place is answered 202 with a change request and does
  not apply; approvers see a diff of keys with values masked; revealing values needs read permission, is audited;
- two approvers (one through a group), self-approval refused, merge refused until approved, then applied;
- a rejection closes the request; a conflict on merge (409 naming the key and both versions) leaves it open;
- machine identities get 403 naming the policy unless the policy allows them; rollback is refused there too;
- a soft policy: an org owner merges without the approvals giving a reason, audited; others and hard policies
  cannot; every decision in the audit log naming the user; values never in the audit log or the server log;
- notifications of a request and its decisions on a webhook channel, with the link;
- the CLI: coffer approvals policies|requests|show|approve|reject|merge (table and --json).
"""

import json
import os
import shutil
import tempfile
import time
import urllib.parse
import uuid

import harness
from test_identities import IdentityHelpers
from test_notifications import Receiver

PASSWORD = "correct horse battery staple"
# where this server's file syncs may write (--sync-file-dir)
SYNC_ROOT = tempfile.mkdtemp(prefix="coffer-approvals-sync-")


def wait_for(fn, timeout=10):
    end = time.time() + timeout
    while True:
        got = fn()
        if got or time.time() > end:
            return got
        time.sleep(0.2)


def tearDownModule():
    shutil.rmtree(SYNC_ROOT, ignore_errors=True)


class Approvals(IdentityHelpers, harness.ServerTestCase):
    server_args = ("--notify-interval", "1s", "--notify-retry-base", "1s", "--sync-file-dir", SYNC_ROOT)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        cls.users = {}
        for email, role in (("owner@example.com", "owner"), ("alice@example.com", "member"),
                            ("bob@example.com", "member"), ("carol@example.com", "member"),
                            ("dave@example.com", "member")):
            r = s.api("POST", "/api/v1/users", body={"email": email, "orgRole": role, "password": PASSWORD})
            assert r.status == 200, r.body
            cls.users[email] = r.json["user"]
        cls.tokens = {email: cls.user_token(email) for email in cls.users}
        r = s.api("POST", "/api/v2/workspace", body={"projectName": harness.unique("appr")})
        assert r.status == 200, r.body
        cls.pid = r.json["project"]["id"]
        # alice writes; bob and carol may read and write; dave is an approver who may not read
        for email in ("alice@example.com", "bob@example.com", "carol@example.com"):
            r = s.api("POST", "/api/v2/workspace/%s/user-memberships/%s" % (cls.pid, email),
                      body={"role": "member"})
            assert r.status == 200, r.body
        r = s.api("POST", "/api/v2/workspace/%s/user-memberships/dave@example.com" % cls.pid,
                  body={"role": "no-access"})
        assert r.status == 200, r.body
        # a group of 0019's tables (its API is another part of the server): carol is in it
        gid = str(uuid.uuid4())
        now = int(time.time() * 1000)
        harness.sql(s.data_dir,
                    "INSERT INTO user_groups (id, name, created_at, updated_at) VALUES ('%s', 'prod-approvers', %d, %d)"
                    % (gid, now, now),
                    "INSERT INTO user_group_members (group_id, user_id, created_at) VALUES ('%s', '%s', %d)"
                    % (gid, cls.users["carol@example.com"]["id"], now))
        cls.group_id = gid

    @classmethod
    def user_token(cls, email):
        s = cls.server
        r = s.api("POST", "/api/v1/auth/login",
                  body={"email": email, "password": PASSWORD,
                        "personalAccessToken": {"name": "t", "expiresIn": "1d"}}, token=None)
        assert r.status == 200, r.body
        return r.json["token"]

    def as_user(self, email, method, path, query=None, body=None):
        return self.api(method, path, query=query, body=body, token=self.tokens[email])

    def policy(self, name, env, path="/", approvals=2, enforcement="hard", approvers=None, **extra):
        body = {"workspaceId": self.pid, "name": name, "environment": env, "secretPath": path,
                "approvals": approvals, "enforcementLevel": enforcement,
                "approvers": approvers or [{"type": "user", "username": "bob@example.com"},
                                           {"type": "group", "name": "prod-approvers"},
                                           {"type": "user", "id": self.users["dave@example.com"]["id"]}]}
        body.update(extra)
        r = self.api("POST", "/api/v1/secret-approvals", body=body)
        self.assertEqual(r.status, 200, r.body)
        return r.json["approval"]

    def folder(self, env, name):
        self.create_folder(self.pid, env, name)
        return "/" + name

    def propose(self, email, key, value, env, path, method="POST"):
        r = self.as_user(email, method, "/api/v3/secrets/raw/" + urllib.parse.quote(key, safe=""),
                         body={"workspaceId": self.pid, "environment": env, "secretPath": path,
                               "secretValue": value})
        self.assertEqual(r.status, 202, r.body)
        return r.json

    def request(self, rid, email="bob@example.com"):
        r = self.as_user(email, "GET", "/api/v1/secret-approval-requests/" + rid)
        self.assertEqual(r.status, 200, r.body)
        return r.json["approval"]

    def review(self, email, rid, status, comment=""):
        return self.as_user(email, "POST", "/api/v1/secret-approval-requests/%s/review" % rid,
                            body={"status": status, "comment": comment})

    def merge(self, email, rid, reason=None):
        body = {"bypassReason": reason} if reason is not None else {}
        return self.as_user(email, "POST", "/api/v1/secret-approval-requests/%s/merge" % rid, body=body)

    def events(self, action):
        return self.ok("GET", "/api/v1/audit/events", query={"action": action, "limit": 1000})["events"]

    # ---- policies ----

    def test_policy_bad_input_and_rights(self):
        base = {"workspaceId": self.pid, "name": "p-bad", "environment": "staging", "secretPath": "/",
                "approvals": 1, "approvers": [{"type": "user", "username": "bob@example.com"}]}
        cases = [
            ({"approvals": 0}, 422, "approvals"),
            ({"approvals": "two"}, 400, "approvals"),
            ({"enforcementLevel": "medium"}, 422, "enforcementLevel"),
            ({"approvers": []}, 422, "approvers"),
            ({"approvers": [{"type": "robot", "id": "x"}]}, 422, "approvers"),
            ({"approvers": [{"type": "user", "username": "nobody@example.com"}]}, 404, "nobody@example.com"),
            ({"approvers": [{"type": "group", "name": "no-such-group"}]}, 404, "no-such-group"),
            ({"environment": "nope"}, 404, "nope"),
            ({"secretPath": "relative"}, 422, "secretPath"),
            ({"name": ""}, 422, "name"),
        ]
        for change, status, word in cases:
            body = dict(base)
            body.update(change)
            r = self.api("POST", "/api/v1/secret-approvals", body=body)
            self.assertError(r, status, None, word, msg=repr(change))
        # a project member is not a project admin
        r = self.as_user("alice@example.com", "POST", "/api/v1/secret-approvals", body=base)
        self.assertError(r, 403, None)
        p = self.policy("p-crud", "staging", "/crud/**", approvals=1)
        self.assertEqual(p["enforcementLevel"], "hard")
        self.assertFalse(p["allowMachineIdentities"])
        self.assertEqual({a["type"] for a in p["approvers"]}, {"user", "group"})
        r = self.api("POST", "/api/v1/secret-approvals", body=dict(base, name="p-crud"))
        self.assertError(r, 400, None, "p-crud", "already exists")
        listed = self.as_user("alice@example.com", "GET", "/api/v1/secret-approvals",
                              query={"workspaceId": self.pid}).json["approvals"]
        self.assertIn("p-crud", [x["name"] for x in listed])
        r = self.as_user("alice@example.com", "DELETE", "/api/v1/secret-approvals/" + p["id"],
                         query={"workspaceId": self.pid})
        self.assertError(r, 403, None)
        self.ok("DELETE", "/api/v1/secret-approvals/" + p["id"], query={"workspaceId": self.pid})
        r = self.api("DELETE", "/api/v1/secret-approvals/" + p["id"], query={"workspaceId": self.pid})
        self.assertError(r, 404, None, p["id"])
        self.assertTrue(self.events("approvals.policies.create"))
        self.assertTrue(self.events("approvals.policies.delete"))

    # ---- the whole flow ----

    def test_two_approvers_self_approval_refused_then_merge(self):
        receiver = Receiver()
        try:
            self.ok("POST", "/api/v1/notifications/channels",
                    body={"type": "webhook", "url": receiver.url, "workspaceId": self.pid, "name": "ops"})
            path = self.folder("prod", "flow")
            self.policy("p-flow", "prod", path)
            canary = "canary-" + uuid.uuid4().hex
            held = self.propose("alice@example.com", "DB_URL", canary, "prod", path)
            self.assertTrue(held["approvalRequired"])
            rid = held["approvalRequest"]["id"]
            self.assertEqual(held["approvalRequest"]["policy"], "p-flow")
            self.assertIn(rid, held["approvalRequest"]["url"])
            self.assertNotIn(canary, json.dumps(held))
            # nothing applied
            self.assertEqual(self.get_secret(self.pid, "DB_URL", "prod", path).status, 404)
            req = self.request(rid)
            self.assertEqual(req["status"], "open")
            self.assertEqual(req["diff"], {"added": ["DB_URL"], "changed": [], "deleted": []})
            self.assertEqual(req["commits"][0]["secretValue"], "<hidden>")
            self.assertEqual(req["committer"], "alice@example.com")
            self.assertNotIn(canary, json.dumps(req))
            # the author cannot approve, even as an approver would
            r = self.review("alice@example.com", rid, "approved")
            self.assertError(r, 403, None, "self-approval")
            # neither can the author merge before the approvals
            r = self.merge("alice@example.com", rid)
            self.assertError(r, 403, None, "0 of the 2", "p-flow")
            r = self.review("bob@example.com", rid, "approved", "looks right")
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.json["approval"]["approvals"], 1)
            self.assertFalse(r.json["approval"]["approved"])
            r = self.merge("bob@example.com", rid)
            self.assertError(r, 403, None, "1 of the 2")
            # carol approves through the group
            r = self.review("carol@example.com", rid, "approved")
            self.assertEqual(r.status, 200, r.body)
            self.assertTrue(r.json["approval"]["approved"])
            r = self.merge("alice@example.com", rid)
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.json["approval"]["status"], "merged")
            self.assertEqual(r.json["approval"]["mergedBy"], "alice@example.com")
            got = self.get_secret(self.pid, "DB_URL", "prod", path)
            self.assertEqual(got.status, 200, got.body)
            self.assertEqual(got.json["secret"]["secretValue"], canary)
            # merged once
            r = self.merge("alice@example.com", rid)
            self.assertError(r, 409, None, "merged")
            # every decision audited naming the user, never a value
            approve = [e for e in self.events("approvals.requests.approve")
                       if e["actor"]["name"] == "bob@example.com"]
            self.assertTrue(approve)
            self.assertEqual(approve[-1]["reason"], "looks right")
            self.assertIn("DB_URL", approve[-1]["keys"])
            merges = [e for e in self.events("approvals.requests.merge") if e["result"] == "ok"]
            self.assertEqual(merges[-1]["actor"]["name"], "alice@example.com")
            created = self.events("approvals.requests.create")
            self.assertTrue(any(e["actor"]["name"] == "alice@example.com" for e in created))
            denied = [e for e in self.events("approvals.requests.approve") if e["result"] == "denied"]
            self.assertTrue(any(e["actor"]["name"] == "alice@example.com" for e in denied))
            everything = json.dumps(self.ok("GET", "/api/v1/audit/events", query={"limit": 1000}))
            self.assertNotIn(canary, everything)
            self.assertNotIn(canary, self.server.stderr)
            # the channel was told of the request and of each decision, with the link
            def events():
                return {p["threshold"] for p in receiver.accepted() if p.get("event") == "coffer.approval"
                        and p["item"]["requestId"] == rid}
            self.assertTrue(wait_for(lambda: {"change-opened", "change-approved", "change-merged"}
                                     <= events(), timeout=15), receiver.accepted())
            for post in receiver.accepted():
                self.assertNotIn(canary, json.dumps(post))
                if post.get("event") == "coffer.approval":
                    self.assertIn("/api/v1/secret-approval-requests/" + post["item"]["requestId"],
                                  post["message"])
        finally:
            receiver.close()

    def test_a_merged_change_reaches_the_projects_auto_sync(self):
        # The merge marks the project's auto-syncs pending in its own transaction, as a direct write does.
        path = self.folder("prod", "synced")
        out = os.path.join(SYNC_ROOT, uuid.uuid4().hex + ".env")
        self.ok("POST", "/api/v1/secret-syncs/file",
                body={"name": harness.unique("merge-sync"), "projectId": self.pid, "environment": "prod",
                      "secretPath": path, "destinationConfig": {"path": out, "format": "dotenv"}})
        # its first run (of the empty folder) is over before the change: only the merge's mark can deliver it
        self.assertTrue(wait_for(lambda: os.path.exists(out), timeout=10), "the sync never made its file")
        self.policy("p-synced", "prod", path, approvals=1)
        value = "merged-" + uuid.uuid4().hex[:8]
        rid = self.propose("alice@example.com", "SYNCED_KEY", value, "prod", path)["approvalRequest"]["id"]
        self.assertEqual(self.review("bob@example.com", rid, "approved").status, 200)
        r = self.merge("alice@example.com", rid)
        self.assertEqual(r.status, 200, r.body)

        def delivered():
            try:
                with open(out) as f:
                    return "SYNCED_KEY='%s'" % value in f.read()
            except FileNotFoundError:
                return False
        self.assertTrue(wait_for(delivered, timeout=10), "the merged change never reached the sync's file")

    def test_rejection_closes(self):
        path = self.folder("prod", "rej")
        self.policy("p-rej", "prod", path, approvals=1)
        rid = self.propose("alice@example.com", "K1", "v1", "prod", path)["approvalRequest"]["id"]
        r = self.review("dave@example.com", rid, "rejected", "not today")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["approval"]["status"], "rejected")
        self.assertEqual(r.json["approval"]["reviewers"][0]["comment"], "not today")
        r = self.review("bob@example.com", rid, "approved")
        self.assertError(r, 409, None, "rejected")
        r = self.merge("alice@example.com", rid)
        self.assertError(r, 409, None, "rejected")
        self.assertEqual(self.get_secret(self.pid, "K1", "prod", path).status, 404)
        rejected = self.events("approvals.requests.reject")
        self.assertTrue(any(e["actor"]["name"] == "dave@example.com" and e["reason"] == "not today"
                            for e in rejected))
        # a reviewer who is not an approver, and a bad decision
        rid = self.propose("alice@example.com", "K2", "v2", "prod", path)["approvalRequest"]["id"]
        r = self.review("bob@example.com", rid, "maybe")
        self.assertError(r, 422, None, "status")
        r = self.as_user("owner@example.com", "POST", "/api/v1/secret-approval-requests/%s/review" % rid,
                         body={"status": "approved"})
        self.assertError(r, 403, None, "not an approver", "p-rej")
        # the author withdraws it
        r = self.as_user("alice@example.com", "POST", "/api/v1/secret-approval-requests/%s/status" % rid,
                         body={"status": "close"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["approval"]["status"], "closed")
        listed = self.as_user("bob@example.com", "GET", "/api/v1/secret-approval-requests",
                              query={"workspaceId": self.pid, "status": "closed"}).json["approvals"]
        self.assertIn(rid, [x["id"] for x in listed])
        r = self.as_user("bob@example.com", "GET", "/api/v1/secret-approval-requests",
                         query={"workspaceId": self.pid, "status": "shut"})
        self.assertError(r, 422, None, "status")

    def test_conflict_on_merge_leaves_it_open(self):
        path = self.folder("prod", "conf")
        self.policy("p-conf", "prod", path, approvals=1)
        first = self.propose("alice@example.com", "SHARED", "one", "prod", path)["approvalRequest"]["id"]
        self.review("bob@example.com", first, "approved")
        self.assertEqual(self.merge("alice@example.com", first).status, 200)
        # two requests against version 1 of SHARED (an update and a batch)
        a = self.propose("alice@example.com", "SHARED", "two", "prod", path, method="PATCH")
        b = self.as_user("alice@example.com", "PATCH", "/api/v3/secrets/batch/raw",
                         body={"workspaceId": self.pid, "environment": "prod", "secretPath": path,
                               "secrets": [{"secretKey": "SHARED", "secretValue": "three"}]})
        self.assertEqual(b.status, 202, b.body)
        a, b = a["approvalRequest"]["id"], b.json["approvalRequest"]["id"]
        for rid in (a, b):
            self.assertEqual(self.review("carol@example.com", rid, "approved").status, 200)
        self.assertEqual(self.request(a)["diff"]["changed"], ["SHARED"])
        self.assertEqual(self.merge("alice@example.com", a).status, 200)
        r = self.merge("alice@example.com", b)
        self.assertError(r, 409, None, "'SHARED' was at version 1, is at 2", "stays open")
        self.assertNotIn("three", r.body.decode() if isinstance(r.body, bytes) else r.body)
        req = self.request(b)
        self.assertEqual(req["status"], "open")
        self.assertTrue(req["conflicts"])
        self.assertEqual((req["commits"][0]["baseVersion"], req["commits"][0]["currentVersion"]), (1, 2))
        got = self.get_secret(self.pid, "SHARED", "prod", path).json["secret"]
        self.assertEqual((got["secretValue"], got["version"]), ("two", 2))

    def test_machine_identities_and_rollback(self):
        path = self.folder("prod", "mach")
        self.policy("p-mach", "prod", path, approvals=1)
        m = self.machine(self.pid, "member", name=harness.unique("ci"))
        r = self.api("POST", "/api/v3/secrets/raw/BUILD", token=m["token"],
                     body={"workspaceId": self.pid, "environment": "prod", "secretPath": path,
                           "secretValue": "x"})
        self.assertError(r, 403, None, "p-mach", "machine identities")
        # the admin token cannot propose either
        r = self.api("POST", "/api/v3/secrets/raw/BUILD",
                     body={"workspaceId": self.pid, "environment": "prod", "secretPath": path,
                           "secretValue": "x"})
        self.assertError(r, 403, None, "p-mach", "admin token")
        # a policy that lets machines write
        spath = self.folder("staging", "mach")
        self.policy("p-mach-ok", "staging", spath, approvals=1, allowMachineIdentities=True)
        r = self.api("POST", "/api/v3/secrets/raw/BUILD", token=m["token"],
                     body={"workspaceId": self.pid, "environment": "staging", "secretPath": spath,
                           "secretValue": "y"})
        self.assertEqual(r.status, 200, r.body)
        # a rollback cannot become a change request: refused in a covered place
        sid = r.json["secret"]["id"]
        rid = self.propose("alice@example.com", "BUILD", "z", "staging", spath, method="PATCH")
        rid = rid["approvalRequest"]["id"]
        self.review("bob@example.com", rid, "approved")
        self.assertEqual(self.merge("bob@example.com", rid).status, 200)
        r = self.as_user("alice@example.com", "POST", "/api/v1/secret/%s/rollback" % sid, body={"version": 1})
        self.assertError(r, 403, None, "p-mach-ok", "rollback")

    def test_soft_policy_owner_bypass_audited(self):
        path = self.folder("staging", "soft")
        self.policy("p-soft", "staging", path, approvals=2, enforcement="soft")
        rid = self.propose("alice@example.com", "FLAG", "on", "staging", path)["approvalRequest"]["id"]
        r = self.merge("alice@example.com", rid, reason="hurry")
        self.assertError(r, 403, None, "only an org owner")
        # the owner: must be an approver or the author to merge; make the owner an approver by a policy of its own
        r = self.merge("owner@example.com", rid, reason="incident 42")
        self.assertError(r, 403, None, "only the author or an approver")
        path2 = self.folder("staging", "soft2")
        self.policy("p-soft2", "staging", path2, approvals=2, enforcement="soft",
                    approvers=[{"type": "user", "username": "owner@example.com"},
                               {"type": "user", "username": "bob@example.com"}])
        rid = self.propose("alice@example.com", "FLAG", "on", "staging", path2)["approvalRequest"]["id"]
        r = self.merge("owner@example.com", rid)
        self.assertError(r, 422, None, "bypassReason")
        r = self.merge("owner@example.com", rid, reason="incident 42: the fix must go out")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["approval"]["bypassReason"], "incident 42: the fix must go out")
        merges = [e for e in self.events("approvals.requests.merge")
                  if e["actor"]["name"] == "owner@example.com" and e["result"] == "ok"]
        self.assertTrue(merges)
        self.assertIn("bypassed", merges[-1]["reason"])
        self.assertIn("incident 42", merges[-1]["reason"])
        # a hard policy: not even the owner
        path3 = self.folder("prod", "hard")
        self.policy("p-hard", "prod", path3, approvals=1,
                    approvers=[{"type": "user", "username": "owner@example.com"}])
        rid = self.propose("alice@example.com", "FLAG", "on", "prod", path3)["approvalRequest"]["id"]
        r = self.merge("owner@example.com", rid, reason="please")
        self.assertError(r, 403, None, "hard-enforced")

    def test_reveal_needs_read_and_is_audited(self):
        path = self.folder("prod", "rev")
        self.policy("p-rev", "prod", path, approvals=1)
        canary = "proposed-" + uuid.uuid4().hex
        rid = self.propose("alice@example.com", "TOKEN", canary, "prod", path)["approvalRequest"]["id"]
        # dave approves but may not read prod: sees the diff, not the values
        self.assertEqual(self.request(rid, "dave@example.com")["diff"]["added"], ["TOKEN"])
        r = self.as_user("dave@example.com", "GET", "/api/v1/secret-approval-requests/%s/reveal" % rid)
        self.assertError(r, 403, None, "read permission")
        r = self.as_user("bob@example.com", "GET", "/api/v1/secret-approval-requests/%s/reveal" % rid)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["values"], [{"op": "create", "secretKey": "TOKEN", "proposedValue": canary,
                                             "currentValue": None}])
        reveals = [e for e in self.events("approvals.requests.reveal") if e["actor"]["name"] == "bob@example.com"]
        self.assertTrue(reveals and "TOKEN" in reveals[-1]["keys"])
        self.assertNotIn(canary, json.dumps(self.ok("GET", "/api/v1/audit/events", query={"limit": 1000})))
        self.assertNotIn(canary, self.server.stderr)
        # an org owner administers every project and sees it
        r = self.as_user("owner@example.com", "GET", "/api/v1/secret-approval-requests/" + rid)
        self.assertEqual(r.status, 200, r.body)

    def test_cli(self):
        path = self.folder("prod", "cli")
        alice, bob = self.tokens["alice@example.com"], self.tokens["bob@example.com"]
        rc, out, err = self.cli("approvals", "policies", "create", "--projectId", self.pid, "--name", "p-cli",
                                "--env", "prod", "--path", path, "--approvals", "1", "--approvers",
                                "bob@example.com")
        self.assertEqual(rc, 0, err)
        self.assertIn("p-cli", out)
        self.assertIn("bob@example.com", out)
        rc, out, err = self.cli("approvals", "policies", "list", "--projectId", self.pid, "--json")
        self.assertEqual(rc, 0, err)
        self.assertIn("p-cli", [p["name"] for p in json.loads(out)])
        rc, out, err = self.cli("approvals", "policies", "create", "--projectId", self.pid, "--name", "x",
                                "--env", "prod")
        self.assertEqual(rc, 2, out)
        self.assertIn("--approvers", err)
        rc, out, err = self.cli("secrets", "set", "API_KEY=from-cli", "--projectId", self.pid, "--env", "prod",
                                "--path", path, token=alice)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("needs approval", out)
        self.assertIn("coffer approvals show", out)
        rc, out, err = self.cli("approvals", "requests", "--projectId", self.pid, "--output", "json", token=bob)
        self.assertEqual(rc, 0, err)
        rid = [x for x in json.loads(out) if x["policy"]["name"] == "p-cli"][0]["id"]
        rc, out, err = self.cli("approvals", "requests", "--projectId", self.pid, "--status", "open", token=bob)
        self.assertEqual(rc, 0, err)
        self.assertIn(rid, out)
        self.assertIn("API_KEY", out)
        rc, out, err = self.cli("approvals", "show", rid, token=bob)
        self.assertEqual(rc, 0, err)
        self.assertIn("+ API_KEY", out)
        self.assertIn("0 of 1 approvals", out)
        self.assertNotIn("from-cli", out)
        rc, out, err = self.cli("approvals", "approve", rid, "--comment", "ok", token=alice)
        self.assertEqual(rc, 1, out)
        self.assertIn("self-approval", err)
        rc, out, err = self.cli("approvals", "approve", rid, "--comment", "ok", token=bob)
        self.assertEqual(rc, 0, err)
        self.assertIn("(approved)", out)
        rc, out, err = self.cli("approvals", "merge", rid, token=alice)
        self.assertEqual(rc, 0, err)
        self.assertIn("merged", out)
        self.assertEqual(self.get_secret(self.pid, "API_KEY", "prod", path).json["secret"]["secretValue"],
                         "from-cli")
        rc, out, err = self.cli("approvals", "reject", str(uuid.uuid4()), token=bob)
        self.assertEqual(rc, 1)
        self.assertIn("not found", err)
        rc, out, err = self.cli("approvals", "merge", token=bob)
        self.assertEqual(rc, 2)
        rc, out, err = self.cli("approvals", "policies", "delete", "p-cli", "--projectId", self.pid)
        self.assertEqual(rc, 0, err)
        self.assertIn("deleted approval policy p-cli", out)


if __name__ == "__main__":
    import unittest
    unittest.main()
