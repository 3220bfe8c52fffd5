"""`coffer login --sso` (docs/users.md "Signing in from the CLI"): the real CLI binary listens on a loopback port
and waits while a Python "browser" follows the redirects from the printed URL through the server, the Entra ID
stand-in (tests/fakes/entra_oidc.py) and back to the CLI's port; the CLI redeems the one-time code with its
verifier for a personal access token, which it stores and later commands use.

Also: the code is useless without the verifier (another local process that saw it gets 401), works once, and
expires; the server refuses bad ports and challenges; a disabled user's code gives no token; the CLI refuses
flags that do not go together and gives up after --timeout."""

import base64
import datetime
import hashlib
import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse

import harness
from test_sso import SSOCase, TENANT

CLI_LOGIN = "/api/v1/sso/oidc/cli/login"
CLI_TOKEN = "/api/v1/sso/oidc/cli/token"


def get(url, cookie=None):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request("GET", u.path + ("?" + u.query if u.query else ""), headers={"Cookie": cookie} if cookie else {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, dict(r.getheaders()), body


class CLISignIn(SSOCase):

    def setUp(self):
        super().setUp()
        self.config = tempfile.mkdtemp(prefix="coffer-sso-cli-")
        self.addCleanup(shutil.rmtree, self.config, True)

    def start_cli(self, *args):
        env = harness.base_env({"XDG_CONFIG_HOME": self.config, "COFFER_API_URL": self.server.url})
        p = subprocess.Popen([harness.COFFER_BIN, "login", "--sso", "--no-browser"] + list(args),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        url = None
        lines = []
        while url is None:
            line = p.stderr.readline().decode()
            if not line:
                self.fail("the CLI printed no URL: %r" % lines)
            lines.append(line)
            m = re.match(r"^  (http://\S+)$", line.rstrip("\n"))
            if m:
                url = m.group(1)
        return p, url

    def browse_to_loopback(self, url, user, visit_loopback=True):
        """Follows the redirects as a browser signed in at the provider as user would: returns the hops (url,
        status, headers, body) up to the CLI's loopback page (not visited, status None, unless visit_loopback)."""
        hops = []
        cookie = "fake_entra_user=" + urllib.parse.quote(user["login"])
        for _ in range(10):
            u = urllib.parse.urlsplit(url)
            if u.path == "/callback" and not visit_loopback:
                hops.append((url, None, {}, b""))
                return hops
            status, headers, body = get(url, cookie if u.port == self.fake.port else None)
            hops.append((url, status, headers, body))
            if status not in (301, 302, 303):
                return hops
            url = urllib.parse.urljoin(url, headers["Location"])
        self.fail("too many redirects: %s" % [h[0] for h in hops])

    def finish_cli(self, p):
        out, err = p.communicate(timeout=60)
        return p.returncode, out.decode(), err.decode()

    def test_sign_in_stores_a_personal_access_token(self):
        user = self.add_user(email=harness.unique("cli") + "@contoso.example")
        p, url = self.start_cli("--expires-in", "7d", "--token-name", "laptop")
        u = urllib.parse.urlsplit(url)
        self.assertEqual(u.path, CLI_LOGIN)
        q = dict(urllib.parse.parse_qsl(u.query))
        self.assertRegex(q["challenge"], r"^[A-Za-z0-9_-]{43}$")
        port = int(q["port"])
        hops = self.browse_to_loopback(url, user)
        loopback = hops[-1]
        self.assertTrue(loopback[0].startswith("http://127.0.0.1:%d/callback?code=" % port), [h[0] for h in hops])
        self.assertEqual(loopback[1], 200)
        self.assertIn(b"Signed in to Coffer", loopback[3])
        # the server's callback set no browser session: the CLI gets a token, the browser nothing
        callback = [h for h in hops if "/api/v1/sso/oidc/callback" in h[0]][0]
        self.assertEqual(callback[1], 302)
        self.assertNotIn("Set-Cookie", callback[2])
        rc, out, err = self.finish_cli(p)
        self.assertEqual(rc, 0, err)
        token = re.search(r"coffer_pat_\S+", out).group(0)
        # stored as `coffer login --user` stores its token, and used by the next command
        with open(os.path.join(self.config, "coffer", "credentials.json")) as f:
            self.assertIn(token, f.read())
        env = {"XDG_CONFIG_HOME": self.config, "COFFER_API_URL": self.server.url}
        rc, me, err = harness.run(["users", "get", "me", "--output", "json"], env=harness.base_env(env))
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(me)["user"]["email"], user["email"])
        tokens = self.api("GET", "/api/v1/users/me/tokens", token=token).json["personalAccessTokens"]
        mine = [t for t in tokens if t["name"] == "laptop"]
        self.assertEqual(len(mine), 1, tokens)
        # the code in the browser's history is spent
        code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loopback[0]).query))["code"]
        r = self.api("POST", CLI_TOKEN, body={"code": code, "codeVerifier": "x" * 43}, token=None)
        self.assertError(r, 401, None, "unknown or already used sign-in code")
        events = self.ok("GET", "/api/v1/audit/events", query={"action": "sso.cli.token"})["events"]
        self.assertTrue([e for e in events if user["email"] in json.dumps(e)], events)
        self.assertNotIn(token, self.server.stderr)
        self.assertNotIn(code, self.server.stderr)

    def test_a_code_without_the_verifier_is_useless(self):
        """Another local process that sees the code on the loopback port cannot redeem it."""
        user = self.add_user()
        verifier = "v" * 43
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        port = harness.free_port()
        r = self.api("GET", CLI_LOGIN, query={"port": str(port), "challenge": challenge}, token=None)
        self.assertEqual(r.status, 302, r.body[:300])
        hops = self.browse_to_loopback(r.headers["Location"], user, visit_loopback=False)
        self.assertTrue(hops[-1][0].startswith("http://127.0.0.1:%d/callback?code=" % port), hops[-1][0])
        code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(hops[-1][0]).query))["code"]
        r = self.api("POST", CLI_TOKEN, body={"code": code, "codeVerifier": "w" * 43}, token=None)
        self.assertError(r, 401, None, "codeVerifier does not match")
        # taken once, whatever the outcome: the right verifier now comes too late
        r = self.api("POST", CLI_TOKEN, body={"code": code, "codeVerifier": verifier}, token=None)
        self.assertError(r, 401, None, "unknown or already used")

    def code_for(self, user, verifier="v" * 43):
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        r = self.api("GET", CLI_LOGIN, query={"port": str(harness.free_port()), "challenge": challenge},
                     token=None)
        self.assertEqual(r.status, 302, r.body[:300])
        hops = self.browse_to_loopback(r.headers["Location"], user, visit_loopback=False)
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(hops[-1][0]).query))["code"], verifier

    def test_redeem_answers_and_refusals(self):
        user = self.add_user()
        code, verifier = self.code_for(user)
        r = self.api("POST", CLI_TOKEN, body={"code": code, "codeVerifier": verifier, "expiresIn": "400d"},
                     token=None)
        self.assertError(r, 422, None, "expiresIn")
        code, verifier = self.code_for(user)
        r = self.api("POST", CLI_TOKEN, body={"code": code, "codeVerifier": verifier}, token=None)
        self.assertEqual(r.status, 200, r.body[:400])
        self.assertTrue(r.json["token"].startswith("coffer_pat_"))
        self.assertEqual(r.json["personalAccessToken"]["name"], "coffer login --sso")
        pat = r.json["personalAccessToken"]
        left = (datetime.datetime.fromisoformat(pat["expiresAt"].replace("Z", "+00:00")) -
                datetime.datetime.fromisoformat(pat["createdAt"].replace("Z", "+00:00"))).total_seconds()
        self.assertAlmostEqual(left, 30 * 86400, delta=5)
        for body, words in (({"codeVerifier": verifier}, "code"), ({"code": code}, "codeVerifier")):
            self.assertError(self.api("POST", CLI_TOKEN, body=body, token=None), 422, None, words)
        self.assertError(self.api("POST", CLI_TOKEN, body={"code": 5, "codeVerifier": "x"}, token=None), 400,
                         None, "code")
        # a user disabled between the browser and the CLI gets no token
        code, verifier = self.code_for(user)
        me = [u for u in self.ok("GET", "/api/v1/users")["users"] if u["email"] == user["login"]][0]
        self.ok("PATCH", "/api/v1/users/" + me["id"], body={"status": "disabled"})
        r = self.api("POST", CLI_TOKEN, body={"code": code, "codeVerifier": verifier}, token=None)
        self.assertError(r, 401, None, "disabled")

    def test_code_expires(self):
        user = self.add_user()
        code, verifier = self.code_for(user)
        self.advance_clock(3 * 60)
        r = self.api("POST", CLI_TOKEN, body={"code": code, "codeVerifier": verifier}, token=None)
        self.assertError(r, 401, None, "expired at")

    def test_bad_ports_and_challenges(self):
        good = "c" * 43
        for query, words in (({"challenge": good}, "port"), ({"port": "80", "challenge": good}, "port"),
                             ({"port": "70000", "challenge": good}, "port"),
                             ({"port": "8080x", "challenge": good}, "port"),
                             ({"port": "8080"}, "challenge"), ({"port": "8080", "challenge": "short"}, "challenge"),
                             ({"port": "8080", "challenge": "c" * 42 + "="}, "challenge")):
            self.assertError(self.api("GET", CLI_LOGIN, query=query, token=None), 422, None, words)
        # a browser login cannot be turned into a CLI one through its return path
        r = self.api("GET", "/api/v1/sso/oidc/login", query={"return": "cli:8080:" + good}, token=None)
        self.assertError(r, 422, None, "return")

    def test_cli_refusals_and_timeout(self):
        env = harness.base_env({"XDG_CONFIG_HOME": self.config, "COFFER_API_URL": self.server.url})
        for args, words in ((["--sso", "--user", "a@example.com"], "--sso and --user"),
                            (["--no-browser"], "go with --sso"), (["--sso", "--timeout", "soon"], "--timeout")):
            rc, out, err = harness.run(["login"] + args, env=env)
            self.assertEqual(rc, 2, err)
            self.assertIn(words, err)
        rc, out, err = harness.run(["login", "--sso", "--no-browser", "--timeout", "1s"], env=env)
        self.assertEqual(rc, 1, err)
        self.assertIn("no sign-in came back", err)
        self.assertFalse(os.path.exists(os.path.join(self.config, "coffer", "credentials.json")))
