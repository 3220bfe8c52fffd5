// Browser checks of the machine identities, expiry and audit log pages (docs/dashboard.md), run by browser.mjs
// with its page signed in as an owner. Each page is checked against the public API it reads (the same answer,
// the same decision), for accessibility (axe-core), for keyboard use, and photographed at both sizes.

const DAY = 86400000;

// t: browser.mjs's helpers and state: { page, baseUrl, check, expect, call, accessible, screenshot, tabTo,
// sent, suffix, owner, projectId }.
export async function identitiesExpiryAudit(t) {
    const { page, baseUrl, check, expect, call, accessible, tabTo, sent, suffix, owner, projectId } = t;
    // each page photographed from its top (a check may have scrolled it)
    const screenshot = async (p, name) => {
        await p.evaluate(() => window.scrollTo(0, 0));
        await t.screenshot(p, name);
    };
    const identityName = `deploy-${suffix}`;
    let identityId = "";
    let clientId = "";
    let shortSecret = "";
    let releaseSecret = "";
    page.on("dialog", (d) => d.accept()); // the revoke button asks once more

    await check("identities and expiry start with empty states that give the CLI lines", async () => {
        await page.goto(baseUrl + "/identities");
        await page.getByText("No machine identities yet").waitFor();
        const cli = await page.locator("pre").innerText();
        expect(cli.includes("coffer identities create") && cli.includes("client-secrets create"),
            `the identities' empty state says ${cli.slice(0, 160)}`);
        await accessible(page, "identities (empty)");
        await screenshot(page, "identities-empty");
        await page.goto(baseUrl + "/expiry");
        await page.getByText("Nothing ends within 90 days").waitFor();
        expect(await page.getByText("coffer expiring --within 90d").isVisible(), "no coffer expiring line");
        await accessible(page, "expiry (empty)");
        await screenshot(page, "expiry-empty");
    });

    await check("keyboard: create an identity with Tab and Enter, attach universal auth", async () => {
        await page.goto(baseUrl + "/identities");
        await page.getByRole("heading", { name: "Machine identities", exact: true }).waitFor();
        await tabTo(page, () => document.activeElement?.getAttribute("name") === "identityName");
        await page.keyboard.type(identityName);
        await page.keyboard.press("Enter");
        await page.waitForURL(/\/identities\/[0-9a-f-]{36}$/);
        identityId = page.url().split("/").pop();
        await page.getByRole("heading", { name: identityName }).waitFor();
        await tabTo(page, () => document.activeElement?.textContent === "Attach universal auth", 60);
        await page.keyboard.press("Enter");
        await page.getByRole("status").filter({ hasText: "Universal auth attached" }).waitFor();
        const ua = await call("GET", `/api/v1/auth/universal-auth/identities/${identityId}`);
        clientId = ua.identityUniversalAuth.clientId;
        await page.getByRole("group", { name: "Universal auth" }).getByText(clientId).waitFor();
        expect(await page.getByRole("group", { name: "JWT / OIDC" }).getByText("not attached").isVisible(),
            "JWT auth is not shown as not attached");
        expect(await page.getByText("coffer identities client-secrets create").isVisible(),
            "no CLI line while there is no client secret");
    });

    await check("a client secret is shown once, logs in, shows its expiry in words and colour, and is revoked", async () => {
        await page.getByLabel("Description").fill("nightly");
        await page.getByLabel("Expires in").selectOption({ label: "7 days" });
        await page.getByRole("button", { name: "Create client secret" }).click();
        shortSecret = (await page.getByTestId("new-client-secret").innerText()).trim();
        sent.push(shortSecret);
        const login = await call("POST", "/api/v1/auth/universal-auth/login", { clientId, clientSecret: shortSecret });
        expect(login.accessToken, "the client secret shown does not log in");
        sent.push(login.accessToken);
        await page.getByRole("button", { name: "Done" }).click();
        const html = await page.evaluate(() => document.body.innerHTML);
        expect(!html.includes(shortSecret), "the client secret is still in the page after Done");
        await page.getByLabel("Description").fill("release");
        await page.getByLabel("Expires in").selectOption({ label: "90 days" });
        await page.getByRole("button", { name: "Create client secret" }).click();
        releaseSecret = (await page.getByTestId("new-client-secret").innerText()).trim();
        sent.push(releaseSecret);
        await page.getByRole("button", { name: "Done" }).click();
        const rows = page.getByTestId("client-secret-row");
        await rows.nth(1).waitFor();
        const nightly = rows.filter({ hasText: "nightly" }).locator(".badge");
        const release = rows.filter({ hasText: "release" }).locator(".badge");
        expect(/expires in 7 days/.test(await nightly.innerText()), `nightly says ${await nightly.innerText()}`);
        expect((await nightly.getAttribute("class")).includes("bad"), "a secret ending within a week is not red");
        expect(/expires in 90 days/.test(await release.innerText()), `release says ${await release.innerText()}`);
        expect((await release.getAttribute("class")).includes("ok"), "a secret ending in 90 days is not green");
        await page.getByRole("button", { name: "Revoke client secret nightly" }).click();
        await rows.filter({ hasText: "nightly" }).getByText("revoked", { exact: true }).waitFor();
        const res = await fetch(baseUrl + "/api/v1/auth/universal-auth/login", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ clientId, clientSecret: shortSecret }),
        });
        expect(res.status === 401, `a revoked client secret logs in with ${res.status}`);
    });

    await check("a membership with a rule, and what the identity can read, as its own token sees it", async () => {
        await page.getByRole("heading", { name: "What this identity can read" }).waitFor();
        await page.getByTestId("reads-nothing").waitFor();
        const form = page.getByRole("form", { name: "Set a membership" });
        await form.getByLabel("Project").selectOption(projectId);
        await form.getByLabel("Role").selectOption("viewer");
        // bad input: an environment the project does not have is refused, naming the field, and nothing is set
        await form.getByLabel("Rule: environment").fill("nope");
        await form.getByRole("button", { name: "Set membership" }).click();
        await page.getByRole("alert").filter({ hasText: "rules[0].environment" }).waitFor();
        expect((await page.getByTestId("reads-nothing").count()) === 1, "a refused membership changed what it reads");
        await form.getByLabel("Rule: environment").fill("dev");
        await form.getByLabel("Rule: path glob").fill("/**");
        await form.getByRole("button", { name: "Set membership" }).click();
        await page.getByRole("status").filter({ hasText: "Membership set" }).waitFor();
        await page.getByText("read in dev at").waitFor();
        const readable = page.getByTestId("readable");
        await readable.getByRole("link", { name: "/DATABASE_URL" }).waitFor();
        // the same secrets as the identity's own token is allowed to read
        const token = (await call("POST", "/api/v1/auth/universal-auth/login", { clientId, clientSecret: releaseSecret }))
            .accessToken;
        sent.push(token);
        const own = await call("GET", "/api/v1/inventory", undefined, token);
        const keys = own.projects.flatMap((p) => p.environments.flatMap((e) => e.secrets.map((s) => `${e.slug}:${s.secretKey}`)));
        const shown = (await readable.locator("tbody tr").allInnerTexts()).join("\n");
        expect(keys.length > 0 && keys.every((k) => shown.includes(k.split(":")[1]) && shown.includes(`/ ${k.split(":")[0]}`)),
            `the page shows ${shown} but the token reads ${keys.join(", ")}`);
        expect(!/\/ (staging|prod)/.test(shown), `environments the rule does not cover are shown: ${shown}`);
        await accessible(page, "identity");
        await screenshot(page, "identity");
        await page.goto(baseUrl + "/identities/0c3e8f7a-0000-4000-8000-000000000000");
        await page.getByRole("alert").filter({ hasText: "No identity 0c3e8f7a-0000-4000-8000-000000000000" }).waitFor();
        await page.goto(baseUrl + "/identities");
        await page.getByRole("link", { name: identityName }).waitFor();
        await accessible(page, "identities");
        await screenshot(page, "identities");
    });

    await check("expiry: the timeline shows what ends within 90 days, coloured by urgency, each item links to its page", async () => {
        const soon = new Date(Date.now() + 4 * DAY).toISOString();
        const later = new Date(Date.now() + 20 * DAY).toISOString();
        await call("POST", "/api/v3/secrets/raw/API_TOKEN", { workspaceId: projectId, environment: "prod",
            secretValue: `tok-${suffix}`, expiresAt: soon });
        await call("POST", "/api/v3/secrets/raw/CERT_KEY", { workspaceId: projectId, environment: "staging",
            secretValue: `cert-${suffix}`, expiresAt: later });
        await call("POST", "/api/v3/secrets/raw/ROTATE_ME", { workspaceId: projectId, environment: "dev",
            secretValue: `rot-${suffix}`, secretReminderRepeatDays: 45 });
        sent.push(`tok-${suffix}`, `cert-${suffix}`, `rot-${suffix}`);
        const signingSecret = `whsec-${suffix}-${"k".repeat(32)}`;
        sent.push(signingSecret);
        const hook = await call("POST", "/api/v1/app-connections/webhook", { method: "signing-secret",
            name: `hook-${suffix}`, credentials: { signingSecret }, expiresAt: new Date(Date.now() + 45 * DAY).toISOString() });
        const api = await call("GET", "/api/v1/expiring?within=90d");
        await page.goto(baseUrl + "/expiry");
        await page.locator("svg.timeline").waitFor();
        const marks = page.locator("svg.timeline a.mark");
        expect((await marks.count()) === api.count, `${await marks.count()} marks, the API lists ${api.count}`);
        expect((await page.getByTestId("expiring-row").count()) === api.count, "the table and the API differ");
        const urgent = page.locator("svg.timeline a.mark.bad[aria-label^='API_TOKEN']");
        expect(/expires in 4 days/.test(await urgent.getAttribute("aria-label")),
            `the urgent mark says ${await urgent.getAttribute("aria-label")}`);
        expect((await page.locator("svg.timeline a.mark.warn[aria-label^='CERT_KEY']").count()) === 1,
            "the secret ending in 20 days is not amber");
        const reminder = page.locator("svg.timeline a.mark.ok[aria-label^='ROTATE_ME']");
        expect(/: due, due in 45 days/.test(await reminder.getAttribute("aria-label")),
            `the rotation reminder says ${await reminder.getAttribute("aria-label")}`);
        expect((await page.locator(`svg.timeline a.mark.ok[aria-label*='release']`).count()) === 1,
            "the client secret ending in 90 days is not on the timeline in green");
        expect((await page.locator(`svg.timeline a.mark[aria-label*='nightly']`).count()) === 0,
            "a revoked client secret is on the timeline");
        const rotation = await page.getByTestId("expiring-row").filter({ hasText: "API_TOKEN" }).locator("td").last().innerText();
        expect(rotation === "no rotation", `the rotation column says ${rotation}`);
        await accessible(page, "expiry");
        await screenshot(page, "expiry");
        // keyboard: Tab to the urgent mark, Enter opens the secret's folder in the editor
        await tabTo(page, () => document.activeElement?.getAttribute("aria-label")?.startsWith("API_TOKEN"), 60);
        await page.keyboard.press("Enter");
        await page.waitForURL(/\/secrets\?env=prod&path=%2F$/);
        await page.getByText("API_TOKEN").first().waitFor();
        // a connection has no page of its own here: its mark leads to its row of the table
        await page.goto(baseUrl + "/expiry");
        await page.locator(`svg.timeline a.mark.ok[aria-label^='connection hook-${suffix}']`).click();
        await page.waitForFunction((id) => document.activeElement?.id?.startsWith(`exp-${id}`), hook.appConnection.id);
        expect((await page.evaluate(() => document.activeElement.innerText)).includes("expires in 45 days"),
            "the connection's row does not say when it expires");
        await page.locator("svg.timeline a.mark[aria-label*='release']").click();
        await page.waitForURL(new RegExp(`/identities/${identityId}$`));
    });

    await check("audit log: chain verified, filtered by actor, action, project and time, event detail", async () => {
        await page.goto(baseUrl + "/audit");
        const verified = page.getByTestId("verify-status");
        await verified.waitFor();
        expect(/^intact /.test(await verified.innerText()), `verification says ${await verified.innerText()}`);
        // unfiltered, the page opens at the oldest events; "Newest events" jumps to the end of the chain
        const range = page.getByRole("status").filter({ hasText: /events \(seq \d+ to \d+\)/ });
        await range.filter({ hasText: "(seq 1 to 100)" }).waitFor();
        const verifiedEvents = Number(/; (\d+) events/.exec(await verified.innerText())[1]);
        await page.getByRole("button", { name: "Newest events" }).click();
        await range.filter({ hasNotText: "(seq 1 to 100)" }).waitFor();
        const [, first, last] = /seq (\d+) to (\d+)/.exec(await range.innerText()).map(Number);
        expect(last >= verifiedEvents && first === last - 99, `the newest page is seq ${first} to ${last} of ${verifiedEvents}`);
        const form = page.getByRole("form", { name: "Filter events" });
        await form.getByLabel("Actor").fill(owner.email);
        await form.getByLabel("Action").fill("secrets.read");
        await form.getByLabel("Project").selectOption(projectId);
        await form.getByRole("button", { name: "Apply filters" }).click();
        const rows = page.getByTestId("audit-events").locator("tbody tr");
        await rows.first().waitFor();
        const api = await call("GET", `/api/v1/audit/events?actor=${encodeURIComponent(owner.email)}&action=secrets.read&projectId=${projectId}&limit=100`);
        expect(api.events.length > 0 && (await rows.count()) === api.events.length,
            `${await rows.count()} rows, the API answers ${api.events.length}`);
        const actions = await page.getByTestId("audit-events").locator("td.mono").allInnerTexts();
        expect(actions.every((a) => a === "secrets.read"), `other actions listed: ${[...new Set(actions)].join(", ")}`);
        // keyboard: Tab to the first event's detail button, Enter opens the detail
        await tabTo(page, () => document.activeElement?.getAttribute("aria-label")?.startsWith("Details of event"), 60);
        await page.keyboard.press("Enter");
        const detail = page.getByTestId("event-detail");
        await detail.waitFor();
        const text = await detail.innerText();
        expect(text.includes(`user ${owner.email}`) && text.includes("DATABASE_URL") && text.includes(api.events[0].hash),
            `the detail says ${text.slice(0, 300)}`);
        await accessible(page, "audit log");
        await screenshot(page, "audit");
        // a time range after every event: nothing matches, and the page says so
        const future = new Date(Date.now() + 2 * DAY);
        const local = new Date(future.getTime() - future.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
        await form.getByLabel("From").fill(local);
        await form.getByRole("button", { name: "Apply filters" }).click();
        await page.getByText("No event matches these filters").waitFor();
    });
}
