"""Secret syncs (docs/syncs.md) end to end, with the file destination (no connection needed).

Checked: the API's shapes (/api/v1/secret-syncs, Infisical's envelopes and field names) and refusals; a sync runs
at once when created; a change to the source reaches the destination within 5 seconds (the delay is measured and
printed); imports and references are expanded as a reader sees them; the key schema (TF_VAR_{{secretKey}}) and
its refusal without {{secretKey}}; deletions both ways (disableSecretDeletion); the three initial behaviours;
drift (a value edited at the destination) detected and reported; a failing destination reported in the sync's
status and by `coffer syncs status` (exit 1), retried with backoff, told once to a notification channel; a
server killed (-9) while a change waits for its destination loses nothing; no secret value in the server log,
a status or an error; the inventory names the destination holding each copy; the `coffer syncs` commands;
authorization (a viewer may not manage syncs). Every run is an audit event (secret-syncs.run) with its counts,
outcome and cause; a run whose source equals what was last pushed writes nothing, and a pending mark lost in a
crash is recovered at the next start. Against the fakes: a change reaches GitHub, an Azure DevOps variable group and
Key Vault within 5 s; a 401 from each system (expired PAT, expired Entra client secret, a refused Key Vault token,
GitHub's bad credentials) is named precisely by `coffer syncs status`; a throttled vault (429 with Retry-After) is
retried until the change arrives; a secret deleted then re-created is recovered from Key Vault's soft delete. With
PostgreSQL, two servers on one database deliver each change once.
"""

import base64
import calendar
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

import harness
from harness import ADMIN_TOKEN, Server, ServerTestCase
from test_notifications import Receiver

DELIVERY_S = 5.0

# File syncs may write only below the directory a server allows (--sync-file-dir): every server of these
# tests allows this one, and each test writes below it.
SYNC_ROOT = tempfile.mkdtemp(prefix="coffer-syncroot-")
SYNC_ENV = {"COFFER_SYNC_FILE_DIR": SYNC_ROOT}


def read_dotenv(path):
    """{KEY: value} of a dotenv file written by the file destination (KEY='value')."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            key, _, value = line.partition("=")
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            out[key] = value
    return out


def wait_for(predicate, timeout=DELIVERY_S, step=0.05):
    """Polls predicate until it is truthy; returns (value, seconds waited), value None on timeout."""
    start = time.monotonic()
    while True:
        try:
            got = predicate()
        except (OSError, ValueError):
            got = None
        if got:
            return got, time.monotonic() - start
        if time.monotonic() - start > timeout:
            return None, time.monotonic() - start
        time.sleep(step)


def file_has(path, expected):
    """A predicate: the dotenv file holds exactly expected (a dict)."""
    return lambda: read_dotenv(path) == expected


class Out:
    def __init__(self, result):
        self.returncode, self.stdout, self.stderr = result


class SyncHelpers:
    def member_token(self, pid, role):
        """An access token of a new machine identity with role in project pid."""
        ident = self.ok("POST", "/api/v1/identities", body={"name": harness.unique(role)})["identity"]
        self.ok("POST", "/api/v1/auth/universal-auth/identities/%s" % ident["id"], body={})
        secret = self.ok("POST", "/api/v1/auth/universal-auth/identities/%s/client-secrets" % ident["id"],
                         body={})["clientSecret"]
        client_id = self.ok("GET", "/api/v1/auth/universal-auth/identities/%s" % ident["id"])[
            "identityUniversalAuth"]["clientId"]
        self.ok("POST", "/api/v2/workspace/%s/identity-memberships/%s" % (pid, ident["id"]), body={"role": role})
        return self.ok("POST", "/api/v1/auth/universal-auth/login",
                       body={"clientId": client_id, "clientSecret": secret}, token=None)["accessToken"]

    def run_cli(self, *args):
        return Out(self.cli(*args))

    def make_sync(self, pid, path, name=None, env="dev", secret_path="/", options=None, expect=200,
                  destination="file", **extra):
        body = {"name": name or harness.unique("sync"), "projectId": pid, "environment": env,
                "secretPath": secret_path, "destinationConfig": {"path": path, "format": "dotenv"}}
        if options is not None:
            body["syncOptions"] = options
        body.update(extra)
        r = self.api("POST", "/api/v1/secret-syncs/" + destination, body=body)
        self.assertEqual(r.status, expect, r.body[:600])
        return r.json.get("secretSync") if expect == 200 else r

    def sync_of(self, sid, destination="file"):
        return self.ok("GET", "/api/v1/secret-syncs/%s/%s" % (destination, sid))["secretSync"]

    def wait_status(self, sid, status, timeout=DELIVERY_S, destination="file"):
        got, _ = wait_for(lambda: self.sync_of(sid, destination)["syncStatus"] == status
                          and self.sync_of(sid, destination), timeout)
        self.assertTrue(got, "sync %s never reached %s: %r" % (sid, status, self.sync_of(sid, destination)))
        return got

    def runs_audited(self, sid):
        """The audit events of sync sid's runs, oldest first."""
        events = self.ok("GET", "/api/v1/audit/events", query={"action": "secret-syncs.run", "limit": "1000"})
        return [e for e in events["events"] if e["secretPath"].endswith("/" + sid)]


def tearDownModule():
    shutil.rmtree(SYNC_ROOT, ignore_errors=True)


class FileSyncOff(SyncHelpers, ServerTestCase):
    """A server started without --sync-file-dir writes no file for anyone."""

    def test_file_syncs_are_off_without_a_directory(self):
        pid = self.create_project()["id"]
        r = self.make_sync(pid, os.path.join(SYNC_ROOT, "off.env"), expect=422)
        self.assertError(r, 422, None, "--sync-file-dir")
        self.assertFalse(os.path.exists(os.path.join(SYNC_ROOT, "off.env")))


class FileSync(SyncHelpers, ServerTestCase):
    server_args = ("--notify-interval", "1s", "--notify-retry-base", "1s", "--sync-file-dir", SYNC_ROOT)

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="coffer-sync-", dir=SYNC_ROOT)
        self.pid = self.create_project()["id"]

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        super().tearDown()

    def out(self, name="out.env"):
        return os.path.join(self.dir, name)

    # ---- the API ----

    def test_create_runs_at_once_and_shapes(self):
        self.set_secret(self.pid, "DB_URL", "postgres://db/1")
        self.set_secret(self.pid, "API_KEY", "k-" + uuid.uuid4().hex)
        values = {k: v for (_, k), v in self.secret_values(self.pid).items()}
        s = self.make_sync(self.pid, self.out(), name="to-file", description="for the legacy host")
        for field in ("id", "name", "description", "projectId", "connectionId", "environment", "folder",
                      "destination", "destinationConfig", "syncOptions", "isAutoSyncEnabled", "syncStatus",
                      "lastSyncedAt", "lastSyncMessage", "createdAt", "updatedAt", "itemsPushed", "drift"):
            self.assertIn(field, s)
        self.assertEqual((s["name"], s["destination"], s["connectionId"], s["isAutoSyncEnabled"]),
                         ("to-file", "file", None, True))
        self.assertEqual(s["environment"]["slug"], "dev")
        self.assertEqual(s["folder"]["path"], "/")
        self.assertEqual(s["syncOptions"], {"keySchema": "{{secretKey}}",
                                            "initialSyncBehavior": "overwrite-destination",
                                            "disableSecretDeletion": False})
        got, delay = wait_for(file_has(self.out(), values))
        self.assertTrue(got, "the first run did not write %s" % self.out())
        print("TEST: file destination: first push %.3f s after create" % delay)
        self.assertEqual(stat.S_IMODE(os.stat(self.out()).st_mode), 0o600)
        s = self.wait_status(s["id"], "succeeded")
        self.assertEqual(s["itemsPushed"], 2)
        self.assertIsNone(s["lastSyncMessage"])
        self.assertTrue(s["lastSyncedAt"])
        self.assertEqual(s["drift"], [])

        # list (all destinations, one destination), get, 404s
        listed = self.ok("GET", "/api/v1/secret-syncs", query={"projectId": self.pid})["secretSyncs"]
        self.assertEqual([x["id"] for x in listed], [s["id"]])
        listed = self.ok("GET", "/api/v1/secret-syncs/file", query={"projectId": self.pid})["secretSyncs"]
        self.assertEqual([x["id"] for x in listed], [s["id"]])
        self.assertEqual(self.ok("GET", "/api/v1/secret-syncs/github",
                                 query={"projectId": self.pid})["secretSyncs"], [])
        self.assertEqual(self.ok("GET", "/api/v1/secret-syncs/any/" + s["id"])["secretSync"]["id"], s["id"])
        self.assertError(self.api("GET", "/api/v1/secret-syncs/github/" + s["id"]), 404, "NotFound", s["id"])
        missing = str(uuid.uuid4())
        self.assertError(self.api("GET", "/api/v1/secret-syncs/file/" + missing), 404, "NotFound", missing)
        self.assertError(self.api("GET", "/api/v1/secret-syncs"), 422, "ValidationFailure", "projectId")

        # a name is unique in its project
        self.assertError(self.make_sync(self.pid, self.out("other.env"), name="to-file", expect=400), 400,
                         "BadRequest", "to-file")

        # PATCH: rename, options; the change is applied at once
        r = self.ok("PATCH", "/api/v1/secret-syncs/file/" + s["id"],
                    body={"name": "renamed", "syncOptions": {"keySchema": "APP_{{secretKey}}"}})["secretSync"]
        self.assertEqual((r["name"], r["syncOptions"]["keySchema"]), ("renamed", "APP_{{secretKey}}"))
        got, _ = wait_for(lambda: "APP_DB_URL" in read_dotenv(self.out()))
        self.assertTrue(got, read_dotenv(self.out()))

        # DELETE answers the sync; what it pushed stays
        r = self.ok("DELETE", "/api/v1/secret-syncs/file/" + s["id"])["secretSync"]
        self.assertEqual(r["id"], s["id"])
        self.assertError(self.api("GET", "/api/v1/secret-syncs/file/" + s["id"]), 404)
        self.assertIn("APP_DB_URL", read_dotenv(self.out()))

    def test_refusals(self):
        cases = [
            ({"syncOptions": {"keySchema": "TF_VAR_"}}, 422, "{{secretKey}}"),
            ({"syncOptions": {"keySchema": "{{secretKey}}_{{secretKey}}"}}, 422, "keySchema"),
            ({"syncOptions": {"initialSyncBehavior": "merge"}}, 422, "initialSyncBehavior"),
            ({"syncOptions": {"disableSecretDeletion": "yes"}}, 400, "disableSecretDeletion"),
            ({"environment": "nope"}, 422, "nope"),
            ({"secretPath": "/missing"}, 422, "/missing"),
            ({"destinationConfig": {"path": "relative.env"}}, 422, "path"),
            # file syncs stay below the directory the server allows: nothing else on its host
            ({"destinationConfig": {"path": "/etc/coffer-sync.env"}}, 422, "--sync-file-dir"),
            ({"destinationConfig": {"path": SYNC_ROOT + "/../coffer-sync.env"}}, 422, "'..'"),
            ({"connectionId": str(uuid.uuid4())}, 422, "connection"),
        ]
        for extra, status, words in cases:
            with self.subTest(extra=extra):
                body = {"name": harness.unique("bad"), "projectId": self.pid, "environment": "dev",
                        "secretPath": "/", "destinationConfig": {"path": self.out(), "format": "dotenv"}}
                body.update(extra)
                self.assertError(self.api("POST", "/api/v1/secret-syncs/file", body=body), status, None, words)
        r = self.api("POST", "/api/v1/secret-syncs/nowhere",
                     body={"name": "x", "projectId": self.pid, "environment": "dev", "secretPath": "/",
                           "destinationConfig": {}})
        self.assertError(r, 404, "NotFound", "nowhere")
        self.assertEqual(self.ok("GET", "/api/v1/secret-syncs", query={"projectId": self.pid})["secretSyncs"], [])

    def test_viewer_may_not_manage(self):
        token = self.member_token(self.pid, "viewer")
        body = {"name": "v", "projectId": self.pid, "environment": "dev", "secretPath": "/",
                "destinationConfig": {"path": self.out(), "format": "dotenv"}}
        self.assertError(self.api("POST", "/api/v1/secret-syncs/file", body=body, token=token), 403)
        s = self.make_sync(self.pid, self.out())
        self.assertError(self.api("GET", "/api/v1/secret-syncs/file/" + s["id"], token=token), 404)
        self.assertError(self.api("POST", "/api/v1/secret-syncs/file/%s/sync-secrets" % s["id"], token=token), 404)
        self.assertError(self.api("GET", "/api/v1/secret-syncs", query={"projectId": self.pid}, token=token), 403)

    # ---- propagation ----

    def test_change_reaches_destination_within_5s(self):
        self.set_secret(self.pid, "A", "1")
        s = self.make_sync(self.pid, self.out())
        self.assertTrue(wait_for(file_has(self.out(), {"A": "1"}))[0])
        delays = []
        for i in range(5):
            value = "v%d-%s" % (i, uuid.uuid4().hex[:8])
            self.update_secret(self.pid, "A", secretValue=value)
            got, delay = wait_for(file_has(self.out(), {"A": value}))
            self.assertTrue(got, "change %d did not arrive within %.0f s: %r" % (i, DELIVERY_S,
                                                                                  read_dotenv(self.out())))
            delays.append(delay)
        print("TEST: file destination: change -> file in %s s (max %.3f s)"
              % (", ".join("%.3f" % d for d in delays), max(delays)))
        # set (create), delete, rollback, an import: each reaches the file
        self.set_secret(self.pid, "B", "b")
        self.assertTrue(wait_for(lambda: read_dotenv(self.out()).get("B") == "b")[0])
        self.assertEqual(self.api("DELETE", "/api/v3/secrets/raw/B",
                                  body={"workspaceId": self.pid, "environment": "dev"}).status, 200)
        self.assertTrue(wait_for(lambda: "B" not in read_dotenv(self.out()))[0])
        secret_id = self.get_secret(self.pid, "A").json["secret"]["id"]
        self.ok("POST", "/api/v1/secret/%s/rollback" % secret_id, body={"version": 1})
        self.assertTrue(wait_for(file_has(self.out(), {"A": "1"}))[0], read_dotenv(self.out()))
        # an import added: the imported folder's secrets arrive
        self.create_folder(self.pid, "dev", "more")
        self.set_secret(self.pid, "C", "c", path="/more")
        self.ok("POST", "/api/v2/secret-imports", body={"projectId": self.pid, "environment": "dev", "path": "/",
                                                        "import": {"environment": "dev", "path": "/more"}})
        self.assertTrue(wait_for(file_has(self.out(), {"A": "1", "C": "c"}))[0], read_dotenv(self.out()))
        self.wait_status(s["id"], "succeeded")

    def test_imports_and_references_as_a_reader_sees_them(self):
        self.create_folder(self.pid, "dev", "shared")
        self.set_secret(self.pid, "HOST", "db.internal", path="/shared")
        self.set_secret(self.pid, "PORT", "5432", path="/shared")
        self.ok("POST", "/api/v2/secret-imports", body={"projectId": self.pid, "environment": "dev", "path": "/",
                                                        "import": {"environment": "dev", "path": "/shared"}})
        self.set_secret(self.pid, "URL", "postgres://${dev.shared.HOST}:${dev.shared.PORT}/app")
        self.set_secret(self.pid, "PORT", "6432")  # the folder's own key wins over the import's
        s = self.make_sync(self.pid, self.out())
        want = {"HOST": "db.internal", "PORT": "6432", "URL": "postgres://db.internal:5432/app"}
        got, _ = wait_for(file_has(self.out(), want))
        self.assertTrue(got, read_dotenv(self.out()) if os.path.exists(self.out()) else "no file")
        # a change in the imported folder reaches the sync of the importing folder
        self.update_secret(self.pid, "HOST", path="/shared", secretValue="db2.internal")
        want = {"HOST": "db2.internal", "PORT": "6432", "URL": "postgres://db2.internal:5432/app"}
        got, delay = wait_for(file_has(self.out(), want))
        self.assertTrue(got, read_dotenv(self.out()))
        print("TEST: file destination: imported change -> file in %.3f s" % delay)
        self.assertEqual(self.sync_of(s["id"])["itemsPushed"], 3)

    def test_key_schema_and_deletion_policy(self):
        self.set_secret(self.pid, "REGION", "westeurope")
        self.set_secret(self.pid, "OLD", "x")
        keep = self.make_sync(self.pid, self.out("keep.env"),
                              options={"keySchema": "TF_VAR_{{secretKey}}", "disableSecretDeletion": True})
        drop = self.make_sync(self.pid, self.out("drop.env"), options={"keySchema": "{{secretKey}}_V1"})
        self.assertTrue(wait_for(file_has(self.out("keep.env"), {"TF_VAR_REGION": "westeurope",
                                                                 "TF_VAR_OLD": "x"}))[0])
        self.assertTrue(wait_for(file_has(self.out("drop.env"), {"REGION_V1": "westeurope", "OLD_V1": "x"}))[0])
        self.assertEqual(self.api("DELETE", "/api/v3/secrets/raw/OLD",
                                  body={"workspaceId": self.pid, "environment": "dev"}).status, 200)
        self.assertTrue(wait_for(file_has(self.out("drop.env"), {"REGION_V1": "westeurope"}))[0],
                        read_dotenv(self.out("drop.env")))
        self.wait_status(keep["id"], "succeeded")
        time.sleep(0.5)
        self.assertEqual(read_dotenv(self.out("keep.env")), {"TF_VAR_REGION": "westeurope", "TF_VAR_OLD": "x"})
        self.assertEqual(self.sync_of(drop["id"])["itemsPushed"], 1)

    def test_initial_behaviours(self):
        self.set_secret(self.pid, "SHARED", "from-coffer")
        self.set_secret(self.pid, "ONLY_COFFER", "c")

        def seeded(name):
            path = self.out(name)
            with open(path, "w") as f:
                f.write("SHARED='from-file'\nONLY_FILE='f'\n")
            os.chmod(path, 0o600)
            return path

        path = seeded("overwrite.env")
        self.make_sync(self.pid, path, options={"initialSyncBehavior": "overwrite-destination"})
        self.assertTrue(wait_for(file_has(path, {"SHARED": "from-coffer", "ONLY_COFFER": "c"}))[0],
                        read_dotenv(path))

        pid2 = self.create_project()["id"]
        self.set_secret(pid2, "SHARED", "from-coffer")
        path = seeded("source-wins.env")
        self.make_sync(pid2, path, options={"initialSyncBehavior": "import-prioritize-source"})
        want = {"SHARED": "from-coffer", "ONLY_FILE": "f"}
        self.assertTrue(wait_for(file_has(path, want))[0], read_dotenv(path))
        self.assertEqual({k: v for (_, k), v in self.secret_values(pid2).items()}, want)

        pid3 = self.create_project()["id"]
        self.set_secret(pid3, "SHARED", "from-coffer")
        path = seeded("dest-wins.env")
        self.make_sync(pid3, path, options={"initialSyncBehavior": "import-prioritize-destination"})
        want = {"SHARED": "from-file", "ONLY_FILE": "f"}
        self.assertTrue(wait_for(file_has(path, want))[0], read_dotenv(path))
        got, _ = wait_for(lambda: {k: v for (_, k), v in self.secret_values(pid3).items()} == want)
        self.assertTrue(got, self.secret_values(pid3))

    def test_drift_detected_and_repaired(self):
        self.set_secret(self.pid, "A", "1")
        self.set_secret(self.pid, "B", "2")
        s = self.make_sync(self.pid, self.out(), options={"disableSecretDeletion": False})
        self.assertTrue(wait_for(file_has(self.out(), {"A": "1", "B": "2"}))[0])
        self.wait_status(s["id"], "succeeded")
        with open(self.out(), "w") as f:  # someone edits the destination by hand
            f.write("A='edited-by-hand'\n")
        r = self.ok("POST", "/api/v1/secret-syncs/file/%s/sync-secrets" % s["id"])["secretSync"]
        self.assertEqual(r["syncStatus"], "succeeded", r)
        self.assertEqual(sorted((d["name"], d["change"]) for d in r["drift"]), [("A", "value"), ("B", "missing")])
        self.assertEqual(read_dotenv(self.out()), {"A": "1", "B": "2"})  # Coffer's values are back
        out = self.run_cli("syncs", "status", s["id"])
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("A (value)", out.stdout)
        self.assertIn("B (missing)", out.stdout)
        # the next run finds nothing drifted
        r = self.ok("POST", "/api/v1/secret-syncs/file/%s/sync-secrets" % s["id"])["secretSync"]
        self.assertEqual(r["drift"], [])

    # ---- failures ----

    def test_failure_status_backoff_and_one_notice(self):
        receiver = Receiver()
        try:
            self.ok("POST", "/api/v1/notifications/channels",
                    body={"type": "webhook", "url": receiver.url, "workspaceId": self.pid, "name": "ops"})
            canary = "canary-" + uuid.uuid4().hex
            self.set_secret(self.pid, "TOKEN", canary)
            target = os.path.join(self.dir, "missing-dir", "out.env")
            s = self.make_sync(self.pid, target)
            s = self.wait_status(s["id"], "failed")
            self.assertIn("missing-dir", s["lastSyncMessage"])
            self.assertTrue(s["lastSyncErrorCause"])
            self.assertTrue(s["pending"])
            self.assertIsNone(s["lastSyncedAt"])
            # retried with backoff: a few attempts in 4 s, not dozens
            time.sleep(4)
            s = self.sync_of(s["id"])
            self.assertGreaterEqual(s["failedAttempts"], 2, s)
            self.assertLessEqual(s["failedAttempts"], 4, s)
            out = self.run_cli("syncs", "status", s["id"])
            self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
            self.assertIn("missing-dir", out.stdout)
            self.assertNotIn("log in", (out.stdout + out.stderr).lower())
            # one notice for the failure however often it is retried
            got, _ = wait_for(lambda: receiver.accepted(), timeout=10)
            self.assertTrue(got, "no notice")
            time.sleep(2)
            posts = [p for p in receiver.accepted() if p.get("event") == "coffer.sync"]
            self.assertEqual(len(posts), 1, posts)
            self.assertEqual(posts[0]["item"]["syncId"], s["id"])
            self.assertIn("missing-dir", posts[0]["message"])
            # the destination comes back: the change arrives, status clears
            os.mkdir(os.path.join(self.dir, "missing-dir"))
            got, _ = wait_for(file_has(target, {"TOKEN": canary}), timeout=20)
            self.assertTrue(got)
            s = self.wait_status(s["id"], "succeeded", timeout=10)
            self.assertIsNone(s["lastSyncMessage"])
            for text in (self.server.stderr, json.dumps(s), json.dumps(receiver.accepted())):
                self.assertNotIn(canary, text)
        finally:
            receiver.close()

    def test_runs_are_audited(self):
        canary = "canary-" + uuid.uuid4().hex
        self.set_secret(self.pid, "TOKEN", canary)
        self.set_secret(self.pid, "GONE", "soon")
        target = os.path.join(self.dir, "later", "out.env")
        s = self.make_sync(self.pid, target, name="audited")
        failed = self.wait_status(s["id"], "failed")
        got, _ = wait_for(lambda: self.runs_audited(s["id"]))
        self.assertTrue(got, "a failed run is not audited")
        e = got[0]
        self.assertEqual((e["action"], e["result"]), ("secret-syncs.run", "failed"), e)
        self.assertEqual(e["actor"]["kind"], "system")
        self.assertEqual(e["actor"]["name"], "sync engine")
        self.assertEqual(e["keys"], ["audited"])
        self.assertEqual((e["projectId"], e["environment"]), (self.pid, "dev"))
        self.assertEqual(e["secretPath"], "/api/v1/secret-syncs/file/" + s["id"])
        self.assertIn("file: pushed 0, deleted 0; ", e["reason"])
        self.assertIn("later", e["reason"])
        self.assertIn("; %s: " % failed["lastSyncErrorCause"], e["reason"])
        os.mkdir(os.path.join(self.dir, "later"))
        self.wait_status(s["id"], "succeeded", timeout=10)
        ok = [x for x in self.runs_audited(s["id"]) if x["result"] == "ok"]
        self.assertEqual(len(ok), 1, self.runs_audited(s["id"]))
        self.assertEqual(ok[0]["reason"], "file: pushed 2, deleted 0")
        # a deletion is counted
        self.assertEqual(self.api("DELETE", "/api/v3/secrets/raw/GONE",
                                  body={"workspaceId": self.pid, "environment": "dev"}).status, 200)
        self.assertTrue(wait_for(file_has(target, {"TOKEN": canary}))[0])
        got, _ = wait_for(lambda: [x for x in self.runs_audited(s["id"]) if x["result"] == "ok"][1:])
        self.assertTrue(got)
        self.assertEqual(got[-1]["reason"], "file: pushed 1, deleted 1")
        self.assertNotIn(canary, json.dumps(self.ok("GET", "/api/v1/audit/events", query={"limit": "1000"})))

    def test_unchanged_source_writes_nothing_unless_asked(self):
        self.set_secret(self.pid, "A", "1")
        s = self.make_sync(self.pid, self.out(), name="quiet")
        self.assertTrue(wait_for(file_has(self.out(), {"A": "1"}))[0])
        self.wait_status(s["id"], "succeeded")
        inode = os.stat(self.out()).st_ino
        # a change elsewhere in the project marks the sync; its source is what it last pushed
        self.create_folder(self.pid, "dev", "other")
        self.set_secret(self.pid, "B", "2", path="/other")
        got, _ = wait_for(lambda: [x for x in self.runs_audited(s["id"]) if "unchanged" in x["reason"]])
        self.assertTrue(got, self.runs_audited(s["id"]))
        self.assertEqual(got[-1]["reason"], "file: pushed 0, deleted 0 (unchanged: nothing written)")
        self.assertEqual(os.stat(self.out()).st_ino, inode, "the file was rewritten")
        # "run now" writes whatever the record says
        r = self.ok("POST", "/api/v1/secret-syncs/file/%s/sync-secrets" % s["id"])["secretSync"]
        self.assertEqual(r["itemsPushed"], 1, r)
        self.assertNotEqual(os.stat(self.out()).st_ino, inode)
        # drift is never mistaken for "unchanged"
        with open(self.out(), "w") as f:
            f.write("A='by-hand'\n")
        self.set_secret(self.pid, "C", "3", path="/other")
        self.assertTrue(wait_for(file_has(self.out(), {"A": "1"}))[0])

    # ---- inventory and CLI ----

    def test_inventory_names_each_copy(self):
        self.set_secret(self.pid, "A", "1")
        s1 = self.make_sync(self.pid, self.out("one.env"), name="one")
        s2 = self.make_sync(self.pid, self.out("two.env"), name="two", options={"keySchema": "X_{{secretKey}}"})
        self.wait_status(s1["id"], "succeeded")
        self.wait_status(s2["id"], "succeeded")
        inv = self.ok("GET", "/api/v1/inventory", query={"projectId": self.pid})
        secrets = [x for p in inv["projects"] for e in p["environments"] for x in e["secrets"]
                   if x["secretKey"] == "A"]
        self.assertEqual(len(secrets), 1)
        copies = sorted((c["syncName"], c["destination"], c["name"], c["version"]) for c in secrets[0]["syncedTo"])
        self.assertEqual(copies, [("one", "file", "A", 1), ("two", "file", "X_A", 1)])
        out = self.run_cli("inventory", "--projectId", self.pid)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("file:X_A (two)", out.stdout)

    def test_cli(self):
        self.set_secret(self.pid, "A", "1")
        out = self.run_cli("syncs", "create", "file", "--projectId", self.pid, "--name", "cli-sync", "--env", "dev",
                       "--path", "/", "--config", json.dumps({"path": self.out(), "format": "dotenv"}),
                       "--key-schema", "TF_VAR_{{secretKey}}", "--output", "json")
        self.assertEqual(out.returncode, 0, out.stderr)
        sid = json.loads(out.stdout)["secretSync"]["id"]
        self.assertTrue(wait_for(file_has(self.out(), {"TF_VAR_A": "1"}))[0])
        out = self.run_cli("syncs", "list", "--projectId", self.pid)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.splitlines()[0].split(),
                         ["ID", "NAME", "DESTINATION", "SOURCE", "STATUS", "SYNCED", "ITEMS", "DRIFT"])
        self.assertIn("cli-sync", out.stdout)
        self.assertIn("dev:/", out.stdout)
        out = self.run_cli("syncs", "get", sid)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("cli-sync", out.stdout)
        out = self.run_cli("syncs", "run", sid)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("status:       succeeded", out.stdout)
        self.assertIn("items pushed: 1", out.stdout)
        out = self.run_cli("syncs", "create", "file", "--projectId", self.pid, "--name", "bad", "--config",
                       json.dumps({"path": self.out("b.env")}), "--key-schema", "NOPE")
        self.assertEqual(out.returncode, 1)
        self.assertIn("{{secretKey}}", out.stderr)
        out = self.run_cli("syncs", "remove", sid)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("removed secret sync cli-sync", out.stdout)
        out = self.run_cli("syncs", "get", sid)
        self.assertEqual(out.returncode, 1)
        self.assertIn("not found", out.stderr)


class Fake:
    """A stand-in of tests/fakes/ run as a subprocess on an ephemeral loopback port."""

    def __init__(self, name):
        here = os.path.dirname(os.path.abspath(__file__))
        self.dir = tempfile.mkdtemp(prefix="coffer-fake-")
        self.log_path = os.path.join(self.dir, "requests.jsonl")
        where = ["--log", self.log_path] if name == "github.py" else ["--state-dir", self.dir]
        self.proc = subprocess.Popen([sys.executable, os.path.join(here, "..", "fakes", name), "--port", "0"]
                                     + where, stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())
        self.url = "http://127.0.0.1:%d" % self.port

    def call(self, method, path, body=None, query=None):
        import http.client
        import urllib.parse
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        target = path + ("?" + urllib.parse.urlencode(query) if query else "")
        c.request(method, target, body=json.dumps(body) if body is not None else None,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, json.loads(data) if data else None

    def log(self):
        return self.call("GET", "/_fake/log")[1]

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class WithFakes:
    """Runs the stand-ins named in FAKES (class attribute -> tests/fakes script) once per test class, started
    before the class's server and stopped after it, also when the server fails to start."""
    FAKES = {}

    @classmethod
    def setUpClass(cls):
        started = []
        try:
            for attr, script in cls.FAKES.items():
                setattr(cls, attr, Fake(script))
                started.append(attr)
            super().setUpClass()
        except Exception:
            for attr in started:
                getattr(cls, attr).close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            for attr in cls.FAKES:
                getattr(cls, attr).close()


class GitHubSync(WithFakes, SyncHelpers, ServerTestCase):
    """The GitHub destination against tests/fakes/github.py, through a fine-grained token connection."""

    FAKES = {"fake": "github.py"}

    def setUp(self):
        super().setUp()
        self.pid = self.create_project()["id"]
        self.repo = harness.unique("repo")
        self.assertEqual(self.fake.call("POST", "/_fake/repos", {"owner": "acme", "repo": self.repo})[0], 201)
        self.token = self.fake.call("POST", "/_fake/pats", {"permissions": {"secrets": "write"},
                                                             "repositories": ["acme/" + self.repo]})[1]["token"]
        self.conn = self.ok("POST", "/api/v1/app-connections/github", body={
            "name": harness.unique("gh"), "method": "personal-access-token",
            "credentials": {"personalAccessToken": self.token, "host": self.fake.url}})["appConnection"]

    def held(self):
        return {k: v["value"] for k, v in self.fake.call("GET", "/_fake/secrets",
                                                         query={"owner": "acme", "repo": self.repo})[1].items()}

    def test_only_the_admin_aims_a_connection(self):
        """A connection reaches beyond one project: a project admin may not point it anywhere (create a sync
        with it, or change where such a sync writes), but may see and run the syncs of its project."""
        token = self.member_token(self.pid, "admin")
        config = {"scope": "repository", "owner": "acme", "repo": self.repo}
        body = {"name": harness.unique("pa"), "projectId": self.pid, "environment": "dev", "secretPath": "/",
                "connectionId": self.conn["id"], "destinationConfig": config}
        r = self.api("POST", "/api/v1/secret-syncs/github", body=body, token=token)
        self.assertError(r, 403, None, "only the admin")
        s = self.make_sync(self.pid, None, connectionId=self.conn["id"], destinationConfig=config,
                           destination="github")
        r = self.api("PATCH", "/api/v1/secret-syncs/github/" + s["id"], token=token,
                     body={"destinationConfig": dict(config, repo="other")})
        self.assertError(r, 403, None, "only the admin")
        self.assertEqual(self.sync_of(s["id"], "github")["destinationConfig"]["repo"], self.repo)
        self.ok_as(token, "GET", "/api/v1/secret-syncs/github/" + s["id"])
        self.ok_as(token, "POST", "/api/v1/secret-syncs/github/%s/sync-secrets" % s["id"])

    def ok_as(self, token, method, path):
        r = self.api(method, path, token=token)
        self.assertEqual(r.status, 200, r.body[:600])

    def test_change_reaches_github_within_5s_and_401_is_precise(self):
        canary = "canary-" + uuid.uuid4().hex
        self.set_secret(self.pid, "DEPLOY_KEY", canary)
        self.set_secret(self.pid, "REGION", "westeurope")
        s = self.make_sync(self.pid, None, connectionId=self.conn["id"],
                           destinationConfig={"scope": "repository", "owner": "acme", "repo": self.repo},
                           options={"keySchema": "TF_VAR_{{secretKey}}"}, destination="github")
        self.assertEqual(s["connection"], {"app": "github", "name": self.conn["name"], "id": self.conn["id"]})
        want = {"TF_VAR_DEPLOY_KEY": canary, "TF_VAR_REGION": "westeurope"}
        got, delay = wait_for(lambda: self.held() == want)
        self.assertTrue(got, self.held())
        print("TEST: github destination: first push %.3f s after create" % delay)
        mark = len(self.fake.log())
        self.update_secret(self.pid, "REGION", secretValue="northeurope")
        got, delay = wait_for(lambda: self.held().get("TF_VAR_REGION") == "northeurope")
        self.assertTrue(got, self.held())
        print("TEST: github destination: change -> repository secret in %.3f s" % delay)
        self.assertLess(delay, DELIVERY_S)
        # the exact requests of that run: the repository's public key, then one PUT per secret
        got, _ = wait_for(lambda: self.sync_of(s["id"], "github")["syncStatus"] == "succeeded")
        reqs = [(r["method"], r["path"]) for r in self.fake.log()[mark:]]
        base = "/repos/acme/%s/actions/secrets" % self.repo
        self.assertIn(("GET", base + "/public-key"), reqs)
        self.assertIn(("PUT", base + "/TF_VAR_REGION"), reqs)
        self.assertIn(("PUT", base + "/TF_VAR_DEPLOY_KEY"), reqs)
        self.assertFalse([r for r in reqs if r[0] == "DELETE"], reqs)
        # deletion at the destination follows a delete in Coffer
        self.assertEqual(self.api("DELETE", "/api/v3/secrets/raw/REGION",
                                  body={"workspaceId": self.pid, "environment": "dev"}).status, 200)
        got, _ = wait_for(lambda: self.held() == {"TF_VAR_DEPLOY_KEY": canary})
        self.assertTrue(got, self.held())
        self.assertIn(("DELETE", base + "/TF_VAR_REGION"), [(r["method"], r["path"]) for r in self.fake.log()])
        # a revoked token: a 401 from GitHub, named as such, never as a Coffer login problem
        self.assertEqual(self.fake.call("POST", "/_fake/revoke", {"token": self.token})[0], 200)
        self.update_secret(self.pid, "DEPLOY_KEY", secretValue=canary + "-2")
        got, _ = wait_for(lambda: self.sync_of(s["id"], "github")["syncStatus"] == "failed", timeout=10)
        failed = self.sync_of(s["id"], "github")
        self.assertEqual(failed["syncStatus"], "failed", failed)
        self.assertEqual(failed["lastSyncErrorCause"], "unauthorized", failed)
        self.assertEqual(failed["lastSyncMessage"], "GitHub refused the personal access token (401: Bad credentials)")
        r = self.api("POST", "/api/v1/secret-syncs/github/%s/sync-secrets" % s["id"])
        self.assertEqual(r.status, 200, r.body)  # the system's 401 is not the caller's
        out = self.run_cli("syncs", "status", s["id"])
        self.assertEqual(out.returncode, 1)
        self.assertIn("GitHub refused the personal access token (401: Bad credentials)", out.stdout)
        self.assertNotIn("coffer login", out.stdout + out.stderr)
        for text in (self.server.stderr, json.dumps(failed), json.dumps(self.fake.log()),
                     open(self.fake.log_path).read()):
            self.assertNotIn(canary, text)
            self.assertNotIn(self.token, text)

    def test_drift_seen_from_updated_at(self):
        self.set_secret(self.pid, "A", "1")
        s = self.make_sync(self.pid, None, connectionId=self.conn["id"],
                           destinationConfig={"scope": "repository", "owner": "acme", "repo": self.repo},
                           destination="github")
        self.assertTrue(wait_for(lambda: self.held() == {"A": "1"})[0])
        time.sleep(3.5)  # past the slack of the drift check (2 s) and GitHub's whole-second times
        self.fake.call("POST", "/_fake/secrets", {"owner": "acme", "repo": self.repo, "name": "A",
                                                  "value": "by-hand"})
        r = self.ok("POST", "/api/v1/secret-syncs/github/%s/sync-secrets" % s["id"])["secretSync"]
        self.assertEqual(r["drift"], [{"name": "A", "change": "updated"}], r)
        self.assertEqual(self.held(), {"A": "1"})

    def test_refusals(self):
        body = {"name": "g", "projectId": self.pid, "environment": "dev", "secretPath": "/",
                "destinationConfig": {"scope": "repository", "owner": "acme", "repo": self.repo}}
        self.assertError(self.api("POST", "/api/v1/secret-syncs/github", body=body), 422, None, "connectionId")
        body["connectionId"] = self.conn["id"]
        # a GitHub connection for another destination: refused (404 while that destination is not built in)
        r = self.api("POST", "/api/v1/secret-syncs/azure-devops", body=body)
        self.assertIn(r.status, (404, 422), r.body)
        if r.status == 422:
            self.assertError(r, 422, None, "github")
        body["destinationConfig"] = {"scope": "organization", "owner": "acme"}
        self.assertError(self.api("POST", "/api/v1/secret-syncs/github", body=body), 422, None, "scope")


class AzureSync(WithFakes, SyncHelpers, ServerTestCase):
    """Azure DevOps variable groups and Key Vault against tests/fakes/azure.py."""

    FAKES = {"fake": "azure.py"}

    def setUp(self):
        super().setUp()
        self.pid = self.create_project()["id"]

    def control(self, path, body):
        status, answer = self.fake.call("POST", path, body)
        self.assertEqual(status, 200, answer)
        return answer

    def ado_org(self):
        """A new organization of the fake with project Shop, and a PAT that may manage its variable groups."""
        org, token = harness.unique("org"), "pat-" + uuid.uuid4().hex
        self.control("/_fake/ado/orgs", {"org": org, "projects": [{"name": "Shop"}]})
        self.control("/_fake/ado/pats", {"org": org, "token": token,
                                         "scopes": ["vso.variablegroups_manage", "vso.project"]})
        return org, token

    def ado_connection(self, org, token):
        return self.ok("POST", "/api/v1/app-connections/azure-devops", body={
            "name": harness.unique("ado"), "method": "access-token",
            "credentials": {"accessToken": token, "orgName": org, "instanceUrl": self.fake.url + "/ado"}})[
            "appConnection"]

    def test_variable_group_within_5s_and_401(self):
        org, token = self.ado_org()
        conn = self.ado_connection(org, token)
        canary = "canary-" + uuid.uuid4().hex
        self.set_secret(self.pid, "DB_PASSWORD", canary)
        s = self.make_sync(self.pid, None, destination="azure-devops", connectionId=conn["id"],
                           destinationConfig={"devopsProjectName": "Shop", "variableGroupName": "shop-prod"})

        def group():
            status, groups = self.fake.call("GET", "/_fake/ado/groups", query={"org": org, "project": "Shop"})
            g = [x for x in groups or [] if x["name"] == "shop-prod"]
            return {k: v["valueSha256"] for k, v in g[0]["variables"].items()} if g else {}

        sha = lambda v: "sha256:" + hashlib.sha256(v.encode()).hexdigest()
        got, delay = wait_for(lambda: group() == {"DB_PASSWORD": sha(canary)})
        self.assertTrue(got, group())
        print("TEST: azure-devops destination: first push %.3f s after create" % delay)
        self.update_secret(self.pid, "DB_PASSWORD", secretValue=canary + "-2")
        got, delay = wait_for(lambda: group() == {"DB_PASSWORD": sha(canary + "-2")})
        self.assertTrue(got, group())
        print("TEST: azure-devops destination: change -> variable group in %.3f s" % delay)
        self.assertLess(delay, DELIVERY_S)
        reqs = [(r["method"], r["path"]) for r in self.fake.call("GET", "/_fake/log")[1]]
        self.assertTrue([r for r in reqs if r[0] == "PUT" and "/distributedtask/variablegroups/" in r[1]], reqs)
        # the PAT revoked: Azure DevOps' 401 is the sync's status, not a Coffer error
        self.control("/_fake/ado/pats/revoke", {"token": token})
        self.update_secret(self.pid, "DB_PASSWORD", secretValue=canary + "-3")
        got, _ = wait_for(lambda: self.sync_of(s["id"], "azure-devops")["syncStatus"] == "failed", timeout=10)
        failed = self.sync_of(s["id"], "azure-devops")
        self.assertEqual((failed["syncStatus"], failed["lastSyncErrorCause"]), ("failed", "unauthorized"), failed)
        self.assertIn("Azure DevOps", failed["lastSyncMessage"])
        self.assertIn("401", failed["lastSyncMessage"])
        out = self.run_cli("syncs", "status", s["id"])
        self.assertEqual(out.returncode, 1)
        self.assertIn("Azure DevOps", out.stdout)
        self.assertNotIn("coffer login", out.stdout + out.stderr)
        for text in (self.server.stderr, json.dumps(failed), open(self.fake.log_path).read()
                     if os.path.exists(self.fake.log_path) else ""):
            self.assertNotIn(canary, text)
            self.assertNotIn(token, text)

    def key_vault(self, secret_expires_in=86400, **app):
        """A Key Vault connection to a new vault of the fake (app: more fields of the Entra app); the client
        secret is kept in self.kv_secret."""
        tenant, client, secret, vault = str(uuid.uuid4()), str(uuid.uuid4()), "s-" + uuid.uuid4().hex, \
            harness.unique("vault")
        self.kv_secret = secret
        self.control("/_fake/entra/apps", dict(app, tenant=tenant, clientId=client, secrets=[
            {"value": secret, "expiresAt": int(time.time()) + secret_expires_in}]))
        self.control("/_fake/kv/vaults", {"vault": vault, "roles": {client: ["Key Vault Secrets Officer"]}})
        conn = self.ok("POST", "/api/v1/app-connections/azure-key-vault", body={
            "name": harness.unique("kv"), "method": "client-secret",
            "credentials": {"tenantId": tenant, "clientId": client, "clientSecret": secret,
                            "authorityHost": self.fake.url + "/entra"}})["appConnection"]
        return conn, vault, client

    def vault_state(self, vault):
        return self.fake.call("GET", "/_fake/kv/state", query={"vault": vault})[1]

    def test_key_vault_within_5s_and_collision_refused(self):
        conn, vault, client = self.key_vault()
        canary = "canary-" + uuid.uuid4().hex
        self.set_secret(self.pid, "DB_PASSWORD", canary)
        s = self.make_sync(self.pid, None, destination="azure-key-vault", connectionId=conn["id"],
                           destinationConfig={"vaultBaseUrl": self.fake.url + "/kv/" + vault})
        sha = "sha256:" + hashlib.sha256(canary.encode()).hexdigest()
        got, delay = wait_for(lambda: [v["valueSha256"] for v in self.vault_state(vault)["secrets"].values()]
                              == [sha])
        self.assertTrue(got, self.vault_state(vault))
        print("TEST: azure-key-vault destination: first push %.3f s after create" % delay)
        name = list(self.vault_state(vault)["secrets"])[0]
        self.update_secret(self.pid, "DB_PASSWORD", secretValue=canary + "-2")
        sha2 = "sha256:" + hashlib.sha256((canary + "-2").encode()).hexdigest()
        got, delay = wait_for(lambda: self.vault_state(vault)["secrets"][name]["valueSha256"] == sha2)
        self.assertTrue(got, self.vault_state(vault))
        print("TEST: azure-key-vault destination: change -> vault secret in %.3f s" % delay)
        self.assertLess(delay, DELIVERY_S)
        # two keys that Key Vault's name rule maps to one name: refused, naming both
        self.set_secret(self.pid, "DB-PASSWORD", "x")
        got, _ = wait_for(lambda: self.sync_of(s["id"], "azure-key-vault")["syncStatus"] == "failed")
        failed = self.sync_of(s["id"], "azure-key-vault")
        self.assertEqual(failed["lastSyncErrorCause"], "collision", failed)
        self.assertIn("DB_PASSWORD", failed["lastSyncMessage"])
        self.assertIn("DB-PASSWORD", failed["lastSyncMessage"])
        self.assertNotIn(canary, self.server.stderr)

    def failed_with(self, sid, destination, cause):
        """Waits for sync sid to fail; checks the cause and that `coffer syncs status` prints the same
        message, exit 1, without sending the user to log in. Returns the message."""
        got, _ = wait_for(lambda: self.sync_of(sid, destination)["syncStatus"] == "failed", timeout=10)
        failed = self.sync_of(sid, destination)
        self.assertEqual((failed["syncStatus"], failed["lastSyncErrorCause"]), ("failed", cause), failed)
        out = self.run_cli("syncs", "status", sid)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn(failed["lastSyncMessage"], out.stdout)
        self.assertNotIn("coffer login", out.stdout + out.stderr)
        return failed["lastSyncMessage"]

    def test_each_401_is_named_precisely(self):
        # Azure DevOps: a PAT past the expiry recorded on the connection; Azure DevOps itself answers a bare 401
        org, token = self.ado_org()
        expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
        conn = self.ok("POST", "/api/v1/app-connections/azure-devops", body={
            "name": harness.unique("ado"), "method": "access-token", "expiresAt": expiry,
            "credentials": {"accessToken": token, "orgName": org, "instanceUrl": self.fake.url + "/ado"}})[
            "appConnection"]
        self.set_secret(self.pid, "A", "1")
        s = self.make_sync(self.pid, None, destination="azure-devops", connectionId=conn["id"],
                           destinationConfig={"devopsProjectName": "Shop", "variableGroupName": "g"})
        self.wait_status(s["id"], "succeeded", destination="azure-devops")
        self.control("/_fake/ado/pats/expire", {"token": token})
        time.sleep(max(0.0, calendar.timegm(time.strptime(expiry, "%Y-%m-%dT%H:%M:%SZ")) - time.time() + 0.2))
        self.update_secret(self.pid, "A", secretValue="2")
        message = self.failed_with(s["id"], "azure-devops", "unauthorized")
        self.assertEqual(message, "Azure DevOps refused the personal access token (401): the credential of "
                                  "connection '%s' expired at %s" % (conn["name"], expiry.replace("Z", ".000Z")))
        self.ok("DELETE", "/api/v1/secret-syncs/azure-devops/" + s["id"])

        # Entra ID: the application's client secret expired (AADSTS7000222)
        kv, vault, client = self.key_vault(secret_expires_in=-60)
        secrets = [self.kv_secret]
        s = self.make_sync(self.pid, None, destination="azure-key-vault", connectionId=kv["id"],
                           destinationConfig={"vaultBaseUrl": self.fake.url + "/kv/" + vault})
        message = self.failed_with(s["id"], "azure-key-vault", "unauthorized")
        self.assertIn("Entra ID refused the client secret (401 invalid_client): AADSTS7000222: The provided "
                      "client secret keys for app '%s' are expired" % client, message)
        self.ok("DELETE", "/api/v1/secret-syncs/azure-key-vault/" + s["id"])

        # Key Vault: a token it no longer accepts (Entra issues tokens already expired)
        kv, vault, client = self.key_vault(tokenLifetime=0)
        secrets.append(self.kv_secret)
        s = self.make_sync(self.pid, None, destination="azure-key-vault", connectionId=kv["id"],
                           destinationConfig={"vaultBaseUrl": self.fake.url + "/kv/" + vault})
        message = self.failed_with(s["id"], "azure-key-vault", "unauthorized")
        self.assertIn("Azure Key Vault refused", message)
        self.assertIn("(401 Unauthorized): AKV10022: Invalid or expired token.", message)
        for text in (self.server.stderr, open(self.fake.log_path).read() if os.path.exists(self.fake.log_path)
                     else ""):
            for credential in [token] + secrets:
                self.assertNotIn(credential, text)

    def test_variable_group_edited_by_hand_is_drift(self):
        org, token = self.ado_org()
        conn = self.ado_connection(org, token)
        self.set_secret(self.pid, "A", "1")
        s = self.make_sync(self.pid, None, destination="azure-devops", connectionId=conn["id"],
                           destinationConfig={"devopsProjectName": "Shop", "variableGroupName": "g"})
        self.wait_status(s["id"], "succeeded", destination="azure-devops")
        time.sleep(3.5)  # past the drift check's slack (2 s) and the group's whole-second modifiedOn
        # someone edits the group in the portal (Update, api-version 7.1)
        import http.client
        group = [g for g in self.fake.call("GET", "/_fake/ado/groups", query={"org": org, "project": "Shop"})[1]
                 if g["name"] == "g"][0]
        c = http.client.HTTPConnection("127.0.0.1", self.fake.port, timeout=10)
        c.request("PUT", "/ado/%s/_apis/distributedtask/variablegroups/%d?api-version=7.1" % (org, group["id"]),
                  body=json.dumps({"name": "g", "type": "Vsts", "variables": {"A": {"value": "by-hand",
                                                                                     "isSecret": True}}}),
                  headers={"Content-Type": "application/json", "X-TFS-FedAuthRedirect": "Suppress",
                           "Authorization": "Basic " + base64.b64encode((":" + token).encode()).decode()})
        self.assertEqual(c.getresponse().status, 200)
        c.close()
        r = self.ok("POST", "/api/v1/secret-syncs/azure-devops/%s/sync-secrets" % s["id"])["secretSync"]
        self.assertEqual(r["drift"], [{"name": "A", "change": "updated"}], r)
        sha = "sha256:" + hashlib.sha256(b"1").hexdigest()
        group = [g for g in self.fake.call("GET", "/_fake/ado/groups", query={"org": org, "project": "Shop"})[1]
                 if g["name"] == "g"][0]
        self.assertEqual(group["variables"]["A"]["valueSha256"], sha)
        # the repair itself is not drift: the next run finds none
        r = self.ok("POST", "/api/v1/secret-syncs/azure-devops/%s/sync-secrets" % s["id"])["secretSync"]
        self.assertEqual(r["drift"], [], r)

    def test_key_vault_soft_delete_then_recreate_recovers(self):
        conn, vault, client = self.key_vault()
        self.set_secret(self.pid, "API_KEY", "one")
        self.set_secret(self.pid, "KEEP", "k")
        s = self.make_sync(self.pid, None, destination="azure-key-vault", connectionId=conn["id"],
                           destinationConfig={"vaultBaseUrl": self.fake.url + "/kv/" + vault})
        self.assertTrue(wait_for(lambda: "API-KEY" in self.vault_state(vault)["secrets"])[0], self.vault_state(vault))
        # deleted in Coffer: soft-deleted in the vault (not purged)
        self.assertEqual(self.api("DELETE", "/api/v3/secrets/raw/API_KEY",
                                  body={"workspaceId": self.pid, "environment": "dev"}).status, 200)
        got, _ = wait_for(lambda: self.vault_state(vault)["deleted"] == ["API-KEY"])
        self.assertTrue(got, self.vault_state(vault))
        self.assertNotIn("API-KEY", self.vault_state(vault)["secrets"])
        self.fake.call("DELETE", "/_fake/log")
        # re-created: recovered with its history, then written as its next version; no 409 failure
        self.set_secret(self.pid, "API_KEY", "two")
        sha = "sha256:" + hashlib.sha256(b"two").hexdigest()
        got, _ = wait_for(lambda: self.vault_state(vault)["secrets"].get("API-KEY", {}).get("valueSha256") == sha)
        self.assertTrue(got, self.vault_state(vault))
        state = self.vault_state(vault)
        self.assertEqual((state["deleted"], state["secrets"]["API-KEY"]["versions"]), ([], 2), state)
        calls = [(r["method"], r["path"].split("/kv/" + vault, 1)[-1], r["status"]) for r in self.fake.log()
                 if r["path"].startswith("/kv/")]
        self.assertIn(("PUT", "/secrets/API-KEY", 409), calls)
        self.assertIn(("POST", "/deletedsecrets/API-KEY/recover", 200), calls)
        self.assertNotIn("DELETE", [c[0] for c in calls])
        self.wait_status(s["id"], "succeeded", destination="azure-key-vault")

    def test_throttled_destination_is_retried_and_the_change_arrives(self):
        conn, vault, client = self.key_vault()
        self.set_secret(self.pid, "A", "1")
        s = self.make_sync(self.pid, None, destination="azure-key-vault", connectionId=conn["id"],
                           destinationConfig={"vaultBaseUrl": self.fake.url + "/kv/" + vault})
        self.wait_status(s["id"], "succeeded", destination="azure-key-vault")
        self.fake.call("DELETE", "/_fake/log")
        # the vault answers the next six requests 429 with Retry-After: 1
        self.control("/_fake/throttle", {"count": 6, "retryAfter": 1, "prefix": "/kv/" + vault})
        self.update_secret(self.pid, "A", secretValue="2")
        sha2 = "sha256:" + hashlib.sha256(b"2").hexdigest()
        got, delay = wait_for(lambda: self.vault_state(vault)["secrets"]["A"]["valueSha256"] == sha2, timeout=30)
        self.assertTrue(got, self.vault_state(vault))
        print("TEST: azure-key-vault destination: throttled six times, change arrived in %.3f s" % delay)
        self.wait_status(s["id"], "succeeded", timeout=10, destination="azure-key-vault")
        log = [r for r in self.fake.log() if r["path"].startswith("/kv/")]
        statuses = [r["status"] for r in log]
        self.assertEqual(statuses.count(429), 6, statuses)
        self.assertGreater(delay, 5.0, "Retry-After was not waited for")


class Restart(SyncHelpers, unittest.TestCase):
    """A change waiting for its destination when the server is killed (-9) arrives after the restart."""

    def api(self, *a, **kw):
        return self.server.api(*a, **kw)

    def ok(self, method, path, query=None, body=None, **kw):
        r = self.api(method, path, query=query, body=body, **kw)
        self.assertEqual(r.status, 200, r.body[:600])
        return r.json

    def test_restart_mid_queue_loses_nothing(self):
        d = tempfile.mkdtemp(prefix="coffer-sync-", dir=SYNC_ROOT)
        self.server = Server(env=SYNC_ENV)
        try:
            self.server.start()
            pid = self.ok("POST", "/api/v2/workspace", body={"projectName": harness.unique("r")})["project"]["id"]
            self.ok("POST", "/api/v3/secrets/raw/A", body={"workspaceId": pid, "environment": "dev",
                                                            "secretValue": "before"})
            target = os.path.join(d, "later", "out.env")
            s = self.make_sync(pid, target)
            self.wait_status(s["id"], "failed")
            self.ok("PATCH", "/api/v3/secrets/raw/A", body={"workspaceId": pid, "environment": "dev",
                                                             "secretValue": "after"})
            self.assertTrue(self.sync_of(s["id"])["pending"])
            self.server.kill9()
            os.mkdir(os.path.join(d, "later"))
            self.server.start()
            got, delay = wait_for(file_has(target, {"A": "after"}), timeout=10)
            self.assertTrue(got, "the change waiting at the kill did not arrive")
            print("TEST: file destination: after kill -9 and restart, delivered %.3f s after the start" % delay)
            self.wait_status(s["id"], "succeeded")
        finally:
            self.server.stop()
            self.server.cleanup()
            shutil.rmtree(d, ignore_errors=True)

    def test_mark_lost_in_a_crash_is_recovered_at_start(self):
        """A change committed just before a crash whose sync was not yet marked pending (the state is made
        directly in the store) arrives after the restart; a sync whose source did not change is checked and
        not written."""
        d = tempfile.mkdtemp(prefix="coffer-sync-", dir=SYNC_ROOT)
        self.server = Server(env=SYNC_ENV)
        try:
            self.server.start()
            pids = [self.ok("POST", "/api/v2/workspace", body={"projectName": harness.unique("r")})["project"]["id"]
                    for _ in range(2)]
            for pid in pids:
                self.ok("POST", "/api/v3/secrets/raw/A", body={"workspaceId": pid, "environment": "dev",
                                                                "secretValue": "before"})
            lost, quiet = os.path.join(d, "lost.env"), os.path.join(d, "quiet.env")
            s = self.make_sync(pids[0], lost)
            q = self.make_sync(pids[1], quiet)
            self.assertTrue(wait_for(file_has(lost, {"A": "before"}))[0])
            self.assertTrue(wait_for(file_has(quiet, {"A": "before"}))[0])
            self.wait_status(s["id"], "succeeded")
            self.wait_status(q["id"], "succeeded")
            self.ok("PATCH", "/api/v1/secret-syncs/file/" + s["id"], body={"isAutoSyncEnabled": False})
            self.wait_status(s["id"], "succeeded")
            self.ok("PATCH", "/api/v3/secrets/raw/A", body={"workspaceId": pids[0], "environment": "dev",
                                                             "secretValue": "after"})
            self.assertFalse(self.sync_of(s["id"])["pending"])
            inode = os.stat(quiet).st_ino
            self.server.kill9()
            harness.sql(self.server.data_dir, "UPDATE syncs SET auto_sync = 1 WHERE id = '%s'" % s["id"])
            self.server.start()
            got, delay = wait_for(file_has(lost, {"A": "after"}), timeout=10)
            self.assertTrue(got, "the change whose mark was lost did not arrive")
            print("TEST: file destination: a change whose mark was lost, delivered %.3f s after the start" % delay)
            got, _ = wait_for(lambda: [e for e in self.runs_audited(q["id"]) if "unchanged" in e["reason"]])
            self.assertTrue(got, self.runs_audited(q["id"]))
            self.assertEqual(os.stat(quiet).st_ino, inode, "an unchanged destination was rewritten")
        finally:
            self.server.stop()
            self.server.cleanup()
            shutil.rmtree(d, ignore_errors=True)


@unittest.skipUnless(harness.PG_DIR, "PostgreSQL only: two servers share one database")
class TwoNodes(SyncHelpers, unittest.TestCase):
    """Two servers on one PostgreSQL database: each change is delivered once, by one of them."""

    def api(self, *a, **kw):
        return self.nodes[0].api(*a, **kw)

    def ok(self, method, path, query=None, body=None, node=0, **kw):
        r = self.nodes[node].api(method, path, query=query, body=body, **kw)
        self.assertEqual(r.status, 200, r.body[:600])
        return r.json

    def test_each_change_delivered_once(self):
        from test_multinode import root_key, start_nodes
        d = tempfile.mkdtemp(prefix="coffer-sync-", dir=SYNC_ROOT)
        uri = harness.new_pg_database()
        self.nodes = start_nodes(2, uri, root_key(), env=SYNC_ENV)
        try:
            pid = self.ok("POST", "/api/v2/workspace", body={"projectName": harness.unique("two")})["project"]["id"]
            self.ok("POST", "/api/v3/secrets/raw/A", body={"workspaceId": pid, "environment": "dev",
                                                            "secretValue": "0"})
            target = os.path.join(d, "out.env")
            s = self.make_sync(pid, target)
            self.assertTrue(wait_for(file_has(target, {"A": "0"}))[0])
            time.sleep(1.5)

            def runs():
                return sum(len(re.findall(r"sync_done sync=\"%s\"" % s["id"], n.stderr)) for n in self.nodes)

            for i in range(1, 7):
                before = runs()
                node = i % 2
                self.ok("PATCH", "/api/v3/secrets/raw/A", node=node,
                        body={"workspaceId": pid, "environment": "dev", "secretValue": str(i)})
                got, delay = wait_for(file_has(target, {"A": str(i)}))
                self.assertTrue(got, "change %d (on node %d) not delivered" % (i, node))
                time.sleep(1.5)  # both workers poll every second: a second delivery would show by now
                self.assertEqual(runs() - before, 1, "change %d delivered %d times" % (i, runs() - before))
                print("TEST: two nodes: change %d on node %d delivered once in %.3f s" % (i, node, delay))
        finally:
            for n in self.nodes:
                n.stop()
                n.cleanup()
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
