"""GET /api/openapi.json (docs/api.md "OpenAPI document"): the OpenAPI 3.1 document of the whole API.

- public, JSON, `openapi` 3.1.0 with the JSON Schema 2020-12 dialect, the server's version, the same bytes on every
  fetch, and not audited (a POST to it is a 405 with the error body);
- every (method, pattern) of the route tables is in it and nothing else: the route list is read from the C sources
  (the `{"GET", "/api/...", handler, public` entries of src/api/*.c), not from the server, so a route the
  document generator missed, or one it made up, is found;
- every path parameter is declared (in: path, required) and no other; public routes have `security: []`, the others
  the document's bearer security; operation ids are unique; each operation's tag is its route file's resource;
- every `$ref` resolves, every route has a `default` (error) answer, and the routes the description names as
  precise have their own schemas, not the generic object.
The Node suite (tests/openapi) validates real answers against these schemas. Skipped on PostgreSQL: the document
does not involve storage.
"""

import glob
import os
import re
import unittest

import harness

SRC_API = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "api")
ROUTE = re.compile(r'\{\s*"(GET|POST|PUT|PATCH|DELETE)"\s*,\s*"(/[^"]*)"\s*,\s*(\w+)\s*,\s*(true|false)')
TABLE = re.compile(r"const struct cf_route cf_routes_(\w+)\[\]\s*=\s*\{(.*?)\n\};", re.S)
# Routes the description promises member-by-member schemas for (a sample of each resource it names).
PRECISE = [("get", "/api/status", "200"), ("post", "/api/v1/auth/universal-auth/login", "200"),
           ("get", "/api/v3/secrets/raw", "200"), ("get", "/api/v3/secrets/raw/{name}", "200"),
           ("get", "/api/v1/workspace", "200"), ("post", "/api/v2/workspace", "200"),
           ("get", "/api/v1/identities", "200"), ("get", "/api/v1/folders", "200"),
           ("get", "/api/v1/workspace/{projectId}/environments", "200"),
           ("get", "/api/v1/audit/events", "200"), ("get", "/api/v1/inventory", "200"),
           ("get", "/api/v1/expiring", "200"), ("get", "/api/v1/users", "200"),
           ("get", "/api/v1/access-requests", "200"), ("get", "/api/v1/secret-approval-requests", "200"),
           ("get", "/api/v1/notifications/deliveries", "200"), ("post", "/api/v3/secrets/raw/{name}", "202"),
           ("post", "/api/v1/secrets/leaked", "200")]


def source_routes():
    """{(method, pattern): (public, resource)} from the route tables in src/api/*.c."""
    routes = {}
    for path in sorted(glob.glob(os.path.join(SRC_API, "*.c"))):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for table in TABLE.finditer(text):
            resource = table.group(1).replace("_", "-")
            for m in ROUTE.finditer(table.group(2)):
                key = (m.group(1), m.group(2))
                assert key not in routes, "route %s %s twice in the sources" % key
                routes[key] = (m.group(4) == "true", resource)
    return routes


def openapi_path(pattern):
    return re.sub(r":([^/]+)", r"{\1}", pattern)


class OpenAPIDocument(harness.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        if harness.BACKEND == "postgres":
            raise unittest.SkipTest("the API document does not involve storage (checked on SQLite)")
        super().setUpClass()
        r = cls.server.api("GET", "/api/openapi.json", token=None)
        cls.response = r
        cls.doc = r.json
        cls.routes = source_routes()

    def operations(self):
        for path, item in self.doc["paths"].items():
            for method, op in item.items():
                yield path, method, op

    def test_served_publicly_as_openapi_3_1(self):
        r = self.response
        self.assertEqual(r.status, 200, r.body[:500])
        self.assertTrue(r.headers["Content-Type"].startswith("application/json"), r.headers["Content-Type"])
        self.assertEqual(self.doc["openapi"], "3.1.0")
        self.assertEqual(self.doc["jsonSchemaDialect"], "https://spec.openapis.org/oas/3.1/dialect/base")
        status = self.ok("GET", "/api/status", token=None)
        self.assertEqual(self.doc["info"]["version"], status["version"])
        self.assertEqual(self.doc["security"], [{"bearerAuth": []}])
        self.assertEqual(self.doc["components"]["securitySchemes"]["bearerAuth"]["scheme"], "bearer")
        again = self.api("GET", "/api/openapi.json", token=None)
        self.assertEqual(again.body, r.body, "the document changed between two fetches")
        # with a token too (public routes ignore it)
        self.assertEqual(self.api("GET", "/api/openapi.json").body, r.body)

    def test_other_methods_refused_with_the_error_body(self):
        r = self.api("POST", "/api/openapi.json", body={}, token=None)
        self.assertEqual(r.status, 405, r.body)
        self.assertEqual(r.json["error"], "MethodNotAllowed")
        self.assertEqual(r.json["reqId"], r.headers["X-Request-Id"])

    def test_fetches_are_not_audited(self):
        for _ in range(3):
            self.assertEqual(self.api("GET", "/api/openapi.json", token=None).status, 200)
        self.ok("GET", "/api/v1/workspace")  # audited: proves the log is being written
        events = self.ok("GET", "/api/v1/audit/events", query={"limit": 1000})["events"]
        self.assertTrue(any("/api/v1/workspace" in e.get("action", "") for e in events), events[-3:])
        self.assertFalse([e for e in events if "openapi" in e.get("action", "")])

    def test_every_route_of_the_sources_and_nothing_else(self):
        self.assertGreater(len(self.routes), 150, "the route parser found too few routes")
        in_doc = {(method.upper(), path) for path, method, _ in self.operations()}
        in_src = {(method, openapi_path(pattern)) for method, pattern in self.routes}
        self.assertEqual(sorted(in_src - in_doc), [], "routes missing from the document")
        self.assertEqual(sorted(in_doc - in_src), [], "operations that are no route")
        self.assertIn(("GET", "/api/openapi.json"), in_doc)

    def test_path_parameters_declared(self):
        for path, method, op in self.operations():
            names = re.findall(r"\{([^}]+)\}", path)
            params = [p for p in op.get("parameters", []) if p["in"] == "path"]
            self.assertEqual(sorted(p["name"] for p in params), sorted(names), (method, path))
            for p in params:
                self.assertIs(p["required"], True, (method, path, p))
                self.assertEqual(p["schema"]["type"], "string")

    def test_no_two_paths_differ_only_in_parameter_names(self):
        # OpenAPI forbids templated paths of the same shape with different parameter names (ambiguous)
        shapes = {}
        for path in self.doc["paths"]:
            shape = re.sub(r"\{[^}]+\}", "{}", path)
            self.assertNotIn(shape, shapes, "%s and %s" % (path, shapes.get(shape)))
            shapes[shape] = path

    def test_security_tags_and_operation_ids(self):
        ids = set()
        for (method, pattern), (public, resource) in self.routes.items():
            op = self.doc["paths"][openapi_path(pattern)][method.lower()]
            if public:
                self.assertEqual(op.get("security"), [], (method, pattern))
            else:
                self.assertNotIn("security", op, (method, pattern))  # the document's bearer security
            self.assertEqual(op["tags"], [resource], (method, pattern))
            self.assertRegex(op["operationId"], r"^[a-z]+[A-Za-z0-9]+$")
            self.assertNotIn(op["operationId"], ids)
            ids.add(op["operationId"])
        self.assertEqual(sorted(t["name"] for t in self.doc["tags"]),
                         sorted({resource for _, resource in self.routes.values()}))

    def test_every_reference_resolves_and_errors_are_described(self):
        schemas = self.doc["components"]["schemas"]
        refs = re.findall(r'"\$ref":\s*"([^"]+)"', self.response.body.decode())
        self.assertGreater(len(refs), 2 * len(self.routes))
        for ref in set(refs):
            self.assertTrue(ref.startswith("#/components/schemas/"), ref)
            self.assertIn(ref.rsplit("/", 1)[1], schemas, ref)
        for path, method, op in self.operations():
            default = op["responses"]["default"]["content"]
            want = "ScimError" if path.startswith("/scim/") else "Error"
            (media, body), = default.items()
            self.assertEqual(body["schema"]["$ref"], "#/components/schemas/" + want, (method, path))
        error = schemas["Error"]
        self.assertEqual(sorted(error["required"]), ["error", "message", "reqId", "statusCode"])
        self.assertIs(error["additionalProperties"], False)

    def test_precise_routes_have_their_own_schemas(self):
        description = self.doc["info"]["description"]
        for word in ("universal-auth login", "secrets v3", "identities", "folders", "environments", "GenericObject",
                     "audit", "inventory", "approval policies"):
            self.assertIn(word, description)
        for method, path, status in PRECISE:
            content = self.doc["paths"][path][method]["responses"][status]["content"]
            ref = content["application/json"]["schema"]["$ref"]
            self.assertNotEqual(ref, "#/components/schemas/GenericObject", (method, path))
            schema = self.doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
            self.assertIs(schema.get("additionalProperties"), False, ref)
            self.assertTrue(schema["required"], ref)
        # every route's success is described: none is left to the generic object (kept for a route added
        # without a line in the response table)
        generic = [(method, path) for path, item in self.doc["paths"].items() for method, op in item.items()
                   if "2XX" in op["responses"]]
        self.assertEqual(generic, [])
        self.assertIn("GenericObject", self.doc["components"]["schemas"])
        metrics = self.doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
        self.assertEqual(list(metrics), ["text/plain; version=0.0.4"])


class WhileSealed(harness.ServerTestCase):
    """A server whose root key is split into shares starts sealed: it still serves the document (which needs no
    store), as it serves the status, while every other route answers 503."""

    @classmethod
    def setUpClass(cls):
        if harness.BACKEND == "postgres":
            raise unittest.SkipTest("the API document does not involve storage (checked on SQLite)")
        super().setUpClass()
        s = cls.server
        assert s.stop() == 0
        rc, out, err = harness.run(["operator", "init", "--shares", "3", "--threshold", "2", "--data-dir", s.data_dir])
        assert rc == 0, err
        s.start()

    def test_the_document_is_served_while_sealed(self):
        self.assertIs(self.ok("GET", "/api/status", token=None)["sealed"], True)
        r = self.api("GET", "/api/v1/workspace")
        self.assertEqual(r.status, 503, r.body)
        r = self.api("GET", "/api/openapi.json", token=None)
        self.assertEqual(r.status, 200, r.body[:500])
        self.assertEqual(r.json["openapi"], "3.1.0")
        self.assertIn("/api/v1/sys/seal-status", r.json["paths"])


if __name__ == "__main__":
    unittest.main()
