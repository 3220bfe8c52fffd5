"""Auto-unseal with Azure Key Vault (docs/operations.md "Auto-unseal with Azure Key Vault") against the Key Vault
and Entra ID stand-in of tests/fakes/azure.py, whose wrapkey/unwrapkey do real RSA-OAEP-256 (openssl CLI).

A file-keyed data directory with secrets moves to Key Vault (`coffer operator init --azure-key ...`); the server
then unseals itself at start and every secret reads back; a disabled key and a missing role (403) keep it sealed
with the vault's reason in the status and the log, and it unseals by itself once the vault allows it again;
throttling (429) is waited out; an admin's seal holds until the next start; a store sealed by shares moves to Key
Vault given its shares; no key or client secret in any log.
"""

import base64
import json
import os
import time
import uuid

import harness
from harness import ServerTestCase, run
from test_seal import wait_for_seal_state
from test_syncs import WithFakes

SECRETS = {"DB_PASSWORD": "kv-db-value", "API_KEY": "kv-k-123"}


def start_and_read_back(test, server, pid, secrets):
    """Starts server, waits until it has unsealed itself and checks that project pid's dev secrets are secrets."""
    server.start()
    test.assertIsNotNone(wait_for_seal_state(server, False), server.stderr[-2000:])
    r = server.api("GET", "/api/v3/secrets/raw", query={"workspaceId": pid, "environment": "dev", "secretPath": "/"})
    test.assertEqual(r.status, 200, r.body)
    test.assertEqual({s["secretKey"]: s["secretValue"] for s in r.json["secrets"]}, secrets)


def shares_move_to_auto_unseal(test, seed, meta_name, server_env, secrets):
    """A store sealed by 3 shares (threshold 2) moves to auto-unseal with test.init_args under test.env: one share
    is refused, two move it; the store then keeps only the meta row meta_name, and a server with server_env
    unseals itself and reads back the secrets seed(server) wrote."""
    server = harness.Server()
    try:
        server.start()
        pid = seed(server)
        server.stop()
        rc, out, err = run(["operator", "init", "--shares", "3", "--threshold", "2", "--data-dir", server.data_dir])
        test.assertEqual(rc, 0, err)
        shares = [l.split(": ", 1)[1] for l in out.splitlines() if l.startswith("Unseal share ")]
        rc, _, err = run(test.init_args(server.data_dir), env=test.env(server.data_dir), input=shares[0] + "\n")
        test.assertEqual(rc, 1, err)
        test.assertIn("1 of the 2", err)
        rc, _, err = run(test.init_args(server.data_dir), env=test.env(server.data_dir),
                         input="\n".join(shares[1:]) + "\n")
        test.assertEqual(rc, 0, err)
        test.assertIn("open nothing any more", err)
        names = [row[0] for row in harness.sql(server.data_dir, "SELECT name FROM meta WHERE name LIKE 'seal%'")]
        test.assertEqual(names, [meta_name])
        server.extra_env.update(server_env)
        start_and_read_back(test, server, pid, secrets)
        test.assertEqual(server.stop(), 0)
    finally:
        server.cleanup()


class AutoUnseal(WithFakes, ServerTestCase):
    FAKES = {"fake": "azure.py"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant, cls.client, cls.secret = str(uuid.uuid4()), str(uuid.uuid4()), "s-" + uuid.uuid4().hex
        cls.vault, cls.key_name = harness.unique("vault"), "coffer-root"
        cls.fake.call("POST", "/_fake/entra/apps", {"tenant": cls.tenant, "clientId": cls.client, "secrets": [
            {"value": cls.secret, "expiresAt": int(time.time()) + 86400}]})
        cls.fake.call("POST", "/_fake/kv/vaults", {"vault": cls.vault, "roles": {cls.client: ["Key Vault Crypto User"]}})
        cls.kid = cls.fake.call("POST", "/_fake/kv/keys", {"vault": cls.vault, "name": cls.key_name})[1]["kid"]
        cls.pid = cls.seed(cls.server)
        cls.server.stop()
        with open(os.path.join(cls.server.data_dir, "root.key")) as f:
            cls.root_key_text = f.read().strip()
        cls.server.extra_env["COFFER_SEAL_AZURE_CLIENT_SECRET"] = cls.secret

    @staticmethod
    def seed(server):
        r = server.api("POST", "/api/v2/workspace", body={"projectName": harness.unique("kv")})
        pid = r.json["project"]["id"]
        for key, value in SECRETS.items():
            r = server.api("POST", "/api/v3/secrets/raw/" + key, body={
                "workspaceId": pid, "environment": "dev", "secretPath": "/", "secretValue": value})
            assert r.status == 200, r.body
        return pid

    def init_args(self, data_dir):
        return ["operator", "init", "--azure-key", "%s/kv/%s/keys/%s" % (self.fake.url, self.vault, self.key_name),
                "--azure-tenant", self.tenant, "--azure-client-id", self.client,
                "--azure-authority", self.fake.url + "/entra", "--data-dir", data_dir]

    def env(self, data_dir, **extra):
        e = dict(harness.db_env(data_dir) if harness.PG_DIR else {}, COFFER_SEAL_AZURE_CLIENT_SECRET=self.secret)
        e.update(extra)
        return harness.base_env(e)

    def status(self):
        try:
            r = self.api("GET", "/api/status", token=None)
        except (ConnectionError, OSError):
            return None
        return r.json if r.status == 200 else None

    def wait_sealed_state(self, sealed, timeout=15):
        st = wait_for_seal_state(self.server, sealed, timeout)
        if st is None:
            self.fail("not %s within %ss:\n%s" % ("sealed" if sealed else "unsealed", timeout,
                                                   self.server.stderr[-2000:]))
        return st

    def assert_secrets_read_back(self, pid=None):
        self.assertEqual(self.secret_values(pid or self.pid), {("/", k): v for k, v in SECRETS.items()})

    def set_enabled(self, enabled):
        self.fake.call("POST", "/_fake/kv/keys/enabled", {"vault": self.vault, "name": self.key_name,
                                                         "enabled": enabled})

    def test_a_file_keyed_directory_moves_to_key_vault(self):
        data_dir = self.server.data_dir
        rc, _, err = run(["operator", "init", "--azure-key", "https://x.vault.azure.net/keys/k", "--data-dir",
                          data_dir], env=self.env(data_dir))
        self.assertEqual(rc, 2, err)
        self.assertIn("go together", err)
        rc, _, err = run(self.init_args(data_dir) + ["--shares", "3"], env=self.env(data_dir))
        self.assertEqual(rc, 2, err)
        rc, _, err = run(self.init_args(data_dir), env=harness.base_env(
            harness.db_env(data_dir) if harness.PG_DIR else {}))
        self.assertEqual(rc, 1, err)
        self.assertIn("COFFER_SEAL_AZURE_CLIENT_SECRET is not set", err)
        self.assertTrue(os.path.exists(os.path.join(data_dir, "root.key")))
        rc, out, err = run(self.init_args(data_dir), env=self.env(data_dir))
        self.assertEqual(rc, 0, err)
        self.assertIn("wrapped by Azure Key Vault", err)
        self.assertFalse(os.path.exists(os.path.join(data_dir, "root.key")))
        rc, _, err = run(self.init_args(data_dir), env=self.env(data_dir))
        self.assertEqual(rc, 1, err)
        self.assertIn("already", err)
        self.server.start()
        st = self.wait_sealed_state(False)
        self.assertEqual(st["seal"]["type"], "azure-key-vault")
        self.assert_secrets_read_back()
        ops = [e["path"].rsplit("/", 1)[1] for e in self.fake.log() if "/keys/" in e["path"]]
        self.assertEqual(ops, ["wrapkey", "unwrapkey"])
        events = self.ok("GET", "/api/v1/audit/events", query={"action": "server.unseal"})["events"]
        self.assertEqual([(e["actor"]["name"], e["reason"]) for e in events],
                         [("azure-key-vault", "root key unwrapped by Azure Key Vault")])
        events = self.ok("GET", "/api/v1/audit/events", query={"action": "seal.init"})["events"]
        self.assertEqual([e["reason"] for e in events], ["wrapped by Azure Key Vault by coffer operator init"])

    def test_b_disabled_key_keeps_it_sealed(self):
        self.server.stop()
        self.set_enabled(False)
        try:
            self.server.start()
            st = self.status()
            self.assertIs(st["sealed"], True)
            deadline = time.monotonic() + 10
            while not st["seal"].get("error") and time.monotonic() < deadline:
                time.sleep(0.05)
                st = self.status()
            self.assertIn("disabled key", st["seal"]["error"])
            self.assertIn("403", st["seal"]["error"])
            self.assertError(self.list_secrets(self.pid), 503, "Sealed")
            self.assertIn("auto-unseal with Azure Key Vault failed", self.server.stderr)
            r = self.api("POST", "/api/v1/sys/unseal", body={"key": "A" * 44}, token=None)
            self.assertError(r, 400, None, "takes no shares")
        finally:
            self.set_enabled(True)
        self.wait_sealed_state(False)  # tried again by itself
        self.assert_secrets_read_back()
        # what happened while sealed is audited before the unseal: the vault's refusals, the share refused
        events = self.ok("GET", "/api/v1/audit/events", query={"action": "server.", "limit": 1000})["events"]
        events = [e for e in events if e["action"] in ("server.unseal", "server.unseal.attempt")]
        last = max(i for i, e in enumerate(events) if e["action"] == "server.unseal")
        previous = max([i for i, e in enumerate(events[:last]) if e["action"] == "server.unseal"] + [-1])
        period = events[previous + 1:last]
        failed = [e for e in period if e["result"] == "failed"]
        self.assertTrue(failed, period)
        for e in failed:
            self.assertEqual(e["actor"]["name"], "azure-key-vault", e)
            self.assertIn("disabled key", e["reason"])
        shares = [e for e in period if e["result"] == "denied"]
        self.assertEqual([(e["sourceIp"], e["reason"]) for e in shares],
                         [("127.0.0.1", "rejected: this server takes no shares (it unseals itself)")])
        self.assertIn("unseal: a share from 127.0.0.1 was rejected: this server takes no shares", self.server.stderr)

    def test_c_missing_role_is_403_and_throttling_is_waited_out(self):
        self.server.stop()
        self.fake.call("POST", "/_fake/kv/vaults", {"vault": self.vault, "roles": {self.client: ["Key Vault Reader"]}})
        try:
            self.server.start()
            deadline = time.monotonic() + 10
            st = self.status()
            while not (st or {}).get("seal", {}).get("error") and time.monotonic() < deadline:
                time.sleep(0.05)
                st = self.status()
            self.assertIs(st["sealed"], True)
            self.assertIn("ForbiddenByRbac", st["seal"]["error"])
        finally:
            self.fake.call("POST", "/_fake/kv/vaults", {"vault": self.vault,
                                                        "roles": {self.client: ["Key Vault Crypto User"]}})
        self.wait_sealed_state(False)
        self.server.stop()
        self.fake.call("POST", "/_fake/throttle", {"count": 2, "retryAfter": 0, "prefix": "/kv"})
        self.server.start()
        self.wait_sealed_state(False)
        self.assert_secrets_read_back()

    def test_d_admin_seal_holds_until_restart(self):
        rc, out, err = self.cli("operator", "seal")
        self.assertEqual(rc, 0, err)
        self.wait_sealed_state(True)
        time.sleep(2.5)  # longer than the retry interval: an admin's seal is not undone by the vault
        self.assertIs(self.status()["sealed"], True)
        self.assertError(self.list_secrets(self.pid), 503, "Sealed")
        self.server.stop()
        self.server.start()
        self.wait_sealed_state(False)
        self.assert_secrets_read_back()

    def test_e_shares_move_to_key_vault(self):
        shares_move_to_auto_unseal(self, self.seed, "seal_azure",
                                   {"COFFER_SEAL_AZURE_CLIENT_SECRET": self.secret}, SECRETS)

    def test_g_managed_identity(self):
        identity = str(uuid.uuid4())
        self.fake.call("POST", "/_fake/imds/identities", {"clientId": identity})
        self.fake.call("POST", "/_fake/kv/vaults", {"vault": self.vault, "roles": {
            self.client: ["Key Vault Crypto User"], identity: ["Key Vault Crypto User"]}})
        server = harness.Server()
        try:
            server.start()
            pid = self.seed(server)
            server.stop()
            args = ["operator", "init", "--azure-key", "%s/kv/%s/keys/%s" % (self.fake.url, self.vault, self.key_name),
                    "--azure-managed-identity", "--azure-imds-endpoint",
                    self.fake.url + "/imds/metadata/identity/oauth2/token", "--data-dir", server.data_dir]
            env = harness.base_env(harness.db_env(server.data_dir) if harness.PG_DIR else {})
            rc, _, err = run(args + ["--azure-tenant", self.tenant], env=env)
            self.assertEqual(rc, 2, err)
            rc, _, err = run(args + ["--azure-client-id", "not-this-machine"], env=env)
            self.assertEqual(rc, 1, err)
            self.assertIn("Identity not found", err)
            rc, _, err = run(args, env=env)  # the system-assigned identity; no client secret anywhere
            self.assertEqual(rc, 0, err)
            start_and_read_back(self, server, pid, SECRETS)
            imds = [e for e in self.fake.log() if e["path"].startswith("/imds/")]
            self.assertTrue(imds and all(e["query"].get("resource") == "https://vault.azure.net" for e in imds), imds)
            self.assertEqual(server.stop(), 0)
        finally:
            server.cleanup()

    def test_f_no_key_or_secret_in_any_log(self):
        raw_key = base64.b64decode(self.root_key_text)
        texts = [self.server.stderr, self.server.stdout]
        texts.append(json.dumps(self.fake.log()))
        for text in texts:
            self.assertNotIn(self.root_key_text, text)
            self.assertNotIn(base64.urlsafe_b64encode(raw_key).decode().rstrip("="), text)
            self.assertNotIn(self.secret, text)
