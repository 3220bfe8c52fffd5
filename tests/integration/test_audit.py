"""The tamper-evident audit log (docs/audit.md).

- Every request is recorded with actor, source address, user agent, action, place, keys, result, reason and
  request id: secret writes and reads (with the key names), refused tokens, failed and successful logins.
- No secret value, client secret, access token or admin token appears in any audit record (API answer or raw
  database rows) or in the server log: canary values are stored and searched for.
- Filters (actor, action prefix, project, since) and cursor paging; the CLI lists and verifies; only the admin
  may read the log; bad filters are 422.
- Tampering with the database directly, server stopped, in each way: an edited event, a deleted event, an
  inserted event (later ones renumbered), two events swapped, the log cut after a signed checkpoint. `coffer
  audit verify` exits 3 and names the kind and the event; an intact log verifies with exit 0.
- Root key rotation rewraps the audit key: the log still verifies afterwards.
- The head (signed, outside the database): deleting the last events with the checkpoints over them, or wiping both
  tables, is found and the missing range named, from the head file, from the running server's last head, and
  (head file deleted too, which is itself reported) from each kind of --anchor (head file copy, SEQ:HASH, the file
  stream); a forged head file does not verify; the stream carries the head; a timer checkpoint covers a quiet
  tail even when the server is then killed.
- Streams: the JSON-lines file (mode 0600) and syslog (RFC 5424 over UDP to a local listener) carry exactly
  the stored events; the HTTP endpoint gets batches with the bearer token, failed posts are retried, requests are
  never held up by a failing or absent endpoint; bad stream settings refuse to start with a message naming them.
- Fail-closed mode: while the audit table refuses inserts (a trigger added from outside), requests get 503 naming
  the audit log and are not served; normal mode keeps serving and writes the held events once the store takes
  them again, and the chain is still intact.
"""

import hashlib
import json
import os
import tempfile
import time
import unittest
import uuid

import harness
from test_identities import IdentityHelpers

EVENTS = "/api/v1/audit/events"


class AuditHelpers:
    def events(self, server=None, **query):
        server = server or self.server
        r = server.api("GET", EVENTS, query=dict(query, limit=1000))
        self.assertEqual(r.status, 200, r.body[:500])
        return r.json["events"]

    def last_event(self, **query):
        events = self.events(**query)
        self.assertTrue(events, "no audit event matches %r" % (query,))
        return events[-1]


class AuditEvents(IdentityHelpers, AuditHelpers, harness.ServerTestCase):

    def test_secret_writes_and_reads_are_recorded_with_their_keys(self):
        project = self.create_project()
        pid = project["id"]
        self.set_secret(pid, "DB_PASSWORD", "canary-db-0f3a", env="prod")
        self.set_secret(pid, "API_KEY", "canary-api-77c1", env="prod")
        r = self.api("GET", "/api/v3/secrets/raw", query={"workspaceId": pid, "environment": "prod",
                                                          "secretPath": "/"},
                     headers={"User-Agent": "pipeline-agent/1.0"})
        self.assertEqual(r.status, 200)
        listed = self.last_event(action="secrets.list", projectId=pid)
        self.assertEqual(listed["actor"], {"kind": "admin", "id": "", "name": "admin", "breakGlass": True})
        self.assertEqual((listed["environment"], listed["secretPath"]), ("prod", "/"))
        self.assertEqual(sorted(listed["keys"]), ["API_KEY", "DB_PASSWORD"])
        self.assertEqual(listed["result"], "ok")
        self.assertEqual(listed["sourceIp"], "127.0.0.1")
        self.assertEqual(listed["userAgent"], "pipeline-agent/1.0")
        self.assertEqual(listed["requestId"], r.headers["X-Request-Id"])
        self.assertRegex(listed["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        created = self.events(action="secrets.create", projectId=pid)
        self.assertEqual([e["keys"] for e in created], [["DB_PASSWORD"], ["API_KEY"]])

        # An identity's read names the identity; a refused read is recorded as denied with the reason.
        m = self.machine(pid, "viewer", rules=[{"actions": ["read"], "environment": "prod",
                                                "secretPath": "/"}])
        got = self.get_as(m["token"], pid, "API_KEY", env="prod")
        self.assertEqual(got.status, 200, got.body[:300])
        read = self.last_event(action="secrets.read", actor=m["id"])
        self.assertEqual(read["actor"], {"kind": "identity", "id": m["id"], "name": m["name"]})
        self.assertEqual(read["keys"], ["API_KEY"])
        denied = self.get_as(m["token"], pid, "API_KEY", env="dev")
        self.assertEqual(denied.status, 403)
        refused = self.last_event(action="secrets.read", actor=m["name"])
        self.assertEqual(refused["result"], "denied")
        self.assertEqual(refused["environment"], "dev")
        self.assertIn("dev", refused["reason"])

    def test_text_that_is_not_utf8_is_recorded_readably(self):
        """Finding: a User-Agent that is not UTF-8, or a long one cut inside a character, was stored as sent, and
        every JSON form of the event failed: the audit list answered 500 "out of memory" and archiving stopped for
        good, all from one request that needed no token. Such bytes are recorded as '?'."""
        sent = {"bad\xff\xfeagent": "bad??agent",            # http.client sends str headers as Latin-1 bytes
                "x" * 254 + "\xc3\xa9": "x" * 254 + "?"}      # UTF-8 "é", cut after its first byte
        ids = {}
        for agent in sent:
            for token in (harness.ADMIN_TOKEN, None):
                r = self.api("GET", "/api/v1/workspace", headers={"User-Agent": agent}, token=token)
                self.assertEqual(r.status, 200 if token else 401, r.body[:300])
                ids[r.headers["X-Request-Id"]] = sent[agent]
        got = {e["requestId"]: e["userAgent"] for e in self.events() if e["requestId"] in ids}
        self.assertEqual(got, ids)
        self.assertEqual(self.api("POST", "/api/v1/audit/verify").json["ok"], True)

    def test_a_long_list_of_keys_is_stored_once_and_shown_whole(self):
        """A list's event refers to its key names, stored once for every event listing the same keys; the API, the
        CLI and `coffer audit verify` all see the whole list."""
        project = self.create_project()
        pid = project["id"]
        keys = ["LIST_KEY_%03d" % i for i in range(100)]
        r = self.api("POST", "/api/v3/secrets/batch/raw", body={
            "workspaceId": pid, "environment": "dev", "secretPath": "/",
            "secrets": [{"secretKey": k, "secretValue": "v"} for k in keys]})
        self.assertEqual(r.status, 200, r.body[:300])
        for _ in range(3):
            self.assertEqual(len(self.list_secrets(pid).json["secrets"]), 100)
        listed = self.events(action="secrets.list", projectId=pid)
        self.assertEqual(len(listed), 3)
        for event in listed:
            self.assertEqual(sorted(event["keys"]), keys)
        seqs = ", ".join(str(e["seq"]) for e in listed)
        rows = harness.sql(self.server.data_dir,
                           "SELECT c.keys, c.key_set FROM audit_events e JOIN audit_contexts c ON c.id = e.context "
                           "WHERE e.seq IN (%s)" % seqs)
        self.assertEqual(len(rows), 3)
        self.assertEqual({row[0] or "" for row in rows}, {""}, "the names are not repeated in each event")
        self.assertEqual(len({str(row[1]) for row in rows}), 1, "the three events share one key set")
        rc, out, err = self.cli("audit", "list", "--projectId", pid, "--action", "secrets.list", "--output", "json")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("LIST_KEY_099", out)
        rc, out, err = self.cli("audit", "verify")
        self.assertEqual(rc, 0, out + err)

    def test_authentication_attempts_are_recorded(self):
        r = self.api("GET", "/api/v1/workspace", token="not-a-token-at-all")
        self.assertEqual(r.status, 401)
        event = self.last_event(action="auth.token")
        self.assertEqual((event["result"], event["actor"]["kind"]), ("denied", "anonymous"))
        self.assertTrue(event["reason"])
        client_id = str(uuid.uuid4())
        self.assertEqual(self.login(client_id, "wrong-secret-wrong-secret").status, 401)
        # An unknown client id (perhaps a credential in the wrong field) is recorded by its fingerprint.
        fingerprint = "sha256:" + hashlib.sha256(client_id.encode()).hexdigest()[:8]
        failed = self.last_event(action="auth.login.universal-auth", actor=fingerprint)
        self.assertEqual(failed["result"], "denied")
        self.assertIn("unknown client id", failed["reason"])
        self.assertEqual(failed["actor"], {"kind": "client-id", "id": fingerprint, "name": ""})
        m = self.machine()
        ok = self.last_event(action="auth.login.universal-auth", actor=m["clientId"])
        self.assertEqual((ok["result"], ok["reason"]), ("ok", ""))
        # An identity's client secret made by the admin: the route names the operation, the path its target.
        made = self.last_event(action="http POST /api/v1/auth/universal-auth/identities/:identityId/client-secrets")
        self.assertEqual(made["secretPath"], "/api/v1/auth/universal-auth/identities/%s/client-secrets" % m["id"])
        self.assertEqual(made["actor"]["kind"], "admin")

    def test_no_credential_or_value_in_any_record_or_log(self):
        project = self.create_project()
        canaries = ["canary-value-%s" % uuid.uuid4().hex for _ in range(3)]
        for i, value in enumerate(canaries):
            self.set_secret(project["id"], "CANARY_%d" % i, value)
        m = self.machine(project["id"], "viewer")
        self.assertEqual(self.list_as(m["token"], project["id"]).status, 200)
        self.assertEqual(self.login(m["clientId"], m["clientSecret"] + "x").status, 401)
        self.update_secret(project["id"], "CANARY_0", secretValue=canaries[0] + "-v2")
        # The whole log, as the API shows it and as the database holds it.
        shown = json.dumps(self.events())
        self.api("POST", "/api/v1/audit/checkpoints")
        rows = repr(harness.sql(self.server.data_dir, "SELECT * FROM audit_events") +
                    harness.sql(self.server.data_dir, "SELECT * FROM audit_contexts") +
                    harness.sql(self.server.data_dir, "SELECT * FROM audit_key_sets"))
        log = self.server.stderr + self.server.stdout
        for place, text in (("audit API", shown), ("audit rows", rows), ("server log", log)):
            for canary in canaries + [m["clientSecret"], m["token"], self.server.token]:
                self.assertNotIn(canary, text, "a credential or secret value is in the %s" % place)
        self.assertIn("CANARY_0", shown)  # the key names are there, the values are not

    def test_filters_and_paging(self):
        project = self.create_project()
        for i in range(5):
            self.set_secret(project["id"], "PAGED_%d" % i, "v")
        all_writes = self.events(action="secrets.create", projectId=project["id"])
        self.assertEqual(len(all_writes), 5)
        self.assertTrue(self.events(action="secrets.", projectId=project["id"]))
        self.assertEqual(self.events(action="secrets.", projectId=str(uuid.uuid4())), [])
        first = self.api("GET", EVENTS, query={"action": "secrets.create", "projectId": project["id"],
                                               "limit": 2}).json
        self.assertEqual(len(first["events"]), 2)
        self.assertEqual(first["nextAfter"], first["events"][-1]["seq"])
        rest = self.api("GET", EVENTS, query={"action": "secrets.create", "projectId": project["id"],
                                              "after": first["nextAfter"]}).json
        self.assertEqual([e["seq"] for e in first["events"] + rest["events"]], [e["seq"] for e in all_writes])
        self.assertIsNone(rest["nextAfter"])
        self.assertEqual(self.events(since="2999-01-01T00:00:00Z"), [])
        self.assertTrue(self.events(since="1h", action="secrets.create", projectId=project["id"]))
        seqs = [e["seq"] for e in self.events()]
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual(len(seqs), len(set(seqs)))

    def test_bad_filters_and_non_admins(self):
        for query, field in (({"since": "yesterday-ish"}, "since"), ({"limit": "0"}, "limit"),
                             ({"limit": "5000"}, "limit"), ({"after": "-3"}, "after")):
            self.assertError(self.api("GET", EVENTS, query=query), 422, "ValidationFailure", field)
        m = self.machine()
        for method, path in (("GET", EVENTS), ("POST", "/api/v1/audit/verify"),
                             ("GET", "/api/v1/audit/public-key")):
            self.assertError(self.api(method, path, token=m["token"]), 403, None, "audit log")
        self.assertEqual(self.api("GET", EVENTS, token=None).status, 401)

    def test_cli_list_verify_and_public_key(self):
        project = self.create_project()
        self.set_secret(project["id"], "CLI_KEY", "v")
        rc, out, err = self.cli("audit", "list", "--action", "secrets.create", "--projectId", project["id"])
        self.assertEqual(rc, 0, err)
        self.assertIn("CLI_KEY", out)
        self.assertIn("secrets.create", out)
        rc, out, err = self.cli("audit", "list", "--action", "secrets.", "--output", "json")
        self.assertEqual(rc, 0, err)
        self.assertIn("events", json.loads(out))
        rc, out, err = self.cli("audit", "checkpoint")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.cli("audit", "verify")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("intact", out)
        rc, out, err = self.cli("audit", "list", "--since", "not-a-time")
        self.assertEqual(rc, 1)
        self.assertIn("since", err)
        key = self.ok("GET", "/api/v1/audit/public-key")
        self.assertEqual(key["algorithm"], "Ed25519")
        self.assertEqual(len(key["publicKeyHex"]), 64)


class AuditTamper(AuditHelpers, unittest.TestCase):
    """Each test: a log of about 30 events and a signed checkpoint, the server stopped, the database edited
    directly, the server started again, `coffer audit verify`."""

    def setUp(self):
        self.server = harness.Server()
        self.server.start()
        s = self.server
        pid = s.api("POST", "/api/v2/workspace", body={"projectName": harness.unique("tamper")}).json["project"]["id"]
        for i in range(12):
            r = s.api("POST", "/api/v3/secrets/raw/KEY_%d" % i,
                      body={"workspaceId": pid, "environment": "dev", "secretValue": "v%d" % i})
            self.assertEqual(r.status, 200)
            s.api("GET", "/api/v3/secrets/raw/KEY_%d" % i, query={"workspaceId": pid, "environment": "dev"})
        # two lists of the twelve: events that refer to one key set
        for _ in range(2):
            r = s.api("GET", "/api/v3/secrets/raw", query={"workspaceId": pid, "environment": "dev", "secretPath": "/"})
            self.assertEqual(r.status, 200)
        self.assertEqual(s.api("POST", "/api/v1/audit/checkpoints").status, 200)
        rc, out, err = s.cli("audit", "verify")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(s.stop(), 0)

    def tearDown(self):
        self.server.stop()
        self.server.cleanup()

    def tamper(self, *statements):
        harness.sql(self.server.data_dir, *statements)

    def verify(self):
        self.server.start()
        rc, out, err = self.server.cli("audit", "verify")
        report = self.server.api("POST", "/api/v1/audit/verify").json
        return rc, out + err, report

    def assertFinding(self, finding, seq, *words):
        rc, out, report = self.verify()
        self.assertEqual(rc, 3, "verify should exit 3 for a tampered log: %s" % out)
        self.assertIn("TAMPERED", out)
        self.assertEqual(report["ok"], False)
        self.assertEqual(report["finding"], finding, report)
        self.assertEqual(report["seq"], seq, report)
        for word in words:
            self.assertIn(word, report["message"])
            self.assertIn(word, out)

    def test_edited(self):
        self.tamper("UPDATE audit_events SET reason = 'SOMETHING_ELSE' WHERE seq = 7")
        self.assertFinding("edited", 7, "event 7", "edited")

    def first_event_of_context_of(self, seq):
        return int(harness.sql(self.server.data_dir, "SELECT MIN(seq) FROM audit_events WHERE context = "
                               "(SELECT context FROM audit_events WHERE seq = %d)" % seq)[0][0])

    def test_context_edited(self):
        """What events share (actor, source, action, place, keys, result) is stored once: editing it is found as
        the first event that refers to it edited."""
        first = self.first_event_of_context_of(7)
        self.tamper("UPDATE audit_contexts SET keys = 'SOMETHING_ELSE' WHERE id = "
                    "(SELECT context FROM audit_events WHERE seq = 7)")
        self.assertFinding("edited", first, "event %d" % first, "edited")

    @harness.sqlite_only("PostgreSQL refuses text that is not UTF-8 in the first place")
    def test_stored_text_that_is_not_utf8_is_listed_and_still_verified(self):
        """An event stored by an older Coffer with bytes that are not UTF-8 (written here into its context) made the
        audit list answer 500 for every page holding it. It is listed with '?' for them, while verification still
        reads the stored bytes, which no longer match the chain (an edit)."""
        first = self.first_event_of_context_of(7)
        self.tamper("UPDATE audit_contexts SET user_agent = CAST(X'6f6c64ff6167656e74' AS TEXT) WHERE id = "
                    "(SELECT context FROM audit_events WHERE seq = 7)")
        self.assertFinding("edited", first, "event %d" % first, "edited")  # starts the server
        r = self.server.api("GET", EVENTS, query={"limit": 1000})
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertIn("old?agent", [e["userAgent"] for e in r.json["events"]])

    def test_context_deleted(self):
        first = self.first_event_of_context_of(7)
        self.tamper("DELETE FROM audit_contexts WHERE id = (SELECT context FROM audit_events WHERE seq = 7)")
        self.assertFinding("edited", first, "event %d" % first, "edited")

    def test_context_reference_moved(self):
        """An event made to refer to another context is found edited."""
        self.tamper("UPDATE audit_events SET context = (SELECT MAX(context) FROM audit_events) + 1000 WHERE seq = 7",
                    "INSERT INTO audit_contexts (id, actor_kind, action, result) "
                    "SELECT MAX(context), 'admin', 'secrets.read', 'ok' FROM audit_events")
        self.assertFinding("edited", 7, "event 7", "edited")

    def first_key_set_event(self):
        return int(harness.sql(self.server.data_dir, "SELECT MIN(e.seq) FROM audit_events e JOIN audit_contexts c "
                               "ON c.id = e.context WHERE c.key_set <> 0")[0][0])

    def test_key_set_edited(self):
        """A key set is covered by the hash of every event that refers to it."""
        seq = self.first_key_set_event()
        self.tamper("UPDATE audit_key_sets SET keys = 'KEY_0,KEY_1'")
        self.assertFinding("edited", seq, "event %d" % seq, "edited")

    def test_key_set_deleted(self):
        seq = self.first_key_set_event()
        self.tamper("DELETE FROM audit_key_sets")
        self.assertFinding("edited", seq, "event %d" % seq, "edited")

    def test_key_set_reference_moved(self):
        """A context made to name its keys in its own column instead is read as it is now, and its first event
        found edited."""
        seq = self.first_key_set_event()
        self.tamper("UPDATE audit_contexts SET key_set = 0 WHERE id = (SELECT context FROM audit_events "
                    "WHERE seq = %d)" % seq)
        self.assertFinding("edited", seq, "event %d" % seq, "edited")

    def test_deleted(self):
        self.tamper("DELETE FROM audit_events WHERE seq = 9")
        self.assertFinding("deleted", 9, "event 9 was deleted")

    def test_inserted(self):
        self.tamper("UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 6",
                    "UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1006",
                    "INSERT INTO audit_contexts (id, actor_kind, action, result) "
                    "SELECT MAX(id) + 1, 'admin', 'secrets.delete', 'ok' FROM audit_contexts",
                    "INSERT INTO audit_events (seq, id, time_us, context, request_id, hash) "
                    "SELECT 6, %s, time_us, (SELECT MAX(id) FROM audit_contexts), request_id, %s "
                    "FROM audit_events WHERE seq = 5"
                    % (("convert_to('forged', 'UTF8')", "sha256(hash)") if harness.BACKEND == "postgres"
                       else ("CAST('forged' AS BLOB)", "randomblob(32)")))
        self.assertFinding("inserted", 6, "event 6 was inserted")

    def test_swapped(self):
        self.tamper("UPDATE audit_events SET seq = -1 WHERE seq = 10",
                    "UPDATE audit_events SET seq = 10 WHERE seq = 11",
                    "UPDATE audit_events SET seq = 11 WHERE seq = -1")
        self.assertFinding("reordered", 10, "swapped")

    def test_cut_after_a_checkpoint(self):
        last = int(harness.sql(self.server.data_dir, "SELECT MAX(event_seq) FROM audit_checkpoints")[0][0])
        cut = last - 5
        self.tamper("DELETE FROM audit_events WHERE seq > %d" % cut)
        # The server appends new events after the cut, so a checkpointed number may exist again with
        # another event: either way a checkpoint exposes it.
        rc, out, report = self.verify()
        self.assertEqual(rc, 3, out)
        self.assertIn(report["finding"], ("truncated", "checkpoint-mismatch"), report)
        vouched = int(report["message"].split("vouches for event ")[1].split()[0]) \
            if report["finding"] == "truncated" else report["seq"]
        self.assertGreater(vouched, cut, report)
        self.assertLessEqual(vouched, last, report)

    def test_intact_after_root_key_rotation(self):
        rc, out, err = harness.run(["operator", "rotate-root-key", "--data-dir", self.server.data_dir])
        self.assertEqual(rc, 0, err)
        rc, out, report = self.verify()
        self.assertEqual(rc, 0, out)
        self.assertTrue(report["ok"], report)
        # And the key really moved with the root key: the chain is checked with the same audit key.
        self.assertGreaterEqual(report["events"], 25)

    def test_intact_after_restart(self):
        rc, out, report = self.verify()
        self.assertEqual(rc, 0, out)
        self.assertTrue(report["ok"], report)
        self.assertGreaterEqual(report["checkpoints"], 1)


HEAD_FILE = "audit-head.json"


# The audit_events table as schema versions 12 to 15 kept it: every field in every event (keys, or a key set),
# ids and request ids as text, and the link to the event before (prev_hash) stored.
OLD_AUDIT_EVENTS = """CREATE TABLE audit_events_old (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL, time_us INTEGER NOT NULL, actor_kind TEXT NOT NULL,
    actor_id TEXT NOT NULL DEFAULT '', actor_name TEXT NOT NULL DEFAULT '', source_ip TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '', action TEXT NOT NULL, project_id TEXT NOT NULL DEFAULT '',
    environment TEXT NOT NULL DEFAULT '', path TEXT NOT NULL DEFAULT '', keys TEXT NOT NULL DEFAULT '',
    result TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', request_id TEXT NOT NULL DEFAULT '',
    prev_hash BLOB NOT NULL, hash BLOB NOT NULL, key_set INTEGER NOT NULL DEFAULT 0)"""


class AuditUpgrade(AuditHelpers, unittest.TestCase):
    """A store whose events have the shape of before migration 0016 (made from a current store by rewriting its
    audit table as the older versions wrote it): the server's start migrates them; the API shows every event
    exactly as before, the chain verifies, new events go on from the old ones, and tampering is still found."""

    def setUp(self):
        self.server = harness.Server()
        self.server.start()

    def tearDown(self):
        self.server.stop()
        self.server.cleanup()

    # tables made by the migrations after 0016, children first (drop them here when a migration adds one)
    LATER_TABLES = ("secret_leaks", "dynamic_leases", "dynamic_secrets", "access_requests", "change_request_reviews", "change_request_items", "change_requests",
                    "approval_policy_approvers", "approval_policies", "mfa_tickets", "user_recovery_codes", "user_totp", "scim_users", "scim_tokens", "group_memberships", "user_group_members", "user_groups", "personal_access_tokens", "user_sessions", "user_memberships", "users", "sso_logins")

    def downgrade(self):
        """Rewrites the audit table as the older versions kept it, ids and request ids as text."""
        pg = harness.BACKEND == "postgres"
        hexed = "encode(%s, 'hex')" if pg else "lower(hex(%s))"
        # a UUIDv7 kept as its last 8 bytes: the first 8 are the event's time (milliseconds, version 7, the
        # microseconds within the millisecond)
        head = ("lpad(to_hex(e.time_us / 1000), 12, '0') || '7' || lpad(to_hex(e.time_us % 1000), 3, '0')" if pg
                else "printf('%012x7%03x', e.time_us / 1000, e.time_us % 1000)")
        h = "(CASE WHEN length(e.id) = 8 THEN %s || %s ELSE %s END)" % (head, hexed % "e.id", hexed % "e.id")
        uuid_text = "||'-'||".join("substr(%s, %d, %d)" % (h, a, n) for a, n in ((1, 8), (9, 4), (13, 4), (17, 4),
                                                                               (21, 12)))
        zeros = "decode(repeat('00', 32), 'hex')" if pg else "zeroblob(32)"
        create = OLD_AUDIT_EVENTS.replace("BLOB", "BYTEA").replace("INTEGER", "BIGINT") if pg else OLD_AUDIT_EVENTS
        harness.sql(self.server.data_dir, create,
                    "INSERT INTO audit_events_old SELECT e.seq, %s, e.time_us, c.actor_kind, c.actor_id, c.actor_name,"
                    " c.source_ip, c.user_agent, c.action, c.project_id, c.environment, c.path, c.keys, c.result,"
                    " e.reason, %s, COALESCE((SELECT p.hash FROM audit_events p WHERE p.seq = e.seq - 1), %s),"
                    " e.hash, c.key_set FROM audit_events e JOIN audit_contexts c ON c.id = e.context"
                    % (uuid_text, hexed % "e.request_id", zeros),
                    "DROP TABLE audit_events", "DROP TABLE audit_contexts",
                    "ALTER TABLE audit_events_old RENAME TO audit_events",
                    # the store of version 15: the later migrations' tables go too (with their triggers), so
                    # that 0016 and everything after it run again on start
                    *["DROP TABLE %s" % t for t in self.LATER_TABLES],
                    "DELETE FROM schema_migrations WHERE version >= 16")

    def test_old_events_are_migrated_and_read_as_before(self):
        s = self.server
        pid = s.api("POST", "/api/v2/workspace", body={"projectName": harness.unique("upgrade")}).json["project"]["id"]
        batch = [{"secretKey": "UPGRADE_KEY_%02d" % i, "secretValue": "v%d" % i} for i in range(12)]
        r = s.api("POST", "/api/v3/secrets/batch/raw",
                  body={"workspaceId": pid, "environment": "dev", "secretPath": "/", "secrets": batch})
        self.assertEqual(r.status, 200, r.body[:300])
        for _ in range(3):  # a long list of names: a key set, shared by the three events
            self.assertEqual(s.api("GET", "/api/v3/secrets/raw", query={"workspaceId": pid, "environment": "dev",
                                                                        "secretPath": "/"}).status, 200)
            self.assertEqual(s.api("GET", "/api/v3/secrets/raw/UPGRADE_KEY_03",
                                   query={"workspaceId": pid, "environment": "dev"}).status, 200)
        self.assertEqual(s.api("GET", "/api/v3/secrets/raw/MISSING", query={"workspaceId": pid,
                                                                           "environment": "dev"}).status, 404)
        self.assertEqual(s.api("POST", "/api/v1/audit/checkpoints").status, 200)
        before = self.events()
        self.assertGreaterEqual(len(before), 10)
        self.assertEqual(s.stop(), 0)

        self.downgrade()
        # (and the event of the audit list itself, recorded after its answer)
        self.assertEqual(int(harness.sql(s.data_dir, "SELECT COUNT(*) FROM audit_events")[0][0]), len(before) + 1)
        s.start()
        after = self.events()
        self.assertEqual(after[:len(before)], before, "the migrated events read exactly as before")
        self.assertEqual(len({e["id"] for e in before}), len(before))
        rc, out, err = s.cli("audit", "verify")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("intact", out + err)
        # new events go on from the migrated ones, sharing their contexts where they match
        self.assertEqual(s.api("GET", "/api/v3/secrets/raw", query={"workspaceId": pid, "environment": "dev",
                                                                    "secretPath": "/"}).status, 200)
        listed = self.events(action="secrets.list", projectId=pid)
        self.assertEqual(len(listed), 4)
        self.assertEqual(listed[-1]["keys"], listed[0]["keys"])
        chain = {e["seq"]: e for e in self.events()}
        self.assertEqual(listed[-1]["prevHash"], chain[listed[-1]["seq"] - 1]["hash"])
        rc, out, err = s.cli("audit", "verify")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(s.stop(), 0)

        # a migrated event edited, then one deleted: both found as before
        edited = before[4]["seq"]
        harness.sql(s.data_dir, "UPDATE audit_events SET reason = 'rewritten' WHERE seq = %d" % edited)
        s.start()
        report = s.api("POST", "/api/v1/audit/verify").json
        self.assertEqual((report["finding"], report["seq"]), ("edited", edited), report)
        self.assertEqual(s.stop(), 0)
        harness.sql(s.data_dir, "DELETE FROM audit_events WHERE seq = %d" % edited)
        s.start()
        report = s.api("POST", "/api/v1/audit/verify").json
        self.assertEqual((report["finding"], report["seq"]), ("deleted", edited), report)


class AuditHead(AuditHelpers, unittest.TestCase):
    """The end of the log (docs/audit.md "The head"): an attacker with the database deletes the last events and
    the checkpoints over them, or wipes both tables; the signed head kept outside the database (the head file in
    the data directory, the file stream, an --anchor the operator passes) exposes it and names the missing
    range."""

    def setUp(self):
        self.stream = os.path.join(tempfile.mkdtemp(prefix="coffer-audit-head-"), "audit.jsonl")
        self.addCleanup(lambda: os.path.exists(self.stream) and os.unlink(self.stream))
        self.server = harness.Server(args=["--audit-file", self.stream])
        self.addCleanup(self.server.cleanup)
        self.addCleanup(self.server.stop)
        self.server.start()
        s = self.server
        pid = s.api("POST", "/api/v2/workspace", body={"projectName": harness.unique("head")}).json["project"]["id"]
        for i in range(8):
            r = s.api("POST", "/api/v3/secrets/raw/KEY_%d" % i,
                      body={"workspaceId": pid, "environment": "dev", "secretValue": "v%d" % i})
            self.assertEqual(r.status, 200)
        self.assertEqual(s.stop(), 0)  # the last events get a checkpoint at shutdown
        self.last, self.last_hash = self.tail()

    def tail(self):
        hexed = "encode(hash, 'hex')" if harness.BACKEND == "postgres" else "lower(hex(hash))"
        row = harness.sql(self.server.data_dir, "SELECT seq, %s FROM audit_events ORDER BY seq DESC LIMIT 1"
                          % hexed)
        return (int(row[0][0]), row[0][1]) if row else (0, "")

    def head_path(self):
        return os.path.join(self.server.data_dir, HEAD_FILE)

    def cut(self, after):
        harness.sql(self.server.data_dir, "DELETE FROM audit_events WHERE seq > %d" % after,
                    "DELETE FROM audit_checkpoints WHERE event_seq > %d" % after)

    def verify(self, *args):
        if not self.server.alive():
            self.server.start()
        rc, out, err = self.server.cli("audit", "verify", *args)
        return rc, out + err

    def assertMissing(self, first, last, *words, args=()):
        """first: the first missing event, or None when earlier verifications (each one an event) have
        grown the log since the cut."""
        rc, out = self.verify(*args)
        self.assertEqual(rc, 3, out)
        self.assertIn("TAMPERED", out)
        self.assertIn("truncated", out)
        if first is None:
            self.assertRegex(out, r"events \d+\.\.%d are missing" % last)
        else:
            self.assertIn("events %d..%d are missing" % (first, last), out)
        for word in words:
            self.assertIn(word, out)

    def test_head_file_is_signed_and_private(self):
        with open(self.head_path()) as f:
            head = json.load(f)
        self.assertEqual((head["type"], head["seq"], head["hash"]), ("head", self.last, self.last_hash))
        self.assertTrue(head["signature"])
        self.assertEqual(oct(os.stat(self.head_path()).st_mode & 0o777), "0o600")
        rc, out = self.verify()
        self.assertEqual(rc, 0, out)
        self.assertIn("intact", out)
        # Forged without the root key: a head file moved back to an earlier event does not verify.
        self.server.stop()
        head["seq"] = self.last - 3
        with open(self.head_path(), "w") as f:
            json.dump(head, f)
        rc, out = self.verify()
        self.assertEqual(rc, 3, out)
        self.assertIn("bad-head", out)

    def test_last_events_and_their_checkpoints_deleted(self):
        self.cut(self.last - 6)
        self.assertMissing(self.last - 5, self.last, "head file says seq %d" % self.last)
        # The server does not overwrite the evidence with a head over the shortened log: still found after
        # more events and a restart.
        self.assertTrue(self.server.wait_for_stderr(r"audit: .*head file", timeout=5), self.server.stderr)
        self.server.stop()
        rc, out = self.verify()
        self.assertEqual(rc, 3, out)
        self.assertIn(str(self.last), out)

    def test_both_tables_wiped(self):
        harness.sql(self.server.data_dir, "DELETE FROM audit_events", "DELETE FROM audit_checkpoints")
        self.assertMissing(1, self.last, "head file says seq %d" % self.last)

    def test_head_file_deleted_too(self):
        saved = self.head_path() + ".saved"
        os.rename(self.head_path(), saved)
        self.cut(self.last - 6)
        rc, out = self.verify()
        self.assertEqual(rc, 3, out)
        self.assertIn("head-missing", out)
        self.assertIn("head file", out)
        # The operator's anchors: the head file kept elsewhere, a SEQ:HASH noted down, the file stream.
        self.assertMissing(None, self.last, "anchor", args=("--anchor", saved))
        self.assertMissing(None, self.last, "anchor", args=("--anchor", "%d:%s" % (self.last, self.last_hash)))
        self.assertMissing(None, self.last, "anchor", args=("--anchor", self.stream))

    def settled(self):
        """Waits until the running server's audit writer has stored what it was given (the log's last event
        stays the same for 0.3 s): a batch still being written during a cut would land after it, above the
        gap, and make the cut look like a deletion."""
        deadline = time.monotonic() + 10
        last = self.tail()
        while time.monotonic() < deadline:
            time.sleep(0.3)
            now = self.tail()
            if now == last:
                return
            last = now

    def test_cut_while_the_server_runs_with_the_head_file_deleted(self):
        rc, out = self.verify()
        self.assertEqual(rc, 0, out)
        self.settled()  # the verification's own event
        os.unlink(self.head_path())
        self.cut(self.last - 3)
        # The running server remembers the last head it read or signed.
        self.assertMissing(None, self.last, "the server's last head says seq %d" % self.last)
        self.assertFalse(os.path.exists(self.head_path()))

    def test_anchor_of_an_intact_log_and_bad_anchors(self):
        rc, out = self.verify("--anchor", "%d:%s" % (self.last, self.last_hash))
        self.assertEqual(rc, 0, out)
        rc, out = self.verify("--anchor", self.head_path())
        self.assertEqual(rc, 0, out)
        rc, out = self.verify("--anchor", "%d:%s" % (self.last - 1, self.last_hash))
        self.assertEqual(rc, 3, out)
        self.assertIn("differs", out)
        for bad in ("12:nothex", "/nonexistent/head.json", ""):
            rc, out = self.verify("--anchor", bad)
            self.assertIn(rc, (1, 2), out)
            self.assertIn("anchor", out)

    def test_stream_carries_the_signed_head(self):
        with open(self.stream) as f:
            records = [json.loads(line) for line in f]
        heads = [r for r in records if r.get("type") == "head"]
        self.assertTrue(heads, "no head record in the stream")
        self.assertEqual((heads[-1]["seq"], heads[-1]["hash"]), (self.last, self.last_hash))
        self.assertTrue(heads[-1]["signature"])
        events = [r for r in records if "type" not in r]
        self.assertEqual(events[-1]["seq"], self.last)

    def test_timer_checkpoint_covers_a_quiet_tail(self):
        self.server.args = ["--audit-checkpoint-interval", "1s"]
        self.server.start()
        r = self.server.api("GET", EVENTS, query={"limit": 1000})
        self.assertEqual(r.status, 200)
        time.sleep(2.5)  # quiet: no request, no shutdown checkpoint (killed below)
        self.server.kill9()
        last, _ = self.tail()
        self.assertGreater(last, self.last)
        with open(self.head_path()) as f:
            self.assertEqual(json.load(f)["seq"], last)
        self.server.args = []
        self.cut(last - 2)
        self.assertMissing(last - 1, last, "head file says seq %d" % last)


class AuditFailClosed(AuditHelpers, unittest.TestCase):
    BLOCK = {
        "sqlite": ("CREATE TRIGGER block_audit BEFORE INSERT ON audit_events "
                   "BEGIN SELECT RAISE(ABORT, 'audit storage unavailable'); END",),
        "postgres": ("CREATE FUNCTION block_audit() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$BEGIN RAISE EXCEPTION 'audit storage unavailable'; END$$",
                     "CREATE TRIGGER block_audit BEFORE INSERT ON audit_events "
                     "FOR EACH ROW EXECUTE FUNCTION block_audit()"),
    }[harness.BACKEND]
    UNBLOCK = {"sqlite": "DROP TRIGGER block_audit",
               "postgres": "DROP TRIGGER block_audit ON audit_events"}[harness.BACKEND]

    def run_server(self, mode):
        s = harness.Server(args=["--audit", mode])
        s.start()
        self.addCleanup(s.cleanup)
        self.addCleanup(s.stop)
        pid = s.api("POST", "/api/v2/workspace", body={"projectName": harness.unique("fc")}).json["project"]["id"]
        return s, pid

    def db(self, s, *statements):
        harness.sql(s.data_dir, *statements)

    def test_fail_closed_refuses_unaudited_requests(self):
        s, pid = self.run_server("fail-closed")
        self.assertEqual(s.api("POST", "/api/v3/secrets/raw/A", body={"workspaceId": pid, "environment": "dev",
                                                                     "secretValue": "a"}).status, 200)
        self.db(s, *self.BLOCK)
        r = s.api("GET", "/api/v3/secrets/raw/A", query={"workspaceId": pid, "environment": "dev"})
        self.assertEqual(r.status, 503, r.body[:300])
        self.assertIn("audit", r.json["message"])
        self.assertNotIn(b'"secretValue"', r.body)
        w = s.api("POST", "/api/v3/secrets/raw/B", body={"workspaceId": pid, "environment": "dev",
                                                         "secretValue": "b"})
        self.assertEqual(w.status, 503)
        self.db(s, self.UNBLOCK)
        r = s.api("GET", "/api/v3/secrets/raw/A", query={"workspaceId": pid, "environment": "dev"})
        self.assertEqual(r.status, 200, r.body[:300])
        rc, out, err = s.cli("audit", "verify")
        self.assertEqual(rc, 0, out + err)

    def test_normal_mode_keeps_serving_and_catches_up(self):
        s, pid = self.run_server("on")
        self.db(s, *self.BLOCK)
        for i in range(3):
            r = s.api("POST", "/api/v3/secrets/raw/K%d" % i, body={"workspaceId": pid, "environment": "dev",
                                                                 "secretValue": "v"})
            self.assertEqual(r.status, 200, r.body[:300])
        self.assertTrue(s.wait_for_stderr(r"audit: cannot store", timeout=5), s.stderr[-2000:])
        self.db(s, self.UNBLOCK)
        deadline = time.monotonic() + 10
        keys = []
        while time.monotonic() < deadline:
            keys = [e["keys"] for e in self.events(server=s, action="secrets.create", projectId=pid)]
            if len(keys) == 3:
                break
            time.sleep(0.2)
        self.assertEqual(keys, [["K0"], ["K1"], ["K2"]])
        rc, out, err = s.cli("audit", "verify")
        self.assertEqual(rc, 0, out + err)


if __name__ == "__main__":
    unittest.main()


class Receiver:
    """A local HTTP endpoint for the audit stream: answers the first `fail` POSTs with 500, then 200, and keeps
    every batch it accepted."""

    def __init__(self, fail=0):
        import http.server
        import threading
        self.batches, self.posts, self.auth = [], 0, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.posts += 1
                outer.auth.append(self.headers.get("Authorization"))
                if outer.posts <= fail:
                    self.send_response(500)
                    self.end_headers()
                    return
                outer.batches.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def events(self):
        return [e for batch in self.batches for e in batch]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class AuditStreams(AuditHelpers, unittest.TestCase):

    def start(self, *args, env=None):
        s = harness.Server(args=list(args), env=env)
        s.start()
        self.addCleanup(s.cleanup)
        self.addCleanup(s.stop)
        return s

    def make_traffic(self, s, n=5):
        pid = s.api("POST", "/api/v2/workspace", body={"projectName": harness.unique("st")}).json["project"]["id"]
        for i in range(n):
            r = s.api("POST", "/api/v3/secrets/raw/S_%d" % i, body={"workspaceId": pid, "environment": "dev",
                                                                  "secretValue": "stream-canary-%d" % i})
            self.assertEqual(r.status, 200)
        return pid

    def test_file_and_syslog_carry_every_event(self):
        import socket
        path = os.path.join(tempfile.mkdtemp(prefix="coffer-audit-file-"), "audit.jsonl")
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(5)
        self.addCleanup(udp.close)
        s = self.start("--audit-file", path, "--audit-syslog", "udp:127.0.0.1:%d" % udp.getsockname()[1])
        self.make_traffic(s)
        stored = self.events(server=s)  # flushes the log: the file is written by then
        with open(path) as f:
            lines = [json.loads(line) for line in f]
        lines = [e for e in lines if "type" not in e]  # a checkpoint's head may come between events
        self.assertEqual(oct(os.stat(path).st_mode & 0o777), "0o600")
        self.assertEqual([(e["seq"], e["hash"]) for e in lines], [(e["seq"], e["hash"]) for e in stored])
        messages = []
        while len(messages) < len(stored):
            message = udp.recv(65536).decode()
            if '{"type":"head"' not in message:
                messages.append(message)
        for message, event in zip(messages, stored):
            self.assertRegex(message, r"^<86>1 \d{4}-\d\d-\d\dT[0-9:.]+Z \S+ coffer \d+ audit - \{")
            self.assertEqual(json.loads(message.split(" audit - ", 1)[1])["hash"], event["hash"])
        for text in [open(path).read()] + messages:
            self.assertNotIn("stream-canary", text)

    def test_http_endpoint_gets_batches_with_retries_and_never_slows_requests(self):
        receiver = Receiver(fail=2)
        self.addCleanup(receiver.close)
        s = self.start("--audit-http", "http://127.0.0.1:%d/ingest" % receiver.port,
                       env={"COFFER_AUDIT_HTTP_TOKEN": "siem-token-7f3e9a"})
        started = time.monotonic()
        self.make_traffic(s, n=8)
        self.assertLess(time.monotonic() - started, 5, "requests were held up by a failing audit endpoint")
        stored = self.events(server=s)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(receiver.events()) < len(stored):
            time.sleep(0.2)
        got = [e["seq"] for e in receiver.events()]
        self.assertEqual(sorted(set(got))[:len(stored)], [e["seq"] for e in stored])
        self.assertGreaterEqual(receiver.posts, 3, "the failed posts were not retried")
        self.assertEqual(set(receiver.auth), {"Bearer siem-token-7f3e9a"})
        self.assertTrue(s.wait_for_stderr(r"cannot deliver \d+ event\(s\) to the HTTP endpoint: HTTP 500"))
        self.assertNotIn("siem-token-7f3e9a", s.stderr + s.stdout)

    def test_http_endpoint_down_does_not_block(self):
        port = harness.free_port()  # nothing listens there
        s = self.start("--audit-http", "http://127.0.0.1:%d/" % port)
        started = time.monotonic()
        self.make_traffic(s, n=5)
        self.assertLess(time.monotonic() - started, 5)
        self.assertTrue(s.wait_for_stderr(r"cannot deliver", timeout=10))

    def test_bad_stream_settings(self):
        harness.assert_start_refused(self, ((["--audit-http", "http://192.0.2.1/x"], "must be https"),
                            (["--audit-http", "not a url"], "not a URL"),
                            (["--audit-syslog", "tcp:1.2.3.4:514"], "udp:HOST:PORT"),
                            (["--audit-file", "/nonexistent-dir/x/audit.jsonl"], "cannot open"),
                            (["--audit", "off", "--audit-file", "/tmp/x.jsonl"], "need the audit log"),
                            (["--audit", "sometimes"], "on, fail-closed or off")))
