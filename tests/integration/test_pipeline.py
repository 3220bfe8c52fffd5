"""The pipeline commands end to end: `coffer login`, `coffer run`, `coffer export` and `coffer identities`,
driven the way pipelines drive them.

- Three pipeline lines written for Infisical's CLI run verbatim through bash with `coffer` on
  PATH (a fake `npm` records what `npm run deploy` received), against a machine identity made through the admin
  API (identity, universal auth, client secret, viewer membership).
- run: the command's exit status and 128+signal, signals sent to coffer reach the command exactly once,
  precedence between inherited variables and secrets both ways (--preserve-env), reserved names are not injected,
  --command through $SHELL (and /bin/sh), several --path, imports (later import wins, local keys win), a fetch
  error runs nothing, --watch restarts the command when a secret changes.
- export: every value the server holds, however nasty (quotes, newlines, $, backslashes, =, #, unicode, empty),
  comes back byte for byte through `eval "$(coffer export --format=dotenv-export)"` in sh and bash; azure-devops
  lines are exactly what the Azure agent expects; the github format round-trips through a transcription of the
  Actions runner's $GITHUB_ENV parser and masks every line; json, csv (and yaml when PyYAML is present) parse back
  to the same values; --prefix; names that are not shell names are refused for dotenv.
- login: --plain prints only the token; without it the token is stored privately and used by later commands;
  a wrong or expired client secret exits 1 with the server's message; unsupported methods exit 2.
- identities: every subcommand, table and JSON output, exit codes 0/1/2.
"""

import csv
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

import harness
from harness import ServerTestCase, unique

JWT_RE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")

# Values a careless exporter gets wrong. The server trims surrounding blanks (keeping one trailing newline), so
# tests compare with what the server returns, not with these literals.
NASTY = {
    "N_EMPTY": "",
    "N_QUOTE": "it's",
    "N_QUOTES": "'\"'\"''",
    "N_NEWLINES": "line1\nline2\n\nline4",
    "N_TRAILING_NL": "ends with newline\n",
    "N_DOLLAR": "$HOME ${HOME} $(id) `id` $$",
    "N_BACKSLASH": "back\\slash\\n\\\\",
    "N_EQUALS": "a=b==c",
    "N_HASH": "# not a comment",
    "N_UNICODE": "caf\u00e9 \u20ac \U0001F511 \u4e2d\u6587 \u2028",
    "N_PERCENT": "100% %AZP25 %0A %25",
    "N_BRACKETS": "x;y]z[w",
    "N_CR": "crlf\r\nline",
    "N_TAB": "a\tb",
    "N_BANG": "!! !$ !#",
    "N_PEM": "-----BEGIN KEY-----\nMHcCAQEE\nAwEHoUQD\n-----END KEY-----\n",
    "N_DELIM": "ghadelimiter_\nEOF\n",
}


# What a failing `coffer export` prints in the dotenv formats (docs/cli.md, "export"): it makes the consuming
# `eval` fail, with or without `set -e`.
FAIL_MARK = ("# coffer export failed: no secret was exported (the reason is on standard error)\n"
             "case $- in *i*) false ;; *) exit %d ;; esac\n")


def admin_ok(server, method, path, body=None, query=None):
    r = server.api(method, path, body=body, query=query)
    if r.status != 200:
        raise AssertionError("%s %s -> %d %r" % (method, path, r.status, r.body[:500]))
    return r.json


def put_secret(server, pid, env, path, key, value):
    return admin_ok(server, "POST", "/api/v3/secrets/raw/" + urllib.parse.quote(key, safe=""),
                    body={"workspaceId": pid, "environment": env, "secretPath": path, "secretValue": value})


def update_secret(server, pid, env, path, key, value):
    return admin_ok(server, "PATCH", "/api/v3/secrets/raw/" + urllib.parse.quote(key, safe=""),
                    body={"workspaceId": pid, "environment": env, "secretPath": path, "secretValue": value})


def make_folders(server, pid, env, path):
    parent = "/"
    for name in [p for p in path.split("/") if p]:
        r = server.api("POST", "/api/v1/folders",
                       body={"workspaceId": pid, "environment": env, "name": name, "path": parent})
        if r.status != 200 and not (r.status == 400 and "exist" in r.body.decode("utf-8", "replace")):
            raise AssertionError("folder %s%s -> %d %r" % (parent, name, r.status, r.body[:300]))
        parent = parent.rstrip("/") + "/" + name


def server_values(server, pid, env, path):
    """{key: value} as the server holds them (admin token)."""
    data = admin_ok(server, "GET", "/api/v4/secrets",
                    query={"projectId": pid, "environment": env, "secretPath": path, "includeImports": "false",
                           "recursive": "false", "expandSecretReferences": "false"})
    return {s["secretKey"]: s["secretValue"] for s in data["secrets"]}


def machine_identity(server, pid, role="viewer", rules=None, description="ci", ttl=None):
    """Creates an identity with universal auth, a client secret and a membership; returns (id, client_id, secret)."""
    identity = admin_ok(server, "POST", "/api/v1/identities", body={"name": unique("pipe")})["identity"]
    ua = admin_ok(server, "POST", "/api/v1/auth/universal-auth/identities/" + identity["id"],
                  body={})["identityUniversalAuth"]
    body = {"description": description}
    if ttl is not None:
        body["ttl"] = ttl
    cs = admin_ok(server, "POST", "/api/v1/auth/universal-auth/identities/%s/client-secrets" % identity["id"],
                  body=body)
    membership = {"role": role}
    if rules:
        membership["rules"] = rules
    admin_ok(server, "POST", "/api/v2/workspace/%s/identity-memberships/%s" % (pid, identity["id"]), body=membership)
    return identity["id"], ua["clientId"], cs["clientSecret"]


def login_token(server, client_id, secret):
    r = server.api("POST", "/api/v1/auth/universal-auth/login", token=None,
                   body={"clientId": client_id, "clientSecret": secret})
    if r.status != 200:
        raise AssertionError("login -> %d %r" % (r.status, r.body[:300]))
    return r.json["accessToken"]


def parse_github_env(text):
    """The Actions runner's SetEnvFileCommand on Linux (lines end at LF), transcribed: [(name, value)]."""
    out = []
    index = 0
    n = len(text)

    def read_line():
        nonlocal index
        if index >= n:
            return None
        lf = text.find("\n", index)
        if lf < 0:
            line, index = text[index:], n
            return line, ""
        line = text[index:lf]
        index = lf + 1
        return line, "\n"

    got = read_line()
    while got is not None:
        line = got[0]
        if line:
            eq, hd = line.find("="), line.find("<<")
            if eq >= 0 and (hd < 0 or eq < hd):
                name, value = line.split("=", 1)
                out.append((name, value))
            elif hd >= 0:
                name, delimiter = line.split("<<", 1)
                assert name and delimiter, line
                start = end = index
                tmp = read_line()
                while tmp is None or tmp[0] != delimiter:
                    if tmp is None:
                        raise AssertionError("matching delimiter not found: %r" % delimiter)
                    end = index - len(tmp[1])
                    tmp = read_line()
                out.append((name, text[start:end] if end > start else ""))
            else:
                raise AssertionError("invalid line %r" % line)
        got = read_line()
    return out


def azure_escape(text, prop):
    text = text.replace("%", "%AZP25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(";", "%3B").replace("]", "%5D")
    return text


class PipelineCase(ServerTestCase):
    """A project with prod:/backend/api and prod:/infra/shared, and a viewer identity on prod."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        try:
            cls.pid = admin_ok(s, "POST", "/api/v2/workspace", body={"projectName": unique("pipe")})["project"]["id"]
            for path in ("/backend/api", "/infra/shared", "/nasty", "/imports/a", "/imports/b", "/imports/main"):
                make_folders(s, cls.pid, "prod", path)
            cls.api_secrets = {"DB_PASSWORD": "s3cr3t 'quoted' $NOT_EXPANDED", "API_URL": "https://api.example.com/v1",
                               "MULTI": "l1\nl2"}
            for k, v in cls.api_secrets.items():
                put_secret(s, cls.pid, "prod", "/backend/api", k, v)
            cls.infra_secrets = {"region": "eu-west-1", "db_password": "pa'ss $word \\ # x", "instance_count": "3"}
            for k, v in cls.infra_secrets.items():
                put_secret(s, cls.pid, "prod", "/infra/shared", k, v)
            for k, v in NASTY.items():
                put_secret(s, cls.pid, "prod", "/nasty", k, v)
            cls.nasty = server_values(s, cls.pid, "prod", "/nasty")
            cls.identity_id, cls.client_id, cls.client_secret = machine_identity(s, cls.pid, "viewer")
            cls.token = login_token(s, cls.client_id, cls.client_secret)
            cls.bindir = tempfile.mkdtemp(prefix="coffer-pipe-bin-")
            os.symlink(harness.COFFER_BIN, os.path.join(cls.bindir, "coffer"))
        except Exception:
            super().tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(getattr(cls, "bindir", "/nonexistent"), ignore_errors=True)
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="coffer-pipe-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def env(self, token=..., **extra):
        """Environment for coffer: the server URL, a token (the identity's by default), no stored login."""
        e = harness.base_env({"COFFER_API_URL": self.server.url, "XDG_CONFIG_HOME": os.path.join(self.tmp, "cfg"),
                              "HOME": self.tmp})
        if token is ...:
            token = self.token
        if token is not None:
            e["COFFER_TOKEN"] = token
        for k, v in extra.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        return e

    def coffer(self, *args, env=None, input=None, timeout=60):
        return harness.run(list(args), env=env if env is not None else self.env(), input=input, timeout=timeout)

    def bash(self, script, env, shell="/bin/bash", timeout=60):
        proc = subprocess.run([shell, "-c", script], capture_output=True, env=env, timeout=timeout)
        out, err = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
        report = harness.sanitizer_report(err)
        if report:
            self.fail("sanitizer report:\n" + report)
        return proc.returncode, out, err

    def dump_env_cmd(self, out_file, *names):
        """A command printing the named variables (None when unset) as JSON into out_file."""
        code = ("import json, os, sys; json.dump({n: os.environ.get(n) for n in sys.argv[2:]}, "
                "open(sys.argv[1], 'w'))")
        return [sys.executable, "-c", code, out_file] + list(names)

    def read_json(self, path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    def run_ok(self, *args, env=None):
        rc, out, err = self.coffer(*args, env=env)
        self.assertEqual(rc, 0, "coffer %s -> %d\nstdout: %s\nstderr: %s" % (" ".join(args), rc, out, err))
        return out, err


class IssueLines(PipelineCase):
    """The three pipeline lines, verbatim, through bash with `coffer` on PATH."""

    def test_three_pipeline_lines_verbatim(self):
        npm_out = os.path.join(self.tmp, "npm.json")
        fake_npm = os.path.join(self.tmp, "npm")
        with open(fake_npm, "w") as f:
            f.write("#!/bin/sh\nexec %s -c 'import json, os, sys; json.dump({\"argv\": sys.argv[1:], "
                    "\"env\": dict(os.environ)}, open(os.environ[\"NPM_OUT\"], \"w\"))' \"$@\"\n" % sys.executable)
        os.chmod(fake_npm, 0o755)
        tf_out = os.path.join(self.tmp, "tf.json")
        script = "\n".join([
            "set -euo pipefail",
            'INFISICAL_TOKEN=$(coffer login --method=universal-auth --client-id="$ID" --client-secret="$SECRET" '
            '--silent --plain)',
            'coffer run --token="$INFISICAL_TOKEN" --projectId="$PROJECT" --env=prod --path=/backend/api -- npm run '
            'deploy',
            'eval "$(coffer export --token="$INFISICAL_TOKEN" --projectId="$PROJECT" --env=prod --path=/infra/shared '
            '--format=dotenv | sed \'s/^/export TF_VAR_/\')"',
            '%s -c "import json, os; json.dump({k: v for k, v in os.environ.items() if k.startswith(\'TF_VAR_\')}, '
            'open(\'%s\', \'w\'))"' % (sys.executable, tf_out),
            'printf "%s" "$INFISICAL_TOKEN" > token.txt',
        ])
        env = harness.base_env({
            "PATH": "%s:%s:%s" % (self.bindir, self.tmp, os.environ.get("PATH", "/usr/bin:/bin")),
            "INFISICAL_API_URL": self.server.url, "ID": self.client_id, "SECRET": self.client_secret,
            "PROJECT": self.pid, "NPM_OUT": npm_out, "HOME": self.tmp,
        })
        proc = subprocess.run(["bash", "-c", script], capture_output=True, env=env, cwd=self.tmp, timeout=60)
        err = proc.stderr.decode("utf-8", "replace")
        self.assertEqual(proc.returncode, 0, "pipeline failed:\n" + err)
        self.assertIsNone(harness.sanitizer_report(err), err)
        with open(os.path.join(self.tmp, "token.txt")) as f:
            token = f.read()
        self.assertRegex(token, JWT_RE)
        npm = self.read_json(npm_out)
        self.assertEqual(npm["argv"], ["run", "deploy"])
        for k, v in self.api_secrets.items():
            self.assertEqual(npm["env"].get(k), v, "npm's %s" % k)
        self.assertNotIn("region", npm["env"], "only /backend/api is injected")
        self.assertIn("Injecting 3 secrets", err)
        tf = self.read_json(tf_out)
        self.assertEqual(tf, {"TF_VAR_" + k: v for k, v in self.infra_secrets.items()})
        # Nothing was stored: --plain logins keep no file.
        self.assertFalse(os.path.exists(os.path.join(self.tmp, ".config", "coffer", "credentials.json")))


class Run(PipelineCase):
    def run_cmd(self, *cmd, extra=(), env=None, path="/backend/api"):
        return self.coffer("run", "--projectId", self.pid, "--env", "prod", "--path", path, *extra, "--", *cmd,
                           env=env)

    def test_exit_status_is_the_commands(self):
        for code in (0, 1, 7, 255):
            rc, _, err = self.run_cmd("sh", "-c", "exit %d" % code)
            self.assertEqual(rc, code, err)

    def test_killed_by_signal_is_128_plus_signal(self):
        rc, _, _ = self.run_cmd("sh", "-c", "kill -KILL $$")
        self.assertEqual(rc, 128 + signal.SIGKILL)
        rc, _, _ = self.run_cmd("sh", "-c", "kill -TERM $$")
        self.assertEqual(rc, 128 + signal.SIGTERM)

    def test_command_not_found(self):
        rc, _, err = self.run_cmd("/nonexistent/cmd")
        self.assertEqual(rc, 127)
        self.assertIn("/nonexistent/cmd", err)
        self.assertIn("coffer: cannot run '/nonexistent/cmd': No such file or directory", err)

    def test_how_the_command_is_started(self):
        """The child is started by vfork + exec (src/cli/run.c): the exec's own rules still apply."""
        # A file that is not executable: 126, with the reason.
        plain = os.path.join(self.tmp, "not-executable")
        with open(plain, "w") as f:
            f.write("exit 0\n")
        os.chmod(plain, 0o644)
        rc, _, err = self.run_cmd(plain)
        self.assertEqual(rc, 126, err)
        self.assertIn("coffer: cannot run '%s': Permission denied" % plain, err)
        # A script without "#!" runs with /bin/sh (execvpe's fallback), with the secrets.
        out = os.path.join(self.tmp, "script-out.txt")
        script = os.path.join(self.tmp, "no-shebang")
        with open(script, "w") as f:
            f.write('printf "%%s" "$API_URL" > %s\nexit 3\n' % out)
        os.chmod(script, 0o755)
        rc, _, err = self.run_cmd(script)
        self.assertEqual(rc, 3, err)
        with open(out) as f:
            self.assertEqual(f.read(), self.api_secrets["API_URL"])
        # A command found through PATH.
        rc, _, err = self.run_cmd("env")
        self.assertEqual(rc, 0, err)
        # --command with a $SHELL that does not exist falls back to /bin/sh.
        rc, _, err = self.coffer("run", "--projectId", self.pid, "--env", "prod", "--path", "/backend/api",
                                 "--command", 'test -n "$API_URL" && exit 9', env=self.env(SHELL="/nonexistent/sh"))
        self.assertEqual(rc, 9, err)

    def forwarding_child(self, record):
        """A Python child that counts the signals it gets for a while, then exits 42 (or dies by SIGINT)."""
        code = r"""
import os, signal, sys, time
record, ready = sys.argv[1], sys.argv[2]
got = []
def on(sig, frame):
    got.append(sig)
signal.signal(signal.SIGTERM, on)
signal.signal(signal.SIGHUP, on)
signal.signal(signal.SIGUSR1, on)
open(ready, "w").close()
deadline = time.time() + 20
while not got and time.time() < deadline:
    time.sleep(0.02)
time.sleep(0.5)  # a second copy of the signal would arrive now
with open(record, "w") as f:
    f.write(",".join(str(s) for s in got))
sys.exit(42)
"""
        return [sys.executable, "-c", code, record, record + ".ready"]

    def start_run(self, cmd, extra=()):
        args = [harness.COFFER_BIN, "run", "--projectId", self.pid, "--env", "prod", "--path", "/backend/api",
                "--silent", *extra, "--", *cmd]
        # A runner started in the background by a non-interactive shell has SIGINT ignored, which coffer and
        # the command would inherit (an ignored signal is dropped, blocked or not): give them the default.
        return subprocess.Popen(args, env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def wait_file(self, path, timeout=20):
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                self.fail("%s did not appear" % path)
            time.sleep(0.02)

    def test_signals_are_forwarded_once(self):
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1):
            with self.subTest(signal=sig):
                record = os.path.join(self.tmp, "got-%d" % sig)
                proc = self.start_run(self.forwarding_child(record))
                try:
                    self.wait_file(record + ".ready")
                    proc.send_signal(sig)
                    out, err = proc.communicate(timeout=30)
                finally:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
                self.assertEqual(proc.returncode, 42, err)
                with open(record) as f:
                    self.assertEqual(f.read(), str(int(sig)), "the command got the signal exactly once")

    def test_sigint_kills_the_command_and_coffer_reports_it(self):
        record = os.path.join(self.tmp, "int")
        proc = self.start_run(self.forwarding_child(record))  # SIGINT is not handled by the child
        try:
            self.wait_file(record + ".ready")
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        # Python turns SIGINT into KeyboardInterrupt: exit status 1, or 130 if it dies of the signal.
        self.assertIn(proc.returncode, (1, 130))
        self.assertFalse(os.path.exists(record), "the command did not run to its end")

    def test_secrets_win_over_inherited_by_default(self):
        out = os.path.join(self.tmp, "env.json")
        rc, _, err = self.run_cmd(*self.dump_env_cmd(out, "DB_PASSWORD", "API_URL", "KEEP"),
                                  env=self.env(DB_PASSWORD="inherited", KEEP="kept"))
        self.assertEqual(rc, 0, err)
        got = self.read_json(out)
        self.assertEqual(got["DB_PASSWORD"], self.api_secrets["DB_PASSWORD"])
        self.assertEqual(got["API_URL"], self.api_secrets["API_URL"])
        self.assertEqual(got["KEEP"], "kept", "unrelated inherited variables stay")

    def test_preserve_env_keeps_inherited(self):
        out = os.path.join(self.tmp, "env.json")
        rc, _, err = self.run_cmd(*self.dump_env_cmd(out, "DB_PASSWORD", "API_URL"), extra=("--preserve-env",),
                                  env=self.env(DB_PASSWORD="inherited"))
        self.assertEqual(rc, 0, err)
        got = self.read_json(out)
        self.assertEqual(got["DB_PASSWORD"], "inherited")
        self.assertEqual(got["API_URL"], self.api_secrets["API_URL"], "secrets not in the environment are added")

    def test_reserved_names_are_not_injected(self):
        path = "/reserved-" + unique("r")[-6:]
        make_folders(self.server, self.pid, "prod", path)
        for k, v in {"PATH": "/evil", "HOME": "/evil", "XDG_CONFIG_HOME": "/evil", "LC_ALL": "evil",
                     "SHELL": "/evil", "OK_VAR": "fine"}.items():
            put_secret(self.server, self.pid, "prod", path, k, v)
        out = os.path.join(self.tmp, "env.json")
        env = self.env()
        rc, _, err = self.run_cmd(*self.dump_env_cmd(out, "PATH", "HOME", "XDG_CONFIG_HOME", "LC_ALL", "SHELL",
                                                     "OK_VAR"), env=env, path=path)
        self.assertEqual(rc, 0, err)
        got = self.read_json(out)
        self.assertEqual(got["OK_VAR"], "fine")
        for name in ("PATH", "HOME", "XDG_CONFIG_HOME", "LC_ALL", "SHELL"):
            self.assertEqual(got[name], env.get(name), name)
            self.assertIn("'%s'" % name, err, "a warning names %s" % name)
        self.assertIn("Injecting 1 secrets", err)

    def test_command_runs_through_the_shell(self):
        out = os.path.join(self.tmp, "out.txt")
        script = 'printf "%%s|%%s" "$API_URL" "$0" > %s' % out
        rc, _, err = self.coffer("run", "--projectId", self.pid, "--env", "prod", "--path", "/backend/api",
                                 "--command", script, env=self.env(SHELL="/bin/bash"))
        self.assertEqual(rc, 0, err)
        with open(out) as f:
            self.assertEqual(f.read(), self.api_secrets["API_URL"] + "|/bin/bash")
        # Without $SHELL: /bin/sh.
        rc, _, err = self.coffer("run", "--projectId", self.pid, "--env", "prod", "--path", "/backend/api",
                                 "--command", script, env=self.env(SHELL=None))
        self.assertEqual(rc, 0, err)
        with open(out) as f:
            self.assertEqual(f.read(), self.api_secrets["API_URL"] + "|/bin/sh")
        rc, _, err = self.coffer("run", "--projectId", self.pid, "--env", "prod", "--command", "exit 5")
        self.assertEqual(rc, 5)

    def test_usage_errors(self):
        cases = [
            ("run", "--projectId", self.pid),  # no command
            ("run", "--projectId", self.pid, "--command", "true", "--", "true"),  # both
            ("run", "--projectId", self.pid, "--watch", "--watch-interval", "2", "--", "true"),
            ("run", "--projectId", self.pid, "--bogus", "--", "true"),
            ("run", "--", "true"),  # no project
        ]
        for args in cases:
            rc, _, err = self.coffer(*args)
            self.assertEqual(rc, 2, "%r: %s" % (args, err))
            self.assertIn("coffer:", err)
        rc, out, _ = self.coffer("run", "--help")
        self.assertEqual(rc, 0)
        self.assertIn("--preserve-env", out)

    def test_fetch_error_runs_nothing(self):
        marker = os.path.join(self.tmp, "ran")
        rc, _, err = self.coffer("run", "--projectId", self.pid, "--env", "nope", "--", "touch", marker)
        self.assertEqual(rc, 1)
        self.assertIn("nope", err)
        self.assertFalse(os.path.exists(marker))
        # An identity without access to the folder: the server's 403 message, nothing run.
        _, client_id, secret = machine_identity(self.server, self.pid, rules=[
            {"actions": ["read"], "environment": "prod", "secretPath": "/infra/**"}])
        narrow = login_token(self.server, client_id, secret)
        rc, _, err = self.coffer("run", "--projectId", self.pid, "--env", "prod", "--path", "/backend/api", "--",
                                 "touch", marker, env=self.env(token=narrow))
        self.assertEqual(rc, 1, err)
        self.assertIn("HTTP 403", err)
        self.assertFalse(os.path.exists(marker))
        rc, _, err = self.coffer("run", "--projectId", self.pid, "--env", "prod", "--", "touch", marker,
                                 env=self.env(token="not-a-token"))
        self.assertEqual(rc, 1)
        self.assertIn("HTTP 401", err)
        self.assertFalse(os.path.exists(marker))

    def test_several_paths_later_wins(self):
        out = os.path.join(self.tmp, "env.json")
        a, b = "/multi-" + unique("a")[-6:], "/multi-" + unique("b")[-6:]
        for p in (a, b):
            make_folders(self.server, self.pid, "prod", p)
        put_secret(self.server, self.pid, "prod", a, "SHARED", "from-a")
        put_secret(self.server, self.pid, "prod", a, "ONLY_A", "a")
        put_secret(self.server, self.pid, "prod", b, "SHARED", "from-b")
        rc, _, err = self.coffer("run", "--projectId", self.pid, "--env", "prod", "--path", a, "--path=" + b,
                                 "--", *self.dump_env_cmd(out, "SHARED", "ONLY_A"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.read_json(out), {"SHARED": "from-b", "ONLY_A": "a"})

    def test_imports_local_wins_then_later_import(self):
        s = self.server
        put_secret(s, self.pid, "prod", "/imports/a", "X", "a")
        put_secret(s, self.pid, "prod", "/imports/a", "ONLY_A", "a")
        put_secret(s, self.pid, "prod", "/imports/b", "X", "b")
        put_secret(s, self.pid, "prod", "/imports/b", "LOCAL", "b")
        put_secret(s, self.pid, "prod", "/imports/main", "LOCAL", "main")
        for src in ("/imports/a", "/imports/b"):
            admin_ok(s, "POST", "/api/v2/secret-imports",
                     body={"projectId": self.pid, "environment": "prod", "path": "/imports/main",
                           "import": {"environment": "prod", "path": src}})
        out = os.path.join(self.tmp, "env.json")
        rc, _, err = self.coffer("run", "--projectId", self.pid, "--env", "prod", "--path", "/imports/main", "--",
                                 *self.dump_env_cmd(out, "X", "ONLY_A", "LOCAL"), env=self.env(token=None,
                                 COFFER_TOKEN=harness.ADMIN_TOKEN))
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.read_json(out), {"X": "b", "ONLY_A": "a", "LOCAL": "main"})
        rc, _, err = self.coffer("run", "--projectId", self.pid, "--env", "prod", "--path", "/imports/main",
                                 "--include-imports=false", "--", *self.dump_env_cmd(out, "X", "ONLY_A", "LOCAL"),
                                 env=self.env(token=None, COFFER_TOKEN=harness.ADMIN_TOKEN))
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.read_json(out), {"X": None, "ONLY_A": None, "LOCAL": "main"})
        # export merges the same way.
        out_text, _ = self.run_ok("export", "--projectId", self.pid, "--env", "prod", "--path", "/imports/main",
                                  env=self.env(token=harness.ADMIN_TOKEN))
        self.assertEqual(out_text, "LOCAL='main'\nONLY_A='a'\nX='b'\n")
        # And so does `secrets list --include-imports` (the same function), naming where each came from.
        table, _ = self.run_ok("secrets", "list", "--include-imports", "--show-values", "--projectId", self.pid,
                               "--env", "prod", "--path", "/imports/main", env=self.env(token=harness.ADMIN_TOKEN))
        rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()[1:]}
        self.assertEqual(rows["X"][-2:], ["prod:/imports/b", "b"])
        self.assertEqual(rows["ONLY_A"][-2:], ["prod:/imports/a", "a"])
        self.assertEqual(rows["LOCAL"][-1], "main")
        self.assertEqual(len(rows), 3, table)

    def test_watch_restarts_on_change(self):
        path = "/watch-" + unique("w")[-6:]
        make_folders(self.server, self.pid, "prod", path)
        put_secret(self.server, self.pid, "prod", path, "W", "one")
        put_secret(self.server, self.pid, "prod", path, "B", "${GONE}")  # left out, said at start and restart
        log = os.path.join(self.tmp, "starts.log")
        script = 'echo "$W" >> %s; trap "exit 0" TERM; while :; do sleep 0.1; done' % log
        proc = subprocess.Popen([harness.COFFER_BIN, "run", "--projectId", self.pid, "--env", "prod", "--path", path,
                                 "--watch", "--watch-interval", "5", "--command", script],
                                env=self.env(token=harness.ADMIN_TOKEN), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            self.wait_file(log)
            update_secret(self.server, self.pid, "prod", path, "W", "two")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with open(log) as f:
                    if f.read().split() == ["one", "two"]:
                        break
                time.sleep(0.1)
            with open(log) as f:
                self.assertEqual(f.read().split(), ["one", "two"])
            time.sleep(5.5)  # one more poll that finds nothing changed
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err = err.decode("utf-8", "replace")
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn("restarting", err)
        self.assertEqual(err.count("warning: B (prod:%s) left out" % path), 2, err)


class Export(PipelineCase):
    def export(self, *extra, path="/nasty", env=None):
        # The nasty values hold ${HOME}, which Coffer's server would refuse to expand (no such secret).
        expand = ("--expand=false",) if path == "/nasty" else ()
        return self.coffer("export", "--projectId", self.pid, "--env", "prod", "--path", path, *expand, *extra,
                           env=env)

    def export_ok(self, *extra, **kw):
        rc, out, err = self.export(*extra, **kw)
        self.assertEqual(rc, 0, err)
        return out, err

    def test_large_output_is_complete(self):
        """coffer ends with _exit after flushing its output (src/main.c): nothing buffered may be lost, whether
        standard output is a pipe or a file."""
        make_folders(self.server, self.pid, "prod", "/big")
        # 240 KB in all, many times stdio's buffer (a value may hold at most 64 KB)
        big = {"BIG_%d" % n: "".join("%06d" % (n * 10000 + i) for i in range(10000)) for n in range(4)}
        for k, v in big.items():
            put_secret(self.server, self.pid, "prod", "/big", k, v)
        out, _ = self.export_ok("--format=json", path="/big")
        self.assertEqual({x["key"]: x["value"] for x in json.loads(out)}, big)
        target = os.path.join(self.tmp, "big.json")
        rc, _, err = self.bash('coffer export --projectId %s --env prod --path /big --format=json > %s'
                               % (self.pid, target), env=self.env(PATH=self.bindir + ":" + os.environ["PATH"]))
        self.assertEqual(rc, 0, err)
        self.assertEqual({x["key"]: x["value"] for x in self.read_json(target)}, big)

    def test_dotenv_export_eval_is_exact(self):
        names = sorted(self.nasty)
        for shell in ("/bin/sh", "/bin/bash"):
            with self.subTest(shell=shell):
                script = ('set -e; eval "$(coffer export --projectId=%s --env=prod --path=/nasty '
                          '--format=dotenv-export --expand=false)"; %s -c "import json, os, sys; '
                          'print(json.dumps({n: os.environ.get(n) for n in sys.argv[1:]}))" %s'
                          % (self.pid, sys.executable, " ".join(names)))
                env = self.env(PATH="%s:%s" % (self.bindir, os.environ.get("PATH", "/usr/bin:/bin")))
                rc, out, err = self.bash(script, env, shell=shell)
                self.assertEqual(rc, 0, err)
                got = json.loads(out)
                for name in names:
                    self.assertEqual(got[name], self.nasty[name], "%s: %s differs" % (shell, name))

    def test_dotenv_lines(self):
        out, _ = self.export_ok(path="/infra/shared")
        self.assertEqual(out, "db_password='pa'\\''ss $word \\ # x'\ninstance_count='3'\nregion='eu-west-1'\n")
        out, _ = self.export_ok("--format", "dotenv-export", "--prefix", "TF_VAR_", path="/infra/shared")
        self.assertEqual(out, "export TF_VAR_db_password='pa'\\''ss $word \\ # x'\nexport TF_VAR_instance_count='3'\n"
                              "export TF_VAR_region='eu-west-1'\n")

    def test_azure_devops_exact(self):
        out, _ = self.export_ok("--format=azure-devops")
        expected = "".join("##vso[task.setvariable variable=%s;issecret=true]%s\n"
                           % (azure_escape(k, True), azure_escape(v, False)) for k, v in sorted(self.nasty.items()))
        self.assertEqual(out, expected)
        self.assertEqual(out.count("\n"), len(self.nasty), "one line per secret")
        out, _ = self.export_ok("--format=azure-devops", path="/infra/shared")
        self.assertIn("##vso[task.setvariable variable=db_password;issecret=true]pa'ss $word \\ # x\n", out)

    def test_github_env_file_and_masks(self):
        github_env = os.path.join(self.tmp, "github_env")
        with open(github_env, "w") as f:
            f.write("EXISTING=1\n")
        out, err = self.export_ok("--format=github", env=self.env(GITHUB_ENV=github_env))
        with open(github_env, encoding="utf-8", newline="") as f:
            text = f.read()
        pairs = parse_github_env(text)
        self.assertEqual(pairs[0], ("EXISTING", "1"), "appended, not replaced")
        self.assertEqual(dict(pairs[1:]), self.nasty)
        self.assertEqual([k for k, _ in pairs[1:]], sorted(self.nasty))
        # Every non-empty line of every value is masked, % escaped; nothing else on stdout.
        expected_masks = []
        for k in sorted(self.nasty):
            for line in re.split(r"[\r\n]", self.nasty[k]):
                if line:
                    expected_masks.append("::add-mask::" + line.replace("%", "%25"))
        self.assertTrue(out.endswith("\n"))
        self.assertEqual(out[:-1].split("\n"), expected_masks)
        # Without $GITHUB_ENV the env-file lines follow the masks on stdout.
        out, _ = self.export_ok("--format=github", path="/infra/shared", env=self.env(GITHUB_ENV=None))
        masks = [l for l in out.split("\n") if l.startswith("::add-mask::")]
        self.assertEqual(len(masks), 3)
        rest = out.split("\n", 3)[3]
        self.assertEqual(dict(parse_github_env(rest)), self.infra_secrets)

    def test_json_csv_yaml(self):
        out, _ = self.export_ok("--format=json")
        doc = json.loads(out)
        self.assertEqual({d["key"]: d["value"] for d in doc}, self.nasty)
        self.assertEqual([d["key"] for d in doc], sorted(self.nasty))
        for d in doc:
            for field in ("workspace", "type", "_id", "secretPath", "tags", "comment", "skipMultilineEncoding"):
                self.assertIn(field, d)
            self.assertEqual(d["workspace"], self.pid)
            self.assertEqual(d["secretPath"], "/nasty")
        out, _ = self.export_ok("--format=csv")
        rows = list(csv.reader(io.StringIO(out, newline="")))
        self.assertEqual(rows[0], ["Key", "Value"])
        self.assertEqual({r[0]: r[1] for r in rows[1:]}, self.nasty)
        try:
            import yaml  # noqa: PLC0415 (optional: not in the standard library)
        except ImportError:
            yaml = None
        out, _ = self.export_ok("--format=yaml", "--prefix", "TF_VAR_")
        if yaml is not None:
            self.assertEqual(yaml.safe_load(out), {"TF_VAR_" + k: v for k, v in self.nasty.items()})
        else:
            self.assertEqual(len(out.splitlines()), len(self.nasty))

    def test_output_file_is_private(self):
        target = os.path.join(self.tmp, "out", "")
        out, err = self.export_ok("--format", "json", "--output-file", target, path="/infra/shared")
        written = os.path.join(self.tmp, "out", "secrets.json")
        self.assertEqual(out, "")
        self.assertIn(written, err)
        self.assertEqual(stat.S_IMODE(os.stat(written).st_mode), 0o600)
        with open(written) as f:
            self.assertEqual({d["key"]: d["value"] for d in json.load(f)}, self.infra_secrets)
        plain = os.path.join(self.tmp, "vars")
        self.export_ok("--output-file", plain, "--silent", path="/infra/shared")
        self.assertTrue(os.path.exists(plain + ".env"), "an extension is added as Infisical does")

    def test_dotenv_refuses_names_that_are_not_shell_names(self):
        path = "/names-" + unique("n")[-6:]
        make_folders(self.server, self.pid, "prod", path)
        put_secret(self.server, self.pid, "prod", path, "my-key.v2", "x")
        put_secret(self.server, self.pid, "prod", path, "GOOD", "y")
        for fmt in ("dotenv", "dotenv-export"):
            rc, out, err = self.export("--format", fmt, path=path)
            self.assertEqual(rc, 1)
            self.assertEqual(out, FAIL_MARK % 1, "no secret is printed, only the failure lines")
            self.assertIn("my-key.v2", err)
            self.assertIn("not a valid shell variable name", err)
        out, _ = self.export_ok("--format", "json", path=path)
        self.assertEqual({d["key"] for d in json.loads(out)}, {"my-key.v2", "GOOD"})

    def test_references_expanded_by_default(self):
        path = "/refs-" + unique("r")[-6:]
        make_folders(self.server, self.pid, "prod", path)
        put_secret(self.server, self.pid, "prod", path, "BASE", "https://b")
        put_secret(self.server, self.pid, "prod", path, "REF", "${BASE}/x")
        out, _ = self.export_ok(path=path)
        self.assertEqual(out, "BASE='https://b'\nREF='https://b/x'\n")
        out, _ = self.export_ok("--expand=false", path=path)
        self.assertEqual(out, "BASE='https://b'\nREF='${BASE}/x'\n")
        dump = os.path.join(self.tmp, "env.json")
        rc, _, err = self.coffer("run", "--projectId", self.pid, "--env", "prod", "--path", path, "--",
                                 *self.dump_env_cmd(dump, "REF"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.read_json(dump), {"REF": "https://b/x"})

    def test_errors_and_usage(self):
        rc, _, err = self.export("--format", "toml")
        self.assertEqual(rc, 2)
        self.assertIn("toml", err)
        rc, _, err = self.coffer("export", "--projectId", self.pid, "--env", "nope")
        self.assertEqual(rc, 1)
        self.assertIn("nope", err)
        rc, out, _ = self.coffer("export", "--help")
        self.assertEqual(rc, 0)
        self.assertIn("azure-devops", out)


class FailClosed(PipelineCase):
    """`eval "$(coffer export ...)"` stops the script on every kind of failure, under sh and bash, with and
    without `set -e`; the CI formats fail their agent's step; `secrets set` warns about names a shell cannot
    read."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        try:
            for path in ("/fc-names", "/fc-expired"):
                make_folders(s, cls.pid, "prod", path)
            put_secret(s, cls.pid, "prod", "/fc-names", "my-key.v2", "x")
            put_secret(s, cls.pid, "prod", "/fc-names", "GOOD", "good-value")
            put_secret(s, cls.pid, "prod", "/fc-expired", "FRESH", "fresh-value")
            admin_ok(s, "POST", "/api/v3/secrets/raw/OLD",
                     body={"workspaceId": cls.pid, "environment": "prod", "secretPath": "/fc-expired",
                           "secretValue": "old-value", "expiresAt": "2001-01-01T00:00:00Z"})
        except Exception:
            super().tearDownClass()
            raise

    def causes(self):
        """(name, export arguments, environment, coffer's exit status) for each kind of failure."""
        where = ["--projectId=%s" % self.pid, "--env=prod"]
        closed = harness.free_port()
        return [
            ("invalid name", where + ["--path=/fc-names"], self.env(), 1),
            ("unreachable", where + ["--path=/backend/api"],
             self.env(COFFER_API_URL="http://127.0.0.1:%d" % closed), 1),
            ("401", where + ["--path=/backend/api"], self.env(token="not-a-token"), 1),
            ("403 or 404", ["--projectId=%s" % self.pid, "--env=no-such-env"], self.env(), 1),
            ("expired", where + ["--path=/fc-expired", "--fail-on-expired"], self.env(), 3),
            ("usage", where + ["--no-such-flag"], self.env(), 2),
        ]

    def test_eval_fails_under_sh_and_bash(self):
        for name, args, env, status in self.causes():
            env = dict(env, PATH="%s:%s" % (self.bindir, os.environ.get("PATH", "/usr/bin:/bin")))
            line = 'eval "$(coffer export %s --format=dotenv-export)"; echo reached' % " ".join(args)
            for shell, flags in (("/bin/sh", "-e"), ("/bin/bash", "-e"), ("/bin/sh", ""), ("/bin/bash", "")):
                with self.subTest(cause=name, shell=shell, flags=flags):
                    cmd = [shell] + ([flags] if flags else []) + ["-c", line]
                    proc = subprocess.run(cmd, capture_output=True, env=env, timeout=60)
                    out, err = proc.stdout.decode(), proc.stderr.decode()
                    self.assertNotIn("reached", out, err)
                    self.assertEqual(proc.returncode, status, err)
                    self.assertIn("coffer", err, "the reason is on standard error")
                    for value in ("good-value", "fresh-value", "old-value", "s3cr3t"):
                        self.assertNotIn(value, out + err, "no secret value escapes")
            with self.subTest(cause=name, direct=True):
                rc, out, err = self.coffer("export", *args, "--format=dotenv", env=env)
                self.assertEqual(rc, status, err)
                self.assertEqual(out, FAIL_MARK % status)

    def test_marker_is_harmless_in_an_interactive_shell(self):
        # At a prompt the marker only sets $? (a mistyped command must not close the terminal).
        script = 'eval "$(cat marker)"; echo "alive $?"\n'
        with open(os.path.join(self.tmp, "marker"), "w") as f:
            f.write(FAIL_MARK % 1)
        for shell in ("/bin/sh", "/bin/bash"):
            proc = subprocess.run([shell, "-i"], input=script.encode(), capture_output=True, timeout=30,
                                  env=self.env(), cwd=self.tmp)
            self.assertIn("alive 1", proc.stdout.decode(), shell)

    def test_ci_formats_fail_their_step(self):
        name, args, env, status = self.causes()[2]  # 401
        rc, out, err = self.coffer("export", *args, "--format=azure-devops", env=env)
        self.assertEqual(rc, 1)
        self.assertEqual(out, "##vso[task.logissue type=error]coffer export failed: no variable was set (the reason "
                              "is in the log above)\n##vso[task.complete result=Failed;]coffer export failed\n")
        github_env = os.path.join(self.tmp, "github_env")
        rc, out, err = self.coffer("export", *args, "--format=github", env=dict(env, GITHUB_ENV=github_env))
        self.assertEqual(rc, 1)
        self.assertEqual(out, "::error::coffer export failed: no secret was exported (the reason is in the log "
                              "above)\n")
        self.assertFalse(os.path.exists(github_env), "nothing is appended to $GITHUB_ENV")
        # Formats no shell reads, and --output-file, print nothing.
        for fmt in ("json", "yaml", "csv"):
            rc, out, _ = self.coffer("export", *args, "--format=" + fmt, env=env)
            self.assertEqual((rc, out), (1, ""), fmt)
        target = os.path.join(self.tmp, "out.env")
        rc, out, _ = self.coffer("export", *args, "--output-file", target, env=env)
        self.assertEqual((rc, out), (1, ""))
        self.assertFalse(os.path.exists(target))
        # Success prints no marker.
        out, _ = self.run_ok("export", "--projectId", self.pid, "--env", "prod", "--path", "/infra/shared",
                             "--format=dotenv-export")
        self.assertNotIn("coffer export failed", out)

    def test_secrets_set_warns_about_names_a_shell_cannot_read(self):
        path = "/fc-set-" + unique("s")[-6:]
        make_folders(self.server, self.pid, "prod", path)
        where = ("--projectId", self.pid, "--env", "prod", "--path", path)
        admin = self.env(token=self.server.token)
        for key in ("my-key", "a.b", "Good_Name_2"):
            with self.subTest(key=key):
                rc, out, err = self.coffer("secrets", "set", key + "=v", *where, env=admin)
                self.assertEqual(rc, 0, err)
                if key == "Good_Name_2":
                    self.assertNotIn("warning", err)
                else:
                    self.assertIn("warning: '%s' is not a valid environment variable name" % key, err)
                    self.assertNotIn("warning", out, "the warning goes to standard error")
        values = server_values(self.server, self.pid, "prod", path)
        self.assertEqual(set(values), {"my-key", "a.b", "Good_Name_2"}, "accepted all the same")
        # A digit first is refused by the server, as before.
        rc, _, err = self.coffer("secrets", "set", "1ABC=v", *where, env=admin)
        self.assertEqual(rc, 1)


class DanglingReferences(PipelineCase):
    """`coffer run` and `coffer export` of a folder with one secret whose reference cannot be followed: the others
    are injected, the broken one is left out (not replaced by an imported value of the same name) with a warning
    naming it and the reference; --strict-references refuses."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        try:
            for path in ("/dangle", "/dangle-src"):
                make_folders(s, cls.pid, "prod", path)
            put_secret(s, cls.pid, "prod", "/dangle-src", "BROKEN", "from-import")
            put_secret(s, cls.pid, "prod", "/dangle-src", "IMPORTED_OK", "imported-ok")
            admin_ok(s, "POST", "/api/v2/secret-imports", body={
                "projectId": cls.pid, "environment": "prod", "path": "/dangle",
                "import": {"environment": "prod", "path": "/dangle-src"}})
            put_secret(s, cls.pid, "prod", "/dangle", "GOOD", "good")
            put_secret(s, cls.pid, "prod", "/dangle", "URL", "pg://${GOOD}/db")
            put_secret(s, cls.pid, "prod", "/dangle", "BROKEN", "x${GONE}")
        except Exception:
            super().tearDownClass()
            raise

    where = property(lambda self: ("--projectId", self.pid, "--env", "prod", "--path", "/dangle"))

    def assertWarned(self, err, consequence):
        self.assertRegex(err, r"coffer: warning: BROKEN \(prod:/dangle\) %s: secret 'BROKEN' references \$\{GONE\}, "
                              r"which does not exist" % consequence)

    def test_run_injects_the_others(self):
        dump = os.path.join(self.tmp, "env.json")
        rc, out, err = self.coffer("run", *self.where, "--", *self.dump_env_cmd(dump, "GOOD", "URL", "BROKEN",
                                                                                 "IMPORTED_OK"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.read_json(dump), {"GOOD": "good", "URL": "pg://good/db", "BROKEN": None,
                                                "IMPORTED_OK": "imported-ok"})
        self.assertWarned(err, "left out")
        rc, out, err = self.coffer("run", *self.where, "--strict-references", "--", "sh", "-c", "echo ran")
        self.assertEqual(rc, 1, err)
        self.assertEqual(out, "", "nothing runs")
        self.assertIn("${GONE}", err)

    def test_export_writes_the_others(self):
        rc, out, err = self.coffer("export", *self.where)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "GOOD='good'\nIMPORTED_OK='imported-ok'\nURL='pg://good/db'\n")
        self.assertWarned(err, "left out")
        rc, out, err = self.coffer("export", *self.where, "--strict-references", "--format=dotenv-export")
        self.assertEqual(rc, 1, err)
        self.assertEqual(out, FAIL_MARK % 1)
        self.assertIn("${GONE}", err)
        # without expansion nothing is broken: the stored text is what was asked for
        rc, out, err = self.coffer("export", *self.where, "--expand=false")
        self.assertEqual(rc, 0, err)
        self.assertIn("BROKEN='x${GONE}'", out)
        self.assertNotIn("warning", err)

    def test_secrets_list_and_set_warn(self):
        admin = self.env(token=self.server.token)
        rc, out, err = self.coffer("secrets", "list", *self.where, "--expand", "--show-values", env=admin)
        self.assertEqual(rc, 0, err)
        self.assertIn("x${GONE}", out)
        self.assertIn("pg://good/db", out)
        self.assertWarned(err, "shown unexpanded")
        rc, out, err = self.coffer("secrets", "set", "ALSO=${dev.nowhere.K}", "FINE=${GOOD}", *self.where, env=admin)
        self.assertEqual(rc, 0, err)
        self.assertIn("ALSO (prod:/dangle) stored, but: secret 'ALSO' references ${dev.nowhere.K}", err)
        self.assertNotIn("FINE", err)
        admin_ok(self.server, "DELETE", "/api/v3/secrets/batch/raw", body={
            "workspaceId": self.pid, "environment": "prod", "secretPath": "/dangle",
            "secrets": [{"secretKey": "ALSO"}, {"secretKey": "FINE"}]})


class Login(PipelineCase):
    def login(self, *args, env=None):
        e = env or self.env(token=None)
        return self.coffer("login", *args, env=e)

    def test_plain_prints_only_the_token(self):
        rc, out, err = self.login("--method=universal-auth", "--client-id=" + self.client_id,
                                  "--client-secret=" + self.client_secret, "--plain", "--silent")
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.endswith("\n") and out.count("\n") == 1, repr(out))
        self.assertRegex(out.strip(), JWT_RE)
        self.assertEqual(err, "")
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "cfg")), "--plain stores nothing")
        # The token works.
        r = self.server.api("GET", "/api/v4/secrets", token=out.strip(),
                            query={"projectId": self.pid, "environment": "prod", "secretPath": "/infra/shared"})
        self.assertEqual(r.status, 200)

    def test_env_variables(self):
        for prefix in ("INFISICAL", "COFFER"):
            env = self.env(token=None, **{prefix + "_UNIVERSAL_AUTH_CLIENT_ID": self.client_id,
                                          prefix + "_UNIVERSAL_AUTH_CLIENT_SECRET": self.client_secret})
            rc, out, err = self.login("--plain", env=env)
            self.assertEqual(rc, 0, "%s: %s" % (prefix, err))
            self.assertRegex(out.strip(), JWT_RE)

    def test_stores_token_privately_and_later_commands_use_it(self):
        rc, out, err = self.login("--client-id", self.client_id, "--client-secret", self.client_secret)
        self.assertEqual(rc, 0, err)
        self.assertIn("Access Token:", out)
        token = [l for l in out.splitlines() if JWT_RE.match(l)]
        self.assertEqual(len(token), 1, out)
        cfg = os.path.join(self.tmp, "cfg", "coffer")
        path = os.path.join(cfg, "credentials.json")
        self.assertEqual(stat.S_IMODE(os.stat(cfg).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path) as f:
            stored = json.load(f)
        self.assertEqual(stored["token"], token[0])
        self.assertEqual(stored["domain"], self.server.url + "/api")
        self.assertEqual([n for n in os.listdir(cfg)], ["credentials.json"], "no temporary file left")
        # Later commands without --token use it...
        out, _ = self.run_ok("export", "--projectId", self.pid, "--env", "prod", "--path", "/infra/shared",
                             env=self.env(token=None))
        self.assertIn("region='eu-west-1'", out)
        # ...but never send it to another server.
        rc, _, err = self.coffer("export", "--projectId", self.pid, "--env", "prod",
                                 env=self.env(token=None, COFFER_API_URL="http://127.0.0.1:9"))
        self.assertEqual(rc, 2, err)
        self.assertIn("token", err)
        # An explicit token wins over the stored one.
        rc, _, err = self.coffer("export", "--projectId", self.pid, "--env", "prod", "--token", "bogus",
                                 env=self.env(token=None))
        self.assertEqual(rc, 1)
        self.assertIn("HTTP 401", err)
        # A file readable by others is refused.
        os.chmod(path, 0o644)
        rc, _, err = self.coffer("export", "--projectId", self.pid, "--env", "prod", env=self.env(token=None))
        self.assertNotEqual(rc, 0)
        self.assertIn("chmod 600", err)

    def test_infisical_access_token_variable(self):
        out, _ = self.run_ok("export", "--projectId", self.pid, "--env", "prod", "--path", "/infra/shared",
                             env=self.env(token=None, INFISICAL_UNIVERSAL_AUTH_ACCESS_TOKEN=self.token))
        self.assertIn("region='eu-west-1'", out)

    def test_wrong_secret_prints_the_servers_message(self):
        _, client_id, secret = machine_identity(self.server, self.pid)
        wrong = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
        r = self.server.api("POST", "/api/v1/auth/universal-auth/login", token=None,
                            body={"clientId": client_id, "clientSecret": wrong})
        self.assertEqual(r.status, 401)
        rc, out, err = self.login("--client-id", client_id, "--client-secret", wrong)
        self.assertEqual(rc, 1)
        self.assertEqual(out, "")
        self.assertIn(r.json["message"], err)
        self.assertNotIn(wrong, err)
        self.assertNotIn(secret, err)

    def test_expired_secret_names_description_and_time(self):
        _, client_id, secret = machine_identity(self.server, self.pid, description="ADO", ttl=60)
        self.advance_clock(61)
        rc, out, err = self.login("--client-id", client_id, "--client-secret", secret)
        self.assertEqual(rc, 1)
        self.assertIn('client secret "ADO"', err)
        self.assertIn("expired at", err)

    def test_usage_errors(self):
        rc, _, err = self.login("--method", "azure", "--client-id", "x", "--client-secret", "y")
        self.assertEqual(rc, 2)
        self.assertIn("azure", err)
        self.assertIn("not supported yet", err)
        rc, _, err = self.login("--method", "nonsense")
        self.assertEqual(rc, 2)
        rc, _, err = self.login("--client-secret", "y")
        self.assertEqual(rc, 2)
        self.assertIn("--client-id", err)
        rc, _, err = self.login("--client-id", "x")
        self.assertEqual(rc, 2)
        self.assertIn("--client-secret", err)
        rc, out, _ = self.login("--help")
        self.assertEqual(rc, 0)
        self.assertIn("--plain", out)


class IdentitiesCli(PipelineCase):
    def admin(self, *args):
        rc, out, err = self.coffer(*args, env=self.env(token=harness.ADMIN_TOKEN))
        return rc, out, err

    def admin_ok(self, *args):
        rc, out, err = self.admin(*args)
        self.assertEqual(rc, 0, "coffer %s -> %d\n%s" % (" ".join(args), rc, err))
        return out

    def admin_json(self, *args):
        return json.loads(self.admin_ok(*(args + ("--output", "json"))))

    def test_identity_lifecycle(self):
        name = unique("cli-id")
        ident = self.admin_json("identities", "create", name)["identity"]
        iid = ident["id"]
        self.assertIn(name, self.admin_ok("identities", "list"))
        self.assertIn(iid, self.admin_ok("identities", "get", iid))
        renamed = unique("renamed")
        self.assertEqual(self.admin_json("identities", "rename", iid, renamed)["identity"]["name"], renamed)

        ua = self.admin_json("identities", "universal-auth", "attach", iid, "--access-token-ttl", "15m",
                             "--access-token-max-ttl", "12h", "--num-uses", "100", "--trusted-ips",
                             "127.0.0.1/32, ::1", "--client-secret-trusted-ips", "10.0.0.0/8")["identityUniversalAuth"]
        self.assertEqual(ua["accessTokenTTL"], 900)
        self.assertEqual(ua["accessTokenMaxTTL"], 12 * 3600)
        self.assertEqual(ua["accessTokenNumUsesLimit"], 100)
        self.assertEqual([x["ipAddress"] for x in ua["accessTokenTrustedIps"]], ["127.0.0.1/32", "::1"])
        self.assertEqual([x["ipAddress"] for x in ua["clientSecretTrustedIps"]], ["10.0.0.0/8"])
        upd = self.admin_json("identities", "universal-auth", "update", iid, "--access-token-ttl", "1h",
                              "--client-secret-trusted-ips", "0.0.0.0/0,::/0")["identityUniversalAuth"]
        self.assertEqual(upd["accessTokenTTL"], 3600)
        self.assertEqual(upd["accessTokenMaxTTL"], 12 * 3600, "untouched settings stay")
        self.assertIn(ua["clientId"], self.admin_ok("identities", "universal-auth", "get", iid))

        rc, secret_out, err = self.admin("identities", "client-secrets", "create", iid, "--description", "deploy",
                                         "--ttl", "180d", "--num-uses", "3")
        self.assertEqual(rc, 0, err)
        secret = secret_out.strip()
        self.assertEqual(secret_out, secret + "\n", "only the secret on stdout")
        self.assertIn("shown only this once", err)
        listed = self.admin_json("identities", "client-secrets", "list", iid)["clientSecretData"]
        self.assertEqual(len(listed), 1)
        self.assertEqual(listed[0]["description"], "deploy")
        self.assertEqual(listed[0]["clientSecretNumUsesLimit"], 3)
        self.assertNotIn(secret, json.dumps(listed))
        table = self.admin_ok("identities", "client-secrets", "list", iid)
        self.assertIn("deploy", table)
        self.assertNotIn(secret, table)
        # It logs in (once the identity may read the project), then revoke stops it.
        self.admin_ok("identities", "add-to-project", iid, "--projectId", self.pid, "--role", "viewer", "--env",
                      "prod", "--path", "/infra/**", "--actions", "read")
        members = self.admin_json("identities", "memberships", "--projectId", self.pid)["identityMemberships"]
        mine = [m for m in members if m["identityId"] == iid]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0]["role"], "viewer")
        self.assertEqual(mine[0]["rules"], [{"actions": ["read"], "environment": "prod", "secretPath": "/infra/**"}])
        rc, token, err = self.coffer("login", "--client-id", ua["clientId"], "--client-secret", secret, "--plain",
                                     env=self.env(token=None))
        self.assertEqual(rc, 0, err)
        out, _ = self.run_ok("export", "--projectId", self.pid, "--env", "prod", "--path", "/infra/shared",
                             env=self.env(token=token.strip()))
        self.assertIn("region=", out)
        rc, _, err = self.coffer("export", "--projectId", self.pid, "--env", "prod", "--path", "/backend/api",
                                 env=self.env(token=token.strip()))
        self.assertEqual(rc, 1, "the rule does not reach /backend/api")
        self.admin_ok("identities", "client-secrets", "revoke", iid, listed[0]["id"])
        rc, _, err = self.coffer("login", "--client-id", ua["clientId"], "--client-secret", secret, "--plain",
                                 env=self.env(token=None))
        self.assertEqual(rc, 1)
        self.assertIn("revoked", err)

        out = self.admin_ok("identities", "remove-from-project", iid, "--projectId", self.pid)
        self.assertIn(iid, out)
        out = self.admin_ok("identities", "delete", iid)
        self.assertIn("deleted identity", out)
        rc, _, err = self.admin("identities", "get", iid)
        self.assertEqual(rc, 1)
        self.assertIn("HTTP 404", err)

    def test_client_secret_expires_at_and_json(self):
        iid = self.admin_json("identities", "create", unique("exp"))["identity"]["id"]
        self.admin_ok("identities", "universal-auth", "attach", iid)
        doc = self.admin_json("identities", "client-secrets", "create", iid, "--expires-at", "2030-01-01T00:00:00Z")
        self.assertTrue(doc["clientSecret"])
        self.assertTrue(doc["clientSecretData"]["expiresAt"].startswith("2030-01-01T00:00:00"))

    def test_usage_and_server_errors(self):
        usage = [
            ("identities",),
            ("identities", "bogus"),
            ("identities", "create"),
            ("identities", "rename", "x"),
            ("identities", "universal-auth", "attach", "x", "--access-token-ttl", "soon"),
            ("identities", "universal-auth", "attach", "x", "--num-uses", "-1"),
            ("identities", "client-secrets", "create", "x", "--ttl", "1d", "--expires-at", "2030-01-01T00:00:00Z"),
            ("identities", "client-secrets", "create", "x", "--expires-at", "tomorrow"),
            ("identities", "add-to-project", "x", "--projectId", self.pid),
            ("identities", "memberships"),
        ]
        for args in usage:
            rc, _, err = self.admin(*args)
            self.assertEqual(rc, 2, "%r: %s" % (args, err))
        for args in (("identities", "get", "00000000-0000-0000-0000-000000000000"),
                     ("identities", "add-to-project", "00000000-0000-0000-0000-000000000000", "--projectId",
                      self.pid, "--role", "viewer"),
                     ("identities", "add-to-project", self.identity_id, "--projectId", self.pid, "--role", "boss")):
            rc, _, err = self.admin(*args)
            self.assertEqual(rc, 1, "%r: %s" % (args, err))
            self.assertIn("HTTP 4", err)
        # An identity's token is not an admin: 403 with the server's message.
        rc, _, err = self.coffer("identities", "list")
        self.assertEqual(rc, 1)
        self.assertIn("HTTP 403", err)
        for args in (("identities", "--help"), ("identities", "universal-auth", "--help"),
                     ("identities", "client-secrets", "create", "--help"), ("identities", "add-to-project", "-h")):
            rc, out, _ = self.admin(*args)
            self.assertEqual(rc, 0, args)
            self.assertIn("usage:", out)


if __name__ == "__main__":
    unittest.main()
