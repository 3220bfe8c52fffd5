// Notification channels (docs/notifications.md): where expiry, approval and access notices go. Lists every channel
// (server-wide and per project), creates webhook, Slack, Teams and e-mail channels, sends one a test message,
// removes them, delivers what is due now (POST /api/v1/notifications/run) and shows the delivery log with each
// notice's last error. Org owners
// and admins only, as the API. A webhook's signing secret is shown once, when the server makes it.
import { useEffect, useState } from "preact/hooks";
import { api, errorText, type Project } from "./api";
import { useKept } from "./kept";
import { ErrorBox, Field, Loading, PageTitle, SelectField, ShownOnce, Status, Table, when } from "./ui";

interface Channel {
    id: string;
    workspaceId: string | null;
    type: string;
    name: string;
    url?: string;
    recipients?: string;
    signed: boolean;
    createdAt: string;
}
interface Delivery {
    id: string;
    channelId: string;
    threshold: string;
    message: string;
    status: string;
    attempts: number;
    lastError: string;
    createdAt: string;
}
interface NewChannel {
    type: string;
    name: string;
    target: string;
    projectId: string;
}

const TYPES: [string, string][] = [
    ["webhook", "Webhook (signed JSON)"],
    ["slack", "Slack incoming webhook"],
    ["teams", "Microsoft Teams webhook"],
    ["email", "E-mail"],
];

export function Notifications() {
    const [channels, setChannels] = useState<Channel[] | null>(null);
    const [deliveries, setDeliveries] = useState<Delivery[]>([]);
    const [projects, setProjects] = useState<Project[]>([]);
    const [error, setError] = useState<string | null>(null);
    const [message, setMessage] = useState<string | null>(null);
    const [signingSecret, setSigningSecret] = useState<string | null>(null);
    const [confirm, setConfirm] = useState<string | null>(null);
    const empty: NewChannel = { type: "webhook", name: "", target: "", projectId: "" };
    const [form, setForm, dropForm, restored] = useKept<NewChannel>("channel", empty);

    async function load() {
        try {
            const [c, d, p] = await Promise.all([
                api<{ channels: Channel[] }>("GET", "/api/v1/notifications/channels"),
                api<{ deliveries: Delivery[] }>("GET", "/api/v1/notifications/deliveries", undefined, { query: { limit: 20 } }),
                api<{ workspaces: Project[] }>("GET", "/api/v1/workspace"),
            ]);
            setChannels(c.channels);
            setDeliveries(d.deliveries);
            setProjects(p.workspaces);
        } catch (e) {
            setError(errorText(e));
        }
    }
    useEffect(() => {
        load();
    }, []);

    async function create(e: Event) {
        e.preventDefault();
        setError(null);
        setMessage(null);
        const email = form.type === "email";
        try {
            const r = await api<{ channel: Channel; signingSecret?: string }>("POST", "/api/v1/notifications/channels", {
                type: form.type,
                ...(form.name.trim() ? { name: form.name.trim() } : {}),
                [email ? "recipients" : "url"]: form.target.trim(),
                ...(form.projectId ? { workspaceId: form.projectId } : {}),
            });
            dropForm();
            setSigningSecret(r.signingSecret || null);
            setMessage(`Channel ${r.channel.name || r.channel.type} added`);
            await load();
        } catch (e2) {
            setError(errorText(e2));
        }
    }

    async function remove(c: Channel) {
        setError(null);
        try {
            await api("DELETE", `/api/v1/notifications/channels/${encodeURIComponent(c.id)}`);
            setConfirm(null);
            setMessage(`Channel ${c.name || c.id} removed`);
            await load();
        } catch (e) {
            setError(errorText(e));
        }
    }

    async function test(c: Channel) {
        setError(null);
        setMessage(null);
        const name = c.name || c.type;
        try {
            const r = await api<{ delivered: boolean; error: string | null }>(
                "POST",
                `/api/v1/notifications/channels/${encodeURIComponent(c.id)}/test`,
                {},
            );
            if (r.delivered) setMessage(`Test message delivered to ${name}`);
            else setError(`${name} refused the test message: ${r.error || "no reason given"}`);
        } catch (e) {
            setError(errorText(e));
        }
    }

    async function runNow() {
        setError(null);
        try {
            const r = await api<{ items: number; created: number; delivered: number; retrying: number; failed: number }>(
                "POST",
                "/api/v1/notifications/run",
                {},
            );
            setMessage(`Notifications run: ${r.items} item(s) due, ${r.created} new notice(s), ${r.delivered} delivered, ${r.retrying} to retry, ${r.failed} failed`);
            await load();
        } catch (e) {
            setError(errorText(e));
        }
    }

    const projectName = (id: string | null) => (id ? projects.find((p) => p.id === id)?.name || id : "every project (server-wide)");
    const channelName = (id: string) => channels?.find((c) => c.id === id)?.name || id.slice(0, 8);
    return (
        <section>
            <PageTitle>Notification channels</PageTitle>
            <ErrorBox error={error} />
            <Status text={message} />
            {signingSecret && (
                <ShownOnce
                    label="Signing secret"
                    intro={
                        <>
                            The webhook's signing secret: the receiver checks <code>X-Coffer-Signature</code> with it.
                        </>
                    }
                    value={signingSecret}
                    testId="signing-secret"
                    onStatus={setMessage}
                    onDone={() => setSigningSecret(null)}
                />
            )}
            {!channels ? (
                !error && <Loading what="channels" />
            ) : channels.length === 0 ? (
                <p class="muted">No channels yet: expiry, approval and access notices go nowhere until one is added.</p>
            ) : (
                <Table label="Channels" head={["Name", "Type", "Target", "Hears about", "Added", "Action"]}>
                    {channels.map((c) => (
                        <tr key={c.id}>
                            <th scope="row">{c.name || "—"}</th>
                            <td>
                                {c.type}
                                {c.signed ? " (signed)" : ""}
                            </td>
                            <td class="ua">{c.recipients || c.url}</td>
                            <td>{projectName(c.workspaceId)}</td>
                            <td>{when(c.createdAt)}</td>
                            <td>
                                {confirm === c.id ? (
                                    <>
                                        <button type="button" class="danger" onClick={() => remove(c)}>
                                            Remove {c.name || c.type} for good
                                        </button>{" "}
                                        <button type="button" class="quiet" onClick={() => setConfirm(null)}>
                                            Keep it
                                        </button>
                                    </>
                                ) : (
                                    <span class="actions">
                                        <button type="button" aria-label={`Send a test to channel ${c.name || c.id}`} onClick={() => test(c)}>
                                            Send a test
                                        </button>
                                        <button type="button" aria-label={`Remove channel ${c.name || c.id}`} onClick={() => setConfirm(c.id)}>
                                            Remove
                                        </button>
                                    </span>
                                )}
                            </td>
                        </tr>
                    ))}
                </Table>
            )}

            <h2>Add a channel</h2>
            {restored && form.target && (
                <p class="notice" role="status">
                    Your unsaved channel was kept (in this tab, until it is reloaded). Review it and add it.
                </p>
            )}
            <form class="draft" aria-label="Add a channel" onSubmit={create}>
                <SelectField label="Type" value={form.type} options={TYPES} onChange={(v) => setForm({ ...form, type: v })} />
                <Field label="Channel name" value={form.name} onInput={(v) => setForm({ ...form, name: v })} />
                <Field
                    label={form.type === "email" ? "Recipients" : "URL"}
                    value={form.target}
                    required
                    onInput={(v) => setForm({ ...form, target: v })}
                    hint={form.type === "email" ? "Comma-separated addresses; the server's SMTP settings send them." : "https (plain http only to a loopback address)."}
                />
                <SelectField
                    label="Hears about"
                    value={form.projectId}
                    options={[["", "every project (server-wide)"], ...projects.map((p): [string, string] => [p.id, p.name])]}
                    onChange={(v) => setForm({ ...form, projectId: v })}
                />
                <button type="submit" class="primary">
                    Add channel
                </button>
            </form>

            <h2>Deliveries</h2>
            <p>
                <button type="button" onClick={runNow}>
                    Deliver due notices now
                </button>
            </p>
            {deliveries.length === 0 ? (
                <p class="muted">Nothing delivered yet.</p>
            ) : (
                <Table label="Deliveries" head={["Created", "Status", "Attempts", "Channel", "Message", "Last error"]}>
                    {deliveries.map((d) => (
                        <tr key={d.id}>
                            <td>{when(d.createdAt)}</td>
                            <td>
                                <span class={`badge ${d.status === "delivered" ? "ok" : d.status === "failed" ? "bad" : "warn"}`}>{d.status}</span>
                            </td>
                            <td>{d.attempts}</td>
                            <td>{channelName(d.channelId)}</td>
                            <td class="ua">{d.message}</td>
                            <td class="ua">{d.lastError || "—"}</td>
                        </tr>
                    ))}
                </Table>
            )}
        </section>
    );
}
