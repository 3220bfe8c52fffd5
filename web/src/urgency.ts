// How soon something ends, as words and a colour class, shared by the identity page and the expiry timeline.
// The words always carry the meaning; the colour only repeats it (red: ended or within a week, amber: within 30
// days, green: later or never).

const DAY_MS = 86400000;

export type Urgency = "bad" | "warn" | "ok";

export function urgencyOf(expiresAt: string | null | undefined, now: number = Date.now()): Urgency {
    if (!expiresAt) return "ok";
    const left = new Date(expiresAt).getTime() - now;
    if (isNaN(left)) return "ok";
    if (left < 7 * DAY_MS) return "bad";
    if (left < 30 * DAY_MS) return "warn";
    return "ok";
}

function span(ms: number): string {
    const days = Math.round(ms / DAY_MS);
    if (days >= 1) return days === 1 ? "1 day" : `${days} days`;
    const hours = Math.floor(ms / 3600000);
    if (hours >= 1) return hours === 1 ? "1 hour" : `${hours} hours`;
    return "less than an hour";
}

// "expired 2 days ago", "expires in 5 days", "no expiry"; for a rotation reminder (due) "due in 5 days",
// "overdue by 2 days".
export function expiryWords(expiresAt: string | null | undefined, now: number = Date.now(), due = false): string {
    if (!expiresAt) return due ? "not due" : "no expiry";
    const left = new Date(expiresAt).getTime() - now;
    if (isNaN(left)) return `${due ? "due" : "expires"} ${expiresAt}`;
    if (due) return left < 0 ? `overdue by ${span(-left)}` : `due in ${span(left)}`;
    return left < 0 ? `expired ${span(-left)} ago` : `expires in ${span(left)}`;
}

export const URGENCY_WORD: Record<Urgency, string> = { bad: "urgent", warn: "soon", ok: "later" };
