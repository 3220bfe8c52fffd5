// Bulk paste of a .env file into one folder: parsed in the browser (dotenv.ts), compared with the folder's
// current values (one read of the folder, audited as a list; the values are compared in memory and dropped),
// previewed as new / changed / unchanged keys, then written in one batch request (upsert). The pasted text is
// kept in memory only (kept.ts), so an expired session does not lose it.
import { useState } from "preact/hooks";
import { api, errorText, type Secret } from "./api";
import { classify, parseDotenv, type Change, type DotenvEntry } from "./dotenv";
import { useKept } from "./kept";
import { ErrorBox, Table, Field } from "./ui";

interface Props {
    place: string;
    scope: { workspaceId: string; environment: string; secretPath: string };
    onDone: (message: string) => void;
    onCancel: () => void;
}

interface Preview {
    entries: DotenvEntry[];
    changes: Map<string, Change>;
    problems: string[];
}

export function BulkPaste(p: Props) {
    const [text, setText, dropText, restored] = useKept(`bulk\u0000${p.place}`, "");
    const [preview, setPreview] = useState<Preview | null>(null);
    const [error, setError] = useState<string | null>(null);
    const [busy, setBusy] = useState(false);

    async function check(e: Event) {
        e.preventDefault();
        setError(null);
        setPreview(null);
        const parsed = parseDotenv(text);
        if (!parsed.entries.length) {
            setError(parsed.problems.length ? parsed.problems.join("; ") : "nothing to import: paste KEY=value lines");
            return;
        }
        try {
            const r = await api<{ secrets: Secret[] }>("GET", "/api/v3/secrets/raw", undefined, {
                query: { ...p.scope, viewSecretValue: true },
            });
            const current = new Map(r.secrets.map((s) => [s.secretKey, s.secretValue] as [string, string]));
            const changes = classify(parsed.entries, current);
            current.clear();
            setPreview({ entries: parsed.entries, changes, problems: parsed.problems });
        } catch (e2) {
            setError(errorText(e2));
        }
    }

    async function write() {
        if (!preview) return;
        const items = preview.entries.filter((x) => preview.changes.get(x.key) !== "unchanged");
        if (!items.length) {
            p.onDone("Nothing to write: every pasted key already holds that value");
            dropText();
            return;
        }
        setBusy(true);
        setError(null);
        try {
            const answer = await api<{ secrets?: Secret[] }>("PATCH", "/api/v3/secrets/batch/raw", {
                ...p.scope,
                mode: "upsert",
                secrets: items.map((x) => ({ secretKey: x.key, secretValue: x.value })),
            });
            dropText();
            setPreview(null);
            const created = items.filter((x) => preview.changes.get(x.key) === "new").length;
            p.onDone(
                answer.secrets
                    ? `Imported: ${created} new, ${items.length - created} changed`
                    : "The import needs approval: a change request was opened",
            );
        } catch (e) {
            setError(errorText(e));
        } finally {
            setBusy(false);
        }
    }

    const count = (c: Change) => (preview ? preview.entries.filter((x) => preview.changes.get(x.key) === c).length : 0);
    return (
        <form class="draft" aria-label="Paste a .env file" onSubmit={check}>
            <h3>Paste a .env file</h3>
            {restored && text && (
                <p class="notice" role="status">
                    Your pasted text was kept (in this tab, until it is reloaded). Review it and check it again.
                </p>
            )}
            <Field
                label=".env text"
                value={text}
                multiline
                mono
                rows={8}
                onInput={(v) => {
                    setText(v);
                    setPreview(null);
                }}
                hint={'KEY=value per line; "export " prefixes, # comments and quoted values (several lines in quotes) are understood.'}
            />
            <ErrorBox error={error} />
            <button type="submit">Check</button>{" "}
            <button
                type="button"
                class="quiet"
                onClick={() => {
                    dropText();
                    p.onCancel();
                }}
            >
                Cancel
            </button>
            {preview && (
                <div class="preview" role="region" aria-label="Import preview">
                    <p role="status">
                        {count("new")} new, {count("changed")} changed, {count("unchanged")} unchanged
                    </p>
                    {preview.problems.length > 0 && (
                        <ul class="problems">
                            {preview.problems.map((x, i) => (
                                <li key={i}>{x}</li>
                            ))}
                        </ul>
                    )}
                    <Table label="Keys to import" head={["Key", "Line", "Change"]}>
                        {preview.entries.map((x) => {
                            const c = preview.changes.get(x.key)!;
                            return (
                                <tr key={x.key} data-change={c}>
                                    <th scope="row" class="mono">
                                        {x.key}
                                    </th>
                                    <td>{x.line}</td>
                                    <td>
                                        <span class={`badge ${c === "new" ? "ok" : c === "changed" ? "warn" : ""}`}>{c}</span>
                                    </td>
                                </tr>
                            );
                        })}
                    </Table>
                    <button type="button" class="primary" disabled={busy} onClick={write}>
                        Write {count("new") + count("changed")} secret(s)
                    </button>
                </div>
            )}
        </form>
    );
}
