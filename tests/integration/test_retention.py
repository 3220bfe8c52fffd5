"""Storage that does not grow without bound (docs/audit.md "Retention", docs/server.md "The log").

- `--audit-retention`: events older than it are written to signed gzip files in DATA_DIR/audit-archive (or
  `--audit-archive DIR`) and removed from the store; `coffer audit verify` still verifies the live chain (from the
  signed anchor), `coffer audit verify --archive FILE...` verifies the files on their own (signature, numbering,
  links, and that each file goes on where the one before it ends); every event is in exactly one place (a file or
  the store); the inventory's "last read" survives the archiving of the read events.
- Tampering: an event edited inside an archive (recompressed), a file missing from a run of files, another audit
  key (--public-key), a cut-short file; the first live event after the cut edited or deleted, the anchor row
  edited: each is found and named (exit 3).
- A run killed (test build: COFFER_TEST_ARCHIVE_CRASH_AT=written, after the file is durable and before the
  commit, as kill -9 would) leaves every event in the store; the next start archives them again into one
  file, with no gap and no event archived twice.
- With a tiny retention under steady traffic the store stops growing.
- Bad settings refuse to start, naming the option.
- Two nodes on one PostgreSQL database, both archiving: each event is archived exactly once; a store with
  archived events moved to PostgreSQL (`coffer operator migrate`) keeps its anchor and last reads.
- `--log-file`: after logrotate's rename and SIGHUP, new lines land in the new file, none is lost, and the
  server keeps serving; SIGHUP without --log-file does not stop the server.
"""

import glob
import gzip
import json
import os
import signal
import subprocess
import time
import unittest

import harness
from harness import Server

ARCHIVE_GLOB = "audit-*-*.jsonl.gz"


def archive_files(directory):
    return sorted(glob.glob(os.path.join(directory, ARCHIVE_GLOB)))


def archive_lines(path):
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f]


def archived_seqs(files):
    seqs = []
    for path in files:
        seqs += [line["seq"] for line in archive_lines(path) if "seq" in line]
    return seqs


class RetentionHelpers:
    def traffic(self, server, n=10):
        """n writes and n reads of secrets in a new project; returns the project id."""
        pid = server.api("POST", "/api/v2/workspace", body={"projectName": harness.unique("ret")}).json["project"]["id"]
        for i in range(n):
            r = server.api("POST", "/api/v3/secrets/raw/KEY_%d" % i,
                           body={"workspaceId": pid, "environment": "dev", "secretValue": "value-%d" % i})
            self.assertEqual(r.status, 200, r.body[:300])
            r = server.api("GET", "/api/v3/secrets/raw/KEY_%d" % i, query={"workspaceId": pid, "environment": "dev"})
            self.assertEqual(r.status, 200, r.body[:300])
        return pid

    def live_seqs(self, server):
        r = server.api("GET", "/api/v1/audit/events", query={"limit": 1000})
        self.assertEqual(r.status, 200, r.body[:300])
        return [e["seq"] for e in r.json["events"]]

    def wait_archived(self, server, directory, through, timeout=20):
        """Waits until the archive files hold every event up to seq through."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seqs = archived_seqs(archive_files(directory))
            if seqs and max(seqs) >= through:
                return seqs
            time.sleep(0.2)
        self.fail("events up to %d were not archived within %ss:\n%s" % (through, timeout, server.stderr[-3000:]))

    def verify_archives(self, server, *files, extra=()):
        rc, out, err = server.cli("audit", "verify", "--archive", *files, *extra)
        return rc, out + err


class Retention(RetentionHelpers, unittest.TestCase):
    def setUp(self):
        self.server = Server(args=["--audit-retention", "1s", "--audit-checkpoint-interval", "1s"])
        self.server.start()
        self.archive_dir = os.path.join(self.server.data_dir, "audit-archive")

    def tearDown(self):
        self.server.stop()
        self.server.cleanup()

    def archive_some(self):
        s = self.server
        pid = self.traffic(s)
        last = self.live_seqs(s)[-1]
        seqs = self.wait_archived(s, self.archive_dir, last - 1)
        return pid, seqs

    def test_newest_read_of_each_secret_survives_archiving(self):
        s = self.server
        pid = self.traffic(s, 3)  # KEY_0..KEY_2, each read by the admin
        ident = s.api("POST", "/api/v1/identities", body={"name": harness.unique("reader")}).json["identity"]
        ua = s.api("POST", "/api/v1/auth/universal-auth/identities/" + ident["id"], body={})
        self.assertEqual(ua.status, 200, ua.body)
        cs = s.api("POST", "/api/v1/auth/universal-auth/identities/%s/client-secrets" % ident["id"], body={})
        r = s.api("POST", "/api/v2/workspace/%s/identity-memberships/%s" % (pid, ident["id"]), body={"role": "viewer"})
        self.assertEqual(r.status, 200, r.body)
        r = s.api("POST", "/api/v1/auth/universal-auth/login", token=None,
                  body={"clientId": ua.json["identityUniversalAuth"]["clientId"], "clientSecret": cs.json["clientSecret"]})
        token = r.json["accessToken"]
        # The identity lists the folder (one event naming every key), then the admin reads KEY_1 again: KEY_1's
        # newest read is the admin's, the others' the identity's, however the events fall into files.
        r = s.api("GET", "/api/v3/secrets/raw", query={"workspaceId": pid, "environment": "dev", "secretPath": "/"},
                  token=token)
        self.assertEqual(r.status, 200, r.body[:300])
        r = s.api("GET", "/api/v3/secrets/raw/KEY_1", query={"workspaceId": pid, "environment": "dev"})
        self.assertEqual(r.status, 200, r.body[:300])
        self.wait_archived(s, self.archive_dir, self.live_seqs(s)[-1] - 1)
        r = s.api("GET", "/api/v1/inventory", query={"workspaceId": pid})
        self.assertEqual(r.status, 200, r.body[:300])
        by = {x["secretKey"]: x["lastReadBy"] for proj in r.json["projects"] for env in proj["environments"]
              for x in env["secrets"]}
        self.assertEqual(by["KEY_1"]["kind"], "admin", by)
        for key in ("KEY_0", "KEY_2"):
            self.assertEqual(by[key], {"kind": "identity", "id": ident["id"], "name": ident["name"]}, by)

    def test_archived_verified_and_each_event_in_one_place(self):
        s = self.server
        pid, _ = self.archive_some()
        files = archive_files(self.archive_dir)
        for path in files:
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600, path)
            lines = archive_lines(path)
            self.assertEqual(lines[0]["type"], "coffer-audit-archive")
            self.assertEqual(lines[-1]["type"], "signature")
        rc, out = self.verify_archives(s, *files)
        self.assertEqual(rc, 0, out)
        self.assertEqual(out.count("intact"), len(files), out)
        rc, out, err = s.cli("audit", "verify")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("from the archive anchor", out)
        report = s.api("POST", "/api/v1/audit/verify").json
        self.assertTrue(report["ok"], report)
        # the last event of one of the files (more may have been archived since the answer)
        ends = [archive_lines(f)[-2]["lastSeq"] for f in archive_files(self.archive_dir)]
        self.assertIn(report["archivedSeq"], ends, report)
        # The inventory still knows when each secret was last read, from the archived events (the reads of
        # this project are among the first 21 events, all archived by now).
        self.assertGreater(min(self.live_seqs(s)), 21)
        r = s.api("GET", "/api/v1/inventory", query={"workspaceId": pid})
        self.assertEqual(r.status, 200, r.body[:300])
        secrets = [x for proj in r.json["projects"] for env in proj["environments"] for x in env["secrets"]]
        self.assertEqual(len(secrets), 10, r.body[:2000])
        for x in secrets:
            self.assertIs(x["lastReadKnown"], True, x)
            self.assertEqual(x["lastReadBy"]["kind"], "admin", x)
            self.assertGreaterEqual(x["lastReadAt"], x["createdAt"])
        # Every event is in exactly one place: a file or the store, 1..N without gaps (read with the server
        # stopped, so that nothing moves between the two readings).
        self.assertEqual(s.stop(), 0)
        archived = archived_seqs(archive_files(self.archive_dir))
        live = [int(row[0]) for row in harness.sql(s.data_dir, "SELECT seq FROM audit_events ORDER BY seq")]
        self.assertEqual(len(set(archived)), len(archived), "an event archived twice")
        self.assertFalse(set(archived) & set(live), "an event both archived and in the store")
        self.assertEqual(sorted(archived + live), list(range(1, max(archived + live) + 1)))

    def test_tampered_archives_are_found(self):
        s = self.server
        self.archive_some()
        self.traffic(s, 3)
        last = self.live_seqs(s)[-1]
        self.wait_archived(s, self.archive_dir, last - 1)
        files = archive_files(self.archive_dir)
        self.assertGreaterEqual(len(files), 2)
        # An event edited, the file recompressed.
        victim = files[0]
        with gzip.open(victim, "rt") as f:
            text = f.read()
        edited = text.replace('"result":"ok"', '"result":"denied"', 1)
        self.assertNotEqual(edited, text)
        copy = os.path.join(s.data_dir, "edited.jsonl.gz")
        with gzip.open(copy, "wt") as f:
            f.write(edited)
        rc, out = self.verify_archives(s, copy)
        self.assertEqual(rc, 3, out)
        self.assertIn("TAMPERED", out)
        self.assertIn("signature does not verify", out)
        # A file missing from a run of files.
        if len(files) >= 3:
            rc, out = self.verify_archives(s, files[0], files[2])
            self.assertEqual(rc, 3, out)
            self.assertIn("does not go on where", out)
        # Cut short.
        with open(victim, "rb") as f:
            data = f.read()
        cut = os.path.join(s.data_dir, "cut.jsonl.gz")
        with open(cut, "wb") as f:
            f.write(data[: len(data) // 2])
        rc, out = self.verify_archives(s, cut)
        self.assertEqual(rc, 3, out)
        self.assertIn("cut short", out)
        # Another key.
        rc, out = self.verify_archives(s, victim, extra=("--public-key", "A" * 43 + "="))
        self.assertEqual(rc, 3, out)
        self.assertIn("signature does not verify", out)
        # Bad usage.
        rc, out = self.verify_archives(s, victim, extra=("--public-key", "not-base64"))
        self.assertEqual(rc, 2, out)
        rc, out, err = s.cli("audit", "verify", "--archive", os.path.join(s.data_dir, "missing.gz"))
        self.assertEqual(rc, 1, out + err)
        self.assertIn("missing.gz", err)
        rc, out, err = s.cli("audit", "verify", "--public-key", "x")
        self.assertEqual(rc, 2, out + err)

    def tamper_live(self, *statements):
        s = self.server
        self.archive_some()
        self.traffic(s, 3)  # live events after the cut, younger than the retention when the server stops
        self.assertEqual(s.stop(), 0)
        self.assertGreater(int(harness.sql(s.data_dir, "SELECT COUNT(*) FROM audit_events")[0][0]), 2)
        s.args = []  # no retention: nothing moves while the test looks
        harness.sql(s.data_dir, *statements)
        s.start()
        rc, out, err = s.cli("audit", "verify")
        report = s.api("POST", "/api/v1/audit/verify").json
        self.assertEqual(rc, 3, out + err)
        return report, out + err

    def first_live_seq(self):
        return "(SELECT MIN(seq) FROM audit_events)"

    def test_live_event_after_the_cut_edited(self):
        report, out = self.tamper_live(
            "UPDATE audit_events SET reason = 'rewritten' WHERE seq = " + self.first_live_seq())
        self.assertEqual(report["finding"], "edited", report)

    def test_live_event_after_the_cut_deleted(self):
        report, out = self.tamper_live("DELETE FROM audit_events WHERE seq = " + self.first_live_seq())
        self.assertEqual(report["finding"], "deleted", (report, out))

    def test_anchor_edited(self):
        report, out = self.tamper_live("UPDATE audit_archive_state SET anchor_seq = anchor_seq - 1")
        self.assertEqual(report["finding"], "bad-head", report)
        self.assertIn("archive anchor", report["message"])


class RetentionBounded(RetentionHelpers, unittest.TestCase):
    def test_store_stops_growing(self):
        s = Server(args=["--audit-retention", "1s"])
        s.start()
        try:
            pid = s.api("POST", "/api/v2/workspace", body={"projectName": harness.unique("soak")}).json["project"]["id"]
            s.api("POST", "/api/v3/secrets/raw/SOAK", body={"workspaceId": pid, "environment": "dev",
                                                             "secretValue": "v"})
            sizes = []
            end = time.monotonic() + 8
            while time.monotonic() < end:
                for _ in range(20):
                    s.api("GET", "/api/v3/secrets/raw/SOAK", query={"workspaceId": pid, "environment": "dev"})
                sizes.append(int(harness.sql(s.data_dir, "SELECT COUNT(*) FROM audit_events")[0][0]))
                time.sleep(0.1)
            archived = archived_seqs(archive_files(os.path.join(s.data_dir, "audit-archive")))
            total = self.live_seqs(s)[-1]
            print("\nsoak: %d events written, %d archived, live rows sampled: max %d, last %d"
                  % (total, len(archived), max(sizes), sizes[-1]))
            # Live rows stay within a few seconds' worth of traffic while the total keeps growing.
            self.assertGreater(len(archived), total // 2)
            self.assertLess(max(sizes[len(sizes) // 2:]), total // 2)
            rc, out, err = s.cli("audit", "verify")
            self.assertEqual(rc, 0, out + err)
        finally:
            s.stop()
            s.cleanup()

    def test_bad_settings_refused(self):
        harness.assert_start_refused(self, [
            (["--audit-retention", "soon"], "--audit-retention"),
            (["--audit-retention", "1d", "--audit", "off"], "--audit-retention needs the audit log"),
        ])


@unittest.skipUnless(harness.test_build(), harness.NOT_A_TEST_BUILD)
class RetentionCrash(RetentionHelpers, unittest.TestCase):
    def test_killed_between_file_and_commit(self):
        s = Server(args=["--audit-retention", "1s"], env={"COFFER_TEST_ARCHIVE_CRASH_AT": "written"})
        s.start()
        archive_dir = os.path.join(s.data_dir, "audit-archive")
        try:
            self.traffic(s, 5)
            deadline = time.monotonic() + 20
            while s.alive() and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertEqual(s.proc.returncode, 137, s.stderr[-2000:])
            s._join_readers()
            left = archive_files(archive_dir)
            self.assertEqual(len(left), 1, left)
            # Nothing was deleted: the store still holds every event from 1.
            count, low = harness.sql(s.data_dir, "SELECT COUNT(*), MIN(seq) FROM audit_events")[0]
            self.assertEqual(int(low), 1)
            s.extra_env.pop("COFFER_TEST_ARCHIVE_CRASH_AT")
            s.start()
            # The killed process's claim holds for its lease (two minutes on the server's clock).
            s.advance_clock(150)
            # Killed before its first checkpoint, the server left no head file: the operator's checkpoint
            # writes one (docs/audit.md "The head").
            rc, out, err = s.cli("audit", "checkpoint")
            self.assertEqual(rc, 0, out + err)
            self.traffic(s, 2)
            last = self.live_seqs(s)[-1]
            self.wait_archived(s, archive_dir, last - 1)
            self.assertIn("left by a run that stopped before its commit", s.stderr)
            files = archive_files(archive_dir)
            archived = archived_seqs(files)
            self.assertEqual(archived, list(range(1, len(archived) + 1)), "a gap or an event twice")
            self.assertFalse(set(archived) & set(self.live_seqs(s)))
            rc, out = self.verify_archives(s, *files)
            self.assertEqual(rc, 0, out)
            rc, out, err = s.cli("audit", "verify")
            self.assertEqual(rc, 0, out + err)
        finally:
            s.stop()
            s.cleanup()


@unittest.skipUnless(harness.PG_DIR, "PostgreSQL only: two nodes share one database")
class RetentionTwoNodes(RetentionHelpers, unittest.TestCase):
    def test_each_event_archived_once(self):
        from test_multinode import root_key, start_nodes
        uri = harness.new_pg_database()
        nodes = start_nodes(2, uri, root_key(), args=["--audit-retention", "1s"])
        try:
            for _ in range(4):
                for node in nodes:
                    self.traffic(node, 3)
            last = self.live_seqs(nodes[0])[-1]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                files = [f for node in nodes for f in archive_files(os.path.join(node.data_dir, "audit-archive"))]
                seqs = archived_seqs(files)
                if seqs and max(seqs) >= last - 1:
                    break
                time.sleep(0.2)
            self.assertEqual(sorted(seqs), list(range(1, len(seqs) + 1)), "a gap or an event archived twice")
            self.assertGreaterEqual(max(seqs), last - 1)
            rc, out = self.verify_archives(nodes[0], *files)
            self.assertEqual(rc, 0, out)
            for node in nodes:
                rc, out, err = node.cli("audit", "verify")
                self.assertEqual(rc, 0, out + err)
        finally:
            for node in nodes:
                node.stop()
                node.cleanup()
            name = uri.split("///", 1)[1].split("?", 1)[0]
            subprocess.run([harness.PG_SCRIPT, "dropdb", harness.PG_DIR, name], capture_output=True, timeout=60)


@unittest.skipUnless(harness.PG_DIR, "PostgreSQL only: a store moved to PostgreSQL")
class RetentionMigrated(RetentionHelpers, unittest.TestCase):
    def test_anchor_and_last_reads_move_with_the_store(self):
        import shutil
        import tempfile
        d = tempfile.mkdtemp(prefix="coffer-itest-ret-migrate-")
        self.addCleanup(shutil.rmtree, d, True)
        s = Server(data_dir=d, env={"COFFER_DB": os.path.join(d, "coffer.db")},
                   args=["--audit-retention", "1s"])
        s.start()
        pid = self.traffic(s, 4)
        last = self.live_seqs(s)[-1]
        self.wait_archived(s, os.path.join(d, "audit-archive"), last - 1)
        self.assertEqual(s.stop(), 0)
        uri = harness.new_pg_database()
        rc, out, err = harness.run(["operator", "migrate", "--from", "sqlite:" + os.path.join(d, "coffer.db"),
                                    "--to", uri], env=harness.base_env())
        self.assertEqual(rc, 0, out + err)
        self.assertIn("audit_archive_state", out)
        self.assertIn("audit_last_reads", out)
        moved = Server(data_dir=d, env={"COFFER_DB": uri})
        moved.start()
        try:
            rc, out, err = moved.cli("audit", "verify")
            self.assertEqual(rc, 0, out + err)
            r = moved.api("GET", "/api/v1/inventory", query={"workspaceId": pid})
            secrets = [x for proj in r.json["projects"] for env in proj["environments"] for x in env["secrets"]]
            self.assertEqual([x["lastReadKnown"] for x in secrets], [True] * 4)
        finally:
            moved.stop()
            name = uri.split("///", 1)[1].split("?", 1)[0]
            subprocess.run([harness.PG_SCRIPT, "dropdb", harness.PG_DIR, name], capture_output=True, timeout=60)


class LogFile(unittest.TestCase):
    def test_rotated_on_sighup_without_losing_a_line(self):
        port = harness.free_port()
        directory = harness.tempfile.mkdtemp(prefix="coffer-itest-log-")
        path = os.path.join(directory, "coffer.log")
        s = Server(addr="127.0.0.1:%d" % port, args=["--log-file", path])
        s.start(wait_log=False)
        try:
            ids = []
            for _ in range(5):
                ids.append(s.api("GET", "/api/v1/audit/public-key").headers["X-Request-Id"])
            os.rename(path, path + ".1")  # logrotate's move
            s.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while not os.path.exists(path) and time.monotonic() < deadline:
                time.sleep(0.02)
            for _ in range(5):
                ids.append(s.api("GET", "/api/v1/audit/public-key").headers["X-Request-Id"])
            self.assertTrue(s.alive())
            time.sleep(0.2)
            with open(path + ".1") as f:
                old = f.read()
            with open(path) as f:
                new = f.read()
            self.assertIn("listening on", old)
            self.assertIn("reopened the log file", new)
            for rid in ids:
                self.assertEqual((old + new).count("req_id=" + rid), 1, rid)
            self.assertTrue(all(("req_id=" + rid) in new for rid in ids[5:]))
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
            self.assertEqual(s.stderr, "")
        finally:
            s.stop()
            s.cleanup()
            harness.shutil.rmtree(directory, ignore_errors=True)

    def test_sighup_without_log_file_keeps_serving(self):
        s = Server()
        s.start()
        try:
            s.proc.send_signal(signal.SIGHUP)
            self.assertTrue(s.wait_for_stderr("received SIGHUP"))
            self.assertEqual(s.api("GET", "/api/status").status, 200)
        finally:
            s.stop()
            s.cleanup()

    def test_unwritable_log_file_refused(self):
        harness.assert_start_refused(self, [
            (["--log-file", "/nonexistent-dir/coffer.log"], "cannot open the log file"),
        ])


if __name__ == "__main__":
    unittest.main()
