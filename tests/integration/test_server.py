"""`coffer server` as a process: status endpoint, bootstrap and generated admin tokens, flags and their
environment twins, keep-alive, request ids and log lines, secrets kept out of logs, graceful shutdown with a
request in flight, TLS, and the refusal to serve plain HTTP on a non-loopback address."""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import threading
import tempfile
import time
import unittest

import harness
from harness import ADMIN_TOKEN, Server, ServerTestCase, unique


def wait_exit(proc_args, env, timeout=20):
    """Runs a server command that must refuse to start; returns (rc, stdout, stderr)."""
    return harness.run(proc_args, env=env, timeout=timeout)


class StatusAndAuth(ServerTestCase):
    def test_status_no_auth(self):
        r = self.api("GET", "/api/status", token=None)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json.get("message"), "Ok")
        self.assertEqual(r.json.get("status"), "ok")
        self.assertEqual(r.json.get("store"), harness.BACKEND)
        self.assertIs(r.json.get("sso"), False)  # no --oidc-issuer
        rc, out, _ = harness.run(["--version"])
        self.assertEqual(rc, 0)
        self.assertIn(r.json.get("version"), out, "status version should match `coffer --version`")
        self.assertTrue(r.headers.get("Content-Type", "").startswith("application/json"))

    def test_bootstrap_token_authorizes(self):
        r = self.api("GET", "/api/v1/workspace")
        self.assertEqual(r.status, 200, r.body)
        self.assertIsInstance(r.json.get("workspaces"), list)

    def test_wrong_token_401(self):
        wrong = "not-the-admin-token-" + unique("x")
        r = self.api("GET", "/api/v1/workspace", token=wrong)
        body = self.assertError(r, 401, "Unauthorized")
        self.assertNotIn(wrong, r.body.decode("utf-8", "replace"), "401 must not echo the credential")
        self.assertNotIn(wrong, self.server.stderr, "the log must not hold a presented token")

    def test_missing_token_401(self):
        self.assertError(self.api("GET", "/api/v1/workspace", token=None), 401, "Unauthorized")
        r = self.api("GET", "/api/v1/workspace", token=None, headers={"Authorization": "Basic Zm9vOmJhcg=="})
        self.assertError(r, 401, "Unauthorized")
        r = self.api("GET", "/api/v1/workspace", token=None, headers={"Authorization": "Bearer "})
        self.assertError(r, 401, "Unauthorized")
        # A prefix of the right token is not the token.
        self.assertError(self.api("GET", "/api/v1/workspace", token=ADMIN_TOKEN[:-1]), 401, "Unauthorized")

    def test_token_not_logged(self):
        self.api("GET", "/api/v1/workspace")
        self.assertNotIn(ADMIN_TOKEN, self.server.stderr)
        self.assertNotIn(ADMIN_TOKEN, self.server.stdout)

    def test_root_key_file_mode(self):
        path = os.path.join(self.server.data_dir, "root.key")
        self.assertTrue(os.path.exists(path), "root.key not created in the data dir")
        mode = stat.S_IMODE(os.stat(path).st_mode)
        self.assertEqual(mode, 0o600, "root.key mode is %o" % mode)
        # the store is in the data dir on SQLite, and not there on PostgreSQL
        self.assertEqual(os.path.exists(os.path.join(self.server.data_dir, "coffer.db")), harness.BACKEND == "sqlite")


class KeepAliveAndRequestIds(ServerTestCase):
    def test_keep_alive(self):
        conn = self.server.connection()
        try:
            pid = self.create_project()["id"]
            seen = []
            requests = [
                ("GET", "/api/status", None),
                ("GET", "/api/status", None),
                ("GET", "/api/v1/workspace", None),
                ("GET", "/api/v1/workspace/" + pid, None),
                ("POST", "/api/v3/secrets/raw/KA", {"workspaceId": pid, "environment": "dev", "secretValue": "v"}),
                ("GET", "/api/nothing-here", None),  # an error response keeps the connection too
                ("GET", "/api/v3/secrets/raw/KA", None),
            ]
            for method, path, body in requests:
                q = {"workspaceId": pid, "environment": "dev"} if path.endswith("/KA") and method == "GET" else None
                r = self.server.api(method, path, query=q, body=body, conn=conn)
                self.assertNotEqual(r.headers.get("Connection", "").lower(), "close",
                                    "%s %s answered Connection: close" % (method, path))
                self.assertIsNotNone(conn.sock, "%s %s: the connection was closed" % (method, path))
                seen.append(conn.sock.getsockname())
                self.assertIn(r.status, (200, 404), r.body)
            self.assertEqual(len(set(seen)), 1, "requests did not share one TCP connection: %r" % seen)
        finally:
            conn.close()

    def test_request_id_header_and_log(self):
        ids = set()
        for token in (..., None):
            mark = self.server.stderr_len()
            r = self.api("GET", "/api/v1/workspace", token=token)
            rid = r.headers.get("X-Request-Id")
            self.assertTrue(rid, "no X-Request-Id")
            self.assertNotIn(rid, ids, "request ids must be unique")
            ids.add(rid)
            m = self.server.wait_for_stderr(r"req_id=" + re.escape(rid) + r"\b", since=mark)
            self.assertIsNotNone(m, "no log line with req_id=%s" % rid)
            line = [l for l in self.server.stderr_since(mark).splitlines() if "req_id=" + rid in l][0]
            self.assertIn('method="GET"', line)
            self.assertIn('path="/api/v1/workspace"', line)
            self.assertIn("status=%d" % r.status, line)
            self.assertRegex(line, r"dur(ation)?[_a-z]*=", "log line has no duration: " + line)
            if r.status != 200:
                self.assertEqual(r.json.get("reqId"), rid)
        r = self.api("GET", "/api/does/not/exist")
        self.assertEqual(r.json.get("reqId"), r.headers.get("X-Request-Id"))

    def test_logs_hold_no_query_or_secret_values(self):
        pid = self.create_project()["id"]
        value = "VALUECANARY-" + unique("v")
        comment_value = "NEWVALUECANARY-" + unique("v")
        qcanary = "QUERYCANARY" + unique("q").replace("-", "")
        mark = self.server.stderr_len()
        self.set_secret(pid, "LOGGED", value)
        self.get_secret(pid, "LOGGED")
        self.list_secrets(pid, tagSlugs=qcanary)
        self.update_secret(pid, "LOGGED", secretValue=comment_value)
        # Errors that concern the value must not echo it either.
        big = value * (70000 // len(value) + 1)
        self.api("POST", "/api/v3/secrets/raw/LOGGED2",
                 body={"workspaceId": pid, "environment": "dev", "secretValue": big})
        self.api("POST", "/api/v3/secrets/raw/LOGGED",
                 body={"workspaceId": pid, "environment": "dev", "secretValue": value})
        self.api("POST", "/api/v3/secrets/raw/1BAD", body={"workspaceId": pid, "environment": "dev",
                                                          "secretValue": value})
        self.api("POST", "/api/v3/secrets/batch/raw",
                 body={"workspaceId": pid, "environment": "dev",
                       "secrets": [{"secretKey": "D", "secretValue": value}, {"secretKey": "D", "secretValue": value}]})
        self.api("GET", "/api/v3/secrets/raw/LOGGED", query={"workspaceId": pid, "environment": "dev",
                                                              "secretPath": "/", "q": qcanary})
        time.sleep(0.2)
        logs = self.server.stderr_since(mark) + self.server.stdout
        self.assertNotIn(value, logs)
        self.assertNotIn(comment_value, logs)
        self.assertNotIn(qcanary, logs, "query values must not be logged")
        lines = [l for l in logs.splitlines() if "method=" in l]
        self.assertTrue(lines, "no request log lines")
        for l in lines:
            m = re.search(r"path=(\S+)", l)
            self.assertIsNotNone(m, l)
            self.assertNotIn("?", m.group(1), "path logged with its query: " + l)
            self.assertNotIn(pid, m.group(1).split("?")[-1] if "?" in m.group(1) else "")


    def test_log_line_injection(self):
        mark = self.server.stderr_len()
        r = self.api("GET", "/api/x%0Afake-line%0D%0Aforged%20req_id=1")
        self.assertEqual(r.status, 404)
        self.server.wait_for_stderr("req_id=" + r.headers["X-Request-Id"], since=mark)
        lines = self.server.stderr_since(mark).splitlines()
        forged = [l for l in lines if l.startswith("fake-line") or l.startswith("forged")]
        self.assertEqual(forged, [], "a request path can start a log line of its own")
        self.assertEqual(len([l for l in lines if "req_id=" + r.headers["X-Request-Id"] in l]), 1)
        # Nor can it forge fields of its own line: a decoded space or raw byte must not reach the log as is.
        mark = self.server.stderr_len()
        r = self.api("GET", "/api/v3/secrets/raw/AB%FFC%20status=200%20req_id=forged")
        rid = r.headers["X-Request-Id"]
        self.assertIsNotNone(self.server.wait_for_stderr("req_id=" + rid, since=mark))
        line = [l for l in self.server.stderr_since(mark).splitlines() if "req_id=" + rid in l][0]
        self.assertEqual(re.findall(r"\bstatus=(\d+)", line), [str(r.status)],
                         "the logged path adds a forged status field: " + line)
        self.assertEqual(re.findall(r"\breq_id=(\S+)", line), [rid], "forged req_id field: " + line)
        self.assertNotIn("\ufffd", line, "raw non-UTF-8 bytes in the log line: " + line)


def parse_logfmt(line):
    """Splits a log line "<time> <level> <event> key=value ..." as a logfmt reader would: returns (event, [(key,
    value)]) with quoted values unescaped, or raises ValueError for a line that is not well-formed logfmt (a bare
    value holding a quote, an unterminated quoted value, a token without "=")."""
    parts = line.split(" ", 3)
    if len(parts) < 3:
        raise ValueError("no event in " + line)
    event, rest = parts[2], parts[3] if len(parts) > 3 else ""
    fields, i = [], 0
    escapes = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
    while i < len(rest):
        m = re.compile(r"([a-z_]+)=").match(rest, i)
        if not m:
            raise ValueError("not key=value at %r" % rest[i:])
        key, i = m.group(1), m.end()
        if rest[i:i + 1] == '"':
            raw, i = b"", i + 1
            while True:
                if i >= len(rest):
                    raise ValueError("unterminated quoted value for " + key)
                c = rest[i]
                if c == '"':
                    i += 1
                    value = raw.decode("utf-8", "replace")
                    break
                if c == "\\":
                    nxt = rest[i + 1:i + 2]
                    if nxt == "x":
                        raw += bytes([int(rest[i + 2:i + 4], 16)])
                        i += 4
                        continue
                    if nxt not in escapes:
                        raise ValueError("bad escape in " + key)
                    raw += escapes[nxt].encode()
                    i += 2
                    continue
                raw += c.encode("utf-8")
                i += 1
        else:
            end = rest.find(" ", i)
            end = len(rest) if end < 0 else end
            value, i = rest[i:end], end
            if '"' in value or "\\" in value:
                raise ValueError("bare value with a quote or backslash for %s: %r" % (key, value))
        fields.append((key, value))
        if i < len(rest):
            if rest[i] != " ":
                raise ValueError("no blank after " + key)
            i += 1
    return event, fields


class LogForging(ServerTestCase):
    """Finding: log fields taken from a request were written unquoted (`who=` in the login line), so a client id,
    path or other request text holding `" who=admin` or a newline could forge fields or lines. Every line is now
    logfmt with text values quoted and escaped (docs/server.md "Logs"); the injected text appears escaped, once,
    in the field it was sent in."""

    INJECT = 'x" who=admin status=200 req_id=forged\n2026-01-01T00:00:00.000Z info forged line\r\x01\u00e9'

    def lines_of(self, mark, rid):
        self.assertIsNotNone(self.server.wait_for_stderr(r"req_id=" + re.escape(rid) + r"\b", since=mark))
        time.sleep(0.1)  # the login line and the request line are written separately
        text = self.server.stderr_since(mark)
        forged = [l for l in text.splitlines() if "forged line" in l and not re.search(r"=\"", l)]
        self.assertEqual(forged, [], "a request started a log line of its own")
        for l in text.splitlines():
            self.assertFalse(l.startswith("2026-01-01"), "forged line: " + l)
        return [l for l in text.splitlines() if "req_id=" + rid in l]

    def assertOneOf(self, fields, key, line):
        self.assertEqual([k for k, _ in fields].count(key), 1, "%s appears more than once: %s" % (key, line))

    def test_request_line_path(self):
        import urllib.parse
        mark = self.server.stderr_len()
        r = self.api("GET", "/api/v3/secrets/raw/" + urllib.parse.quote(self.INJECT, safe=""))
        rid = r.headers["X-Request-Id"]
        lines = self.lines_of(mark, rid)
        self.assertEqual(len(lines), 1, lines)
        event, fields = parse_logfmt(lines[0])
        self.assertEqual(event, "req")
        self.assertEqual([k for k, _ in fields], ["method", "path", "status", "dur_ms", "req_id", "route", "actor"],
                         lines[0])
        values = dict(fields)
        self.assertEqual(values["status"], str(r.status))
        self.assertEqual(values["req_id"], rid)
        self.assertEqual(values["method"], "GET")
        self.assertTrue(values["path"].startswith('/api/v3/secrets/raw/x"'), values["path"])
        self.assertIn('path="/api/v3/secrets/raw/x\\"', lines[0], "the quote is not escaped: " + lines[0])

    def test_login_line_fields(self):
        for route, body in (("/api/v1/auth/universal-auth/login", {"clientId": self.INJECT,
                                                                    "clientSecret": "not-a-secret-0123456789"}),
                            ("/api/v1/auth/jwt-auth/login", {"identityId": self.INJECT, "jwt": "a.b.c"})):
            with self.subTest(route=route):
                mark = self.server.stderr_len()
                r = self.api("POST", route, body=body, token=None)
                self.assertIn(r.status, (400, 401, 404, 422), r.body)
                rid = r.headers["X-Request-Id"]
                lines = self.lines_of(mark, rid)
                login = [l for l in lines if " login " in l]
                self.assertLessEqual(len(login), 1, lines)
                self.assertEqual(len(lines) - len(login), 1, lines)
                for line in lines:
                    event, fields = parse_logfmt(line)
                    for key in {k for k, _ in fields}:
                        self.assertOneOf(fields, key, line)
                    values = dict(fields)
                    self.assertEqual(values["req_id"], rid)
                    self.assertNotIn(values.get("who"), ("admin",), line)
                    self.assertNotIn("status", values if event == "login" else {}, line)
                    # Where the injected text is logged (it may be logged as a fingerprint instead), it is escaped.
                    for key, value in fields:
                        if "who=admin" in value:
                            self.assertIn('\\" who=admin', line)
                        if "forged line" in value:
                            self.assertIn("\\n2026-01-01", line)
                        if value.endswith("\r\x01\u00e9"):
                            self.assertIn("\\r\\x01\\xc3\\xa9", line)


class JsonLogs(ServerTestCase):
    """--log-format json (COFFER_LOG_FORMAT): every line one JSON object; the request line carries the request id,
    method, path, route pattern, status, duration and actor; request text is escaped inside its string (a byte
    outside printable ASCII as \\u00NN), so it can neither end the line nor add a member."""

    server_env = {"COFFER_LOG_FORMAT": "json"}

    def json_lines(self, mark, rid):
        self.assertIsNotNone(self.server.wait_for_stderr(re.escape('"req_id":"%s"' % rid), since=mark))
        objects = []
        for line in self.server.stderr_since(mark).splitlines():
            obj = json.loads(line)  # every line, not only the request's
            self.assertIsInstance(obj, dict, line)
            self.assertIn(obj["level"], ("debug", "info", "warn", "error"))
            objects.append(obj)
        return [o for o in objects if o.get("req_id") == rid]

    def test_request_line(self):
        import urllib.parse
        mark = self.server.stderr_len()
        r = self.api("GET", "/api/v3/secrets/raw/" + urllib.parse.quote(LogForging.INJECT, safe=""))
        rid = r.headers["X-Request-Id"]
        lines = self.json_lines(mark, rid)
        self.assertEqual(len(lines), 1, lines)
        line = lines[0]
        self.assertEqual(list(line), ["time", "level", "event", "method", "path", "status", "dur_ms", "req_id",
                                      "route", "actor"])
        self.assertEqual((line["event"], line["method"], line["status"], line["route"], line["actor"]),
                         ("req", "GET", r.status, "/api/v3/secrets/raw/:name", "admin"))
        self.assertIsInstance(line["dur_ms"], float)
        # the injected text stays inside its string: the quote escaped, the rest as the server logs paths
        self.assertTrue(line["path"].startswith('/api/v3/secrets/raw/x" who=admin') or
                        line["path"].startswith('/api/v3/secrets/raw/x"%20who=admin'), line["path"])
        raw = [l for l in self.server.stderr_since(mark).splitlines() if rid in l][0]
        self.assertIn('raw/x\\"', raw)

    def test_identity_actor_and_unauthenticated(self):
        mark = self.server.stderr_len()
        r = self.api("GET", "/api/v1/workspace", token=None)
        self.assertEqual(self.json_lines(mark, r.headers["X-Request-Id"])[0]["actor"], "")
        ident = self.ok("POST", "/api/v1/identities", body={"name": unique("id")})["identity"]
        self.ok("POST", "/api/v1/auth/universal-auth/identities/%s" % ident["id"], body={})
        cs = self.ok("POST", "/api/v1/auth/universal-auth/identities/%s/client-secrets" % ident["id"], body={})
        client_id = self.ok("GET", "/api/v1/auth/universal-auth/identities/%s" % ident["id"])[
            "identityUniversalAuth"]["clientId"]
        token = self.ok("POST", "/api/v1/auth/universal-auth/login",
                        body={"clientId": client_id, "clientSecret": cs["clientSecret"]}, token=None)["accessToken"]
        mark = self.server.stderr_len()
        r = self.api("GET", "/api/v1/workspace", token=token)
        line = self.json_lines(mark, r.headers["X-Request-Id"])[0]
        self.assertEqual(line["actor"], "identity:" + ident["id"])
        self.assertNotIn(token, self.server.stderr)
        self.assertNotIn(cs["clientSecret"], self.server.stderr)

    def test_bad_format_refused(self):
        harness.assert_start_refused(self, [(["--log-format", "xml"], "--log-format")])


class GeneratedAdminToken(unittest.TestCase):
    def test_printed_once_and_stored_hashed(self):
        s = Server(bootstrap_token=None)
        try:
            s.start()
            deadline = time.time() + 10
            while "admin token:" not in s.stdout and time.time() < deadline:
                time.sleep(0.02)
            m = re.search(r"admin token: (\S+)", s.stdout)
            self.assertIsNotNone(m, "first start printed no admin token on stdout:\n" + s.stdout)
            token = m.group(1)
            s.token = token
            self.assertEqual(s.stdout.count(token), 1, "the token must be printed exactly once")
            self.assertNotIn(token, s.stderr, "the token must not be in the log")
            self.assertEqual(s.api("GET", "/api/v1/workspace").status, 200)
            self.assertEqual(s.api("GET", "/api/v1/workspace", token=token + "x").status, 401)
            self.assertEqual(s.stop(), 0)
            for name in os.listdir(s.data_dir):
                with open(os.path.join(s.data_dir, name), "rb") as f:
                    self.assertNotIn(token.encode(), f.read(), "token stored in clear in " + name)
            s.start()
            time.sleep(0.3)
            self.assertNotIn("admin token:", s.stdout, "second start printed a token again")
            self.assertNotIn(token, s.stdout + s.stderr)
            self.assertEqual(s.api("GET", "/api/v1/workspace").status, 200, "the token must survive a restart")
            self.assertEqual(s.stop(), 0)
            self.assertIsNone(s.sanitizer_report(), s.sanitizer_report())
        finally:
            s.cleanup()

    def test_bootstrap_token_only_on_first_start(self):
        s = Server()
        try:
            s.start()
            self.assertNotIn("admin token:", s.stdout)
            self.assertEqual(s.api("GET", "/api/v1/workspace").status, 200)
            self.assertEqual(s.stop(), 0)
            # A different bootstrap token on a later start does not replace the stored one.
            other = "another-bootstrap-token-0123"
            s.extra_env["COFFER_BOOTSTRAP_TOKEN"] = other
            s.start()
            self.assertEqual(s.api("GET", "/api/v1/workspace", token=other).status, 401)
            self.assertEqual(s.api("GET", "/api/v1/workspace", token=ADMIN_TOKEN).status, 200)
            self.assertEqual(s.stop(), 0)
        finally:
            s.cleanup()

    def test_short_bootstrap_token_refused(self):
        d = tempfile.mkdtemp(prefix="coffer-itest-")
        try:
            env = harness.base_env({"COFFER_BOOTSTRAP_TOKEN": "short"})
            rc, out, err = wait_exit(["server", "--addr", "127.0.0.1:0", "--data-dir", d], env)
            self.assertNotEqual(rc, 0)
            self.assertIn("COFFER_BOOTSTRAP_TOKEN", err)
            self.assertIn("16", err)
        finally:
            shutil.rmtree(d, ignore_errors=True)


class FlagsAndEnv(unittest.TestCase):
    def _cycle(self, s):
        try:
            s.start()
            self.assertEqual(s.api("GET", "/api/status").status, 200)
            r = s.api("POST", "/api/v2/workspace", body={"projectName": unique("p")})
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(s.stop(), 0)
            self.assertIsNone(s.sanitizer_report())
        except Exception:
            s.cleanup()
            raise

    def test_env_twins(self):
        d = tempfile.mkdtemp(prefix="coffer-itest-")
        db = os.path.join(tempfile.mkdtemp(prefix="coffer-itest-db-"), "elsewhere.db")
        s = Server(data_dir=d, use_addr_flag=False, use_data_dir_flag=False,
                   env={"COFFER_ADDR": "127.0.0.1:0", "COFFER_DATA_DIR": d, "COFFER_DB": db,
                        "COFFER_LOG_LEVEL": "info"})
        try:
            self._cycle(s)
            self.assertTrue(os.path.exists(os.path.join(d, "root.key")), "COFFER_DATA_DIR ignored")
            self.assertTrue(os.path.exists(db), "COFFER_DB ignored")
            self.assertFalse(os.path.exists(os.path.join(d, "coffer.db")), "db created in the data dir anyway")
        finally:
            shutil.rmtree(d, ignore_errors=True)
            shutil.rmtree(os.path.dirname(db), ignore_errors=True)

    def test_db_flag(self):
        d = tempfile.mkdtemp(prefix="coffer-itest-")
        db = os.path.join(d, "sub.db")
        s = Server(data_dir=d, args=["--db", db])
        try:
            self._cycle(s)
            self.assertTrue(os.path.exists(db))
            self.assertFalse(os.path.exists(os.path.join(d, "coffer.db")))
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_flag_wins_over_env(self):
        s = Server(env={"COFFER_ADDR": "127.0.0.1:1"})  # --addr 127.0.0.1:0 given as a flag
        try:
            self._cycle(s)
            self.assertNotEqual(s.port, 1)
        finally:
            s.cleanup()

    def test_max_body_flag_and_env(self):
        for how in ("flag", "env"):
            with self.subTest(how=how):
                if how == "flag":
                    s = Server(args=["--max-body", "2048"])
                else:
                    s = Server(env={"COFFER_MAX_BODY": "2048"})
                try:
                    s.start()
                    pid = s.api("POST", "/api/v2/workspace", body={"projectName": unique("p")}).json["project"]["id"]
                    small = {"workspaceId": pid, "environment": "dev", "secretValue": "x" * 1000}
                    self.assertEqual(s.api("POST", "/api/v3/secrets/raw/SMALL", body=small).status, 200)
                    big = {"workspaceId": pid, "environment": "dev", "secretValue": "x" * 3000}
                    r = s.api("POST", "/api/v3/secrets/raw/BIG", body=big)
                    self.assertEqual(r.status, 413, r.body)
                    self.assertEqual(r.json.get("error"), "PayloadTooLarge")
                    r = s.api("GET", "/api/v3/secrets/raw/BIG", query={"workspaceId": pid, "environment": "dev"})
                    self.assertEqual(r.status, 404)
                    self.assertEqual(s.stop(), 0)
                    self.assertIsNone(s.sanitizer_report())
                finally:
                    s.cleanup()

    def test_log_level_env(self):
        # At level error neither the listening line nor request lines (info) are printed: use a fixed port.
        s = Server(addr="127.0.0.1:%d" % harness.free_port(), env={"COFFER_LOG_LEVEL": "error"})
        try:
            s.start(wait_log=False)
            for _ in range(3):
                self.assertEqual(s.api("GET", "/api/status").status, 200)
            self.assertEqual(s.stop(), 0)
            self.assertIsNone(s.sanitizer_report())
            self.assertEqual(s.request_log_lines(), [], "info request lines printed at level error")
            self.assertNotIn("listening on", s.stderr)
        finally:
            s.cleanup()

    def test_log_level_flag_invalid(self):
        rc, out, err = harness.run(["server", "--log-level", "chatty", "--data-dir", "/nonexistent/x"])
        self.assertEqual(rc, 2)
        self.assertIn("log-level", err)

    def test_bad_flags_exit_2(self):
        rc, out, err = harness.run(["server", "--no-such-flag"])
        self.assertEqual(rc, 2)
        rc, out, err = harness.run(["server", "--help"])
        self.assertEqual(rc, 0)
        self.assertIn("--data-dir", out)

    def test_busy_port_refused(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen(1)
            port = sock.getsockname()[1]
            d = tempfile.mkdtemp(prefix="coffer-itest-")
            try:
                rc, out, err = wait_exit(["server", "--addr", "127.0.0.1:%d" % port, "--data-dir", d],
                                         harness.base_env({"COFFER_BOOTSTRAP_TOKEN": ADMIN_TOKEN}))
                self.assertNotEqual(rc, 0)
                self.assertIn(str(port), err)
            finally:
                shutil.rmtree(d, ignore_errors=True)


class FlagTable(unittest.TestCase):
    """`coffer server` and `coffer operator` parse with the client commands' parser, from one table: each
    flag's help line names its environment variable and default, completion lists the same flags, and every
    value is checked alike whether it comes from the flag or from the environment (refused before the data
    directory is touched: these runs start no server)."""

    NOWHERE = "/nonexistent/coffer-itest-never-created"

    # (flag, its environment variable, a refused value, the words of the refusal)
    REFUSED = [
        ("--max-body", "COFFER_MAX_BODY", "1023", "--max-body must be 1024..67108864 bytes"),
        ("--threads", "COFFER_THREADS", "257", "--threads must be 1..256"),
        ("--write-threads", "COFFER_WRITE_THREADS", "65", "--write-threads must be 0..64"),
        ("--max-connections", "COFFER_MAX_CONNECTIONS", "15", "--max-connections must be 16..1000000"),
        ("--max-connections-per-ip", "COFFER_MAX_CONNECTIONS_PER_IP", "-1",
         "--max-connections-per-ip must be 1..1000000"),
        ("--idle-timeout", "COFFER_IDLE_TIMEOUT", "3601", "--idle-timeout must be 1..3600"),
        ("--db-pool-size", "COFFER_DB_POOL_SIZE", "1", "--db-pool-size must be 2..1000"),
        ("--db-timeout", "COFFER_DB_TIMEOUT", "5s", "--db-timeout must be 1..300"),
        ("--log-level", "COFFER_LOG_LEVEL", "INFO", "--log-level must be debug, info, warn or error"),
        ("--audit", "COFFER_AUDIT", "closed", "--audit must be on, fail-closed or off"),
        ("--smtp-starttls", "COFFER_SMTP_STARTTLS", "yes", "--smtp-starttls must be on or off"),
        ("--notify-interval", "COFFER_NOTIFY_INTERVAL", "soon",
         "--notify-interval takes a duration such as 60s or 5m, or 0"),
        ("--notify-retry-base", "COFFER_NOTIFY_RETRY_BASE", "-5s",
         "--notify-retry-base takes a duration such as 60s or 5m, or 0"),
        ("--max-token-ttl", "COFFER_MAX_TOKEN_TTL", "0",
         "--max-token-ttl takes a duration such as 12h or 30d (not 0)"),
        ("--audit-checkpoint-interval", "COFFER_AUDIT_CHECKPOINT_INTERVAL", "0",
         "--audit-checkpoint-interval must be at least 1s"),
        ("--outbound-allow", "COFFER_OUTBOUND_ALLOW", "10.0.0.0/99", "--outbound-allow"),
    ]

    def refused(self, args, env=None):
        rc, out, err = harness.run(["server", "--data-dir", self.NOWHERE] + list(args),
                                   env=harness.base_env(env))
        self.assertEqual(rc, 2, err)
        self.assertNotIn("listening", err)
        self.assertNotIn("admin token", out)
        self.assertFalse(os.path.exists(self.NOWHERE))
        return err

    def test_help_lines_name_env_and_default_and_match_completion(self):
        rc, out, err = harness.run(["server", "--help"])
        self.assertEqual((rc, err), (0, ""))
        head, body = out.split("\n\n", 1)
        lines = {}
        for m in re.finditer(r"^  --([a-z-]+)(.*(?:\n {10,}.*)*)", body, re.M):
            lines[m.group(1)] = " ".join(m.group(2).split())
        synopsis = set(re.findall(r"\[--([a-z-]+)", head))
        self.assertEqual(set(lines), synopsis, "help lines and synopsis list different flags")
        rc, script, err = harness.run(["completion", "bash"])
        self.assertEqual(rc, 0, err)
        completed = re.search(r'^\s*"server"\) echo \'([^\']*)\'', script, re.M).group(1).split()
        self.assertEqual({w[2:] for w in completed if w != "--help"}, set(lines))
        self.assertGreaterEqual(len(lines), 29)
        for name, text in lines.items():
            if name == "allow-plain-http":
                self.assertNotIn("COFFER_", text)
                continue
            env = "COFFER_" + name.upper().replace("-", "_")
            self.assertIn("(" + env, text, name)
        for name, default in (("addr", "127.0.0.1:8080"), ("data-dir", "./coffer-data"), ("max-body", "1048576"),
                              ("log-level", "info"), ("audit", "on"), ("notify-interval", "60s"),
                              ("max-token-ttl", "30d"), ("smtp-starttls", "on")):
            self.assertIn("default %s)" % default, lines[name], name)
        for line in out.splitlines():
            self.assertLessEqual(len(line), 100, line)

    def test_each_value_is_checked_from_the_flag_and_from_the_environment(self):
        for flag, env, value, words in self.REFUSED:
            with self.subTest(flag=flag):
                self.assertIn("coffer server: " + words, self.refused([flag, value]))
                self.assertIn("coffer server: " + words, self.refused([], env={env: value}))

    def test_a_switch_variable_says_true_or_false(self):
        err = self.refused([], env={"COFFER_OIDC_REQUIRE_GROUP": "yes"})
        self.assertIn("coffer server: COFFER_OIDC_REQUIRE_GROUP must be true or false", err)
        rc, out, err = harness.run(["server", "--help"], env=harness.base_env({"COFFER_OIDC_REQUIRE_GROUP": "x"}))
        self.assertEqual(rc, 0, err)

    def test_the_flag_wins_over_its_environment_variable(self):
        # a valid flag hides a refused environment value: the next check is the one that fails
        err = self.refused(["--threads", "4", "--log-level", "chatty"], env={"COFFER_THREADS": "0"})
        self.assertNotIn("--threads", err)
        self.assertIn("--log-level must be", err)
        err = self.refused(["--threads", "0"], env={"COFFER_THREADS": "4"})
        self.assertIn("--threads must be 1..256", err)

    def test_usage_errors(self):
        cases = [
            (["extra"], "unexpected argument 'extra'"),
            (["--allow-plain-http=maybe"], "option '--allow-plain-http' takes true or false"),
            (["--output", "json"], "unknown option '--output'"),  # the client commands' options are not taken
            (["--token", "x"], "unknown option '--token'"),
            (["--threads"], "option '--threads' needs a value"),
            (["--idle-timout", "5"], "(did you mean --idle-timeout?)"),
        ]
        for args, words in cases:
            with self.subTest(args=args):
                err = self.refused(args)
                self.assertIn(words, err)
                self.assertIn("usage: coffer server", err)

    def test_operator_uses_the_same_parser(self):
        table = {}
        rc, script, err = harness.run(["completion", "bash"])
        self.assertEqual(rc, 0, err)
        for path, words in re.findall(r'^\s*"(operator[^"]*)"\) echo \'([^\']*)\'', script, re.M):
            table[path] = words.split()
        for sub in ("migrate", "rotate-admin-token", "rotate-root-key"):
            self.assertIn(sub, table["operator"])
            self.assertIn("--data-dir", table["operator " + sub])
            rc, out, err = harness.run(["operator", sub, "--help"])
            self.assertEqual((rc, err), (0, ""), sub)
            self.assertIn("--data-dir DIR", out)
        for args, words in ((["operator"], "unknown or missing subcommand"),
                            (["operator", "rotate-keys"], "unknown or missing subcommand"),
                            (["operator", "migrate", "--form", "a", "--to", "b"], "(did you mean --from?)"),
                            (["operator", "rotate-root-key", "--output", "json"], "unknown option '--output'"),
                            (["operator", "rotate-root-key", "a", "b"], "unexpected argument 'a'")):
            with self.subTest(args=args):
                rc, out, err = harness.run(args + ["--data-dir", self.NOWHERE])
                self.assertEqual(rc, 2, err)
                self.assertIn(words, err)
                self.assertFalse(os.path.exists(self.NOWHERE))


class WriterThreads(unittest.TestCase):
    """Requests that may write run on --write-threads threads (docs/server.md "Group commit across requests"),
    their connections suspended meanwhile; with 0 the worker threads run them. Either way every write gets its
    own answer: concurrent updates of one secret from many connections succeed or conflict (409) one by one,
    and the secret's version counts exactly the ones that succeeded. Secret writes share transactions on the
    first writer thread; writes of other routes run beside them (docs/server.md "Shared write
    transactions")."""

    def threads_named(self, s, name):
        names = []
        for task in os.listdir("/proc/%d/task" % s.proc.pid):
            with open("/proc/%d/task/%s/comm" % (s.proc.pid, task)) as f:
                names.append(f.read().strip())
        return names.count(name)

    def hammer(self, s):
        pid = s.api("POST", "/api/v2/workspace", body={"projectName": unique("wt")}).json["project"]["id"]
        r = s.api("POST", "/api/v3/secrets/raw/SHARED", body={"workspaceId": pid, "environment": "dev",
                                                              "secretValue": "v0"})
        self.assertEqual(r.status, 200, r.body[:300])
        outcomes = {"ok": 0, "conflict": 0, "other": []}
        lock = threading.Lock()

        def writer(n):
            conn = s.connection(timeout=30)
            for i in range(25):
                # each writer also creates secrets of its own, which never conflict
                own = s.api("POST", "/api/v3/secrets/raw/OWN_%d_%d" % (n, i), conn=conn,
                            body={"workspaceId": pid, "environment": "dev", "secretValue": "own"})
                r = s.api("PATCH", "/api/v3/secrets/raw/SHARED", conn=conn,
                          body={"workspaceId": pid, "environment": "dev", "secretValue": "v-%d-%d" % (n, i)})
                # and now and then a write of another route, which runs beside the secret writes that share
                # transactions (a lone writer thread takes both kinds, in arrival order)
                folder = s.api("POST", "/api/v1/folders", conn=conn,
                               body={"workspaceId": pid, "environment": "dev", "name": "f%d-%d" % (n, i)}) \
                    if i % 5 == 0 else own
                with lock:
                    if own.status != 200:
                        outcomes["other"].append((own.status, own.body[:200]))
                    if folder.status != 200:
                        outcomes["other"].append((folder.status, folder.body[:200]))
                    if r.status == 200:
                        outcomes["ok"] += 1
                    elif r.status == 409:
                        outcomes["conflict"] += 1
                    else:
                        outcomes["other"].append((r.status, r.body[:200]))

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        self.assertEqual(outcomes["other"], [])
        self.assertEqual(outcomes["ok"] + outcomes["conflict"], 12 * 25)
        self.assertGreater(outcomes["ok"], 0)
        r = s.api("GET", "/api/v3/secrets/raw/SHARED", query={"workspaceId": pid, "environment": "dev"})
        self.assertEqual(r.json["secret"]["version"], 1 + outcomes["ok"], outcomes)
        r = s.api("GET", "/api/v3/secrets/raw", query={"workspaceId": pid, "environment": "dev"})
        self.assertEqual(len(r.json["secrets"]), 1 + 12 * 25)

    def test_writes_on_writer_threads_and_on_workers(self):
        for args, writers in (([], 4), (["--write-threads", "7"], 7), (["--write-threads", "1"], 1),
                              (["--write-threads", "0"], 0)):
            with self.subTest(args=args):
                s = Server(args=args)
                try:
                    s.start()
                    self.assertEqual(self.threads_named(s, "writer"), writers)
                    self.hammer(s)
                    # a refused write answers from a writer thread as from a worker
                    r = s.api("PATCH", "/api/v3/secrets/raw/SHARED", body=b"{bad")
                    self.assertEqual(r.status, 400, r.body[:200])
                    # and says where
                    self.assertIn("malformed JSON body at line 1, column", r.json["message"])
                    self.assertEqual(s.stop(), 0)
                    self.assertIsNone(s.sanitizer_report(), s.sanitizer_report())
                finally:
                    s.cleanup()


class Shutdown(unittest.TestCase):
    def test_sigterm_with_request_in_flight(self):
        s = Server()
        try:
            s.start()
            pid = s.api("POST", "/api/v2/workspace", body={"projectName": unique("p")}).json["project"]["id"]
            body = json.dumps({"workspaceId": pid, "environment": "dev", "secretValue": "in-flight"}).encode()
            sock = socket.create_connection((s.host, s.port), timeout=30)
            # A first, complete request makes sure the server has accepted this connection.
            sock.sendall(b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n")
            first = b""
            while not (b"\r\n\r\n" in first and first.rstrip().endswith(b"}")):
                chunk = sock.recv(65536)
                self.assertTrue(chunk, "connection closed after the first request")
                first += chunk
            self.assertTrue(first.startswith(b"HTTP/1.1 200"), first[:100])
            head = ("POST /api/v3/secrets/raw/INFLIGHT HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                    "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (ADMIN_TOKEN, len(body)))
            sock.sendall(head.encode() + body[:10])
            time.sleep(0.3)  # the server has the headers: the request is in flight
            s.proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            self.assertIsNone(s.proc.poll(), "server exited with a request in flight")
            # New connections are no longer accepted (or at least not served) while draining.
            sock.sendall(body[10:])
            data = b""
            while b"\r\n\r\n" not in data or len(data) < data.find(b"\r\n\r\n") + 10:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            sock.close()
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), "in-flight request not completed: %r" % data[:300])
            rc = s.stop()
            self.assertEqual(rc, 0, s.stderr[-2000:])
            self.assertIsNone(s.sanitizer_report(), s.sanitizer_report())
            # The acknowledged write is there after a restart.
            s.start()
            r = s.api("GET", "/api/v3/secrets/raw/INFLIGHT", query={"workspaceId": pid, "environment": "dev"})
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.json["secret"]["secretValue"], "in-flight")
            self.assertEqual(s.stop(), 0)
        finally:
            s.cleanup()

    def test_sigterm_refuses_new_connections(self):
        s = Server()
        try:
            s.start()
            sock = socket.create_connection((s.host, s.port), timeout=10)
            sock.sendall(b"POST /api/v2/workspace HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            time.sleep(0.2)
            s.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            self.assertIsNone(s.proc.poll())
            # While draining, a new request is either refused at the socket or answered 503 with the
            # connection closed (what the server does: a load balancer then retries elsewhere); it is
            # never served.
            try:
                c = socket.create_connection((s.host, s.port), timeout=2)
                c.sendall(b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n")
                got = c.recv(4096)
                c.close()
            except OSError:
                got = b""
            if got:
                self.assertTrue(got.startswith(b"HTTP/1.1 503"), got[:200])
                self.assertIn(b"shutting down", got)
                self.assertIn(b"connection: close", got.lower())
            sock.close()
            self.assertEqual(s.stop(), 0)
        finally:
            s.cleanup()

    def test_sigint_exit_0(self):
        s = Server()
        try:
            s.start()
            self.assertEqual(s.api("GET", "/api/status").status, 200)
            self.assertEqual(s.stop(sig=signal.SIGINT), 0)
            self.assertIsNone(s.sanitizer_report())
        finally:
            s.cleanup()

    def test_second_server_same_data_dir_refused(self):
        s = Server()
        try:
            s.start()
            rc, out, err = wait_exit(["server", "--addr", "127.0.0.1:0", "--data-dir", s.data_dir],
                                     harness.base_env({"COFFER_BOOTSTRAP_TOKEN": ADMIN_TOKEN}))
            self.assertNotEqual(rc, 0)
            self.assertTrue(err.strip())
            self.assertEqual(s.api("GET", "/api/status").status, 200)
            self.assertEqual(s.stop(), 0)
        finally:
            s.cleanup()


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certdir = tempfile.mkdtemp(prefix="coffer-itest-tls-")
        cls.cert, cls.key = harness.make_cert(cls.certdir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certdir, ignore_errors=True)

    def _context(self):
        ctx = ssl.create_default_context(cafile=self.cert)
        ctx.check_hostname = True
        return ctx

    def test_https(self):
        s = Server(args=["--tls-cert", self.cert, "--tls-key", self.key])
        try:
            s.start()
            self.assertEqual(s.scheme, "https", "listening line should say https")
            s.ssl_context = self._context()
            r = s.api("GET", "/api/status")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json["status"], "ok")
            pid = s.api("POST", "/api/v2/workspace", body={"projectName": unique("p")}).json["project"]["id"]
            self.assertEqual(s.api("POST", "/api/v3/secrets/raw/TLS",
                                   body={"workspaceId": pid, "environment": "dev", "secretValue": "x"}).status, 200)
            # Keep-alive over TLS too.
            conn = s.connection()
            s.api("GET", "/api/status", conn=conn)
            first = conn.sock
            r = s.api("GET", "/api/v1/workspace", conn=conn)
            self.assertEqual(r.status, 200)
            self.assertIs(conn.sock, first, "TLS connection not kept alive")
            conn.close()
            # Plain HTTP to the TLS port gets no HTTP answer.
            raw = socket.create_connection((s.host, s.port), timeout=5)
            try:
                raw.sendall(b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n")
                try:
                    got = raw.recv(100)
                except OSError:
                    got = b""
                self.assertFalse(got.startswith(b"HTTP/1.1 200"), "plain HTTP served on the TLS port")
            finally:
                raw.close()
            # An untrusting client fails the handshake.
            with self.assertRaises(ssl.SSLError):
                c = http.client.HTTPSConnection(s.host, s.port, timeout=5, context=ssl.create_default_context())
                c.request("GET", "/api/status")
                c.getresponse()
            self.assertEqual(s.stop(), 0)
            self.assertIsNone(s.sanitizer_report(), s.sanitizer_report())
        finally:
            s.cleanup()

    def test_cli_over_tls(self):
        """The CLI trusts a self-signed server through COFFER_CACERT, and refuses it without."""
        s = Server(args=["--tls-cert", self.cert, "--tls-key", self.key])
        try:
            s.start()
            s.ssl_context = self._context()
            rc, out, err = s.cli("projects", "create", unique("tls"), "--output", "json",
                                 env={"COFFER_CACERT": self.cert})
            self.assertEqual(rc, 0, err)
            self.assertIn('"project"', out)
            rc, out, err = s.cli("projects", "list")
            self.assertEqual(rc, 1, "an untrusted certificate must be refused")
            self.assertIn(s.url, err)
            self.assertEqual(s.stop(), 0)
        finally:
            s.cleanup()

    def test_tls_on_all_interfaces(self):
        s = Server(addr="0.0.0.0:0", args=["--tls-cert", self.cert, "--tls-key", self.key])
        try:
            s.start()
            s.host = "127.0.0.1"
            s.ssl_context = self._context()
            self.assertEqual(s.api("GET", "/api/status").status, 200)
            self.assertEqual(s.stop(), 0)
        finally:
            s.cleanup()

    def test_cert_without_key_refused(self):
        d = tempfile.mkdtemp(prefix="coffer-itest-")
        try:
            rc, out, err = wait_exit(["server", "--addr", "127.0.0.1:0", "--data-dir", d, "--tls-cert", self.cert],
                                     harness.base_env({"COFFER_BOOTSTRAP_TOKEN": ADMIN_TOKEN}))
            self.assertNotEqual(rc, 0)
            self.assertIn("--tls-key", err)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_missing_cert_file_refused(self):
        d = tempfile.mkdtemp(prefix="coffer-itest-")
        try:
            missing = os.path.join(d, "nope.pem")
            rc, out, err = wait_exit(["server", "--addr", "127.0.0.1:0", "--data-dir", d, "--tls-cert", missing,
                                      "--tls-key", self.key],
                                     harness.base_env({"COFFER_BOOTSTRAP_TOKEN": ADMIN_TOKEN}))
            self.assertNotEqual(rc, 0)
            self.assertIn("nope.pem", err)
        finally:
            shutil.rmtree(d, ignore_errors=True)


class TlsPolicy(ServerTestCase):
    """Only TLS 1.2 with ECDHE key exchange and an AEAD cipher, or TLS 1.3, is offered (docs/server.md "TLS"). An
    RSA certificate, so that the server could pick a static-RSA suite such as AES128-SHA if its policy allowed it."""

    @classmethod
    def setUpClass(cls):
        cls.certdir = tempfile.mkdtemp(prefix="coffer-itest-tls-")
        cls.cert = os.path.join(cls.certdir, "rsa-cert.pem")
        cls.key = os.path.join(cls.certdir, "rsa-key.pem")
        harness.subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", cls.key,
                                "-out", cls.cert, "-days", "2", "-subj", "/CN=localhost",
                                "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                               check=True, capture_output=True, timeout=60)
        cls.server_args = ["--tls-cert", cls.cert, "--tls-key", cls.key]
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.certdir, ignore_errors=True)

    def handshake(self, version, ciphers=None):
        """Connects with exactly one TLS version (and, for TLS 1.2 and older, the given OpenSSL cipher list);
        returns (version, cipher) as negotiated, or raises ssl.SSLError / OSError when refused."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.cert)
        ctx.minimum_version = version
        ctx.maximum_version = version
        if ciphers:
            # SECLEVEL=0: this client's OpenSSL would refuse TLS 1.1 and SHA-1 suites by itself.
            ctx.set_ciphers(ciphers + ":@SECLEVEL=0")
        with socket.create_connection((self.server.host, self.server.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(b"GET /api/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                answer = b""
                while True:
                    chunk = tls.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
                self.assertTrue(answer.startswith(b"HTTP/1.1 200"), answer[:100])
                return tls.version(), tls.cipher()[0]

    def test_old_protocols_refused(self):
        for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            with self.subTest(version=version.name):
                with self.assertRaises((ssl.SSLError, OSError), msg="%s was accepted" % version.name):
                    self.handshake(version, "DEFAULT")

    def test_weak_tls12_suites_refused(self):
        # static RSA key exchange (no forward secrecy) with CBC, static RSA with GCM, ECDHE with CBC, DHE
        for cipher in ("AES128-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA384",
                       "DHE-RSA-AES128-GCM-SHA256"):
            with self.subTest(cipher=cipher):
                with self.assertRaises((ssl.SSLError, OSError), msg="%s was accepted" % cipher):
                    self.handshake(ssl.TLSVersion.TLSv1_2, cipher)

    def test_ecdhe_aead_and_tls13_accepted(self):
        for cipher in ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"):
            with self.subTest(cipher=cipher):
                self.assertEqual(self.handshake(ssl.TLSVersion.TLSv1_2, cipher), ("TLSv1.2", cipher))
        version, _ = self.handshake(ssl.TLSVersion.TLSv1_3)
        self.assertEqual(version, "TLSv1.3")
        # A client offering everything gets TLS 1.3.
        ctx = ssl.create_default_context(cafile=self.cert)
        with socket.create_connection((self.server.host, self.server.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                self.assertEqual(tls.version(), "TLSv1.3")


class PlainHttpOnPublicAddress(unittest.TestCase):
    def test_refused_without_tls(self):
        d = tempfile.mkdtemp(prefix="coffer-itest-")
        try:
            for addr in ("0.0.0.0:0", "[::]:0"):
                with self.subTest(addr=addr):
                    rc, out, err = wait_exit(["server", "--addr", addr, "--data-dir", d],
                                             harness.base_env({"COFFER_BOOTSTRAP_TOKEN": ADMIN_TOKEN}))
                    self.assertNotEqual(rc, 0, "plain HTTP on %s must be refused" % addr)
                    self.assertIn("plain http", err.lower())
                    self.assertIn("--tls-cert", err)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_allow_plain_http_flag(self):
        s = Server(addr="0.0.0.0:0", args=["--allow-plain-http"])
        try:
            s.start()
            s.host = "127.0.0.1"
            self.assertEqual(s.api("GET", "/api/status").status, 200)
            self.assertEqual(s.stop(), 0)
        finally:
            s.cleanup()

    def test_loopback_plain_ok(self):
        s = Server(addr="127.0.0.1:0")
        try:
            s.start()
            self.assertEqual(s.scheme, "http")
            self.assertEqual(s.stop(), 0)
        finally:
            s.cleanup()


if __name__ == "__main__":
    unittest.main()


class Systemd(unittest.TestCase):
    """Type=notify and the watchdog (docs/operations.md "systemd"): READY=1 once the server listens, WATCHDOG=1 at
    half of WATCHDOG_USEC while it runs (not when WATCHDOG_PID names another process), STOPPING=1 on SIGTERM;
    dist/coffer.service verified by systemd-analyze."""

    def notify_socket(self):
        d = tempfile.mkdtemp(prefix="coffer-notify-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(0.2)
        self.addCleanup(sock.close)
        return sock, path

    def messages(self, sock, until, seconds):
        got, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline and not until(got):
            try:
                got.append(sock.recv(4096).decode())
            except socket.timeout:
                pass
        return got

    def test_ready_watchdog_stopping(self):
        sock, path = self.notify_socket()
        s = Server(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
        try:
            s.start()
            got = self.messages(sock, lambda g: sum(m == "WATCHDOG=1" for m in g) >= 3, 5)
            ready = [m for m in got if m.startswith("READY=1")]
            self.assertEqual(len(ready), 1, got)
            self.assertIn("STATUS=serving on port %d" % s.port, ready[0])
            self.assertGreaterEqual(sum(m == "WATCHDOG=1" for m in got), 3, got)
            s.stop()
            got = self.messages(sock, lambda g: any(m.startswith("STOPPING=1") for m in g), 3)
            self.assertTrue([m for m in got if m.startswith("STOPPING=1")], got)
        finally:
            s.stop()
            s.cleanup()

    def test_watchdog_of_another_process_is_not_pinged(self):
        sock, path = self.notify_socket()
        s = Server(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
        try:
            s.start()
            got = self.messages(sock, lambda g: False, 1.0)
            self.assertTrue([m for m in got if m.startswith("READY=1")], got)
            self.assertNotIn("WATCHDOG=1", got)
        finally:
            s.stop()
            s.cleanup()

    def test_unit_is_well_formed(self):
        unit = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "dist", "coffer.service")
        with open(unit) as f:
            text = f.read()
        for line in ("Type=notify", "WatchdogSec=30s", "NoNewPrivileges=yes", "ProtectSystem=strict",
                     "MemoryDenyWriteExecute=yes", "CapabilityBoundingSet=", "LimitCORE=0", "StateDirectoryMode=0700"):
            self.assertIn(line + "\n", text)
        analyze = shutil.which("systemd-analyze")
        if not analyze:
            self.skipTest("systemd-analyze is not installed: the unit's text was checked, not verified")
        d = tempfile.mkdtemp(prefix="coffer-unit-")
        self.addCleanup(shutil.rmtree, d, True)
        copy = os.path.join(d, "coffer.service")
        with open(copy, "w") as f:
            f.write(text.replace("/usr/local/bin/coffer", os.path.abspath(harness.COFFER_BIN)))
        r = subprocess.run([analyze, "verify", copy], capture_output=True, text=True, timeout=60)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
