"""The `coffer` CLI end to end against a real server: projects, envs, folders and secrets commands, table and
JSON output, --plain, masking and --show-values, values from files and stdin (multi-line PEM), history and
rollback, errors on stderr with exit 1, usage errors with exit 2, --help with exit 0, and the token/domain
settings through flags and environment variables (COFFER_* and INFISICAL_*)."""

import json
import os
import shutil
import tempfile
import unittest
import uuid

import harness
from harness import ServerTestCase, unique

PEM = ("-----BEGIN EC PRIVATE KEY-----\n"
       "MHcCAQEEIBmV7n0Xx3m4Jc0bq8oYV3uQbq8oY9x0t2m4Jc0bq8oYoAoGCCqGSM49\n"
       "AwEHoUQDQgAE3m4Jc0bq8oYV3uQbq8oY9x0t2m4Jc0bq8oYV3uQbq8oY9x0t2m4J\n"
       "c0bq8oYV3uQbq8oY9x0t2m4Jc0bq8oYV3uQbq8oY9w==\n"
       "-----END EC PRIVATE KEY-----\n")


def find_dict(obj, pred):
    """The first dict anywhere in obj (depth first) for which pred holds."""
    if isinstance(obj, dict):
        if pred(obj):
            return obj
        for v in obj.values():
            r = find_dict(v, pred)
            if r is not None:
                return r
    elif isinstance(obj, list):
        for v in obj:
            r = find_dict(v, pred)
            if r is not None:
                return r
    return None


def secrets_in(doc):
    """{key: value} of every secret object in a JSON document."""
    out = {}

    def walk(o):
        if isinstance(o, dict):
            if "secretKey" in o:
                out[o["secretKey"]] = o.get("secretValue")
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(doc)
    return out


class CliCase(ServerTestCase):
    def run_ok(self, *args, **kw):
        rc, out, err = self.cli(*args, **kw)
        self.assertEqual(rc, 0, "coffer %s -> %d\nstdout: %s\nstderr: %s" % (" ".join(args), rc, out, err))
        return out

    def run_json(self, *args, **kw):
        out = self.run_ok(*(args + ("--output", "json")), **kw)
        try:
            return json.loads(out)
        except ValueError:
            self.fail("--output json is not JSON: %r" % out[:500])

    def new_project(self):
        doc = self.run_json("projects", "create", unique("cli"))
        proj = find_dict(doc, lambda d: "id" in d and "environments" in d)
        self.assertIsNotNone(proj, "no project in %r" % doc)
        return proj["id"]


class Projects(CliCase):
    def test_create_list_get_delete(self):
        name = unique("Cli Project")
        out = self.run_ok("projects", "create", name)
        self.assertIn(name, out)
        doc = self.run_json("projects", "list")
        proj = find_dict(doc, lambda d: d.get("name") == name)
        self.assertIsNotNone(proj, "created project not in `projects list --output json`")
        pid = proj["id"]
        table = self.run_ok("projects", "list")
        self.assertIn(name, table)
        self.assertIn(pid, table)
        got = self.run_json("projects", "get", pid)
        self.assertEqual(find_dict(got, lambda d: d.get("id") == pid)["name"], name)
        out = self.run_ok("projects", "get", proj["slug"])
        for env in ("dev", "staging", "prod"):
            self.assertIn(env, out)
        self.run_ok("projects", "delete", pid)
        self.assertNotIn(pid, self.run_ok("projects", "list"))
        rc, out, err = self.cli("projects", "get", pid)
        self.assertEqual(rc, 1)
        self.assertEqual(out, "")
        self.assertIn(pid, err)

    def test_create_with_slug_and_description(self):
        slug = unique("slugged")
        doc = self.run_json("projects", "create", "Named", "--slug", slug, "--description", "d")
        proj = find_dict(doc, lambda d: "environments" in d)
        self.assertEqual((proj["slug"], proj["description"]), (slug, "d"))


class Envs(CliCase):
    def test_envs(self):
        pid = self.new_project()
        out = self.run_ok("envs", "list", "--projectId", pid)
        for env in ("dev", "staging", "prod"):
            self.assertIn(env, out)
        self.run_ok("envs", "create", "QA", "--slug", "qa", "--projectId", pid)
        doc = self.run_json("envs", "list", "--projectId", pid)
        envs = sorted((e["position"], e["slug"]) for e in doc["environments"])
        self.assertEqual([s for _, s in envs], ["dev", "staging", "prod", "qa"])
        self.run_ok("envs", "rename", "qa", "--name", "Quality", "--slug", "quality", "--projectId", pid)
        self.run_ok("envs", "move", "quality", "--position", "1", "--projectId", pid)
        doc = self.run_json("envs", "list", "--projectId", pid)
        envs = sorted((e["position"], e["slug"], e["name"]) for e in doc["environments"])
        self.assertEqual(envs[0], (1, "quality", "Quality"))
        self.run_ok("envs", "delete", "quality", "--projectId", pid)
        out = self.run_ok("envs", "list", "--projectId", pid)
        self.assertNotIn("quality", out)
        rc, out, err = self.cli("envs", "delete", "nope", "--projectId", pid)
        self.assertEqual(rc, 1)
        self.assertIn("nope", err)


class Folders(CliCase):
    def test_folders(self):
        pid = self.new_project()
        self.run_ok("folders", "create", "backend", "--projectId", pid)
        self.run_ok("folders", "create", "api", "--path", "/backend", "--projectId", pid)
        self.run_ok("folders", "create", "other", "--projectId", pid, "--env", "prod")
        out = self.run_ok("folders", "list", "--projectId", pid)
        self.assertIn("backend", out)
        self.assertNotIn("other", out)
        doc = self.run_json("folders", "list", "--projectId", pid, "--recursive")
        self.assertEqual(sorted(f["path"] for f in doc["folders"]), ["/backend", "/backend/api"])
        self.run_ok("secrets", "set", "DEEP=1", "--projectId", pid, "--path", "/backend/api")
        self.run_ok("folders", "delete", "backend", "--projectId", pid)
        doc = self.run_json("folders", "list", "--projectId", pid, "--recursive")
        self.assertEqual(doc["folders"], [])
        rc, out, err = self.cli("secrets", "get", "DEEP", "--projectId", pid, "--path", "/backend/api")
        self.assertEqual(rc, 1)
        self.assertIn("Folder with path '/backend/api'", err)


class Secrets(CliCase):
    def setUp(self):
        super().setUp()
        self.pid = self.new_project()
        self.tmp = tempfile.mkdtemp(prefix="coffer-itest-cli-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
        super().tearDown()

    def s(self, *args, **kw):
        return self.cli("secrets", *(args + ("--projectId", self.pid)), **kw)

    def s_ok(self, *args, **kw):
        return self.run_ok("secrets", *(args + ("--projectId", self.pid)), **kw)

    def plain(self, key, *extra):
        return self.s_ok("get", key, "--plain", *extra)

    def test_set_get_list(self):
        v1, v2 = "val-" + uuid.uuid4().hex, "other-" + uuid.uuid4().hex
        self.s_ok("set", "ALPHA=" + v1, "BETA=" + v2)
        self.assertEqual(self.plain("ALPHA"), v1 + "\n")
        out = self.s_ok("get", "ALPHA")
        self.assertIn("ALPHA", out)
        self.assertIn(v1, out)
        # list masks values unless --show-values
        out = self.s_ok("list")
        self.assertIn("ALPHA", out)
        self.assertIn("BETA", out)
        self.assertNotIn(v1, out)
        self.assertNotIn(v2, out)
        out = self.s_ok("list", "--show-values")
        self.assertIn(v1, out)
        self.assertIn(v2, out)
        doc = self.run_json("secrets", "list", "--show-values", "--projectId", self.pid)
        self.assertEqual(secrets_in(doc), {"ALPHA": v1, "BETA": v2})
        # `coffer secrets` alone lists
        rc, out, err = self.cli("secrets", "--projectId", self.pid)
        self.assertEqual(rc, 0, err)
        self.assertIn("ALPHA", out)
        # get of several keys, json
        doc = self.run_json("secrets", "get", "ALPHA", "BETA", "--projectId", self.pid)
        self.assertEqual(secrets_in(doc), {"ALPHA": v1, "BETA": v2})
        self.assertEqual(self.plain("ALPHA", ) + self.plain("BETA"), v1 + "\n" + v2 + "\n")
        self.assertEqual(self.s_ok("get", "ALPHA", "BETA", "--plain"), v1 + "\n" + v2 + "\n")
        # set again updates
        self.s_ok("set", "ALPHA=changed")
        self.assertEqual(self.plain("ALPHA"), "changed\n")
        # values with '=' and spaces
        self.s_ok("set", "EQ=a=b=c", "SPACE=with spaces")
        self.assertEqual(self.plain("EQ"), "a=b=c\n")
        self.assertEqual(self.plain("SPACE"), "with spaces\n")

    def test_env_and_path(self):
        self.run_ok("folders", "create", "svc", "--projectId", self.pid, "--env", "prod")
        self.s_ok("set", "K=prod-svc", "--env", "prod", "--path", "/svc")
        self.s_ok("set", "K=dev-root")
        self.assertEqual(self.plain("K", "--env", "prod", "--path", "/svc"), "prod-svc\n")
        self.assertEqual(self.plain("K"), "dev-root\n")
        out = self.s_ok("list", "--env", "prod", "--path", "/svc", "--show-values")
        self.assertIn("prod-svc", out)
        self.assertNotIn("dev-root", out)
        out = self.s_ok("list", "--env", "prod", "--recursive", "--show-values")
        self.assertIn("prod-svc", out)

    def test_value_from_file_and_stdin(self):
        path = os.path.join(self.tmp, "key.pem")
        with open(path, "w") as f:
            f.write(PEM)
        self.s_ok("set", "TLS_KEY=@" + path)
        self.assertEqual(self.plain("TLS_KEY"), PEM, "a PEM file must round-trip byte for byte")
        self.s_ok("set", "FROM_STDIN=-", input=PEM.replace("EC ", ""))
        self.assertEqual(self.plain("FROM_STDIN"), PEM.replace("EC ", ""))
        self.s_ok("set", "LITERAL_AT=@@handle")
        self.assertEqual(self.plain("LITERAL_AT"), "@handle\n")
        # what the server holds is the exact PEM
        r = self.server.api("GET", "/api/v3/secrets/raw/TLS_KEY", query={"workspaceId": self.pid, "environment": "dev"})
        self.assertEqual(r.json["secret"]["secretValue"], PEM)
        rc, out, err = self.s("set", "MISSING_FILE=@" + os.path.join(self.tmp, "nope.pem"))
        self.assertNotEqual(rc, 0)
        self.assertIn("nope.pem", err)
        rc, out, err = self.s("set", "A=-", "B=-", input="x")
        self.assertEqual(rc, 2, "two keys from stdin is a usage error")

    def test_comment_and_expiry(self):
        self.s_ok("set", "C=1", "--comment", "why", "--expires-at", "2026-12-31T23:00:00Z")
        r = self.server.api("GET", "/api/v3/secrets/raw/C", query={"workspaceId": self.pid, "environment": "dev"})
        self.assertEqual(r.json["secret"]["secretComment"], "why")
        self.assertEqual(r.json["secret"]["expiresAt"], "2026-12-31T23:00:00.000Z")

    def test_delete(self):
        self.s_ok("set", "GONE=1", "STAYS=2")
        self.s_ok("delete", "GONE")
        rc, out, err = self.s("get", "GONE")
        self.assertEqual(rc, 1)
        self.assertEqual(out, "")
        self.assertIn("Secret with name 'GONE' not found", err)
        # delete is all-or-nothing
        rc, out, err = self.s("delete", "STAYS", "NEVER_THERE")
        self.assertEqual(rc, 1)
        self.assertIn("NEVER_THERE", err)
        self.assertEqual(self.plain("STAYS"), "2\n")

    def test_history_and_rollback(self):
        self.s_ok("set", "H=first")
        self.s_ok("set", "H=second")
        self.s_ok("set", "H=third")
        out = self.s_ok("history", "H")
        self.assertNotIn("first", out, "history masks values by default")
        for v in ("1", "2", "3"):
            self.assertIn(v, out)
        out = self.s_ok("history", "H", "--show-values")
        self.assertLess(out.index("third"), out.index("first"), "newest first")
        doc = self.run_json("secrets", "history", "H", "--projectId", self.pid)
        vers = doc["secretVersions"]
        self.assertEqual([v["version"] for v in vers], [3, 2, 1])
        self.s_ok("rollback", "H", "--version", "1")
        self.assertEqual(self.plain("H"), "first\n")
        doc = self.run_json("secrets", "history", "H", "--projectId", self.pid)
        self.assertEqual([v["version"] for v in doc["secretVersions"]], [4, 3, 2, 1])
        self.assertEqual(self.plain("H", "--version", "2"), "second\n")
        rc, out, err = self.s("rollback", "H", "--version", "99")
        self.assertEqual(rc, 1)
        self.assertIn("99", err)

    def test_references_and_imports(self):
        self.s_ok("set", "BASE=b", "REF=x-${BASE}")
        self.assertEqual(self.plain("REF"), "x-${BASE}\n")
        self.assertEqual(self.plain("REF", "--expand"), "x-b\n")
        self.s_ok("set", "SHARED=imported", "LOCAL=from-prod", "--env", "prod")
        self.s_ok("set", "LOCAL=local")
        r = self.server.api("POST", "/api/v2/secret-imports",
                            body={"projectId": self.pid, "environment": "dev",
                                  "import": {"environment": "prod", "path": "/"}})
        self.assertEqual(r.status, 200, r.body)
        out = self.s_ok("list", "--include-imports", "--show-values")
        self.assertIn("imported", out)
        self.assertIn("local", out)
        self.assertNotIn("from-prod", out, "local keys must win over imported ones")
        doc = self.run_json("secrets", "list", "--include-imports", "--show-values", "--projectId", self.pid)
        self.assertIn("imports", json.dumps(doc))

    def test_server_errors_exit_1(self):
        rc, out, err = self.s("get", "NOPE")
        self.assertEqual(rc, 1)
        self.assertEqual(out, "")
        self.assertIn("Secret with name 'NOPE' not found", err)
        rc, out, err = self.s("set", "1BAD=x")
        self.assertEqual(rc, 1, err)
        self.assertIn("digit", err)
        rc, out, err = self.cli("secrets", "list", "--projectId", "00000000-0000-4000-8000-000000000000")
        self.assertEqual(rc, 1)
        self.assertIn("00000000-0000-4000-8000-000000000000", err)
        rc, out, err = self.s("list", "--env", "qa")
        self.assertEqual(rc, 1)
        self.assertIn("Environment with slug 'qa'", err)
        # the value never appears in an error
        secret = "do-not-print-" + uuid.uuid4().hex
        rc, out, err = self.s("set", "1BAD=" + secret)
        self.assertNotIn(secret, out + err)


class Settings(CliCase):
    def test_token_and_domain_sources(self):
        token = self.server.token
        url = self.server.url
        env_none = {"COFFER_API_URL": None, "COFFER_TOKEN": None}
        for how, args, env in (
                ("flags", ["--token", token, "--domain", url], env_none),
                ("infisical env", [], {"COFFER_API_URL": None, "COFFER_TOKEN": None,
                                       "INFISICAL_TOKEN": token, "INFISICAL_API_URL": url}),
                ("coffer env", [], {}),
                ("domain with /api", ["--domain", url + "/api"], {})):
            with self.subTest(how=how):
                rc, out, err = self.cli("projects", "list", *args, env=env,
                                        token=None if how in ("flags", "infisical env") else ...)
                self.assertEqual(rc, 0, err)

    def test_project_id_env(self):
        pid = self.new_project()
        self.run_ok("secrets", "set", "E=1", env={"COFFER_PROJECT_ID": pid})
        self.assertEqual(self.run_ok("secrets", "get", "E", "--plain", env={"INFISICAL_PROJECT_ID": pid}), "1\n")

    def test_wrong_token(self):
        rc, out, err = self.cli("projects", "list", token="wrong-token-" + uuid.uuid4().hex)
        self.assertEqual(rc, 1)
        self.assertEqual(out, "")
        self.assertTrue(err.strip())
        self.assertNotIn("wrong-token-", err, "the CLI must not echo the token")

    def test_no_token(self):
        # no token at all is a usage error (exit 2) that says how to give one
        rc, out, err = self.cli("projects", "list", token=None)
        self.assertEqual(rc, 2)
        self.assertIn("COFFER_TOKEN", err)
        self.assertEqual(out, "")

    def test_server_unreachable(self):
        rc, out, err = self.cli("projects", "list", env={"COFFER_API_URL": "http://127.0.0.1:%d" % harness.free_port()})
        self.assertEqual(rc, 1)
        self.assertTrue(err.strip())
        self.assertEqual(out, "")


class Usage(unittest.TestCase):
    """No server needed: usage errors exit 2, --help exits 0 with the usage on stdout."""

    def run_cli(self, *args):
        return harness.run(list(args), env=harness.base_env({"COFFER_API_URL": "http://127.0.0.1:9"}))

    def test_help_exit_0(self):
        commands = [[], ["projects"], ["projects", "create"], ["projects", "list"], ["projects", "get"],
                    ["projects", "delete"], ["envs"], ["envs", "list"], ["envs", "create"], ["envs", "rename"],
                    ["envs", "move"], ["envs", "delete"], ["folders"], ["folders", "list"], ["folders", "create"],
                    ["folders", "delete"], ["secrets"], ["secrets", "set"], ["secrets", "get"], ["secrets", "list"],
                    ["secrets", "delete"], ["secrets", "history"], ["secrets", "rollback"], ["server"],
                    ["operator"], ["operator", "rotate-root-key"]]
        for cmd in commands:
            with self.subTest(cmd=" ".join(cmd)):
                rc, out, err = self.run_cli(*(cmd + ["--help"]))
                self.assertEqual(rc, 0, err)
                self.assertIn("usage", out.lower())
                self.assertEqual(err, "")
        rc, out, err = self.run_cli("secrets", "set", "-h")
        self.assertEqual(rc, 0)

    def test_usage_errors_exit_2(self):
        cases = [["nosuchcommand"], ["projects", "frobnicate"], ["projects", "create"], ["projects", "get"],
                 ["secrets", "set"], ["secrets", "set", "NOEQUALS", "--projectId", "p"],
                 ["secrets", "get", "--projectId", "p"], ["secrets", "rollback", "K", "--projectId", "p"],
                 ["secrets", "rollback", "K", "--version", "abc", "--projectId", "p"],
                 ["secrets", "list", "--bogus-flag"], ["secrets", "list", "--output", "yaml-ish", "--projectId", "p"],
                 ["envs", "create", "QA", "--projectId", "p"], ["envs", "move", "qa", "--projectId", "p"],
                 ["secrets", "list", "--projectId"]]
        for cmd in cases:
            with self.subTest(cmd=" ".join(cmd)):
                rc, out, err = self.run_cli(*cmd)
                self.assertEqual(rc, 2, "stdout %r stderr %r" % (out, err))
                self.assertTrue(err.strip(), "a usage error must say what is wrong on stderr")
                self.assertEqual(out, "")
        rc, out, err = self.run_cli()
        self.assertEqual(rc, 2)

    def test_missing_project_is_usage_error(self):
        rc, out, err = self.run_cli("secrets", "list")
        self.assertEqual(rc, 2)
        self.assertIn("projectId", err)


if __name__ == "__main__":
    unittest.main()
