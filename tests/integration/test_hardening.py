"""Hardening of the server against abuse (docs/server.md "Limits").

- Security headers on every answer (success and error): no-store, nosniff, DENY framing, a CSP that allows
  nothing, no referrer; HSTS over TLS only.
- A slowloris attack (many connections from another loopback address, each sending one byte a second and never
  finishing its headers) does not stop normal requests from being answered promptly, and the per-address cap
  keeps the attacker's connections bounded: connections beyond it are closed at once.
- An idle connection is closed after --idle-timeout.
- Request headers over the server's memory limit get an error answer (or a close), never a crash, and the server
  keeps serving; a request line with a huge path likewise.
- Limit settings are validated at start.
- Request framing (docs/server.md "Requests the server refuses"): conflicting or repeated Content-Length,
  Content-Length with Transfer-Encoding, a transfer coding other than chunked, bare CR or other control
  characters in a header, header names that are not tokens (space before the colon, folded lines), repeated Host,
  and malformed request lines are refused with a JSON 400 (505 for an unknown HTTP version) before any handler
  runs, and the connection is closed, so a request smuggled behind them is never served.
- Over-long request targets (414), header blocks (431) and malformed request lines get the same JSON error
  body and security headers as every other error, up to libmicrohttpd's per-connection memory; beyond it
  libmicrohttpd answers with its own static page.
"""

import json
import re

import socket
import sys
import threading
import time
import unittest

import harness

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


def can_bind(address):
    try:
        with socket.socket() as s:
            s.bind((address, 0))
        return True
    except OSError:
        return False


class Headers(harness.ServerTestCase):

    def test_security_headers_on_success_and_error(self):
        for r in (self.api("GET", "/api/v1/workspace"), self.api("GET", "/api/v1/workspace", token=None),
                  self.api("GET", "/api/nope")):
            for name, value in SECURITY_HEADERS.items():
                self.assertEqual(r.headers.get(name), value, "%s on a %d answer" % (name, r.status))
            self.assertIsNone(r.headers.get("Strict-Transport-Security"), "HSTS over plain http")

    def test_oversized_headers_and_path(self):
        conn = self.server.connection()
        try:
            conn.putrequest("GET", "/api/v1/workspace")
            conn.putheader("Authorization", "Bearer " + self.server.token)
            conn.putheader("X-Filler", "a" * 200000)
            conn.endheaders()
            resp = conn.getresponse()
            resp.read()
            self.assertGreaterEqual(resp.status, 400)
            self.assertLess(resp.status, 500)
        except (ConnectionError, OSError):
            pass  # closing the connection is an acceptable answer too
        finally:
            conn.close()
        r = self.api("GET", "/api/v3/secrets/raw/" + "k" * 100000)
        self.assertGreaterEqual(r.status, 400)
        self.assertLess(r.status, 500)
        self.assertEqual(self.api("GET", "/api/v1/workspace").status, 200, "the server stopped serving")


def exchange(host, port, raw, timeout=5):
    """Sends raw bytes on a new connection and reads until the server closes it (or timeout). Returns
    (status, headers with lower-case names, body, rest, closed): rest is whatever followed the first answer (a
    second answer means a smuggled request was served); closed says whether the server closed the connection."""
    sock = socket.create_connection((host, port), timeout=timeout)
    data, closed = b"", False
    try:
        sock.sendall(raw)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            data += chunk
    except (socket.timeout, ConnectionResetError, BrokenPipeError):
        closed = not data or isinstance(sys.exc_info()[1], ConnectionResetError)
    finally:
        sock.close()
    if b"\r\n\r\n" not in data:
        return None, {}, b"", data, closed
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    return status, headers, rest[:length], rest[length:], closed


class RawRequests(harness.ServerTestCase):
    """Helpers for requests written byte by byte."""

    def raw(self, data, timeout=5):
        return exchange(self.server.host, self.server.port, data, timeout)

    def assertJsonError(self, answer, status, what):
        got, headers, body, rest, _ = answer
        self.assertEqual(got, status, "%s: answered %r %r" % (what, got, (body or rest)[:200]))
        for name, value in SECURITY_HEADERS.items():
            self.assertEqual(headers.get(name.lower()), value, "%s: %s on the %s answer" % (what, name, status))
        self.assertTrue(headers.get("content-type", "").startswith("application/json"), what)
        self.assertTrue(headers.get("x-request-id"), what)
        doc = json.loads(body)
        self.assertEqual(doc["statusCode"], status, what)
        self.assertEqual(doc["reqId"], headers.get("x-request-id"), what)
        self.assertTrue(doc["message"], what)
        return doc

    def project_names(self):
        return {p["name"] for p in self.api("GET", "/api/v1/workspace").json["workspaces"]}


class Framing(RawRequests):
    """Finding: two conflicting Content-Length headers, bare CR in headers and the like let a request be read
    differently by a proxy in front and by Coffer (request smuggling). Each is refused with 400 before any handler
    runs (the project named in the body is not created), and the connection is closed, so the request smuggled
    after it is never answered."""

    def post(self, headers, body):
        return (b"POST /api/v2/workspace HTTP/1.1\r\nHost: coffer\r\nAuthorization: Bearer " +
                self.server.token.encode() + b"\r\nContent-Type: application/json\r\n" + headers + b"\r\n" + body)

    def test_ambiguous_framing_refused(self):
        smuggled = b"GET /api/v1/workspace HTTP/1.1\r\nHost: coffer\r\nAuthorization: Bearer " + \
            self.server.token.encode() + b"\r\n\r\n"
        cases = []
        for label, headers in (
                ("two different Content-Length", b"Content-Length: %d\r\nContent-Length: %d\r\n"),
                ("the same Content-Length twice", b"Content-Length: %d\r\nContent-Length: %d\r\n"),
                ("Content-Length and chunked", b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n"),
                ("chunked and Content-Length", b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n"),
                ("a coding before chunked", b"Transfer-Encoding: gzip, chunked\r\nContent-Length: %d\r\n"),
                ("two Transfer-Encoding", b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
                ("identity coding", b"Transfer-Encoding: identity\r\nContent-Length: %d\r\n"),
                ("bare CR in a value", b"X-Note: a\rContent-Length: 0\r\nContent-Length: %d\r\n"),
                ("bare CR ending a line", b"X-Note: a\r\rContent-Length: %d\r\n"),
                ("space before the colon", b"Content-Length : 0\r\nContent-Length: %d\r\n"),
                ("space in a header name", b"Content Length: 0\r\nContent-Length: %d\r\n"),
                ("control byte in a name", b"X-\x01Note: a\r\nContent-Length: %d\r\n"),
                ("control byte in a value", b"X-Note: a\x0bb\r\nContent-Length: %d\r\n"),
                ("DEL in a value", b"X-Note: a\x7fb\r\nContent-Length: %d\r\n"),
                ("folded line", b"X-Note: a\r\n  Content-Length: 0\r\nContent-Length: %d\r\n"),
                ("two Host", b"Host: other\r\nContent-Length: %d\r\n")):
            name = harness.unique("smuggle")
            body = json.dumps({"projectName": name}).encode()
            n = headers.count(b"%d")
            if label == "two different Content-Length":
                headers = headers % (len(body), len(body) + len(smuggled))
            elif n:
                headers = headers % ((len(body),) * n)
            if b"chunked" in headers:
                body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
            cases.append((label, name, self.post(headers, body + smuggled)))
        for label, name, request in cases:
            with self.subTest(label):
                answer = self.raw(request)
                self.assertJsonError(answer, 400, label)
                self.assertEqual(answer[3], b"", "%s: the smuggled request was answered" % label)
                self.assertTrue(answer[4], "%s: the connection was kept open after a framing error" % label)
                self.assertNotIn(name, self.project_names(), "%s: the handler ran" % label)

    def test_malformed_request_lines(self):
        for label, line, status in (("method not a token", b"G(T /api/status HTTP/1.1", 400),
                                    ("control byte in the method", b"G\x01T /api/status HTTP/1.1", 400),
                                    ("CR in the target", b"GET /api/st\ratus HTTP/1.1", 400),
                                    ("target not a path", b"GET api/status HTTP/1.1", 400),
                                    ("unknown HTTP version", b"GET /api/status HTTP/1.2", 505)):
            with self.subTest(label):
                answer = self.raw(line + b"\r\nHost: coffer\r\n\r\n")
                self.assertJsonError(answer, status, label)
                self.assertTrue(answer[4], "%s: the connection was kept open" % label)

    def test_well_formed_requests_still_served(self):
        name = harness.unique("framed")
        body = json.dumps({"projectName": name}).encode()
        answer = self.raw(self.post(b"Content-Length: %d\r\nConnection: close\r\nX-Tab: a\tb\r\n" % len(body), body))
        self.assertEqual(answer[0], 200, answer)
        name2 = harness.unique("chunked")
        body2 = json.dumps({"projectName": name2}).encode()
        answer = self.raw(self.post(b"Transfer-Encoding: chunked\r\nConnection: close\r\n",
                                    b"5\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (body2[:5], len(body2) - 5, body2[5:])))
        self.assertEqual(answer[0], 200, answer)
        self.assertEqual(self.raw(b"GET /api/status HTTP/1.0\r\n\r\n")[0], 200)
        self.assertLessEqual({name, name2}, self.project_names())


class LibraryErrors(RawRequests):
    """Finding: libmicrohttpd's own answers to over-long request targets and headers and to malformed requests
    carried none of the security headers and an HTML body. Up to libmicrohttpd's 32 KiB of per-connection
    memory, Coffer now answers them itself (414, 431, 400) in its JSON error shape."""

    def test_long_target_gets_json_414(self):
        answer = self.raw(b"GET /api/v3/secrets/raw/" + b"k" * 12000 + b" HTTP/1.1\r\nHost: coffer\r\n\r\n")
        doc = self.assertJsonError(answer, 414, "a 12 KB request target")
        self.assertIn("8192", doc["message"])

    def test_large_headers_get_json_431(self):
        for label, headers in (("one big header", b"X-Filler: " + b"a" * 20000 + b"\r\n"),
                               ("many headers", b"".join(b"X-F%d: %s\r\n" % (i, b"b" * 150) for i in range(120)))):
            with self.subTest(label):
                answer = self.raw(b"GET /api/status HTTP/1.1\r\nHost: coffer\r\n" + headers + b"\r\n")
                doc = self.assertJsonError(answer, 431, label)
                self.assertIn("16384", doc["message"])

    def test_beyond_library_memory(self):
        # What libmicrohttpd still answers itself (docs/server.md): a status that says what went wrong, a static
        # page that reflects nothing of the request, and the connection closed; the server keeps serving.
        for label, request, status in (
                ("64 KB target", b"GET /" + b"k" * 65536 + b" HTTP/1.1\r\nHost: coffer\r\n\r\n", 414),
                ("64 KB header", b"GET /api/status HTTP/1.1\r\nHost: coffer\r\nX-F: " + b"a" * 65536 + b"\r\n\r\n", 431)):
            with self.subTest(label):
                got, headers, body, rest, closed = self.raw(request)
                self.assertEqual(got, status)
                self.assertNotIn(b"kkkk", body + rest)
                self.assertNotIn(b"aaaa", body + rest)
        self.assertEqual(self.api("GET", "/api/v1/workspace").status, 200)


class TlsHeaders(unittest.TestCase):

    def test_hsts_over_tls(self):
        import tempfile
        certdir = tempfile.mkdtemp(prefix="coffer-itest-hsts-")
        cert, key = harness.make_cert(certdir)
        s = harness.Server(args=["--tls-cert", cert, "--tls-key", key])
        s.start()
        try:
            import ssl
            s.ssl_context = ssl.create_default_context(cafile=cert)
            r = s.api("GET", "/api/v1/workspace")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers.get("Strict-Transport-Security"), "max-age=31536000")
            self.assertEqual(r.headers.get("X-Frame-Options"), "DENY")
        finally:
            s.stop()
            s.cleanup()
            import shutil
            shutil.rmtree(certdir, ignore_errors=True)


@unittest.skipUnless(can_bind("127.0.0.2"), "this machine cannot bind 127.0.0.2 as a second source address")
class Slowloris(unittest.TestCase):
    PER_IP = 40
    ATTACKERS = 120

    def setUp(self):
        self.server = harness.Server(args=["--max-connections-per-ip", str(self.PER_IP), "--idle-timeout", "30"])
        self.server.start()
        self.addCleanup(self.server.cleanup)
        self.addCleanup(self.server.stop)
        self.stop = threading.Event()
        self.sockets = []
        self.addCleanup(self.close_all)

    def close_all(self):
        self.stop.set()
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass

    def attacker(self):
        s = socket.socket()
        s.bind(("127.0.0.2", 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", self.server.port))
        s.sendall(b"GET /api/v1/workspace HTTP/1.1\r\nHost: x\r\n")
        self.sockets.append(s)
        return s

    def drip(self):
        """One byte a second on every attacking connection, headers never finished."""
        while not self.stop.wait(1.0):
            for s in list(self.sockets):
                try:
                    s.send(b"X")
                except OSError:
                    pass

    def test_normal_requests_are_served_during_a_slowloris(self):
        for _ in range(self.ATTACKERS):
            try:
                self.attacker()
            except OSError:
                pass
        threading.Thread(target=self.drip, daemon=True).start()
        time.sleep(1.5)
        # Connections over the per-address cap were closed by the server at once.
        open_ones = 0
        for s in self.sockets:
            try:
                s.settimeout(0.2)
                data = s.recv(1)
                if data:  # an early answer (e.g. 503) still means the slot is not held
                    continue
            except socket.timeout:
                open_ones += 1  # still held open, waiting for the rest of its headers
            except OSError:
                pass
        self.assertLessEqual(open_ones, self.PER_IP, "the per-address cap did not hold")
        self.assertGreater(open_ones, 0, "no attacking connection was held at all: the test proves nothing")
        # Normal requests from 127.0.0.1 go on being answered promptly, for several seconds of attack.
        worst = 0.0
        for _ in range(20):
            started = time.monotonic()
            r = self.server.api("GET", "/api/v1/workspace", timeout=10)
            worst = max(worst, time.monotonic() - started)
            self.assertEqual(r.status, 200)
            time.sleep(0.15)
        self.assertLess(worst, 1.0, "a normal request waited %.2f s during the slowloris" % worst)
        self.assertTrue(self.server.alive())


class IdleTimeout(unittest.TestCase):

    def test_idle_connection_is_closed(self):
        s = harness.Server(args=["--idle-timeout", "2"])
        s.start()
        try:
            sock = socket.create_connection(("127.0.0.1", s.port))
            sock.settimeout(10)
            started = time.monotonic()
            data = sock.recv(1)  # nothing sent: the server closes it
            self.assertEqual(data, b"")
            self.assertLess(time.monotonic() - started, 8)
            sock.close()
        finally:
            s.stop()
            s.cleanup()

    def test_limit_settings_are_checked(self):
        harness.assert_start_refused(self, ((["--max-connections", "5"], "--max-connections must be"),
                            (["--max-connections-per-ip", "0"], "--max-connections-per-ip must be"),
                            (["--idle-timeout", "forever"], "--idle-timeout must be")))


if __name__ == "__main__":
    unittest.main()
