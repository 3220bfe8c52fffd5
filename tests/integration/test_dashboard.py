"""The web dashboard's files as `coffer server` serves them (docs/dashboard.md "How it is served"); the app itself is
tested in a real browser by tests/browser.

- GET / and any app route without a file extension answer index.html: text/html, Cache-Control no-store, the
  dashboard's Content-Security-Policy (scripts, styles and API calls from the server itself only, nothing inline),
  nosniff, DENY framing, no referrer; HEAD answers the same headers without a body;
- index.html carries no inline script or style (the policy would block it) and every file it names is served;
- content-hashed files under /assets/ are cached for a year (immutable) with their content type; gzip when the
  browser takes it (the same bytes once decompressed), plain otherwise; Vary: Accept-Encoding;
- a missing asset or file is a 404 JSON error naming it, never index.html; /api and /scim paths stay the API's
  (JSON 404 for an unknown route), and other methods than GET/HEAD on app paths are the API's 404/405.
"""

import gzip
import http.client
import re

import harness

DASHBOARD_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
                 "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class Dashboard(harness.ServerTestCase):
    def get(self, path, method="GET", headers=None):
        c = self.server.connection()
        try:
            c.request(method, path, headers=headers or {})
            r = c.getresponse()
            return r.status, r.headers, r.read()
        finally:
            c.close()

    def index(self):
        status, headers, body = self.get("/")
        self.assertEqual(status, 200, body[:400])
        return headers, body.decode("utf-8")

    def test_index_and_app_routes(self):
        headers, html = self.index()
        self.assertTrue(headers["Content-Type"].startswith("text/html"), headers)
        self.assertEqual(headers["Cache-Control"], "no-store")
        self.assertEqual(headers["Content-Security-Policy"], DASHBOARD_CSP)
        self.assertEqual(headers["X-Content-Type-Options"], "nosniff")
        self.assertEqual(headers["X-Frame-Options"], "DENY")
        self.assertEqual(headers["Referrer-Policy"], "no-referrer")
        self.assertIn("<!doctype html>", html.lower())
        for route in ("/projects", "/projects/0f1e2d3c-aaaa-4bbb-8ccc-123456789abc/prod", "/sign-in", "/audit"):
            status, h, body = self.get(route)
            self.assertEqual((status, body.decode()), (200, html), route)
            self.assertEqual(h["Cache-Control"], "no-store", route)
        status, h, body = self.get("/", method="HEAD")
        self.assertEqual((status, body), (200, b""))
        self.assertEqual(h["Content-Security-Policy"], DASHBOARD_CSP)

    def test_nothing_inline(self):
        _, html = self.index()
        for tag in re.findall(r"<script\b[^>]*>", html, re.I):
            self.assertRegex(tag, r'\bsrc="/', "an inline script: %s" % tag)
        for body in re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.I | re.S):
            self.assertEqual(body.strip(), "", "script body inline")
        self.assertNotRegex(html, r"<style\b", "an inline style element")
        self.assertNotRegex(html, r"\sstyle=", "an inline style attribute")
        self.assertNotRegex(html, r"\son[a-z]+=", "an inline event handler")
        self.assertNotRegex(html, r'(src|href)="(https?:)?//', "a file from another host")

    def test_assets_are_immutable_and_compressed(self):
        _, html = self.index()
        names = re.findall(r'(?:src|href)="(/assets/[^"]+)"', html)
        self.assertTrue(names, "index.html names no asset")
        for name in names:
            status, h, plain = self.get(name)
            self.assertEqual(status, 200, name)
            self.assertEqual(h["Cache-Control"], "public, max-age=31536000, immutable", name)
            self.assertIsNone(h.get("Content-Encoding"))
            kind = "text/javascript" if name.endswith(".js") else "text/css" if name.endswith(".css") else ""
            self.assertTrue(h["Content-Type"].startswith(kind), (name, h["Content-Type"]))
            self.assertEqual(h["Content-Security-Policy"], DASHBOARD_CSP)
            status, h, packed = self.get(name, headers={"Accept-Encoding": "gzip, deflate, br"})
            self.assertEqual(status, 200)
            if h.get("Content-Encoding") == "gzip":
                self.assertEqual(gzip.decompress(packed), plain, name)
                self.assertEqual(h["Vary"], "Accept-Encoding")
                self.assertLess(len(packed), len(plain))
            else:
                self.assertEqual(packed, plain)
            # a browser that refuses gzip by weight gets the plain bytes
            status, h, body = self.get(name, headers={"Accept-Encoding": "gzip;q=0, deflate"})
            self.assertEqual(status, 200)
            self.assertIsNone(h.get("Content-Encoding"), name)
            self.assertEqual(body, plain, name)

    def test_missing_files_and_the_api(self):
        for path in ("/assets/index-00000000.js", "/assets/", "/nope.png", "/projects/x/file.js"):
            status, h, body = self.get(path)
            self.assertEqual(status, 404, path)
            self.assertTrue(h["Content-Type"].startswith("application/json"), path)
            self.assertIn(b"no such file of the dashboard", body)
        for path in ("/api", "/api/", "/api/nope", "/scim/v2/Nope"):
            status, h, body = self.get(path)
            self.assertIn(status, (401, 404), (path, body))
            self.assertTrue(h["Content-Type"].startswith("application/"), path)
            self.assertNotIn(b"<html", body.lower())
        r = self.api("POST", "/projects", body={}, token=None)
        self.assertError(r, 404, None, "Route POST /projects not found")
        r = self.api("GET", "/api/status", token=None)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["Content-Security-Policy"], "default-src 'none'; frame-ancestors 'none'")
