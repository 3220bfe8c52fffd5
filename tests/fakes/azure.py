#!/usr/bin/env python3
"""A local stand-in for Entra ID, Azure DevOps and Azure Key Vault, for Coffer's provider tests.

One process, routed by path prefix (so that one port serves all three):
    /entra/{tenant}/oauth2/v2.0/token      Entra ID token endpoint  (authorityHost = http://H:P/entra)
    /ado/{org}/...                         Azure DevOps             (instanceUrl   = http://H:P/ado)
    /kv/{vault}/...                        Key Vault data plane     (vaultBaseUrl  = http://H:P/kv/NAME)
    /graph/v1.0/...                        Microsoft Graph          (graphHost     = http://H:P/graph)
    /_fake/...                             control API for tests (below)

    python3 tests/fakes/azure.py --port 0 [--state-dir D] [--port-file F]
prints the bound port on stdout (and writes it to F). Every request except /_fake/ ones is appended to
D/requests.jsonl (and kept for GET /_fake/log) as {method, path, query, headers, body, status}: the
Authorization header keeps its scheme only, and every secret in a body (form fields client_secret and
client_assertion, JSON fields "value", "secret", "token", "serviceprincipalkey", "secretText") is replaced by
"sha256:<hex>" of its text.

Control API (JSON bodies):
    POST /_fake/entra/apps      {"tenant","clientId","secrets":[{"value","expiresAt"(unix s)}],
                                 "certificate": PEM, "tokenLifetime": s}
    POST /_fake/entra/expire    {"clientId"}             every secret of the app expires now
    POST /_fake/entra/propagation {"seconds"}            a secret addPassword makes works only after this
    POST /_fake/graph/applications {"tenant","objectId","appId","owners":[clientId]}  (an Entra app too)
    POST /_fake/graph/roles     {"tenant","clientId","roles":["Application.ReadWrite.OwnedBy"|...]}
    GET  /_fake/graph/state?objectId=O       its passwordCredentials: keyId, displayName, endDateTime,
                                             valueSha256
    POST /_fake/graph/outage    {"status":503|500|0,"retryAfter":S}  every Graph request answers status (with
                                 Retry-After when given) until status 0 ends the outage
    POST /_fake/ado/orgs        {"org","projects":[{"name","id"}],"principals":{clientId:[scopes]}}
    POST /_fake/ado/pats        {"org","token","scopes":[...],"expiresAt","user"}  user: the identity the PAT
                                 acts as (default "pat-user"); an Entra ID principal acts as its clientId
    POST /_fake/ado/pats/expire {"token"}  POST /_fake/ado/pats/revoke {"token"}
    POST /_fake/ado/groups      {"org","project","name","variables":{n:{"value","isSecret"}}}
    GET  /_fake/ado/groups?org=O&project=P   groups with value hashes ("valueSha256")
    POST /_fake/ado/endpoints   {"org","project","id","name","tenantId","clientId","key","roles"}  an azurerm
                                 service connection (service principal, spnKey); roles {identity: "Administrator"|
                                 "User"|"Reader"}; without roles every identity of the org is Administrator (as a
                                 project administrator is)
    POST /_fake/ado/endpoints/roles {"org","id","identity","role"}  sets (role null: removes) one role
    GET  /_fake/ado/endpoints?org=O&id=E     serviceprincipalid, keySha256, updates
    POST /_fake/ado/use-endpoint {"org","id"}  a pipeline logging in through it: 200, or 401 with the AADSTS
    POST /_fake/kv/vaults       {"vault","roles":{clientId:[role names]}}
    GET  /_fake/kv/state?vault=V             live and deleted secrets, value hashes, tags, attributes
    POST /_fake/imds/identities {"clientId"}  a managed identity of the VM (/imds/metadata/identity/oauth2/token)
    POST /_fake/kv/keys         {"vault","name"}  a new RSA-2048 key version (openssl genrsa): {"kid"}
    POST /_fake/kv/keys/enabled {"vault","name","enabled"}  enables or disables every version of the key
    POST /_fake/throttle        {"count":N,"retryAfter":S,"prefix":"/kv"}  next N matching requests 429
    GET  /_fake/log             the request log;  DELETE /_fake/log clears it
"""

import argparse
import base64
import hashlib
import http.server
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

LOCK = threading.RLock()
STATE = {
    "tenants": {},   # tenant -> {clientId -> app}
    "tokens": {},    # access token -> {clientId, tenant, resource, exp}
    "orgs": {},      # org -> {projects: [{id,name}], principals: {clientId: scopes}, groups: {id: group}}
    "pats": {},      # token -> {org, scopes, expiresAt, revoked}
    "vaults": {},    # vault -> {roles: {clientId: [roles]}, secrets: {name: [versions]}, deleted: {name: entry}}
    "applications": {},  # Graph object id -> {tenant, appId, owners}; secrets live in tenants[t][appId]
    "propagation": 0,    # seconds before a secret addPassword made is accepted by the token endpoint
    "throttle": {"count": 0, "retryAfter": 1, "prefix": "/"},
    "graph_outage": {"status": 0, "retryAfter": None},  # status 0: Graph answers normally
    "log": [],
    "next_group_id": 1,
}
LOG_FILE = None

ADO_RESOURCE = "499b84ac-1321-427f-aa17-267ca6975798"
VAULT_RESOURCE = "https://vault.azure.net"
GRAPH_RESOURCE = "https://graph.microsoft.com"
SECRET_FIELDS = {"value", "secret", "token", "client_secret", "client_assertion", "serviceprincipalkey",
                 "secretText"}


def sha(text):
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def redact(obj):
    if isinstance(obj, dict):
        return {k: (sha(v) if k in SECRET_FIELDS and isinstance(v, str) else redact(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    return obj


def now():
    return int(time.time())


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# ---- minimal X.509: the DER certificate of a PEM and its RSA public key ----

def pem_cert_der(pem):
    m = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", pem, re.S)
    return base64.b64decode("".join(m.group(1).split())) if m else None


def der_items(data):
    items, i = [], 0
    while i < len(data):
        tag, length = data[i], data[i + 1]
        i += 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(data[i:i + n], "big")
            i += n
        items.append((tag, data[i:i + length]))
        i += length
    return items


def rsa_public_key(der):
    tbs = der_items(der_items(der)[0][1])[0][1]
    fields = der_items(tbs)
    if fields[0][0] == 0xA0:
        fields = fields[1:]
    spki = der_items(fields[5][1])
    bits = spki[1][1][1:]  # BIT STRING: skip the unused-bits byte
    n, e = der_items(der_items(bits)[0][1])
    return int.from_bytes(n[1], "big"), int.from_bytes(e[1], "big")


def rs256_valid(n, e, signed, signature):
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:
        return False
    em = pow(int.from_bytes(signature, "big"), e, n).to_bytes(k, "big")
    digest_info = bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(signed).digest()
    return em == b"\x00\x01" + b"\xff" * (k - 3 - len(digest_info)) + b"\x00" + digest_info


def secret_problem(app, value):
    """None when value is a live client secret of app, else (AADSTS code, description)."""
    client = app["clientId"]
    match = [s for s in app["secrets"] if secrets.compare_digest(s["value"], value)]
    # a secret addPassword just made is unknown to the token service until it propagates: the same
    # AADSTS7000215 as a wrong secret
    if not match or match[0].get("activeAt", 0) > time.time():
        return 7000215, ("Invalid client secret provided. Ensure the secret being sent in the request is the "
                         "client secret value, not the client secret ID, for a secret added to app '%s'." % client)
    if match[0].get("expiresAt") and match[0]["expiresAt"] <= now():
        return 7000222, ("The provided client secret keys for app '%s' are expired. Visit the Azure portal to "
                         "create new keys for your app." % client)
    return None


def endpoint_login(ep):
    """Logs in as the service principal an Azure DevOps service endpoint holds: None or an AADSTS message."""
    p = ep["authorization"]["parameters"]
    app = STATE["tenants"].get(p.get("tenantid"), {}).get(p.get("serviceprincipalid"))
    if app is None:
        return "AADSTS700016: Application with identifier '%s' was not found in the directory '%s'." % (
            p.get("serviceprincipalid"), p.get("tenantid"))
    problem = secret_problem(app, p.get("serviceprincipalkey") or "")
    return "AADSTS%d: %s" % problem if problem else None


class Reply(Exception):
    def __init__(self, status, body=None, headers=None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def do_PUT(self):
        self.handle_any()

    def do_DELETE(self):
        self.handle_any()

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        self.url_path = url.path
        self.query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        self.raw = self.rfile.read(length) if length else b""
        status, body, headers = 500, None, {}
        try:
            if url.path.startswith("/_fake/"):
                result = self.control()
                raise Reply(200, result)
            self.throttle()
            if url.path.startswith("/entra/"):
                self.entra()
            elif url.path.startswith("/ado/"):
                self.ado()
            elif url.path.startswith("/kv/"):
                self.kv()
            elif url.path.startswith("/graph/"):
                self.graph()
            elif url.path == "/imds/metadata/identity/oauth2/token":
                self.imds()
            raise Reply(404, {"error": "no such route"})
        except Reply as r:
            status, body, headers = r.status, r.body, r.headers
        if not url.path.startswith("/_fake/"):
            self.record(status)
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        self.send_response(status)
        if data and "Content-Type" not in headers:
            headers["Content-Type"] = "application/json; charset=utf-8"
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def record(self, status):
        headers = {}
        for k, v in self.headers.items():
            headers[k] = v.split(" ", 1)[0] + " <redacted>" if k.lower() == "authorization" else v
        ctype = self.headers.get("Content-Type", "")
        body = None
        if self.raw and ctype.startswith("application/x-www-form-urlencoded"):
            body = redact(dict(urllib.parse.parse_qsl(self.raw.decode())))
        elif self.raw:
            try:
                body = redact(json.loads(self.raw))
            except ValueError:
                body = sha(self.raw.decode(errors="replace"))
        entry = {"time": time.time(), "method": self.command, "path": self.url_path,
                 "query": self.query, "headers": headers, "body": body, "status": status}
        with LOCK:
            STATE["log"].append(entry)
            with open(LOG_FILE, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def json_body(self):
        try:
            return json.loads(self.raw or b"null")
        except ValueError:
            return None

    def throttle(self):
        with LOCK:
            t = STATE["throttle"]
            if t["count"] > 0 and self.url_path.startswith(t["prefix"]):
                t["count"] -= 1
                if self.url_path.startswith("/graph/"):
                    # Graph's 429: its error body with code TooManyRequests and Retry-After
                    # (https://learn.microsoft.com/en-us/graph/throttling; the body as quoted in
                    # https://learn.microsoft.com/en-us/answers/questions/1138873)
                    self.graph_error(429, "TooManyRequests", "Too many requests from this application. Please "
                                     "try again later.", {"Retry-After": str(t["retryAfter"])})
                # Key Vault's 429 with Retry-After
                # (https://learn.microsoft.com/en-us/azure/key-vault/general/overview-throttling); body shape as
                # observed, no public reference for it found
                raise Reply(429, {"error": {"code": "Throttled", "message": "Request was not processed because "
                                            "too many requests were received."}},
                            {"Retry-After": str(t["retryAfter"])})

    # ---- control API ----
    def control(self):
        p, q, b = self.url_path, self.query, self.json_body()
        with LOCK:
            if p == "/_fake/entra/apps":
                app = {"clientId": b["clientId"], "secrets": b.get("secrets", []),
                       "certificate": b.get("certificate"), "tokenLifetime": b.get("tokenLifetime", 3599)}
                STATE["tenants"].setdefault(b["tenant"], {})[b["clientId"]] = app
                return {"ok": True}
            if p == "/_fake/entra/expire":
                for apps in STATE["tenants"].values():
                    if b["clientId"] in apps:
                        for s in apps[b["clientId"]]["secrets"]:
                            s["expiresAt"] = now() - 1
                return {"ok": True}
            if p == "/_fake/entra/propagation":
                STATE["propagation"] = b["seconds"]
                return {"ok": True}
            if p == "/_fake/graph/applications":
                apps = STATE["tenants"].setdefault(b["tenant"], {})
                apps.setdefault(b["appId"], {"clientId": b["appId"], "secrets": [], "certificate": None,
                                             "tokenLifetime": 3599})
                STATE["applications"][b["objectId"]] = {"tenant": b["tenant"], "appId": b["appId"],
                                                        "owners": list(b.get("owners", []))}
                return {"ok": True}
            if p == "/_fake/graph/roles":
                STATE["tenants"][b["tenant"]][b["clientId"]]["graphRoles"] = list(b["roles"])
                return {"ok": True}
            if p == "/_fake/graph/outage":
                status = int(b.get("status") or 0)
                if status not in (0, 500, 502, 503, 504):
                    raise Reply(400, {"error": "status must be 0 or a 5xx"})
                STATE["graph_outage"] = {"status": status, "retryAfter": b.get("retryAfter")}
                return {"ok": True}
            if p == "/_fake/graph/state":
                a = STATE["applications"][q["objectId"]]
                secrets_ = STATE["tenants"][a["tenant"]][a["appId"]]["secrets"]
                return {"passwordCredentials": [
                    {"keyId": x.get("keyId"), "displayName": x.get("displayName"),
                     "endDateTime": x.get("endDateTime"), "valueSha256": sha(x["value"])} for x in secrets_]}
            if p == "/_fake/ado/endpoints" and self.command == "POST":
                org = STATE["orgs"][b["org"]]
                proj = self.project_of(org, b["project"])
                ep = {"id": b.get("id") or str(uuid.uuid4()), "name": b.get("name", "azure-sc"), "type": "azurerm",
                      "url": "https://management.azure.com/", "owner": "library", "isShared": False,
                      "isReady": True, "description": "",
                      "data": {"environment": "AzureCloud", "scopeLevel": "Subscription",
                               "subscriptionId": "00000000-0000-0000-0000-000000000000",
                               "subscriptionName": "sub", "creationMode": "Manual"},
                      "authorization": {"scheme": "ServicePrincipal", "parameters": {
                          "tenantid": b["tenantId"], "serviceprincipalid": b["clientId"],
                          "authenticationType": "spnKey", "serviceprincipalkey": b["key"]}},
                      "serviceEndpointProjectReferences": [{"projectReference": {"id": proj["id"],
                                                                                 "name": proj["name"]},
                                                            "name": b.get("name", "azure-sc")}]}
                roles = b.get("roles")
                if roles is not None and any(r not in self.ENDPOINT_ROLES for r in roles.values()):
                    raise Reply(400, {"error": "roles are Administrator, User or Reader"})
                org.setdefault("endpoints", {})[ep["id"]] = ep
                org.setdefault("endpoint_roles", {})[ep["id"]] = dict(roles) if roles is not None else None
                return {"ok": True, "id": ep["id"]}
            if p == "/_fake/ado/endpoints/roles":
                org = STATE["orgs"][b["org"]]
                if b["id"] not in org.get("endpoints", {}):
                    raise Reply(404, {"error": "no such endpoint"})
                if b.get("role") is not None and b["role"] not in self.ENDPOINT_ROLES:
                    raise Reply(400, {"error": "roles are Administrator, User or Reader"})
                roles = org.setdefault("endpoint_roles", {}).get(b["id"])
                if roles is None:
                    roles = org["endpoint_roles"][b["id"]] = {}
                if b.get("role") is None:
                    roles.pop(b["identity"], None)
                else:
                    roles[b["identity"]] = b["role"]
                return {"ok": True, "roles": roles}
            if p == "/_fake/ado/endpoints":
                ep = STATE["orgs"][q["org"]]["endpoints"][q["id"]]
                prm = ep["authorization"]["parameters"]
                return {"id": ep["id"], "serviceprincipalid": prm["serviceprincipalid"],
                        "keySha256": sha(prm.get("serviceprincipalkey") or ""), "updates": ep.get("updates", 0)}
            if p == "/_fake/ado/use-endpoint":
                # a pipeline job using the service connection: it logs in with what the endpoint holds
                ep = STATE["orgs"][b["org"]]["endpoints"][b["id"]]
                problem = endpoint_login(ep)
                if problem:
                    raise Reply(401, {"ok": False, "error": problem})
                return {"ok": True}
            if p == "/_fake/ado/orgs":
                org = STATE["orgs"].setdefault(b["org"], {"projects": [], "principals": {}, "groups": {}})
                for proj in b.get("projects", []):
                    org["projects"].append({"id": proj.get("id") or str(uuid.uuid4()), "name": proj["name"]})
                org["principals"].update(b.get("principals", {}))
                return {"ok": True, "projects": org["projects"]}
            if p == "/_fake/ado/pats":
                STATE["pats"][b["token"]] = {"org": b["org"], "scopes": b.get("scopes", []),
                                             "expiresAt": b.get("expiresAt", now() + 86400), "revoked": False,
                                             "user": b.get("user", "pat-user")}
                return {"ok": True}
            if p == "/_fake/ado/pats/expire":
                STATE["pats"][b["token"]]["expiresAt"] = now() - 1
                return {"ok": True}
            if p == "/_fake/ado/pats/revoke":
                STATE["pats"][b["token"]]["revoked"] = True
                return {"ok": True}
            if p == "/_fake/ado/groups" and self.command == "POST":
                org = STATE["orgs"][b["org"]]
                proj = self.project_of(org, b["project"])
                return self.group_store(org, proj, {"name": b["name"], "variables": b["variables"],
                                                    "description": b.get("description", "")}, None)
            if p == "/_fake/ado/groups":
                org = STATE["orgs"][q["org"]]
                proj = self.project_of(org, q["project"])
                out = []
                for g in org["groups"].values():
                    if g["projectId"] == proj["id"]:
                        out.append({"id": g["id"], "name": g["name"], "description": g["description"],
                                    "variables": {k: {"isSecret": v.get("isSecret", False),
                                                      "valueSha256": sha(v.get("value") or "")}
                                                  for k, v in g["variables"].items()}})
                return out
            if p == "/_fake/kv/vaults":
                STATE["vaults"].setdefault(b["vault"], {"roles": {}, "secrets": {}, "deleted": {}})
                STATE["vaults"][b["vault"]]["roles"].update(b.get("roles", {}))
                return {"ok": True}
            if p == "/_fake/imds/identities":
                STATE.setdefault("imds", []).append(b["clientId"])
                return {"ok": True}
            if p == "/_fake/kv/keys":
                vault = STATE["vaults"][b["vault"]]
                version = uuid.uuid4().hex
                pem = subprocess.run(["openssl", "genrsa", "2048"], capture_output=True, check=True).stdout
                versions = vault.setdefault("keys", {}).setdefault(b["name"], [])
                versions.append({"version": version, "pem": pem, "enabled": True})
                return {"kid": "http://%s/kv/%s/keys/%s/%s" % (self.headers.get("Host"), b["vault"], b["name"],
                                                               version)}
            if p == "/_fake/kv/keys/enabled":
                for v in STATE["vaults"][b["vault"]]["keys"][b["name"]]:
                    v["enabled"] = bool(b["enabled"])
                return {"ok": True}
            if p == "/_fake/kv/state":
                v = STATE["vaults"][q["vault"]]
                live = {n: {"valueSha256": sha(vs[-1]["value"]), "versions": len(vs), "tags": vs[-1]["tags"],
                            "attributes": vs[-1]["attributes"]} for n, vs in v["secrets"].items()}
                return {"secrets": live, "deleted": sorted(v["deleted"])}
            if p == "/_fake/throttle":
                STATE["throttle"] = {"count": b["count"], "retryAfter": b.get("retryAfter", 1),
                                     "prefix": b.get("prefix", "/")}
                return {"ok": True}
            if p == "/_fake/log" and self.command == "DELETE":
                STATE["log"].clear()
                return {"ok": True}
            if p == "/_fake/log":
                return STATE["log"]
        raise Reply(404, {"error": "no such control route"})

    # ---- Entra ID ----
    # Token endpoint, client credentials grant, shared secret or certificate (client assertion):
    # https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow
    # Assertion format (RFC 7523, x5t / x5t#S256 header, aud = token endpoint, iss = sub = client id):
    # https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials
    # Error body {error, error_description, error_codes, timestamp, trace_id, correlation_id}:
    # https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
    def entra_error(self, status, error, code, description):
        ts = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
        trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
        raise Reply(status, {"error": error,
                             "error_description": "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\n"
                                                  "Timestamp: %s" % (code, description, trace, corr, ts),
                             "error_codes": [code], "timestamp": ts, "trace_id": trace,
                             "correlation_id": corr,
                             "error_uri": "https://login.microsoftonline.com/error?code=%d" % code})

    def entra(self):
        m = re.fullmatch(r"/entra/([^/]+)/oauth2/v2\.0/token", self.url_path)
        if not m or self.command != "POST":
            raise Reply(404, None)
        tenant = m.group(1)
        form = dict(urllib.parse.parse_qsl(self.raw.decode()))
        with LOCK:
            apps = STATE["tenants"].get(tenant)
            if apps is None:
                self.entra_error(400, "invalid_request", 90002, "Tenant '%s' not found. Check to make sure you "
                                 "have the correct tenant ID and are signing into the correct cloud." % tenant)
            if form.get("grant_type") != "client_credentials":
                self.entra_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported "
                                 "grant type.")
            client = form.get("client_id", "")
            app = apps.get(client)
            if app is None:
                self.entra_error(400, "unauthorized_client", 700016, "Application with identifier '%s' was "
                                 "not found in the directory '%s'." % (client, tenant))
            scope = form.get("scope", "")
            if not scope.endswith("/.default"):
                self.entra_error(400, "invalid_scope", 1002012, "The provided value for scope %s is not "
                                 "valid. Client credential flows must have a scope value with /.default "
                                 "suffixed to the resource identifier (application ID URI)." % scope)
            resource = scope[: -len("/.default")]
            if resource not in (ADO_RESOURCE, VAULT_RESOURCE, GRAPH_RESOURCE):
                self.entra_error(400, "invalid_resource", 500011, "The resource principal named %s was not "
                                 "found in the tenant named %s." % (resource, tenant))
            if "client_assertion" in form:
                self.check_assertion(app, form, tenant)
            elif "client_secret" in form:
                problem = secret_problem(app, form["client_secret"])
                if problem:
                    self.entra_error(401, "invalid_client", *problem)
            else:
                self.entra_error(401, "invalid_client", 7000218, "The request body must contain the following "
                                 "parameter: 'client_assertion' or 'client_secret'.")
            token = secrets.token_urlsafe(32)
            lifetime = app["tokenLifetime"]
            STATE["tokens"][token] = {"clientId": client, "tenant": tenant, "resource": resource,
                                      "exp": now() + lifetime}
        raise Reply(200, {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                          "access_token": token})

    def check_assertion(self, app, form, tenant, expected_aud=None):
        """expected_aud: the token endpoint's URL as the client must name it (default: this stand-in's)."""
        client = app["clientId"]
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            self.entra_error(400, "invalid_request", 700023, "Invalid client_assertion_type.")
        try:
            h64, c64, s64 = form["client_assertion"].split(".")
            header, claims = json.loads(b64url_decode(h64)), json.loads(b64url_decode(c64))
            signature = b64url_decode(s64)
        except ValueError:
            self.entra_error(401, "invalid_client", 50027, "JWT token is invalid or malformed.")
        der = pem_cert_der(app["certificate"] or "")
        if der is None or header.get("alg") != "RS256" or (
                header.get("x5t#S256") != b64url(hashlib.sha256(der).digest())
                and header.get("x5t") != b64url(hashlib.sha1(der).digest())):
            self.entra_error(401, "invalid_client", 700027, "Client assertion failed signature validation. "
                             "[Reason - The key was not found., Thumbprint of key used by client: '%s']"
                             % header.get("x5t", ""))
        n, e = rsa_public_key(der)
        if not rs256_valid(n, e, (h64 + "." + c64).encode(), signature):
            self.entra_error(401, "invalid_client", 700027, "Client assertion failed signature validation.")
        expected_aud = expected_aud or "http://%s/entra/%s/oauth2/v2.0/token" % (self.headers.get("Host"), tenant)
        if claims.get("aud") != expected_aud:
            self.entra_error(401, "invalid_client", 700027, "Client assertion audience claim does not match "
                             "Realm issuer.")
        if claims.get("iss") != client or claims.get("sub") != client:
            self.entra_error(401, "invalid_client", 700021, "Client assertion application identifier doesn't "
                             "match 'client_id' parameter.")
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= now() or claims.get("nbf", 0) > now() + 300:
            self.entra_error(401, "invalid_client", 700024, "Client assertion is not within its valid time "
                             "range.")

    def imds(self):
        """The managed identity token endpoint of the Azure Instance Metadata Service: GET
        /metadata/identity/oauth2/token?api-version=2018-02-01&resource=R[&client_id=C] with "Metadata: true" ->
        {"access_token", "expires_in" (a string), "expires_on", "resource", "token_type"}; errors
        {"error", "error_description"} (https://learn.microsoft.com/en-us/entra/identity/managed-identities-azure-
        resources/how-to-use-vm-token#get-a-token-using-http and #error-handling). The VM's identities are those
        registered with POST /_fake/imds/identities {"clientId"} (the first is the system-assigned one)."""
        if self.command != "GET":
            raise Reply(405, None)
        if self.headers.get("Metadata") != "true":
            raise Reply(400, {"error": "invalid_request", "error_description": "Required metadata header not specified"})
        if self.query.get("api-version") != "2018-02-01":
            raise Reply(400, {"error": "invalid_request", "error_description": "Invalid api-version"})
        resource = self.query.get("resource", "")
        with LOCK:
            identities = STATE.setdefault("imds", [])
            client = self.query.get("client_id") or (identities[0] if identities else None)
            if client is None or client not in identities:
                raise Reply(400, {"error": "invalid_request", "error_description": "Identity not found"})
            token = secrets.token_urlsafe(32)
            STATE["tokens"][token] = {"clientId": client, "tenant": "imds", "resource": resource.rstrip("/"),
                                      "exp": now() + 3600}
        raise Reply(200, {"access_token": token, "expires_in": "3600", "expires_on": str(int(now()) + 3600),
                          "resource": resource, "token_type": "Bearer"})

    def bearer(self, resource):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return None
        with LOCK:
            t = STATE["tokens"].get(auth[7:])
        if not t or t["resource"] != resource or t["exp"] <= now():
            return None
        return t

    # ---- Microsoft Graph ----
    # addPassword: POST /v1.0/applications/{id}/addPassword {"passwordCredential": {"displayName",
    #   "endDateTime"}} -> 200 passwordCredential {customKeyIdentifier, displayName, endDateTime, hint, keyId,
    #   secretText, startDateTime}
    #   https://learn.microsoft.com/en-us/graph/api/application-addpassword?view=graph-rest-1.0
    # removePassword: POST /v1.0/applications/{id}/removePassword {"keyId"} -> 204 No Content (a keyId the
    #   application does not hold: 404 Request_ResourceNotFound here; the page documents only the 204, so that
    #   answer is shape as observed, no public reference found)
    #   https://learn.microsoft.com/en-us/graph/api/application-removepassword?view=graph-rest-1.0
    # Get application ($select): https://learn.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0
    #   (passwordCredentials never carry secretText there)
    # Permissions: Application.ReadWrite.OwnedBy (the caller must own the application) or
    #   Application.ReadWrite.All / Directory.ReadWrite.All; reading also Application.Read.All / Directory.Read.All.
    # Get servicePrincipal by appId: GET /v1.0/servicePrincipals(appId='{appId}'), least privilege
    #   Application.Read.All (also OwnedBy, ReadWrite.All, Directory.*):
    #   https://learn.microsoft.com/en-us/graph/api/serviceprincipal-get?view=graph-rest-1.0
    GRAPH_WRITE_ALL = {"Application.ReadWrite.All", "Directory.ReadWrite.All"}
    GRAPH_READ_ALL = {"Application.Read.All", "Directory.Read.All"} | GRAPH_WRITE_ALL
    # Errors {"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}}}:
    #   https://learn.microsoft.com/en-us/graph/errors ; throttling 429 + Retry-After:
    #   https://learn.microsoft.com/en-us/graph/throttling
    # 500 (code generalException) and 503 (code serviceNotAvailable, "you may repeat the request after a
    #   delay, the length of which may be specified in a Retry-After header"): the same errors page.
    GRAPH_OUTAGE_CODES = {500: ("generalException", "An unspecified error has occurred."),
                          502: ("generalException", "An unspecified error has occurred."),
                          503: ("serviceNotAvailable", "The service is temporarily unavailable for maintenance "
                                                       "or is overloaded. Try the request again after a delay."),
                          504: ("generalException", "The gateway did not receive a timely response.")}

    def graph_error(self, status, code, message, headers=None):
        rid = str(uuid.uuid4())
        raise Reply(status, {"error": {"code": code, "message": message, "innerError": {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), "request-id": rid,
            "client-request-id": rid}}}, dict(headers or {}, **{"request-id": rid}))

    def graph(self):
        with LOCK:
            outage = dict(STATE["graph_outage"])
        if outage["status"]:
            code, message = self.GRAPH_OUTAGE_CODES[outage["status"]]
            self.graph_error(outage["status"], code, message,
                             {"Retry-After": str(outage["retryAfter"])} if outage["retryAfter"] is not None
                             else None)
        t = self.bearer(GRAPH_RESOURCE)
        if t is None:
            self.graph_error(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid "
                             "audience." if self.headers.get("Authorization") else "Access token is empty.")
        with LOCK:
            caller = STATE["tenants"].get(t["tenant"], {}).get(t["clientId"], {})
            roles = set(caller.get("graphRoles", []))
            m = re.fullmatch(r"/graph/v1\.0/servicePrincipals\(appId='([^']+)'\)", self.url_path)
            if m and self.command == "GET":
                if not roles & (self.GRAPH_READ_ALL | {"Application.ReadWrite.OwnedBy"}):
                    self.graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the "
                                     "operation.")
                if m.group(1) not in STATE["tenants"].get(t["tenant"], {}):
                    self.graph_error(404, "Request_ResourceNotFound", "Resource '%s' does not exist or one of "
                                     "its queried reference-property objects are not present." % m.group(1))
                raise Reply(200, {"id": str(uuid.uuid5(uuid.NAMESPACE_OID, m.group(1))), "appId": m.group(1),
                                  "displayName": m.group(1)})
            m = re.fullmatch(r"/graph/v1\.0/applications/([^/]+)(?:/(addPassword|removePassword))?",
                             self.url_path)
            if not m:
                self.graph_error(400, "BadRequest", "Resource not found for the segment '%s'."
                                 % self.url_path.rsplit("/", 1)[-1])
            object_id, action = m.group(1), m.group(2)
            a = STATE["applications"].get(object_id)
            if a is None or a["tenant"] != t["tenant"]:
                self.graph_error(404, "Request_ResourceNotFound", "Resource '%s' does not exist or one of its "
                                 "queried reference-property objects are not present." % object_id)
            owner = t["clientId"] in a["owners"]
            may_write = bool(roles & self.GRAPH_WRITE_ALL) or ("Application.ReadWrite.OwnedBy" in roles and owner)
            may_read = may_write or bool(roles & self.GRAPH_READ_ALL)
            if not (may_write if action else may_read):
                self.graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the "
                                 "operation.")
            app = STATE["tenants"][a["tenant"]][a["appId"]]
            if action is None and self.command == "GET":
                raise Reply(200, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#applications("
                                  "id,appId,passwordCredentials)/$entity", "id": object_id, "appId": a["appId"],
                                  "passwordCredentials": [self.password_view(x, False) for x in app["secrets"]
                                                          if x.get("keyId")]})
            if self.command != "POST" or action is None:
                self.graph_error(405, "Request_BadRequest", "Specified HTTP method is not allowed for the "
                                 "request target.")
            b = self.json_body()
            if action == "addPassword":
                pc = b.get("passwordCredential") if isinstance(b, dict) else None
                if not isinstance(pc, dict):
                    self.graph_error(400, "Request_BadRequest", "The request body is missing passwordCredential.")
                end = pc.get("endDateTime")
                try:
                    end_s = time.mktime(time.strptime(end[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone \
                        if end else now() + 2 * 365 * 86400
                except (TypeError, ValueError):
                    self.graph_error(400, "Request_BadRequest", "Invalid value specified for property "
                                     "'endDateTime' of resource 'PasswordCredential'.")
                value = secrets.token_urlsafe(30)
                entry = {"value": value, "expiresAt": int(end_s), "keyId": str(uuid.uuid4()),
                         "displayName": pc.get("displayName"),
                         "startDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         "endDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end_s)),
                         "activeAt": time.time() + STATE["propagation"]}
                app["secrets"].append(entry)
                raise Reply(200, dict(self.password_view(entry, True), **{
                    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.passwordCredential"}))
            key = b.get("keyId") if isinstance(b, dict) else None
            kept = [x for x in app["secrets"] if x.get("keyId") != key]
            if not key or len(kept) == len(app["secrets"]):
                self.graph_error(404, "Request_ResourceNotFound", "No password credential found with keyId "
                                 "'%s'." % key)
            app["secrets"] = kept
            raise Reply(204, None)

    @staticmethod
    def password_view(x, with_secret):
        return {"customKeyIdentifier": None, "displayName": x.get("displayName"),
                "endDateTime": x.get("endDateTime"), "hint": x["value"][:3], "keyId": x["keyId"],
                "secretText": x["value"] if with_secret else None, "startDateTime": x.get("startDateTime")}

    # ---- Azure DevOps ----
    # Variable groups (Distributed Task), api-version 7.1:
    # https://learn.microsoft.com/en-us/rest/api/azure/devops/distributedtask/variablegroups?view=azure-devops-rest-7.1
    #   GET    {org}/{project}/_apis/distributedtask/variablegroups?groupName=&$top=&continuationToken=
    #   POST   {org}/_apis/distributedtask/variablegroups                (Add)
    #   PUT    {org}/_apis/distributedtask/variablegroups/{groupId}      (Update)
    #   DELETE {org}/_apis/distributedtask/variablegroups/{groupId}?projectIds=
    # Projects: https://learn.microsoft.com/en-us/rest/api/azure/devops/core/projects?view=azure-devops-rest-7.1
    # PAT auth (Basic, empty user name):
    # https://learn.microsoft.com/en-us/azure/devops/organizations/accounts/use-personal-access-tokens-to-authenticate
    # Scopes: https://learn.microsoft.com/en-us/azure/devops/integrate/get-started/authentication/oauth#scopes
    ADO_VERSIONS = {"6.0", "7.0", "7.1", "7.1-preview.1", "7.1-preview.2", "7.2-preview.2"}
    SCOPES_READ = {"vso.variablegroups_read", "vso.variablegroups_write", "vso.variablegroups_manage"}
    SCOPES_WRITE = {"vso.variablegroups_write", "vso.variablegroups_manage"}
    SCOPES_PROJECT = {"vso.project", "vso.project_write", "vso.project_manage"}

    # Error body {"$id", "innerException", "message", "typeName", "typeKey", "errorCode", "eventId"}: shape as
    # observed (e.g. quoted in github.com/microsoft/windows-dev-center-vsts-extension/issues/77); no Microsoft
    # reference page for it found. typeName is "<namespace>.<typeKey>, <assembly>".
    def ado_error(self, status, type_key, message, namespace="Microsoft.TeamFoundation.DistributedTask.WebApi"):
        raise Reply(status, {"$id": "1", "innerException": None, "message": message,
                             "typeName": "%s.%s, %s" % (namespace, type_key, namespace),
                             "typeKey": type_key, "errorCode": 0, "eventId": 3000})

    def ado_auth(self, org):
        """The caller's scopes, or a refusal: 401 (203 with a sign-in page when the client did not send
        X-TFS-FedAuthRedirect: Suppress) for a missing, wrong, expired or revoked credential."""
        auth = self.headers.get("Authorization", "")
        scopes = None
        self.ado_identity = None
        if auth.startswith("Basic "):
            try:
                pat = base64.b64decode(auth[6:]).decode().split(":", 1)[1]
            except (ValueError, IndexError):
                pat = ""
            with LOCK:
                p = STATE["pats"].get(pat)
            if p and p["org"] == org and not p["revoked"] and p["expiresAt"] > now():
                scopes = set(p["scopes"])
                self.ado_identity = p.get("user", "pat-user")
        else:
            t = self.bearer(ADO_RESOURCE)
            if t:
                scopes = STATE["orgs"].get(org, {}).get("principals", {}).get(t["clientId"])
                scopes = set(scopes) if scopes is not None else None
                self.ado_identity = t["clientId"]
        if scopes is None:
            if self.headers.get("X-TFS-FedAuthRedirect") != "Suppress":
                raise Reply(203, b"<html><head><title>Azure DevOps Services | Sign In</title></head></html>",
                            {"Content-Type": "text/html; charset=utf-8"})
            raise Reply(401, None, {"WWW-Authenticate": "Basic realm=\"https://dev.azure.com/\""})
        return scopes

    def need_scope(self, scopes, allowed, name):
        if not scopes & allowed:
            # The scope refusal (TF400813 with the missing scope named) is modelled as a 403.
            self.ado_error(403, "UnauthorizedRequestException", "TF400813: The user is not authorized to "
                           "access this resource. The access token lacks the required scope '%s'." % name)

    def ado_version(self):
        v = self.query.get("api-version")
        if v is None:
            self.ado_error(400, "VssVersionNotSpecifiedException", "No api-version was supplied for the \"%s\" "
                           "request. The version must be supplied either as part of the Accept header (e.g. "
                           "\"application/json; api-version=1.0\") or as a query parameter (e.g. "
                           "'?api-version=1.0')." % self.command)
        if v not in self.ADO_VERSIONS:
            self.ado_error(400, "VssVersionOutOfRangeException", "The requested REST API version of %s is out of "
                           "range for this server. The latest REST API version this server supports is 7.1." % v)

    @staticmethod
    def project_of(org, name_or_id):
        for p in org["projects"]:
            if p["id"] == name_or_id or p["name"].lower() == name_or_id.lower():
                return p
        return None

    @staticmethod
    def group_view(g):
        variables = {k: ({"isSecret": True, "value": None} if v.get("isSecret") else {"value": v.get("value")})
                     for k, v in g["variables"].items()}
        return {"id": g["id"], "type": "Vsts", "name": g["name"], "description": g["description"],
                "variables": variables, "createdOn": g["createdOn"], "modifiedOn": g["modifiedOn"],
                "isShared": False,
                "variableGroupProjectReferences": [{"name": g["name"], "description": g["description"],
                                                    "projectReference": {"id": g["projectId"],
                                                                         "name": g["projectName"]}}]}

    def group_store(self, org, proj, body, existing):
        """Adds (existing None) or replaces a group from a VariableGroupParameters body."""
        name = body.get("name")
        variables = body.get("variables")
        if not name or not isinstance(variables, dict):
            self.ado_error(400, "ArgumentException", "Variable group name and variables are required.")
        if not variables:
            self.ado_error(400, "ArgumentException", "Variable group must have at least one variable.")
        for g in org["groups"].values():
            if g["projectId"] == proj["id"] and g["name"].lower() == name.lower() and g is not existing:
                self.ado_error(400, "VariableGroupExistsException",
                               "Variable group with name %s already exists." % name)
        stored = {}
        for k, v in variables.items():
            v = dict(v or {})
            old = existing["variables"].get(k) if existing else None
            # A secret variable sent back with value null (as GET shows it) keeps its stored value:
            # the model of how clients that read-modify-write a group (the portal, az cli) behave.
            if v.get("isSecret") and v.get("value") is None and old:
                v["value"] = old.get("value")
            stored[k] = {"value": v.get("value"), "isSecret": bool(v.get("isSecret"))}
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        if existing is None:
            gid = STATE["next_group_id"]
            STATE["next_group_id"] += 1
            existing = {"id": gid, "createdOn": stamp, "projectId": proj["id"], "projectName": proj["name"]}
            org["groups"][gid] = existing
        existing.update({"name": name, "description": body.get("description", ""), "variables": stored,
                         "modifiedOn": stamp})
        return self.group_view(existing)

    def ado(self):
        parts = self.url_path.split("/")[2:]
        org_name = urllib.parse.unquote(parts[0])
        with LOCK:
            org = STATE["orgs"].get(org_name)
        if org is None:
            self.ado_error(404, "AccountNotFoundException", "TF400813: Organization %s not found." % org_name)
        scopes = self.ado_auth(org_name)
        self.ado_version()
        rest = [urllib.parse.unquote(p) for p in parts[1:]]
        with LOCK:
            self.service_endpoints(org, scopes, rest)
            if rest[:2] == ["_apis", "projects"]:
                self.need_scope(scopes, self.SCOPES_PROJECT, "vso.project")
                if len(rest) == 2:
                    top = int(self.query.get("$top", "100"))
                    value = [dict(p, state="wellFormed", visibility="private") for p in org["projects"][:top]]
                    raise Reply(200, {"count": len(value), "value": value})
                proj = self.project_of(org, rest[2])
                if proj is None:
                    self.ado_error(404, "ProjectDoesNotExistWithNameException", "TF200016: The following "
                                   "project does not exist: %s. Verify that the name of the project is correct "
                                   "and that the project exists on the specified Azure DevOps Server." % rest[2])
                raise Reply(200, dict(proj, state="wellFormed", visibility="private"))
            if rest[:3] == ["_apis", "distributedtask", "variablegroups"]:
                self.need_scope(scopes, self.SCOPES_WRITE, "vso.variablegroups_manage")
                body = self.json_body() or {}
                if self.command == "POST" and len(rest) == 3:
                    refs = body.get("variableGroupProjectReferences") or []
                    ref = (refs[0].get("projectReference") or {}) if refs else {}
                    proj = self.project_of(org, ref.get("id") or ref.get("name") or "")
                    if proj is None:
                        self.ado_error(400, "ArgumentException", "A project reference is required.")
                    raise Reply(200, self.group_store(org, proj, body, None))
                if len(rest) == 4 and rest[3].isdigit():
                    g = org["groups"].get(int(rest[3]))
                    if g is None:
                        self.ado_error(404, "VariableGroupNotFoundException",
                                       "Variable group with id %s does not exist." % rest[3])
                    if self.command == "PUT":
                        proj = self.project_of(org, g["projectId"])
                        raise Reply(200, self.group_store(org, proj, body, g))
                    if self.command == "DELETE":
                        if g["projectId"] not in self.query.get("projectIds", "").split(","):
                            self.ado_error(400, "ArgumentException", "projectIds is required.")
                        del org["groups"][g["id"]]
                        raise Reply(204, None)
            if len(rest) >= 4 and rest[1:4] == ["_apis", "distributedtask", "variablegroups"] and \
                    self.command == "GET":
                self.need_scope(scopes, self.SCOPES_READ, "vso.variablegroups_read")
                proj = self.project_of(org, rest[0])
                if proj is None:
                    self.ado_error(404, "ProjectDoesNotExistWithNameException",
                                   "TF200016: The following project does not exist: %s." % rest[0])
                groups = sorted((g for g in org["groups"].values() if g["projectId"] == proj["id"]),
                                key=lambda g: -g["id"])
                if len(rest) == 5:
                    g = next((g for g in groups if str(g["id"]) == rest[4]), None)
                    raise Reply(200 if g else 404, self.group_view(g) if g else None)
                pattern = self.query.get("groupName")
                if pattern:
                    rx = re.compile("^" + ".*".join(map(re.escape, pattern.split("*"))) + "$", re.I)
                    groups = [g for g in groups if rx.match(g["name"])]
                if "continuationToken" in self.query:
                    start = int(self.query["continuationToken"])
                    groups = [g for g in groups if g["id"] <= start]
                headers = {}
                if "$top" in self.query:
                    top = int(self.query["$top"])
                    if len(groups) > top:
                        headers["x-ms-continuationtoken"] = str(groups[top]["id"])
                    groups = groups[:top]
                value = [self.group_view(g) for g in groups]
                raise Reply(200, {"count": len(value), "value": value}, headers)
        raise Reply(404, None)

    # Service endpoints, api-version 7.1:
    # https://learn.microsoft.com/en-us/rest/api/azure/devops/serviceendpoint/endpoints?view=azure-devops-rest-7.1
    #   GET {org}/{project}/_apis/serviceendpoint/endpoints/{id}  (serviceprincipalkey hidden: null; an
    #       unknown id answers 200 with an empty body)
    #   PUT {org}/_apis/serviceendpoint/endpoints/{id}            (the whole ServiceEndpoint)
    # Endpoint proxy, api-version 7.1-preview.1:
    # https://learn.microsoft.com/en-us/rest/api/azure/devops/serviceendpoint/endpointproxy/execute-service-endpoint-request?view=azure-devops-rest-7.1
    #   POST {org}/{project}/_apis/serviceendpoint/endpointproxy?endpointId=  ServiceEndpointRequest ->
    #       ServiceEndpointRequestResult {result, statusCode, errorMessage, activityId}
    # Security roles on one service connection: Reader (view it), User (use it in pipelines), Administrator
    # (manage it and its roles; its creator gets it):
    # https://learn.microsoft.com/en-us/azure/devops/pipelines/library/service-endpoints#secure-a-service-connection
    # (MicrosoftDocs/azure-devops-docs docs/organizations/security/includes/service-endpoint-roles.md). Here GET
    # needs Reader, the endpoint proxy User, PUT Administrator. A caller without any role does not see the
    # endpoint (GET answers as for an unknown id); one with too small a role gets a 403 whose body has the
    # ServiceEndpointException type Azure DevOps gives service endpoint refusals (typeName as quoted in
    # github.com/microsoft/windows-dev-center-vsts-extension/issues/77). Its wording follows the create refusal
    # quoted in github.com/microsoft/terraform-provider-azuredevops/issues/723 ("You do not have permission to
    # create a service connection. You need to be a Creator ..."): shape as observed, no public reference for
    # the update refusal's exact text found.
    SCOPES_ENDPOINTS = {"vso.serviceendpoint_manage"}
    ENDPOINT_ROLES = {"Reader": 1, "User": 2, "Administrator": 3}

    def endpoint_role(self, org, ep_id):
        """The caller's role on the endpoint: its own, else Administrator when the endpoint has no role list."""
        roles = org.get("endpoint_roles", {}).get(ep_id)
        if roles is None:
            return "Administrator"
        return roles.get(getattr(self, "ado_identity", None))

    def need_role(self, org, ep, role, action):
        have = self.endpoint_role(org, ep["id"])
        if self.ENDPOINT_ROLES.get(have, 0) < self.ENDPOINT_ROLES[role]:
            self.ado_error(403, "ServiceEndpointException",
                           "You do not have permission to %s the service connection '%s'. You need the %s role "
                           "on this service connection (your role: %s)." % (action, ep["name"], role, have or "none"),
                           "Microsoft.VisualStudio.Services.ServiceEndpoints.WebApi")

    def service_endpoints(self, org, scopes, rest):
        endpoints = org.setdefault("endpoints", {})
        if len(rest) == 5 and rest[1:4] == ["_apis", "serviceendpoint", "endpoints"] and self.command == "GET":
            self.need_scope(scopes, self.SCOPES_ENDPOINTS, "vso.serviceendpoint_manage")
            ep = endpoints.get(rest[4])
            if ep is None or self.endpoint_role(org, ep["id"]) is None:
                raise Reply(200, None)
            view = json.loads(json.dumps(ep))
            view["authorization"]["parameters"]["serviceprincipalkey"] = None
            view.pop("updates", None)
            raise Reply(200, view)
        if len(rest) == 4 and rest[:3] == ["_apis", "serviceendpoint", "endpoints"] and self.command == "PUT":
            self.need_scope(scopes, self.SCOPES_ENDPOINTS, "vso.serviceendpoint_manage")
            ep = endpoints.get(rest[3])
            b = self.json_body()
            if ep is None or self.endpoint_role(org, ep["id"]) is None:
                self.ado_error(404, "ServiceEndpointNotFoundException", "Service connection with id %s was not "
                               "found." % rest[3])
            self.need_role(org, ep, "Administrator", "update")
            if not isinstance(b, dict) or b.get("id") != ep["id"] or not isinstance(
                    (b.get("authorization") or {}).get("parameters"), dict):
                self.ado_error(400, "ArgumentException", "The service endpoint in the request body is not valid.")
            if not b["authorization"]["parameters"].get("serviceprincipalkey"):
                self.ado_error(400, "ArgumentException", "Service principal key is required.")
            b["updates"] = ep.get("updates", 0) + 1
            endpoints[ep["id"]] = b
            view = json.loads(json.dumps(b))
            view["authorization"]["parameters"]["serviceprincipalkey"] = None
            view.pop("updates", None)
            raise Reply(200, view)
        if len(rest) == 4 and rest[1:4] == ["_apis", "serviceendpoint", "endpointproxy"] and \
                self.command == "POST":
            self.need_scope(scopes, self.SCOPES_ENDPOINTS, "vso.serviceendpoint_manage")
            ep = endpoints.get(self.query.get("endpointId", ""))
            if ep is None or self.endpoint_role(org, ep["id"]) is None:
                self.ado_error(404, "ServiceEndpointNotFoundException", "Service connection with id %s was not "
                               "found." % self.query.get("endpointId", ""))
            self.need_role(org, ep, "User", "use")
            b = self.json_body() or {}
            if (b.get("dataSourceDetails") or {}).get("dataSourceName") != "TestConnection":
                self.ado_error(400, "ArgumentException", "Only the TestConnection data source is faked.")
            problem = endpoint_login(ep)
            raise Reply(200, {"result": [] if problem else ["ok"], "statusCode": "badRequest" if problem else "ok",
                              "errorMessage": ("Failed to obtain the Json Web Token(JWT) using service principal "
                                               "client ID. Exception Message: %s" % problem) if problem else "",
                              "activityId": str(uuid.uuid4())})

    # ---- Key Vault ----
    # Secrets REST API (api-version 7.5):
    # https://learn.microsoft.com/en-us/rest/api/keyvault/secrets/set-secret/set-secret
    # https://learn.microsoft.com/en-us/rest/api/keyvault/secrets/get-secret/get-secret
    # https://learn.microsoft.com/en-us/rest/api/keyvault/secrets/get-secrets/get-secrets (maxresults <= 25, nextLink)
    # https://learn.microsoft.com/en-us/rest/api/keyvault/secrets/delete-secret/delete-secret
    # https://learn.microsoft.com/en-us/rest/api/keyvault/secrets/get-deleted-secrets/get-deleted-secrets
    # https://learn.microsoft.com/en-us/rest/api/keyvault/secrets/recover-deleted-secret/recover-deleted-secret
    # https://learn.microsoft.com/en-us/rest/api/keyvault/secrets/purge-deleted-secret/purge-deleted-secret
    # Soft-delete (409 ObjectIsDeletedButRecoverable on reuse of a deleted name):
    # https://learn.microsoft.com/en-us/azure/key-vault/general/soft-delete-overview
    # Authentication challenge (401 + WWW-Authenticate: Bearer authorization=..., resource=...):
    # https://learn.microsoft.com/en-us/azure/key-vault/general/authentication-requests-and-responses
    # RBAC roles (Key Vault Secrets Officer): https://learn.microsoft.com/en-us/azure/key-vault/general/rbac-guide
    KV_VERSIONS = {"7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01"}
    NAME_RE = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
    ROLE_ACTIONS = {"Key Vault Administrator": {"get", "list", "set", "delete", "recover", "purge"},
                    "Key Vault Secrets Officer": {"get", "list", "set", "delete", "recover", "purge"},
                    "Key Vault Secrets User": {"get", "list"},
                    "Key Vault Reader": {"list"},
                    "Key Vault Crypto User": {"wrapKey", "unwrapKey"}}

    def kv_error(self, status, code, message, inner=None, headers=None):
        err = {"code": code, "message": message}
        if inner:
            err["innererror"] = {"code": inner}
        raise Reply(status, {"error": err}, headers)

    def bundle(self, base, name, v, with_value=True):
        out = {"id": "%s/secrets/%s/%s" % (base, name, v["version"]), "attributes": v["attributes"],
               "tags": v["tags"]}
        if v.get("contentType"):
            out["contentType"] = v["contentType"]
        if with_value:
            out["value"] = v["value"]
        return out

    def kv(self):
        parts = self.url_path.split("/")[2:]
        vault_name = parts[0]
        base = "http://%s/kv/%s" % (self.headers.get("Host"), vault_name)
        t = self.bearer(VAULT_RESOURCE)
        if t is None:
            challenge = 'Bearer authorization="https://login.microsoftonline.com/common", ' \
                        'resource="https://vault.azure.net"'
            self.kv_error(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token."
                          if "Authorization" not in self.headers else "AKV10022: Invalid or expired token.",
                          headers={"WWW-Authenticate": challenge})
        v = self.query.get("api-version")
        if v is None:
            self.kv_error(400, "BadParameter", "The request URI contains an invalid or missing api-version.")
        if v not in self.KV_VERSIONS:
            self.kv_error(400, "BadParameter", "The specified version (%s) is not recognized. Consider using "
                          "the latest supported version (7.5)." % v)
        with LOCK:
            vault = STATE["vaults"].get(vault_name)
            if vault is None:
                self.kv_error(404, "VaultNotFound", "Vault %s not found." % vault_name)
            rest = parts[1:]
            action = self.kv_action(rest)
            roles = vault["roles"].get(t["clientId"], [])
            if not any(action in self.ROLE_ACTIONS.get(r, ()) for r in roles):
                self.kv_error(403, "Forbidden", "Caller is not authorized to perform action on resource.\r\n"
                              "Caller: appid=%s\r\nAction: 'Microsoft.KeyVault/vaults/%s/%s'"
                              % (t["clientId"], "keys" if rest[0] == "keys" else "secrets", action),
                              "ForbiddenByRbac")
            self.kv_route(vault, base, rest)
        raise Reply(404, None)

    def kv_action(self, rest):
        if rest[0] == "keys":
            return {"wrapkey": "wrapKey", "unwrapkey": "unwrapKey"}.get(rest[-1], "get")
        if rest[0] == "secrets":
            if len(rest) == 1:
                return "list"
            return {"GET": "get", "PUT": "set", "DELETE": "delete"}.get(self.command, "get")
        if rest[0] == "deletedsecrets":
            if len(rest) == 3:
                return "recover"
            return "purge" if self.command == "DELETE" else "list"
        return "get"

    def kv_list(self, base, collection, item_of):
        names = sorted(collection)
        try:
            maxresults = int(self.query.get("maxresults", "25"))
        except ValueError:
            maxresults = 0
        if not 1 <= maxresults <= 25:
            self.kv_error(400, "BadParameter", "maxresults must be between 1 and 25.")
        skip = int(b64url_decode(self.query["$skiptoken"]).decode()) if "$skiptoken" in self.query else 0
        page = names[skip:skip + maxresults]
        next_link = None
        if skip + maxresults < len(names):
            collection_path = self.url_path.split("/", 3)[3]  # "secrets" or "deletedsecrets"
            next_link = "%s/%s?api-version=%s&$skiptoken=%s&maxresults=%d" % (
                base, collection_path, self.query["api-version"], b64url(str(skip + maxresults).encode()),
                maxresults)
        raise Reply(200, {"value": [item_of(n) for n in page], "nextLink": next_link})

    def kv_key_operation(self, vault, base, rest):
        """POST {vault}/keys/{name}[/{version}]/wrapkey|unwrapkey {"alg","value"} -> {"kid","value"}, RSA-OAEP-256
        done by the openssl CLI (https://learn.microsoft.com/en-us/rest/api/keyvault/keys/wrap-key/wrap-key,
        .../unwrap-key/unwrap-key). A disabled key is refused with 403 Forbidden, as Key Vault refuses any
        operation on it; an unknown key or version 404 KeyNotFound; a ciphertext that does not open 400."""
        if self.command != "POST" or len(rest) not in (3, 4):
            raise Reply(405, None)
        name, op = rest[1], rest[-1]
        version = rest[2] if len(rest) == 4 else None
        versions = vault.get("keys", {}).get(name, [])
        key = versions[-1] if versions and version is None else next(
            (v for v in versions if v["version"] == version), None)
        if key is None:
            self.kv_error(404, "KeyNotFound", "A key with (name/id) %s was not found in this key vault." % name)
        if not key["enabled"]:
            self.kv_error(403, "Forbidden", "Operation %s is not allowed on a disabled key." %
                          ("wrapKey" if op == "wrapkey" else "unwrapKey"))
        body = self.json_body()
        if not isinstance(body, dict) or not isinstance(body.get("value"), str):
            self.kv_error(400, "BadParameter", "Property value is required.")
        if body.get("alg") != "RSA-OAEP-256":
            self.kv_error(400, "BadParameter", "Invalid algorithm: %s" % body.get("alg"))
        data = b64url_decode(body["value"])
        with tempfile.NamedTemporaryFile() as f:
            f.write(key["pem"])
            f.flush()
            args = ["openssl", "pkeyutl", "-inkey", f.name, "-pkeyopt", "rsa_padding_mode:oaep",
                    "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256"]
            args.append("-encrypt" if op == "wrapkey" else "-decrypt")
            done = subprocess.run(args, input=data, capture_output=True)
        if done.returncode != 0:
            self.kv_error(400, "BadParameter", "The parameter is incorrect.")
        raise Reply(200, {"kid": "%s/keys/%s/%s" % (base, name, key["version"]), "value": b64url(done.stdout)})

    def kv_route(self, vault, base, rest):
        cmd = self.command
        if rest[0] == "keys":
            self.kv_key_operation(vault, base, rest)
        if rest == ["secrets"] and cmd == "GET":
            self.kv_list(base, vault["secrets"],
                         lambda n: self.bundle(base, n, vault["secrets"][n][-1], False) | {
                             "id": "%s/secrets/%s" % (base, n)})
        if rest == ["deletedsecrets"] and cmd == "GET":
            self.kv_list(base, vault["deleted"], lambda n: self.deleted_view(base, n, vault["deleted"][n], False))
        name = rest[1] if len(rest) > 1 else ""
        if not self.NAME_RE.match(name):
            self.kv_error(400, "BadParameter", "The request URI contains an invalid name: %s" % name)
        if rest[0] == "secrets" and len(rest) in (2, 3):
            if cmd == "PUT" and len(rest) == 2:
                if name in vault["deleted"]:
                    self.kv_error(409, "Conflict", "Secret %s is currently in a deleted but recoverable state, "
                                  "and its name cannot be reused; in this state, the secret can only be "
                                  "recovered or purged." % name, "ObjectIsDeletedButRecoverable")
                body = self.json_body()
                if not isinstance(body, dict) or not isinstance(body.get("value"), str):
                    self.kv_error(400, "BadParameter", "Property value is required.")
                if len(body["value"]) > 25 * 1024:
                    self.kv_error(400, "BadParameter", "Secret value is too large.")
                attrs_in = body.get("attributes") or {}
                t = now()
                versions = vault["secrets"].setdefault(name, [])
                attributes = {"enabled": attrs_in.get("enabled", True), "created": t, "updated": t,
                              "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90}
                for k in ("exp", "nbf"):
                    if k in attrs_in:
                        attributes[k] = attrs_in[k]
                v = {"version": uuid.uuid4().hex, "value": body["value"], "tags": body.get("tags") or {},
                     "contentType": body.get("contentType"), "attributes": attributes}
                versions.append(v)
                raise Reply(200, self.bundle(base, name, v))
            if cmd == "GET":
                versions = vault["secrets"].get(name)
                v = None
                if versions:
                    v = versions[-1] if len(rest) == 2 else next(
                        (x for x in versions if x["version"] == rest[2]), None)
                if v is None:
                    self.kv_error(404, "SecretNotFound", "A secret with (name/id) %s was not found in this key "
                                  "vault. If you recently deleted this secret you may be able to recover it "
                                  "using the correct recovery command." % name)
                raise Reply(200, self.bundle(base, name, v))
            if cmd == "DELETE" and len(rest) == 2:
                versions = vault["secrets"].pop(name, None)
                if versions is None:
                    self.kv_error(404, "SecretNotFound", "A secret with (name/id) %s was not found in this key "
                                  "vault." % name)
                vault["deleted"][name] = {"versions": versions, "deletedDate": now()}
                raise Reply(200, self.deleted_view(base, name, vault["deleted"][name], False))
        if rest[0] == "deletedsecrets":
            entry = vault["deleted"].get(name)
            if entry is None:
                self.kv_error(404, "SecretNotFound", "Deleted Secret not found: %s" % name)
            if len(rest) == 3 and rest[2] == "recover" and cmd == "POST":
                del vault["deleted"][name]
                vault["secrets"][name] = entry["versions"]
                raise Reply(200, self.bundle(base, name, entry["versions"][-1], False))
            if len(rest) == 2 and cmd == "DELETE":
                del vault["deleted"][name]
                raise Reply(204, None)
            if len(rest) == 2 and cmd == "GET":
                raise Reply(200, self.deleted_view(base, name, entry, False))

    def deleted_view(self, base, name, entry, with_value):
        out = self.bundle(base, name, entry["versions"][-1], with_value)
        out.update({"recoveryId": "%s/deletedsecrets/%s" % (base, name), "deletedDate": entry["deletedDate"],
                    "scheduledPurgeDate": entry["deletedDate"] + 90 * 86400})
        return out


def main():
    global LOG_FILE
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--state-dir")
    ap.add_argument("--port-file")
    args = ap.parse_args()
    state_dir = args.state_dir or tempfile.mkdtemp(prefix="azure-fake-")
    os.makedirs(state_dir, exist_ok=True)
    LOG_FILE = os.path.join(state_dir, "requests.jsonl")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    print(port, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
