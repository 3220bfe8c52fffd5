"""Least privilege (docs/api.md, "Machine identities and universal auth", roles and rules).

Matrix: one project, two environments (staging, prod), folders /, /backend, /backend/api and /frontend with a
secret in each; identities with the roles admin, member, viewer, no-access, no membership at all, and
memberships narrowed by rules. For every identity x action (read one, list, list through v4, list recursively
from each folder, create, edit, delete) x environment x folder the test asserts exactly the status (200 or 403)
that a small model written here predicts from the documented rules, and after each write that the store holds
what the answer claims. The model is independent of the server's code:

- a role allows actions: admin and member read/create/edit/delete secrets, viewer reads, no-access nothing;
- without a membership nothing is allowed;
- with rules, an action is allowed only if the role allows it and at least one rule names the action, matches
  the environment (absent: any) and the path glob (absent: any; `*` is one folder name, `**` any number of
  folders including none, so /backend/** is /backend and everything below it);
- a recursive list needs read on the folder it starts from and returns exactly the secrets of the folders
  below it that may be read: never a key name of another folder.

References and imports: a reference or import that crosses into a place the identity may not read is a 403
naming that place (env:/path), never the value; project administration (environments, folders, imports, tags)
needs the admin role.
"""

import re
import unittest
import urllib.parse

import harness
from test_identities import IdentityHelpers

ENVS = ("staging", "prod")
FOLDERS = ("/", "/backend", "/backend/api", "/frontend")
SECRET_ACTIONS = ("read", "create", "edit", "delete")
ROLE_ACTIONS = {"admin": set(SECRET_ACTIONS), "member": set(SECRET_ACTIONS), "viewer": {"read"},
                "no-access": set()}

# name -> (role or None for no membership, rules or None)
IDENTITIES = {
    "admin": ("admin", None),
    "member": ("member", None),
    "viewer": ("viewer", None),
    "no_access": ("no-access", None),
    "no_membership": (None, None),
    "viewer_staging_backend": ("viewer", [{"actions": ["read"], "environment": "staging",
                                           "secretPath": "/backend/**"}]),
    "member_reads_frontend": ("member", [{"actions": ["read"], "secretPath": "/frontend/**"}]),
    "member_mixed": ("member", [{"actions": ["read"], "environment": "prod"},
                                {"actions": ["create", "edit", "delete"], "environment": "staging",
                                 "secretPath": "/frontend/**"}]),
    "viewer_wider_rule": ("viewer", [{"actions": ["read", "create", "edit", "delete"],
                                      "environment": "staging"}]),
    "member_one_star": ("member", [{"actions": ["read", "create"], "secretPath": "/backend/*"}]),
    "member_prod_root": ("member", [{"actions": ["read", "edit"], "environment": "prod", "secretPath": "/"}]),
}


def glob_regex(glob):
    """The model's own glob matcher: a regex over the path with its leading '/' segments."""
    parts = [p for p in glob.split("/") if p]
    rx = ""
    for p in parts:
        if p == "**":
            rx += "(?:/[^/]+)*"
        elif p == "*":
            rx += "/[^/]+"
        else:
            rx += "/" + re.escape(p)
    return re.compile(rx)


def glob_match(glob, path):
    return glob_regex(glob).fullmatch("" if path == "/" else path) is not None


def allowed(ident, action, env, path):
    role, rules = IDENTITIES[ident]
    if role is None or action not in ROLE_ACTIONS[role]:
        return False
    if not rules:
        return True
    return any(action in r["actions"]
               and (r.get("environment") is None or r["environment"] == env)
               and (r.get("secretPath") is None or glob_match(r["secretPath"], path))
               for r in rules)


def below(start, folder):
    return start == "/" or folder == start or folder.startswith(start + "/")


def loc_key(env, folder):
    name = {"/": "ROOT", "/backend": "BE", "/backend/api": "API", "/frontend": "FE"}[folder]
    return "K_%s_%s" % (env.upper(), name)


def loc_value(env, folder):
    return "val-" + loc_key(env, folder).lower()


def q(key):
    return urllib.parse.quote(key, safe="")


class ModelSelfCheck(unittest.TestCase):
    """The model's glob matcher and rules on their own (so that a wrong model cannot pass silently)."""

    def test_globs(self):
        cases = [("/backend/**", "/backend", True), ("/backend/**", "/backend/api", True),
                 ("/backend/**", "/backend/api/v1", True), ("/backend/**", "/", False),
                 ("/backend/**", "/backendx", False), ("/backend/**", "/frontend", False),
                 ("/backend/*", "/backend", False), ("/backend/*", "/backend/api", True),
                 ("/backend/*", "/backend/api/v1", False), ("/", "/", True), ("/", "/backend", False),
                 ("/**", "/", True), ("/**", "/a/b/c", True), ("/*/api", "/backend/api", True),
                 ("/*/api", "/api", False), ("/**/api", "/api", True), ("/**/api", "/x/y/api", True)]
        for glob, path, want in cases:
            self.assertEqual(glob_match(glob, path), want, (glob, path))

    def test_rules(self):
        self.assertTrue(allowed("viewer_staging_backend", "read", "staging", "/backend/api"))
        self.assertFalse(allowed("viewer_staging_backend", "read", "prod", "/backend"))
        self.assertFalse(allowed("viewer_wider_rule", "create", "staging", "/"))
        self.assertTrue(allowed("member_mixed", "create", "staging", "/frontend"))
        self.assertFalse(allowed("member_mixed", "read", "staging", "/frontend"))
        self.assertFalse(allowed("no_membership", "read", "staging", "/"))
        self.assertFalse(allowed("no_access", "read", "staging", "/"))


class Matrix(IdentityHelpers, harness.ServerTestCase):
    pid = None
    tokens = None

    def seed(self):
        cls = type(self)
        if cls.pid:
            return
        pid = self.create_project()["id"]
        for env in ENVS:
            self.create_folder(pid, env, "backend")
            self.create_folder(pid, env, "api", "/backend")
            self.create_folder(pid, env, "frontend")
            for folder in FOLDERS:
                items = [{"secretKey": loc_key(env, folder), "secretValue": loc_value(env, folder)}]
                for i, name in enumerate(IDENTITIES):
                    items.append({"secretKey": "EDIT_%d" % i, "secretValue": "orig"})
                    items.append({"secretKey": "DEL_%d" % i, "secretValue": "victim-%d" % i})
                    items.append({"secretKey": "BEDIT_%d" % i, "secretValue": "orig"})
                    items.append({"secretKey": "BDEL_%d" % i, "secretValue": "bvictim-%d" % i})
                self.ok("POST", "/api/v3/secrets/batch/raw",
                        body={"workspaceId": pid, "environment": env, "secretPath": folder, "secrets": items})
        tokens = {}
        for name, (role, rules) in IDENTITIES.items():
            m = self.machine(pid, role, rules, name=harness.unique(name))
            tokens[name] = m["token"]
        cls.tokens = tokens
        cls.pid = pid

    def admin_value(self, env, folder, key):
        r = self.get_secret(self.pid, key, env, folder)
        if r.status == 404:
            return None
        self.assertEqual(r.status, 200, r.body[:300])
        return r.json["secret"]["secretValue"]

    def expect(self, r, want_ok, env, folder, what, secret_values=()):
        if want_ok:
            self.assertEqual(r.status, 200, "%s should be allowed: %d %r" % (what, r.status, r.body[:300]))
        else:
            self.assertError(r, 403, "PermissionDenied", "%s:%s" % (env, folder), msg=what + " should be 403:")
            for v in secret_values:
                self.assertNotIn(v.encode(), r.body, "%s: a refusal shows a value" % what)

    def run_matrix(self, ident):
        self.seed()
        tok = self.tokens[ident]
        idx = list(IDENTITIES).index(ident)
        pid = self.pid
        for env in ENVS:
            for folder in FOLDERS:
                key, value = loc_key(env, folder), loc_value(env, folder)
                can_read = allowed(ident, "read", env, folder)
                with self.subTest(action="read one", env=env, folder=folder):
                    r = self.get_as(tok, pid, key, env, folder)
                    self.expect(r, can_read, env, folder, "read %s:%s/%s" % (env, folder, key), [value])
                    if can_read:
                        self.assertEqual(r.json["secret"]["secretValue"], value)
                with self.subTest(action="list", env=env, folder=folder):
                    r = self.list_as(tok, pid, env, folder)
                    self.expect(r, can_read, env, folder, "list %s:%s" % (env, folder), [value])
                    if can_read:
                        got = r.json["secrets"]
                        self.assertIn(key, [s["secretKey"] for s in got])
                        self.assertEqual({s.get("secretPath", folder) for s in got}, {folder})
                with self.subTest(action="list v4", env=env, folder=folder):
                    r = self.api("GET", "/api/v4/secrets", token=tok,
                                 query={"projectId": pid, "environment": env, "secretPath": folder})
                    self.expect(r, can_read, env, folder, "v4 list %s:%s" % (env, folder), [value])
                    if can_read:
                        self.assertIn(key, [s["secretKey"] for s in r.json["secrets"]])
                with self.subTest(action="list recursive", env=env, folder=folder):
                    r = self.list_as(tok, pid, env, folder, recursive="true")
                    self.expect(r, can_read, env, folder, "recursive list from %s:%s" % (env, folder), [value])
                    visible = {f for f in FOLDERS if below(folder, f) and allowed(ident, "read", env, f)}
                    if can_read:
                        got = r.json["secrets"]
                        self.assertEqual({s["secretPath"] for s in got}, visible,
                                         "folders in the recursive list from %s:%s" % (env, folder))
                        self.assertEqual({s["secretKey"] for s in got if s["secretKey"].startswith("K_")},
                                         {loc_key(env, f) for f in visible})
                    for f in FOLDERS:
                        if f not in visible:
                            self.assertNotIn(loc_key(env, f).encode(), r.body,
                                             "recursive list from %s:%s shows a key of %s" % (env, folder, f))
                            self.assertNotIn(loc_value(env, f).encode(), r.body)

        for env in ENVS:
            for folder in FOLDERS:
                with self.subTest(action="create", env=env, folder=folder):
                    ok = allowed(ident, "create", env, folder)
                    r = self.api("POST", "/api/v3/secrets/raw/NEW_%d" % idx, token=tok,
                                 body={"workspaceId": pid, "environment": env, "secretPath": folder,
                                       "secretValue": "new-%d" % idx})
                    self.expect(r, ok, env, folder, "create %s:%s" % (env, folder))
                    self.assertEqual(self.admin_value(env, folder, "NEW_%d" % idx), "new-%d" % idx if ok else None)
                with self.subTest(action="edit", env=env, folder=folder):
                    ok = allowed(ident, "edit", env, folder)
                    r = self.api("PATCH", "/api/v3/secrets/raw/EDIT_%d" % idx, token=tok,
                                 body={"workspaceId": pid, "environment": env, "secretPath": folder,
                                       "secretValue": "edited-%d" % idx})
                    self.expect(r, ok, env, folder, "edit %s:%s" % (env, folder))
                    self.assertEqual(self.admin_value(env, folder, "EDIT_%d" % idx),
                                     "edited-%d" % idx if ok else "orig")
                with self.subTest(action="delete", env=env, folder=folder):
                    ok = allowed(ident, "delete", env, folder)
                    r = self.api("DELETE", "/api/v3/secrets/raw/DEL_%d" % idx, token=tok,
                                 body={"workspaceId": pid, "environment": env, "secretPath": folder})
                    self.expect(r, ok, env, folder, "delete %s:%s" % (env, folder), ["victim-%d" % idx])
                    if ok and not allowed(ident, "read", env, folder):
                        self.assertNotIn(b"victim-%d" % idx, r.body, "a delete without read shows the value")
                    self.assertEqual(self.admin_value(env, folder, "DEL_%d" % idx),
                                     None if ok else "victim-%d" % idx)
                where = {"workspaceId": pid, "environment": env, "secretPath": folder}
                with self.subTest(action="batch create", env=env, folder=folder):
                    ok = allowed(ident, "create", env, folder)
                    r = self.api("POST", "/api/v3/secrets/batch/raw", token=tok, body=dict(where, secrets=[
                        {"secretKey": "BNEW_%d" % idx, "secretValue": "bnew-%d" % idx}]))
                    self.expect(r, ok, env, folder, "batch create %s:%s" % (env, folder))
                    self.assertEqual(self.admin_value(env, folder, "BNEW_%d" % idx),
                                     "bnew-%d" % idx if ok else None)
                with self.subTest(action="batch edit", env=env, folder=folder):
                    ok = allowed(ident, "edit", env, folder)
                    r = self.api("PATCH", "/api/v3/secrets/batch/raw", token=tok, body=dict(where, secrets=[
                        {"secretKey": "BEDIT_%d" % idx, "secretValue": "bedited-%d" % idx}]))
                    self.expect(r, ok, env, folder, "batch edit %s:%s" % (env, folder))
                    self.assertEqual(self.admin_value(env, folder, "BEDIT_%d" % idx),
                                     "bedited-%d" % idx if ok else "orig")
                with self.subTest(action="batch delete", env=env, folder=folder):
                    ok = allowed(ident, "delete", env, folder)
                    r = self.api("DELETE", "/api/v3/secrets/batch/raw", token=tok, body=dict(where, secrets=[
                        {"secretKey": "BDEL_%d" % idx}]))
                    self.expect(r, ok, env, folder, "batch delete %s:%s" % (env, folder), ["bvictim-%d" % idx])
                    if ok and not allowed(ident, "read", env, folder):
                        self.assertNotIn(b"bvictim-%d" % idx, r.body, "a delete without read shows the value")
                    self.assertEqual(self.admin_value(env, folder, "BDEL_%d" % idx),
                                     None if ok else "bvictim-%d" % idx)


def _matrix_test(ident):
    def test(self):
        self.run_matrix(ident)
    test.__doc__ = "every action x environment x folder for identity %s" % ident
    return test


for _name in IDENTITIES:
    setattr(Matrix, "test_matrix_" + _name, _matrix_test(_name))


class WriteWithoutRead(IdentityHelpers, harness.ServerTestCase):
    """An identity allowed to edit or delete but not to read a folder must not learn values through the
    answers to its writes."""

    def setUp(self):
        super().setUp()
        self.pid = pid = self.create_project()["id"]
        self.create_folder(pid, "staging", "frontend")
        self.set_secret(pid, "HIDDEN_A", "hidden-value-a", "staging", "/frontend")
        self.set_secret(pid, "HIDDEN_B", "hidden-value-b", "staging", "/frontend", secretComment="hidden note")
        self.token = self.machine(pid, "member", [{"actions": ["edit", "delete"], "environment": "staging",
                                                   "secretPath": "/frontend/**"}])["token"]
        self.assertError(self.get_as(self.token, pid, "HIDDEN_A", "staging", "/frontend"), 403,
                         "PermissionDenied")

    def test_rename_answer_does_not_reveal_the_value(self):
        r = self.api("PATCH", "/api/v3/secrets/raw/HIDDEN_B", token=self.token,
                     body={"workspaceId": self.pid, "environment": "staging", "secretPath": "/frontend",
                           "newSecretName": "HIDDEN_B2"})
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(self.get_secret(self.pid, "HIDDEN_B2", "staging", "/frontend").json["secret"]["secretValue"],
                         "hidden-value-b")
        self.assertNotIn(b"hidden-value-b", r.body, "a rename by an identity that may not read shows the value")
        self.assertTrue(r.json["secret"]["secretValueHidden"])
        self.assertEqual(r.json["secret"]["secretKey"], "HIDDEN_B2")

    def test_delete_answer_does_not_reveal_the_value(self):
        r = self.api("DELETE", "/api/v3/secrets/raw/HIDDEN_A", token=self.token,
                     body={"workspaceId": self.pid, "environment": "staging", "secretPath": "/frontend"})
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(self.get_secret(self.pid, "HIDDEN_A", "staging", "/frontend").status, 404)
        self.assertNotIn(b"hidden-value-a", r.body, "a delete by an identity that may not read shows the value")
        self.assertTrue(r.json["secret"]["secretValueHidden"])

    def test_batch_answers_do_not_reveal_values(self):
        where = {"workspaceId": self.pid, "environment": "staging", "secretPath": "/frontend"}
        r = self.api("PATCH", "/api/v3/secrets/batch/raw", token=self.token,
                     body=dict(where, secrets=[{"secretKey": "HIDDEN_B", "secretComment": "new note"}]))
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertNotIn(b"hidden-value-b", r.body)
        r = self.api("DELETE", "/api/v3/secrets/batch/raw", token=self.token,
                     body=dict(where, secrets=[{"secretKey": "HIDDEN_A"}, {"secretKey": "HIDDEN_B"}]))
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(sorted(x["secretKey"] for x in r.json["secrets"]), ["HIDDEN_A", "HIDDEN_B"])
        self.assertNotIn(b"hidden-value", r.body)
        self.assertEqual(self.list_secrets(self.pid, "staging", "/frontend").json["secrets"], [])

    def test_rollback_answer_does_not_reveal_the_value(self):
        sid = self.update_secret(self.pid, "HIDDEN_A", "staging", "/frontend", secretValue="hidden-value-a2")["id"]
        r = self.api("POST", "/api/v1/secret/%s/rollback" % sid, body={"version": 1}, token=self.token)
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertNotIn(b"hidden-value-a", r.body)
        self.assertEqual(self.get_secret(self.pid, "HIDDEN_A", "staging", "/frontend").json["secret"]["secretValue"],
                         "hidden-value-a")


class History(IdentityHelpers, harness.ServerTestCase):
    """Versions hold values: reading them needs read where the secret lives; a rollback needs edit."""

    def test_versions_and_rollback(self):
        pid = self.create_project()["id"]
        self.create_folder(pid, "prod", "backend")
        sid = self.set_secret(pid, "DB_PASSWORD", "prod-pass-1", "prod", "/backend")["id"]
        self.update_secret(pid, "DB_PASSWORD", "prod", "/backend", secretValue="prod-pass-2")
        staging = self.machine(pid, "member", [{"actions": ["read", "create", "edit", "delete"],
                                                "environment": "staging"}])["token"]
        viewer = self.machine(pid, "viewer")["token"]
        member = self.machine(pid, "member")["token"]
        r = self.api("GET", "/api/v1/secret/%s/secret-versions" % sid, token=staging)
        self.assertError(r, 403, "PermissionDenied", "prod:/backend")
        self.assertNotIn(b"prod-pass", r.body)
        r = self.api("POST", "/api/v1/secret/%s/rollback" % sid, body={"version": 1}, token=staging)
        self.assertError(r, 403, "PermissionDenied", "prod:/backend")
        self.assertNotIn(b"prod-pass", r.body)
        r = self.api("GET", "/api/v1/secret/%s/secret-versions" % sid, token=viewer)
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(sorted(v["secretValue"] for v in r.json["secretVersions"]), ["prod-pass-1", "prod-pass-2"])
        r = self.api("POST", "/api/v1/secret/%s/rollback" % sid, body={"version": 1}, token=viewer)
        self.assertError(r, 403, "PermissionDenied", "prod:/backend")
        self.assertEqual(self.get_secret(pid, "DB_PASSWORD", "prod", "/backend").json["secret"]["secretValue"],
                         "prod-pass-2")
        r = self.api("POST", "/api/v1/secret/%s/rollback" % sid, body={"version": 1}, token=member)
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(self.get_secret(pid, "DB_PASSWORD", "prod", "/backend").json["secret"]["secretValue"],
                         "prod-pass-1")


class ReferencesAndImports(IdentityHelpers, harness.ServerTestCase):

    def setUp(self):
        super().setUp()
        self.pid = pid = self.create_project()["id"]
        for env in ("staging", "prod"):
            self.create_folder(pid, env, "backend")
            self.create_folder(pid, env, "frontend")
        self.set_secret(pid, "KEY", "prod-backend-value", "prod", "/backend")
        self.set_secret(pid, "FE_KEY", "staging-frontend-value", "staging", "/frontend")
        self.set_secret(pid, "LOCAL", "staging-local-value", "staging", "/backend")
        self.staging = self.machine(pid, "viewer", [{"actions": ["read"], "environment": "staging",
                                                     "secretPath": "/backend/**"}])["token"]
        self.reader = self.machine(pid, "viewer")["token"]

    def v4_get(self, token, key, env, path, **query):
        qd = {"projectId": self.pid, "environment": env, "secretPath": path}
        qd.update(query)
        return self.api("GET", "/api/v4/secrets/" + q(key), query=qd, token=token)

    def v4_list(self, token, env, path, **query):
        qd = {"projectId": self.pid, "environment": env, "secretPath": path}
        qd.update(query)
        return self.api("GET", "/api/v4/secrets", query=qd, token=token)

    def test_reference_into_prod_is_403_naming_the_place(self):
        pid = self.pid
        self.set_secret(pid, "REF", "url=${prod.backend.KEY}", "staging", "/backend")
        r = self.get_as(self.staging, pid, "REF", "staging", "/backend", expandSecretReferences="true")
        self.assertError(r, 403, "PermissionDenied", "prod:/backend")
        self.assertNotIn(b"prod-backend-value", r.body)
        r = self.list_as(self.staging, pid, "staging", "/backend", expandSecretReferences="true")
        self.assertError(r, 403, "PermissionDenied", "prod:/backend")
        self.assertNotIn(b"prod-backend-value", r.body)
        for r in (self.v4_get(self.staging, "REF", "staging", "/backend"),
                  self.v4_list(self.staging, "staging", "/backend")):
            self.assertError(r, 403, "PermissionDenied", "prod:/backend")
            self.assertNotIn(b"prod-backend-value", r.body)
        # Unexpanded, the reference text itself is readable.
        r = self.get_as(self.staging, pid, "REF", "staging", "/backend")
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(r.json["secret"]["secretValue"], "url=${prod.backend.KEY}")
        # An identity that may read prod gets the value.
        r = self.get_as(self.reader, pid, "REF", "staging", "/backend", expandSecretReferences="true")
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(r.json["secret"]["secretValue"], "url=prod-backend-value")

    def test_reference_to_an_unreadable_folder_of_the_same_env(self):
        pid = self.pid
        self.set_secret(pid, "REF_FE", "x-${staging.frontend.FE_KEY}", "staging", "/backend")
        r = self.get_as(self.staging, pid, "REF_FE", "staging", "/backend", expandSecretReferences="true")
        self.assertError(r, 403, "PermissionDenied", "staging:/frontend")
        self.assertNotIn(b"staging-frontend-value", r.body)
        # A chain through a readable secret into an unreadable one is refused too.
        self.set_secret(pid, "HOP", "${REF_FE}", "staging", "/backend")
        r = self.get_as(self.staging, pid, "HOP", "staging", "/backend", expandSecretReferences="true")
        self.assertError(r, 403, "PermissionDenied", "staging:/frontend")
        self.assertNotIn(b"staging-frontend-value", r.body)
        # Readable references still expand.
        self.set_secret(pid, "REF_OK", "y-${LOCAL}", "staging", "/backend")
        r = self.get_as(self.staging, pid, "REF_OK", "staging", "/backend", expandSecretReferences="true")
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(r.json["secret"]["secretValue"], "y-staging-local-value")

    def test_import_from_prod_is_403_naming_the_place(self):
        pid = self.pid
        self.ok("POST", "/api/v2/secret-imports", body={"projectId": pid, "environment": "staging",
                                                        "path": "/backend",
                                                        "import": {"environment": "prod", "path": "/backend"}})
        r = self.list_as(self.staging, pid, "staging", "/backend", include_imports="true")
        self.assertError(r, 403, "PermissionDenied", "prod:/backend")
        self.assertNotIn(b"prod-backend-value", r.body)
        self.assertNotIn(b'"KEY"', r.body)
        r = self.v4_list(self.staging, "staging", "/backend")  # includeImports defaults to true on v4
        self.assertError(r, 403, "PermissionDenied", "prod:/backend")
        self.assertNotIn(b"prod-backend-value", r.body)
        # Without imports the folder itself is readable.
        r = self.list_as(self.staging, pid, "staging", "/backend", include_imports="false")
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual([s["secretKey"] for s in r.json["secrets"]], ["LOCAL"])
        self.assertNotIn(b"prod-backend-value", r.body)
        # An identity that may read prod gets the import.
        r = self.list_as(self.reader, pid, "staging", "/backend", include_imports="true")
        self.assertEqual(r.status, 200, r.body[:300])
        imports = r.json["imports"]
        self.assertEqual([(i["environment"], i["secretPath"]) for i in imports], [("prod", "/backend")])
        self.assertEqual([(s["secretKey"], s["secretValue"]) for s in imports[0]["secrets"]],
                         [("KEY", "prod-backend-value")])

    def test_recursive_list_hides_unreadable_folders(self):
        pid = self.pid
        self.set_secret(pid, "ROOT_ONLY_KEY", "root-value", "staging", "/")
        r = self.list_as(self.staging, pid, "staging", "/backend", recursive="true")
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual([s["secretKey"] for s in r.json["secrets"]], ["LOCAL"])
        r = self.list_as(self.staging, pid, "staging", "/", recursive="true")
        self.assertError(r, 403, "PermissionDenied", "staging:/")
        for leaked in (b"FE_KEY", b"ROOT_ONLY_KEY", b"staging-frontend-value", b"root-value"):
            self.assertNotIn(leaked, r.body)
        r = self.v4_list(self.staging, "staging", "/backend", recursive="true")
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual([s["secretKey"] for s in r.json["secrets"]], ["LOCAL"])


class ProjectAdministration(IdentityHelpers, harness.ServerTestCase):
    """Environments, folders, imports and tags need the admin role in the project."""

    def test_admin_role_only(self):
        pid = self.create_project()["id"]
        self.create_folder(pid, "dev", "src")
        roles = {"admin": "admin", "member": "member", "viewer": "viewer", "no-access": "no-access", "none": None}
        for n, (label, role) in enumerate(roles.items()):
            tok = self.machine(pid, role, name=harness.unique(label))["token"]
            want = 200 if role == "admin" else 403
            calls = [
                ("POST", "/api/v1/workspace/%s/environments" % pid, {"name": "E%d" % n, "slug": "env-%d" % n}),
                ("POST", "/api/v1/folders", {"workspaceId": pid, "environment": "dev", "name": "f%d" % n,
                                             "path": "/"}),
                ("POST", "/api/v2/secret-imports", {"projectId": pid, "environment": "staging", "path": "/",
                                                    "import": {"environment": "dev", "path": "/src"}}),
                ("POST", "/api/v1/projects/%s/tags" % pid, {"slug": "tag-%d" % n}),
            ]
            for method, path, body in calls:
                with self.subTest(role=label, path=path):
                    r = self.api(method, path, body=body, token=tok)
                    if want == 200:
                        self.assertEqual(r.status, 200, r.body[:300])
                    else:
                        self.assertError(r, 403, "PermissionDenied")
            if want == 200:  # undo the import so the next role's attempt would not be a duplicate
                imports = self.ok("GET", "/api/v2/secret-imports",
                                  query={"projectId": pid, "environment": "staging", "path": "/"})["secretImports"]
                for imp in imports:
                    self.ok("DELETE", "/api/v2/secret-imports/" + imp["id"],
                            body={"projectId": pid, "environment": "staging", "path": "/"})
        envs = [e["slug"] for e in self.ok("GET", "/api/v1/workspace/%s/environments" % pid)["environments"]]
        self.assertEqual(envs, ["dev", "staging", "prod", "env-0"])
        folders = sorted(f["name"] for f in self.ok("GET", "/api/v1/folders",
                                                    query={"workspaceId": pid, "environment": "dev"})["folders"])
        self.assertEqual(folders, ["f0", "src"])
        tags = [t["slug"] for t in self.ok("GET", "/api/v1/projects/%s/tags" % pid)["workspaceTags"]]
        self.assertEqual(tags, ["tag-0"])


class RenamesDoNotWiden(IdentityHelpers, harness.ServerTestCase):
    """Rules, imports and references bind environments by id: renaming or re-slugging an environment
    changes what is displayed, never who may read what (docs/api.md, "Rules bind environments by id")."""

    def setUp(self):
        super().setUp()
        self.pid = pid = self.create_project()["id"]
        for env in ("dev", "staging", "prod"):
            self.create_folder(pid, env, "app")
            self.set_secret(pid, "DB", env + "-root-value", env, "/")
            self.set_secret(pid, "APP", env + "-app-value", env, "/app")

    def env_id(self, slug):
        envs = self.ok("GET", "/api/v1/workspace/%s/environments" % self.pid)["environments"]
        return next(e["id"] for e in envs if e["slug"] == slug)

    def reslug(self, old, new):
        self.ok("PATCH", "/api/v1/workspace/%s/environments/%s" % (self.pid, self.env_id(old)),
                body={"slug": new})

    def swap_dev_and_prod(self):
        """The attack: dev -> olddev, then prod -> dev."""
        self.reslug("dev", "olddev")
        self.reslug("prod", "dev")

    def rules_of(self, identity_id):
        listed = self.ok("GET", "/api/v2/workspace/%s/identity-memberships" % self.pid)["identityMemberships"]
        return next(m["rules"] for m in listed if m["identityId"] == identity_id)

    def assertReads(self, token, env, path, key, value):
        r = self.get_as(token, self.pid, key, env, path)
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(r.json["secret"]["secretValue"], value)

    def assertRefused(self, r, place, *values):
        self.assertError(r, 403, "PermissionDenied", place)
        for v in values:
            self.assertNotIn(v.encode(), r.body)

    def test_swapping_environment_slugs_does_not_hand_over_prod(self):
        pid = self.pid
        m = self.machine(pid, "viewer", [{"actions": ["read"], "environment": "dev"}])
        self.assertReads(m["token"], "dev", "/", "DB", "dev-root-value")
        self.assertRefused(self.get_as(m["token"], pid, "DB", "prod", "/"), "prod:/", "prod-root-value")
        self.swap_dev_and_prod()
        # The slug "dev" now names the former prod: the dev-only identity must not read it.
        self.assertRefused(self.get_as(m["token"], pid, "DB", "dev", "/"), "dev:/", "prod-root-value")
        self.assertRefused(self.list_as(m["token"], pid, "dev", "/", recursive="true"), "dev:/",
                           "prod-root-value", "prod-app-value")
        # It keeps reading its own environment under its new slug.
        self.assertReads(m["token"], "olddev", "/", "DB", "dev-root-value")
        self.assertReads(m["token"], "olddev", "/app", "APP", "dev-app-value")
        # The rule is displayed with the environment's current slug.
        self.assertEqual(self.rules_of(m["id"]), [{"actions": ["read"], "environment": "olddev",
                                                   "secretPath": None}])
        # A new environment under the slug the rule was written with grants nothing either.
        self.reslug("dev", "oldprod")
        self.ok("POST", "/api/v1/workspace/%s/environments" % pid, body={"name": "Dev", "slug": "dev"})
        self.set_secret(pid, "DB", "new-dev-value", "dev", "/")
        self.assertRefused(self.get_as(m["token"], pid, "DB", "dev", "/"), "dev:/", "new-dev-value")
        self.assertReads(m["token"], "olddev", "/", "DB", "dev-root-value")

    def test_folder_rules_follow_their_environment(self):
        pid = self.pid
        m = self.machine(pid, "viewer", [{"actions": ["read"], "environment": "dev", "secretPath": "/app/**"}])
        self.assertReads(m["token"], "dev", "/app", "APP", "dev-app-value")
        self.swap_dev_and_prod()
        self.assertRefused(self.get_as(m["token"], pid, "APP", "dev", "/app"), "dev:/app", "prod-app-value")
        self.assertRefused(self.list_as(m["token"], pid, "dev", "/app"), "dev:/app", "prod-app-value")
        self.assertReads(m["token"], "olddev", "/app", "APP", "dev-app-value")
        self.assertRefused(self.get_as(m["token"], pid, "DB", "olddev", "/"), "olddev:/", "dev-root-value")

    def test_rules_name_existing_environments(self):
        pid = self.pid
        ident = self.machine()  # a token, no membership yet
        path = "/api/v2/workspace/%s/identity-memberships/%s" % (pid, ident["id"])
        r = self.api("POST", path, body={"role": "viewer", "rules": [{"actions": ["read"], "environment": "qa"}]})
        self.assertError(r, 422, "ValidationFailure", "rules[0].environment", "'qa'")
        self.assertEqual(self.ok("GET", "/api/v2/workspace/%s/identity-memberships" % pid)["identityMemberships"],
                         [])
        # An id names the environment too; the rule is shown by the current slug.
        staging_id = self.env_id("staging")
        m = self.add_member(pid, ident["id"], "viewer", [{"actions": ["read"], "environment": staging_id}])
        self.assertEqual(m["rules"], [{"actions": ["read"], "environment": "staging", "secretPath": None}])
        self.assertReads(ident["token"], "staging", "/", "DB", "staging-root-value")
        # Once the environment is deleted the rule covers nothing and is shown by the id it was bound to;
        # a new environment under the old slug does not inherit it.
        self.ok("DELETE", "/api/v1/workspace/%s/environments/%s" % (pid, staging_id))
        self.assertEqual(self.rules_of(ident["id"]), [{"actions": ["read"], "environment": staging_id,
                                                       "secretPath": None}])
        self.ok("POST", "/api/v1/workspace/%s/environments" % pid, body={"name": "Staging", "slug": "staging"})
        self.set_secret(pid, "DB", "new-staging-value", "staging", "/")
        self.assertRefused(self.get_as(ident["token"], pid, "DB", "staging", "/"), "staging:/", "new-staging-value")
        self.assertEqual(self.rules_of(ident["id"])[0]["environment"], staging_id)

    def test_folders_cannot_be_renamed_or_moved(self):
        pid = self.pid
        m = self.machine(pid, "viewer", [{"actions": ["read"], "environment": "dev", "secretPath": "/app/**"}])
        self.create_folder(pid, "dev", "vault")
        self.set_secret(pid, "VAULT", "vault-value", "dev", "/vault")
        folder = next(f for f in self.ok("GET", "/api/v1/folders", query={"workspaceId": pid, "environment": "dev"})
                      ["folders"] if f["name"] == "vault")
        # Renaming /vault to /app/vault or /app (after deleting it) would put its secrets under the rule's glob.
        for body in ({"workspaceId": pid, "environment": "dev", "name": "app2", "path": "/"},
                     {"workspaceId": pid, "environment": "dev", "name": "vault", "path": "/app"}):
            for target in (folder["id"], "vault"):
                r = self.api("PATCH", "/api/v1/folders/" + target, body=body)
                self.assertError(r, 409, None, "cannot be renamed or moved")
        self.assertRefused(self.get_as(m["token"], pid, "VAULT", "dev", "/vault"), "dev:/vault", "vault-value")
        r = self.get_as(m["token"], pid, "VAULT", "dev", "/app/vault")  # no such folder: 403 or 404
        self.assertIn(r.status, (403, 404), r.body[:300])
        self.assertNotIn(b"vault-value", r.body)
        names = sorted(f["name"] for f in self.ok("GET", "/api/v1/folders",
                                                  query={"workspaceId": pid, "environment": "dev"})["folders"])
        self.assertEqual(names, ["app", "vault"])

    def test_imports_and_references_do_not_follow_a_slug(self):
        pid = self.pid
        for env in ("staging", "prod"):
            self.create_folder(pid, env, "public")
            self.set_secret(pid, "PUB", env + "-public-value", env, "/public")
        m = self.machine(pid, "viewer", [{"actions": ["read"], "environment": "dev"},
                                         {"actions": ["read"], "environment": "prod", "secretPath": "/public/**"}])
        self.ok("POST", "/api/v2/secret-imports", body={"projectId": pid, "environment": "dev", "path": "/app",
                                                        "import": {"environment": "staging", "path": "/public"}})
        self.set_secret(pid, "REF", "x-${staging.public.PUB}", "dev", "/")
        self.assertRefused(self.list_as(m["token"], pid, "dev", "/app", include_imports="true"),
                           "staging:/public", "staging-public-value")
        self.assertRefused(self.get_as(m["token"], pid, "REF", "dev", "/", expandSecretReferences="true"),
                           "staging:/public", "staging-public-value")
        self.assertReads(m["token"], "prod", "/public", "PUB", "prod-public-value")
        # staging takes the slug prod: the import and the reference now name "prod", but they still
        # lead into staging, which the identity may not read.
        self.reslug("prod", "oldprod")
        self.reslug("staging", "prod")
        self.assertRefused(self.list_as(m["token"], pid, "dev", "/app", include_imports="true"),
                           "prod:/public", "staging-public-value")
        self.assertRefused(self.get_as(m["token"], pid, "PUB", "prod", "/public"), "prod:/public",
                           "staging-public-value")
        self.set_secret(pid, "REF2", "x-${prod.public.PUB}", "dev", "/")
        self.assertRefused(self.get_as(m["token"], pid, "REF2", "dev", "/", expandSecretReferences="true"),
                           "prod:/public", "staging-public-value")
        imports = self.ok("GET", "/api/v2/secret-imports",
                          query={"projectId": pid, "environment": "dev", "path": "/app"})["secretImports"]
        self.assertEqual([i["importEnv"]["slug"] for i in imports], ["prod"])
        self.assertEqual([i["importEnv"]["id"] for i in imports], [self.env_id("prod")])
        # What it could read, it still reads.
        self.assertReads(m["token"], "oldprod", "/public", "PUB", "prod-public-value")
        self.assertReads(m["token"], "dev", "/", "REF", "x-${staging.public.PUB}")


class LegacyRulesBoundAtOpen(IdentityHelpers, harness.ServerTestCase):
    """A store written when rules named environments by slug: until the server opens it the rule covers nothing;
    opening binds it to the environment that bears the slug then, and a later swap does not widen it."""

    def test_slug_rule_is_bound_at_open(self):
        pid = self.create_project()["id"]
        for env in ("dev", "prod"):
            self.set_secret(pid, "DB", env + "-value", env, "/")
        m = self.machine(pid, "viewer", [{"actions": ["read"], "environment": "dev"}])
        # The rule as the previous format stored it: format 1, read (bit 1), slug "dev", no glob.
        legacy = "01" "00000002" "03" "0000" + b"dev".hex()
        blob = ("decode('%s', 'hex')" if harness.PG_DIR else "x'%s'") % legacy
        harness.sql(self.server.data_dir, "UPDATE identity_memberships SET rules = %s WHERE identity_id = '%s'"
                    % (blob, m["id"]))
        self.assertError(self.get_as(m["token"], pid, "DB", "dev", "/"), 403, "PermissionDenied", "dev:/")
        self.server.restart()
        r = self.get_as(m["token"], pid, "DB", "dev", "/")
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(r.json["secret"]["secretValue"], "dev-value")
        envs = {e["slug"]: e["id"] for e in self.ok("GET", "/api/v1/workspace/%s/environments" % pid)["environments"]}
        self.ok("PATCH", "/api/v1/workspace/%s/environments/%s" % (pid, envs["dev"]), body={"slug": "olddev"})
        self.ok("PATCH", "/api/v1/workspace/%s/environments/%s" % (pid, envs["prod"]), body={"slug": "dev"})
        r = self.get_as(m["token"], pid, "DB", "dev", "/")
        self.assertError(r, 403, "PermissionDenied", "dev:/")
        self.assertNotIn(b"prod-value", r.body)
        r = self.get_as(m["token"], pid, "DB", "olddev", "/")
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(r.json["secret"]["secretValue"], "dev-value")


if __name__ == "__main__":
    unittest.main()
