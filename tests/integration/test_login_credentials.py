"""No credential presented to a login endpoint is ever echoed or kept (docs/api.md "Logging in", docs/audit.md).

A hash-chained audit record can never be scrubbed, so it must never hold a credential; nor may the server log or
the answer. Every credential kind (a client secret, an access token, the admin token, a JWT, a Kubernetes service
account token, a random long string) is sent in every field of every login request (universal-auth clientId and
clientSecret, jwt-auth and kubernetes-auth identityId and jwt, token renew and revoke accessToken), and the answer,
the server log and every row of the audit table are searched for it.

Also: a client secret pasted into the client-id field is recognised (422 "looks like a client secret", in the API
and in `coffer login`), and an unknown client id or identity id is logged and audited as a fingerprint
("sha256:" and the first 8 hex digits of its SHA-256), never verbatim.
"""

import hashlib
import re
import secrets
import time
import uuid

import harness
from test_identities import IdentityHelpers, LOGIN as UA_LOGIN, RENEW, REVOKE
from test_jwt_auth import JwtAuthTestCase, claims, jwt_path, LOGIN as JWT_LOGIN
from test_kubernetes_auth import KubernetesAuthTestCase, REVIEWER, k8s_path, LOGIN as K8S_LOGIN

# The header of every Coffer access token ({"alg":"HS256","typ":"JWT"}): public, in every login answer.
ACCESS_TOKEN_HEADER = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"


def needles(credential):
    """Pieces of credential that must appear nowhere: the whole, and the first and last 16 characters of each
    part that is not a public JWT header (a cut copy, e.g. a field truncated to 36 characters, still leaks)."""
    parts = credential.split(".")
    if len(parts) == 3:
        parts = parts[1:]  # a JWT's header says only how it is signed
    out = {credential}
    for part in parts:
        if len(part) >= 16:
            out.add(part[:16])
            out.add(part[-16:])
    return out


def fingerprint(text):
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:8]


class LoginCredentials(JwtAuthTestCase, KubernetesAuthTestCase):
    """With a JWT key set (self.keys) and a mock Kubernetes API (self.mock), as those suites set them up."""

    login = IdentityHelpers.login  # universal auth, not KubernetesAuthTestCase's

    def setUp(self):
        super().setUp()
        # What this test adds to the log and the audit table is searched (the server is shared by the class).
        self.first_seq = int(harness.sql(self.server.data_dir, "SELECT COALESCE(MAX(seq), 0) FROM audit_events")[0][0])
        self.machine_ = self.machine()
        self.jwt_identity = self.create_identity()
        self.ok("POST", jwt_path(self.jwt_identity["id"]),
                body={"configurationType": "static", "publicKeys": [self.keys.public("rsa")],
                      "boundIssuer": "https://ci.example", "boundAudiences": "coffer"})
        self.k8s_identity = self.create_identity()
        self.ok("POST", k8s_path(self.k8s_identity["id"]),
                body={"kubernetesHost": self.mock.host(), "tokenReviewerJwt": REVIEWER,
                      "allowedNamespaces": "prod", "allowedNames": "app", "allowedAudience": "coffer"})
        sa_token = self.keys.sign("ec", {"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:prod:app",
                                         "aud": ["coffer"], "jti": uuid.uuid4().hex})
        with self.mock.lock:
            self.mock.tokens[sa_token] = ("system:serviceaccount:prod:app", ["coffer"])
        # Every kind of credential a caller could paste into a login field, each one live where it can be.
        self.credentials = {
            "client secret": self.machine_["clientSecret"],
            "access token": self.machine_["token"],
            "admin token": self.server.token,
            "JWT": self.keys.sign("rsa", claims()),
            "Kubernetes service account token": sa_token,
            "random long string": secrets.token_urlsafe(64),
        }

    def check_answer(self, r, credential, what):
        for needle in needles(credential):
            self.assertFalse(needle.encode() in r.body, "%s: the answer contains the credential: %s" % (what, r.body[:300]))

    def check_kept_nowhere(self, last_request_id):
        """Neither the server log nor any audit row holds any piece of any credential of self.credentials."""
        deadline = time.monotonic() + 10
        while True:  # audit events are written by a background thread, just after the answer
            # every column of the events and of their contexts (where the actor's id and name are kept), and
            # the request id in its text form
            rows = harness.sql(self.server.data_dir, "SELECT e.*, c.*, %s FROM audit_events e JOIN audit_contexts c "
                               "ON c.id = e.context WHERE e.seq > %d"
                               % ("encode(e.request_id, 'hex')" if harness.BACKEND == "postgres"
                                  else "lower(hex(e.request_id))", self.first_seq))
            if any(last_request_id in map(str, row) for row in rows) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertTrue(any(last_request_id in map(str, row) for row in rows), "the last request was not audited")
        audit = repr(rows)
        log = self.server.stderr_since(self._stderr_mark) + self.server.stdout
        for kind, credential in self.credentials.items():
            for needle in needles(credential):
                self.assertFalse(needle in log, "a piece of the %s is in the server log: %s"
                                 % (kind, [l for l in log.splitlines() if needle in l][:2]))
                self.assertFalse(needle in audit, "a piece of the %s is in an audit record" % kind)

    def send(self, path, body):
        r = self.api("POST", path, body=body, token=None)
        self.assertIn(r.status, (200, 401, 404, 422), r.body[:300])
        return r

    def check_fields(self, path, id_field, known_id, credential_field, accepted_kind):
        """Each credential as the id (with a filler credential), then as the credential of known_id (which
        accepts accepted_kind): refused or accepted, it is echoed and kept nowhere."""
        last = None
        for kind, credential in self.credentials.items():
            with self.subTest(field=id_field, kind=kind):
                r = self.send(path, {id_field: credential, credential_field: "filler-" + uuid.uuid4().hex})
                self.assertIn(r.status, (401, 404, 422))
                self.check_answer(r, credential, id_field + "=" + kind)
            with self.subTest(field=credential_field, kind=kind):
                r = self.send(path, {id_field: known_id, credential_field: credential})
                self.assertEqual(r.status, 200 if kind == accepted_kind else 401, r.body[:300])
                self.check_answer(r, credential, credential_field + "=" + kind)
            last = r.headers["X-Request-Id"]
        self.check_kept_nowhere(last)

    def test_universal_auth_fields(self):
        self.check_fields(UA_LOGIN, "clientId", self.machine_["clientId"], "clientSecret", "client secret")

    def test_jwt_auth_fields(self):
        self.check_fields(JWT_LOGIN, "identityId", self.jwt_identity["id"], "jwt", "JWT")

    def test_kubernetes_auth_fields(self):
        self.check_fields(K8S_LOGIN, "identityId", self.k8s_identity["id"], "jwt", "Kubernetes service account token")

    def test_token_renew_and_revoke_fields(self):
        last = None
        for path in (RENEW, REVOKE):  # revoke last: it ends the access token
            for kind, credential in self.credentials.items():
                with self.subTest(path=path, kind=kind):
                    r = self.send(path, {"accessToken": credential})
                    self.assertEqual(r.status, 200 if kind == "access token" else 401, r.body[:300])
                    if not (path == RENEW and kind == "access token"):  # renew answers the same token
                        self.check_answer(r, credential, path + " " + kind)
                    last = r.headers["X-Request-Id"]
        self.check_kept_nowhere(last)

    def test_client_secret_as_client_id_is_recognised(self):
        secret = self.machine_["clientSecret"]
        r = self.api("POST", UA_LOGIN, body={"clientId": secret, "clientSecret": self.machine_["clientId"]},
                     token=None)
        body = self.assertError(r, 422, "ValidationFailure", "looks like a client secret", "--client-secret")
        self.assertEqual(body["details"][0]["field"], "clientId", body)
        self.check_answer(r, secret, "client secret as client id")
        # The CLI says so before sending anything, and does not print it either.
        rc, out, err = self.cli("login", "--client-id", secret, "--client-secret", self.machine_["clientId"],
                                token=None)
        self.assertEqual(rc, 2, err)
        self.assertIn("looks like a client secret", err)
        self.assertIn("--client-secret", err)
        self.assertNotIn(secret[8:], out + err)
        self.check_kept_nowhere(r.headers["X-Request-Id"])

    def test_unknown_ids_are_fingerprinted(self):
        """An operator can still tell which unknown id was tried: its fingerprint is logged and audited."""
        for path, body, who in ((UA_LOGIN, {"clientSecret": "x"}, "clientId"),
                                (JWT_LOGIN, {"jwt": "x"}, "identityId"),
                                (K8S_LOGIN, {"jwt": "x"}, "identityId")):
            with self.subTest(path=path):
                presented = "typo-" + uuid.uuid4().hex
                r = self.send(path, dict(body, **{who: presented}))
                self.assertNotIn(presented.encode(), r.body)
                logged = self.server.wait_for_stderr(r"login method=\S+ who=\S*%s" % re.escape(fingerprint(presented)))
                self.assertTrue(logged, "the login line does not name %s" % fingerprint(presented))
                self.assertFalse(presented in self.server.stderr, "the unknown id is in the server log")
                events = self.ok("GET", "/api/v1/audit/events", query={"actor": fingerprint(presented)})["events"]
                self.assertEqual([e["actor"]["id"] for e in events], [fingerprint(presented)])
        # A known client id is named as it is.
        r = self.send(UA_LOGIN, {"clientId": self.machine_["clientId"], "clientSecret": "cfcs_wrong-" + uuid.uuid4().hex})
        self.assertEqual(r.status, 401)
        self.assertTrue(self.server.wait_for_stderr(r"login method=universal-auth who=\S*%s" % self.machine_["clientId"]))


if __name__ == "__main__":
    import unittest
    unittest.main()
