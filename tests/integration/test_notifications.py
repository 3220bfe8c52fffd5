"""Expiry notifications (docs/notifications.md).

A local webhook receiver (checks the X-Coffer-Signature HMAC) and a local SMTP sink (speaks STARTTLS with a
self-signed certificate, which the server trusts through --smtp-ca-file) stand in for the world. Checked:

- the issue's case: a secret expiring in 10 days and a client secret expiring in 2 days; one pass sends exactly the
  expected notices once (the secret at its 30d threshold, the client secret at 7d, never both of its thresholds),
  to the webhook and by e-mail; another pass, and a pass after a restart, send nothing new; the delivery log shows
  them delivered;
- a receiver that fails is retried, not before its backoff, and the log shows the attempts and the last error;
- Slack and Microsoft Teams payload shapes; project channels hear only about their project;
- per-project thresholds; bad input is 422 naming the field, a non-admin 403; the signing secret is shown once and
  never again (API, log);
- with the test clock (test builds only): nine days later the secret crosses 1d and gets exactly one more notice
  per channel; eleven days later, "expired".
"""

import datetime
import hashlib
import hmac
import http.server
import json
import os
import shutil
import socket
import socketserver
import ssl
import tempfile
import threading
import unittest
import uuid

import harness
from test_expiry import stamp, test_build, DAY
from test_users import UserHelpers

SIGNING = "whsec-test-" + uuid.uuid4().hex


class Receiver:
    """An HTTP endpoint: records every POST (headers, JSON body); fails the first `fail` with 500 (or all, with
    fail=-1)."""

    def __init__(self, fail=0):
        self.posts = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    outer.posts.append((dict(self.headers), body))
                    n = len(outer.posts)
                if fail == -1 or n <= fail:
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d/hook" % self.httpd.server_address[1]

    def accepted(self, fail=0):
        with self.lock:
            return [json.loads(b) for _, b in self.posts[fail:]]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class SmtpSink:
    """Enough SMTP for libcurl: EHLO, STARTTLS (required before MAIL), MAIL, RCPT, DATA, QUIT."""

    def __init__(self, cert, key):
        self.mails = []
        self.plain_mail_attempts = 0
        outer = self
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                sock, tls = self.connection, False
                reader = sock.makefile("rb")

                def send(line):
                    sock.sendall(line.encode() + b"\r\n")

                send("220 sink ESMTP")
                mail = {"rcpt": []}
                while True:
                    raw = reader.readline()
                    if not raw:
                        return
                    line = raw.decode(errors="replace").rstrip("\r\n")
                    verb = line.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        send("250-sink" if not tls else "250-sink secure")
                        if not tls:
                            send("250-STARTTLS")
                        send("250 8BITMIME")
                    elif verb == "STARTTLS":
                        send("220 go ahead")
                        sock = ctx.wrap_socket(sock, server_side=True)
                        reader = sock.makefile("rb")
                        tls = True
                    elif verb == "MAIL":
                        if not tls:
                            outer.plain_mail_attempts += 1
                            send("530 STARTTLS first")
                            continue
                        mail = {"from": line[10:], "rcpt": []}
                        send("250 ok")
                    elif verb == "RCPT":
                        mail["rcpt"].append(line[8:])
                        send("250 ok")
                    elif verb == "DATA":
                        send("354 end with .")
                        data = b""
                        while not data.endswith(b"\r\n.\r\n"):
                            chunk = reader.readline()
                            if not chunk:
                                return
                            data += chunk
                        mail["data"] = data.decode(errors="replace")
                        outer.mails.append(mail)
                        send("250 queued")
                    elif verb == "QUIT":
                        send("221 bye")
                        return
                    else:
                        send("250 ok")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def verify_signature(headers, body, secret):
    sig = headers.get("X-Coffer-Signature", "")
    parts = dict(p.split("=", 1) for p in sig.split(",") if "=" in p)
    mac = hmac.new(secret.encode(), (parts.get("t", "") + ".").encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, parts.get("v1", ""))


class Notifications(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.certdir = tempfile.mkdtemp(prefix="coffer-itest-smtp-")
        cls.cert, cls.key = harness.make_cert(cls.certdir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certdir, ignore_errors=True)

    def setUp(self):
        self.hook = Receiver()
        self.sink = SmtpSink(self.cert, self.key)
        self.addCleanup(self.hook.close)
        self.addCleanup(self.sink.close)
        self.data_dir = tempfile.mkdtemp(prefix="coffer-itest-notify-")
        self.server = None

    def tearDown(self):
        if self.server:
            self.server.stop()
            report = self.server.sanitizer_report()
            if report:
                self.fail("sanitizer report:\n" + report)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def start(self, offset=None):
        if self.server:
            self.assertEqual(self.server.stop(), 0)
        env = {"COFFER_TEST_CLOCK_OFFSET": offset} if offset else None
        self.server = harness.Server(data_dir=self.data_dir, env=env, args=[
            "--notify-interval", "0", "--notify-retry-base", "1h",
            "--smtp-url", "smtp://127.0.0.1:%d" % self.sink.port, "--smtp-from", "coffer@example.com",
            "--smtp-ca-file", self.cert])
        self.server.start()
        return self.server

    def api(self, *a, **kw):
        return self.server.api(*a, **kw)

    def ok(self, method, path, **kw):
        r = self.api(method, path, **kw)
        self.assertEqual(r.status, 200, "%s %s: %s" % (method, path, r.body[:500]))
        return r.json

    def run_pass(self):
        return self.ok("POST", "/api/v1/notifications/run")

    def seed(self):
        pid = self.ok("POST", "/api/v2/workspace", body={"projectName": "payments"})["project"]["id"]
        self.ok("POST", "/api/v3/secrets/raw/SP_CLIENT_SECRET",
                body={"workspaceId": pid, "environment": "prod", "secretValue": "v", "expiresAt": stamp(10 * DAY)})
        ident = self.ok("POST", "/api/v1/identities", body={"name": "FinTech-DevOps-SP"})["identity"]
        self.ok("POST", "/api/v1/auth/universal-auth/identities/" + ident["id"], body={})
        self.ok("POST", "/api/v1/auth/universal-auth/identities/%s/client-secrets" % ident["id"],
                body={"description": "ADO-Rotation-Secret", "ttl": 2 * 86400})
        return pid

    def channels(self):
        self.ok("POST", "/api/v1/notifications/channels",
                body={"type": "webhook", "name": "siem", "url": self.hook.url, "signingSecret": SIGNING})
        self.ok("POST", "/api/v1/notifications/channels",
                body={"type": "email", "name": "ops", "recipients": "ops@example.com, sec@example.com"})

    def test_each_notice_exactly_once_even_after_a_restart(self):
        self.start()
        self.seed()
        self.channels()
        counts = self.run_pass()
        self.assertEqual((counts["created"], counts["delivered"], counts["failed"]), (4, 4, 0), counts)
        posts = self.hook.accepted()
        self.assertEqual(sorted((p["threshold"], p["item"]["kind"]) for p in posts),
                         [("30d", "secret"), ("7d", "clientSecret")])
        for headers, body in self.hook.posts:
            self.assertTrue(verify_signature(headers, body, SIGNING), "bad signature")
            self.assertTrue(headers.get("X-Coffer-Delivery"))
            self.assertRegex(headers.get("X-Coffer-Event", ""), r"^expiry\.(30d|7d)$")
        cs = [p for p in posts if p["item"]["kind"] == "clientSecret"][0]
        self.assertIn('client secret "ADO-Rotation-Secret" of identity "FinTech-DevOps-SP" expires at', cs["message"])
        self.assertEqual(len(self.sink.mails), 2)
        self.assertEqual(self.sink.plain_mail_attempts, 0, "mail was sent without STARTTLS")
        mail = [m for m in self.sink.mails if "ADO-Rotation-Secret" in m["data"]][0]
        self.assertEqual(sorted(mail["rcpt"]), ["<ops@example.com>", "<sec@example.com>"])
        self.assertIn("Subject: [Coffer] expiring soon:", mail["data"])
        self.assertIn("From: coffer@example.com", mail["data"])
        # Again: nothing new. After a restart: nothing new.
        again = self.run_pass()
        self.assertEqual((again["created"], again["delivered"]), (0, 0), again)
        self.start()
        after = self.run_pass()
        self.assertEqual((after["created"], after["delivered"]), (0, 0), after)
        self.assertEqual(len(self.hook.posts), 2)
        self.assertEqual(len(self.sink.mails), 2)
        log = self.ok("GET", "/api/v1/notifications/deliveries")["deliveries"]
        self.assertEqual(sorted(d["status"] for d in log), ["delivered"] * 4)
        rc, out, err = self.server.cli("notifications", "log")
        self.assertEqual(rc, 0, err)
        self.assertIn("ADO-Rotation-Secret", out)
        self.assertIn("delivered", out)
        # The signing secret is never shown again.
        shown = json.dumps(self.ok("GET", "/api/v1/notifications/channels"))
        self.assertNotIn(SIGNING, shown)
        self.assertNotIn(SIGNING, self.server.stderr + self.server.stdout)

    @unittest.skipUnless(test_build(), harness.NOT_A_TEST_BUILD)
    def test_later_thresholds_once_each(self):
        self.start()
        self.seed()
        self.channels()
        self.assertEqual(self.run_pass()["created"], 4)
        self.start(offset="9d")  # the secret has a day left, the client secret expired
        counts = self.run_pass()
        self.assertEqual(counts["created"], 4, counts)
        thresholds = sorted((p["threshold"], p["item"]["kind"]) for p in self.hook.accepted())
        self.assertEqual(thresholds, [("1d", "secret"), ("30d", "secret"), ("7d", "clientSecret"),
                                      ("expired", "clientSecret")])
        self.assertEqual(self.run_pass()["created"], 0)
        self.start(offset="11d")
        counts = self.run_pass()
        self.assertEqual(counts["created"], 2, counts)  # the secret expired, to both channels
        self.assertEqual(self.hook.accepted()[-1]["threshold"], "expired")

    def test_retries_with_backoff(self):
        flaky = Receiver(fail=1)
        dead = Receiver(fail=-1)
        self.addCleanup(flaky.close)
        self.addCleanup(dead.close)
        self.start()
        self.seed()
        self.ok("POST", "/api/v1/notifications/channels", body={"type": "webhook", "url": flaky.url})
        counts = self.run_pass()
        self.assertEqual((counts["created"], counts["delivered"], counts["retrying"]), (2, 1, 1), counts)
        log = self.ok("GET", "/api/v1/notifications/deliveries", query={"status": "pending"})["deliveries"]
        self.assertEqual(len(log), 1)
        self.assertEqual((log[0]["attempts"], log[0]["lastError"]), (1, "HTTP 500"))
        self.assertIsNotNone(log[0]["nextAttemptAt"])
        self.assertEqual(self.run_pass()["delivered"], 0, "retried before its backoff")
        # A receiver that never takes them: each attempt is recorded and retried (after 8 the notice is failed).
        self.ok("POST", "/api/v1/notifications/channels", body={"type": "webhook", "url": dead.url})
        counts = self.run_pass()
        self.assertEqual((counts["created"], counts["delivered"], counts["retrying"]), (2, 0, 2), counts)
        self.server.advance_clock(3600 + 1)  # past the first backoff (--notify-retry-base 1h)
        counts = self.run_pass()
        self.assertEqual((counts["delivered"], counts["retrying"]), (1, 2), counts)
        done = self.ok("GET", "/api/v1/notifications/deliveries", query={"status": "delivered"})["deliveries"]
        self.assertEqual(sorted(d["attempts"] for d in done), [1, 2])
        pending = self.ok("GET", "/api/v1/notifications/deliveries", query={"status": "pending"})["deliveries"]
        self.assertEqual(sorted(d["attempts"] for d in pending), [2, 2])

    def test_slack_teams_and_project_channels(self):
        slack, teams, other = Receiver(), Receiver(), Receiver()
        for r in (slack, teams, other):
            self.addCleanup(r.close)
        self.start()
        pid = self.seed()
        other_pid = self.ok("POST", "/api/v2/workspace", body={"projectName": "other"})["project"]["id"]
        self.ok("POST", "/api/v1/notifications/channels",
                body={"type": "slack", "url": slack.url, "workspaceId": pid})
        self.ok("POST", "/api/v1/notifications/channels", body={"type": "teams", "url": teams.url})
        self.ok("POST", "/api/v1/notifications/channels",
                body={"type": "webhook", "url": other.url, "workspaceId": other_pid})
        self.run_pass()
        s = slack.accepted()
        self.assertEqual(len(s), 1, "the project channel hears only about its project's secret")
        self.assertIn("SP_CLIENT_SECRET", s[0]["text"])
        self.assertEqual(s[0]["blocks"][0]["type"], "section")
        t = teams.accepted()
        self.assertEqual(len(t), 2)
        card = t[0]["attachments"][0]
        self.assertEqual((t[0]["type"], card["contentType"]), ("message", "application/vnd.microsoft.card.adaptive"))
        self.assertEqual(card["content"]["type"], "AdaptiveCard")
        self.assertEqual(other.accepted(), [])

    def test_test_message_to_a_channel(self):
        """POST .../channels/ID/test sends one signed test message now, stores no notice, and answers a
        receiver's refusal as delivered: false with the reason; unknown channels and non-admins are refused."""
        dead = Receiver(fail=-1)
        self.addCleanup(dead.close)
        self.start()
        hook = self.ok("POST", "/api/v1/notifications/channels",
                       body={"type": "webhook", "name": "siem", "url": self.hook.url,
                             "signingSecret": SIGNING})["channel"]
        mail = self.ok("POST", "/api/v1/notifications/channels",
                       body={"type": "email", "name": "ops", "recipients": "ops@example.com"})["channel"]
        broken = self.ok("POST", "/api/v1/notifications/channels", body={"type": "webhook", "url": dead.url})["channel"]

        r = self.ok("POST", "/api/v1/notifications/channels/%s/test" % hook["id"])
        self.assertEqual(r, {"channelId": hook["id"], "delivered": True, "error": None})
        self.assertEqual(len(self.hook.posts), 1)
        headers, body = self.hook.posts[0]
        self.assertTrue(verify_signature(headers, body, SIGNING), headers.get("X-Coffer-Signature"))
        self.assertEqual(headers.get("X-Coffer-Event"), "test")
        sent = json.loads(body)
        self.assertEqual((sent["event"], sent["threshold"], sent["item"]),
                         ("coffer.test", "test", {"kind": "test", "channelId": hook["id"]}))
        self.assertIn('channel "siem"', sent["message"])

        r = self.ok("POST", "/api/v1/notifications/channels/%s/test" % mail["id"])
        self.assertTrue(r["delivered"], r)
        self.assertEqual(len(self.sink.mails), 1)
        self.assertIn("Subject: [Coffer] test message", self.sink.mails[0]["data"])

        r = self.ok("POST", "/api/v1/notifications/channels/%s/test" % broken["id"])
        self.assertEqual((r["delivered"], r["error"]), (False, "HTTP 500"))
        self.assertEqual(self.ok("GET", "/api/v1/notifications/deliveries")["deliveries"], [],
                         "a test message was stored as a notice")

        # The CLI: exit 0 and a line for a delivered test, 1 and the reason for a refused one, 2 without an id.
        rc, out, err = self.server.cli("notifications", "channels", "test", hook["id"])
        self.assertEqual((rc, out.strip()), (0, "test message delivered to channel %s" % hook["id"]), err)
        rc, out, err = self.server.cli("notifications", "channels", "test", broken["id"])
        self.assertEqual(rc, 1)
        self.assertIn("refused the test message: HTTP 500", err)
        rc, out, err = self.server.cli("notifications", "channels", "test")
        self.assertEqual(rc, 2, err)
        rc, out, err = self.server.cli("notifications", "channels", "remove", broken["id"])
        self.assertEqual((rc, out.strip()), (0, "removed channel %s" % broken["id"]), err)
        rc, out, err = self.server.cli("notifications", "channels", "test", broken["id"])
        self.assertEqual(rc, 1)
        self.assertIn("not found", err)

        r = self.api("POST", "/api/v1/notifications/channels/%s/test" % uuid.uuid4())
        self.assertEqual(r.status, 404, r.body)
        self.assertIn("notification channel", r.json["message"])
        UserHelpers.create_user(self, "member@example.com", role="member")
        member = UserHelpers.pat_by_login(self, "member@example.com")
        r = self.api("POST", "/api/v1/notifications/channels/%s/test" % hook["id"], token=member)
        self.assertEqual(r.status, 403, r.body)
        self.assertEqual(len(self.hook.posts), 2, "a refused test was sent")

    def test_thresholds_and_bad_input(self):
        self.start()
        pid = self.seed()
        got = self.ok("PUT", "/api/v1/notifications/settings", body={"workspaceId": pid,
                                                                       "thresholds": ["1d", "5d"]})
        self.assertEqual(got["thresholds"], ["5d", "1d"])
        self.assertEqual(self.ok("GET", "/api/v1/notifications/settings",
                                 query={"workspaceId": pid})["thresholds"], ["5d", "1d"])
        self.ok("POST", "/api/v1/notifications/channels", body={"type": "webhook", "url": self.hook.url})
        counts = self.run_pass()
        self.assertEqual(counts["created"], 1, "with 5d and 1d the 10-day secret waits; the client secret "
                                               "(server defaults) is at 7d")
        bad = (
            ({"type": "webhook", "url": "http://example.com/hook"}, "url"),
            ({"type": "pager", "url": self.hook.url}, "type"),
            ({"type": "email", "recipients": "not-an-address"}, "recipients"),
            ({"type": "webhook", "url": self.hook.url, "workspaceId": "nope"}, None),
            ({"type": "webhook", "url": self.hook.url, "signingSecret": "short"}, "signingSecret"),
        )
        for body, field in bad:
            r = self.api("POST", "/api/v1/notifications/channels", body=body)
            if field:
                self.assertEqual(r.status, 422, (body, r.body[:300]))
                self.assertIn(field, r.json["message"])
            else:
                self.assertEqual(r.status, 404, r.body[:300])
        r = self.api("PUT", "/api/v1/notifications/settings", body={"workspaceId": pid, "thresholds": ["soon"]})
        self.assertEqual(r.status, 422)
        self.assertIn("thresholds", r.json["message"])
        r = self.api("GET", "/api/v1/notifications/deliveries", query={"status": "lost"})
        self.assertEqual(r.status, 422)
        # A generated signing secret is shown once; identities may not manage notifications.
        made = self.ok("POST", "/api/v1/notifications/channels", body={"type": "webhook", "url": self.hook.url})
        self.assertTrue(made["signingSecret"].startswith("whsec_"))
        self.assertNotIn(made["signingSecret"], json.dumps(self.ok("GET", "/api/v1/notifications/channels")))
        ident = self.ok("POST", "/api/v1/identities", body={"name": "outsider"})["identity"]
        ua = self.ok("POST", "/api/v1/auth/universal-auth/identities/" + ident["id"], body={})
        secret = self.ok("POST", "/api/v1/auth/universal-auth/identities/%s/client-secrets" % ident["id"],
                         body={})["clientSecret"]
        token = self.api("POST", "/api/v1/auth/universal-auth/login", token=None,
                         body={"clientId": ua["identityUniversalAuth"]["clientId"],
                               "clientSecret": secret}).json["accessToken"]
        self.assertEqual(self.api("POST", "/api/v1/notifications/run", token=token).status, 403)
        self.assertEqual(self.api("GET", "/api/v1/notifications/channels", token=token).status, 403)
        rc, out, err = self.server.cli("notifications", "channels", "add", "--type", "webhook", "--url",
                                       self.hook.url, "--name", "cli-hook")
        self.assertEqual(rc, 0, err)
        self.assertIn("cli-hook", out)
        self.assertIn("signing secret", err)
        rc, out, err = self.server.cli("notifications", "channels", "add", "--url", self.hook.url)
        self.assertEqual(rc, 2)

    def test_server_settings_are_checked(self):
        harness.assert_start_refused(self, ((["--smtp-url", "http://127.0.0.1:25"], "smtp://"),
                            (["--smtp-url", "smtp://mail.example.com:25", "--smtp-from", "a@b.c",
                              "--smtp-starttls", "off"], "loopback"),
                            (["--smtp-url", "smtp://127.0.0.1:25"], "--smtp-from"),
                            (["--notify-interval", "often"], "--notify-interval")))


if __name__ == "__main__":
    unittest.main()
