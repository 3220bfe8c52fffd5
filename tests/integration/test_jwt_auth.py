"""JWT auth with static public keys (docs/api.md, "JWT auth"; issue 4, first slice).

Keys are made with the openssl CLI (RSA 2048, EC P-256, Ed25519) and JWTs are signed here with it (RS256 with
`openssl dgst -sha256 -sign`, ES256 the same with the DER signature turned into r||s, EdDSA with `openssl pkeyutl
-sign -rawin`). Checked:

- attach / get / update of identityJwtAuth, authMethods lists "jwt-auth", validation (bad key, no key, bad
  configurationType, boundClaims not an object);
- login over the API with each key type and with `coffer login --method=jwt-auth --silent --plain`, and the access
  token reads a secret through a viewer membership;
- refusals, each 401 with the verifier's message: expired, wrong issuer, wrong audience, wrong subject, bound claim
  mismatch, bad signature, alg none; 404 for an unknown identity and for an identity without JWT auth; a "jwks"
  configuration is stored but its login is 400 "JWKS fetching is not implemented yet";
- failed JWT logins are throttled (429) like universal auth's, and no JWT appears in the server log.
"""

import base64
import json
import os
import shutil
import subprocess
import tempfile
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

    def test_jwks_is_stored_but_not_fetched(self):
        ident = self.create_identity()
        cfg = self.ok("POST", jwt_path(ident["id"]), body={"configurationType": "jwks",
                                                           "jwksUrl": "https://ci.example/.well-known/jwks"}
                      )["identityJwtAuth"]
        self.assertEqual(cfg["configurationType"], "jwks")
        self.assertEqual(cfg["jwksUrl"], "https://ci.example/.well-known/jwks")
        self.assertError(self.jwt_login(ident["id"], self.keys.sign("rsa", claims())), 400, "BadRequest",
                         "JWKS fetching is not implemented yet")


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
