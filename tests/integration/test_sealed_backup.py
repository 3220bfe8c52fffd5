"""Backups of a sealed store (docs/operations.md "Backups of a sealed store"): `coffer operator backup --to` and
`backup --verify` take the root key as the server does, the threshold of shares on standard input for a store
sealed by shares, or unwrapped by the PKCS#11 token (SoftHSM2) for one that unseals itself; too few or wrong
shares and a refused PIN are refused naming the cause, and nothing is written then. Shares printed encrypted to
their holders' public keys (`init/rekey --share-keys`: age recipients, OpenPGP keys, RSA keys, mixed) are
decrypted with the holders' own tools (`age -d`, `gpg --decrypt`, `openssl pkeyutl`) and open the store; entries
that are not usable public keys (secret keys, expired, revoked or sign-only OpenPGP keys, bad age recipients) are
refused with exit 2 before anything is changed.

`restore` into a new data directory without a root key opens the seal record the manifest carries the same way
(shares on standard input, or the token): too few, malformed or foreign shares are refused before the directory
exists; a record flipped in the manifest, or swapped for an older (valid) record, is refused; the restored store
is sealed as its source was, a server on it starts sealed and the same shares unseal it (or the token does), and
every value reads back. A backup without a record (an unsealed store's) says it needs COFFER_ROOT_KEY, and
restores with it, as does a sealed store's backup given the key.
"""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import harness
from harness import run
from test_pkcs11 import MODULE, TOKEN, KEY, PIN, make_token_dir
from test_seal import wait_for_seal_state

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
    server.project_id = pid
    return server


def read_values(server, pid):
    """Every secret of the project's dev environment on a running server, {key: value}."""
    r = server.api("GET", "/api/v3/secrets/raw", query={"workspaceId": pid, "environment": "dev"})
    assert r.status == 200, r.body[:300]
    return {s["secretKey"]: s["secretValue"] for s in r.json["secrets"]}


def manifest_of(path):
    """The backup's header line, its manifest (parsed) and the rest of the file, as bytes."""
    with open(path, "rb") as f:
        header = f.readline()
        line = f.readline()
        rest = f.read()
    return header, json.loads(line), rest


def write_with_manifest(path, header, manifest, rest):
    with open(path, "wb") as f:
        f.write(header + json.dumps(manifest, separators=(",", ":")).encode() + b"\n" + rest)


def rsa_key(directory, name, kind="RSA", bits="2048"):
    """Makes a key pair with the openssl CLI; returns (private key path, public key path)."""
    private, public = os.path.join(directory, name + ".key"), os.path.join(directory, name + ".pub")
    opt = ["-pkeyopt", "rsa_keygen_bits:" + bits] if kind == "RSA" else ["-pkeyopt", "ec_paramgen_curve:P-256"]
    subprocess.run(["openssl", "genpkey", "-algorithm", kind] + opt + ["-out", private], check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", private, "-pubout", "-out", public], check=True, capture_output=True)
    return private, public


def age_identity(directory, name):
    """An age identity made with age-keygen; returns (identity file, recipient)."""
    identity = os.path.join(directory, name + ".txt")
    subprocess.run(["age-keygen", "-o", identity], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", identity], check=True, capture_output=True, text=True)
    return identity, recipient.stdout.strip()


class GnuPG:
    """A GnuPG home of the test's own, whose keys holders would keep; its agent is stopped at cleanup."""

    def __init__(self, test, directory):
        self.home = os.path.join(directory, "gnupg")
        os.mkdir(self.home, 0o700)
        test.addCleanup(subprocess.run, ["gpgconf", "--homedir", self.home, "--kill", "all"], capture_output=True)

    def gpg(self, *args, input=None):
        return subprocess.run(["gpg", "--homedir", self.home, "--batch", "--passphrase", ""] + list(args),
                              input=input, check=True, capture_output=True)

    def key(self, uid, algo="future-default", usage="default", expire="never", faked_time=None):
        """Makes a key pair (ed25519 and a cv25519 encryption subkey unless told otherwise); returns its
        fingerprint."""
        faked = ["--faked-system-time", faked_time] if faked_time else []
        self.gpg(*faked, "--quick-gen-key", uid, algo, usage, expire)
        out = self.gpg("--with-colons", "--list-keys", uid).stdout.decode()
        return [l.split(":")[9] for l in out.splitlines() if l.startswith("fpr:")][0]

    def export(self, path, *fingerprints, armor=True):
        self.gpg("--output", path, *(["--armor"] if armor else []), "--export", *fingerprints)
        return path

    def revoke(self, fingerprint):
        """Imports the revocation certificate gpg made with the key (its guard colon removed)."""
        with open(os.path.join(self.home, "openpgp-revocs.d", fingerprint + ".rev")) as f:
            certificate = f.read().replace(":-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----BEGIN PGP PUBLIC KEY BLOCK-----")
        self.gpg("--import", input=certificate.encode())

    def decrypt(self, block):
        return self.gpg("--decrypt", input=block.encode()).stdout.decode()


def printed_shares(out):
    """The shares init and rekey print: [(heading, body)], the body being the rest of the heading's line (RSA) or
    the armored block on the lines that follow (age, OpenPGP)."""
    shares, lines, i = [], out.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.startswith("Unseal share "):
            continue
        heading, rest = line.split(":", 1)
        if rest.strip():
            shares.append((heading, rest.strip()))
            continue
        block = []
        while i < len(lines):
            block.append(lines[i])
            i += 1
            if block[-1].startswith("-----END "):
                break
        shares.append((heading, "\n".join(block) + "\n"))
    return shares


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
        # elsewhere, with no store at hand (the backup host): the backup's own seal record and the shares
        nowhere = os.path.join(self.tmp, "no-such-dir")
        rc, out, err = self.verify(nowhere, path, harness.base_env(), input=shares[1] + "\n" + shares[2] + "\n")
        self.assertEqual(rc, 0, err)
        self.assertIn("verified", out)
        rc, out, err = self.verify(nowhere, path, harness.base_env(), input=shares[1] + "\n")
        self.assertEqual(rc, 1, out)
        self.assertIn("1 of the 2", err)
        rc, out, err = self.verify(nowhere, path, harness.base_env(),
                                   input=shares[1] + "\n" + foreign[0] + "\n")
        self.assertEqual(rc, 1, out)
        self.assertNotIn("verified", out)
        self.assertFalse(os.path.exists(nowhere), "verify made a data directory")
        for share in shares + foreign:
            self.assertNotIn(share, out + err)
        # the store stays sealed by its shares: a server on it still starts sealed
        names = [row[0] for row in harness.sql(data_dir, "SELECT name FROM meta WHERE name LIKE 'seal%'")]
        self.assertEqual(names, ["seal_shamir"])
        self.assertFalse(os.path.exists(os.path.join(data_dir, "root.key")))

    def pkcs11_sealed(self):
        """A seeded store moved to a SoftHSM2 token (the test skips without SoftHSM2): (server, conf, env)."""
        if not os.path.exists(MODULE) or not shutil.which("pkcs11-tool"):
            self.skipTest("SoftHSM2 or OpenSC is not installed (scripts/deps.sh installs them)")
        conf = make_token_dir(os.path.join(self.tmp, "hsm"))
        server = seeded_server(self)
        env = self.env(server.data_dir, SOFTHSM2_CONF=conf, COFFER_SEAL_PKCS11_PIN=PIN)
        rc, _, err = run(["operator", "init", "--pkcs11-module", MODULE, "--pkcs11-token-label", TOKEN,
                          "--pkcs11-key-label", KEY, "--data-dir", server.data_dir], env=env)
        self.assertEqual(rc, 0, err)
        return server, conf, env

    def test_pkcs11_token_unwraps_it(self):
        server, conf, env = self.pkcs11_sealed()
        data_dir = server.data_dir
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
                ([keys[0][1] + "," + keys[1][1]], 2, "names 2 key(s) for 3 shares"),
                ([publics + "," + keys[0][1]], 2, "names 4 key(s) for 3 shares"),
                ([keys[0][1] + "," + keys[1][1] + "," + ec_public], 2, "share key 3: the share key '%s' is not an RSA key" % ec_public),
                ([keys[0][1] + "," + keys[1][1] + "," + small_public], 2, "has 1024 bits; at least 2048"),
                ([keys[0][1] + "," + keys[1][1] + "," + keys[2][0] + ".missing"], 2, "cannot read the share key"),
                ([keys[0][1] + "," + keys[1][1] + "," + keys[2][0]], 2, "holds a private key, not a PEM public key")):
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
                         ["Unseal share %d (encrypted to %s, RSA)" % (i + 1, keys[i][1]) for i in range(3)])
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

    def assert_unchanged(self, data_dir):
        """A refused init changed nothing: root.key still there, no seal recorded."""
        self.assertTrue(os.path.exists(os.path.join(data_dir, "root.key")), "a refused init changed nothing")
        names = [row[0] for row in harness.sql(data_dir, "SELECT name FROM meta WHERE name LIKE 'seal%'")]
        self.assertEqual(names, [])

    def assert_no_gnupg_home(self, tmp):
        """coffer removed its temporary GnuPG homes, and left no process (a gpg-agent) running on one."""
        self.assertEqual(os.listdir(tmp), [], "every temporary GnuPG home removed")
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    self.assertNotIn(tmp.encode(), f.read(), "a process left on a temporary GnuPG home")
            except OSError:
                pass

    def test_shares_to_age_openpgp_and_rsa_holders(self):
        if not shutil.which("age") or not shutil.which("age-keygen") or not shutil.which("gpg"):
            self.skipTest("age or gpg is not installed (scripts/deps.sh installs them)")
        server = seeded_server(self)
        data_dir = server.data_dir
        alice_identity, alice = age_identity(self.tmp, "alice")
        gnupg = GnuPG(self, self.tmp)
        bob_fpr = gnupg.key("Bob <bob@example.org>")
        bob = gnupg.export(os.path.join(self.tmp, "bob.asc"), bob_fpr)
        bob_binary = gnupg.export(os.path.join(self.tmp, "bob.gpg"), bob_fpr, armor=False)
        carol_private, carol = rsa_key(self.tmp, "carol")
        # alice's recipient also as a file, the way age-keygen -y writes it, with a comment
        alice_file = os.path.join(self.tmp, "alice.pub")
        with open(alice_file, "w") as f:
            f.write("# Alice's share key\n" + alice + "\n")

        # entries that are not usable public keys, each refused with exit 2 before anything changes
        old_fpr = gnupg.key("Old <old@example.org>", expire="1y", faked_time="20200101T000000!")
        revoked_fpr = gnupg.key("Gone <gone@example.org>")
        gnupg.revoke(revoked_fpr)
        signer_fpr = gnupg.key("Signer <signer@example.org>", algo="ed25519", usage="sign")
        expired = gnupg.export(os.path.join(self.tmp, "old.asc"), old_fpr)
        revoked = gnupg.export(os.path.join(self.tmp, "gone.asc"), revoked_fpr)
        signer = gnupg.export(os.path.join(self.tmp, "signer.asc"), signer_fpr)
        both = gnupg.export(os.path.join(self.tmp, "both.asc"), bob_fpr, signer_fpr)
        secret = os.path.join(self.tmp, "bob-secret.asc")
        gnupg.gpg("--output", secret, "--armor", "--export-secret-keys", bob_fpr)
        with open(alice_identity) as f:
            alice_secret = [l for l in f.read().splitlines() if l.startswith("AGE-SECRET-KEY-")][0]
        init = ["operator", "init", "--shares", "3", "--threshold", "2", "--data-dir", data_dir]
        # coffer's temporary GnuPG homes go here, to be seen removed
        gpg_tmp = os.path.join(self.tmp, "tmp")
        os.mkdir(gpg_tmp)
        env = self.env(data_dir, TMPDIR=gpg_tmp)
        for entry, words in (
                (expired, "the OpenPGP key in '%s' (%s) has expired" % (expired, old_fpr)),
                (revoked, "the OpenPGP key in '%s' (%s) is revoked" % (revoked, revoked_fpr)),
                (signer, "cannot encrypt (no valid encryption subkey)"),
                (both, "'%s' holds 2 OpenPGP public keys" % both),
                (secret, "'%s' holds an OpenPGP secret key" % secret),
                (alice_identity, "'%s' holds an age secret key (an identity)" % alice_identity),
                (alice_secret, "is an age secret key (AGE-SECRET-KEY-...)"),
                (alice[:-1] + ("q" if alice[-1] != "q" else "p"), "checksum that does not match"),
                ("age1yubikey1qqqsyqcyq5rqwzqfpg9scrgwpugpzysnzs23v9ccrydpk8qarc0jqmenk29",
                 "its prefix is 'age1yubikey', not 'age'"),
                (os.path.join(self.tmp, "nobody.asc"), "cannot read the share key"),
                (server.data_dir, "cannot read the share key")):
            rc, out, err = run(init + ["--share-keys", ",".join([alice, entry, carol])], env=env)
            self.assertEqual(rc, 2, err)
            self.assertIn("share key 2: ", err)
            self.assertIn(words, err)
            self.assertNotIn(alice_secret[15:], out + err)
            self.assertNotIn("Unseal share", out)
            self.assert_unchanged(data_dir)
        self.assert_no_gnupg_home(gpg_tmp)

        def holders_decrypt(out, entries):
            """The printed shares, each decrypted by its holder with their own tool."""
            shares = printed_shares(out)
            self.assertEqual([heading for heading, _ in shares],
                             ["Unseal share 1 (encrypted to %s, age)" % entries[0],
                              "Unseal share 2 (encrypted to %s, OpenPGP)" % entries[1],
                              "Unseal share 3 (encrypted to %s, RSA)" % entries[2]])
            self.assertTrue(shares[0][1].startswith("-----BEGIN AGE ENCRYPTED FILE-----\n"), shares[0][1])
            self.assertTrue(shares[1][1].startswith("-----BEGIN PGP MESSAGE-----\n"), shares[1][1])
            clear = [subprocess.run(["age", "-d", "-i", alice_identity], input=shares[0][1], check=True,
                                    capture_output=True, text=True).stdout,
                     gnupg.decrypt(shares[1][1]),
                     decrypt_share(carol_private, shares[2][1])]
            for share in clear:
                self.assertRegex(share, r"^[A-Za-z0-9_-]{40,}$")
                self.assertNotIn(share, out)
            self.assertEqual(len(set(clear)), 3)
            return clear

        rc, out, err = run(init + ["--share-keys", ",".join([alice, bob, carol])], env=env)
        self.assertEqual(rc, 0, err)
        clear = holders_decrypt(out, [alice, bob, carol])
        self.assertNotIn(clear[0], err)
        self.assert_no_gnupg_home(gpg_tmp)
        # any two of them open the store
        for pair in ((0, 1), (1, 2), (0, 2)):
            _, rc, _, err = self.backup(data_dir, "holders%d%d.cbk" % pair, env,
                                        input="".join(clear[i] + "\n" for i in pair))
            self.assertEqual(rc, 0, err)

        # rekey to the same holders, given differently (recipients file, binary OpenPGP key): the new shares
        # open the store, the old ones no longer
        rc, out, err = run(["operator", "rekey", "--shares", "3", "--threshold", "2", "--share-keys",
                            ",".join([alice_file, bob_binary, carol]), "--data-dir", data_dir],
                           env=env, input=clear[0] + "\n" + clear[2] + "\n")
        self.assertEqual(rc, 0, err)
        new = holders_decrypt(out, [alice_file, bob_binary, carol])[:2]
        _, rc, _, err = self.backup(data_dir, "old.cbk", env, input=clear[0] + "\n" + clear[1] + "\n")
        self.assertEqual(rc, 1, err)
        self.assertIn("do not unseal this store", err)
        _, rc, _, err = self.backup(data_dir, "new.cbk", env, input="\n".join(new) + "\n")
        self.assertEqual(rc, 0, err)
        # a bad entry on rekey is refused too, and the current shares keep working
        rc, out, err = run(["operator", "rekey", "--shares", "3", "--threshold", "2", "--share-keys",
                            ",".join([alice, expired, carol]), "--data-dir", data_dir],
                           env=env, input="\n".join(new) + "\n")
        self.assertEqual(rc, 2, err)
        self.assertIn("has expired", err)
        self.assertNotIn("Unseal share", out)
        _, rc, _, err = self.backup(data_dir, "still.cbk", env, input="\n".join(new) + "\n")
        self.assertEqual(rc, 0, err)
        self.assert_no_gnupg_home(gpg_tmp)
    def restore(self, path, target, env=None, input=None):
        return run(["operator", "restore", "--from", path, "--data-dir", target],
                   env=env or self.env(target), input=input)

    def test_restore_with_shares_into_a_new_directory(self):
        server = seeded_server(self)
        data_dir = server.data_dir
        with open(os.path.join(data_dir, "root.key")) as f:
            root_key = f.read().strip()
        rc, out, err = run(["operator", "init", "--shares", "3", "--threshold", "2", "--data-dir", data_dir])
        self.assertEqual(rc, 0, err)
        old = [l.split(": ", 1)[1] for l in out.splitlines() if l.startswith("Unseal share ")]
        env = self.env(data_dir)
        old_path, rc, _, err = self.backup(data_dir, "old-shares.cbk", env, input="\n".join(old[:2]) + "\n")
        self.assertEqual(rc, 0, err)
        rc, out, err = run(["operator", "rekey", "--shares", "3", "--threshold", "2", "--data-dir", data_dir],
                           env=env, input="\n".join(old[1:]) + "\n")
        self.assertEqual(rc, 0, err)
        shares = [l.split(": ", 1)[1] for l in out.splitlines() if l.startswith("Unseal share ")]
        path, rc, _, err = self.backup(data_dir, "sealed.cbk", env, input=shares[0] + "\n" + shares[2] + "\n")
        self.assertEqual(rc, 0, err)
        header, manifest, rest = manifest_of(path)
        self.assertEqual(manifest["format"], 2)
        self.assertEqual((manifest["seal"]["type"], manifest["seal"]["meta"]), ("shamir", "seal_shamir"))
        other = seeded_server(self)
        rc, out2, err = run(["operator", "init", "--shares", "2", "--threshold", "2", "--data-dir", other.data_dir])
        self.assertEqual(rc, 0, err)
        foreign = [l.split(": ", 1)[1] for l in out2.splitlines() if l.startswith("Unseal share ")]
        # refused before anything is written: the new data directory does not even exist afterwards
        flipped = os.path.join(self.tmp, "flipped.cbk")
        bad = json.loads(json.dumps(manifest))
        record = bytearray(base64.b64decode(bad["seal"]["record"]))
        record[40] ^= 0x01
        bad["seal"]["record"] = base64.b64encode(bytes(record)).decode()
        write_with_manifest(flipped, header, bad, rest)
        target = os.path.join(self.tmp, "restored")
        for name, backup, given, words in (
                ("too few", path, shares[0] + "\n", "1 of the 2 current shares needed were given on standard input"),
                ("none", path, "", "0 of the 2 current shares"),
                ("malformed", path, "not-a-share\n" + shares[1] + "\n", "share"),
                ("foreign", path, shares[0] + "\n" + foreign[1] + "\n", "do not open the backup's seal record"),
                ("revoked by rekey", path, "\n".join(old[:2]) + "\n", "do not open the backup's seal record"),
                ("record flipped", flipped, "\n".join(shares[:2]) + "\n", "or the record was altered")):
            rc, out, err = self.restore(backup, target, input=given)
            self.assertEqual(rc, 1, (name, out, err))
            self.assertIn(words, err, name)
            self.assertFalse(os.path.exists(target), name)
            for share in shares + old + foreign:
                self.assertNotIn(share, out + err)
        # the record swapped for the older one, which the old (rekeyed-away) shares open to the same root key: the
        # manifest no longer authenticates
        swapped = os.path.join(self.tmp, "swapped.cbk")
        _, old_manifest, _ = manifest_of(old_path)
        bad = json.loads(json.dumps(manifest))
        bad["seal"] = old_manifest["seal"]
        self.assertNotEqual(bad["seal"]["record"], manifest["seal"]["record"])
        write_with_manifest(swapped, header, bad, rest)
        swap_target = os.path.join(self.tmp, "swap-target")
        rc, out, err = self.restore(swapped, swap_target, input="\n".join(old[:2]) + "\n")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("was altered", err)
        if harness.BACKEND == "sqlite":
            self.assertEqual(harness.sql(swap_target, "SELECT count(*) FROM projects"), [(0,)])
        # the good restore: the shares of the store as it was backed up
        rc, out, err = self.restore(path, target, input=shares[1] + "\n" + shares[2] + "\n")
        self.assertEqual(rc, 0, err)
        self.assertIn("restored %s" % path, out)
        self.assertIn("sealed as its source was (shamir)", out)
        self.assertFalse(os.path.exists(os.path.join(target, "root.key")))
        names = [row[0] for row in harness.sql(target, "SELECT name FROM meta WHERE name LIKE 'seal%'")]
        self.assertEqual(names, ["seal_shamir"])
        for root, _, files in os.walk(target):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    data = f.read()
                for share in shares:
                    self.assertNotIn(share.encode(), data, name)
                self.assertNotIn(root_key.encode(), data, name)
        restored = harness.Server(data_dir=target)
        self.addCleanup(restored.cleanup)
        restored.start()
        self.assertIsNotNone(wait_for_seal_state(restored, True), restored.stderr[-2000:])
        r = restored.api("GET", "/api/v3/secrets/raw", query={"workspaceId": server.project_id, "environment": "dev"})
        self.assertEqual(r.status, 503, r.body)
        for share in (shares[2], shares[0]):
            r = restored.api("POST", "/api/v1/sys/unseal", body={"key": share}, token=None)
            self.assertEqual(r.status, 200, r.body)
        self.assertIsNotNone(wait_for_seal_state(restored, False), restored.stderr[-2000:])
        self.assertEqual(read_values(restored, server.project_id), VALUES)
        restored.stop()
        for share in shares + old:
            self.assertNotIn(share, restored.stderr)
        # with the root key in hand the record is not needed, as before
        target2 = os.path.join(self.tmp, "restored-with-key")
        rc, out, err = self.restore(path, target2, env=self.env(target2, COFFER_ROOT_KEY=root_key))
        self.assertEqual(rc, 0, err)
        self.assertIn("sealed as its source was (shamir)", out)

    def test_backup_without_record_needs_the_root_key(self):
        server = seeded_server(self)
        data_dir = server.data_dir
        with open(os.path.join(data_dir, "root.key")) as f:
            root_key = f.read().strip()
        path, rc, _, err = self.backup(data_dir, "plain.cbk", self.env(data_dir))
        self.assertEqual(rc, 0, err)
        _, manifest, _ = manifest_of(path)
        self.assertEqual(manifest["format"], 1)
        self.assertNotIn("seal", manifest)
        target = os.path.join(self.tmp, "plain-restored")
        rc, out, err = self.restore(path, target)
        self.assertEqual(rc, 1, out)
        self.assertIn("carries no seal record", err)
        self.assertIn("restore it with its root key in COFFER_ROOT_KEY or %s/root.key" % target, err)
        self.assertFalse(os.path.exists(target))
        rc, out, err = self.restore(path, target, env=self.env(target, COFFER_ROOT_KEY=root_key))
        self.assertEqual(rc, 0, err)
        self.assertNotIn("sealed as its source was", out)
        restored = harness.Server(data_dir=target, env={"COFFER_ROOT_KEY": root_key})
        self.addCleanup(restored.cleanup)
        restored.start()
        self.assertEqual(read_values(restored, server.project_id), VALUES)
        restored.stop()

    def test_restore_with_the_pkcs11_token(self):
        server, conf, env = self.pkcs11_sealed()
        data_dir = server.data_dir
        path, rc, _, err = self.backup(data_dir, "token.cbk", env)
        self.assertEqual(rc, 0, err)
        self.assertEqual(manifest_of(path)[1]["seal"]["type"], "pkcs11")
        target = os.path.join(self.tmp, "token-restored")
        rc, out, err = self.restore(path, target, env=self.env(target, SOFTHSM2_CONF=conf,
                                                               COFFER_SEAL_PKCS11_PIN="0000"))
        self.assertEqual(rc, 1, out)
        self.assertIn("CKR_PIN_INCORRECT", err)
        self.assertFalse(os.path.exists(target))
        rc, out, err = self.restore(path, target, env=self.env(target, SOFTHSM2_CONF=conf,
                                                               COFFER_SEAL_PKCS11_PIN=PIN))
        self.assertEqual(rc, 0, err)
        self.assertIn("sealed as its source was (pkcs11)", out)
        self.assertNotIn(PIN, out + err)
        self.assertFalse(os.path.exists(os.path.join(target, "root.key")))
        restored = harness.Server(data_dir=target, env={"SOFTHSM2_CONF": conf, "COFFER_SEAL_PKCS11_PIN": PIN})
        self.addCleanup(restored.cleanup)
        restored.start()
        self.assertIsNotNone(wait_for_seal_state(restored, False), restored.stderr[-2000:])
        self.assertEqual(read_values(restored, server.project_id), VALUES)
        restored.stop()


if __name__ == "__main__":
    unittest.main()
