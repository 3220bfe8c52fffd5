"""What a newcomer meets before the tour: a server whose port is taken, and which server the CLI talks to.

- `coffer server` on an address in use says "cannot listen on HOST:PORT: address already in use", exits 1 and
  prints no admin token: the first token is made only once the server listens, so the next start that succeeds
  prints the one to use (docs/server.md, "The admin token"). TLS files that cannot serve say so, also without a
  token.
- The CLI's server is --domain, else COFFER_API_URL (INFISICAL_API_URL), else that of the last `coffer login` that
  stored its token (whatever the token used), else http://127.0.0.1:8080.
- --plain of projects create, identities create, universal-auth attach and client-secrets create prints only the
  id (client id, secret) for `X=$(coffer ...)`.
"""

import os
import re
import shutil
import socket
import tempfile
import unittest
import uuid

import harness

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TOKEN_RE = re.compile(r"^admin token: (cfadm_\S+)$", re.M)


class PortInUse(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="coffer-first-start-")
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.stop()
            report = s.sanitizer_report()
            s.cleanup()
            if report:
                self.fail("sanitizer report in server stderr:\n" + report)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def server(self, port, args=()):
        s = harness.Server(data_dir=os.path.join(self.tmp, "data"), addr="127.0.0.1:%d" % port,
                           bootstrap_token=None, args=args)
        self.servers.append(s)
        return s

    def test_taken_port_is_named_and_no_token_is_printed(self):
        taken = socket.socket()
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        try:
            first = self.server(port)
            with self.assertRaises(harness.ServerStartError):
                first.start()
            self.assertEqual(first.proc.returncode, 1)
            self.assertIn("coffer server: cannot listen on 127.0.0.1:%d: address already in use\n" % port,
                          first.stderr)
            self.assertNotIn("port 0", first.stderr)
            self.assertNotIn("admin token", first.stdout)
            self.assertNotRegex(first.stdout + first.stderr, r"cfadm_")
        finally:
            taken.close()
        # The port is free now: this start is the first that serves, and its token is the admin token.
        second = self.server(port)
        second.start()
        second.wait_for_stdout(TOKEN_RE.pattern)
        tokens = TOKEN_RE.findall(second.stdout)
        self.assertEqual(len(tokens), 1, second.stdout)
        second.token = tokens[0]
        self.assertEqual(second.api("GET", "/api/v1/workspace").status, 200)
        self.assertEqual(second.api("GET", "/api/v1/workspace", token="cfadm_" + "A" * 43).status, 401)
        # A restart keeps it and prints none.
        second.stop()
        second.start()
        self.assertNotIn("admin token", second.stdout)
        self.assertEqual(second.api("GET", "/api/v1/workspace").status, 200)

    def test_tls_files_that_cannot_serve_print_no_token(self):
        cert, key = os.path.join(self.tmp, "cert.pem"), os.path.join(self.tmp, "key.pem")
        for path in (cert, key):
            with open(path, "w") as f:
                f.write("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
        s = self.server(0, args=["--tls-cert", cert, "--tls-key", key])
        with self.assertRaises(harness.ServerStartError):
            s.start()
        self.assertEqual(s.proc.returncode, 1)
        self.assertIn("the TLS certificate or key was refused", s.stderr)
        self.assertNotIn("admin token", s.stdout)
        self.assertNotIn("cannot listen", s.stderr)


class DefaultServer(harness.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix="coffer-default-server-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    def env(self, **extra):
        """No server address in the environment; a configuration directory of this test's own."""
        base = {"XDG_CONFIG_HOME": os.path.join(self.tmp, "cfg-" + self._testMethodName),
                "HOME": os.path.join(self.tmp, "home")}
        base.update(extra)
        return harness.base_env(base)

    def coffer(self, *args, **extra):
        return harness.run(list(args), env=self.env(**extra))

    def plain(self, *args):
        rc, out, err = self.server.cli(*args)
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.endswith("\n") and out.count("\n") == 1, repr(out))
        return out.strip(), err

    def identity(self):
        """A project and an identity with universal auth that may read it: (project id, client id, secret)."""
        pid, _ = self.plain("projects", "create", "default server " + uuid.uuid4().hex[:8], "--plain")
        self.assertRegex(pid, "^%s$" % UUID_RE)
        iid, _ = self.plain("identities", "create", "ci-" + uuid.uuid4().hex[:8], "--plain")
        self.assertRegex(iid, "^%s$" % UUID_RE)
        client_id, _ = self.plain("identities", "universal-auth", "attach", iid, "--plain")
        rc, out, err = self.server.cli("identities", "universal-auth", "get", iid, "--output", "json")
        self.assertEqual(rc, 0, err)
        self.assertIn('"clientId": "%s"' % client_id, out)
        secret, err = self.plain("identities", "client-secrets", "create", iid, "--plain")
        self.assertTrue(secret.startswith("cfcs_"), secret)
        self.assertEqual(err, "", "--plain: nothing on standard error")
        rc, out, err = self.server.cli("identities", "client-secrets", "create", iid)
        self.assertEqual(rc, 0, err)
        self.assertIn("it is shown only this once", err, "without --plain the details stay")
        rc, _, err = self.server.cli("identities", "add-to-project", iid, "--projectId", pid, "--role", "viewer")
        self.assertEqual(rc, 0, err)
        return pid, client_id, secret

    def test_the_last_login_names_the_server(self):
        pid, client_id, secret = self.identity()
        dead = "http://127.0.0.1:%d" % harness.free_port()
        # No login yet: the built-in default, http://127.0.0.1:8080, which is not this server (and may be
        # nothing, or another's server on this machine).
        rc, _, err = self.coffer("projects", "list", COFFER_TOKEN=self.server.token)
        self.assertEqual(rc, 1, err)
        # A login that stores its token makes its server the default...
        rc, out, err = self.coffer("login", "--domain", self.server.url, "--client-id", client_id,
                                   "--client-secret", secret)
        self.assertEqual(rc, 0, err)
        self.assertIn("commands given no --domain now talk to", err)
        # ...with its own token...
        rc, out, err = self.coffer("secrets", "list", "--projectId", pid)
        self.assertEqual(rc, 0, err)
        # ...and with any other (the admin's here).
        rc, out, err = self.coffer("projects", "list", COFFER_TOKEN=self.server.token)
        self.assertEqual(rc, 0, err)
        self.assertIn(pid, out)
        # A later login without --domain goes there too.
        rc, out, err = self.coffer("login", "--client-id", client_id, "--client-secret", secret, "--plain")
        self.assertEqual(rc, 0, err)
        # The environment and --domain still win.
        for extra, args in (({"COFFER_API_URL": dead}, ()), ({"INFISICAL_API_URL": dead}, ()),
                            ({}, ("--domain", dead))):
            rc, _, err = self.coffer("projects", "list", *args, COFFER_TOKEN=self.server.token, **extra)
            self.assertEqual(rc, 1, (extra, args))
            self.assertIn(dead.split("//")[1], err)
        rc, _, err = self.coffer("login", "--domain", dead, "--client-id", client_id, "--client-secret", secret)
        self.assertEqual(rc, 1)
        self.assertIn(dead.split("//")[1], err)

    def test_plain_usage(self):
        for args in (["projects", "create", "--help"], ["identities", "create", "--help"],
                     ["identities", "universal-auth", "attach", "--help"],
                     ["identities", "client-secrets", "create", "--help"]):
            rc, out, _ = harness.run(args)
            self.assertEqual(rc, 0)
            self.assertIn("--plain", out, args)
        # Not for the other auth methods' attach, nor update.
        rc, _, err = self.server.cli("identities", "universal-auth", "update", str(uuid.uuid4()), "--plain")
        self.assertEqual(rc, 2)
        self.assertIn("plain", err)


if __name__ == "__main__":
    unittest.main()
