"""The encrypted store from the outside: no plaintext canary in any file of the data directory (also after a
checkpoint), acknowledged writes survive kill -9 at random moments, a sealed value moved to another row fails
to open, rotate-root-key keeps values readable and changes root.key, and a wrong root key refuses to start."""

import base64
import os
import subprocess
import sqlite3
import threading
import time
import unittest
import uuid

import harness
from harness import Server, ServerTestCase, unique


def data_files(directory):
    for base, _, files in os.walk(directory):
        for name in files:
            yield os.path.join(base, name)


def find_in_files(directory, needles):
    """[(path, needle)] for every needle (bytes) found in a file under directory."""
    hits = []
    for path in data_files(directory):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        for n in needles:
            if n in data:
                hits.append((os.path.relpath(path, directory), n))
    return hits


def canary_forms(value):
    """The canary as raw bytes and in encodings a careless implementation might store."""
    raw = value.encode()
    return [raw, base64.b64encode(raw)[:-4], raw.hex().encode(), value.encode("utf-16-le")]


class Canary(ServerTestCase):
    def test_canary_not_in_data_dir(self):
        canary = "CANARY-" + uuid.uuid4().hex
        canary2 = "CANARY2-" + uuid.uuid4().hex
        canary3 = "CANARY3-" + uuid.uuid4().hex
        pid = self.create_project()["id"]
        self.create_folder(pid, "dev", "deep")
        self.set_secret(pid, "CANARY_KEY", canary)
        self.set_secret(pid, "CANARY_DEEP", "prefix " + canary + " suffix", path="/deep")
        self.update_secret(pid, "CANARY_KEY", secretValue=canary2)
        self.ok("POST", "/api/v3/secrets/batch/raw", body={"workspaceId": pid, "environment": "dev", "secrets": [
            {"secretKey": "CB1", "secretValue": canary3}, {"secretKey": "CB2", "secretValue": canary3 * 50}]})
        sid = self.get_secret(pid, "CANARY_KEY").json["secret"]["id"]
        self.ok("POST", "/api/v1/secret/%s/rollback" % sid, body={"version": 1})
        self.assertEqual(self.get_secret(pid, "CANARY_KEY").json["secret"]["secretValue"], canary)
        # values are stored: reading them back works
        self.assertEqual(self.secret_values(pid)[("/deep", "CANARY_DEEP")], "prefix " + canary + " suffix")

        needles = [n for c in (canary, canary2, canary3) for n in canary_forms(c)]
        d = self.server.data_dir
        if harness.BACKEND == "postgres":
            # the store is the database's files and the cluster's WAL: now, and after a checkpoint
            for d in harness.store_dirs(self.server.data_dir, checkpoint=False) + \
                    harness.store_dirs(self.server.data_dir):
                self.assertEqual(find_in_files(d, needles), [], "plaintext in PostgreSQL's files (%s)" % d)
        else:
            files = sorted(os.path.relpath(p, d) for p in data_files(d))
            self.assertIn("coffer.db", files)
            self.assertEqual(find_in_files(d, needles), [], "plaintext in the data dir while running (%s)" % files)
            # a checkpoint moves WAL pages into the database file
            try:
                con = sqlite3.connect(os.path.join(d, "coffer.db"), timeout=5)
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                con.close()
            except sqlite3.Error:
                pass
            self.assertEqual(find_in_files(d, needles), [], "plaintext in the data dir after a checkpoint")
        self.assertEqual(find_in_files(self.server.data_dir, needles), [], "plaintext in the data dir")
        logs = self.server.stderr + self.server.stdout
        for c in (canary, canary2, canary3):
            self.assertNotIn(c, logs, "a value reached the log")


@harness.sqlite_only("the SQLite file's journal mode and schema")
class CanaryAfterShutdown(unittest.TestCase):
    def test_canary_after_clean_stop_and_delete(self):
        s = Server()
        try:
            s.start()
            canary = "CANARY-" + uuid.uuid4().hex
            pid = s.api("POST", "/api/v2/workspace", body={"projectName": unique("c")}).json["project"]["id"]
            for i in range(20):
                r = s.api("POST", "/api/v3/secrets/raw/K%d" % i,
                          body={"workspaceId": pid, "environment": "dev", "secretValue": canary + str(i)})
                self.assertEqual(r.status, 200, r.body)
            r = s.api("DELETE", "/api/v3/secrets/raw/K0", body={"workspaceId": pid, "environment": "dev"})
            self.assertEqual(r.status, 200)
            self.assertEqual(s.stop(), 0)  # closing the store checkpoints the WAL
            self.assertEqual(find_in_files(s.data_dir, canary_forms(canary)), [])
            self.assertNotIn(canary, s.stderr + s.stdout)
            # the database is an ordinary SQLite file in WAL mode with foreign keys declared
            con = sqlite3.connect(os.path.join(s.data_dir, "coffer.db"))
            try:
                self.assertEqual(con.execute("PRAGMA journal_mode").fetchone()[0].lower(), "wal")
                blob = b"".join(bytes(str(row), "utf-8") for row in con.execute(
                    "SELECT * FROM sqlite_master"))
                self.assertIn(b"REFERENCES", blob.upper())
            finally:
                con.close()
            self.assertIsNone(s.sanitizer_report())
        finally:
            s.cleanup()


class KillNine(unittest.TestCase):
    # `make stress` runs 200 rounds (ITEST_KILL_ROUNDS); make test a few
    ROUNDS = int(os.environ.get("ITEST_KILL_ROUNDS", "6"))
    WRITERS = 2

    def test_acknowledged_writes_survive_kill9(self):
        s = Server()
        rng = harness.seeded_random(self)
        acknowledged = {}  # key -> value of the last write that got a 200
        owner = {}         # key -> writer index (each key is written by one writer, so writes to it are ordered)
        lock = threading.Lock()
        try:
            s.start()
            pid = s.api("POST", "/api/v2/workspace", body={"projectName": unique("k9")}).json["project"]["id"]
            counter = [0]
            for rnd in range(self.ROUNDS):
                stop = threading.Event()
                inflight = [None] * self.WRITERS  # (key, value) sent but not yet acknowledged

                def writer(w):
                    while not stop.is_set():
                        with lock:
                            counter[0] += 1
                            n = counter[0]
                            mine = sorted(k for k, o in owner.items() if o == w)
                        value = "value-%d-%s" % (n, uuid.uuid4().hex)
                        update = n % 3 == 0 and mine
                        key = rng.choice(mine) if update else "K%05d" % n
                        inflight[w] = (key, value)
                        try:
                            r = s.api("PATCH" if update else "POST", "/api/v3/secrets/raw/" + key, timeout=10,
                                      body={"workspaceId": pid, "environment": "dev", "secretValue": value})
                        except OSError:
                            return
                        if r.status != 200:
                            return
                        with lock:
                            acknowledged[key] = value
                            owner[key] = w
                        inflight[w] = None

                threads = [threading.Thread(target=writer, args=(w,)) for w in range(self.WRITERS)]
                for t in threads:
                    t.start()
                time.sleep(0.05 + rng.random() * 0.4)  # kill at a random moment, mid-write most likely
                s.kill9()
                stop.set()
                for t in threads:
                    t.join(timeout=30)
                s.start()
                r = s.api("GET", "/api/v3/secrets/raw", query={"workspaceId": pid, "environment": "dev"})
                self.assertEqual(r.status, 200, r.body[:300])
                got = {x["secretKey"]: x["secretValue"] for x in r.json["secrets"]}
                lost = sorted(k for k in acknowledged if k not in got)
                self.assertEqual(lost, [], "round %d: acknowledged writes lost after kill -9" % rnd)
                for k, v in acknowledged.items():
                    if got[k] == v:
                        continue
                    # only the write in flight at the kill may have landed after the acknowledged one
                    self.assertEqual(inflight[owner[k]], (k, got[k]),
                                     "round %d: %s holds neither its acknowledged value nor the in-flight one" % (rnd, k))
                    acknowledged[k] = got[k]
                for w, pending in enumerate(inflight):
                    if pending and pending[0] in got and pending[0] not in acknowledged:
                        # an unacknowledged create that landed: it is part of the state from now on
                        self.assertEqual(got[pending[0]], pending[1])
                        acknowledged[pending[0]] = pending[1]
                        owner[pending[0]] = w
                unexpected = sorted(k for k in got if k not in acknowledged)
                self.assertEqual(unexpected, [], "round %d: secrets nobody wrote" % rnd)
            self.assertGreaterEqual(len(acknowledged), 20, "too few writes acknowledged to prove anything")
            self.assertEqual(s.stop(), 0)
            self.assertIsNone(s.sanitizer_report(), s.sanitizer_report())
        finally:
            s.cleanup()


    def test_answered_logins_survive_kill9(self):
        """Logins answer only once their token is on disk, although their commits share one sync of the log
        (docs/server.md "Group commit"): a burst of logins on many connections is killed (-9) at a random
        moment, again and again, and every token answered before the kill still reads after the restart."""
        s = Server()
        rng = harness.seeded_random(self)
        answered = []
        lock = threading.Lock()
        try:
            s.start()
            pid = s.api("POST", "/api/v2/workspace", body={"projectName": unique("k9l")}).json["project"]["id"]
            self.assertEqual(s.api("POST", "/api/v3/secrets/raw/PROBE", body={
                "workspaceId": pid, "environment": "dev", "secretValue": "probe-value"}).status, 200)
            ident = s.api("POST", "/api/v1/identities", body={"name": unique("k9l")}).json["identity"]["id"]
            ua = s.api("POST", "/api/v1/auth/universal-auth/identities/" + ident, body={})
            self.assertEqual(ua.status, 200, ua.body[:300])
            client_id = ua.json["identityUniversalAuth"]["clientId"]
            cs = s.api("POST", "/api/v1/auth/universal-auth/identities/%s/client-secrets" % ident, body={})
            self.assertEqual(s.api("POST", "/api/v2/workspace/%s/identity-memberships/%s" % (pid, ident),
                                   body={"role": "viewer"}).status, 200)
            body = {"clientId": client_id, "clientSecret": cs.json["clientSecret"]}
            for rnd in range(self.ROUNDS):
                stop = threading.Event()
                before = len(answered)

                def login():
                    conn = s.connection(timeout=10)
                    while not stop.is_set():
                        try:
                            r = s.api("POST", "/api/v1/auth/universal-auth/login", body=body, token=None,
                                      conn=conn, timeout=10)
                        except OSError:
                            return
                        if r.status != 200:
                            return
                        with lock:
                            answered.append(r.json["accessToken"])

                threads = [threading.Thread(target=login) for _ in range(8)]
                for t in threads:
                    t.start()
                # The kill lands mid-burst: after the first answer (a restarted server under a sanitizer
                # or a loaded machine can take longer than the random delay to give one), then at a random
                # moment.
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and len(answered) == before:
                    time.sleep(0.01)
                time.sleep(rng.random() * 0.4)
                s.kill9()
                stop.set()
                for t in threads:
                    t.join(timeout=30)
                self.assertGreater(len(answered), before, "round %d: no login answered before the kill" % rnd)
                s.start()
                for token in answered[before:]:
                    r = s.api("GET", "/api/v3/secrets/raw/PROBE", query={"workspaceId": pid, "environment": "dev"},
                              token=token)
                    self.assertEqual(r.status, 200, "round %d: an answered login's token no longer works after "
                                     "kill -9: %s" % (rnd, r.body[:300]))
            self.assertGreaterEqual(len(answered), 50, "too few logins answered to prove anything")
            self.assertEqual(s.stop(), 0)
            self.assertIsNone(s.sanitizer_report(), s.sanitizer_report())
        finally:
            s.cleanup()


class SealedRows(unittest.TestCase):
    """Edits coffer.db while the server is stopped, moving a sealed value into another row."""

    def setUp(self):
        self.s = Server()
        try:
            self.s.start()
        except Exception:
            self.s.cleanup()
            raise

    def tearDown(self):
        rc = self.s.stop()
        report = self.s.sanitizer_report()
        self.s.cleanup()
        self.assertIsNone(report, report)
        self.assertIn(rc, (0, None))

    def api(self, *a, **kw):
        return self.s.api(*a, **kw)

    def create(self, pid, key, value, env="dev"):
        r = self.api("POST", "/api/v3/secrets/raw/" + key,
                     body={"workspaceId": pid, "environment": env, "secretValue": value})
        self.assertEqual(r.status, 200, r.body)
        return r.json["secret"]

    def sealed_table(self, con):
        """(table, blob column, secret id column, version column), found through sqlite_master."""
        for name, sql in con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"):
            cols = [(c[1], (c[2] or "").upper()) for c in con.execute("PRAGMA table_info(%s)" % name)]
            blobs = [c for c, t in cols if t == "BLOB"]
            names = [c for c, _ in cols]
            if blobs and "secret_id" in names and "version" in names:
                return name, blobs[0], "secret_id", "version"
        self.fail("no table with a sealed BLOB per secret version in:\n" + "\n".join(
            sql or "" for (sql,) in con.execute("SELECT sql FROM sqlite_master")))

    def move(self, src, dst):
        """Copies the sealed blob of (secret id, version) src over dst, with the server stopped."""
        self.assertEqual(self.s.stop(), 0)
        if harness.BACKEND == "postgres":
            rows = harness.sql(self.s.data_dir,
                               "UPDATE secret_versions SET sealed = (SELECT sealed FROM secret_versions"
                               " WHERE secret_id = '%s' AND version = %d) WHERE secret_id = '%s' AND version = %d"
                               % (src[0], src[1], dst[0], dst[1]),
                               "SELECT COUNT(*) FROM secret_versions WHERE secret_id = '%s' AND version = %d"
                               " AND sealed = (SELECT sealed FROM secret_versions WHERE secret_id = '%s'"
                               " AND version = %d)" % (dst[0], dst[1], src[0], src[1]))
            self.assertEqual(rows, [["1"]])
            self.s.start()
            return
        con = sqlite3.connect(os.path.join(self.s.data_dir, "coffer.db"))
        try:
            table, blob, sid_col, ver_col = self.sealed_table(con)
            row = con.execute("SELECT %s FROM %s WHERE %s = ? AND %s = ?" % (blob, table, sid_col, ver_col),
                              src).fetchone()
            self.assertIsNotNone(row, "no sealed row for %r" % (src,))
            cur = con.execute("UPDATE %s SET %s = ? WHERE %s = ? AND %s = ?" % (table, blob, sid_col, ver_col),
                              (row[0],) + tuple(dst))
            self.assertEqual(cur.rowcount, 1)
            con.commit()
        finally:
            con.close()
        self.s.start()

    def assertFailsToOpen(self, r, wrong_value):
        # docs/server.md: the API answers 500 (reason in the log) instead of returning the wrong value
        self.assertEqual(r.status, 500, "a moved ciphertext was opened: %r" % r.body[:300])
        self.assertEqual(r.json.get("error"), "InternalServerError")
        self.assertNotIn(wrong_value.encode(), r.body, "the response leaks the moved value")
        self.assertIsInstance(r.json, dict)
        self.assertIsInstance(r.json.get("message"), str)

    def test_moved_between_secrets(self):
        pid = self.api("POST", "/api/v2/workspace", body={"projectName": unique("m")}).json["project"]["id"]
        a = self.create(pid, "SRC", "source-value-" + uuid.uuid4().hex)
        b = self.create(pid, "DST", "dest-value")
        self.move((a["id"], 1), (b["id"], 1))
        q = {"workspaceId": pid, "environment": "dev"}
        self.assertFailsToOpen(self.api("GET", "/api/v3/secrets/raw/DST", query=q), a["secretValue"])
        self.assertFailsToOpen(self.api("GET", "/api/v3/secrets/raw", query=q), a["secretValue"])
        # the untouched secret still opens
        r = self.api("GET", "/api/v3/secrets/raw/SRC", query=q)
        self.assertEqual(r.json["secret"]["secretValue"], a["secretValue"])

    def test_moved_between_versions(self):
        pid = self.api("POST", "/api/v2/workspace", body={"projectName": unique("m")}).json["project"]["id"]
        a = self.create(pid, "VERS", "old-value-" + uuid.uuid4().hex)
        r = self.api("PATCH", "/api/v3/secrets/raw/VERS",
                     body={"workspaceId": pid, "environment": "dev", "secretValue": "new-value"})
        self.assertEqual(r.status, 200)
        self.move((a["id"], 1), (a["id"], 2))
        r = self.api("GET", "/api/v3/secrets/raw/VERS", query={"workspaceId": pid, "environment": "dev"})
        self.assertFailsToOpen(r, a["secretValue"])

    def test_moved_between_projects(self):
        p1 = self.api("POST", "/api/v2/workspace", body={"projectName": unique("m")}).json["project"]["id"]
        p2 = self.api("POST", "/api/v2/workspace", body={"projectName": unique("m")}).json["project"]["id"]
        a = self.create(p1, "SAME", "p1-value-" + uuid.uuid4().hex)
        b = self.create(p2, "SAME", "p2-value")
        self.move((a["id"], 1), (b["id"], 1))
        r = self.api("GET", "/api/v3/secrets/raw/SAME", query={"workspaceId": p2, "environment": "dev"})
        self.assertFailsToOpen(r, a["secretValue"])

    def test_moved_between_environments(self):
        pid = self.api("POST", "/api/v2/workspace", body={"projectName": unique("m")}).json["project"]["id"]
        a = self.create(pid, "SAME", "dev-value-" + uuid.uuid4().hex, env="dev")
        b = self.create(pid, "SAME", "prod-value", env="prod")
        self.move((a["id"], 1), (b["id"], 1))
        r = self.api("GET", "/api/v3/secrets/raw/SAME", query={"workspaceId": pid, "environment": "prod"})
        self.assertFailsToOpen(r, a["secretValue"])


class RootKeyRotationKilled(unittest.TestCase):
    """`coffer operator rotate-root-key` killed (-9) at random moments, again and again: after each kill the
    server starts and reads every value (the old key or the new one, never neither)."""

    KILLS = int(os.environ.get("ITEST_ROTATION_KILLS", "4"))

    def test_rotation_killed_at_random_moments(self):
        s = Server()
        rng = harness.seeded_random(self)
        try:
            s.start()
            values = {}
            for i in range(20):  # enough project keys for the rotation to take a while
                pid = s.api("POST", "/api/v2/workspace", body={"projectName": unique("rk")}).json["project"]["id"]
                v = "value-%d-%s" % (i, uuid.uuid4().hex)
                r = s.api("POST", "/api/v3/secrets/raw/K", body={"workspaceId": pid, "environment": "dev",
                                                                 "secretValue": v})
                self.assertEqual(r.status, 200)
                values[pid] = v
            self.assertEqual(s.stop(), 0)
            env = harness.base_env(harness.db_env(s.data_dir))
            command = [harness.COFFER_BIN, "operator", "rotate-root-key", "--data-dir", s.data_dir]
            t0 = time.monotonic()
            self.assertEqual(subprocess.run(command, env=env, capture_output=True).returncode, 0)
            whole = time.monotonic() - t0  # kills land anywhere within one rotation's time
            outcomes = {"killed": 0, "finished": 0}
            # Kills land uniformly within the first rotation's time; a later rotation can be faster (warm
            # caches, a quieter machine), so every kill may miss it by chance: more are made, up to three
            # times as many, until at least one has landed mid-rotation.
            kill = 0
            while kill < self.KILLS or (outcomes["killed"] == 0 and kill < 3 * self.KILLS):
                kill += 1
                proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                time.sleep(rng.random() * whole)
                proc.kill()
                proc.wait()
                proc.stderr.close()
                outcomes["finished" if proc.returncode == 0 else "killed"] += 1
                s.start()
                for pid, v in values.items():
                    r = s.api("GET", "/api/v3/secrets/raw/K", query={"workspaceId": pid, "environment": "dev"})
                    self.assertEqual((r.status, r.json["secret"]["secretValue"] if r.status == 200 else r.body[:200]),
                                     (200, v), "after kill %d of the rotation" % kill)
                self.assertEqual(s.stop(), 0)
            if self.KILLS >= 4:
                self.assertGreater(outcomes["killed"], 0, "no kill landed during a rotation: %r" % outcomes)
            print("rotation kills: %(killed)d mid-rotation, %(finished)d after it finished" % outcomes)
        finally:
            s.cleanup()


class RootKey(unittest.TestCase):
    def test_rotate_root_key(self):
        s = Server()
        try:
            s.start()
            pids, values = [], {}
            for i in range(3):
                pid = s.api("POST", "/api/v2/workspace", body={"projectName": unique("r")}).json["project"]["id"]
                pids.append(pid)
                for k in ("A", "B"):
                    v = "%s-%d-%s" % (k, i, uuid.uuid4().hex)
                    r = s.api("POST", "/api/v3/secrets/raw/" + k,
                              body={"workspaceId": pid, "environment": "dev", "secretValue": v})
                    self.assertEqual(r.status, 200)
                    values[(pid, k)] = v
            self.assertEqual(s.stop(), 0)
            key_path = os.path.join(s.data_dir, "root.key")
            with open(key_path, "rb") as f:
                old_key = f.read()
            # refused while a server holds the data dir
            s.start()
            rc, out, err = harness.run(["operator", "rotate-root-key", "--data-dir", s.data_dir])
            self.assertNotEqual(rc, 0, "rotation must refuse to run beside a live server")
            self.assertTrue(err.strip())
            self.assertEqual(s.stop(), 0)

            rc, out, err = harness.run(["operator", "rotate-root-key", "--data-dir", s.data_dir])
            self.assertEqual(rc, 0, err)
            with open(key_path, "rb") as f:
                new_key = f.read()
            self.assertNotEqual(new_key, old_key, "root.key unchanged by rotation")
            import stat
            self.assertEqual(stat.S_IMODE(os.stat(key_path).st_mode), 0o600)
            for path in data_files(s.data_dir):
                with open(path, "rb") as f:
                    blob = f.read()
                self.assertNotIn(old_key.strip(), blob.replace(new_key.strip(), b""),
                                 "old root key still present in " + path)
            s.start()
            for (pid, k), v in values.items():
                r = s.api("GET", "/api/v3/secrets/raw/" + k, query={"workspaceId": pid, "environment": "dev"})
                self.assertEqual(r.status, 200, r.body)
                self.assertEqual(r.json["secret"]["secretValue"], v)
            # new writes work too, and the admin token is unchanged
            r = s.api("POST", "/api/v3/secrets/raw/AFTER",
                      body={"workspaceId": pids[0], "environment": "dev", "secretValue": "after"})
            self.assertEqual(r.status, 200)
            self.assertEqual(s.stop(), 0)
            # rotating twice in a row works
            rc, out, err = harness.run(["operator", "rotate-root-key", "--data-dir", s.data_dir])
            self.assertEqual(rc, 0, err)
            s.start()
            r = s.api("GET", "/api/v3/secrets/raw/AFTER", query={"workspaceId": pids[0], "environment": "dev"})
            self.assertEqual(r.json["secret"]["secretValue"], "after")
            self.assertEqual(s.stop(), 0)
            self.assertIsNone(s.sanitizer_report())
        finally:
            s.cleanup()

    def test_env_root_key(self):
        key = base64.b64encode(os.urandom(32)).decode()
        s = Server(env={"COFFER_ROOT_KEY": key})
        try:
            s.start()
            pid = s.api("POST", "/api/v2/workspace", body={"projectName": unique("e")}).json["project"]["id"]
            r = s.api("POST", "/api/v3/secrets/raw/K", body={"workspaceId": pid, "environment": "dev",
                                                             "secretValue": "with-env-key"})
            self.assertEqual(r.status, 200)
            self.assertEqual(s.stop(), 0)
            self.assertFalse(os.path.exists(os.path.join(s.data_dir, "root.key")),
                             "root.key written although COFFER_ROOT_KEY was given")
            self.assertNotIn(key, s.stderr + s.stdout)
            s.start()
            r = s.api("GET", "/api/v3/secrets/raw/K", query={"workspaceId": pid, "environment": "dev"})
            self.assertEqual(r.json["secret"]["secretValue"], "with-env-key")
            self.assertEqual(s.stop(), 0)
            # a different key refuses to start with a clear message (and does not echo either key)
            wrong = base64.b64encode(os.urandom(32)).decode()
            s.extra_env["COFFER_ROOT_KEY"] = wrong
            with self.assertRaises(harness.ServerStartError) as cm:
                s.start(timeout=20)
            msg = str(cm.exception)
            self.assertIn("root key", msg.lower())
            self.assertNotIn(wrong, msg)
            self.assertNotIn(key, msg)
            self.assertIsNone(harness.sanitizer_report(msg))
            # the data is intact for the right key
            s.extra_env["COFFER_ROOT_KEY"] = key
            s.start()
            r = s.api("GET", "/api/v3/secrets/raw/K", query={"workspaceId": pid, "environment": "dev"})
            self.assertEqual(r.json["secret"]["secretValue"], "with-env-key")
            self.assertEqual(s.stop(), 0)
        finally:
            s.cleanup()

    def test_wrong_root_key_against_file(self):
        s = Server()
        try:
            s.start()
            self.assertEqual(s.stop(), 0)
            wrong = base64.b64encode(os.urandom(32)).decode()
            s.extra_env["COFFER_ROOT_KEY"] = wrong
            with self.assertRaises(harness.ServerStartError) as cm:
                s.start(timeout=20)
            self.assertIn("root key", str(cm.exception).lower())
        finally:
            s.cleanup()

    def test_malformed_root_key(self):
        for bad in ("not base64!!", base64.b64encode(b"short").decode(), base64.b64encode(os.urandom(33)).decode()):
            with self.subTest(bad=bad):
                s = Server(env={"COFFER_ROOT_KEY": bad})
                try:
                    with self.assertRaises(harness.ServerStartError) as cm:
                        s.start(timeout=20)
                    msg = str(cm.exception)
                    self.assertIn("COFFER_ROOT_KEY", msg)
                    self.assertIn("32", msg)
                finally:
                    s.cleanup()

    def test_corrupt_root_key_file(self):
        s = Server()
        try:
            s.start()
            self.assertEqual(s.stop(), 0)
            with open(os.path.join(s.data_dir, "root.key"), "r+b") as f:
                data = bytearray(f.read())
                data[len(data) // 2] ^= 0x01
                f.seek(0)
                f.write(bytes(data))
            with self.assertRaises(harness.ServerStartError) as cm:
                s.start(timeout=20)
            self.assertIn("root key", str(cm.exception).lower())
        finally:
            s.cleanup()


if __name__ == "__main__":
    unittest.main()
