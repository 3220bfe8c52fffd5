"""SCIM 2.0 provisioning (docs/users.md "SCIM provisioning"): a client that speaks as Microsoft Entra ID's
provisioning service does, request for request, against /scim/v2.

Request shapes follow Microsoft's "Tutorial: Develop and plan provisioning for a SCIM endpoint in Microsoft Entra ID"
(learn.microsoft.com/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups, section "Understand the
Microsoft Entra SCIM implementation": the request/response examples "Create User", "Get User by query", "Update User
[Multi-valued properties]", "Disable User", "Delete User", "Create Group", "Update Group [Add Members]", "Update
Group [Remove Members]") and its "Known issues and resolutions" page (active sent as the string "False" by older
tenants; op names capitalised "Replace"/"Add"), with RFC 7644 for the rest.
"""

import json

import harness
from test_users import PASSWORD, UserHelpers

SCIM_JSON = "application/scim+json"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


class Scim(UserHelpers, harness.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.server.api("POST", "/api/v1/users", body={"email": "owner@example.com", "orgRole": "owner",
                                                           "password": PASSWORD})
        assert r.status == 200, r.body
        r = cls.server.api("POST", "/api/v1/scim/tokens", body={"name": "entra"})
        assert r.status == 200, r.body
        cls.scim_token = r.json["token"]

    def scim(self, method, path, body=None, query=None, token=None):
        return self.api(method, "/scim/v2" + path, body=body, query=query, token=token or self.scim_token,
                        headers={"Content-Type": SCIM_JSON, "Accept": SCIM_JSON})

    def assertScimError(self, r, status, *words):
        self.assertEqual(r.status, status, r.body)
        self.assertTrue(r.headers.get("Content-Type", "").startswith(SCIM_JSON))
        self.assertEqual(r.json["schemas"], ["urn:ietf:params:scim:api:messages:2.0:Error"])
        self.assertEqual(r.json["status"], str(status))
        for w in words:
            self.assertIn(w.lower(), json.dumps(r.json).lower())

    def create_entra_user(self, upn, external_id, display="Ann Example"):
        # Entra's "Create User" request
        r = self.scim("POST", "/Users", body={
            "schemas": [USER, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "externalId": external_id, "userName": upn, "active": True,
            "emails": [{"primary": True, "type": "work", "value": upn}],
            "meta": {"resourceType": "User"},
            "name": {"formatted": display, "familyName": "Example", "givenName": "Ann"},
            "roles": []})
        self.assertEqual(r.status, 201, r.body)
        self.assertTrue(r.headers.get("Content-Type", "").startswith(SCIM_JSON))
        return r.json

    def test_token_is_required_and_does_nothing_else(self):
        r = self.scim("GET", "/Users", token="nope")
        self.assertScimError(r, 401, "scim token")
        r = self.api("GET", "/scim/v2/Users", token=None)
        self.assertScimError(r, 401, "scim token")
        # the SCIM token is refused by the ordinary API
        r = self.api("GET", "/api/v1/users", token=self.scim_token)
        self.assertEqual(r.status, 401, r.body)
        self.assertNotIn(self.scim_token, self.server.stderr)
        # a member cannot make SCIM tokens; revoked tokens stop at once
        self.create_user("notowner@example.com", role="admin")
        pat = self.pat_for("notowner@example.com")
        r = self.api("POST", "/api/v1/scim/tokens", body={"name": "x"}, token=pat)
        self.assertError(r, 403, None, "owner")
        made = self.ok("POST", "/api/v1/scim/tokens", body={"name": "short-lived"})
        self.assertEqual(self.scim("GET", "/ServiceProviderConfig", token=made["token"]).status, 200)
        self.ok("DELETE", "/api/v1/scim/tokens/" + made["scimToken"]["id"])
        self.assertScimError(self.scim("GET", "/Users", token=made["token"]), 401, "revoked")

    def test_discovery(self):
        r = self.scim("GET", "/ServiceProviderConfig")
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(r.json["patch"]["supported"])
        self.assertTrue(r.json["filter"]["supported"])
        r = self.scim("GET", "/ResourceTypes")
        self.assertEqual(sorted(x["name"] for x in r.json["Resources"]), ["Group", "User"])
        r = self.scim("GET", "/Schemas")
        self.assertEqual(sorted(x["id"] for x in r.json["Resources"]), [GROUP, USER])

    def test_user_lifecycle_and_deprovisioning(self):
        # Entra first looks the user up ("Get User by query") and finds nothing
        r = self.scim("GET", "/Users", query={"filter": 'userName eq "Ann@Contoso.example"'})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["totalResults"], 0)
        self.assertEqual(r.json["schemas"], ["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
        created = self.create_entra_user("Ann@Contoso.example", "0a1b2c3d")
        uid = created["id"]
        self.assertEqual(created["userName"], "ann@contoso.example")
        self.assertEqual(created["externalId"], "0a1b2c3d")
        self.assertTrue(created["active"])
        self.assertEqual(created["displayName"], "Ann Example")
        # a duplicate is 409 uniqueness
        r = self.scim("POST", "/Users", body={"schemas": [USER], "userName": "ann@contoso.example",
                                              "externalId": "other"})
        self.assertScimError(r, 409, "uniqueness")
        for q in ('userName eq "ann@contoso.example"', 'externalId eq "0a1b2c3d"'):
            r = self.scim("GET", "/Users", query={"filter": q})
            self.assertEqual([x["id"] for x in r.json["Resources"]], [uid], q)
        self.assertScimError(self.scim("GET", "/Users", query={"filter": 'userName sw "a"'}), 400, "invalidFilter")
        self.assertScimError(self.scim("GET", "/Users/00000000-0000-4000-8000-000000000000"), 404)
        # the user is a Coffer user (no password); an owner gives it a PAT-holding session path via a password
        self.ok("POST", "/api/v1/users/ann@contoso.example/password", body={"password": PASSWORD})
        pat = self.pat_for("ann@contoso.example")
        self.assertEqual(self.api("GET", "/api/v1/users/me", token=pat).status, 200)
        # "Update User [Multi-valued properties]" with Entra's capitalised op and no-path value
        r = self.scim("PATCH", "/Users/" + uid, body={"schemas": [PATCH], "Operations": [
            {"op": "Replace", "path": "displayName", "value": "Ann Renamed"},
            {"op": "Add", "path": 'emails[type eq "work"].value', "value": "ann@contoso.example"},
            {"op": "Replace", "value": {"externalId": "0a1b2c3d-new"}}]})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["displayName"], "Ann Renamed")
        self.assertEqual(r.json["externalId"], "0a1b2c3d-new")
        self.assertEqual(self.api("GET", "/api/v1/users/me", token=pat).status, 200)
        # "Disable User": active as the string "False"; the user's PAT fails on its next request
        r = self.scim("PATCH", "/Users/" + uid, body={"schemas": [PATCH], "Operations": [
            {"op": "Replace", "path": "active", "value": "False"}]})
        self.assertEqual(r.status, 200, r.body)
        self.assertFalse(r.json["active"])
        r = self.api("GET", "/api/v1/users/me", token=pat)
        self.assertError(r, 401, None, "disabled")
        # enabled again (a JSON boolean this time)
        r = self.scim("PATCH", "/Users/" + uid, body={"schemas": [PATCH], "Operations": [
            {"op": "replace", "value": {"active": True}}]})
        self.assertTrue(r.json["active"])
        self.assertEqual(self.api("GET", "/api/v1/users/me", token=pat).status, 200)
        self.assertScimError(self.scim("PATCH", "/Users/" + uid, body={"Operations": [{"op": "move"}]}), 400, "op")
        self.assertScimError(self.scim("PATCH", "/Users/" + uid, body={"Operations": [
            {"op": "replace", "path": "active", "value": "maybe"}]}), 400, "active")
        # "Delete User": 204, the PAT fails, the user is gone
        r = self.scim("DELETE", "/Users/" + uid)
        self.assertEqual(r.status, 204, r.body)
        self.assertEqual(self.api("GET", "/api/v1/users/me", token=pat).status, 401)
        self.assertScimError(self.scim("GET", "/Users/" + uid), 404)
        events = self.ok("GET", "/api/v1/audit/events", query={"action": "scim."})["events"]
        actions = [e["action"] for e in events if e["secretPath"] == "user ann@contoso.example"]
        for a in ("scim.users.create", "scim.users.deactivate", "scim.users.delete"):
            self.assertIn(a, actions)
        self.assertEqual({e["actor"]["kind"] for e in events if e["action"].startswith("scim.users.")}, {"scim"})
        self.assertNotIn(self.scim_token, json.dumps(events))

    def test_replace_and_paging(self):
        """PUT replaces a user (RFC 7644 section 3.5.1: active false deprovisions as PATCH does); lists page by
        startIndex (1-based) and count (section 3.4.2.4), totalResults counting every match."""
        uids = [self.create_entra_user("page%d@contoso.example" % i, "pg%d" % i)["id"] for i in range(3)]
        r = self.scim("PUT", "/Users/" + uids[0], body={"schemas": [USER], "userName": "page0@contoso.example",
                                                         "externalId": "pg0-replaced", "active": False,
                                                         "displayName": "Page Zero"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual((r.json["externalId"], r.json["active"], r.json["displayName"]),
                         ("pg0-replaced", False, "Page Zero"))
        self.assertEqual(self.ok("GET", "/api/v1/users/page0@contoso.example")["user"]["status"], "disabled")
        self.assertScimError(self.scim("PUT", "/Users/" + uids[1], body={"schemas": [USER]}), 400, "userName")
        self.assertScimError(self.scim("PUT", "/Users/00000000-0000-4000-8000-000000000000",
                                       body={"schemas": [USER], "userName": "x@contoso.example"}), 404)
        everyone = self.scim("GET", "/Users").json
        total = everyone["totalResults"]
        self.assertGreaterEqual(total, 3)
        ids = [x["id"] for x in everyone["Resources"]]
        self.assertEqual(len(ids), total)
        pages = []
        for start in range(1, total + 1, 2):
            r = self.scim("GET", "/Users", query={"startIndex": start, "count": 2})
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual((r.json["startIndex"], r.json["totalResults"]), (start, total))
            self.assertEqual(r.json["itemsPerPage"], len(r.json["Resources"]))
            pages += [x["id"] for x in r.json["Resources"]]
        self.assertEqual(pages, ids)
        r = self.scim("GET", "/Users", query={"startIndex": total + 5, "count": 2})
        self.assertEqual((r.json["itemsPerPage"], r.json["Resources"]), (0, []))
        r = self.scim("GET", "/Users", query={"startIndex": 0, "count": 1})
        self.assertEqual((r.json["startIndex"], [x["id"] for x in r.json["Resources"]]), (1, ids[:1]))
        r = self.scim("GET", "/Users", query={"count": 0})
        self.assertEqual((r.json["totalResults"], r.json["Resources"]), (total, []))

    def test_groups_and_membership_grants(self):
        bob = self.create_entra_user("bob@contoso.example", "b0b", display="Bob")
        cat = self.create_entra_user("cat@contoso.example", "ca7", display="Cat")
        # "Create Group" (Entra sends it without members, then adds them)
        r = self.scim("POST", "/Groups", body={"schemas": [GROUP], "externalId": "8aa1a0c0", "displayName": "Eng",
                                               "members": [], "meta": {"resourceType": "Group"}})
        self.assertEqual(r.status, 201, r.body)
        gid = r.json["id"]
        r = self.scim("GET", "/Groups", query={"filter": 'displayName eq "Eng"', "excludedAttributes": "members"})
        self.assertEqual([g["id"] for g in r.json["Resources"]], [gid])
        self.assertNotIn("members", r.json["Resources"][0])
        # "Update Group [Add Members]"
        r = self.scim("PATCH", "/Groups/" + gid, body={"schemas": [PATCH], "Operations": [
            {"op": "Add", "path": "members", "value": [{"value": bob["id"]}, {"value": cat["id"]}]}]})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(sorted(m["value"] for m in r.json["members"]), sorted([bob["id"], cat["id"]]))
        # the group's project grant reaches its SCIM members
        pid = self.ok("POST", "/api/v2/workspace", body={"projectName": harness.unique("scim")})["project"]["id"]
        self.ok("POST", "/api/v3/secrets/raw/K", body={"workspaceId": pid, "environment": "dev", "secretPath": "/",
                                                       "secretValue": "v"})
        self.ok("POST", "/api/v2/workspace/%s/group-memberships/%s" % (pid, gid), body={"role": "viewer"})
        self.ok("POST", "/api/v1/users/bob@contoso.example/password", body={"password": PASSWORD})
        pat = self.pat_for("bob@contoso.example")
        q = {"workspaceId": pid, "environment": "dev", "secretPath": "/"}
        self.assertEqual(self.api("GET", "/api/v3/secrets/raw", query=q, token=pat).status, 200)
        # "Update Group [Remove Members]" with Entra's members[value eq "..."] path
        r = self.scim("PATCH", "/Groups/" + gid, body={"schemas": [PATCH], "Operations": [
            {"op": "Remove", "path": 'members[value eq "%s"]' % bob["id"]}]})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual([m["value"] for m in r.json["members"]], [cat["id"]])
        self.assertError(self.api("GET", "/api/v3/secrets/raw", query=q, token=pat), 403, None, "not a member")
        r = self.scim("PATCH", "/Groups/" + gid, body={"Operations": [
            {"op": "Replace", "path": "displayName", "value": "Engineering"}]})
        self.assertEqual(r.json["displayName"], "Engineering")
        self.assertScimError(self.scim("PATCH", "/Groups/" + gid, body={"Operations": [
            {"op": "add", "path": "owners", "value": "x"}]}), 400, "invalidPath")
        r = self.scim("DELETE", "/Groups/" + gid)
        self.assertEqual(r.status, 204, r.body)
        self.assertScimError(self.scim("GET", "/Groups/" + gid), 404)

    def test_scim_token_commands(self):
        rc, out, err = self.cli("scim", "token", "create", "cli-entra")
        self.assertEqual(rc, 0, err)
        token = out.strip()
        self.assertTrue(token.startswith("coffer_scim_"), out)
        self.assertEqual(self.scim("GET", "/Users", token=token).status, 200)
        rc, out, err = self.cli("scim", "token", "list")
        self.assertEqual(rc, 0, err)
        self.assertIn("cli-entra", out)
        self.assertNotIn(token, out)
        tid = token[len("coffer_scim_"):len("coffer_scim_") + 36]
        rc, out, err = self.cli("scim", "token", "revoke", tid)
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.scim("GET", "/Users", token=token).status, 401)
        rc, out, err = self.cli("scim", "token", "create")
        self.assertEqual(rc, 2)


if __name__ == "__main__":
    import unittest
    unittest.main()
