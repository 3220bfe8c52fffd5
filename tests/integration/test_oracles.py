"""Existence oracles (docs/api.md, "What a limited identity sees").

An identity that may not act on a place gets the same answer whether or not the place exists: a missing
environment or folder is the same 403 (status, error name, message shape) as an existing one it may not read,
for secrets, folders and imports. The admin token and a project admin, who may act there, keep getting 404 for
what is missing. Lists show only what the caller may read: a recursive folder list only the readable folders,
an imports list only imports whose source the caller may read, the inventory's lastReadBy only the caller
itself (a project admin and the admin see every reader).
"""

import re
import urllib.parse

import harness
from test_identities import IdentityHelpers

# dev: /app, /app/inner, /secret, /secret/deep; prod: /x. The limited identity reads dev:/ and dev:/app/**.
LIMITED_RULES = [{"actions": ["read"], "environment": "dev", "secretPath": "/"},
                 {"actions": ["read"], "environment": "dev", "secretPath": "/app/**"}]


def shape(message, *names):
    """The message with the names the caller gave replaced by a placeholder."""
    for n in sorted(names, key=len, reverse=True):
        message = message.replace(n, "<NAME>")
    return message


class Oracles(IdentityHelpers, harness.ServerTestCase):
    pid = None

    def setUp(self):
        super().setUp()
        cls = type(self)
        if cls.pid:
            return
        cls.pid = self.create_project(harness.unique("oracle"))["id"]
        self.create_folder(cls.pid, "dev", "app")
        self.create_folder(cls.pid, "dev", "inner", "/app")
        self.create_folder(cls.pid, "dev", "secret")
        self.create_folder(cls.pid, "dev", "deep", "/secret")
        self.create_folder(cls.pid, "prod", "x")
        self.set_secret(cls.pid, "APP_KEY", "app-value", "dev", "/app")
        self.set_secret(cls.pid, "HIDDEN", "hidden-value", "dev", "/secret")
        self.set_secret(cls.pid, "PROD_KEY", "prod-value", "prod", "/x")
        self.ok("POST", "/api/v2/secret-imports",
                body={"projectId": cls.pid, "environment": "dev", "path": "/app",
                      "import": {"environment": "prod", "path": "/x"}})
        self.ok("POST", "/api/v2/secret-imports",
                body={"projectId": cls.pid, "environment": "dev", "path": "/app",
                      "import": {"environment": "dev", "path": "/"}})
        cls.limited = self.machine(cls.pid, "viewer", LIMITED_RULES, name=harness.unique("limited"))
        cls.padmin = self.machine(cls.pid, "admin", None, name=harness.unique("padmin"))
        cls.outsider = self.machine(None, None, None, name=harness.unique("outsider"))
        cls.slug = self.ok("GET", "/api/v1/workspace/" + cls.pid)["workspace"]["slug"]

    # ---- requests over a place ----

    def secrets_list(self, token, env, path):
        return self.api("GET", "/api/v3/secrets/raw", token=token,
                        query={"workspaceId": self.pid, "environment": env, "secretPath": path})

    def secret_get(self, token, env, path):
        return self.api("GET", "/api/v3/secrets/raw/SOME_KEY", token=token,
                        query={"workspaceId": self.pid, "environment": env, "secretPath": path})

    def secret_create(self, token, env, path):
        return self.api("POST", "/api/v3/secrets/raw/NEW_KEY", token=token,
                        body={"workspaceId": self.pid, "environment": env, "secretPath": path,
                              "secretValue": "v"})

    def folders_list(self, token, env, path, recursive="false"):
        return self.api("GET", "/api/v1/folders", token=token,
                        query={"workspaceId": self.pid, "environment": env, "path": path,
                               "recursive": recursive})

    def folder_create(self, token, env, path):
        return self.api("POST", "/api/v1/folders", token=token,
                        body={"workspaceId": self.pid, "environment": env, "path": path, "name": "made"})

    def folder_delete(self, token, env, path):
        return self.api("DELETE", "/api/v1/folders/deep", token=token,
                        body={"workspaceId": self.pid, "environment": env, "path": path})

    def imports_list(self, token, env, path):
        return self.api("GET", "/api/v2/secret-imports", token=token,
                        query={"projectId": self.pid, "environment": env, "path": path})

    def import_create(self, token, env, path):
        return self.api("POST", "/api/v2/secret-imports", token=token,
                        body={"projectId": self.pid, "environment": "dev", "path": "/app",
                              "import": {"environment": env, "path": path}})

    def env_update(self, token, env, path):
        return self.api("PATCH", "/api/v1/workspace/%s/environments/%s" % (self.pid, env), token=token,
                        body={"name": "Renamed"})

    def env_delete(self, token, env, path):
        return self.api("DELETE", "/api/v1/workspace/%s/environments/%s" % (self.pid, env), token=token)

    REQUESTS = ("secrets_list", "secret_get", "secret_create", "folders_list", "folder_create",
                "folder_delete", "imports_list", "import_create")

    def same_refusal(self, what, existing, missing, names):
        """existing and missing (responses) are the same 403: status, error name, message shape."""
        a = self.assertError(existing, 403, "PermissionDenied", msg="%s (existing):" % what)
        b = self.assertError(missing, 403, "PermissionDenied", msg="%s (missing):" % what)
        self.assertEqual(shape(a["message"], *names), shape(b["message"], *names),
                         "%s: the refusals differ: %r vs %r" % (what, a["message"], b["message"]))
        self.assertEqual(sorted(a), sorted(b), what)

    def test_missing_environment_is_the_same_403(self):
        tok = self.limited["token"]
        for what in self.REQUESTS:
            with self.subTest(what=what):
                fn = getattr(self, what)
                self.same_refusal(what, fn(tok, "prod", "/"), fn(tok, "qa", "/"), ("prod", "qa"))

    def test_missing_environment_is_the_same_403_to_manage(self):
        tok = self.limited["token"]
        for what in ("env_update", "env_delete"):
            with self.subTest(what=what):
                fn = getattr(self, what)
                self.same_refusal(what, fn(tok, "prod", "/"), fn(tok, "qa", "/"), ("prod", "qa"))
                self.assertError(fn(harness.ADMIN_TOKEN, "qa", "/"), 404, "NotFound", "qa")

    def test_missing_project_is_the_same_403(self):
        """An identity outside a project: the project named by slug or id, existing or not, is the same 403."""
        tok = self.outsider["token"]
        missing_id = "0c3e8f7a-0000-4000-8000-000000000000"
        for named, missing in ((self.slug, "no-such-project-x"), (self.pid, missing_id)):
            for what, path in (("secrets", "/api/v3/secrets/raw"), ("folders", "/api/v1/folders")):
                with self.subTest(named=named, what=what):
                    def ask(project):
                        return self.api("GET", path, token=tok, query={"workspaceId": project, "environment": "dev",
                                                                       "secretPath": "/", "path": "/"})
                    self.same_refusal(what, ask(named), ask(missing), (named, missing))
            with self.subTest(named=named, what="project"):
                self.same_refusal("project", self.api("GET", "/api/v1/workspace/" + named, token=tok),
                                  self.api("GET", "/api/v1/workspace/" + missing, token=tok), (named, missing))
        self.assertError(self.api("GET", "/api/v1/workspace/" + missing_id), 404, "NotFound", missing_id)

    def test_missing_folder_is_the_same_403(self):
        tok = self.limited["token"]
        for what in self.REQUESTS:
            with self.subTest(what=what):
                fn = getattr(self, what)
                self.same_refusal(what, fn(tok, "dev", "/secret"), fn(tok, "dev", "/nosuch"),
                                  ("/secret", "/nosuch"))
        # deeper: below an existing forbidden folder and below a missing one
        self.same_refusal("deep", self.secrets_list(tok, "dev", "/secret/deep"),
                          self.secrets_list(tok, "dev", "/nosuch/deep"), ("/secret/deep", "/nosuch/deep"))

    def test_a_missing_folder_named_by_a_reference_is_the_same_403(self):
        """A reference into a place the reader may not read: the same 403 whether the place exists."""
        tok = self.limited["token"]
        self.set_secret(self.pid, "REF_EXISTING", "${prod.x.PROD_KEY}", "dev", "/app")
        self.set_secret(self.pid, "REF_MISSING", "${qa.x.PROD_KEY}", "dev", "/app")
        a = self.get_as(tok, self.pid, "REF_EXISTING", "dev", "/app", expandSecretReferences="true")
        b = self.get_as(tok, self.pid, "REF_MISSING", "dev", "/app", expandSecretReferences="true")
        self.same_refusal("reference", a, b, ("prod", "qa"))
        self.api("DELETE", "/api/v3/secrets/raw/REF_EXISTING",
                 body={"workspaceId": self.pid, "environment": "dev", "secretPath": "/app"})
        self.api("DELETE", "/api/v3/secrets/raw/REF_MISSING",
                 body={"workspaceId": self.pid, "environment": "dev", "secretPath": "/app"})

    def test_admins_still_get_404_for_what_is_missing(self):
        for who, tok in (("admin", harness.ADMIN_TOKEN), ("project admin", self.padmin["token"])):
            for what in ("secrets_list", "secret_get", "folders_list", "imports_list"):
                with self.subTest(who=who, what=what):
                    fn = getattr(self, what)
                    self.assertError(fn(tok, "qa", "/"), 404, "NotFound", "qa")
                    self.assertError(fn(tok, "dev", "/nosuch"), 404, "NotFound", "/nosuch")
        # a limited identity where it may read: a missing folder is a 404 (it could read it if it were there)
        self.assertError(self.secrets_list(self.limited["token"], "dev", "/app/nosuch"), 404, "NotFound")

    # ---- lists ----

    def folder_paths(self, r):
        self.assertEqual(r.status, 200, r.body[:300])
        return sorted(f.get("path") or "/" + f["name"] for f in r.json["folders"])

    def test_recursive_folder_list_shows_only_readable_folders(self):
        tok = self.limited["token"]
        self.assertEqual(self.folder_paths(self.folders_list(tok, "dev", "/", "true")), ["/app", "/app/inner"])
        self.assertEqual(self.folder_paths(self.folders_list(tok, "dev", "/", "false")), ["/app"])
        self.assertEqual(self.folder_paths(self.folders_list(tok, "dev", "/app", "true")), ["/app/inner"])
        # the admin and a project admin see the tree
        for t in (harness.ADMIN_TOKEN, self.padmin["token"]):
            self.assertEqual(self.folder_paths(self.folders_list(t, "dev", "/", "true")),
                             ["/app", "/app/inner", "/secret", "/secret/deep"])
        # the recursive secrets list agrees
        r = self.list_as(tok, self.pid, "dev", "/", recursive="true")
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(sorted(s["secretKey"] for s in r.json["secrets"]), ["APP_KEY"])
        self.assertNotIn(b"/secret", r.body)
        self.assertNotIn(b"HIDDEN", r.body)

    def test_imports_list_shows_only_readable_sources(self):
        def sources(r):
            self.assertEqual(r.status, 200, r.body[:300])
            return sorted((i["importEnv"]["slug"], i["importPath"]) for i in r.json["secretImports"])
        self.assertEqual(sources(self.imports_list(self.limited["token"], "dev", "/app")), [("dev", "/")])
        self.assertNotIn(b"prod", self.imports_list(self.limited["token"], "dev", "/app").body)
        for t in (harness.ADMIN_TOKEN, self.padmin["token"]):
            self.assertEqual(sources(self.imports_list(t, "dev", "/app")), [("dev", "/"), ("prod", "/x")])

    def test_inventory_names_other_readers_only_to_admins(self):
        pid = self.create_project(harness.unique("readers"))["id"]
        self.set_secret(pid, "SHARED", "shared-value")
        reader = self.machine(pid, "viewer", None, name=harness.unique("reader"))
        other = self.machine(pid, "viewer", None, name=harness.unique("other"))
        padmin = self.machine(pid, "admin", None, name=harness.unique("padmin"))
        self.assertEqual(self.get_as(reader["token"], pid, "SHARED").status, 200)

        def last_read(token):
            doc = self.ok("GET", "/api/v1/inventory", query={"workspaceId": pid}, token=token)
            (s,) = [s for p in doc["projects"] for e in p["environments"] for s in e["secrets"]
                    if s["secretKey"] == "SHARED"]
            return s
        want = {"kind": "identity", "id": reader["id"], "name": reader["name"]}
        for who, tok in (("admin", harness.ADMIN_TOKEN), ("project admin", padmin["token"]),
                         ("the reader itself", reader["token"])):
            with self.subTest(who=who):
                s = last_read(tok)
                self.assertIs(s["lastReadKnown"], True)
                self.assertEqual(s["lastReadBy"], want)
        s = last_read(other["token"])
        self.assertIs(s["lastReadKnown"], True)
        self.assertIsNotNone(s["lastReadAt"])
        self.assertIsNone(s["lastReadBy"])
        doc = self.api("GET", "/api/v1/inventory", query={"workspaceId": pid}, token=other["token"])
        self.assertNotIn(reader["id"].encode(), doc.body)
        self.assertNotIn(reader["name"].encode(), doc.body)
