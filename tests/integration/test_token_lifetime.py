"""An access token dies with the credential that minted it, and no token lives forever (docs/api.md, "Access
token lifetime"; docs/server.md, --max-token-ttl).

- a universal-auth token whose client secret is then revoked, deleted or expires is refused (401) on use and on
  renew, at once; tokens of the identity's other client secrets keep working;
- removing universal auth from an identity ends every token it issued (and its client secrets); attaching it
  again does not revive them (JWT and Kubernetes auth: test_jwt_auth.py, test_kubernetes_auth.py);
- removing a membership ends what the token grants in that project (403), not the token (as Infisical);
- accessTokenTTL=0 / accessTokenMaxTTL=0 mean "up to the server's --max-token-ttl", not "forever": login,
  renew and the token's own record are all capped by it, tokens stored before the cap included;
- the rows of tokens that ended over an hour ago are pruned by the server (revoked ones once they ended too),
  while live tokens, renewed ones and those with no TTL of their own (capped at --max-token-ttl) stay and work.
"""

import time
import unittest
import uuid

import harness
from test_identities import IdentityHelpers, RENEW, REVOKE, jwt_claims, ua_path


class TokenTestCase(IdentityHelpers, harness.ServerTestCase):
    server_env = {"COFFER_LOGIN_MAX_FAILURES": "1000"}

    def renew(self, token):
        return self.api("POST", RENEW, body={"accessToken": token}, token=None)

    def assertDead(self, token, project_id, *words):
        """The token is refused, with a message naming the cause, on use and on renew."""
        self.assertError(self.list_as(token, project_id), 401, "Unauthorized", *words)
        self.assertError(self.renew(token), 401, "Unauthorized", *words)

    def assertAlive(self, token, project_id):
        r = self.list_as(token, project_id)
        self.assertEqual(r.status, 200, r.body[:300])
        r = self.renew(token)
        self.assertEqual(r.status, 200, r.body[:300])


class ClientSecretEndsItsTokens(TokenTestCase):

    def setUp(self):
        super().setUp()
        self.project = self.create_project()
        self.set_secret(self.project["id"], "K", "v")

    def machine_with_two_secrets(self, **secret):
        m = self.machine(self.project["id"], "viewer", secret=secret or None)
        cs2, data2 = self.create_client_secret(m["id"], description="the other one")
        other = self.login_ok(m["clientId"], cs2)["accessToken"]
        self.assertAlive(m["token"], self.project["id"])
        return m, other

    def test_revoked_client_secret(self):
        m, other = self.machine_with_two_secrets()
        self.ok("POST", ua_path(m["id"]) + "/client-secrets/%s/revoke" % m["secretData"]["id"])
        self.assertDead(m["token"], self.project["id"], "client secret", "revoked")
        self.assertAlive(other, self.project["id"])

    def test_deleted_client_secret(self):
        """The secret's row removed (as an operator cleaning the store would): no row, no token."""
        m, other = self.machine_with_two_secrets()
        harness.sql(self.server.data_dir,
                    "DELETE FROM identity_client_secrets WHERE id = '%s'" % m["secretData"]["id"])
        self.assertDead(m["token"], self.project["id"], "client secret", "deleted")
        self.assertAlive(other, self.project["id"])

    def test_expired_client_secret(self):
        m, other = self.machine_with_two_secrets(ttl=60)
        self.advance_clock(61)
        self.assertDead(m["token"], self.project["id"], "client secret", "expired at")
        self.assertAlive(other, self.project["id"])

    def test_revoking_a_token_of_a_revoked_secret_is_fine(self):
        m, _ = self.machine_with_two_secrets()
        self.ok("POST", ua_path(m["id"]) + "/client-secrets/%s/revoke" % m["secretData"]["id"])
        r = self.api("POST", "/api/v1/auth/token/revoke", body={"accessToken": m["token"]}, token=None)
        self.assertEqual(r.status, 200, r.body[:300])


class AuthMethodRemovalEndsItsTokens(TokenTestCase):

    def test_removing_universal_auth(self):
        project = self.create_project()
        m = self.machine(project["id"], "viewer")
        self.assertAlive(m["token"], project["id"])
        r = self.ok("DELETE", ua_path(m["id"]))
        self.assertEqual(r["identityUniversalAuth"]["clientId"], m["clientId"])
        self.assertDead(m["token"], project["id"], "revoked")
        self.assertError(self.api("GET", ua_path(m["id"])), 404, "NotFound")
        self.assertError(self.api("DELETE", ua_path(m["id"])), 404, "NotFound")
        self.assertNotIn("universal-auth",
                         self.ok("GET", "/api/v1/identities/" + m["id"])["identity"]["authMethods"])
        self.assertError(self.login(m["clientId"], m["clientSecret"]), 401, "Unauthorized")
        # Attached again: a new client id, the old secret and token stay dead.
        again = self.attach_ua(m["id"])
        self.assertNotEqual(again["clientId"], m["clientId"])
        self.assertEqual(self.ok("GET", ua_path(m["id"]) + "/client-secrets")["clientSecretData"], [])
        self.assertDead(m["token"], project["id"], "revoked")
        self.assertError(self.login(again["clientId"], m["clientSecret"]), 401, "Unauthorized")

    def test_removal_is_admin_only(self):
        project = self.create_project()
        m = self.machine(project["id"], "admin")
        victim = self.machine(project["id"], "viewer")
        self.assertError(self.api("DELETE", ua_path(victim["id"]), token=m["token"]), 403)
        self.assertAlive(victim["token"], project["id"])
        self.assertError(self.api("DELETE", ua_path(str(uuid.uuid4()))), 404, "NotFound")

    def test_removing_a_membership_ends_the_grant_not_the_token(self):
        """Infisical's behaviour: permissions are read per request, so the token stays valid but no longer grants
        the project; it still works where the identity is a member."""
        kept, dropped = self.create_project(), self.create_project()
        m = self.machine(kept["id"], "viewer")
        self.add_member(dropped["id"], m["id"], "viewer")
        self.assertAlive(m["token"], dropped["id"])
        self.ok("DELETE", "/api/v2/workspace/%s/identity-memberships/%s" % (dropped["id"], m["id"]))
        self.assertError(self.list_as(m["token"], dropped["id"]), 403, "PermissionDenied")
        self.assertAlive(m["token"], kept["id"])


class ServerMaxTokenTtl(TokenTestCase):
    """--max-token-ttl 1h: "no limit" and limits above it become an hour (the test clock passes it)."""

    server_args = ("--max-token-ttl", "1h")

    def test_zero_ttls_are_capped(self):
        project = self.create_project()
        m = self.machine(project["id"], "viewer", ua={"accessTokenTTL": 0, "accessTokenMaxTTL": 0}, login=False)
        data = self.login_ok(m["clientId"], m["clientSecret"])
        self.assertEqual((data["expiresIn"], data["accessTokenMaxTTL"]), (3600, 3600))
        token = data["accessToken"]
        r = self.renew(token)
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertLessEqual(r.json["expiresIn"], 3600)
        self.assertEqual(r.json["accessTokenMaxTTL"], 3600)
        self.assertEqual(self.list_as(token, project["id"]).status, 200)
        self.advance_clock(3601)
        self.assertDead(token, project["id"], "max TTL")

    def test_large_ttls_are_capped(self):
        project = self.create_project()
        m = self.machine(project["id"], "viewer", ua={"accessTokenTTL": 7200, "accessTokenMaxTTL": 86400},
                         login=False)
        data = self.login_ok(m["clientId"], m["clientSecret"])
        self.assertEqual((data["expiresIn"], data["accessTokenMaxTTL"]), (3600, 3600))

    def test_a_stored_endless_token_is_capped(self):
        """A token stored with no limits (issued before the cap existed) ends at created_at + the cap."""
        project = self.create_project()
        m = self.machine(project["id"], "viewer")
        harness.sql(self.server.data_dir, "UPDATE identity_access_tokens SET ttl = 0, max_ttl = 0 "
                    "WHERE identity_id = '%s'" % m["id"])
        self.assertEqual(self.list_as(m["token"], project["id"]).status, 200)
        self.advance_clock(3601)
        self.assertDead(m["token"], project["id"], "max TTL")


class MaxTokenTtlFlag(unittest.TestCase):

    def test_bad_values_refuse_to_start(self):
        for value in ("0", "-1", "abc", "5y"):
            with self.subTest(value=value):
                rc, out, err = harness.run(["server", "--max-token-ttl", value,
                                            "--data-dir", "/nonexistent/never-created"])
                self.assertEqual(rc, 2, err)
                self.assertIn("--max-token-ttl", err)
                env = harness.base_env({"COFFER_MAX_TOKEN_TTL": value})
                rc, out, err = harness.run(["server", "--data-dir", "/nonexistent/never-created"], env=env)
                self.assertEqual(rc, 2, err)
                self.assertIn("--max-token-ttl", err)


if __name__ == "__main__":
    unittest.main()


class EndedTokensArePruned(TokenTestCase):
    """The server's housekeeping pass deletes the stored rows of access tokens once they ended (TTL from the last
    renewal, or max TTL) more than an hour ago; it runs every five minutes on the server's clock, so moving a test
    build's clock past a deadline makes the next pass (within a second or two) prune."""

    def rows(self, tokens):
        ids = ", ".join("'%s'" % jwt_claims(t)["identityAccessTokenId"] for t in tokens.values())
        stored = {str(r[0]) for r in harness.sql(self.server.data_dir,
                                                  "SELECT id FROM identity_access_tokens WHERE id IN (%s)" % ids)}
        return {name for name, t in tokens.items() if jwt_claims(t)["identityAccessTokenId"] in stored}

    def test_ended_tokens_go_live_ones_stay(self):
        project = self.create_project()
        pid = project["id"]
        self.set_secret(pid, "K", "v")
        short = self.machine(pid, "viewer", ua={"accessTokenTTL": 60, "accessTokenMaxTTL": 60})
        long = self.machine(pid, "viewer", ua={"accessTokenTTL": 0, "accessTokenMaxTTL": 0})
        renewable = self.machine(pid, "viewer", ua={"accessTokenTTL": 5000, "accessTokenMaxTTL": 86400})
        tokens = {
            "short": short["token"],
            "short revoked": self.login_ok(short["clientId"], short["clientSecret"])["accessToken"],
            "long": long["token"],
            "long revoked": self.login_ok(long["clientId"], long["clientSecret"])["accessToken"],
            "renewed": renewable["token"],
        }
        for name in ("short revoked", "long revoked"):
            r = self.api("POST", REVOKE, body={"accessToken": tokens[name]}, token=None)
            self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(self.rows(tokens), set(tokens))

        # 3000 s on: the short ones ended 2940 s ago (kept: within the hour's margin).
        self.advance_clock(3000)
        time.sleep(2.5)  # a pass ran after the clock moved
        self.assertEqual(self.rows(tokens), set(tokens))
        self.advance_clock(1000)
        self.assertAlive(tokens["renewed"], pid)  # renewed at 4000 s: its TTL now runs to 9000 s

        # 8660 s from the start: the short ones ended over an hour ago, and so would the renewed one had it not
        # been renewed (5000 s + 3600 s); the long ones run to --max-token-ttl (30 days).
        self.advance_clock(4660)
        deadline = time.monotonic() + 15
        while self.rows(tokens) & {"short", "short revoked"} and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.rows(tokens), {"long", "long revoked", "renewed"})
        self.assertAlive(tokens["long"], pid)
        self.assertAlive(tokens["renewed"], pid)
        self.assertError(self.list_as(tokens["long revoked"], pid), 401, "Unauthorized", "revoked")
        self.assertError(self.list_as(tokens["short"], pid), 401, "Unauthorized")
        self.server.wait_for_stderr("deleted 2 access tokens that ended over an hour ago")
