// The signed-in person's own sessions (end one, end all others) and personal access tokens (create, shown once;
// revoke).
import { useEffect, useState } from "preact/hooks";
import { api, errorText, type Pat, type Session } from "./api";
import { ErrorBox, Field, Loading, PageTitle, Status, when } from "./ui";

const EXPIRIES: [string, string][] = [
    ["7d", "7 days"],
    ["30d", "30 days"],
    ["90d", "90 days"],
    ["366d", "366 days"],
];

export function Account() {
    const [sessions, setSessions] = useState<Session[] | null>(null);
    const [tokens, setTokens] = useState<Pat[] | null>(null);
    const [error, setError] = useState<string | null>(null);
    const [status, setStatus] = useState<string | null>(null);
    const [name, setName] = useState("");
    const [expiresIn, setExpiresIn] = useState("30d");
    const [created, setCreated] = useState<{ token: string; pat: Pat } | null>(null);

    async function load() {
        try {
            const [s, t] = await Promise.all([
                api<{ sessions: Session[] }>("GET", "/api/v1/auth/sessions"),
                api<{ personalAccessTokens?: Pat[]; tokens?: Pat[] }>("GET", "/api/v1/users/me/tokens"),
            ]);
            setSessions(s.sessions || []);
            setTokens(t.personalAccessTokens || t.tokens || []);
        } catch (e) {
            setError(errorText(e));
        }
    }
    useEffect(() => {
        load();
    }, []);

    async function act(what: () => Promise<unknown>, done: string) {
        setError(null);
        try {
            await what();
            setStatus(done);
            await load();
        } catch (e) {
            setError(errorText(e));
        }
    }

    async function createToken(e: Event) {
        e.preventDefault();
        setError(null);
        try {
            const r = await api<{ token: string; personalAccessToken: Pat }>("POST", "/api/v1/users/me/tokens", {
                name: name.trim(),
                expiresIn,
            });
            setCreated({ token: r.token, pat: r.personalAccessToken });
            setName("");
            setStatus(`Token ${r.personalAccessToken.name} created`);
            await load();
        } catch (err) {
            setError(errorText(err));
        }
    }

    async function copyToken() {
        if (!created) return;
        try {
            await navigator.clipboard.writeText(created.token);
            setStatus("Token copied");
        } catch {
            setStatus("The browser refused the clipboard: select the token and copy it");
        }
    }

    const others = (sessions || []).filter((s) => !s.current).length;
    return (
        <section>
            <PageTitle>Account</PageTitle>
            <ErrorBox error={error} />
            <Status text={status} />

            <h2>Sessions</h2>
            {!sessions ? (
                <Loading what="sessions" />
            ) : (
                <>
                    <div class="scroll" tabIndex={0} role="region" aria-label="Sessions">
                        <table>
                            <thead>
                                <tr>
                                    <th scope="col">Browser</th>
                                    <th scope="col">Address</th>
                                    <th scope="col">Signed in</th>
                                    <th scope="col">Last seen</th>
                                    <th scope="col">Ends</th>
                                    <th scope="col">
                                        <span class="sr">Actions</span>
                                    </th>
                                </tr>
                            </thead>
                            <tbody>
                                {sessions.map((s) => (
                                    <tr key={s.id}>
                                        <td class="ua">{s.userAgent || "unknown"}</td>
                                        <td>{s.sourceIp}</td>
                                        <td>{when(s.createdAt)}</td>
                                        <td>{when(s.lastSeenAt)}</td>
                                        <td>{when(s.expiresAt)}</td>
                                        <td>
                                            {s.current ? (
                                                <span class="badge ok">this session</span>
                                            ) : (
                                                <button
                                                    type="button"
                                                    aria-label={`End the session from ${s.sourceIp} signed in ${when(s.createdAt)}`}
                                                    onClick={() =>
                                                        act(
                                                            () => api("DELETE", `/api/v1/auth/sessions/${encodeURIComponent(s.id)}`),
                                                            "Session ended",
                                                        )
                                                    }
                                                >
                                                    End
                                                </button>
                                            )}
                                        </td>
                                    </tr>
                                ))}
                            </tbody>
                        </table>
                    </div>
                    <p>
                        <button
                            type="button"
                            disabled={others === 0}
                            onClick={() =>
                                act(() => api("POST", "/api/v1/auth/sessions/revoke-others", {}), "Other sessions ended")
                            }
                        >
                            Sign out everywhere else ({others})
                        </button>
                    </p>
                </>
            )}

            <h2>Personal access tokens</h2>
            <p class="muted">
                For the CLI and scripts acting as you: <code>Authorization: Bearer coffer_pat_…</code>. A token is shown
                once, when it is created.
            </p>
            {created && (
                <div class="once" role="region" aria-label="New token">
                    <p>
                        <strong>{created.pat.name}</strong>, until {when(created.pat.expiresAt)}. Copy it now: it will
                        not be shown again.
                    </p>
                    <p>
                        <code class="token" data-testid="new-token">
                            {created.token}
                        </code>
                    </p>
                    <button type="button" onClick={copyToken}>
                        Copy token
                    </button>{" "}
                    <button type="button" class="quiet" onClick={() => setCreated(null)}>
                        Done
                    </button>
                </div>
            )}
            <form class="inline" onSubmit={createToken}>
                <Field label="Token name" name="tokenName" value={name} onInput={setName} required />
                <div class="field">
                    <label for="token-expiry">Expires in</label>
                    <select
                        id="token-expiry"
                        value={expiresIn}
                        onChange={(e) => setExpiresIn((e.target as HTMLSelectElement).value)}
                    >
                        {EXPIRIES.map(([v, l]) => (
                            <option key={v} value={v}>
                                {l}
                            </option>
                        ))}
                    </select>
                </div>
                <button type="submit" class="primary">
                    Create token
                </button>
            </form>
            {!tokens ? (
                <Loading what="tokens" />
            ) : tokens.length === 0 ? (
                <p class="muted">No personal access tokens.</p>
            ) : (
                <div class="scroll" tabIndex={0} role="region" aria-label="Personal access tokens">
                    <table>
                        <thead>
                            <tr>
                                <th scope="col">Name</th>
                                <th scope="col">Created</th>
                                <th scope="col">Expires</th>
                                <th scope="col">State</th>
                                <th scope="col">
                                    <span class="sr">Actions</span>
                                </th>
                            </tr>
                        </thead>
                        <tbody>
                            {tokens.map((t) => {
                                const expired = new Date(t.expiresAt).getTime() < Date.now();
                                return (
                                    <tr key={t.id}>
                                        <td>{t.name}</td>
                                        <td>{when(t.createdAt)}</td>
                                        <td>{when(t.expiresAt)}</td>
                                        <td>
                                            {t.revoked ? (
                                                <span class="badge bad">revoked</span>
                                            ) : expired ? (
                                                <span class="badge warn">expired</span>
                                            ) : (
                                                <span class="badge ok">active</span>
                                            )}
                                        </td>
                                        <td>
                                            {!t.revoked && (
                                                <button
                                                    type="button"
                                                    aria-label={`Revoke token ${t.name}`}
                                                    onClick={() =>
                                                        act(
                                                            () =>
                                                                api("DELETE", `/api/v1/users/me/tokens/${encodeURIComponent(t.id)}`),
                                                            `Token ${t.name} revoked`,
                                                        )
                                                    }
                                                >
                                                    Revoke
                                                </button>
                                            )}
                                        </td>
                                    </tr>
                                );
                            })}
                        </tbody>
                    </table>
                </div>
            )}
        </section>
    );
}
