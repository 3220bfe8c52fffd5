"""Amplification: requests that are small to send but would cost the server far more (docs/server.md, "Limits").

Reference expansion (docs/api.md, "Secret references"):
- a value whose expansion would exceed the per-value limit is refused when it is written (v3 and v4, single and
  batch, create and update), with a 422 naming the secret and the limit;
- a value that grew past the limit after it was written (a referenced value changed) is a 422 naming the secret
  and the limit when read with expansion, in a list, a single read and through an import;
- many values, each within the per-value limit, whose expansions together exceed the per-request budget are a 422
  naming a secret and the budget, before the memory is allocated: concurrent attackers listing such a folder with
  expansion keep the server's peak RSS under 100 MB and /api/status answering promptly;
- a chain of references that expands to nothing but needs too many substitutions is refused likewise.

Path globs (rules of a membership): a rule with many double stars against a deep path is answered promptly
(matching is O(glob x path), not exponential), and a glob with too many wildcards is refused when written.
"""

import os
import threading
import time
import unittest

import harness
from test_identities import IdentityHelpers

VALUE_MAX = 64 * 1024          # the stored value limit
EXPANDED_VALUE_MAX = 1048576   # one expanded value
EXPANDED_REQUEST_MAX = 8388608  # every expansion of one request together
REFS_MAX = 100000              # reference substitutions in one request
GLOB_WILDCARDS_MAX = 8
ROUNDS = 5  # requests of each of the 4 attackers
RSS_LIMIT_KB = 100 * 1024
STATUS_LATENCY_MAX = 2.0


def status_kb(pid, field):
    """A VmXXX line of /proc/PID/status, in kB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def server_env():
    # AddressSanitizer's quarantine (256 MB by default) holds freed blocks resident: keep it small so that the
    # peak measured is the server's own. A no-op for the normal build.
    base = os.environ.get("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    return {"ASAN_OPTIONS": base + ":quarantine_size_mb=4:thread_local_quarantine_size_kb=64"}


class Expansion(IdentityHelpers, harness.ServerTestCase):
    server_env = server_env()

    def setUp(self):
        super().setUp()
        self.pid = self.create_project()["id"]
        # The attacker: a member whose rules allow one folder only.
        self.create_folder(self.pid, "dev", "team")
        self.attacker = self.machine(self.pid, "member", rules=[
            {"actions": ["read", "create", "edit", "delete"], "environment": "dev", "secretPath": "/team"}])
        self.token = self.attacker["token"]

    def put(self, key, value, path="/team", version="v3", method="POST"):
        body = {"workspaceId": self.pid, "environment": "dev", "secretPath": path, "secretValue": value}
        if version == "v3":
            url = "/api/v3/secrets/raw/" + key
        else:
            body = {"projectId": self.pid, "environment": "dev", "secretPath": path, "secretValue": value}
            url = "/api/v4/secrets/" + key
        return self.api(method, url, body=body, token=self.token)

    def put_ok(self, key, value, path="/team"):
        r = self.put(key, value, path)
        self.assertEqual(r.status, 200, r.body[:300])

    def batch(self, secrets, method="POST", path="/team"):
        return self.api(method, "/api/v3/secrets/batch/raw", token=self.token,
                        body={"workspaceId": self.pid, "environment": "dev", "secretPath": path,
                              "secrets": secrets})

    def list_expanded(self, path="/team", conn=None, **query):
        q = {"workspaceId": self.pid, "environment": "dev", "secretPath": path, "expandSecretReferences": "true"}
        q.update(query)
        return self.api("GET", "/api/v3/secrets/raw", query=q, token=self.token, conn=conn, timeout=120)

    def get_expanded(self, key, path="/team"):
        return self.get_as(self.token, self.pid, key, path=path, expandSecretReferences="true")

    # ----- write time -----

    def test_over_limit_value_refused_when_written(self):
        self.put_ok("L0", "x" * VALUE_MAX)
        bomb = "${L0}" * 1000  # 6 KB that would expand to 64 MB
        cases = [
            ("v3 create", lambda: self.put("A0", bomb)),
            ("v4 create", lambda: self.put("A0", bomb, version="v4")),
            ("v3 batch create", lambda: self.batch([{"secretKey": "A0", "secretValue": bomb}])),
            ("v3 batch that creates its target too",
             lambda: self.batch([{"secretKey": "L1", "secretValue": "y" * VALUE_MAX},
                                 {"secretKey": "A1", "secretValue": "${L1}" * 17}])),
        ]
        for what, send in cases:
            r = send()
            self.assertError(r, 422, "ValidationFailure", "A", str(EXPANDED_VALUE_MAX), msg=what)
        self.put_ok("SMALL", "ok")
        for what, method, version in (("v3 update", "PATCH", "v3"), ("v4 update", "PATCH", "v4")):
            r = self.put("SMALL", bomb, version=version, method=method)
            self.assertError(r, 422, "ValidationFailure", "SMALL", str(EXPANDED_VALUE_MAX), msg=what)
        r = self.batch([{"secretKey": "SMALL", "secretValue": bomb}], method="PATCH")
        self.assertError(r, 422, "ValidationFailure", "SMALL", str(EXPANDED_VALUE_MAX), msg="batch update")
        # nothing was written
        values = {s["secretKey"]: s["secretValue"] for s in self.list_as(self.token, self.pid, path="/team").json["secrets"]}
        self.assertEqual(sorted(values), ["L0", "SMALL"])
        self.assertEqual(values["SMALL"], "ok")
        # within the limit is fine, and reads back expanded
        self.put_ok("A2", "${L0}" * 16)
        r = self.get_expanded("A2")
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(len(r.json["secret"]["secretValue"]), 16 * VALUE_MAX)

    def test_cli_names_the_limit(self):
        self.put_ok("L0", "x" * VALUE_MAX)
        rc, out, err = self.cli("secrets", "set", "--projectId", self.pid, "--env", "dev", "--path", "/team",
                                "BOMB=" + "${L0}" * 1000, token=self.token)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("BOMB", err)
        self.assertIn(str(EXPANDED_VALUE_MAX), err)

    def test_substitutions_refused_when_written(self):
        self.put_ok("E", "")
        self.put_ok("B", "${E}" * 16000)
        r = self.put("C", "${B}" * 10)  # 160,000 substitutions that expand to nothing
        self.assertError(r, 422, "ValidationFailure", "C", str(REFS_MAX))

    # ----- read time -----

    def test_value_grown_past_the_limit_is_refused_when_read(self):
        self.create_folder(self.pid, "dev", "importer")
        self.put_ok("L0", "short")
        self.put_ok("A0", "${L0}" * 20)
        r = self.put("L0", "x" * VALUE_MAX, method="PATCH")  # A0 now expands to 1.25 MiB
        self.assertEqual(r.status, 200, r.body[:300])
        for what, r in (("list", self.list_expanded()), ("get", self.get_expanded("A0"))):
            self.assertError(r, 422, "ValidationFailure", "A0", str(EXPANDED_VALUE_MAX), msg=what)
        # through an import (the admin owns /importer)
        self.ok("POST", "/api/v2/secret-imports",
                body={"projectId": self.pid, "environment": "dev", "path": "/importer",
                      "import": {"environment": "dev", "path": "/team"}})
        q = {"workspaceId": self.pid, "environment": "dev", "secretPath": "/importer", "include_imports": "true",
             "expandSecretReferences": "true"}
        r = self.api("GET", "/api/v3/secrets/raw", query=q)
        self.assertError(r, 422, "ValidationFailure", "A0", str(EXPANDED_VALUE_MAX), msg="list with imports")
        r = self.api("GET", "/api/v3/secrets/raw/A0", query=q)
        self.assertError(r, 422, "ValidationFailure", "A0", str(EXPANDED_VALUE_MAX), msg="get through an import")
        # without expansion nothing changes
        r = self.list_as(self.token, self.pid, path="/team")
        self.assertEqual(r.status, 200, r.body[:300])

    def test_substitutions_refused_when_read(self):
        self.put_ok("E", "")
        for i in range(7):
            self.put_ok("B%d" % i, "${E}" * 16000)  # 112,000 substitutions together
        r = self.list_expanded()
        self.assertError(r, 422, "ValidationFailure", str(REFS_MAX))
        r = self.get_expanded("B0")
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(r.json["secret"]["secretValue"], "")

    def test_concurrent_attack_is_bounded(self):
        # L0 is 64 KiB; A0..A29 each expand to 15 x 64 KiB (under the per-value limit, so the writes pass),
        # 30 MB together: over the per-request budget.
        self.put_ok("L0", "x" * VALUE_MAX)
        self.assertEqual(self.batch([{"secretKey": "A%d" % i, "secretValue": "${L0}" * 15}
                                     for i in range(30)]).status, 200)
        pid = self.server.proc.pid
        answers, latencies, errors = [], [], []
        stop = threading.Event()

        def attacker():
            conn = self.server.connection(timeout=120)
            try:
                for _ in range(ROUNDS):
                    r = self.list_expanded(conn=conn)
                    answers.append((r.status, r.body[:400]))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
            finally:
                conn.close()

        def prober():
            while not stop.is_set() or len(latencies) < 5:
                t0 = time.monotonic()
                try:
                    r = self.api("GET", "/api/status", token=None, timeout=60)
                    latencies.append((time.monotonic() - t0, r.status))
                except Exception as e:  # noqa: BLE001
                    latencies.append((time.monotonic() - t0, repr(e)))
                time.sleep(0.05)

        peak_rss = [0]

        def sampler():
            while not stop.is_set():
                try:
                    peak_rss[0] = max(peak_rss[0], status_kb(pid, "VmRSS"))
                except (OSError, AssertionError):
                    return
                time.sleep(0.02)

        helpers = [threading.Thread(target=prober), threading.Thread(target=sampler)]
        attackers = [threading.Thread(target=attacker) for _ in range(4)]
        for t in helpers + attackers:
            t.start()
        for t in attackers:
            t.join(300)
        stop.set()
        for t in helpers:
            t.join(60)
        hwm = status_kb(pid, "VmHWM")
        # Every failed expectation at once, so that a regression shows its whole cost.
        problems = list(errors)
        if len(answers) != 4 * ROUNDS:
            problems.append("%d answers to %d attacks" % (len(answers), 4 * ROUNDS))
        for status, body in answers:
            if status != 422 or str(EXPANDED_REQUEST_MAX).encode() not in body:
                problems.append("attack answered %d: %r" % (status, body[:200]))
                break
        if max(hwm, peak_rss[0]) >= RSS_LIMIT_KB:
            problems.append("server peak RSS %d kB (sampled %d kB), limit %d kB" % (hwm, peak_rss[0], RSS_LIMIT_KB))
        if not latencies:
            problems.append("the prober got no answer")
        elif not all(s == 200 for _, s in latencies):
            problems.append("/api/status failed: %r" % [s for _, s in latencies if s != 200][:3])
        elif max(t for t, _ in latencies) >= STATUS_LATENCY_MAX:
            problems.append("slowest /api/status: %.2f s" % max(t for t, _ in latencies))
        self.assertEqual(problems, [])
        # `coffer run` and `coffer export` read the same way: they fail, naming the limit.
        where = ("--projectId", self.pid, "--env", "dev", "--path", "/team")
        for args in (("run",) + where + ("--", "true"), ("export",) + where):
            rc, out, err = self.cli(*args, token=self.token)
            self.assertNotEqual(rc, 0, (args, out))
            self.assertIn(str(EXPANDED_REQUEST_MAX), err, args)
            self.assertNotIn("xxxx", out + err)
        # A reasonable read of the same folder still works.
        r = self.get_expanded("A7")
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(len(r.json["secret"]["secretValue"]), 15 * VALUE_MAX)


class Globs(IdentityHelpers, harness.ServerTestCase):
    def test_many_double_stars_on_a_deep_path_answer_promptly(self):
        pid = self.create_project()["id"]
        # a folder 30 deep, with a secret in each folder
        path = "/"
        for i in range(30):
            self.create_folder(pid, "dev", "d%d" % i, path=path)
            path = path.rstrip("/") + "/d%d" % i
            self.set_secret(pid, "K%d" % i, "v%d" % i, path=path)
        # The first rule never matches (its last segment is no folder here) and is tried first for every
        # folder; the second grants the reads.
        slow = "/" + "/".join(["**"] * GLOB_WILDCARDS_MAX) + "/nomatch"
        ident = self.machine(pid, "member", rules=[{"actions": ["read"], "secretPath": slow},
                                                   {"actions": ["read"], "secretPath": "/d0/**"}])
        t0 = time.monotonic()
        r = self.get_as(ident["token"], pid, "K29", path=path)
        self.assertEqual(r.status, 200, r.body[:300])
        r = self.list_as(ident["token"], pid, path="/d0", recursive="true")
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(len(r.json["secrets"]), 30)
        r = self.get_as(ident["token"], pid, "K0", path="/")  # no rule matches /
        self.assertEqual(r.status, 403, r.body[:300])
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, 1.0, "three reads under a rule with %d ** took %.2f s"
                        % (GLOB_WILDCARDS_MAX, elapsed))

    def test_too_many_wildcards_refused(self):
        pid = self.create_project()["id"]
        ident = self.create_identity()
        for glob in ("/" + "/".join(["**"] * (GLOB_WILDCARDS_MAX + 1)),
                     "/" + "/".join(["*"] * (GLOB_WILDCARDS_MAX + 1))):
            r = self.api("POST", "/api/v2/workspace/%s/identity-memberships/%s" % (pid, ident["id"]),
                         body={"role": "viewer", "rules": [{"actions": ["read"], "secretPath": glob}]})
            self.assertError(r, 422, "ValidationFailure", "rules[0].secretPath", str(GLOB_WILDCARDS_MAX))
        r = self.api("POST", "/api/v2/workspace/%s/identity-memberships/%s" % (pid, ident["id"]),
                     body={"role": "viewer", "rules": [{"actions": ["read"], "secretPath": "/" + "/".join(
                         ["**"] * GLOB_WILDCARDS_MAX)}]})
        self.assertEqual(r.status, 200, r.body[:300])


if __name__ == "__main__":
    unittest.main()
