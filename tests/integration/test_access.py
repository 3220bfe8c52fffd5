"""Access requests and temporary grants (docs/approvals.md "Access requests"), with the real server and CLI:

- a user without access asks (`coffer access request`), a project admin grants (`coffer access grant`), the user
  reads under the grant (the audit record names the grant), and once the test clock passes the grant's end the
  same read is 403 again, with no job run;
- deny; revoke ending a grant at once (and a second revoke refused); a grant narrower than the project: another
  environment, another path and a write stay refused;
- self-grant refused, a viewer cannot grant, nobody else sees a request; the admin token cannot ask;
- bad input: duration 0, over the 24h default maximum and over a configured --access-max-duration, unknown
  project and environment, unknown actions, missing reason, administration as an action;
- every request and decision in the audit log naming the user and the request; notices on a webhook channel with
  a link; `coffer inventory` and the live list show live grants (who, where, until when).
"""

import json
import unittest

import harness
from test_notifications import Receiver
from test_users import PASSWORD, UserHelpers


class AccessHelpers(UserHelpers):
    def pat_for(self, email, password=PASSWORD):
        """A personal access token that outlives the clock moves of these tests (a week)."""
        cookie, csrf, _ = self.session(email, password)
        r = self.api("POST", "/api/v1/users/me/tokens", body={"name": "t", "expiresIn": "7d"}, token=None,
                     headers={"Cookie": cookie, "X-CSRF-Token": csrf})
        self.assertEqual(r.status, 200, r.body)
        return r.json["token"]


class Access(AccessHelpers, harness.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.server.api("POST", "/api/v1/users", body={"email": "owner@example.com", "orgRole": "owner",
                                                           "password": PASSWORD})
        assert r.status == 200, r.body

    def setUp(self):
        super().setUp()
        self.project = self.create_project()
        self.pid = self.project["id"]
        self.create_folder(self.pid, "prod", "backend")
        self.create_folder(self.pid, "prod", "frontend")
        self.set_secret(self.pid, "DB_PASSWORD", "s3cr3t-prod", env="prod", path="/backend")
        self.set_secret(self.pid, "API_URL", "https://fe", env="prod", path="/frontend")
        self.set_secret(self.pid, "DB_PASSWORD", "s3cr3t-staging", env="staging", path="/")
        tag = harness.unique("u")
        self.asker_email = "asker-%s@example.com" % tag
        self.lead_email = "lead-%s@example.com" % tag
        self.viewer_email = "viewer-%s@example.com" % tag
        for email in (self.asker_email, self.lead_email, self.viewer_email):
            self.create_user(email)
        self.ok("POST", "/api/v2/workspace/%s/user-memberships/%s" % (self.pid, self.lead_email),
                body={"role": "admin"})
        self.ok("POST", "/api/v2/workspace/%s/user-memberships/%s" % (self.pid, self.viewer_email),
                body={"role": "viewer", "rules": [{"actions": ["read"], "environment": "staging"}]})
        self.asker = self.pat_for(self.asker_email)
        self.lead = self.pat_for(self.lead_email)
        self.viewer = self.pat_for(self.viewer_email)

    def read(self, token, env="prod", path="/backend"):
        return self.api("GET", "/api/v3/secrets/raw", token=token,
                        query={"workspaceId": self.pid, "environment": env, "secretPath": path})

    def ask(self, token=None, **fields):
        body = {"projectId": self.project["slug"], "environment": "prod", "secretPath": "/backend",
                "duration": "2h", "reason": "incident 4711: read the prod database password"}
        body.update(fields)
        return self.api("POST", "/api/v1/access-requests", body=body, token=token or self.asker)

    def cli_json(self, *args, token):
        rc, out, err = self.cli(*args, "--output", "json", token=token)
        self.assertEqual(rc, 0, err)
        return json.loads(out)

    def test_request_grant_read_expire(self):
        r = self.read(self.asker)
        self.assertError(r, 403, None, self.asker_email, "not a member")
        made = self.cli_json("access", "request", "--project", self.project["slug"], "--env", "prod",
                             "--path", "/backend", "--duration", "2h", "--reason", "incident 4711",
                             token=self.asker)["accessRequest"]
        self.assertEqual((made["status"], made["actions"], made["duration"]), ("pending", ["read"], 7200))
        self.assertEqual(made["user"]["email"], self.asker_email)
        self.assertEqual((made["environment"], made["secretPath"]), ("prod", "/backend"))
        self.assertError(self.read(self.asker), 403, None, "not a member")  # pending grants nothing
        # the lead sees it pending in the project's list and grants it with the CLI
        rc, out, err = self.cli("access", "list", "--project", self.pid, "--status", "pending", token=self.lead)
        self.assertEqual(rc, 0, err)
        self.assertIn(made["id"], out)
        self.assertIn(self.asker_email, out)
        granted = self.cli_json("access", "grant", made["id"], "--comment", "ok for the incident",
                                token=self.lead)["accessRequest"]
        self.assertEqual(granted["status"], "granted")
        self.assertEqual(granted["decidedBy"], self.lead_email)
        self.assertTrue(granted["endsAt"])
        # reads under the grant, at the place granted only
        r = self.read(self.asker)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual([(s["secretKey"], s["secretValue"]) for s in r.json["secrets"]],
                         [("DB_PASSWORD", "s3cr3t-prod")])
        rc, out, err = self.cli("secrets", "get", "DB_PASSWORD", "--projectId", self.pid, "--env", "prod",
                                "--path", "/backend", "--plain", token=self.asker)
        self.assertEqual((rc, out.strip()), (0, "s3cr3t-prod"), err)
        self.assertError(self.read(self.asker, path="/frontend"), 403, None, "prod:/frontend")
        self.assertError(self.read(self.asker, env="staging", path="/"), 403, None, "staging")
        w = self.api("POST", "/api/v3/secrets/raw/NEW", token=self.asker,
                     body={"workspaceId": self.pid, "environment": "prod", "secretPath": "/backend",
                           "secretValue": "x"})
        self.assertError(w, 403, None, "create")
        # the audit log names the grant on the read, and the request and decision
        reads = self.ok("GET", "/api/v1/audit/events",
                        query={"actor": self.asker_email, "action": "secrets."})["events"]
        under = [e for e in reads if e["result"] == "ok"]
        self.assertTrue(under, reads)
        self.assertIn("under access grant " + made["id"], under[-1]["reason"])
        for action, actor in (("access-requests.create", self.asker_email),
                              ("access-requests.grant", self.lead_email)):
            events = self.ok("GET", "/api/v1/audit/events", query={"action": action, "actor": actor})["events"]
            self.assertTrue(events, action)
            self.assertIn(made["id"], events[-1]["reason"])
            self.assertEqual((events[-1]["environment"], events[-1]["secretPath"]), ("prod", "/backend"))
        self.assertNotIn("s3cr3t", json.dumps(self.ok("GET", "/api/v1/audit/events", query={"limit": 1000})))
        # the live grant in the inventory and in the live list
        inv = self.cli_json("inventory", "--projectId", self.pid, token=harness.ADMIN_TOKEN)
        grants = inv.get("accessGrants")
        self.assertEqual([(g["user"]["email"], g["environment"], g["secretPath"]) for g in grants],
                         [(self.asker_email, "prod", "/backend")])
        self.assertEqual(grants[0]["endsAt"], granted["endsAt"])
        rc, out, err = self.cli("inventory", "--projectId", self.pid)
        self.assertEqual(rc, 0, err)
        self.assertIn(self.asker_email, out)
        self.assertIn(granted["endsAt"], out)
        live = self.ok("GET", "/api/v1/access-requests", query={"projectId": self.pid, "status": "live"})
        self.assertEqual([x["id"] for x in live["accessRequests"]], [made["id"]])
        # past its end the grant no longer matches: no job ran
        self.advance_clock(2 * 3600 + 5)
        self.assertError(self.read(self.asker), 403, None, self.asker_email, "not a member")
        shown = self.ok("GET", "/api/v1/access-requests/" + made["id"], token=self.asker)["accessRequest"]
        self.assertEqual(shown["status"], "expired")
        live = self.ok("GET", "/api/v1/access-requests", query={"projectId": self.pid, "status": "live"})
        self.assertEqual(live["accessRequests"], [])
        r = self.api("POST", "/api/v1/access-requests/%s/revoke" % made["id"], token=self.lead)
        self.assertError(r, 409, None, "already ended")

    def test_grant_adds_to_a_narrow_membership(self):
        # the viewer reads staging only; a grant adds prod:/backend, and its duration may be shortened
        self.assertError(self.read(self.viewer), 403, None, "viewer")
        made = self.ask(self.viewer, actions=["read", "edit"]).json["accessRequest"]
        self.assertEqual(made["actions"], ["read", "edit"])
        g = self.ok("POST", "/api/v1/access-requests/%s/grant" % made["id"], body={"duration": "30m"},
                    token=self.lead)["accessRequest"]
        self.assertEqual(g["status"], "granted")
        self.assertEqual(self.read(self.viewer).status, 200)
        self.assertEqual(self.read(self.viewer, env="staging", path="/").status, 200)
        r = self.api("PATCH", "/api/v3/secrets/raw/DB_PASSWORD", token=self.viewer,
                     body={"workspaceId": self.pid, "environment": "prod", "secretPath": "/backend",
                           "secretValue": "rotated"})
        self.assertEqual(r.status, 200, r.body)
        self.advance_clock(31 * 60)
        self.assertError(self.read(self.viewer), 403, None, "viewer")

    def test_deny(self):
        made = self.ask().json["accessRequest"]
        denied = self.cli_json("access", "deny", made["id"], "--comment", "use the runbook", token=self.lead)
        self.assertEqual(denied["accessRequest"]["status"], "denied")
        self.assertEqual(denied["accessRequest"]["comment"], "use the runbook")
        self.assertError(self.read(self.asker), 403, None, "not a member")
        r = self.api("POST", "/api/v1/access-requests/%s/grant" % made["id"], token=self.lead)
        self.assertError(r, 409, None, "denied", "not pending")
        events = self.ok("GET", "/api/v1/audit/events",
                         query={"action": "access-requests.deny", "actor": self.lead_email})["events"]
        self.assertIn(made["id"], events[-1]["reason"])

    def test_revoke_takes_effect_at_once(self):
        made = self.ask().json["accessRequest"]
        self.ok("POST", "/api/v1/access-requests/%s/grant" % made["id"], token=self.lead)
        self.assertEqual(self.read(self.asker).status, 200)
        self.assertEqual(self.read(self.asker).status, 200)  # from the lookup cache
        rc, out, err = self.cli("access", "revoke", made["id"], "--output", "json", token=self.lead)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["accessRequest"]["revokedBy"], self.lead_email)
        self.assertError(self.read(self.asker), 403, None, "not a member")
        rc, out, err = self.cli("access", "revoke", made["id"], token=self.lead)
        self.assertEqual(rc, 1)
        self.assertIn("revoked, not granted", err)
        events = self.ok("GET", "/api/v1/audit/events", query={"action": "access-requests.revoke"})["events"]
        self.assertTrue([e for e in events if made["id"] in e["reason"]])

    def test_who_may_decide(self):
        made = self.ask().json["accessRequest"]
        # the requester cannot grant its own request, even as an org admin
        r = self.api("POST", "/api/v1/access-requests/%s/grant" % made["id"], token=self.asker)
        self.assertError(r, 403, None, "your own")
        rc, out, err = self.cli("access", "grant", made["id"], token=self.asker)
        self.assertEqual(rc, 1)
        self.assertIn("your own", err)
        self.ok("PATCH", "/api/v1/users/" + self.asker_email, body={"orgRole": "admin"})
        r = self.api("POST", "/api/v1/access-requests/%s/grant" % made["id"], token=self.asker)
        self.assertError(r, 403, None, "your own")
        self.ok("PATCH", "/api/v1/users/" + self.asker_email, body={"orgRole": "member"})
        # a viewer of the project neither sees nor decides it
        r = self.api("POST", "/api/v1/access-requests/%s/grant" % made["id"], token=self.viewer)
        self.assertError(r, 404, None, made["id"])
        r = self.api("GET", "/api/v1/access-requests/" + made["id"], token=self.viewer)
        self.assertError(r, 404, None, made["id"])
        r = self.api("GET", "/api/v1/access-requests", query={"projectId": self.pid}, token=self.viewer)
        self.assertError(r, 403, None, "project administrator")
        mine = self.ok("GET", "/api/v1/access-requests", token=self.viewer)["accessRequests"]
        self.assertEqual(mine, [])
        self.assertEqual([x["id"] for x in self.ok("GET", "/api/v1/access-requests", token=self.asker)
                          ["accessRequests"]], [made["id"]])
        # machines and the admin token do not ask; the org owner (admin token) may grant
        r = self.ask(token=harness.ADMIN_TOKEN)
        self.assertError(r, 403, None, "only a user")
        g = self.ok("POST", "/api/v1/access-requests/%s/grant" % made["id"])["accessRequest"]
        self.assertEqual(g["decidedBy"], "admin")
        self.assertError(self.api("GET", "/api/v1/access-requests/" + harness.unique("x")), 404)

    def test_bad_input(self):
        cases = [
            ({"duration": "0"}, 422, "duration"),
            ({"duration": "0s"}, 422, "duration"),
            ({"duration": "25h"}, 422, "duration"),
            ({"duration": "soon"}, 422, "duration"),
            ({"duration": None}, 422, "duration"),
            ({"reason": ""}, 422, "reason"),
            ({"reason": "x" * 600}, 422, "reason"),
            ({"actions": ["read", "administer"]}, 422, "actions"),
            ({"actions": "fly"}, 422, "actions"),
            ({"actions": 5}, 400, "actions"),
            ({"secretPath": "backend"}, 422, "secretPath"),
            ({"environment": None}, 422, "environment"),
            ({"projectId": None}, 422, "projectId"),
            ({"projectId": "no-such-project"}, 404, "no-such-project"),
            ({"environment": "qa"}, 404, "qa"),
        ]
        for fields, status, word in cases:
            body = {"projectId": self.project["slug"], "environment": "prod", "secretPath": "/backend",
                    "duration": "2h", "reason": "why"}
            for k, v in fields.items():
                if v is None:
                    body.pop(k)
                else:
                    body[k] = v
            r = self.api("POST", "/api/v1/access-requests", body=body, token=self.asker)
            self.assertError(r, status, None, word, msg=repr(fields))
        self.assertEqual(self.ask(duration="24h").status, 200)
        made = self.ask().json["accessRequest"]
        r = self.api("POST", "/api/v1/access-requests/%s/grant" % made["id"], body={"duration": "2d"},
                     token=self.lead)
        self.assertError(r, 422, None, "duration", "longer")
        r = self.api("GET", "/api/v1/access-requests", query={"status": "maybe"}, token=self.asker)
        self.assertError(r, 422, None, "status")
        rc, out, err = self.cli("access", "request", "--project", self.pid, "--env", "prod", "--reason", "x",
                                token=self.asker)
        self.assertEqual(rc, 2)
        self.assertIn("--duration", err)
        rc, out, err = self.cli("access", "request", "--project", "no-such-project", "--env", "prod",
                                "--duration", "1h", "--reason", "x", token=self.asker)
        self.assertEqual(rc, 1)
        self.assertIn("no-such-project", err)
        rc, out, err = self.cli("access", "request", "--project", self.pid, "--env", "prod", "--duration", "0",
                                "--reason", "x", token=self.asker)
        self.assertEqual(rc, 1)
        self.assertIn("duration", err)


class AccessConfigured(AccessHelpers, harness.ServerTestCase):
    """--access-max-duration and the notices of requests and decisions."""
    server_args = ("--access-max-duration", "1h")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hook = Receiver()
        r = cls.server.api("POST", "/api/v1/notifications/channels", body={"type": "webhook", "url": cls.hook.url})
        assert r.status == 200, r.body

    @classmethod
    def tearDownClass(cls):
        cls.hook.close()
        super().tearDownClass()

    def test_maximum_and_notices(self):
        pid = self.create_project()["id"]
        self.create_user("m@example.com")
        self.create_user("a@example.com", role="admin")
        asker, admin = self.pat_for("m@example.com"), self.pat_for("a@example.com")
        body = {"projectId": pid, "environment": "prod", "duration": "2h", "reason": "deploy"}
        r = self.api("POST", "/api/v1/access-requests", body=body, token=asker)
        self.assertError(r, 422, None, "duration", "3600 seconds")
        body["duration"] = "1h"
        made = self.ok("POST", "/api/v1/access-requests", body=body, token=asker)["accessRequest"]
        self.assertEqual(made["secretPath"], "/**")
        self.ok("POST", "/api/v1/access-requests/%s/grant" % made["id"], token=admin)
        self.ok("POST", "/api/v1/notifications/run")
        posts = self.hook.accepted()
        mine = [p for p in posts if p.get("item", {}).get("requestId") == made["id"]]
        self.assertEqual(sorted(p["threshold"] for p in mine), ["access-granted", "access-request"])
        for p in mine:
            self.assertEqual(p["event"], "coffer.access")
            self.assertEqual(p["item"]["link"], "/api/v1/access-requests/" + made["id"])
            self.assertIn("m@example.com", p["message"])
        asked = [p for p in mine if p["threshold"] == "access-request"][0]
        self.assertIn("coffer access grant " + made["id"], asked["message"])
        self.assertIn("deploy", asked["message"])
        events = [h.get("X-Coffer-Event") for h, _ in self.hook.posts]
        self.assertIn("access.granted", events)


if __name__ == "__main__":
    unittest.main()
