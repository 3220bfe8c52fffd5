"""Auto-unseal with a PKCS#11 token (docs/operations.md "Auto-unseal with a PKCS#11 token") against SoftHSM2, a
real PKCS#11 module: a token made by softhsm2-util in a temporary SOFTHSM2_CONF directory, its AES key generated
in the token by pkcs11-tool (OpenSC).

A file-keyed data directory with secrets moves to the token (`coffer operator init --pkcs11-module ...`); the
server then unseals itself at start and every secret reads back; a wrong PIN, a token that is not there and a key
that is not in the token keep it sealed, naming the cause in the status and the log; a store sealed by shares
moves to the token given its shares; no PIN or root key in any log.
"""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import harness
from harness import ServerTestCase, run
import test_autounseal
from test_autounseal import SECRETS, shares_move_to_auto_unseal
from test_seal import wait_for_seal_state

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN, KEY, PIN, SO_PIN = "coffer-seal", "coffer-root-wrap", "4831-pin", "so-7720"


def wait_for_seal_error(server, timeout=15):
    """The status's seal once it is sealed with the reason of a failed auto-unseal (the first attempt runs
    just after the sealed listener answers), or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = wait_for_seal_state(server, True, max(deadline - time.monotonic(), 0.1))
        if st and st["seal"].get("error"):
            return st["seal"]
        time.sleep(0.05)
    return None


def make_token_dir(path):
    """A SoftHSM2 configuration under path with one token holding an AES-256 key; returns the config's path."""
    os.makedirs(os.path.join(path, "tokens"))
    conf = os.path.join(path, "softhsm2.conf")
    with open(conf, "w") as f:
        f.write("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n"
                % os.path.join(path, "tokens"))
    env = dict(os.environ, SOFTHSM2_CONF=conf)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", SO_PIN],
                   env=env, check=True, capture_output=True)
    subprocess.run(["pkcs11-tool", "--module", MODULE, "--token-label", TOKEN, "--login", "--pin", PIN,
                    "--keygen", "--key-type", "AES:32", "--label", KEY], env=env, check=True, capture_output=True)
    return conf


class Pkcs11AutoUnseal(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(MODULE) or not shutil.which("pkcs11-tool"):
            raise unittest.SkipTest("SoftHSM2 or OpenSC is not installed (scripts/deps.sh installs them)")
        super().setUpClass()
        cls.hsm_dir = tempfile.mkdtemp(prefix="coffer-softhsm-")
        cls.conf = make_token_dir(cls.hsm_dir)
        cls.pid = cls.seed(cls.server)
        cls.server.stop()
        with open(os.path.join(cls.server.data_dir, "root.key")) as f:
            cls.root_key_text = f.read().strip()
        cls.server.extra_env.update(SOFTHSM2_CONF=cls.conf, COFFER_SEAL_PKCS11_PIN=PIN)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.hsm_dir, ignore_errors=True)

    @staticmethod
    def seed(server):
        return test_autounseal.AutoUnseal.seed(server)

    @staticmethod
    def init_args(data_dir, key=KEY):
        return ["operator", "init", "--pkcs11-module", MODULE, "--pkcs11-token-label", TOKEN,
                "--pkcs11-key-label", key, "--data-dir", data_dir]

    def env(self, data_dir, **extra):
        e = dict(harness.db_env(data_dir) if harness.PG_DIR else {}, SOFTHSM2_CONF=self.conf,
                 COFFER_SEAL_PKCS11_PIN=PIN)
        e.update(extra)
        return harness.base_env(e)

    def restart_sealed(self, **env):
        """Restarts the server with env changed; asserts it stays sealed, logging why, and returns the status's
        seal."""
        self.server.stop()
        saved = dict(self.server.extra_env)
        self.server.extra_env.update(env)
        try:
            self.server.start()
            seal = wait_for_seal_error(self.server)
            self.assertIsNotNone(seal, self.server.stderr[-2000:])
            self.assertEqual(seal["type"], "pkcs11")
            self.assertIn("auto-unseal with the PKCS#11 token failed: " + seal["error"], self.server.stderr)
            self.sealed_stderr = self.server.stderr
            return seal
        finally:
            self.server.stop()
            self.server.extra_env = saved
            self.server.start()
            self.assertIsNotNone(wait_for_seal_state(self.server, False), self.server.stderr[-2000:])

    def test_a_file_keyed_directory_moves_to_the_token(self):
        data_dir = self.server.data_dir
        rc, _, err = run(["operator", "init", "--pkcs11-module", MODULE, "--data-dir", data_dir],
                         env=self.env(data_dir))
        self.assertEqual(rc, 2, err)
        self.assertIn("go together", err)
        rc, _, err = run(self.init_args(data_dir) + ["--shares", "3"], env=self.env(data_dir))
        self.assertEqual(rc, 2, err)
        self.assertIn("--pkcs11-* options belong to init", err)
        rc, _, err = run(self.init_args(data_dir), env=self.env(data_dir, COFFER_SEAL_PKCS11_PIN=""))
        self.assertEqual(rc, 1, err)
        self.assertIn("neither COFFER_SEAL_PKCS11_PIN nor COFFER_SEAL_PKCS11_PIN_FILE is set", err)
        rc, _, err = run(self.init_args(data_dir), env=self.env(data_dir, COFFER_SEAL_PKCS11_PIN="wrong-pin"))
        self.assertEqual(rc, 1, err)
        self.assertIn("C_Login on token '%s' failed: CKR_PIN_INCORRECT" % TOKEN, err)
        rc, _, err = run(self.init_args(data_dir, key="no-such-key"), env=self.env(data_dir,
                                                                                  COFFER_SEAL_PKCS11_PIN=PIN))
        self.assertEqual(rc, 1, err)
        self.assertIn("holds no secret key labelled 'no-such-key'", err)
        rc, _, err = run(["operator", "init", "--pkcs11-module", "/nonexistent/libp11.so", "--pkcs11-token-label",
                          TOKEN, "--pkcs11-key-label", KEY, "--data-dir", data_dir],
                         env=self.env(data_dir, COFFER_SEAL_PKCS11_PIN=PIN))
        self.assertEqual(rc, 1, err)
        self.assertIn("cannot load the PKCS#11 module '/nonexistent/libp11.so'", err)
        # a module others could replace is never loaded (loading runs its code in the process)
        writable = os.path.join(self.hsm_dir, "libsofthsm2-copy.so")
        shutil.copyfile(MODULE, writable)
        os.chmod(writable, 0o666)
        for module, words in ((writable, "writable by no one else: not loaded"),
                              ("libsofthsm2.so", "is not an absolute path")):
            rc, _, err = run(["operator", "init", "--pkcs11-module", module, "--pkcs11-token-label", TOKEN,
                              "--pkcs11-key-label", KEY, "--data-dir", data_dir], env=self.env(data_dir))
            self.assertEqual(rc, 1, err)
            self.assertIn(words, err)
        self.assertTrue(os.path.exists(os.path.join(data_dir, "root.key")))
        # the PIN from a file, as a service manager's credential would hand it over
        pin_file = os.path.join(self.hsm_dir, "pin")
        with open(pin_file, "w") as f:
            f.write(PIN + "\n")
        rc, _, err = run(self.init_args(data_dir), env=self.env(data_dir, COFFER_SEAL_PKCS11_PIN="",
                                                            COFFER_SEAL_PKCS11_PIN_FILE=pin_file))
        self.assertEqual(rc, 0, err)
        self.assertIn("wrapped by the PKCS#11 token", err)
        self.assertFalse(os.path.exists(os.path.join(data_dir, "root.key")))
        rc, _, err = run(self.init_args(data_dir), env=self.env(data_dir, COFFER_SEAL_PKCS11_PIN=PIN))
        self.assertEqual(rc, 1, err)
        self.assertIn("wrapped by a PKCS#11 token already", err)
        # offline commands that need the key in hand name what holds it
        rc, _, err = run(["operator", "rotate-root-key", "--data-dir", data_dir], env=self.env(data_dir))
        self.assertEqual(rc, 1, err)
        self.assertIn("the root key of this store is wrapped by a PKCS#11 token: this command needs the key", err)
        self.server.start()
        st = wait_for_seal_state(self.server, False)
        self.assertIsNotNone(st, self.server.stderr[-2000:])
        self.assertEqual(st["seal"]["type"], "pkcs11")
        self.assertEqual(self.secret_values(self.pid), {("/", k): v for k, v in SECRETS.items()})
        events = self.ok("GET", "/api/v1/audit/events", query={"action": "server.unseal"})["events"]
        self.assertEqual([(e["actor"]["name"], e["reason"]) for e in events],
                         [("pkcs11", "root key unwrapped by the PKCS#11 token")])
        events = self.ok("GET", "/api/v1/audit/events", query={"action": "seal.init"})["events"]
        self.assertEqual([e["reason"] for e in events], ["wrapped by the PKCS#11 token by coffer operator init"])

    def test_b_wrong_pin_keeps_it_sealed(self):
        seal = self.restart_sealed(COFFER_SEAL_PKCS11_PIN="0000")
        self.assertIn("CKR_PIN_INCORRECT", seal["error"])
        self.assertIn("not trying again with this PIN", self.sealed_stderr)

    def test_c_missing_token_keeps_it_sealed_until_it_is_there(self):
        empty = os.path.join(self.hsm_dir, "empty")
        os.makedirs(os.path.join(empty, "tokens"), exist_ok=True)
        conf = os.path.join(empty, "softhsm2.conf")
        with open(conf, "w") as f:
            f.write("directories.tokendir = %s\nobjectstore.backend = file\n" % os.path.join(empty, "tokens"))
        self.server.stop()
        self.server.extra_env["SOFTHSM2_CONF"] = conf
        try:
            self.server.start()
            seal = wait_for_seal_error(self.server)
            self.assertIsNotNone(seal, self.server.stderr[-2000:])
            self.assertIn("the PKCS#11 module has no token labelled '%s'" % TOKEN, seal["error"])
            self.assertIn("trying again every 2 s", self.server.stderr)
            # the token appears (here: the module's configuration points at it): the next try unseals
            shutil.copyfile(self.conf, conf)
            self.assertIsNotNone(wait_for_seal_state(self.server, False), self.server.stderr[-2000:])
            self.assertEqual(self.secret_values(self.pid), {("/", k): v for k, v in SECRETS.items()})
            # the failed tries, remembered while sealed, are audited before the unseal they preceded
            events = self.ok("GET", "/api/v1/audit/events", query={"action": "server.", "limit": 1000})["events"]
            events = [e for e in events if e["action"] in ("server.unseal", "server.unseal.attempt")]
            self.assertEqual(events[-1]["action"], "server.unseal", events[-3:])
            failed = events[-2]
            self.assertEqual((failed["action"], failed["result"], failed["actor"]["name"]),
                             ("server.unseal.attempt", "failed", "pkcs11"), failed)
            self.assertTrue(failed["reason"].startswith("failed: the PKCS#11 module"), failed)
            self.assertIn("has no token labelled '%s'" % TOKEN, failed["reason"])
            self.assertNotIn(PIN, json.dumps(events))
        finally:
            self.server.extra_env["SOFTHSM2_CONF"] = self.conf

    def test_d_no_pin_keeps_it_sealed(self):
        seal = self.restart_sealed(COFFER_SEAL_PKCS11_PIN="")
        self.assertIn("neither COFFER_SEAL_PKCS11_PIN nor COFFER_SEAL_PKCS11_PIN_FILE is set", seal["error"])

    def test_e_shares_move_to_the_token(self):
        shares_move_to_auto_unseal(self, self.seed, "seal_pkcs11",
                                   {"SOFTHSM2_CONF": self.conf, "COFFER_SEAL_PKCS11_PIN": PIN}, SECRETS)

    def test_f_no_pin_or_key_in_any_log(self):
        raw_key = base64.b64decode(self.root_key_text)
        record = harness.sql(self.server.data_dir, "SELECT value FROM meta WHERE name = 'seal_pkcs11'")[0][0]
        record = record.decode() if isinstance(record, bytes) else record
        self.assertNotIn(self.root_key_text, record)
        for text in [self.server.stderr, self.server.stdout, record]:
            self.assertNotIn(PIN, text)
            self.assertNotIn(self.root_key_text, text)
            self.assertNotIn(base64.urlsafe_b64encode(raw_key).decode().rstrip("="), text)

    def test_g_missing_key_keeps_it_sealed(self):
        # last: the key is gone for good, and with it this store
        subprocess.run(["pkcs11-tool", "--module", MODULE, "--token-label", TOKEN, "--login", "--pin", PIN,
                        "--delete-object", "--type", "secrkey", "--label", KEY],
                       env=dict(os.environ, SOFTHSM2_CONF=self.conf), check=True, capture_output=True)
        self.server.stop()
        self.server.start()
        seal = wait_for_seal_error(self.server)
        self.assertIsNotNone(seal, self.server.stderr[-2000:])
        self.assertIn("holds no secret key labelled '%s'" % KEY, seal["error"])
        self.assertIn("auto-unseal with the PKCS#11 token failed", self.server.stderr)
