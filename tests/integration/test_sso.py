"""Single sign-on with OpenID Connect (docs/users.md "Single sign-on"): the real server against the Entra ID
stand-in (tests/fakes/entra_oidc.py), driven by a client that follows the redirect chain as a browser does.

A login that passes every check provisions the user on first sign-in (a member, known by issuer and subject),
opens a browser session (the HttpOnly session cookie and a script-readable CSRF cookie) and redirects to the
return path; the server's sso_identity log line shows the identity that was verified. Every failed check is a
4xx (or a 503 for a provider that cannot be reached) naming the problem."""

import base64
import hashlib
import http.client
import json
import os
import shutil
import tempfile
import unittest
import urllib.parse

import harness
from harness import Server, ServerTestCase
from test_syncs import WithFakes

TENANT = "7f3c2a1e-9b4d-4c8e-a2f1-5d6e7f8a9b0c"
OTHER_TENANT = "0c9b8a7f-6e5d-4f1a-8e2c-b4d9e1a2c3f7"
CLIENT_ID = "5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
SECRET = "Qx8~fake.entra-client-secret_" + "k" * 12
CALLBACK = "/api/v1/sso/oidc/callback"
LOGIN = "/api/v1/sso/oidc/login"


def browse(url, cookies=None, max_hops=10):
    """GETs url and follows redirects as a browser does, up to and including Coffer's callback (where the
    browser would then load the dashboard); cookies: {port: "name=value"} sent to that port. Returns the hops
    as (url, status, headers, body); headers["_cookies"] lists every Set-Cookie of the hop."""
    hops = []
    for _ in range(max_hops):
        u = urllib.parse.urlsplit(url)
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        headers = {}
        if cookies and u.port in cookies:
            headers["Cookie"] = cookies[u.port]
        c.request("GET", u.path + ("?" + u.query if u.query else ""), headers=headers)
        r = c.getresponse()
        body = r.read()
        c.close()
        headers = dict(r.getheaders())
        headers["_cookies"] = [v for k, v in r.getheaders() if k.lower() == "set-cookie"]
        hops.append((url, r.status, headers, body))
        if r.status not in (301, 302, 303, 307) or u.path == CALLBACK:
            return hops
        url = urllib.parse.urljoin(url, r.getheader("Location"))
    raise AssertionError("more than %d redirects: %s" % (max_hops, [h[0] for h in hops]))


class SSOServer:
    """Starts the class's server (after WithFakes started the stand-in) with single sign-on at the stand-in, on
    a port chosen beforehand, since the redirect URL registered at the provider names it."""

    @classmethod
    def setUpClass(cls):
        cls.port = harness.free_port()
        cls.callback = "http://127.0.0.1:%d%s" % (cls.port, CALLBACK)
        cls.fake.call("POST", "/_fake/entra/apps", {"tenant": TENANT, "clientId": CLIENT_ID, "secret": SECRET,
                                                     "redirectUris": [cls.callback]})
        cls.fake.call("POST", "/_fake/entra/config", {"issuerMode": cls.ISSUER_MODE})
        secret_file = os.path.join(cls.fake.dir, "client-secret")
        with open(secret_file, "w") as f:
            f.write(SECRET + "\n")
        if cls.ISSUER_MODE == "entra":
            provider = ["--oidc-entra-tenant", TENANT, "--oidc-entra-authority", cls.fake.url,
                        "--oidc-graph-url", cls.fake.url]
        else:
            provider = ["--oidc-issuer", "%s/%s/v2.0" % (cls.fake.url, TENANT)]
        credential = cls.credential_args(secret_file)
        args = provider + ["--oidc-client-id", CLIENT_ID] + credential + [
            "--oidc-redirect-url", cls.callback] + list(cls.EXTRA_ARGS)
        cls.server = Server(args=args, addr="127.0.0.1:%d" % cls.port, env=getattr(cls, "EXTRA_ENV", None))
        try:
            cls.server.start()
        except Exception:
            cls.server.cleanup()
            raise


    @classmethod
    def credential_args(cls, secret_file):
        """The flags naming the application's credential (a client secret here)."""
        return ["--oidc-client-secret-file", secret_file]


class SSOCase(WithFakes, SSOServer, ServerTestCase):
    """A server with single sign-on at the stand-in; ISSUER_MODE "entra" (by tenant) or "self" (a generic
    issuer)."""

    FAKES = {"fake": "entra_oidc.py"}
    ISSUER_MODE = "entra"
    EXTRA_ARGS = ()

    def setUp(self):
        super().setUp()
        self.fake.call("POST", "/_fake/entra/config", {"faults": {}, "codeTtl": 600, "tokenOutage": 0,
                                                        "issuerMode": self.ISSUER_MODE})
        self.fake.call("POST", "/_fake/entra/apps", {"tenant": TENANT, "clientId": CLIENT_ID, "secret": SECRET,
                                                      "redirectUris": [self.callback]})

    def add_user(self, login=None, **extra):
        login = login or harness.unique("user") + "@contoso.example"
        user = {"tenant": TENANT, "login": login, "oid": harness.unique("oid"), "name": "Test " + login,
                **extra}
        self.fake.call("POST", "/_fake/entra/users", user)
        return user

    def faults(self, **faults):
        self.fake.call("POST", "/_fake/entra/config", {"faults": faults})

    def sign_in(self, user, ret=None):
        """The whole browser flow as user; returns the hops."""
        query = "?" + urllib.parse.urlencode({"return": ret}) if ret else ""
        return browse(self.server.url + LOGIN + query,
                      cookies={self.fake.port: "fake_entra_user=" + urllib.parse.quote(user["login"])})

    def up_to_callback(self, user):
        """Follows the flow until the browser is about to reach the callback: its URL."""
        r = self.api("GET", LOGIN, token=None)
        self.assertEqual(r.status, 302, r.body[:400])
        u = urllib.parse.urlsplit(r.headers["Location"])
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        c.request("GET", u.path + "?" + u.query, headers={"Cookie": "fake_entra_user=" + user["login"]})
        a = c.getresponse()
        a.read()
        c.close()
        self.assertEqual(a.status, 302)
        location = a.getheader("Location")
        self.assertTrue(location.startswith(self.callback), location)
        return location

    def finish(self, hops):
        url, status, headers, body = hops[-1]
        self.assertTrue(url.startswith(self.callback), [h[0] for h in hops])
        return harness.Response(status, json.loads(body) if body else None, headers, body.decode())

    def assertSSOError(self, hops, status, error, *words):
        r = self.finish(hops)
        self.assertError(r, status, error, *words)
        return r

    def assertSignedIn(self, hops, email, ret="/", server=None):
        """The callback hop signed email in: 302 to ret with the session and CSRF cookies, which work (the
        session reads /users/me; an unsafe request needs the CSRF token). Returns (user, cookie, csrf)."""
        server = server or self.server
        url, status, headers, body = hops[-1]
        self.assertEqual(status, 302, body[:400])
        self.assertEqual(headers["Location"], ret)
        jar = {}
        for c in headers["_cookies"]:
            name, _, rest = c.partition("=")
            jar[name] = (rest.split(";")[0], c)
        self.assertIn("coffer_session", jar, headers["_cookies"])
        self.assertIn("coffer_csrf", jar, headers["_cookies"])
        self.assertIn("HttpOnly", jar["coffer_session"][1])
        self.assertNotIn("HttpOnly", jar["coffer_csrf"][1])
        for name in ("coffer_session", "coffer_csrf"):
            self.assertIn("SameSite=Strict", jar[name][1])
        cookie = "coffer_session=" + jar["coffer_session"][0]
        csrf = jar["coffer_csrf"][0]
        me = server.api("GET", "/api/v1/users/me", token=None, headers={"Cookie": cookie})
        self.assertEqual(me.status, 200, me.body[:400])
        self.assertEqual(me.json["user"]["email"], email)
        body = {"name": "sso", "expiresIn": 60}
        r = server.api("POST", "/api/v1/users/me/tokens", body=body, token=None, headers={"Cookie": cookie})
        self.assertError(r, 403, None, "CSRF")
        r = server.api("POST", "/api/v1/users/me/tokens", body=body, token=None,
                       headers={"Cookie": cookie, "X-CSRF-Token": csrf})
        self.assertEqual(r.status, 200, r.body[:400])
        return me.json["user"], cookie, csrf

    def identity_lines(self, since=0):
        return [line for line in self.server.stderr_since(since).splitlines() if "sso_identity" in line]


class EntraSSO(SSOCase):
    """The flow against Entra ID by tenant, and every refusal."""

    def test_login_redirect_carries_pkce_state_and_nonce(self):
        self.assertIs(self.api("GET", "/api/status", token=None).json.get("sso"), True)
        r = self.api("GET", LOGIN, query={"return": "/projects/x"}, token=None)
        self.assertEqual(r.status, 302, r.body[:400])
        self.assertEqual(r.json["location"], r.headers["Location"])
        u = urllib.parse.urlsplit(r.headers["Location"])
        self.assertEqual((u.hostname, u.port), ("127.0.0.1", self.fake.port))
        self.assertEqual(u.path, "/%s/oauth2/v2.0/authorize" % TENANT)
        q = dict(urllib.parse.parse_qsl(u.query))
        self.assertEqual(q["response_type"], "code")
        self.assertEqual(q["client_id"], CLIENT_ID)
        self.assertEqual(q["redirect_uri"], self.callback)
        self.assertEqual(q["code_challenge_method"], "S256")
        self.assertEqual(set(q["scope"].split()), {"openid", "profile", "email"})
        for name in ("state", "nonce", "code_challenge"):
            self.assertRegex(q[name], r"^[A-Za-z0-9_-]{43}$", name)
        self.assertNotEqual(q["state"], q["nonce"])
        again = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(
            self.api("GET", LOGIN, token=None).headers["Location"]).query))
        for name in ("state", "nonce", "code_challenge"):
            self.assertNotEqual(q[name], again[name], name)

    def test_full_flow_yields_the_verified_identity(self):
        user = self.add_user(email="Alice.Jones@Contoso.example", groups=["g-admins", "g-devs"])
        mark = self.server.stderr_len()
        hops = self.sign_in(user, ret="/projects/abc?tab=secrets")
        self.assertEqual([h[1] for h in hops], [302, 302, 302], [h[0] for h in hops])
        me, cookie, csrf = self.assertSignedIn(hops, "alice.jones@contoso.example", "/projects/abc?tab=secrets")
        self.assertEqual(me["orgRole"], "member")
        r = self.finish(hops)
        lines = self.identity_lines(mark)
        self.assertEqual(len(lines), 1, lines)
        line = lines[0]
        self.assertIn('issuer="https://login.microsoftonline.com/%s/v2.0"' % TENANT, line)
        self.assertIn('tenant="%s"' % TENANT, line)
        self.assertIn('object="%s"' % user["oid"], line)
        self.assertIn('groups="g-admins,g-devs"', line)
        self.assertIn('return="/projects/abc?tab=secrets"', line)
        # the pairwise subject the provider computed for this application
        expected_sub = base64.urlsafe_b64encode(hashlib.sha256((user["oid"] + CLIENT_ID).encode()).digest())
        self.assertIn('subject="%s"' % expected_sub.rstrip(b"=").decode(), line)
        # the token request the provider saw: PKCE verifier and secret sent, as form fields
        token_requests = [e for e in self.fake.log() if e["path"].endswith("/oauth2/v2.0/token")]
        self.assertEqual(token_requests[-1]["status"], 200)
        form = token_requests[-1]["form"]
        self.assertEqual(form["grant_type"], "authorization_code")
        self.assertIn("redacted 43 chars", form["code_verifier"])
        # the code and the secret never reach the server's log or the answer
        code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(hops[-1][0]).query))["code"]
        log = self.server.stderr
        for secret in (code, SECRET):
            self.assertNotIn(secret, log)
            self.assertNotIn(secret, r.body)
        # the audit record names who signed in and why the login went no further
        events = self.ok("GET", "/api/v1/audit/events", query={"action": "sso.login"})["events"]
        mine = [e for e in events if e.get("actor", {}).get("name") == "alice.jones@contoso.example"
                or e.get("actorName") == "alice.jones@contoso.example"]
        self.assertTrue(mine, json.dumps(events)[:2000])
        self.assertNotIn(code, json.dumps(events))

    def test_provisioned_once_then_a_disabled_user_is_refused(self):
        user = self.add_user(email="gina@contoso.example")
        first, _, _ = self.assertSignedIn(self.sign_in(user), "gina@contoso.example")
        again, cookie, _ = self.assertSignedIn(self.sign_in(user), "gina@contoso.example")
        self.assertEqual(first["id"], again["id"])
        self.assertEqual(first["sso"]["subject"], again["sso"]["subject"])
        listed = [u for u in self.ok("GET", "/api/v1/users")["users"] if u["email"] == "gina@contoso.example"]
        self.assertEqual(len(listed), 1, listed)
        self.ok("PATCH", "/api/v1/users/" + first["id"], body={"status": "disabled"})
        # the open session dies at once, and signing in again is refused
        me = self.api("GET", "/api/v1/users/me", token=None, headers={"Cookie": cookie})
        self.assertEqual(me.status, 401, me.body[:400])
        self.assertSSOError(self.sign_in(user), 401, "Unauthorized", "disabled")

    def test_a_local_account_is_never_taken_over(self):
        self.ok("POST", "/api/v1/users", body={"email": "hal@contoso.example", "password": "a long local password"})
        user = self.add_user(email="hal@contoso.example")
        hops = self.sign_in(user)
        self.assertSSOError(hops, 400, None, "hal@contoso.example")
        self.assertFalse([c for c in hops[-1][2]["_cookies"] if c.startswith("coffer_session=")])

    def test_a_scim_provisioned_user_is_linked_by_email(self):
        token = self.ok("POST", "/api/v1/scim/tokens", body={"name": "entra"})["token"]
        r = self.api("POST", "/scim/v2/Users", token=token,
                     body={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                           "userName": "ivy@contoso.example", "externalId": "ivy-ext", "active": True})
        self.assertEqual(r.status, 201, r.body)
        user = self.add_user(email="ivy@contoso.example")
        me, _, _ = self.assertSignedIn(self.sign_in(user), "ivy@contoso.example")
        self.assertEqual(me["id"], r.json["id"])
        self.assertTrue(me["sso"]["subject"])
        # deactivated by SCIM: the next sign-in is refused
        r = self.api("PATCH", "/scim/v2/Users/" + me["id"], token=token, body={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})
        self.assertEqual(r.status, 200, r.body)
        self.assertSSOError(self.sign_in(user), 401, "Unauthorized", "disabled")

    def test_preferred_username_when_no_email_claim(self):
        user = self.add_user(login="bob@contoso.example")
        self.assertSignedIn(self.sign_in(user), "bob@contoso.example")

    def test_group_overage_reads_the_groups_from_graph(self):
        groups = ["g%d" % i for i in range(250)]
        user = self.add_user(groups=groups)
        self.fake.call("DELETE", "/_fake/log")
        mark = self.server.stderr_len()
        self.assertSignedIn(self.sign_in(user), user["login"])
        line = self.identity_lines(mark)[0]
        self.assertIn("groups_overage=1", line)
        self.assertIn('groups="%s"' % ",".join(groups), line)
        log = self.fake.call("GET", "/_fake/log")[1]
        token = [e for e in log if e["path"].endswith("/oauth2/v2.0/token")
                 and e["form"].get("grant_type") == "client_credentials"]
        # the application's Graph token, unless an earlier sign-in's is still cached
        self.assertLessEqual(len(token), 1, log)
        for t in token:
            self.assertEqual(t["form"]["scope"], "https://graph.microsoft.com/.default")
        graph = [e for e in log if e["path"] == "/v1.0/users/%s/getMemberGroups" % user["oid"]]
        self.assertEqual([e["status"] for e in graph], [200], log)

    def test_state_missing_unknown_and_reused(self):
        r = self.api("GET", CALLBACK, query={"code": "abc"}, token=None)
        self.assertError(r, 422, "ValidationFailure", "state")
        r = self.api("GET", CALLBACK, query={"code": "abc", "state": "A" * 43}, token=None)
        self.assertError(r, 401, "Unauthorized", "unknown or already used sign-in state")
        user = self.add_user(email="carol@contoso.example")
        callback = self.up_to_callback(user)
        first = browse(callback)
        self.assertSignedIn(first, "carol@contoso.example")
        self.assertSSOError(browse(callback), 401, "Unauthorized", "unknown or already used sign-in state")

    def test_state_expired(self):
        user = self.add_user()
        callback = self.up_to_callback(user)
        self.advance_clock(11 * 60)
        self.assertSSOError(browse(callback), 401, "Unauthorized", "sign-in expired at", "10 minutes")

    def test_nonce_mismatch_and_missing(self):
        user = self.add_user()
        self.faults(nonce="x" * 43)
        self.assertSSOError(self.sign_in(user), 401, "Unauthorized", "nonce does not match")
        self.faults(noNonce=True)
        self.assertSSOError(self.sign_in(user), 401, "Unauthorized", "has no nonce")

    def test_wrong_audience(self):
        self.faults(wrongAudience=True)
        self.assertSSOError(self.sign_in(self.add_user()), 401, "Unauthorized", "ID token was refused",
                            "audience mismatch")

    def test_expired_id_token(self):
        self.faults(expired=True)
        self.assertSSOError(self.sign_in(self.add_user()), 401, "Unauthorized", "ID token was refused",
                            "expired at")

    def test_wrong_signing_key(self):
        self.faults(wrongKey=True)
        self.assertSSOError(self.sign_in(self.add_user()), 401, "Unauthorized", "ID token was refused",
                            "bad signature")

    def test_token_from_another_tenant(self):
        self.faults(tid=OTHER_TENANT)
        self.assertSSOError(self.sign_in(self.add_user()), 401, "Unauthorized", "issuer")

    def test_aadsts_errors_from_the_token_endpoint(self):
        user = self.add_user()
        self.fake.call("POST", "/_fake/entra/apps", {"tenant": TENANT, "clientId": CLIENT_ID,
                                                      "secret": "another-secret", "redirectUris": [self.callback]})
        r = self.assertSSOError(self.sign_in(user), 401, "Unauthorized", "refused the code", "invalid_client",
                                "AADSTS7000215")
        self.assertNotIn("Trace ID", r.json["message"])  # only the first line of the description
        self.setUp()
        self.fake.call("POST", "/_fake/entra/config", {"codeTtl": -1})
        self.assertSSOError(self.sign_in(user), 401, "Unauthorized", "invalid_grant", "AADSTS70008")
        self.fake.call("POST", "/_fake/entra/config", {"codeTtl": 600})
        self.faults(pkceMismatch=True)
        self.assertSSOError(self.sign_in(user), 401, "Unauthorized", "invalid_grant", "AADSTS501481")

    def test_token_endpoint_outage(self):
        self.fake.call("POST", "/_fake/entra/config", {"tokenOutage": 503})
        self.assertSSOError(self.sign_in(self.add_user()), 503, "ServiceUnavailable",
                            "token endpoint answered HTTP 503")

    def test_provider_refuses_the_sign_in(self):
        user = self.add_user(deny=True)
        self.assertSSOError(self.sign_in(user), 401, "Unauthorized", "refused the sign-in", "access_denied",
                            "AADSTS50105")

    def test_unregistered_redirect_uri_stops_at_the_provider(self):
        self.fake.call("POST", "/_fake/entra/apps", {"tenant": TENANT, "clientId": CLIENT_ID, "secret": SECRET,
                                                      "redirectUris": ["https://elsewhere.example/cb"]})
        hops = self.sign_in(self.add_user())
        self.assertEqual([h[1] for h in hops], [302, 400])
        err = json.loads(hops[-1][3])
        self.assertIn("AADSTS50011", err["error_description"])

    def test_one_address_cannot_fill_the_pending_logins(self):
        """100 pending logins per source address (here 127.0.0.2); other addresses keep signing in."""
        def begin():
            c = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30,
                                           source_address=("127.0.0.2", 0))
            c.request("GET", LOGIN)
            r = c.getresponse()
            body = r.read()
            c.close()
            return r.status, body

        statuses = [begin()[0] for _ in range(100)]
        self.assertEqual(set(statuses), {302})
        status, body = begin()
        self.assertEqual(status, 429, body)
        self.assertIn("begun from 127.0.0.2 are pending", json.loads(body)["message"])
        self.assertEqual(self.api("GET", LOGIN, token=None).status, 302)

    def test_open_redirects_refused(self):
        for ret in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "relative", "/a b",
                    "/" + "a" * 600):
            r = self.api("GET", LOGIN, query={"return": ret}, token=None)
            self.assertError(r, 422, "ValidationFailure", "return must be a path of this server", msg=ret)

    def test_not_a_browser_parameter_soup(self):
        """An error and a code both absent: the code is asked for by name."""
        user = self.add_user()
        callback = self.up_to_callback(user)
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))
        r = self.api("GET", CALLBACK, query={"state": q["state"]}, token=None)
        self.assertError(r, 422, "ValidationFailure", "code")


class FakeEntraShapes(WithFakes, unittest.TestCase):
    """The stand-in itself answers as Entra ID does where Coffer cannot drive it: a code redeemed twice, a
    redirect_uri differing from the authorize request's, the error body's fields."""

    FAKES = {"fake": "entra_oidc.py"}

    def post_form(self, path, form):
        c = http.client.HTTPConnection("127.0.0.1", self.fake.port, timeout=10)
        c.request("POST", path, body=urllib.parse.urlencode(form),
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        data = json.loads(r.read())
        c.close()
        return r.status, data

    def test_reused_code_and_redirect_mismatch(self):
        cb = "http://127.0.0.1:1/cb"
        self.fake.call("POST", "/_fake/entra/apps", {"tenant": TENANT, "clientId": "c1", "secret": "s1",
                                                      "redirectUris": [cb]})
        self.fake.call("POST", "/_fake/entra/users", {"tenant": TENANT, "login": "u@x.example", "oid": "o1"})
        verifier = "v" * 43
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()

        def code():
            q = urllib.parse.urlencode({"client_id": "c1", "response_type": "code", "redirect_uri": cb,
                                        "scope": "openid", "state": "s", "nonce": "n", "code_challenge": challenge,
                                        "code_challenge_method": "S256", "login_hint": "u@x.example"})
            c = http.client.HTTPConnection("127.0.0.1", self.fake.port, timeout=10)
            c.request("GET", "/%s/oauth2/v2.0/authorize?%s" % (TENANT, q))
            r = c.getresponse()
            r.read()
            c.close()
            return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.getheader("Location")).query))["code"]

        form = {"grant_type": "authorization_code", "client_id": "c1", "client_secret": "s1", "redirect_uri": cb,
                "code_verifier": verifier}
        c1 = code()
        status, body = self.post_form("/%s/oauth2/v2.0/token" % TENANT, dict(form, code=c1))
        self.assertEqual(status, 200, body)
        self.assertEqual(body["token_type"], "Bearer")
        status, body = self.post_form("/%s/oauth2/v2.0/token" % TENANT, dict(form, code=c1))
        self.assertEqual(status, 400)
        self.assertEqual(body["error"], "invalid_grant")
        self.assertEqual(body["error_codes"], [54005])
        self.assertTrue(body["error_description"].startswith("AADSTS54005: "))
        for field in ("timestamp", "trace_id", "correlation_id"):
            self.assertIn(field, body)
        status, body = self.post_form("/%s/oauth2/v2.0/token" % TENANT,
                                      dict(form, code=code(), redirect_uri="http://127.0.0.1:2/other"))
        self.assertEqual((status, body["error_codes"]), (400, [50011]))


class GenericIssuerSSO(SSOCase):
    """Any OpenID Connect provider by its issuer URL and discovery document (the stand-in naming itself as
    issuer, as Keycloak, GitLab or Google do), with an allow list of e-mail domains."""

    ISSUER_MODE = "self"
    EXTRA_ARGS = ("--oidc-allowed-domains", "contoso.example,fabrikam.example")

    def test_full_flow_by_issuer(self):
        user = self.add_user(email="dana@fabrikam.example", groups=["ops"])
        mark = self.server.stderr_len()
        self.assertSignedIn(self.sign_in(user), "dana@fabrikam.example")
        line = self.identity_lines(mark)[0]
        self.assertIn('issuer="%s/%s/v2.0"' % (self.fake.url, TENANT), line)
        self.assertIn('object=""', line)  # Entra's claims are read for Entra only
        self.assertIn('groups="ops"', line)

    def test_domain_outside_the_allow_list(self):
        user = self.add_user(email="eve@evil.example")
        self.assertSSOError(self.sign_in(user), 403, "PermissionDenied", "eve@evil.example",
                            "--oidc-allowed-domains")


@unittest.skipUnless(harness.PG_DIR, "PostgreSQL only: two nodes share one PostgreSQL database (make test runs "
                                    "this suite in its PostgreSQL pass)")
class TwoNodes(WithFakes, unittest.TestCase):
    """A login begun on one node is finished on another sharing the store, once."""

    FAKES = {"fake": "entra_oidc.py"}

    def test_begin_on_one_node_finish_on_the_other(self):
        import base64 as b64
        port_b = harness.free_port()
        callback = "http://127.0.0.1:%d%s" % (port_b, CALLBACK)
        self.fake.call("POST", "/_fake/entra/apps", {"tenant": TENANT, "clientId": CLIENT_ID, "secret": SECRET,
                                                      "redirectUris": [callback]})
        self.fake.call("POST", "/_fake/entra/users", {"tenant": TENANT, "login": "frank@contoso.example",
                                                       "oid": "oid-frank"})
        env = {"COFFER_DB": harness.new_pg_database(), "COFFER_ROOT_KEY": b64.b64encode(os.urandom(32)).decode(),
               "COFFER_OIDC_CLIENT_SECRET": SECRET}
        args = ["--oidc-entra-tenant", TENANT, "--oidc-entra-authority", self.fake.url, "--oidc-client-id",
                CLIENT_ID, "--oidc-redirect-url", callback]
        a = Server(env=env, args=args)
        b = Server(env=env, args=args, addr="127.0.0.1:%d" % port_b)
        try:
            a.start()
            b.start()
            hops = browse(a.url + LOGIN, cookies={self.fake.port: "fake_entra_user=frank@contoso.example"})
            self.assertEqual([urllib.parse.urlsplit(h[0]).port for h in hops], [a.port, self.fake.port, port_b])
            self.assertEqual(hops[-1][1], 302, hops[-1][3])
            session = [c.split(";")[0] for c in hops[-1][2]["_cookies"] if c.startswith("coffer_session=")]
            for node in (a, b):  # the session opened on B is honoured by A, which shares the store
                me = node.api("GET", "/api/v1/users/me", token=None, headers={"Cookie": session[0]})
                self.assertEqual(me.status, 200, me.body[:400])
                self.assertEqual(me.json["user"]["email"], "frank@contoso.example")
            replay = browse(hops[-1][0].replace(":%d/" % port_b, ":%d/" % a.port))
            self.assertEqual(replay[-1][1], 401)
            self.assertIn("unknown or already used", json.loads(replay[-1][3])["message"])
        finally:
            for node in (a, b):
                node.stop()
                report = node.sanitizer_report()
                node.cleanup()
                self.assertIsNone(report, report)


class NoSSO(ServerTestCase):
    def test_not_configured(self):
        r = self.api("GET", LOGIN, token=None)
        self.assertError(r, 404, "NotFound", "single sign-on is not configured")
        r = self.api("GET", CALLBACK, query={"state": "x", "code": "y"}, token=None)
        self.assertError(r, 404, "NotFound", "single sign-on is not configured")


class SSOConfiguration(unittest.TestCase):
    def test_bad_configurations_refuse_to_start(self):
        tmp = tempfile.mkdtemp(prefix="coffer-sso-")
        self.addCleanup(shutil.rmtree, tmp, True)
        secret_file = os.path.join(tmp, "secret")
        with open(secret_file, "w") as f:
            f.write("s3cret-value\n")
        cb = ["--oidc-redirect-url", "http://127.0.0.1:9/api/v1/sso/oidc/callback"]
        cases = [
            (["--oidc-client-id", "c"] + cb, "exactly one of --oidc-issuer"),
            (["--oidc-issuer", "https://idp.example", "--oidc-entra-tenant", TENANT, "--oidc-client-id", "c"] + cb,
             "exactly one of --oidc-issuer"),
            (["--oidc-entra-tenant", TENANT] + cb, "--oidc-client-id"),
            (["--oidc-entra-tenant", TENANT, "--oidc-client-id", "c"] + cb, "client secret"),
            (["--oidc-entra-tenant", "bad tenant/", "--oidc-client-id", "c",
              "--oidc-client-secret-file", "/nonexistent/secret"] + cb, "--oidc-client-secret-file"),
            (["--oidc-issuer", "http://idp.example", "--oidc-client-id", "c",
              "--oidc-client-secret-file", secret_file] + cb, "--oidc-issuer"),
            (["--oidc-entra-tenant", TENANT, "--oidc-client-id", "c", "--oidc-client-secret-file", secret_file,
              "--oidc-redirect-url", "http://coffer.example/cb"], "--oidc-redirect-url"),
            (["--oidc-entra-tenant", "bad tenant/", "--oidc-client-id", "c", "--oidc-client-secret-file",
              secret_file] + cb, "--oidc-entra-tenant"),
        ]
        harness.assert_start_refused(self, cases)

    def test_metadata_address_refused_by_the_outbound_policy(self):
        s = Server(args=["--oidc-issuer", "https://169.254.169.254/tenant/v2.0", "--oidc-client-id", CLIENT_ID,
                         "--oidc-redirect-url", "http://127.0.0.1:9%s" % CALLBACK],
                   env={"COFFER_OIDC_CLIENT_SECRET": SECRET})
        try:
            s.start()
            r = s.api("GET", LOGIN, token=None)
            self.assertEqual(r.status, 503, r.body)
            for words in ("identity provider could not be reached", "169.254.169.254", "--outbound-allow"):
                self.assertIn(words, r.json["message"])
        finally:
            s.stop()
            s.cleanup()

    def test_unreachable_provider(self):
        port = harness.free_port()
        s = Server(args=["--oidc-entra-tenant", TENANT, "--oidc-entra-authority", "http://127.0.0.1:%d" % port,
                         "--oidc-client-id", CLIENT_ID, "--oidc-redirect-url",
                         "http://127.0.0.1:9%s" % CALLBACK], env={"COFFER_OIDC_CLIENT_SECRET": SECRET})
        try:
            s.start()
            r = s.api("GET", LOGIN, token=None)
            self.assertEqual(r.status, 503, r.body)
            self.assertIn("identity provider could not be reached", r.json["message"])
            self.assertNotIn(SECRET, s.stderr)
        finally:
            s.stop()
            s.cleanup()


if __name__ == "__main__":
    unittest.main()
