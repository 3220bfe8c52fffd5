"""People (docs/users.md): users, org roles, user project memberships, local sign-in with sessions and CSRF,
personal access tokens, and the CLI's `coffer users`.

- users: the admin token creates the first owner; emails are lower-cased and unique; bad emails, roles, statuses
  and short passwords are 422 naming the field; an org admin manages users but cannot make or change owners; the
  last active owner cannot be demoted, disabled or deleted; a member cannot manage users;
- a member's access comes from user memberships (role + rules) exactly as an identity's: 403 naming the user
  without one, reads allowed with viewer, writes refused;
- sign-in: POST /api/v1/auth/login sets an HttpOnly, SameSite=Strict cookie (not Secure on plain loopback) and
  returns a CSRF token; unsafe methods with the cookie need X-CSRF-Token, bearer requests do not; the same 401
  for an unknown email and a wrong password; throttled per (address, account) with 429 while the same account
  signs in from another address (127.0.0.2); logout, session list, revoke-others; idle and absolute timeouts
  (test clock);
- personal access tokens: coffer_pat_ shape, expiry required and capped, list, revoke (401 at once);
- a disabled or deleted user's sessions and tokens fail on their next request;
- audit records name the user (actor kind user, id, email); no password or token in the log or audit rows.
"""

import json
import re
import unittest

import harness

PASSWORD = "correct horse battery staple"
PAT_SHAPE = re.compile(r"^coffer_pat_[0-9a-f-]{36}_[A-Za-z0-9_-]{43}$")


class UserHelpers:
    def create_user(self, email, role=None, password=PASSWORD, token=..., name=None):
        body = {"email": email}
        if role:
            body["orgRole"] = role
        if password is not None:
            body["password"] = password
        if name is not None:
            body["name"] = name
        r = self.api("POST", "/api/v1/users", body=body, token=token)
        self.assertEqual(r.status, 200, r.body)
        return r.json["user"]

    def login(self, email, password=PASSWORD, headers=None):
        r = self.api("POST", "/api/v1/auth/login", body={"email": email, "password": password}, token=None,
                     headers=headers)
        return r

    def session(self, email, password=PASSWORD):
        """Signs in: returns (cookie header value, csrf token, answer)."""
        r = self.login(email, password)
        self.assertEqual(r.status, 200, r.body)
        cookie = r.headers.get("Set-Cookie")
        self.assertTrue(cookie, "no Set-Cookie")
        value = cookie.split(";")[0]
        return value, r.json["csrfToken"], r.json

    def pat(self, token_of_user, name="ci", expires="30d"):
        r = self.api("POST", "/api/v1/users/me/tokens", body={"name": name, "expiresIn": expires},
                     token=token_of_user)
        self.assertEqual(r.status, 200, r.body)
        return r.json["token"], r.json["personalAccessToken"]

    def pat_by_login(self, email, password=PASSWORD, expires="1h"):
        """Signs in as `coffer login --user` does (no session): returns the personal access token."""
        r = self.api("POST", "/api/v1/auth/login", token=None,
                     body={"email": email, "password": password,
                           "personalAccessToken": {"name": "t", "expiresIn": expires}})
        self.assertEqual(r.status, 200, r.body)
        return r.json["token"]

    def pat_for(self, email, password=PASSWORD):
        cookie, csrf, _ = self.session(email, password)
        r = self.api("POST", "/api/v1/users/me/tokens", body={"name": "t", "expiresIn": 3600}, token=None,
                     headers={"Cookie": cookie, "X-CSRF-Token": csrf})
        self.assertEqual(r.status, 200, r.body)
        return r.json["token"]


class Users(UserHelpers, harness.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.server.api("POST", "/api/v1/users", body={"email": "Owner@Example.COM", "orgRole": "owner",
                                                           "password": PASSWORD, "name": "Olga Owner"})
        assert r.status == 200, r.body
        cls.owner = r.json["user"]

    def test_first_owner_and_shape(self):
        self.assertEqual(self.owner["email"], "owner@example.com")
        self.assertEqual(self.owner["orgRole"], "owner")
        self.assertEqual(self.owner["status"], "active")
        self.assertTrue(self.owner["hasPassword"])
        self.assertIsNone(self.owner["sso"])
        self.assertNotIn("passwordHash", self.owner)
        self.assertNotIn("password", json.dumps(self.owner).lower().replace("haspassword", ""))
        got = self.ok("GET", "/api/v1/users/owner@example.com")["user"]
        self.assertEqual(got["id"], self.owner["id"])
        listed = [u["email"] for u in self.ok("GET", "/api/v1/users")["users"]]
        self.assertIn("owner@example.com", listed)

    def test_bad_inputs(self):
        cases = [
            ({}, 422, "email"),
            ({"email": 5}, 400, "email"),
            ({"email": "no-at-sign"}, 422, "email"),
            ({"email": "a@b"}, 422, "email"),
            ({"email": "two@@x.org"}, 422, "email"),
            ({"email": "sp ace@x.org"}, 422, "email"),
            ({"email": "x" * 250 + "@x.org"}, 422, "email"),
            ({"email": "r@x.org", "orgRole": "god"}, 422, "orgRole"),
            ({"email": "p@x.org", "password": "short"}, 422, "password"),
            ({"email": "p@x.org", "password": "y" * 300}, 422, "password"),
            ({"email": "n@x.org", "name": "a\u0001b"}, 422, "name"),
        ]
        for body, status, word in cases:
            r = self.api("POST", "/api/v1/users", body=body)
            self.assertError(r, status, None, word, msg=repr(body))
        self.create_user("dup@example.com")
        r = self.api("POST", "/api/v1/users", body={"email": "DUP@example.com"})
        self.assertError(r, 400, None, "dup@example.com", "already exists")
        r = self.api("GET", "/api/v1/users/nobody@example.com")
        self.assertError(r, 404, None, "nobody@example.com")
        r = self.api("PATCH", "/api/v1/users/dup@example.com", body={"status": "gone"})
        self.assertError(r, 422, None, "status")
        r = self.api("PATCH", "/api/v1/users/dup@example.com", body={"orgRole": 3})
        self.assertError(r, 400, None, "orgRole")

    def test_org_admin_and_member_rights(self):
        self.create_user("adm@example.com", role="admin")
        self.create_user("mem@example.com")
        admin_pat = self.pat_for("adm@example.com")
        member_pat = self.pat_for("mem@example.com")
        # an org admin manages users and projects, but not owners
        self.create_user("made-by-admin@example.com", token=admin_pat)
        r = self.api("POST", "/api/v1/users", body={"email": "o2@example.com", "orgRole": "owner"}, token=admin_pat)
        self.assertError(r, 403, None, "owner")
        r = self.api("PATCH", "/api/v1/users/owner@example.com", body={"status": "disabled"}, token=admin_pat)
        self.assertError(r, 403, None, "owner")
        r = self.api("POST", "/api/v2/workspace", body={"projectName": harness.unique("adm")}, token=admin_pat)
        self.assertEqual(r.status, 200, r.body)
        # a member administers nothing
        r = self.api("POST", "/api/v1/users", body={"email": "x@example.com"}, token=member_pat)
        self.assertError(r, 403, None, "manage users")
        r = self.api("GET", "/api/v1/users", token=member_pat)
        self.assertError(r, 403, None, "manage users")
        r = self.api("GET", "/api/v1/users/owner@example.com", token=member_pat)
        self.assertError(r, 403)
        me = self.ok("GET", "/api/v1/users/me", token=member_pat)["user"]
        self.assertEqual(me["email"], "mem@example.com")

    def test_last_owner_is_kept(self):
        r = self.api("PATCH", "/api/v1/users/owner@example.com", body={"orgRole": "admin"})
        self.assertError(r, 409, None, "last active owner")
        r = self.api("PATCH", "/api/v1/users/owner@example.com", body={"status": "disabled"})
        self.assertError(r, 409, None, "last active owner")
        r = self.api("DELETE", "/api/v1/users/owner@example.com")
        self.assertError(r, 409, None, "last active owner")
        self.create_user("owner2@example.com", role="owner")
        self.ok("PATCH", "/api/v1/users/owner2@example.com", body={"orgRole": "member"})
        self.assertEqual(self.ok("GET", "/api/v1/users/owner2@example.com")["user"]["orgRole"], "member")

    def test_member_access_through_memberships(self):
        project = self.ok("POST", "/api/v2/workspace", body={"projectName": harness.unique("um")})["project"]
        pid = project["id"]
        self.ok("POST", "/api/v3/secrets/raw/DB_URL",
                body={"workspaceId": pid, "environment": "dev", "secretPath": "/", "secretValue": "postgres://x"})
        self.create_user("reader@example.com")
        pat = self.pat_for("reader@example.com")
        q = {"workspaceId": pid, "environment": "dev", "secretPath": "/"}
        r = self.api("GET", "/api/v3/secrets/raw", query=q, token=pat)
        self.assertError(r, 403, None, "reader@example.com", "not a member")
        m = self.ok("POST", "/api/v2/workspace/%s/user-memberships/reader@example.com" % pid,
                    body={"role": "viewer"})["userMembership"]
        self.assertEqual(m["role"], "viewer")
        r = self.api("GET", "/api/v3/secrets/raw", query=q, token=pat)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual([s["secretKey"] for s in r.json["secrets"]], ["DB_URL"])
        r = self.api("POST", "/api/v3/secrets/raw/OTHER", token=pat,
                     body={"workspaceId": pid, "environment": "dev", "secretPath": "/", "secretValue": "v"})
        self.assertError(r, 403, None, "reader@example.com", "viewer")
        # rules narrow it as for identities
        self.ok("POST", "/api/v2/workspace/%s/user-memberships/reader@example.com" % pid,
                body={"role": "member", "rules": [{"actions": ["read"], "environment": "staging"}]})
        r = self.api("GET", "/api/v3/secrets/raw", query=q, token=pat)
        self.assertError(r, 403, None, "dev")
        listed = self.ok("GET", "/api/v2/workspace/%s/user-memberships" % pid)["userMemberships"]
        self.assertEqual([x["user"]["email"] for x in listed], ["reader@example.com"])
        self.ok("DELETE", "/api/v2/workspace/%s/user-memberships/reader@example.com" % pid)
        r = self.api("DELETE", "/api/v2/workspace/%s/user-memberships/reader@example.com" % pid)
        self.assertError(r, 404, None, "not a member")
        r = self.api("POST", "/api/v2/workspace/%s/user-memberships/nobody@example.com" % pid, body={"role": "viewer"})
        self.assertError(r, 404, None, "nobody@example.com")
        r = self.api("POST", "/api/v2/workspace/%s/user-memberships/reader@example.com" % pid, body={"role": "boss"})
        self.assertError(r, 422, None, "role")

    def test_audit_names_the_user(self):
        self.create_user("audited@example.com", role="admin")
        pat = self.pat_for("audited@example.com")
        self.create_user("target@example.com", token=pat)
        events = self.ok("GET", "/api/v1/audit/events",
                         query={"action": "users.create", "actor": "audited@example.com"})["events"]
        self.assertTrue(events, "no users.create event by the user")
        e = events[-1]
        me = self.ok("GET", "/api/v1/users/audited@example.com")["user"]
        self.assertEqual(e["actor"], {"kind": "user", "id": me["id"], "name": "audited@example.com"})
        self.assertEqual(e["secretPath"], "user target@example.com")
        self.assertEqual(e["result"], "ok")
        logins = self.ok("GET", "/api/v1/audit/events", query={"action": "auth.login"})["events"]
        mine = [x for x in logins if x["actor"]["name"] == "audited@example.com"]
        self.assertTrue(mine and mine[-1]["actor"]["kind"] == "user", logins[-3:])
        text = json.dumps(self.ok("GET", "/api/v1/audit/events", query={"limit": 1000}))
        self.assertNotIn(pat, text)
        self.assertNotIn(PASSWORD, text)
        self.assertNotIn(PASSWORD, self.server.stderr)


class Sessions(UserHelpers, harness.ServerTestCase):
    server_args = ("--session-idle-timeout", "10m", "--session-max-age", "1h")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.server.api("POST", "/api/v1/users", body={"email": "s@example.com", "password": PASSWORD})
        assert r.status == 200, r.body

    def test_cookie_attributes_and_csrf(self):
        cookie, csrf, answer = self.session("S@Example.com")
        set_cookie = self.login("s@example.com").headers.get("Set-Cookie")
        self.assertRegex(set_cookie, r"^coffer_session=[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}; ")
        for attr in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=3600"):
            self.assertIn(attr, set_cookie)
        self.assertNotIn("Secure", set_cookie)  # plain HTTP on loopback
        self.assertEqual(answer["user"]["email"], "s@example.com")
        hdr = {"Cookie": cookie}
        me = self.ok("GET", "/api/v1/users/me", token=None, headers=hdr)["user"]
        self.assertEqual(me["email"], "s@example.com")
        r = self.api("POST", "/api/v1/users/me/tokens", body={"name": "x", "expiresIn": 60}, token=None, headers=hdr)
        self.assertError(r, 403, None, "CSRF")
        r = self.api("POST", "/api/v1/users/me/tokens", body={"name": "x", "expiresIn": 60}, token=None,
                     headers={"Cookie": cookie, "X-CSRF-Token": csrf + "x"})
        self.assertError(r, 403, None, "CSRF")
        r = self.api("POST", "/api/v1/users/me/tokens", body={"name": "x", "expiresIn": 60}, token=None,
                     headers={"Cookie": cookie, "X-CSRF-Token": csrf})
        self.assertEqual(r.status, 200, r.body)
        # a bearer token needs no CSRF token
        r = self.api("POST", "/api/v1/users/me/tokens", body={"name": "y", "expiresIn": 60}, token=r.json["token"])
        self.assertEqual(r.status, 200, r.body)

    def test_bad_logins_look_alike(self):
        r1 = self.login("s@example.com", "wrong password 123")
        r2 = self.login("nobody@example.com", "wrong password 123")
        self.assertError(r1, 401, None, "invalid email or password")
        self.assertError(r2, 401, None, "invalid email or password")
        self.assertEqual(r1.json["message"], r2.json["message"])
        self.assertIsNone(r1.headers.get("Set-Cookie"))
        self.assertError(self.api("POST", "/api/v1/auth/login", body={"email": "s@example.com"}, token=None),
                         422, None, "password")
        self.assertError(self.api("POST", "/api/v1/auth/login", body={"password": "x"}, token=None), 422, None, "email")
        self.assertError(self.api("POST", "/api/v1/auth/login", body="[]", token=None), 400)
        r = self.api("GET", "/api/v1/users/me", token=None, headers={"Cookie": "coffer_session=garbage"})
        self.assertError(r, 401, None, "session")
        self.assertNotIn("wrong password 123", self.server.stderr)

    def test_throttle_cannot_lock_the_user_out(self):
        self.ok("POST", "/api/v1/users", body={"email": "t@example.com", "password": PASSWORD})
        statuses = [self.login("t@example.com", "not the password!").status for _ in range(12)]
        self.assertIn(429, statuses, statuses)
        r = self.login("t@example.com")
        self.assertError(r, 429, None, "this address")
        self.assertTrue(r.headers.get("Retry-After"))
        # the genuine user, from another address, still signs in
        other = harness.Server.__new__(harness.Server)
        other.__dict__.update(self.server.__dict__)
        c = __import__("http.client").client.HTTPConnection(self.server.url.split("//")[1].split(":")[0],
                                                           int(self.server.url.rsplit(":", 1)[1]),
                                                           source_address=("127.0.0.2", 0), timeout=30)
        c.request("POST", "/api/v1/auth/login", body=json.dumps({"email": "t@example.com", "password": PASSWORD}),
                  headers={"Content-Type": "application/json"})
        resp = c.getresponse()
        resp.read()
        self.assertEqual(resp.status, 200)
        c.close()

    def test_sessions_list_revoke_logout(self):
        a, csrf_a, _ = self.session("s@example.com")
        b, csrf_b, _ = self.session("s@example.com")
        sessions = self.ok("GET", "/api/v1/auth/sessions", token=None, headers={"Cookie": a})["sessions"]
        self.assertGreaterEqual(len(sessions), 2)
        self.assertEqual(sum(1 for s in sessions if s["current"]), 1)
        r = self.ok("POST", "/api/v1/auth/sessions/revoke-others", token=None,
                    headers={"Cookie": a, "X-CSRF-Token": csrf_a})
        self.assertGreaterEqual(r["revoked"], 1)
        self.assertError(self.api("GET", "/api/v1/users/me", token=None, headers={"Cookie": b}), 401, None, "ended")
        r = self.api("POST", "/api/v1/auth/logout", token=None, headers={"Cookie": a, "X-CSRF-Token": csrf_a})
        self.assertEqual(r.status, 200, r.body)
        self.assertIn("Max-Age=0", r.headers.get("Set-Cookie"))
        self.assertError(self.api("GET", "/api/v1/users/me", token=None, headers={"Cookie": a}), 401, None, "ended")
        r = self.api("DELETE", "/api/v1/auth/sessions/not-a-uuid", token=None,
                     headers={"Cookie": self.session("s@example.com")[0], "X-CSRF-Token": "x"})
        self.assertError(r, 403, None, "CSRF")

    def test_a_user_agent_that_is_not_utf8_does_not_break_the_session_list(self):
        # The list is JSON: a session opened with a User-Agent in another encoding (http.client sends str headers
        # as Latin-1 bytes) is listed with '?' for those bytes, where it made the list answer 500.
        r = self.login("s@example.com", headers={"User-Agent": "Navigateur-\xe9t\xe9/1.0"})
        self.assertEqual(r.status, 200, r.body)
        cookie = r.headers.get("Set-Cookie").split(";")[0]
        sessions = self.ok("GET", "/api/v1/auth/sessions", token=None, headers={"Cookie": cookie})["sessions"]
        self.assertEqual([s["userAgent"] for s in sessions if s["current"]], ["Navigateur-?t?/1.0"])

    def test_timeouts(self):
        if not harness.test_build():
            self.skipTest("needs a -Dtest_clock=true build")
        a, _, _ = self.session("s@example.com")
        self.advance_clock(9 * 60)
        self.ok("GET", "/api/v1/users/me", token=None, headers={"Cookie": a})
        self.advance_clock(9 * 60)  # active 9 minutes ago: still within the idle timeout
        self.ok("GET", "/api/v1/users/me", token=None, headers={"Cookie": a})
        self.advance_clock(11 * 60)
        self.assertError(self.api("GET", "/api/v1/users/me", token=None, headers={"Cookie": a}), 401, None, "idle")
        b, _, _ = self.session("s@example.com")
        for _ in range(7):
            self.advance_clock(9 * 60)
            r = self.api("GET", "/api/v1/users/me", token=None, headers={"Cookie": b})
        self.assertError(r, 401, None, "expired")


class Tokens(UserHelpers, harness.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for email, role in (("p@example.com", "member"), ("o@example.com", "owner")):
            r = cls.server.api("POST", "/api/v1/users", body={"email": email, "password": PASSWORD, "orgRole": role})
            assert r.status == 200, r.body

    def test_pat_lifecycle(self):
        token = self.pat_for("p@example.com")
        self.assertRegex(token, PAT_SHAPE)
        t2, meta = self.pat(token, name="laptop", expires="90d")
        self.assertEqual(meta["name"], "laptop")
        listed = self.ok("GET", "/api/v1/users/me/tokens", token=t2)["personalAccessTokens"]
        self.assertIn("laptop", [p["name"] for p in listed])
        self.assertNotIn(t2, json.dumps(listed))
        self.ok("DELETE", "/api/v1/users/me/tokens/" + meta["id"], token=token)
        self.assertError(self.api("GET", "/api/v1/users/me", token=t2), 401, None, "revoked")
        self.assertError(self.api("GET", "/api/v1/users/me", token=t2[:-1] + ("A" if t2[-1] != "A" else "B")),
                         401, None, "invalid personal access token")
        other = meta["id"][:-1] + ("0" if meta["id"][-1] != "0" else "1")
        self.assertError(self.api("DELETE", "/api/v1/users/me/tokens/" + other, token=token), 404, None, "not found")

    def test_pat_bad_inputs(self):
        token = self.pat_for("p@example.com")
        for body, status, word in (({"name": "x"}, 422, "expiresIn"), ({"expiresIn": 60}, 422, "name"),
                                   ({"name": "x", "expiresIn": 0}, 422, "expiresIn"),
                                   ({"name": "x", "expiresIn": "400d"}, 422, "expiresIn"),
                                   ({"name": "x", "expiresIn": "soon"}, 422, "expiresIn"),
                                   ({"name": "x", "expiresIn": []}, 400, "expiresIn")):
            r = self.api("POST", "/api/v1/users/me/tokens", body=body, token=token)
            self.assertError(r, status, None, word, msg=repr(body))
        # the admin token is nobody's: it has no personal tokens
        r = self.api("POST", "/api/v1/users/me/tokens", body={"name": "x", "expiresIn": 60})
        self.assertError(r, 403, None, "signed-in user")

    def test_disabled_and_deleted_users_lose_access_at_once(self):
        self.ok("POST", "/api/v1/users", body={"email": "leaver@example.com", "password": PASSWORD})
        cookie, _, _ = self.session("leaver@example.com")
        token = self.pat_for("leaver@example.com")
        self.ok("GET", "/api/v1/users/me", token=token)
        self.ok("PATCH", "/api/v1/users/leaver@example.com", body={"status": "disabled"})
        self.assertError(self.api("GET", "/api/v1/users/me", token=token), 401, None, "disabled")
        self.assertError(self.api("GET", "/api/v1/users/me", token=None, headers={"Cookie": cookie}), 401, None,
                         "disabled")
        self.assertError(self.login("leaver@example.com"), 401, None, "disabled")
        self.ok("PATCH", "/api/v1/users/leaver@example.com", body={"status": "active"})
        self.ok("GET", "/api/v1/users/me", token=token)
        self.ok("DELETE", "/api/v1/users/leaver@example.com")
        self.assertError(self.api("GET", "/api/v1/users/me", token=token), 401, None, "invalid")
        self.assertError(self.api("GET", "/api/v1/users/me", token=None, headers={"Cookie": cookie}), 401)

    def test_password_change(self):
        self.ok("POST", "/api/v1/users", body={"email": "pw@example.com", "password": PASSWORD})
        token = self.pat_for("pw@example.com")
        r = self.api("POST", "/api/v1/users/me/password", body={"password": "another long password"}, token=token)
        self.assertError(r, 401, None, "currentPassword")
        r = self.api("POST", "/api/v1/users/me/password", token=token,
                     body={"currentPassword": PASSWORD, "password": "short"})
        self.assertError(r, 422, None, "password")
        self.ok("POST", "/api/v1/users/me/password", token=token,
                body={"currentPassword": PASSWORD, "password": "another long password"})
        self.assertError(self.login("pw@example.com"), 401)
        self.assertEqual(self.login("pw@example.com", "another long password").status, 200)
        # an administrator sets it without the current one
        self.ok("POST", "/api/v1/users/pw@example.com/password", body={"password": PASSWORD})
        self.assertEqual(self.login("pw@example.com").status, 200)


if __name__ == "__main__":
    unittest.main()


class Cli(UserHelpers, harness.ServerTestCase):
    def test_users_commands(self):
        rc, out, err = self.cli("users", "create", "Cli@Example.com", "--name", "Cli User", "--role", "owner",
                                "--password-stdin", input=PASSWORD + "\n")
        self.assertEqual(rc, 0, err)
        self.assertIn("cli@example.com", out)
        self.assertNotIn(PASSWORD, out + err)
        rc, out, err = self.cli("users", "create", "m@example.com")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.cli("users", "list")
        self.assertEqual(rc, 0, err)
        self.assertIn("cli@example.com", out)
        self.assertIn("m@example.com", out)
        rc, out, err = self.cli("users", "set-role", "m@example.com", "admin", "--output", "json")
        self.assertEqual(rc, 0, err)
        answer = json.loads(out)
        self.assertEqual(answer.get("user", answer)["orgRole"], "admin")
        rc, out, err = self.cli("users", "disable", "m@example.com")
        self.assertEqual(rc, 0, err)
        self.assertIn("disabled", out)
        rc, out, err = self.cli("users", "enable", "m@example.com")
        self.assertEqual(rc, 0, err)
        self.assertIn("active", out)
        project = self.ok("POST", "/api/v2/workspace", body={"projectName": harness.unique("cli")})["project"]
        rc, out, err = self.cli("users", "add-to-project", "m@example.com", "--projectId", project["id"],
                                "--role", "viewer")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.cli("users", "memberships", "--projectId", project["id"])
        self.assertEqual(rc, 0, err)
        self.assertIn("m@example.com", out)
        self.assertIn("viewer", out)
        rc, out, err = self.cli("users", "remove-from-project", "m@example.com", "--projectId", project["id"])
        self.assertEqual(rc, 0, err)
        self.assertIn("removed user m@example.com", out)
        rc, out, err = self.cli("users", "delete", "m@example.com")
        self.assertEqual(rc, 0, err)
        self.assertIn("deleted user", out)

    def test_users_bad_input(self):
        rc, out, err = self.cli("users", "create", "not-an-email")
        self.assertEqual(rc, 1)
        self.assertIn("email", err)
        rc, out, err = self.cli("users", "create", "short@example.com", "--password-stdin", input="short\n")
        self.assertEqual(rc, 1)
        self.assertIn("password", err)
        self.assertNotIn("short\n", err)
        rc, out, err = self.cli("users", "create", "empty@example.com", "--password-stdin", input="")
        self.assertEqual(rc, 2)
        self.assertIn("--password-stdin", err)
        rc, out, err = self.cli("users", "set-role", "nobody@example.com", "admin")
        self.assertEqual(rc, 1)
        self.assertIn("nobody@example.com", err)
        rc, out, err = self.cli("users", "set-role", "x@example.com")
        self.assertEqual(rc, 2)
        rc, out, err = self.cli("users", "frobnicate")
        self.assertEqual(rc, 2)


class CliLogin(UserHelpers, harness.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.server.api("POST", "/api/v1/users", body={"email": "cli@example.com", "password": PASSWORD})
        assert r.status == 200, r.body

    def test_login_for_a_token(self):
        r = self.api("POST", "/api/v1/auth/login", token=None, body={
            "email": "cli@example.com", "password": PASSWORD, "personalAccessToken": {"name": "n", "expiresIn": "1d"}})
        self.assertEqual(r.status, 200, r.body)
        self.assertIsNone(r.headers.get("Set-Cookie"))
        self.assertRegex(r.json["token"], PAT_SHAPE)
        self.ok("GET", "/api/v1/users/me", token=r.json["token"])
        for pat, status, word in (("x", 400, "personalAccessToken"), ({"name": "n"}, 422, "expiresIn"),
                                  ({"expiresIn": 60}, 422, "name")):
            r = self.api("POST", "/api/v1/auth/login", token=None,
                         body={"email": "cli@example.com", "password": PASSWORD, "personalAccessToken": pat})
            self.assertError(r, status, None, word)

    def test_coffer_login_user_stores_a_pat(self):
        import tempfile
        home = tempfile.mkdtemp()
        env = {"XDG_CONFIG_HOME": home}
        rc, out, err = self.cli("login", "--user", "cli@example.com", "--password-stdin", "--expires-in", "7d",
                                input=PASSWORD + "\n", token=None, env=env)
        self.assertEqual(rc, 0, err)
        self.assertNotIn(PASSWORD, out + err)
        token = re.search(r"coffer_pat_\S+", out).group(0)
        self.assertRegex(token, PAT_SHAPE)
        with open(home + "/coffer/credentials.json") as f:
            self.assertEqual(json.load(f)["token"], token)
        rc, out, err = self.cli("users", "get", "me", token=None, env=env)
        self.assertEqual(rc, 0, err)
        self.assertIn("cli@example.com", out)
        rc, out, err = self.cli("login", "--user", "cli@example.com", "--password-stdin",
                                input="wrong password here\n", token=None, env=env)
        self.assertEqual(rc, 1)
        self.assertIn("invalid email or password", err)
        rc, out, err = self.cli("login", "--user", "cli@example.com", "--password-stdin", input="", token=None, env=env)
        self.assertEqual(rc, 2)
        rc, out, err = self.cli("login", "--password-stdin", "--client-id", "x", token=None, env=env)
        self.assertEqual(rc, 2)
        self.assertIn("--user", err)
