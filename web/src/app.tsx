// The dashboard's shell: who is signed in, the header, and which page the location shows.
import { useEffect, useState } from "preact/hooks";
import { api, onSessionExpired, setCsrf, type User } from "./api";
import { match, navigate, useLocation } from "./router";
import { SignIn } from "./signin";
import { Account } from "./account";
import { Projects } from "./projects";
import { Overview } from "./overview";
import { Editor } from "./editor";
import { PageTitle } from "./ui";
import { Identities, IdentityPage } from "./identities";
import { Expiry } from "./expiry";
import { Audit } from "./audit";
import { Approvals } from "./approvals";
import { Automation } from "./automation";
import { Notifications } from "./notifications";

// A return path is one of this app's own paths, never another origin.
export function safeReturn(p: string | null): string {
    return p && /^\/(?![/\\])[^\s]*$/.test(p) && !p.startsWith("/sign-in") ? p : "/projects";
}

export function App() {
    const loc = useLocation();
    const [user, setUser] = useState<User | null | undefined>(undefined);
    const [expired, setExpired] = useState(false);

    useEffect(() => {
        onSessionExpired(() => {
            setUser(null);
            setExpired(true);
            if (location.pathname !== "/sign-in")
                navigate(`/sign-in?return=${encodeURIComponent(location.pathname + location.search)}`);
        });
        api<{ user: User }>("GET", "/api/v1/users/me", undefined, { quiet401: true })
            .then((r) => setUser(r.user))
            .catch(() => setUser(null));
    }, []);

    useEffect(() => {
        if (user === null && loc.path !== "/sign-in")
            navigate(`/sign-in?return=${encodeURIComponent(loc.path + location.search)}`, true);
        if (user && (loc.path === "/" || loc.path === "")) navigate("/projects", true);
    }, [user, loc.path]);

    async function signOut() {
        try {
            await api("POST", "/api/v1/auth/logout", {}, { quiet401: true });
        } catch {
            /* the session may have ended already: signed out either way */
        }
        setCsrf(null);
        setExpired(false);
        setUser(null);
        navigate("/sign-in");
    }

    if (user === undefined)
        return (
            <main id="main" class="page">
                <p role="status">Loading…</p>
            </main>
        );

    if (loc.path === "/sign-in" || !user)
        return (
            <SignIn
                expired={expired}
                returnTo={safeReturn(loc.query.get("return"))}
                onSignedIn={(u) => {
                    setUser(u);
                    setExpired(false);
                    navigate(safeReturn(loc.query.get("return")), true);
                }}
            />
        );

    let page;
    let params: Record<string, string> | null;
    if (loc.path === "/" || match("/projects", loc.path)) page = <Projects key="projects" />;
    else if ((params = match("/projects/:id", loc.path))) page = <Overview key={loc.path} projectId={params.id} />;
    else if ((params = match("/projects/:id/secrets", loc.path)))
        page = (
            <Editor
                key={loc.path + location.search}
                projectId={params.id}
                env={loc.query.get("env") || ""}
                path={loc.query.get("path") || "/"}
            />
        );
    else if (match("/account", loc.path)) page = <Account key="account" />;
    else if (match("/identities", loc.path)) page = <Identities key="identities" />;
    else if ((params = match("/identities/:id", loc.path)))
        page = <IdentityPage key={loc.path} identityId={params.id} />;
    else if (match("/expiry", loc.path)) page = <Expiry key="expiry" />;
    else if (match("/audit", loc.path)) page = <Audit key="audit" />;
    else if (match("/approvals", loc.path)) page = <Approvals key="approvals" user={user} />;
    else if (match("/notifications", loc.path)) page = <Notifications key="notifications" />;
    else if ((params = match("/projects/:id/automation", loc.path)))
        page = <Automation key={loc.path} projectId={params.id} />;
    else
        page = (
            <section>
                <PageTitle>Page not found</PageTitle>
                <p>
                    Nothing lives at <code>{loc.path}</code>. <a href="/projects">Go to the projects</a>.
                </p>
            </section>
        );

    const here = (p: string) => (loc.path === p || loc.path.startsWith(p + "/") ? "page" : undefined);
    return (
        <>
            <a class="skip" href="#main">
                Skip to content
            </a>
            <header class="top">
                <a class="brand" href="/projects">
                    Coffer
                </a>
                <nav aria-label="Main">
                    <a href="/projects" aria-current={here("/projects")}>
                        Projects
                    </a>
                    <a href="/account" aria-current={here("/account")}>
                        Account
                    </a>
                    <a href="/identities" aria-current={here("/identities")}>
                        Identities
                    </a>
                    <a href="/expiry" aria-current={here("/expiry")}>
                        Expiry
                    </a>
                    <a href="/audit" aria-current={here("/audit")}>
                        Audit log
                    </a>
                    <a href="/approvals" aria-current={here("/approvals")}>
                        Approvals
                    </a>
                    {user.orgRole !== "member" && (
                        <a href="/notifications" aria-current={here("/notifications")}>
                            Notifications
                        </a>
                    )}
                </nav>
                <span class="who" title={user.email}>
                    {user.email}
                </span>
                <span class="small muted" title="Your role in the server's organisation (a server has one)">
                    ({user.orgRole})
                </span>
                <button type="button" class="quiet" onClick={signOut}>
                    Sign out
                </button>
            </header>
            <main id="main" class="page">
                {page}
            </main>
        </>
    );
}
