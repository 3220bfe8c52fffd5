"""Backups (docs/operations.md "Backup and restore"): `coffer operator backup --to`, `backup --verify`, `restore`.

- a backup taken while a writer keeps writing (no write fails, none waits on the backup), verified, then restored
  into an empty store: every value acknowledged before the backup began reads back identically from a server on
  the restored store, every secret present there is whole (its versions all readable), the audit chain verifies
  through the API, and the data directory's files are the owner's alone;
- the file holds no plaintext value (a canary) and its manifest names the tables, rows and audit head;
- refusals, each naming the problem: a file cut short, a byte of the payload or of the manifest changed, another
  root key, not a backup at all, an existing --to file (left untouched), a restore into a store that holds data,
  and the argument errors (exit 2).
"""

import json
import os
import shutil
import tempfile
import threading
import time
import unittest

import harness


def op(*args):
    return harness.run(["operator"] + list(args))


class Backup(harness.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix="coffer-backup-")
        cls.canary = "canary-" + os.urandom(12).hex()
        cls.pid = cls.create_project_cls()
        cls.written = {}
        for i in range(60):
            key = "K%03d" % i
            value = "%s-%d" % (cls.canary, i) if i % 10 == 0 else "value-%d" % i
            cls.server.api("POST", "/api/v3/secrets/raw/" + key,
                           body={"workspaceId": cls.pid, "environment": "dev", "secretValue": value})
            cls.written[key] = value
        # a second version of one secret: versions are part of what must come back
        cls.server.api("PATCH", "/api/v3/secrets/raw/K001",
                       body={"workspaceId": cls.pid, "environment": "dev", "secretValue": "value-1-v2"})
        cls.written["K001"] = "value-1-v2"
        cls.path = os.path.join(cls.tmp, "store.cbk")
        cls.writes_during, cls.failures = cls.backup_under_load(cls.path)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def create_project_cls(cls):
        r = cls.server.api("POST", "/api/v2/workspace", body={"projectName": harness.unique("bk")})
        assert r.status == 200, r.body
        return r.json["project"]["id"]

    @classmethod
    def backup_under_load(cls, path):
        """Takes the backup while a thread writes new secrets; returns how many writes landed meanwhile and the
        ones that failed."""
        stop = threading.Event()
        landed, failed = [], []

        def writer():
            n = 0
            while not stop.is_set():
                r = cls.server.api("POST", "/api/v3/secrets/raw/LOAD%05d" % n,
                                   body={"workspaceId": cls.pid, "environment": "dev", "secretValue": "load"})
                (landed if r.status == 200 else failed).append((n, r.status))
                n += 1

        t = threading.Thread(target=writer)
        t.start()
        time.sleep(0.2)
        before = len(landed)
        rc, out, err = op("backup", "--to", path, "--data-dir", cls.server.data_dir)
        after = len(landed)
        stop.set()
        t.join(30)
        cls.backup_out = (rc, out, err)
        return after - before, failed

    def test_backup_written_under_load_and_verified(self):
        rc, out, err = self.backup_out
        self.assertEqual(rc, 0, err)
        self.assertIn("backup %s written" % self.path, out)
        self.assertEqual(self.failures, [], "writes failed while the backup ran")
        self.assertGreater(self.writes_during, 0, "no write landed while the backup ran")
        self.assertEqual(os.stat(self.path).st_mode & 0o777, 0o600)
        with open(self.path, "rb") as f:
            data = f.read()
        self.assertNotIn(self.canary.encode(), data)
        self.assertTrue(data.startswith(b"coffer-backup 1\n"))
        manifest = json.loads(data.split(b"\n", 2)[1])
        self.assertEqual(manifest["format"], 1)
        names = [t["name"] for t in manifest["tables"]]
        for table in ("secrets", "secret_versions", "audit_events", "meta"):
            self.assertIn(table, names)
        self.assertGreaterEqual(next(t["rows"] for t in manifest["tables"] if t["name"] == "secrets"), 61)
        self.assertGreater(manifest["auditHead"]["seq"], 60)
        # no snapshot left behind
        self.assertFalse([n for n in os.listdir(self.tmp) if ".snapshot-" in n or ".tmp-" in n],
                         os.listdir(self.tmp))
        rc, out, err = op("backup", "--verify", self.path, "--data-dir", self.server.data_dir)
        self.assertEqual(rc, 0, err)
        self.assertIn("verified", out)
        self.assertIn("audit chain intact to event %d" % manifest["auditHead"]["seq"], out)

    def test_restore_reads_every_value_back(self):
        target = tempfile.mkdtemp(prefix="coffer-restored-", dir=self.tmp)
        os.rmdir(target)
        os.makedirs(target, mode=0o700)
        shutil.copy(os.path.join(self.server.data_dir, "root.key"), target)
        rc, out, err = op("restore", "--from", self.path, "--data-dir", target)
        self.assertEqual(rc, 0, err)
        self.assertIn("restored", out)
        if harness.BACKEND == "sqlite":
            self.assertEqual(os.stat(os.path.join(target, "coffer.db")).st_mode & 0o777, 0o600)
        self.assertFalse([n for n in os.listdir(target) if "snapshot" in n], os.listdir(target))
        # a second restore into the same (now full) store is refused
        rc, _, err = op("restore", "--from", self.path, "--data-dir", target)
        self.assertEqual(rc, 1)
        self.assertIn("already holds data", err)
        restored = harness.Server(data_dir=target)
        try:
            restored.start()
            r = restored.api("GET", "/api/v3/secrets/raw",
                             query={"workspaceId": self.pid, "environment": "dev", "recursive": "true"})
            self.assertEqual(r.status, 200, r.body[:300])
            got = {s["secretKey"]: s["secretValue"] for s in r.json["secrets"]}
            for key, value in self.written.items():
                self.assertEqual(got.get(key), value, key)
            loads = [k for k in got if k.startswith("LOAD")]
            self.assertTrue(all(got[k] == "load" for k in loads))
            r = restored.api("GET", "/api/v3/secrets/raw/K001",
                             query={"workspaceId": self.pid, "environment": "dev", "version": "1"})
            self.assertEqual(r.status, 200, r.body[:300])
            self.assertEqual(r.json["secret"]["secretValue"], "value-1")
            r = restored.api("POST", "/api/v1/audit/verify", body={})
            self.assertEqual(r.status, 200, r.body[:500])
            self.assertTrue(r.json.get("ok"), r.json)
        finally:
            restored.stop()
            restored.cleanup()

    def copy_of(self, name, change=None):
        path = os.path.join(self.tmp, name)
        with open(self.path, "rb") as f:
            data = bytearray(f.read())
        if change:
            change(data)
        with open(path, "wb") as f:
            f.write(data)
        self.addCleanup(os.unlink, path)
        return path

    def assert_refused(self, path, *words):
        for args in (["backup", "--verify", path, "--data-dir", self.server.data_dir],):
            rc, out, err = op(*args)
            self.assertEqual(rc, 1, (args, out))
            for w in words:
                self.assertIn(w, err)
            self.assertNotIn(self.canary, err + out)
        target = tempfile.mkdtemp(prefix="coffer-refused-", dir=self.tmp)
        shutil.copy(os.path.join(self.server.data_dir, "root.key"), target)
        rc, _, err = op("restore", "--from", path, "--data-dir", target)
        self.assertEqual(rc, 1)
        for w in words:
            self.assertIn(w, err)
        # nothing was restored: the store is still empty, so a good backup restores into it
        rc, _, err = op("restore", "--from", self.path, "--data-dir", target)
        self.assertEqual(rc, 0, err)

    def test_damaged_backups_are_refused(self):
        size = os.path.getsize(self.path)
        header = open(self.path, "rb").read().index(b"\n", 20) + 1
        self.assert_refused(self.copy_of("cut.cbk", lambda d: d.__delitem__(slice(size - 100, size))), "cut short")
        self.assert_refused(self.copy_of("cut2.cbk", lambda d: d.__delitem__(slice(header + 30, size))),
                            "cut short")

        def flip(at):
            def change(d):
                d[at] ^= 0x01
            return change
        self.assert_refused(self.copy_of("payload.cbk", flip(size // 2)), "was altered")
        # a changed manifest that still parses: its checksum text
        self.assert_refused(self.copy_of("manifest.cbk", lambda d: d.__setitem__(
            slice(d.index(b'"checksum":"') + 12, d.index(b'"checksum":"') + 13),
            b"0" if d[d.index(b'"checksum":"') + 12:d.index(b'"checksum":"') + 13] != b"0" else b"1")),
            "was altered")
        self.assert_refused(self.copy_of("extra.cbk", lambda d: d.extend(b"tail")), "after its last chunk")
        self.assert_refused(self.copy_of("junk.cbk", lambda d: d.__setitem__(slice(0, 6), b"junk!!")),
                            "not a Coffer backup")

    def test_another_root_key_is_refused(self):
        other = tempfile.mkdtemp(prefix="coffer-otherkey-", dir=self.tmp)
        rc, out, err = harness.run(["operator", "backup", "--verify", self.path, "--data-dir", other],
                                   env=harness.base_env({"COFFER_ROOT_KEY": "A" * 43 + "="}))
        self.assertEqual(rc, 1, out)
        self.assertIn("made with another root key", err)

    def test_refusals_and_usage(self):
        existing = os.path.join(self.tmp, "existing.cbk")
        with open(existing, "w") as f:
            f.write("keep me")
        self.addCleanup(os.unlink, existing)
        rc, _, err = op("backup", "--to", existing, "--data-dir", self.server.data_dir)
        self.assertEqual(rc, 1)
        self.assertIn("exists", err)
        with open(existing) as f:
            self.assertEqual(f.read(), "keep me")
        self.assertEqual(sorted(n for n in os.listdir(self.tmp) if n.startswith("existing")), ["existing.cbk"])
        for args, words in ((["backup"], "--to FILE"), (["backup", "--to", "a", "--verify", "b"], "--to FILE"),
                            (["restore"], "--from FILE"), (["restore", "--from", "x", "--to", "y"], "belong to"),
                            (["rotate-root-key", "--verify", "x"], "--verify belongs to backup")):
            rc, _, err = op(*args)
            self.assertEqual(rc, 2, args)
            self.assertIn(words, err)
        rc, _, err = op("backup", "--verify", os.path.join(self.tmp, "missing.cbk"),
                        "--data-dir", self.server.data_dir)
        self.assertEqual(rc, 1)
        self.assertIn("missing.cbk", err)


if __name__ == "__main__":
    unittest.main()
