"""The secrets API of docs/api.md against the real server: projects, environments, folders, secrets through
v3 raw and v4, versions and rollback, references, imports, batches (all-or-nothing) and tags."""

import json
import unittest
import urllib.parse

import harness
from harness import ServerTestCase, unique
from test_identities import IdentityHelpers

ISO_RE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


def q(key):
    return urllib.parse.quote(key, safe="")


class Projects(ServerTestCase):
    def test_create_has_default_envs(self):
        name = unique("My Project")
        p = self.create_project(name)
        for field in ("id", "name", "slug", "environments", "createdAt", "updatedAt"):
            self.assertIn(field, p)
        self.assertEqual(p["name"], name)
        self.assertEqual(p.get("type"), "secret-manager")
        self.assertEqual(p["slug"], name.lower().replace(" ", "-"))
        envs = sorted(p["environments"], key=lambda e: e["position"])
        self.assertEqual([e["slug"] for e in envs], ["dev", "staging", "prod"])
        self.assertEqual([e["position"] for e in envs], [1, 2, 3])
        for e in envs:
            self.assertEqual(e["projectId"], p["id"])
            self.assertTrue(e["id"])
            self.assertRegex(e["createdAt"], ISO_RE)

    def test_slug_default_and_explicit(self):
        p = self.create_project("Hello, World!! " + unique("x"))
        self.assertRegex(p["slug"], r"^[a-z0-9-]+$")
        self.assertTrue(p["slug"].startswith("hello-world-"), p["slug"])
        slug = unique("explicit")
        p2 = self.create_project(unique("Named"), slug=slug, projectDescription="desc")
        self.assertEqual(p2["slug"], slug)
        self.assertEqual(p2.get("description"), "desc")
        # A second project with the same slug is refused.
        r = self.api("POST", "/api/v2/workspace", body={"projectName": "again", "slug": slug})
        self.assertError(r, 400, "BadRequest", slug)

    def test_list_get_delete(self):
        p = self.create_project()
        listed = self.ok("GET", "/api/v1/workspace")["workspaces"]
        self.assertIn(p["id"], [w["id"] for w in listed])
        got = self.ok("GET", "/api/v1/workspace/" + p["id"])["workspace"]
        self.assertEqual(got["id"], p["id"])
        self.assertEqual(got["name"], p["name"])
        self.assertEqual(len(got["environments"]), 3)
        by_slug = self.ok("GET", "/api/v1/workspace/" + p["slug"])["workspace"]
        self.assertEqual(by_slug["id"], p["id"])
        self.set_secret(p["id"], "GONE_WITH_PROJECT", "v")
        deleted = self.ok("DELETE", "/api/v1/workspace/" + p["id"])["workspace"]
        self.assertEqual(deleted["id"], p["id"])
        self.assertError(self.api("GET", "/api/v1/workspace/" + p["id"]), 404, "NotFound", p["id"])
        self.assertNotIn(p["id"], [w["id"] for w in self.ok("GET", "/api/v1/workspace")["workspaces"]])
        self.assertEqual(self.get_secret(p["id"], "GONE_WITH_PROJECT").status, 404)
        self.assertError(self.api("DELETE", "/api/v1/workspace/" + p["id"]), 404, "NotFound")


    def test_over_long_stored_name_is_an_error_not_cut(self):
        """A stored name longer than Coffer reads (written to the database directly) fails the read with a
        message naming the column and both sizes, on both backends: never a name silently cut to fit."""
        p = self.create_project()
        where = "WHERE id = '%s'" % p["id"]
        fits, over = "v" * 128, "w" * 129
        try:
            harness.sql(self.server.data_dir, "UPDATE projects SET name = '%s' %s" % (fits, where))
            self.assertEqual(self.ok("GET", "/api/v1/workspace/" + p["id"])["workspace"]["name"], fits)
            harness.sql(self.server.data_dir, "UPDATE projects SET name = '%s' %s" % (over, where))
            for path in ("/api/v1/workspace/" + p["id"], "/api/v1/workspace"):
                body = self.assertError(self.api("GET", path), 500, "InternalServerError",
                                        "column 'name' holds 129 bytes of text, more than the 128")
                self.assertNotIn("www", body["message"])
        finally:
            harness.sql(self.server.data_dir, "UPDATE projects SET name = 'restored' %s" % where)
        self.assertEqual(self.ok("GET", "/api/v1/workspace/" + p["id"])["workspace"]["name"], "restored")


class Environments(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.pid = self.create_project()["id"]

    def envs(self):
        return self.ok("GET", "/api/v1/workspace/%s/environments" % self.pid)["environments"]

    def test_create_rename_reorder_delete(self):
        r = self.ok("POST", "/api/v1/workspace/%s/environments" % self.pid, body={"name": "QA", "slug": "qa"})
        env = r["environment"]
        self.assertEqual(r.get("workspace"), self.pid)
        self.assertIsInstance(r.get("message"), str)
        self.assertEqual((env["name"], env["slug"], env["position"]), ("QA", "qa", 4))
        self.assertEqual([e["slug"] for e in self.envs()], ["dev", "staging", "prod", "qa"])

        self.set_secret(self.pid, "IN_QA", "qa-value", env="qa")
        # rename (by id), slug and name
        r = self.ok("PATCH", "/api/v1/workspace/%s/environments/%s" % (self.pid, env["id"]),
                    body={"name": "Quality", "slug": "quality"})
        self.assertEqual((r["environment"]["name"], r["environment"]["slug"]), ("Quality", "quality"))
        self.assertEqual(self.get_secret(self.pid, "IN_QA", env="quality").json["secret"]["secretValue"], "qa-value")
        self.assertError(self.get_secret(self.pid, "IN_QA", env="qa"), 404, "NotFound", "qa")
        # reorder to the front: positions stay dense
        r = self.ok("PATCH", "/api/v1/workspace/%s/environments/%s" % (self.pid, env["id"]), body={"position": 1})
        self.assertEqual(r["environment"]["position"], 1)
        envs = self.envs()
        self.assertEqual([e["slug"] for e in envs], ["quality", "dev", "staging", "prod"])
        self.assertEqual([e["position"] for e in envs], [1, 2, 3, 4])
        # the project object lists them too
        proj = self.ok("GET", "/api/v1/workspace/" + self.pid)["workspace"]
        self.assertEqual(sorted(e["slug"] for e in proj["environments"]), ["dev", "prod", "quality", "staging"])
        # delete (by slug): its secrets go with it
        r = self.ok("DELETE", "/api/v1/workspace/%s/environments/quality" % self.pid)
        self.assertEqual(r["environment"]["slug"], "quality")
        envs = self.envs()
        self.assertEqual([e["slug"] for e in envs], ["dev", "staging", "prod"])
        self.assertEqual([e["position"] for e in envs], [1, 2, 3])
        self.assertError(self.get_secret(self.pid, "IN_QA", env="quality"), 404, "NotFound",
                         "Environment with slug 'quality'")

    def test_create_with_position(self):
        r = self.ok("POST", "/api/v1/workspace/%s/environments" % self.pid,
                    body={"name": "Test", "slug": "test", "position": 2})
        self.assertEqual(r["environment"]["position"], 2)
        self.assertEqual([e["slug"] for e in self.envs()], ["dev", "test", "staging", "prod"])

    def test_duplicate_slug(self):
        r = self.api("POST", "/api/v1/workspace/%s/environments" % self.pid, body={"name": "Dev2", "slug": "dev"})
        self.assertError(r, 400, "BadRequest", "dev")
        self.assertEqual(len(self.envs()), 3)


class Folders(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.pid = self.create_project()["id"]

    def folders(self, path="/", recursive=False, env="dev"):
        return self.ok("GET", "/api/v1/folders", query={"workspaceId": self.pid, "environment": env, "path": path,
                                                        "recursive": "true" if recursive else "false"})["folders"]

    def test_create_list_recursive_delete(self):
        f = self.create_folder(self.pid, "dev", "backend")
        self.assertEqual(f["name"], "backend")
        self.assertEqual(f["path"], "/backend")
        self.assertTrue(f["id"])
        self.assertEqual(f.get("version"), 1)
        self.assertIs(f.get("isReserved"), False)
        api = self.create_folder(self.pid, "dev", "api", "/backend")
        self.assertEqual(api["path"], "/backend/api")
        self.assertEqual(api["parentId"], f["id"])
        # path normalisation: blanks and trailing slash
        self.create_folder(self.pid, "dev", "worker", " /backend/ ")
        self.create_folder(self.pid, "dev", "frontend")
        self.assertEqual(sorted(x["name"] for x in self.folders()), ["backend", "frontend"])
        self.assertEqual(sorted(x["name"] for x in self.folders("/backend")), ["api", "worker"])
        rec = self.folders(recursive=True)
        self.assertEqual(sorted(x["path"] for x in rec), ["/backend", "/backend/api", "/backend/worker", "/frontend"])
        self.assertEqual(self.folders(env="prod"), [])

        self.set_secret(self.pid, "DEEP", "deep-value", path="/backend/api")
        self.set_secret(self.pid, "MID", "mid-value", path="/backend")
        # delete by name with the parent path: sub-folders and their secrets go too
        r = self.ok("DELETE", "/api/v1/folders/backend",
                    body={"workspaceId": self.pid, "environment": "dev", "path": "/"})
        self.assertEqual(r["folder"]["id"], f["id"])
        self.assertEqual([x["path"] for x in self.folders(recursive=True)], ["/frontend"])
        self.assertError(self.get_secret(self.pid, "DEEP", path="/backend/api"), 404, "NotFound",
                         "Folder with path '/backend/api'")
        # recreating the folder does not bring the secrets back
        self.create_folder(self.pid, "dev", "backend")
        self.create_folder(self.pid, "dev", "api", "/backend")
        self.assertEqual(self.get_secret(self.pid, "DEEP", path="/backend/api").status, 404)
        self.assertEqual(self.get_secret(self.pid, "MID", path="/backend").status, 404)

    def test_delete_by_id(self):
        f = self.create_folder(self.pid, "staging", "ops")
        self.ok("DELETE", "/api/v1/folders/" + f["id"], body={"workspaceId": self.pid, "environment": "staging"})
        self.assertEqual(self.folders(env="staging"), [])

    def test_duplicate_folder(self):
        self.create_folder(self.pid, "dev", "dup")
        r = self.api("POST", "/api/v1/folders", body={"workspaceId": self.pid, "environment": "dev", "name": "dup"})
        self.assertError(r, 400, "BadRequest", "dup")

    def test_aliases_project_id_and_directory(self):
        r = self.ok("POST", "/api/v1/folders",
                    body={"projectId": self.pid, "environment": "dev", "name": "aliased", "directory": "/"})
        self.assertEqual(r["folder"]["path"], "/aliased")


class SecretsV3(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.pid = self.create_project()["id"]

    def test_create_get_shape(self):
        s = self.set_secret(self.pid, "DB_PASSWORD", "hunter2", secretComment="the db")
        self.assertEqual(s["secretKey"], "DB_PASSWORD")
        self.assertEqual(s["secretValue"], "hunter2")
        self.assertEqual(s["secretComment"], "the db")
        self.assertEqual(s["version"], 1)
        self.assertEqual(s["type"], "shared")
        self.assertEqual(s["workspace"], self.pid)
        self.assertEqual(s["environment"], "dev")
        self.assertEqual(s["secretPath"], "/")
        self.assertEqual(s["id"], s["_id"])
        self.assertIsNone(s.get("expiresAt"))
        self.assertEqual(s.get("tags"), [])
        self.assertRegex(s["createdAt"], ISO_RE)
        r = self.get_secret(self.pid, "DB_PASSWORD")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["secret"]["secretValue"], "hunter2")
        self.assertEqual(r.json["secret"]["id"], s["id"])
        # environment by id works as well as by slug
        env_id = [e for e in self.ok("GET", "/api/v1/workspace/" + self.pid)["workspace"]["environments"]
                  if e["slug"] == "dev"][0]["id"]
        self.assertEqual(self.get_secret(self.pid, "DB_PASSWORD", env=env_id).status, 200)
        # other environments do not see it
        self.assertError(self.get_secret(self.pid, "DB_PASSWORD", env="prod"), 404, "NotFound",
                         "Secret with name 'DB_PASSWORD' not found")

    def test_value_trimming_and_pem(self):
        self.assertEqual(self.set_secret(self.pid, "PADDED", "  padded \t")["secretValue"], "padded")
        pem = ("-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"
               "AbCdEf0123456789+/=\n-----END PRIVATE KEY-----\n")
        self.assertEqual(self.set_secret(self.pid, "PEM", pem)["secretValue"], pem)
        self.assertEqual(self.get_secret(self.pid, "PEM").json["secret"]["secretValue"], pem)
        unicode_value = "pässwörd ✓ 🔑"
        self.assertEqual(self.set_secret(self.pid, "UNI", unicode_value)["secretValue"], unicode_value)
        self.assertEqual(self.set_secret(self.pid, "EMPTY", "")["secretValue"], "")
        self.assertEqual(self.set_secret(self.pid, "JSONISH", '{"a": "b\\"c"}')["secretValue"], '{"a": "b\\"c"}')

    def test_personal_type_refused(self):
        r = self.api("POST", "/api/v3/secrets/raw/PERSONAL",
                     body={"workspaceId": self.pid, "environment": "dev", "secretValue": "x", "type": "personal"})
        self.assertError(r, 400, "BadRequest", "personal")
        self.assertEqual(self.get_secret(self.pid, "PERSONAL").status, 404)
        r = self.api("POST", "/api/v3/secrets/raw/SHARED",
                     body={"workspaceId": self.pid, "environment": "dev", "secretValue": "x", "type": "shared"})
        self.assertEqual(r.status, 200)

    def test_list_and_recursive(self):
        self.create_folder(self.pid, "dev", "backend")
        self.create_folder(self.pid, "dev", "api", "/backend")
        self.set_secret(self.pid, "ROOT_A", "a")
        self.set_secret(self.pid, "ROOT_B", "b")
        self.set_secret(self.pid, "MID", "m", path="/backend")
        self.set_secret(self.pid, "DEEP", "d", path="/backend/api")
        self.set_secret(self.pid, "OTHER_ENV", "o", env="prod")
        r = self.list_secrets(self.pid)
        self.assertEqual(r.status, 200)
        self.assertEqual(sorted(s["secretKey"] for s in r.json["secrets"]), ["ROOT_A", "ROOT_B"])
        for s in r.json["secrets"]:
            self.assertEqual(s["secretPath"], "/")
        r = self.list_secrets(self.pid, path="/backend")
        self.assertEqual([s["secretKey"] for s in r.json["secrets"]], ["MID"])
        vals = self.secret_values(self.pid, recursive=True)
        self.assertEqual(vals, {("/", "ROOT_A"): "a", ("/", "ROOT_B"): "b", ("/backend", "MID"): "m",
                                ("/backend/api", "DEEP"): "d"})
        vals = self.secret_values(self.pid, path="/backend", recursive=True)
        self.assertEqual(vals, {("/backend", "MID"): "m", ("/backend/api", "DEEP"): "d"})
        # no imports key (or an empty one) unless asked
        self.assertFalse(self.list_secrets(self.pid).json.get("imports"))

    def test_view_secret_value_false(self):
        self.set_secret(self.pid, "HIDDEN", "shh")
        r = self.list_secrets(self.pid, viewSecretValue="false")
        self.assertEqual(r.status, 200)
        s = r.json["secrets"][0]
        self.assertNotEqual(s["secretValue"], "shh")
        self.assertIs(s["secretValueHidden"], True)
        r = self.list_secrets(self.pid)
        self.assertIs(r.json["secrets"][0]["secretValueHidden"], False)

    def test_update_value_comment_expiry_and_rename(self):
        s = self.set_secret(self.pid, "UPD", "v1")
        s2 = self.update_secret(self.pid, "UPD", secretValue="v2")
        self.assertEqual((s2["secretValue"], s2["version"]), ("v2", 2))
        self.assertEqual(s2["id"], s["id"])
        s3 = self.update_secret(self.pid, "UPD", secretComment="now commented")
        self.assertEqual((s3["secretValue"], s3["secretComment"], s3["version"]), ("v2", "now commented", 3))
        s4 = self.update_secret(self.pid, "UPD", expiresAt="2026-12-31T22:59:59.000Z")
        self.assertEqual(s4["expiresAt"], "2026-12-31T22:59:59.000Z")
        self.assertEqual(self.get_secret(self.pid, "UPD").json["secret"]["expiresAt"], "2026-12-31T22:59:59.000Z")
        s5 = self.update_secret(self.pid, "UPD", expiresAt=None)
        self.assertIsNone(s5["expiresAt"])
        s6 = self.update_secret(self.pid, "UPD", newSecretName="RENAMED")
        self.assertEqual(s6["secretKey"], "RENAMED")
        self.assertEqual(s6["secretValue"], "v2")
        self.assertGreater(s6["version"], s5["version"])
        self.assertError(self.get_secret(self.pid, "UPD"), 404, "NotFound", "Secret with name 'UPD' not found")
        self.assertEqual(self.get_secret(self.pid, "RENAMED").json["secret"]["secretValue"], "v2")
        # rename onto an existing key is refused
        self.set_secret(self.pid, "TAKEN", "t")
        r = self.api("PATCH", "/api/v3/secrets/raw/RENAMED",
                     body={"workspaceId": self.pid, "environment": "dev", "newSecretName": "TAKEN"})
        self.assertError(r, 400, "BadRequest", "TAKEN")
        self.assertEqual(self.get_secret(self.pid, "TAKEN").json["secret"]["secretValue"], "t")
        # update of a missing secret
        r = self.api("PATCH", "/api/v3/secrets/raw/MISSING",
                     body={"workspaceId": self.pid, "environment": "dev", "secretValue": "x"})
        self.assertError(r, 404, "NotFound", "Secret with name 'MISSING' not found")

    def test_create_with_expiry(self):
        s = self.set_secret(self.pid, "EXP", "v", expiresAt="2030-01-02T03:04:05.000Z")
        self.assertEqual(s["expiresAt"], "2030-01-02T03:04:05.000Z")
        vers = self.ok("GET", "/api/v1/secret/%s/secret-versions" % s["id"])["secretVersions"]
        self.assertEqual(vers[0]["expiresAt"], "2030-01-02T03:04:05.000Z")

    def test_delete(self):
        s = self.set_secret(self.pid, "DEL", "bye")
        r = self.ok("DELETE", "/api/v3/secrets/raw/DEL", body={"workspaceId": self.pid, "environment": "dev"})
        self.assertEqual(r["secret"]["secretKey"], "DEL")
        self.assertEqual(r["secret"]["id"], s["id"])
        self.assertError(self.get_secret(self.pid, "DEL"), 404, "NotFound", "DEL")
        self.assertNotIn("DEL", [x["secretKey"] for x in self.list_secrets(self.pid).json["secrets"]])
        r = self.api("DELETE", "/api/v3/secrets/raw/DEL", body={"workspaceId": self.pid, "environment": "dev"})
        self.assertError(r, 404, "NotFound", "Secret with name 'DEL' not found")
        # the key can be created again, from version 1
        self.assertEqual(self.set_secret(self.pid, "DEL", "again")["version"], 1)

    def test_secret_in_folder(self):
        self.create_folder(self.pid, "dev", "svc")
        s = self.set_secret(self.pid, "IN_FOLDER", "f", path="/svc/")
        self.assertEqual(s["secretPath"], "/svc")
        self.assertEqual(self.get_secret(self.pid, "IN_FOLDER", path="/svc").json["secret"]["secretValue"], "f")
        self.assertEqual(self.get_secret(self.pid, "IN_FOLDER").status, 404)
        # same key at another path is a different secret
        self.set_secret(self.pid, "IN_FOLDER", "root")
        self.assertEqual(self.get_secret(self.pid, "IN_FOLDER", path="/svc").json["secret"]["secretValue"], "f")

    def test_key_characters(self):
        for key in ("a", "A.b-c_d", "_LEADING", "x" * 256, "-dash"):
            with self.subTest(key=key):
                s = self.set_secret(self.pid, key, "v")
                self.assertEqual(s["secretKey"], key)
                self.assertEqual(self.get_secret(self.pid, key).status, 200)


class SecretsV4(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.pid = self.create_project()["id"]

    def test_crud(self):
        base = {"projectId": self.pid, "environment": "dev", "secretPath": "/"}
        r = self.ok("POST", "/api/v4/secrets/V4KEY", body=dict(base, secretValue="four"))
        self.assertEqual(r["secret"]["secretValue"], "four")
        r = self.ok("GET", "/api/v4/secrets/V4KEY", query=base)
        self.assertEqual(r["secret"]["secretValue"], "four")
        r = self.ok("GET", "/api/v4/secrets", query=base)
        self.assertEqual([s["secretKey"] for s in r["secrets"]], ["V4KEY"])
        r = self.ok("PATCH", "/api/v4/secrets/V4KEY", body=dict(base, secretValue="five", secretComment="c"))
        self.assertEqual((r["secret"]["secretValue"], r["secret"]["version"]), ("five", 2))
        # v3 and v4 see the same data
        self.assertEqual(self.get_secret(self.pid, "V4KEY").json["secret"]["secretValue"], "five")
        r = self.ok("DELETE", "/api/v4/secrets/V4KEY", body=base)
        self.assertEqual(r["secret"]["secretKey"], "V4KEY")
        r = self.api("GET", "/api/v4/secrets/V4KEY", query=base)
        self.assertError(r, 404, "NotFound", "V4KEY")

    def test_v4_expands_by_default(self):
        self.set_secret(self.pid, "B", "bee")
        self.set_secret(self.pid, "A", "x-${B}-y")
        base = {"projectId": self.pid, "environment": "dev", "secretPath": "/"}
        self.assertEqual(self.ok("GET", "/api/v4/secrets/A", query=base)["secret"]["secretValue"], "x-bee-y")
        listed = {s["secretKey"]: s["secretValue"] for s in self.ok("GET", "/api/v4/secrets", query=base)["secrets"]}
        self.assertEqual(listed["A"], "x-bee-y")
        raw = self.ok("GET", "/api/v4/secrets/A", query=dict(base, expandSecretReferences="false"))
        self.assertEqual(raw["secret"]["secretValue"], "x-${B}-y")
        # v3 does not expand unless asked
        self.assertEqual(self.get_secret(self.pid, "A").json["secret"]["secretValue"], "x-${B}-y")

    def test_v4_recursive(self):
        self.create_folder(self.pid, "dev", "a")
        self.set_secret(self.pid, "TOP", "t")
        self.set_secret(self.pid, "LOW", "l", path="/a")
        r = self.ok("GET", "/api/v4/secrets", query={"projectId": self.pid, "environment": "dev", "secretPath": "/",
                                                     "recursive": "true"})
        self.assertEqual(sorted((s["secretPath"], s["secretKey"]) for s in r["secrets"]), [("/", "TOP"), ("/a", "LOW")])


class Versions(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.pid = self.create_project()["id"]

    def history(self, sid, **query):
        return self.ok("GET", "/api/v1/secret/%s/secret-versions" % sid, query=query or None)["secretVersions"]

    def test_history_read_version_rollback(self):
        s = self.set_secret(self.pid, "VER", "one", secretComment="c1")
        self.update_secret(self.pid, "VER", secretValue="two", secretComment="c2")
        self.update_secret(self.pid, "VER", secretValue="three")
        hist = self.history(s["id"])
        self.assertEqual([h["version"] for h in hist], [3, 2, 1], "newest first")
        self.assertEqual([h["secretValue"] for h in hist], ["three", "two", "one"])
        self.assertEqual(hist[2]["secretComment"], "c1")
        for h in hist:
            self.assertEqual(h["secretId"], s["id"])
            self.assertEqual(h["secretKey"], "VER")
            self.assertRegex(h["createdAt"], ISO_RE)
        self.assertEqual([h["version"] for h in self.history(s["id"], offset="1", limit="1")], [2])

        r = self.get_secret(self.pid, "VER", version="1")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual((r.json["secret"]["secretValue"], r.json["secret"]["version"]), ("one", 1))
        self.assertEqual(self.get_secret(self.pid, "VER").json["secret"]["secretValue"], "three")
        self.assertError(self.get_secret(self.pid, "VER", version="9"), 404, "NotFound", "9")

        rb = self.ok("POST", "/api/v1/secret/%s/rollback" % s["id"], body={"version": 1})["secret"]
        self.assertEqual((rb["secretValue"], rb["version"], rb["secretComment"]), ("one", 4, "c1"))
        self.assertEqual(self.get_secret(self.pid, "VER").json["secret"]["secretValue"], "one")
        hist = self.history(s["id"])
        self.assertEqual([h["version"] for h in hist], [4, 3, 2, 1])
        self.assertEqual(hist[1]["secretValue"], "three", "rollback must not rewrite history")
        r = self.api("POST", "/api/v1/secret/%s/rollback" % s["id"], body={"version": 42})
        self.assertError(r, 404, "NotFound", "42")
        self.assertEqual(len(self.history(s["id"])), 4)

    def test_rename_and_tags_are_versions(self):
        tag = self.ok("POST", "/api/v1/projects/%s/tags" % self.pid, body={"slug": "vt", "name": "VT"})["tag"]
        s = self.set_secret(self.pid, "RV", "x")
        self.update_secret(self.pid, "RV", tagIds=[tag["id"]])
        self.update_secret(self.pid, "RV", newSecretName="RV2")
        hist = self.history(s["id"])
        self.assertEqual([h["version"] for h in hist], [3, 2, 1])
        self.assertEqual(hist[0]["secretKey"], "RV2")
        self.assertEqual(hist[2]["secretKey"], "RV")
        rb = self.ok("POST", "/api/v1/secret/%s/rollback" % s["id"], body={"version": 1})["secret"]
        self.assertEqual(rb["tags"], [], "rollback restores version 1's (empty) tags")

    def test_history_limit(self):
        s = self.set_secret(self.pid, "MANY", "v0")
        for i in range(1, 25):
            self.update_secret(self.pid, "MANY", secretValue="v%d" % i)
        self.assertEqual(len(self.history(s["id"])), 20, "default limit is 20")
        self.assertEqual(len(self.history(s["id"], limit="100")), 25)
        r = self.api("GET", "/api/v1/secret/%s/secret-versions" % s["id"], query={"limit": "101"})
        self.assertError(r, 422, "ValidationFailure", "limit")

    def test_unknown_secret_id(self):
        r = self.api("GET", "/api/v1/secret/00000000-0000-4000-8000-000000000000/secret-versions")
        self.assertError(r, 404, "NotFound")


class References(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.pid = self.create_project()["id"]

    def expanded(self, key, env="dev", path="/"):
        return self.get_secret(self.pid, key, env=env, path=path, expandSecretReferences="true")

    def test_local_and_cross_env(self):
        self.create_folder(self.pid, "prod", "backend")
        self.create_folder(self.pid, "prod", "api", "/backend")
        self.set_secret(self.pid, "DB_PASSWORD", "prod-pw", env="prod", path="/backend/api")
        self.set_secret(self.pid, "ROOT_ONLY", "prod-root", env="prod")
        self.set_secret(self.pid, "HOST", "db.local")
        self.set_secret(self.pid, "URL", "postgres://u:${prod.backend.api.DB_PASSWORD}@${HOST}/x ${prod.ROOT_ONLY}")
        r = self.expanded("URL")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["secret"]["secretValue"], "postgres://u:prod-pw@db.local/x prod-root")
        lst = self.list_secrets(self.pid, expandSecretReferences="true")
        self.assertEqual(lst.status, 200, lst.body)
        self.assertEqual({s["secretKey"]: s["secretValue"] for s in lst.json["secrets"]}["URL"],
                         "postgres://u:prod-pw@db.local/x prod-root")

    def test_local_reference_is_relative_to_the_holder(self):
        self.create_folder(self.pid, "dev", "svc")
        self.set_secret(self.pid, "NAME", "root-name")
        self.set_secret(self.pid, "NAME", "svc-name", path="/svc")
        self.set_secret(self.pid, "GREETING", "hi ${NAME}", path="/svc")
        self.assertEqual(self.expanded("GREETING", path="/svc").json["secret"]["secretValue"], "hi svc-name")
        # a cross-folder reference to a secret that itself holds a local reference resolves in its own folder
        self.set_secret(self.pid, "VIA", "${dev.svc.GREETING}")
        self.assertEqual(self.expanded("VIA").json["secret"]["secretValue"], "hi svc-name")

    def test_recursive_list_expands_relative_to_each_folder(self):
        self.create_folder(self.pid, "dev", "a")
        self.set_secret(self.pid, "X", "root-x")
        self.set_secret(self.pid, "X", "a-x", path="/a")
        self.set_secret(self.pid, "R", "got ${X}", path="/a")
        self.set_secret(self.pid, "S", "s ${X} ${dev.a.X}")
        r = self.list_secrets(self.pid, recursive="true", expandSecretReferences="true")
        self.assertEqual(r.status, 200, r.body)
        got = {(x["secretPath"], x["secretKey"]): x["secretValue"] for x in r.json["secrets"]}
        self.assertEqual(got, {("/", "X"): "root-x", ("/", "S"): "s root-x a-x", ("/a", "X"): "a-x",
                               ("/a", "R"): "got a-x"})

    def test_nested(self):
        self.set_secret(self.pid, "C", "c")
        self.set_secret(self.pid, "B", "${C}${C}")
        self.set_secret(self.pid, "A", "[${B}]-${C}")
        self.assertEqual(self.expanded("A").json["secret"]["secretValue"], "[cc]-c")

    def test_not_references(self):
        v = "$HOME ${ unclosed $${} $ {X} ${"
        self.set_secret(self.pid, "LITERAL", "$HOME and ${unclosed")
        self.assertEqual(self.expanded("LITERAL").json["secret"]["secretValue"], "$HOME and ${unclosed")
        self.set_secret(self.pid, "LIT2", "price: $5 {x}")
        self.assertEqual(self.expanded("LIT2").json["secret"]["secretValue"], "price: $5 {x}")
        del v

    def test_cycle(self):
        self.set_secret(self.pid, "CYC_A", "${CYC_B}")
        self.set_secret(self.pid, "CYC_B", "x${CYC_A}")
        r = self.expanded("CYC_A")
        body = self.assertError(r, 422, "ValidationFailure", "cycle", "CYC_A", "CYC_B")
        self.assertIn("CYC_A -> CYC_B -> CYC_A", body["message"])
        self.set_secret(self.pid, "SELF", "${SELF}")
        self.assertError(self.expanded("SELF"), 422, "ValidationFailure", "cycle", "SELF")
        # a list with expansion hands out the others and reports the two (brokenReferences); strictly, it refuses
        lst = self.list_secrets(self.pid, expandSecretReferences="true")
        self.assertEqual(lst.status, 200, lst.body)
        self.assertEqual(sorted(p["secretKey"] for p in lst.json["brokenReferences"]), ["CYC_A", "CYC_B", "SELF"])
        self.assertEqual(self.list_secrets(self.pid, expandSecretReferences="true", strictReferences="true").status,
                         422)
        # without expansion both read fine
        self.assertEqual(self.get_secret(self.pid, "CYC_A").json["secret"]["secretValue"], "${CYC_B}")

    def test_missing(self):
        self.set_secret(self.pid, "DANGLING", "${NOPE}")
        body = self.assertError(self.expanded("DANGLING"), 422, "ValidationFailure", "DANGLING", "NOPE")
        self.assertIn("does not exist", body["message"])
        self.set_secret(self.pid, "BAD_ENV", "${qa.KEY}")
        self.assertError(self.expanded("BAD_ENV"), 422, "ValidationFailure", "BAD_ENV", "qa")
        self.set_secret(self.pid, "BAD_FOLDER", "${dev.nowhere.KEY}")
        self.assertError(self.expanded("BAD_FOLDER"), 422, "ValidationFailure", "BAD_FOLDER", "nowhere")

    def test_depth_limit(self):
        def chain(prefix, hops):
            for i in range(hops):
                self.set_secret(self.pid, "%s%d" % (prefix, i), "${%s%d}" % (prefix, i + 1))
            self.set_secret(self.pid, "%s%d" % (prefix, hops), "end")
        chain("OK", 9)
        self.assertEqual(self.expanded("OK0").json["secret"]["secretValue"], "end")
        chain("DEEP", 12)
        r = self.expanded("DEEP0")
        self.assertError(r, 422, "ValidationFailure", "DEEP0")
        self.assertIn("10", r.json["message"], "the depth error should state the limit")


class DanglingReferences(IdentityHelpers, ServerTestCase):
    """One secret that cannot be expanded does not take its folder down: every other secret is answered, the broken
    one keeps its unexpanded value and is listed in brokenReferences; strictReferences=true refuses as before;
    permission and budget refusals stay refusals; a write of a dangling reference is accepted with a warning."""

    def setUp(self):
        super().setUp()
        self.pid = self.create_project()["id"]
        self.create_folder(self.pid, "dev", "app")
        self.create_folder(self.pid, "dev", "sub", "/app")
        self.set_secret(self.pid, "HOST", "db.local", path="/app")
        self.set_secret(self.pid, "URL", "pg://${HOST}/x", path="/app")
        self.set_secret(self.pid, "PLAIN", "plain", path="/app/sub")
        self.set_secret(self.pid, "VIA", "via ${dev.app.URL}", path="/app/sub")

    def break_one(self):
        """Adds BROKEN -> ${GONE} (and USES_BROKEN -> ${BROKEN}) to /app; returns the write's answer."""
        r = self.api("POST", "/api/v3/secrets/batch/raw", body={
            "workspaceId": self.pid, "environment": "dev", "secretPath": "/app",
            "secrets": [{"secretKey": "BROKEN", "secretValue": "x-${GONE}-y"},
                        {"secretKey": "USES_BROKEN", "secretValue": "[${BROKEN}]"}]})
        self.assertEqual(r.status, 200, r.body)
        return r.json

    def query(self, version, **extra):
        q = {"environment": "dev", "secretPath": "/app", "recursive": "true", "expandSecretReferences": "true"}
        q["workspaceId" if version == "v3" else "projectId"] = self.pid
        q.update(extra)
        return q

    def test_list_v3_and_v4_recursive(self):
        self.break_one()
        for version, url in (("v3", "/api/v3/secrets/raw"), ("v4", "/api/v4/secrets")):
            with self.subTest(version=version):
                r = self.api("GET", url, query=self.query(version))
                self.assertEqual(r.status, 200, r.body)
                got = {(x["secretPath"], x["secretKey"]): x["secretValue"] for x in r.json["secrets"]}
                self.assertEqual(got, {("/app", "HOST"): "db.local", ("/app", "URL"): "pg://db.local/x",
                                       ("/app", "BROKEN"): "x-${GONE}-y", ("/app", "USES_BROKEN"): "[${BROKEN}]",
                                       ("/app/sub", "PLAIN"): "plain", ("/app/sub", "VIA"): "via pg://db.local/x"})
                broken = {p["secretKey"]: p for p in r.json["brokenReferences"]}
                self.assertEqual(set(broken), {"BROKEN", "USES_BROKEN"})
                for key in ("BROKEN", "USES_BROKEN"):
                    # the reference that cannot be followed, also when it is met through another secret
                    p = broken[key]
                    self.assertEqual((p["secretPath"], p["environment"], p["reference"]), ("/app", "dev", "${GONE}"))
                    self.assertIn("secret 'BROKEN' references ${GONE}", p["reason"])
                    self.assertIn("'GONE'", p["reason"])
                    self.assertIn("does not exist", p["reason"])
                    self.assertNotIn("db.local", p["reason"])
                # strictReferences turns it into the refusal it was
                r = self.api("GET", url, query=self.query(version, strictReferences="true"))
                self.assertError(r, 422, "ValidationFailure", "GONE", "does not exist")
                # a folder without broken secrets answers an empty report; without expansion, none at all
                r = self.api("GET", url, query=self.query(version, secretPath="/app/sub", recursive="false"))
                self.assertEqual(r.json["brokenReferences"], [])
                r = self.api("GET", url, query=self.query(version, expandSecretReferences="false"))
                self.assertNotIn("brokenReferences", r.json)

    def test_missing_folder_environment_cycle_and_depth_are_reported_too(self):
        self.set_secret(self.pid, "NO_ENV", "${qa.KEY}", path="/app")
        self.set_secret(self.pid, "NO_FOLDER", "${dev.nowhere.KEY}", path="/app")
        self.set_secret(self.pid, "CYC", "${CYC}", path="/app")
        for i in range(12):
            self.set_secret(self.pid, "D%d" % i, "${D%d}" % (i + 1), path="/app")
        self.set_secret(self.pid, "D12", "end", path="/app")
        r = self.list_secrets(self.pid, path="/app", expandSecretReferences="true")
        self.assertEqual(r.status, 200, r.body)
        broken = {p["secretKey"]: p for p in r.json["brokenReferences"]}
        self.assertIn("NO_ENV", broken)
        self.assertIn("NO_FOLDER", broken)
        self.assertIn("cycle", broken["CYC"]["reason"])
        self.assertIn("D0", broken)
        self.assertIn("deeper", broken["D0"]["reason"])
        values = {x["secretKey"]: x["secretValue"] for x in r.json["secrets"]}
        self.assertEqual(values["URL"], "pg://db.local/x")
        self.assertEqual(values["D5"], "end", "a chain short enough still expands")

    def test_get_one_still_refuses(self):
        self.break_one()
        r = self.get_secret(self.pid, "BROKEN", path="/app", expandSecretReferences="true")
        self.assertError(r, 422, "ValidationFailure", "BROKEN", "GONE")
        r = self.get_secret(self.pid, "URL", path="/app", expandSecretReferences="true")
        self.assertEqual(r.json["secret"]["secretValue"], "pg://db.local/x")

    def test_imports(self):
        self.create_folder(self.pid, "prod", "shared")
        self.set_secret(self.pid, "SHARED_OK", "ok", env="prod", path="/shared")
        self.set_secret(self.pid, "SHARED_BROKEN", "${prod.nowhere.X}", env="prod", path="/shared")
        self.ok("POST", "/api/v2/secret-imports", body={"projectId": self.pid, "environment": "dev", "path": "/app",
                                                        "import": {"environment": "prod", "path": "/shared"}})
        r = self.api("GET", "/api/v4/secrets", query=self.query("v4", recursive="false"))
        self.assertEqual(r.status, 200, r.body)
        imported = {x["secretKey"]: x["secretValue"] for x in r.json["imports"][0]["secrets"]}
        self.assertEqual(imported, {"SHARED_OK": "ok", "SHARED_BROKEN": "${prod.nowhere.X}"})
        self.assertEqual([(p["environment"], p["secretPath"], p["secretKey"]) for p in r.json["brokenReferences"]],
                         [("prod", "/shared", "SHARED_BROKEN")])
        r = self.api("GET", "/api/v4/secrets", query=self.query("v4", recursive="false", strictReferences="true"))
        self.assertEqual(r.status, 422)

    def test_permission_refusals_stay_refusals(self):
        self.create_folder(self.pid, "dev", "private")
        self.set_secret(self.pid, "HIDDEN", "hidden-value", path="/private")
        reader = self.machine(self.pid, "member", rules=[
            {"actions": ["read", "create", "edit"], "environment": "dev", "secretPath": "/app"},
            {"actions": ["read", "create", "edit"], "environment": "dev", "secretPath": "/app/**"}])
        self.set_secret(self.pid, "PEEK", "${dev.private.HIDDEN}", path="/app")
        r = self.list_as(reader["token"], self.pid, path="/app", expandSecretReferences="true")
        self.assertEqual(r.status, 403, r.body)
        self.assertNotIn(b"hidden-value", r.body)
        # A reference to a place the reader may not read is a refusal whether or not the target exists, and the
        # write of one says nothing about it (no existence oracle).
        for i, target in enumerate(("${dev.private.HIDDEN}", "${dev.private.NOT_THERE}", "${prod.KEY}",
                                    "${qa.KEY}")):
            r = self.api("POST", "/api/v3/secrets/raw/PEEK%d" % i, token=reader["token"], body={
                "workspaceId": self.pid, "environment": "dev", "secretPath": "/app", "secretValue": target})
            self.assertEqual(r.status, 200, r.body)
            self.assertNotIn("brokenReferences", r.json, target)

    def test_budget_refusals_stay_refusals(self):
        big = "x" * 60000
        self.set_secret(self.pid, "BIG", big, path="/app")
        self.set_secret(self.pid, "DANGLES", "${NOPE}", path="/app")
        # 18 references to 60 kB each: 1.08 MB, over the 1 MiB limit of one expanded value: refused on write
        r = self.api("PATCH", "/api/v3/secrets/raw/HUGE", body={
            "workspaceId": self.pid, "environment": "dev", "secretPath": "/app", "secretValue": "${BIG}" * 18})
        self.assertError(r, 422, "ValidationFailure", "HUGE", "1048576")
        # a value stored under the limit whose target grows past it afterwards is refused at read time
        self.set_secret(self.pid, "HUGE", "${BIG}" * 17, path="/app")
        self.api("PATCH", "/api/v3/secrets/raw/BIG", body={
            "workspaceId": self.pid, "environment": "dev", "secretPath": "/app", "secretValue": "y" * 65000})
        r = self.list_secrets(self.pid, path="/app", expandSecretReferences="true")
        self.assertError(r, 422, "ValidationFailure", "HUGE", "1048576")

    def test_write_warns_but_accepts(self):
        answer = self.break_one()
        warned = {p["secretKey"]: p for p in answer["brokenReferences"]}
        self.assertEqual(set(warned), {"BROKEN"}, "USES_BROKEN names a secret of the same batch")
        self.assertEqual(warned["BROKEN"]["reference"], "${GONE}")
        self.assertEqual(warned["BROKEN"]["secretPath"], "/app")
        # single writes (v3 and v4) say it too; a good reference says nothing
        r = self.api("POST", "/api/v3/secrets/raw/ONE", body={
            "workspaceId": self.pid, "environment": "dev", "secretPath": "/app", "secretValue": "${dev.nowhere.K}"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["brokenReferences"][0]["reference"], "${dev.nowhere.K}")
        self.assertEqual(r.json["secret"]["secretValue"], "${dev.nowhere.K}")
        r = self.api("PATCH", "/api/v4/secrets/ONE", body={
            "projectId": self.pid, "environment": "dev", "secretPath": "/app", "secretValue": "${HOST}"})
        self.assertEqual(r.status, 200, r.body)
        self.assertNotIn("brokenReferences", r.json)


class Imports(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.pid = self.create_project()["id"]

    def test_imports(self):
        self.create_folder(self.pid, "prod", "shared")
        self.set_secret(self.pid, "SHARED_ONLY", "from-prod", env="prod", path="/shared")
        self.set_secret(self.pid, "BOTH", "imported", env="prod", path="/shared")
        self.set_secret(self.pid, "STAGING_ONLY", "from-staging", env="staging")
        self.set_secret(self.pid, "BOTH", "staging-both", env="staging")
        self.set_secret(self.pid, "BOTH", "local")
        r = self.ok("POST", "/api/v2/secret-imports", body={"projectId": self.pid, "environment": "dev", "path": "/",
                                                            "import": {"environment": "prod", "path": "/shared"}})
        imp = r["secretImport"]
        self.assertEqual(imp["importPath"], "/shared")
        self.assertEqual(imp["importEnv"]["slug"], "prod")
        self.ok("POST", "/api/v2/secret-imports", body={"projectId": self.pid, "environment": "dev",
                                                        "import": {"environment": "staging", "path": "/"}})
        listed = self.ok("GET", "/api/v2/secret-imports",
                         query={"projectId": self.pid, "environment": "dev", "path": "/"})["secretImports"]
        self.assertEqual([(i["importEnv"]["slug"], i["importPath"], i["position"]) for i in listed],
                         [("prod", "/shared", 1), ("staging", "/", 2)])

        for version, flag in (("v3", "include_imports"), ("v4", "includeImports")):
            with self.subTest(version=version):
                if version == "v3":
                    data = self.ok("GET", "/api/v3/secrets/raw", query={"workspaceId": self.pid, "environment": "dev",
                                                                        "secretPath": "/", flag: "true"})
                else:
                    data = self.ok("GET", "/api/v4/secrets", query={"projectId": self.pid, "environment": "dev",
                                                                    "secretPath": "/"})  # default true on v4
                self.assertEqual({s["secretKey"]: s["secretValue"] for s in data["secrets"]}, {"BOTH": "local"})
                imports = data.get("imports")
                self.assertIsInstance(imports, list)
                self.assertEqual([(i["environment"], i["secretPath"]) for i in imports],
                                 [("prod", "/shared"), ("staging", "/")])
                self.assertEqual({s["secretKey"]: s["secretValue"] for s in imports[0]["secrets"]},
                                 {"SHARED_ONLY": "from-prod", "BOTH": "imported"})
                self.assertTrue(imports[0].get("folderId"))
                # Client-side merge as the SDK and CLI do: local wins, then the earlier import.
                merged = {}
                for i in imports:
                    for s in i["secrets"]:
                        merged.setdefault(s["secretKey"], s["secretValue"])
                merged.update({s["secretKey"]: s["secretValue"] for s in data["secrets"]})
                self.assertEqual(merged, {"BOTH": "local", "SHARED_ONLY": "from-prod", "STAGING_ONLY": "from-staging"})
        data = self.ok("GET", "/api/v4/secrets", query={"projectId": self.pid, "environment": "dev", "secretPath": "/",
                                                        "includeImports": "false"})
        self.assertFalse(data.get("imports"))
        data = self.ok("GET", "/api/v4/secrets", query={"projectId": self.pid, "environment": "dev", "secretPath": "/",
                                                        "include_imports": "false"})
        self.assertFalse(data.get("imports"), "v4 accepts include_imports too")
        data = self.ok("GET", "/api/v3/secrets/raw", query={"workspaceId": self.pid, "environment": "dev"})
        self.assertFalse(data.get("imports"), "v3 lists imports only when asked")

        r = self.ok("DELETE", "/api/v2/secret-imports/" + imp["id"],
                    body={"projectId": self.pid, "environment": "dev", "path": "/"})
        self.assertEqual(r["secretImport"]["id"], imp["id"])
        listed = self.ok("GET", "/api/v2/secret-imports",
                         query={"projectId": self.pid, "environment": "dev", "path": "/"})["secretImports"]
        self.assertEqual([(i["importEnv"]["slug"], i["position"]) for i in listed], [("staging", 1)])
        r = self.api("DELETE", "/api/v2/secret-imports/" + imp["id"],
                     body={"projectId": self.pid, "environment": "dev", "path": "/"})
        self.assertError(r, 404, "NotFound")


class Batch(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.pid = self.create_project()["id"]
        self.base = {"workspaceId": self.pid, "environment": "dev", "secretPath": "/"}

    def batch(self, method, secrets, **extra):
        return self.api(method, "/api/v3/secrets/batch/raw", body=dict(self.base, secrets=secrets, **extra))

    def values(self):
        return {k: v for (_, k), v in self.secret_values(self.pid).items()}

    def test_create_update_delete(self):
        r = self.batch("POST", [{"secretKey": "B1", "secretValue": "1"}, {"secretKey": "B2", "secretValue": "2",
                                                                         "secretComment": "two"},
                                {"secretKey": "B3", "secretValue": "3"}])
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(sorted(s["secretKey"] for s in r.json["secrets"]), ["B1", "B2", "B3"])
        self.assertEqual(self.values(), {"B1": "1", "B2": "2", "B3": "3"})
        r = self.batch("PATCH", [{"secretKey": "B1", "secretValue": "1b"}, {"secretKey": "B2", "newSecretName": "B2R"}])
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.values(), {"B1": "1b", "B2R": "2", "B3": "3"})
        r = self.batch("PATCH", [{"secretKey": "B3", "secretValue": "3b"}, {"secretKey": "NEW", "secretValue": "n"}],
                       mode="upsert")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.values(), {"B1": "1b", "B2R": "2", "B3": "3b", "NEW": "n"})
        r = self.batch("DELETE", [{"secretKey": "B1"}, {"secretKey": "NEW"}])
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(sorted(s["secretKey"] for s in r.json["secrets"]), ["B1", "NEW"])
        self.assertEqual(self.values(), {"B2R": "2", "B3": "3b"})

    def test_all_or_nothing(self):
        self.set_secret(self.pid, "EXISTS", "old")
        before = self.snapshot(self.pid)
        cases = [
            ("POST", [{"secretKey": "N1", "secretValue": "1"}, {"secretKey": "EXISTS", "secretValue": "x"}],
             400, "EXISTS"),
            ("POST", [{"secretKey": "N1", "secretValue": "1"}, {"secretKey": "N1", "secretValue": "2"}], 400, "N1"),
            ("POST", [{"secretKey": "N1", "secretValue": "1"}, {"secretKey": "9BAD", "secretValue": "2"}],
             422, "9BAD"),
            ("POST", [{"secretKey": "N1", "secretValue": "1"}, {"secretKey": "N2", "secretValue": "v" * 70000}],
             413, "N2"),
            ("PATCH", [{"secretKey": "EXISTS", "secretValue": "new"}, {"secretKey": "ABSENT", "secretValue": "x"}],
             404, "ABSENT"),
            ("PATCH", [{"secretKey": "EXISTS", "secretValue": "new"}, {"secretKey": "EXISTS", "secretValue": "x"}],
             400, "EXISTS"),
            ("DELETE", [{"secretKey": "EXISTS"}, {"secretKey": "ABSENT"}], 404, "ABSENT"),
        ]
        for method, items, status, name in cases:
            with self.subTest(method=method, items=[i["secretKey"] for i in items]):
                r = self.batch(method, items)
                body = self.assertError(r, status, None)
                # the message (or, for 422, its details) names the offending item
                self.assertIn(name, body["message"] + json.dumps(body.get("details", "")),
                              "the error does not say which item is bad: %r" % body)
                self.assertEqual(self.snapshot(self.pid), before, "a failed batch wrote something")

    def test_large_batch(self):
        items = [{"secretKey": "K%04d" % i, "secretValue": "value-%d" % i} for i in range(300)]
        r = self.batch("POST", items)
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(len(r.json["secrets"]), 300)
        vals = self.values()
        self.assertEqual(len(vals), 300)
        self.assertEqual(vals["K0123"], "value-123")


class Tags(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.pid = self.create_project()["id"]

    def test_tags(self):
        t1 = self.ok("POST", "/api/v1/projects/%s/tags" % self.pid,
                     body={"slug": "database", "name": "Database", "color": "#ff0000"})["tag"]
        self.assertEqual((t1["slug"], t1["name"], t1["color"], t1["projectId"]), ("database", "Database", "#ff0000",
                                                                                  self.pid))
        t2 = self.ok("POST", "/api/v1/projects/%s/tags" % self.pid, body={"slug": "infra"})["tag"]
        self.assertTrue(t2["id"])
        tags = self.ok("GET", "/api/v1/projects/%s/tags" % self.pid)["workspaceTags"]
        self.assertEqual(sorted(t["slug"] for t in tags), ["database", "infra"])
        self.assertEqual(self.ok("GET", "/api/v1/projects/%s/tags/slug/database" % self.pid)["tag"]["id"], t1["id"])
        self.assertError(self.api("GET", "/api/v1/projects/%s/tags/slug/nope" % self.pid), 404, "NotFound", "nope")
        self.assertError(self.api("POST", "/api/v1/projects/%s/tags" % self.pid, body={"slug": "infra"}),
                         400, "BadRequest", "infra")

        s = self.set_secret(self.pid, "TAGGED", "v", tagIds=[t1["id"]])
        self.assertEqual([(t["id"], t["slug"], t["name"], t["color"]) for t in s["tags"]],
                         [(t1["id"], "database", "Database", "#ff0000")])
        self.set_secret(self.pid, "UNTAGGED", "v")
        s = self.update_secret(self.pid, "TAGGED", tagIds=[t2["id"]])
        self.assertEqual([t["slug"] for t in s["tags"]], ["infra"], "tagIds replaces the tags")
        s = self.update_secret(self.pid, "TAGGED", tagIds=[t1["id"], t2["id"]])
        self.assertEqual(sorted(t["slug"] for t in s["tags"]), ["database", "infra"])
        r = self.list_secrets(self.pid, tagSlugs="infra")
        self.assertEqual([x["secretKey"] for x in r.json["secrets"]], ["TAGGED"])
        r = self.list_secrets(self.pid)
        self.assertEqual(sorted(x["secretKey"] for x in r.json["secrets"]), ["TAGGED", "UNTAGGED"])
        # another project's tags are separate
        other = self.create_project()["id"]
        self.assertEqual(self.ok("GET", "/api/v1/projects/%s/tags" % other)["workspaceTags"], [])
        # a tag id the project does not have (another project's, or none at all) is refused, and
        # nothing is written
        for body, where in (({"tagIds": [t1["id"]]}, other), ({"tagIds": [t1["id"], "nope"]}, self.pid)):
            body.update({"workspaceId": where, "environment": "dev", "secretValue": "refused"})
            r = self.api("POST", "/api/v3/secrets/raw/REFUSED", body=body)
            self.assertError(r, 404, "NotFound", "not found in this project")
            self.assertEqual(self.get_secret(where, "REFUSED").status, 404)
        r = self.api("PATCH", "/api/v3/secrets/raw/TAGGED",
                     body={"workspaceId": self.pid, "environment": "dev", "tagIds": [5]})
        self.assertError(r, 400, "BadRequest", "tagIds: expected strings")
        self.assertEqual(self.get_secret(self.pid, "TAGGED").json["secret"]["version"], 3)


class Concurrency(ServerTestCase):
    """Several clients at once (the server runs a thread pool): no update is lost, versions stay dense."""

    def test_concurrent_updates_of_one_secret(self):
        import threading
        pid = self.create_project()["id"]
        s = self.set_secret(pid, "HOT", "v0")
        results = []
        lock = threading.Lock()

        def worker(w):
            for i in range(10):
                r = self.api("PATCH", "/api/v3/secrets/raw/HOT",
                             body={"workspaceId": pid, "environment": "dev", "secretValue": "w%d-%d" % (w, i)})
                with lock:
                    results.append((r.status, r.json.get("secret", {}).get("version") if r.json else None))

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = sorted(set(st for st, _ in results))
        self.assertTrue(set(statuses) <= {200, 409}, "unexpected statuses %r" % statuses)
        ok_versions = sorted(v for st, v in results if st == 200)
        self.assertEqual(len(ok_versions), len(set(ok_versions)), "two updates got the same version")
        final = self.get_secret(pid, "HOT").json["secret"]
        self.assertEqual(final["version"], 1 + len(ok_versions))
        hist = self.ok("GET", "/api/v1/secret/%s/secret-versions" % s["id"], query={"limit": "100"})["secretVersions"]
        self.assertEqual([h["version"] for h in hist], list(range(final["version"], 0, -1)))
        self.assertEqual(hist[0]["secretValue"], final["secretValue"])

    def test_concurrent_creates(self):
        import threading
        pid = self.create_project()["id"]
        errors = []

        def worker(w):
            for i in range(15):
                r = self.api("POST", "/api/v3/secrets/raw/C_%d_%d" % (w, i),
                             body={"workspaceId": pid, "environment": "dev", "secretValue": "%d-%d" % (w, i)})
                if r.status != 200:
                    errors.append((w, i, r.status, r.body[:200]))
                # and the same key from every worker: exactly one wins
                r = self.api("POST", "/api/v3/secrets/raw/SAME_%d" % i,
                             body={"workspaceId": pid, "environment": "dev", "secretValue": "w%d" % w})
                if r.status not in (200, 400, 409):
                    errors.append((w, i, r.status, r.body[:200]))

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        vals = {k: v for (_, k), v in self.secret_values(pid).items()}
        for w in range(4):
            for i in range(15):
                self.assertEqual(vals.get("C_%d_%d" % (w, i)), "%d-%d" % (w, i))
        for i in range(15):
            self.assertIn(vals.get("SAME_%d" % i), {"w0", "w1", "w2", "w3"})
            r = self.get_secret(pid, "SAME_%d" % i)
            self.assertEqual(r.json["secret"]["version"], 1)


class SharedWriteTransactions(unittest.TestCase):
    """Secret writes that arrive together run in one shared write transaction of a writer thread
    (docs/server.md "Shared write transactions"): every write keeps its own outcome and its own audit
    record, and the server says at its stop how many requests its shared transactions held."""

    def setUp(self):
        self.server = harness.Server()
        self.server.start()

    def tearDown(self):
        try:
            if self.server.alive():
                self.server.stop()
            report = self.server.sanitizer_report()
            self.assertIsNone(report, report)
        finally:
            self.server.cleanup()

    def ok(self, method, path, body):
        r = self.server.api(method, path, body=body)
        self.assertEqual(r.status, 200, r.body[:500])
        return r.json

    def test_writes_sent_together_each_keep_their_outcome(self):
        import re
        import threading
        pid = self.ok("POST", "/api/v2/workspace", {"projectName": unique("shared")})["project"]["id"]
        where = {"workspaceId": pid, "environment": "dev"}
        self.ok("POST", "/api/v3/secrets/raw/HOT", dict(where, secretValue="v0"))
        writers, rounds = 16, 8
        start = threading.Barrier(writers)
        results = []
        lock = threading.Lock()

        def worker(w):
            start.wait()
            for i in range(rounds):
                mine = self.server.api("POST", "/api/v3/secrets/raw/OWN_%d_%d" % (w, i),
                                       body=dict(where, secretValue="own-%d-%d" % (w, i)))
                hot = self.server.api("PATCH", "/api/v3/secrets/raw/HOT",
                                      body=dict(where, secretValue="w%d-%d" % (w, i)))
                # the same new key from every writer at once: exactly one create wins
                same = self.server.api("POST", "/api/v3/secrets/raw/SAME_%d" % i,
                                       body=dict(where, secretValue="w%d" % w))
                with lock:
                    results.append((mine.status, hot.status, same.status, same.body[:300]))

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(results), writers * rounds)
        self.assertEqual({r[0] for r in results}, {200}, "a create of a key of its own failed")
        self.assertEqual({r[1] for r in results}, {200}, "an update of the shared key failed")
        same_ok = sum(1 for r in results if r[2] == 200)
        self.assertEqual(same_ok, rounds, "not exactly one create of each SAME_ key won")
        for status, body in ((r[2], r[3]) for r in results if r[2] != 200):
            self.assertEqual(status, 400, body)
            self.assertIn(b"already exists", body)

        listed = self.server.api("GET", "/api/v3/secrets/raw", query=dict(where, secretPath="/"))
        self.assertEqual(listed.status, 200)
        values = {x["secretKey"]: x for x in listed.json["secrets"]}
        for w in range(writers):
            for i in range(rounds):
                self.assertEqual(values["OWN_%d_%d" % (w, i)]["secretValue"], "own-%d-%d" % (w, i))
        self.assertEqual(values["HOT"]["version"], 1 + writers * rounds, "an update of HOT was lost")
        self.assertEqual(len([k for k in values if k.startswith("SAME_")]), rounds)

        # each write has its own audit record, written once its transaction committed
        events = self.server.api("GET", "/api/v1/audit/events",
                                 query={"projectId": pid, "action": "secrets.update", "limit": 1000})
        self.assertEqual(events.status, 200, events.body[:300])
        self.assertEqual(len([e for e in events.json["events"] if e["result"] == "ok"]), writers * rounds)

        self.assertEqual(self.server.stop(), 0, self.server.stderr[-2000:])
        if harness.BACKEND == "postgres":
            # PostgreSQL has no shared transactions: every write ran in its own
            self.assertNotIn("shared write transactions:", self.server.stderr)
            return
        found = re.search(r"shared write transactions: (\d+) requests in (\d+)", self.server.stderr)
        self.assertTrue(found, "no count of shared write transactions in the log")
        requests, transactions = int(found.group(1)), int(found.group(2))
        self.assertGreaterEqual(requests, 3 * writers * rounds)
        self.assertLess(transactions, requests, "no two writes shared a transaction")


if __name__ == "__main__":
    unittest.main()
