// Client-side routing with the History API: the server answers every non-API path with index.html.
import { useEffect, useState } from "preact/hooks";

type Listener = () => void;
const listeners = new Set<Listener>();

function notify(): void {
    for (const l of listeners) l();
}

window.addEventListener("popstate", notify);

export function navigate(to: string, replace = false): void {
    if (to === location.pathname + location.search) return;
    if (replace) history.replaceState(null, "", to);
    else history.pushState(null, "", to);
    window.scrollTo(0, 0);
    notify();
}

// The current location; components using it re-render on every navigation.
export function useLocation(): { path: string; query: URLSearchParams } {
    const [, set] = useState(0);
    useEffect(() => {
        const l = () => set((n) => n + 1);
        listeners.add(l);
        return () => {
            listeners.delete(l);
        };
    }, []);
    return { path: location.pathname, query: new URLSearchParams(location.search) };
}

// Matches a pattern like "/projects/:id" against a path; answers the parameters or null.
export function match(pattern: string, path: string): Record<string, string> | null {
    const p = pattern.split("/");
    const s = path.replace(/\/+$/, "").split("/");
    if (p.length !== s.length) return null;
    const params: Record<string, string> = {};
    for (let i = 0; i < p.length; i++) {
        if (p[i].startsWith(":")) {
            if (!s[i]) return null;
            params[p[i].slice(1)] = decodeURIComponent(s[i]);
        } else if (p[i] !== s[i]) return null;
    }
    return params;
}

// Intercepts plain clicks on same-origin links so that they route without reloading the page.
export function onLinkClick(e: MouseEvent): void {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = (e.target as Element).closest?.("a");
    if (!a || a.target || a.hasAttribute("download") || a.dataset.external !== undefined) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
    e.preventDefault();
    navigate(url.pathname + url.search);
}
