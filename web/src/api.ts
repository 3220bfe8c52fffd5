// The dashboard's only way to the server: the public HTTP API (docs/api.md), authenticated by the session cookie
// (HttpOnly, so the page never sees it) plus the CSRF token on every unsafe request (docs/users.md).
// The CSRF token comes from the sign-in answer and is kept in sessionStorage for this tab; after a single sign-on
// the server hands it over in the script-readable `coffer_csrf` cookie instead.

const CSRF_KEY = "coffer.csrf";

export class ApiError extends Error {
    constructor(
        public status: number,
        message: string,
        public body: Record<string, unknown> = {},
    ) {
        super(message);
    }
}

let csrfToken: string | null = null;
// Called when a request that needs a session gets 401: the app returns to sign-in, keeping what is unsaved.
let onExpired: (() => void) | null = null;

export function setCsrf(token: string | null): void {
    csrfToken = token;
    try {
        if (token) sessionStorage.setItem(CSRF_KEY, token);
        else sessionStorage.removeItem(CSRF_KEY);
    } catch {
        /* storage disabled: the token stays in memory */
    }
}

function currentCsrf(): string | null {
    if (csrfToken) return csrfToken;
    try {
        csrfToken = sessionStorage.getItem(CSRF_KEY);
    } catch {
        csrfToken = null;
    }
    if (!csrfToken) {
        const m = /(?:^|;\s*)coffer_csrf=([^;]+)/.exec(document.cookie);
        if (m) csrfToken = decodeURIComponent(m[1]);
    }
    return csrfToken;
}

export function onSessionExpired(fn: () => void): void {
    onExpired = fn;
}

export type Query = Record<string, string | number | boolean | undefined>;

export function withQuery(path: string, query?: Query): string {
    if (!query) return path;
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
    const s = q.toString();
    return s ? `${path}?${s}` : path;
}

// Sends one request; answers the parsed JSON body of a 2xx, throws ApiError with the server's message otherwise.
// `quiet401` is for requests whose 401 is an answer rather than an expired session (sign-in, the first probe).
export async function api<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    opts: { query?: Query; quiet401?: boolean } = {},
): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && method !== "HEAD") {
        const token = currentCsrf();
        if (token) headers["X-CSRF-Token"] = token;
    }
    let res: Response;
    try {
        res = await fetch(withQuery(path, opts.query), {
            method,
            headers,
            credentials: "same-origin",
            cache: "no-store",
            body: body === undefined ? undefined : JSON.stringify(body),
        });
    } catch {
        throw new ApiError(0, "the server cannot be reached");
    }
    let parsed: Record<string, unknown> = {};
    const text = await res.text();
    if (text) {
        try {
            parsed = JSON.parse(text);
        } catch {
            parsed = {};
        }
    }
    if (res.ok) return parsed as T;
    const message = typeof parsed.message === "string" ? parsed.message : `${res.status} ${res.statusText}`;
    if (res.status === 401 && !opts.quiet401 && onExpired) onExpired();
    throw new ApiError(res.status, message, parsed);
}

export function errorText(e: unknown): string {
    if (e instanceof ApiError) return e.message;
    return e instanceof Error ? e.message : String(e);
}

// ----- shapes of the answers the dashboard reads -----

export interface User {
    id: string;
    email: string;
    name: string;
    orgRole: string;
}
export interface Environment {
    id: string;
    name: string;
    slug: string;
    position: number;
}
export interface Project {
    id: string;
    name: string;
    slug: string;
    description: string;
    environments: Environment[];
    createdAt: string;
}
export interface Secret {
    id: string;
    secretKey: string;
    secretValue: string;
    secretComment: string;
    secretPath: string;
    environment: string;
    version: number;
    secretValueHidden?: boolean;
    updatedAt: string;
}
export interface SecretVersion {
    id: string;
    secretId: string;
    version: number;
    secretKey: string;
    secretComment: string;
    createdAt: string;
}
export interface Folder {
    id: string;
    name: string;
    path: string;
}
export interface Session {
    id: string;
    current: boolean;
    sourceIp: string;
    userAgent: string;
    createdAt: string;
    lastSeenAt: string;
    expiresAt: string;
}
export interface Pat {
    id: string;
    name: string;
    revoked: boolean;
    createdAt: string;
    expiresAt: string;
}
