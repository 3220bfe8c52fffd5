// The secret editor of one folder in one environment: values masked until revealed (each reveal and copy reads
// the one secret, which the server audits), multi-line values, comments, create, edit, delete, and version
// history with rollback and a diff between two versions; tags, expiry and reminder (secretmeta.tsx), references
// resolved on demand (an audited read with expansion) and bulk paste of a .env file (bulk.tsx). Unsaved edits
// survive an expired session (drafts.ts, kept.ts).
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, errorText, type Folder, type Project, type Secret, type SecretVersion } from "./api";
import { draftPlace, draftsAt, dropDraft, saveDraft, type Draft } from "./drafts";
import { navigate } from "./router";
import { ErrorBox, Field, Loading, PageTitle, Status, when } from "./ui";
import { BulkPaste } from "./bulk";
import { MetaBadges, MetaForm, VersionDiff, type SecretWithMeta, type Tag } from "./secretmeta";

// Which of the editor's extra forms (bulk paste, a secret's details) was open at a place, in memory only.
const keptOpen = new Map<string, string>();

interface Props {
    projectId: string;
    env: string;
    path: string;
}

export function Editor({ projectId, env, path }: Props) {
    const [project, setProject] = useState<Project | null>(null);
    const [secrets, setSecrets] = useState<SecretWithMeta[] | null>(null);
    const [tags, setTags] = useState<Tag[]>([]);
    const [metaOpen, setMetaOpen] = useState<string | null>(null);
    const [bulkOpen, setBulkOpen] = useState(false);
    const [resolved, setResolved] = useState<Record<string, string>>({});
    const [subfolders, setSubfolders] = useState<Folder[]>([]);
    const [revealed, setRevealed] = useState<Record<string, string>>({});
    const [editing, setEditing] = useState<Record<string, Draft>>({});
    const [history, setHistory] = useState<{ key: string; versions: SecretVersion[] } | null>(null);
    const [confirmDelete, setConfirmDelete] = useState<string | null>(null);
    const [error, setError] = useState<string | null>(null);
    const [status, setStatus] = useState<string | null>(null);
    const [restored, setRestored] = useState(false);

    const place = draftPlace(projectId, env, path);
    const scope = () => ({ workspaceId: project?.id || projectId, environment: env, secretPath: path });

    async function load() {
        try {
            const p = (await api<{ workspace: Project }>("GET", `/api/v1/workspace/${encodeURIComponent(projectId)}`))
                .workspace;
            setProject(p);
            if (!env) {
                const first = [...p.environments].sort((a, b) => a.position - b.position)[0];
                if (first) navigate(`/projects/${encodeURIComponent(projectId)}/secrets?env=${first.slug}&path=${encodeURIComponent(path)}`, true);
                return;
            }
            const query = { workspaceId: p.id, environment: env, secretPath: path, viewSecretValue: false };
            const [s, f, t] = await Promise.all([
                api<{ secrets: SecretWithMeta[] }>("GET", "/api/v3/secrets/raw", undefined, { query }),
                api<{ folders: Folder[] }>("GET", "/api/v1/folders", undefined, {
                    query: { workspaceId: p.id, environment: env, path },
                }),
                api<{ workspaceTags: Tag[] }>("GET", `/api/v1/projects/${encodeURIComponent(p.id)}/tags`).catch(() => ({
                    workspaceTags: [] as Tag[],
                })),
            ]);
            setTags(t.workspaceTags.sort((a, b) => a.slug.localeCompare(b.slug)));
            // Only the key and the metadata are kept from the list: values come one at a time on request.
            setSecrets(
                s.secrets.map((x) => ({ ...x, secretValue: "" })).sort((a, b) => a.secretKey.localeCompare(b.secretKey)),
            );
            setSubfolders(f.folders.sort((a, b) => a.name.localeCompare(b.name)));
        } catch (e) {
            setError(errorText(e));
        }
    }

    useEffect(() => {
        load();
        if (keptOpen.has(place + "\u0000bulk")) setBulkOpen(true);
        const meta = keptOpen.get(place + "\u0000meta");
        if (meta) setMetaOpen(meta);
        const kept = draftsAt(place);
        if (kept.length) {
            const m: Record<string, Draft> = {};
            for (const d of kept) m[d.original] = d;
            setEditing(m);
            setRestored(true);
        }
    }, [projectId, env, path]);

    // Reads one secret's value (audited by the server as a read of that secret).
    async function readValue(key: string, version?: number): Promise<string> {
        const r = await api<{ secret: Secret }>("GET", `/api/v3/secrets/raw/${encodeURIComponent(key)}`, undefined, {
            query: { ...scope(), version },
        });
        return r.secret.secretValue;
    }

    // Reads one secret with its references expanded (audited as a read, like a reveal).
    const resolve = (key: string) =>
        run(async () => {
            if (key in resolved) {
                const { [key]: _, ...rest } = resolved;
                setResolved(rest);
                return;
            }
            const r = await api<{ secret: Secret }>("GET", `/api/v3/secrets/raw/${encodeURIComponent(key)}`, undefined, {
                query: { ...scope(), expandSecretReferences: true },
            });
            setResolved((m) => ({ ...m, [key]: r.secret.secretValue }));
        });

    // Which extra form is open is remembered with the place, so that a form kept over an expired session
    // (kept.ts) is shown again after signing in.
    function openMeta(key: string | null) {
        if (key) keptOpen.set(place + "\u0000meta", key);
        else keptOpen.delete(place + "\u0000meta");
        setMetaOpen(key);
    }
    function openBulk(open: boolean) {
        if (open) keptOpen.set(place + "\u0000bulk", "1");
        else keptOpen.delete(place + "\u0000bulk");
        setBulkOpen(open);
    }

    async function afterWrite(message: string) {
        setStatus(message);
        setRevealed({});
        setResolved({});
        setHistory(null);
        await load();
    }

    async function run(what: () => Promise<void>) {
        setError(null);
        try {
            await what();
        } catch (e) {
            if (!(e instanceof ApiError && e.status === 401)) setError(errorText(e));
        }
    }

    const reveal = (key: string) =>
        run(async () => {
            if (key in revealed) {
                const { [key]: _, ...rest } = revealed;
                setRevealed(rest);
                return;
            }
            const v = await readValue(key);
            setRevealed((r) => ({ ...r, [key]: v }));
        });

    const copy = (key: string) =>
        run(async () => {
            const v = await readValue(key);
            try {
                await navigator.clipboard.writeText(v);
                setStatus(`${key} copied`);
            } catch {
                setStatus(`The browser refused the clipboard: reveal ${key} and copy it by hand`);
            }
        });

    function setDraft(d: Draft) {
        saveDraft(place, d);
        setEditing((m) => ({ ...m, [d.original]: d }));
    }

    function closeDraft(original: string) {
        dropDraft(place, original);
        setEditing((m) => {
            const { [original]: _, ...rest } = m;
            return rest;
        });
    }

    const startEdit = (s: Secret) =>
        run(async () => {
            const value = s.secretKey in revealed ? revealed[s.secretKey] : await readValue(s.secretKey);
            setDraft({ key: s.secretKey, value, comment: s.secretComment || "", original: s.secretKey });
        });

    const save = (d: Draft) =>
        run(async () => {
            const body = { ...scope(), secretValue: d.value, secretComment: d.comment };
            let answer: { secret?: Secret; approval?: unknown };
            if (d.original)
                answer = await api("PATCH", `/api/v3/secrets/raw/${encodeURIComponent(d.original)}`, {
                    ...body,
                    ...(d.key !== d.original ? { newSecretName: d.key } : {}),
                });
            else answer = await api("POST", `/api/v3/secrets/raw/${encodeURIComponent(d.key.trim())}`, body);
            closeDraft(d.original);
            setRestored(false);
            setStatus(answer.secret ? `${d.key} saved` : `${d.key}: a change request was opened for approval`);
            setRevealed({});
            setHistory(null);
            await load();
        });

    const remove = (key: string) =>
        run(async () => {
            await api("DELETE", `/api/v3/secrets/raw/${encodeURIComponent(key)}`, scope());
            setConfirmDelete(null);
            setStatus(`${key} deleted`);
            await load();
        });

    const showHistory = (s: Secret) =>
        run(async () => {
            if (history?.key === s.secretKey) {
                setHistory(null);
                return;
            }
            const r = await api<{ secretVersions: SecretVersion[] }>(
                "GET",
                `/api/v1/secret/${encodeURIComponent(s.id)}/secret-versions`,
                undefined,
                { query: { limit: 50 } },
            );
            // Versions carry values; only their metadata is kept.
            setHistory({
                key: s.secretKey,
                versions: r.secretVersions.map(({ id, secretId, version, secretKey, secretComment, createdAt }) => ({
                    id,
                    secretId,
                    version,
                    secretKey,
                    secretComment,
                    createdAt,
                })),
            });
        });

    const rollback = (s: Secret, version: number) =>
        run(async () => {
            await api("POST", `/api/v1/secret/${encodeURIComponent(s.id)}/rollback`, { version });
            setStatus(`${s.secretKey} rolled back to version ${version}`);
            setHistory(null);
            setRevealed({});
            await load();
        });

    const revealVersion = (key: string, version: number) =>
        run(async () => {
            const id = `${key}@${version}`;
            if (id in revealed) {
                const { [id]: _, ...rest } = revealed;
                setRevealed(rest);
                return;
            }
            const v = await readValue(key, version);
            setRevealed((r) => ({ ...r, [id]: v }));
        });

    const envs = project ? [...project.environments].sort((a, b) => a.position - b.position) : [];
    const base = `/projects/${encodeURIComponent(projectId)}/secrets`;
    const link = (e: string, p: string) => `${base}?env=${encodeURIComponent(e)}&path=${encodeURIComponent(p)}`;
    const crumbs = path === "/" ? [] : path.split("/").slice(1);
    const newDraft = editing[""];

    return (
        <section class="editor">
            <p class="crumbs">
                <a href={`/projects/${encodeURIComponent(projectId)}`}>{project ? project.name : "Project"}</a> ›{" "}
                <a href={link(env, "/")}>{env || "…"}</a>
                {crumbs.map((c, i) => (
                    <span key={i}>
                        {" / "}
                        <a href={link(env, "/" + crumbs.slice(0, i + 1).join("/"))}>{c}</a>
                    </span>
                ))}
                {" · "}
                <a href={`/projects/${encodeURIComponent(projectId)}/automation`}>Syncs and rotations</a>
            </p>
            <PageTitle>
                Secrets in {env || "…"}:<span class="mono"> {path}</span>
            </PageTitle>
            {envs.length > 1 && (
                <nav aria-label="Environments" class="tabs">
                    {envs.map((e) => (
                        <a key={e.id} href={link(e.slug, path)} aria-current={e.slug === env ? "page" : undefined}>
                            {e.name}
                        </a>
                    ))}
                </nav>
            )}
            {restored && (
                <p class="notice" role="status">
                    Your unsaved edit was kept while you signed in again. Review it and save.
                </p>
            )}
            <ErrorBox error={error} />
            <Status text={status} />
            {subfolders.length > 0 && (
                <nav aria-label="Folders" class="subfolders">
                    <h2>Folders</h2>
                    <ul>
                        {subfolders.map((f) => (
                            <li key={f.id}>
                                <a href={link(env, (path === "/" ? "" : path) + "/" + f.name)}>{f.name}/</a>
                            </li>
                        ))}
                    </ul>
                </nav>
            )}

            {bulkOpen && (
                <BulkPaste
                    place={place}
                    scope={scope()}
                    onDone={(m) => {
                        openBulk(false);
                        afterWrite(m);
                    }}
                    onCancel={() => openBulk(false)}
                />
            )}
            {newDraft ? (
                <DraftForm
                    draft={newDraft}
                    title="New secret"
                    onChange={setDraft}
                    onSave={() => save(newDraft)}
                    onCancel={() => closeDraft("")}
                />
            ) : (
                <p>
                    <button type="button" class="primary" onClick={() => setDraft({ key: "", value: "", comment: "", original: "" })}>
                        Add a secret
                    </button>{" "}
                    {!bulkOpen && (
                        <button type="button" onClick={() => openBulk(true)}>
                            Paste a .env file
                        </button>
                    )}
                </p>
            )}

            {!secrets ? (
                !error && <Loading what="secrets" />
            ) : secrets.length === 0 ? (
                <p class="muted">No secrets in this folder yet.</p>
            ) : (
                <ul class="secrets" aria-label="Secrets">
                    {secrets.map((s) => {
                        const d = editing[s.secretKey];
                        const shown = s.secretKey in revealed;
                        return (
                            <li key={s.id} class="secret" data-key={s.secretKey}>
                                <div class="secret-head">
                                    <span class="key mono">{s.secretKey}</span>
                                    <span class="muted small">
                                        v{s.version} · {when(s.updatedAt)}
                                    </span>
                                </div>
                                {s.secretComment && <p class="comment">{s.secretComment}</p>}
                                <MetaBadges s={s} />
                                {d ? (
                                    <DraftForm
                                        draft={d}
                                        title={`Edit ${s.secretKey}`}
                                        onChange={setDraft}
                                        onSave={() => save(d)}
                                        onCancel={() => closeDraft(s.secretKey)}
                                    />
                                ) : (
                                    <>
                                        {s.secretKey in resolved && (
                                            <div class="resolved">
                                                <p class="small muted">With references resolved:</p>
                                                <pre class="value" data-testid="resolved">
                                                    {resolved[s.secretKey]}
                                                </pre>
                                            </div>
                                        )}
                                        {shown ? (
                                            <pre class="value" data-testid="value">
                                                {revealed[s.secretKey]}
                                            </pre>
                                        ) : (
                                            <p class="masked" aria-label={`${s.secretKey} value hidden`}>
                                                ••••••••••••
                                            </p>
                                        )}
                                        <div class="actions">
                                            <button type="button" aria-label={`${shown ? "Hide" : "Reveal"} ${s.secretKey}`} aria-pressed={shown} onClick={() => reveal(s.secretKey)}>
                                                {shown ? "Hide" : "Reveal"}
                                            </button>
                                            <button type="button" aria-label={`Copy ${s.secretKey}`} onClick={() => copy(s.secretKey)}>
                                                Copy
                                            </button>
                                            <button type="button" aria-label={`Edit ${s.secretKey}`} onClick={() => startEdit(s)}>
                                                Edit
                                            </button>
                                            <button
                                                type="button"
                                                aria-label={`${s.secretKey in resolved ? "Hide resolved" : "Resolve references of"} ${s.secretKey}`}
                                                aria-pressed={s.secretKey in resolved}
                                                onClick={() => resolve(s.secretKey)}
                                            >
                                                {s.secretKey in resolved ? "Hide resolved" : "Resolve"}
                                            </button>
                                            <button
                                                type="button"
                                                aria-label={`Tags and expiry of ${s.secretKey}`}
                                                aria-expanded={metaOpen === s.secretKey}
                                                onClick={() => openMeta(metaOpen === s.secretKey ? null : s.secretKey)}
                                            >
                                                Tags and expiry
                                            </button>
                                            <button
                                                type="button"
                                                aria-label={`History of ${s.secretKey}`}
                                                aria-expanded={history?.key === s.secretKey}
                                                onClick={() => showHistory(s)}
                                            >
                                                History
                                            </button>
                                            {confirmDelete === s.secretKey ? (
                                                <>
                                                    <button type="button" class="danger" onClick={() => remove(s.secretKey)}>
                                                        Delete {s.secretKey} for good
                                                    </button>
                                                    <button type="button" class="quiet" onClick={() => setConfirmDelete(null)}>
                                                        Keep it
                                                    </button>
                                                </>
                                            ) : (
                                                <button type="button" aria-label={`Delete ${s.secretKey}`} onClick={() => setConfirmDelete(s.secretKey)}>
                                                    Delete
                                                </button>
                                            )}
                                        </div>
                                    </>
                                )}
                                {metaOpen === s.secretKey && !d && (
                                    <MetaForm
                                        projectId={project?.id || projectId}
                                        place={place}
                                        secret={s}
                                        scope={scope()}
                                        projectTags={tags}
                                        onTagCreated={(t) => setTags((l) => [...l, t].sort((a, b) => a.slug.localeCompare(b.slug)))}
                                        onSaved={(m) => {
                                            openMeta(null);
                                            afterWrite(m);
                                        }}
                                        onCancel={() => openMeta(null)}
                                    />
                                )}
                                {history?.key === s.secretKey && (
                                    <div class="history" role="region" aria-label={`Versions of ${s.secretKey}`}>
                                        <h3>Versions</h3>
                                        {history.versions.length > 1 && (
                                            <VersionDiff
                                                secretKey={s.secretKey}
                                                versions={history.versions.map((v) => v.version)}
                                                current={s.version}
                                                read={(v) => readValue(s.secretKey, v)}
                                            />
                                        )}
                                        <ol>
                                            {history.versions.map((v) => {
                                                const id = `${s.secretKey}@${v.version}`;
                                                return (
                                                    <li key={v.id}>
                                                        <span>
                                                            v{v.version} · {when(v.createdAt)}
                                                            {v.secretComment ? ` · ${v.secretComment}` : ""}
                                                            {v.version === s.version ? " (current)" : ""}
                                                        </span>
                                                        {id in revealed && <pre class="value">{revealed[id]}</pre>}
                                                        <span class="actions">
                                                            <button type="button" aria-label={`${id in revealed ? "Hide" : "Reveal"} version ${v.version} of ${s.secretKey}`} onClick={() => revealVersion(s.secretKey, v.version)}>
                                                                {id in revealed ? "Hide" : "Reveal"}
                                                            </button>
                                                            {v.version !== s.version && (
                                                                <button type="button" aria-label={`Roll back to v${v.version} of ${s.secretKey}`} onClick={() => rollback(s, v.version)}>
                                                                    Roll back to v{v.version}
                                                                </button>
                                                            )}
                                                        </span>
                                                    </li>
                                                );
                                            })}
                                        </ol>
                                    </div>
                                )}
                            </li>
                        );
                    })}
                </ul>
            )}
        </section>
    );
}

function DraftForm(p: { draft: Draft; title: string; onChange: (d: Draft) => void; onSave: () => void; onCancel: () => void }) {
    const d = p.draft;
    return (
        <form
            class="draft"
            aria-label={p.title}
            onSubmit={(e) => {
                e.preventDefault();
                p.onSave();
            }}
        >
            <h3>{p.title}</h3>
            <Field label="Key" name="secretKey" value={d.key} mono required onInput={(v) => p.onChange({ ...d, key: v })} autoFocus={!d.original} />
            <Field
                label="Value"
                name="secretValue"
                value={d.value}
                mono
                multiline
                rows={Math.min(12, Math.max(3, d.value.split("\n").length + 1))}
                onInput={(v) => p.onChange({ ...d, value: v })}
                hint="Several lines are kept as they are (PEM files, certificates)."
                autoFocus={!!d.original}
            />
            <Field label="Comment" name="secretComment" value={d.comment} onInput={(v) => p.onChange({ ...d, comment: v })} />
            <button type="submit" class="primary">
                Save
            </button>{" "}
            <button type="button" class="quiet" onClick={p.onCancel}>
                Cancel
            </button>
        </form>
    );
}
