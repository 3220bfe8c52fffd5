"""The outbound destination policy (docs/server.md, "Outbound connections").

URLs an administrator configures (a webhook channel, a JWKS URL, the audit HTTP stream, the SMTP server) must not reach link-local or
cloud metadata addresses (169.254.169.254, fe80::/10, and the same written as IPv4-mapped IPv6) unless the server
is started with --outbound-allow (COFFER_OUTBOUND_ALLOW). Checked:

- by default each of them is refused with a message naming the outbound policy and the flag;
- with --outbound-allow the same destinations are tried: they fail for another reason (nothing answers there in a
  test), so the message no longer names the policy;
- loopback stays reachable (a JWKS URL on localhost, resolved by DNS, fails only because nothing listens);
- bad --outbound-allow values (flag and environment) stop the server from starting.
"""

import socket
import unittest

import harness
from test_expiry import stamp, DAY
from test_identities import IdentityHelpers
from test_jwt_auth import Keys, claims, jwt_path, LOGIN

POLICY = "outbound policy"
FLAG = "--outbound-allow"


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WithKeys:
    """Signing keys (test_jwt_auth.Keys) for the class, mixed in before a harness.ServerTestCase."""

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

    def login_with_closed_jwks(self):
        """A JWT login whose JWKS URL is on loopback, by name, where nothing listens: 401 naming the URL."""
        ident = self.create_identity()
        url = "http://localhost:%d/jwks" % closed_port()
        self.ok("POST", jwt_path(ident["id"]), body={"configurationType": "jwks", "jwksUrl": url})
        r = self.api("POST", LOGIN, body={"identityId": ident["id"], "jwt": self.keys.sign("rsa", claims())},
                     token=None)
        self.assertError(r, 401, "Unauthorized", "JWKS endpoint %s could not be fetched" % url)
        return r


class PolicyChecks(WithKeys):
    """Shared checks, mixed into a harness.ServerTestCase started with or without the allow list."""

    metadata_url = "https://169.254.169.254/latest/meta-data/"
    stream_url = None
    allowed = False

    def check(self, message, what):
        if self.allowed:
            self.assertNotIn(POLICY, message, what)
        else:
            self.assertIn(POLICY, message, what)
            self.assertIn(FLAG, message, what)

    def deliveries_of(self, channel_body):
        """Makes a project with a secret that expires soon and a channel for it; runs a pass; the channel's log."""
        pid = self.ok("POST", "/api/v2/workspace", body={"projectName": harness.unique("p")})["project"]["id"]
        self.ok("POST", "/api/v3/secrets/raw/OUTBOUND_KEY",
                body={"workspaceId": pid, "environment": "prod", "secretValue": "v",
                      "expiresAt": stamp(10 * DAY)})
        channel = self.ok("POST", "/api/v1/notifications/channels",
                          body=dict(channel_body, workspaceId=pid))["channel"]
        self.ok("POST", "/api/v1/notifications/run")
        log = [d for d in self.ok("GET", "/api/v1/notifications/deliveries")["deliveries"]
               if d["channelId"] == channel["id"]]
        self.assertTrue(log, "no notice for the channel")
        for d in log:
            self.assertGreaterEqual(d["attempts"], 1)
            self.assertTrue(d["lastError"])
        return log

    def test_webhook_channel(self):
        for d in self.deliveries_of({"type": "webhook", "url": self.metadata_url}):
            self.check(d["lastError"], "webhook")
            if not self.allowed:
                self.assertIn("169.254.169.254", d["lastError"])

    def test_smtp_server(self):
        for d in self.deliveries_of({"type": "email", "recipients": "ops@example.com"}):
            self.assertTrue(d["lastError"].startswith("SMTP: "), d["lastError"])
            self.check(d["lastError"], "smtp")

    def test_jwks_url(self):
        ident = self.create_identity()
        for url in (self.metadata_url, "https://[::ffff:169.254.169.254]/jwks", "https://[fe80::1]/jwks"):
            with self.subTest(url=url):
                self.ok("POST" if url == self.metadata_url else "PATCH", jwt_path(ident["id"]),
                        body={"configurationType": "jwks", "jwksUrl": url})
                r = self.api("POST", LOGIN, body={"identityId": ident["id"], "jwt": self.keys.sign("rsa", claims())},
                             token=None)
                self.assertError(r, 401, "Unauthorized", "JWKS endpoint %s could not be fetched" % url)
                self.check(r.json["message"], url)

    def test_loopback_by_name_stays_reachable(self):
        self.assertNotIn(POLICY, self.login_with_closed_jwks().json["message"])

    def test_audit_stream(self):
        self.ok("GET", "/api/v1/notifications/channels")  # an audited request
        self.assertTrue(self.server.wait_for_stderr(r"audit stream: cannot deliver", timeout=15),
                        self.server.stderr[-2000:])
        line = [l for l in self.server.stderr.splitlines() if "audit stream: cannot deliver" in l][0]
        self.check(line, "audit stream")


class DefaultPolicy(PolicyChecks, IdentityHelpers, harness.ServerTestCase):
    server_args = ("--notify-interval", "0", "--audit-http", "https://[::ffff:169.254.169.254]/ingest",
                   "--smtp-url", "smtp://169.254.169.254:25", "--smtp-from", "coffer@example.com")
    server_env = {"COFFER_LOGIN_MAX_FAILURES": "1000"}


class AllowedByFlag(PolicyChecks, IdentityHelpers, harness.ServerTestCase):
    # fe80::1 without a zone fails at once, so the stream's retries stay quick
    server_args = ("--notify-interval", "0", "--outbound-allow", "169.254.0.0/16, fe80::/10",
                   "--audit-http", "https://[fe80::1]/ingest",
                   "--smtp-url", "smtp://[fe80::1]:25", "--smtp-from", "coffer@example.com")
    server_env = {"COFFER_LOGIN_MAX_FAILURES": "1000"}
    allowed = True


class LibrariesAtFirstUse(WithKeys, IdentityHelpers, harness.ServerTestCase):
    """libcurl, libpq, libmariadb, GPGME, cjose and libcrypto are loaded at their first use (util/dynlib.h): a
    server that has not made an outbound request has not mapped libcurl, one on SQLite has never mapped libpq,
    and one that has verified no JWT has mapped neither cjose nor libcrypto."""

    def mapped(self):
        with open("/proc/%d/maps" % self.server.proc.pid) as f:
            files = {line.split()[-1].rsplit("/", 1)[-1] for line in f if "/" in line}
        return {lib for lib in ("libcurl.so", "libpq.so", "libmariadb.so", "libgpgme.so", "libldap", "libkrb5.so",
                                "libcjose.so", "libcrypto.so")
                if any(name.startswith(lib) for name in files)}

    def test_loaded_only_once_used(self):
        pid = self.ok("POST", "/api/v2/workspace", body={"projectName": harness.unique("p")})["project"]["id"]
        self.ok("POST", "/api/v3/secrets/raw/LIBS_KEY",
                body={"workspaceId": pid, "environment": "prod", "secretValue": "v"})
        self.ok("GET", "/api/v3/secrets/raw?workspaceId=%s&environment=prod" % pid)
        # on PostgreSQL the store itself is libpq's first use (and libpq brings Kerberos and LDAP)
        on_pg = {"libpq.so", "libldap", "libkrb5.so", "libcrypto.so"} if harness.PG_DIR else set()
        self.assertEqual(self.mapped(), on_pg)
        # a JWKS fetched over HTTP: libcurl is loaded then, and works (the fetch fails only because
        # nothing listens there)
        self.login_with_closed_jwks()
        self.assertIn("libcurl.so", self.mapped())
        self.assertFalse(self.mapped() & {"libmariadb.so", "libgpgme.so"})


class AllowedByEnvironment(unittest.TestCase):

    def test_environment_twin(self):
        s = harness.Server(args=["--audit-http", "https://[fe80::1]/ingest"],
                           env={"COFFER_OUTBOUND_ALLOW": "fe80::/10"})
        try:
            s.start()
            s.api("GET", "/api/v1/notifications/channels")
            self.assertTrue(s.wait_for_stderr(r"audit stream: cannot deliver", timeout=15))
            self.assertNotIn(POLICY, s.stderr)
        finally:
            self.assertEqual(s.stop(), 0)
            s.cleanup()


class Settings(unittest.TestCase):

    def test_bad_allow_lists_refuse_to_start(self):
        harness.assert_start_refused(self, (
            (["--outbound-allow", "metadata"], "--outbound-allow: 'metadata' is not an IP address or CIDR range"),
            (["--outbound-allow", "169.254.0.0/33"], "'169.254.0.0/33'"),
            (["--outbound-allow", "169.254.0.0/16,"], "--outbound-allow"),
            (["--outbound-allow", ""], "--outbound-allow: at least one address range"),
            (["--outbound-allow", "1" * 2000], "--outbound-allow: at most 1024 characters"),
        ))
        s = harness.Server(env={"COFFER_OUTBOUND_ALLOW": "fe80::/200"})
        try:
            with self.assertRaises(harness.ServerStartError) as caught:
                s.start()
            self.assertIn("'fe80::/200'", str(caught.exception))
        finally:
            s.stop()
            s.cleanup()


if __name__ == "__main__":
    unittest.main()
