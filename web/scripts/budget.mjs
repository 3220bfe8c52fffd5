// Fails the build when the dashboard's JavaScript and CSS together exceed the budget, gzipped:
//   node scripts/budget.mjs [dist]
// Also fails when index.html carries an inline script or style, which the server's CSP would block.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const BUDGET = 150 * 1024;
const dist = process.argv[2] || "dist";

function files(dir) {
    return readdirSync(dir).flatMap((name) => {
        const path = join(dir, name);
        return statSync(path).isDirectory() ? files(path) : [path];
    });
}

let total = 0;
for (const path of files(dist).filter((p) => /\.(js|css)$/.test(p))) {
    const size = gzipSync(readFileSync(path), { level: 9 }).length;
    total += size;
    console.log(`  ${path}: ${(size / 1024).toFixed(1)} KB gzipped`);
}
console.log(`bundle: ${(total / 1024).toFixed(1)} KB gzipped (budget ${BUDGET / 1024} KB)`);

const html = readFileSync(join(dist, "index.html"), "utf8");
const inline = [];
for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi))
    if (!/\bsrc=/.test(m[1]) || m[2].trim()) inline.push("an inline <script>");
if (/<style\b/i.test(html)) inline.push("a <style> element");
if (/\sstyle=/i.test(html)) inline.push("a style attribute");
if (/\son[a-z]+=/i.test(html)) inline.push("an event handler attribute");

if (total > BUDGET) {
    console.error(`budget.mjs: the bundle is over budget by ${((total - BUDGET) / 1024).toFixed(1)} KB`);
    process.exit(1);
}
if (inline.length) {
    console.error(`budget.mjs: index.html has ${inline.join(", ")}; the dashboard's CSP blocks inline code`);
    process.exit(1);
}
