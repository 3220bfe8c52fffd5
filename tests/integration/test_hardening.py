"""Hardening of the server against abuse (issue 6, item 5; docs/server.md "Limits").

- Security headers on every answer (success and error): no-store, nosniff, DENY framing, a CSP that allows
  nothing, no referrer; HSTS over TLS only.
- A slowloris attack (many connections from another loopback address, each sending one byte a second and never
  finishing its headers) does not stop normal requests from being answered promptly, and the per-address cap
  keeps the attacker's connections bounded: connections beyond it are closed at once.
- An idle connection is closed after --idle-timeout.
- Request headers over the server's memory limit get an error answer (or a close), never a crash, and the server
  keeps serving; a request line with a huge path likewise.
- Limit settings are validated at start.
"""

import socket
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
