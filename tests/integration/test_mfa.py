"""Two-factor sign-in (docs/users.md "Two-factor sign-in") through the real server and the real CLI.

- enrolment: POST /api/v1/users/me/mfa/totp shows a base32 secret and an otpauth:// URI once; it counts only after
  totp/verify accepts a code (wrong code refused naming "code"; recovery codes returned once); a second enrolment
  is refused while one is enabled; identities and the admin token have no second factor;
- sign-in: the password alone answers 401 {mfaRequired, mfaTicket}; login/mfa with a code gives the session or the
  personal access token; a ticket works once; a code works once (replay refused); a recovery code signs in once
  and is recorded as such in the audit log; a wrong code counts toward the throttle; a ticket expires (test clock);
- disable: the user with a code, an administrator for another user without one, a member never for another;
- the CLI: `coffer users mfa enable --code`, `coffer login --user` with the code on the second line of standard
  input or with --mfa-code, `status`, `recovery-codes`, `disable`;
- no TOTP secret, recovery code or ticket in the server's log, the request log or the audit events.

Codes are computed here from the secret (RFC 6238 with HMAC-SHA1) at the server's time: the real time plus the
test clock's offset.
"""

import base64
import hashlib
import hmac
import json
import re
import struct
import time

import harness
from test_users import PASSWORD, UserHelpers
RECOVERY_SHAPE = re.compile(r"^[A-Z2-7]{5}-[A-Z2-7]{5}$")


def totp(secret_b32, step):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return "%06d" % (value % 1000000)


class Mfa(UserHelpers, harness.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.server.api("POST", "/api/v1/users", body={"email": "owner@example.com", "orgRole": "owner",
                                                           "password": PASSWORD})
        assert r.status == 200, r.body

    # ----- helpers -----

    def step(self, delta=0):
        return int((time.time() + self.server.clock_offset) // 30) + delta

    def user(self, email, role="member"):
        self.create_user(email, role=role)
        return self.pat_by_login(email)

    def enrol(self, pat):
        """Enrols and confirms: returns (secret, recovery codes, the step used)."""
        begun = self.ok("POST", "/api/v1/users/me/mfa/totp", token=pat)
        step = self.step()
        r = self.api("POST", "/api/v1/users/me/mfa/totp/verify", body={"code": totp(begun["secret"], step)},
                     token=pat)
        self.assertEqual(r.status, 200, r.body)
        return begun["secret"], r.json["recoveryCodes"], step

    def password_step(self, email, pat=True):
        body = {"email": email, "password": PASSWORD}
        if pat:
            body["personalAccessToken"] = {"name": "t", "expiresIn": "1h"}
        r = self.api("POST", "/api/v1/auth/login", token=None, body=body)
        self.assertError(r, 401, None, "second factor")
        self.assertIs(r.json["mfaRequired"], True)
        self.assertEqual(r.json["mfaMethods"], ["totp", "recoveryCode"])
        self.assertTrue(r.json["mfaTicket"].startswith("mfa_"), r.json)
        self.assertIsNone(r.headers.get("Set-Cookie"))
        self.assertNotIn("token", r.json)
        return r.json["mfaTicket"]

    def second_step(self, ticket, code, pat=True):
        body = {"mfaTicket": ticket, "code": code}
        if pat:
            body["personalAccessToken"] = {"name": "t", "expiresIn": "1h"}
        return self.api("POST", "/api/v1/auth/login/mfa", token=None, body=body)

    # ----- tests -----

    def test_enrolment(self):
        pat = self.user("enrol@example.com")
        begun = self.ok("POST", "/api/v1/users/me/mfa/totp", token=pat)
        self.assertRegex(begun["secret"], r"^[A-Z2-7]{32}$")
        self.assertEqual((begun["algorithm"], begun["digits"], begun["period"], begun["issuer"]),
                         ("SHA1", 6, 30, "Coffer"))
        self.assertEqual(begun["otpauthUri"],
                         "otpauth://totp/Coffer:enrol%%40example.com?secret=%s&issuer=Coffer&algorithm=SHA1&digits=6"
                         "&period=30" % begun["secret"])
        status = self.ok("GET", "/api/v1/users/me/mfa", token=pat)["mfa"]
        self.assertEqual(status, {"totpEnabled": False, "totpPending": True, "recoveryCodesRemaining": 0})
        # a pending enrolment is not asked for at sign-in
        r = self.api("POST", "/api/v1/auth/login", token=None, body={"email": "enrol@example.com", "password": PASSWORD})
        self.assertEqual(r.status, 200, r.body)

        r = self.api("POST", "/api/v1/users/me/mfa/totp/verify", body={"code": totp(begun["secret"], self.step(5))},
                     token=pat)
        self.assertError(r, 401, None, "code", "wrong")
        for body, status, word in [({}, 422, "code"), ({"code": 123456}, 400, "code"), ({"code": "12345"}, 422, "code"),
                                   ({"code": "x" * 100}, 422, "code")]:
            self.assertError(self.api("POST", "/api/v1/users/me/mfa/totp/verify", body=body, token=pat), status,
                             None, word, msg=repr(body))
        r = self.api("POST", "/api/v1/users/me/mfa/totp/verify", body={"code": totp(begun["secret"], self.step())},
                     token=pat)
        self.assertEqual(r.status, 200, r.body)
        codes = r.json["recoveryCodes"]
        self.assertEqual(len(codes), 10)
        self.assertEqual(len(set(codes)), 10)
        for code in codes:
            self.assertRegex(code, RECOVERY_SHAPE)
        self.assertEqual(r.json["mfa"], {"totpEnabled": True, "totpPending": False, "recoveryCodesRemaining": 10})
        r = self.api("POST", "/api/v1/users/me/mfa/totp", token=pat)
        self.assertError(r, 409, None, "enabled already")
        # the enrolment's secret and codes are in no log or audit record
        self.assert_not_leaked([begun["secret"]] + codes)

    def test_only_users_have_a_second_factor(self):
        r = self.api("POST", "/api/v1/users/me/mfa/totp")
        self.assertError(r, 403, None, "user")
        r = self.api("GET", "/api/v1/users/me/mfa", token=None)
        self.assertEqual(r.status, 401, r.body)

    def test_sign_in_with_a_code(self):
        pat = self.user("sign@example.com")
        secret, _, step = self.enrol(pat)
        # the cookie session
        ticket = self.password_step("sign@example.com", pat=False)
        r = self.second_step(ticket, totp(secret, step + 5), pat=False)
        self.assertError(r, 401, None, "wrong")
        r = self.second_step(ticket, totp(secret, step + 1), pat=False)
        self.assertEqual(r.status, 200, r.body)
        self.assertRegex(r.headers.get("Set-Cookie"), r"^coffer_session=")
        self.assertEqual(r.json["user"]["email"], "sign@example.com")
        # the ticket is used up; the code too, under a new ticket
        r = self.second_step(ticket, totp(secret, step + 1), pat=False)
        self.assertError(r, 401, None, "ticket")
        ticket = self.password_step("sign@example.com")
        r = self.second_step(ticket, totp(secret, step + 1))
        self.assertError(r, 401, None, "used")
        # bad input
        for body, status, word in [({"code": "123456"}, 422, "mfaTicket"), ({"mfaTicket": ticket}, 422, "code"),
                                   ({"mfaTicket": "mfa_nope", "code": "123456"}, 401, "ticket"),
                                   ({"mfaTicket": ticket, "code": "9" * 65}, 422, "code"),
                                   ({"mfaTicket": 5, "code": "123456"}, 400, "mfaTicket")]:
            r = self.api("POST", "/api/v1/auth/login/mfa", body=body, token=None)
            self.assertError(r, status, None, word, msg=repr(body))
        self.assertError(self.api("POST", "/api/v1/auth/login/mfa", body="[1]", token=None), 400)
        self.assert_not_leaked([secret, ticket])

    def test_recovery_codes(self):
        pat = self.user("rescue@example.com")
        secret, codes, step = self.enrol(pat)
        ticket = self.password_step("rescue@example.com")
        r = self.second_step(ticket, codes[0].lower().replace("-", ""))
        self.assertEqual(r.status, 200, r.body)
        new_pat = r.json["token"]
        self.assertEqual(self.ok("GET", "/api/v1/users/me", token=new_pat)["user"]["email"], "rescue@example.com")
        ticket = self.password_step("rescue@example.com")
        self.assertError(self.second_step(ticket, codes[0]), 401, None, "recovery code")
        self.assertEqual(self.ok("GET", "/api/v1/users/me/mfa", token=pat)["mfa"]["recoveryCodesRemaining"], 9)
        events = self.ok("GET", "/api/v1/audit/events", query={"action": "auth.login.recovery-code"})["events"]
        self.assertTrue(any(e["secretPath"] == "user rescue@example.com" for e in events), events)
        # fresh codes need an authenticator code; the old ones stop
        r = self.api("POST", "/api/v1/users/me/mfa/recovery-codes", body={"code": codes[1]}, token=pat)
        self.assertEqual(r.status // 100, 4, r.body)
        r = self.api("POST", "/api/v1/users/me/mfa/recovery-codes", body={"code": totp(secret, step + 1)}, token=pat)
        self.assertEqual(r.status, 200, r.body)
        fresh = r.json["recoveryCodes"]
        self.assertFalse(set(fresh) & set(codes))
        ticket = self.password_step("rescue@example.com")
        self.assertError(self.second_step(ticket, codes[2]), 401, None, "recovery code")
        self.assertEqual(self.second_step(ticket, fresh[0]).status, 200)
        self.assert_not_leaked(codes + fresh)

    def test_disable_and_reset(self):
        pat = self.user("off@example.com")
        other = self.user("other@example.com")
        admin = self.user("adm@example.com", role="admin")
        _, codes, _ = self.enrol(pat)
        r = self.api("POST", "/api/v1/users/off@example.com/mfa/disable", token=other)
        self.assertError(r, 403)
        r = self.api("GET", "/api/v1/users/off@example.com/mfa", token=other)
        self.assertError(r, 403)
        r = self.api("POST", "/api/v1/users/me/mfa/disable", token=pat)
        self.assertEqual(r.status // 100, 4, r.body)
        self.assertIn("code", r.json["message"])
        r = self.api("POST", "/api/v1/users/me/mfa/disable", body={"code": codes[3]}, token=pat)
        self.assertEqual(r.status, 200, r.body)
        self.assertFalse(r.json["mfa"]["totpEnabled"])
        r = self.api("POST", "/api/v1/auth/login", token=None, body={"email": "off@example.com", "password": PASSWORD})
        self.assertEqual(r.status, 200, r.body)
        r = self.api("POST", "/api/v1/users/me/mfa/disable", body={"code": codes[4]}, token=pat)
        self.assertError(r, 404, None, "not")
        # an administrator resets another user's, who lost the authenticator
        self.enrol(pat)
        self.assertTrue(self.ok("GET", "/api/v1/users/off@example.com/mfa", token=admin)["mfa"]["totpEnabled"])
        r = self.api("POST", "/api/v1/users/off@example.com/mfa/disable", token=admin)
        self.assertEqual(r.status, 200, r.body)
        events = self.ok("GET", "/api/v1/audit/events", query={"action": "users.mfa.disable"})["events"]
        self.assertTrue(any(e["actor"]["name"] == "adm@example.com" and e["secretPath"] == "user off@example.com"
                            for e in events), events)
        r = self.api("POST", "/api/v1/users/nobody@example.com/mfa/disable", token=admin)
        self.assertError(r, 404, None, "nobody@example.com")

    def test_wrong_codes_are_throttled(self):
        pat = self.user("guess@example.com")
        secret, _, step = self.enrol(pat)
        ticket = self.password_step("guess@example.com")
        statuses = [self.second_step(ticket, "%06d" % n).status for n in range(12)]
        self.assertIn(429, statuses, statuses)
        # throttled even with the right code, until the window passes
        r = self.second_step(ticket, totp(secret, step + 1))
        self.assertError(r, 429)

    def test_ticket_expires(self):
        pat = self.user("late@example.com")
        secret, _, step = self.enrol(pat)
        ticket = self.password_step("late@example.com")
        self.advance_clock(301)
        r = self.second_step(ticket, totp(secret, self.step()))
        self.assertError(r, 401, None, "expired")

    def test_cli(self):
        pat = self.user("cli@example.com")
        rc, out, err = self.cli("users", "mfa", "status", token=pat)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"(?m)^off\s+0$")
        # enable: the secret on stdout, confirmed with --code at once
        rc, out, err = self.cli("users", "mfa", "enable", token=pat)
        self.assertEqual(rc, 0, err)
        self.assertIn("coffer users mfa verify CODE", err)
        secret = re.search(r"(?m)^secret:\s+([A-Z2-7]{32})$", out).group(1)
        self.assertIn("otpauth://totp/Coffer:cli%40example.com?secret=" + secret, out)
        step = self.step()
        rc, out, err = self.cli("users", "mfa", "verify", totp(secret, step), token=pat)
        self.assertEqual(rc, 0, err)
        codes = out.split()
        self.assertEqual(len(codes), 10, out)
        for code in codes:
            self.assertRegex(code, RECOVERY_SHAPE)
        self.assertIn("Recovery codes", err)
        rc, out, err = self.cli("users", "mfa", "status", "me", token=pat)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"(?m)^enabled\s+10$")

        # coffer login --user: the code on the second line of standard input
        rc, out, err = self.cli("login", "--user", "cli@example.com", "--password-stdin", "--plain", token=None,
                                input=PASSWORD + "\n" + totp(secret, step + 1) + "\n")
        self.assertEqual(rc, 0, err)
        token = out.strip()
        self.assertTrue(token.startswith("coffer_pat_"), out)
        self.assertEqual(self.ok("GET", "/api/v1/users/me", token=token)["user"]["email"], "cli@example.com")
        # no code given: a usage error naming it; a wrong one: the server's refusal
        rc, out, err = self.cli("login", "--user", "cli@example.com", "--password-stdin", "--plain", token=None,
                                input=PASSWORD + "\n")
        self.assertEqual((rc, out), (2, ""), err)
        self.assertIn("authentication code", err)
        rc, out, err = self.cli("login", "--user", "cli@example.com", "--password-stdin", "--plain", token=None,
                                input=PASSWORD + "\n" + totp(secret, step + 1) + "\n")
        self.assertEqual((rc, out), (1, ""), err)
        self.assertIn("used", err)
        # --mfa-code with a recovery code
        rc, out, err = self.cli("login", "--user", "cli@example.com", "--password-stdin", "--plain",
                                "--mfa-code", codes[0], token=None, input=PASSWORD + "\n")
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.startswith("coffer_pat_"), out)
        rc, _, err = self.cli("login", "--mfa-code", "123456", "--client-id", "x", "--client-secret", "y",
                              token=None)
        self.assertEqual(rc, 2, err)
        self.assertIn("--mfa-code", err)

        # recovery-codes and disable
        rc, _, err = self.cli("users", "mfa", "recovery-codes", token=pat)
        self.assertEqual(rc, 2, err)
        self.assertIn("--code", err)
        rc, out, err = self.cli("users", "mfa", "recovery-codes", "--code", "000000", token=pat)
        self.assertEqual(rc, 1, err)
        rc, out, err = self.cli("users", "mfa", "disable", "--code", codes[1], token=pat)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"(?m)^off\s+0$")
        rc, out, err = self.cli("users", "mfa", "verify", "123456", token=pat)
        self.assertEqual(rc, 1, err)
        self.assertIn("no authenticator enrolment is pending", err)
        self.assert_not_leaked([secret] + codes)

    def assert_not_leaked(self, values):
        audit = json.dumps(self.ok("GET", "/api/v1/audit/events", query={"limit": 1000}))
        logs = self.server.stderr + self.server.stdout + "\n".join(self.server.request_log_lines())
        for value in values:
            self.assertNotIn(value, audit)
            self.assertNotIn(value, logs)
            self.assertNotIn(value.replace("-", ""), audit + logs)
