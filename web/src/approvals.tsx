// The approvals inbox (docs/approvals.md): change requests of every project the person may see, split into those
// to review and the person's own, each with its masked diff (which keys are added, changed or deleted; values
// stay hidden), approve / reject / merge / withdraw; and access requests, granted or denied by those who decide
// them. Only the public API: GET /api/v1/secret-approval-requests per project, /api/v1/access-requests.
import { useEffect, useState } from "preact/hooks";
import { api, errorText, type Project, type User } from "./api";
import { useKept } from "./kept";
import { ErrorBox, Loading, PageTitle, SelectField, Status, Table, when } from "./ui";

interface Commit {
    op: string;
    secretKey: string;
    newSecretName: string | null;
    valueChanged: boolean;
    commentChanged: boolean;
    baseVersion: number | null;
    currentVersion: number | null;
    conflict: boolean;
}
interface Reviewer {
    userId: string;
    email: string;
    status: string;
    comment: string;
}
interface ChangeRequest {
    id: string;
    status: string;
    projectId: string;
    environment: string;
    secretPath: string;
    policy: { id: string | null; name: string; approvals: number; enforcementLevel: string };
    committerUserId: string;
    committer: string;
    approvals: number;
    approvalsRequired: number;
    approved: boolean;
    conflicts: boolean | unknown[];
    hasMerged: boolean;
    reviewers: Reviewer[];
    commits: Commit[];
    createdAt: string;
}
interface AccessRequest {
    id: string;
    user: { id: string; email: string };
    projectId: string;
    environment: string;
    secretPath: string;
    actions: string[] | string;
    duration: number;
    reason: string;
    status: string;
    createdAt: string;
    endsAt: string | null;
    comment: string | null;
}

const STATUSES = ["open", "merged", "rejected", "closed"];

function duration(s: number): string {
    if (s % 86400 === 0) return `${s / 86400} d`;
    if (s % 3600 === 0) return `${s / 3600} h`;
    return s % 60 === 0 ? `${s / 60} min` : `${s} s`;
}

export function Approvals({ user }: { user: User }) {
    const [projects, setProjects] = useState<Project[] | null>(null);
    const [requests, setRequests] = useState<ChangeRequest[] | null>(null);
    const [access, setAccess] = useState<AccessRequest[] | null>(null);
    const [status, setStatusFilter] = useState("open");
    const [error, setError] = useState<string | null>(null);
    const [message, setMessage] = useState<string | null>(null);

    async function load(which = status) {
        setError(null);
        try {
            const ps = (await api<{ workspaces: Project[] }>("GET", "/api/v1/workspace")).workspaces;
            setProjects(ps);
            // A project whose requests the person may not list answers 403: it has nothing for this inbox.
            const lists = await Promise.all(
                ps.map((p) =>
                    api<{ approvals: ChangeRequest[] }>("GET", "/api/v1/secret-approval-requests", undefined, {
                        query: { workspaceId: p.id, status: which },
                    }).then(
                        (r) => r.approvals,
                        () => [] as ChangeRequest[],
                    ),
                ),
            );
            setRequests(lists.flat().sort((a, b) => b.createdAt.localeCompare(a.createdAt)));
            // Org owners and admins see every access request, others their own; a project admin also sees the
            // project's pending ones.
            const seen = new Map<string, AccessRequest>();
            const global = await api<{ accessRequests: AccessRequest[] }>("GET", "/api/v1/access-requests");
            for (const r of global.accessRequests) seen.set(r.id, r);
            if (user.orgRole === "member")
                for (const p of ps) {
                    const r = await api<{ accessRequests: AccessRequest[] }>("GET", "/api/v1/access-requests", undefined, {
                        query: { projectId: p.id, status: "pending" },
                    }).catch(() => ({ accessRequests: [] as AccessRequest[] }));
                    for (const a of r.accessRequests) seen.set(a.id, a);
                }
            setAccess([...seen.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt)));
        } catch (e) {
            setError(errorText(e));
        }
    }

    useEffect(() => {
        load();
    }, []);

    const projectName = (id: string) => projects?.find((p) => p.id === id)?.name || id;
    const act = async (what: () => Promise<unknown>, done: string) => {
        setError(null);
        try {
            await what();
            setMessage(done);
            await load();
        } catch (e) {
            setError(errorText(e));
        }
    };

    const mine = (requests || []).filter((r) => r.committerUserId === user.id);
    const toReview = (requests || []).filter((r) => r.committerUserId !== user.id);
    const pendingAccess = (access || []).filter((a) => a.status === "pending" && a.user.id !== user.id);
    const myAccess = (access || []).filter((a) => a.user.id === user.id);
    const otherAccess = (access || []).filter((a) => a.status !== "pending" && a.user.id !== user.id);

    return (
        <section class="approvals">
            <PageTitle>Approvals</PageTitle>
            <ErrorBox error={error} />
            <Status text={message} />
            <div class="narrow">
                <SelectField
                    label="Change requests"
                    value={status}
                    options={STATUSES.map((x): [string, string] => [x, x])}
                    onChange={(v) => {
                        setStatusFilter(v);
                        load(v);
                    }}
                />
            </div>
            {!requests ? (
                !error && <Loading what="change requests" />
            ) : (
                <>
                    <h2>To review ({toReview.length})</h2>
                    {toReview.length === 0 ? (
                        <p class="muted">
                            Nothing waits for you. A write to a place under an approval policy becomes a change request
                            here (<code>coffer approvals policies create</code>).
                        </p>
                    ) : (
                        <ul class="requests">
                            {toReview.map((r) => (
                                <RequestCard key={r.id} r={r} mine={false} projectName={projectName(r.projectId)} act={act} />
                            ))}
                        </ul>
                    )}
                    <h2>My requests ({mine.length})</h2>
                    {mine.length === 0 ? (
                        <p class="muted">You have no {status} change requests.</p>
                    ) : (
                        <ul class="requests">
                            {mine.map((r) => (
                                <RequestCard key={r.id} r={r} mine projectName={projectName(r.projectId)} act={act} />
                            ))}
                        </ul>
                    )}
                </>
            )}
            <h2>Access requests</h2>
            {!access ? (
                !error && <Loading what="access requests" />
            ) : access.length === 0 ? (
                <p class="muted">
                    No access requests. Someone who needs temporary access asks with{" "}
                    <code>coffer access request --project P --env prod --duration 2h --reason "..."</code>.
                </p>
            ) : (
                <ul class="requests">
                    {[...pendingAccess, ...myAccess, ...otherAccess].map((a) => (
                        <AccessCard key={a.id} a={a} mine={a.user.id === user.id} projectName={projectName(a.projectId)} act={act} />
                    ))}
                </ul>
            )}
        </section>
    );
}

type Act = (what: () => Promise<unknown>, done: string) => Promise<void>;

interface DecideProps {
    id: string;
    label: string;
    comment: string;
    setComment: (v: string) => void;
    yes: string;
    no: string;
    onYes: () => void;
    onNo: () => void;
}

// An optional comment and the two answers to a request (approve or reject, grant or deny).
function Decide(p: DecideProps) {
    return (
        <>
            <label class="sr" for={p.id}>
                Comment on the {p.label}
            </label>
            <input id={p.id} placeholder="Comment (optional)" value={p.comment} onInput={(e) => p.setComment((e.target as HTMLInputElement).value)} />
            <button type="button" class="primary" onClick={p.onYes} aria-label={`${p.yes} the ${p.label}`}>
                {p.yes}
            </button>
            <button type="button" class="danger" onClick={p.onNo} aria-label={`${p.no} the ${p.label}`}>
                {p.no}
            </button>
        </>
    );
}

function RequestCard({ r, mine, projectName, act }: { r: ChangeRequest; mine: boolean; projectName: string; act: Act }) {
    const [comment, setComment, dropComment] = useKept(`review\u0000${r.id}`, "");
    const base = `/api/v1/secret-approval-requests/${encodeURIComponent(r.id)}`;
    const label = `change request by ${r.committer} in ${projectName} ${r.environment}:${r.secretPath}`;
    const review = (verdict: "approved" | "rejected") =>
        act(async () => {
            await api("POST", `${base}/review`, { status: verdict, ...(comment ? { comment } : {}) });
            dropComment();
        }, verdict === "approved" ? "Approved" : "Rejected");
    const open = r.status === "open";
    const conflicts = Array.isArray(r.conflicts) ? r.conflicts.length > 0 : !!r.conflicts;
    return (
        <li class="request" aria-label={label}>
            <div class="secret-head">
                <span>
                    <strong>{projectName}</strong> <span class="mono">{r.environment}:{r.secretPath}</span>
                </span>
                <span class={`badge ${r.status === "open" ? (r.approved ? "ok" : "warn") : r.status === "merged" ? "ok" : "bad"}`}>
                    {r.status}
                    {open ? ` · ${r.approvals} of ${r.approvalsRequired} approvals` : ""}
                </span>
            </div>
            <p class="small muted">
                by {r.committer} · {when(r.createdAt)} · policy {r.policy.name} ({r.policy.enforcementLevel})
            </p>
            <Table label={`Changes of the ${label}`} head={["Change", "Key", "Value", "Version"]}>
                {r.commits.map((c, i) => (
                    <tr key={i} class={c.conflict ? "conflict" : ""}>
                        <td>{c.op}</td>
                        <td class="mono">
                            {c.secretKey}
                            {c.newSecretName && c.newSecretName !== c.secretKey ? ` → ${c.newSecretName}` : ""}
                        </td>
                        <td>
                            {c.op === "delete" ? "—" : c.valueChanged ? <span class="masked">•••• (hidden)</span> : "unchanged"}
                            {c.commentChanged ? " · comment changed" : ""}
                        </td>
                        <td>
                            {c.baseVersion ? `v${c.baseVersion}` : "new"}
                            {c.conflict ? ` · conflict: now v${c.currentVersion}` : ""}
                        </td>
                    </tr>
                ))}
            </Table>
            {r.reviewers.length > 0 && (
                <p class="small">
                    {r.reviewers.map((v) => `${v.email}: ${v.status}${v.comment ? ` (“${v.comment}”)` : ""}`).join(" · ")}
                </p>
            )}
            {conflicts && open && (
                <p class="notice">A key changed since this request was made: it cannot merge. Its author closes it and proposes it again.</p>
            )}
            {open && (
                <div class="actions">
                    {!mine && (
                        <Decide id={`c-${r.id}`} label={label} comment={comment} setComment={setComment} yes="Approve" no="Reject"
                            onYes={() => review("approved")} onNo={() => review("rejected")} />
                    )}
                    {r.approved && (
                        <button type="button" onClick={() => act(() => api("POST", `${base}/merge`, {}), "Merged")} aria-label={`Merge the ${label}`}>
                            Merge
                        </button>
                    )}
                    {mine && (
                        <button type="button" class="quiet" onClick={() => act(() => api("POST", `${base}/status`, { status: "close" }), "Request withdrawn")} aria-label={`Withdraw the ${label}`}>
                            Withdraw
                        </button>
                    )}
                </div>
            )}
        </li>
    );
}

function AccessCard({ a, mine, projectName, act }: { a: AccessRequest; mine: boolean; projectName: string; act: Act }) {
    const [comment, setComment, dropComment] = useKept(`access\u0000${a.id}`, "");
    const base = `/api/v1/access-requests/${encodeURIComponent(a.id)}`;
    const label = `access request of ${a.user.email} to ${projectName} ${a.environment}:${a.secretPath}`;
    const decide = (verdict: "grant" | "deny") =>
        act(async () => {
            await api("POST", `${base}/${verdict}`, comment ? { comment } : {});
            dropComment();
        }, verdict === "grant" ? "Access granted" : "Access denied");
    const actions = Array.isArray(a.actions) ? a.actions.join(", ") : a.actions;
    return (
        <li class="request" aria-label={label}>
            <div class="secret-head">
                <span>
                    <strong>{a.user.email}</strong> asks for <em>{actions}</em> on {projectName}{" "}
                    <span class="mono">
                        {a.environment}:{a.secretPath}
                    </span>{" "}
                    for {duration(a.duration)}
                </span>
                <span class={`badge ${a.status === "granted" ? "ok" : a.status === "pending" ? "warn" : "bad"}`}>{a.status}</span>
            </div>
            <p class="small">
                “{a.reason}” · {when(a.createdAt)}
                {a.endsAt ? ` · ends ${when(a.endsAt)}` : ""}
                {a.comment ? ` · ${a.comment}` : ""}
            </p>
            {a.status === "pending" && !mine && (
                <div class="actions">
                    <Decide id={`a-${a.id}`} label={label} comment={comment} setComment={setComment} yes="Grant" no="Deny"
                        onYes={() => decide("grant")} onNo={() => decide("deny")} />
                </div>
            )}
            {a.status === "granted" && (
                <div class="actions">
                    <button type="button" class="quiet" onClick={() => act(() => api("POST", `${base}/revoke`, {}), "Access revoked")} aria-label={`Revoke the ${label}`}>
                        Revoke
                    </button>
                </div>
            )}
        </li>
    );
}
