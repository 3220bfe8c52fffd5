// A line diff of two texts (the longest common subsequence of their lines), for comparing two versions of a
// secret. Bounded: texts of more lines than MAX_LINES are refused rather than making the page hang.

export interface DiffLine {
    op: "same" | "add" | "del";
    text: string;
}

export const MAX_LINES = 2000;

export function lineDiff(a: string, b: string): DiffLine[] | null {
    const x = a.split("\n");
    const y = b.split("\n");
    if (x.length > MAX_LINES || y.length > MAX_LINES) return null;
    const n = x.length;
    const m = y.length;
    // lcs[i][j]: the length of the longest common subsequence of x[i..] and y[j..], in one flat array.
    const w = m + 1;
    const lcs = new Uint16Array((n + 1) * w);
    for (let i = n - 1; i >= 0; i--)
        for (let j = m - 1; j >= 0; j--)
            lcs[i * w + j] = x[i] === y[j] ? lcs[(i + 1) * w + j + 1] + 1 : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
    const out: DiffLine[] = [];
    let i = 0;
    let j = 0;
    while (i < n && j < m) {
        if (x[i] === y[j]) {
            out.push({ op: "same", text: x[i] });
            i++;
            j++;
        } else if (lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) out.push({ op: "del", text: x[i++] });
        else out.push({ op: "add", text: y[j++] });
    }
    while (i < n) out.push({ op: "del", text: x[i++] });
    while (j < m) out.push({ op: "add", text: y[j++] });
    return out;
}
