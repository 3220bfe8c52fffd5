"""The admin token at rest and its rotation (docs/server.md, "The admin token"; docs/cli.md, `coffer operator
rotate-admin-token`).

- the stored admin-token hash is keyed by a server key that the root key wraps: from the database alone (a stolen
  backup) the token cannot be checked, so an operator-chosen bootstrap token cannot be guessed offline — neither
  a plain SHA-256/BLAKE2b of it nor the old fixed-key derivation matches what is stored;
- a store written before that (the old 32-byte hash) still accepts its token, and is re-keyed on the first
  successful use, or at start when COFFER_BOOTSTRAP_TOKEN is that token;
- `coffer operator rotate-admin-token` prints a new token once; a running server refuses the old one at the next
  request and accepts the new one; `rotate-root-key` afterwards keeps the new token working.
"""

import hashlib
import re
import unittest

import harness

OLD_DOMAIN_KEY = b"coffer credential hash v1".ljust(32, b"\0")


def stored_admin_hash(data_dir):
    rows = harness.sql(data_dir, "SELECT value FROM meta WHERE name = 'admin_token_hash'")
    value = rows[0][0]
    if isinstance(value, str):  # PostgreSQL: bytea as \x hex text
        value = bytes.fromhex(value[2:] if value.startswith("\\x") else value)
    return bytes(value)


def fast_hashes(token):
    t = token.encode()
    return {"sha256": hashlib.sha256(t).digest(),
            "blake2b-256": hashlib.blake2b(t, digest_size=32).digest(),
            "blake2b-512": hashlib.blake2b(t).digest(),
            "old keyed blake2b": hashlib.blake2b(t, digest_size=32, key=OLD_DOMAIN_KEY).digest()}


def rotate_admin_token(data_dir):
    rc, out, err = harness.run(["operator", "rotate-admin-token", "--data-dir", data_dir])
    return rc, out, err


class AdminTokenAtRest(unittest.TestCase):

    def setUp(self):
        self.server = harness.Server()
        self.server.start()

    def tearDown(self):
        try:
            if self.server.alive():
                self.assertEqual(self.server.stop(), 0, self.server.stderr[-2000:])
            report = self.server.sanitizer_report()
            self.assertIsNone(report, report)
        finally:
            self.server.cleanup()

    def store_old_form(self):
        """Stops the server and writes the hash of the admin token as a store made before the admin key did;
        returns it."""
        old = fast_hashes(harness.ADMIN_TOKEN)["old keyed blake2b"]
        self.server.stop()
        harness.sql(self.server.data_dir, "UPDATE meta SET value = X'%s' WHERE name = 'admin_token_hash'" % old.hex()
                    if harness.BACKEND == "sqlite" else
                    "UPDATE meta SET value = '\\x%s'::bytea WHERE name = 'admin_token_hash'" % old.hex())
        return old

    def status(self, token):
        return self.server.api("GET", "/api/v1/identities", token=token).status

    def test_stored_hash_cannot_be_checked_from_the_database(self):
        stored = stored_admin_hash(self.server.data_dir)
        self.assertEqual(self.status(harness.ADMIN_TOKEN), 200)
        for name, digest in fast_hashes(harness.ADMIN_TOKEN).items():
            with self.subTest(hash=name):
                self.assertNotIn(digest, stored, "the stored admin hash is a %s of the token" % name)
        # The key is stored wrapped by the root key: no bytes of any meta row, taken as a BLAKE2b key, check it.
        rows = harness.sql(self.server.data_dir, "SELECT name, value FROM meta")
        self.assertIn("admin_key", {r[0] for r in rows})
        t = harness.ADMIN_TOKEN.encode()
        for name, value in rows:
            if isinstance(value, str):
                value = bytes.fromhex(value[2:] if value.startswith("\\x") else value)
            value = bytes(value)
            for start in range(0, max(1, len(value) - 31)):
                key = value[start:start + 32]
                self.assertNotIn(hashlib.blake2b(t, digest_size=32, key=key).digest(), stored,
                                 "meta %s holds the key of the admin hash in plain" % name)

    def test_old_form_is_rekeyed_on_first_use(self):
        old = self.store_old_form()
        self.server.token = None  # no COFFER_BOOTSTRAP_TOKEN at this start
        self.server.start()
        self.assertEqual(stored_admin_hash(self.server.data_dir), old)
        self.assertEqual(self.status("wrong-" + harness.ADMIN_TOKEN), 401)
        self.assertEqual(stored_admin_hash(self.server.data_dir), old, "a wrong token re-keyed the store")
        self.assertEqual(self.status(harness.ADMIN_TOKEN), 200)
        rekeyed = stored_admin_hash(self.server.data_dir)
        self.assertNotIn(old, rekeyed, "the first successful use did not re-key the stored hash")
        self.assertEqual(self.status(harness.ADMIN_TOKEN), 200)

    def test_old_form_is_rekeyed_at_start_with_the_bootstrap_token(self):
        old = self.store_old_form()
        self.server.start()  # COFFER_BOOTSTRAP_TOKEN is the admin token
        self.assertNotIn(old, stored_admin_hash(self.server.data_dir))
        self.assertEqual(self.status(harness.ADMIN_TOKEN), 200)

    def test_rotate_admin_token_on_a_running_server(self):
        self.assertEqual(self.status(harness.ADMIN_TOKEN), 200)
        rc, out, err = rotate_admin_token(self.server.data_dir)
        self.assertEqual(rc, 0, err)
        m = re.search(r"^admin token: (cfadm_[A-Za-z0-9_-]{43})$", out, re.M)
        self.assertTrue(m, out)
        new = m.group(1)
        self.assertEqual(out.count(new), 1, "the new token is printed once")
        self.assertNotIn(new, err)
        # At once, without a restart.
        self.assertEqual(self.status(harness.ADMIN_TOKEN), 401)
        self.assertEqual(self.status(new), 200)
        for name, digest in fast_hashes(new).items():
            self.assertNotIn(digest, stored_admin_hash(self.server.data_dir), name)
        self.assertNotIn(new, self.server.stderr + self.server.stdout)
        # Rotating the root key keeps the admin key (rewrapped) and so the token.
        self.server.stop()
        rc, out, err = harness.run(["operator", "rotate-root-key", "--data-dir", self.server.data_dir])
        self.assertEqual(rc, 0, err)
        self.server.start()  # COFFER_BOOTSTRAP_TOKEN (the old token) is ignored: the store has one
        self.assertEqual(self.status(new), 200)
        self.assertEqual(self.status(harness.ADMIN_TOKEN), 401)
        # A second rotation ends the first new token.
        rc, out, err = rotate_admin_token(self.server.data_dir)
        self.assertEqual(rc, 0, err)
        newer = re.search(r"^admin token: (\S+)$", out, re.M).group(1)
        self.assertEqual(self.status(new), 401)
        self.assertEqual(self.status(newer), 200)

    def test_rotate_admin_token_usage(self):
        rc, out, err = harness.run(["operator", "rotate-admin-token", "--data-dir", self.server.data_dir, "extra"])
        self.assertEqual(rc, 2, err)
        rc, out, err = harness.run(["operator", "rotate-admin-token", "--from", "x", "--data-dir",
                                    self.server.data_dir])
        self.assertEqual(rc, 2, err)
        self.assertEqual(self.status(harness.ADMIN_TOKEN), 200)


if __name__ == "__main__":
    unittest.main()
