// Unsaved edits, kept in memory only (never in storage: a draft may hold a secret value). When the session
// expires mid-edit the app goes to sign-in and back without reloading, so the editor finds its draft here.
export interface Draft {
    key: string;
    value: string;
    comment: string;
    // The secret being edited, or "" for a new one.
    original: string;
}

const drafts = new Map<string, Draft>();

export function draftPlace(projectId: string, env: string, path: string): string {
    return `${projectId}\u0000${env}\u0000${path}`;
}

export function saveDraft(place: string, d: Draft): void {
    drafts.set(`${place}\u0000${d.original}`, { ...d });
}

export function dropDraft(place: string, original: string): void {
    drafts.delete(`${place}\u0000${original}`);
}

export function draftsAt(place: string): Draft[] {
    const prefix = `${place}\u0000`;
    return [...drafts.entries()].filter(([k]) => k.startsWith(prefix)).map(([, d]) => d);
}
