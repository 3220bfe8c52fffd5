// Expiry: a timeline of everything that ends within the next 90 days (or already has), the same answer as
// `coffer expiring` (GET /api/v1/expiring), one lane per kind, each item coloured by urgency and linked to its
// page; below it the same items as a table, with the rotation that renews each one when there is one.
import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, errorText, type Project } from "./api";
import { navigate } from "./router";
import { ErrorBox, Loading, PageTitle, Table, when } from "./ui";
import { expiryWords, urgencyOf, URGENCY_WORD, type Urgency } from "./urgency";

interface ExpiringItem {
    kind: "secret" | "reminder" | "clientSecret" | "connection";
    status: string;
    dueAt: string;
    message: string;
    project?: { id: string; name: string };
    environment?: string;
    secretPath?: string;
    secretKey?: string;
    secretId?: string;
    identity?: { id: string; name: string };
    clientSecretId?: string;
    description?: string;
    appConnection?: { id: string; name: string; app: string; method: string };
}
interface Rotation {
    id: string;
    name: string;
    projectId: string;
    connectionId: string | null;
    environment: { slug: string };
    folder: { path: string };
    secretsMapping: Record<string, string>;
    consumers: { connectionId?: string }[];
    rotationStatus: string;
    nextRotationAt: string | null;
    lastRotationMessage: string | null;
}

const DAY_MS = 86400000;
const LANES: { kind: ExpiringItem["kind"]; label: string }[] = [
    { kind: "secret", label: "Secrets" },
    { kind: "reminder", label: "Rotation reminders" },
    { kind: "clientSecret", label: "Client secrets" },
    { kind: "connection", label: "Connections" },
];
const WINDOWS = [30, 60, 90];

// Geometry of the chart, in SVG user units (the SVG scales to its box).
const W = 960;
const LEFT = 175; // lane labels
const ENDED = 100; // the "already ended" column
const LANE_H = 46;
const TOP = 30;

function itemName(i: ExpiringItem): string {
    switch (i.kind) {
        case "secret":
        case "reminder":
            return `${i.secretKey} (${i.project?.name}/${i.environment}${i.secretPath === "/" ? "" : i.secretPath})`;
        case "clientSecret":
            return `client secret "${i.description || i.clientSecretId}" of ${i.identity?.name}`;
        default:
            return `connection ${i.appConnection?.name} (${i.appConnection?.app})`;
    }
}

// The item's own page in the dashboard, or null when the dashboard has none (connections: the table row).
function itemHref(i: ExpiringItem): string | null {
    if ((i.kind === "secret" || i.kind === "reminder") && i.project)
        return `/projects/${encodeURIComponent(i.project.id)}/secrets?env=${encodeURIComponent(
            i.environment || "",
        )}&path=${encodeURIComponent(i.secretPath || "/")}`;
    if (i.kind === "clientSecret" && i.identity) return `/identities/${encodeURIComponent(i.identity.id)}`;
    return null;
}

function itemId(i: ExpiringItem, n: number): string {
    return `exp-${i.secretId || i.clientSecretId || i.appConnection?.id || n}-${i.kind}`;
}

// The rotation that renews the item: one writing the secret's key in its folder, or using the connection.
function rotationOf(i: ExpiringItem, rotations: Rotation[]): Rotation | undefined {
    if (i.kind === "secret" || i.kind === "reminder")
        return rotations.find(
            (r) =>
                r.projectId === i.project?.id &&
                r.environment.slug === i.environment &&
                r.folder.path === i.secretPath &&
                Object.values(r.secretsMapping || {}).includes(i.secretKey || ""),
        );
    if (i.kind === "connection")
        return rotations.find(
            (r) =>
                r.connectionId === i.appConnection?.id ||
                (r.consumers || []).some((c) => c.connectionId === i.appConnection?.id),
        );
    return undefined;
}

function RotationCell({ item, rotations }: { item: ExpiringItem; rotations: Rotation[] | null }) {
    if (item.kind === "clientSecret")
        return <span class="muted">create a new client secret on the identity's page, then revoke this one</span>;
    if (!rotations) return <span class="muted">unknown (rotations not readable)</span>;
    const r = rotationOf(item, rotations);
    if (!r) return <span class="muted">no rotation</span>;
    return (
        <span>
            <a href={`/projects/${encodeURIComponent(r.projectId)}/automation`}>
                <strong>{r.name}</strong>
            </a>{" "}
            <span class={`badge ${r.rotationStatus === "failed" ? "bad" : "ok"}`}>{r.rotationStatus}</span>
            {r.nextRotationAt && <> next {when(r.nextRotationAt)}</>}
            {r.lastRotationMessage && <span class="small"> · last error: {r.lastRotationMessage}</span>}
        </span>
    );
}

function Timeline({ items, days, now }: { items: ExpiringItem[]; days: number; now: number }) {
    const span = W - LEFT - ENDED - 20;
    const x = (t: number) => LEFT + ENDED + Math.min(1, Math.max(0, t - now) / (days * DAY_MS)) * span;
    const height = TOP + LANES.length * LANE_H + 10;
    const ticks = [0, 7, 30, 60, 90].filter((d) => d <= days);
    const marks: JSX.Element[] = [];
    LANES.forEach((lane, li) => {
        const here = items.filter((i) => i.kind === lane.kind);
        here.forEach((i, k) => {
            const t = new Date(i.dueAt).getTime();
            const u: Urgency = urgencyOf(i.dueAt, now);
            // items close in time are spread over three rows of the lane so that each stays clickable
            const row = [0, -1, 1][k % 3];
            const cx = t < now ? LEFT + ENDED / 2 + row * 16 : x(t);
            const cy = TOP + li * LANE_H + LANE_H / 2 + row * 12;
            const href = itemHref(i);
            const label = `${itemName(i)}: ${i.status}, ${expiryWords(i.dueAt, now, i.kind === "reminder")} (${URGENCY_WORD[u]})`;
            marks.push(
                <a
                    key={`${lane.kind}-${k}`}
                    href={href || `#${itemId(i, items.indexOf(i))}`}
                    class={`mark ${u}`}
                    aria-label={label}
                    onClick={(e) => {
                        e.preventDefault();
                        if (href) navigate(href);
                        else document.getElementById(itemId(i, items.indexOf(i)))?.focus();
                    }}
                >
                    <title>{label}</title>
                    {u === "bad" ? (
                        <rect x={cx - 7} y={cy - 7} width={14} height={14} />
                    ) : u === "warn" ? (
                        <polygon points={`${cx},${cy - 8} ${cx + 8},${cy + 6} ${cx - 8},${cy + 6}`} />
                    ) : (
                        <circle cx={cx} cy={cy} r={7} />
                    )}
                </a>,
            );
        });
    });
    return (
        <svg
            class="timeline"
            viewBox={`0 0 ${W} ${height}`}
            role="group"
            aria-label={`Timeline of ${items.length} items ending within ${days} days`}
        >
            <rect class="band bad" x={LEFT} y={TOP - 6} width={ENDED + (7 / days) * span} height={height - TOP} />
            <rect
                class="band warn"
                x={x(now + 7 * DAY_MS)}
                y={TOP - 6}
                width={(23 / days) * span}
                height={height - TOP}
            />
            <text class="axis" x={LEFT + ENDED / 2} y={16} text-anchor="middle">
                ended
            </text>
            {ticks.map((d) => (
                <g key={d}>
                    <line class="tick" x1={x(now + d * DAY_MS)} x2={x(now + d * DAY_MS)} y1={TOP - 6} y2={height - 4} />
                    <text class="axis" x={x(now + d * DAY_MS)} y={16} text-anchor="middle">
                        {d === 0 ? "now" : `${d} d`}
                    </text>
                </g>
            ))}
            {LANES.map((lane, li) => (
                <g key={lane.kind}>
                    <line class="lane" x1={0} x2={W} y1={TOP + (li + 1) * LANE_H} y2={TOP + (li + 1) * LANE_H} />
                    <text class="lane-label" x={4} y={TOP + li * LANE_H + LANE_H / 2 + 5}>
                        {lane.label}
                    </text>
                </g>
            ))}
            {marks}
        </svg>
    );
}

export function Expiry() {
    const [days, setDays] = useState(90);
    const [doc, setDoc] = useState<{ now: string; items: ExpiringItem[] } | null>(null);
    const [rotations, setRotations] = useState<Rotation[] | null>(null);
    const [error, setError] = useState<string | null>(null);

    useEffect(() => {
        setDoc(null);
        setError(null);
        api<{ now: string; items: ExpiringItem[] }>("GET", "/api/v1/expiring", undefined, {
            query: { within: `${days}d` },
        })
            .then(setDoc)
            .catch((e) => setError(errorText(e)));
        // rotations are listed per project (projectId is required): every project's, read side by side
        api<{ workspaces: Project[] }>("GET", "/api/v1/workspace")
            .then((r) =>
                Promise.all(
                    r.workspaces.map((p) =>
                        api<{ secretRotations: Rotation[] }>("GET", "/api/v2/secret-rotations", undefined, {
                            query: { projectId: p.id },
                        }).then((l) => l.secretRotations),
                    ),
                ),
            )
            .then((lists) => setRotations(lists.flat()))
            .catch(() => setRotations(null));
    }, [days]);

    // The server's clock decides what is due (a test build may move it); the chart is drawn from the same "now".
    const now = doc ? new Date(doc.now).getTime() : Date.now();
    return (
        <section>
            <PageTitle>Expiry</PageTitle>
            <p class="muted">
                Everything that ends within the window or already has: secrets with an expiry, secrets due for rotation,
                client secrets of machine identities and the credentials of app connections. Red (square): ended or
                within 7 days; amber (triangle): within 30 days; green (circle): later.
            </p>
            <div class="field narrow">
                <label for="exp-window">Window</label>
                <select
                    id="exp-window"
                    value={String(days)}
                    onChange={(e) => setDays(Number((e.target as HTMLSelectElement).value))}
                >
                    {WINDOWS.map((d) => (
                        <option key={d} value={d}>
                            next {d} days
                        </option>
                    ))}
                </select>
            </div>
            <ErrorBox error={error} />
            {!doc ? (
                !error && <Loading what="what is expiring" />
            ) : doc.items.length === 0 ? (
                <div class="empty">
                    <h2>Nothing ends within {days} days</h2>
                    <p>
                        Give a secret an expiry or a rotation reminder, or a client secret a lifetime, and it shows
                        here:
                    </p>
                    <pre>
                        <code>{`coffer secrets set API_KEY=@api-key.txt --projectId my-app --env prod --expires-in 60d
coffer secrets set DB_PASSWORD=- --projectId my-app --env prod --reminder-every 90d < password.txt
coffer identities client-secrets create IDENTITY_ID --description ci --ttl 90d
coffer expiring --within ${days}d`}</code>
                    </pre>
                </div>
            ) : (
                <>
                    <p role="status">
                        {doc.items.length} items; as of {when(doc.now)}
                    </p>
                    <div class="timeline-box">
                        <div class="timeline-inner">
                            <Timeline items={doc.items} days={days} now={now} />
                        </div>
                    </div>
                    <h2>All items</h2>
                    <Table label="Expiring items" head={["Due", "Urgency", "Kind", "What", "Rotation"]}>
                        {doc.items.map((i, n) => {
                            const href = itemHref(i);
                            const u = urgencyOf(i.dueAt, now);
                            return (
                                <tr key={n} id={itemId(i, n)} tabIndex={-1} data-testid="expiring-row">
                                    <td>{when(i.dueAt)}</td>
                                    <td>
                                        <span class={`badge ${u}`}>
                                            {i.status}, {expiryWords(i.dueAt, now, i.kind === "reminder")}
                                        </span>
                                    </td>
                                    <td>{LANES.find((l) => l.kind === i.kind)?.label || i.kind}</td>
                                    <td>{href ? <a href={href}>{itemName(i)}</a> : itemName(i)}</td>
                                    <td>
                                        <RotationCell item={i} rotations={rotations} />
                                    </td>
                                </tr>
                            );
                        })}
                    </Table>
                </>
            )}
        </section>
    );
}
