"""The "webhook" rotation consumer (docs/rotation.md) end to end: an Entra ID client secret rotated through
Microsoft Graph (tests/fakes/azure.py) and handed to a receiver (tests/fakes/receiver.py) that checks each
request's X-Coffer-Signature and timestamp, keeps the pushed values, and answers a verify only after signing in
to the fake's Entra token endpoint with them: a rotation that succeeds proves the receiver got a working
credential. Also: a receiver holding another signing secret refuses the push (401), the rotation fails at step
push with cause consumer and the old credential stays in use and valid; a receiver whose sign-in fails fails
the verify; a repeated delivery id is de-duplicated; the dry run names both POSTs without calling them; the
connection and consumer configuration refusals name their field; no secret value in the server's output or the
receiver's log.
"""

import hashlib
import json
import secrets
import time
import unittest
import uuid

import harness
from harness import ServerTestCase
from test_rotations import LEASE_S, EntraApp, RotationHelpers
from test_syncs import WithFakes


def sha(text):
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class WebhookRotation(WithFakes, EntraApp, RotationHelpers, ServerTestCase):
    FAKES = {"fake": "azure.py", "receiver": "receiver.py"}
    def setUp(self):
        super().setUp()
        self.pid = self.create_project()["id"]
        self.entra_setup()
        self.signing_secret = secrets.token_hex(32)
        self.hook_conn = self.ok("POST", "/api/v1/app-connections/webhook", body={
            "name": harness.unique("hook"), "method": "signing-secret",
            "credentials": {"signingSecret": self.signing_secret}})["appConnection"]
        self.token_url = "%s/entra/%s/oauth2/v2.0/token" % (self.fake.url, self.tenant)
        self.control("/_fake/config", {"signingSecret": self.signing_secret, "tokenUrl": self.token_url,
                                       "clockOffset": 0}, self.receiver)

    def create(self, **extra):
        return self.entra_rotation(dict({
            "consumers": [{"type": "webhook", "connectionId": self.hook_conn["id"],
                           "config": {"url": self.receiver.url + "/push", "verifyUrl": self.receiver.url + "/verify"}}],
            "gracePeriod": 0, "isAutoRotationEnabled": False}, **extra))

    def token_status(self, secret):
        return self.token_with(secret)[0]

    def held(self, rid):
        return self.receiver.call("GET", "/_fake/held")[1].get(rid)

    def events(self, rid):
        """The receiver's log of this rotation's requests (earlier tests' rotations may still retry)."""
        return [e for e in self.receiver.log() if (e["delivery"] or "").startswith(rid + ".")]

    def history(self, rid):
        return self.ok("GET", "/api/v2/secret-rotations/any/%s/history" % rid)["history"]

    def assert_no_secret_leaked(self, values):
        log = json.dumps(self.receiver.log())
        for value in values + [self.signing_secret, self.rotator_secret]:
            self.assertNotIn(value, self.server.stderr)
            self.assertNotIn(value, self.server.stdout)
            self.assertNotIn(value, log)

    def test_push_and_verify_hand_over_a_working_credential(self):
        r = self.create()
        dry = self.ok("POST", "/api/v2/secret-rotations/any/%s/rotate-secrets" % r["id"], query={"dryRun": "true"})
        posts = [(c["step"], c["method"], c["target"]) for c in dry["calls"] if c["step"] in ("push", "verify")
                 and self.receiver.url in c["target"]]
        self.assertEqual(posts, [("push", "POST", self.receiver.url + "/push"),
                                 ("verify", "POST", self.receiver.url + "/verify")], dry["calls"])
        self.assertEqual(self.events(r["id"]), [], "the dry run called the receiver")

        self.ok("POST", "/api/v2/secret-rotations/any/%s/rotate-secrets" % r["id"])
        r = self.done(r["id"], 1)
        first = self.secret(self.pid, "AZURE_CLIENT_SECRET")["secretValue"]
        held = self.held(r["id"])
        self.assertEqual(held["credentialId"], r["currentCredentialId"])
        self.assertEqual(held["valuesSha256"], {"clientId": sha(self.app_id), "clientSecret": sha(first)})
        log = self.events(r["id"])
        self.assertEqual([(e["event"], e["status"], e["reason"]) for e in log],
                         [("rotation.push", 200, "stored"), ("rotation.verify", 200, "signed in")], log)
        self.assertEqual({e["delivery"] for e in log}, {"%s.1" % r["id"]})

        self.ok("POST", "/api/v2/secret-rotations/any/%s/rotate-secrets" % r["id"])
        r = self.done(r["id"], 2)
        second = self.secret(self.pid, "AZURE_CLIENT_SECRET")["secretValue"]
        self.assertNotEqual(second, first)
        self.assertEqual(self.held(r["id"])["valuesSha256"]["clientSecret"], sha(second))
        self.assertEqual(self.token_status(second), 200)
        self.assertEqual(self.token_status(first), 401, "the revoked secret still works")
        self.assert_no_secret_leaked([first, second])

    def test_wrong_signing_secret_fails_at_push_and_keeps_the_old_credential(self):
        r = self.create()
        self.ok("POST", "/api/v2/secret-rotations/any/%s/rotate-secrets" % r["id"])
        r = self.done(r["id"], 1)
        before = self.secret(self.pid, "AZURE_CLIENT_SECRET")["secretValue"]
        current = r["currentCredentialId"]
        # the receiver was given another key than the connection holds
        self.control("/_fake/config", {"signingSecret": secrets.token_hex(32)}, self.receiver)
        r = self.ok("POST", "/api/v2/secret-rotations/any/%s/rotate-secrets" % r["id"])["secretRotation"]
        self.assertEqual((r["rotationStatus"], r["lastErrorStep"], r["lastErrorCause"]),
                         ("failed", "push", "consumer"), r)
        self.assertIn("refused the push (HTTP 401)", r["lastRotationMessage"])
        failed = [e for e in self.history(r["id"]) if e["step"] == "push" and e["outcome"] != "ok"]
        self.assertTrue(failed, self.history(r["id"]))
        self.assertIn("refused the push (HTTP 401)", failed[0]["message"])
        self.assertEqual(self.events(r["id"])[-1]["reason"], "the signature does not match")
        # the store step ran before push: Coffer's secret holds the pending credential; the one in use stays
        self.assertEqual(r["currentCredentialId"], current)
        self.assertNotEqual(r["pendingCredentialId"], current)
        pending = self.secret(self.pid, "AZURE_CLIENT_SECRET")["secretValue"]
        self.assertEqual(self.token_status(before), 200, "the old secret stopped working")
        self.assertEqual(self.held(r["id"])["valuesSha256"]["clientSecret"], sha(before))
        self.assertEqual(self.rotation(r["id"])["generation"], 1)
        self.assert_no_secret_leaked([before, pending])

    def test_a_receiver_that_cannot_sign_in_fails_the_verify(self):
        self.control("/_fake/config", {"tokenUrl": self.fake.url + "/entra/no-such-tenant/oauth2/v2.0/token"},
                     self.receiver)
        r = self.create()
        r = self.ok("POST", "/api/v2/secret-rotations/any/%s/rotate-secrets" % r["id"])["secretRotation"]
        self.assertEqual((r["rotationStatus"], r["lastErrorStep"], r["lastErrorCause"]),
                         ("failed", "push", "consumer"), r)
        failed = [e for e in self.history(r["id"]) if e["step"] == "push" and e["outcome"] != "ok"]
        self.assertIn("refused the credential (HTTP 422)", failed[0]["message"])
        events = [(e["event"], e["status"]) for e in self.events(r["id"])]
        self.assertEqual(events[-2:], [("rotation.push", 200), ("rotation.verify", 422)], events)

    def test_a_throttling_receiver_is_retried_then_fails_the_push(self):
        r = self.create()
        self.control("/_fake/throttle", {"count": 100, "retryAfter": 1, "status": 503}, self.receiver)
        try:
            started = time.monotonic()
            r = self.ok("POST", "/api/v2/secret-rotations/any/%s/rotate-secrets" % r["id"])["secretRotation"]
            took = time.monotonic() - started
        finally:
            self.control("/_fake/throttle", {"count": 0}, self.receiver)
        # a consumer's throttling is named as such (a refusal would be cause consumer)
        self.assertEqual((r["rotationStatus"], r["lastErrorStep"], r["lastErrorCause"]),
                         ("failed", "push", "throttled"), r)
        self.assertIn("is throttling (HTTP 503) after 3 tries", r["lastRotationMessage"])
        throttled = [e for e in self.events(r["id"]) if e["reason"] == "throttled"]
        self.assertEqual(len(throttled), 3, "3 tries, each after its Retry-After")
        self.assertGreaterEqual(took, 2.0)
        failed = [e for e in self.history(r["id"]) if e["step"] == "push" and e["outcome"] != "ok"]
        self.assertIn("is throttling (HTTP 503) after 3 tries", failed[0]["message"])

    def test_a_push_repeated_after_a_crash_carries_the_same_delivery_id(self):
        if not harness.test_build():
            self.skipTest(harness.NOT_A_TEST_BUILD)
        r = self.create()
        self.server.extra_env["COFFER_TEST_ROTATION_CRASH_AT"] = "push"
        self.server.restart()
        try:  # the server exits after the push, before the verify
            self.api("POST", "/api/v2/secret-rotations/any/%s/rotate-secrets" % r["id"], timeout=30)
        except OSError:
            pass
        deadline = time.monotonic() + 30
        while self.server.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse(self.server.alive(), "the server did not stop after the push")
        del self.server.extra_env["COFFER_TEST_ROTATION_CRASH_AT"]
        self.server.start()
        # the claim's lease ends; the receiver's clock moves with the server's, or it would take the
        # signatures as replayed
        self.control("/_fake/config", {"clockOffset": LEASE_S + 1}, self.receiver)
        self.addCleanup(self.control, "/_fake/config", {"clockOffset": 0}, self.receiver)
        self.advance_clock(LEASE_S + 1)
        r = self.done(r["id"], 1, timeout=60)
        pushes = [e for e in self.events(r["id"]) if e["event"] == "rotation.push"]
        self.assertEqual([(e["delivery"], e["reason"]) for e in pushes],
                         [(r["id"] + ".1", "stored"), (r["id"] + ".1", "repeated delivery")], pushes)
        self.assertEqual(self.events(r["id"])[-1]["reason"], "signed in")

    def test_bad_inputs_name_the_field(self):
        r = self.api("POST", "/api/v1/app-connections/webhook", body={
            "name": harness.unique("hook"), "method": "signing-secret",
            "credentials": {"signingSecret": "too-short-" + uuid.uuid4().hex[:8]}})
        body = self.assertError(r, 422, "ValidationFailure", "credentials.signingSecret: at least 32 characters")
        self.assertEqual(body["details"][0]["field"], "credentials.signingSecret")
        self.assertError(self.api("POST", "/api/v1/app-connections/webhook/%s/check" % self.hook_conn["id"]),
                         400, None, "cannot be checked on its own")
        url = self.receiver.url + "/push"
        cases = [
            ({"url": "http://hooks.example.com/push"}, "\"url\" must be https"),
            ({"url": url + "?token=abc"}, "\"url\" must not hold a query string"),
            ({"url": url.replace("http://", "http://u:p@")}, "must not hold a user name"),
            ({}, "\"url\" is required"),
            ({"url": url, "verifyUrl": "ftp://127.0.0.1/v"}, "\"verifyUrl\" must be https"),
            ({"url": url, "token": "x"}, "unknown field \"token\""),
        ]
        for config, words in cases:
            with self.subTest(config=config):
                consumers = [{"type": "webhook", "connectionId": self.hook_conn["id"], "config": config}]
                self.assertError(self.api("POST", "/api/v2/secret-rotations/azure-client-secret", body=dict(
                    self.create_body(), consumers=consumers)), 422, None, words)
        for consumer, words in [({"type": "webhook", "config": {"url": url}}, "connectionId"),
                                ({"type": "webhook", "connectionId": self.graph_conn["id"], "config": {"url": url}},
                                 "not webhook")]:
            with self.subTest(consumer=consumer):
                self.assertError(self.api("POST", "/api/v2/secret-rotations/azure-client-secret", body=dict(
                    self.create_body(), consumers=[consumer])), 422, None, words)

    def create_body(self):
        return {"name": harness.unique("bad"), "projectId": self.pid, "environment": "dev", "secretPath": "/",
                "connectionId": self.graph_conn["id"],
                "parameters": {"objectId": self.object_id, "clientId": self.app_id},
                "secretsMapping": {"clientId": "A", "clientSecret": "B"}}


if __name__ == "__main__":
    unittest.main()
