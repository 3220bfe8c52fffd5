// A project's overview: secret keys x environments, marking where a key is missing or its value differs, the
// folders as a tree, and a comparison of two environments. Values are compared in memory as they arrive and
// dropped; the page never holds a value in the DOM (the editor reveals one on request, audited).
import { useEffect, useMemo, useState } from "preact/hooks";
import { api, errorText, type Environment, type Folder, type Project, type Secret } from "./api";
import { ErrorBox, Loading, PageTitle } from "./ui";

interface Row {
    path: string;
    key: string;
    // Per environment (in the project's order): 0 = missing, else which distinct value (1, 2, ...) it holds.
    cells: number[];
    variants: number;
}

interface TreeNode {
    path: string;
    name: string;
    children: TreeNode[];
    count: number;
}

function inFolder(path: string, folder: string): boolean {
    return folder === "/" || path === folder || path.startsWith(folder + "/");
}

// Builds the rows from each environment's secrets: equal values get the same variant number; the value itself
// is not kept.
function buildRows(perEnv: Secret[][]): Row[] {
    const rows = new Map<string, { row: Row; seen: Map<string, number> }>();
    perEnv.forEach((secrets, i) => {
        for (const s of secrets) {
            const path = s.secretPath || "/";
            const id = `${path}\u0000${s.secretKey}`;
            let r = rows.get(id);
            if (!r) {
                r = { row: { path, key: s.secretKey, cells: perEnv.map(() => 0), variants: 0 }, seen: new Map() };
                rows.set(id, r);
            }
            let v = r.seen.get(s.secretValue);
            if (v === undefined) {
                v = r.seen.size + 1;
                r.seen.set(s.secretValue, v);
            }
            r.row.cells[i] = v;
        }
    });
    const out: Row[] = [];
    for (const { row, seen } of rows.values()) {
        row.variants = seen.size;
        seen.clear();
        out.push(row);
    }
    return out.sort((a, b) => (a.path === b.path ? a.key.localeCompare(b.key) : a.path.localeCompare(b.path)));
}

function buildTree(paths: Set<string>, rows: Row[]): TreeNode {
    const root: TreeNode = { path: "/", name: "/", children: [], count: 0 };
    const nodes = new Map<string, TreeNode>([["/", root]]);
    const ensure = (path: string): TreeNode => {
        let n = nodes.get(path);
        if (n) return n;
        const cut = path.lastIndexOf("/");
        const parent = ensure(cut <= 0 ? "/" : path.slice(0, cut));
        n = { path, name: path.slice(cut + 1), children: [], count: 0 };
        parent.children.push(n);
        nodes.set(path, n);
        return n;
    };
    for (const p of paths) ensure(p);
    for (const r of rows) {
        for (let n: TreeNode | undefined = ensure(r.path), p = r.path; n; ) {
            n.count++;
            if (p === "/") break;
            const cut = p.lastIndexOf("/");
            p = cut <= 0 ? "/" : p.slice(0, cut);
            n = nodes.get(p);
        }
    }
    const sort = (n: TreeNode) => {
        n.children.sort((a, b) => a.name.localeCompare(b.name));
        n.children.forEach(sort);
    };
    sort(root);
    return root;
}

function Tree({ node, selected, onSelect }: { node: TreeNode; selected: string; onSelect: (p: string) => void }) {
    return (
        <li>
            <button
                type="button"
                class="folder"
                aria-pressed={selected === node.path}
                onClick={() => onSelect(node.path)}
            >
                {node.path === "/" ? "/ (all)" : node.name} <span class="count">{node.count}</span>
            </button>
            {node.children.length > 0 && (
                <ul>
                    {node.children.map((c) => (
                        <Tree key={c.path} node={c} selected={selected} onSelect={onSelect} />
                    ))}
                </ul>
            )}
        </li>
    );
}

function cellText(v: number, variants: number): string {
    if (v === 0) return "missing";
    return variants > 1 ? `value ${String.fromCharCode(64 + Math.min(v, 26))}` : "set";
}

export function Overview({ projectId }: { projectId: string }) {
    const [project, setProject] = useState<Project | null>(null);
    const [rows, setRows] = useState<Row[] | null>(null);
    const [folders, setFolders] = useState<Set<string>>(new Set());
    const [error, setError] = useState<string | null>(null);
    const [folder, setFolder] = useState("/");
    const [search, setSearch] = useState("");
    const [onlyProblems, setOnlyProblems] = useState(false);
    const [pickA, setPickA] = useState(0);
    const [pickB, setPickB] = useState(1);
    const [compare, setCompare] = useState<[number, number] | null>(null);

    useEffect(() => {
        (async () => {
            try {
                const p = (await api<{ workspace: Project }>("GET", `/api/v1/workspace/${encodeURIComponent(projectId)}`))
                    .workspace;
                const envs = [...p.environments].sort((a, b) => a.position - b.position);
                p.environments = envs;
                setProject(p);
                const q = (env: Environment) => ({ workspaceId: p.id, environment: env.slug });
                const [secrets, folderLists] = await Promise.all([
                    Promise.all(
                        envs.map((env) =>
                            api<{ secrets: Secret[] }>("GET", "/api/v3/secrets/raw", undefined, {
                                query: { ...q(env), secretPath: "/", recursive: true },
                            }).then((r) => r.secrets),
                        ),
                    ),
                    Promise.all(
                        envs.map((env) =>
                            api<{ folders: Folder[] }>("GET", "/api/v1/folders", undefined, {
                                query: { ...q(env), path: "/", recursive: true },
                            }).then((r) => r.folders),
                        ),
                    ),
                ]);
                const paths = new Set<string>();
                for (const list of folderLists) for (const f of list) if (f.path) paths.add(f.path);
                for (const list of secrets) for (const s of list) if (s.secretPath && s.secretPath !== "/") paths.add(s.secretPath);
                setFolders(paths);
                setRows(buildRows(secrets));
                setPickB(Math.min(1, envs.length - 1));
            } catch (e) {
                setError(errorText(e));
            }
        })();
    }, [projectId]);

    // Marks the moment the matrix is on screen and usable (the browser test reads it: time to interactive).
    useEffect(() => {
        if (rows && !performance.getEntriesByName("coffer:overview-interactive").length) {
            performance.mark("coffer:overview-interactive");
            document.body.dataset.overviewReady = "1";
        }
    }, [rows]);

    const tree = useMemo(() => (rows ? buildTree(folders, rows) : null), [rows, folders]);

    if (error)
        return (
            <section>
                <PageTitle>Project</PageTitle>
                <ErrorBox error={error} />
            </section>
        );
    if (!project || !rows || !tree)
        return (
            <section>
                <PageTitle>{project ? project.name : "Project"}</PageTitle>
                <Loading what="the overview" />
            </section>
        );

    const envs = project.environments;
    const editorLink = (env: string, path: string) =>
        `/projects/${encodeURIComponent(project.id)}/secrets?env=${encodeURIComponent(env)}&path=${encodeURIComponent(path)}`;

    if (rows.length === 0) return <EmptyProject project={project} editorLink={editorLink} />;

    const cols = compare ? compare : envs.map((_, i) => i);
    const q = search.trim().toLowerCase();
    const problem = (r: Row) => {
        const c = cols.map((i) => r.cells[i]);
        return c.some((v) => v === 0) || new Set(c).size > 1;
    };
    const shown = rows.filter(
        (r) =>
            inFolder(r.path, folder) &&
            (!q || r.key.toLowerCase().includes(q)) &&
            (!(onlyProblems || compare) || problem(r)),
    );
    let summary = "";
    if (compare) {
        const [a, b] = compare;
        let same = 0,
            differ = 0,
            onlyA = 0,
            onlyB = 0;
        for (const r of rows) {
            if (!inFolder(r.path, folder)) continue;
            const x = r.cells[a],
                y = r.cells[b];
            if (x && y) x === y ? same++ : differ++;
            else if (x) onlyA++;
            else if (y) onlyB++;
        }
        summary = `${envs[a].slug} and ${envs[b].slug}: ${same} the same, ${differ} differ, ${onlyA} only in ${envs[a].slug}, ${onlyB} only in ${envs[b].slug}`;
    }
    const missing = rows.filter((r) => r.cells.some((v) => v === 0)).length;
    const differing = rows.filter((r) => r.variants > 1).length;

    return (
        <section class="overview">
            <PageTitle>{project.name}</PageTitle>
            <p class="muted">
                {rows.length} keys in {envs.length} environments · {missing} missing somewhere · {differing} differ
            </p>
            <div class="split">
                <nav class="tree" aria-label="Folders">
                    <h2>Folders</h2>
                    <ul>
                        <Tree node={tree} selected={folder} onSelect={setFolder} />
                    </ul>
                </nav>
                <div class="matrix-pane">
                    <div class="toolbar">
                        <div class="field">
                            <label for="ov-search">Filter keys</label>
                            <input
                                id="ov-search"
                                type="search"
                                value={search}
                                onInput={(e) => setSearch((e.target as HTMLInputElement).value)}
                            />
                        </div>
                        <label class="check">
                            <input
                                type="checkbox"
                                checked={onlyProblems}
                                onChange={(e) => setOnlyProblems((e.target as HTMLInputElement).checked)}
                            />{" "}
                            Only keys missing or different
                        </label>
                        {envs.length > 1 && (
                            <fieldset class="compare">
                                <legend>Compare two environments</legend>
                                <label for="cmp-a">First</label>
                                <select id="cmp-a" value={pickA} onChange={(e) => setPickA(+(e.target as HTMLSelectElement).value)}>
                                    {envs.map((e, i) => (
                                        <option key={e.id} value={i}>
                                            {e.name}
                                        </option>
                                    ))}
                                </select>
                                <label for="cmp-b">Second</label>
                                <select id="cmp-b" value={pickB} onChange={(e) => setPickB(+(e.target as HTMLSelectElement).value)}>
                                    {envs.map((e, i) => (
                                        <option key={e.id} value={i}>
                                            {e.name}
                                        </option>
                                    ))}
                                </select>
                                <button type="button" class="primary" disabled={pickA === pickB} onClick={() => setCompare([pickA, pickB])}>
                                    Compare
                                </button>
                                {compare && (
                                    <button type="button" class="quiet" onClick={() => setCompare(null)}>
                                        All environments
                                    </button>
                                )}
                            </fieldset>
                        )}
                    </div>
                    <p role="status" class="muted">
                        {compare ? summary : `${shown.length} keys shown`}
                    </p>
                    <div class="scroll matrix-scroll" tabIndex={0} role="region" aria-label="Keys by environment">
                        <table class="matrix">
                            <thead>
                                <tr>
                                    <th scope="col">Key</th>
                                    <th scope="col">Folder</th>
                                    {cols.map((i) => (
                                        <th scope="col" key={envs[i].id}>
                                            <a href={editorLink(envs[i].slug, folder)}>{envs[i].name}</a>
                                        </th>
                                    ))}
                                </tr>
                            </thead>
                            <tbody>
                                {shown.map((r) => {
                                    const first = cols.find((i) => r.cells[i] !== 0) ?? cols[0];
                                    const differs = new Set(cols.map((i) => r.cells[i]).filter((v) => v)).size > 1;
                                    return (
                                        <tr key={r.path + "\u0000" + r.key}>
                                            <th scope="row" class="mono">
                                                <a href={editorLink(envs[first].slug, r.path)}>{r.key}</a>
                                            </th>
                                            <td class="mono path">{r.path}</td>
                                            {cols.map((i) => {
                                                const v = r.cells[i];
                                                return (
                                                    <td key={i} class={v === 0 ? "cell missing" : differs ? "cell differs" : "cell same"}>
                                                        {cellText(v, differs ? r.variants : 1)}
                                                    </td>
                                                );
                                            })}
                                        </tr>
                                    );
                                })}
                            </tbody>
                        </table>
                    </div>
                    <p class="muted legend">
                        “value A”, “value B”: the same letter means the same value. Values stay hidden here; open a folder
                        to reveal one (every reveal is audited).
                    </p>
                </div>
            </div>
        </section>
    );
}

function EmptyProject({ project, editorLink }: { project: Project; editorLink: (e: string, p: string) => string }) {
    const env = project.environments[0]?.slug || "dev";
    const prod = project.environments[project.environments.length - 1]?.slug || "prod";
    const lines = [
        "# the first secret",
        `coffer secrets set DATABASE_URL='postgres://app@db/app' --projectId ${project.id} --env ${env}`,
        "",
        "# the first pipeline identity, allowed to read this project's " + prod + " secrets",
        "ID=$(coffer identities create ci-pipeline --plain)",
        'CLIENT_ID=$(coffer identities universal-auth attach "$ID" --plain)',
        'CLIENT_SECRET=$(coffer identities client-secrets create "$ID" --ttl 90d)',
        `coffer identities add-to-project "$ID" --projectId ${project.id} --role viewer --env ${prod}`,
        "",
        "# in the pipeline",
        'export INFISICAL_TOKEN=$(coffer login --client-id "$CLIENT_ID" --client-secret "$CLIENT_SECRET" --silent --plain)',
        `coffer run --projectId ${project.id} --env ${prod} -- ./deploy.sh`,
    ];
    return (
        <section class="overview">
            <PageTitle>{project.name}</PageTitle>
            <div class="empty">
                <h2>No secrets yet</h2>
                <p>
                    Add the first one in the browser:{" "}
                    <a class="button primary" href={editorLink(env, "/")}>
                        Add a secret to {env}
                    </a>
                </p>
                <p>Or from the CLI, and give a pipeline its own identity to read them:</p>
                <div class="scroll" tabIndex={0} role="region" aria-label="CLI commands">
                    <pre>
                        <code>{lines.join("\n")}</code>
                    </pre>
                </div>
            </div>
        </section>
    );
}
