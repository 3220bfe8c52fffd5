// Infisical SDK compatibility checks: drives a running Coffer server with @infisical/sdk (the version pinned in
// package.json / package-lock.json) the way an application would.
//
//   COFFER_URL=http://127.0.0.1:8080 COFFER_ADMIN_TOKEN=... node compat.mjs
//
// The admin token is used only to seed the server through the plain HTTP API (a project with folders, secrets,
// a reference and an import; a machine identity with universal auth, a client secret and a "member"
// membership; a second identity with a "viewer" membership). Everything after that goes through the SDK with
// the identities' own credentials. Each check prints "ok - NAME" or "not ok - NAME: why"; the last line is
// "COMPAT passed=N failed=N skipped=N" (run.py and scripts/test.sh read it). Exit status 1 when a check failed,
// 2 when the seeding itself failed. Secret values here are throwaway test values.

import { InfisicalSDK } from "@infisical/sdk";

const baseUrl = (process.env.COFFER_URL || "").replace(/\/+$/, "");
const adminToken = process.env.COFFER_ADMIN_TOKEN || "";
if (!baseUrl || !adminToken) {
    console.error("compat.mjs: set COFFER_URL and COFFER_ADMIN_TOKEN");
    process.exit(2);
}

const JWT_SHAPE = /^[A-Za-z0-9-_]+\.[A-Za-z0-9-_]+\.[A-Za-z0-9-_]*$/;
let passed = 0;
let failed = 0;

class CheckFailure extends Error {}

function expect(condition, message) {
    if (!condition) throw new CheckFailure(message);
}

function expectEqual(actual, wanted, what) {
    if (actual !== wanted)
        throw new CheckFailure(`${what}: expected ${JSON.stringify(wanted)}, got ${JSON.stringify(actual)}`);
}

async function check(name, fn) {
    try {
        await fn();
        passed++;
        console.log(`ok - ${name}`);
    } catch (e) {
        failed++;
        const why = e instanceof CheckFailure ? e.message : `${e?.name || "Error"}: ${e?.message || e}`;
        console.log(`not ok - ${name}: ${why}`);
    }
}

// Runs fn, which must throw an SDK request error with this HTTP status whose text contains every word.
async function expectRejected(fn, status, ...words) {
    let error = null;
    try {
        await fn();
    } catch (e) {
        error = e;
    }
    expect(error, `expected the SDK to throw a ${status} error, but the call succeeded`);
    const text = String(error.message || "");
    expectEqual(error.name, "InfisicalSDKRequestError", `error class (message ${JSON.stringify(text)})`);
    expect(text.includes(`[StatusCode=${status}]`), `expected status ${status} in ${JSON.stringify(text)}`);
    for (const w of words)
        expect(text.toLowerCase().includes(w.toLowerCase()), `error ${JSON.stringify(text)} should name ${JSON.stringify(w)}`);
    return error;
}

// ----- seeding through the plain API with the admin token -----

async function admin(method, path, body) {
    const res = await fetch(baseUrl + path, {
        method,
        headers: { Authorization: `Bearer ${adminToken}`, "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`seeding: ${method} ${path} -> ${res.status} ${text.slice(0, 500)}`);
    return JSON.parse(text);
}

async function seed() {
    const suffix = Math.random().toString(16).slice(2, 10);
    const project = (await admin("POST", "/api/v2/workspace", { projectName: `compat-${suffix}` })).project;
    const pid = project.id;
    const put = (env, path, key, value) =>
        admin("POST", `/api/v3/secrets/raw/${encodeURIComponent(key)}`,
            { workspaceId: pid, environment: env, secretPath: path, secretValue: value });
    for (const name of ["app", "shared"])
        await admin("POST", "/api/v1/folders", { workspaceId: pid, environment: "dev", name, path: "/" });
    await admin("POST", "/api/v1/folders", { workspaceId: pid, environment: "staging", name: "app", path: "/" });
    await admin("POST", "/api/v1/folders", { workspaceId: pid, environment: "staging", name: "dangle", path: "/" });
    await put("dev", "/", "DB_HOST", "db.internal");
    await put("dev", "/", "DB_URL", "postgres://${DB_HOST}:5432/app");
    await put("dev", "/", "STAGING_TOKEN", "token=${staging.app.TOKEN}");
    await put("dev", "/app", "API_KEY", "compat-api-key-1");
    await put("dev", "/shared", "SHARED_ONE", "shared-value-1");
    await put("dev", "/shared", "DB_HOST", "imported-host-loses");
    await put("staging", "/app", "TOKEN", "staging-token-7");
    await put("staging", "/dangle", "FINE", "fine-${staging.app.TOKEN}");
    await put("staging", "/dangle", "DANGLING", "x-${NOPE}");
    await admin("POST", "/api/v2/secret-imports",
        { projectId: pid, environment: "dev", path: "/", import: { environment: "dev", path: "/shared" } });

    const identity = async (name, role) => {
        const id = (await admin("POST", "/api/v1/identities", { name: `${name}-${suffix}` })).identity.id;
        const ua = (await admin("POST", `/api/v1/auth/universal-auth/identities/${id}`,
            { accessTokenTTL: 600, accessTokenMaxTTL: 3600 })).identityUniversalAuth;
        const cs = await admin("POST", `/api/v1/auth/universal-auth/identities/${id}/client-secrets`,
            { description: `compat ${name}` });
        await admin("POST", `/api/v2/workspace/${pid}/identity-memberships/${id}`, { role });
        return { id, clientId: ua.clientId, clientSecret: cs.clientSecret };
    };
    return { pid, member: await identity("compat-member", "member"), viewer: await identity("compat-viewer", "viewer") };
}

// ----- the checks -----

async function main() {
    let s;
    try {
        s = await seed();
    } catch (e) {
        console.log(`not ok - seeding the server through the API: ${e.message}`);
        console.log("COMPAT passed=0 failed=1 skipped=0");
        process.exit(2);
    }
    const { pid } = s;
    const dev = { projectId: pid, environment: "dev" };
    const keys = (list) => list.map((x) => x.secretKey).sort();
    const byKey = (list) => Object.fromEntries(list.map((x) => [x.secretKey, x]));

    let client = null;
    await check("universalAuth.login returns an authenticated client with a JWT-shaped token", async () => {
        const sdk = new InfisicalSDK({ siteUrl: baseUrl });
        client = await sdk.auth().universalAuth.login({ clientId: s.member.clientId, clientSecret: s.member.clientSecret });
        expect(client instanceof InfisicalSDK, "login did not resolve to the SDK");
        const token = client.auth().getAccessToken();
        expect(typeof token === "string" && JWT_SHAPE.test(token), `token is not JWT-shaped: ${String(token).slice(0, 20)}...`);
    });
    if (!client) {
        // Without a token nothing else can pass: count the rest as failures through the same path.
        client = new InfisicalSDK({ siteUrl: baseUrl });
    }
    const secrets = () => client.secrets();

    await check("listSecrets expands references by default", async () => {
        const res = await secrets().listSecrets({ ...dev });
        expect(Array.isArray(res.secrets), "no secrets array");
        expectEqual(JSON.stringify(keys(res.secrets)), JSON.stringify(["DB_HOST", "DB_URL", "STAGING_TOKEN"]), "keys in dev:/");
        const m = byKey(res.secrets);
        expectEqual(m.DB_URL.secretValue, "postgres://db.internal:5432/app", "DB_URL (same-folder reference)");
        expectEqual(m.STAGING_TOKEN.secretValue, "token=staging-token-7", "STAGING_TOKEN (cross-environment reference)");
        expectEqual(m.DB_HOST.secretValue, "db.internal", "DB_HOST");
        expectEqual(m.DB_HOST.environment, "dev", "environment");
        expectEqual(m.DB_HOST.type, "shared", "type");
        expect(Number.isInteger(m.DB_HOST.version) && m.DB_HOST.version >= 1, "version");
        expect(!("imports" in res) || res.imports === undefined || res.imports.length === 0,
            "imports returned although not asked for");
    });

    await check("listSecrets with expandSecretReferences: false returns the raw reference", async () => {
        const res = await secrets().listSecrets({ ...dev, expandSecretReferences: false });
        const m = byKey(res.secrets);
        expectEqual(m.DB_URL.secretValue, "postgres://${DB_HOST}:5432/app", "DB_URL");
        expectEqual(m.STAGING_TOKEN.secretValue, "token=${staging.app.TOKEN}", "STAGING_TOKEN");
    });

    await check("listSecrets in a folder and recursively", async () => {
        const app = await secrets().listSecrets({ ...dev, secretPath: "/app" });
        expectEqual(JSON.stringify(keys(app.secrets)), JSON.stringify(["API_KEY"]), "keys in dev:/app");
        expectEqual(app.secrets[0].secretValue, "compat-api-key-1", "API_KEY");
        const all = await secrets().listSecrets({ ...dev, recursive: true, expandSecretReferences: false });
        const where = all.secrets.map((x) => `${x.secretPath}:${x.secretKey}`).sort();
        expectEqual(JSON.stringify(where), JSON.stringify(
            ["/:DB_HOST", "/:DB_URL", "/:STAGING_TOKEN", "/app:API_KEY", "/shared:DB_HOST", "/shared:SHARED_ONE"]),
            "recursive list of dev:/");
    });

    await check("listSecrets (recursive, expanded) answers a folder holding a dangling reference", async () => {
        const res = await secrets().listSecrets({ projectId: pid, environment: "staging", secretPath: "/dangle",
            recursive: true });
        const m = byKey(res.secrets);
        expectEqual(m.FINE.secretValue, "fine-staging-token-7", "FINE (expanded)");
        expectEqual(m.DANGLING.secretValue, "x-${NOPE}", "DANGLING (left unexpanded)");
    });

    await check("listSecrets with includeImports returns the imported folder", async () => {
        const res = await secrets().listSecrets({ ...dev, includeImports: true });
        expect(Array.isArray(res.imports) && res.imports.length === 1, `imports: ${JSON.stringify(res.imports)?.slice(0, 200)}`);
        expectEqual(res.imports[0].secretPath, "/shared", "imports[0].secretPath");
        expectEqual(res.imports[0].environment, "dev", "imports[0].environment");
        expectEqual(JSON.stringify(keys(res.imports[0].secrets)), JSON.stringify(["DB_HOST", "SHARED_ONE"]), "imported keys");
    });

    await check("listSecretsWithImports merges imports, local keys winning", async () => {
        const list = await secrets().listSecretsWithImports({ ...dev });
        expectEqual(JSON.stringify(keys(list)), JSON.stringify(["DB_HOST", "DB_URL", "SHARED_ONE", "STAGING_TOKEN"]), "merged keys");
        const m = byKey(list);
        expectEqual(m.DB_HOST.secretValue, "db.internal", "DB_HOST (local wins)");
        expectEqual(m.SHARED_ONE.secretValue, "shared-value-1", "SHARED_ONE");
        expectEqual(m.SHARED_ONE.secretPath, "/shared", "SHARED_ONE.secretPath");
        expectEqual(m.DB_URL.secretValue, "postgres://db.internal:5432/app", "DB_URL expanded");
    });

    await check("getSecret expands by default; expandSecretReferences: false does not", async () => {
        const expanded = await secrets().getSecret({ ...dev, secretName: "DB_URL" });
        expectEqual(expanded.secretKey, "DB_URL", "secretKey");
        expectEqual(expanded.secretValue, "postgres://db.internal:5432/app", "expanded value");
        expectEqual(expanded.secretPath, "/", "secretPath");
        const raw = await secrets().getSecret({ ...dev, secretName: "DB_URL", expandSecretReferences: false });
        expectEqual(raw.secretValue, "postgres://${DB_HOST}:5432/app", "raw value");
        const nested = await secrets().getSecret({ ...dev, secretName: "API_KEY", secretPath: "/app" });
        expectEqual(nested.secretValue, "compat-api-key-1", "API_KEY in /app");
    });

    await check("getSecret of a missing key throws a 404 naming it", async () => {
        await expectRejected(() => secrets().getSecret({ ...dev, secretName: "NO_SUCH_KEY" }), 404, "NO_SUCH_KEY");
    });

    await check("createSecret, then getSecret reads it back", async () => {
        const res = await secrets().createSecret("SDK_CREATED", { ...dev, secretValue: "v1-value", secretComment: "made by the SDK" });
        expect(res && res.secret, `no secret in ${JSON.stringify(res)?.slice(0, 200)}`);
        expectEqual(res.secret.secretKey, "SDK_CREATED", "secretKey");
        expectEqual(res.secret.secretValue, "v1-value", "secretValue");
        expectEqual(res.secret.secretComment, "made by the SDK", "secretComment");
        expectEqual(res.secret.version, 1, "version");
        const got = await secrets().getSecret({ ...dev, secretName: "SDK_CREATED" });
        expectEqual(got.secretValue, "v1-value", "read back");
    });

    await check("createSecret of an existing key throws a 400", async () => {
        await expectRejected(() => secrets().createSecret("SDK_CREATED", { ...dev, secretValue: "again" }), 400, "SDK_CREATED");
    });

    await check("updateSecret changes the value, then renames", async () => {
        const res = await secrets().updateSecret("SDK_CREATED", { ...dev, secretValue: "v2-value" });
        expectEqual(res.secret.secretValue, "v2-value", "secretValue");
        expectEqual(res.secret.version, 2, "version");
        const renamed = await secrets().updateSecret("SDK_CREATED", { ...dev, newSecretName: "SDK_RENAMED" });
        expectEqual(renamed.secret.secretKey, "SDK_RENAMED", "renamed key");
        const got = await secrets().getSecret({ ...dev, secretName: "SDK_RENAMED" });
        expectEqual(got.secretValue, "v2-value", "value after rename");
        await expectRejected(() => secrets().getSecret({ ...dev, secretName: "SDK_CREATED" }), 404);
    });

    await check("createSecret and updateSecret in a folder", async () => {
        await secrets().createSecret("IN_APP", { ...dev, secretPath: "/app", secretValue: "a1" });
        const res = await secrets().updateSecret("IN_APP", { ...dev, secretPath: "/app", secretValue: "a2" });
        expectEqual(res.secret.secretValue, "a2", "secretValue");
        const list = await secrets().listSecrets({ ...dev, secretPath: "/app" });
        expectEqual(JSON.stringify(keys(list.secrets)), JSON.stringify(["API_KEY", "IN_APP"]), "keys in dev:/app");
    });

    await check("deleteSecret returns the deleted secret, which is then gone", async () => {
        const res = await secrets().deleteSecret("SDK_RENAMED", { ...dev });
        expectEqual(res.secret.secretKey, "SDK_RENAMED", "deleted key");
        await expectRejected(() => secrets().getSecret({ ...dev, secretName: "SDK_RENAMED" }), 404, "SDK_RENAMED");
        const inApp = await secrets().deleteSecret("IN_APP", { ...dev, secretPath: "/app" });
        expectEqual(inApp.secret.secretKey, "IN_APP", "deleted key in /app");
    });

    await check("universalAuth.renew keeps the client working", async () => {
        const renewed = await client.auth().universalAuth.renew();
        const token = renewed.auth().getAccessToken();
        expect(JWT_SHAPE.test(token || ""), "renewed token is not JWT-shaped");
        const res = await renewed.secrets().listSecrets({ ...dev, secretPath: "/app" });
        expectEqual(res.secrets.length, 1, "secrets after renew");
    });

    await check("accessToken(token) authenticates a new client", async () => {
        const token = client.auth().getAccessToken();
        const other = new InfisicalSDK({ siteUrl: baseUrl }).auth().accessToken(token);
        const got = await other.secrets().getSecret({ ...dev, secretName: "DB_HOST" });
        expectEqual(got.secretValue, "db.internal", "DB_HOST");
    });

    await check("a wrong client secret is rejected with a readable 401", async () => {
        const sdk = new InfisicalSDK({ siteUrl: baseUrl });
        const wrong = s.member.clientSecret.slice(0, -1) + (s.member.clientSecret.endsWith("a") ? "b" : "a");
        const e = await expectRejected(
            () => sdk.auth().universalAuth.login({ clientId: s.member.clientId, clientSecret: wrong }), 401, "invalid client secret");
        expect(!e.message.includes(wrong), "the error repeats the presented secret");
    });

    await check("a viewer identity can read but not write (403 through the SDK)", async () => {
        const viewer = await new InfisicalSDK({ siteUrl: baseUrl }).auth().universalAuth.login(
            { clientId: s.viewer.clientId, clientSecret: s.viewer.clientSecret });
        const got = await viewer.secrets().getSecret({ ...dev, secretName: "DB_HOST" });
        expectEqual(got.secretValue, "db.internal", "viewer read");
        await expectRejected(() => viewer.secrets().createSecret("VIEWER_WRITE", { ...dev, secretValue: "x" }), 403);
        await expectRejected(() => viewer.secrets().deleteSecret("DB_HOST", { ...dev }), 403);
        const still = await viewer.secrets().getSecret({ ...dev, secretName: "DB_HOST" });
        expectEqual(still.secretValue, "db.internal", "DB_HOST after the refused delete");
    });

    console.log(`COMPAT passed=${passed} failed=${failed} skipped=0`);
    process.exit(failed ? 1 : 0);
}

main().catch((e) => {
    console.log(`not ok - compat.mjs crashed: ${e?.stack || e}`);
    console.log(`COMPAT passed=${passed} failed=${failed + 1} skipped=0`);
    process.exit(1);
});
