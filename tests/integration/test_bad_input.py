"""Bad input: every case asserts the status, the error name and that the message names the problem; after each
test, the project's whole readable state is unchanged (nothing partially written) and the server still answers
/api/status (the harness also checks it is alive and printed no sanitizer report)."""

import json
import socket
import unittest
import urllib.parse

from harness import ADMIN_TOKEN, ServerTestCase, unique

MISSING_ID = "00000000-0000-4000-8000-000000000000"


class BadInputBase(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.server.api("POST", "/api/v2/workspace", body={"projectName": unique("bad-input")})
        assert r.status == 200, r.body
        cls.pid = r.json["project"]["id"]
        r = cls.server.api("POST", "/api/v1/folders",
                           body={"workspaceId": cls.pid, "environment": "dev", "name": "app", "path": "/"})
        assert r.status == 200, r.body
        for key, value, path in (("EXISTING", "original", "/"), ("IN_APP", "app-value", "/app")):
            r = cls.server.api("POST", "/api/v3/secrets/raw/" + key,
                               body={"workspaceId": cls.pid, "environment": "dev", "secretPath": path,
                                     "secretValue": value})
            assert r.status == 200, r.body

    def setUp(self):
        super().setUp()
        self.before = self.snapshot(self.pid)
        self.projects_before = sorted(w["id"] for w in self.ok("GET", "/api/v1/workspace")["workspaces"])

    def tearDown(self):
        try:
            r = self.api("GET", "/api/status", token=None)
            self.assertEqual(r.status, 200, "server not answering after the test")
            self.assertEqual(self.snapshot(self.pid), self.before, "bad input changed the project")
            self.assertEqual(sorted(w["id"] for w in self.ok("GET", "/api/v1/workspace")["workspaces"]),
                             self.projects_before, "bad input created or deleted a project")
        finally:
            super().tearDown()

    def secret_body(self, **fields):
        body = {"workspaceId": self.pid, "environment": "dev", "secretPath": "/", "secretValue": "v"}
        body.update(fields)
        return body

    def post_secret(self, key="NEWKEY", body=None, **fields):
        return self.api("POST", "/api/v3/secrets/raw/" + urllib.parse.quote(key, safe=""),
                        body=body if body is not None else self.secret_body(**fields))

    def raw_exchange(self, data, read_timeout=20):
        """Sends raw bytes on a fresh connection and returns (status, json, raw response)."""
        sock = socket.create_connection((self.server.host, self.server.port), timeout=read_timeout)
        try:
            try:
                sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may answer early and stop reading; the answer must still be readable
            resp = b""
            while True:
                try:
                    chunk = sock.recv(65536)
                except (ConnectionResetError, socket.timeout):
                    break
                if not chunk:
                    break
                resp += chunk
                head, sep, rest = resp.partition(b"\r\n\r\n")
                if sep:
                    length = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                    if length and len(rest) >= int(length[0].split(b":")[1]):
                        break
        finally:
            sock.close()
        head, _, rest = resp.partition(b"\r\n\r\n")
        status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/") else None
        try:
            parsed = json.loads(rest.decode())
        except ValueError:
            parsed = None
        return status, parsed, resp


class Malformed(BadInputBase):
    def test_malformed_json(self):
        for raw in (b'{"workspaceId": ', b"not json", b'{"a":1}}', b"{'single': 1}", b'{"a":1,}'):
            with self.subTest(raw=raw):
                r = self.post_secret(body=raw)
                self.assertError(r, 400, "BadRequest", "json")

    def test_not_an_object(self):
        for raw in (b"[]", b'"string"', b"42", b"null"):
            with self.subTest(raw=raw):
                r = self.post_secret(body=raw)
                body = self.assertError(r, 400, "BadRequest")
                self.assertTrue("object" in body["message"] or "JSON" in body["message"], body["message"])

    def test_deeply_nested_json(self):
        r = self.post_secret(body=b"[" * 200000 + b"]" * 200000)
        self.assertError(r, 400, "BadRequest")
        r = self.post_secret(body=b'{"a":' * 50000 + b"1" + b"}" * 50000)
        self.assertError(r, 400, "BadRequest")

    def test_wrong_types(self):
        cases = [("secretValue", 123), ("secretValue", True), ("secretValue", ["x"]), ("workspaceId", 7),
                 ("environment", {"slug": "dev"}), ("secretComment", 5), ("tagIds", "notalist"),
                 ("skipMultilineEncoding", "yes"), ("secretPath", 1), ("expiresAt", 1234567890)]
        for field, value in cases:
            with self.subTest(field=field, value=value):
                r = self.post_secret(body=self.secret_body(**{field: value}))
                self.assertError(r, 400, "BadRequest", field)

    def test_wrong_types_elsewhere(self):
        r = self.api("POST", "/api/v2/workspace", body={"projectName": 12})
        self.assertError(r, 400, "BadRequest", "projectName")
        r = self.api("POST", "/api/v1/workspace/%s/environments" % self.pid, body={"name": "X", "slug": "x",
                                                                                   "position": "first"})
        self.assertError(r, 400, "BadRequest", "position")
        r = self.api("POST", "/api/v3/secrets/batch/raw", body={"workspaceId": self.pid, "environment": "dev",
                                                               "secrets": {"secretKey": "A"}})
        self.assertError(r, 400, "BadRequest", "secrets")
        r = self.api("POST", "/api/v3/secrets/batch/raw", body={"workspaceId": self.pid, "environment": "dev",
                                                               "secrets": ["A", "B"]})
        self.assertError(r, 400, "BadRequest", "secrets")
        sid = self.get_secret(self.pid, "EXISTING").json["secret"]["id"]
        r = self.api("POST", "/api/v1/secret/%s/rollback" % sid, body={"version": "1"})
        self.assertError(r, 400, "BadRequest", "version")

    def test_invalid_utf8_body(self):
        for raw in (b'{"workspaceId":"%s","environment":"dev","secretValue":"\xff\xfe"}',
                    b'{"workspaceId":"%s","environment":"dev","secretValue":"ok","secretComment":"\xc3\x28"}',
                    b'{"workspaceId":"%s","environment":"dev","secretValue":"\xed\xa0\x80"}'):
            with self.subTest(raw=raw):
                r = self.post_secret(body=raw.replace(b"%s", self.pid.encode()))
                self.assertError(r, 400, "BadRequest", "utf-8")

    def test_invalid_utf8_query(self):
        q = "workspaceId=%s&environment=d%%FFv&secretPath=/" % self.pid
        r = self.api("GET", "/api/v3/secrets/raw", query=q)
        self.assertError(r, 400, "BadRequest", "utf-8")
        q = "workspaceId=%s&environment=dev&secretPath=/%%C3%%28" % self.pid
        r = self.api("GET", "/api/v3/secrets/raw/EXISTING", query=q)
        self.assertError(r, 400, "BadRequest", "utf-8")

    def test_invalid_utf8_key_in_path(self):
        r = self.api("POST", "/api/v3/secrets/raw/AB%FFC", body=self.secret_body())
        self.assertIn(r.status, (400, 422), r.body)
        self.assertError(r, r.status, None)

    def test_nul_in_key(self):
        # A percent-encoded NUL must not truncate the key to "AB" (the state check in tearDown sees any write).
        r = self.api("POST", "/api/v3/secrets/raw/AB%00C", body=self.secret_body())
        self.assertIn(r.status, (400, 404, 422), r.body)
        self.assertError(r, r.status, None)
        self.assertEqual(self.get_secret(self.pid, "AB").status, 404)


class Missing(BadInputBase):
    def test_missing_fields(self):
        for field in ("workspaceId", "environment", "secretValue"):
            with self.subTest(field=field):
                body = self.secret_body()
                del body[field]
                r = self.post_secret(body=body)
                b = self.assertError(r, 422, "ValidationFailure", field)
                self.assertIn(field, json.dumps(b["details"]))

    def test_missing_fields_other_routes(self):
        cases = [
            ("POST", "/api/v2/workspace", {}, "projectName"),
            ("POST", "/api/v1/workspace/%s/environments" % self.pid, {"name": "X"}, "slug"),
            ("POST", "/api/v1/workspace/%s/environments" % self.pid, {"slug": "x"}, "name"),
            ("POST", "/api/v1/folders", {"workspaceId": self.pid, "environment": "dev"}, "name"),
            ("POST", "/api/v3/secrets/batch/raw", {"workspaceId": self.pid, "environment": "dev"}, "secrets"),
            ("POST", "/api/v3/secrets/batch/raw", {"workspaceId": self.pid, "environment": "dev",
                                                   "secrets": [{"secretValue": "x"}]}, "secretKey"),
            ("POST", "/api/v2/secret-imports", {"projectId": self.pid, "environment": "dev"}, "import"),
            ("POST", "/api/v1/projects/%s/tags" % self.pid, {"name": "x"}, "slug"),
        ]
        for method, path, body, field in cases:
            with self.subTest(path=path, field=field):
                self.assertError(self.api(method, path, body=body), 422, "ValidationFailure", field)
        r = self.api("GET", "/api/v3/secrets/raw", query={"environment": "dev"})
        self.assertError(r, 422, "ValidationFailure", "workspaceId")
        r = self.api("GET", "/api/v3/secrets/raw", query={"workspaceId": self.pid})
        self.assertError(r, 422, "ValidationFailure", "environment")
        sid = self.get_secret(self.pid, "EXISTING").json["secret"]["id"]
        self.assertError(self.api("POST", "/api/v1/secret/%s/rollback" % sid, body={}), 422, "ValidationFailure",
                         "version")

    def test_empty_body_where_required(self):
        r = self.api("POST", "/api/v3/secrets/raw/NEWKEY", body=b"")
        self.assertIn(r.status, (400, 422), r.body)
        self.assertError(r, r.status, None)


class Unknown(BadInputBase):
    def test_unknown_project(self):
        r = self.post_secret(body=self.secret_body(workspaceId=MISSING_ID))
        self.assertError(r, 404, "NotFound", MISSING_ID)
        self.assertError(self.api("GET", "/api/v1/workspace/" + MISSING_ID), 404, "NotFound", MISSING_ID)
        self.assertError(self.api("GET", "/api/v1/workspace/no-such-slug"), 404, "NotFound", "no-such-slug")
        r = self.api("GET", "/api/v3/secrets/raw", query={"workspaceId": MISSING_ID, "environment": "dev"})
        self.assertError(r, 404, "NotFound", MISSING_ID)
        r = self.api("POST", "/api/v1/folders", body={"workspaceId": MISSING_ID, "environment": "dev", "name": "x"})
        self.assertError(r, 404, "NotFound", MISSING_ID)

    def test_unknown_environment(self):
        msg = "Environment with slug 'qa' in project with ID %s not found" % self.pid
        r = self.post_secret(body=self.secret_body(environment="qa"))
        body = self.assertError(r, 404, "NotFound")
        self.assertIn("Environment with slug 'qa'", body["message"])
        self.assertIn(self.pid, body["message"])
        self.assertEqual(body["message"], msg)
        r = self.api("GET", "/api/v3/secrets/raw", query={"workspaceId": self.pid, "environment": "qa"})
        self.assertError(r, 404, "NotFound", "Environment with slug 'qa'")
        r = self.api("GET", "/api/v1/folders", query={"workspaceId": self.pid, "environment": "qa"})
        self.assertError(r, 404, "NotFound", "Environment with slug 'qa'")
        r = self.api("PATCH", "/api/v1/workspace/%s/environments/%s" % (self.pid, MISSING_ID), body={"name": "x"})
        self.assertError(r, 404, "NotFound", MISSING_ID)

    def test_unknown_folder(self):
        r = self.post_secret(body=self.secret_body(secretPath="/x"))
        body = self.assertError(r, 404, "NotFound")
        self.assertIn("Folder with path '/x' in environment with slug 'dev' not found", body["message"])
        r = self.api("GET", "/api/v3/secrets/raw", query={"workspaceId": self.pid, "environment": "dev",
                                                          "secretPath": "/app/deeper"})
        self.assertError(r, 404, "NotFound", "Folder with path '/app/deeper'")
        r = self.api("DELETE", "/api/v1/folders/nothere", body={"workspaceId": self.pid, "environment": "dev"})
        self.assertError(r, 404, "NotFound", "nothere")

    def test_unknown_secret(self):
        r = self.get_secret(self.pid, "NOPE")
        body = self.assertError(r, 404, "NotFound")
        self.assertIn("Secret with name 'NOPE' not found", body["message"])
        r = self.api("DELETE", "/api/v3/secrets/raw/NOPE", body={"workspaceId": self.pid, "environment": "dev"})
        self.assertError(r, 404, "NotFound", "NOPE")
        r = self.get_secret(self.pid, "IN_APP")  # exists only under /app
        self.assertError(r, 404, "NotFound", "IN_APP")

    def test_unknown_route(self):
        for method, path in (("GET", "/api/v9/things"), ("POST", "/api/v3/secrets/raw/A/B/C"), ("POST", "/"),
                             ("GET", "/api"), ("DELETE", "/api/v1/nothing")):
            with self.subTest(path=path):
                r = self.api(method, path, body={} if method != "GET" else None)
                self.assertError(r, 404, "NotFound", path)

    def test_unknown_route_without_token(self):
        r = self.api("GET", "/api/v9/things", token=None)
        self.assertIn(r.status, (401, 404))
        self.assertError(r, r.status, None)

    def test_wrong_method(self):
        for method, path in (("PUT", "/api/v3/secrets/raw/EXISTING"), ("DELETE", "/api/status"),
                             ("PATCH", "/api/v2/workspace"), ("PUT", "/api/v1/workspace/" + MISSING_ID)):
            with self.subTest(method=method, path=path):
                r = self.api(method, path, body={})
                self.assertError(r, 405, "MethodNotAllowed", method)

    def test_bad_booleans(self):
        for name in ("recursive", "include_imports", "expandSecretReferences"):
            with self.subTest(name=name):
                r = self.api("GET", "/api/v3/secrets/raw", query={"workspaceId": self.pid, "environment": "dev",
                                                                  name: "yes"})
                self.assertError(r, 422, "ValidationFailure", name)

    def test_bad_version_query(self):
        for v in ("abc", "0", "-1", "1.5", "99999999999999999999"):
            with self.subTest(version=v):
                r = self.get_secret(self.pid, "EXISTING", version=v)
                self.assertIn(r.status, (400, 404, 422), r.body)
                self.assertError(r, r.status, None, "version")


class Invalid(BadInputBase):
    def test_invalid_key_names(self):
        cases = [("1ABC", "digit"), (".hidden", "."), ("has space", "secretKey"), ("K" * 257, "256"),
                 ("KÉY", "secretKey"), ("a/b", None), ("semi;colon", "secretKey"), ("dollar$", "secretKey")]
        for key, hint in cases:
            with self.subTest(key=key[:20]):
                r = self.post_secret(key)
                if key == "a/b":
                    self.assertIn(r.status, (404, 422), r.body)  # an extra path segment is another route
                    self.assertError(r, r.status, None)
                    continue
                self.assertError(r, 422, "ValidationFailure", "secretKey", hint)
        r = self.api("PATCH", "/api/v3/secrets/raw/EXISTING",
                     body={"workspaceId": self.pid, "environment": "dev", "newSecretName": "9lives"})
        self.assertError(r, 422, "ValidationFailure", "newSecretName")

    def test_invalid_paths(self):
        cases = ["/bad path", "/a/../b", "no/leading/ok/but/..", "/" + "/".join(["s"] * 33), "/" + "x" * 65,
                 "/a//b", "/ü"]
        for path in cases:
            with self.subTest(path=path[:40]):
                r = self.post_secret(body=self.secret_body(secretPath=path))
                self.assertError(r, 422, "ValidationFailure", "secretPath")
        r = self.api("POST", "/api/v1/folders", body={"workspaceId": self.pid, "environment": "dev",
                                                      "name": "bad name"})
        self.assertError(r, 422, "ValidationFailure", "name")
        r = self.api("POST", "/api/v1/folders", body={"workspaceId": self.pid, "environment": "dev",
                                                      "name": "x" * 65})
        self.assertError(r, 422, "ValidationFailure", "name")

    def test_invalid_slugs_and_names(self):
        cases = [
            ("/api/v2/workspace", {"projectName": "ok", "slug": "Bad Slug"}, "slug"),
            ("/api/v2/workspace", {"projectName": "ok", "slug": "x" * 65}, "slug"),
            ("/api/v2/workspace", {"projectName": ""}, "projectName"),
            ("/api/v2/workspace", {"projectName": "n" * 129}, "projectName"),
            ("/api/v1/workspace/%s/environments" % self.pid, {"name": "QA", "slug": "Q_A"}, "slug"),
            ("/api/v1/workspace/%s/environments" % self.pid, {"name": "", "slug": "qa"}, "name"),
            ("/api/v1/workspace/%s/environments" % self.pid, {"name": "QA", "slug": "qa", "position": 0}, "position"),
            ("/api/v1/projects/%s/tags" % self.pid, {"slug": "Not Valid"}, "slug"),
        ]
        for path, body, field in cases:
            with self.subTest(path=path, body=str(body)[:50]):
                self.assertError(self.api("POST", path, body=body), 422, "ValidationFailure", field)

    def test_comment_too_long(self):
        r = self.post_secret(body=self.secret_body(secretComment="c" * 4097))
        self.assertError(r, 422, "ValidationFailure", "secretComment")

    def test_bad_expiry(self):
        for v in ("tomorrow", "2026-13-01T00:00:00Z", "2026-12-31", ""):
            with self.subTest(value=v):
                r = self.post_secret(body=self.secret_body(expiresAt=v))
                self.assertError(r, 422, "ValidationFailure", "expiresAt")

    def test_duplicate_create(self):
        r = self.post_secret("EXISTING", secretValue="clobber")
        self.assertError(r, 400, "BadRequest", "EXISTING", "exist")
        self.assertEqual(self.get_secret(self.pid, "EXISTING").json["secret"]["secretValue"], "original")

    def test_duplicate_keys_in_batch(self):
        items = [{"secretKey": "DUP1", "secretValue": "a"}, {"secretKey": "DUP1", "secretValue": "b"}]
        r = self.api("POST", "/api/v3/secrets/batch/raw",
                     body={"workspaceId": self.pid, "environment": "dev", "secrets": items})
        self.assertError(r, 400, "BadRequest", "DUP1", "duplicate")

    def test_too_many_in_batch(self):
        items = [{"secretKey": "T%d" % i, "secretValue": "v"} for i in range(1001)]
        r = self.api("POST", "/api/v3/secrets/batch/raw",
                     body={"workspaceId": self.pid, "environment": "dev", "secrets": items})
        self.assertError(r, 422, "ValidationFailure", "1000")

    def test_personal_type(self):
        r = self.post_secret(body=self.secret_body(type="personal"))
        self.assertError(r, 400, "BadRequest", "personal")

    def test_history_limit_out_of_range(self):
        sid = self.get_secret(self.pid, "EXISTING").json["secret"]["id"]
        for limit in ("0", "101", "x"):
            with self.subTest(limit=limit):
                r = self.api("GET", "/api/v1/secret/%s/secret-versions" % sid, query={"limit": limit})
                if limit == "x":
                    self.assertIn(r.status, (400, 422), r.body)
                self.assertError(r, 422 if limit != "x" else r.status, None, "limit")


class Limits(BadInputBase):
    def test_value_over_limit(self):
        r = self.post_secret(body=self.secret_body(secretValue="v" * (64 * 1024 + 1)))
        self.assertError(r, 413, "PayloadTooLarge", "NEWKEY", "65536")
        # the limit counts UTF-8 bytes, not characters: 32769 two-byte characters are 65538 bytes
        r = self.post_secret(body=self.secret_body(secretValue="é" * 32769))
        self.assertError(r, 413, "PayloadTooLarge", "NEWKEY", "65536")
        r = self.api("PATCH", "/api/v3/secrets/raw/EXISTING",
                     body={"workspaceId": self.pid, "environment": "dev", "secretValue": "x" * 70000})
        self.assertError(r, 413, "PayloadTooLarge", "EXISTING", "65536")

    def test_value_at_limit_accepted(self):
        # Its own project, so the unchanged-state check of this class still holds.
        r = self.api("POST", "/api/v2/workspace", body={"projectName": unique("limit")})
        pid = r.json["project"]["id"]
        try:
            value = "x" * (64 * 1024)
            r = self.api("POST", "/api/v3/secrets/raw/AT_LIMIT",
                         body={"workspaceId": pid, "environment": "dev", "secretValue": value})
            self.assertEqual(r.status, 200, r.body[:300])
            r = self.get_secret(pid, "AT_LIMIT")
            self.assertEqual(r.json["secret"]["secretValue"], value)
        finally:
            self.delete_project(pid)
        self.projects_before = sorted(w["id"] for w in self.ok("GET", "/api/v1/workspace")["workspaces"])

    def test_body_over_limit_declared(self):
        # Headers only: the 413 must come back before the body is sent.
        head = ("POST /api/v3/secrets/raw/HUGE HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (ADMIN_TOKEN, 2 * 1024 * 1024))
        status, body, raw = self.raw_exchange(head.encode(), read_timeout=10)
        self.assertEqual(status, 413, raw[:300])
        self.assertEqual(body["error"], "PayloadTooLarge")
        self.assertIn("limit", body["message"])

    def test_body_over_limit_sent(self):
        payload = json.dumps(self.secret_body(secretValue="x" * (1536 * 1024))).encode()
        head = ("POST /api/v3/secrets/raw/HUGE HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (ADMIN_TOKEN, len(payload)))
        status, body, raw = self.raw_exchange(head.encode() + payload)
        self.assertEqual(status, 413, "413 not readable by a client that sends the whole body: %r" % raw[:300])
        self.assertEqual(body["error"], "PayloadTooLarge")

    def test_body_over_limit_chunked(self):
        chunk = b"x" * 65536
        data = b'{"workspaceId":"%s","environment":"dev","secretValue":"' % self.pid.encode()
        parts = [data] + [chunk] * 20 + [b'"}']
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
        head = ("POST /api/v3/secrets/raw/HUGE HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" % ADMIN_TOKEN)
        status, parsed, raw = self.raw_exchange(head.encode() + body)
        self.assertEqual(status, 413, raw[:300])
        self.assertEqual(parsed["error"], "PayloadTooLarge")

    def test_garbage_request_line(self):
        # No particular answer is required (none is fine), only no 200 and no crash.
        status, _, raw = self.raw_exchange(b"\x00\x01\x02 NOT HTTP\r\n\r\n", read_timeout=2)
        self.assertNotEqual(status, 200, raw[:200])
        status, _, raw = self.raw_exchange(b"GET /api/status HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 200000 +
                                           b"\r\n\r\n", read_timeout=10)
        self.assertNotEqual(status, 200)


if __name__ == "__main__":
    unittest.main()
