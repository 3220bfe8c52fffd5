"""`coffer doctor` (docs/operations.md "coffer doctor"): a deployment checked from its host, beside a running server.

- a healthy server: every check `ok` (or a `note`), exit 0;
- each problem found, named with what to do, exit 1: a data directory or root key others may read, a root key that
  does not open the store, an edited audit event, an expired secret, a failing sync, an expired or unreadable TLS
  certificate, a missing data directory; a secret expiring within 30 days and a certificate expiring within 30
  days are warnings (exit 0, exit 1 with --strict);
- on PostgreSQL the clock of the database is compared with the host's;
- usage errors exit 2; no value appears in its output.
"""

import datetime
import os
import subprocess
import tempfile
import time
import unittest

import harness


def stamp(days):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


class Doctor(harness.ServerTestCase):
    # a checkpoint (and the head file) a second after events: a young server's head file is otherwise a warning
    server_args = ("--audit-checkpoint-interval", "1s")

    def doctor(self, *args, env=None):
        head = os.path.join(self.server.data_dir, "audit-head.json")
        for _ in range(60):
            if os.path.exists(head):
                break
            time.sleep(0.05)
        full = ["doctor", "--data-dir", self.server.data_dir] + list(args)
        if env is None:
            return harness.run(full)
        return harness.run(full, env=harness.base_env(dict(harness.db_env(self.server.data_dir), **env)))

    def lines(self, out, verdict):
        return [l for l in out.splitlines() if l.startswith(verdict + " ")]

    def test_a_healthy_deployment(self):
        rc, out, err = self.doctor()
        self.assertEqual(rc, 0, out + err)
        self.assertIn("0 failed, 0 warnings: this deployment looks healthy", out)
        for check in ("data directory", "database", "clock", "audit chain", "expiry", "jobs", "leaks", "store",
                      "libraries"):
            self.assertTrue([l for l in self.lines(out, "ok") if l[6:].startswith(check)], (check, out))
        if harness.BACKEND == "postgres":
            self.assertIn("this host and the database differ by", out)
        else:
            self.assertIn("root key", out)

    def test_permissions(self):
        os.chmod(self.server.data_dir, 0o750)
        self.addCleanup(os.chmod, self.server.data_dir, 0o700)
        key = os.path.join(self.server.data_dir, "root.key")
        os.chmod(key, 0o644)
        self.addCleanup(os.chmod, key, 0o600)
        rc, out, _ = self.doctor()
        self.assertEqual(rc, 1, out)
        fails = "\n".join(self.lines(out, "FAIL"))
        self.assertIn("mode 0750: others may read it; run chmod 700", fails)
        self.assertIn("root.key has mode 0644: others may read it; run chmod 600", fails)
        self.assertIn("2 failed", out)

    def test_expiry_warns_and_fails(self):
        pid = self.create_project()["id"]
        self.addCleanup(self.delete_project, pid)
        canary = "canary-" + os.urandom(8).hex()
        self.set_secret(pid, "SOON_KEY", canary, expiresAt=stamp(10))
        rc, out, _ = self.doctor()
        self.assertEqual(rc, 0, out)
        self.assertTrue([l for l in self.lines(out, "warn") if "/dev/SOON_KEY expires in" in l], out)
        rc, out, _ = self.doctor("--strict")
        self.assertEqual(rc, 1, out)
        self.set_secret(pid, "GONE_KEY", canary, expiresAt=stamp(-3))
        rc, out, err = self.doctor()
        self.assertEqual(rc, 1, out)
        self.assertTrue([l for l in self.lines(out, "FAIL") if "/dev/GONE_KEY expired 2 days ago" in l or
                         "/dev/GONE_KEY expired 3 days ago" in l], out)
        self.assertNotIn(canary, out + err)

    def test_a_failing_sync(self):
        pid = self.create_project()["id"]
        harness.sql(self.server.data_dir,
                    "INSERT INTO syncs (id, project_id, name, env_id, folder_path, destination, connection_id, "
                    "destination_config, sync_options, sync_status, created_at, updated_at) SELECT "
                    "'00000000-0000-7000-8000-00000000d0c7', '%s', 'broken', id, '/', 'file', '', '{}', '{}', "
                    "'failed', 0, 0 FROM environments WHERE project_id = '%s' AND slug = 'dev'" % (pid, pid))
        self.addCleanup(harness.sql, self.server.data_dir,
                        "DELETE FROM syncs WHERE id = '00000000-0000-7000-8000-00000000d0c7'")
        rc, out, _ = self.doctor()
        self.assertEqual(rc, 1, out)
        self.assertTrue([l for l in self.lines(out, "FAIL") if "1 sync is failing: see coffer syncs status" in l],
                        out)

    def test_certificates(self):
        with tempfile.TemporaryDirectory() as d:
            cert, _ = harness.make_cert(d)  # valid for two days
            rc, out, _ = self.doctor("--tls-cert", cert)
            self.assertEqual(rc, 0, out)
            self.assertTrue([l for l in self.lines(out, "warn") if "expires in 1 days: renew it" in l or
                             "expires in 2 days: renew it" in l], out)
            junk = os.path.join(d, "junk.pem")
            with open(junk, "w") as f:
                f.write("not a certificate\n")
            rc, out, _ = self.doctor("--tls-cert", junk)
            self.assertEqual(rc, 1)
            self.assertIn("junk.pem: not a PEM certificate", out)
            rc, out, _ = self.doctor("--tls-cert", os.path.join(d, "missing.pem"))
            self.assertEqual(rc, 1)
            self.assertIn("missing.pem: No such file or directory", out)

    def test_another_root_key(self):
        rc, out, _ = self.doctor(env={"COFFER_ROOT_KEY": "B" * 43 + "="})
        self.assertEqual(rc, 1, out)
        self.assertTrue([l for l in self.lines(out, "FAIL") if l[6:].startswith("store")], out)
        self.assertIn("from COFFER_ROOT_KEY (not on disk)", out)

    def test_usage_and_missing_directory(self):
        rc, _, err = harness.run(["doctor", "--bogus"])
        self.assertEqual(rc, 2)
        self.assertIn("--bogus", err)
        rc, out, _ = harness.run(["doctor", "--data-dir", "/nonexistent/coffer"])
        self.assertEqual(rc, 1)
        self.assertIn("/nonexistent/coffer: No such file or directory", out)


class DoctorTampered(harness.ServerTestCase):
    """An audit event edited in the store: the chain check fails, naming the event."""

    def test_edited_audit_event(self):
        self.create_project()
        self.api("GET", "/api/v1/workspace")
        # the events are written in the background: wait until one is stored
        for _ in range(100):
            rows = harness.sql(self.server.data_dir, "SELECT COUNT(*) FROM audit_events")
            if int(rows[0][0]) >= 2:
                break
        harness.sql(self.server.data_dir, "UPDATE audit_events SET reason = 'SOMETHING_ELSE' WHERE seq = 1")
        rc, out, _ = harness.run(["doctor", "--data-dir", self.server.data_dir])
        self.assertEqual(rc, 1, out)
        chain = [l for l in out.splitlines() if l.startswith("FAIL  audit chain")]
        self.assertTrue(chain, out)
        self.assertIn("event 1", chain[0])


if __name__ == "__main__":
    unittest.main()


class DoctorSealed(unittest.TestCase):
    """A store whose root key is held by unseal shares: checked as well, saying so, with no root key on disk."""

    def test_sealed_store(self):
        data = tempfile.mkdtemp(prefix="coffer-doctor-sealed-")
        self.addCleanup(harness.drop_pg_database, data)
        self.addCleanup(subprocess.call, ["rm", "-rf", data])
        os.chmod(data, 0o700)
        rc, out, err = harness.run(["operator", "init", "--shares", "3", "--threshold", "2", "--data-dir", data])
        self.assertEqual(rc, 0, err)
        self.assertFalse(os.path.exists(os.path.join(data, "root.key")))
        rc, out, _ = harness.run(["doctor", "--data-dir", data])
        self.assertEqual(rc, 0, out)
        self.assertIn("held by unseal shares", out)
        self.assertNotIn("kept beside the database", out)
