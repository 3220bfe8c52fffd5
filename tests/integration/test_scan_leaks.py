"""Marking leaked secrets (docs/scan.md "Marking leaked secrets"): `coffer scan --known --mark-leaked
[--rotate-leaked]` and POST /api/v1/secrets/leaked, the real CLI against a real server.

- a secret's value planted in a file: the scan (exit 1) marks it, saying so per secret and as each finding's
  action (JSON and SARIF); the inventory (API, `?leaked=true`, `coffer inventory --leaked`, CSV) shows it leaked
  with where it was found; one `secret.leaked` audit event naming the place and the source; one notice on a
  webhook channel (event coffer.leak); no value in any of them; a second scan changes nothing and tells no one
  again; a new version of the secret clears the mark; `scan git` names the commit as the source; a path over
  the server's 512 bytes keeps its end;
- --rotate-leaked with no rotation configured says so per secret (still marked, exit 1); with an Entra ID
  client-secret rotation (tests/fakes/azure.py) it runs the rotation, which writes a new version (the mark is
  then cleared); a reader who may not run rotations still marks, the rotation refused (exit 2 from the CLI);
- refusals: a caller who cannot read the secret (403), a secret deleted or a membership removed between the
  scan's fetch and its mark (reported per secret, exit 2), and bad bodies (4xx naming the field).

Runs on both stores (the marks are a table of each).
"""

import csv
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import uuid

import harness
from test_identities import IdentityHelpers
from test_notifications import Receiver
from test_rotations import EntraApp, RotationHelpers
from test_syncs import WithFakes


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


class LeakHelpers:
    def make_dir(self):
        d = tempfile.mkdtemp(prefix="coffer-scan-leaks-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def scan(self, *args, token=..., want_rc=1):
        rc, out, err = harness.run(["scan", "--known", "--mark-leaked", "--output", "json"] + list(args),
                                   env=self.server.cli_env(token=token))
        self.assertEqual(rc, want_rc, out + err)
        return json.loads(out), err

    def inventory_secret(self, pid, env, path, key, leaked_only=False):
        query = {"projectId": pid}
        if leaked_only:
            query["leaked"] = "true"
        inv = self.ok("GET", "/api/v1/inventory", query=query)
        found = [s for p in inv["projects"] for e in p["environments"] if e["slug"] == env
                 for s in e["secrets"] if s["secretPath"] == path and s["secretKey"] == key]
        return found[0] if found else None


class MarkLeaked(LeakHelpers, IdentityHelpers, harness.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hook = Receiver()
        r = cls.server.api("POST", "/api/v1/notifications/channels", body={"type": "webhook", "url": cls.hook.url})
        assert r.status == 200, r.body

    @classmethod
    def tearDownClass(cls):
        cls.hook.close()
        super().tearDownClass()

    def leak_notices(self, key):
        self.ok("POST", "/api/v1/notifications/run")
        return [(h, json.loads(b)) for h, b in self.hook.posts
                if json.loads(b).get("threshold") == "secret-leaked" and json.loads(b)["item"]["secretKey"] == key]

    def test_scan_marks_the_inventory_audit_and_channels_and_a_new_version_clears_it(self):
        project = self.create_project()
        pid, slug = project["id"], project["slug"]
        key = "DB_PASSWORD_" + uuid.uuid4().hex[:6].upper()
        value = "pw-" + uuid.uuid4().hex
        self.create_folder(pid, "prod", "db")
        self.set_secret(pid, key, value, env="prod", path="/db")
        self.set_secret(pid, "OTHER", "other-" + uuid.uuid4().hex, env="prod", path="/db")
        d = self.make_dir()
        write(os.path.join(d, "deploy", "app.env"), "# settings\nHOST=db\nPASSWORD=%s\n" % value)
        write(os.path.join(d, "notes.txt"), "again: %s\n" % value)
        data, err = self.scan("--projectId", pid, d)
        label = "%s/prod/db/%s" % (slug, key)
        known = [f for f in data["findings"] if f.get("cofferSecret") == label]
        self.assertEqual(len(known), 2, data)
        self.assertEqual({f["action"] for f in known}, {"marked leaked"})
        self.assertEqual(err.count("coffer: %s: marked leaked" % label), 1, err)
        # the inventory: leaked, where it was first found (the findings' order: path, line)
        s = self.inventory_secret(pid, "prod", "/db", key)
        self.assertTrue(s["leaked"], s)
        first = os.path.join(d, "deploy", "app.env")
        self.assertEqual(s["leak"]["source"], "coffer scan: %s:3" % first)
        self.assertEqual(s["leak"]["by"], {"kind": "admin", "name": "admin"})
        self.assertFalse(self.inventory_secret(pid, "prod", "/db", "OTHER")["leaked"])
        only = self.ok("GET", "/api/v1/inventory", query={"projectId": pid, "leaked": "true"})
        keys = [x["secretKey"] for p in only["projects"] for e in p["environments"] for x in e["secrets"]]
        self.assertEqual(keys, [key])
        self.assertError(self.api("GET", "/api/v1/inventory", query={"projectId": pid, "leaked": "yes"}), 422,
                         None, "leaked")
        rc, out, cerr = self.cli("inventory", "--projectId", pid, "--leaked")
        self.assertEqual(rc, 0, cerr)
        self.assertIn(key, out)
        self.assertNotIn("OTHER", out)
        self.assertIn("at coffer scan: %s:3" % first, out)
        rc, out, cerr = self.cli("inventory", "--projectId", pid, "--output", "csv")
        self.assertEqual(rc, 0, cerr)
        rows = {r["key"]: r for r in csv.DictReader(io.StringIO(out, newline=""))}
        self.assertEqual(rows[key]["leakSource"], "coffer scan: %s:3" % first)
        self.assertTrue(rows[key]["leakedAt"])
        self.assertEqual(rows["OTHER"]["leakSource"], "")
        # one audit event naming the place and where the value was found
        events = self.ok("GET", "/api/v1/audit/events", query={"action": "secret.leaked",
                                                                "projectId": pid})["events"]
        self.assertEqual(len(events), 1, events)
        e = events[0]
        self.assertEqual((e["result"], e["environment"], e["secretPath"]), ("ok", "prod", "/db"), e)
        self.assertIn(key, json.dumps(e))
        self.assertIn("found at coffer scan: %s:3" % first, e["reason"])
        # one notice on the channel
        notices = self.leak_notices(key)
        self.assertEqual(len(notices), 1, notices)
        headers, body = notices[0]
        self.assertEqual(body["event"], "coffer.leak")
        self.assertEqual(headers.get("X-Coffer-Event"), "secret.leaked")
        self.assertEqual((body["item"]["environment"], body["item"]["secretPath"], body["item"]["version"]),
                         ("prod", "/db", 1))
        self.assertIn("found leaked at coffer scan: %s:3" % first, body["message"])
        # no value anywhere
        everything = json.dumps(data) + err + json.dumps(self.ok("GET", "/api/v1/audit/events",
                                                                 query={"limit": 1000}))
        everything += "".join(b.decode() for _, b in self.hook.posts) + json.dumps(only)
        self.assertNotIn(value, everything)
        # again: nothing changes, nobody is told twice
        data, err = self.scan("--projectId", pid, d)
        self.assertIn("coffer: %s: already marked leaked" % label, err)
        self.assertEqual(self.inventory_secret(pid, "prod", "/db", key)["leak"], s["leak"])
        self.assertEqual(len(self.leak_notices(key)), 1)
        # SARIF carries the action too
        rc, out, err = harness.run(["scan", "--known", "--mark-leaked", "--output", "sarif", "--projectId", pid, d],
                                   env=self.server.cli_env())
        self.assertEqual(rc, 1, err)
        results = json.loads(out)["runs"][0]["results"]
        self.assertEqual({r["properties"]["action"] for r in results if "Coffer secret" in r["message"]["text"]},
                         {"already marked leaked"})
        # coffer doctor fails on it, naming the place and where it was found
        def doctor_leaks():
            rc, out, derr = harness.run(["doctor", "--data-dir", self.server.data_dir],
                                        env=harness.base_env(harness.db_env(self.server.data_dir)))
            return rc, [l for l in out.splitlines() if l[6:].startswith("leaks")], out + derr
        rc, lines, out = doctor_leaks()
        self.assertEqual(rc, 1, out)
        mine = [l for l in lines if label in l]
        self.assertEqual(len(mine), 1, out)
        self.assertTrue(mine[0].startswith("FAIL  leaks"), mine)
        self.assertIn("%s was found leaked (coffer scan: %s:3, 20" % (label, first), mine[0])
        self.assertNotIn(value, out)
        # a new version (a changed value) clears the mark
        self.update_secret(pid, key, env="prod", path="/db", secretValue="new-" + uuid.uuid4().hex)
        s = self.inventory_secret(pid, "prod", "/db", key)
        self.assertEqual((s["version"], s["leaked"], s["leak"]), (2, False, None))
        rc, lines, out = doctor_leaks()
        self.assertEqual([l for l in lines if label in l], [], out)
        self.assertIsNone(self.inventory_secret(pid, "prod", "/db", key, leaked_only=True))
        # --rotate-leaked without a rotation: said per secret, still marked, exit 1
        self.update_secret(pid, key, env="prod", path="/db", secretValue=value)
        data, err = self.scan("--rotate-leaked", "--projectId", pid, d)
        self.assertIn("coffer: %s: marked leaked; no rotation configured" % label, err)
        self.assertTrue(self.inventory_secret(pid, "prod", "/db", key)["leaked"])

    def test_history_names_the_commit(self):
        from test_scan import git
        project = self.create_project()
        pid = project["id"]
        value = "hist-" + uuid.uuid4().hex
        self.set_secret(pid, "API_TOKEN", value, env="staging")
        repo = self.make_dir()
        git(repo, "init", "-q")
        write(os.path.join(repo, "app.env"), "A=1\nAPI_TOKEN=%s\n" % value)
        git(repo, "add", "app.env")
        git(repo, "commit", "-q", "-m", "add")
        commit = git(repo, "rev-parse", "HEAD").stdout.strip()
        write(os.path.join(repo, "app.env"), "A=1\n")
        git(repo, "commit", "-q", "-am", "remove")
        rc, out, err = harness.run(["scan", "git", repo, "--known", "--mark-leaked", "--projectId", pid,
                                    "--output", "json"], env=self.server.cli_env())
        self.assertEqual(rc, 1, out + err)
        [f] = [f for f in json.loads(out)["findings"] if f.get("cofferSecret")]
        self.assertEqual((f["commit"], f["action"]), (commit, "marked leaked"))
        s = self.inventory_secret(pid, "staging", "/", "API_TOKEN")
        self.assertEqual(s["leak"]["source"], "coffer scan: commit %s app.env:2" % commit[:12])
        self.assertNotIn(value, out + err)

    def test_a_long_path_is_cut_to_its_end(self):
        pid = self.create_project()["id"]
        value = "long-" + uuid.uuid4().hex
        self.set_secret(pid, "DEEP", value, env="dev")
        d = self.make_dir()
        deep = os.path.join(d, "a" * 200, "b" * 200, "\u00e9" * 60 + ".env")
        write(deep, "x\nDEEP=%s\n" % value)
        self.scan("--projectId", pid, d)
        source = self.inventory_secret(pid, "dev", "/", "DEEP")["leak"]["source"]
        self.assertLessEqual(len(source.encode()), 512)
        self.assertTrue(source.startswith("coffer scan: ..."), source)
        self.assertTrue(source.endswith("/" + "\u00e9" * 60 + ".env:2"), source)

    def test_usage(self):
        d = self.make_dir()
        for args, words in ((["--mark-leaked"], "--mark-leaked goes with --known"),
                            (["--known", "--rotate-leaked"], "--rotate-leaked goes with --mark-leaked")):
            rc, out, err = harness.run(["scan"] + args + [d], env=self.server.cli_env())
            self.assertEqual(rc, 2, out + err)
            self.assertIn(words, err)

    def test_refusals_through_the_api(self):
        pid = self.create_project()["id"]
        self.set_secret(pid, "TOKEN", "t-" + uuid.uuid4().hex, env="prod")
        base = {"projectId": pid, "environment": "prod", "secretPath": "/", "secretKey": "TOKEN",
                "source": "coffer scan: ./x:1", "fingerprint": "0123abcd"}
        cases = [
            ({k: v for k, v in base.items() if k != "secretKey"}, 422, "secretKey"),
            ({k: v for k, v in base.items() if k != "source"}, 422, "source"),
            ({k: v for k, v in base.items() if k != "environment"}, 422, "environment"),
            ({k: v for k, v in base.items() if k != "projectId"}, 422, "projectId"),
            (dict(base, source=""), 422, "source"),
            (dict(base, source="a\nb"), 422, "source"),
            (dict(base, source="x" * 600), 422, "source"),
            (dict(base, fingerprint="not a fingerprint!"), 422, "fingerprint"),
            (dict(base, rotate="yes"), 400, "rotate"),
            (dict(base, secretKey=5), 400, "secretKey"),
            (dict(base, secretKey="NOPE"), 404, "NOPE"),
            (dict(base, environment="nowhere"), 404, "nowhere"),
        ]
        for body, status, words in cases:
            with self.subTest(body=body):
                r = self.api("POST", "/api/v1/secrets/leaked", body=body)
                self.assertEqual(r.status, status, r.body)
                self.assertIn(words, r.json["message"])
        r = self.api("POST", "/api/v1/secrets/leaked", body="[1]")
        self.assertEqual(r.status, 400, r.body)
        # a caller who cannot read the secret
        dev_only = self.machine(pid, "member", [{"actions": ["read"], "environment": "dev"}])
        r = self.api("POST", "/api/v1/secrets/leaked", body=base, token=dev_only["token"])
        self.assertError(r, 403, None)
        self.assertFalse(self.inventory_secret(pid, "prod", "/", "TOKEN")["leaked"])
        # one who can: marked, idempotent, and no rotation asked for
        reader = self.machine(pid, "viewer")
        first = self.ok("POST", "/api/v1/secrets/leaked", body=base, token=reader["token"])
        self.assertTrue(first["leak"]["created"])
        self.assertEqual(first["leak"]["by"]["kind"], "identity")
        self.assertIsNone(first["rotation"])
        again = self.ok("POST", "/api/v1/secrets/leaked", body=dict(base, source="elsewhere:2"))
        self.assertFalse(again["leak"]["created"])
        self.assertEqual(again["leak"]["source"], "coffer scan: ./x:1")

    def test_refusals_between_fetch_and_mark_reported_per_secret(self):
        """The scan reads standard input after fetching the values: the secret is deleted (404) and the identity's
        membership removed (403) in between, so that each mark fails and is reported per secret (exit 2)."""
        pid = self.create_project()["id"]
        slug = self.ok("GET", "/api/v1/workspace/" + pid)["workspace"]["slug"]
        values = {"GONE": "gone-" + uuid.uuid4().hex, "KEPT": "kept-" + uuid.uuid4().hex}
        for k, v in values.items():
            self.set_secret(pid, k, v, env="dev")
        ident = self.machine(pid, "viewer")
        for case in ("gone", "forbidden"):
            with self.subTest(case=case):
                proc = subprocess.Popen(
                    [harness.COFFER_BIN, "scan", "--known", "--mark-leaked", "--stdin", "--projectId", pid],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                    env=self.server.cli_env(token=ident["token"]))
                try:
                    self.wait_listed(ident["name"], case)
                    if case == "gone":
                        self.ok("DELETE", "/api/v3/secrets/raw/GONE",
                                body={"workspaceId": pid, "environment": "dev", "secretPath": "/"})
                    else:
                        self.ok("DELETE", "/api/v2/workspace/%s/identity-memberships/%s" % (pid, ident["id"]))
                    out, err = proc.communicate("a=%s\nb=%s\n" % (values["GONE"], values["KEPT"]), timeout=60)
                finally:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
                self.assertEqual(proc.returncode, 2, out + err)
                if case == "gone":
                    self.assertIn("coffer: %s/dev/GONE: not marked leaked (HTTP 404)" % slug, err)
                    self.assertIn("coffer: %s/dev/KEPT: marked leaked" % slug, err)
                    self.assertIn("[not marked leaked (HTTP 404)]", out)
                else:
                    self.assertIn("coffer: %s/dev/KEPT: not marked leaked (HTTP 403)" % slug, err)
                for v in values.values():
                    self.assertNotIn(v, out + err)
                if case == "gone":
                    self.set_secret(pid, "GONE", values["GONE"], env="dev")

    def wait_listed(self, actor, case):
        """Waits until the identity's recursive list (the scan's fetch) is in the audit log, one more per case."""
        want = 1 if case == "gone" else 2
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            events = self.ok("GET", "/api/v1/audit/events", query={"actor": actor, "action": "secrets.list",
                                                                    "limit": 100})["events"]
            if len([e for e in events if e["result"] == "ok" and e["environment"] == "dev"]) >= want:
                return
            time.sleep(0.05)
        self.fail("the scan never listed the secrets")


class RotateLeaked(WithFakes, EntraApp, RotationHelpers, LeakHelpers, IdentityHelpers, harness.ServerTestCase):
    """--rotate-leaked with an Entra ID client-secret rotation against tests/fakes/azure.py."""

    FAKES = {"fake": "azure.py"}

    def setUp(self):
        super().setUp()
        self.pid = self.create_project()["id"]
        self.entra_setup()

    def test_rotate_leaked_writes_a_new_version_and_clears_the_mark(self):
        rot = self.entra_rotation({"gracePeriod": 0, "isAutoRotationEnabled": False})
        self.ok("POST", "/api/v2/secret-rotations/any/%s/rotate-secrets" % rot["id"])
        self.done(rot["id"], 1)
        value = self.get_secret(self.pid, "AZURE_CLIENT_SECRET").json["secret"]["secretValue"]
        d = self.make_dir()
        write(os.path.join(d, "ci.yml"), "env:\n  AZURE_CLIENT_SECRET: %s\n" % value)
        data, err = self.scan("--rotate-leaked", "--projectId", self.pid, d)
        self.assertRegex(err, r"AZURE_CLIENT_SECRET: marked leaked; rotation '%s' triggered \(\w+\)" % rot["name"])
        [f] = [f for f in data["findings"] if f.get("cofferSecret", "").endswith("/AZURE_CLIENT_SECRET")]
        self.assertIn("rotation '%s' triggered" % rot["name"], f["action"])
        self.done(rot["id"], 2)
        s = self.inventory_secret(self.pid, "dev", "/", "AZURE_CLIENT_SECRET")
        self.assertEqual((s["version"], s["leaked"]), (2, False), s)
        self.assertNotEqual(self.get_secret(self.pid, "AZURE_CLIENT_SECRET").json["secret"]["secretValue"], value)
        self.assertNotIn(value, json.dumps(data) + err)
        # a reader who may not run rotations: marked all the same, the rotation refused (exit 2 from the CLI)
        value = self.get_secret(self.pid, "AZURE_CLIENT_SECRET").json["secret"]["secretValue"]
        write(os.path.join(d, "ci.yml"), "env:\n  AZURE_CLIENT_SECRET: %s\n" % value)
        viewer = self.machine(self.pid, "viewer")
        data, err = self.scan("--rotate-leaked", "--projectId", self.pid, d, token=viewer["token"], want_rc=2)
        self.assertRegex(err, r"AZURE_CLIENT_SECRET: marked leaked; rotation '%s' failed: " % rot["name"])
        s = self.inventory_secret(self.pid, "dev", "/", "AZURE_CLIENT_SECRET")
        self.assertEqual((s["version"], s["leaked"]), (2, True), s)
        self.assertEqual(self.rotation(rot["id"])["generation"], 2)


if __name__ == "__main__":
    unittest.main()
