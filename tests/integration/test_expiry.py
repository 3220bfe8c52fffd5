"""Expiry you cannot miss (docs/api.md "Expiry", docs/cli.md "expiring").

- GET /api/v1/expiring and `coffer expiring`: a secret expiring in 10 days and a client secret expiring in 2 days
  are listed soonest first with where they live; `--fail` exits 3 when anything is listed, 0 otherwise; the window
  and the kinds filter work; an identity sees only the secrets it may read and its own client secrets; bad input is
  422/404/401 and a CLI usage error.
- Rotation reminders: secretReminderRepeatDays / secretReminderNote through the API and `coffer secrets set
  --reminder-every / --reminder-note`; a reminder is "due" within the window.
- `coffer secrets set --expires-in` stores now + the duration; with --expires-at it is a usage error.
- `coffer run` and `coffer export` warn on stderr (never stdout) about injected secrets expiring within 14 days,
  say EXPIRED for expired ones, and with --fail-on-expired (or COFFER_FAIL_ON_EXPIRED=1) refuse with exit 3 without
  running the command or writing anything.
- Logging in with an expired client secret prints the server's precise reason and the command that makes a new
  client secret, and exits non-zero.
- The clock: a test build (meson -Dtest_clock=true) moves it while it runs with COFFER_TEST_CLOCK_FILE and from
  its start with COFFER_TEST_CLOCK_OFFSET (a reminder falls overdue, a secret expires), and stops (status 2) on an
  offset it cannot read; a release build ignores both variables.
"""

import datetime
import json
import os
import re
import unittest

import harness
from test_identities import IdentityHelpers

EXPIRING = "/api/v1/expiring"
DAY = datetime.timedelta(days=1)


def stamp(delta):
    return (datetime.datetime.now(datetime.timezone.utc) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


test_build = harness.test_build


class Expiring(IdentityHelpers, harness.ServerTestCase):

    def setUp(self):
        super().setUp()
        self.project = self.create_project(harness.unique("exp"))
        self.pid = self.project["id"]
        self.set_secret(self.pid, "SP_CLIENT_SECRET", "v", env="prod", expiresAt=stamp(10 * DAY))
        self.set_secret(self.pid, "NO_EXPIRY", "v", env="prod")
        self.machine_ = self.machine(self.pid, "viewer", name=harness.unique("FinTech-DevOps-SP"),
                                     secret={"description": "ADO-Rotation-Secret", "ttl": 2 * 86400})

    def items(self, token=..., **query):
        query.setdefault("projectId", self.pid)
        r = self.api("GET", EXPIRING, query=query, token=token)
        self.assertEqual(r.status, 200, r.body[:500])
        return r.json["items"]

    def test_lists_both_soonest_first_with_where_they_live(self):
        items = self.items(within="30d")
        self.assertEqual([i["kind"] for i in items], ["clientSecret", "secret"])
        cs, secret = items
        self.assertEqual((cs["status"], cs["description"], cs["identity"]["name"]),
                         ("expiring", "ADO-Rotation-Secret", self.machine_["name"]))
        self.assertIn('client secret "ADO-Rotation-Secret" of identity "%s" expires at' % self.machine_["name"],
                      cs["message"])
        self.assertEqual((secret["environment"], secret["secretPath"], secret["secretKey"], secret["status"]),
                         ("prod", "/", "SP_CLIENT_SECRET", "expiring"))
        self.assertEqual(secret["project"]["id"], self.pid)
        self.assertLess(abs((parse(secret["expiresAt"]) - parse(stamp(10 * DAY))).total_seconds()), 5)
        # The window: 3 days holds only the client secret, 1 day nothing.
        self.assertEqual([i["kind"] for i in self.items(within="3d")], ["clientSecret"])
        self.assertEqual(self.items(within="1d"), [])
        self.assertEqual([i["kind"] for i in self.items(within="30d", include="secrets")], ["secret"])

    def test_cli_fail_gate(self):
        rc, out, err = self.cli("expiring", "--within", "30d", "--projectId", self.pid, "--fail")
        self.assertEqual(rc, 3, out + err)
        self.assertIn("SP_CLIENT_SECRET", out)
        self.assertIn("ADO-Rotation-Secret", out)
        self.assertLess(out.index("ADO-Rotation-Secret"), out.index("SP_CLIENT_SECRET"), "not soonest first")
        self.assertRegex(out, r"\b9d 23h\b|\b9d 22h\b")
        rc, out, err = self.cli("expiring", "--within", "30d", "--projectId", self.pid)
        self.assertEqual(rc, 0, err)
        rc, out, err = self.cli("expiring", "--within", "1d", "--projectId", self.pid, "--fail")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("nothing expires", out)
        rc, out, err = self.cli("expiring", "--projectId", self.pid, "--output", "json", "--fail")
        self.assertEqual(rc, 3)
        self.assertEqual(len(json.loads(out)["items"]), 2)
        rc, out, err = self.cli("expiring", "--within", "soon")
        self.assertEqual(rc, 2)
        self.assertIn("--within", err)

    def test_identity_sees_what_it_may_read_and_its_own_client_secret(self):
        other = self.machine(name=harness.unique("other"), secret={"description": "other", "ttl": 3600})
        narrow = self.machine(self.pid, "viewer", rules=[{"actions": ["read"], "environment": "dev"}],
                              secret={"description": "narrow", "ttl": 3600})
        mine = self.items(token=self.machine_["token"], within="30d")
        self.assertEqual({(i["kind"], i.get("secretKey") or i.get("description")) for i in mine},
                         {("secret", "SP_CLIENT_SECRET"), ("clientSecret", "ADO-Rotation-Secret")})
        theirs = self.items(token=narrow["token"], within="30d")
        self.assertEqual([(i["kind"], i["description"]) for i in theirs], [("clientSecret", "narrow")])
        self.assertNotIn('"description": "other"', json.dumps(mine))
        # Not a member of the project: the same 404 as for a project that does not exist.
        r = self.api("GET", EXPIRING, query={"projectId": self.pid}, token=other["token"])
        self.assertError(r, 404, None, "not found")

    def test_bad_input(self):
        self.assertError(self.api("GET", EXPIRING, query={"within": "abc"}), 422, "ValidationFailure", "within")
        self.assertError(self.api("GET", EXPIRING, query={"include": "secrets,bogus"}), 422, "ValidationFailure",
                         "bogus")
        self.assertError(self.api("GET", EXPIRING, query={"projectId": "no-such-project"}), 404)
        self.assertEqual(self.api("GET", EXPIRING, token=None).status, 401)

    def test_reminders(self):
        self.set_secret(self.pid, "ROTATE_ME", "v", env="dev", secretReminderRepeatDays=1,
                        secretReminderNote="rotate with the vendor's console")
        due = [i for i in self.items(within="2d") if i["kind"] == "reminder"]
        self.assertEqual(len(due), 1)
        self.assertEqual((due[0]["status"], due[0]["secretKey"], due[0]["secretReminderRepeatDays"]),
                         ("due", "ROTATE_ME", 1))
        self.assertIn("rotate with the vendor's console", due[0]["message"])
        got = self.get_secret(self.pid, "ROTATE_ME").json["secret"]
        self.assertEqual((got["secretReminderRepeatDays"], got["secretReminderNote"]),
                         (1, "rotate with the vendor's console"))
        # The CLI sets and clears them.
        rc, out, err = self.cli("secrets", "set", "CLI_ROTATE=x", "--reminder-every", "90d", "--reminder-note",
                                "see runbook", "--projectId", self.pid, "--env", "dev")
        self.assertEqual(rc, 0, err)
        got = self.get_secret(self.pid, "CLI_ROTATE").json["secret"]
        self.assertEqual((got["secretReminderRepeatDays"], got["secretReminderNote"]), (90, "see runbook"))
        rc, out, err = self.cli("secrets", "set", "CLI_ROTATE=y", "--reminder-every", "off",
                                "--projectId", self.pid, "--env", "dev")
        self.assertEqual(rc, 0, err)
        got = self.get_secret(self.pid, "CLI_ROTATE").json["secret"]
        self.assertIsNone(got["secretReminderRepeatDays"])
        self.assertEqual(got["secretReminderNote"], "see runbook")  # untouched when not given
        rc, out, err = self.cli("secrets", "set", "CLI_ROTATE=z", "--reminder-every", "12h",
                                "--projectId", self.pid)
        self.assertEqual(rc, 2)
        self.assertIn("whole days", err)
        self.assertError(self.api("POST", "/api/v3/secrets/raw/BAD_REMINDER",
                                  body={"workspaceId": self.pid, "environment": "dev", "secretValue": "v",
                                        "secretReminderRepeatDays": "weekly"}),
                         422, "ValidationFailure", "secretReminderRepeatDays")

    def test_set_expires_in(self):
        rc, out, err = self.cli("secrets", "set", "TTL_KEY=v", "--expires-in", "180d", "--projectId", self.pid)
        self.assertEqual(rc, 0, err)
        got = self.get_secret(self.pid, "TTL_KEY").json["secret"]
        self.assertLess(abs((parse(got["expiresAt"]) - parse(stamp(180 * DAY))).total_seconds()), 30)
        rc, out, err = self.cli("secrets", "set", "TTL_KEY=v", "--expires-in", "1d", "--expires-at",
                                stamp(DAY), "--projectId", self.pid)
        self.assertEqual(rc, 2)
        self.assertIn("--expires-at and --expires-in", err)
        rc, out, err = self.cli("secrets", "set", "TTL_KEY=v", "--expires-in", "tomorrow", "--projectId", self.pid)
        self.assertEqual(rc, 2)

    def test_run_and_export_warn_and_refuse(self):
        token = self.machine_["token"]
        rc, out, err = self.cli("run", "--projectId", self.pid, "--env", "prod", "--", "sh", "-c",
                                "echo child-ran", token=token)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "child-ran\n", "the warning must not reach standard output")
        self.assertRegex(err, r"warning: secret SP_CLIENT_SECRET \(prod:/\) expires at \S+, in 9d")
        self.assertNotIn("NO_EXPIRY", err)
        rc, out, err = self.cli("run", "--projectId", self.pid, "--env", "prod", "--expiry-warning", "5d", "--",
                                "true", token=token)
        self.assertEqual(rc, 0)
        self.assertNotIn("SP_CLIENT_SECRET", err)
        rc, out, err = self.cli("export", "--projectId", self.pid, "--env", "prod", token=token)
        self.assertEqual(rc, 0, err)
        self.assertIn("SP_CLIENT_SECRET", out)
        self.assertNotIn("warning", out)
        self.assertIn("warning: secret SP_CLIENT_SECRET", err)
        # Expired: warned loudly; refused with --fail-on-expired or COFFER_FAIL_ON_EXPIRED=1.
        self.set_secret(self.pid, "OLD_TOKEN", "v", env="prod", expiresAt=stamp(-2 * DAY))
        rc, out, err = self.cli("run", "--projectId", self.pid, "--env", "prod", "--", "true", token=token)
        self.assertEqual(rc, 0)
        self.assertRegex(err, r"secret OLD_TOKEN \(prod:/\) EXPIRED at \S+, 2d \d+h ago")
        rc, out, err = self.cli("run", "--projectId", self.pid, "--env", "prod", "--fail-on-expired", "--",
                                "sh", "-c", "echo child-ran", token=token)
        self.assertEqual(rc, 3, err)
        self.assertEqual(out, "", "the command ran although a secret had expired")
        self.assertIn("OLD_TOKEN", err)
        self.assertIn("--fail-on-expired", err)
        rc, out, err = self.cli("export", "--projectId", self.pid, "--env", "prod", token=token,
                                env={"COFFER_FAIL_ON_EXPIRED": "1"})
        self.assertEqual(rc, 3, err)
        self.assertNotIn("=", out, "export wrote secrets although one had expired")
        self.assertIn("exit 3", out, "the failure lines that stop a consuming eval")
        rc, out, err = self.cli("run", "--projectId", self.pid, "--env", "prod", "--expiry-warning", "soonish",
                                "--", "true", token=token)
        self.assertEqual(rc, 2)
        self.assertIn("--expiry-warning", err)

    def test_login_with_an_expired_client_secret(self):
        m = self.machine(name=harness.unique("FinTech-DevOps-SP"), login=False,
                         secret={"description": "ADO-Rotation-Secret", "ttl": 60})
        self.advance_clock(61)
        rc, out, err = self.cli("login", "--method=universal-auth", "--client-id", m["clientId"],
                                "--client-secret", m["clientSecret"], "--silent", "--plain", token=None)
        self.assertNotEqual(rc, 0)
        self.assertEqual(out, "")
        self.assertRegex(err, r'client secret "ADO-Rotation-Secret" of identity "%s" expired at '
                              r'\d{4}-\d\d-\d\dT[0-9:.]+Z' % re.escape(m["name"]))
        self.assertIn("coffer identities client-secrets create", err)
        self.assertIn(m["name"], err)
        self.assertNotIn(m["clientSecret"], err)


class Clock(unittest.TestCase):
    """COFFER_TEST_CLOCK_FILE and COFFER_TEST_CLOCK_OFFSET move a test build's clock and are ignored by a release
    build."""

    def run_server(self, offset, data_dir=None):
        s = harness.Server(data_dir=data_dir, env={"COFFER_TEST_CLOCK_OFFSET": offset})
        s.start()
        self.addCleanup(s.cleanup)
        self.addCleanup(s.stop)
        return s

    def seed(self, s):
        pid = s.api("POST", "/api/v2/workspace", body={"projectName": harness.unique("clock")}).json["project"]["id"]
        # Times as the (possibly moved) server sees them: read its clock from an answer.
        now = parse(s.api("GET", EXPIRING).json["now"])
        expires = (now + 10 * DAY).strftime("%Y-%m-%dT%H:%M:%SZ")
        for key, extra in (("TEN_DAYS", {"expiresAt": expires}), ("DAILY", {"secretReminderRepeatDays": 1})):
            body = {"workspaceId": pid, "environment": "dev", "secretValue": "v"}
            body.update(extra)
            self.assertEqual(s.api("POST", "/api/v3/secrets/raw/" + key, body=body).status, 200)
        return pid

    def server_now(self, s):
        return parse(s.api("GET", EXPIRING).json["now"])

    @unittest.skipUnless(test_build(), harness.NOT_A_TEST_BUILD)
    def test_a_test_build_travels_in_time(self):
        s = self.run_server("0")
        pid = self.seed(s)
        start = self.server_now(s)
        # While it runs: the file is read at every reading of the clock.
        s.advance_clock(2 * 86400)
        self.assertGreaterEqual(self.server_now(s) - start, 2 * DAY)
        items = {i["secretKey"] + "/" + i["kind"]: i for i in
                 s.api("GET", EXPIRING, query={"projectId": pid, "within": "30d"}).json["items"]}
        self.assertEqual(items["DAILY/reminder"]["status"], "overdue")
        self.assertEqual(items["TEN_DAYS/secret"]["status"], "expiring")
        s.advance_clock(9 * 86400)
        items = s.api("GET", EXPIRING, query={"projectId": pid, "include": "secrets"}).json["items"]
        self.assertEqual([(i["secretKey"], i["status"]) for i in items], [("TEN_DAYS", "expired")])
        s.advance_clock(-11 * 86400)  # and back
        self.assertLess(abs((self.server_now(s) - start).total_seconds()), 60)
        # From the start: COFFER_TEST_CLOCK_OFFSET, added to the file's offset.
        data_dir = s.data_dir
        s.stop()
        later = self.run_server("11d", data_dir=data_dir)
        items = later.api("GET", EXPIRING, query={"projectId": pid, "include": "secrets"}).json["items"]
        self.assertEqual([(i["secretKey"], i["status"]) for i in items], [("TEN_DAYS", "expired")])
        later.advance_clock(-86400)
        self.assertLess(abs((self.server_now(later) - start - 10 * DAY).total_seconds()), 60)
        rc, out, _ = harness.run(["version"])
        self.assertIn("test build", out)
        self.assertIn("COFFER_TEST_CLOCK_FILE", out)

    @unittest.skipUnless(test_build(), harness.NOT_A_TEST_BUILD)
    def test_an_unreadable_offset_stops_a_test_build(self):
        """A test that meant to travel in time must not go on at the real time."""
        for content, words in (("soon", "invalid duration"), ("9" * 80, "too long")):
            with self.subTest(content=content[:10]):
                s = self.run_server("0")
                self.assertEqual(s.api("GET", "/api/status").status, 200)
                with open(s.clock_file, "w") as f:
                    f.write(content)
                with self.assertRaises(OSError):
                    s.api("GET", EXPIRING)
                self.assertEqual(s.stop(), 2)
                self.assertIn("COFFER_TEST_CLOCK_FILE", s.stderr)
                self.assertIn(words, s.stderr)
        s = self.run_server("0")
        os.unlink(s.clock_file)
        with self.assertRaises(OSError):
            s.api("GET", EXPIRING)
        self.assertEqual(s.stop(), 2)
        self.assertIn("COFFER_TEST_CLOCK_FILE: cannot read an offset from '%s'" % s.clock_file, s.stderr)

    @unittest.skipIf(test_build(), "a test build: the release-build check runs on the release binary")
    def test_a_release_build_ignores_the_variables(self):
        s = self.run_server("400d")
        pid = self.seed(s)
        for offset_s in (0, 400 * 86400, -400 * 86400):
            harness.write_clock_file(s.clock_file, offset_s)  # what advance_clock writes on a test build
            now = parse(s.api("GET", EXPIRING).json["now"])
            real = datetime.datetime.now(datetime.timezone.utc)
            self.assertLess(abs((now - real).total_seconds()), 60, "a release build moved its clock")
            items = s.api("GET", EXPIRING, query={"projectId": pid, "include": "secrets"}).json["items"]
            self.assertEqual([(i["secretKey"], i["status"]) for i in items], [("TEN_DAYS", "expiring")])
        with open(s.clock_file, "w") as f:
            f.write("not an offset")  # would stop a test build
        self.assertEqual(s.api("GET", "/api/status").status, 200)
        rc, out, _ = harness.run(["version"])
        self.assertNotIn("test build", out)
        with self.assertRaises(unittest.SkipTest):
            s.advance_clock(1)


if __name__ == "__main__":
    unittest.main()
