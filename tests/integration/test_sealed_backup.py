"""Backups of a sealed store (docs/operations.md "Backups of a sealed store"): `coffer operator backup --to` and
`backup --verify` take the root key as the server does, the threshold of shares on standard input for a store
sealed by shares, or unwrapped by the PKCS#11 token (SoftHSM2) for one that unseals itself; too few or wrong
shares and a refused PIN are refused naming the cause, and nothing is written then.
"""

import os
import shutil
import tempfile
import unittest

import harness
from harness import run
from test_pkcs11 import MODULE, TOKEN, KEY, PIN, make_token_dir

VALUES = {"DB_PASSWORD": "sealed-backup-db", "API_KEY": "sealed-backup-k"}


def seeded_server(test):
    """A stopped server's data directory holding VALUES in a project; returns the server (cleaned up after)."""
    server = harness.Server()
    test.addCleanup(server.cleanup)
    server.start()
    r = server.api("POST", "/api/v2/workspace", body={"projectName": harness.unique("sb")})
    pid = r.json["project"]["id"]
    for key, value in VALUES.items():
        r = server.api("POST", "/api/v3/secrets/raw/" + key, body={
            "workspaceId": pid, "environment": "dev", "secretPath": "/", "secretValue": value})
        test.assertEqual(r.status, 200, r.body)
    server.stop()
    return server


class SealedBackup(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="coffer-sealed-backup-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def env(self, data_dir, **extra):
        e = dict(harness.db_env(data_dir) if harness.PG_DIR else {})
        e.update(extra)
        return harness.base_env(e)

    def backup(self, data_dir, name, env, input=None):
        path = os.path.join(self.tmp, name)
        rc, out, err = run(["operator", "backup", "--to", path, "--data-dir", data_dir], env=env, input=input)
        return path, rc, out, err

    def verify(self, data_dir, path, env, input=None):
        return run(["operator", "backup", "--verify", path, "--data-dir", data_dir], env=env, input=input)

    def test_shares_on_standard_input(self):
        server = seeded_server(self)
        data_dir = server.data_dir
        rc, out, err = run(["operator", "init", "--shares", "3", "--threshold", "2", "--data-dir", data_dir])
        self.assertEqual(rc, 0, err)
        shares = [l.split(": ", 1)[1] for l in out.splitlines() if l.startswith("Unseal share ")]
        env = self.env(data_dir)
        path, rc, _, err = self.backup(data_dir, "few.cbk", env, input=shares[0] + "\n")
        self.assertEqual(rc, 1, err)
        self.assertIn("1 of the 2 current shares needed were given on standard input", err)
        self.assertFalse(os.path.exists(path))
        # a share of another store: a valid share that does not open this one
        other = seeded_server(self)
        rc, out2, err = run(["operator", "init", "--shares", "2", "--threshold", "2", "--data-dir", other.data_dir])
        self.assertEqual(rc, 0, err)
        foreign = [l.split(": ", 1)[1] for l in out2.splitlines() if l.startswith("Unseal share ")]
        path, rc, _, err = self.backup(data_dir, "wrong.cbk", env, input=shares[0] + "\n" + foreign[1] + "\n")
        self.assertEqual(rc, 1, err)
        self.assertIn("do not unseal this store", err)
        self.assertFalse(os.path.exists(path))
        path, rc, out, err = self.backup(data_dir, "good.cbk", env, input="\n".join(shares[1:]) + "\n")
        self.assertEqual(rc, 0, err)
        self.assertIn("backup %s written" % path, out)
        for share in shares + foreign:
            self.assertNotIn(share, out + err)
        rc, out, err = self.verify(data_dir, path, env, input=shares[0] + "\n" + shares[2] + "\n")
        self.assertEqual(rc, 0, err)
        self.assertIn("verified", out)
        rc, out, err = self.verify(data_dir, path, env, input="")
        self.assertEqual(rc, 1, out)
        self.assertIn("0 of the 2 current shares", err)
        # the store stays sealed by its shares: a server on it still starts sealed
        names = [row[0] for row in harness.sql(data_dir, "SELECT name FROM meta WHERE name LIKE 'seal%'")]
        self.assertEqual(names, ["seal_shamir"])
        self.assertFalse(os.path.exists(os.path.join(data_dir, "root.key")))

    def test_pkcs11_token_unwraps_it(self):
        if not os.path.exists(MODULE) or not shutil.which("pkcs11-tool"):
            self.skipTest("SoftHSM2 or OpenSC is not installed (scripts/deps.sh installs them)")
        conf = make_token_dir(os.path.join(self.tmp, "hsm"))
        server = seeded_server(self)
        data_dir = server.data_dir
        env = self.env(data_dir, SOFTHSM2_CONF=conf, COFFER_SEAL_PKCS11_PIN=PIN)
        rc, _, err = run(["operator", "init", "--pkcs11-module", MODULE, "--pkcs11-token-label", TOKEN,
                          "--pkcs11-key-label", KEY, "--data-dir", data_dir], env=env)
        self.assertEqual(rc, 0, err)
        path, rc, _, err = self.backup(data_dir, "pin.cbk", self.env(data_dir, SOFTHSM2_CONF=conf,
                                                                     COFFER_SEAL_PKCS11_PIN="0000"))
        self.assertEqual(rc, 1, err)
        self.assertIn("CKR_PIN_INCORRECT", err)
        self.assertFalse(os.path.exists(path))
        path, rc, out, err = self.backup(data_dir, "token.cbk", env)
        self.assertEqual(rc, 0, err)
        self.assertIn("backup %s written" % path, out)
        rc, out, err = self.verify(data_dir, path, env)
        self.assertEqual(rc, 0, err)
        self.assertIn("verified", out)
        self.assertNotIn(PIN, out + err)
        with open(path, "rb") as f:
            data = f.read()
        for value in VALUES.values():
            self.assertNotIn(value.encode(), data)


if __name__ == "__main__":
    unittest.main()
