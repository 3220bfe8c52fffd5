// Small shared components: accessible form fields, messages and page headings.
import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";

let fieldSeq = 0;
function useId(prefix: string): string {
    const ref = useRef<string>();
    if (!ref.current) ref.current = `${prefix}-${++fieldSeq}`;
    return ref.current;
}

interface FieldProps {
    label: string;
    value: string;
    onInput: (v: string) => void;
    type?: string;
    name?: string;
    autoComplete?: string;
    required?: boolean;
    multiline?: boolean;
    rows?: number;
    hint?: string;
    inputMode?: "numeric" | "text" | "search";
    pattern?: string;
    mono?: boolean;
    autoFocus?: boolean;
}

export function Field(p: FieldProps) {
    const id = useId("f");
    const hintId = p.hint ? `${id}-hint` : undefined;
    const ref = useRef<HTMLInputElement & HTMLTextAreaElement>(null);
    useEffect(() => {
        if (p.autoFocus) ref.current?.focus();
    }, []);
    const common = {
        id,
        ref,
        name: p.name,
        value: p.value,
        required: p.required,
        "aria-describedby": hintId,
        class: p.mono ? "mono" : undefined,
        onInput: (e: Event) => p.onInput((e.target as HTMLInputElement).value),
    };
    return (
        <div class="field">
            <label for={id}>{p.label}</label>
            {p.multiline ? (
                <textarea {...common} rows={p.rows || 4} spellcheck={false} />
            ) : (
                <input
                    {...common}
                    type={p.type || "text"}
                    autoComplete={p.autoComplete}
                    inputMode={p.inputMode}
                    pattern={p.pattern}
                    spellcheck={false}
                />
            )}
            {p.hint && (
                <p class="hint" id={hintId}>
                    {p.hint}
                </p>
            )}
        </div>
    );
}

export function ErrorBox({ error }: { error: string | null }) {
    if (!error) return null;
    return (
        <p class="error" role="alert">
            {error}
        </p>
    );
}

export function Status({ text }: { text: string | null }) {
    return (
        <p class="status" role="status" aria-live="polite">
            {text || ""}
        </p>
    );
}

// The page's heading; it takes the focus on navigation so that screen readers announce the new page.
export function PageTitle({ children }: { children: ComponentChildren }) {
    const ref = useRef<HTMLHeadingElement>(null);
    useEffect(() => {
        document.title = `${ref.current?.textContent || ""} · Coffer`;
        ref.current?.focus({ preventScroll: true });
    }, []);
    return (
        <h1 tabIndex={-1} ref={ref}>
            {children}
        </h1>
    );
}

export function Loading({ what }: { what: string }) {
    return (
        <p class="muted" role="status">
            Loading {what}…
        </p>
    );
}

export function when(iso: string | null | undefined): string {
    if (!iso) return "—";
    const d = new Date(iso);
    return isNaN(d.getTime()) ? iso : d.toLocaleString();
}

// A table inside a focusable scrolling region (wide tables scroll on a phone); `columns` are the header cells,
// "" for an actions column (named for screen readers only).
export function Table({ label, columns, children }: { label: string; columns: string[]; children: ComponentChildren }) {
    return (
        <div class="scroll" tabIndex={0} role="region" aria-label={label}>
            <table>
                <thead>
                    <tr>
                        {columns.map((c, i) => (
                            <th key={i} scope="col">
                                {c || <span class="sr">Actions</span>}
                            </th>
                        ))}
                    </tr>
                </thead>
                <tbody>{children}</tbody>
            </table>
        </div>
    );
}
