"""Machine identities, universal auth, client secrets, access tokens and login throttling (docs/api.md, "Machine
identities and universal auth" and "Logging in").

- identity CRUD is admin-only: an identity's token (even one that is a project admin) gets 403 on identity,
  universal-auth, client-secret, membership and project management;
- universal auth settings: defaults, update, TTL above max TTL and bad CIDR ranges are 422;
- client secrets: the secret is shown once, lists show the prefix and never the secret, revoke;
- login answers accessToken (JWT-shaped), expiresIn, accessTokenMaxTTL, tokenType; renew returns the same token
  and never extends it past its max TTL; revoke;
- every 401 cause with its documented message: an unknown client id and a wrong client secret get the same answer
  (also for a near miss), client secret expired / revoked / out of uses, IP not allowed (client secrets, then
  tokens), token expired / revoked / past its max TTL / out of uses, identity deleted;
- brute force: repeated wrong secrets get 429 with Retry-After, per (source address, client id) and per address,
  while other client ids still log in, and the genuine client logs in from another address (127.0.0.2) throughout
  an attack on its client id; failed-login answers and the server log never contain a presented secret.

IdentityHelpers (a mixin, not a TestCase) is shared with test_authz.py.
"""

import base64
import datetime
import hashlib
import http.client
import json
import os
import re
import time
import unittest
import urllib.parse
import uuid

import harness

JWT_SHAPE = re.compile(r"^[A-Za-z0-9-_]+\.[A-Za-z0-9-_]+\.[A-Za-z0-9-_]*$")
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")
UUID_SHAPE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

LOGIN = "/api/v1/auth/universal-auth/login"
RENEW = "/api/v1/auth/token/renew"
REVOKE = "/api/v1/auth/token/revoke"


def ua_path(identity_id):
    return "/api/v1/auth/universal-auth/identities/" + identity_id


def parse_time(text):
    """An RFC 3339 time as a UTC datetime."""
    text = text.replace("Z", "+00:00")
    if "." in text:  # Python 3.9's fromisoformat wants 3 or 6 fraction digits
        head, rest = text.split(".", 1)
        m = re.match(r"(\d+)(.*)", rest)
        text = head + "." + (m.group(1) + "000000")[:6] + m.group(2)
    return datetime.datetime.fromisoformat(text).astimezone(datetime.timezone.utc)


def jwt_claims(token):
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(payload.encode()))


class IdentityHelpers:
    """Admin-side helpers over the identities API and login, mixed into a harness.ServerTestCase."""

    def create_identity(self, name=None):
        return self.ok("POST", "/api/v1/identities", body={"name": name or harness.unique("id")})["identity"]

    def attach_ua(self, identity_id, **settings):
        return self.ok("POST", ua_path(identity_id), body=settings)["identityUniversalAuth"]

    def create_client_secret(self, identity_id, **body):
        data = self.ok("POST", ua_path(identity_id) + "/client-secrets", body=body)
        return data["clientSecret"], data["clientSecretData"]

    def add_member(self, project_id, identity_id, role, rules=None):
        body = {"role": role}
        if rules is not None:
            body["rules"] = rules
        return self.ok("POST", "/api/v2/workspace/%s/identity-memberships/%s" % (project_id, identity_id),
                       body=body)["identityMembership"]

    def login(self, client_id, client_secret, headers=None):
        return self.api("POST", LOGIN, body={"clientId": client_id, "clientSecret": client_secret}, token=None,
                        headers=headers)

    def login_ok(self, client_id, client_secret):
        r = self.login(client_id, client_secret)
        if r.status != 200:
            self.fail("login -> %d %s" % (r.status, r.body[:500]))
        return r.json

    def machine(self, project_id=None, role=None, rules=None, name=None, ua=None, secret=None, login=True):
        """A new identity with universal auth (settings ua), one client secret (body secret), optionally a
        membership, and (login=True) an access token. Returns a dict with id, name, clientId, clientSecret,
        secretData, ua and token."""
        identity = self.create_identity(name)
        config = self.attach_ua(identity["id"], **(ua or {}))
        cs, data = self.create_client_secret(identity["id"], **(secret or {}))
        if project_id and role:
            self.add_member(project_id, identity["id"], role, rules)
        m = {"id": identity["id"], "name": identity["name"], "clientId": config["clientId"], "clientSecret": cs,
             "secretData": data, "ua": config, "token": None}
        if login:
            m["token"] = self.login_ok(m["clientId"], cs)["accessToken"]
        return m

    # Requests with an identity's token (harness's list_secrets/get_secret take query fields as keywords).

    def list_as(self, token, project_id, env="dev", path="/", headers=None, **query):
        q = {"workspaceId": project_id, "environment": env, "secretPath": path}
        q.update(query)
        return self.api("GET", "/api/v3/secrets/raw", query=q, token=token, headers=headers)

    def get_as(self, token, project_id, key, env="dev", path="/", **query):
        q = {"workspaceId": project_id, "environment": env, "secretPath": path}
        q.update(query)
        return self.api("GET", "/api/v3/secrets/raw/" + urllib.parse.quote(key, safe=""), query=q, token=token)

    def assertNotLogged(self, *secrets):
        log = self.server.stderr + self.server.stdout
        for s in secrets:
            if s:
                self.assertNotIn(s, log, "a credential appears in the server log")


def near_misses(secret):
    """Wrong secrets that differ from secret in exactly one character: first, middle and last position."""
    out = []
    for i in (0, len(secret) // 2, len(secret) - 1):
        c = "A" if secret[i] != "A" else "B"
        out.append(secret[:i] + c + secret[i + 1:])
    return out


class IdentityCrud(IdentityHelpers, harness.ServerTestCase):

    def test_create_list_get_rename_delete(self):
        name = harness.unique("pipeline")
        r = self.api("POST", "/api/v1/identities", body={"name": name, "organizationId": "ignored", "role": "x"})
        self.assertEqual(r.status, 200, r.body[:300])
        ident = r.json["identity"]
        self.assertRegex(ident["id"], UUID_SHAPE)
        self.assertEqual(ident["name"], name)
        self.assertEqual(ident["authMethods"], [])
        for f in ("createdAt", "updatedAt"):
            self.assertRegex(ident[f], RFC3339)

        listed = self.ok("GET", "/api/v1/identities")["identities"]
        self.assertIn(ident["id"], [i["id"] for i in listed])
        got = self.ok("GET", "/api/v1/identities/" + ident["id"])["identity"]
        self.assertEqual((got["id"], got["name"]), (ident["id"], name))

        self.attach_ua(ident["id"])
        got = self.ok("GET", "/api/v1/identities/" + ident["id"])["identity"]
        self.assertEqual(got["authMethods"], ["universal-auth"])

        renamed = self.ok("PATCH", "/api/v1/identities/" + ident["id"], body={"name": name + "-2"})["identity"]
        self.assertEqual(renamed["name"], name + "-2")
        self.assertEqual(self.ok("GET", "/api/v1/identities/" + ident["id"])["identity"]["name"], name + "-2")

        deleted = self.ok("DELETE", "/api/v1/identities/" + ident["id"])["identity"]
        self.assertEqual(deleted["id"], ident["id"])
        self.assertError(self.api("GET", "/api/v1/identities/" + ident["id"]), 404, "NotFound")
        self.assertNotIn(ident["id"], [i["id"] for i in self.ok("GET", "/api/v1/identities")["identities"]])
        self.assertError(self.api("GET", ua_path(ident["id"])), 404, "NotFound")

    def test_validation(self):
        self.assertError(self.api("POST", "/api/v1/identities", body={}), 422, "ValidationFailure", "name")
        self.assertError(self.api("POST", "/api/v1/identities", body={"name": ""}), 422, "ValidationFailure",
                         "name")
        self.assertError(self.api("POST", "/api/v1/identities", body={"name": "x" * 129}), 422,
                         "ValidationFailure", "name")
        self.assertError(self.api("POST", "/api/v1/identities", body={"name": 7}), 400, "BadRequest", "name")
        ident = self.create_identity()
        self.assertError(self.api("PATCH", "/api/v1/identities/" + ident["id"], body={"name": ""}), 422,
                         "ValidationFailure", "name")
        self.assertEqual(self.ok("GET", "/api/v1/identities/" + ident["id"])["identity"]["name"], ident["name"])

    def test_unknown_identity_is_404(self):
        missing = str(uuid.uuid4())
        for method, path, body in (("GET", "/api/v1/identities/" + missing, None),
                                   ("PATCH", "/api/v1/identities/" + missing, {"name": "n"}),
                                   ("DELETE", "/api/v1/identities/" + missing, None),
                                   ("POST", ua_path(missing), {}),
                                   ("GET", ua_path(missing), None),
                                   ("POST", ua_path(missing) + "/client-secrets", {}),
                                   ("GET", ua_path(missing) + "/client-secrets", None)):
            with self.subTest(method=method, path=path):
                self.assertError(self.api(method, path, body=body), 404, "NotFound")

    def test_requires_a_token(self):
        self.assertError(self.api("GET", "/api/v1/identities", token=None), 401, "Unauthorized")
        self.assertError(self.api("POST", "/api/v1/identities", body={"name": "x"}, token="not-a-token"), 401,
                         "Unauthorized")

    def test_identity_tokens_cannot_administer(self):
        """An identity token, even a project admin's, gets 403 on identity, membership and project management,
        and nothing changes."""
        project = self.create_project()
        boss = self.machine(project["id"], "admin")
        other = self.machine(project["id"], "viewer", login=False)
        tok = boss["token"]
        before_ids = sorted(i["id"] for i in self.ok("GET", "/api/v1/identities")["identities"])
        before_members = self.ok("GET", "/api/v2/workspace/%s/identity-memberships" % project["id"])
        before_projects = sorted(p["id"] for p in self.ok("GET", "/api/v1/workspace")["workspaces"])
        calls = [
            ("POST", "/api/v1/identities", {"name": "sneaky"}),
            ("GET", "/api/v1/identities", None),
            ("PATCH", "/api/v1/identities/" + other["id"], {"name": "renamed"}),
            ("DELETE", "/api/v1/identities/" + other["id"], None),
            ("DELETE", "/api/v1/identities/" + boss["id"], None),
            ("PATCH", ua_path(other["id"]), {"accessTokenTTL": 5}),
            ("GET", ua_path(other["id"]) + "/client-secrets", None),
            ("POST", ua_path(other["id"]) + "/client-secrets", {"description": "sneaky"}),
            ("POST", ua_path(boss["id"]) + "/client-secrets", {"description": "sneaky"}),
            ("POST", ua_path(other["id"]) + "/client-secrets/%s/revoke" % other["secretData"]["id"], None),
            ("POST", "/api/v2/workspace/%s/identity-memberships/%s" % (project["id"], other["id"]),
             {"role": "admin"}),
            ("DELETE", "/api/v2/workspace/%s/identity-memberships/%s" % (project["id"], other["id"]), None),
            ("POST", "/api/v2/workspace", {"projectName": harness.unique("sneaky")}),
            ("DELETE", "/api/v1/workspace/" + project["id"], None),
        ]
        for method, path, body in calls:
            with self.subTest(method=method, path=path):
                self.assertError(self.api(method, path, body=body, token=tok), 403, "PermissionDenied")
        self.assertEqual(sorted(i["id"] for i in self.ok("GET", "/api/v1/identities")["identities"]), before_ids)
        self.assertEqual(self.ok("GET", "/api/v1/identities/" + other["id"])["identity"]["name"], other["name"])
        self.assertEqual(self.ok("GET", "/api/v2/workspace/%s/identity-memberships" % project["id"]),
                         before_members)
        self.assertEqual(sorted(p["id"] for p in self.ok("GET", "/api/v1/workspace")["workspaces"]),
                         before_projects)
        self.assertEqual(self.ok("GET", ua_path(other["id"]))["identityUniversalAuth"]["accessTokenTTL"],
                         other["ua"]["accessTokenTTL"])
        secrets = self.ok("GET", ua_path(other["id"]) + "/client-secrets")["clientSecretData"]
        self.assertEqual([(s["id"], s["isClientSecretRevoked"]) for s in secrets],
                         [(other["secretData"]["id"], False)])
        # ... while it still can do what its role allows.
        self.ok("POST", "/api/v1/folders", body={"workspaceId": project["id"], "environment": "dev",
                                                  "name": "ok", "path": "/"}, token=tok)


class Memberships(IdentityHelpers, harness.ServerTestCase):

    def test_set_list_delete(self):
        project = self.create_project()
        ident = self.create_identity()
        rules = [{"actions": ["read"], "environment": "staging", "secretPath": "/backend/**"},
                 {"actions": ["read", "edit"]}]
        m = self.add_member(project["id"], ident["id"], "viewer", rules)
        self.assertEqual((m["identityId"], m["projectId"], m["role"]), (ident["id"], project["id"], "viewer"))
        self.assertEqual(m["rules"], [{"actions": ["read"], "environment": "staging", "secretPath": "/backend/**"},
                                      {"actions": ["read", "edit"], "environment": None, "secretPath": None}])
        listed = self.ok("GET", "/api/v2/workspace/%s/identity-memberships" % project["id"])["identityMemberships"]
        self.assertEqual([(x["identityId"], x["role"]) for x in listed], [(ident["id"], "viewer")])
        gone = self.ok("DELETE", "/api/v2/workspace/%s/identity-memberships/%s" % (project["id"], ident["id"]))
        self.assertEqual(gone["identityMembership"]["identityId"], ident["id"])
        self.assertEqual(self.ok("GET", "/api/v2/workspace/%s/identity-memberships" % project["id"])
                         ["identityMemberships"], [])

    def test_validation(self):
        project = self.create_project()
        ident = self.create_identity()
        path = "/api/v2/workspace/%s/identity-memberships/%s" % (project["id"], ident["id"])
        self.assertError(self.api("POST", path, body={}), 422, "ValidationFailure", "role")
        self.assertError(self.api("POST", path, body={"role": "owner"}), 422, "ValidationFailure", "role")
        self.assertError(self.api("POST", path, body={"role": "viewer", "rules": [{"actions": ["fly"]}]}), 422,
                         "ValidationFailure", "actions")
        self.assertError(self.api("POST", path, body={"role": "viewer",
                                                      "rules": [{"actions": ["read"], "secretPath": "backend"}]}),
                         422, "ValidationFailure", "secretPath")
        self.assertError(self.api("POST", path, body={"role": "viewer",
                                                      "rules": [{"actions": ["read"], "secretPath": "/a/b c"}]}),
                         422, "ValidationFailure", "secretPath")
        self.assertError(self.api("POST", "/api/v2/workspace/%s/identity-memberships/%s"
                                  % (str(uuid.uuid4()), ident["id"]), body={"role": "viewer"}), 404, "NotFound")
        self.assertError(self.api("POST", "/api/v2/workspace/%s/identity-memberships/%s"
                                  % (project["id"], str(uuid.uuid4())), body={"role": "viewer"}), 404, "NotFound")
        self.assertEqual(self.ok("GET", "/api/v2/workspace/%s/identity-memberships" % project["id"])
                         ["identityMemberships"], [])

    def test_removing_the_membership_takes_effect_at_once(self):
        project = self.create_project()
        self.set_secret(project["id"], "K", "v")
        m = self.machine(project["id"], "viewer")
        self.assertEqual(self.list_as(m["token"], project["id"]).status, 200)
        self.ok("DELETE", "/api/v2/workspace/%s/identity-memberships/%s" % (project["id"], m["id"]))
        self.assertError(self.list_as(m["token"], project["id"]), 403, "PermissionDenied")


class UniversalAuth(IdentityHelpers, harness.ServerTestCase):

    def test_attach_defaults_get_update(self):
        ident = self.create_identity()
        ua = self.attach_ua(ident["id"])
        self.assertEqual(ua["identityId"], ident["id"])
        self.assertTrue(ua["clientId"])
        self.assertEqual((ua["accessTokenTTL"], ua["accessTokenMaxTTL"], ua["accessTokenNumUsesLimit"]),
                         (2592000, 2592000, 0))
        self.assertIsInstance(ua["accessTokenTrustedIps"], list)
        self.assertIsInstance(ua["clientSecretTrustedIps"], list)
        self.assertEqual(self.ok("GET", ua_path(ident["id"]))["identityUniversalAuth"], ua)

        upd = self.ok("PATCH", ua_path(ident["id"]), body={
            "accessTokenTTL": 60, "accessTokenMaxTTL": 120, "accessTokenNumUsesLimit": 7,
            "accessTokenTrustedIps": [{"ipAddress": "10.0.0.0/8"}, {"ipAddress": "2001:db8::/32"}],
            "clientSecretTrustedIps": [{"ipAddress": "127.0.0.1"}]})["identityUniversalAuth"]
        self.assertEqual((upd["accessTokenTTL"], upd["accessTokenMaxTTL"], upd["accessTokenNumUsesLimit"]),
                         (60, 120, 7))
        self.assertEqual([x["ipAddress"] for x in upd["accessTokenTrustedIps"]], ["10.0.0.0/8", "2001:db8::/32"])
        self.assertEqual([x["ipAddress"] for x in upd["clientSecretTrustedIps"]][0].split("/")[0], "127.0.0.1")
        self.assertEqual(upd["clientId"], ua["clientId"])
        # A partial update keeps the other settings.
        upd2 = self.ok("PATCH", ua_path(ident["id"]), body={"accessTokenTTL": 30})["identityUniversalAuth"]
        self.assertEqual((upd2["accessTokenTTL"], upd2["accessTokenMaxTTL"], upd2["accessTokenNumUsesLimit"]),
                         (30, 120, 7))
        self.assertEqual(upd2["accessTokenTrustedIps"], upd["accessTokenTrustedIps"])
        self.assertEqual(self.ok("GET", ua_path(ident["id"]))["identityUniversalAuth"], upd2)

    def test_ttl_above_max_ttl_is_422(self):
        ident = self.create_identity()
        r = self.api("POST", ua_path(ident["id"]), body={"accessTokenTTL": 100, "accessTokenMaxTTL": 50})
        self.assertError(r, 422, "ValidationFailure", "TTL")
        self.assertError(self.api("GET", ua_path(ident["id"])), 404, "NotFound")
        self.attach_ua(ident["id"], accessTokenTTL=10, accessTokenMaxTTL=20)
        self.assertError(self.api("PATCH", ua_path(ident["id"]), body={"accessTokenTTL": 21}), 422,
                         "ValidationFailure", "TTL")
        self.assertError(self.api("PATCH", ua_path(ident["id"]), body={"accessTokenMaxTTL": 9}), 422,
                         "ValidationFailure", "TTL")
        self.assertError(self.api("PATCH", ua_path(ident["id"]), body={"accessTokenTTL": -1}), 422,
                         "ValidationFailure", "accessTokenTTL")
        self.assertError(self.api("PATCH", ua_path(ident["id"]), body={"accessTokenTTL": "ten"}), 400,
                         "BadRequest", "accessTokenTTL")
        ua = self.ok("GET", ua_path(ident["id"]))["identityUniversalAuth"]
        self.assertEqual((ua["accessTokenTTL"], ua["accessTokenMaxTTL"]), (10, 20))

    def test_bad_cidr_is_422(self):
        ident = self.create_identity()
        ua = self.attach_ua(ident["id"])
        for field in ("accessTokenTrustedIps", "clientSecretTrustedIps"):
            for bad in ("10.0.0.0/33", "300.1.2.3", "banana", "10.0.0.0/8/1", "::1/129", "1.2.3.4/-1",
                        "10.0.0.0/", "gg::1"):
                with self.subTest(field=field, value=bad):
                    r = self.api("PATCH", ua_path(ident["id"]), body={field: [{"ipAddress": bad}]})
                    self.assertError(r, 422, "ValidationFailure", field)
                    r = self.api("POST", ua_path(self.create_identity()["id"]), body={field: [{"ipAddress": bad}]})
                    self.assertError(r, 422, "ValidationFailure", field)
        self.assertEqual(self.ok("GET", ua_path(ident["id"]))["identityUniversalAuth"], ua)
        for good in ("0.0.0.0/0", "::/0", "192.168.1.7", "fe80::/10", "::ffff:10.0.0.0/104"):
            with self.subTest(value=good):
                self.ok("PATCH", ua_path(ident["id"]), body={"accessTokenTrustedIps": [{"ipAddress": good}]})

    def test_client_secrets_shown_once(self):
        ident = self.create_identity()
        self.attach_ua(ident["id"])
        secret, data = self.create_client_secret(ident["id"], description="deploy bot", ttl=3600, numUsesLimit=5)
        self.assertIsInstance(secret, str)
        self.assertGreaterEqual(len(secret), 32, "client secrets must be high-entropy")
        self.assertEqual(data["identityId"], ident["id"])
        self.assertEqual(data["description"], "deploy bot")
        self.assertEqual((data["clientSecretNumUses"], data["clientSecretNumUsesLimit"]), (0, 5))
        self.assertEqual(data["clientSecretTTL"], 3600)
        self.assertFalse(data["isClientSecretRevoked"])
        prefix = data["clientSecretPrefix"]
        self.assertTrue(prefix and len(prefix) < len(secret) // 2 and secret.startswith(prefix), prefix)
        self.assertAlmostEqual((parse_time(data["expiresAt"]) - parse_time(data["createdAt"])).total_seconds(),
                               3600, delta=2)
        self.assertNotIn(secret, json.dumps(data))

        second, data2 = self.create_client_secret(ident["id"])
        self.assertNotEqual(second, secret)
        self.assertEqual((data2["description"], data2["clientSecretTTL"], data2["clientSecretNumUsesLimit"]),
                         ("", 0, 0))
        self.assertIsNone(data2["expiresAt"])

        r = self.api("GET", ua_path(ident["id"]) + "/client-secrets")
        self.assertEqual(r.status, 200)
        for s in (secret, second):
            self.assertNotIn(s.encode(), r.body, "a client secret list must never show the secret")
            self.assertNotIn(s[len(prefix):].encode(), r.body)
        listed = {x["id"]: x for x in r.json["clientSecretData"]}
        self.assertEqual(set(listed), {data["id"], data2["id"]})
        self.assertEqual(listed[data["id"]]["clientSecretPrefix"], prefix)
        self.assertEqual(listed[data["id"]]["description"], "deploy bot")
        self.assertNotIn("clientSecret", listed[data["id"]])
        self.assertNotIn(secret, self.server.stderr + self.server.stdout)

    def test_client_secret_validation(self):
        ident = self.create_identity()
        self.attach_ua(ident["id"])
        path = ua_path(ident["id"]) + "/client-secrets"
        self.assertError(self.api("POST", path, body={"ttl": -5}), 422, "ValidationFailure", "ttl")
        self.assertError(self.api("POST", path, body={"numUsesLimit": -1}), 422, "ValidationFailure",
                         "numUsesLimit")
        self.assertError(self.api("POST", path, body={"expiresAt": "tomorrow"}), 422, "ValidationFailure",
                         "expiresAt")
        self.assertEqual(self.ok("GET", path)["clientSecretData"], [])
        # An absolute expiry is kept as given.
        at = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2)).replace(microsecond=0)
        _, data = self.create_client_secret(ident["id"], expiresAt=at.strftime("%Y-%m-%dT%H:%M:%SZ"))
        self.assertEqual(parse_time(data["expiresAt"]), at)

    def test_revoke_client_secret(self):
        m = self.machine()
        path = ua_path(m["id"]) + "/client-secrets/%s/revoke" % m["secretData"]["id"]
        data = self.ok("POST", path)["clientSecretData"]
        self.assertEqual(data["id"], m["secretData"]["id"])
        self.assertTrue(data["isClientSecretRevoked"])
        listed = self.ok("GET", ua_path(m["id"]) + "/client-secrets")["clientSecretData"]
        self.assertEqual([(x["id"], x["isClientSecretRevoked"]) for x in listed], [(data["id"], True)])
        self.assertError(self.api("POST", ua_path(m["id"]) + "/client-secrets/%s/revoke" % uuid.uuid4()), 404,
                         "NotFound")
        # A secret of another identity cannot be revoked through this one.
        other = self.machine(login=False)
        r = self.api("POST", ua_path(m["id"]) + "/client-secrets/%s/revoke" % other["secretData"]["id"])
        self.assertError(r, 404, "NotFound")
        self.login_ok(other["clientId"], other["clientSecret"])


class Login(IdentityHelpers, harness.ServerTestCase):

    @staticmethod
    def secret_message(description, identity_name, tail):
        """docs/api.md: 'client secret "<description>" <tail>'; naming the identity as well (as the expiry
        message does) is accepted."""
        return re.compile(r'client secret "%s"(?: of identity "%s")? %s' % (
            re.escape(description), re.escape(identity_name), re.escape(tail)))

    def assert401(self, r, message, presented=None):
        body = self.assertError(r, 401, "Unauthorized", message)
        if presented:
            self.assertNotIn(presented.encode(), r.body, "a failed login repeats the presented secret")
        return body

    def test_login_shape_and_token_use(self):
        project = self.create_project()
        self.set_secret(project["id"], "K", "value-1")
        m = self.machine(project["id"], "viewer", ua={"accessTokenTTL": 600, "accessTokenMaxTTL": 7200},
                         login=False)
        r = self.login(m["clientId"], m["clientSecret"])
        self.assertEqual(r.status, 200, r.body[:300])
        data = r.json
        self.assertEqual(set(data), {"accessToken", "expiresIn", "accessTokenMaxTTL", "tokenType"})
        self.assertRegex(data["accessToken"], JWT_SHAPE)
        self.assertEqual((data["expiresIn"], data["accessTokenMaxTTL"], data["tokenType"]), (600, 7200, "Bearer"))
        self.assertLoginLogged("universal-auth", m["clientId"], "ok")
        claims = jwt_claims(data["accessToken"])
        self.assertEqual(claims["identityId"], m["id"])
        self.assertEqual(claims["authTokenType"], "identityAccessToken")
        self.assertTrue(claims["identityAccessTokenId"])
        self.assertAlmostEqual(claims["iat"], time.time(), delta=30)
        self.assertEqual(claims["exp"] - claims["iat"], 600)
        # The token works; credentials are trimmed as Infisical does.
        got = self.get_as(data["accessToken"], project["id"], "K")
        self.assertEqual(got.status, 200, got.body[:300])
        self.assertEqual(got.json["secret"]["secretValue"], "value-1")
        again = self.login(" %s " % m["clientId"], "\t%s\n" % m["clientSecret"])
        self.assertEqual(again.status, 200, again.body[:300])
        self.assertNotEqual(again.json["accessToken"], data["accessToken"])
        # Each login counts as a use of the client secret.
        listed = self.ok("GET", ua_path(m["id"]) + "/client-secrets")["clientSecretData"]
        self.assertEqual(listed[0]["clientSecretNumUses"], 2)
        self.assertNotLogged(m["clientSecret"], data["accessToken"], again.json["accessToken"])

    def test_login_validation(self):
        self.assertError(self.api("POST", LOGIN, body={"clientSecret": "x"}, token=None), 422,
                         "ValidationFailure", "clientId")
        self.assertError(self.api("POST", LOGIN, body={"clientId": "x"}, token=None), 422,
                         "ValidationFailure", "clientSecret")
        self.assertError(self.api("POST", LOGIN, body="{nope", token=None), 400, "BadRequest")

    def assertLoginLogged(self, method, who, result, reason=None):
        """The server logs one line per login outcome, with the refusal's precise reason (an
        audit-ready reason) and never the credential."""
        # the line is written when the request completes, which may be just after the client read the answer
        deadline = time.monotonic() + 5
        while True:
            lines = [line for line in self.server.stderr.splitlines()
                     if ' login method=%s who="%s" ' % (method, who) in line and " result=%s " % result in line]
            if lines or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertTrue(lines, "no login line for %s %s %s in the server log" % (method, who, result))
        if reason:
            # the log quotes the reason, escaping its own quotes (docs/server.md "Logs")
            self.assertIn('reason="%s' % reason.replace("\\", "\\\\").replace('"', '\\"'), lines[-1])
        return lines[-1]

    def test_unknown_client_id(self):
        client_id = str(uuid.uuid4())
        r = self.login(client_id, "whatever-secret-0123456789")
        body = self.assert401(r, "unknown client id", "whatever-secret-0123456789")
        self.assertNotIn(client_id, body["message"])
        # An unknown client id may be a credential in the wrong field: only its fingerprint is logged.
        fingerprint = "sha256:" + hashlib.sha256(client_id.encode()).hexdigest()[:8]
        line = self.assertLoginLogged("universal-auth", fingerprint, "refused", "invalid client secret or unknown")
        self.assertIn("ip=127.0.0.1", line)
        self.assertRegex(line, r"req_id=\S+")
        self.assertNotLogged("whatever-secret-0123456789", client_id)
        # The same answer as a wrong secret for a client id that exists (which is not told apart).
        m = self.machine(login=False)
        wrong = self.assert401(self.login(m["clientId"], "whatever-secret-0123456789"), "invalid client secret")
        self.assertEqual((wrong["error"], wrong["message"]), (body["error"], body["message"]))

    def test_wrong_secret_same_answer_however_close(self):
        m = self.machine(login=False)
        messages = set()
        for wrong in near_misses(m["clientSecret"]) + ["completely-different-secret-value-xyz"]:
            r = self.login(m["clientId"], wrong)
            body = self.assert401(r, "invalid client secret", wrong)
            messages.add((r.status, body["error"], body["message"]))
        self.assertEqual(len(messages), 1, "a near miss must get the same answer as any wrong secret: %r"
                         % messages)
        # Another identity's valid secret is just as wrong.
        other = self.machine(login=False)
        body = self.assert401(self.login(m["clientId"], other["clientSecret"]), "invalid client secret")
        messages.add((401, body["error"], body["message"]))
        self.assertEqual(len(messages), 1, messages)
        self.login_ok(m["clientId"], m["clientSecret"])  # not locked out below the limit
        self.assertNotLogged(m["clientSecret"], *near_misses(m["clientSecret"]))

    def test_client_secret_expired(self):
        m = self.machine(secret={"description": "nightly build", "ttl": 60}, name=harness.unique("ci-runner"),
                         login=False)
        expires = parse_time(m["secretData"]["expiresAt"])
        self.advance_clock(61)
        r = self.login(m["clientId"], m["clientSecret"])
        body = self.assert401(r, 'client secret "nightly build" of identity "%s" expired at' % m["name"],
                              m["clientSecret"])
        self.assertLoginLogged("universal-auth", m["clientId"], "refused", 'client secret "nightly build"')
        stamp = RFC3339.search(body["message"].split("expired at", 1)[1])
        self.assertTrue(stamp, "no RFC 3339 time in %r" % body["message"])
        self.assertLess(abs((parse_time(stamp.group(0)) - expires).total_seconds()), 1.01, body["message"])
        # A wrong guess for an identity whose secret expired learns nothing about it.
        r = self.login(m["clientId"], near_misses(m["clientSecret"])[1])
        self.assert401(r, "invalid client secret")
        self.assertNotIn("nightly build", r.json["message"])

    def test_client_secret_revoked(self):
        m = self.machine(secret={"description": "old laptop"}, login=False)
        self.ok("POST", ua_path(m["id"]) + "/client-secrets/%s/revoke" % m["secretData"]["id"])
        r = self.login(m["clientId"], m["clientSecret"])
        body = self.assert401(r, 'client secret "old laptop"', m["clientSecret"])
        self.assertRegex(body["message"], self.secret_message("old laptop", m["name"], "was revoked"))
        r = self.login(m["clientId"], near_misses(m["clientSecret"])[2])
        self.assert401(r, "invalid client secret")
        self.assertNotIn("old laptop", r.json["message"])

    def test_client_secret_use_limit(self):
        m = self.machine(secret={"description": "two shots", "numUsesLimit": 2}, login=False)
        self.login_ok(m["clientId"], m["clientSecret"])
        self.login_ok(m["clientId"], m["clientSecret"])
        r = self.login(m["clientId"], m["clientSecret"])
        body = self.assert401(r, 'client secret "two shots"', m["clientSecret"])
        self.assertRegex(body["message"], self.secret_message("two shots", m["name"],
                                                              "has reached its use limit of 2"))
        listed = self.ok("GET", ua_path(m["id"]) + "/client-secrets")["clientSecretData"]
        self.assertEqual(listed[0]["clientSecretNumUses"], 2)

    def test_client_secret_ip_not_allowed(self):
        m = self.machine(ua={"clientSecretTrustedIps": [{"ipAddress": "10.0.0.0/8"}]}, login=False)
        r = self.login(m["clientId"], m["clientSecret"])
        self.assert401(r, "IP address 127.0.0.1 is not allowed", m["clientSecret"])
        # X-Forwarded-For is not believed (no proxy is configured): it must not open the door.
        r = self.login(m["clientId"], m["clientSecret"], headers={"X-Forwarded-For": "10.1.2.3",
                                                                  "X-Real-IP": "10.1.2.3"})
        self.assert401(r, "IP address 127.0.0.1 is not allowed")
        # An IPv6-only list does not admit an IPv4 client.
        self.ok("PATCH", ua_path(m["id"]), body={"clientSecretTrustedIps": [{"ipAddress": "::1/128"}]})
        self.assert401(self.login(m["clientId"], m["clientSecret"]), "IP address 127.0.0.1 is not allowed")
        self.ok("PATCH", ua_path(m["id"]), body={"clientSecretTrustedIps": [{"ipAddress": "10.0.0.0/8"},
                                                                           {"ipAddress": "127.0.0.0/8"}]})
        self.login_ok(m["clientId"], m["clientSecret"])

    def test_access_token_ip_not_allowed(self):
        project = self.create_project()
        m = self.machine(project["id"], "viewer", ua={"accessTokenTrustedIps": [{"ipAddress": "10.0.0.0/8"}]})
        r = self.list_as(m["token"], project["id"])
        self.assert401(r, "IP address 127.0.0.1 is not allowed")
        r = self.list_as(m["token"], project["id"], headers={"X-Forwarded-For": "10.9.9.9"})
        self.assert401(r, "IP address 127.0.0.1 is not allowed")
        n = self.machine(project["id"], "viewer", ua={"accessTokenTrustedIps": [{"ipAddress": "127.0.0.1/32"}]})
        self.assertEqual(self.list_as(n["token"], project["id"]).status, 200)

    def test_access_token_expired(self):
        project = self.create_project()
        m = self.machine(project["id"], "viewer", ua={"accessTokenTTL": 60, "accessTokenMaxTTL": 120})
        self.assertEqual(self.list_as(m["token"], project["id"]).status, 200)
        expires = jwt_claims(m["token"])["exp"]
        self.advance_clock(61)
        r = self.list_as(m["token"], project["id"])
        body = self.assert401(r, "access token expired at")
        stamp = RFC3339.search(body["message"])
        self.assertTrue(stamp, body["message"])
        self.assertLess(abs(parse_time(stamp.group(0)).timestamp() - expires), 1.01, body["message"])
        self.assertNotIn(m["token"], body["message"])
        r = self.api("POST", RENEW, body={"accessToken": m["token"]}, token=None)
        self.assert401(r, "access token expired at")

    def test_access_token_revoked(self):
        project = self.create_project()
        m = self.machine(project["id"], "viewer")
        other = self.login_ok(m["clientId"], m["clientSecret"])["accessToken"]
        r = self.api("POST", REVOKE, body={"accessToken": m["token"]}, token=None)
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(r.json, {"message": "Successfully revoked access token"})
        # Revoking it again is not an error.
        r = self.api("POST", REVOKE, body={"accessToken": m["token"]}, token=None)
        self.assertEqual(r.status, 200, r.body[:300])
        self.assert401(self.list_as(m["token"], project["id"]), "access token was revoked")
        self.assert401(self.api("POST", RENEW, body={"accessToken": m["token"]}, token=None),
                       "access token was revoked")
        # Only that token: another token of the same identity still works.
        self.assertEqual(self.list_as(other, project["id"]).status, 200)
        # Revoking garbage is refused.
        r = self.api("POST", REVOKE, body={"accessToken": "a.b.c"}, token=None)
        self.assertEqual(r.status, 401, r.body[:300])
        # A genuine token altered (its signature no longer matches) is refused, not taken as revoked.
        forged = other[:-4] + ("AAAA" if not other.endswith("AAAA") else "BBBB")
        r = self.api("POST", REVOKE, body={"accessToken": forged}, token=None)
        self.assertEqual(r.status, 401, r.body[:300])
        self.assertEqual(self.list_as(other, project["id"]).status, 200)

    def test_renew_same_token_bounded_by_max_ttl(self):
        """TTL 2 s, max TTL 3 s. Renewed at 1.2 s the token outlives its first 2 s; renewed again at 2.4 s it
        gets only what is left of the 3 s (a fresh TTL would run to 4.4 s), so at 3.5 s it is refused."""
        project = self.create_project()
        m = self.machine(project["id"], "viewer", ua={"accessTokenTTL": 2, "accessTokenMaxTTL": 3})
        start = time.monotonic()

        def at(t):
            time.sleep(max(0.0, t - (time.monotonic() - start)))

        def renew():
            return self.api("POST", RENEW, body={"accessToken": m["token"]}, token=None)

        at(1.2)
        r = renew()
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(r.json["accessToken"], m["token"], "renew must return the same token")
        self.assertEqual((r.json["accessTokenMaxTTL"], r.json["tokenType"]), (3, "Bearer"))
        self.assertIn(r.json["expiresIn"], (1, 2))
        at(2.3)
        self.assertEqual(self.list_as(m["token"], project["id"]).status, 200,
                         "past its first TTL, the renewed token must still work")
        at(2.4)
        r = renew()
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(r.json["accessToken"], m["token"])
        self.assertLessEqual(r.json["expiresIn"], 1, "a renewal must not extend the token past its max TTL")
        self.assertGreaterEqual(r.json["expiresIn"], 0)
        at(3.5)
        self.assert401(self.list_as(m["token"], project["id"]), "access token has reached its max TTL at")
        self.assert401(renew(), "access token has reached its max TTL at")

    def test_renew_shape(self):
        m = self.machine(ua={"accessTokenTTL": 100, "accessTokenMaxTTL": 1000})
        r = self.api("POST", RENEW, body={"accessToken": m["token"]}, token=None)
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(r.json, {"accessToken": m["token"], "expiresIn": 100, "accessTokenMaxTTL": 1000,
                                  "tokenType": "Bearer"})

    def test_access_token_use_limit(self):
        project = self.create_project()
        m = self.machine(project["id"], "viewer", ua={"accessTokenNumUsesLimit": 2})
        self.assertEqual(self.list_as(m["token"], project["id"]).status, 200)
        self.assertEqual(self.list_as(m["token"], project["id"]).status, 200)
        self.assert401(self.list_as(m["token"], project["id"]),
                       "access token has reached its use limit of 2")
        self.assert401(self.list_as(m["token"], project["id"]),
                       "access token has reached its use limit of 2")

    def test_identity_deleted_kills_its_tokens(self):
        project = self.create_project()
        m = self.machine(project["id"], "member")
        self.assertEqual(self.list_as(m["token"], project["id"]).status, 200)
        self.ok("DELETE", "/api/v1/identities/" + m["id"])
        self.assertError(self.list_as(m["token"], project["id"]), 401, "Unauthorized")
        r = self.api("POST", "/api/v3/secrets/raw/NEW", token=m["token"],
                     body={"workspaceId": project["id"], "environment": "dev", "secretValue": "x"})
        self.assertError(r, 401, "Unauthorized")
        self.assertError(self.api("POST", RENEW, body={"accessToken": m["token"]}, token=None), 401,
                         "Unauthorized")
        self.assert401(self.login(m["clientId"], m["clientSecret"]), "unknown client id")
        self.assertEqual(self.list_secrets(project["id"]).json["secrets"], [], "the refused create wrote")

    def test_only_hashes_are_stored(self):
        """Client secrets and access tokens never reach the data directory in clear (only hashes)."""
        m = self.machine(secret={"description": "hash me"})
        renewed = self.api("POST", RENEW, body={"accessToken": m["token"]}, token=None)
        self.assertEqual(renewed.status, 200)
        needles = [m["clientSecret"].encode(), m["clientSecret"][len(m["secretData"]["clientSecretPrefix"]):].encode(),
                   m["token"].encode(), m["token"].split(".")[2].encode()]
        found = []
        for root, _, files in os.walk(self.server.data_dir):
            for f in files:
                with open(os.path.join(root, f), "rb") as fh:
                    data = fh.read()
                found += ["%s (credential %d)" % (f, i) for i, n in enumerate(needles) if n in data]
        self.assertEqual(found, [], "a credential is stored in clear")

    def test_failed_logins_never_echo_the_secret(self):
        revoked = self.machine(secret={"description": "r"}, login=False)
        self.ok("POST", ua_path(revoked["id"]) + "/client-secrets/%s/revoke" % revoked["secretData"]["id"])
        fenced = self.machine(ua={"clientSecretTrustedIps": [{"ipAddress": "192.0.2.0/24"}]}, login=False)
        once = self.machine(secret={"numUsesLimit": 1}, login=False)
        self.login_ok(once["clientId"], once["clientSecret"])
        plain = self.machine(login=False)
        attempts = [(str(uuid.uuid4()), "presented-" + uuid.uuid4().hex),
                    (plain["clientId"], plain["clientSecret"][:-1] + ("Q" if plain["clientSecret"][-1] != "Q" else "R")),
                    (plain["clientId"], "presented-" + uuid.uuid4().hex),
                    (revoked["clientId"], revoked["clientSecret"]),
                    (fenced["clientId"], fenced["clientSecret"]),
                    (once["clientId"], once["clientSecret"])]
        for client_id, presented in attempts:
            r = self.login(client_id, presented)
            self.assertEqual(r.status, 401, r.body[:300])
            for part in (presented, presented[:-1], presented[8:]):
                self.assertNotIn(part.encode(), r.body, "a failed login answer contains the presented secret")
        self.assertNotLogged(*[p for _, p in attempts])
        self.assertNotLogged(*[p[8:] for _, p in attempts])

    def test_forged_tokens(self):
        project = self.create_project()
        m = self.machine(project["id"], "viewer")
        head, payload, sig = m["token"].split(".")
        claims = jwt_claims(m["token"])
        claims["identityId"] = str(uuid.uuid4())
        forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        flipped = sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB")
        for bad in (head + "." + forged_payload + "." + sig, head + "." + payload + "." + flipped,
                    head + "." + payload + ".", "eyJhbGciOiJub25lIn0." + payload + ".", "x.y.z"):
            with self.subTest(token=bad[:40]):
                self.assertError(self.list_as(bad, project["id"]), 401, "Unauthorized")
        self.assertEqual(self.list_as(m["token"], project["id"]).status, 200)


class RootKeyRotation(IdentityHelpers, unittest.TestCase):
    """docs/api.md: rotating the root key invalidates outstanding access tokens; pipelines log in again, so
    their client secrets keep working, and so do identities and memberships."""

    def api(self, *a, **kw):
        return self.server.api(*a, **kw)

    ok = harness.ServerTestCase.ok
    assertError = harness.ServerTestCase.assertError
    create_project = harness.ServerTestCase.create_project

    def test_rotation_ends_tokens_not_client_secrets(self):
        self.server = harness.Server()
        try:
            self.server.start()
            project = self.create_project()
            self.ok("POST", "/api/v3/secrets/raw/K", body={"workspaceId": project["id"], "environment": "dev",
                                                           "secretValue": "kept"})
            m = self.machine(project["id"], "viewer")
            self.assertEqual(self.list_as(m["token"], project["id"]).status, 200)
            self.assertEqual(self.server.stop(), 0)
            rc, _, err = harness.run(["operator", "rotate-root-key", "--data-dir", self.server.data_dir])
            self.assertEqual(rc, 0, err)
            self.server.start()
            self.assertError(self.list_as(m["token"], project["id"]), 401, "Unauthorized")
            token = self.login_ok(m["clientId"], m["clientSecret"])["accessToken"]
            r = self.get_as(token, project["id"], "K")
            self.assertEqual(r.status, 200, r.body[:300])
            self.assertEqual(r.json["secret"]["secretValue"], "kept")
            self.assertEqual(self.server.stop(), 0)
            self.assertIsNone(self.server.sanitizer_report())
        finally:
            self.server.cleanup()


def from_address(server, address):
    """A connection to server whose source address is address (any of 127.0.0.0/8 is loopback on Linux)."""
    return http.client.HTTPConnection(server.host, server.port, timeout=30, source_address=(address, 0))


class BruteForce(IdentityHelpers, harness.ServerTestCase):
    """With COFFER_LOGIN_MAX_FAILURES=5: five failures a minute per (source address, client id), fifty per
    address. Client ids are not secret, so failures from one address never lock a client id out elsewhere."""

    server_env = {"COFFER_LOGIN_MAX_FAILURES": "5"}

    def login_from(self, address, client_id, client_secret):
        conn = from_address(self.server, address)
        try:
            return self.api("POST", LOGIN, body={"clientId": client_id, "clientSecret": client_secret}, token=None,
                            conn=conn)
        finally:
            conn.close()

    def test_wrong_secrets_get_429_with_retry_after(self):
        victim = self.machine(login=False)
        bystander = self.machine(login=False)
        statuses = []
        for i in range(12):
            wrong = "guess-%02d-%s" % (i, victim["clientSecret"][8:])
            r = self.login(victim["clientId"], wrong)
            statuses.append(r.status)
            self.assertNotIn(wrong.encode(), r.body)
            if r.status == 429:
                self.assertError(r, 429)
                retry = r.headers.get("Retry-After")
                self.assertTrue(retry and retry.isdigit() and 1 <= int(retry) <= 3600,
                                "Retry-After: %r" % retry)
            else:
                self.assertError(r, 401, "Unauthorized", "invalid client secret")
        self.assertEqual(statuses[:5], [401] * 5, statuses)
        self.assertEqual(statuses[5:], [429] * 7, "past 5 failures every attempt must be 429: %r" % statuses)
        # From the address that failed, this client id is locked out: even the right secret is refused (so the
        # lockout cannot be probed for the right answer). docs/api.md says so.
        self.assertEqual(self.login(victim["clientId"], victim["clientSecret"]).status, 429)
        # Another client id from the same address is below the per-address limit and logs in, repeatedly.
        for _ in range(8):
            self.login_ok(bystander["clientId"], bystander["clientSecret"])
        self.assertNotLogged(victim["clientSecret"], bystander["clientSecret"])

    def test_attacker_cannot_lock_the_genuine_client_out(self):
        """The attack of the finding: someone who knows only the client id sends wrong secrets from 127.0.0.3;
        the genuine pipeline at 127.0.0.2 logs in with 200 before, during and after the attacker's lockout."""
        victim = self.machine(login=False)
        attacker, genuine = "127.0.0.3", "127.0.0.2"
        statuses, genuine_statuses = [], []
        for i in range(15):
            r = self.login_from(attacker, victim["clientId"], "cfcs_guess-%02d-%s" % (i, uuid.uuid4().hex))
            statuses.append(r.status)
            if i >= 4:  # from the lockout on
                genuine_statuses.append(self.login_from(genuine, victim["clientId"], victim["clientSecret"]).status)
        self.assertEqual(genuine_statuses, [200] * 11,
                         "the genuine client at another address was refused: %r" % genuine_statuses)
        self.assertEqual(statuses[:5], [401] * 5, statuses)
        self.assertEqual(statuses[5:], [429] * 10, "the attacker's address must be throttled: %r" % statuses)
        # Nor does a wrong secret from the genuine address count the attacker's failures: it is a plain 401.
        r = self.login_from(genuine, victim["clientId"], "cfcs_typo-" + uuid.uuid4().hex)
        self.assertError(r, 401, "Unauthorized", "invalid client secret")
        self.login_ok(victim["clientId"], victim["clientSecret"])  # 127.0.0.1 was never involved either
        line = [l for l in self.server.stderr.splitlines() if "result=refused" in l and "ip=%s" % attacker in l]
        self.assertTrue(line, "the attacker's refusals are logged with its address")

    def test_attacker_spreading_over_addresses_cannot_lock_it_out(self):
        """Four failures (under the limit) from each of many addresses add up to nothing for the client id."""
        victim = self.machine(login=False)
        for host in range(10, 22):
            for _ in range(4):
                r = self.login_from("127.0.1.%d" % host, victim["clientId"], "wrong-" + uuid.uuid4().hex)
                self.assertEqual(r.status, 401, r.body[:300])
        self.assertEqual(self.login_from("127.0.0.2", victim["clientId"], victim["clientSecret"]).status, 200)


class BruteForceByAddress(IdentityHelpers, harness.ServerTestCase):
    """Per address: fifty failures (ten times the per-client-id limit) across many client ids."""

    server_env = {"COFFER_LOGIN_MAX_FAILURES": "5"}

    def test_many_client_ids_from_one_address_get_429(self):
        legit = self.machine(login=False)
        statuses = []
        for i in range(60):
            r = self.login(str(uuid.uuid4()), "spray-%d-0123456789abcdef" % i)
            statuses.append(r.status)
            if r.status == 429:
                self.assertTrue((r.headers.get("Retry-After") or "").isdigit(), dict(r.headers))
        self.assertNotIn(429, statuses[:40], statuses)
        self.assertIn(429, statuses, "an address spraying client ids must be throttled")
        self.assertEqual(statuses[-1], 429)
        # The spraying address has spent its budget, for every client id ...
        r = self.login(legit["clientId"], legit["clientSecret"])
        self.assertError(r, 429)
        self.assertTrue((r.headers.get("Retry-After") or "").isdigit())
        # ... and only that address: the same client from another one logs in.
        conn = from_address(self.server, "127.0.0.2")
        try:
            r = self.api("POST", LOGIN, body={"clientId": legit["clientId"], "clientSecret": legit["clientSecret"]},
                         token=None, conn=conn)
        finally:
            conn.close()
        self.assertEqual(r.status, 200, r.body[:300])


if __name__ == "__main__":
    unittest.main()
