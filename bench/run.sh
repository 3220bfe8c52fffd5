#!/bin/sh
# Coffer's benchmark (see bench/README.md). Given a build directory that
# already holds `coffer` and `bench/baseline` (`make bench` builds first), it starts a Coffer server on a fresh
# data directory and measures start to first answered request, seeds a project with 100 secrets of about 500
# bytes each in Infisical's response shape and a machine identity (universal auth, a client secret, viewer on
# the project), saves Coffer's own answers to the two benchmarked requests, starts the baseline libmicrohttpd
# server serving those same bytes from memory, runs wrk against both (list 100 secrets with the admin token and
# with the identity's access token, read one secret; 16 and 64 connections), then universal-auth logins, records
# the server's resident memory, times `coffer run -- true` against `true` alone with hyperfine, and prints one
# table with the issues' targets marked met or missed. The table is also written to bench/results/latest.txt.
#
# Usage: sh bench/run.sh BUILD_DIR
# Environment: BENCH_SECONDS (per wrk run, default 5), BENCH_WARMUP (seconds, default 1), BENCH_THREADS (wrk
# threads, default 2), BENCH_CONNECTIONS (default "16 64"), BENCH_ROUNDS (default 3: every wrk scenario runs that
# many times, rounds interleaved, and the report shows each scenario's medians; 1 for a quick run),
# BENCH_STRICT=1 (exit 1 when a target is missed).
# Everything it starts is stopped and every temporary file removed on exit, including on Ctrl-C. Tokens and the
# client secret travel only through environment variables, never on a command line or in a file.
set -eu

usage() {
    echo "usage: sh bench/run.sh BUILD_DIR" >&2
    exit 2
}

die() {
    echo "bench: $*" >&2
    exit 1
}

[ $# -eq 1 ] || usage
[ -d "$1" ] || die "build directory '$1' does not exist (run 'make bench', or meson setup + compile first)"
BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
COFFER=$BUILD/coffer
BASELINE=$BUILD/bench/baseline
FLOOR=$BUILD/bench/floor
AUTH_LUA=$ROOT/bench/auth.lua
LOGIN_LUA=$ROOT/bench/login.lua

BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_WARMUP=${BENCH_WARMUP:-1}
BENCH_THREADS=${BENCH_THREADS:-2}
BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-16 64}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_STRICT=${BENCH_STRICT:-0}
for value in "$BENCH_SECONDS" "$BENCH_WARMUP" "$BENCH_THREADS" "$BENCH_ROUNDS" $BENCH_CONNECTIONS; do
    case $value in
        '' | *[!0-9]*)
            die "BENCH_SECONDS, BENCH_WARMUP, BENCH_THREADS, BENCH_ROUNDS and BENCH_CONNECTIONS take whole numbers" ;;
    esac
done
[ "$BENCH_SECONDS" -ge 1 ] || die "BENCH_SECONDS must be at least 1"
[ "$BENCH_ROUNDS" -ge 1 ] || die "BENCH_ROUNDS must be at least 1"

[ -x "$COFFER" ] || die "'$COFFER' is missing: build first"
[ -x "$BASELINE" ] || die "'$BASELINE' is missing: build first"
for tool in wrk python3; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not installed (sh scripts/deps.sh)"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/coffer-bench.XXXXXX")
SERVER_PID=
SERVER_HELPER=
QUIET_PID=
QUIET_HELPER=
BASELINE_PID=
BASELINE_HELPER=
JWKS_PID=

# Stops one process we started and waits for the helper that is its parent to reap it.
stop() {
    pid=$1
    helper=$2
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    tries=0
    while kill -0 "$pid" 2>/dev/null && [ $tries -lt 100 ]; do
        sleep 0.1
        tries=$((tries + 1))
    done
    kill -KILL "$pid" 2>/dev/null || true
    [ -z "$helper" ] || wait "$helper" 2>/dev/null || true
}

cleanup() {
    status=$?
    trap - EXIT INT TERM
    stop "$BASELINE_PID" "$BASELINE_HELPER"
    stop "$SERVER_PID" "$SERVER_HELPER"
    stop "$QUIET_PID" "$QUIET_HELPER"
    stop "$JWKS_PID" ""
    rm -rf "$WORK"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The Python half: starting a server while timing it, seeding through the API, and the report. Python's
# standard library only, as the rest of the project's scripts.
cat >"$WORK/helper.py" <<'PYTHON'
import http.client, json, os, re, secrets, signal, socket, subprocess, sys, time

def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

def start(ready, log, port, path, argv):
    """Runs ARGV, polls GET PATH until it answers 200, writes 'PID MS' (or 'PID fail') to READY, then stays
    the server's parent until it exits so that nothing is left orphaned."""
    with open(log, "ab") as logf:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    elapsed_ms = None
    deadline = t0 + 20
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            conn.close()
            if resp.status == 200:
                elapsed_ms = (time.monotonic() - t0) * 1000
                break
        except OSError:
            pass
        time.sleep(0.0005)
    with open(ready + ".tmp", "w") as f:
        f.write("%d %s\n" % (proc.pid, "fail" if elapsed_ms is None else "%.1f" % elapsed_ms))
    os.rename(ready + ".tmp", ready)
    if elapsed_ms is None and proc.poll() is None:
        proc.terminate()
    proc.wait()

class Api:
    def __init__(self, port, token=None):
        self.port = port
        self.headers = {"Content-Type": "application/json"}
        if token is not None:
            self.headers["Authorization"] = "Bearer " + token

    def call(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers=self.headers)
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        if resp.status != 200:
            # The body is an error object, which never carries a secret value.
            sys.exit("bench: %s %s answered %d: %s" % (method, path.split("?")[0], resp.status,
                                                       raw[:500].decode(errors="replace")))
        return raw

def make_secrets(count, value_len):
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return [{"secretKey": "KEY_%03d" % (i + 1),
             "secretValue": "".join(secrets.choice(alphabet) for _ in range(value_len)),
             "secretComment": "benchmark secret %03d" % (i + 1)} for i in range(count)]

def b64url(data):
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

def openssl(*args, data=None):
    return subprocess.run(("openssl",) + args, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          check=True).stdout

def make_jwks(outdir):
    """An RSA 2048 key pair for the JWT-login scenario (RS256, as Entra ID and GitHub Actions sign): the
    private key stays in the work directory (mode 0600), the public half is written as a JWKS."""
    key = os.path.join(outdir, "jwt-key.pem")
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key)
    modulus = openssl("rsa", "-in", key, "-noout", "-modulus").decode().strip().split("=", 1)[1]
    n = bytes.fromhex(modulus)
    jwks = {"keys": [{"kty": "RSA", "kid": "bench-1", "use": "sig", "alg": "RS256", "n": b64url(n),
                      "e": b64url((65537).to_bytes(3, "big"))}]}
    with open(os.path.join(outdir, "jwks.json"), "w") as f:
        json.dump(jwks, f)

def serve_jwks(outdir, port, ready):
    """Serves OUTDIR/jwks.json on 127.0.0.1:PORT and counts the fetches in OUTDIR/jwks.fetches, so that the
    report can show the logins ran on the cached key set."""
    import http.server
    body = open(os.path.join(outdir, "jwks.json"), "rb").read()
    count = [0]
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            count[0] += 1
            with open(os.path.join(outdir, "jwks.fetches"), "w") as f:
                f.write("%d\n" % count[0])
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    with open(ready + ".tmp", "w") as f:
        f.write("%d ok\n" % os.getpid())
    os.rename(ready + ".tmp", ready)
    server.serve_forever()

def mint_jwt(outdir, claims):
    header = {"alg": "RS256", "typ": "JWT", "kid": "bench-1"}
    signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
    signature = openssl("dgst", "-sha256", "-sign", os.path.join(outdir, "jwt-key.pem"), data=signing_input)
    return signing_input.decode() + "." + b64url(signature)

def seed_jwt(api, port, outdir, jwks_port, pid):
    """A second identity that logs in with a GitHub Actions-shaped OIDC token through JWT auth on a JWKS URL;
    answers its id and the token (valid for a day, so that the load never outlives it)."""
    iid = json.loads(api.call("POST", "/api/v1/identities", {"name": "bench-oidc"}))["identity"]["id"]
    issuer = "https://token.actions.githubusercontent.com"
    api.call("POST", "/api/v1/auth/jwt-auth/identities/" + iid, {
        "configurationType": "jwks", "jwksUrl": "http://127.0.0.1:%d/jwks.json" % jwks_port,
        "boundIssuer": issuer, "boundAudiences": "https://github.com/coffer-bench",
        "boundSubject": "repo:coffer-bench/app:ref:refs/heads/main",
        "boundClaims": {"repository": "coffer-bench/app"},
        "accessTokenTTL": 86400, "accessTokenMaxTTL": 86400})
    api.call("POST", "/api/v2/workspace/%s/identity-memberships/%s" % (pid, iid), {"role": "viewer"})
    now = int(time.time())
    token = mint_jwt(outdir, {"iss": issuer, "aud": "https://github.com/coffer-bench",
                              "sub": "repo:coffer-bench/app:ref:refs/heads/main",
                              "repository": "coffer-bench/app", "ref": "refs/heads/main",
                              "iat": now, "nbf": now, "exp": now + 86400})
    login = json.loads(Api(port).call("POST", "/api/v1/auth/jwt-auth/login", {"identityId": iid, "jwt": token}))
    if login.get("tokenType") != "Bearer" or not login.get("accessToken"):
        sys.exit("bench: the JWT-auth login answered no bearer access token")
    return iid, token

def seed_list(port, value_len, count=100):
    """The same 100-secret folder on the server without an audit log (the price of auditing)."""
    api = Api(port, os.environ["BENCH_TOKEN"])
    pid = json.loads(api.call("POST", "/api/v2/workspace", {"projectName": "bench"}))["project"]["id"]
    api.call("POST", "/api/v3/secrets/batch/raw", {"workspaceId": pid, "environment": "dev",
             "secretPath": "/", "secrets": make_secrets(count, value_len)})
    listed = json.loads(api.call("GET", "/api/v3/secrets/raw?workspaceId=%s&environment=dev&secretPath=/"
                                 % pid))["secrets"]
    if len(listed) != count:
        sys.exit("bench: the audit-off server listed %d secrets, expected %d" % (len(listed), count))
    print(pid)

def seed(port, outdir, jwks_port, count=100, target=500):
    """Creates the benchmark project and its secrets, sized so that the list answer is about TARGET bytes per
    secret. A probe project measures the fixed part of one secret's JSON first."""
    api = Api(port, os.environ["BENCH_TOKEN"])
    empty = len(b'{"secrets":[]}')

    probe = json.loads(api.call("POST", "/api/v2/workspace", {"projectName": "bench-probe"}))["project"]["id"]
    api.call("POST", "/api/v3/secrets/batch/raw", {"workspaceId": probe, "environment": "dev",
             "secretPath": "/", "secrets": make_secrets(1, 1)})
    raw = api.call("GET", "/api/v3/secrets/raw?workspaceId=%s&environment=dev&secretPath=/" % probe)
    fixed = len(raw) - empty - 1
    value_len = max(16, target - fixed)

    pid = json.loads(api.call("POST", "/api/v2/workspace", {"projectName": "bench"}))["project"]["id"]
    api.call("POST", "/api/v3/secrets/batch/raw", {"workspaceId": pid, "environment": "dev",
             "secretPath": "/", "secrets": make_secrets(count, value_len)})
    list_raw = api.call("GET", "/api/v3/secrets/raw?workspaceId=%s&environment=dev&secretPath=/" % pid)
    one_raw = api.call("GET", "/api/v3/secrets/raw/KEY_001?workspaceId=%s&environment=dev" % pid)
    listed = json.loads(list_raw)["secrets"]
    if len(listed) != count:
        sys.exit("bench: the list answered %d secrets, expected %d" % (len(listed), count))
    if json.loads(one_raw)["secret"]["secretKey"] != "KEY_001":
        sys.exit("bench: reading KEY_001 answered another secret")
    for name, raw in (("list.json", list_raw), ("one.json", one_raw)):
        fd = os.open(os.path.join(outdir, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)

    # A machine identity as a pipeline holds it: universal auth with a day-long access token and no use limit
    # (so that the load never runs into either), one client secret, and viewer on the project.
    iid = json.loads(api.call("POST", "/api/v1/identities", {"name": "bench-pipeline"}))["identity"]["id"]
    ua = json.loads(api.call("POST", "/api/v1/auth/universal-auth/identities/" + iid,
                             {"accessTokenTTL": 86400, "accessTokenMaxTTL": 86400}))["identityUniversalAuth"]
    client_id = ua["clientId"]
    client_secret = json.loads(api.call("POST", "/api/v1/auth/universal-auth/identities/%s/client-secrets" % iid,
                                        {}))["clientSecret"]
    api.call("POST", "/api/v2/workspace/%s/identity-memberships/%s" % (pid, iid), {"role": "viewer"})
    login = json.loads(Api(port).call("POST", "/api/v1/auth/universal-auth/login",
                                      {"clientId": client_id, "clientSecret": client_secret}))
    if login.get("tokenType") != "Bearer" or not login.get("accessToken"):
        sys.exit("bench: the universal-auth login answered no bearer access token")
    identity_token = login["accessToken"]
    # The identity must see exactly what the admin sees, or the two list figures would not be comparable.
    mine = json.loads(Api(port, identity_token).call(
        "GET", "/api/v3/secrets/raw?workspaceId=%s&environment=dev&secretPath=/" % pid))["secrets"]
    if sorted((s["secretKey"], s["secretValue"]) for s in mine) != \
            sorted((s["secretKey"], s["secretValue"]) for s in listed):
        sys.exit("bench: the identity's list differs from the admin's (%d secrets)" % len(mine))
    jwt_identity, jwt = seed_jwt(api, port, outdir, jwks_port, pid)
    for word in (client_id, client_secret, identity_token, jwt_identity, jwt):
        if not word or any(c.isspace() for c in word):
            sys.exit("bench: a client id, client secret, identity id, JWT or access token is empty or holds "
                     "white space")
    # Read by the shell with `set --`; stdout is a pipe to it, never a file.
    print(pid, len(list_raw), len(one_raw), value_len, client_id, client_secret, identity_token, jwt_identity,
          jwt)

UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}

def parse_wrk(path):
    text = open(path).read()
    def latency(pct):
        m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s|m)\s*$" % pct, text, re.M)
        return float(m.group(1)) * UNITS_MS[m.group(2)] if m else None
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(g) for g in m.groups())
    return {"rps": float(rps.group(1)) if rps else None, "p50": latency(50), "p99": latency(99),
            "errors": errors}

def fmt_ms(value):
    if value is None:
        return "?"
    return "%.2f ms" % value if value < 10 else "%.1f ms" % value

def read_hyperfine(work):
    """The hyperfine scenario: (None, results by command name) when it ran, (reason, None) when it did not."""
    reason_path = os.path.join(work, "run-unavailable")
    if os.path.exists(reason_path):
        return open(reason_path).read().strip() or "unknown reason", None
    try:
        results = json.load(open(os.path.join(work, "hyperfine.json")))["results"]
    except (OSError, ValueError, KeyError) as e:
        return "hyperfine left no readable results (%s)" % e.__class__.__name__, None
    by_name = {r["command"]: r for r in results}
    if "coffer run -- true" not in by_name or "true" not in by_name:
        return "hyperfine's results lack a command", None
    return None, by_name

def median(values):
    """The median of the known values (None when none is known)."""
    known = sorted(v for v in values if v is not None)
    if not known:
        return None
    mid = len(known) // 2
    return known[mid] if len(known) % 2 else (known[mid - 1] + known[mid]) / 2

def over_rounds(paths):
    """One scenario's figures over its rounds: the medians of req/s, p50 and p99 (each taken separately), the
    errors of every round added up, and each round's req/s and p99 as measured."""
    rounds = [parse_wrk(p) for p in paths]
    figures = {k: median(r[k] for r in rounds) for k in ("rps", "p50", "p99")}
    figures["errors"] = sum(r["errors"] for r in rounds)
    figures["rounds_rps"] = [r["rps"] for r in rounds]
    figures["rounds_p99"] = [r["p99"] for r in rounds]
    return figures

def report(work, out_path):
    meta = dict(line.rstrip("\n").split("=", 1) for line in open(os.path.join(work, "meta")))
    conns = [int(c) for c in meta["connections"].split()]
    rounds = int(meta["rounds"])
    scenarios = ("coffer list", "noaudit list", "identity list", "baseline list", "coffer one", "identity one",
                 "baseline one", "coffer login", "coffer jwt-login")
    runs = {}
    for scenario in scenarios:
        for c in conns:
            runs[scenario, c] = over_rounds([os.path.join(work, "wrk-%s-%d-%d.txt" % (scenario.replace(" ", "-"), c, r))
                                             for r in range(1, rounds + 1)])
    lines = []
    lines.append("Coffer benchmark, %s: %s cores, wrk -t%s, %s s per run, loopback, %s" %
                 (meta["date"], meta["cores"], meta["threads"], meta["seconds"],
                  "medians of %d rounds" % rounds if rounds > 1 else "one round"))
    lines.append("list = 100 secrets of one env+path, %s bytes (%d per secret); one = a single secret, %s bytes"
                 % (meta["list_bytes"], int(meta["list_bytes"]) // 100, meta["one_bytes"]))
    lines.append("coffer = admin token; identity = a machine identity's access token (viewer); "
                 "noaudit = a second server with --audit off; "
                 "login = universal-auth login; jwt-login = JWT-auth login, RS256 token, JWKS cached")
    lines.append("")
    header = "%-16s %5s %11s %10s %10s %12s %7s" % ("scenario", "conns", "req/s", "p50", "p99",
                                                    "vs baseline", "errors")
    lines.append(header)
    lines.append("-" * len(header))
    total_errors = 0
    def row(scenario, c, base):
        nonlocal total_errors
        r = runs[scenario, c]
        total_errors += r["errors"]
        ratio = "-"
        if base is not None and r["rps"] and base["rps"]:
            ratio = "%.1f%%" % (100 * r["rps"] / base["rps"])
        lines.append("%-16s %5d %11s %10s %10s %12s %7d" % (
            scenario, c, "?" if r["rps"] is None else "{:,.0f}".format(r["rps"]),
            fmt_ms(r["p50"]), fmt_ms(r["p99"]), ratio, r["errors"]))
    for kind, who in (("list", ("coffer", "noaudit", "identity", "baseline")),
                      ("one", ("coffer", "identity", "baseline"))):
        for c in conns:
            base = runs["baseline " + kind, c]
            for w in who:
                row(w + " " + kind, c, None if w == "baseline" else base)
    for c in conns:
        row("coffer login", c, None)
    for c in conns:
        row("coffer jwt-login", c, None)
    lines.append("")

    # The permission check's price: the identity's list against the admin's list of the same connections,
    # measured one right after the other.
    overhead = {}
    for c in conns:
        admin, ident = runs["coffer list", c]["rps"], runs["identity list", c]["rps"]
        overhead[c] = 100 * (admin - ident) / admin if admin and ident else None
    lines.append("identity token vs admin token, list: " + ", ".join(
        "%s at %d conns" % ("?" if overhead[c] is None else "%+.1f%% req/s" % -overhead[c], c) for c in conns))
    audit_cost = {}
    for c in conns:
        on, off = runs["coffer list", c]["rps"], runs["noaudit list", c]["rps"]
        audit_cost[c] = 100 * (off - on) / off if on and off else None
    lines.append("audit log on vs off, list: " + ", ".join(
        "%s at %d conns" % ("?" if audit_cost[c] is None else "%+.1f%% req/s" % -audit_cost[c], c)
        for c in conns))
    run_reason, hf = read_hyperfine(work)
    if hf:
        def hf_ms(r, key):
            return r[key] * 1000
        cr, tr = hf["coffer run -- true"], hf["true"]
        lines.append("coffer run -- true: median %.2f ms (mean %.2f, min %.2f, max %.2f, %d runs); "
                     "true alone: median %.2f ms; difference %.2f ms" % (
                         hf_ms(cr, "median"), hf_ms(cr, "mean"), hf_ms(cr, "min"), hf_ms(cr, "max"),
                         len(cr.get("times", [])), hf_ms(tr, "median"), hf_ms(cr, "median") - hf_ms(tr, "median")))
    else:
        lines.append("coffer run -- true: not available: " + run_reason)
    def listed(name):
        path = os.path.join(work, name)
        return [l.strip() for l in open(path)] if os.path.exists(path) else []
    if listed("repeated"):
        lines.append("repeated because one server thread had accepted every connection: " +
                     "; ".join(listed("repeated")))
    for note in listed("lopsided"):
        lines.append("WARNING: %s; that run's figures show one core's worth of work" % note)
    mb = lambda kb: int(kb) / 1024
    jwt_logins = sum(int((runs["coffer jwt-login", c]["rps"] or 0) * int(meta["seconds"]) * rounds) for c in conns)
    lines.append("JWKS fetched %s time(s) in all, for about %s JWT logins" % (meta["jwks_fetches"],
                                                                           "{:,}".format(jwt_logins)))
    lines.append("start to first answered request: %s ms (fresh data directory)" % meta["start_ms"])
    lines.append("coffer RSS: %.1f MB after start, %.1f MB before load, %.1f MB after load "
                 "(baseline after load: %.1f MB)" % (mb(meta["rss_start"]), mb(meta["rss_before"]),
                                                    mb(meta["rss_after"]), mb(meta["rss_baseline"])))
    if meta["pss_start"] and meta["pss_before"] and meta["pss_after"]:
        lines.append("coffer PSS: %.1f MB after start, %.1f MB before load, %.1f MB after load" % (
            mb(meta["pss_start"]), mb(meta["pss_before"]), mb(meta["pss_after"])))
    else:
        lines.append("coffer PSS: not available (no /proc/PID/smaps_rollup)")
    if meta.get("rss_floor"):
        lines.append("floor (bench/floor: the libraries Coffer maps at start, no Coffer code): RSS %.1f MB "
                     "after start (PSS %s); the bare baseline: %.1f MB after start" % (
                         mb(meta["rss_floor"]), "%.1f MB" % mb(meta["pss_floor"]) if meta.get("pss_floor") else "?",
                         mb(meta["rss_baseline_start"])))
    lines.append("")

    top = max(conns)
    targets = []
    def target(name, measured, ok):
        targets.append((name, measured, "n/a" if ok is None else ("met" if ok else "MISSED")))
    for kind, need in (("list", 5000), ("one", 30000)):
        r = runs["coffer " + kind, top]
        target("%s >= %s req/s at %d conns" % (kind, "{:,}".format(need), top),
               "{:,.0f} req/s".format(r["rps"] or 0), (r["rps"] or 0) >= need)
    for kind in ("list", "one"):
        r, base = runs["coffer " + kind, top], runs["baseline " + kind, top]
        pct = 100 * (r["rps"] or 0) / base["rps"] if base["rps"] else 0
        target("%s >= 30%% of baseline at %d conns" % (kind, top), "%.1f%%" % pct, pct >= 30)
    p99s = [runs[w + " " + k, c]["p99"] for w, k in (("coffer", "list"), ("identity", "list"), ("coffer", "one"))
            for c in conns]
    worst = max((p for p in p99s if p is not None), default=None)
    target("p99 <= 20 ms (list, identity, one runs)", "max " + fmt_ms(worst),
           worst is not None and None not in p99s and worst <= 20)
    target("idle RSS <= 10 MB (before load)", "%.1f MB" % mb(meta["rss_before"]), mb(meta["rss_before"]) <= 10)
    target("idle RSS <= 10 MB (after load)", "%.1f MB" % mb(meta["rss_after"]), mb(meta["rss_after"]) <= 10)
    start_ms = float(meta["start_ms"])
    target("start to first request <= 100 ms", "%.1f ms" % start_ms, start_ms <= 100)
    r = runs["coffer login", top]
    target("login >= 5,000/s at %d conns" % top, "{:,.0f} req/s".format(r["rps"] or 0), (r["rps"] or 0) >= 5000)
    known = [o for o in overhead.values() if o is not None]
    worst_overhead = max(known) if len(known) == len(conns) else None
    known_audit = [o for o in audit_cost.values() if o is not None]
    worst_audit = max(known_audit) if len(known_audit) == len(conns) else None
    target("audit log costs < 15% on list (all conns)",
           "?" if worst_audit is None else "max %.1f%%" % worst_audit,
           worst_audit is not None and worst_audit < 15)
    target("identity list costs <= 10% (all conns)",
           "?" if worst_overhead is None else "max %.1f%%" % worst_overhead,
           worst_overhead is not None and worst_overhead <= 10)
    if hf:
        median_ms = hf["coffer run -- true"]["median"] * 1000
        target("coffer run -- true median <= 20 ms", "%.2f ms" % median_ms, median_ms <= 20)
    else:
        target("coffer run -- true median <= 20 ms", "not available", None)
    lines.append("%-40s %16s  %s" % ("target", "measured", "result"))
    for name, measured, result in targets:
        lines.append("%-40s %16s  %s" % (name, measured, result))
    lines.append("")
    lines.append("Infisical on the same kind of machine: list 72-78 req/s (p99 359 ms at 16 conns),")
    lines.append("one 138-161 req/s, ~300 MB idle RSS, 3.4 s to start, 16 logins/s (bcrypt-bound).")
    lines.append("Doppler's CLI: `doppler run -- true` is reported at 300-400 ms.")
    if total_errors:
        lines.append("")
        lines.append("WARNING: %d requests failed (non-2xx or socket errors); the figures above are not valid."
                     % total_errors)
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as f:
        f.write(text)
    # the figures for bench/summary.py's one table
    figures = {"meta": meta, "runs": {"%s|%d" % k: v for k, v in runs.items()},
               "run_true_median_ms": hf["coffer run -- true"]["median"] * 1000 if hf else None,
               "true_median_ms": hf["true"]["median"] * 1000 if hf else None}
    with open(os.path.splitext(out_path)[0] + ".json", "w") as f:
        json.dump(figures, f, indent=1)
    missed = any(result != "met" for _, _, result in targets)
    sys.exit(3 if total_errors else (2 if missed else 0))

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "port":
        print(free_port())
    elif cmd == "start":
        start(args[0], args[1], int(args[2]), args[3], args[4:])
    elif cmd == "seed":
        seed(int(args[0]), args[1], int(args[2]))
    elif cmd == "seed-list":
        seed_list(int(args[0]), int(args[1]))
    elif cmd == "jwks":
        make_jwks(args[0])
        serve_jwks(args[0], int(args[1]), args[2])
    elif cmd == "report":
        report(args[0], args[1])
    else:
        sys.exit("bench: unknown helper command " + cmd)
PYTHON

helper() {
    python3 "$WORK/helper.py" "$@"
}

# Waits for a helper started in the background to write its ready file; prints the file's contents.
wait_ready() {
    ready=$1
    helper_pid=$2
    tries=0
    while [ ! -f "$ready" ]; do
        kill -0 "$helper_pid" 2>/dev/null || return 1
        tries=$((tries + 1))
        [ $tries -lt 600 ] || return 1
        sleep 0.05
    done
    cat "$ready"
}

rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# Proportional set size: each shared page counted as 1/N of the N processes mapping it (the libraries that
# other processes of the machine also map count for less than in the RSS).
pss_kb() {
    awk '/^Pss:/ { print $2; exit }' "/proc/$1/smaps_rollup" 2>/dev/null || true
}

fail_with_log() {
    echo "bench: $1; last lines of $2's log:" >&2
    tail -n 20 "$WORK/$2.log" >&2 || true
    exit 1
}

# The token exists only in this script's environment and the server's; wrk reads it through auth.lua.
BENCH_TOKEN=$(python3 -c 'import secrets; print("bench-" + secrets.token_hex(24))')
export BENCH_TOKEN

# 1. Start Coffer on an empty data directory and time it to its first answer.
mkdir -m 700 "$WORK/data"
SERVER_PORT=$(helper port)
COFFER_BOOTSTRAP_TOKEN=$BENCH_TOKEN helper start "$WORK/coffer.ready" "$WORK/coffer.log" "$SERVER_PORT" \
    /api/status "$COFFER" server --addr "127.0.0.1:$SERVER_PORT" --data-dir "$WORK/data" &
SERVER_HELPER=$!
ready=$(wait_ready "$WORK/coffer.ready" "$SERVER_HELPER") || fail_with_log "coffer did not start" coffer
SERVER_PID=${ready% *}
START_MS=${ready#* }
[ "$START_MS" != fail ] || fail_with_log "coffer never answered GET /api/status" coffer
RSS_START=$(rss_kb "$SERVER_PID")
PSS_START=$(pss_kb "$SERVER_PID")
echo "bench: coffer answered after $START_MS ms (port $SERVER_PORT, RSS $RSS_START kB)"

# 2. Seed 100 secrets, a machine identity with universal auth and one with JWT auth on a JWKS served here, and
# keep Coffer's answers for the baseline.
JWKS_PORT=$(helper port)
# python3 directly, not the helper function: $! must be the server itself, or stopping it would orphan it.
python3 "$WORK/helper.py" jwks "$WORK" "$JWKS_PORT" "$WORK/jwks.ready" >"$WORK/jwks.log" 2>&1 &
JWKS_PID=$!
ready=$(wait_ready "$WORK/jwks.ready" "$JWKS_PID") || fail_with_log "the JWKS server did not start" jwks
seeded=$(helper seed "$SERVER_PORT" "$WORK" "$JWKS_PORT") || fail_with_log "seeding failed" coffer
set -- $seeded
[ $# -eq 9 ] || die "seeding answered $# words, expected 9"
PROJECT_ID=$1
LIST_BYTES=$2
ONE_BYTES=$3
VALUE_BYTES=$4
CLIENT_ID=$5
CLIENT_SECRET=$6
IDENTITY_TOKEN=$7
JWT_IDENTITY=$8
JWT=$9
set --
seeded=
echo "bench: seeded project $PROJECT_ID: list $LIST_BYTES bytes, one $ONE_BYTES bytes (values of $VALUE_BYTES bytes)"
echo "bench: seeded identity with client id $CLIENT_ID (viewer on the project)"
LIST_PATH="/api/v3/secrets/raw?workspaceId=$PROJECT_ID&environment=dev&secretPath=/"
ONE_PATH="/api/v3/secrets/raw/KEY_001?workspaceId=$PROJECT_ID&environment=dev"
LOGIN_PATH=/api/v1/auth/universal-auth/login

# 2b. A second Coffer with the audit log off (--audit off), seeded with the same folder, so that the price of
# auditing a read is measured in the same run.
mkdir -m 700 "$WORK/quiet-data"
QUIET_PORT=$(helper port)
COFFER_BOOTSTRAP_TOKEN=$BENCH_TOKEN helper start "$WORK/quiet.ready" "$WORK/quiet.log" "$QUIET_PORT" \
    /api/status "$COFFER" server --addr "127.0.0.1:$QUIET_PORT" --data-dir "$WORK/quiet-data" --audit off &
QUIET_HELPER=$!
ready=$(wait_ready "$WORK/quiet.ready" "$QUIET_HELPER") || fail_with_log "the audit-off coffer did not start" quiet
QUIET_PID=${ready% *}
[ "${ready#* }" != fail ] || fail_with_log "the audit-off coffer never answered" quiet
QUIET_PROJECT=$(helper seed-list "$QUIET_PORT" "$VALUE_BYTES") || fail_with_log "seeding the audit-off coffer failed" quiet
QUIET_LIST_PATH="/api/v3/secrets/raw?workspaceId=$QUIET_PROJECT&environment=dev&secretPath=/"

# 3. Start the baseline on the same bytes.
# start_fixture NAME BINARY: starts BINARY (bench/baseline or bench/floor) on the fixture files and waits for
# its first answer; sets STARTED_PORT, STARTED_PID and STARTED_HELPER.
start_fixture() {
    STARTED_PORT=$(helper port)
    helper start "$WORK/$1.ready" "$WORK/$1.log" "$STARTED_PORT" /one \
        "$2" "$STARTED_PORT" "$WORK/list.json" "$WORK/one.json" &
    STARTED_HELPER=$!
    ready=$(wait_ready "$WORK/$1.ready" "$STARTED_HELPER") || fail_with_log "$1 did not start" "$1"
    STARTED_PID=${ready% *}
    if [ "${ready#* }" = fail ]; then
        stop "$STARTED_PID" "$STARTED_HELPER"
        fail_with_log "$1 never answered GET /one" "$1"
    fi
}
start_fixture baseline "$BASELINE"
BASELINE_PORT=$STARTED_PORT BASELINE_PID=$STARTED_PID BASELINE_HELPER=$STARTED_HELPER
RSS_BASELINE_START=$(rss_kb "$BASELINE_PID")

# The floor under Coffer's idle RSS (bench/floor: the baseline with the libraries a Coffer server maps at
# start): its RSS and PSS right after it answered once, as for Coffer in step 1; then it is stopped.
start_fixture floor "$FLOOR"
RSS_FLOOR=$(rss_kb "$STARTED_PID")
PSS_FLOOR=$(pss_kb "$STARTED_PID")
stop "$STARTED_PID" "$STARTED_HELPER"

# 4. Load. Both servers get the same request bytes: the baseline ignores the Authorization header.
sleep 1
RSS_BEFORE=$(rss_kb "$SERVER_PID")
PSS_BEFORE=$(pss_kb "$SERVER_PID")
# run_wrk SCENARIO URL SECONDS CONNECTIONS OUT [TOKEN]: GET with TOKEN (default: the admin token) as bearer.
run_wrk() {
    token=${6:-$BENCH_TOKEN}
    BENCH_TOKEN=$token wrk -t"$BENCH_THREADS" -c"$4" -d"${3}s" --latency -s "$AUTH_LUA" "$2" >"$5" 2>&1 ||
        { cat "$5" >&2; die "wrk failed for $1"; }
}
# run_login SCENARIO SECONDS CONNECTIONS OUT: universal-auth logins with the seeded identity's client secret.
run_login() {
    BENCH_CLIENT_ID=$CLIENT_ID BENCH_CLIENT_SECRET=$CLIENT_SECRET wrk -t"$BENCH_THREADS" -c"$3" -d"${2}s" \
        --latency -s "$LOGIN_LUA" "http://127.0.0.1:$SERVER_PORT$LOGIN_PATH" >"$4" 2>&1 ||
        { cat "$4" >&2; die "wrk failed for $1"; }
}
# run_jwt_login SCENARIO SECONDS CONNECTIONS OUT: JWT-auth logins with the seeded identity's OIDC token.
run_jwt_login() {
    BENCH_IDENTITY_ID=$JWT_IDENTITY BENCH_JWT=$JWT wrk -t"$BENCH_THREADS" -c"$3" -d"${2}s" \
        --latency -s "$LOGIN_LUA" "http://127.0.0.1:$SERVER_PORT/api/v1/auth/jwt-auth/login" >"$4" 2>&1 ||
        { cat "$4" >&2; die "wrk failed for $1"; }
}
# CPU ticks (user + system) of each thread of process $1, one "TID TICKS" line each. The fields are counted
# after the command name's closing parenthesis, which may follow spaces.
thread_ticks() {
    for task in /proc/"$1"/task/*; do
        ticks=$(sed 's/.*) //' "$task/stat" 2>/dev/null | awk '{ print $12 + $13 }') || continue
        [ -z "$ticks" ] || echo "${task##*/} $ticks"
    done
}
# measure SCENARIO PID RUNNER ARGS...: runs RUNNER SCENARIO ARGS... (run_wrk or run_login) against the server
# PID. Both servers spread connections over one epoll thread per core, but a thread can accept a whole burst
# of wrk's connections and leave the others idle, which halves throughput for that run. When one thread did
# more than 80% of the server's work on a machine with several cores, the run is repeated (up to 4 tries) and
# the report names it, so that the comparisons within one run are not decided by where connections landed.
measure() {
    scenario=$1
    pid=$2
    shift 2
    tries=1
    while :; do
        thread_ticks "$pid" >"$WORK/ticks.before"
        "$@"
        thread_ticks "$pid" >"$WORK/ticks.after"
        share=$(awk 'NR == FNR { before[$1] = $2; next }
                     { d = $2 - before[$1]; total += d; if (d > top) top = d }
                     END { print (total >= 20 ? int(100 * top / total) : 0) }' \
            "$WORK/ticks.before" "$WORK/ticks.after")
        [ "$CORES" -ge 2 ] && [ "$share" -gt 80 ] || break
        echo "bench: $scenario: one server thread did $share% of the work (connections on one thread)"
        [ $tries -lt 4 ] || { echo "$scenario: still on one thread after $tries tries" >>"$WORK/lopsided"; break; }
        tries=$((tries + 1))
    done
    [ $tries -eq 1 ] || echo "$scenario: $tries tries" >>"$WORK/repeated"
}
CORES=$(nproc)
if [ "$BENCH_WARMUP" -gt 0 ]; then
    echo "bench: warming up (${BENCH_WARMUP}s per server)"
    run_wrk warmup "http://127.0.0.1:$SERVER_PORT$LIST_PATH" "$BENCH_WARMUP" 16 "$WORK/warmup.txt"
    run_wrk warmup "http://127.0.0.1:$BASELINE_PORT/list" "$BENCH_WARMUP" 16 "$WORK/warmup.txt"
fi
# The identity's list and get-one run right after the admin's of the same connections, so that the two are
# comparable. BENCH_ROUNDS rounds of every scenario, one round after the other (not one scenario three times in a
# row), so that a busy moment of the machine lands on one round of several scenarios rather than on every round of
# one; the report takes each scenario's medians.
round=1
while [ "$round" -le "$BENCH_ROUNDS" ]; do
    for kind in list one; do
        if [ $kind = list ]; then
            coffer_path=$LIST_PATH
            callers="coffer noaudit identity baseline"
        else
            coffer_path=$ONE_PATH
            callers="coffer identity baseline"
        fi
        for connections in $BENCH_CONNECTIONS; do
            for who in $callers; do
                token=$BENCH_TOKEN
                pid=$SERVER_PID
                case $who in
                    coffer) url="http://127.0.0.1:$SERVER_PORT$coffer_path" ;;
                    identity) url="http://127.0.0.1:$SERVER_PORT$coffer_path" token=$IDENTITY_TOKEN ;;
                    noaudit) url="http://127.0.0.1:$QUIET_PORT$QUIET_LIST_PATH" pid=$QUIET_PID ;;
                    baseline) url="http://127.0.0.1:$BASELINE_PORT/$kind" pid=$BASELINE_PID ;;
                esac
                echo "bench: round $round/$BENCH_ROUNDS: $who $kind, $connections connections, ${BENCH_SECONDS}s"
                measure "$who $kind $connections (round $round)" "$pid" run_wrk "$who $kind" "$url" "$BENCH_SECONDS" \
                    "$connections" "$WORK/wrk-$who-$kind-$connections-$round.txt" "$token"
            done
        done
    done
    round=$((round + 1))
done
# Logins last, every round of them: each one stores a new access token, which the list and read runs above
# should not see.
round=1
while [ "$round" -le "$BENCH_ROUNDS" ]; do
    for connections in $BENCH_CONNECTIONS; do
        echo "bench: round $round/$BENCH_ROUNDS: coffer login, $connections connections, ${BENCH_SECONDS}s"
        measure "coffer login $connections (round $round)" "$SERVER_PID" run_login "coffer login" \
            "$BENCH_SECONDS" "$connections" "$WORK/wrk-coffer-login-$connections-$round.txt"
    done
    for connections in $BENCH_CONNECTIONS; do
        echo "bench: round $round/$BENCH_ROUNDS: coffer JWT login, $connections connections, ${BENCH_SECONDS}s"
        measure "coffer jwt-login $connections (round $round)" "$SERVER_PID" run_jwt_login "coffer jwt-login" \
            "$BENCH_SECONDS" "$connections" "$WORK/wrk-coffer-jwt-login-$connections-$round.txt"
    done
    round=$((round + 1))
done
sleep 1
RSS_AFTER=$(rss_kb "$SERVER_PID")
PSS_AFTER=$(pss_kb "$SERVER_PID")
RSS_BASELINE=$(rss_kb "$BASELINE_PID")
kill -0 "$SERVER_PID" 2>/dev/null || fail_with_log "coffer died under load" coffer

# 5. `coffer run -- true` against `true` alone, with the identity's token, on the idle server. When this
# scenario cannot run, the reason goes to run-unavailable and the report says "not available: REASON"; the rest
# of the benchmark stands. The token reaches coffer through COFFER_TOKEN, and XDG_CONFIG_HOME points to an empty
# directory so that no stored login of the user's takes part.
mkdir -m 700 "$WORK/config"
coffer_run() {
    COFFER_TOKEN=$IDENTITY_TOKEN XDG_CONFIG_HOME=$WORK/config "$@"
}
RUN_ARGS="run --domain http://127.0.0.1:$SERVER_PORT --projectId $PROJECT_ID --env dev --path /"
unavailable() {
    printf '%s\n' "$1" >"$WORK/run-unavailable"
    echo "bench: coffer run -- true: not available: $1"
}
# The last line of an error output, on one line and at most 160 characters (coffer's messages never carry a
# secret value).
last_line() {
    tr -d '\r' <"$1" | awk 'NF { line = $0 } END { print substr(line, 1, 160) }'
}
if ! command -v hyperfine >/dev/null 2>&1; then
    unavailable "hyperfine is not installed (sh scripts/deps.sh)"
else
    echo "bench: coffer run -- true, against true alone (hyperfine)"
    probe_rc=0
    # shellcheck disable=SC2086 # RUN_ARGS is split on purpose; none of its words holds a space.
    coffer_run timeout 30 "$COFFER" $RUN_ARGS -- \
        sh -c '[ -n "${KEY_001:-}" ] && [ -n "${KEY_100:-}" ] || exit 99' \
        >"$WORK/run-probe.out" 2>"$WORK/run-probe.err" </dev/null || probe_rc=$?
    if [ $probe_rc -eq 99 ]; then
        unavailable "coffer run did not put KEY_001 and KEY_100 in the command's environment"
    elif [ $probe_rc -eq 124 ]; then
        unavailable "coffer run did not finish within 30 s"
    elif [ $probe_rc -ne 0 ]; then
        unavailable "coffer run exited with status $probe_rc: $(last_line "$WORK/run-probe.err")"
    else
        # -N: no shell in between, so both commands are exec'd directly and timed alike.
        hf_rc=0
        coffer_run timeout 300 hyperfine -N --warmup 10 --min-runs 50 --style basic \
            --export-json "$WORK/hyperfine.json" \
            --command-name "coffer run -- true" "'$COFFER' $RUN_ARGS -- true" \
            --command-name true true >"$WORK/hyperfine.txt" 2>&1 </dev/null || hf_rc=$?
        [ $hf_rc -eq 0 ] ||
            unavailable "hyperfine exited with status $hf_rc: $(last_line "$WORK/hyperfine.txt")"
    fi
fi
kill -0 "$SERVER_PID" 2>/dev/null || fail_with_log "coffer died during coffer run" coffer

# Dynamic secrets: leases per second on PostgreSQL, and `coffer run --lease` to the command starting
# (bench/leases.py: its own cluster and server; its table is bench/results/leases.txt).
python3 "$ROOT/bench/leases.py" "$BUILD" || die "bench/leases.py failed"

# 6. Report.
cat >"$WORK/meta" <<EOF
date=$(date -u '+%Y-%m-%d %H:%M UTC')
cores=$CORES
threads=$BENCH_THREADS
seconds=$BENCH_SECONDS
connections=$BENCH_CONNECTIONS
rounds=$BENCH_ROUNDS
list_bytes=$LIST_BYTES
one_bytes=$ONE_BYTES
start_ms=$START_MS
rss_start=$RSS_START
pss_start=$PSS_START
rss_before=$RSS_BEFORE
pss_before=$PSS_BEFORE
rss_after=$RSS_AFTER
pss_after=$PSS_AFTER
rss_baseline=$RSS_BASELINE
rss_baseline_start=$RSS_BASELINE_START
rss_floor=$RSS_FLOOR
pss_floor=$PSS_FLOOR
jwks_fetches=$(cat "$WORK/jwks.fetches" 2>/dev/null || echo 0)
EOF
echo
report_rc=0
helper report "$WORK" "$ROOT/bench/results/latest.txt" || report_rc=$?
case $report_rc in
    0) ;;
    2) [ "$BENCH_STRICT" = 1 ] && exit 1 ;;
    *) exit 1 ;;
esac
exit 0
