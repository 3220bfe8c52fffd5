"""Backups of a sealed store (docs/operations.md "Backups of a sealed store"): `coffer operator backup --to` and
`backup --verify` take the root key as the server does, the threshold of shares on standard input for a store
sealed by shares, or unwrapped by the PKCS#11 token (SoftHSM2) for one that unseals itself; too few or wrong
shares and a refused PIN are refused naming the cause, and nothing is written then. Shares printed encrypted to
their holders' RSA public keys (`init/rekey --share-keys`) are decrypted with the openssl CLI and open the store.
"""

import base64
import os
import shutil
import subprocess
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


def rsa_key(directory, name, kind="RSA", bits="2048"):
    """Makes a key pair with the openssl CLI; returns (private key path, public key path)."""
    private, public = os.path.join(directory, name + ".key"), os.path.join(directory, name + ".pub")
    opt = ["-pkeyopt", "rsa_keygen_bits:" + bits] if kind == "RSA" else ["-pkeyopt", "ec_paramgen_curve:P-256"]
    subprocess.run(["openssl", "genpkey", "-algorithm", kind] + opt + ["-out", private], check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", private, "-pubout", "-out", public], check=True, capture_output=True)
    return private, public


def decrypt_share(private, text):
    """What a share's holder runs: base64 -d | openssl pkeyutl -decrypt with OAEP SHA-256."""
    proc = subprocess.run(["openssl", "pkeyutl", "-decrypt", "-inkey", private, "-pkeyopt", "rsa_padding_mode:oaep",
                           "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256"],
                          input=base64.b64decode(text), check=True, capture_output=True)
    return proc.stdout.decode()


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

    def test_shares_encrypted_to_their_holders(self):
        server = seeded_server(self)
        data_dir = server.data_dir
        keys = [rsa_key(self.tmp, "holder%d" % i) for i in range(3)]
        publics = ",".join(public for _, public in keys)
        _, ec_public = rsa_key(self.tmp, "ec", kind="EC")
        _, small_public = rsa_key(self.tmp, "small", bits="1024")
        init = ["operator", "init", "--shares", "3", "--threshold", "2", "--data-dir", data_dir]
        for extra, rc_wanted, words in (
                ([keys[0][1] + "," + keys[1][1]], 2, "names 2 key file(s) for 3 shares"),
                ([publics + "," + keys[0][1]], 2, "names 4 key file(s) for 3 shares"),
                ([keys[0][1] + "," + keys[1][1] + "," + ec_public], 1, "is not an RSA key"),
                ([keys[0][1] + "," + keys[1][1] + "," + small_public], 1, "has 1024 bits; at least 2048"),
                ([keys[0][1] + "," + keys[1][1] + "," + keys[2][0] + ".missing"], 1, "cannot read the share key"),
                ([keys[0][1] + "," + keys[1][1] + "," + keys[2][0]], 1, "is not a PEM public key")):
            rc, out, err = run(init + ["--share-keys"] + extra)
            self.assertEqual(rc, rc_wanted, err)
            self.assertIn(words, err)
            self.assertNotIn("Unseal share", out)
            self.assertTrue(os.path.exists(os.path.join(data_dir, "root.key")), "a refused init changed nothing")
        rc, out, err = run(["operator", "backup", "--to", "x", "--share-keys", publics, "--data-dir", data_dir])
        self.assertEqual(rc, 2, err)
        self.assertIn("--share-keys belongs to init and rekey", err)
        rc, out, err = run(init + ["--share-keys", publics])
        self.assertEqual(rc, 0, err)
        lines = [l for l in out.splitlines() if l.startswith("Unseal share ")]
        self.assertEqual([l.split(": ", 1)[0] for l in lines],
                         ["Unseal share %d (encrypted to %s)" % (i + 1, keys[i][1]) for i in range(3)])
        shares = [decrypt_share(keys[i][0], lines[i].split(": ", 1)[1]) for i in range(3)]
        for share in shares:
            self.assertNotIn(share, out)
        # a holder's key cannot open another's share
        with self.assertRaises(subprocess.CalledProcessError):
            decrypt_share(keys[1][0], lines[0].split(": ", 1)[1])
        env = self.env(data_dir)
        path, rc, out, err = self.backup(data_dir, "holders.cbk", env, input=shares[0] + "\n" + shares[2] + "\n")
        self.assertEqual(rc, 0, err)
        # rekey to the holders' keys again: the new shares open the store, the old ones no longer
        rc, out, err = run(["operator", "rekey", "--shares", "3", "--threshold", "2", "--share-keys", publics,
                            "--data-dir", data_dir], env=env, input=shares[1] + "\n" + shares[2] + "\n")
        self.assertEqual(rc, 0, err)
        lines = [l for l in out.splitlines() if l.startswith("Unseal share ")]
        new = [decrypt_share(keys[i][0], lines[i].split(": ", 1)[1]) for i in (0, 1)]
        path, rc, out, err = self.backup(data_dir, "old.cbk", env, input=shares[0] + "\n" + shares[1] + "\n")
        self.assertEqual(rc, 1, err)
        self.assertIn("do not unseal this store", err)
        path, rc, out, err = self.backup(data_dir, "new.cbk", env, input="\n".join(new) + "\n")
        self.assertEqual(rc, 0, err)


if __name__ == "__main__":
    unittest.main()
