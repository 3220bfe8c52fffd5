"""coffer agent (docs/agent.md) against a real server: Infisical's configuration format read with libyaml,
universal-auth login from files, the token written to a sink, templates rendered to files atomically with
the mode asked for, rewritten only when the secrets change, then a command run and a process signalled;
systemd's READY=1/STOPPING=1 over NOTIFY_SOCKET; token renewal and a new login after the token is revoked;
template and configuration errors naming file, line and column; the list's ETag and 304 (If-None-Match)
for a reader, a 403 (never a 304) for a caller who may not read; no secret value in the agent's output."""
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

import harness
from harness import ADMIN_TOKEN, ServerTestCase, unique
from test_audit import AuditHelpers
from test_jwt_auth import JwtAuthTestCase, claims
from test_kubernetes_auth import KubernetesAuthTestCase
from test_pipeline import admin_ok, login_token, machine_identity

SECRET_A = "alpha-value-5d1e"
SECRET_B = "beta value with spaces 77c0"


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


@unittest.skipIf(harness.BACKEND == "postgres", "the agent is a client: its behaviour does not depend on the "
                 "server's storage backend")
class AgentTests(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        cls.pid = admin_ok(s, "POST", "/api/v2/workspace", body={"projectName": unique("agent")})["project"]["id"]
        for key, value in (("A", SECRET_A), ("B", SECRET_B)):
            admin_ok(s, "POST", "/api/v3/secrets/raw/" + key,
                     body={"workspaceId": cls.pid, "environment": "dev", "secretPath": "/", "secretValue": value})
        cls.identity_id, cls.client_id, cls.client_secret = machine_identity(s, cls.pid, "viewer")
        cls.outsider = machine_identity(s, admin_ok(s, "POST", "/api/v2/workspace",
                                                    body={"projectName": unique("other")})["project"]["id"])

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="coffer-agent-")
        self.addCleanup(subprocess.call, ["rm", "-rf", self.dir])
        self.write("client-id", self.client_id + "\n")
        self.write("client-secret", self.client_secret + "\n")

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text):
        with open(self.path(name), "w") as f:
            f.write(text)
        return self.path(name)

    def config(self, templates, extra_top="", sinks=True):
        text = ("infisical:\n  address: \"%s\"\n%s"
                "auth:\n  type: universal-auth\n  config:\n    client-id: \"%s\"\n    client-secret: \"%s\"\n"
                % (self.server.url, extra_top, self.path("client-id"), self.path("client-secret")))
        if sinks:
            text += "sinks:\n  - type: file\n    config:\n      path: \"%s\"\n" % self.path("token")
        text += "templates:\n" + templates
        return self.write("agent.yaml", text)

    def set_secret(self, key, value):
        admin_ok(self.server, "PATCH", "/api/v3/secrets/raw/" + key,
                 body={"workspaceId": self.pid, "environment": "dev", "secretPath": "/", "secretValue": value})

    def start_agent(self, config_path, env=None):
        out = open(self.path("agent.log"), "w+")
        proc = subprocess.Popen([harness.COFFER_BIN, "agent", "--config", config_path], stdout=out,
                                stderr=subprocess.STDOUT, env=harness.base_env(env))

        def stop():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                self.assertEqual(proc.wait(timeout=10), 0, self.log())
            out.close()
            log = self.log()
            for value in (SECRET_A, SECRET_B, self.client_secret, "changed-secret-value-91"):
                self.assertNotIn(value, log)
            self.assertIsNone(harness.sanitizer_report(log))
        self.addCleanup(stop)
        return proc

    def log(self):
        return read(self.path("agent.log")) or ""

    def agent_run(self, config_path, timeout=20):
        r = subprocess.run([harness.COFFER_BIN, "agent", "--config", config_path], capture_output=True,
                           text=True, env=harness.base_env(), timeout=timeout)
        self.assertIsNone(harness.sanitizer_report(r.stderr))
        return r

    # ---- rendering ----

    def test_renders_rewrites_only_on_change_runs_command_and_signals(self):
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify_path = self.path("notify.sock")
        notify.bind(notify_path)
        notify.settimeout(15)
        self.addCleanup(notify.close)
        # A process that records the SIGHUPs it gets, named by a pid file.
        hup_log = self.path("hups")
        trapped = self.path("trapped")
        # Python rather than a shell trap: a shell cannot trap a signal it was started with ignored (as under
        # nohup), while a handler set here takes the signal whatever the process inherited.
        reloader = subprocess.Popen([sys.executable, "-c",
                                     "import signal, time\n"
                                     "def hup(*_):\n"
                                     "    with open(%r, 'a') as f:\n"
                                     "        f.write('hup\\n')\n"
                                     "signal.signal(signal.SIGHUP, hup)\n"
                                     "open(%r, 'w').close()\n"
                                     "while True:\n"
                                     "    time.sleep(0.05)\n" % (hup_log, trapped)])
        self.addCleanup(reloader.wait)
        self.addCleanup(reloader.kill)
        # a SIGHUP before its handler is set would end it instead of being counted
        wait_for(lambda: os.path.exists(trapped), what="the reloader's handler")
        self.write("app.pid", "%d\n" % reloader.pid)
        self.write("env.tmpl", '{{- with secret "%s" "dev" "/" }}{{ range . }}{{ .Key }}={{ .Value }}\n'
                   '{{ end }}{{ end -}}\n' % self.pid)
        cfg = self.config(
            "  - source-path: env.tmpl\n"
            "    destination-path: \"%s\"\n"
            "    config:\n"
            "      polling-interval: 1s\n"
            "      permissions: \"0640\"\n"
            "      execute:\n"
            "        command: \"echo ran >> %s\"\n"
            "        timeout: 5\n"
            "  - template-content: |\n"
            "      b={{ (getSecretByName \"%s\" \"dev\" \"/\" \"B\").Value }}\n"
            "    destination-path: \"%s\"\n"
            "    config:\n"
            "      polling-interval: 1s\n"
            "      pid-file: \"%s\"\n"
            "      signal: HUP\n"
            % (self.path("app.env"), self.path("ran"), self.pid, self.path("b.txt"), self.path("app.pid")))
        self.start_agent(cfg, env={"NOTIFY_SOCKET": notify_path})
        self.assertEqual(notify.recv(4096).split(b"\n")[0], b"READY=1")
        self.assertEqual(read(self.path("app.env")), "A=%s\nB=%s\n" % (SECRET_A, SECRET_B))
        self.assertEqual(read(self.path("b.txt")), "b=%s\n" % SECRET_B)
        self.assertEqual(stat.S_IMODE(os.stat(self.path("app.env")).st_mode), 0o640)
        self.assertEqual(stat.S_IMODE(os.stat(self.path("token")).st_mode), 0o600)
        token = read(self.path("token"))
        self.assertEqual(self.api("GET", "/api/v3/secrets/raw", token=token,
                                  query={"workspaceId": self.pid, "environment": "dev"}).status, 200)
        wait_for(lambda: read(self.path("ran")) == "ran\n", what="the command")
        wait_for(lambda: read(hup_log) == "hup\n", what="the first SIGHUP")
        inode = os.stat(self.path("app.env")).st_ino
        answered_304 = sum(1 for l in self.server.request_log_lines() if "status=304" in l)
        # Three polls with nothing changed: no rewrite, no command, no signal, and only 304 answers.
        time.sleep(3.2)
        self.assertGreaterEqual(sum(1 for l in self.server.request_log_lines() if "status=304" in l),
                                answered_304 + 4)
        self.assertEqual(os.stat(self.path("app.env")).st_ino, inode)
        self.assertEqual(read(self.path("ran")), "ran\n")
        self.assertEqual(read(hup_log), "hup\n")
        # A change of B: both files follow, the command runs and the process is signalled once more.
        self.set_secret("B", "changed-secret-value-91")
        wait_for(lambda: read(self.path("b.txt")) == "b=changed-secret-value-91\n", what="the new value")
        wait_for(lambda: read(self.path("app.env")) == "A=%s\nB=changed-secret-value-91\n" % SECRET_A,
                 what="the re-rendered env file")
        wait_for(lambda: read(self.path("ran")) == "ran\nran\n", what="the second command")
        wait_for(lambda: read(hup_log) == "hup\nhup\n", what="the second SIGHUP")
        self.assertEqual([n for n in os.listdir(self.dir) if "coffer-agent-" in n], [])
        self.set_secret("B", SECRET_B)

    def test_renews_and_logs_in_again_after_revocation(self):
        iid, cid, secret = machine_identity(self.server, self.pid, "viewer")
        admin_ok(self.server, "PATCH", "/api/v1/auth/universal-auth/identities/" + iid,
                 body={"accessTokenTTL": 3, "accessTokenMaxTTL": 3600})
        self.write("client-id", cid)
        self.write("client-secret", secret)
        cfg = self.config("  - template-content: '{{ with getSecretByName \"%s\" \"dev\" \"/\" \"A\" }}{{ .Value }}"
                          "{{ end }}'\n    destination-path: \"%s\"\n    config:\n      polling-interval: 1s\n"
                          % (self.pid, self.path("a.txt")))
        self.start_agent(cfg)
        wait_for(lambda: read(self.path("a.txt")) == SECRET_A, what="the render")
        first = read(self.path("token"))
        wait_for(lambda: "renewed: access token valid for 3s" in self.log(), timeout=8, what="a renewal")
        self.assertEqual(read(self.path("token")), first)
        r = self.api("POST", "/api/v1/auth/token/revoke", token=None, body={"accessToken": first})
        self.assertEqual(r.status, 200, r.body)
        wait_for(lambda: read(self.path("token")) not in (None, first), timeout=10, what="a new login")
        self.assertIn("logging in again", self.log())
        self.assertEqual(self.api("GET", "/api/v3/secrets/raw", token=read(self.path("token")),
                                  query={"workspaceId": self.pid, "environment": "dev"}).status, 200)

    def test_refused_renewal_means_a_new_login(self):
        # The token may live 3 s in all: the renewal after that is refused (401, max TTL) and the agent logs
        # in again. Templates poll rarely here, so only the renewals meet the server.
        iid, cid, secret = machine_identity(self.server, self.pid, "viewer")
        admin_ok(self.server, "PATCH", "/api/v1/auth/universal-auth/identities/" + iid,
                 body={"accessTokenTTL": 2, "accessTokenMaxTTL": 3})
        self.write("client-id", cid)
        self.write("client-secret", secret)
        cfg = self.config("  - template-content: 'x'\n    destination-path: \"%s\"\n    config:\n"
                          "      polling-interval: 1h\n" % self.path("x.txt"))
        self.start_agent(cfg)
        wait_for(lambda: read(self.path("token")), what="the first token")
        first = read(self.path("token"))
        wait_for(lambda: "the server refused to renew the token" in self.log(), timeout=10, what="a refused renewal")
        self.assertIn("max TTL", self.log())
        wait_for(lambda: read(self.path("token")) not in (None, first), timeout=5, what="the new login's token")
        self.assertEqual(self.api("GET", "/api/v3/secrets/raw", token=read(self.path("token")),
                                  query={"workspaceId": self.pid, "environment": "dev"}).status, 200)

    def test_exit_after_auth_and_refused_login(self):
        cfg = self.config("  - template-content: 'x={{ (getSecretByName \"%s\" \"dev\" \"/\" \"A\").Value }}'\n"
                          "    destination-path: \"%s\"\n" % (self.pid, self.path("once.txt")),
                          extra_top="  exit-after-auth: true\n")
        r = self.agent_run(cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(read(self.path("once.txt")), "x=" + SECRET_A)
        self.write("client-secret", "cs_wrong-secret-for-this-test-000000000000")
        r = self.agent_run(cfg)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("HTTP 401", r.stderr)
        self.assertNotIn("cs_wrong-secret", r.stderr)
        # A missing secret: named with its template position, exit 1 in the one-shot mode.
        self.write("client-secret", self.client_secret)
        cfg = self.config("  - template-content: \"line one\\n  {{ getSecretByName \\\"%s\\\" \\\"dev\\\" \\\"/\\\" "
                          "\\\"NOPE\\\" }}\"\n    destination-path: \"%s\"\n" % (self.pid, self.path("x.txt")),
                          extra_top="  exit-after-auth: true\n")
        r = self.agent_run(cfg)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("templates[0]:2:3: no secret 'NOPE' in dev:/", r.stderr)
        self.assertIsNone(read(self.path("x.txt")))

    def test_owner_and_revocation_on_shutdown(self):
        owner = group = None
        if os.geteuid() == 0:
            import grp
            import pwd
            owner, group = pwd.getpwnam("nobody"), grp.getgrgid(pwd.getpwnam("nobody").pw_gid)
        extra = ("      owner: %s\n      group: %s\n" % (owner.pw_name, group.gr_name)) if owner else ""
        cfg = self.config("  - template-content: 'k'\n    destination-path: \"%s\"\n    config:\n"
                          "      permissions: \"0604\"\n%s" % (self.path("owned"), extra),
                          extra_top="  exit-after-auth: true\n  revoke-credentials-on-shutdown: true\n")
        r = self.agent_run(cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("revoked the access token", r.stderr)
        st = os.stat(self.path("owned"))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o604)
        if owner:
            self.assertEqual((st.st_uid, st.st_gid), (owner.pw_uid, group.gr_gid))
        # The token the sink holds was revoked when the agent stopped.
        r = self.api("GET", "/api/v3/secrets/raw", token=read(self.path("token")),
                     query={"workspaceId": self.pid, "environment": "dev"})
        self.assertEqual(r.status, 401, r.body)
        if not owner:
            self.skipTest("not root: the owner and group were not set (mode and revocation were checked)")

    def test_refused_login_is_retried_with_backoff(self):
        self.write("client-secret", "cs_not-the-secret-000000000000000000000000")
        cfg = self.config("  - template-content: 'a={{ (getSecretByName \"%s\" \"dev\" \"/\" \"A\").Value }}'\n"
                          "    destination-path: \"%s\"\n    config:\n      polling-interval: 1s\n"
                          % (self.pid, self.path("a.env")))
        proc = self.start_agent(cfg)
        wait_for(lambda: "trying to log in again in 2s" in self.log(), timeout=10, what="the second retry")
        self.assertIsNone(read(self.path("a.env")))
        cpu = sum(int(x) for x in open("/proc/%d/stat" % proc.pid).read().rsplit(")", 1)[1].split()[11:13])
        self.assertLess(cpu, 50, "the agent spins while it waits to log in again")
        self.write("client-secret", self.client_secret)
        wait_for(lambda: read(self.path("a.env")) == "a=" + SECRET_A, timeout=10, what="the render after login")
        self.assertIn("HTTP 401", self.log())

    # ---- refusals ----

    def test_template_errors_name_line_and_column(self):
        cases = [
            ("ok\n  {{ range . }}", "t.tmpl:2:3: {{ range }} without {{ end }}"),
            ("{{ end }}", "t.tmpl:1:1: {{ end }} without {{ with }} or {{ range }}"),
            ("a\nbc {{ .Nope }}", "t.tmpl:2:7: unknown field '.Nope'"),
            ("{{ secret \"p\" \"dev\" }}", "t.tmpl:1:4: secret takes 3 quoted arguments"),
            ("x\n\n   {{ $v := 1 }}", "t.tmpl:3:7: unsupported '$'"),
            ("{{ .Value | upper }}", "t.tmpl:1:11: unexpected '|'"),
            ("{{ printf \"%s\" }}", "t.tmpl:1:4: unsupported 'printf'"),
            ("{{ \"open }}", "t.tmpl:1:1: unclosed action"),
            ("{{ with . }}{{ else }}{{ else }}{{ end }}", "t.tmpl:1:23: a second {{ else }}"),
        ]
        for text, message in cases:
            with self.subTest(text=text):
                self.write("t.tmpl", text)
                cfg = self.config("  - source-path: t.tmpl\n    destination-path: \"%s\"\n" % self.path("out"))
                r = self.agent_run(cfg)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(message, r.stderr)
                self.assertIsNone(read(self.path("out")))

    def test_bad_configurations_are_refused(self):
        good_auth = ("auth:\n  type: universal-auth\n  config:\n    client-id: a\n    client-secret: b\n")
        tmpl = "templates:\n  - template-content: x\n    destination-path: /tmp/never-written\n"
        cases = [
            ("infisical: [unclosed\n", "agent.yaml:2:1: "),
            ("infisical:\n  adress: http://x\n" + good_auth + tmpl, "agent.yaml:2:3: unknown key 'adress' in infisical"),
            (tmpl, "agent.yaml:1:1: missing 'auth'"),
            ("auth:\n  type: aws-iam\n  config: {}\n" + tmpl, "agent.yaml:2:9: auth type 'aws-iam' is not supported"),
            ("auth:\n  type: universal-auth\n  config:\n    client-id: a\n" + tmpl, "missing 'client-secret'"),
            (good_auth, "nothing to do: no sinks and no templates"),
            (good_auth + "sinks:\n  - type: kv\n    config: {path: x}\n", "agent.yaml:7:11: sink type 'kv' is not supported"),
            (good_auth + "templates:\n  - destination-path: /tmp/x\n", "templates[0] needs one of source-path"),
            (good_auth + "templates:\n  - template-content: x\n", "missing 'destination-path'"),
            (good_auth + tmpl + "    config:\n      permissions: \"rw\"\n", "'permissions' must be an octal mode"),
            (good_auth + tmpl + "    config:\n      polling-interval: soon\n", "'polling-interval': "),
            (good_auth + tmpl + "    config:\n      signal: HUP\n", "'signal' needs 'pid-file'"),
            (good_auth + "templates:\n  - source-path: /nonexistent/t.tmpl\n    destination-path: /tmp/x\n",
             "cannot read the template"),
        ]
        for text, message in cases:
            with self.subTest(config=text):
                path = self.write("agent.yaml", text)
                r = self.agent_run(path)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(message, r.stderr)
        r = subprocess.run([harness.COFFER_BIN, "agent"], capture_output=True, text=True, env=harness.base_env())
        self.assertEqual(r.returncode, 2)
        self.assertIn("--config FILE is required", r.stderr)
        r = subprocess.run([harness.COFFER_BIN, "agent", "--config", self.path("missing.yaml")], capture_output=True,
                           text=True, env=harness.base_env())
        self.assertEqual(r.returncode, 1)
        self.assertIn("missing.yaml", r.stderr)

    def test_systemd_unit_is_well_formed(self):
        analyze = shutil.which("systemd-analyze")
        if not analyze:
            self.skipTest("systemd-analyze is not installed: the unit's text was not verified")
        unit = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "dist", "coffer-agent.service")
        with open(unit) as f:
            text = f.read()
        for line in ("Type=notify", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                     "ExecReload=/bin/kill -HUP $MAINPID"):
            self.assertIn(line + "\n", text)
        # Verified as installed, with ExecStart naming the binary under test.
        copy = self.write("coffer-agent.service",
                          text.replace("/usr/local/bin/coffer", os.path.abspath(harness.COFFER_BIN)))
        r = subprocess.run([analyze, "verify", copy], capture_output=True, text=True, timeout=60)
        self.assertEqual((r.returncode, r.stderr), (0, ""))


@unittest.skipIf(harness.BACKEND == "postgres", "the agent is a client: its behaviour does not depend on the "
                 "server's storage backend")
class AgentKubernetesAuth(KubernetesAuthTestCase):
    """auth.type kubernetes, against the TokenReview stand-in of test_kubernetes_auth."""

    def test_kubernetes_login_renders(self):
        project = self.create_project()
        self.set_secret(project["id"], "DB_PASSWORD", "k8s-canary-5e1")
        ident = self.create_identity()
        self.add_member(project["id"], ident["id"], "viewer")
        self.attach(ident["id"], accessTokenTTL=600)
        work = tempfile.mkdtemp(prefix="coffer-agent-k8s-")
        self.addCleanup(subprocess.call, ["rm", "-rf", work])
        token = self.sa_token()
        files = {"identity-id": ident["id"] + "\n", "sa-token": token + "\n",
                 "agent.yaml": "infisical:\n  address: %s\n  exit-after-auth: true\n"
                               "auth:\n  type: kubernetes\n  config:\n    identity-id: identity-id\n"
                               "    service-account-token: %s/sa-token\n"
                               "templates:\n  - template-content: '{{ with getSecretByName \"%s\" \"dev\" \"/\" "
                               "\"DB_PASSWORD\" }}{{ .Value }}{{ end }}'\n    destination-path: %s/db\n"
                               % (self.server.url, work, project["id"], work)}
        for name, text in files.items():
            with open(os.path.join(work, name), "w") as f:
                f.write(text)
        r = subprocess.run([harness.COFFER_BIN, "agent", "--config", "agent.yaml"], cwd=work, capture_output=True,
                           text=True, env=harness.base_env(), timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIsNone(harness.sanitizer_report(r.stderr))
        self.assertEqual(read(os.path.join(work, "db")), "k8s-canary-5e1")
        with self.mock.lock:
            _, _, body = self.mock.requests[-1]
        self.assertEqual(body["spec"]["token"], token)
        self.assertNotIn(token, r.stderr)
        self.assertNotIn("k8s-canary-5e1", r.stderr)



class AgentJwtAuth(JwtAuthTestCase):
    """auth.type jwt: a JWT read from a file (as a CI system or a workload identity writes it) against JWT auth
    with static keys (test_jwt_auth's keys, signed with the openssl CLI); the file is read again at each login."""

    @unittest.skipIf(harness.BACKEND == "postgres", "the agent's login does not depend on the storage backend")
    def test_jwt_login_renders_and_a_bad_token_is_refused(self):
        project = self.create_project()
        self.set_secret(project["id"], "API_KEY", "jwt-canary-7d2")
        ident = self.create_identity()
        self.add_member(project["id"], ident["id"], "viewer")
        self.attach_jwt(ident["id"], kinds=("ec",), accessTokenTTL=600)
        work = tempfile.mkdtemp(prefix="coffer-agent-jwt-")
        self.addCleanup(subprocess.call, ["rm", "-rf", work])
        token = self.keys.sign("ec", claims())
        config = ("infisical:\n  address: %s\n  exit-after-auth: true\n"
                  "auth:\n  type: jwt\n  config:\n    identity-id: identity-id\n    path: %s/ci.jwt\n"
                  "templates:\n  - template-content: '{{ with getSecretByName \"%s\" \"dev\" \"/\" "
                  "\"API_KEY\" }}{{ .Value }}{{ end }}'\n    destination-path: %s/api-key\n"
                  % (self.server.url, work, project["id"], work))
        for name, text in (("identity-id", ident["id"] + "\n"), ("ci.jwt", token + "\n"), ("agent.yaml", config)):
            with open(os.path.join(work, name), "w") as f:
                f.write(text)
        r = subprocess.run([harness.COFFER_BIN, "agent", "--config", "agent.yaml"], cwd=work, capture_output=True,
                           text=True, env=harness.base_env(), timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIsNone(harness.sanitizer_report(r.stderr))
        self.assertEqual(read(os.path.join(work, "api-key")), "jwt-canary-7d2")
        self.assertNotIn(token, r.stderr)
        self.assertNotIn("jwt-canary-7d2", r.stderr)
        # a token of another issuer: the login is refused, nothing is rendered, the agent says why
        os.unlink(os.path.join(work, "api-key"))
        with open(os.path.join(work, "ci.jwt"), "w") as f:
            f.write(self.keys.sign("ec", claims(iss="https://elsewhere.example")) + "\n")
        r = subprocess.run([harness.COFFER_BIN, "agent", "--config", "agent.yaml"], cwd=work, capture_output=True,
                           text=True, env=harness.base_env(), timeout=30)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertFalse(os.path.exists(os.path.join(work, "api-key")))
        self.assertIn("issuer", r.stderr)


class ListEtag(AuditHelpers, ServerTestCase):
    """The server's side of the agent's polling: the folder list's ETag and 304. It reads the store's content
    version, so it runs on both backends."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        cls.pid = admin_ok(s, "POST", "/api/v2/workspace", body={"projectName": unique("etag")})["project"]["id"]
        admin_ok(s, "POST", "/api/v3/secrets/raw/A",
                 body={"workspaceId": cls.pid, "environment": "dev", "secretPath": "/", "secretValue": SECRET_A})
        cls.identity_id, cls.client_id, cls.client_secret = machine_identity(s, cls.pid, "viewer")
        cls.outsider = machine_identity(s, admin_ok(s, "POST", "/api/v2/workspace",
                                                    body={"projectName": unique("other")})["project"]["id"])

    def set_secret(self, key, value):
        admin_ok(self.server, "PATCH", "/api/v3/secrets/raw/" + key,
                 body={"workspaceId": self.pid, "environment": "dev", "secretPath": "/", "secretValue": value})

    def test_list_etag_304_and_rights(self):
        query = {"workspaceId": self.pid, "environment": "dev", "secretPath": "/"}
        token = login_token(self.server, self.client_id, self.client_secret)
        r = self.api("GET", "/api/v3/secrets/raw", token=token, query=query)
        self.assertEqual(r.status, 200)
        etag = r.headers.get("ETag")
        self.assertRegex(etag, r'^"[0-9a-f]{32}"$')
        listed = len(self.events(action="secrets.list", projectId=self.pid))
        r = self.api("GET", "/api/v3/secrets/raw", token=token, query=query, headers={"If-None-Match": etag})
        self.assertEqual((r.status, r.body), (304, b""))
        self.assertEqual(r.headers.get("ETag"), etag)
        # Audited as a list of that folder by that caller, naming no secret: nothing was read.
        events = wait_for(lambda: [e for e in self.events(action="secrets.list", projectId=self.pid)][listed:],
                          what="the 304's audit event")
        self.assertEqual(len(events), 1, events)
        self.assertEqual((events[0]["environment"], events[0]["secretPath"], events[0]["result"]), ("dev", "/", "ok"))
        self.assertEqual(events[0].get("keys") or [], [])
        self.assertNotIn(SECRET_A, str(events[0]))
        r = self.api("GET", "/api/v3/secrets/raw", token=token, query=query,
                     headers={"If-None-Match": '"other", W/' + etag})
        self.assertEqual(r.status, 304)
        # Another caller (the admin) gets another tag for the same folder.
        admin_tag = self.api("GET", "/api/v3/secrets/raw", query=query).headers.get("ETag")
        self.assertNotEqual(admin_tag, etag)
        # A caller who may not read the folder: 403, whatever tag it sends.
        outsider = login_token(self.server, self.outsider[1], self.outsider[2])
        for tag in (etag, "*"):
            r = self.api("GET", "/api/v3/secrets/raw", token=outsider, query=query, headers={"If-None-Match": tag})
            self.assertEqual(r.status, 403, r.body)
            self.assertNotIn("ETag", r.headers)
        # A change: 200 with a new tag.
        self.set_secret("A", "alpha-2")
        r = self.api("GET", "/api/v3/secrets/raw", token=token, query=query, headers={"If-None-Match": etag})
        self.assertEqual(r.status, 200)
        self.assertIn("alpha-2", r.body.decode())
        self.assertNotEqual(r.headers.get("ETag"), etag)
        self.set_secret("A", SECRET_A)
        # Lists whose body depends on more than the folder carry no tag: expanded references, imports (v4's
        # defaults), recursive lists.
        for path, extra in (("/api/v3/secrets/raw", {"expandSecretReferences": "true"}),
                            ("/api/v3/secrets/raw", {"include_imports": "true"}),
                            ("/api/v3/secrets/raw", {"recursive": "true"}),
                            ("/api/v4/secrets", {"projectId": self.pid})):
            r = self.api("GET", path, token=token, query=dict(query, **extra))
            self.assertEqual(r.status, 200, (path, extra))
            self.assertNotIn("ETag", r.headers, (path, extra))
        v4 = {"projectId": self.pid, "environment": "dev", "secretPath": "/", "includeImports": "false",
              "expandSecretReferences": "false"}
        tag = self.api("GET", "/api/v4/secrets", token=token, query=v4).headers.get("ETag")
        self.assertTrue(tag)
        r = self.api("GET", "/api/v4/secrets", token=token, query=v4, headers={"If-None-Match": tag})
        self.assertEqual((r.status, r.body), (304, b""))


if __name__ == "__main__":
    unittest.main()
