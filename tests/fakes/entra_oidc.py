#!/usr/bin/env python3
"""A loopback stand-in for Microsoft Entra ID's v2.0 OpenID Connect endpoints, for Coffer's single sign-on
tests (Python standard library only; RSA signatures with keys made by `openssl genrsa` and Python's pow).

    GET  /{tenant}/v2.0/.well-known/openid-configuration   the discovery document
    GET  /discovery/v2.0/keys                              the JWKS (also /{tenant}/discovery/v2.0/keys)
    GET  /{tenant}/oauth2/v2.0/authorize                   signs in the user named by the cookie
                                                           fake_entra_user (or login_hint) and redirects to
                                                           redirect_uri with code and state
    POST /{tenant}/oauth2/v2.0/token                       authorization_code grant: client secret or
                                                           client assertion, PKCE S256, redirect_uri,
                                                           single-use short-lived codes; client_credentials
                                                           grant (scope .../.default) for Graph
    POST /v1.0/users/{oid}/getMemberGroups                 Microsoft Graph: the user's group ids (the app
                                                           token of the client_credentials grant)
    /_fake/...                                             control API for tests (below)

Run: python3 tests/fakes/entra_oidc.py --port 0 [--state-dir D]; prints the bound port on stdout. Requests
(not /_fake/ ones) are kept for GET /_fake/log with client_secret, code, code_verifier and tokens redacted.

Control API:
    POST /_fake/entra/apps   {"tenant","clientId","secret","certificate","redirectUris":[...]}   registers (or
                             replaces) an app; certificate (PEM): client assertions signed by its key are
                             accepted (aud the token endpoint, iss = sub = clientId, exp, a jti used once)
    POST /_fake/entra/users  {"tenant","login","oid","email","name","groups":[...],"deny":bool,"extraClaims":{}}
                             a user who can sign in; deny: the sign-in is refused (AADSTS50105); extraClaims
                             are added to its ID tokens (another provider's group claim)
    POST /_fake/entra/config {"issuerMode":"entra"|"self","codeTtl":S,"tokenOutage":status,"faults":{...}}
                             tokenOutage: the token endpoint answers status with an HTML page; faults (until changed):
                             wrongAudience, expired (exp an hour ago), wrongKey (signed by an unpublished key
                             under the published kid), nonce (this value instead), noNonce, tid (this tenant
                             id in the token), pkceMismatch (the code remembers another challenge);
                             graphThrottle {"count":N,"retryAfter":S}: the next N Graph calls answer 429 with
                             Retry-After S; graphDenied: Graph answers 403 Authorization_RequestDenied
    GET  /_fake/log          the request log;  DELETE /_fake/log clears it

Shapes, from Microsoft's public documentation:
- discovery document and keys: https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc
  (issuer https://login.microsoftonline.com/{tid}/v2.0; jwks_uri .../discovery/v2.0/keys, keys carrying kid,
  x5t, n, e and issuer).
- authorize and token requests, the success answer (token_type, scope, expires_in, access_token, id_token) and
  the error answer {error, error_description, error_codes, timestamp, trace_id, correlation_id, error_uri}:
  https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow and the sample error response in
  https://learn.microsoft.com/entra/identity-platform/reference-error-codes (error_description is
  "AADSTSnnnnn: text\\r\\nTrace ID: ...\\r\\nCorrelation ID: ...\\r\\nTimestamp: ...").
- ID token claims (aud, iss, iat, nbf, exp, name, nonce, oid, preferred_username, sub (pairwise per
  application), tid, uti, ver, email (when the user has one), groups, and the overage claims _claim_names /
  _claim_sources when a user is in more than 200 groups):
  https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference
- client assertions (https://learn.microsoft.com/entra/identity-platform/certificate-credentials): checked by
  the Azure stand-in's check_assertion (700027 unknown key or bad signature or audience, 700021 iss/sub not the
  client id, 700024 outside its time range); a jti presented twice is refused here as 700027 too (the code
  Entra uses for a replayed assertion is not in the public documentation).
- client credentials grant: https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
- Graph getMemberGroups (POST {"securityEnabledOnly"} -> {"value": [ids]}):
  https://learn.microsoft.com/graph/api/directoryobject-getmembergroups ; errors {"error": {"code", "message",
  "innerError"}} and 429 with Retry-After: https://learn.microsoft.com/graph/errors,
  https://learn.microsoft.com/graph/throttling
- AADSTS codes (https://learn.microsoft.com/entra/identity-platform/reference-error-codes): 50011 redirect URI
  mismatch, 50105 user not assigned to the application, 54005 code already redeemed, 70008 code expired,
  7000215 invalid client secret, 700016 application not found, 90002 tenant not found, 501481 code verifier
  does not match the code challenge, 70003 unsupported grant type. The token endpoint's answer to a
  redirect_uri that differs from the authorize request's is given here as AADSTS50011 too: its exact code is
  not in the public documentation.
"""

import argparse
import hashlib
import http.server
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

import azure  # the Azure stand-in beside this file: request plumbing, base64url, the DER reader
from azure import Reply, b64url, der_items

LOCK = threading.Lock()
STATE = {
    "tenants": {},      # tid -> {"domains": [...], "apps": {clientId: app}, "users": {login: user}}
    "codes": {},        # code -> grant
    "issuerMode": "entra",
    "codeTtl": 600,
    "faults": {},
    "tokenOutage": 0,   # a status the token endpoint answers with an HTML page instead (0: none)
    "graphThrottle": {"count": 0, "retryAfter": 1},
    "graphDenied": False,
    "appTokens": {},    # access token of the client_credentials grant -> {"tid", "clientId", "exp"}
    "jtis": set(),      # client assertion ids already presented
    "log": [],
}
KEYS = {}  # "published" and "unpublished": {"n","e","d","kid"}
PORT = [0]
OVERAGE_LIMIT = 200


def make_key(directory, name):
    """An RSA 2048 key by `openssl genrsa`, read from its PKCS#1 DER form: n, e, d."""
    pem = os.path.join(directory, name + ".pem")
    subprocess.run(["openssl", "genrsa", "-out", pem, "2048"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", pem, "-outform", "DER", "-traditional"], check=True,
                         capture_output=True).stdout
    fields = der_items(der_items(der)[0][1])  # RSAPrivateKey: version, n, e, d, ...
    n, e, d = (int.from_bytes(fields[i][1], "big") for i in (1, 2, 3))
    return {"n": n, "e": e, "d": d, "kid": b64url(hashlib.sha256(n.to_bytes(256, "big")).digest()[:15])}


def rs256(key, signing_input):
    """RSASSA-PKCS1-v1_5 with SHA-256."""
    k = (key["n"].bit_length() + 7) // 8
    digest_info = bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(signing_input).digest()
    em = b"\x00\x01" + b"\xff" * (k - 3 - len(digest_info)) + b"\x00" + digest_info
    return pow(int.from_bytes(em, "big"), key["d"], key["n"]).to_bytes(k, "big")


def jwt(key, kid, claims):
    header = {"typ": "JWT", "alg": "RS256", "kid": kid}
    signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
    return signing_input.decode() + "." + b64url(rs256(key, signing_input))


def base_url():
    return "http://127.0.0.1:%d" % PORT[0]


def issuer_of(tid):
    if STATE["issuerMode"] == "self":
        return "%s/%s/v2.0" % (base_url(), tid)
    return "https://login.microsoftonline.com/%s/v2.0" % tid


def aadsts_error(status, error, code, text):
    """Entra's error answer: the description carries the code, trace and correlation ids and the time."""
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    return Reply(status, {
        "error": error,
        "error_description": "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s" % (
            code, text, trace, correlation, stamp),
        "error_codes": [code],
        "timestamp": stamp,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": "https://login.microsoftonline.com/error?code=%d" % code,
    })


def find_tenant(name):
    if name in STATE["tenants"]:
        return name, STATE["tenants"][name]
    for tid, t in STATE["tenants"].items():
        if name.lower() in t["domains"]:
            return tid, t
    raise aadsts_error(400, "invalid_tenant", 90002,
                       "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are "
                       "signing into the correct cloud." % name)


REDACT = ("client_secret", "code", "code_verifier", "id_token", "access_token", "client_assertion")


class Handler(azure.Handler):
    """The Azure stand-in's request plumbing (methods, quiet log) with Entra ID's sign-in endpoints."""

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        self.query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        self.raw = self.rfile.read(length) if length else b""
        status, body, headers = 500, None, {}
        try:
            with LOCK:
                if url.path.startswith("/_fake/"):
                    raise Reply(200, self.control(url.path))
                self.route(url.path)
            raise Reply(404, {"error": "no such route"})
        except Reply as r:
            status, body, headers = r.status, r.body, r.headers
        if not url.path.startswith("/_fake/"):
            with LOCK:
                self.record(url, status)
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        self.send_response(status)
        if data and "Content-Type" not in headers:
            headers["Content-Type"] = "application/json; charset=utf-8"
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def record(self, url, status):
        form = dict(urllib.parse.parse_qsl(self.raw.decode(errors="replace"), keep_blank_values=True)) \
            if self.command == "POST" else {}
        query = dict(self.query)
        for d in (form, query):
            for k in REDACT:
                if k in d:
                    d[k] = "<redacted %d chars>" % len(d[k])
        STATE["log"].append({"method": self.command, "path": url.path, "query": query, "form": form,
                             "status": status})

    # ---- control ----

    def control(self, path):
        body = json.loads(self.raw or b"{}")
        if path == "/_fake/entra/apps":
            _, t = self.tenant_for_control(body["tenant"])
            t["apps"][body["clientId"]] = {"clientId": body["clientId"], "secret": body.get("secret"),
                                           "certificate": body.get("certificate"),
                                           "redirectUris": body["redirectUris"]}
            return {}
        if path == "/_fake/entra/users":
            _, t = self.tenant_for_control(body["tenant"])
            t["users"][body["login"]] = body
            return {}
        if path == "/_fake/entra/config":
            for k in ("issuerMode", "codeTtl", "faults", "tokenOutage", "graphThrottle", "graphDenied"):
                if k in body:
                    STATE[k] = body[k]
            return {}
        if path == "/_fake/log":
            if self.command == "DELETE":
                STATE["log"] = []
            return STATE["log"]
        raise Reply(404, {"error": "no such control"})

    def tenant_for_control(self, tid):
        t = STATE["tenants"].setdefault(tid, {"domains": [], "apps": {}, "users": {}})
        return tid, t

    # ---- Entra ----

    def route(self, path):
        parts = path.strip("/").split("/")
        if len(parts) == 4 and parts[:2] == ["v1.0", "users"] and parts[3] == "getMemberGroups" \
                and self.command == "POST":
            self.member_groups(parts[2])
        if path in ("/discovery/v2.0/keys",) or parts[1:] == ["discovery", "v2.0", "keys"]:
            self.keys()
        if len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            self.discovery(parts[0])
        if len(parts) == 4 and parts[1:3] == ["oauth2", "v2.0"]:
            if parts[3] == "authorize" and self.command == "GET":
                self.authorize(parts[0])
            if parts[3] == "token" and self.command == "POST":
                self.token(parts[0])

    def keys(self):
        key = KEYS["published"]
        raise Reply(200, {"keys": [{
            "kty": "RSA", "use": "sig", "kid": key["kid"], "x5t": key["kid"],
            "n": b64url(key["n"].to_bytes(256, "big")), "e": b64url(key["e"].to_bytes(3, "big")),
            "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0"}]})

    def discovery(self, tenant):
        tid, _ = find_tenant(tenant)
        b = base_url()
        raise Reply(200, {
            "token_endpoint": "%s/%s/oauth2/v2.0/token" % (b, tid),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                      "client_secret_basic"],
            "jwks_uri": "%s/%s/discovery/v2.0/keys" % (b, tid),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": issuer_of(tid),
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": "%s/%s/oauth2/v2.0/authorize" % (b, tid),
            "device_authorization_endpoint": "%s/%s/oauth2/v2.0/devicecode" % (b, tid),
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": "%s/%s/oauth2/v2.0/logout" % (b, tid),
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
                                 "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time",
                                 "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash",
                                 "c_hash", "email"],
            "kerberos_endpoint": "%s/%s/kerberos" % (b, tid),
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        })

    def authorize(self, tenant):
        tid, t = find_tenant(tenant)
        q = self.query
        app = t["apps"].get(q.get("client_id", ""))
        if app is None:
            raise aadsts_error(400, "unauthorized_client", 700016,
                               "Application with identifier '%s' was not found in the directory '%s'."
                               % (q.get("client_id", ""), tid))
        redirect = q.get("redirect_uri", "")
        if redirect not in app["redirectUris"]:
            # Entra shows this on its own error page: it never redirects to an unregistered address.
            raise aadsts_error(400, "invalid_request", 50011,
                               "The redirect URI '%s' specified in the request does not match the redirect "
                               "URIs configured for the application '%s'." % (redirect, q["client_id"]))

        def back(params):
            params["state"] = q.get("state", "")
            raise Reply(302, None, {"Location": redirect + "?" + urllib.parse.urlencode(params)})

        if q.get("response_type") != "code":
            back({"error": "unsupported_response_type",
                  "error_description": "AADSTS700054: response_type '%s' is not enabled for the application."
                  % q.get("response_type", "")})
        if "openid" not in q.get("scope", "").split():
            back({"error": "invalid_scope", "error_description": "AADSTS70011: The provided value for the "
                  "input parameter 'scope' isn't valid: it must include openid."})
        if q.get("code_challenge") and q.get("code_challenge_method") != "S256":
            back({"error": "invalid_request", "error_description": "AADSTS501491: Invalid "
                  "code_challenge_method: only S256 is accepted here."})
        login = q.get("login_hint") or self.cookie("fake_entra_user")
        user = t["users"].get(login or "")
        if user is None:
            raise Reply(200, b"<html><body>Sign in to your account</body></html>",
                        {"Content-Type": "text/html; charset=utf-8"})
        if user.get("deny"):
            back({"error": "access_denied", "error_description": "AADSTS50105: Your administrator has "
                  "configured the application to block users unless they are specifically granted "
                  "('assigned') access to the application. The signed in user '%s' is blocked." % login})
        code = "1.A" + secrets.token_urlsafe(48)
        challenge = q.get("code_challenge", "")
        if STATE["faults"].get("pkceMismatch"):
            challenge = b64url(hashlib.sha256(b"another verifier").digest())
        STATE["codes"][code] = {"tid": tid, "clientId": q["client_id"], "redirect": redirect, "user": login,
                                "nonce": q.get("nonce"), "challenge": challenge, "issued": time.time(),
                                "scope": q.get("scope", ""), "used": False}
        back({"code": code, "session_state": str(uuid.uuid4())})

    def cookie(self, name):
        for part in (self.headers.get("Cookie") or "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == name:
                return urllib.parse.unquote(v)
        return None

    def token(self, tenant):
        if STATE["tokenOutage"]:
            raise Reply(STATE["tokenOutage"], b"<html><body>Service unavailable</body></html>",
                        {"Content-Type": "text/html"})
        tid, t = find_tenant(tenant)
        form = dict(urllib.parse.parse_qsl(self.raw.decode(), keep_blank_values=True))
        if form.get("grant_type") not in ("authorization_code", "client_credentials"):
            raise aadsts_error(400, "unsupported_grant_type", 70003,
                               "The app requested an unsupported grant type '%s'." % form.get("grant_type"))
        client = form.get("client_id", "")
        app = t["apps"].get(client)
        if app is None:
            raise aadsts_error(400, "unauthorized_client", 700016,
                               "Application with identifier '%s' was not found in the directory '%s'."
                               % (client, tid))
        self.client_auth(app, form, tid)
        if form["grant_type"] == "client_credentials":
            self.app_token(form, tid, client)
        grant = STATE["codes"].get(form.get("code", ""))
        if grant is None or grant["clientId"] != client or grant["tid"] != tid:
            raise aadsts_error(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or "
                               "invalid.")
        if grant["used"]:
            raise aadsts_error(400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, "
                               "please retry with a new valid code or use an existing refresh token.")
        if time.time() - grant["issued"] > STATE["codeTtl"]:
            raise aadsts_error(400, "invalid_grant", 70008, "The provided authorization code or refresh token "
                               "has expired due to inactivity. Send a new interactive authorization request "
                               "for this user and resource.")
        if form.get("redirect_uri") != grant["redirect"]:
            raise aadsts_error(400, "invalid_client", 50011, "The redirect URI '%s' specified in the request "
                               "does not match the redirect URI of the authorization request."
                               % form.get("redirect_uri", ""))
        if grant["challenge"]:
            verifier = form.get("code_verifier", "")
            if b64url(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]:
                raise aadsts_error(400, "invalid_grant", 501481, "The Code_Verifier does not match the "
                                   "code_challenge supplied in the authorization request.")
        grant["used"] = True
        raise Reply(200, {"token_type": "Bearer", "scope": grant["scope"], "expires_in": 3599,
                          "ext_expires_in": 3599, "access_token": "eyJ0eXAiOiJKV1Qi." + secrets.token_urlsafe(40),
                          "id_token": self.id_token(grant, t)})

    def client_auth(self, app, form, tid):
        """The client's credential: a client assertion signed by the registered certificate's key, or the
        client secret."""
        client = app["clientId"]
        if "client_assertion" in form:
            if not app.get("certificate"):
                raise aadsts_error(401, "invalid_client", 700027, "Client assertion failed signature "
                                   "validation. [Reason - The key was not found.]")
            aud = "%s/%s/oauth2/v2.0/token" % (base_url(), tid)
            self.check_assertion(app, form, tid, expected_aud=aud)
            jti = json.loads(azure.b64url_decode(form["client_assertion"].split(".")[1])).get("jti")
            if not jti or jti in STATE["jtis"]:
                raise aadsts_error(401, "invalid_client", 700027, "Client assertion failed signature "
                                   "validation. [Reason - The assertion's jti was already used.]")
            STATE["jtis"].add(jti)
            return
        if "client_secret" not in form:
            raise aadsts_error(401, "invalid_client", 7000218, "The request body must contain the following "
                               "parameter: 'client_assertion' or 'client_secret'.")
        if not app.get("secret") or not secrets.compare_digest(form["client_secret"], app["secret"]):
            raise aadsts_error(401, "invalid_client", 7000215,
                               "Invalid client secret provided. Ensure the secret being sent in the request is "
                               "the client secret value, not the client secret ID, for a secret added to app "
                               "'%s'." % client)

    def app_token(self, form, tid, client):
        scope = form.get("scope", "")
        if not scope.endswith("/.default"):
            raise aadsts_error(400, "invalid_scope", 1002012, "The provided value for scope %s is not valid. "
                               "Client credential flows must have a scope value with /.default suffixed to the "
                               "resource identifier (application ID URI)." % scope)
        token = "eyJ0eXAiOiJKV1Qi." + secrets.token_urlsafe(40)
        STATE["appTokens"][token] = {"tid": tid, "clientId": client, "exp": time.time() + 3599}
        raise Reply(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                          "access_token": token})

    def graph_error(self, status, code, message, headers=None):
        raise Reply(status, {"error": {"code": code, "message": message, "innerError": {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), "request-id": str(uuid.uuid4()),
            "client-request-id": str(uuid.uuid4())}}}, headers or {})

    def member_groups(self, oid):
        auth = self.headers.get("Authorization", "")
        grant = STATE["appTokens"].get(auth[7:]) if auth.startswith("Bearer ") else None
        if grant is None or grant["exp"] < time.time():
            self.graph_error(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
        throttle = STATE["graphThrottle"]
        if throttle["count"] > 0:
            throttle["count"] -= 1
            self.graph_error(429, "TooManyRequests", "Too many requests are being made: try again later.",
                             {"Retry-After": str(throttle["retryAfter"])})
        if STATE["graphDenied"]:
            self.graph_error(403, "Authorization_RequestDenied",
                             "Insufficient privileges to complete the operation.")
        body = json.loads(self.raw or b"{}")
        if not isinstance(body.get("securityEnabledOnly"), bool):
            self.graph_error(400, "Request_BadRequest", "Invalid request: securityEnabledOnly is required.")
        for user in STATE["tenants"].get(grant["tid"], {}).get("users", {}).values():
            if user["oid"] == oid:
                raise Reply(200, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection("
                                  "Edm.String)", "value": list(user.get("groups") or [])})
        self.graph_error(404, "Request_ResourceNotFound", "Resource '%s' does not exist or one of its queried "
                         "reference-property objects are not present." % oid)

    def id_token(self, grant, t):
        faults = STATE["faults"]
        user = t["users"][grant["user"]]
        now = int(time.time())
        if faults.get("expired"):
            now -= 7200
        tid = faults.get("tid", grant["tid"])
        claims = {
            "aud": "00000000-0000-0000-0000-00000000dead" if faults.get("wrongAudience") else grant["clientId"],
            "iss": issuer_of(tid),
            "iat": now, "nbf": now, "exp": now + 3600,
            "name": user.get("name", ""),
            "oid": user["oid"],
            "preferred_username": user["login"],
            "rh": "0.A" + secrets.token_urlsafe(12),
            # pairwise: the same user has another sub in each application
            "sub": b64url(hashlib.sha256((user["oid"] + grant["clientId"]).encode()).digest()),
            "tid": tid,
            "uti": secrets.token_urlsafe(16),
            "ver": "2.0",
        }
        if not faults.get("noNonce") and grant["nonce"] is not None:
            claims["nonce"] = faults.get("nonce", grant["nonce"])
        if user.get("email"):
            claims["email"] = user["email"]
        groups = user.get("groups") or []
        if len(groups) > OVERAGE_LIMIT:
            claims["_claim_names"] = {"groups": "src1"}
            claims["_claim_sources"] = {"src1": {"endpoint": "https://graph.windows.net/%s/users/%s/"
                                                 "getMemberObjects" % (tid, user["oid"])}}
        elif groups:
            claims["groups"] = groups
        claims.update(user.get("extraClaims") or {})
        key = KEYS["unpublished"] if faults.get("wrongKey") else KEYS["published"]
        return jwt(key, KEYS["published"]["kid"], claims)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--state-dir")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fake-entra-keys-") as keys_dir:
        KEYS["published"] = make_key(keys_dir, "published")
        KEYS["unpublished"] = make_key(keys_dir, "unpublished")
    server = Server(("127.0.0.1", args.port), Handler)
    PORT[0] = server.server_address[1]
    print(PORT[0], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
