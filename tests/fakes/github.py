#!/usr/bin/env python3
"""A local stand-in for the parts of GitHub's REST API that Coffer's GitHub sync destination uses.

It answers as the documented API does (paths, status codes, error bodies, headers, pagination,
secondary rate limits), keeps real state (apps and their installations, installation tokens that
expire, fine-grained personal access tokens with an expiry, repositories with Actions secrets and
environment secrets), and records every request. Python standard library only: the RS256 App JWT
is verified with plain modular arithmetic against the registered public key, and sealed boxes are
opened with libsodium (Coffer's own dependency) through ctypes.

    python3 tests/fakes/github.py --port 0 [--port-file F] [--log F]

prints the bound port on stdout (and writes it to F). Every request is appended to the log as one
JSON line (method, path, query, headers without the Authorization value, the authenticated
principal, status, and a body whose encrypted values are replaced by the SHA-256 of the plaintext
they carry), so tests can assert on what was sent without the log holding a secret.

Control API (for tests; not part of GitHub's API), JSON in and out:
    POST /_fake/repos       {"owner", "repo", "environments": [names]}
    POST /_fake/apps        {"appId", "publicKey" (PEM), "installations": [{"id", "permissions":
                            {"secrets": "write", ...}, "repositories": ["owner/repo"],
                            "tokenTtl": seconds (default 3600)}]}
    POST /_fake/pats        {"permissions", "repositories", "expiresIn": seconds or null}
                            -> {"token"}
    POST /_fake/revoke      {"token"}      the token answers 401 from now on
    POST /_fake/expire      {"token"}      the token's expiry moves to now
    POST /_fake/throttle    {"count", "status": 429 | 403, "retryAfter": seconds}
    GET  /_fake/secrets?owner=&repo=[&env=]   {"NAME": {"value", "created_at", "updated_at"}}
    POST /_fake/secrets     {"owner", "repo", ["env"], "name", "value"}   seed a secret
    GET  /_fake/log         the request log as a JSON array
    GET  /_fake/tokens      {"minted": number of installation tokens minted so far}
"""

import argparse
import base64
import ctypes
import ctypes.util
import hashlib
import json
import os
import re
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DOCS = "https://docs.github.com/rest"
API_VERSIONS = {"2022-11-28", "2026-03-10"}

# ---- libsodium through ctypes: X25519 key pairs and sealed boxes (crypto_box_seal) ------------

_SODIUM = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
if _SODIUM.sodium_init() < 0:
    raise SystemExit("github.py: libsodium failed to initialise")
_SEALBYTES = 48  # crypto_box_SEALBYTES: an ephemeral public key and a MAC


def box_keypair():
    pk = ctypes.create_string_buffer(32)
    sk = ctypes.create_string_buffer(32)
    _SODIUM.crypto_box_keypair(pk, sk)
    return pk.raw, sk.raw


def seal_open(ciphertext, pk, sk):
    """The plaintext of a sealed box, or None when it does not open with this key pair."""
    if len(ciphertext) < _SEALBYTES:
        return None
    out = ctypes.create_string_buffer(len(ciphertext) - _SEALBYTES + 1)
    rc = _SODIUM.crypto_box_seal_open(out, ciphertext, ctypes.c_ulonglong(len(ciphertext)), pk, sk)
    return out.raw[: len(ciphertext) - _SEALBYTES] if rc == 0 else None


# ---- RS256 verification (RFC 7518 3.3: RSASSA-PKCS1-v1_5 with SHA-256) --------------------------


def _der(data, pos):
    """(tag, content, next position) of the DER element at pos."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    return tag, data[pos : pos + length], pos + length


def rsa_public_key(pem):
    """(n, e) of a PEM "PUBLIC KEY" (SubjectPublicKeyInfo) or "RSA PUBLIC KEY" (PKCS #1)."""
    body = "".join(l for l in pem.strip().splitlines() if not l.startswith("-----"))
    der = base64.b64decode(body)
    _, seq, _ = _der(der, 0)
    if "RSA PUBLIC KEY" not in pem:
        _, _, pos = _der(seq, 0)  # AlgorithmIdentifier
        _, bits, _ = _der(seq, pos)  # BIT STRING: unused-bits byte, then RSAPublicKey
        _, seq, _ = _der(bits[1:], 0)
    _, n, pos = _der(seq, 0)
    _, e, _ = _der(seq, pos)
    return int.from_bytes(n, "big"), int.from_bytes(e, "big")


_SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


def rs256_valid(signing_input, signature, key):
    n, e = key
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:
        return False
    em = pow(int.from_bytes(signature, "big"), e, n).to_bytes(k, "big")
    digest = _SHA256_PREFIX + hashlib.sha256(signing_input).digest()
    expected = b"\x00\x01" + b"\xff" * (k - 3 - len(digest)) + b"\x00" + digest
    return secrets.compare_digest(em, expected)


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


# ---- state ------------------------------------------------------------------------------------

# Secret names: https://docs.github.com/en/actions/security-for-github-actions/security-guides/
# using-secrets-in-github-actions#naming-your-secrets - alphanumeric characters or underscores,
# not starting with GITHUB_ nor with a number, not case-sensitive (GitHub stores them upper case).
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Scope:
    """A repository's or an environment's secrets and the key pair they are sealed with."""

    def __init__(self):
        self.pk, self.sk = box_keypair()
        self.key_id = str(secrets.randbelow(10**18) + 10**17)
        self.secrets = {}  # NAME -> {"value", "created_at", "updated_at"}


class State:
    def __init__(self, log_path):
        self.lock = threading.Lock()
        self.log_path = log_path
        self.log = []
        self.repos = {}  # "owner/repo" (lower case) -> {"scope": Scope, "envs": {name: Scope}}
        self.apps = {}  # app id (str) -> (n, e)
        self.installations = {}  # id (str) -> {"app", "permissions", "repositories", "ttl"}
        self.tokens = {}  # token -> {"kind", "permissions", "repositories", "expires", "revoked"}
        self.minted = 0
        self.throttle = {"count": 0, "status": 429, "retry_after": 1}

    def record(self, entry):
        line = json.dumps(entry, sort_keys=True)
        self.log.append(entry)
        if self.log_path:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(line + "\n")


class Reply(Exception):
    def __init__(self, status, body=None, headers=None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def error(status, message, headers=None):
    body = {"message": message, "documentation_url": DOCS}
    if status in (401, 403, 404, 422):
        body["status"] = str(status)
    return Reply(status, body, headers)


class Handler(BaseHTTPRequestHandler):
    server_version = "GitHub.com"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    # -- plumbing --

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status, body=None, headers=None):
        data = b"" if body is None or status == 204 else json.dumps(body).encode()
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _handle(self, method):
        state = self.server.state
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        raw = self._body()
        entry = {
            "method": method,
            "path": url.path,
            "query": {k: v[-1] for k, v in query.items()},
            "headers": {},
        }
        for k, v in self.headers.items():
            if k.lower() == "authorization":
                v = v.split(" ", 1)[0] + " <redacted>"
            entry["headers"][k.lower()] = v
        status, body, headers = 500, None, {}
        try:
            with state.lock:
                if url.path.startswith("/_fake/"):
                    status, body = self._control(state, method, url.path, query, raw)
                else:
                    entry["body"] = self._logged_body(raw)
                    status, body, headers = self._api(state, method, url, query, raw, entry)
        except Reply as r:
            status, body, headers = r.status, r.body, r.headers
        if not url.path.startswith("/_fake/"):
            entry["status"] = status
            with state.lock:
                state.record(entry)
        self._send(status, body, headers)

    def _logged_body(self, raw):
        if not raw:
            return None
        try:
            doc = json.loads(raw)
        except ValueError:
            return {"unparsed_sha256": sha256_hex(raw)}
        if isinstance(doc, dict) and "encrypted_value" in doc:
            doc = dict(doc)
            doc["encrypted_value"] = "sha256:" + sha256_hex(str(doc["encrypted_value"]).encode())
        return doc

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")

    def do_PATCH(self):
        self._handle("PATCH")

    # -- authentication --

    def _verify_jwt(self, state, jwt):
        """The app id of a valid App JWT, or a 401 as GitHub words it. Documented rules:
        https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/
        generating-a-json-web-token-jwt-for-a-github-app - RS256, iss = the app's client ID or
        app ID, iat (60 s in the past is advised against clock drift), exp at most 10 minutes
        after iat."""
        parts = jwt.split(".")
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            signature = b64url_decode(parts[2])
        except (ValueError, IndexError):
            raise error(401, "A JSON web token could not be decoded")
        if len(parts) != 3 or header.get("alg") != "RS256":
            raise error(401, "A JSON web token could not be decoded")
        app = str(claims.get("iss", ""))
        key = state.apps.get(app)
        if key is None:
            raise error(401, "Integration not found")
        if not rs256_valid((parts[0] + "." + parts[1]).encode(), signature, key):
            raise error(401, "A JSON web token could not be decoded")
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or iat > now + 60:
            raise error(
                401,
                "'Issued at' claim ('iat') must be an Integer representing the time that the "
                "assertion was issued.",
            )
        if not isinstance(exp, int) or exp <= now:
            raise error(
                401,
                "'Expiration time' claim ('exp') must be a numeric value representing the future "
                "time at which the assertion expires.",
            )
        if exp - iat > 600:
            raise error(401, "'Expiration time' claim ('exp') is too far in the future.")
        return app

    def _principal(self, state, entry):
        auth = self.headers.get("Authorization") or ""
        scheme, _, credential = auth.partition(" ")
        if scheme.lower() not in ("bearer", "token") or not credential:
            raise error(401, "Requires authentication")
        if credential.count(".") == 2:
            app = self._verify_jwt(state, credential)
            entry["principal"] = "app:" + app
            return {"kind": "app", "app": app}
        tok = state.tokens.get(credential)
        if tok is None or tok["revoked"] or (tok["expires"] and tok["expires"] <= time.time()):
            raise error(401, "Bad credentials")
        entry["principal"] = tok["kind"] + ":" + sha256_hex(credential.encode())[:12]
        return tok

    # -- the API --

    def _api(self, state, method, url, query, raw, entry):
        # Requests without a User-Agent are refused:
        # https://docs.github.com/en/rest/using-the-rest-api/getting-started-with-the-rest-api#user-agent
        if not self.headers.get("User-Agent"):
            raise error(
                403,
                "Request forbidden by administrative rules. Please make sure your request has a "
                "User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required).",
            )
        # An unsupported API version is a 400:
        # https://docs.github.com/en/rest/about-the-rest-api/api-versions
        version = self.headers.get("X-GitHub-Api-Version")
        if version is not None and version not in API_VERSIONS:
            raise error(400, "API version %s is not supported." % version)
        # Secondary rate limits answer 403 or 429 with Retry-After:
        # https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
        if state.throttle["count"] > 0:
            state.throttle["count"] -= 1
            raise error(
                state.throttle["status"],
                "You have exceeded a secondary rate limit. Please wait a few minutes before you "
                "try again.",
                {"Retry-After": str(state.throttle["retry_after"])},
            )
        principal = self._principal(state, entry)
        path = url.path

        # POST /app/installations/{installation_id}/access_tokens
        # https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app
        m = re.fullmatch(r"/app/installations/([^/]+)/access_tokens", path)
        if m:
            if method != "POST":
                raise error(404, "Not Found")
            if principal["kind"] != "app":
                raise error(
                    401,
                    "A JSON web token could not be decoded",
                )
            inst = state.installations.get(m.group(1))
            if inst is None or inst["app"] != principal["app"]:
                raise error(404, "Not Found")
            token = "ghs_" + secrets.token_urlsafe(27)
            expires = int(time.time()) + inst["ttl"]
            state.tokens[token] = {
                "kind": "installation",
                "permissions": dict(inst["permissions"]),
                "repositories": list(inst["repositories"]),
                "expires": expires,
                "revoked": False,
            }
            state.minted += 1
            # 201: {"token", "expires_at" (one hour later), "permissions", "repository_selection"}
            return (
                201,
                {
                    "token": token,
                    "expires_at": iso(expires),
                    "permissions": dict(inst["permissions"]),
                    "repository_selection": "selected",
                },
                {},
            )

        if principal["kind"] == "app":
            # An App JWT only reaches the /app endpoints.
            raise error(403, "Resource not accessible by integration")

        # GET /user: https://docs.github.com/en/rest/users/users#get-the-authenticated-user
        # (fine-grained tokens need no permission for it; installation tokens are refused)
        if path == "/user" and method == "GET":
            if principal["kind"] != "pat":
                raise error(403, "Resource not accessible by integration")
            headers = {}
            if principal["expires"]:
                # Tokens with an expiry carry it in this header:
                # https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api
                headers["GitHub-Authentication-Token-Expiration"] = time.strftime(
                    "%Y-%m-%d %H:%M:%S UTC", time.gmtime(principal["expires"])
                )
            return 200, {"login": "octocat", "id": 1, "type": "User"}, headers

        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/actions/secrets(/.*)?", path)
        env = None
        if m:
            owner, repo, rest = m.group(1), m.group(2), m.group(3) or ""
        else:
            m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/environments/([^/]+)/secrets(/.*)?", path)
            if not m:
                raise error(404, "Not Found")
            owner, repo, env, rest = m.group(1), m.group(2), m.group(3), m.group(4) or ""
        full = (owner + "/" + repo).lower()
        repo_state = state.repos.get(full)
        if repo_state is None or full not in [r.lower() for r in principal["repositories"]]:
            raise error(404, "Not Found")
        if env is not None:
            env = urllib.parse.unquote(env)
            scope = repo_state["envs"].get(env)
            if scope is None:
                raise error(404, "Not Found")
        else:
            scope = repo_state["scope"]
        # Repository secrets need the "secrets" permission, environment secrets "environments"
        # (read to list and read the key, write to create, update and delete), for installation
        # tokens and fine-grained tokens alike.
        level = principal["permissions"].get("secrets" if env is None else "environments")
        write = method in ("PUT", "DELETE")
        if level not in ("read", "write") or (write and level != "write"):
            who = "integration" if principal["kind"] == "installation" else "personal access token"
            raise error(403, "Resource not accessible by " + who)

        # GET .../actions/secrets/public-key, GET .../environments/{env}/secrets/public-key
        # https://docs.github.com/en/rest/actions/secrets#get-a-repository-public-key
        # https://docs.github.com/en/rest/actions/secrets#get-an-environment-public-key
        if rest == "/public-key" and method == "GET":
            return 200, {"key_id": scope.key_id, "key": base64.b64encode(scope.pk).decode()}, {}

        # GET .../secrets?per_page=&page= with Link headers
        # https://docs.github.com/en/rest/actions/secrets#list-repository-secrets
        # https://docs.github.com/en/rest/actions/secrets#list-environment-secrets
        # https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api
        if rest == "" and method == "GET":
            try:
                per_page = min(max(int(query.get("per_page", ["30"])[-1]), 1), 100)
                page = max(int(query.get("page", ["1"])[-1]), 1)
            except ValueError:
                raise error(422, "Invalid request.")
            names = sorted(scope.secrets)
            chunk = names[(page - 1) * per_page : page * per_page]
            last = max((len(names) + per_page - 1) // per_page, 1)
            base = "http://%s%s" % (self.headers.get("Host"), path)
            links = []
            if page < last:
                links.append('<%s?per_page=%d&page=%d>; rel="next"' % (base, per_page, page + 1))
                links.append('<%s?per_page=%d&page=%d>; rel="last"' % (base, per_page, last))
            if page > 1:
                links.append('<%s?per_page=%d&page=%d>; rel="prev"' % (base, per_page, page - 1))
                links.append('<%s?per_page=%d&page=1>; rel="first"' % (base, per_page))
            body = {
                "total_count": len(names),
                "secrets": [
                    {
                        "name": n,
                        "created_at": iso(scope.secrets[n]["created_at"]),
                        "updated_at": iso(scope.secrets[n]["updated_at"]),
                    }
                    for n in chunk
                ],
            }
            return 200, body, ({"Link": ", ".join(links)} if links else {})

        name = urllib.parse.unquote(rest[1:]) if rest.startswith("/") else ""
        if not name or "/" in name:
            raise error(404, "Not Found")
        key = name.upper()

        # GET/PUT/DELETE .../secrets/{secret_name}
        # https://docs.github.com/en/rest/actions/secrets#get-a-repository-secret
        # https://docs.github.com/en/rest/actions/secrets#create-or-update-a-repository-secret
        # https://docs.github.com/en/rest/actions/secrets#delete-a-repository-secret
        # (and the environment forms: #get-an-environment-secret, ...)
        if method == "GET":
            s = scope.secrets.get(key)
            if s is None:
                raise error(404, "Not Found")
            return (
                200,
                {"name": key, "created_at": iso(s["created_at"]), "updated_at": iso(s["updated_at"])},
                {},
            )
        if method == "DELETE":
            if scope.secrets.pop(key, None) is None:
                raise error(404, "Not Found")
            return 204, None, {}
        if method == "PUT":
            if not NAME_RE.match(name) or key.startswith("GITHUB_"):
                raise error(
                    422,
                    "Secret names can only contain alphanumeric characters ([a-z], [A-Z], [0-9]) "
                    "or underscores (_). Spaces are not allowed. Must start with a letter ([a-z], "
                    "[A-Z]) or underscores (_). Must not start with GITHUB_.",
                )
            try:
                doc = json.loads(raw)
            except ValueError:
                raise error(400, "Problems parsing JSON")
            if not isinstance(doc, dict) or "key_id" not in doc:
                raise error(422, "Invalid request.\n\n\"key_id\" wasn't supplied.")
            if "encrypted_value" not in doc:
                raise error(422, "Invalid request.\n\n\"encrypted_value\" wasn't supplied.")
            if str(doc["key_id"]) != scope.key_id:
                raise error(422, "Bad request - invalid key_id")
            try:
                sealed = base64.b64decode(doc["encrypted_value"], validate=True)
            except (ValueError, TypeError):
                raise error(422, "Bad request - encrypted_value is not valid base64")
            plain = seal_open(sealed, scope.pk, scope.sk)
            if plain is None:
                raise error(422, "Bad request - failed to decrypt encrypted_value")
            entry["body"]["value_sha256"] = sha256_hex(plain)
            now = time.time()
            s = scope.secrets.get(key)
            if s is None:
                scope.secrets[key] = {"value": plain, "created_at": now, "updated_at": now}
                return 201, {}, {}
            s["value"], s["updated_at"] = plain, now
            return 204, None, {}
        raise error(404, "Not Found")

    # -- the control API --

    def _control(self, state, method, path, query, raw):
        doc = json.loads(raw) if raw else {}
        if path == "/_fake/repos" and method == "POST":
            full = (doc["owner"] + "/" + doc["repo"]).lower()
            r = state.repos.setdefault(full, {"scope": Scope(), "envs": {}})
            for env in doc.get("environments", []):
                r["envs"].setdefault(env, Scope())
            return 201, {}
        if path == "/_fake/apps" and method == "POST":
            state.apps[str(doc["appId"])] = rsa_public_key(doc["publicKey"])
            for inst in doc.get("installations", []):
                state.installations[str(inst["id"])] = {
                    "app": str(doc["appId"]),
                    "permissions": inst.get("permissions", {}),
                    "repositories": inst.get("repositories", []),
                    "ttl": int(inst.get("tokenTtl", 3600)),
                }
            return 201, {}
        if path == "/_fake/pats" and method == "POST":
            token = "github_pat_" + secrets.token_urlsafe(60)
            expires_in = doc.get("expiresIn")
            state.tokens[token] = {
                "kind": "pat",
                "permissions": doc.get("permissions", {}),
                "repositories": doc.get("repositories", []),
                "expires": int(time.time() + expires_in) if expires_in else None,
                "revoked": False,
            }
            return 201, {"token": token}
        if path in ("/_fake/revoke", "/_fake/expire") and method == "POST":
            tok = state.tokens.get(doc.get("token", ""))
            if tok is None:
                return 404, {"message": "no such token"}
            if path == "/_fake/revoke":
                tok["revoked"] = True
            else:
                tok["expires"] = int(time.time())
            return 200, {}
        if path == "/_fake/throttle" and method == "POST":
            state.throttle = {
                "count": int(doc.get("count", 1)),
                "status": int(doc.get("status", 429)),
                "retry_after": int(doc.get("retryAfter", 1)),
            }
            return 200, {}
        if path == "/_fake/secrets":
            if method == "POST":
                q = {k: [v] for k, v in doc.items()}
            else:
                q = query
            full = (q["owner"][-1] + "/" + q["repo"][-1]).lower()
            r = state.repos.get(full)
            if r is None:
                return 404, {"message": "no such repository"}
            env = q.get("env", [None])[-1]
            scope = r["envs"].get(env) if env else r["scope"]
            if scope is None:
                return 404, {"message": "no such environment"}
            if method == "POST":
                now = time.time()
                scope.secrets[doc["name"].upper()] = {
                    "value": doc["value"].encode(),
                    "created_at": now,
                    "updated_at": now,
                }
                return 201, {}
            return 200, {
                n: {
                    "value": s["value"].decode("utf-8", "replace"),
                    "created_at": iso(s["created_at"]),
                    "updated_at": iso(s["updated_at"]),
                }
                for n, s in scope.secrets.items()
            }
        if path == "/_fake/log" and method == "GET":
            return 200, state.log
        if path == "/_fake/tokens" and method == "GET":
            return 200, {"minted": state.minted}
        return 404, {"message": "unknown control route"}


def main():
    parser = argparse.ArgumentParser(description="a local stand-in for GitHub's REST API")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--log", help="append the request log to this JSON-lines file")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = State(args.log)
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    print(port, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
