// The editor's per-secret extras: tags, expiry and rotation reminder (shown on each secret and changed in one
// form that writes no value), and the line diff between two versions of a value, read only when asked for.
import { useState } from "preact/hooks";
import { api, errorText, type Secret } from "./api";
import { useKept } from "./kept";
import { lineDiff } from "./linediff";
import { ErrorBox, Field } from "./ui";

export interface Tag {
    id: string;
    slug: string;
    name: string;
    color?: string;
}

// A secret as the list answers it, with the fields the editor shows besides the key (docs/api.md, Objects).
export type SecretWithMeta = Secret & {
    tags?: Tag[];
    expiresAt?: string | null;
    secretReminderRepeatDays?: number | null;
    secretReminderNote?: string | null;
};

const DAY_MS = 86400000;

// "expired", "expires in N days" and the like; colour follows the expiry page's urgency, the words say it too.
export function expiryText(iso: string, now = Date.now()): { text: string; tone: "bad" | "warn" | "ok" } {
    const at = Date.parse(iso);
    const days = Math.floor((at - now) / DAY_MS);
    const date = new Date(at).toLocaleDateString();
    if (at <= now) return { text: `expired ${date}`, tone: "bad" };
    if (days < 7) return { text: `expires in ${days < 1 ? "less than a day" : `${days} day${days === 1 ? "" : "s"}`} (${date})`, tone: "bad" };
    if (days < 30) return { text: `expires in ${days} days (${date})`, tone: "warn" };
    return { text: `expires ${date}`, tone: "ok" };
}

export function MetaBadges({ s }: { s: SecretWithMeta }) {
    const tags = s.tags || [];
    if (!tags.length && !s.expiresAt && !s.secretReminderRepeatDays) return null;
    const exp = s.expiresAt ? expiryText(s.expiresAt) : null;
    return (
        <p class="meta">
            {tags.length > 0 && (
                <span class="tags" aria-label={`Tags of ${s.secretKey}`}>
                    {tags.map((t) => (
                        <span key={t.id} class="tag">
                            {t.name || t.slug}
                        </span>
                    ))}
                </span>
            )}
            {exp && <span class={`badge ${exp.tone}`}>{exp.text}</span>}
            {s.secretReminderRepeatDays ? (
                <span class="badge warn" title={s.secretReminderNote || undefined}>
                    rotate every {s.secretReminderRepeatDays} days{s.secretReminderNote ? `: ${s.secretReminderNote}` : ""}
                </span>
            ) : null}
        </p>
    );
}

// An RFC 3339 time as the value of a datetime-local input (the browser's time zone), and back.
function toLocalInput(iso: string | null | undefined): string {
    if (!iso) return "";
    const d = new Date(iso);
    if (isNaN(d.getTime())) return "";
    const p = (n: number) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

interface MetaDraft {
    tagIds: string[];
    expires: string;
    reminderDays: string;
    reminderNote: string;
}

interface MetaFormProps {
    projectId: string;
    place: string;
    secret: SecretWithMeta;
    scope: { workspaceId: string; environment: string; secretPath: string };
    projectTags: Tag[];
    onTagCreated: (t: Tag) => void;
    onSaved: (message: string) => void;
    onCancel: () => void;
}

// Tags, expiry and reminder of one secret: one PATCH without a value, so nothing secret is read or sent.
export function MetaForm(p: MetaFormProps) {
    const s = p.secret;
    const initial: MetaDraft = {
        tagIds: (s.tags || []).map((t) => t.id),
        expires: toLocalInput(s.expiresAt),
        reminderDays: s.secretReminderRepeatDays ? String(s.secretReminderRepeatDays) : "",
        reminderNote: s.secretReminderNote || "",
    };
    const [d, setD, dropD, restored] = useKept<MetaDraft>(`meta\u0000${p.place}\u0000${s.secretKey}`, initial);
    const [newTag, setNewTag] = useState("");
    const [error, setError] = useState<string | null>(null);

    const toggle = (id: string) =>
        setD({ ...d, tagIds: d.tagIds.includes(id) ? d.tagIds.filter((x) => x !== id) : [...d.tagIds, id] });

    async function createTag() {
        setError(null);
        const slug = newTag.trim();
        if (!slug) return setError("name the tag first");
        try {
            const r = await api<{ tag: Tag }>("POST", `/api/v1/projects/${encodeURIComponent(p.projectId)}/tags`, { slug });
            p.onTagCreated(r.tag);
            setD({ ...d, tagIds: [...d.tagIds, r.tag.id] });
            setNewTag("");
        } catch (e) {
            setError(errorText(e));
        }
    }

    async function save(e: Event) {
        e.preventDefault();
        setError(null);
        let expiresAt: string | null = null;
        if (d.expires) {
            const t = new Date(d.expires);
            if (isNaN(t.getTime())) return setError("the expiry is not a date and time");
            expiresAt = t.toISOString();
        }
        let days: number | null = null;
        if (d.reminderDays.trim()) {
            days = Number(d.reminderDays);
            if (!Number.isInteger(days) || days < 1 || days > 3650)
                return setError("the reminder repeats every 1 to 3650 days");
        }
        try {
            const answer = await api<{ secret?: Secret }>("PATCH", `/api/v3/secrets/raw/${encodeURIComponent(s.secretKey)}`, {
                ...p.scope,
                tagIds: d.tagIds,
                expiresAt,
                secretReminderRepeatDays: days,
                secretReminderNote: days && d.reminderNote.trim() ? d.reminderNote : null,
            });
            dropD();
            p.onSaved(answer.secret ? `${s.secretKey}: details saved` : `${s.secretKey}: a change request was opened for approval`);
        } catch (e2) {
            setError(errorText(e2));
        }
    }

    return (
        <form class="draft" aria-label={`Details of ${s.secretKey}`} onSubmit={save}>
            <h3>Details of {s.secretKey}</h3>
            {restored && (
                <p class="notice" role="status">
                    Your unsaved details were kept (in this tab, until it is reloaded). Review them and save.
                </p>
            )}
            <fieldset class="taglist">
                <legend>Tags</legend>
                {p.projectTags.length === 0 && <p class="muted small">The project has no tags yet: create one below.</p>}
                {p.projectTags.map((t) => (
                    <label key={t.id} class="check">
                        <input type="checkbox" checked={d.tagIds.includes(t.id)} onChange={() => toggle(t.id)} />
                        {t.name || t.slug}
                    </label>
                ))}
                <div class="inline-field">
                    <Field label="New tag" value={newTag} onInput={setNewTag} hint="Letters, digits and dashes." />
                    <button type="button" onClick={createTag}>
                        Create tag
                    </button>
                </div>
            </fieldset>
            <div class="field">
                <label for={`exp-${s.id}`}>Expires</label>
                <input
                    id={`exp-${s.id}`}
                    type="datetime-local"
                    value={d.expires}
                    onInput={(e) => setD({ ...d, expires: (e.target as HTMLInputElement).value })}
                    aria-describedby={`exp-${s.id}-hint`}
                />
                <p class="hint" id={`exp-${s.id}-hint`}>
                    When the credential this value is stops working (your time zone). Empty: no expiry.
                </p>
            </div>
            <Field
                label="Remind to rotate every (days)"
                value={d.reminderDays}
                inputMode="numeric"
                pattern="[0-9]*"
                onInput={(v) => setD({ ...d, reminderDays: v })}
                hint="Empty: no reminder. The expiry page and the notifications say when it is due."
            />
            <Field label="Reminder note" value={d.reminderNote} onInput={(v) => setD({ ...d, reminderNote: v })} />
            <ErrorBox error={error} />
            <button type="submit" class="primary">
                Save details
            </button>{" "}
            <button
                type="button"
                class="quiet"
                onClick={() => {
                    dropD();
                    p.onCancel();
                }}
            >
                Cancel
            </button>
        </form>
    );
}

interface DiffProps {
    secretKey: string;
    versions: number[];
    current: number;
    read: (version: number) => Promise<string>;
}

// Two version pickers and, on request only, the line diff of their values (two audited reads).
export function VersionDiff({ secretKey, versions, current, read }: DiffProps) {
    const older = versions.find((v) => v !== current) ?? current;
    const [from, setFrom] = useState(older);
    const [to, setTo] = useState(current);
    const [lines, setLines] = useState<ReturnType<typeof lineDiff>>(null);
    const [shown, setShown] = useState(false);
    const [error, setError] = useState<string | null>(null);

    async function show() {
        setError(null);
        try {
            const [a, b] = await Promise.all([read(from), read(to)]);
            const diff = lineDiff(a, b);
            if (!diff) throw new Error("the values are too long to compare here (over 2,000 lines)");
            setLines(diff);
            setShown(true);
        } catch (e) {
            setError(errorText(e));
        }
    }

    const pick = (label: string, v: number, set: (n: number) => void) => (
        <span>
            <label for={`diff-${label}-${secretKey}`}>{label}</label>{" "}
            <select
                id={`diff-${label}-${secretKey}`}
                value={String(v)}
                onChange={(e) => {
                    set(Number((e.target as HTMLSelectElement).value));
                    setShown(false);
                    setLines(null);
                }}
            >
                {versions.map((n) => (
                    <option key={n} value={String(n)}>
                        v{n}
                    </option>
                ))}
            </select>
        </span>
    );

    return (
        <div class="diffbox">
            <div class="toolbar">
                {pick("From", from, setFrom)}
                {pick("To", to, setTo)}
                {shown ? (
                    <button type="button" onClick={() => (setShown(false), setLines(null))}>
                        Hide the diff
                    </button>
                ) : (
                    <button type="button" aria-label={`Show the diff of ${secretKey}`} onClick={show}>
                        Show the diff
                    </button>
                )}
            </div>
            <ErrorBox error={error} />
            {shown && lines && (
                <>
                    <p class="small muted" role="status">
                        v{from} → v{to}: {lines.filter((l) => l.op === "del").length} line(s) removed,{" "}
                        {lines.filter((l) => l.op === "add").length} added
                    </p>
                    <pre class="diff" aria-label={`Diff of ${secretKey} from v${from} to v${to}`}>
                        {lines.map((l, i) => (
                            <span key={i} class={`d-${l.op}`}>
                                <span class="sr">{l.op === "add" ? "added: " : l.op === "del" ? "removed: " : ""}</span>
                                <span aria-hidden="true">{l.op === "add" ? "+ " : l.op === "del" ? "- " : "  "}</span>
                                {l.text}
                            </span>
                        ))}
                    </pre>
                </>
            )}
        </div>
    );
}
