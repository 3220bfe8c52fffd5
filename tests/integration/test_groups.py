"""Groups of users (docs/users.md "Groups"): /api/v1/groups, members, group project memberships, and
`coffer groups`.

- a group is created, listed, shown by id or name, renamed and deleted by org owners and admins only; bad names
  are 422 naming the field, a duplicate name 400, an unknown group or user 404 naming it;
- a user with no membership of its own reads a project through a group; removing the user from the group, removing
  the group's membership or deleting the group takes it away on the very next request;
- a group's rules (environment, path) restrict as a user's do; a user's access is the union of its own membership
  and its groups' (the strongest role, every rule);
- every change is in the audit log naming the user who made it.
"""

import json

import harness
from test_users import PASSWORD, UserHelpers


class Groups(UserHelpers, harness.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.server.api("POST", "/api/v1/users", body={"email": "owner@example.com", "orgRole": "owner",
                                                           "password": PASSWORD})
        assert r.status == 200, r.body

    def project_with_secrets(self):
        pid = self.ok("POST", "/api/v2/workspace", body={"projectName": harness.unique("grp")})["project"]["id"]
        self.ok("POST", "/api/v1/folders", body={"workspaceId": pid, "environment": "dev", "name": "backend",
                                                  "path": "/"})
        for env, path, key in (("dev", "/", "ROOT_KEY"), ("dev", "/backend", "BACKEND_KEY"),
                               ("prod", "/", "PROD_KEY")):
            self.ok("POST", "/api/v3/secrets/raw/%s" % key,
                    body={"workspaceId": pid, "environment": env, "secretPath": path, "secretValue": "v-" + key})
        return pid

    def read(self, pat, pid, env="dev", path="/"):
        return self.api("GET", "/api/v3/secrets/raw", query={"workspaceId": pid, "environment": env,
                                                             "secretPath": path}, token=pat)

    def test_crud_and_bad_inputs(self):
        g = self.ok("POST", "/api/v1/groups", body={"name": "Platform Team", "externalId": "ext-1"})["group"]
        self.assertEqual(g["name"], "Platform Team")
        self.assertEqual(g["externalId"], "ext-1")
        self.assertEqual(self.ok("GET", "/api/v1/groups/Platform%20Team")["group"]["id"], g["id"])
        self.assertEqual(self.ok("GET", "/api/v1/groups/" + g["id"])["group"]["name"], "Platform Team")
        names = [x["name"] for x in self.ok("GET", "/api/v1/groups")["groups"]]
        self.assertIn("Platform Team", names)
        r = self.api("POST", "/api/v1/groups", body={"name": "Platform Team"})
        self.assertError(r, 400, None, "Platform Team", "already exists")
        r = self.api("POST", "/api/v1/groups", body={})
        self.assertError(r, 422, None, "name")
        r = self.api("POST", "/api/v1/groups", body={"name": "x" * 200})
        self.assertError(r, 422, None, "name")
        r = self.api("POST", "/api/v1/groups", body={"name": "bad\u0001name"})
        self.assertError(r, 422, None, "name")
        r = self.api("POST", "/api/v1/groups", body={"name": 5})
        self.assertError(r, 400, None, "name")
        r = self.api("GET", "/api/v1/groups/no-such-group")
        self.assertError(r, 404, None, "no-such-group")
        r = self.api("POST", "/api/v1/groups/Platform%20Team/users/nobody@example.com")
        self.assertError(r, 404, None, "nobody@example.com")
        renamed = self.ok("PATCH", "/api/v1/groups/" + g["id"], body={"name": "Platform", "externalId": None})
        self.assertEqual(renamed["group"]["name"], "Platform")
        self.assertIsNone(renamed["group"]["externalId"])
        self.ok("DELETE", "/api/v1/groups/Platform")
        r = self.api("GET", "/api/v1/groups/" + g["id"])
        self.assertError(r, 404, None, g["id"])

    def test_only_administrators_manage_groups(self):
        self.create_user("plain@example.com")
        pat = self.pat_for("plain@example.com")
        r = self.api("POST", "/api/v1/groups", body={"name": "mine"}, token=pat)
        self.assertError(r, 403, None, "manage groups")
        r = self.api("GET", "/api/v1/groups", token=pat)
        self.assertError(r, 403, None, "manage groups")
        self.create_user("orgadmin@example.com", role="admin")
        admin_pat = self.pat_for("orgadmin@example.com")
        g = self.ok("POST", "/api/v1/groups", body={"name": "by-admin"}, token=admin_pat)["group"]
        self.ok("POST", "/api/v1/groups/by-admin/users/plain@example.com", token=admin_pat)
        events = self.ok("GET", "/api/v1/audit/events", query={"action": "groups."})["events"]
        by_action = {e["action"]: e for e in events if e["secretPath"].startswith("group by-admin")}
        self.assertEqual(by_action["groups.create"]["actor"]["name"], "orgadmin@example.com")
        self.assertEqual(by_action["groups.member.add"]["secretPath"], "group by-admin user plain@example.com")
        self.ok("DELETE", "/api/v1/groups/" + g["id"])

    def test_access_through_a_group_and_its_removal(self):
        pid = self.project_with_secrets()
        self.create_user("grouped@example.com")
        pat = self.pat_for("grouped@example.com")
        self.assertError(self.read(pat, pid), 403, None, "not a member")
        self.ok("POST", "/api/v1/groups", body={"name": "readers"})
        self.ok("POST", "/api/v1/groups/readers/users/grouped@example.com")
        # a group without a membership gives nothing
        self.assertError(self.read(pat, pid), 403, None, "not a member")
        m = self.ok("POST", "/api/v2/workspace/%s/group-memberships/readers" % pid,
                    body={"role": "viewer"})["groupMembership"]
        self.assertEqual(m["role"], "viewer")
        r = self.read(pat, pid)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual([s["secretKey"] for s in r.json["secrets"]], ["ROOT_KEY"])
        # viewer through the group: no writes
        r = self.api("POST", "/api/v3/secrets/raw/NEW_KEY", token=pat,
                     body={"workspaceId": pid, "environment": "dev", "secretPath": "/", "secretValue": "x"})
        self.assertError(r, 403, None, "grouped@example.com")
        listed = self.ok("GET", "/api/v2/workspace/%s/group-memberships" % pid)["groupMemberships"]
        self.assertEqual([x["group"]["name"] for x in listed], ["readers"])
        members = self.ok("GET", "/api/v1/groups/readers/users")
        self.assertEqual([u["email"] for u in members["users"]], ["grouped@example.com"])
        # removing the user from the group takes the access away on the next request
        self.ok("DELETE", "/api/v1/groups/readers/users/grouped@example.com")
        self.assertError(self.read(pat, pid), 403, None, "not a member")
        r = self.api("DELETE", "/api/v1/groups/readers/users/grouped@example.com")
        self.assertError(r, 404, None, "not a member of group")
        # back in; then the group's membership goes, then the group itself
        self.ok("POST", "/api/v1/groups/readers/users/grouped@example.com")
        self.assertEqual(self.read(pat, pid).status, 200)
        self.ok("DELETE", "/api/v2/workspace/%s/group-memberships/readers" % pid)
        self.assertError(self.read(pat, pid), 403, None, "not a member")
        self.ok("POST", "/api/v2/workspace/%s/group-memberships/readers" % pid, body={"role": "viewer"})
        self.assertEqual(self.read(pat, pid).status, 200)
        self.ok("DELETE", "/api/v1/groups/readers")
        self.assertError(self.read(pat, pid), 403, None, "not a member")

    def test_group_rules_restrict_and_unite(self):
        pid = self.project_with_secrets()
        self.create_user("ruled@example.com")
        pat = self.pat_for("ruled@example.com")
        self.ok("POST", "/api/v1/groups", body={"name": "backend-devs"})
        self.ok("POST", "/api/v1/groups/backend-devs/users/ruled@example.com")
        self.ok("POST", "/api/v2/workspace/%s/group-memberships/backend-devs" % pid,
                body={"role": "member", "rules": [{"actions": ["read"], "environment": "dev",
                                                   "secretPath": "/backend/**"}]})
        r = self.read(pat, pid, path="/backend")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual([s["secretKey"] for s in r.json["secrets"]], ["BACKEND_KEY"])
        self.assertError(self.read(pat, pid, path="/"), 403, None, "dev:/")
        self.assertError(self.read(pat, pid, env="prod"), 403, None, "prod")
        # the rule allows only read: no write under /backend either
        r = self.api("POST", "/api/v3/secrets/raw/W", token=pat,
                     body={"workspaceId": pid, "environment": "dev", "secretPath": "/backend", "secretValue": "x"})
        self.assertError(r, 403, None, "create")
        # a second group adds prod; the user's own membership adds writes at the root of dev
        self.ok("POST", "/api/v1/groups", body={"name": "prod-readers"})
        self.ok("POST", "/api/v1/groups/prod-readers/users/ruled@example.com")
        self.ok("POST", "/api/v2/workspace/%s/group-memberships/prod-readers" % pid,
                body={"role": "viewer", "rules": [{"actions": ["read"], "environment": "prod"}]})
        r = self.read(pat, pid, env="prod")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual([s["secretKey"] for s in r.json["secrets"]], ["PROD_KEY"])
        self.ok("POST", "/api/v2/workspace/%s/user-memberships/ruled@example.com" % pid,
                body={"role": "member", "rules": [{"actions": ["read", "create"], "environment": "dev",
                                                   "secretPath": "/"}]})
        r = self.api("POST", "/api/v3/secrets/raw/W", token=pat,
                     body={"workspaceId": pid, "environment": "dev", "secretPath": "/", "secretValue": "x"})
        self.assertEqual(r.status, 200, r.body)
        # a viewer group's role never widens another membership's rules: prod stays read-only
        r = self.api("POST", "/api/v3/secrets/raw/W", token=pat,
                     body={"workspaceId": pid, "environment": "prod", "secretPath": "/", "secretValue": "x"})
        self.assertError(r, 403, None, "prod")
        self.assertEqual(self.read(pat, pid, path="/backend").status, 200)

    def test_groups_commands(self):
        pid = self.project_with_secrets()
        self.create_user("clim@example.com")
        rc, out, err = self.cli("groups", "create", "ops", "--external-id", "8d1f-ops")
        self.assertEqual(rc, 0, err)
        self.assertIn("ops", out)
        rc, out, err = self.cli("groups", "add-member", "ops", "clim@example.com")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.cli("groups", "members", "ops")
        self.assertEqual(rc, 0, err)
        self.assertIn("clim@example.com", out)
        rc, out, err = self.cli("groups", "add-to-project", "ops", "--projectId", pid, "--role", "viewer",
                                "--env", "dev")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.cli("groups", "memberships", "--projectId", pid)
        self.assertEqual(rc, 0, err)
        self.assertIn("ops", out)
        self.assertIn("env=dev", out)
        rc, out, err = self.cli("groups", "list")
        self.assertEqual(rc, 0, err)
        self.assertIn("8d1f-ops", out)
        rc, out, err = self.cli("groups", "show", "ops", "--output", "json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["group"]["externalId"] if "group" in json.loads(out)
                         else json.loads(out)["externalId"], "8d1f-ops")
        rc, out, err = self.cli("groups", "rename", "ops", "operations")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.cli("groups", "remove-member", "operations", "clim@example.com")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.cli("groups", "remove-member", "operations", "clim@example.com")
        self.assertEqual(rc, 1)
        self.assertIn("not a member", err)
        rc, out, err = self.cli("groups", "remove-from-project", "operations", "--projectId", pid)
        self.assertEqual(rc, 0, err)
        rc, out, err = self.cli("groups", "delete", "operations")
        self.assertEqual(rc, 0, err)
        self.assertIn("deleted group", out)
        rc, out, err = self.cli("groups", "show", "operations")
        self.assertEqual(rc, 1)
        self.assertIn("not found", err)
        rc, out, err = self.cli("groups", "create")
        self.assertEqual(rc, 2)

    def test_inventory_names_users_and_groups(self):
        pid = self.project_with_secrets()
        self.create_user("inv@example.com")
        self.ok("POST", "/api/v1/groups", body={"name": "inv-readers"})
        self.ok("POST", "/api/v2/workspace/%s/group-memberships/inv-readers" % pid,
                body={"role": "viewer", "rules": [{"actions": ["read"], "environment": "prod"}]})
        self.ok("POST", "/api/v2/workspace/%s/user-memberships/inv@example.com" % pid, body={"role": "member"})
        inv = self.ok("GET", "/api/v1/inventory", query={"workspaceId": pid})
        envs = {e["slug"]: e for e in inv["projects"][0]["environments"]}
        prod = {(r["kind"], r["identityName"]): r["paths"] for r in envs["prod"]["readers"]}
        dev = {(r["kind"], r["identityName"]) for r in envs["dev"]["readers"]}
        self.assertEqual(prod[("group", "inv-readers")], ["/**"])
        self.assertEqual(prod[("user", "inv@example.com")], ["/**"])
        self.assertIn(("user", "inv@example.com"), dev)
        self.assertNotIn(("group", "inv-readers"), dev)


if __name__ == "__main__":
    import unittest
    unittest.main()
