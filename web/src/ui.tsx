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

// A credential shown once, right after it was made, with a copy button: the page never shows it again.
export function ShownOnce(p: {
    label: string;
    intro: ComponentChildren;
    value: string;
    testId: string;
    onStatus: (s: string) => void;
    onDone: () => void;
}) {
    async function copy() {
        try {
            await navigator.clipboard.writeText(p.value);
            p.onStatus(`${p.label} copied`);
        } catch {
            p.onStatus("The browser refused the clipboard: select the text and copy it");
        }
    }
    return (
        <div class="once" role="region" aria-label={`New ${p.label.toLowerCase()}`}>
            <p>{p.intro} Copy it now: it will not be shown again.</p>
            <p>
                <code class="token" data-testid={p.testId}>
                    {p.value}
                </code>
            </p>
            <button type="button" onClick={copy}>
                Copy {p.label.toLowerCase()}
            </button>{" "}
            <button type="button" class="quiet" onClick={p.onDone}>
                Done
            </button>
        </div>
    );
}

// A table in a focusable region that scrolls sideways on narrow screens, with its column headings.
export function Table(p: { label: string; head: string[]; testId?: string; children: ComponentChildren }) {
    return (
        <div class="scroll" tabIndex={0} role="region" aria-label={p.label}>
            <table data-testid={p.testId}>
                <thead>
                    <tr>
                        {p.head.map((h) => (
                            <th scope="col" key={h}>
                                {h}
                            </th>
                        ))}
                    </tr>
                </thead>
                <tbody>{p.children}</tbody>
            </table>
        </div>
    );
}

// A labelled drop-down: `options` are [value, text] pairs.
export function SelectField(p: { label: string; value: string; options: [string, string][]; onChange: (v: string) => void }) {
    const id = useId("s");
    return (
        <div class="field">
            <label for={id}>{p.label}</label>
            <select id={id} value={p.value} onChange={(e) => p.onChange((e.target as HTMLSelectElement).value)}>
                {p.options.map(([v, text]) => (
                    <option key={v} value={v}>
                        {text}
                    </option>
                ))}
            </select>
        </div>
    );
}
