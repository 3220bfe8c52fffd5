// Machine identities: the list with a form to create one, and one identity's page: its auth methods and their
// settings, its client secrets (expiry in words and colour, create shown once, revoke), its project memberships
// with their rules, and what it can read (the inventory as the identity itself would see it).
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, errorText, type Project } from "./api";
import { navigate } from "./router";
import { ErrorBox, Field, Loading, PageTitle, ShownOnce, Status, Table, when } from "./ui";
import { expiryWords, urgencyOf } from "./urgency";

export interface Identity {
    id: string;
    name: string;
    authMethods: string[];
    createdAt: string;
}
interface ClientSecret {
    id: string;
    description: string;
    clientSecretPrefix: string;
    clientSecretNumUses: number;
    clientSecretNumUsesLimit: number;
    expiresAt: string | null;
    isClientSecretRevoked: boolean;
    createdAt: string;
}
interface Rule {
    actions: string[];
    environment?: string;
    secretPath?: string;
}
interface Membership {
    identityId: string;
    projectId: string;
    role: string;
    rules: Rule[];
    createdAt: string;
}
interface InventoryDoc {
    projects: {
        id: string;
        name: string;
        slug: string;
        environments: {
            slug: string;
            name: string;
            readers: { identityId: string; paths: string[]; role: string }[];
            secrets: { secretId: string; secretKey: string; secretPath: string; expiresAt: string | null }[];
        }[];
    }[];
}

const METHODS: { slug: string; title: string; member: string; attach: string }[] = [
    {
        slug: "universal-auth",
        title: "Universal auth",
        member: "identityUniversalAuth",
        attach: "coffer identities universal-auth attach ID",
    },
    {
        slug: "jwt-auth",
        title: "JWT / OIDC",
        member: "identityJwtAuth",
        attach: "coffer identities jwt-auth attach ID --jwks-url https://issuer.example/.well-known/jwks.json --bound-issuer https://issuer.example",
    },
    {
        slug: "kubernetes-auth",
        title: "Kubernetes",
        member: "identityKubernetesAuth",
        attach: "coffer identities kubernetes-auth attach ID --kubernetes-host https://kubernetes.default.svc --allowed-namespaces ci",
    },
];

// Settings shown per method (in this order), with a label; anything else in the answer is left out.
const SETTINGS: [string, string][] = [
    ["clientId", "Client id"],
    ["configurationType", "Configuration"],
    ["jwksUrl", "JWKS URL"],
    ["boundIssuer", "Bound issuer"],
    ["boundAudiences", "Bound audiences"],
    ["boundSubject", "Bound subject"],
    ["boundClaims", "Bound claims"],
    ["kubernetesHost", "Kubernetes host"],
    ["allowedNamespaces", "Allowed namespaces"],
    ["allowedNames", "Allowed service accounts"],
    ["allowedAudience", "Allowed audience"],
    ["hasTokenReviewerJwt", "Token reviewer JWT set"],
    ["accessTokenTTL", "Access token TTL (s)"],
    ["accessTokenMaxTTL", "Access token max TTL (s)"],
    ["accessTokenNumUsesLimit", "Access token use limit"],
    ["accessTokenTrustedIps", "Access token trusted IPs"],
    ["clientSecretTrustedIps", "Client secret trusted IPs"],
];

function settingText(v: unknown): string {
    if (v === null || v === undefined || v === "") return "—";
    if (Array.isArray(v))
        return v.length
            ? v
                  .map((x) =>
                      typeof x === "object" && x
                          ? (x as { ipAddress?: string }).ipAddress || JSON.stringify(x)
                          : String(x),
                  )
                  .join(", ")
            : "—";
    if (typeof v === "object") {
        const entries = Object.entries(v as Record<string, unknown>);
        return entries.length ? entries.map(([k, x]) => `${k}=${x}`).join("; ") : "—";
    }
    if (typeof v === "boolean") return v ? "yes" : "no";
    return String(v);
}

export function Identities() {
    const [list, setList] = useState<Identity[] | null>(null);
    const [name, setName] = useState("");
    const [search, setSearch] = useState("");
    const [error, setError] = useState<string | null>(null);
    const [busy, setBusy] = useState(false);

    useEffect(() => {
        api<{ identities: Identity[] }>("GET", "/api/v1/identities")
            .then((r) => setList(r.identities.sort((a, b) => a.name.localeCompare(b.name))))
            .catch((e) => setError(errorText(e)));
    }, []);

    async function create(e: Event) {
        e.preventDefault();
        setBusy(true);
        setError(null);
        try {
            const r = await api<{ identity: Identity }>("POST", "/api/v1/identities", { name: name.trim() });
            navigate(`/identities/${encodeURIComponent(r.identity.id)}`);
        } catch (err) {
            setError(errorText(err));
            setBusy(false);
        }
    }

    const q = search.trim().toLowerCase();
    const shown = (list || []).filter((i) => !q || i.name.toLowerCase().includes(q) || i.id.startsWith(q));
    return (
        <section>
            <PageTitle>Machine identities</PageTitle>
            <p class="muted">
                Pipelines, Terraform runs and workloads log in as an identity and read what its memberships allow.
            </p>
            <ErrorBox error={error} />
            <form class="inline" onSubmit={create} aria-label="Create an identity">
                <Field label="New identity name" name="identityName" value={name} onInput={setName} required />
                <button type="submit" class="primary" disabled={busy}>
                    Create identity
                </button>
            </form>
            {!list ? (
                !error && <Loading what="identities" />
            ) : list.length === 0 ? (
                <div class="empty">
                    <h2>No machine identities yet</h2>
                    <p>
                        An identity lets a pipeline read secrets without a person's credentials. Create one above, or
                        from the CLI, then give it a client secret and a membership:
                    </p>
                    <pre>
                        <code>{`ID=$(coffer identities create deploy-pipeline --plain)
CLIENT_ID=$(coffer identities universal-auth attach "$ID" --plain)
SECRET=$(coffer identities client-secrets create "$ID" --description ci --ttl 90d)
coffer identities add-to-project "$ID" --projectId my-app --role viewer --env prod`}</code>
                    </pre>
                </div>
            ) : (
                <>
                    <div class="search">
                        <Field label="Search identities" type="search" value={search} onInput={setSearch} />
                    </div>
                    <p class="muted" role="status">
                        {shown.length} of {list.length} identities
                    </p>
                    <Table label="Identities" head={["Name", "Auth methods", "Created"]}>
                        {shown.map((i) => (
                            <tr key={i.id}>
                                <th scope="row">
                                    <a href={`/identities/${encodeURIComponent(i.id)}`}>{i.name}</a>
                                </th>
                                <td>{i.authMethods.length ? i.authMethods.join(", ") : "none"}</td>
                                <td>{when(i.createdAt)}</td>
                            </tr>
                        ))}
                    </Table>
                </>
            )}
        </section>
    );
}

const TTLS: [string, string][] = [
    ["604800", "7 days"],
    ["2592000", "30 days"],
    ["7776000", "90 days"],
    ["31536000", "365 days"],
    ["0", "never"],
];
const ROLES = ["viewer", "member", "admin", "no-access"];
// Secret names listed per environment under "what this identity can read"; the rest are counted.
const SHOWN_MAX = 50;

export function IdentityPage({ identityId }: { identityId: string }) {
    const base = `/api/v1/auth/universal-auth/identities/${encodeURIComponent(identityId)}`;
    const [identity, setIdentity] = useState<Identity | null>(null);
    const [methods, setMethods] = useState<Record<string, Record<string, unknown> | null> | null>(null);
    const [secrets, setSecrets] = useState<ClientSecret[] | null>(null);
    const [projects, setProjects] = useState<Project[]>([]);
    const [memberships, setMemberships] = useState<Membership[] | null>(null);
    const [readable, setReadable] = useState<InventoryDoc | null>(null);
    const [error, setError] = useState<string | null>(null);
    const [status, setStatus] = useState<string | null>(null);
    const [created, setCreated] = useState<{ secret: string; data: ClientSecret } | null>(null);
    const [description, setDescription] = useState("");
    const [ttl, setTtl] = useState("7776000");
    const [member, setMember] = useState({ project: "", role: "viewer", env: "", path: "", actions: "read" });

    async function load() {
        let found: Identity;
        try {
            found = (await api<{ identity: Identity }>("GET", `/api/v1/identities/${encodeURIComponent(identityId)}`))
                .identity;
        } catch (e) {
            setError(e instanceof ApiError && e.status === 404 ? `No identity ${identityId}` : errorText(e));
            return;
        }
        setIdentity(found);
        try {
            const methodOf = async (m: (typeof METHODS)[number]) =>
                found.authMethods.includes(m.slug)
                    ? (
                          await api<Record<string, Record<string, unknown>>>(
                              "GET",
                              `/api/v1/auth/${m.slug}/identities/${encodeURIComponent(identityId)}`,
                          )
                      )[m.member]
                    : null;
            const [configs, list, doc] = await Promise.all([
                Promise.all(METHODS.map(methodOf)),
                api<{ workspaces: Project[] }>("GET", "/api/v1/workspace"),
                api<InventoryDoc>("GET", "/api/v1/inventory", undefined, { query: { identityId } }),
            ]);
            const got: Record<string, Record<string, unknown> | null> = {};
            METHODS.forEach((m, i) => (got[m.slug] = configs[i]));
            setMethods(got);
            setSecrets(
                got["universal-auth"]
                    ? (await api<{ clientSecretData: ClientSecret[] }>("GET", `${base}/client-secrets`))
                          .clientSecretData
                    : [],
            );
            const ps = list.workspaces.sort((a, b) => a.name.localeCompare(b.name));
            setProjects(ps);
            // memberships are listed per project: every project's, read side by side
            const perProject = await Promise.all(
                ps.map((p) =>
                    api<{ identityMemberships: Membership[] }>(
                        "GET",
                        `/api/v2/workspace/${encodeURIComponent(p.id)}/identity-memberships`,
                    ),
                ),
            );
            setMemberships(perProject.flatMap((l) => l.identityMemberships.filter((m) => m.identityId === identityId)));
            setReadable(doc);
        } catch (e) {
            setError(errorText(e));
        }
    }
    useEffect(() => {
        load();
    }, [identityId]);

    async function act(what: () => Promise<unknown>, done: string) {
        setError(null);
        setStatus(null);
        try {
            await what();
            setStatus(done);
            await load();
        } catch (e) {
            setError(errorText(e));
        }
    }

    async function createSecret(e: Event) {
        e.preventDefault();
        await act(async () => {
            const r = await api<{ clientSecret: string; clientSecretData: ClientSecret }>(
                "POST",
                `${base}/client-secrets`,
                { description: description.trim(), ttl: Number(ttl) },
            );
            setCreated({ secret: r.clientSecret, data: r.clientSecretData });
            setDescription("");
        }, "Client secret created");
    }

    async function addMembership(e: Event) {
        e.preventDefault();
        const rule: Rule = {
            actions: member.actions
                .split(",")
                .map((a) => a.trim())
                .filter(Boolean),
        };
        if (member.env.trim()) rule.environment = member.env.trim();
        if (member.path.trim()) rule.secretPath = member.path.trim();
        const narrowed = member.env.trim() || member.path.trim();
        await act(
            () =>
                api(
                    "POST",
                    `/api/v2/workspace/${encodeURIComponent(member.project)}/identity-memberships/${encodeURIComponent(identityId)}`,
                    narrowed ? { role: member.role, rules: [rule] } : { role: member.role },
                ),
            "Membership set",
        );
    }

    if (!identity)
        return (
            <section>
                <PageTitle>Machine identity</PageTitle>
                <ErrorBox error={error} />
                {!error && <Loading what="the identity" />}
            </section>
        );

    const projectName = (id: string) => projects.find((p) => p.id === id)?.name || id;
    const ua = methods?.["universal-auth"];
    const reads = (readable?.projects || []).flatMap((p) =>
        p.environments.map((e) => ({
            project: p,
            env: e,
            paths: e.readers.find((r) => r.identityId === identityId)?.paths || [],
        })),
    );
    return (
        <section>
            <p class="crumbs">
                <a href="/identities">Machine identities</a> /
            </p>
            <PageTitle>{identity.name}</PageTitle>
            <p class="muted">
                Identity id <code>{identity.id}</code>, created {when(identity.createdAt)}
            </p>
            <ErrorBox error={error} />
            <Status text={status} />

            <h2>Auth methods</h2>
            {!methods ? (
                <Loading what="auth methods" />
            ) : (
                <div class="methods">
                    {METHODS.map((m) => {
                        const cfg = methods[m.slug];
                        return (
                            <div class="method" key={m.slug} role="group" aria-label={m.title}>
                                <h3>
                                    {m.title}{" "}
                                    <span class={`badge ${cfg ? "ok" : "warn"}`}>
                                        {cfg ? "attached" : "not attached"}
                                    </span>
                                </h3>
                                {cfg ? (
                                    <dl class="settings">
                                        {SETTINGS.filter(([k]) => k in cfg).map(([k, label]) => (
                                            <div key={k}>
                                                <dt>{label}</dt>
                                                <dd class={k === "clientId" ? "mono" : undefined}>
                                                    {settingText(cfg[k])}
                                                </dd>
                                            </div>
                                        ))}
                                    </dl>
                                ) : (
                                    <>
                                        <p class="muted">Attach it from the CLI:</p>
                                        <pre>
                                            <code>{m.attach.replace("ID", identity.id)}</code>
                                        </pre>
                                        {m.slug === "universal-auth" && (
                                            <button
                                                type="button"
                                                onClick={() =>
                                                    act(() => api("POST", base, {}), "Universal auth attached")
                                                }
                                            >
                                                Attach universal auth
                                            </button>
                                        )}
                                    </>
                                )}
                            </div>
                        );
                    })}
                </div>
            )}

            <h2>Client secrets</h2>
            {!ua ? (
                <p class="muted">Client secrets belong to universal auth: attach it first.</p>
            ) : (
                <>
                    {created && (
                        <ShownOnce
                            label="Client secret"
                            intro={
                                <>
                                    <strong>{created.data.description || "Client secret"}</strong>,{" "}
                                    {expiryWords(created.data.expiresAt)}.
                                </>
                            }
                            value={created.secret}
                            testId="new-client-secret"
                            onStatus={setStatus}
                            onDone={() => setCreated(null)}
                        />
                    )}
                    <form class="inline" onSubmit={createSecret} aria-label="Create a client secret">
                        <Field label="Description" name="description" value={description} onInput={setDescription} />
                        <div class="field">
                            <label for="cs-ttl">Expires in</label>
                            <select
                                id="cs-ttl"
                                value={ttl}
                                onChange={(e) => setTtl((e.target as HTMLSelectElement).value)}
                            >
                                {TTLS.map(([v, l]) => (
                                    <option key={v} value={v}>
                                        {l}
                                    </option>
                                ))}
                            </select>
                        </div>
                        <button type="submit" class="primary">
                            Create client secret
                        </button>
                    </form>
                    {!secrets ? (
                        <Loading what="client secrets" />
                    ) : secrets.length === 0 ? (
                        <div class="empty">
                            <p>No client secret yet. Create one above, or from the CLI, and log in with it:</p>
                            <pre>
                                <code>{`SECRET=$(coffer identities client-secrets create ${identity.id} --description ci --ttl 90d)
coffer login --method universal-auth --client-id ${String(ua.clientId)} --client-secret "$SECRET"`}</code>
                            </pre>
                        </div>
                    ) : (
                        <Table
                            label="Client secrets"
                            head={["Description", "Prefix", "Created", "Expiry", "Uses", "Action"]}
                        >
                            {secrets.map((s) => (
                                <tr key={s.id} data-testid="client-secret-row">
                                    <th scope="row">{s.description || "(no description)"}</th>
                                    <td class="mono">{s.clientSecretPrefix}…</td>
                                    <td>{when(s.createdAt)}</td>
                                    <td>
                                        {s.isClientSecretRevoked ? (
                                            <span class="badge bad">revoked</span>
                                        ) : (
                                            <span class={`badge ${urgencyOf(s.expiresAt)}`} title={s.expiresAt || ""}>
                                                {expiryWords(s.expiresAt)}
                                            </span>
                                        )}
                                    </td>
                                    <td>
                                        {s.clientSecretNumUses}
                                        {s.clientSecretNumUsesLimit ? ` of ${s.clientSecretNumUsesLimit}` : ""}
                                    </td>
                                    <td>
                                        {!s.isClientSecretRevoked && (
                                            <button
                                                type="button"
                                                class="danger"
                                                aria-label={`Revoke client secret ${s.description || s.clientSecretPrefix}`}
                                                onClick={() =>
                                                    confirm(
                                                        "Revoke this client secret? Its tokens stop working at once.",
                                                    ) &&
                                                    act(
                                                        () =>
                                                            api(
                                                                "POST",
                                                                `${base}/client-secrets/${encodeURIComponent(s.id)}/revoke`,
                                                            ),
                                                        "Client secret revoked",
                                                    )
                                                }
                                            >
                                                Revoke
                                            </button>
                                        )}
                                    </td>
                                </tr>
                            ))}
                        </Table>
                    )}
                </>
            )}

            <h2>Memberships and rules</h2>
            {!memberships ? (
                <Loading what="memberships" />
            ) : memberships.length === 0 ? (
                <div class="empty">
                    <p>This identity belongs to no project, so it can read nothing. Add it to one below, or:</p>
                    <pre>
                        <code>{`coffer identities add-to-project ${identity.id} --projectId my-app --role viewer --env prod --path '/**' --actions read`}</code>
                    </pre>
                </div>
            ) : (
                <Table label="Memberships" head={["Project", "Role", "Rules", "Action"]}>
                    {memberships.map((m) => (
                        <tr key={m.projectId}>
                            <th scope="row">
                                <a href={`/projects/${encodeURIComponent(m.projectId)}`}>{projectName(m.projectId)}</a>
                            </th>
                            <td>{m.role}</td>
                            <td>
                                {m.rules.length === 0 ? (
                                    <span class="muted">none: the whole role, every environment</span>
                                ) : (
                                    <ul class="rules">
                                        {m.rules.map((r, i) => (
                                            <li key={i}>
                                                {r.actions.join(", ")} in {r.environment || "any environment"} at{" "}
                                                <code>{r.secretPath || "/**"}</code>
                                            </li>
                                        ))}
                                    </ul>
                                )}
                            </td>
                            <td>
                                <button
                                    type="button"
                                    aria-label={`Remove from ${projectName(m.projectId)}`}
                                    onClick={() =>
                                        act(
                                            () =>
                                                api(
                                                    "DELETE",
                                                    `/api/v2/workspace/${encodeURIComponent(m.projectId)}/identity-memberships/${encodeURIComponent(identityId)}`,
                                                ),
                                            "Membership removed",
                                        )
                                    }
                                >
                                    Remove
                                </button>
                            </td>
                        </tr>
                    ))}
                </Table>
            )}
            {projects.length > 0 && (
                <form class="inline" onSubmit={addMembership} aria-label="Set a membership">
                    <div class="field">
                        <label for="m-project">Project</label>
                        <select
                            id="m-project"
                            required
                            value={member.project}
                            onChange={(e) => setMember({ ...member, project: (e.target as HTMLSelectElement).value })}
                        >
                            <option value="">Choose…</option>
                            {projects.map((p) => (
                                <option key={p.id} value={p.id}>
                                    {p.name}
                                </option>
                            ))}
                        </select>
                    </div>
                    <div class="field">
                        <label for="m-role">Role</label>
                        <select
                            id="m-role"
                            value={member.role}
                            onChange={(e) => setMember({ ...member, role: (e.target as HTMLSelectElement).value })}
                        >
                            {ROLES.map((r) => (
                                <option key={r}>{r}</option>
                            ))}
                        </select>
                    </div>
                    <Field
                        label="Rule: environment"
                        hint="slug; empty: any"
                        value={member.env}
                        onInput={(v) => setMember({ ...member, env: v })}
                    />
                    <Field
                        label="Rule: path glob"
                        hint="e.g. /backend/**; empty: any"
                        value={member.path}
                        onInput={(v) => setMember({ ...member, path: v })}
                    />
                    <Field
                        label="Rule: actions"
                        hint="read, create, edit, delete"
                        value={member.actions}
                        onInput={(v) => setMember({ ...member, actions: v })}
                    />
                    <button type="submit">Set membership</button>
                </form>
            )}

            <h2 id="readable">What this identity can read</h2>
            <p class="muted">
                The same decision as the identity's own reads: each environment it can read in, the path globs that
                allow it, and the secrets they cover (names only, never values).
            </p>
            {!readable ? (
                <Loading what="what it can read" />
            ) : reads.length === 0 ? (
                <p class="empty" data-testid="reads-nothing">
                    It can read nothing: it has no membership whose role and rules allow reading.
                </p>
            ) : (
                <Table
                    label="What this identity can read"
                    testId="readable"
                    head={["Project / environment", "Paths", "Secrets"]}
                >
                    {reads.map(({ project, env, paths }) => (
                        <tr key={project.id + env.slug}>
                            <th scope="row">
                                {project.name} / {env.slug}
                            </th>
                            <td>
                                {paths.map((p) => (
                                    <code key={p} class="glob">
                                        {p}
                                    </code>
                                ))}
                            </td>
                            <td>
                                {env.secrets.length === 0 ? (
                                    <span class="muted">no secrets there yet</span>
                                ) : (
                                    <ul class="rules">
                                        {env.secrets.slice(0, SHOWN_MAX).map((s) => (
                                            <li key={s.secretId}>
                                                <a
                                                    href={`/projects/${encodeURIComponent(project.id)}/secrets?env=${encodeURIComponent(env.slug)}&path=${encodeURIComponent(s.secretPath)}`}
                                                >
                                                    {s.secretPath === "/" ? "" : s.secretPath}/{s.secretKey}
                                                </a>
                                            </li>
                                        ))}
                                        {env.secrets.length > SHOWN_MAX && (
                                            <li class="muted">
                                                and {env.secrets.length - SHOWN_MAX} more (
                                                <code>coffer inventory --identity {identityId}</code> lists them all)
                                            </li>
                                        )}
                                    </ul>
                                )}
                            </td>
                        </tr>
                    ))}
                </Table>
            )}
        </section>
    );
}
