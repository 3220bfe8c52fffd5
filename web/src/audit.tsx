// The audit log: events filtered by actor, action, project and time range (GET /api/v1/audit/events, what
// `coffer audit list` reads), each event's detail, and the chain's verification status (POST
// /api/v1/audit/verify, what `coffer audit verify` runs).
import { useEffect, useState } from "preact/hooks";
import { api, errorText, type Project, type Query } from "./api";
import { ErrorBox, Field, Loading, PageTitle, Table, when } from "./ui";

interface AuditEvent {
    seq: number;
    id: string;
    time: string;
    actor: { kind: string; id: string; name: string; breakGlass?: boolean };
    sourceIp: string;
    userAgent: string;
    action: string;
    projectId: string;
    environment: string;
    secretPath: string;
    keys: string[];
    result: string;
    reason: string;
    requestId: string;
    prevHash: string;
    hash: string;
}
interface Verification {
    ok: boolean;
    finding: string;
    seq: number;
    message: string;
    events: number;
    checkpoints: number;
    lastSeq: number;
}

const PAGE = 100;

// A datetime-local value (the browser's time zone) as RFC 3339; "" stays unset.
function rfc3339(local: string): string | undefined {
    if (!local) return undefined;
    const d = new Date(local);
    return isNaN(d.getTime()) ? undefined : d.toISOString();
}

// onVerified learns the chain's last event number, from which the newest page is found.
function VerifyStatus({ onVerified }: { onVerified: (v: Verification) => void }) {
    const [v, setV] = useState<Verification | null>(null);
    const [error, setError] = useState<string | null>(null);
    const [busy, setBusy] = useState(false);
    async function run() {
        setBusy(true);
        setError(null);
        try {
            const result = await api<Verification>("POST", "/api/v1/audit/verify", {});
            setV(result);
            onVerified(result);
        } catch (e) {
            setError(errorText(e));
        }
        setBusy(false);
    }
    useEffect(() => {
        run();
    }, []);
    return (
        <div class="verify" role="region" aria-label="Chain verification" aria-busy={busy}>
            <h2>Chain verification</h2>
            <ErrorBox error={error} />
            {!v ? (
                !error && <Loading what="the verification" />
            ) : (
                <p data-testid="verify-status">
                    <span class={`badge ${v.ok ? "ok" : "bad"}`}>{v.ok ? "intact" : `TAMPERED (${v.finding})`}</span>{" "}
                    {v.message}; {v.events} events, {v.checkpoints} signed checkpoints.
                </p>
            )}
            <button type="button" onClick={run} disabled={busy}>
                Verify again
            </button>
        </div>
    );
}

function Detail({ e, onClose }: { e: AuditEvent; onClose: () => void }) {
    const rows: [string, string][] = [
        ["Sequence", String(e.seq)],
        ["Event id", e.id],
        ["Time", e.time],
        [
            "Actor",
            `${e.actor.kind} ${e.actor.name}${e.actor.id ? ` (${e.actor.id})` : ""}${e.actor.breakGlass ? ", break-glass admin token" : ""}`,
        ],
        ["Action", e.action],
        ["Result", e.result],
        ["Reason", e.reason || "—"],
        ["Project", e.projectId || "—"],
        ["Environment", e.environment || "—"],
        ["Path", e.secretPath || "—"],
        ["Keys", e.keys.length ? e.keys.join(", ") : "—"],
        ["Source address", e.sourceIp || "—"],
        ["User agent", e.userAgent || "—"],
        ["Request id", e.requestId || "—"],
        ["Previous hash", e.prevHash],
        ["Hash", e.hash],
    ];
    return (
        <div class="detail" role="region" aria-label={`Event ${e.seq}`} data-testid="event-detail">
            <h3>Event {e.seq}</h3>
            <dl class="settings">
                {rows.map(([k, v]) => (
                    <div key={k}>
                        <dt>{k}</dt>
                        <dd class={k.endsWith("ash") || k.endsWith("id") ? "mono" : undefined}>{v}</dd>
                    </div>
                ))}
            </dl>
            <button type="button" onClick={onClose}>
                Close
            </button>
        </div>
    );
}

export function Audit() {
    const [projects, setProjects] = useState<Project[]>([]);
    const [form, setForm] = useState({ actor: "", action: "", project: "", since: "", until: "" });
    const [applied, setApplied] = useState<Query>({});
    const [events, setEvents] = useState<AuditEvent[] | null>(null);
    const [next, setNext] = useState<number | null>(null);
    const [pages, setPages] = useState<number[]>([]);
    const [open, setOpen] = useState<AuditEvent | null>(null);
    const [error, setError] = useState<string | null>(null);
    const [lastSeq, setLastSeq] = useState(0);

    async function load(query: Query, after?: number) {
        setError(null);
        setOpen(null);
        try {
            const r = await api<{ events: AuditEvent[]; nextAfter: number | null }>(
                "GET",
                "/api/v1/audit/events",
                undefined,
                {
                    query: { ...query, after, limit: PAGE },
                },
            );
            setEvents(r.events);
            setNext(r.nextAfter);
        } catch (e) {
            setError(errorText(e));
            setEvents([]);
            setNext(null);
        }
    }

    useEffect(() => {
        api<{ workspaces: Project[] }>("GET", "/api/v1/workspace")
            .then((r) => setProjects(r.workspaces.sort((a, b) => a.name.localeCompare(b.name))))
            .catch(() => setProjects([]));
        load({});
    }, []);

    function apply(e: Event) {
        e.preventDefault();
        const q: Query = {
            actor: form.actor.trim() || undefined,
            action: form.action.trim() || undefined,
            projectId: form.project || undefined,
            since: rfc3339(form.since),
            until: rfc3339(form.until),
        };
        setApplied(q);
        setPages([]);
        setEvents(null);
        load(q);
    }

    const set = (k: keyof typeof form) => (v: string) => setForm({ ...form, [k]: v });
    const projectName = (id: string) => projects.find((p) => p.id === id)?.name || id;
    const filtered = Object.values(applied).some((v) => v !== undefined);
    return (
        <section>
            <PageTitle>Audit log</PageTitle>
            <p class="muted">
                Every request, oldest first (<strong>Newest events</strong> jumps to the end), in a tamper-evident
                chain. Values are never recorded, only key names.
            </p>
            <VerifyStatus onVerified={(v) => setLastSeq(v.lastSeq)} />
            <h2>Events</h2>
            <form class="inline filters" onSubmit={apply} aria-label="Filter events">
                <Field
                    label="Actor"
                    hint="identity id or name, user email, client id, admin"
                    value={form.actor}
                    onInput={set("actor")}
                />
                <Field
                    label="Action"
                    hint="exact, or a prefix ending in . (secrets.)"
                    value={form.action}
                    onInput={set("action")}
                />
                <div class="field">
                    <label for="audit-project">Project</label>
                    <select
                        id="audit-project"
                        value={form.project}
                        onChange={(e) => set("project")((e.target as HTMLSelectElement).value)}
                    >
                        <option value="">any</option>
                        {projects.map((p) => (
                            <option key={p.id} value={p.id}>
                                {p.name}
                            </option>
                        ))}
                    </select>
                </div>
                <Field label="From" type="datetime-local" value={form.since} onInput={set("since")} />
                <Field label="To" type="datetime-local" value={form.until} onInput={set("until")} />
                <button type="submit" class="primary">
                    Apply filters
                </button>
            </form>
            <ErrorBox error={error} />
            {open && <Detail e={open} onClose={() => setOpen(null)} />}
            {!events ? (
                <Loading what="events" />
            ) : events.length === 0 ? (
                !error && (
                    <div class="empty">
                        <p>
                            {filtered ? "No event matches these filters." : "The audit log is empty."} The same from the
                            CLI:
                        </p>
                        <pre>
                            <code>{`coffer audit list --since 24h --action secrets. --limit 100
coffer audit verify`}</code>
                        </pre>
                    </div>
                )
            ) : (
                <>
                    <p class="muted" role="status">
                        {events.length} events (seq {events[0].seq} to {events[events.length - 1].seq})
                    </p>
                    <Table
                        label="Audit events"
                        testId="audit-events"
                        head={["Seq", "Time", "Actor", "Action", "Where", "Result"]}
                    >
                        {events.map((e) => (
                            <tr key={e.seq}>
                                <td>
                                    <button
                                        type="button"
                                        class="link"
                                        aria-label={`Details of event ${e.seq}`}
                                        aria-pressed={open?.seq === e.seq}
                                        onClick={() => setOpen(e)}
                                    >
                                        {e.seq}
                                    </button>
                                </td>
                                <td>{when(e.time)}</td>
                                <td>{e.actor.name || e.actor.kind}</td>
                                <td class="mono">{e.action}</td>
                                <td>
                                    {e.projectId ? `${projectName(e.projectId)}/${e.environment}${e.secretPath}` : "—"}
                                    {e.keys.length > 0 && <span class="muted"> {e.keys.join(", ")}</span>}
                                </td>
                                <td>
                                    <span
                                        class={`badge ${e.result === "ok" ? "ok" : e.result === "denied" ? "bad" : "warn"}`}
                                    >
                                        {e.result}
                                    </span>
                                </td>
                            </tr>
                        ))}
                    </Table>
                    <p class="actions">
                        <button
                            type="button"
                            disabled={pages.length === 0}
                            onClick={() => {
                                const rest = pages.slice(0, -1);
                                setPages(rest);
                                load(applied, rest.length ? rest[rest.length - 1] : undefined);
                            }}
                        >
                            Previous page
                        </button>
                        <button
                            type="button"
                            disabled={next === null}
                            onClick={() => {
                                if (next === null) return;
                                setPages([...pages, next]);
                                load(applied, next);
                            }}
                        >
                            Next page
                        </button>
                        {/* the chain's last number places the newest page exactly only when nothing is filtered */}
                        {!filtered && lastSeq > PAGE && (
                            <button
                                type="button"
                                onClick={() => {
                                    setPages([...pages, lastSeq - PAGE]);
                                    load(applied, lastSeq - PAGE);
                                }}
                            >
                                Newest events
                            </button>
                        )}
                    </p>
                </>
            )}
        </section>
    );
}
