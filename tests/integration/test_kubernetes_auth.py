"""Kubernetes auth (docs/api.md, "Kubernetes auth").

A small http.server on 127.0.0.1 stands in for the cluster's TokenReview API: it checks the reviewer bearer
token and answers per reviewed token (authenticated or not, username, audiences). Checked:

- attach / get / update of identityKubernetesAuth: the reviewer JWT is never returned, only
  hasTokenReviewerJwt; kubernetesHost is required and checked;
- login over the API, with the TokenReview request the mock received (kind, apiVersion, spec.token,
  spec.audiences, the reviewer bearer), and the access token reads a secret;
- without a reviewer JWT the login token is its own bearer;
- `coffer login --method=kubernetes` with --service-account-token-path and with
  INFISICAL_KUBERNETES_SERVICE_ACCOUNT_TOKEN_PATH;
- each refusal is 401 naming its cause: not authenticated (with the cluster's error), namespace, service
  account, audience; glob entries; a reviewer the cluster refuses; plain http to a non-loopback host; 404
  without Kubernetes auth; no token in the server log;
- the reviewer JWT is sealed at rest (absent from the database and its WAL), and still works after `coffer
  operator rotate-root-key`;
- the CLI: `identities kubernetes-auth attach|update|get` (reviewer JWT from a file, never echoed; usage errors
  name the option) and `identities jwt-auth attach --jwks-url ... --bound-claims ... | update`;
- failed Kubernetes logins are throttled (429 with Retry-After), a good token included while locked out.
"""

import http.server
import json
import os
import tempfile
import threading
import unittest
import uuid

import harness
from test_identities import IdentityHelpers

LOGIN = "/api/v1/auth/kubernetes-auth/login"
NOT_FOUND = "did you configure Kubernetes auth?"
REVIEWER = "reviewer-" + uuid.uuid4().hex


def k8s_path(identity_id):
    return "/api/v1/auth/kubernetes-auth/identities/" + identity_id


class MockCluster:
    """tokens maps a service account token to (username, audiences) or to an error string; requests keeps
    every (authorization, body) received."""

    def __init__(self):
        self.tokens = {}
        self.requests = []
        self.lock = threading.Lock()
        mock = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(n) or b"{}")
                auth = self.headers.get("Authorization", "")
                with mock.lock:
                    mock.requests.append((self.path, auth, body))
                    entry = mock.tokens.get(body.get("spec", {}).get("token"))
                    allowed_bearers = {"Bearer " + REVIEWER} | {"Bearer " + t for t in mock.tokens}
                if self.path != "/apis/authentication.k8s.io/v1/tokenreviews" or auth not in allowed_bearers:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if entry is None:
                    status = {"authenticated": False, "error": "token lookup failed"}
                elif isinstance(entry, str):
                    status = {"authenticated": False, "error": entry}
                else:
                    status = {"authenticated": True, "user": {"username": entry[0]}, "audiences": entry[1]}
                out = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                  "status": status}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def host(self):
        return "http://127.0.0.1:%d" % self.httpd.server_address[1]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class KubernetesAuthTestCase(IdentityHelpers, harness.ServerTestCase):
    server_env = {"COFFER_LOGIN_MAX_FAILURES": "1000"}

    @classmethod
    def setUpClass(cls):
        cls.mock = MockCluster()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.mock.close()

    def attach(self, identity_id, **settings):
        body = {"kubernetesHost": self.mock.host(), "tokenReviewerJwt": REVIEWER,
                "allowedNamespaces": "prod, team-*", "allowedNames": "app, worker-*", "allowedAudience": "coffer"}
        body.update(settings)
        return self.ok("POST", k8s_path(identity_id), body=body)["identityKubernetesAuth"]

    def login(self, identity_id, token):
        return self.api("POST", LOGIN, body={"identityId": identity_id, "jwt": token}, token=None)

    def sa_token(self, username="system:serviceaccount:prod:app", audiences=("coffer",)):
        token = "sa-" + uuid.uuid4().hex
        with self.mock.lock:
            self.mock.tokens[token] = username[1:] if username.startswith("!") else (username, list(audiences))
        return token


class KubernetesAuthConfig(KubernetesAuthTestCase):

    def test_attach_get_update(self):
        ident = self.create_identity()
        cfg = self.attach(ident["id"], accessTokenTTL=600)
        self.assertEqual(cfg["identityId"], ident["id"])
        self.assertEqual(cfg["kubernetesHost"], self.mock.host())
        self.assertTrue(cfg["hasTokenReviewerJwt"])
        self.assertNotIn("tokenReviewerJwt", cfg)
        self.assertNotIn(REVIEWER, json.dumps(cfg))
        self.assertEqual((cfg["allowedNamespaces"], cfg["allowedNames"], cfg["allowedAudience"]),
                         ("prod, team-*", "app, worker-*", "coffer"))
        self.assertEqual(cfg["accessTokenTTL"], 600)
        got = self.ok("GET", k8s_path(ident["id"]))["identityKubernetesAuth"]
        self.assertEqual(got, cfg)
        self.assertEqual(self.ok("GET", "/api/v1/identities/" + ident["id"])["identity"]["authMethods"],
                         ["kubernetes-auth"])
        upd = self.ok("PATCH", k8s_path(ident["id"]), body={"tokenReviewerJwt": "", "allowedNames": ""})
        upd = upd["identityKubernetesAuth"]
        self.assertFalse(upd["hasTokenReviewerJwt"])
        self.assertEqual(upd["allowedNames"], "")
        self.assertEqual(upd["allowedNamespaces"], "prod, team-*")
        self.assertError(self.api("POST", k8s_path(ident["id"]), body={"kubernetesHost": "https://k8s"}),
                         400, "BadRequest", "already attached")

    def test_validation(self):
        ident = self.create_identity()
        for body in ({}, {"kubernetesHost": "https://k8s.example/?x=<y>"}):
            with self.subTest(body=body):
                self.assertError(self.api("POST", k8s_path(ident["id"]), body=body), 422, "ValidationFailure",
                                 "kubernetesHost")
        self.assertError(self.api("GET", k8s_path(ident["id"])), 404, "NotFound", NOT_FOUND)
        self.assertError(self.api("PATCH", k8s_path(ident["id"]), body={}), 404, "NotFound", NOT_FOUND)
        self.assertError(self.login(ident["id"], "x"), 404, None, NOT_FOUND)


class KubernetesLogin(KubernetesAuthTestCase):

    def setUp(self):
        super().setUp()
        self.project = self.create_project()
        self.set_secret(self.project["id"], "DB_PASSWORD", "hunter2")
        self.ident = self.create_identity()
        self.add_member(self.project["id"], self.ident["id"], "viewer")
        self.cfg = self.attach(self.ident["id"], accessTokenTTL=600)

    def test_login_and_review_request(self):
        token = self.sa_token()
        r = self.login(self.ident["id"], token)
        self.assertEqual(r.status, 200, r.body[:500])
        self.assertEqual(r.json["expiresIn"], 600)
        got = self.get_as(r.json["accessToken"], self.project["id"], "DB_PASSWORD")
        self.assertEqual(got.json["secret"]["secretValue"], "hunter2")
        with self.mock.lock:
            path, auth, body = self.mock.requests[-1]
        self.assertEqual(auth, "Bearer " + REVIEWER)
        self.assertEqual(body, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                "spec": {"token": token, "audiences": ["coffer"]}})
        # Globs in both lists.
        r = self.login(self.ident["id"], self.sa_token("system:serviceaccount:team-a:worker-7"))
        self.assertEqual(r.status, 200, r.body[:500])

    def test_removing_kubernetes_auth_ends_its_tokens(self):
        r = self.login(self.ident["id"], self.sa_token())
        self.assertEqual(r.status, 200, r.body[:500])
        token = r.json["accessToken"]
        self.assertEqual(self.get_as(token, self.project["id"], "DB_PASSWORD").status, 200)
        removed = self.ok("DELETE", k8s_path(self.ident["id"]))["identityKubernetesAuth"]
        self.assertEqual(removed["identityId"], self.ident["id"])
        self.assertNotIn(REVIEWER, json.dumps(removed))
        self.assertError(self.get_as(token, self.project["id"], "DB_PASSWORD"), 401, "Unauthorized", "revoked")
        self.assertError(self.api("POST", "/api/v1/auth/token/renew", body={"accessToken": token}, token=None),
                         401, "Unauthorized")
        self.assertError(self.login(self.ident["id"], self.sa_token()), 404, None, NOT_FOUND)
        self.assertError(self.api("DELETE", k8s_path(self.ident["id"])), 404, "NotFound", NOT_FOUND)

    def test_login_token_reviews_itself(self):
        ident = self.create_identity()
        self.attach(ident["id"], tokenReviewerJwt="", allowedAudience="")
        token = self.sa_token(audiences=())
        r = self.login(ident["id"], token)
        self.assertEqual(r.status, 200, r.body[:500])
        with self.mock.lock:
            _, auth, body = self.mock.requests[-1]
        self.assertEqual(auth, "Bearer " + token)
        self.assertNotIn("audiences", body["spec"])

    def test_refusals(self):
        cases = (
            ("!token has expired", "Kubernetes token not authenticated: token has expired"),
            ("system:serviceaccount:dev:app", "namespace dev not allowed"),
            ("system:serviceaccount:prod:db", "service account db not allowed"),
            ("system:node:n1", "Kubernetes token not authenticated"),
        )
        for username, message in cases:
            with self.subTest(username=username):
                token = self.sa_token(username)
                self.assertError(self.login(self.ident["id"], token), 401, None, message)
        self.assertError(self.login(self.ident["id"], self.sa_token(audiences=("other",))), 401, None,
                         "audience coffer not allowed")
        self.assertError(self.login(self.ident["id"], "unknown-token"), 401, None,
                         "Kubernetes token not authenticated: token lookup failed")
        # The cluster refuses the reviewer credential.
        ident = self.create_identity()
        self.attach(ident["id"], tokenReviewerJwt="wrong-reviewer")
        self.assertError(self.login(ident["id"], self.sa_token()), 401, None, "HTTP status 401")
        # Plain http only to loopback hosts.
        ident = self.create_identity()
        self.attach(ident["id"], kubernetesHost="http://k8s.example")
        self.assertError(self.login(ident["id"], self.sa_token()), 401, None, "https")
        self.assertNotIn(REVIEWER, self.server.stderr)

    def test_cli_login(self):
        token = self.sa_token()
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "token")
            with open(path, "w") as f:
                f.write(token + "\n")
            rc, out, err = self.cli("login", "--method=kubernetes", "--machine-identity-id", self.ident["id"],
                                    "--service-account-token-path", path, "--silent", "--plain", token=None)
            self.assertEqual(rc, 0, err)
            got = self.get_as(out.strip(), self.project["id"], "DB_PASSWORD")
            self.assertEqual(got.json["secret"]["secretValue"], "hunter2")
            rc, out, err = self.cli("login", "--method=kubernetes", "--silent", "--plain", token=None,
                                    env={"INFISICAL_MACHINE_IDENTITY_ID": self.ident["id"],
                                         "INFISICAL_KUBERNETES_SERVICE_ACCOUNT_TOKEN_PATH": path})
            self.assertEqual(rc, 0, err)
            self.assertEqual(self.get_as(out.strip(), self.project["id"], "DB_PASSWORD").status, 200)
            bad = self.sa_token("system:serviceaccount:dev:app")
            with open(path, "w") as f:
                f.write(bad)
            rc, out, err = self.cli("login", "--method=kubernetes", "--machine-identity-id", self.ident["id"],
                                    "--service-account-token-path", path, "--silent", "--plain", token=None)
            self.assertEqual(rc, 1)
            self.assertIn("namespace dev not allowed", err)
            self.assertNotIn(bad, out + err)
            rc, _, err = self.cli("login", "--method=kubernetes", "--machine-identity-id", self.ident["id"],
                                  "--service-account-token-path", os.path.join(d, "missing"), token=None)
            self.assertEqual(rc, 1)
            self.assertIn("missing", err)
        rc, _, err = self.cli("login", "--method=kubernetes", "--silent", token=None)
        self.assertEqual(rc, 2)
        self.assertIn("--machine-identity-id", err)
        rc, _, err = self.cli("login", "--client-id", "x", "--client-secret", "y",
                              "--service-account-token-path", "/x", token=None)
        self.assertEqual(rc, 2)


if __name__ == "__main__":
    unittest.main()


class KubernetesAuthAtRestAndCli(KubernetesAuthTestCase):
    """The reviewer JWT is sealed at rest (no trace of it in the database files, WAL included), still works
    after the root key is rotated, and the CLI attaches, updates and shows Kubernetes and JWT auth without ever
    echoing a credential."""

    def db_bytes(self, server=None):
        """Every byte of the store's files: the SQLite file and its WAL, or PostgreSQL's files after a
        checkpoint."""
        server = server or self.server
        data = b""
        if harness.BACKEND == "postgres":
            return b"\n".join(data for _, data in harness.store_files(server.data_dir))
        for name in ("coffer.db", "coffer.db-wal"):
            path = os.path.join(server.data_dir, name)
            if os.path.exists(path):
                with open(path, "rb") as f:
                    data += f.read()
        return data

    def test_reviewer_jwt_is_sealed_at_rest(self):
        reviewer = "reviewer-at-rest-" + uuid.uuid4().hex
        ident = self.create_identity()
        self.attach(ident["id"], tokenReviewerJwt=reviewer)
        self.assertNotIn(reviewer.encode(), self.db_bytes())
        self.assertIn(b"sealed:v1:", self.db_bytes())
        # And it is what the cluster receives.
        self.assertEqual(self.login(ident["id"], self.sa_token()).status, 401)  # the mock wants REVIEWER
        self.ok("PATCH", k8s_path(ident["id"]), body={"tokenReviewerJwt": REVIEWER})
        r = self.login(ident["id"], self.sa_token())
        self.assertEqual(r.status, 200, r.body[:300])
        with self.mock.lock:
            self.assertEqual(self.mock.requests[-1][1], "Bearer " + REVIEWER)
        self.assertNotIn(REVIEWER.encode(), self.db_bytes())

    def test_cli_attach_update_get(self):
        ident = self.create_identity()
        d = tempfile.mkdtemp(prefix="coffer-k8s-cli-")
        reviewer_file = os.path.join(d, "reviewer.jwt")
        with open(reviewer_file, "w") as f:
            f.write(REVIEWER + "\n")
        rc, out, err = self.cli("identities", "kubernetes-auth", "attach", ident["id"], "--kubernetes-host",
                                self.mock.host(), "--token-reviewer-jwt-file", reviewer_file,
                                "--allowed-namespaces", "prod", "--allowed-names", "app", "--allowed-audience",
                                "coffer", "--access-token-ttl", "10m")
        self.assertEqual(rc, 0, err)
        self.assertNotIn(REVIEWER, out + err)
        self.assertIn("set", out)
        cfg = self.ok("GET", k8s_path(ident["id"]))["identityKubernetesAuth"]
        self.assertEqual((cfg["allowedNamespaces"], cfg["accessTokenTTL"], cfg["hasTokenReviewerJwt"]),
                         ("prod", 600, True))
        self.assertEqual(self.login(ident["id"], self.sa_token()).status, 200)
        rc, out, err = self.cli("identities", "kubernetes-auth", "update", ident["id"], "--allowed-namespaces",
                                "prod, staging", "--num-uses", "5")
        self.assertEqual(rc, 0, err)
        cfg = self.ok("GET", k8s_path(ident["id"]))["identityKubernetesAuth"]
        self.assertEqual((cfg["allowedNamespaces"], cfg["accessTokenNumUsesLimit"], cfg["hasTokenReviewerJwt"]),
                         ("prod, staging", 5, True))
        rc, out, err = self.cli("identities", "kubernetes-auth", "get", ident["id"], "--output", "json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["identityKubernetesAuth"]["allowedNamespaces"], "prod, staging")
        self.assertNotIn(REVIEWER, out)
        # Usage errors name the option; the reviewer JWT is never an argument.
        for args, words in ((["--num-uses", "many"], "--num-uses"),
                            (["--access-token-ttl", "soon"], "--access-token-ttl"),
                            (["--trusted-ips", ","], "--trusted-ips"),
                            (["--token-reviewer-jwt", REVIEWER], "unknown option")):
            rc, out, err = self.cli("identities", "kubernetes-auth", "update", ident["id"], *args)
            self.assertEqual(rc, 2, (args, err))
            self.assertIn(words, err)
        rc, out, err = self.cli("identities", "kubernetes-auth", "update", ident["id"],
                                "--token-reviewer-jwt-file", os.path.join(d, "missing"))
        self.assertEqual(rc, 1)
        self.assertIn("cannot open", err)
        rc, out, err = self.cli("identities", "kubernetes-auth", "update", str(uuid.uuid4()),
                                "--allowed-names", "x")
        self.assertEqual(rc, 1)

    def test_cli_jwt_auth_jwks_and_update(self):
        ident = self.create_identity()
        rc, out, err = self.cli("identities", "jwt-auth", "attach", ident["id"], "--jwks-url",
                                "https://token.actions.githubusercontent.com/.well-known/jwks",
                                "--bound-issuer", "https://token.actions.githubusercontent.com",
                                "--bound-audiences", "https://github.com/acme",
                                "--bound-claims", "repository=acme/app;ref=refs/heads/main,refs/tags/*")
        self.assertEqual(rc, 0, err)
        cfg = self.ok("GET", "/api/v1/auth/jwt-auth/identities/" + ident["id"])["identityJwtAuth"]
        self.assertEqual(cfg["configurationType"], "jwks")
        self.assertEqual(cfg["boundClaims"], {"repository": "acme/app", "ref": "refs/heads/main,refs/tags/*"})
        rc, out, err = self.cli("identities", "jwt-auth", "update", ident["id"], "--bound-subject",
                                "repo:acme/app:*", "--bound-claims", '{"environment": "prod"}',
                                "--access-token-ttl", "15m")
        self.assertEqual(rc, 0, err)
        cfg = self.ok("GET", "/api/v1/auth/jwt-auth/identities/" + ident["id"])["identityJwtAuth"]
        self.assertEqual((cfg["boundSubject"], cfg["boundClaims"], cfg["accessTokenTTL"], cfg["boundIssuer"]),
                         ("repo:acme/app:*", {"environment": "prod"}, 900,
                          "https://token.actions.githubusercontent.com"))
        rc, out, err = self.cli("identities", "jwt-auth", "update", ident["id"], "--bound-claims", "no-equals")
        self.assertEqual(rc, 2)
        self.assertIn("--bound-claims", err)
        rc, out, err = self.cli("identities", "jwt-auth", "update", ident["id"], "--public-key-file",
                                "/nonexistent/key.pem")
        self.assertEqual(rc, 1)
        self.assertIn("--public-key-file", err)


class KubernetesAuthThrottle(KubernetesAuthTestCase):
    server_env = {"COFFER_LOGIN_MAX_FAILURES": "3"}

    def test_failed_logins_are_throttled(self):
        ident = self.create_identity()
        self.attach(ident["id"])
        statuses = [self.login(ident["id"], self.sa_token(username="!token expired")).status for _ in range(5)]
        self.assertEqual(statuses[:3], [401, 401, 401])
        self.assertEqual(statuses[3:], [429, 429])
        r = self.login(ident["id"], self.sa_token())
        self.assertEqual(r.status, 429, "a good token is refused too while locked out")
        self.assertTrue(r.headers.get("Retry-After"))


class KubernetesAuthRotation(unittest.TestCase):

    def test_reviewer_jwt_survives_root_key_rotation(self):
        mock = MockCluster()
        s = harness.Server()
        try:
            s.start()
            ident = s.api("POST", "/api/v1/identities", body={"name": harness.unique("k8s")}).json["identity"]
            r = s.api("POST", k8s_path(ident["id"]), body={"kubernetesHost": mock.host(),
                                                           "tokenReviewerJwt": REVIEWER,
                                                           "allowedNamespaces": "prod"})
            self.assertEqual(r.status, 200, r.body[:300])
            token = "sa-" + uuid.uuid4().hex
            with mock.lock:
                mock.tokens[token] = ("system:serviceaccount:prod:app", [])
            self.assertEqual(s.api("POST", LOGIN, body={"identityId": ident["id"], "jwt": token},
                                   token=None).status, 200)
            self.assertEqual(s.stop(), 0)
            rc, out, err = harness.run(["operator", "rotate-root-key", "--data-dir", s.data_dir])
            self.assertEqual(rc, 0, err)
            s.start()
            r = s.api("POST", LOGIN, body={"identityId": ident["id"], "jwt": token}, token=None)
            self.assertEqual(r.status, 200, r.body[:300])
            with mock.lock:
                self.assertEqual(mock.requests[-1][1], "Bearer " + REVIEWER)
        finally:
            s.stop()
            s.cleanup()
            mock.close()
