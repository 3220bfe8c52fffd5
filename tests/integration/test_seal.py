"""Seal and unseal with Shamir shares (docs/operations.md "Seal and unseal").

One server per class. Its data directory starts with a root key file and a project with secrets; then
`coffer operator init --shares 5 --threshold 3` splits the key (the migration from a file-keyed directory),
and every test after that works on the sealed server, in the order of their names: 503 on every route but the
status and unseal ones, refused inputs, a wrong share set, progress, nonce and reset, an unseal with any three
shares (every secret reads back), `coffer operator seal` on the running server, a restart that is sealed again,
rekey (old shares void), the throttle on failed attempts (test clock), and no share in any log or file.
On PostgreSQL, two nodes on one store are unsealed and sealed each on its own.
"""

import base64
import json
import os
import time
import unittest

import harness
from harness import ServerTestCase, run

SHARES, THRESHOLD = 5, 3
SECRETS = {"DB_PASSWORD": "s3cr3t-db-value", "API_KEY": "k-0123456789", "EMPTY_ONE": ""}


def parse_shares(stdout):
    """The share texts of init's or rekey's stdout, in order."""
    shares = []
    for line in stdout.splitlines():
        if line.startswith("Unseal share "):
            shares.append(line.split(": ", 1)[1].strip())
    return shares


def wait_for_seal_state(server, sealed, timeout=15):
    """Waits until server's GET /api/status says sealed (True or False) and returns its answer, or None when it
    did not in time. Between the sealed and the unsealed listener the address refuses connections for a moment
    (or answers 503 "shutting down"), which counts as not yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = server.api("GET", "/api/status", token=None)
            if r.status == 200 and r.json["sealed"] is sealed:
                return r.json
        except (ConnectionError, OSError):
            pass
        time.sleep(0.05)
    return None


def forge(share):
    """The same share with one byte of its value changed: well-formed, but wrong."""
    raw = bytearray(base64.urlsafe_b64decode(share + "="))
    raw[7] ^= 0x5A
    return base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


class Seal(ServerTestCase):
    shares = []
    all_shares = []  # every share ever printed, for the log scan

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        r = s.api("POST", "/api/v2/workspace", body={"projectName": harness.unique("seal")})
        assert r.status == 200, r.body
        cls.pid = r.json["project"]["id"]
        for key, value in SECRETS.items():
            r = s.api("POST", "/api/v3/secrets/raw/" + key,
                      body={"workspaceId": cls.pid, "environment": "dev", "secretPath": "/", "secretValue": value})
            assert r.status == 200, r.body
        assert s.stop() == 0
        assert os.path.exists(os.path.join(s.data_dir, "root.key"))
        cls.init_rc, cls.init_out, cls.init_err = run(
            ["operator", "init", "--shares", str(SHARES), "--threshold", str(THRESHOLD), "--data-dir", s.data_dir])
        cls.shares = parse_shares(cls.init_out)
        cls.all_shares = list(cls.shares)
        s.start()

    # ----- helpers -----

    def unseal(self, share, **extra):
        body = {"key": share}
        body.update(extra)
        return self.api("POST", "/api/v1/sys/unseal", body=body, token=None)

    def status(self):
        r = self.api("GET", "/api/status", token=None)
        self.assertEqual(r.status, 200, r.body)
        return r.json

    def wait_sealed_state(self, sealed):
        if wait_for_seal_state(self.server, sealed) is None:
            self.fail("the server did not serve %s within 15 s:\n%s"
                      % ("sealed" if sealed else "unsealed", self.server.stderr[-2000:]))

    def wait_unsealed(self):
        self.wait_sealed_state(False)

    def seal(self):
        rc, out, err = self.cli("operator", "seal")
        self.assertEqual(rc, 0, err)
        self.assertIn("Sealed: true", out)
        self.wait_sealed_state(True)

    def assert_secrets_read_back(self):
        values = self.secret_values(self.pid)
        self.assertEqual(values, {("/", k): v for k, v in SECRETS.items()})

    def assert_sealed_503(self):
        r = self.list_secrets(self.pid)
        self.assertError(r, 503, "Sealed", "sealed", "coffer operator unseal")
        r = self.api("POST", "/api/v2/workspace", body={"projectName": "x"})
        self.assertError(r, 503, "Sealed", "sealed")

    # ----- the tests, in order -----

    def test_a_init_prints_the_shares_once(self):
        self.assertEqual(self.init_rc, 0, self.init_err)
        self.assertEqual(len(self.shares), SHARES, self.init_out)
        self.assertEqual(len(set(self.shares)), SHARES)
        for share in self.shares:
            self.assertEqual(len(share), 44, share)
        self.assertIn("Any 3 of these 5 shares", self.init_out)
        self.assertIn("removed", self.init_err)
        self.assertFalse(os.path.exists(os.path.join(self.server.data_dir, "root.key")))
        for args, words in ((["--shares", "5", "--threshold", "6"], "--threshold"),
                            (["--shares", "5", "--threshold", "1"], "--threshold"),
                            (["--shares", "33", "--threshold", "2"], "--shares"),
                            (["--shares", "five", "--threshold", "2"], "--shares"),
                            (["--shares", "5"], "required")):
            rc, out, err = run(["operator", "init", "--data-dir", self.server.data_dir] + args)
            self.assertEqual(rc, 2, (args, err))
            self.assertIn(words, err)
            self.assertEqual(parse_shares(out), [])

    def test_b_sealed_server_answers_503_but_status(self):
        st = self.status()
        self.assertIs(st["sealed"], True)
        self.assertEqual((st["seal"]["type"], st["seal"]["t"], st["seal"]["n"], st["seal"]["progress"]),
                         ("shamir", THRESHOLD, SHARES, 0))
        r = self.api("GET", "/api/v1/sys/seal-status", token=None)
        self.assertEqual((r.status, r.json["sealed"]), (200, True))
        self.assert_sealed_503()
        # an admin-only route too, even with the right token: nothing can be checked while sealed
        self.assertError(self.api("POST", "/api/v1/sys/seal"), 503, "Sealed")
        self.assertIn("sealed: unseal with 'coffer operator unseal'", self.server.stderr)

    def test_c_bad_input(self):
        for body, status, words in (
                ({"key": "hello"}, 400, "share"),
                ({"key": base64.urlsafe_b64encode(b"0123456789").decode()}, 400, "44 characters"),
                ({"key": "A" * 44}, 400, "share"),            # x = 0 is no share
                ({"key": "!" * 44}, 400, "share"),
                ({"key": "x" * 300}, 422, "too long"),
                ({"key": 12}, 422, "key"),
                ({}, 422, "key"),
                ({"key": self.shares[0], "reset": True}, 422, "either"),
                ({"reset": "yes"}, 422, "reset"),
                ({"key": self.shares[0], "nonce": 5}, 422, "nonce")):
            r = self.api("POST", "/api/v1/sys/unseal", body=body, token=None)
            self.assertError(r, status, None, words, msg=repr(body)[:60])
        r = self.api("POST", "/api/v1/sys/unseal", body="{not json", token=None)
        self.assertEqual(r.status, 400)
        # cut JSON around a share: refused, and (below, test_ib) remembered without the parser's words
        r = self.api("POST", "/api/v1/sys/unseal", body='{"key": "%s", ' % self.shares[3], token=None)
        self.assertEqual(r.status, 400)
        self.assertIn("unseal: a request from 127.0.0.1 was rejected: malformed request: the body could not be "
                      "read as JSON", self.server.stderr)
        self.assertNotIn(self.shares[3], self.server.stderr)
        self.assertEqual(self.status()["seal"]["progress"], 0)
        # the CLI takes shares from standard input only
        rc, _, err = self.cli("operator", "unseal", self.shares[0], token=None)
        self.assertEqual(rc, 2, err)
        rc, _, err = self.cli("operator", "unseal", token=None, input="")
        self.assertEqual(rc, 2, err)
        self.assertIn("no share", err)
        rc, _, err = self.cli("operator", "unseal", token=None, input="garbage\n")
        self.assertEqual(rc, 1, err)
        self.assertIn("share", err)
        self.assertEqual(self.status()["seal"]["progress"], 0)
        # logged as they happen (the audit log cannot be written while sealed: test_ib)
        self.assertIn("unseal: a share from 127.0.0.1 was rejected: malformed: a share is 44 characters",
                      self.server.stderr)

    def test_d_wrong_share_set_refused(self):
        for share in self.shares[:2]:
            r = self.unseal(share)
            self.assertEqual(r.status, 200, r.body)
        wrong = forge(self.shares[2])
        r = self.unseal(wrong)
        body = self.assertError(r, 400, "BadRequest", "do not unseal", "at least one")
        for i in range(1, SHARES + 1):  # which share was wrong is not said
            self.assertNotIn("share %d" % i, body["message"])
        st = self.status()
        self.assertEqual((st["sealed"], st["seal"]["progress"], st["seal"]["nonce"]), (True, 0, ""))
        self.assert_sealed_503()
        self.assertIn("did not unseal the store", self.server.stderr)

    def test_e_progress_nonce_and_reset(self):
        r = self.unseal(self.shares[4])
        self.assertEqual((r.status, r.json["progress"], r.json["t"]), (200, 1, THRESHOLD))
        nonce = r.json["nonce"]
        self.assertRegex(nonce, r"^[0-9a-f]{32}$")
        self.assertError(self.unseal(self.shares[4]), 400, None, "share number 5 was already given")
        # another value under the same number: the same answer (it tells nothing about the share held)
        other = base64.urlsafe_b64encode(bytes([5]) + os.urandom(32)).decode().rstrip("=")
        self.assertError(self.unseal(other), 400, None, "share number 5 was already given")
        self.assertError(self.unseal(self.shares[1], nonce="f" * 32), 409, None, "nonce")
        r = self.unseal(self.shares[1], nonce=nonce)
        self.assertEqual((r.status, r.json["progress"], r.json["nonce"]), (200, 2, nonce))
        rc, out, err = self.cli("operator", "unseal", "--reset", token=None)
        self.assertEqual(rc, 0, err)
        self.assertIn("Unseal progress: 0 of 3", out)
        st = self.status()
        self.assertEqual((st["sealed"], st["seal"]["progress"], st["seal"]["nonce"]), (True, 0, ""))
        r = self.unseal(self.shares[4])
        self.assertNotEqual(r.json["nonce"], nonce)
        self.api("POST", "/api/v1/sys/unseal", body={"reset": True}, token=None)
        log = self.server.stderr
        self.assertIn("unseal: a share from 127.0.0.1 was rejected: duplicate", log)
        self.assertIn("unseal: a share from 127.0.0.1 was rejected: wrong nonce", log)
        self.assertIn("unseal: progress reset: 2 share(s) dropped by 127.0.0.1", log)
        self.assertIn("unseal: share 1 of 3 accepted from 127.0.0.1", log)

    def test_f_unseal_with_any_three_and_read_back(self):
        rnd = harness.seeded_random(self)
        chosen = rnd.sample(self.shares, THRESHOLD)
        rc, out, err = self.cli("operator", "unseal", token=None, input="\n".join(chosen) + "\n")
        self.assertEqual(rc, 0, err)
        self.assertIn("Unseal progress: 1 of 3", out)
        self.assertIn("Unseal progress: 2 of 3", out)
        self.assertIn("Sealed: false", out)
        self.wait_unsealed()
        self.assert_secrets_read_back()
        self.assertError(self.unseal(self.shares[0]), 400, None, "not sealed")

    def test_g_seal_running_server(self):
        # only the admin (or an owner) seals
        rc, _, err = self.cli("operator", "seal", token=None)
        self.assertEqual(rc, 2, err)
        rc, _, err = self.cli("operator", "seal", token="not-a-token")
        self.assertEqual(rc, 1, err)
        mark = self.server.stderr_len()
        self.seal()
        self.assert_sealed_503()
        self.assertIn("the root key is wiped from memory", self.server.stderr_since(mark))
        # another three shares unseal it again, through the API
        for share in (self.shares[0], self.shares[2], self.shares[4]):
            r = self.unseal(share)
            self.assertEqual(r.status, 200, r.body)
        self.assertIs(r.json["sealed"], False)
        self.wait_unsealed()
        self.assert_secrets_read_back()

    def test_h_restart_is_sealed_again(self):
        self.assertEqual(self.server.stop(), 0)
        # a second init refuses, and prints no share
        rc, out, err = run(["operator", "init", "--shares", "5", "--threshold", "3", "--data-dir",
                            self.server.data_dir])
        self.assertEqual(rc, 1, err)
        self.assertEqual(parse_shares(out), [])
        self.assertIn("already", err)
        self.server.start()
        self.assertIs(self.status()["sealed"], True)
        self.assert_sealed_503()
        # a flood of malformed attempts: the sealed server keeps the first and the last 32 only (test_ib)
        for i in range(70):
            self.assertError(self.unseal("flood-%d" % i), 400, None, "share")
        for share in self.shares[1:4]:
            self.unseal(share)
        self.wait_unsealed()
        self.assert_secrets_read_back()

    def test_i_rekey(self):
        data_dir = self.server.data_dir
        # wrong current shares: refused, nothing printed
        rc, out, err = run(["operator", "rekey", "--shares", "3", "--threshold", "2", "--data-dir", data_dir],
                           input="\n".join([self.shares[0], self.shares[1], forge(self.shares[2])]) + "\n")
        self.assertEqual(rc, 1, err)
        self.assertIn("do not unseal", err)
        self.assertEqual(parse_shares(out), [])
        rc, out, err = run(["operator", "rekey", "--shares", "3", "--threshold", "2", "--data-dir", data_dir],
                           input=self.shares[0] + "\n")
        self.assertEqual(rc, 1, err)
        self.assertIn("1 of the 3", err)
        # beside the running server
        rc, out, err = run(["operator", "rekey", "--shares", "3", "--threshold", "2", "--data-dir", data_dir],
                           input="\n".join(self.shares[2:5]) + "\n")
        self.assertEqual(rc, 0, err)
        new = parse_shares(out)
        self.assertEqual(len(new), 3)
        self.assertFalse(set(new) & set(self.shares))
        Seal.all_shares += new
        old = self.shares
        Seal.shares = new
        self.seal()
        st = self.status()
        self.assertEqual((st["sealed"], st["seal"]["t"], st["seal"]["n"]), (True, 2, 3))
        # the old shares open nothing any more
        self.unseal(old[0])
        self.assertError(self.unseal(old[1]), 400, None, "do not unseal")
        for share in new[1:]:
            self.unseal(share)
        self.wait_unsealed()
        self.assert_secrets_read_back()

    def test_j_failed_attempts_are_throttled(self):
        self.seal()
        for _ in range(3):
            self.unseal(self.shares[0])
            self.assertError(self.unseal(forge(self.shares[1])), 400, None, "do not unseal")
        r = self.unseal(self.shares[0])
        self.assertError(r, 429, "TooManyRequests", "too many failed unseal attempts")
        self.assertTrue(r.headers.get("Retry-After"), r.headers)
        self.advance_clock(61)
        self.unseal(self.shares[0])
        r = self.unseal(self.shares[1])
        self.assertEqual((r.status, r.json["sealed"]), (200, False), r.body)
        self.wait_unsealed()
        self.assert_secrets_read_back()

    def test_ia_seal_changes_are_audited(self):
        def actions(action):
            return self.ok("GET", "/api/v1/audit/events", query={"action": action, "limit": 100})["events"]
        init = actions("seal.init")
        self.assertEqual(len(init), 1, init)
        self.assertEqual(len(actions("seal.rekey")), 1)
        unseals = actions("server.unseal")
        self.assertEqual(len(unseals), 4, unseals)  # f, g, h, i
        for e in unseals + init:
            self.assertEqual(e["actor"]["kind"], "operator", e)
        self.assertEqual({e["reason"] for e in unseals}, {"root key rebuilt from shares"})
        self.assertEqual(len(actions("server.seal")), 2)  # g, i
        dump = json.dumps(self.ok("GET", "/api/v1/audit/events", query={"limit": 1000}))
        for share in self.all_shares:
            self.assertNotIn(share, dump)

    def test_ib_unseal_attempts_are_audited_at_unseal(self):
        """Every attempt made while sealed (c, d, e, f; then g, h, i) is written, in order, before the
        server.unseal of its sealed period, naming its outcome and source address and no share."""
        events = self.ok("GET", "/api/v1/audit/events", query={"action": "server.", "limit": 1000})["events"]
        attempts = [e for e in events if e["action"] == "server.unseal.attempt"]
        reasons = [e["reason"] for e in attempts]
        for words in ("rejected: malformed: ",                              # c, through the API and the CLI
                      "rejected: malformed request: 'key' (one unseal share, a string) is required",  # c
                      "rejected: malformed request: give either 'key' or 'reset', not both",          # c
                      "rejected: malformed request: the body could not be read as JSON",              # c
                      "rejected: not a share of this store",                # d
                      "rejected: duplicate: share number 5 already given",  # e
                      "rejected: wrong nonce",                              # e
                      "reset: progress reset: 2 share(s) dropped",          # e, coffer operator unseal --reset
                      "reset: progress reset: 1 share(s) dropped",          # e, the API
                      "accepted: share 1 of 3",
                      "accepted: share 3 of 3: the root key was rebuilt and checked",
                      "accepted: share 2 of 2: the root key was rebuilt and checked"):  # i, after rekey
            self.assertTrue([r for r in reasons if r.startswith(words)], (words, reasons))
        malformed = [e for e in attempts if e["reason"].startswith("rejected: malformed")]
        self.assertGreaterEqual(len(malformed), 5, malformed)  # four through the API, one through the CLI
        for e in attempts:
            self.assertEqual(e["sourceIp"], "127.0.0.1", e)
            self.assertEqual(e["result"], "ok" if e["reason"].startswith(("accepted", "reset")) else "denied", e)
        # in order: each sealed period's attempts, its last the share that unsealed it, then its server.unseal
        sequence = [e for e in events if e["action"] in ("server.unseal.attempt", "server.unseal")]
        self.assertEqual([e["seq"] for e in sequence], sorted(e["seq"] for e in sequence))
        unseals = [i for i, e in enumerate(sequence) if e["action"] == "server.unseal"]
        self.assertEqual(len(unseals), 4)
        for i in unseals:
            self.assertRegex(sequence[i - 1]["reason"], r"^accepted: share (\d) of \1: the root key was rebuilt",
                             sequence[i - 1])
        # the first period (c to f): every rejection of d and e precedes the first unseal
        first = sequence[:unseals[0]]
        self.assertTrue([e for e in first if e["reason"].startswith("rejected: not a share of this store")])
        self.assertTrue([e for e in first if e["reason"].startswith("reset:")])
        times = [e["time"] for e in first]
        self.assertEqual(times, sorted(times))
        # h's period: 70 malformed attempts and 3 shares, 73 in all: the first 32, 9 counted, the last 32
        period = sequence[unseals[1] + 1:unseals[2] + 1]
        self.assertEqual([e["action"] for e in period], ["server.unseal.attempt"] * 64 + ["server.unseal"])
        dropped = [e for e in events if e["action"] == "server.unseal.attempts_dropped"]
        self.assertEqual(len(dropped), 1, dropped)
        self.assertTrue(dropped[0]["reason"].startswith("9 unseal attempt(s) after the first 32 and before the last "
                                                        "32 were not kept"), dropped[0])
        self.assertTrue(period[31]["seq"] < dropped[0]["seq"] < period[32]["seq"])
        self.assertEqual([e["reason"].split(":")[0] for e in period[:61]], ["rejected"] * 61)
        self.assertEqual([e["reason"] for e in period[61:64]],
                         ["accepted: share 1 of 3", "accepted: share 2 of 3",
                          "accepted: share 3 of 3: the root key was rebuilt and checked"])
        # this server process logged i's attempts as they happened (c's and e's: see there)
        self.assertIn("unseal: share 1 of 2 accepted from 127.0.0.1", self.server.stderr)
        self.assertIn("did not unseal the store (1 failed attempt(s) in a row); the last share came from "
                      "127.0.0.1", self.server.stderr)

    def test_k_no_share_or_key_in_any_log_or_file(self):
        texts = [self.server.stderr, self.server.stdout]
        for share in self.all_shares:
            for text in texts:
                self.assertNotIn(share, text)
        for name, data in harness.store_files(self.server.data_dir):
            for share in self.all_shares:
                self.assertNotIn(share.encode(), data, name)
                self.assertNotIn(base64.urlsafe_b64decode(share + "="), data, name)


class EnvironmentKey(unittest.TestCase):
    """A store keyed by COFFER_ROOT_KEY moves to shares too; the variable is refused afterwards."""

    def test_env_key_to_shares(self):
        key = base64.b64encode(os.urandom(32)).decode()
        server = harness.Server(env={"COFFER_ROOT_KEY": key})
        try:
            server.start()
            self.assertEqual(server.stop(), 0)
            env = harness.base_env(dict(harness.db_env(server.data_dir) if harness.PG_DIR else {},
                                        COFFER_ROOT_KEY=key))
            rc, out, err = run(["operator", "init", "--shares", "3", "--threshold", "2", "--data-dir",
                                server.data_dir], env=env)
            self.assertEqual(rc, 0, err)
            self.assertEqual(len(parse_shares(out)), 3)
            self.assertIn("unset COFFER_ROOT_KEY", err)
            with self.assertRaises(harness.ServerStartError) as cm:
                server.start()
            self.assertIn("unset it", str(cm.exception))
            # operator commands that need the key itself refuse a sealed store
            rc, _, err = run(["operator", "rotate-root-key", "--data-dir", server.data_dir])
            self.assertEqual(rc, 1, err)
            self.assertIn("split into unseal shares", err)
        finally:
            server.cleanup()


if __name__ == "__main__":
    unittest.main()


@unittest.skipUnless(harness.BACKEND == "postgres", "several nodes share a store only on PostgreSQL")
class SeveralNodes(unittest.TestCase):
    """Two nodes on one PostgreSQL store sealed by shares: each is unsealed and sealed on its own."""

    def test_each_node_unsealed_separately(self):
        uri = harness.new_pg_database()
        a = harness.Server(env={"COFFER_DB": uri})
        b = harness.Server(env={"COFFER_DB": uri}, bootstrap_token=None)
        try:
            a.start()
            r = a.api("POST", "/api/v2/workspace", body={"projectName": harness.unique("nodes")})
            pid = r.json["project"]["id"]
            a.api("POST", "/api/v3/secrets/raw/ONE", body={"workspaceId": pid, "environment": "dev",
                                                          "secretPath": "/", "secretValue": "v1"})
            self.assertEqual(a.stop(), 0)
            rc, out, err = run(["operator", "init", "--shares", "3", "--threshold", "2", "--data-dir", a.data_dir],
                               env=harness.base_env({"COFFER_DB": uri}))
            self.assertEqual(rc, 0, err)
            shares = parse_shares(out)
            a.start()
            b.start()

            def sealed(node):
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    try:
                        r = node.api("GET", "/api/status", token=None)
                        if r.status == 200:
                            return r.json["sealed"]
                    except (ConnectionError, OSError):
                        pass
                    time.sleep(0.05)
                self.fail("no status")

            def unsealed(node):
                deadline = time.monotonic() + 15
                while sealed(node) and time.monotonic() < deadline:
                    time.sleep(0.05)
                return not sealed(node)

            self.assertTrue(sealed(a) and sealed(b))
            for share in shares[:2]:
                a.api("POST", "/api/v1/sys/unseal", body={"key": share}, token=None)
            self.assertTrue(unsealed(a))
            self.assertIs(sealed(b), True)  # B still needs its own unseal
            self.assertEqual(b.api("GET", "/api/v3/secrets/raw", query={"workspaceId": pid, "environment": "dev",
                                                                       "secretPath": "/"}).status, 503)
            for share in shares[1:]:
                b.api("POST", "/api/v1/sys/unseal", body={"key": share}, token=None)
            self.assertTrue(unsealed(b))
            r = b.api("GET", "/api/v3/secrets/raw/ONE", query={"workspaceId": pid, "environment": "dev",
                                                               "secretPath": "/"}, token=harness.ADMIN_TOKEN)
            self.assertEqual((r.status, r.json["secret"]["secretValue"]), (200, "v1"), r.body)
            # sealing A leaves B serving
            self.assertEqual(a.api("POST", "/api/v1/sys/seal").status, 200)
            deadline = time.monotonic() + 15
            while not sealed(a) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertIs(sealed(a), True)
            self.assertIs(sealed(b), False)
            self.assertEqual(a.stop(), 0)
            self.assertEqual(b.stop(), 0)
            self.assertIsNone(a.sanitizer_report())
            self.assertIsNone(b.sanitizer_report())
        finally:
            a.cleanup()
            b.cleanup()
