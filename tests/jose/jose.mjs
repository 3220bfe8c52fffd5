// JWT auth against real tokens: mints OIDC-shaped JWTs with the npm `jose` library (pinned in
// package.json / package-lock.json), serves their keys as a JWKS from a local HTTP server, configures machine
// identities through Coffer's admin API and logs in with them, over the API and with the real CLI.
//
//   COFFER_URL=http://127.0.0.1:PORT COFFER_ADMIN_TOKEN=... COFFER_BIN=build/coffer node jose.mjs
//
// Each check prints "ok - NAME" or "not ok - NAME: why"; the last line is "SUITE passed=N failed=N skipped=N"
// (tests/compat/run.py reads it). Exit status 1 when a check failed, 2 when the set-up failed.

import * as jose from "jose";
import http from "node:http";
import crypto from "node:crypto";
import { execFile } from "node:child_process";

const baseUrl = (process.env.COFFER_URL || "").replace(/\/+$/, "");
const adminToken = process.env.COFFER_ADMIN_TOKEN || "";
const cofferBin = process.env.COFFER_BIN || "";
if (!baseUrl || !adminToken || !cofferBin) {
    console.error("jose.mjs: set COFFER_URL, COFFER_ADMIN_TOKEN and COFFER_BIN");
    process.exit(2);
}

let passed = 0;
let failed = 0;
const sent = []; // every JWT sent: none may appear in the server log (run.py checks the answers only)

class CheckFailure extends Error {}
function expect(condition, message) {
    if (!condition) throw new CheckFailure(message);
}
async function check(name, fn) {
    try {
        await fn();
        passed++;
        console.log(`ok - ${name}`);
    } catch (e) {
        failed++;
        console.log(`not ok - ${name}: ${e instanceof CheckFailure ? e.message : e.stack}`);
    }
}

async function api(method, path, body, token = adminToken) {
    const headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(baseUrl + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.status, json, text };
}
async function ok(method, path, body) {
    const r = await api(method, path, body);
    if (r.status !== 200) throw new Error(`${method} ${path} -> ${r.status} ${r.text.slice(0, 300)}`);
    return r.json;
}

// ---- keys and the JWKS server ----

const b64url = (buf) => Buffer.from(buf).toString("base64url");
const ALGS = {
    RS256: () => crypto.generateKeyPairSync("rsa", { modulusLength: 2048 }),
    RS384: () => crypto.generateKeyPairSync("rsa", { modulusLength: 2048 }),
    RS512: () => crypto.generateKeyPairSync("rsa", { modulusLength: 2048 }),
    PS256: () => crypto.generateKeyPairSync("rsa", { modulusLength: 2048 }),
    PS384: () => crypto.generateKeyPairSync("rsa", { modulusLength: 2048 }),
    PS512: () => crypto.generateKeyPairSync("rsa", { modulusLength: 2048 }),
    ES256: () => crypto.generateKeyPairSync("ec", { namedCurve: "P-256" }),
    ES384: () => crypto.generateKeyPairSync("ec", { namedCurve: "P-384" }),
    EdDSA: () => crypto.generateKeyPairSync("ed25519"),
};
const keys = {}; // kid -> {alg, publicKey, privateKey, jwk}
async function makeKey(kid, alg) {
    const { publicKey, privateKey } = ALGS[alg]();
    const jwk = { ...(await jose.exportJWK(publicKey)), kid, use: "sig" };
    keys[kid] = { alg, publicKey, privateKey, jwk };
    return keys[kid];
}

const published = new Map(); // path -> [kid]
const hits = new Map(); // path -> count
const hanging = [];
const server = http.createServer((req, res) => {
    const path = req.url.split("?")[0];
    hits.set(path, (hits.get(path) || 0) + 1);
    if (path.startsWith("/hang")) {
        hanging.push(res); // never answered
        return;
    }
    const kids = published.get(path);
    if (!kids) {
        res.writeHead(404).end();
        return;
    }
    const body = JSON.stringify({ keys: kids.map((k) => keys[k].jwk) });
    res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) }).end(body);
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const jwksBase = `http://127.0.0.1:${server.address().port}`;

// ---- tokens ----

const now = () => Math.floor(Date.now() / 1000);
async function sign(kid, claims, header = {}) {
    const k = keys[kid];
    const token = await new jose.SignJWT(claims)
        .setProtectedHeader({ alg: k.alg, kid, typ: "JWT", ...header })
        .sign(k.privateKey);
    sent.push(token);
    return token;
}
// A token built by hand (for payloads jose would not write), signed RS256 with kid's key.
function signRaw(kid, headerObj, payloadText) {
    const input = `${b64url(JSON.stringify(headerObj))}.${b64url(payloadText)}`;
    const sig = crypto.sign("sha256", Buffer.from(input), keys[kid].privateKey);
    const token = `${input}.${b64url(sig)}`;
    sent.push(token);
    return token;
}

async function identity(name, config) {
    const id = (await ok("POST", "/api/v1/identities", { name: `${name}-${crypto.randomUUID().slice(0, 8)}` })).identity.id;
    await ok("POST", `/api/v1/auth/jwt-auth/identities/${id}`, config);
    return id;
}
const login = (identityId, jwt) => api("POST", "/api/v1/auth/jwt-auth/login", { identityId, jwt }, null);
// The same login on a connection of its own (no keep-alive pool): a connection that fetch reused would belong to the
// server worker that is blocked on the hanging JWKS, and would measure that worker rather than the server.
function loginOnNewConnection(identityId, jwt) {
    const body = JSON.stringify({ identityId, jwt });
    return new Promise((resolve, reject) => {
        const req = http.request(`${baseUrl}/api/v1/auth/jwt-auth/login`, {
            method: "POST", agent: false,
            headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body), Connection: "close" },
        }, (res) => {
            let text = "";
            res.setEncoding("utf8");
            res.on("data", (chunk) => { text += chunk; });
            res.on("end", () => resolve({ status: res.statusCode, text }));
        });
        req.on("error", reject);
        req.end(body);
    });
}
async function expectRefused(identityId, jwt, cause) {
    const r = await login(identityId, jwt);
    expect(r.status === 401, `expected 401, got ${r.status}: ${r.text.slice(0, 200)}`);
    expect(r.json && typeof r.json.message === "string" && r.json.message.includes(cause),
        `expected the cause "${cause}" in: ${r.text.slice(0, 300)}`);
}

// ---- set-up: a project with a secret every identity here may read ----

let projectId;
try {
    projectId = (await ok("POST", "/api/v2/workspace", { projectName: `jose-${crypto.randomUUID().slice(0, 8)}` })).project.id;
    await ok("POST", "/api/v3/secrets/raw/DEPLOY_KEY", { workspaceId: projectId, environment: "prod", secretValue: "deploy-key-value" });
} catch (e) {
    console.error(`set-up failed: ${e.message}`);
    process.exit(2);
}
async function member(identityId) {
    await ok("POST", `/api/v2/workspace/${projectId}/identity-memberships/${identityId}`, { role: "viewer" });
}
async function readsTheSecret(accessToken) {
    const r = await api("GET", `/api/v3/secrets/raw/DEPLOY_KEY?workspaceId=${projectId}&environment=prod`, undefined, accessToken);
    expect(r.status === 200 && r.json.secret.secretValue === "deploy-key-value", `the access token cannot read: ${r.status}`);
}

// ---- providers ----

const tenant = crypto.randomUUID();
const entraIss = `https://login.microsoftonline.com/${tenant}/v2.0`;
await makeKey("entra-1", "RS256");
published.set("/entra/discovery/v2.0/keys", ["entra-1"]);
const entra = await identity("ado-sc", {
    configurationType: "jwks", jwksUrl: `${jwksBase}/entra/discovery/v2.0/keys`, boundIssuer: entraIss,
    boundAudiences: "api://AzureADTokenExchange", boundSubject: "sc://contoso/payments/*",
    boundClaims: { tid: tenant }, accessTokenTTL: 600,
});
await member(entra);
const entraClaims = () => ({
    iss: entraIss, aud: "api://AzureADTokenExchange", sub: "sc://contoso/payments/prod-connection",
    tid: tenant, oid: crypto.randomUUID(), iat: now(), nbf: now(), exp: now() + 600,
});

await check("Entra ID workload identity token (Azure DevOps service connection) logs in and reads", async () => {
    const r = await login(entra, await sign("entra-1", entraClaims()));
    expect(r.status === 200, `login ${r.status}: ${r.text.slice(0, 300)}`);
    expect(r.json.tokenType === "Bearer" && r.json.expiresIn === 600, "unexpected login answer");
    await readsTheSecret(r.json.accessToken);
});

await makeKey("gh-1", "RS256");
published.set("/github/.well-known/jwks", ["gh-1"]);
const gh = await identity("gh-actions", {
    configurationType: "jwks", jwksUrl: `${jwksBase}/github/.well-known/jwks`,
    boundIssuer: "https://token.actions.githubusercontent.com", boundAudiences: "https://github.com/acme",
    boundSubject: "repo:acme/app:ref:refs/*/*", boundClaims: { repository: "acme/app", ref: "refs/heads/*, refs/tags/v*" },
});
await member(gh);
const ghClaims = (extra = {}) => ({
    iss: "https://token.actions.githubusercontent.com", aud: "https://github.com/acme",
    sub: "repo:acme/app:ref:refs/heads/main", repository: "acme/app", ref: "refs/heads/main",
    environment: "prod", job_workflow_ref: "acme/app/.github/workflows/deploy.yml@refs/heads/main",
    iat: now(), exp: now() + 300, ...extra,
});

await check("GitHub Actions OIDC token logs in (bound claims with globs)", async () => {
    const r = await login(gh, await sign("gh-1", ghClaims({ ref: "refs/tags/v1.2.3" })));
    expect(r.status === 200, `login ${r.status}: ${r.text.slice(0, 300)}`);
    await readsTheSecret(r.json.accessToken);
});

await makeKey("gl-1", "RS256");
const glPem = keys["gl-1"].publicKey.export({ type: "spki", format: "pem" });
const gl = await identity("gitlab", {
    configurationType: "static", publicKeys: [glPem], boundIssuer: "https://gitlab.example.com",
    boundAudiences: "https://coffer.example.com", boundSubject: "project_path:group/proj:ref_type:branch:ref:*",
    boundClaims: { namespace_path: "group", project_path: "group/proj" },
});
await check("GitLab CI id_token logs in (static public key)", async () => {
    const r = await login(gl, await sign("gl-1", {
        iss: "https://gitlab.example.com", aud: "https://coffer.example.com",
        sub: "project_path:group/proj:ref_type:branch:ref:main", namespace_path: "group", project_path: "group/proj",
        ref_protected: "true", iat: now(), exp: now() + 300,
    }));
    expect(r.status === 200, `login ${r.status}: ${r.text.slice(0, 300)}`);
});

// ---- every supported algorithm ----

for (const alg of Object.keys(ALGS)) {
    await makeKey(`alg-${alg}`, alg);
}
published.set("/algs", Object.keys(ALGS).map((a) => `alg-${a}`));
const algs = await identity("algs", { configurationType: "jwks", jwksUrl: `${jwksBase}/algs`, boundAudiences: "coffer" });
for (const alg of Object.keys(ALGS)) {
    await check(`${alg} token logs in`, async () => {
        const r = await login(algs, await sign(`alg-${alg}`, { aud: "coffer", sub: "x", exp: now() + 300 }));
        expect(r.status === 200, `login ${r.status}: ${r.text.slice(0, 300)}`);
    });
}

// ---- the CLI ----

await check("coffer login --method=jwt-auth --silent --plain prints a token that reads", async () => {
    const jwt = await sign("gh-1", ghClaims());
    const out = await new Promise((resolve, reject) => {
        execFile(cofferBin, ["login", "--method=jwt-auth", `--machine-identity-id=${gh}`, `--jwt=${jwt}`, "--silent", "--plain"],
            { env: { ...process.env, COFFER_API_URL: baseUrl, HOME: "/nonexistent", XDG_CONFIG_HOME: "/tmp/coffer-jose-xdg" } },
            (err, stdout, stderr) => (err ? reject(new Error(`exit ${err.code}: ${stderr}`)) : resolve(stdout)));
    });
    await readsTheSecret(out.trim());
});

// ---- the negative catalogue ----

const good = () => sign("gh-1", ghClaims());
const catalogue = [
    ["expired", () => sign("gh-1", ghClaims({ exp: now() - 3600, iat: now() - 7200 })), "token expired at"],
    ["not yet valid", () => sign("gh-1", ghClaims({ nbf: now() + 3600 })), "not yet valid"],
    ["issued in the future", () => sign("gh-1", ghClaims({ iat: now() + 3600 })), "issued in the future"],
    ["no exp", () => sign("gh-1", (({ exp, ...c }) => c)(ghClaims())), "no exp claim"],
    ["issuer not allowed", () => sign("gh-1", ghClaims({ iss: "https://token.actions.evil.example" })), "issuer"],
    ["audience mismatch", () => sign("gh-1", ghClaims({ aud: "https://github.com/other" })), "audience mismatch"],
    ["subject mismatch", () => sign("gh-1", ghClaims({ sub: "repo:evil/app:ref:refs/heads/main" })), "subject mismatch"],
    ["claim mismatch", () => sign("gh-1", ghClaims({ repository: "evil/app" })), 'claim "repository" mismatch'],
    ["claim glob mismatch", () => sign("gh-1", ghClaims({ ref: "refs/pull/7/merge" })), 'claim "ref" mismatch'],
    ["unknown key id", async () => { await makeKey("stranger", "RS256"); return sign("stranger", ghClaims()); }, "unknown key id"],
    ["key not in the set, with a kid of the set", async () => {
        await makeKey("impostor", "RS256");
        keys["impostor-as-gh"] = { ...keys.impostor };
        const t = await new jose.SignJWT(ghClaims()).setProtectedHeader({ alg: "RS256", kid: "gh-1" }).sign(keys.impostor.privateKey);
        sent.push(t);
        return t;
    }, "bad signature"],
    ["payload altered after signing", async () => {
        const [h, , s] = (await good()).split(".");
        const t = `${h}.${b64url(JSON.stringify(ghClaims({ repository: "acme/app", environment: "prod-override" })))}.${s}`;
        sent.push(t);
        return t;
    }, "bad signature"],
    ["signature truncated by one byte", async () => {
        const [h, p, s] = (await good()).split(".");
        const t = `${h}.${p}.${b64url(Buffer.from(s, "base64url").subarray(0, -1))}`;
        sent.push(t);
        return t;
    }, "bad signature"],
    ["alg none", async () => {
        const t = `${b64url(JSON.stringify({ alg: "none", kid: "gh-1" }))}.${b64url(JSON.stringify(ghClaims()))}.`;
        sent.push(t);
        return t;
    }, "malformed token"],
    ["HS256 keyed with the public key (PEM)", async () => {
        const pem = keys["gh-1"].publicKey.export({ type: "spki", format: "pem" });
        const t = await new jose.SignJWT(ghClaims()).setProtectedHeader({ alg: "HS256", kid: "gh-1" }).sign(new TextEncoder().encode(pem));
        sent.push(t);
        return t;
    }, "not allowed"],
    ["HS256 keyed with the public JWK", async () => {
        const t = await new jose.SignJWT(ghClaims()).setProtectedHeader({ alg: "HS256", kid: "gh-1" })
            .sign(new TextEncoder().encode(JSON.stringify(keys["gh-1"].jwk)));
        sent.push(t);
        return t;
    }, "not allowed"],
    ["alg that does not fit the key (ES256 on an RSA kid)", async () => {
        await makeKey("ec-forger", "ES256");
        const t = await new jose.SignJWT(ghClaims()).setProtectedHeader({ alg: "ES256", kid: "gh-1" }).sign(keys["ec-forger"].privateKey);
        sent.push(t);
        return t;
    }, "not allowed for key"],
    ["over 16 KiB", () => sign("gh-1", ghClaims({ padding: "x".repeat(17000) })), "longer than"],
    ["malformed base64url", async () => `${(await good()).slice(0, 20)}!!!.${"a".repeat(10)}.${"b".repeat(10)}`, "malformed token"],
    ["payload that is not JSON", async () => signRaw("gh-1", { alg: "RS256", kid: "gh-1" }, "not json at all"), "payload is not a json object"],
    ["payload with a duplicate claim name", async () => {
        const c = ghClaims();
        const text = JSON.stringify(c).replace(/}$/, `,"repository":"evil/app"}`);
        return signRaw("gh-1", { alg: "RS256", kid: "gh-1" }, text);
    }, "repeats a name"],
];
for (const [name, make, cause] of catalogue) {
    await check(`refused: ${name}`, async () => expectRefused(gh, await make(), cause));
}

// Headers that point at other keys are never followed.
await makeKey("attacker", "RS256");
published.set("/attacker/jwks", ["attacker"]);
await check("refused and never fetched: jku / x5u / jwk / x5c pointing at an attacker key", async () => {
    const before = hits.get("/attacker/jwks") || 0;
    const jwk = keys.attacker.jwk;
    const cert = Buffer.from("not-a-real-cert").toString("base64");
    for (const extra of [{ jku: `${jwksBase}/attacker/jwks` }, { x5u: `${jwksBase}/attacker/cert.pem` },
        { jwk }, { x5c: [cert] }]) {
        const t = await new jose.SignJWT(ghClaims()).setProtectedHeader({ alg: "RS256", kid: "attacker", ...extra })
            .sign(keys.attacker.privateKey);
        sent.push(t);
        await expectRefused(gh, t, "unknown key id");
    }
    expect((hits.get("/attacker/jwks") || 0) === before && !hits.has("/attacker/cert.pem"), "an attacker URL was fetched");
});

// ---- rotation and a JWKS that hangs ----

await makeKey("rot-old", "RS256");
await makeKey("rot-new", "RS256");
const rotPath = `/rotation-${crypto.randomUUID()}`;
published.set(rotPath, ["rot-old"]);
const rot = await identity("rotation", { configurationType: "jwks", jwksUrl: `${jwksBase}${rotPath}`, boundAudiences: "coffer" });
await check("a key rotated out of the JWKS is refused once the set is refetched", async () => {
    const claims = () => ({ aud: "coffer", sub: "x", exp: now() + 300 });
    let r = await login(rot, await sign("rot-old", claims()));
    expect(r.status === 200, `old key before rotation: ${r.status}`);
    published.set(rotPath, ["rot-new"]); // the provider rotates: old out, new in
    r = await login(rot, await sign("rot-new", claims())); // an unknown kid makes Coffer refetch
    expect(r.status === 200, `new key after rotation: ${r.status} ${r.text.slice(0, 200)}`);
    await expectRefused(rot, await sign("rot-old", claims()), "unknown key id");
    expect(hits.get(rotPath) === 2, `expected 2 fetches of the JWKS, saw ${hits.get(rotPath)}`);
});

const hang = await identity("hang", { configurationType: "jwks", jwksUrl: `${jwksBase}/hang/jwks`, boundAudiences: "coffer" });
await check("a JWKS server that hangs fails that login within seconds and stalls no other", async () => {
    await makeKey("hang-1", "RS256");
    const started = Date.now();
    const slow = login(hang, await sign("hang-1", { aud: "coffer", sub: "x", exp: now() + 300 }));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const t0 = Date.now();
    const other = await loginOnNewConnection(gl, await sign("gl-1", {
        iss: "https://gitlab.example.com", aud: "https://coffer.example.com",
        sub: "project_path:group/proj:ref_type:branch:ref:main", namespace_path: "group", project_path: "group/proj",
        exp: now() + 300,
    }));
    expect(other.status === 200 && Date.now() - t0 < 2000, `another login waited ${Date.now() - t0} ms (${other.status})`);
    const r = await slow;
    const took = Date.now() - started;
    expect(r.status === 401 && took < 9000, `hanging JWKS: ${r.status} after ${took} ms`);
    expect(/jwks|fetch|key/i.test(r.json.message), `no cause named: ${r.text.slice(0, 200)}`);
});

for (const res of hanging) res.destroy();
server.close();
// The tokens sent, for run.py to look for in the server log.
console.log(`SENT ${JSON.stringify(sent.map((t) => t.slice(-24)))}`);
console.log(`SUITE passed=${passed} failed=${failed} skipped=0`);
process.exit(failed ? 1 : 0);
