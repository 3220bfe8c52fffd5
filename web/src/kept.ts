// Form state that outlives the page showing it, in memory only (never in storage: a form may hold a secret value
// or a webhook URL). When a session expires the app goes to sign-in and back without reloading the page, so a
// form that kept its state here finds it again; reloading the page drops it, on purpose.
import { useState } from "preact/hooks";

const kept = new Map<string, unknown>();

// useState whose value is also kept under `id` until `drop` is called (after the form was sent). `restored`
// says the value came back from an earlier visit, so the page can ask the person to review it.
export function useKept<T>(id: string, initial: T): [T, (v: T) => void, () => void, boolean] {
    const [restored] = useState(() => kept.has(id));
    const [value, setValue] = useState<T>(() => (kept.has(id) ? (kept.get(id) as T) : initial));
    const set = (v: T) => {
        kept.set(id, v);
        setValue(v);
    };
    const drop = () => {
        kept.delete(id);
        setValue(initial);
    };
    return [value, set, drop, restored];
}
