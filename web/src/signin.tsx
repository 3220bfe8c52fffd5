// Sign-in: email and password, then the two-factor code when the account asks for one; single sign-on when the
// server has it (GET /api/status answers `sso: true`).
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, errorText, setCsrf, type User } from "./api";
import { ErrorBox, Field, PageTitle } from "./ui";

interface Props {
    expired: boolean;
    returnTo: string;
    onSignedIn: (u: User) => void;
}

export function SignIn({ expired, returnTo, onSignedIn }: Props) {
    const [email, setEmail] = useState("");
    const [password, setPassword] = useState("");
    const [ticket, setTicket] = useState<string | null>(null);
    const [code, setCode] = useState("");
    const [error, setError] = useState<string | null>(null);
    const [busy, setBusy] = useState(false);
    const [sso, setSso] = useState(false);

    useEffect(() => {
        api<{ sso?: boolean }>("GET", "/api/status", undefined, { quiet401: true })
            .then((s) => setSso(s.sso === true))
            .catch(() => setSso(false));
    }, []);

    async function signedIn(r: { user: User; csrfToken: string }) {
        setCsrf(r.csrfToken);
        setPassword("");
        setCode("");
        onSignedIn(r.user);
    }

    async function submitPassword(e: Event) {
        e.preventDefault();
        setBusy(true);
        setError(null);
        try {
            const r = await api<{ user: User; csrfToken: string }>(
                "POST",
                "/api/v1/auth/login",
                { email, password },
                { quiet401: true },
            );
            await signedIn(r);
        } catch (err) {
            if (err instanceof ApiError && err.status === 401 && err.body.mfaRequired === true) {
                setTicket(String(err.body.mfaTicket));
                setPassword("");
            } else setError(errorText(err));
        } finally {
            setBusy(false);
        }
    }

    async function submitCode(e: Event) {
        e.preventDefault();
        setBusy(true);
        setError(null);
        try {
            const r = await api<{ user: User; csrfToken: string }>(
                "POST",
                "/api/v1/auth/login/mfa",
                { mfaTicket: ticket, code: code.trim() },
                { quiet401: true },
            );
            await signedIn(r);
        } catch (err) {
            setError(errorText(err));
            if (err instanceof ApiError && /ticket/i.test(err.message)) setTicket(null);
        } finally {
            setBusy(false);
        }
    }

    return (
        <main id="main" class="signin">
            <section class="card">
                <p class="brand">Coffer</p>
                <PageTitle>{ticket ? "Two-factor code" : "Sign in"}</PageTitle>
                {expired && (
                    <p class="notice" role="status">
                        Your session has ended. Sign in again to go on; unsaved edits are kept.
                    </p>
                )}
                <ErrorBox error={error} />
                {ticket ? (
                    <form onSubmit={submitCode}>
                        <Field
                            label="Authentication code"
                            name="code"
                            value={code}
                            onInput={setCode}
                            autoComplete="one-time-code"
                            inputMode="numeric"
                            required
                            autoFocus
                            hint="The six digits from your authenticator app, or a recovery code."
                        />
                        <button type="submit" class="primary" disabled={busy}>
                            Verify
                        </button>{" "}
                        <button type="button" class="quiet" onClick={() => setTicket(null)}>
                            Back
                        </button>
                    </form>
                ) : (
                    <form onSubmit={submitPassword}>
                        <Field
                            label="Email"
                            name="email"
                            type="email"
                            value={email}
                            onInput={setEmail}
                            autoComplete="username"
                            required
                            autoFocus
                        />
                        <Field
                            label="Password"
                            name="password"
                            type="password"
                            value={password}
                            onInput={setPassword}
                            autoComplete="current-password"
                            required
                        />
                        <button type="submit" class="primary" disabled={busy}>
                            Sign in
                        </button>
                    </form>
                )}
                {sso && !ticket && (
                    <p class="sso">
                        <a
                            class="button"
                            data-external
                            href={`/api/v1/sso/oidc/login?return=${encodeURIComponent(returnTo)}`}
                        >
                            Sign in with single sign-on
                        </a>
                    </p>
                )}
            </section>
        </main>
    );
}
