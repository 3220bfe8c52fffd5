"""The bootstrap admin token as a break-glass credential (docs/users.md "The admin token as break-glass").

- every use of the admin token is marked breakGlass in its audit record (a user's is not), and the server log says
  so at most once a minute with a count;
- POST /api/v1/admin-token/disable: only a signed-in owner (not the admin token, not an org admin); refused while
  no active owner can sign in; once disabled the admin token gets 401 naming the way back, at once;
- `coffer operator admin-token status|disable|enable` on the server host, against the running server's store:
  enable brings the admin token back at once, disable is refused without a usable owner, each switch is in the
  audit log with the operator as the actor, and the audit chain still verifies;
- bad input: an unknown switch word is a usage error.
"""

import harness
from test_users import UserHelpers


class BreakGlass(UserHelpers, harness.ServerTestCase):
    def owner_pat(self, email, role="owner"):
        self.create_user(email, role=role)
        return self.pat_by_login(email)

    def operator(self, *args):
        return harness.run(["operator", "admin-token"] + list(args) + ["--data-dir", self.server.data_dir],
                           env=harness.db_env(self.server.data_dir))

    def test_the_switch(self):
        # no owner yet: the operator cannot disable it, nor can the admin token itself
        rc, out, err = self.operator("disable")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("no active owner can sign in", err)
        rc, out, err = self.operator("status")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "admin token: enabled (active owners who can sign in: 0)\n")
        r = self.api("POST", "/api/v1/admin-token/disable")
        self.assertError(r, 403, None, "owner")

        # the admin token's use is break-glass in the audit; a user's is not
        owner = self.owner_pat("owner@example.com")
        admin = self.owner_pat("admin@example.com", role="admin")
        self.ok("POST", "/api/v1/users", body={"email": "by-admin@example.com"})
        self.ok("POST", "/api/v1/users", body={"email": "by-owner@example.com"}, token=owner)
        events = self.ok("GET", "/api/v1/audit/events", query={"action": "users.create"})["events"]
        self.assertEqual(events[-2]["actor"], {"kind": "admin", "id": "", "name": "admin", "breakGlass": True})
        self.assertEqual(events[-1]["actor"]["kind"], "user")
        self.assertNotIn("breakGlass", events[-1]["actor"])
        self.assertRegex(self.server.stderr, r"break_glass.*who=admin.*uses=\d+")

        state = self.ok("GET", "/api/v1/admin-token", token=admin)["adminToken"]
        self.assertEqual(state, {"enabled": True, "usableOwners": 1})
        r = self.api("POST", "/api/v1/admin-token/disable", token=admin)
        self.assertError(r, 403, None, "owner")
        state = self.ok("POST", "/api/v1/admin-token/disable", token=owner)["adminToken"]
        self.assertFalse(state["enabled"])
        r = self.api("GET", "/api/v1/users")
        self.assertError(r, 401, None, "disabled", "coffer operator admin-token enable")
        rc, out, err = self.operator("status")
        self.assertEqual((rc, out), (0, "admin token: disabled (active owners who can sign in: 1)\n"), err)

        # on the host: enable brings it back at once, recorded with the operator as the actor
        rc, out, err = self.operator("enable")
        self.assertEqual((rc, out), (0, "admin token: enabled (active owners who can sign in: 1)\n"), err)
        self.ok("GET", "/api/v1/users")
        rc, out, err = self.operator("disable")
        self.assertEqual(rc, 0, err)
        self.assertError(self.api("GET", "/api/v1/users"), 401, None, "disabled")
        events = self.ok("GET", "/api/v1/audit/events", query={"action": "admin-token."}, token=owner)["events"]
        # in the order they happened: the server stores its events a batch at a time, so the operator's own
        # (stored at once by another process) can take an earlier place in the chain (docs/audit.md, `seq`)
        events.sort(key=lambda e: e["time"])
        self.assertEqual([(e["action"], e["actor"]["kind"], e["result"]) for e in events],
                         [("admin-token.disable", "admin", "denied"), ("admin-token.disable", "user", "denied"),
                          ("admin-token.disable", "user", "ok"), ("admin-token.enable", "operator", "ok"),
                          ("admin-token.disable", "operator", "ok")])
        self.assertEqual(events[1]["actor"]["name"], "admin@example.com")
        self.assertEqual(events[-1]["reason"], "coffer operator admin-token on the server host")
        self.ok("POST", "/api/v1/admin-token/enable", token=owner)
        self.ok("GET", "/api/v1/users")

        # the chain holds the operator's events as well as the server's
        rc, out, err = self.server.cli("audit", "verify")
        self.assertEqual(rc, 0, out + err)

    def test_usage(self):
        rc, out, err = self.operator("toggle")
        self.assertEqual(rc, 2, out + err)
        self.assertIn("disable", err)
