"""coffer run / coffer export --fallback-cache (docs/agent.md "Pipelines that survive an outage"): a pipeline
whose server stops between two steps goes on with the cached secrets and says so loudly, naming the cache's
age; a cache older than --fallback-max-age is not used; a cache made with another identity's token is useless
(another file name, and it does not decrypt with this token); a refusal (403, 401) never falls back; the cache
file holds neither the values nor the token in clear; bad option combinations are usage errors."""
import os
import shutil
import stat
import tempfile
import time
import unittest

import harness
from harness import ServerTestCase, unique
from test_pipeline import admin_ok, login_token, machine_identity

VALUE = "fallback-value-3f9a"


@unittest.skipIf(harness.BACKEND == "postgres", "the cache is the CLI's: it does not depend on the server's "
                 "storage backend")
class FallbackCacheTests(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        cls.pid = admin_ok(s, "POST", "/api/v2/workspace", body={"projectName": unique("fb")})["project"]["id"]
        admin_ok(s, "POST", "/api/v3/secrets/raw/A",
                 body={"workspaceId": cls.pid, "environment": "dev", "secretPath": "/", "secretValue": VALUE})

    def setUp(self):
        super().setUp()
        self.cache = tempfile.mkdtemp(prefix="coffer-fb-")
        self.addCleanup(shutil.rmtree, self.cache, True)

    def identity(self):
        iid, cid, secret = machine_identity(self.server, self.pid, "viewer")
        return iid, login_token(self.server, cid, secret)

    def coffer(self, token, *args, cache=None):
        env = {"COFFER_FALLBACK_CACHE_DIR": cache or self.cache}
        return self.server.cli(*args, token=token, env=env)

    def run_cmd(self, token, *extra, cache=None):
        return self.coffer(token, "run", "--projectId", self.pid, "--env", "dev", "--fallback-cache", *extra,
                           "--", "sh", "-c", 'printf %s "$A"', cache=cache)

    def export_cmd(self, token, *extra, cache=None):
        return self.coffer(token, "export", "--projectId", self.pid, "--env", "dev", "--fallback-cache", *extra,
                           cache=cache)

    def stopped(self):
        """Stops the server for the rest of the test; it is started again (on a new port) at its end."""
        self.assertEqual(self.server.stop(), 0)

    def restart(self):
        if not self.server.alive():
            self.server.start()

    def test_server_stopped_mid_pipeline(self):
        _, token = self.identity()
        try:
            rc, out, err = self.export_cmd(token)
            self.assertEqual((rc, out), (0, "A='%s'\n" % VALUE), err)
            self.assertNotIn("FALLBACK", err)
            rc, out, err = self.run_cmd(token)
            self.assertEqual((rc, out), (0, VALUE), err)
            files = os.listdir(self.cache)
            self.assertEqual(len(files), 2, files)  # one per command
            for name in files:
                path = os.path.join(self.cache, name)
                self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
                with open(path, "rb") as f:
                    data = f.read()
                self.assertNotIn(VALUE.encode(), data)
                self.assertNotIn(token.encode(), data)
                self.assertNotIn(self.pid.encode(), data)
            url = self.server.url
            self.stopped()
            rc, out, err = self.run_cmd(token)
            self.assertEqual((rc, out), (0, VALUE), err)
            self.assertIn("WARNING: the server at %s/api cannot be reached; using the FALLBACK CACHE saved " % url,
                          err)
            self.assertRegex(err, r"saved \d+s ago \(\d{4}-\d\d-\d\dT")
            rc, out, err = self.export_cmd(token)
            self.assertEqual((rc, out), (0, "A='%s'\n" % VALUE), err)
            self.assertIn("FALLBACK CACHE", err)
            # Without the option nothing is cached or read: the step fails as before.
            rc, out, err = self.server.cli("export", "--projectId", self.pid, "--env", "dev", token=token,
                                           env={"COFFER_FALLBACK_CACHE_DIR": self.cache})
            self.assertEqual(rc, 1)
            self.assertIn("nothing is listening", err)
            self.assertNotIn(VALUE, out)
            # Other folders have no cache.
            rc, out, err = self.export_cmd(token, "--path", "/elsewhere")
            self.assertEqual(rc, 1)
            self.assertIn("there is no fallback cache for this token and these secrets", err)
        finally:
            self.restart()

    def test_cache_too_old_is_not_used(self):
        _, token = self.identity()
        try:
            rc, out, err = self.export_cmd(token, "--fallback-max-age", "1s")
            self.assertEqual(rc, 0, err)
            time.sleep(1.2)
            self.stopped()
            rc, out, err = self.export_cmd(token, "--fallback-max-age", "1s")
            self.assertEqual(rc, 1)
            self.assertRegex(err, r"the fallback cache is \ds old \(saved .*\), older than --fallback-max-age 1s: "
                             r"not used")
            self.assertNotIn(VALUE, out)
            rc, out, err = self.export_cmd(token)  # the default, 24h, takes it
            self.assertEqual((rc, out), (0, "A='%s'\n" % VALUE), err)
        finally:
            self.restart()

    def test_cache_of_another_identity_is_useless(self):
        _, token_a = self.identity()
        _, token_b = self.identity()
        _, token_c = self.identity()
        cache_a = tempfile.mkdtemp(prefix="coffer-fb-a-")
        cache_b = tempfile.mkdtemp(prefix="coffer-fb-b-")
        self.addCleanup(shutil.rmtree, cache_a, True)
        self.addCleanup(shutil.rmtree, cache_b, True)
        try:
            self.assertEqual(self.export_cmd(token_a, cache=cache_a)[0], 0)
            self.assertEqual(self.export_cmd(token_b, cache=cache_b)[0], 0)
            (name_a,), (name_b,) = os.listdir(cache_a), os.listdir(cache_b)
            self.assertNotEqual(name_a, name_b)  # the name is keyed by the token
            self.stopped()
            # B's file replaced by A's: it does not open with B's token.
            shutil.copyfile(os.path.join(cache_a, name_a), os.path.join(cache_b, name_b))
            rc, out, err = self.export_cmd(token_b, cache=cache_b)
            self.assertEqual(rc, 1)
            self.assertIn("cannot be opened with this token", err)
            self.assertNotIn(VALUE, out)
            # A's cache under C's token: no file by that name.
            rc, out, err = self.export_cmd(token_c, cache=cache_a)
            self.assertEqual(rc, 1)
            self.assertIn("no fallback cache for this token", err)
            # A flipped byte in A's own file: refused, not read.
            path = os.path.join(cache_a, name_a)
            with open(path, "r+b") as f:
                data = bytearray(f.read())
                data[-5] ^= 1
                f.seek(0)
                f.write(data)
            rc, out, err = self.export_cmd(token_a, cache=cache_a)
            self.assertEqual(rc, 1)
            self.assertIn("cannot be opened with this token", err)
        finally:
            self.restart()

    def test_refusals_never_fall_back(self):
        iid, token = self.identity()
        self.assertEqual(self.run_cmd(token)[0], 0)
        self.assertEqual(self.export_cmd(token)[0], 0)
        # 403: the membership is gone; the server answers, so the cache is not used.
        r = self.api("DELETE", "/api/v2/workspace/%s/identity-memberships/%s" % (self.pid, iid))
        self.assertEqual(r.status, 200, r.body)
        for rc, out, err in (self.run_cmd(token), self.export_cmd(token)):
            self.assertEqual(rc, 1)
            self.assertIn("HTTP 403", err)
            self.assertNotIn("FALLBACK", err)
            self.assertNotIn(VALUE, out)
        # 401: the token is revoked.
        r = self.api("POST", "/api/v1/auth/token/revoke", token=None, body={"accessToken": token})
        self.assertEqual(r.status, 200, r.body)
        rc, out, err = self.export_cmd(token)
        self.assertEqual(rc, 1)
        self.assertIn("HTTP 401", err)
        self.assertNotIn(VALUE, out)

    def test_usage_errors(self):
        _, token = self.identity()
        cases = [
            (("export", "--projectId", self.pid, "--fallback-max-age", "1h"), "--fallback-max-age needs --fallback-cache"),
            (("export", "--projectId", self.pid, "--fallback-cache", "--fallback-max-age", "soon"), "--fallback-max-age"),
            (("run", "--projectId", self.pid, "--fallback-cache", "--fallback-max-age", "0", "--", "true"),
             "--fallback-max-age"),
        ]
        for args, words in cases:
            with self.subTest(args=args):
                rc, out, err = self.coffer(token, *args)
                self.assertEqual(rc, 2, err)
                self.assertIn(words, err)
        # A login with the login flags makes a new token each run: refused, nothing cached.
        _, cid, secret = machine_identity(self.server, self.pid, "viewer")
        rc, out, err = self.server.cli("export", "--projectId", self.pid, "--fallback-cache", "--client-id", cid,
                                       "--client-secret", secret, token=None,
                                       env={"COFFER_FALLBACK_CACHE_DIR": self.cache})
        self.assertEqual(rc, 2, err)
        self.assertIn("--fallback-cache needs a token that stays the same from run to run", err)
        self.assertNotIn(VALUE, out)
        self.assertEqual(os.listdir(self.cache), [])


if __name__ == "__main__":
    unittest.main()
