"""The inventory (docs/api.md "Inventory", docs/cli.md "inventory").

One project with secrets in several environments and folders (one updated twice, one expiring, one with a
rotation reminder), a second project, and machine identities whose memberships cover the cases a reviewer
cares about: viewer everywhere, a rule narrowed to prod /backend/**, several read rules, write-only rules,
no-access. The test proves:

- every secret is listed once, in its environment and folder, with the right version, version count, last
  change, expiry and reminder, and the last read and reader from the audit log (unknown until read);
- the readers of each environment are exactly those a small model (written here from docs/api.md's roles and
  rules) predicts, with the globs that narrow them; no-access and write-only identities are not listed;
- an identity's token sees only the projects, environments and secrets it may read (cross-checked against
  the secrets API itself) and only itself among the readers;
- an administrator asking with identityId (coffer inventory --identity) sees exactly what that identity's own
  token sees (and only an administrator may ask);
- the CLI's table, JSON and CSV (RFC 4180 quoting of awkward names, --readers) say the same;
- bad input: unknown project 404, empty project 422, no token 401, bad --output / --readers usage exit 2;
- no secret value (canaries stored for the purpose) appears in any inventory output.
"""

import csv
import io
import json
import re
import uuid

import harness
from test_identities import IdentityHelpers

ALL = "/**"
ENVS = ("dev", "staging", "prod")
AWKWARD_PROJECT = 'Inv, "Quoted" Co\u00e9'
AWKWARD_IDENTITY = 'deploy, "ci"'
EXPIRES = "2027-01-31T12:00:00.000Z"

# name -> (role, rules); None: no membership in the main project
MEMBERS = {
    "viewer_all": ("viewer", None),
    "backend": ("viewer", [{"actions": ["read"], "environment": "prod", "secretPath": "/backend/**"}]),
    "multi": ("member", [{"actions": ["read"], "environment": "prod", "secretPath": "/frontend/**"},
                         {"actions": ["read", "edit"], "environment": "prod", "secretPath": "/backend/*"},
                         {"actions": ["read"], "environment": "prod", "secretPath": "/frontend/**"},
                         {"actions": ["read"], "environment": "staging"}]),
    "writer_only": ("member", [{"actions": ["create", "edit"]}]),
    "no_access": ("no-access", None),
    "outsider": None,
}

# (env, path, key): how many versions it gets
SECRETS = {
    ("prod", "/backend", "DB_PASSWORD"): 3,
    ("prod", "/backend/api", "API_KEY"): 1,
    ("prod", "/frontend", "CDN_TOKEN"): 1,
    ("prod", "/", "ROOT_KEY"): 1,
    ("dev", "/", "DEV_KEY"): 2,
    ("dev", "/backend", "DEV_DB"): 1,
}
FOLDERS = {"prod": ("backend", "/backend/api", "frontend"), "dev": ("backend",)}


def model_paths(member, env):
    """The globs docs/api.md says member may read under in env, or None when it reads nothing there."""
    spec = MEMBERS[member]
    if spec is None:
        return None
    role, rules = spec
    if role not in ("admin", "member", "viewer"):
        return None
    if not rules:
        return [ALL]
    globs = []
    for r in rules:
        if "read" not in r["actions"] or r.get("environment", env) != env:
            continue
        g = r.get("secretPath", ALL)
        if g == ALL:
            return [ALL]
        if g not in globs:
            globs.append(g)
    return globs or None


def glob_match(glob, path):
    """The model's matcher (segments; * one folder, ** any number)."""
    g = [p for p in glob.split("/") if p]
    p = [x for x in path.split("/") if x]

    def m(i, j):
        if i == len(g):
            return j == len(p)
        if g[i] == "**":
            return m(i + 1, j) or (j < len(p) and m(i, j + 1))
        return j < len(p) and (g[i] == "*" or g[i] == p[j]) and m(i + 1, j + 1)
    return m(0, 0)


def secrets_of(doc):
    """{(project slug, env, path, key): secret object} of an inventory answer."""
    out = {}
    for p in doc["projects"]:
        for e in p["environments"]:
            for s in e["secrets"]:
                k = (p["slug"], e["slug"], s["secretPath"], s["secretKey"])
                assert k not in out, "listed twice: %r" % (k,)
                out[k] = s
    return out


def readers_of(doc, slug):
    """{env: {identity name: (role, paths)}} of project slug in an inventory answer."""
    for p in doc["projects"]:
        if p["slug"] == slug:
            return {e["slug"]: {r["identityName"]: (r["role"], r["paths"]) for r in e["readers"]}
                    for e in p["environments"]}
    raise AssertionError("project %s not in the inventory" % slug)


class Inventory(IdentityHelpers, harness.ServerTestCase):
    seeded = False

    @classmethod
    def canary(cls):
        return "canary-%s" % uuid.uuid4().hex

    def setUp(self):
        super().setUp()
        cls = type(self)
        if cls.seeded:
            return
        cls.canaries = []
        proj = self.create_project(AWKWARD_PROJECT)
        cls.pid, cls.slug = proj["id"], proj["slug"]
        for env, folders in FOLDERS.items():
            for f in folders:
                parent, name = ("/backend", "api") if f == "/backend/api" else ("/", f)
                self.create_folder(cls.pid, env, name, parent)
        cls.updated = {}
        for (env, path, key), versions in SECRETS.items():
            extra = {}
            if key == "API_KEY":
                extra["expiresAt"] = EXPIRES
            if key == "DEV_KEY":
                extra["secretReminderRepeatDays"] = 30
            value = self.canary()
            cls.canaries.append(value)
            s = self.set_secret(cls.pid, key, value, env, path, **extra)
            for _ in range(versions - 1):
                value = self.canary()
                cls.canaries.append(value)
                s = self.update_secret(cls.pid, key, env, path, secretValue=value)
            cls.updated[(env, path, key)] = s
        # a secret that no longer exists is not listed
        self.set_secret(cls.pid, "GONE", self.canary(), "prod", "/")
        self.ok("DELETE", "/api/v3/secrets/raw/GONE",
                body={"workspaceId": cls.pid, "environment": "prod", "secretPath": "/"})
        other = self.create_project(harness.unique("other"))
        cls.other_pid, cls.other_slug = other["id"], other["slug"]
        value = self.canary()
        cls.canaries.append(value)
        self.set_secret(cls.other_pid, "OTHER_KEY", value, "prod", "/")
        cls.ids = {}
        for member, spec in MEMBERS.items():
            name = AWKWARD_IDENTITY if member == "backend" else harness.unique(member)
            if spec is None:
                m = self.machine(cls.other_pid, "viewer", None, name=name)
            else:
                m = self.machine(cls.pid, spec[0], spec[1], name=name)
            cls.ids[member] = m
        cls.seeded = True

    def inventory(self, token=..., **query):
        return self.api("GET", "/api/v1/inventory", query=query or None, token=token)

    def inventory_ok(self, token=..., **query):
        r = self.inventory(token, **query)
        self.assertEqual(r.status, 200, r.body[:600])
        return r.json

    def cli_ok(self, *args, token=...):
        rc, out, err = self.cli("inventory", *args, token=token)
        self.assertEqual(rc, 0, "coffer inventory %s -> %d\n%s%s" % (" ".join(args), rc, out, err))
        return out

    # ---- the secrets ----

    def test_secrets_versions_and_expiry(self):
        doc = self.inventory_ok(workspaceId=self.pid)
        self.assertTrue(doc["readersComplete"])
        self.assertEqual([p["id"] for p in doc["projects"]], [self.pid])
        proj = doc["projects"][0]
        self.assertEqual((proj["name"], proj["slug"]), (AWKWARD_PROJECT, self.slug))
        self.assertEqual([e["slug"] for e in proj["environments"]], list(ENVS))
        got = secrets_of(doc)
        want = {(self.slug,) + k for k in SECRETS}
        self.assertEqual(set(got), want)
        for (env, path, key), versions in SECRETS.items():
            s = got[(self.slug, env, path, key)]
            written = self.updated[(env, path, key)]
            with self.subTest(key=key):
                self.assertEqual(s["versionCount"], versions)
                self.assertEqual(s["version"], versions)
                self.assertEqual(s["secretId"], written["id"])
                self.assertEqual(s["lastChangedAt"], written["updatedAt"])
                self.assertEqual(s["createdAt"], written["createdAt"])
                # timestamps have millisecond resolution: two versions written within one millisecond share it
                if versions > 1:
                    self.assertGreaterEqual(s["lastChangedAt"], s["createdAt"])
                self.assertEqual(s["expiresAt"], EXPIRES if key == "API_KEY" else None)
                self.assertEqual(s["secretReminderRepeatDays"], 30 if key == "DEV_KEY" else None)
                # Other tests of this class read these secrets, in an order not fixed here: a read is either
                # unknown or a consistent record (test_last_read_from_the_audit_log checks it exactly).
                if s["lastReadKnown"]:
                    self.assertGreaterEqual(s["lastReadAt"], s["createdAt"])
                    self.assertIn(s["lastReadBy"]["kind"], ("admin", "identity"))
                else:
                    self.assertIsNone(s["lastReadAt"])
                    self.assertIsNone(s["lastReadBy"])
                self.assertNotIn("secretValue", s)
        # the same by slug and through projectId
        self.assertEqual(secrets_of(self.inventory_ok(projectId=self.slug)).keys(), got.keys())

    def test_last_read_from_the_audit_log(self):
        proj = self.create_project(harness.unique("lastread"))
        self.set_secret(proj["id"], "READ_ME", "v")
        self.set_secret(proj["id"], "NEVER_READ", "v", "prod")
        def state():
            got = secrets_of(self.inventory_ok(workspaceId=proj["id"]))
            return {k[3]: got[k] for k in got}
        before = state()
        self.assertIs(before["READ_ME"]["lastReadKnown"], False)
        self.assertIsNone(before["READ_ME"]["lastReadAt"])
        m = self.machine(proj["id"], "viewer", None, name=harness.unique("reader"))
        r = self.api("GET", "/api/v3/secrets/raw/READ_ME", query={"workspaceId": proj["id"], "environment": "dev"},
                     token=m["token"])
        self.assertEqual(r.status, 200)
        after = state()
        self.assertIs(after["READ_ME"]["lastReadKnown"], True)
        self.assertEqual(after["READ_ME"]["lastReadBy"], {"kind": "identity", "id": m["id"], "name": m["name"]})
        self.assertGreaterEqual(after["READ_ME"]["lastReadAt"], after["READ_ME"]["createdAt"])
        self.assertIs(after["NEVER_READ"]["lastReadKnown"], False)
        # The identity reads the prod secret too; then an admin list of dev is READ_ME's newest read.
        self.assertEqual(self.api("GET", "/api/v3/secrets/raw/NEVER_READ",
                                  query={"workspaceId": proj["id"], "environment": "prod"},
                                  token=m["token"]).status, 200)
        self.ok("GET", "/api/v3/secrets/raw", query={"workspaceId": proj["id"], "environment": "dev",
                                                     "secretPath": "/"})
        last = state()
        self.assertEqual(last["READ_ME"]["lastReadBy"]["kind"], "admin")
        self.assertEqual(last["NEVER_READ"]["lastReadBy"]["name"], m["name"])
        out = self.cli_ok("--projectId", proj["id"])
        self.assertRegex(out, r"READ_ME .*\d{4}-\d\d-\d\dT\S+ by admin")

    def test_last_read_of_a_list_stored_as_a_key_set(self):
        """A list's event refers to its key names stored once (docs/audit.md "How events are stored"): every secret
        of the list still has the list as its last read."""
        proj = self.create_project(harness.unique("keyset"))
        keys = ["LISTED_SECRET_%02d" % i for i in range(20)]
        for k in keys:
            self.set_secret(proj["id"], k, "v")
        m = self.machine(proj["id"], "viewer", None, name=harness.unique("lister"))
        r = self.api("GET", "/api/v3/secrets/raw", query={"workspaceId": proj["id"], "environment": "dev",
                                                          "secretPath": "/"}, token=m["token"])
        self.assertEqual(r.status, 200)
        got = secrets_of(self.inventory_ok(workspaceId=proj["id"]))
        read = {k[3]: got[k]["lastReadBy"] for k in got}
        self.assertEqual(read, {k: {"kind": "identity", "id": m["id"], "name": m["name"]} for k in keys})
        # (prefixed: psql prints a row of one empty text as an empty line, which reads as no row)
        rows = harness.sql(self.server.data_dir, "SELECT 'keys=' || COALESCE(c.keys, '') FROM audit_events e "
                           "JOIN audit_contexts c ON c.id = e.context WHERE c.key_set <> 0 AND c.project_id = '%s' "
                           "AND c.action = 'secrets.list'" % proj["id"])
        self.assertEqual([row[0] for row in rows], ["keys="], "the list's event refers to a key set")

    def test_each_update_counts_a_version(self):
        where = (self.slug, "staging", "/", "COUNTED")
        self.set_secret(self.pid, "COUNTED", "v1", "staging", "/")
        try:
            first = secrets_of(self.inventory_ok(workspaceId=self.pid))[where]
            self.assertEqual((first["version"], first["versionCount"]), (1, 1))
            for n in (2, 3, 4):
                written = self.update_secret(self.pid, "COUNTED", "staging", "/", secretValue="v%d" % n)
                now = secrets_of(self.inventory_ok(workspaceId=self.pid))[where]
                self.assertEqual((now["version"], now["versionCount"]), (n, n))
                self.assertEqual(now["lastChangedAt"], written["updatedAt"])
                self.assertEqual(now["createdAt"], first["createdAt"])
            # a rename is a new version too, under the new key
            self.update_secret(self.pid, "COUNTED", "staging", "/", newSecretName="COUNTED_RENAMED")
            got = secrets_of(self.inventory_ok(workspaceId=self.pid))
            self.assertNotIn(where, got)
            self.assertEqual(got[(self.slug, "staging", "/", "COUNTED_RENAMED")]["versionCount"], 5)
        finally:
            for key in ("COUNTED", "COUNTED_RENAMED"):
                self.api("DELETE", "/api/v3/secrets/raw/" + key,
                         body={"workspaceId": self.pid, "environment": "staging", "secretPath": "/"})
        self.assertNotIn("COUNTED_RENAMED", json.dumps(self.inventory_ok(workspaceId=self.pid)))

    def test_admin_sees_every_project(self):
        doc = self.inventory_ok()
        slugs = [p["slug"] for p in doc["projects"]]
        self.assertIn(self.slug, slugs)
        self.assertIn(self.other_slug, slugs)
        self.assertIn((self.other_slug, "prod", "/", "OTHER_KEY"), secrets_of(doc))

    # ---- readers ----

    def test_readers_follow_roles_and_rules(self):
        readers = readers_of(self.inventory_ok(workspaceId=self.pid), self.slug)
        self.assertEqual(set(readers), set(ENVS))
        for env in ENVS:
            want = {}
            for member, m in self.ids.items():
                paths = model_paths(member, env)
                if paths:
                    want[m["name"]] = (MEMBERS[member][0], paths)
            with self.subTest(env=env):
                self.assertEqual(readers[env], want)
        # spelled out, so that a wrong model cannot pass silently
        self.assertEqual(readers["prod"][AWKWARD_IDENTITY], ("viewer", ["/backend/**"]))
        self.assertEqual(readers["prod"][self.ids["multi"]["name"]], ("member", ["/frontend/**", "/backend/*"]))
        self.assertEqual(readers["staging"][self.ids["multi"]["name"]], ("member", [ALL]))
        self.assertNotIn(AWKWARD_IDENTITY, readers["dev"])
        for env in ENVS:
            for member in ("no_access", "writer_only", "outsider"):
                self.assertNotIn(self.ids[member]["name"], readers[env])
            self.assertEqual(readers[env][self.ids["viewer_all"]["name"]], ("viewer", [ALL]))
        ids = {r["identityId"] for p in self.inventory_ok(workspaceId=self.pid)["projects"]
               for e in p["environments"] for r in e["readers"]}
        self.assertIn(self.ids["backend"]["id"], ids)

    def test_membership_change_shows_at_once(self):
        m = self.machine(self.pid, "viewer", [{"actions": ["read"], "environment": "dev", "secretPath": "/x/*"}])
        try:
            readers = readers_of(self.inventory_ok(workspaceId=self.pid), self.slug)
            self.assertEqual(readers["dev"][m["name"]], ("viewer", ["/x/*"]))
            self.add_member(self.pid, m["id"], "no-access")
            readers = readers_of(self.inventory_ok(workspaceId=self.pid), self.slug)
            self.assertNotIn(m["name"], readers["dev"])
        finally:
            self.api("DELETE", "/api/v1/identities/" + m["id"])

    # ---- an identity's own view ----

    def readable(self, token, env, path, key):
        r = self.get_as(token, self.pid, key, env, path)
        self.assertIn(r.status, (200, 403), r.body[:300])
        return r.status == 200

    def test_identity_sees_what_it_may_read(self):
        for member in ("viewer_all", "backend", "multi"):
            m = self.ids[member]
            with self.subTest(member=member):
                doc = self.inventory_ok(token=m["token"])
                self.assertIs(doc["readersComplete"], False)
                self.assertEqual([p["id"] for p in doc["projects"]], [self.pid])
                envs = [e["slug"] for e in doc["projects"][0]["environments"]]
                self.assertEqual(envs, [e for e in ENVS if model_paths(member, e)])
                got = set(secrets_of(doc))
                for (env, path, key) in SECRETS:
                    paths = model_paths(member, env) or []
                    want = any(glob_match(g, path) for g in paths)
                    # the model and the server's own read decision agree with the listing
                    self.assertEqual(self.readable(m["token"], env, path, key), want, (env, path, key))
                    self.assertEqual((self.slug, env, path, key) in got, want, (env, path, key))
                for e in doc["projects"][0]["environments"]:
                    self.assertEqual([r["identityId"] for r in e["readers"]], [m["id"]])
                    self.assertEqual(e["readers"][0]["paths"], model_paths(member, e["slug"]))
                self.assertEqual(secrets_of(self.inventory_ok(token=m["token"], workspaceId=self.pid)).keys(),
                                 got)
        backend = secrets_of(self.inventory_ok(token=self.ids["backend"]["token"]))
        self.assertEqual(set(backend), {(self.slug, "prod", "/backend", "DB_PASSWORD"),
                                        (self.slug, "prod", "/backend/api", "API_KEY")})

    def test_identity_outside_a_project(self):
        outsider = self.ids["outsider"]["token"]
        r = self.inventory(token=outsider, workspaceId=self.pid)
        self.assertError(r, 404, "NotFound", self.pid)
        doc = self.inventory_ok(token=outsider)
        self.assertEqual([p["id"] for p in doc["projects"]], [self.other_pid])
        self.assertEqual(set(secrets_of(doc)), {(self.other_slug, "prod", "/", "OTHER_KEY")})
        # the admin's answer for an unknown project is the same 404
        self.assertError(self.inventory(workspaceId="no-such-project"), 404, "NotFound", "no-such-project")

    def test_identity_that_reads_nothing(self):
        for member in ("no_access", "writer_only"):
            tok = self.ids[member]["token"]
            with self.subTest(member=member):
                self.assertEqual(self.inventory_ok(token=tok)["projects"], [])
                r = self.inventory(token=tok, workspaceId=self.pid)
                self.assertError(r, 403, "PermissionDenied", self.ids[member]["name"], self.slug)

    def test_admin_sees_what_an_identity_can_read(self):
        # identityId: the administrator's view of an identity is exactly what its own token sees
        for member in MEMBERS:
            m = self.ids[member]
            with self.subTest(member=member):
                own = self.inventory_ok(token=m["token"])
                seen = self.inventory_ok(identityId=m["id"])
                self.assertIs(seen["readersComplete"], False)
                self.assertEqual(seen["accessGrants"], [])
                self.assertEqual(seen["projects"], own["projects"])
                if member in ("viewer_all", "backend", "multi"):
                    self.assertTrue(secrets_of(seen))
                    scoped = self.inventory_ok(identityId=m["id"], workspaceId=self.slug)
                    self.assertEqual(scoped["projects"], self.inventory_ok(token=m["token"],
                                                                           workspaceId=self.pid)["projects"])
        self.assertEqual(set(secrets_of(self.inventory_ok(identityId=self.ids["backend"]["id"]))),
                         {(self.slug, "prod", "/backend", "DB_PASSWORD"),
                          (self.slug, "prod", "/backend/api", "API_KEY")})
        # a project the identity is not a member of: the 404 its own token would get
        r = self.inventory(identityId=self.ids["outsider"]["id"], workspaceId=self.pid)
        self.assertError(r, 404, "NotFound", self.pid)
        r = self.inventory(identityId=self.ids["writer_only"]["id"], workspaceId=self.pid)
        self.assertError(r, 403, "PermissionDenied", self.ids["writer_only"]["name"])
        # bad input: an unknown or empty identity; only administrators may ask
        self.assertError(self.inventory(identityId="0c3e8f7a-0000-4000-8000-000000000000"), 404, "NotFound",
                         "Identity with ID")
        self.assertError(self.inventory(identityId=""), 422, "ValidationFailure", "identityId")
        for member in ("viewer_all", "backend"):
            r = self.inventory(token=self.ids[member]["token"], identityId=self.ids[member]["id"])
            self.assertError(r, 403, "PermissionDenied")

    # ---- bad input ----

    def test_bad_input(self):
        self.assertError(self.inventory(workspaceId="0c3e8f7a-0000-4000-8000-000000000000"), 404, "NotFound")
        self.assertError(self.inventory(workspaceId=""), 422, "ValidationFailure", "workspaceId")
        self.assertEqual(self.inventory(token=None).status, 401)
        self.assertEqual(self.inventory(token="not-a-token").status, 401)
        self.assertEqual(self.api("POST", "/api/v1/inventory").status, 405)
        rc, out, err = self.cli("inventory", "--projectId", "no-such-project")
        self.assertEqual(rc, 1)
        self.assertIn("no-such-project", err)
        self.assertIn("404", err)
        for args, words in ((("--output", "xml"), "csv"), (("--output", "json", "--readers"), "--readers"),
                            (("--projectId", ""), "--projectId"), (("extra",), "extra"),
                            (("--nope",), "--nope")):
            rc, out, err = self.cli("inventory", *args)
            self.assertEqual(rc, 2, (args, out, err))
            self.assertIn(words, err)
            self.assertEqual(out, "")
        rc, out, _ = self.cli("inventory", "--help")
        self.assertEqual(rc, 0)
        self.assertIn("--readers", out)

    # ---- the CLI ----

    def test_cli_table(self):
        out = self.cli_ok("--projectId", self.pid)
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["PROJECT", "ENV", "PATH", "KEY", "VERSIONS", "LAST-CHANGED", "EXPIRES",
                                            "LAST-READ", "SYNCED-TO", "LEAKED"])
        rows = {}
        for line in lines[1:]:
            if not line.strip():
                break
            cells = line.split()
            rows[(cells[1], cells[2], cells[3])] = cells
        self.assertEqual(set(rows), set(SECRETS))
        db = rows[("prod", "/backend", "DB_PASSWORD")]
        self.assertEqual(db[0], self.slug)
        self.assertEqual(db[4], "3")
        self.assertEqual(db[5], self.updated[("prod", "/backend", "DB_PASSWORD")]["updatedAt"])
        self.assertEqual(db[6], "-")
        self.assertTrue(db[7] == "unknown" or (re.match(r"\d{4}-\d\d-\d\dT", db[7]) and db[8] == "by"), db)
        self.assertEqual(rows[("prod", "/backend/api", "API_KEY")][6], EXPIRES)
        # readers blocks, one per environment
        text = out[out.index("\nreaders of"):]
        blocks = {}
        for block in text.split("\nreaders of ")[1:]:
            head, _, body = block.partition(":\n")
            blocks[head] = body
        self.assertEqual(set(blocks), {"%s/%s" % (self.slug, e) for e in ENVS})
        prod = blocks[self.slug + "/prod"]
        self.assertIn(AWKWARD_IDENTITY, prod)
        self.assertRegex(prod, r"viewer\s+/backend/\*\*")
        self.assertIn("/frontend/**, /backend/*", prod)
        self.assertNotIn(AWKWARD_IDENTITY, blocks[self.slug + "/dev"])
        for member in ("no_access", "writer_only", "outsider"):
            self.assertNotIn(self.ids[member]["name"], out)
        # --readers: the blocks alone
        only = self.cli_ok("--projectId", self.pid, "--readers")
        self.assertTrue(only.startswith("readers of "), only[:200])
        self.assertNotIn("DB_PASSWORD", only)
        # an identity is told the readers are its own only
        mine = self.cli_ok(token=self.ids["backend"]["token"])
        self.assertIn("only this token's own identity", mine)
        self.assertIn("DB_PASSWORD", mine)
        self.assertNotIn("CDN_TOKEN", mine)

    def test_cli_json_is_the_api_answer(self):
        out = self.cli_ok("--projectId", self.pid, "--output", "json")
        doc = json.loads(out)
        api = self.inventory_ok(workspaceId=self.pid)
        doc.pop("generatedAt")
        api.pop("generatedAt")
        self.assertEqual(doc, api)

    def test_cli_identity(self):
        backend = self.ids["backend"]
        doc = json.loads(self.cli_ok("--identity", backend["id"], "--output", "json"))
        self.assertEqual(doc["projects"], self.inventory_ok(token=backend["token"])["projects"])
        out = self.cli_ok("--identity", backend["id"], "--projectId", self.slug)
        keys = {line.split()[3] for line in out.splitlines()[1:] if line.startswith(self.slug + " ")}
        self.assertEqual(keys, {"DB_PASSWORD", "API_KEY"})
        rc, out, err = self.cli("inventory", "--identity", "")
        self.assertEqual((rc, out), (2, ""), err)
        self.assertIn("--identity", err)
        rc, out, err = self.cli("inventory", "--identity", "0c3e8f7a-0000-4000-8000-000000000000")
        self.assertEqual((rc, out), (1, ""), err)
        self.assertIn("404", err)
        rc, out, err = self.cli("inventory", "--identity", backend["id"], token=backend["token"])
        self.assertEqual((rc, out), (1, ""), err)
        self.assertIn("403", err)

    def test_cli_csv(self):
        out = self.cli_ok("--projectId", self.pid, "--output", "csv")
        # RFC 4180: the awkward project name quoted, its quotes doubled
        self.assertIn('"Inv, ""Quoted"" Co\u00e9"', out)
        rows = list(csv.reader(io.StringIO(out, newline="")))
        self.assertEqual(rows[0], ["project", "projectName", "environment", "path", "key", "version", "versionCount",
                                   "createdAt", "lastChangedAt", "expiresAt", "secretReminderRepeatDays",
                                   "lastReadAt", "lastReadBy", "syncedTo", "leakedAt", "leakSource"])
        body = {(r[2], r[3], r[4]): dict(zip(rows[0], r)) for r in rows[1:]}
        self.assertEqual(len(body), len(rows) - 1)
        self.assertEqual(set(body), set(SECRETS))
        db = body[("prod", "/backend", "DB_PASSWORD")]
        self.assertEqual((db["project"], db["projectName"], db["version"], db["versionCount"]),
                         (self.slug, AWKWARD_PROJECT, "3", "3"))
        self.assertEqual(db["expiresAt"], "")
        self.assertTrue((db["lastReadAt"], db["lastReadBy"]) == ("unknown", "unknown") or
                        re.match(r"\d{4}-\d\d-\d\dT", db["lastReadAt"]), db)
        self.assertEqual(body[("prod", "/backend/api", "API_KEY")]["expiresAt"], EXPIRES)
        self.assertEqual(body[("dev", "/", "DEV_KEY")]["secretReminderRepeatDays"], "30")
        self.assertEqual(body[("dev", "/", "DEV_KEY")]["versionCount"], "2")

        out = self.cli_ok("--projectId", self.pid, "--output", "csv", "--readers")
        self.assertIn('"deploy, ""ci"""', out)
        rows = list(csv.reader(io.StringIO(out, newline="")))
        self.assertEqual(rows[0], ["project", "projectName", "environment", "identityId", "identityName", "role",
                                   "path"])
        got = sorted((r[2], r[4], r[5], r[6]) for r in rows[1:])
        want = sorted((env, m["name"], MEMBERS[member][0], g) for member, m in self.ids.items() for env in ENVS
                      for g in (model_paths(member, env) or []))
        self.assertEqual(got, want)
        self.assertIn(("prod", AWKWARD_IDENTITY, "viewer", "/backend/**"), got)

    # ---- no values, anywhere ----

    def test_no_secret_value_in_any_output(self):
        canaries = list(type(self).canaries)
        self.assertGreater(len(canaries), len(SECRETS))
        # the canaries are real: the admin reads the current one through the secrets API
        r = self.get_secret(self.pid, "DB_PASSWORD", "prod", "/backend")
        self.assertEqual(r.status, 200)
        self.assertIn(r.json["secret"]["secretValue"], canaries)
        outputs = []
        for query in ({}, {"workspaceId": self.pid}, {"workspaceId": self.other_pid}):
            outputs.append(self.inventory(**query).body.decode())
        for member in ("viewer_all", "backend", "outsider"):
            outputs.append(self.inventory(token=self.ids[member]["token"]).body.decode())
        for args in ((), ("--output", "json"), ("--output", "csv"), ("--output", "csv", "--readers"),
                     ("--readers",), ("--projectId", self.pid)):
            rc, out, err = self.cli("inventory", *args)
            self.assertEqual(rc, 0, err)
            outputs.append(out + err)
        outputs.append(self.server.stderr + self.server.stdout)
        for text in outputs:
            for c in canaries:
                self.assertNotIn(c, text, "a secret value appears in the inventory output")
        # and the outputs are not empty shells: they list the secrets
        self.assertIn("DB_PASSWORD", outputs[0])
        self.assertIn("OTHER_KEY", outputs[0])


class ReadsRecorded(IdentityHelpers, harness.ServerTestCase):
    """Every secret whose value leaves the server is recorded in the audit log against its own place
    (environment, folder path, key), in full, and so counts as read in the inventory: a value read only through
    a reference or an import, every folder of a recursive list, and key lists far over 4,096 bytes."""

    def setUp(self):
        super().setUp()
        self.pid = self.create_project(harness.unique("reads"))["id"]
        self.reader = self.machine(self.pid, "viewer", None, name=harness.unique("reader"))

    def last_reads(self):
        """{(env, path, key): lastReadBy or None when never read} of the project, as the admin sees it."""
        doc = self.ok("GET", "/api/v1/inventory", query={"workspaceId": self.pid})
        return {(e["slug"], s["secretPath"], s["secretKey"]): s["lastReadBy"] if s["lastReadKnown"] else None
                for p in doc["projects"] for e in p["environments"] for s in e["secrets"]}

    def events_of(self, r):
        """The audit events of response r's request: {(environment, secretPath): [keys]}."""
        rid = r.headers.get("X-Request-Id")
        doc = self.ok("GET", "/api/v1/audit/events", query={"projectId": self.pid, "limit": "1000"})
        out = {}
        for e in doc["events"]:
            if e["requestId"] == rid:
                self.assertEqual(e["result"], "ok", e)
                out.setdefault((e["environment"], e["secretPath"]), []).extend(e["keys"])
        return out

    def by_reader(self):
        return {"kind": "identity", "id": self.reader["id"], "name": self.reader["name"]}

    def test_a_value_read_through_a_reference_is_recorded_where_it_lives(self):
        self.create_folder(self.pid, "prod", "vault")
        self.set_secret(self.pid, "TARGET", "target-value", "prod", "/vault")
        self.set_secret(self.pid, "LOCAL", "local-value")
        self.set_secret(self.pid, "REF", "a=${prod.vault.TARGET} b=${LOCAL}")
        self.set_secret(self.pid, "UNREAD", "unread-value")
        r = self.get_as(self.reader["token"], self.pid, "REF", expandSecretReferences="true")
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(r.json["secret"]["secretValue"], "a=target-value b=local-value")
        reads = self.last_reads()
        self.assertEqual(reads[("prod", "/vault", "TARGET")], self.by_reader())
        self.assertEqual(reads[("dev", "/", "LOCAL")], self.by_reader())
        self.assertEqual(reads[("dev", "/", "REF")], self.by_reader())
        self.assertIsNone(reads[("dev", "/", "UNREAD")])
        events = self.events_of(r)
        self.assertEqual(sorted(events[("prod", "/vault")]), ["TARGET"])
        self.assertEqual(sorted(events[("dev", "/")]), ["LOCAL", "REF"])
        # a list with expansion records the referenced secret too
        self.set_secret(self.pid, "TARGET2", "t2", "prod", "/vault")
        self.create_folder(self.pid, "staging", "app")
        self.set_secret(self.pid, "REF2", "${prod.vault.TARGET2}", "staging", "/app")
        r = self.list_as(self.reader["token"], self.pid, "staging", "/app", expandSecretReferences="true")
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(self.last_reads()[("prod", "/vault", "TARGET2")], self.by_reader())
        self.assertEqual(self.events_of(r)[("prod", "/vault")], ["TARGET2"])

    def test_a_value_read_through_an_import_is_recorded_where_it_lives(self):
        self.create_folder(self.pid, "dev", "app")
        self.create_folder(self.pid, "staging", "shared")
        self.set_secret(self.pid, "IMPORTED_A", "a", "staging", "/shared")
        self.set_secret(self.pid, "IMPORTED_B", "b", "staging", "/shared")
        self.set_secret(self.pid, "OWN", "own", "dev", "/app")
        self.ok("POST", "/api/v2/secret-imports", body={"projectId": self.pid, "environment": "dev", "path": "/app",
                                                        "import": {"environment": "staging", "path": "/shared"}})
        # one secret through the import: that one is read, not its neighbours
        r = self.get_as(self.reader["token"], self.pid, "IMPORTED_A", "dev", "/app", include_imports="true")
        self.assertEqual(r.status, 200, r.body[:300])
        reads = self.last_reads()
        self.assertEqual(reads[("staging", "/shared", "IMPORTED_A")], self.by_reader())
        self.assertIsNone(reads[("staging", "/shared", "IMPORTED_B")])
        # the request's own event names the folder asked for (nothing read there), the next where it was read
        self.assertEqual(self.events_of(r), {("dev", "/app"): [], ("staging", "/shared"): ["IMPORTED_A"]})
        # a list with imports: every imported secret, where it lives
        r = self.list_as(self.reader["token"], self.pid, "dev", "/app", include_imports="true")
        self.assertEqual(r.status, 200, r.body[:300])
        reads = self.last_reads()
        for key in ("IMPORTED_A", "IMPORTED_B"):
            self.assertEqual(reads[("staging", "/shared", key)], self.by_reader(), key)
        self.assertEqual(reads[("dev", "/app", "OWN")], self.by_reader())
        events = self.events_of(r)
        self.assertEqual(events[("dev", "/app")], ["OWN"])
        self.assertEqual(sorted(events[("staging", "/shared")]), ["IMPORTED_A", "IMPORTED_B"])

    def test_a_recursive_list_records_each_folder(self):
        self.create_folder(self.pid, "dev", "a")
        self.create_folder(self.pid, "dev", "b", "/a")
        self.set_secret(self.pid, "TOP", "1")
        self.set_secret(self.pid, "MID", "2", "dev", "/a")
        self.set_secret(self.pid, "LOW", "3", "dev", "/a/b")
        r = self.list_as(self.reader["token"], self.pid, "dev", "/", recursive="true")
        self.assertEqual(r.status, 200, r.body[:300])
        reads = self.last_reads()
        for where in (("dev", "/", "TOP"), ("dev", "/a", "MID"), ("dev", "/a/b", "LOW")):
            self.assertEqual(reads[where], self.by_reader(), where)
        self.assertEqual(self.events_of(r), {("dev", "/"): ["TOP"], ("dev", "/a"): ["MID"], ("dev", "/a/b"): ["LOW"]})

    def test_long_key_lists_are_recorded_in_full(self):
        self.create_folder(self.pid, "dev", "many")
        keys = ["K%02d_" % i + "X" * 96 for i in range(60)]  # 60 keys of 100 characters: 6,059 bytes
        self.ok("POST", "/api/v3/secrets/batch/raw", body={
            "workspaceId": self.pid, "environment": "dev", "secretPath": "/many",
            "secrets": [{"secretKey": k, "secretValue": "v"} for k in keys]})
        r = self.list_as(self.reader["token"], self.pid, "dev", "/many")
        self.assertEqual(r.status, 200, r.body[:300])
        events = self.events_of(r)
        self.assertEqual(list(events), [("dev", "/many")])
        self.assertEqual(sorted(events[("dev", "/many")]), sorted(keys))
        reads = self.last_reads()
        for k in keys:
            self.assertEqual(reads[("dev", "/many", k)], self.by_reader(), k)
        # the batch write that made them is recorded in full as well
        doc = self.ok("GET", "/api/v1/audit/events", query={"projectId": self.pid, "action": "secrets.create"})
        written = [k for e in doc["events"] if e["secretPath"] == "/many" for k in e["keys"]]
        self.assertEqual(sorted(written), sorted(keys))
        # the events of one request are links of the one chain, like any other
        report = self.ok("POST", "/api/v1/audit/verify")
        self.assertIs(report["ok"], True, report)


if __name__ == "__main__":
    import unittest
    unittest.main()
