// A project's secret syncs and rotations (docs/syncs.md, docs/rotation.md): each with its status, when it last
// ran and its last error, and "Sync now" / "Rotate now" (which run on the request and answer the outcome).
// Creating and changing them stays with the CLI and the API: they need app connections and destination settings.
import { useEffect, useState } from "preact/hooks";
import { api, errorText, type Project } from "./api";
import { ErrorBox, Table, Loading, PageTitle, Status, when } from "./ui";

interface Sync {
    id: string;
    name: string;
    destination: string;
    environment: { slug: string; name: string } | null;
    folder: { path: string } | null;
    connection: { app: string; name: string } | null;
    isAutoSyncEnabled: boolean;
    syncStatus: string | null;
    lastSyncedAt: string | null;
    lastSyncAttemptAt: string | null;
    lastSyncMessage: string | null;
    itemsPushed?: number;
    failedAttempts?: number;
    nextAttemptAt?: string | null;
}
interface Rotation {
    id: string;
    name: string;
    type: string;
    environment: { slug: string; name: string } | string | null;
    folder: { path: string } | null;
    secretPath?: string;
    isAutoRotationEnabled: boolean;
    rotationStatus: string | null;
    lastRotatedAt: string | null;
    nextRotationAt: string | null;
    lastRotationMessage: string | null;
    generation?: number;
}

function tone(status: string | null): string {
    return status === "succeeded" ? "ok" : status === "failed" ? "bad" : "warn";
}

function envName(e: Sync["environment"] | Rotation["environment"]): string {
    return !e ? "" : typeof e === "string" ? e : e.slug;
}

export function Automation({ projectId }: { projectId: string }) {
    const [project, setProject] = useState<Project | null>(null);
    const [syncs, setSyncs] = useState<Sync[] | null>(null);
    const [rotations, setRotations] = useState<Rotation[] | null>(null);
    const [error, setError] = useState<string | null>(null);
    const [message, setMessage] = useState<string | null>(null);
    const [busy, setBusy] = useState<string | null>(null);

    async function load() {
        try {
            const p = (await api<{ workspace: Project }>("GET", `/api/v1/workspace/${encodeURIComponent(projectId)}`)).workspace;
            setProject(p);
            const [s, r] = await Promise.all([
                api<{ secretSyncs: Sync[] }>("GET", "/api/v1/secret-syncs", undefined, { query: { projectId: p.id } }),
                api<{ secretRotations: Rotation[] }>("GET", "/api/v2/secret-rotations", undefined, { query: { projectId: p.id } }),
            ]);
            setSyncs(s.secretSyncs);
            setRotations(r.secretRotations);
        } catch (e) {
            setError(errorText(e));
        }
    }
    useEffect(() => {
        load();
    }, [projectId]);

    async function runNow(id: string, path: string, what: string, outcome: (answer: Record<string, unknown>) => string) {
        setError(null);
        setMessage(null);
        setBusy(id);
        try {
            const answer = await api("POST", path);
            setMessage(outcome(answer));
            await load();
        } catch (e) {
            setError(`${what}: ${errorText(e)}`);
        } finally {
            setBusy(null);
        }
    }

    const base = `/projects/${encodeURIComponent(projectId)}`;
    return (
        <section>
            <p class="crumbs">
                <a href={base}>{project ? project.name : "Project"}</a> › Syncs and rotations
            </p>
            <PageTitle>Syncs and rotations</PageTitle>
            <ErrorBox error={error} />
            <Status text={message} />
            <h2>Secret syncs</h2>
            {!syncs ? (
                !error && <Loading what="syncs" />
            ) : syncs.length === 0 ? (
                <div class="empty">
                    <p>No syncs: a sync copies a folder's secrets to Azure DevOps, Key Vault, GitHub or a file whenever they change.</p>
                    <pre>coffer syncs create --help</pre>
                </div>
            ) : (
                <Table label="Secret syncs" head={["Name", "From", "To", "Status", "Last synced", "Last error", "Action"]}>
                    {syncs.map((s) => (
                        <tr key={s.id} data-sync={s.name}>
                            <th scope="row">{s.name}</th>
                            <td class="mono">
                                {envName(s.environment)}:{s.folder?.path || "/"}
                            </td>
                            <td>
                                {s.destination}
                                {s.connection ? ` (${s.connection.name})` : ""}
                                {s.isAutoSyncEnabled ? "" : " · manual"}
                            </td>
                            <td>
                                <span class={`badge ${tone(s.syncStatus)}`}>{s.syncStatus || "not run"}</span>
                                {s.failedAttempts ? <span class="small"> · {s.failedAttempts} failed, next {when(s.nextAttemptAt)}</span> : null}
                            </td>
                            <td>{when(s.lastSyncedAt)}</td>
                            <td class={s.syncStatus === "failed" ? "lasterror" : undefined}>{s.syncStatus === "failed" ? s.lastSyncMessage || "—" : "—"}</td>
                            <td>
                                <button
                                    type="button"
                                    disabled={busy === s.id}
                                    aria-label={`Sync now: ${s.name}`}
                                    onClick={() =>
                                        runNow(s.id, `/api/v1/secret-syncs/${encodeURIComponent(s.destination)}/${encodeURIComponent(s.id)}/sync-secrets`, `sync ${s.name}`, (a) => {
                                            const r = (a.secretSync || {}) as Sync;
                                            return r.syncStatus === "failed" ? `${s.name}: the sync failed: ${r.lastSyncMessage || ""}` : `${s.name}: synced`;
                                        })
                                    }
                                >
                                    {busy === s.id ? "Syncing…" : "Sync now"}
                                </button>
                            </td>
                        </tr>
                    ))}
                </Table>
            )}
            <h2>Secret rotations</h2>
            {!rotations ? (
                !error && <Loading what="rotations" />
            ) : rotations.length === 0 ? (
                <div class="empty">
                    <p>No rotations: a rotation issues a new credential (an Entra ID client secret, a PostgreSQL password) on a schedule and writes it into secrets.</p>
                    <pre>coffer rotations create --help</pre>
                </div>
            ) : (
                <Table label="Secret rotations" head={["Name", "Type", "Where", "Status", "Last rotated", "Next", "Last error", "Action"]}>
                    {rotations.map((r) => (
                        <tr key={r.id} data-rotation={r.name}>
                            <th scope="row">{r.name}</th>
                            <td>{r.type}</td>
                            <td class="mono">
                                {envName(r.environment)}:{r.folder?.path || r.secretPath || "/"}
                            </td>
                            <td>
                                <span class={`badge ${tone(r.rotationStatus)}`}>{r.rotationStatus || "idle"}</span>
                                {r.isAutoRotationEnabled ? "" : <span class="small"> · manual</span>}
                            </td>
                            <td>{when(r.lastRotatedAt)}</td>
                            <td>{when(r.nextRotationAt)}</td>
                            <td class={r.rotationStatus === "failed" ? "lasterror" : undefined}>{r.rotationStatus === "failed" ? r.lastRotationMessage || "—" : "—"}</td>
                            <td>
                                <button
                                    type="button"
                                    disabled={busy === r.id}
                                    aria-label={`Rotate now: ${r.name}`}
                                    onClick={() =>
                                        runNow(r.id, `/api/v2/secret-rotations/${encodeURIComponent(r.type)}/${encodeURIComponent(r.id)}/rotate-secrets`, `rotate ${r.name}`, (a) => {
                                            const x = (a.secretRotation || {}) as Rotation;
                                            return x.rotationStatus === "failed"
                                                ? `${r.name}: the rotation failed: ${x.lastRotationMessage || ""}`
                                                : `${r.name}: ${x.rotationStatus || "rotated"}`;
                                        })
                                    }
                                >
                                    {busy === r.id ? "Rotating…" : "Rotate now"}
                                </button>
                            </td>
                        </tr>
                    ))}
                </Table>
            )}
        </section>
    );
}
