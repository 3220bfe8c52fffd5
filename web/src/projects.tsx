// Projects: the list with a search, and creating one.
import { useEffect, useState } from "preact/hooks";
import { api, errorText, type Project } from "./api";
import { navigate } from "./router";
import { ErrorBox, Field, Loading, PageTitle } from "./ui";

export function Projects() {
    const [projects, setProjects] = useState<Project[] | null>(null);
    const [search, setSearch] = useState("");
    const [name, setName] = useState("");
    const [error, setError] = useState<string | null>(null);
    const [busy, setBusy] = useState(false);

    useEffect(() => {
        api<{ workspaces: Project[] }>("GET", "/api/v1/workspace")
            .then((r) => setProjects(r.workspaces.sort((a, b) => a.name.localeCompare(b.name))))
            .catch((e) => setError(errorText(e)));
    }, []);

    async function create(e: Event) {
        e.preventDefault();
        setBusy(true);
        setError(null);
        try {
            const r = await api<{ project: Project }>("POST", "/api/v2/workspace", { projectName: name.trim() });
            navigate(`/projects/${encodeURIComponent(r.project.id)}`);
        } catch (err) {
            setError(errorText(err));
            setBusy(false);
        }
    }

    const q = search.trim().toLowerCase();
    const shown = (projects || []).filter(
        (p) => !q || p.name.toLowerCase().includes(q) || p.slug.includes(q) || p.id.startsWith(q),
    );
    return (
        <section>
            <PageTitle>Projects</PageTitle>
            <ErrorBox error={error} />
            <form class="inline" onSubmit={create} aria-label="Create a project">
                <Field label="New project name" name="projectName" value={name} onInput={setName} required />
                <button type="submit" class="primary" disabled={busy}>
                    Create project
                </button>
            </form>
            {!projects ? (
                <Loading what="projects" />
            ) : projects.length === 0 ? (
                <div class="empty">
                    <h2>No projects yet</h2>
                    <p>
                        A project holds the secrets of one application, with an environment each for development,
                        staging and production. Create one above, or from the CLI:
                    </p>
                    <pre>
                        <code>{`coffer login --user you@example.com\nPROJECT=$(coffer projects create "My App" --plain)`}</code>
                    </pre>
                </div>
            ) : (
                <>
                    <div class="search">
                        <Field
                            label="Search projects"
                            type="search"
                            inputMode="search"
                            value={search}
                            onInput={setSearch}
                        />
                    </div>
                    <p class="muted" role="status">
                        {shown.length} of {projects.length} projects
                    </p>
                    <ul class="cards">
                        {shown.map((p) => (
                            <li key={p.id}>
                                <a href={`/projects/${encodeURIComponent(p.id)}`}>
                                    <strong>{p.name}</strong>
                                    <span class="muted">
                                        {" "}
                                        {p.slug} · {p.environments.map((e) => e.slug).join(", ")}
                                    </span>
                                </a>
                                {p.description && <p class="muted">{p.description}</p>}
                            </li>
                        ))}
                    </ul>
                </>
            )}
        </section>
    );
}
