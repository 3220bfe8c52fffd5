#!/usr/bin/env python3
"""A receiver of Coffer's "webhook" rotation consumer (docs/rotation.md, "The webhook consumer"), written the way
a team would write its own: it checks every request's signature and timestamp, keeps what a push hands it, and
answers a verify only after it has used the credential it holds.

    python3 tests/fakes/receiver.py --port 0 [--state-dir D]
prints the bound port on stdout. Endpoints:
    POST /push      Coffer's rotation.push and rotation.verify events (verify may also come to /verify)
    POST /verify
The request shape it accepts is Coffer's (provider/webhook.h):
    X-Coffer-Signature: t=<Unix s>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the signing secret>
    X-Coffer-Event: rotation.push | rotation.verify
    X-Coffer-Delivery: <rotation id>.<generation>
    body {"event", "rotation": {"id", "name", "generation"}, "credentialId", "expiresAt", "values"?}
A bad or missing signature, or a timestamp more than 300 s away from now, gets 401 {"error": ...}; a push
stores the values by rotation id (a delivery id seen before is answered 200 and not applied twice); a verify
signs in with the held values through the OAuth 2.0 client credentials grant of the Microsoft identity platform
(POST {authority}/{tenant}/oauth2/v2.0/token, form grant_type=client_credentials, client_id, client_secret,
scope=https://graph.microsoft.com/.default; a 200 with an access_token means the secret works:
https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow#first-case-access-token-request-with-a-shared-secret)
and answers 200 only when that sign-in succeeds, else 422 {"error": ...} (the token endpoint's error code).

Control API (JSON bodies):
    POST /_fake/config   {"signingSecret", "tokenUrl" (the token endpoint), "scope"?, "clockOffset"? (seconds
                         added to the receiver's clock: a test that moves the server's test clock moves it too)}
    POST /_fake/throttle {"count": N, "retryAfter": S, "status": 429|503}  the next N events answer status with
                         Retry-After: S (a receiver shedding load), before the signature is looked at
    GET  /_fake/held     {rotationId: {"credentialId", "generation", "valuesSha256": {name: "sha256:<hex>"}}}
    GET  /_fake/log      every request: {path, event, delivery, status, reason}; never a value
"""

import argparse
import hashlib
import hmac
import http.server
import json
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

TOLERANCE_S = 300  # the replay window docs/rotation.md advises

LOCK = threading.Lock()
STATE = {"secret": None, "clock_offset": 0, "token_url": None, "scope": "https://graph.microsoft.com/.default",
         "held": {}, "deliveries": set(), "log": [], "throttle": {"count": 0}}


def sha(text):
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def signature_problem(header, body):
    """None when header signs body under the configured secret within the window, else why not."""
    fields = dict(part.split("=", 1) for part in (header or "").split(",") if "=" in part)
    if "t" not in fields or "v1" not in fields:
        return "no X-Coffer-Signature with t and v1"
    try:
        t = int(fields["t"])
    except ValueError:
        return "the signature's t is not a number"
    with LOCK:
        now = time.time() + STATE["clock_offset"]
    if abs(now - t) > TOLERANCE_S:
        return "the signature's timestamp is outside the %d s window" % TOLERANCE_S
    with LOCK:
        secret = STATE["secret"]
    if not secret:
        return "the receiver has no signing secret"
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields["v1"]):
        return "the signature does not match"
    return None


def sign_in(values):
    """(ok, reason): the client credentials grant with the held clientId and clientSecret."""
    with LOCK:
        url, scope = STATE["token_url"], STATE["scope"]
    if not url or "clientId" not in values or "clientSecret" not in values:
        return False, "nothing to sign in with"
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": values["clientId"],
                                   "client_secret": values["clientSecret"], "scope": scope}).encode()
    request = urllib.request.Request(url, data=form, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            answer = json.loads(r.read() or b"{}")
            return bool(answer.get("access_token")), "signed in"
    except urllib.error.HTTPError as e:
        try:
            answer = json.loads(e.read() or b"{}")
        except ValueError:
            answer = {}
        return False, "the token endpoint answered %d %s" % (e.code, answer.get("error", ""))
    except OSError as e:
        return False, "the token endpoint is unreachable: %s" % e


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def record(self, event, delivery, status, reason):
        with LOCK:
            STATE["log"].append({"path": self.path, "event": event, "delivery": delivery, "status": status,
                                 "reason": reason})

    def do_GET(self):
        with LOCK:
            if self.path == "/_fake/held":
                return self.answer(200, {rid: {"credentialId": h["credentialId"], "generation": h["generation"],
                                               "valuesSha256": {k: sha(v) for k, v in h["values"].items()}}
                                         for rid, h in STATE["held"].items()})
            if self.path == "/_fake/log":
                return self.answer(200, list(STATE["log"]))
        self.answer(404, {"error": "no such path"})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/_fake/config":
            config = json.loads(body)
            with LOCK:
                STATE["secret"] = config.get("signingSecret", STATE["secret"])
                STATE["token_url"] = config.get("tokenUrl", STATE["token_url"])
                STATE["scope"] = config.get("scope", STATE["scope"])
                STATE["clock_offset"] = config.get("clockOffset", STATE["clock_offset"])
            return self.answer(200, {})
        if self.path == "/_fake/throttle":
            with LOCK:
                STATE["throttle"] = json.loads(body)
            return self.answer(200, {})
        if self.path not in ("/push", "/verify"):
            return self.answer(404, {"error": "no such path"})
        event, delivery = self.headers.get("X-Coffer-Event"), self.headers.get("X-Coffer-Delivery")
        with LOCK:
            throttle = dict(STATE["throttle"])
            if throttle.get("count", 0) > 0:
                STATE["throttle"]["count"] -= 1
        if throttle.get("count", 0) > 0:
            self.record(event, delivery, throttle.get("status", 429), "throttled")
            data = b'{"error": "slow down"}'
            self.send_response(throttle.get("status", 429))
            self.send_header("Retry-After", str(throttle.get("retryAfter", 1)))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        problem = signature_problem(self.headers.get("X-Coffer-Signature"), body)
        if problem:
            self.record(event, delivery, 401, problem)
            return self.answer(401, {"error": problem})
        try:
            message = json.loads(body)
            rotation = message["rotation"]
        except (ValueError, KeyError, TypeError):
            self.record(event, delivery, 400, "not a Coffer event")
            return self.answer(400, {"error": "not a Coffer event"})
        if message.get("event") != event or delivery != "%s.%s" % (rotation["id"], rotation["generation"]):
            self.record(event, delivery, 400, "headers and body disagree")
            return self.answer(400, {"error": "headers and body disagree"})
        if event == "rotation.push":
            with LOCK:
                repeated = delivery in STATE["deliveries"]
                if not repeated:
                    STATE["deliveries"].add(delivery)
                    STATE["held"][rotation["id"]] = {"credentialId": message["credentialId"],
                                                     "generation": rotation["generation"],
                                                     "values": dict(message.get("values") or {})}
            self.record(event, delivery, 200, "repeated delivery" if repeated else "stored")
            return self.answer(200, {})
        if event == "rotation.verify":
            with LOCK:
                held = STATE["held"].get(rotation["id"])
            if not held or held["credentialId"] != message["credentialId"]:
                self.record(event, delivery, 422, "the credential asked about is not the one held")
                return self.answer(422, {"error": "the credential asked about is not the one held"})
            ok, reason = sign_in(held["values"])
            self.record(event, delivery, 200 if ok else 422, reason)
            return self.answer(200 if ok else 422, {} if ok else {"error": reason})
        self.record(event, delivery, 400, "unknown event")
        return self.answer(400, {"error": "unknown event"})

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--state-dir", help="accepted for the test harness; nothing is written")
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
