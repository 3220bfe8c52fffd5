"""JWT auth with static public keys (docs/api.md, "JWT auth").

Keys are made with the openssl CLI (RSA 2048, EC P-256, Ed25519) and JWTs are signed here with it (RS256 with
`openssl dgst -sha256 -sign`, ES256 the same with the DER signature turned into r||s, EdDSA with `openssl pkeyutl
-sign -rawin`). Checked:

- attach / get / update of identityJwtAuth, authMethods lists "jwt-auth", validation (bad key, no key, bad
  configurationType, boundClaims not an object);
- login over the API with each key type and with `coffer login --method=jwt-auth --silent --plain`, and the access
  token reads a secret through a viewer membership;
- refusals, each 401 with the verifier's message: expired, wrong issuer, wrong audience, wrong subject, bound claim
  mismatch, bad signature, alg none; 404 for an unknown identity and for an identity without JWT auth;
- failed JWT logins are throttled (429) like universal auth's, and no JWT appears in the server log;
- JWKS configurations against a small http.server JWKS on 127.0.0.1 whose JWKs are made from the
  openssl public keys (RSA n/e, EC x/y, OKP x): login with each key type; key rotation (a new kid is accepted after
  a refetch); a kid never published is 401 "unknown key id" and the mock is asked at most once for repeated bogus
  kids; a JWKS server that goes down after a good fetch leaves logins working from the cache; one that hangs makes
  the login answer within ~5 s with the fetch error while a universal-auth login is not stalled; plain http to a
  host that is not loopback is refused.
"""

import base64
import http.server
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

import harness
from test_identities import IdentityHelpers

LOGIN = "/api/v1/auth/jwt-auth/login"
NOT_FOUND = "JWT auth method not found for identity, did you configure JWT auth?"


def jwt_path(identity_id):
    return "/api/v1/auth/jwt-auth/identities/" + identity_id


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def openssl(*args, input=None):
    return subprocess.run(("openssl",) + args, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          check=True).stdout


def der_to_raw(der, size=32):
    """An ECDSA-Sig-Value (SEQUENCE {INTEGER r, INTEGER s}) as JOSE's fixed-size r||s."""
    def read_len(i):
        n = der[i]
        if n < 0x80:
            return n, i + 1
        k = n & 0x7f
        return int.from_bytes(der[i + 1:i + 1 + k], "big"), i + 1 + k
    assert der[0] == 0x30
    _, i = read_len(1)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n, i = read_len(i + 1)
        out += int.from_bytes(der[i:i + n], "big").to_bytes(size, "big")
        i += n
    return out


class Keys:
    """Key pairs in a temporary directory: kind "rsa", "ec" or "ed"."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="coffer-jwt-")
        self.paths = {}
        specs = {"rsa": ("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"),
                 "ec": ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"),
                 "ed": ("-algorithm", "ED25519"),
                 "rsa2": ("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")}
        for kind, spec in specs.items():
            key = os.path.join(self.dir, kind + ".key")
            pub = os.path.join(self.dir, kind + ".pub")
            openssl("genpkey", *spec, "-out", key)
            openssl("pkey", "-in", key, "-pubout", "-out", pub)
            self.paths[kind] = (key, pub)

    def public(self, kind):
        with open(self.paths[kind][1]) as f:
            return f.read()

    def sign(self, kind, claims, alg=None, header=None):
        alg = alg or {"rsa": "RS256", "rsa2": "RS256", "ec": "ES256", "ed": "EdDSA"}[kind]
        head = {"alg": alg, "typ": "JWT"}
        head.update(header or {})
        signing_input = (b64url(json.dumps(head).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
        key = self.paths[kind][0]
        if kind == "ed":
            data = os.path.join(self.dir, "input")
            with open(data, "wb") as f:
                f.write(signing_input)
            sig = openssl("pkeyutl", "-sign", "-inkey", key, "-rawin", "-in", data)
        else:
            sig = openssl("dgst", "-sha256", "-sign", key, input=signing_input)
            if kind == "ec":
                sig = der_to_raw(sig)
        return signing_input.decode() + "." + b64url(sig)

    def jwk(self, kind, kid):
        """The public key of kind as a JWK with this kid."""
        der = openssl("pkey", "-pubin", "-in", self.paths[kind][1], "-outform", "DER")
        if kind.startswith("rsa"):
            text = openssl("rsa", "-pubin", "-in", self.paths[kind][1], "-noout", "-modulus").decode()
            n = bytes.fromhex(text.strip().split("=", 1)[1])
            return {"kty": "RSA", "kid": kid, "use": "sig", "n": b64url(n), "e": b64url((65537).to_bytes(3, "big"))}
        if kind == "ec":
            point = der[-65:]
            assert point[0] == 4
            return {"kty": "EC", "kid": kid, "crv": "P-256", "x": b64url(point[1:33]), "y": b64url(point[33:])}
        return {"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64url(der[-32:])}

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def claims(**extra):
    now = int(time.time())
    c = {"iss": "https://ci.example", "aud": "coffer", "sub": "repo:acme/app:ref:main", "iat": now,
         "exp": now + 300, "team": "platform"}
    c.update(extra)
    return c


class JwtAuthTestCase(IdentityHelpers, harness.ServerTestCase):
    server_env = {"COFFER_LOGIN_MAX_FAILURES": "1000"}

    @classmethod
    def setUpClass(cls):
        cls.keys = Keys()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.keys.cleanup()

    def attach_jwt(self, identity_id, kinds=("rsa", "ec", "ed"), **settings):
        body = {"configurationType": "static", "publicKeys": [self.keys.public(k) for k in kinds],
                "boundIssuer": "https://ci.example", "boundAudiences": "other, coffer",
                "boundSubject": "repo:acme/*:ref:main", "boundClaims": {"team": "platform, security"}}
        body.update(settings)
        return self.ok("POST", jwt_path(identity_id), body=body)["identityJwtAuth"]

    def jwt_login(self, identity_id, token):
        return self.api("POST", LOGIN, body={"identityId": identity_id, "jwt": token}, token=None)


class JwtAuthConfig(JwtAuthTestCase):

    def test_attach_get_update(self):
        ident = self.create_identity()
        cfg = self.attach_jwt(ident["id"], accessTokenTTL=600)
        self.assertEqual(cfg["identityId"], ident["id"])
        self.assertEqual(cfg["configurationType"], "static")
        self.assertEqual(len(cfg["publicKeys"]), 3)
        self.assertIn("BEGIN PUBLIC KEY", cfg["publicKeys"][0])
        self.assertEqual(cfg["boundIssuer"], "https://ci.example")
        self.assertEqual(cfg["boundAudiences"], "other, coffer")
        self.assertEqual(cfg["boundClaims"], {"team": "platform, security"})
        self.assertEqual(cfg["accessTokenTTL"], 600)
        self.assertEqual(cfg["accessTokenMaxTTL"], 2592000)
        self.assertEqual(cfg["accessTokenTrustedIps"], [{"ipAddress": "0.0.0.0/0"}, {"ipAddress": "::/0"}])
        got = self.ok("GET", jwt_path(ident["id"]))["identityJwtAuth"]
        self.assertEqual(got, cfg)
        self.assertEqual(self.ok("GET", "/api/v1/identities/" + ident["id"])["identity"]["authMethods"],
                         ["jwt-auth"])
        upd = self.ok("PATCH", jwt_path(ident["id"]), body={"boundSubject": "x"})["identityJwtAuth"]
        self.assertEqual(upd["boundSubject"], "x")
        self.assertEqual(upd["boundIssuer"], "https://ci.example")
        self.assertError(self.api("POST", jwt_path(ident["id"]), body={"publicKeys": [self.keys.public("rsa")]}),
                         400, "BadRequest", "already attached")

    def test_validation(self):
        ident = self.create_identity()
        for body, field in (({"publicKeys": ["not a key"]}, "publicKeys"),
                            ({"publicKeys": []}, "publicKeys"),
                            ({}, "publicKeys"),
                            ({"configurationType": "magic", "publicKeys": [self.keys.public("rsa")]},
                             "configurationType"),
                            ({"configurationType": "jwks"}, "jwksUrl"),
                            ({"publicKeys": [self.keys.public("rsa")], "accessTokenTTL": 10,
                              "accessTokenMaxTTL": 5}, "accessTokenTTL")):
            with self.subTest(body=body):
                self.assertError(self.api("POST", jwt_path(ident["id"]), body=body), 422, "ValidationFailure",
                                 field)
        self.assertError(self.api("POST", jwt_path(ident["id"]),
                                  body={"publicKeys": [self.keys.public("rsa")], "boundClaims": "team"}),
                         400, None, "boundClaims")
        self.assertError(self.api("GET", jwt_path(ident["id"])), 404, "NotFound", NOT_FOUND)
        self.assertError(self.api("PATCH", jwt_path(ident["id"]), body={}), 404, "NotFound", NOT_FOUND)
        self.assertError(self.api("GET", jwt_path(str(uuid.uuid4()))), 404, "NotFound")

    def test_identity_token_cannot_administer(self):
        project = self.create_project()
        m = self.machine(project["id"], "admin")
        ident = self.create_identity()
        self.assertError(self.api("POST", jwt_path(ident["id"]), body={"publicKeys": [self.keys.public("rsa")]},
                                  token=m["token"]), 403)


class JwtLogin(JwtAuthTestCase):

    def setUp(self):
        super().setUp()
        self.project = self.create_project()
        self.set_secret(self.project["id"], "DB_PASSWORD", "hunter2")
        self.ident = self.create_identity()
        self.add_member(self.project["id"], self.ident["id"], "viewer")
        self.cfg = self.attach_jwt(self.ident["id"], accessTokenTTL=600)

    def test_login_each_key_type_and_read_a_secret(self):
        for kind in ("rsa", "ec", "ed"):
            with self.subTest(kind=kind):
                r = self.jwt_login(self.ident["id"], self.keys.sign(kind, claims()))
                self.assertEqual(r.status, 200, r.body[:500])
                self.assertEqual(r.json["tokenType"], "Bearer")
                self.assertEqual(r.json["expiresIn"], 600)
                token = r.json["accessToken"]
                got = self.get_as(token, self.project["id"], "DB_PASSWORD")
                self.assertEqual(got.status, 200, got.body[:300])
                self.assertEqual(got.json["secret"]["secretValue"], "hunter2")
                # A viewer cannot write.
                w = self.api("POST", "/api/v3/secrets/raw/NEW", token=token,
                             body={"workspaceId": self.project["id"], "environment": "dev", "secretValue": "x"})
                self.assertEqual(w.status, 403, w.body[:300])

    def test_removing_jwt_auth_ends_its_tokens(self):
        ua = self.attach_ua(self.ident["id"])
        cs, _ = self.create_client_secret(self.ident["id"])
        ua_token = self.login_ok(ua["clientId"], cs)["accessToken"]
        r = self.jwt_login(self.ident["id"], self.keys.sign("rsa", claims()))
        self.assertEqual(r.status, 200, r.body[:500])
        token = r.json["accessToken"]
        self.assertEqual(self.get_as(token, self.project["id"], "DB_PASSWORD").status, 200)
        removed = self.ok("DELETE", jwt_path(self.ident["id"]))["identityJwtAuth"]
        self.assertEqual(removed["identityId"], self.ident["id"])
        self.assertError(self.get_as(token, self.project["id"], "DB_PASSWORD"), 401, "Unauthorized", "revoked")
        self.assertError(self.api("POST", "/api/v1/auth/token/renew", body={"accessToken": token}, token=None),
                         401, "Unauthorized")
        self.assertError(self.jwt_login(self.ident["id"], self.keys.sign("rsa", claims())), 404, None, NOT_FOUND)
        self.assertError(self.api("DELETE", jwt_path(self.ident["id"])), 404, "NotFound", NOT_FOUND)
        # The identity's universal-auth token is not the JWT method's: it keeps working.
        self.assertEqual(self.get_as(ua_token, self.project["id"], "DB_PASSWORD").status, 200)
        # Attached again, the old token stays dead.
        self.attach_jwt(self.ident["id"])
        self.assertError(self.get_as(token, self.project["id"], "DB_PASSWORD"), 401, "Unauthorized")

    def test_cli_login(self):
        token = self.keys.sign("rsa", claims())
        rc, out, err = self.cli("login", "--method=jwt-auth", "--machine-identity-id", self.ident["id"], "--jwt",
                                token, "--silent", "--plain", token=None)
        self.assertEqual(rc, 0, err)
        access = out.strip()
        self.assertEqual(self.get_as(access, self.project["id"], "DB_PASSWORD").json["secret"]["secretValue"],
                         "hunter2")
        # From the environment, as Infisical's CLI reads it.
        rc, out, err = self.cli("login", "--method=jwt-auth", "--silent", "--plain", token=None,
                                env={"INFISICAL_MACHINE_IDENTITY_ID": self.ident["id"],
                                     "INFISICAL_JWT": self.keys.sign("ed", claims())})
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.get_as(out.strip(), self.project["id"], "DB_PASSWORD").status, 200)
        # A refusal: exit 1 with the server's message, and the JWT is not echoed.
        bad = self.keys.sign("rsa", claims(iss="https://evil.example"))
        rc, out, err = self.cli("login", "--method=jwt-auth", "--machine-identity-id", self.ident["id"], "--jwt",
                                bad, "--silent", "--plain", token=None)
        self.assertEqual(rc, 1)
        self.assertIn("issuer", err)
        self.assertNotIn(bad, out + err)
        rc, _, err = self.cli("login", "--method=jwt-auth", "--silent", "--plain", token=None)
        self.assertEqual(rc, 2)
        self.assertIn("--machine-identity-id", err)
        rc, _, err = self.cli("login", "--method=jwt-auth", "--client-id", "x", "--jwt", token, token=None)
        self.assertEqual(rc, 2)
        self.assertIn("universal-auth", err)
        rc, _, err = self.cli("login", "--client-id", "x", "--client-secret", "y", "--jwt", token, token=None)
        self.assertEqual(rc, 2)
        self.assertIn("jwt-auth", err)

    def test_cli_attach(self):
        ident = self.create_identity()
        rc, out, err = self.cli("identities", "jwt-auth", "attach", ident["id"], "--public-key-file",
                                self.keys.paths["ec"][1], "--bound-issuer", "https://ci.example",
                                "--bound-audiences", "coffer", "--bound-subject", "repo:acme/*",
                                "--access-token-ttl", "15m", "--output", "json")
        self.assertEqual(rc, 0, err)
        cfg = json.loads(out)["identityJwtAuth"]
        self.assertEqual((cfg["boundIssuer"], cfg["boundAudiences"], cfg["boundSubject"], cfg["accessTokenTTL"]),
                         ("https://ci.example", "coffer", "repo:acme/*", 900))
        r = self.jwt_login(ident["id"], self.keys.sign("ec", claims()))
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(r.json["expiresIn"], 900)
        rc, out, err = self.cli("identities", "jwt-auth", "get", ident["id"])
        self.assertEqual(rc, 0, err)
        self.assertIn("static", out)

    def test_refusals(self):
        now = int(time.time())
        rsa = lambda **c: self.keys.sign("rsa", claims(**c))  # noqa: E731
        good = rsa()
        head, payload, sig = good.split(".")
        flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
        none_token = b64url(b'{"alg":"none","typ":"JWT"}') + "." + payload + "."
        cases = (
            ("expired", rsa(exp=now - 3600, iat=now - 7200), "expired"),
            ("no exp", self.keys.sign("rsa", {k: v for k, v in claims().items() if k != "exp"}), "no exp"),
            ("wrong issuer", rsa(iss="https://evil.example"), "issuer"),
            ("wrong audience", rsa(aud="someone-else"), "audience mismatch"),
            ("wrong subject", rsa(sub="repo:evil/app:ref:main"), "subject mismatch"),
            ("wrong claim", rsa(team="marketing"), 'claim "team" mismatch'),
            ("bad signature", head + "." + payload + "." + flipped, "bad signature"),
            ("unknown key", self.keys.sign("rsa2", claims()), "bad signature"),
            ("alg none", none_token, "malformed token"),
            ("alg none, signed", none_token + sig, "not allowed"),
            ("HS256", self.keys.sign("rsa", claims(), alg="HS256"), "not allowed"),
            ("garbage", "not.a.jwt", "malformed"),
        )
        for name, token, message in cases:
            with self.subTest(name):
                self.assertError(self.jwt_login(self.ident["id"], token), 401, "Unauthorized", message)
        self.assertError(self.jwt_login(str(uuid.uuid4()), good), 404, "NotFound", NOT_FOUND)
        self.assertError(self.jwt_login("not-a-uuid", good), 404, "NotFound", NOT_FOUND)
        bare = self.create_identity()
        self.assertError(self.jwt_login(bare["id"], good), 404, "NotFound", NOT_FOUND)
        self.assertError(self.api("POST", LOGIN, body={"identityId": self.ident["id"]}, token=None), 422,
                         "ValidationFailure", "jwt")
        # Still fine after all that.
        self.assertEqual(self.jwt_login(self.ident["id"], good).status, 200)
        self.assertNotLogged(good, flipped)

    def test_clock_skew_leeway_is_configurable(self):
        now = int(time.time())
        ident = self.create_identity()
        cfg = self.attach_jwt(ident["id"], kinds=("rsa",))
        self.assertEqual(cfg["clockSkewLeeway"], 60)
        late = self.keys.sign("rsa", claims(exp=now - 20, iat=now - 300))     # expired 20 s ago
        early = self.keys.sign("rsa", claims(nbf=now + 20, exp=now + 300))   # valid in 20 s
        self.assertEqual(self.jwt_login(ident["id"], late).status, 200, "within the default 60 s")
        self.assertEqual(self.jwt_login(ident["id"], early).status, 200)
        cfg = self.ok("PATCH", jwt_path(ident["id"]), body={"clockSkewLeeway": 0})["identityJwtAuth"]
        self.assertEqual(cfg["clockSkewLeeway"], 0)
        self.assertError(self.jwt_login(ident["id"], late), 401, "Unauthorized", "expired")
        self.assertError(self.jwt_login(ident["id"], early), 401, "Unauthorized", "not yet valid")
        for bad in (-1, 3601, "60s"):
            self.assertError(self.api("PATCH", jwt_path(ident["id"]), body={"clockSkewLeeway": bad}),
                             422 if not isinstance(bad, str) else 400, None, "clockSkewLeeway")
        rc, out, err = self.cli("identities", "jwt-auth", "update", ident["id"], "--clock-skew-leeway", "30")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.ok("GET", jwt_path(ident["id"]))["identityJwtAuth"]["clockSkewLeeway"], 30)
        self.assertEqual(self.jwt_login(ident["id"], late).status, 200)

    def test_jwks_is_stored_and_fetch_errors_are_401(self):
        ident = self.create_identity()
        url = "https://127.0.0.1:%d/.well-known/jwks" % closed_port()
        cfg = self.ok("POST", jwt_path(ident["id"]), body={"configurationType": "jwks", "jwksUrl": url}
                      )["identityJwtAuth"]
        self.assertEqual(cfg["configurationType"], "jwks")
        self.assertEqual(cfg["jwksUrl"], url)
        self.assertError(self.jwt_login(ident["id"], self.keys.sign("rsa", claims())), 401, "Unauthorized",
                         "JWKS endpoint %s could not be fetched" % url)
        # Plain http only for loopback hosts.
        for url in ("http://jwks.example/keys", "http://10.0.0.1/keys", "ftp://127.0.0.1/keys"):
            with self.subTest(url=url):
                self.ok("PATCH", jwt_path(ident["id"]), body={"jwksUrl": url})
                r = self.jwt_login(ident["id"], self.keys.sign("rsa", claims()))
                self.assertError(r, 401, "Unauthorized", "JWKS endpoint %s could not be fetched" % url)
                if url.startswith("http:"):
                    self.assertIn("loopback", r.json["message"])


def closed_port():
    """A loopback TCP port nothing listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class MockJwks:
    """A JWKS server on 127.0.0.1: docs maps a path to a JWKS document, or to "hang" (answers after 10 s) or
    "down" (503); counts[path] is the number of requests for it."""

    def __init__(self):
        self.docs = {}
        self.counts = {}
        self.lock = threading.Lock()
        mock = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with mock.lock:
                    mock.counts[self.path] = mock.counts.get(self.path, 0) + 1
                    doc = mock.docs.get(self.path)
                if doc == "hang":
                    time.sleep(10)
                if doc is None or doc in ("hang", "down"):
                    self.send_response(503 if doc else 404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, path, jwks):
        with self.lock:
            self.docs[path] = jwks

    def count(self, path):
        with self.lock:
            return self.counts.get(path, 0)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.httpd.server_address[1], path)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class JwtJwksLogin(JwtAuthTestCase):

    @classmethod
    def setUpClass(cls):
        cls.mock = MockJwks()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.mock.close()

    def setUp(self):
        super().setUp()
        self.path = "/" + uuid.uuid4().hex + "/jwks"
        self.ident = self.create_identity()

    def attach_jwks(self, keys):
        self.mock.publish(self.path, {"keys": keys})
        return self.ok("POST", jwt_path(self.ident["id"]), body={
            "configurationType": "jwks", "jwksUrl": self.mock.url(self.path),
            "boundIssuer": "https://ci.example", "boundAudiences": "coffer"})["identityJwtAuth"]

    def sign(self, kind, kid, **extra):
        return self.keys.sign(kind, claims(**extra), header={"kid": kid} if kid else None)

    def test_login_with_each_key_type(self):
        cfg = self.attach_jwks([self.keys.jwk("rsa", "r1"), self.keys.jwk("ec", "e1"), self.keys.jwk("ed", "o1")])
        self.assertEqual(cfg["configurationType"], "jwks")
        for kind, kid in (("rsa", "r1"), ("ec", "e1"), ("ed", "o1"), ("ec", None)):
            with self.subTest(kind=kind, kid=kid):
                r = self.jwt_login(self.ident["id"], self.sign(kind, kid))
                self.assertEqual(r.status, 200, r.body[:500])
                self.assertTrue(r.json["accessToken"])
        # One fetch served them all.
        self.assertEqual(self.mock.count(self.path), 1)
        # The policy still applies, and a key that is not published does not verify.
        self.assertError(self.jwt_login(self.ident["id"], self.sign("rsa", "r1", iss="https://evil.example")),
                         401, "Unauthorized", "issuer")
        self.assertError(self.jwt_login(self.ident["id"], self.sign("rsa2", "r1")), 401, "Unauthorized",
                         "bad signature")

    def test_key_rotation(self):
        self.attach_jwks([self.keys.jwk("rsa", "old")])
        self.assertEqual(self.jwt_login(self.ident["id"], self.sign("rsa", "old")).status, 200)
        self.assertEqual(self.mock.count(self.path), 1)
        self.mock.publish(self.path, {"keys": [self.keys.jwk("rsa", "old"), self.keys.jwk("rsa2", "new")]})
        r = self.jwt_login(self.ident["id"], self.sign("rsa2", "new"))
        self.assertEqual(r.status, 200, r.body[:500])
        self.assertEqual(self.mock.count(self.path), 2)
        self.assertEqual(self.jwt_login(self.ident["id"], self.sign("rsa", "old")).status, 200)
        self.assertEqual(self.mock.count(self.path), 2)

    def test_unknown_kid_refetches_at_most_once(self):
        self.attach_jwks([self.keys.jwk("rsa", "k1")])
        self.assertEqual(self.jwt_login(self.ident["id"], self.sign("rsa", "k1")).status, 200)
        self.assertEqual(self.mock.count(self.path), 1)
        for i in range(5):
            with self.subTest(i=i):
                self.assertError(self.jwt_login(self.ident["id"], self.sign("rsa2", "bogus-%d" % i)), 401,
                                 "Unauthorized", "unknown key id")
        # One refetch for the first bogus kid, none for the rest (at most one per 30 s).
        self.assertEqual(self.mock.count(self.path), 2)
        self.assertEqual(self.jwt_login(self.ident["id"], self.sign("rsa", "k1")).status, 200)
        self.assertEqual(self.mock.count(self.path), 2)

    def test_server_down_after_a_good_fetch(self):
        self.attach_jwks([self.keys.jwk("ec", "e1")])
        self.assertEqual(self.jwt_login(self.ident["id"], self.sign("ec", "e1")).status, 200)
        self.mock.publish(self.path, "down")
        # An unknown kid makes it try (and fail) once; the cached set keeps working.
        self.assertError(self.jwt_login(self.ident["id"], self.sign("ed", "o1")), 401, "Unauthorized",
                         "unknown key id")
        self.assertEqual(self.mock.count(self.path), 2)
        for _ in range(3):
            r = self.jwt_login(self.ident["id"], self.sign("ec", "e1"))
            self.assertEqual(r.status, 200, r.body[:500])
        # Without a cached set, a down server is a 401 naming the endpoint.
        other = self.create_identity()
        down = "/" + uuid.uuid4().hex + "/jwks"
        self.mock.publish(down, "down")
        self.ok("POST", jwt_path(other["id"]), body={"configurationType": "jwks", "jwksUrl": self.mock.url(down)})
        self.assertError(self.jwt_login(other["id"], self.sign("ec", "e1")), 401, "Unauthorized",
                         "JWKS endpoint %s could not be fetched" % self.mock.url(down), "503")

    def test_hanging_server_does_not_stall_logins(self):
        self.attach_jwks([])
        self.mock.publish(self.path, "hang")
        m = self.machine()
        result = {}

        def jwt_login():
            started = time.monotonic()
            result["r"] = self.jwt_login(self.ident["id"], self.sign("rsa", "r1"))
            result["s"] = time.monotonic() - started

        t = threading.Thread(target=jwt_login)
        t.start()
        time.sleep(0.5)
        started = time.monotonic()
        self.login_ok(m["clientId"], m["clientSecret"])
        ua_seconds = time.monotonic() - started
        t.join(30)
        self.assertFalse(t.is_alive())
        self.assertLess(ua_seconds, 2.0)
        self.assertLess(result["s"], 6.0)
        self.assertError(result["r"], 401, "Unauthorized",
                         "JWKS endpoint %s could not be fetched" % self.mock.url(self.path))


class JwtLoginThrottle(JwtAuthTestCase):
    server_env = {"COFFER_LOGIN_MAX_FAILURES": "3"}

    def test_failures_are_throttled_per_identity(self):
        ident = self.create_identity()
        self.attach_jwt(ident["id"])
        bad = self.keys.sign("rsa", claims(iss="https://evil.example"))
        statuses = [self.jwt_login(ident["id"], bad).status for _ in range(5)]
        self.assertEqual(statuses[:3], [401, 401, 401])
        self.assertEqual(statuses[3:], [429, 429])
        r = self.jwt_login(ident["id"], self.keys.sign("rsa", claims()))
        self.assertError(r, 429, None)
        self.assertTrue(r.headers.get("Retry-After"))
        # Another identity is not affected.
        other = self.create_identity()
        self.attach_jwt(other["id"])
        self.assertEqual(self.jwt_login(other["id"], self.keys.sign("ed", claims())).status, 200)


if __name__ == "__main__":
    unittest.main()
