"""GET /metrics (docs/server.md "Metrics"): Prometheus' text format behind a scrape token.

- off by default: 404 naming --metrics-token-file; a short, empty or missing token file refuses to start, and the
  environment twin COFFER_METRICS_TOKEN_FILE works like the flag;
- a scrape without the token or with another one is 401 (and audited), the right one 200 with text/plain
  version 0.0.4 (and not audited: scrapes every few seconds would flood the log);
- requests are counted by route pattern and status, exactly (a known number of each between two scrapes); the
  labels name patterns, never a project id or secret name from a path; each histogram is cumulative and ends at
  +Inf with its _count;
- logins by method and result (universal auth ok and denied, a password sign-in denied);
- syncs by state, items expiring within 7 and 30 days, the audit writer's backlog, database connections;
- every line parses as the exposition format (a name, optional labels, a number).
"""

import datetime
import os
import re
import tempfile
import time
import unittest

import harness
from test_identities import IdentityHelpers

TOKEN = "m" * 16 + os.urandom(16).hex()
LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"'
                  r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*)?\})? (-?[0-9.e+]+|\+Inf|NaN)$')
SYNC_ROOT = tempfile.mkdtemp(prefix="coffer-metrics-sync-")


def token_file(text):
    fd, path = tempfile.mkstemp(prefix="coffer-metrics-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def stamp(days):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def parse(text):
    """{(name, frozenset(labels.items())): value} of an exposition page; fails on a line that is not one."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = LINE.match(line)
        if not m:
            raise AssertionError("not an exposition line: %r" % line)
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"', m.group(3) or ""))
        samples[(m.group(1), frozenset(labels.items()))] = float(m.group(5))
    return samples


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


class MetricsOff(harness.ServerTestCase):
    def test_off_by_default(self):
        r = self.api("GET", "/metrics", token=None)
        self.assertError(r, 404, None, "metrics are off", "--metrics-token-file")
        r = self.api("GET", "/metrics", headers={"Authorization": "Bearer " + TOKEN}, token=None)
        self.assertEqual(r.status, 404)

    def test_bad_token_files_refuse_to_start(self):
        short = token_file("too-short\n")
        empty = token_file("\n")
        self.addCleanup(os.unlink, short)
        self.addCleanup(os.unlink, empty)
        harness.assert_start_refused(self, [
            (["--metrics-token-file", short], "at least 24"),
            (["--metrics-token-file", empty], "at least 24"),
            (["--metrics-token-file", "/nonexistent/token"], "/nonexistent/token"),
        ])


class Metrics(IdentityHelpers, harness.ServerTestCase):
    # the token file ends with a newline, as `openssl rand -hex 32 > FILE` writes it
    token_path = token_file(TOKEN + "\n")
    server_env = {"COFFER_METRICS_TOKEN_FILE": token_path, "COFFER_SYNC_FILE_DIR": SYNC_ROOT}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        os.unlink(cls.token_path)

    def scrape(self):
        r = self.api("GET", "/metrics", headers={"Authorization": "Bearer " + TOKEN}, token=None)
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(r.headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
        return r.body.decode(), parse(r.body.decode())

    def scrape_after(self, before, *growth):
        """A scrape once each (name, expected, labels) of growth has grown by expected since before: a request
        is counted when its answer has been sent, a moment after the client has read it."""
        deadline = time.monotonic() + 5
        while True:
            text, after = self.scrape()
            if all(value(after, name, **labels) - value(before, name, **labels) >= expected
                   for name, expected, labels in growth) or time.monotonic() > deadline:
                return text, after
            time.sleep(0.02)

    def test_the_token_is_required_and_refusals_are_audited(self):
        for headers in ({}, {"Authorization": "Bearer " + TOKEN[:-1] + "x"}, {"Authorization": "Bearer "},
                        {"Authorization": "Basic " + TOKEN}, {"Authorization": "Bearer " + TOKEN + "x"},
                        {"Authorization": "Bearer " + harness.ADMIN_TOKEN}):
            r = self.api("GET", "/metrics", headers=headers, token=None)
            self.assertError(r, 401, None, "Authorization: Bearer")
            self.assertNotIn(TOKEN.encode(), r.body)
        self.scrape()
        self.scrape()
        events = self.ok("GET", "/api/v1/audit/events", query={"limit": 1000})["events"]
        scrapes = [e for e in events if "/metrics" in e.get("action", "")]
        self.assertTrue(scrapes, "refused scrapes were not audited")
        self.assertTrue(all(e["result"] == "denied" for e in scrapes), scrapes)
        self.assertNotIn(TOKEN, self.server.stderr)

    def test_requests_counted_by_route_and_status(self):
        pid = self.create_project()["id"]
        self.set_secret(pid, "SECRET_NAME_IN_PATH", "v1")
        _, before = self.scrape()
        for _ in range(3):
            self.get_secret(pid, "SECRET_NAME_IN_PATH")
        for _ in range(2):
            r = self.api("GET", "/api/v3/secrets/raw/NOT_THERE", query={"workspaceId": pid, "environment": "dev"})
            self.assertEqual(r.status, 404)
        self.assertEqual(self.api("GET", "/api/v9/nothing").status, 404)
        route = dict(method="GET", route="/api/v3/secrets/raw/:name")
        text, after = self.scrape_after(
            before, ("coffer_http_requests_total", 3, dict(status="200", **route)),
            ("coffer_http_requests_total", 2, dict(status="404", **route)),
            ("coffer_http_requests_total", 1, dict(method="", route="unmatched", status="404")))
        self.assertEqual(value(after, "coffer_http_requests_total", status="200", **route)
                         - value(before, "coffer_http_requests_total", status="200", **route), 3)
        self.assertEqual(value(after, "coffer_http_requests_total", status="404", **route)
                         - value(before, "coffer_http_requests_total", status="404", **route), 2)
        unmatched = dict(method="", route="unmatched", status="404")
        self.assertEqual(value(after, "coffer_http_requests_total", **unmatched)
                         - value(before, "coffer_http_requests_total", **unmatched), 1)
        # patterns only: nothing of a path
        self.assertNotIn(pid, text)
        self.assertNotIn("SECRET_NAME_IN_PATH", text)
        self.assertNotIn("NOT_THERE", text)
        # each histogram is cumulative, and its +Inf bucket is its count
        buckets = sorted(((float(dict(k[1])["le"]) if dict(k[1])["le"] != "+Inf" else float("inf")), v)
                         for k, v in after.items()
                         if k[0] == "coffer_http_request_duration_seconds_bucket" and dict(k[1]).get("route")
                         == route["route"] and dict(k[1]).get("method") == "GET")
        counts = [v for _, v in buckets]
        self.assertEqual(counts, sorted(counts))
        self.assertEqual(buckets[-1], (float("inf"),
                                       value(after, "coffer_http_request_duration_seconds_count", **route)))
        self.assertGreaterEqual(buckets[-1][1], 5)
        self.assertGreater(value(after, "coffer_http_request_duration_seconds_sum", **route), 0)

    def test_logins_by_method_and_result(self):
        # no login of its own: a login is counted a moment after its answer is read, so one made just before
        # the first scrape could be counted after it
        m = self.machine(login=False)
        _, before = self.scrape()
        self.login_ok(m["clientId"], m["clientSecret"])
        self.login_ok(m["clientId"], m["clientSecret"])
        self.assertEqual(self.login(m["clientId"], "wrong-" + m["clientSecret"]).status, 401)
        r = self.api("POST", "/api/v1/auth/login", body={"email": "nobody@example.com", "password": "x" * 12},
                     token=None)
        self.assertEqual(r.status, 401)
        _, after = self.scrape_after(
            before, ("coffer_logins_total", 2, dict(method="universal-auth", result="ok")),
            ("coffer_logins_total", 1, dict(method="universal-auth", result="denied")),
            ("coffer_logins_total", 1, dict(method="password", result="denied")))

        def delta(method, result):
            return (value(after, "coffer_logins_total", method=method, result=result)
                    - value(before, "coffer_logins_total", method=method, result=result))
        self.assertEqual(delta("universal-auth", "ok"), 2)
        self.assertEqual(delta("universal-auth", "denied"), 1)
        self.assertEqual(delta("password", "denied"), 1)
        self.assertEqual(delta("kubernetes-auth", "ok"), 0)

    def test_jobs_expiry_audit_and_store(self):
        pid = self.create_project()["id"]
        self.set_secret(pid, "SOON", "v", expiresAt=stamp(3))
        self.set_secret(pid, "LATER", "v", expiresAt=stamp(20))
        self.set_secret(pid, "GONE", "v", expiresAt=stamp(-1))
        _, before = self.scrape()
        body = {"name": harness.unique("sync"), "projectId": pid, "environment": "dev", "secretPath": "/",
                "destinationConfig": {"path": os.path.join(SYNC_ROOT, harness.unique("f") + ".env"),
                                      "format": "dotenv"}}
        self.ok("POST", "/api/v1/secret-syncs/file", body=body)
        _, after = self.scrape()
        syncs = sum(v for k, v in after.items() if k[0] == "coffer_jobs" and ("kind", "sync") in k[1])
        syncs_before = sum(v for k, v in before.items() if k[0] == "coffer_jobs" and ("kind", "sync") in k[1])
        self.assertEqual(syncs - syncs_before, 1)
        # this class's secrets only: other tests add none with an expiry
        self.assertEqual(value(after, "coffer_expiring_items", kind="secret", within="7d"), 2)
        self.assertEqual(value(after, "coffer_expiring_items", kind="secret", within="30d"), 3)
        self.assertEqual(value(after, "coffer_expired_items", kind="secret"), 1)
        self.assertIn(("coffer_audit_queue_events", frozenset()), after)
        self.assertIn(("coffer_audit_queue_lag_seconds", frozenset()), after)
        self.assertEqual(value(after, "coffer_audit_dropped_events_total"), 0)
        if harness.BACKEND == "postgres":
            self.assertGreaterEqual(value(after, "coffer_db_connections"), 1)
            self.assertGreaterEqual(value(after, "coffer_db_connections_max"),
                                    value(after, "coffer_db_connections"))
        else:
            self.assertGreaterEqual(value(after, "coffer_db_connections"), 1)
            self.assertEqual(value(after, "coffer_db_connections_max"), 0)
        self.assertGreater(value(after, "process_resident_memory_bytes"), 1 << 20)
        self.assertGreaterEqual(value(after, "coffer_http_requests_in_flight"), 1)


if __name__ == "__main__":
    unittest.main()
