// The dashboard's management pages in a real browser, run by browser.mjs with its helpers (`t`): the secret
// editor's tags, expiry and reminder, references resolved on demand, bulk paste of a .env file and the diff
// between versions; the approvals inbox with two people (a change request approved and merged, an access request
// granted); a project's syncs (file destination: one failing with its last error, one synced from the page);
// notification channels (a webhook created, a due notice delivered to a receiver here and its signature checked);
// an expired session in the new forms; and single sign-on against the Entra ID stand-in (tests/fakes/entra_oidc.py,
// started by run.py with its own server). Each page: axe-core, keyboard reachability, screenshots.

import { createHmac, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, existsSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";

// A loopback receiver for webhook notices: keeps each request's headers and body.
function receiver() {
    const got = [];
    const server = createServer((req, res) => {
        let body = "";
        req.on("data", (c) => (body += c));
        req.on("end", () => {
            got.push({ headers: req.headers, body });
            res.writeHead(200, { "Content-Type": "application/json" });
            res.end("{}");
        });
    });
    return new Promise((resolve) =>
        server.listen(0, "127.0.0.1", () => resolve({ got, url: `http://127.0.0.1:${server.address().port}/hook`, server })),
    );
}

async function waitFor(fn, what, tries = 50) {
    for (let i = 0; i < tries; i++) {
        const v = await fn();
        if (v) return v;
        await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what}`);
}

export async function manage(t) {
    const { browser, baseUrl, call, check, expect, accessible, screenshot, noneInDom, signIn, newPage, tabTo, sent, suffix } = t;
    const owner = t.owner;
    // A second person: a project member whose writes to prod need the owner's approval.
    const rita = { email: `rita-${suffix}@example.com`, password: `pw-rita-${randomBytes(9).toString("hex")}` };
    sent.push(rita.password);
    await call("POST", "/api/v1/users", { email: rita.email, orgRole: "member", password: rita.password });
    const ritaPat = (await call("POST", "/api/v1/auth/login", {
        email: rita.email, password: rita.password, personalAccessToken: { name: "test", expiresIn: "1d" },
    })).token;
    sent.push(ritaPat);
    const proj = (await call("POST", "/api/v2/workspace", { projectName: `Ops ${suffix}` })).project;
    const pid = proj.id;
    await call("POST", `/api/v2/workspace/${pid}/user-memberships/${encodeURIComponent(rita.email)}`, { role: "member" });
    const v = {
        db: `db-${suffix}`, host: `host-${suffix}`, cert: `-----BEGIN X-----\ncert-${suffix}\n-----END X-----`,
        prodOld: `prod-old-${suffix}`, prodNew: `prod-new-${suffix}`, pasted: `pasted-${suffix}`,
    };
    sent.push(...Object.values(v));
    const put = (env, key, value) => call("POST", `/api/v3/secrets/raw/${key}`, { workspaceId: pid, environment: env, secretValue: value });
    await put("dev", "DB_PASSWORD", v.db);
    await put("dev", "DB_HOST", v.host);
    await put("dev", "DB_URL", "postgres://app:${DB_PASSWORD}@${DB_HOST}/shop");
    await put("dev", "DIFF_ME", "alpha\nbeta\ngamma");
    await call("PATCH", "/api/v3/secrets/raw/DIFF_ME", { workspaceId: pid, environment: "dev", secretValue: "alpha\nBETA\ngamma\ndelta" });
    await put("prod", "API_KEY", v.prodOld);
    await call("POST", "/api/v1/secret-approvals", { workspaceId: pid, name: "prod-changes", environment: "prod",
        approvals: 1, approvers: [{ type: "user", username: owner.email }] });
    const read = async (env, key) => (await call("GET", `/api/v3/secrets/raw/${key}?workspaceId=${pid}&environment=${env}`)).secret;

    const { context, page } = await newPage(browser);
    await signIn(page, owner.email, owner.password);
    const editor = `${baseUrl}/projects/${pid}/secrets?env=dev&path=%2F`;

    await check("editor: tags, expiry and a reminder set without reading the value, shown on the secret", async () => {
        await page.goto(editor);
        await page.getByRole("button", { name: "Tags and expiry of DIFF_ME" }).click();
        const form = page.getByRole("form", { name: "Details of DIFF_ME" });
        await form.getByLabel("New tag").fill("database");
        await form.getByRole("button", { name: "Create tag" }).click();
        await form.getByRole("checkbox", { name: "database" }).waitFor();
        expect(await form.getByRole("checkbox", { name: "database" }).isChecked(), "the new tag is not selected");
        const inThreeDays = new Date(Date.now() + 3 * 86400000 + 3600000);
        const p = (n) => String(n).padStart(2, "0");
        await form.getByLabel("Expires").fill(`${inThreeDays.getFullYear()}-${p(inThreeDays.getMonth() + 1)}-${p(inThreeDays.getDate())}T${p(inThreeDays.getHours())}:${p(inThreeDays.getMinutes())}`);
        await form.getByLabel("Remind to rotate every (days)").fill("0");
        await form.getByRole("button", { name: "Save details" }).click();
        await form.getByRole("alert").filter({ hasText: "1 to 3650 days" }).waitFor();
        await form.getByLabel("Remind to rotate every (days)").fill("90");
        await form.getByLabel("Reminder note").fill("rotate with the DBA runbook");
        await accessible(page, "editor: tags and expiry form");
        await form.scrollIntoViewIfNeeded();
        await screenshot(page, "editor-details");
        await form.getByRole("button", { name: "Save details" }).click();
        await page.getByRole("status").filter({ hasText: "DIFF_ME: details saved" }).waitFor();
        const li = page.locator('li.secret[data-key="DIFF_ME"]');
        await li.getByText("database", { exact: true }).waitFor();
        await li.getByText(/expires in (2|3) days/).waitFor();
        await li.getByText("rotate every 90 days: rotate with the DBA runbook").waitFor();
        const s = await read("dev", "DIFF_ME");
        expect(s.tags.map((x) => x.slug).join() === "database", `tags ${JSON.stringify(s.tags)}`);
        expect(Math.abs(Date.parse(s.expiresAt) - inThreeDays.getTime()) < 60000, `expiresAt ${s.expiresAt}`);
        expect(s.secretReminderRepeatDays === 90 && s.version === 3, `reminder ${s.secretReminderRepeatDays}, v${s.version}`);
        expect(s.secretValue === "alpha\nBETA\ngamma\ndelta", "the details form changed the value");
        await noneInDom(page, [v.db, v.host, "BETA"], "editor after details");
    });

    await check("editor: the diff of two versions on request, then a rollback that drops the tags and expiry", async () => {
        await page.getByRole("button", { name: "History of DIFF_ME" }).click();
        const hist = page.getByRole("region", { name: "Versions of DIFF_ME" });
        await hist.getByLabel("From", { exact: true }).selectOption("1");
        await hist.getByLabel("To", { exact: true }).selectOption("3");
        await noneInDom(page, ["BETA", "delta"], "history before the diff");
        await hist.getByRole("button", { name: "Show the diff of DIFF_ME" }).click();
        const diff = hist.getByLabel("Diff of DIFF_ME from v1 to v3");
        await diff.waitFor();
        const lines = await diff.locator("span[class^=d-]").evaluateAll((els) => els.map((e) => `${e.className}:${e.textContent.replace(/^(added|removed): [+-] |^ {2}/, "")}`));
        expect(JSON.stringify(lines) === JSON.stringify(["d-same:alpha", "d-del:beta", "d-add:BETA", "d-same:gamma", "d-add:delta"]),
            `diff lines ${JSON.stringify(lines)}`);
        await hist.getByText("1 line(s) removed, 2 added").waitFor();
        await accessible(page, "editor: version diff");
        await diff.scrollIntoViewIfNeeded();
        await screenshot(page, "editor-diff");
        await hist.getByRole("button", { name: "Hide the diff" }).click();
        await noneInDom(page, ["BETA", "delta"], "history after hiding the diff");
        await hist.getByRole("button", { name: "Roll back to v1 of DIFF_ME" }).click();
        await page.getByRole("status").filter({ hasText: "DIFF_ME rolled back to version 1" }).waitFor();
        const s = await read("dev", "DIFF_ME");
        expect(s.secretValue === "alpha\nbeta\ngamma" && s.version === 4, `after rollback v${s.version}`);
        expect(s.tags.length === 0 && s.expiresAt === null && s.secretReminderRepeatDays === null,
            `the rollback kept ${JSON.stringify([s.tags, s.expiresAt, s.secretReminderRepeatDays])}`);
        await page.locator('li.secret[data-key="DIFF_ME"] .meta').waitFor({ state: "detached" });
    });

    await check("editor: references resolved on request only, and the read is audited", async () => {
        const expanded = `postgres://app:${v.db}@${v.host}/shop`;
        await noneInDom(page, [expanded, v.db], "editor before resolving");
        const before = Date.now() - 1000;
        await page.getByRole("button", { name: "Resolve references of DB_URL" }).click();
        const shown = await page.getByTestId("resolved").innerText();
        expect(shown.trim() === expanded, `resolved to ${JSON.stringify(shown)}`);
        const found = await waitFor(async () => {
            const { events } = await call("GET", `/api/v1/audit/events?action=secrets.read&actor=${encodeURIComponent(owner.email)}&limit=1000`);
            return events.find((e) => (e.keys || []).includes("DB_URL") && Date.parse(e.time) >= before - 60000);
        }, "the audit record of the resolved read");
        expect(!JSON.stringify(found).includes(v.db), "the audit record holds a value");
        await page.getByRole("button", { name: "Hide resolved DB_URL" }).click();
        await noneInDom(page, [expanded, v.db], "editor after hiding the resolved value");
    });

    await check("editor: bulk paste of a .env file previews new, changed and unchanged keys, then writes once", async () => {
        const text = [
            "# exported from the old host",
            `export DB_HOST=${v.host}`,
            `DB_PASSWORD='${v.pasted}'`,
            `TLS_CERT="${v.cert.split("\n").join("\n")}"`,
            `GREETING="say \\"hi\\"" # a comment`,
            "not a line",
            "",
        ].join("\n");
        await page.goto(editor);
        await page.getByRole("heading", { level: 1 }).waitFor();
        await page.getByRole("heading", { level: 1 }).focus();
        await tabTo(page, () => document.activeElement?.textContent === "Paste a .env file");
        await page.keyboard.press("Enter");
        await page.getByLabel(".env text").fill('# nothing else\nBROKEN="never closed\n');
        await page.getByRole("button", { name: "Check" }).click();
        await page.getByRole("alert").filter({ hasText: "line 2: the value of BROKEN opens a double quote that is never closed" }).waitFor();
        await page.getByLabel(".env text").fill(text);
        await page.getByRole("button", { name: "Check" }).click();
        const preview = page.getByRole("region", { name: "Import preview" });
        await preview.getByText("2 new, 1 changed, 1 unchanged").waitFor();
        await preview.getByText("line 8: expected KEY=value").waitFor();
        const rows = await preview.locator("tbody tr").evaluateAll((trs) => trs.map((tr) => `${tr.querySelector("th").textContent}=${tr.dataset.change}`));
        expect(JSON.stringify(rows) === JSON.stringify(["DB_HOST=unchanged", "DB_PASSWORD=changed", "TLS_CERT=new", "GREETING=new"]),
            `preview ${JSON.stringify(rows)}`);
        await noneInDom(page, [v.db], "bulk preview");
        await accessible(page, "editor: bulk paste preview");
        await preview.scrollIntoViewIfNeeded();
        await screenshot(page, "editor-bulk");
        const before = (await call("GET", `/api/v1/audit/events?action=secrets.upsert&limit=1000`)).events.length;
        await preview.getByRole("button", { name: "Write 3 secret(s)" }).click();
        await page.getByRole("status").filter({ hasText: "Imported: 2 new, 1 changed" }).waitFor();
        expect((await read("dev", "DB_PASSWORD")).secretValue === v.pasted, "DB_PASSWORD not replaced");
        expect((await read("dev", "TLS_CERT")).secretValue === v.cert, "the multi-line value was not kept");
        expect((await read("dev", "GREETING")).secretValue === 'say "hi"', "the escaped quotes were not read");
        expect((await read("dev", "DB_HOST")).version === 1, "an unchanged key was written");
        const after = await waitFor(async () => {
            const n = (await call("GET", `/api/v1/audit/events?action=secrets.upsert&limit=1000`)).events.length;
            return n > before ? n : 0;
        }, "the batch write's audit record");
        expect(after === before + 1, `${after - before} batch writes, wanted one`);
    });

    await check("an expired session in the details form: back after sign-in with the form filled in", async () => {
        await page.getByRole("button", { name: "Tags and expiry of DB_HOST" }).click();
        await page.getByLabel("Reminder note").fill(`kept-${suffix}`);
        await page.getByLabel("Remind to rotate every (days)").fill("30");
        await context.clearCookies();
        await page.getByRole("button", { name: "Save details" }).click();
        await page.waitForURL(/\/sign-in\?return=/);
        await page.getByLabel("Email").fill(owner.email);
        await page.getByLabel("Password").fill(owner.password);
        await page.getByRole("button", { name: "Sign in", exact: true }).click();
        await page.waitForURL(/\/secrets\?env=dev/);
        await page.getByText("Your unsaved details were kept").waitFor();
        expect((await page.getByLabel("Reminder note").inputValue()) === `kept-${suffix}`, "the note was lost");
        await page.getByRole("button", { name: "Save details" }).click();
        await page.getByRole("status").filter({ hasText: "DB_HOST: details saved" }).waitFor();
        expect((await read("dev", "DB_HOST")).secretReminderNote === `kept-${suffix}`, "the kept form was not saved");
    });

    await check("approvals: a member's change waits in the owner's inbox, masked; approved and merged there; no notifications page for a member", async () => {
        const other = await newPage(browser);
        await signIn(other.page, rita.email, rita.password);
        await other.page.goto(`${baseUrl}/projects/${pid}/secrets?env=prod&path=%2F`);
        await other.page.getByRole("button", { name: "Edit API_KEY" }).click();
        await other.page.getByRole("textbox", { name: "Value", exact: true }).fill(v.prodNew);
        await other.page.getByRole("button", { name: "Save" }).click();
        await other.page.getByRole("status").filter({ hasText: "a change request was opened" }).waitFor();
        await other.page.goto(`${baseUrl}/approvals`);
        await other.page.getByRole("heading", { name: "My requests (1)" }).waitFor();
        // A member has no notifications page (org owners and admins only), and no link to it.
        expect((await other.page.getByRole("link", { name: "Notifications" }).count()) === 0, "a member sees the notifications link");
        await other.page.goto(`${baseUrl}/notifications`);
        await other.page.getByRole("alert").waitFor();
        await other.context.close();
        expect((await read("prod", "API_KEY")).secretValue === v.prodOld, "the held write was applied");

        await page.goto(`${baseUrl}/approvals`);
        await page.getByRole("heading", { name: "To review (1)" }).waitFor();
        const card = page.getByRole("listitem", { name: new RegExp(`change request by ${rita.email}`) });
        await card.getByText("•••• (hidden)").waitFor();
        await noneInDom(page, [v.prodOld, v.prodNew], "approvals inbox");
        await accessible(page, "approvals");
        await screenshot(page, "approvals");
        await page.getByRole("heading", { level: 1 }).focus();
        await tabTo(page, () => document.activeElement?.getAttribute("aria-label")?.startsWith("Approve the change request"), 60);
        await page.keyboard.press("Enter");
        await page.getByRole("status").filter({ hasText: "Approved" }).waitFor();
        await card.getByRole("button", { name: /^Merge the change request/ }).click();
        await page.getByRole("status").filter({ hasText: "Merged" }).waitFor();
        await page.getByRole("heading", { name: "To review (0)" }).waitFor();
        expect((await read("prod", "API_KEY")).secretValue === v.prodNew, "the merge did not write the value");
    });

    await check("access requests: a member's request granted from the inbox", async () => {
        const req = (await call("POST", "/api/v1/access-requests", { projectId: pid, environment: "prod", duration: "1h",
            reason: `incident ${suffix}` }, ritaPat)).accessRequest;
        await page.goto(`${baseUrl}/approvals`);
        const card = page.getByRole("listitem", { name: new RegExp(`access request of ${rita.email}`) });
        await card.getByText(`incident ${suffix}`).waitFor();
        await card.getByLabel(/^Comment on the access request/).fill("for the incident only");
        await card.getByRole("button", { name: /^Grant the access request/ }).click();
        await page.getByRole("status").filter({ hasText: "Access granted" }).waitFor();
        await card.getByText("granted", { exact: true }).waitFor();
        const r = await call("GET", `/api/v1/access-requests/${req.id}`);
        expect(r.accessRequest.status === "granted" && r.accessRequest.comment === "for the incident only", JSON.stringify(r.accessRequest).slice(0, 200));
    });

    await check("syncs: status and last error listed, a sync run from the page", async () => {
        const dir = process.env.COFFER_SYNC_FILE_DIR;
        expect(dir, "run.py did not set COFFER_SYNC_FILE_DIR");
        mkdirSync(join(dir, `blocked-${suffix}`), { recursive: true }); // a directory where the file should go
        const mk = (name, path, auto) => call("POST", "/api/v1/secret-syncs/file", { name, projectId: pid, environment: "dev",
            secretPath: "/", destinationConfig: { path, format: "dotenv" }, isAutoSyncEnabled: auto });
        await mk("broken", join(dir, `blocked-${suffix}`), true);
        const good = (await mk("host-env", join(dir, `app-${suffix}.env`), false)).secretSync;
        await waitFor(async () => (await call("GET", `/api/v1/secret-syncs/file?projectId=${pid}`)).secretSyncs
            .some((s) => s.name === "broken" && s.syncStatus === "failed"), "the broken sync to fail");
        await page.goto(`${baseUrl}/projects/${pid}/automation`);
        const broken = page.locator('tr[data-sync="broken"]');
        await broken.getByText("failed", { exact: true }).waitFor();
        const lastError = (await broken.locator("td.lasterror").innerText()).trim();
        expect(lastError.length > 3 && lastError !== "—", `no last error shown: ${lastError}`);
        await page.getByText("No rotations").waitFor();
        await accessible(page, "syncs and rotations");
        await screenshot(page, "automation");
        await page.getByRole("button", { name: "Sync now: host-env" }).click();
        await page.getByRole("status").filter({ hasText: "host-env: synced" }).waitFor();
        await page.locator('tr[data-sync="host-env"]').getByText("succeeded").waitFor();
        const file = join(dir, `app-${suffix}.env`);
        expect(existsSync(file) && readFileSync(file, "utf8").includes(v.pasted), "the file sync did not write the folder");
        expect(good.id, "no sync id");
    });

    await check("notification channels: a webhook added and tested, a due notice delivered and signed, the channel removed", async () => {
        const hook = await receiver();
        try {
            await page.goto(`${baseUrl}/notifications`);
            await page.getByRole("heading", { name: "Notification channels" }).waitFor();
            await page.getByLabel("URL").fill("ftp://example.com/x");
            await page.getByRole("button", { name: "Add channel" }).click();
            await page.getByRole("alert").waitFor();
            await page.getByLabel("Channel name").fill(`ops-${suffix}`);
            await page.getByLabel("URL").fill(hook.url);
            await page.getByLabel("Hears about").selectOption({ label: proj.name });
            await page.getByRole("button", { name: "Add channel" }).click();
            const secret = (await page.getByTestId("signing-secret").innerText()).trim();
            sent.push(secret);
            expect(secret.length >= 32, "no signing secret shown");
            await page.getByRole("row", { name: new RegExp(`ops-${suffix}`) }).waitFor();
            await accessible(page, "notifications");
            await screenshot(page, "notifications");
            await page.getByRole("button", { name: "Done" }).click();
            await page.getByRole("button", { name: `Send a test to channel ops-${suffix}` }).click();
            await page.getByRole("status").filter({ hasText: `Test message delivered to ops-${suffix}` }).waitFor();
            expect(hook.got.some((g) => g.headers["x-coffer-event"] === "test"), "the receiver got no test message");
            // DB_PASSWORD expires in two days: the project's 7d threshold makes a notice for the new channel.
            await call("PATCH", "/api/v3/secrets/raw/DB_PASSWORD", { workspaceId: pid, environment: "dev",
                expiresAt: new Date(Date.now() + 2 * 86400000).toISOString() });
            await page.getByRole("button", { name: "Deliver due notices now" }).click();
            await page.getByRole("status").filter({ hasText: /Notifications run: .* [1-9]\d* delivered/ }).waitFor();
            const got = await waitFor(() => hook.got.find((g) => g.body.includes("DB_PASSWORD")), "the webhook notice");
            const parts = Object.fromEntries(String(got.headers["x-coffer-signature"] || "").split(",").map((x) => x.split("=", 2)));
            const mac = createHmac("sha256", secret).update(`${parts.t}.${got.body}`).digest("hex");
            expect(parts.v1 === mac, `the signature v1=${String(parts.v1).slice(0, 12)}... does not match the body`);
            expect(!got.body.includes(v.pasted), "the notice holds the value");
            await page.getByRole("row", { name: /delivered/ }).first().waitFor();
            await page.getByRole("button", { name: `Remove channel ops-${suffix}` }).click();
            await page.getByRole("button", { name: `Remove ops-${suffix} for good` }).click();
            await page.getByRole("status").filter({ hasText: "removed" }).waitFor();
            const { channels } = await call("GET", "/api/v1/notifications/channels");
            expect(!channels.some((c) => c.name === `ops-${suffix}`), "the channel is still there");
        } finally {
            hook.server.close();
        }
    });

    await check("the header names the person's role in the server's one organisation", async () => {
        await page.getByRole("banner").getByText("(owner)").waitFor();
    });
    await context.close();

    await check("single sign-on: the button leads through the Entra ID stand-in and lands signed in", async () => {
        const ssoUrl = process.env.COFFER_SSO_URL;
        const fakeUrl = process.env.COFFER_SSO_FAKE_URL;
        expect(ssoUrl && fakeUrl, "run.py did not start the single sign-on server");
        const login = `sam-${suffix}@contoso.example`;
        const res = await fetch(`${fakeUrl}/_fake/entra/users`, { method: "POST", headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ tenant: process.env.COFFER_SSO_TENANT, login, oid: `oid-${suffix}`, name: "Sam SSO" }) });
        expect(res.ok, `the stand-in refused the user: ${res.status}`);
        const sso = await newPage(browser);
        await sso.context.addCookies([{ name: "fake_entra_user", value: login, url: fakeUrl }]);
        await sso.page.goto(`${ssoUrl}/approvals`);
        await sso.page.waitForURL(/\/sign-in/);
        const button = sso.page.getByRole("link", { name: /single sign-on/i });
        await button.waitFor();
        await accessible(sso.page, "sign-in with single sign-on");
        await screenshot(sso.page, "sign-in-sso");
        await button.click();
        await sso.page.waitForURL(`${ssoUrl}/approvals`);
        await sso.page.getByRole("heading", { name: "Approvals" }).waitFor();
        await sso.page.getByRole("banner").getByText(login).waitFor();
        // The session works for unsafe requests too: the CSRF token came with the sign-in.
        await sso.page.getByRole("button", { name: "Sign out", exact: true }).click();
        await sso.page.waitForURL(/\/sign-in/);
        const me = await sso.page.evaluate(() => fetch("/api/v1/users/me").then((r) => r.status));
        expect(me === 401, `after signing out, /users/me answers ${me}`);
        await sso.context.close();
    });
}
