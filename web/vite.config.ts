// Build configuration of the dashboard. The server embeds the output (docs/dashboard.md): index.html and
// content-hashed files under assets/, with no inline script or style, because the dashboard lives under a CSP
// without 'unsafe-inline'. The module preload polyfill is an inline script, so it is turned off.
import { defineConfig } from "vite";

// Node's process, declared here rather than pulling in @types/node for one variable.
declare const process: { env: Record<string, string | undefined> };

export default defineConfig({
    base: "/",
    esbuild: { jsx: "automatic", jsxImportSource: "preact" },
    build: {
        target: "es2020",
        modulePreload: { polyfill: false },
        assetsInlineLimit: 0,
        cssCodeSplit: false,
        sourcemap: false,
    },
    server: {
        // `npm run dev` proxies the API to a local `coffer server` (COFFER_URL, default 127.0.0.1:8080).
        proxy: { "/api": process.env.COFFER_URL || "http://127.0.0.1:8080" },
    },
});
