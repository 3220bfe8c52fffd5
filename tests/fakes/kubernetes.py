#!/usr/bin/env python3
"""A local stand-in for the parts of the Kubernetes API that `coffer k8s-operator` and Coffer's Kubernetes auth
use, answering as a kube-apiserver does. Python standard library only; real state, one global resourceVersion.

Resources (namespaced, in any namespace; a namespace need not be created first):
    v1 Secret, v1 ServiceAccount                                     /api/v1/namespaces/NS/{secrets,serviceaccounts}
    apps/v1 Deployment (status subresource)                          /apis/apps/v1/namespaces/NS/deployments
    coordination.k8s.io/v1 Lease                                     /apis/coordination.k8s.io/v1/namespaces/NS/leases
    secrets.infisical.com/v1alpha1 InfisicalSecret (status subresource, as deploy/k8s/crd.yaml declares it)
    and, stored but not interpreted (so that kubectl can create deploy/k8s/ against it): apiextensions.k8s.io/v1
    CustomResourceDefinition, v1 Namespace, rbac.authorization.k8s.io/v1 ClusterRole, ClusterRoleBinding, Role,
    RoleBinding.
Each collection also answers across namespaces (/api/v1/secrets, /apis/GROUP/VERSION/PLURAL).

What is done as the API server does it (https://kubernetes.io/docs/reference/using-api/api-concepts/):
- get, list (metadata.resourceVersion of the list), create (201; 409 AlreadyExists), replace (PUT; 409 Conflict
  when metadata.resourceVersion is stale, "the object has been modified; please apply your changes to the latest
  version and try again"; a no-op replace keeps the resourceVersion), patch (application/merge-patch+json, RFC 7386,
  and application/strategic-merge-patch+json; any other type is 415), delete (200 with the object);
  "Efficient detection of changes", "Resource versions", "Patch and apply";
- generation: bumped when spec changes, never by a status write; the status subresource (.../status) changes
  status only, and the main resource ignores status
  (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#status-subresource);
- watch (?watch=1): newline-delimited JSON events {type, object} in a chunked answer, ADDED/MODIFIED/DELETED from
  resourceVersion on (no resourceVersion, or "0": the current objects as ADDED first), closed after
  timeoutSeconds; with allowWatchBookmarks=true a BOOKMARK carrying the current resourceVersion before it closes
  ("Watch bookmarks"); a resourceVersion older than the retained history answers 200 with one ERROR event whose
  Status is 410 Expired "too old resource version", as the watch cache does ("410 Gone responses");
- errors are v1 Status objects {kind: Status, status: Failure, message, reason, details, code}
  (https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/);
- Secret data must be base64; stringData is merged into data on write
  (https://kubernetes.io/docs/reference/kubernetes-api/config-and-storage-resources/secret-v1/);
- TokenRequest: POST /api/v1/namespaces/NS/serviceaccounts/NAME/token -> 201 with status.token and
  status.expirationTimestamp; 404 for an unknown service account
  (https://kubernetes.io/docs/reference/kubernetes-api/authentication-resources/token-request-v1/);
- TokenReview: POST /apis/authentication.k8s.io/v1/tokenreviews -> 201 with status.authenticated, user
  {username, uid, groups}, audiences; a token not for the requested audiences, unknown or expired is
  authenticated: false with an error
  (https://kubernetes.io/docs/reference/kubernetes-api/authentication-resources/token-review-v1/);
- Lease spec fields as written by clients (https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/lease-v1/);
- ownerReferences: deleting an owner deletes its dependents
  (https://kubernetes.io/docs/concepts/architecture/garbage-collection/);
- discovery (/api, /apis, /api/v1, /apis/G/V) and /version, enough for kubectl's REST mapping
  (https://kubernetes.io/docs/concepts/overview/kubernetes-api/#discovery-api);
- every request needs a bearer token the fake knows (the operator's, or one it issued), else 401 Unauthorized.

Limits (what a test cannot rely on): no RBAC (every known token may do everything), no admission or schema
validation of custom resources, no label or field selectors, no pagination (limit/continue), no server-side apply,
no dry run, strategic merge patch is plain merge patch (lists are replaced, not merged by key), garbage collection
is immediate rather than by a background controller, bookmarks are sent only at the end of a watch, no
protobuf or Table output; loopback only (plain http, or TLS with a certificate the test makes).

Fault injection for tests (not part of the API): Cluster.fail_next(method, path_prefix, status, count,
retry_after) answers the next matching requests with a Status of that code (429 with Retry-After as API priority
and fairness does); Cluster.compact() drops the retained history and ends open watches with 410, as a compaction
that outran them; Cluster.touch_before_next_put(plural, ns, name) lets "another writer" change an object just
before the next PUT to it, so that that PUT's resourceVersion is stale and it gets the API's own 409.
Cluster.requests records (method, path, query, content type, principal, status, body) of every request, in
memory only (Secret bodies hold values).

    python3 tests/fakes/kubernetes.py --port 0 --token TOKEN   prints the port, serves until killed
"""

import argparse
import base64
import copy
import json
import secrets
import ssl
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# (group, version, plural) -> kind, namespaced, has a status subresource
RESOURCES = {
    ("", "v1", "secrets"): ("Secret", True, False),
    ("", "v1", "serviceaccounts"): ("ServiceAccount", True, False),
    ("apps", "v1", "deployments"): ("Deployment", True, True),
    ("coordination.k8s.io", "v1", "leases"): ("Lease", True, False),
    ("secrets.infisical.com", "v1alpha1", "infisicalsecrets"): ("InfisicalSecret", True, True),
    ("apiextensions.k8s.io", "v1", "customresourcedefinitions"): ("CustomResourceDefinition", False, True),
    # Stored so that `kubectl create -f deploy/k8s/` can run against the fake; not interpreted.
    ("", "v1", "namespaces"): ("Namespace", False, False),
    ("rbac.authorization.k8s.io", "v1", "clusterroles"): ("ClusterRole", False, False),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings"): ("ClusterRoleBinding", False, False),
    ("rbac.authorization.k8s.io", "v1", "roles"): ("Role", True, False),
    ("rbac.authorization.k8s.io", "v1", "rolebindings"): ("RoleBinding", True, False),
}
HISTORY = 1000  # events retained for watches; older resourceVersions get 410
PATCH_TYPES = ("application/merge-patch+json", "application/strategic-merge-patch+json")


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def status_object(code, reason, message, kind=None, name=None, group=""):
    out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
           "reason": reason, "code": code}
    if kind or name:
        out["details"] = {"name": name or "", "group": group, "kind": kind or ""}
    return out


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class ApiError(Exception):
    def __init__(self, status):
        super().__init__(status["message"])
        self.status = status


class Cluster:
    def __init__(self, tokens=()):
        self.cond = threading.Condition()
        self.rv = 100
        self.objects = {}  # (group, version, plural, namespace, name) -> object
        self.events = []  # (rv, (group, version, plural), namespace, type, object)
        self.oldest = self.rv  # a watch from a resourceVersion below this is too old
        self.epoch = 0  # bumped by compact(): ends open watches
        self.watching = {}  # (group, version, plural) -> watches open now
        self.tokens = {t: {"username": "system:serviceaccount:coffer:operator", "audiences": None, "exp": None}
                       for t in tokens}
        self.requests = []
        self.faults = []
        self.touch = set()
        self.server = None

    # ---- test controls ----

    def add_token(self, token, username, audiences=None):
        with self.cond:
            self.tokens[token] = {"username": username, "audiences": audiences, "exp": None}

    def fail_next(self, method, path_prefix, status, count=1, retry_after=None):
        with self.cond:
            self.faults.append([method, path_prefix, status, count, retry_after])

    def compact(self):
        with self.cond:
            self.events = []
            self.oldest = self.rv + 1
            self.epoch += 1
            self.cond.notify_all()

    def open_watches(self, plural):
        """How many watches of the resource `plural` are open now (a test compacts while one is)."""
        with self.cond:
            return sum(n for gvr, n in self.watching.items() if gvr[2] == plural)

    def touch_before_next_put(self, plural, namespace, name):
        with self.cond:
            self.touch.add((plural, namespace, name))

    def get(self, group, version, plural, namespace, name):
        with self.cond:
            obj = self.objects.get((group, version, plural, namespace, name))
            return copy.deepcopy(obj)

    def put_object(self, group, version, plural, obj):
        """Creates an object as a client would (tests seed ServiceAccounts, Secrets, Deployments this way)."""
        with self.cond:
            return self._create((group, version, plural), obj["metadata"].get("namespace"), obj)

    def patch(self, group, version, plural, namespace, name, patch):
        """Applies a JSON merge patch as a client would (tests edit resources this way)."""
        with self.cond:
            key = (group, version, plural, namespace, name)
            return self._replace((group, version, plural), key, merge_patch(self.objects[key], patch), None)

    def requests_matching(self, method=None, prefix=""):
        with self.cond:
            return [r for r in self.requests if (method is None or r["method"] == method)
                    and r["path"].startswith(prefix)]

    # ---- state ----

    def _next_rv(self):
        self.rv += 1
        return str(self.rv)

    def _record(self, gvr, namespace, type_, obj):
        self.events.append((self.rv, gvr, namespace, type_, copy.deepcopy(obj)))
        if len(self.events) > HISTORY:
            dropped = self.events.pop(0)
            self.oldest = dropped[0] + 1
        self.cond.notify_all()

    def _api_version(self, gvr):
        return gvr[1] if not gvr[0] else gvr[0] + "/" + gvr[1]

    def _prepare(self, gvr, obj):
        kind = RESOURCES[gvr][0]
        if obj.get("kind") not in (None, kind):
            raise ApiError(status_object(400, "BadRequest", "the object provided is unrecognized (kind %r is not %s)"
                                         % (obj.get("kind"), kind)))
        obj["kind"] = kind
        obj["apiVersion"] = self._api_version(gvr)
        if kind == "Secret":
            data = obj.get("data") or {}
            if not isinstance(data, dict):
                raise ApiError(status_object(400, "BadRequest", "Secret data must be a map of strings"))
            for key, value in data.items():
                try:
                    base64.b64decode(value, validate=True)
                except Exception:
                    raise ApiError(status_object(400, "BadRequest",
                                                 "Secret in version \"v1\" cannot be handled as a Secret: illegal "
                                                 "base64 data at key %r" % key))
            for key, value in (obj.pop("stringData", None) or {}).items():
                data[key] = base64.b64encode(value.encode()).decode()
            obj["data"] = data
            obj.setdefault("type", "Opaque")

    def _create(self, gvr, namespace, obj):
        kind, namespaced, has_status = RESOURCES[gvr]
        meta = obj.setdefault("metadata", {})
        name = meta.get("name")
        if not name:
            raise ApiError(status_object(422, "Invalid", "%s.%s \"\" is invalid: metadata.name: Required value"
                                         % (kind, gvr[0]), kind))
        if namespaced:
            if meta.get("namespace") not in (None, namespace):
                raise ApiError(status_object(400, "BadRequest", "the namespace of the provided object does not "
                                             "match the namespace sent on the request"))
            meta["namespace"] = namespace
        key = gvr + (namespace if namespaced else None, name)
        if key in self.objects:
            raise ApiError(status_object(409, "AlreadyExists", "%s \"%s\" already exists" % (gvr[2], name),
                                         gvr[2], name, gvr[0]))
        self._prepare(gvr, obj)
        if has_status and gvr[0] != "apiextensions.k8s.io":
            obj.pop("status", None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        meta.pop("deletionTimestamp", None)
        if kind in ("Deployment", "InfisicalSecret", "CustomResourceDefinition"):
            meta["generation"] = 1
        meta["resourceVersion"] = self._next_rv()
        self.objects[key] = obj
        self._record(gvr, meta.get("namespace"), "ADDED", obj)
        return copy.deepcopy(obj)

    def _replace(self, gvr, key, new, subresource):
        kind, _, has_status = RESOURCES[gvr]
        old = self.objects.get(key)
        if old is None:
            raise ApiError(status_object(404, "NotFound", "%s \"%s\" not found" % (gvr[2], key[4]), gvr[2], key[4],
                                         gvr[0]))
        if (gvr[2], key[3], key[4]) in self.touch:
            # Another writer changes the object first (an annotation), so this write is stale.
            self.touch.discard((gvr[2], key[3], key[4]))
            old["metadata"].setdefault("annotations", {})["fake.k8s/touched"] = self._next_rv()
            old["metadata"]["resourceVersion"] = str(self.rv)
            self._record(gvr, key[3], "MODIFIED", old)
        rv = (new.get("metadata") or {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise ApiError(status_object(409, "Conflict", "Operation cannot be fulfilled on %s.%s \"%s\": the object "
                                         "has been modified; please apply your changes to the latest version and "
                                         "try again" % (gvr[2], gvr[0] or "", key[4]) if gvr[0] else
                                         "Operation cannot be fulfilled on %s \"%s\": the object has been modified; "
                                         "please apply your changes to the latest version and try again"
                                         % (gvr[2], key[4]), gvr[2], key[4], gvr[0]))
        meta = new.setdefault("metadata", {})
        if meta.get("name", key[4]) != key[4]:
            raise ApiError(status_object(400, "BadRequest", "the name of the object (%s) does not match the name on "
                                         "the URL (%s)" % (meta.get("name"), key[4])))
        if subresource == "status":
            result = copy.deepcopy(old)
            result["status"] = new.get("status")
        else:
            self._prepare(gvr, new)
            result = copy.deepcopy(new)
            for field in ("uid", "creationTimestamp", "generation", "namespace", "name"):
                if field in old["metadata"]:
                    result["metadata"][field] = old["metadata"][field]
            if has_status:
                result.pop("status", None)
                if "status" in old:
                    result["status"] = old["status"]
            if "generation" in old["metadata"] and old.get("spec") != result.get("spec"):
                result["metadata"]["generation"] = old["metadata"]["generation"] + 1
        result["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if result == old:
            return copy.deepcopy(old)  # a no-op write keeps the resourceVersion
        result["metadata"]["resourceVersion"] = self._next_rv()
        self.objects[key] = result
        self._record(gvr, key[3], "MODIFIED", result)
        return copy.deepcopy(result)

    def _delete(self, gvr, key):
        obj = self.objects.pop(key, None)
        if obj is None:
            raise ApiError(status_object(404, "NotFound", "%s \"%s\" not found" % (gvr[2], key[4]), gvr[2], key[4],
                                         gvr[0]))
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._record(gvr, key[3], "DELETED", obj)
        uid = obj["metadata"]["uid"]
        for other_key, other in list(self.objects.items()):
            refs = other["metadata"].get("ownerReferences") or []
            if any(r.get("uid") == uid for r in refs) and other_key in self.objects:
                self._delete(other_key[:3], other_key)
        return obj

    def _list(self, gvr, namespace):
        items = [copy.deepcopy(o) for k, o in sorted(self.objects.items(), key=lambda kv: kv[0][3:] if kv[0][3]
                                                     else ("", kv[0][4]))
                 if k[:3] == gvr and (namespace is None or k[3] == namespace)]
        if not gvr[0] or gvr[0] in ("apps", "coordination.k8s.io", "rbac.authorization.k8s.io"):
            for item in items:  # built-in lists carry kind and apiVersion on the list only
                item.pop("kind", None)
                item.pop("apiVersion", None)
        return {"kind": RESOURCES[gvr][0] + "List", "apiVersion": self._api_version(gvr),
                "metadata": {"resourceVersion": str(self.rv)}, "items": items}

    # ---- tokens ----

    def issue_token(self, namespace, name, spec):
        key = ("", "v1", "serviceaccounts", namespace, name)
        if key not in self.objects:
            raise ApiError(status_object(404, "NotFound", "serviceaccounts \"%s\" not found" % name,
                                         "serviceaccounts", name))
        ttl = spec.get("expirationSeconds") or 3600
        if not isinstance(ttl, int) or ttl < 600:
            raise ApiError(status_object(422, "Invalid", "TokenRequest.authentication.k8s.io \"%s\" is invalid: "
                                         "spec.expirationSeconds: Invalid value: %r: may not specify a duration "
                                         "less than 10 minutes" % (name, ttl), "TokenRequest", name,
                                         "authentication.k8s.io"))
        token = "sa." + secrets.token_urlsafe(32)
        audiences = spec.get("audiences") or ["https://kubernetes.default.svc.cluster.local"]
        exp = time.time() + ttl
        self.tokens[token] = {"username": "system:serviceaccount:%s:%s" % (namespace, name),
                              "uid": self.objects[key]["metadata"]["uid"], "audiences": audiences, "exp": exp}
        return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
                "spec": {"audiences": audiences, "expirationSeconds": ttl, "boundObjectRef": None},
                "status": {"token": token,
                           "expirationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))}}

    def review(self, spec):
        token = spec.get("token") or ""
        wanted = spec.get("audiences") or []
        entry = self.tokens.get(token)
        status = {"user": {}}
        if entry is None or (entry["exp"] is not None and entry["exp"] < time.time()):
            status.update(authenticated=False, error="[invalid bearer token, service account token has expired "
                                                     "or is not valid]")
        else:
            have = entry["audiences"] or ["https://kubernetes.default.svc.cluster.local"]
            if wanted and not set(wanted) & set(have):
                status.update(authenticated=False, error="[invalid bearer token, token audiences %s is invalid for "
                                                         "the target audiences %s]" % (have, wanted))
            else:
                parts = entry["username"].split(":")
                groups = ["system:serviceaccounts", "system:serviceaccounts:" + parts[2], "system:authenticated"] \
                    if len(parts) == 4 else ["system:authenticated"]
                status.update(authenticated=True, audiences=wanted or have,
                              user={"username": entry["username"], "uid": entry.get("uid", ""), "groups": groups})
        return {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}

    # ---- serving ----

    def start(self, cert=None, key=None):
        """Serves on an ephemeral loopback port; with cert and key (PEM files), over TLS, as an API server does
        (kubectl sends no bearer token over plain http)."""
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(self))
        self.server.daemon_threads = True
        # A client that goes away mid-request (a replica killed by a test) is not an error of the fake.
        self.server.handle_error = lambda request, address: None
        self.scheme = "http"
        if cert:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            with self.cond:
                self.epoch += 1
                self.cond.notify_all()
            self.server.shutdown()
            self.server.server_close()

    def url(self):
        return "%s://127.0.0.1:%d" % (self.scheme, self.server.server_address[1])


def parse_path(path):
    """-> (gvr, namespace, name, subresource) or None. namespace None: across namespaces (or cluster-scoped)."""
    parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    gvr = (group, version, rest[0])
    if gvr not in RESOURCES:
        return None
    name = rest[1] if len(rest) >= 2 else None
    sub = rest[2] if len(rest) == 3 else None
    return gvr, namespace, name, sub


def discovery(path):
    groups = {}
    for (g, v, plural), (kind, namespaced, has_status) in RESOURCES.items():
        groups.setdefault((g, v), []).append((plural, kind, namespaced, has_status))
    verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
    if path == "/apis":
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": g, "versions": [{"groupVersion": g + "/" + v, "version": v}],
             "preferredVersion": {"groupVersion": g + "/" + v, "version": v}}
            for (g, v) in sorted(groups) if g] + [
            {"name": "authentication.k8s.io", "versions": [{"groupVersion": "authentication.k8s.io/v1",
                                                            "version": "v1"}],
             "preferredVersion": {"groupVersion": "authentication.k8s.io/v1", "version": "v1"}}]}
    for (g, v), resources in groups.items():
        if path == ("/api/v1" if not g else "/apis/%s/%s" % (g, v)):
            out = []
            for plural, kind, namespaced, has_status in resources:
                out.append({"name": plural, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind,
                            "verbs": verbs})
                if has_status:
                    out.append({"name": plural + "/status", "singularName": "", "namespaced": namespaced,
                                "kind": kind, "verbs": ["get", "patch", "update"]})
            if not g:
                out.append({"name": "serviceaccounts/token", "singularName": "", "namespaced": True,
                            "kind": "TokenRequest", "group": "authentication.k8s.io", "version": "v1",
                            "verbs": ["create"]})
            return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": v if not g else g + "/" + v,
                    "resources": out}
    if path == "/apis/authentication.k8s.io/v1":
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "authentication.k8s.io/v1",
                "resources": [{"name": "tokenreviews", "singularName": "", "namespaced": False,
                               "kind": "TokenReview", "verbs": ["create"]}]}
    if path == "/version":
        return {"major": "1", "minor": "30", "gitVersion": "v1.30.0-coffer-fake", "platform": "linux/amd64"}
    return None


def make_handler(cluster):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _send(self, code, body, extra=None):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            return code

        def _principal(self):
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer "):
                return None
            entry = cluster.tokens.get(auth[7:])
            if entry is None or (entry["exp"] is not None and entry["exp"] < time.time()):
                return None
            return entry["username"]

        def _handle(self, method):
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            with cluster.cond:
                principal = self._principal()
                record = {"method": method, "path": url.path, "query": query, "content_type": ctype,
                          "principal": principal, "status": None, "body": raw}
                cluster.requests.append(record)
                fault = None
                for f in cluster.faults:
                    if f[0] == method and url.path.startswith(f[1]) and f[3] > 0:
                        f[3] -= 1
                        fault = f
                        break
            if principal is None:
                record["status"] = self._send(401, status_object(401, "Unauthorized", "Unauthorized"))
                return
            if fault:
                extra = {"Retry-After": str(fault[4])} if fault[4] is not None else None
                reasons = {410: "Expired", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
                           409: "Conflict"}
                record["status"] = self._send(fault[2], status_object(fault[2], reasons.get(fault[2], "Unknown"),
                                                                      "injected by the test"), extra)
                return
            try:
                body = json.loads(raw) if raw else None
            except ValueError as e:
                record["status"] = self._send(400, status_object(400, "BadRequest", "invalid JSON: %s" % e))
                return
            try:
                code, answer = self._route(method, url.path, query, ctype, body)
            except ApiError as e:
                code, answer = e.status["code"], e.status
            if code is None:
                record["status"] = 200  # a watch stream, already answered
                return
            record["status"] = self._send(code, answer)

        def _route(self, method, path, query, ctype, body):
            if method == "GET":
                found = discovery(path)
                if found is not None:
                    return 200, found
            if method == "POST" and path == "/apis/authentication.k8s.io/v1/tokenreviews":
                with cluster.cond:
                    return 201, cluster.review((body or {}).get("spec") or {})
            parts = path.strip("/").split("/")
            if method == "POST" and len(parts) == 7 and parts[:3] == ["api", "v1", "namespaces"] \
                    and parts[4] == "serviceaccounts" and parts[6] == "token":
                with cluster.cond:
                    return 201, cluster.issue_token(parts[3], parts[5], (body or {}).get("spec") or {})
            parsed = parse_path(path)
            if parsed is None:
                return 404, status_object(404, "NotFound", "the server could not find the requested resource")
            gvr, namespace, name, sub = parsed
            namespaced = RESOURCES[gvr][1]
            if sub not in (None, "status") or (sub == "status" and not RESOURCES[gvr][2]):
                return 404, status_object(404, "NotFound", "the server could not find the requested resource")
            if name is None:
                if method == "GET" and query.get("watch") in ("1", "true"):
                    self._watch(gvr, namespace, query)
                    return None, None
                if method == "GET":
                    with cluster.cond:
                        return 200, cluster._list(gvr, namespace)
                if method == "POST":
                    if not isinstance(body, dict):
                        return 400, status_object(400, "BadRequest", "the body of the request was not an object")
                    if namespaced and namespace is None:
                        return 405, status_object(405, "MethodNotAllowed", "the server does not allow this method "
                                                  "on the requested resource")
                    with cluster.cond:
                        return 201, cluster._create(gvr, namespace, body)
                return 405, status_object(405, "MethodNotAllowed", "the server does not allow this method on the "
                                          "requested resource")
            key = gvr + (namespace if namespaced else None, name)
            with cluster.cond:
                if method == "GET":
                    obj = cluster.objects.get(key)
                    if obj is None:
                        raise ApiError(status_object(404, "NotFound", "%s \"%s\" not found" % (gvr[2], name),
                                                     gvr[2], name, gvr[0]))
                    return 200, copy.deepcopy(obj)
                if method == "PUT":
                    if not isinstance(body, dict):
                        return 400, status_object(400, "BadRequest", "the body of the request was not an object")
                    return 200, cluster._replace(gvr, key, body, sub)
                if method == "PATCH":
                    if ctype not in PATCH_TYPES:
                        return 415, status_object(415, "UnsupportedMediaType", "the body of the request was in an "
                                                  "unknown format - accepted media types include: " +
                                                  ", ".join(PATCH_TYPES))
                    old = cluster.objects.get(key)
                    if old is None:
                        raise ApiError(status_object(404, "NotFound", "%s \"%s\" not found" % (gvr[2], name),
                                                     gvr[2], name, gvr[0]))
                    merged = merge_patch(old, body)
                    if "resourceVersion" not in ((body or {}).get("metadata") or {}):
                        merged["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
                    return 200, cluster._replace(gvr, key, merged, sub)
                if method == "DELETE":
                    return 200, cluster._delete(gvr, key)
            return 405, status_object(405, "MethodNotAllowed", "the server does not allow this method on the "
                                      "requested resource")

        def _chunk(self, obj):
            data = (json.dumps(obj) + "\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def _watch(self, gvr, namespace, query):
            timeout = min(int(query.get("timeoutSeconds") or 1800), 1800)
            deadline = time.monotonic() + timeout
            bookmarks = query.get("allowWatchBookmarks") in ("1", "true")
            rv = query.get("resourceVersion") or ""
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            with cluster.cond:
                cluster.watching[gvr] = cluster.watching.get(gvr, 0) + 1
            try:
                with cluster.cond:
                    epoch = cluster.epoch
                    if rv in ("", "0"):
                        pending = [{"type": "ADDED", "object": o} for o in cluster._list(gvr, namespace)["items"]]
                        for event in pending:
                            event["object"].update(kind=RESOURCES[gvr][0], apiVersion=cluster._api_version(gvr))
                        position = cluster.rv
                    elif not rv.isdigit() or int(rv) < cluster.oldest - 1:
                        pending = [{"type": "ERROR", "object": status_object(
                            410, "Expired", "too old resource version: %s (%d)" % (rv, cluster.oldest))}]
                        position = None
                    else:
                        pending, position = [], int(rv)
                while True:
                    for event in pending:
                        self._chunk(event)
                    if position is None:
                        break
                    with cluster.cond:
                        while True:
                            fresh = [e for e in cluster.events if e[0] > position and e[1] == gvr
                                     and (namespace is None or e[2] == namespace)]
                            if fresh or cluster.epoch != epoch or time.monotonic() >= deadline:
                                break
                            cluster.cond.wait(max(0.0, min(0.5, deadline - time.monotonic())))
                        if cluster.epoch != epoch:
                            pending = [{"type": "ERROR", "object": status_object(
                                410, "Expired", "too old resource version: %d (%d)" % (position, cluster.oldest))}]
                            position = None
                            continue
                        if not fresh:
                            if bookmarks:
                                self._chunk({"type": "BOOKMARK", "object": {
                                    "kind": RESOURCES[gvr][0], "apiVersion": cluster._api_version(gvr),
                                    "metadata": {"resourceVersion": str(cluster.rv)}}})
                            break
                        pending = [{"type": e[3], "object": e[4]} for e in fresh]
                        position = fresh[-1][0]
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                with cluster.cond:
                    cluster.watching[gvr] -= 1
            self.close_connection = True

    for verb in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        setattr(Handler, "do_" + verb, lambda self, method=verb: self._handle(method))
    return Handler


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", action="append", default=[])
    args = parser.parse_args()
    fake = Cluster(tokens=args.token)
    fake.server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(fake))
    print(fake.server.server_address[1], flush=True)
    fake.server.serve_forever()
