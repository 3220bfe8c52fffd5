// The .env reader of the editor's bulk paste: KEY=value lines, an optional `export ` prefix, comments, single-
// and double-quoted values (which may span lines), and the comparison of what was pasted with a folder's secrets.
// It runs in the browser only: nothing pasted is sent before the person confirms the write.

export interface DotenvEntry {
    key: string;
    value: string;
    line: number;
}
export interface DotenvResult {
    entries: DotenvEntry[];
    // Lines that are not KEY=value, each with its number and why.
    problems: string[];
}

const KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const ESCAPES: Record<string, string> = { n: "\n", r: "\r", t: "\t", '"': '"', "\\": "\\", $: "$" };

export function parseDotenv(text: string): DotenvResult {
    const lines = text.replace(/\r\n?/g, "\n").split("\n");
    const entries: DotenvEntry[] = [];
    const problems: string[] = [];
    const seen = new Map<string, number>();
    for (let i = 0; i < lines.length; i++) {
        const number = i + 1;
        let line = lines[i].trim();
        if (!line || line.startsWith("#")) continue;
        if (/^export\s/.test(line)) line = line.slice(6).trimStart();
        const eq = line.indexOf("=");
        if (eq <= 0) {
            problems.push(`line ${number}: expected KEY=value`);
            continue;
        }
        const key = line.slice(0, eq).trim();
        if (!KEY.test(key)) {
            problems.push(`line ${number}: "${key.slice(0, 64)}" is not a valid key (letters, digits, _ . -, not starting with a digit)`);
            continue;
        }
        let rest = line.slice(eq + 1).trimStart();
        let value: string;
        const quote = rest[0];
        if (quote === '"' || quote === "'") {
            // A quoted value ends at the next unescaped quote of the same kind, on this line or a later one.
            let text2 = rest.slice(1);
            let out = "";
            let closed = false;
            let j = i;
            for (;;) {
                let k = 0;
                for (; k < text2.length; k++) {
                    const c = text2[k];
                    if (quote === '"' && c === "\\" && k + 1 < text2.length) {
                        const e = text2[k + 1];
                        out += e in ESCAPES ? ESCAPES[e] : "\\" + e;
                        k++;
                    } else if (c === quote) {
                        closed = true;
                        break;
                    } else out += c;
                }
                if (closed) {
                    rest = text2.slice(k + 1).trim();
                    break;
                }
                if (j + 1 >= lines.length) break;
                out += "\n";
                j++;
                text2 = lines[j];
            }
            if (!closed) {
                problems.push(`line ${number}: the value of ${key} opens a ${quote === '"' ? "double" : "single"} quote that is never closed`);
                break;
            }
            if (rest && !rest.startsWith("#")) {
                problems.push(`line ${j + 1}: unexpected text after the closing quote of ${key}`);
                i = j;
                continue;
            }
            i = j;
            value = out;
        } else {
            // Unquoted: a comment starts at " #"; surrounding blanks are not part of the value.
            const hash = rest.search(/\s#/);
            value = (hash >= 0 ? rest.slice(0, hash) : rest).trim();
        }
        if (seen.has(key)) {
            problems.push(`line ${number}: ${key} was already set on line ${seen.get(key)}; the later value is used`);
            const at = entries.findIndex((e) => e.key === key);
            entries.splice(at, 1);
        }
        seen.set(key, number);
        entries.push({ key, value, line: number });
    }
    return { entries, problems };
}

// The server stores a value trimmed of surrounding blanks, keeping one trailing newline when it ended with one
// (docs/api.md); comparing with that form says "unchanged" for what the server would store unchanged.
export function storedForm(v: string): string {
    const t = v.trim();
    return t && /\n[ \t]*$/.test(v) ? t + "\n" : t;
}

export type Change = "new" | "changed" | "unchanged";

export function classify(entries: DotenvEntry[], current: Map<string, string>): Map<string, Change> {
    const out = new Map<string, Change>();
    for (const e of entries) {
        const now = current.get(e.key);
        out.set(e.key, now === undefined ? "new" : storedForm(now) === storedForm(e.value) ? "unchanged" : "changed");
    }
    return out;
}
