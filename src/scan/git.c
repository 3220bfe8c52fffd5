/* `coffer scan git`, `--staged` and `install-hook` over libgit2. A commit is scanned as the lines
 * it adds: each diff's added lines are gathered into one text with a table of their line numbers in
 * the new file, scanned once, and each finding mapped back to its file and line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <git2.h>
#include <sodium.h>

#include "scan/git.h"
#include "util/buf.h"
#include "util/file.h"
#include "util/banned.h"

/* The most bytes of added lines one file of one commit contributes (larger diffs are scanned in
 * several parts). */
#define ADDED_MAX (64 * 1024 * 1024)

struct git_scan {
    struct cf_scanner *scanner;
    struct cf_scan_report *report;
    struct cf_buf text; /* added lines of one file */
    uint64_t *lines;    /* lines[i]: the new-file line number of the text's line i + 1 */
    size_t nlines, cap;
    const char *path;
    const struct cf_scan_commit *commit;
    struct cf_err *err;
};

static enum cf_rc git_fail(struct cf_err *err, enum cf_rc rc, const char *what)
{
    const git_error *e = git_error_last();
    return cf_err_set(err, rc, "%s: %s", what, e && e->message ? e->message : "git error");
}

static enum cf_rc on_hit(const struct cf_scan_hit *hit, void *ctx)
{
    struct git_scan *g = ctx;
    struct cf_scan_hit mapped = *hit;
    if (hit->line >= 1 && hit->line <= g->nlines)
        mapped.line = g->lines[hit->line - 1];
    return cf_scan_report_add(g->report, &mapped, g->path, g->commit);
}

static enum cf_rc flush_text(struct git_scan *g)
{
    enum cf_rc rc = CF_OK;
    if (g->text.len > 0) {
        rc = cf_scanner_mem(g->scanner, g->text.data, g->text.len, on_hit, g, g->err);
        g->report->bytes += g->text.len;
    }
    cf_buf_reset(&g->text);
    g->nlines = 0;
    return rc;
}

static enum cf_rc add_line(struct git_scan *g, const git_diff_line *line)
{
    enum cf_rc rc = CF_OK;
    if (g->text.len + line->content_len + 1 > ADDED_MAX && (rc = flush_text(g)) != CF_OK)
        return rc;
    if (g->nlines == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 1024;
        uint64_t *grown = realloc(g->lines, cap * sizeof(*grown));
        if (!grown)
            return cf_err_set(g->err, CF_ENOMEM, "out of memory");
        g->lines = grown;
        g->cap = cap;
    }
    g->lines[g->nlines++] = line->new_lineno > 0 ? (uint64_t)line->new_lineno : 0;
    rc = cf_buf_append(&g->text, line->content, line->content_len);
    if (rc == CF_OK && (line->content_len == 0 || line->content[line->content_len - 1] != '\n'))
        rc = cf_buf_append(&g->text, "\n", 1);
    if (rc != CF_OK)
        return cf_err_set(g->err, rc, "out of memory");
    return CF_OK;
}

/* Scans the added lines of every file of diff. */
static enum cf_rc scan_diff(struct git_scan *g, git_diff *diff)
{
    enum cf_rc rc = CF_OK;
    size_t ndeltas = git_diff_num_deltas(diff);
    for (size_t i = 0; i < ndeltas && rc == CF_OK; i++) {
        git_patch *patch = NULL;
        const git_diff_delta *delta = git_diff_get_delta(diff, i);
        if (delta->status == GIT_DELTA_DELETED || (delta->flags & GIT_DIFF_FLAG_BINARY))
            continue;
        if (git_patch_from_diff(&patch, diff, i) != 0)
            return git_fail(g->err, CF_EIO, "cannot diff");
        if (!patch)
            continue;
        delta = git_patch_get_delta(patch);
        if (delta->flags & GIT_DIFF_FLAG_BINARY) {
            g->report->binary_skipped++;
            git_patch_free(patch);
            continue;
        }
        g->path = delta->new_file.path;
        g->report->files++;
        size_t nhunks = git_patch_num_hunks(patch);
        for (size_t h = 0; h < nhunks && rc == CF_OK; h++) {
            int nlines = git_patch_num_lines_in_hunk(patch, h);
            for (int l = 0; l < nlines && rc == CF_OK; l++) {
                const git_diff_line *line;
                if (git_patch_get_line_in_hunk(&line, patch, h, (size_t)l) != 0)
                    rc = git_fail(g->err, CF_EIO, "cannot read a diff");
                else if (line->origin == GIT_DIFF_LINE_ADDITION)
                    rc = add_line(g, line);
            }
        }
        if (rc == CF_OK)
            rc = flush_text(g);
        git_patch_free(patch);
    }
    return rc;
}

static enum cf_rc open_repo(git_repository **repo, const char *path, struct cf_err *err)
{
    if (git_repository_open_ext(repo, path, 0, NULL) != 0)
        return cf_err_set(err, CF_ENOTFOUND, "'%s' is not in a git repository", path);
    return CF_OK;
}

static enum cf_rc git_scan_init(struct git_scan *g, const struct cf_scan_engine *engine,
                                struct cf_scan_report *report, struct cf_err *err)
{
    memset(g, 0, sizeof(*g));
    g->report = report;
    g->err = err;
    cf_buf_init(&g->text, ADDED_MAX + 2);
    return cf_scanner_new(&g->scanner, engine, err);
}

static void git_scan_release(struct git_scan *g)
{
    cf_scanner_free(g->scanner);
    cf_buf_release_wipe(&g->text);
    free(g->lines);
}

static git_diff_options diff_options(void)
{
    git_diff_options opts = GIT_DIFF_OPTIONS_INIT;
    opts.context_lines = 0;
    opts.interhunk_lines = 0;
    return opts;
}

static enum cf_rc scan_commit(struct git_scan *g, git_repository *repo, const git_oid *oid)
{
    enum cf_rc rc = CF_OK;
    git_commit *commit = NULL, *parent = NULL;
    git_tree *tree = NULL, *parent_tree = NULL;
    git_diff *diff = NULL;
    char id[GIT_OID_HEXSZ + 1], date[32];
    git_diff_options opts = diff_options();

    if (git_commit_lookup(&commit, repo, oid) != 0) {
        rc = git_fail(g->err, CF_EIO, "cannot read a commit");
        goto out;
    }
    if (git_commit_parentcount(commit) > 1)
        goto out;
    if (git_commit_tree(&tree, commit) != 0 ||
        (git_commit_parentcount(commit) == 1 && (git_commit_parent(&parent, commit, 0) != 0 ||
                                                 git_commit_tree(&parent_tree, parent) != 0)) ||
        git_diff_tree_to_tree(&diff, repo, parent_tree, tree, &opts) != 0) {
        rc = git_fail(g->err, CF_EIO, "cannot diff a commit");
        goto out;
    }
    git_oid_tostr(id, sizeof(id), oid);
    const git_signature *author = git_commit_author(commit);
    time_t when = (time_t)author->when.time;
    struct tm tm;
    gmtime_r(&when, &tm);
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
    struct cf_scan_commit info = {id, author->name, author->email, date};
    g->commit = &info;
    g->report->commits++;
    rc = scan_diff(g, diff);
    g->commit = NULL;
out:
    git_diff_free(diff);
    git_tree_free(parent_tree);
    git_tree_free(tree);
    git_commit_free(parent);
    git_commit_free(commit);
    return rc;
}

static int push_ref(const char *name, void *payload)
{
    /* a reference to something other than a commit (a tag of a tree) is not history */
    (void)git_revwalk_push_ref(payload, name);
    return 0;
}

enum cf_rc cf_scan_git_history(const struct cf_scan_engine *engine, const char *repo_path,
                               const char *since, bool all, struct cf_scan_report *report,
                               struct cf_err *err)
{
    git_repository *repo = NULL;
    git_revwalk *walk = NULL;
    git_object *since_obj = NULL;
    struct git_scan g;
    git_oid oid;
    enum cf_rc rc = git_scan_init(&g, engine, report, err);
    if (rc != CF_OK || (rc = open_repo(&repo, repo_path, err)) != CF_OK)
        goto out;
    if (git_revwalk_new(&walk, repo) != 0) {
        rc = git_fail(err, CF_EIO, "cannot walk the history");
        goto out;
    }
    git_revwalk_sorting(walk, GIT_SORT_TIME);
    if (all) {
        if (git_reference_foreach_name(repo, push_ref, walk) != 0) {
            rc = git_fail(err, CF_EIO, "cannot list references");
            goto out;
        }
        (void)git_revwalk_push_head(walk);
    } else if (git_revwalk_push_head(walk) != 0) {
        rc = git_fail(err, CF_ENOTFOUND, "HEAD has no commit");
        goto out;
    }
    if (since) {
        git_object *peeled = NULL;
        if (git_revparse_single(&since_obj, repo, since) != 0 ||
            git_object_peel(&peeled, since_obj, GIT_OBJECT_COMMIT) != 0) {
            rc = cf_err_set(err, CF_ENOTFOUND, "revision '%s' is not a commit of this repository",
                            since);
            goto out;
        }
        rc = git_revwalk_hide(walk, git_object_id(peeled)) == 0
                 ? CF_OK
                 : git_fail(err, CF_EIO, "cannot use --since");
        git_object_free(peeled);
        if (rc != CF_OK)
            goto out;
    }
    while (rc == CF_OK && git_revwalk_next(&oid, walk) == 0)
        rc = scan_commit(&g, repo, &oid);
out:
    git_object_free(since_obj);
    git_revwalk_free(walk);
    git_repository_free(repo);
    git_scan_release(&g);
    return rc;
}

enum cf_rc cf_scan_git_staged(const struct cf_scan_engine *engine, const char *repo_path,
                              struct cf_scan_report *report, struct cf_err *err)
{
    git_repository *repo = NULL;
    git_index *index = NULL;
    git_object *head = NULL;
    git_tree *head_tree = NULL;
    git_diff *diff = NULL;
    struct git_scan g;
    git_diff_options opts = diff_options();
    enum cf_rc rc = git_scan_init(&g, engine, report, err);
    if (rc != CF_OK || (rc = open_repo(&repo, repo_path, err)) != CF_OK)
        goto out;
    /* before the first commit there is no HEAD tree: everything staged is added */
    if (git_revparse_single(&head, repo, "HEAD^{tree}") == 0)
        head_tree = (git_tree *)head;
    if (git_repository_index(&index, repo) != 0 ||
        git_diff_tree_to_index(&diff, repo, head_tree, index, &opts) != 0) {
        rc = git_fail(err, CF_EIO, "cannot diff the staged changes");
        goto out;
    }
    rc = scan_diff(&g, diff);
out:
    git_diff_free(diff);
    git_object_free(head);
    git_index_free(index);
    git_repository_free(repo);
    git_scan_release(&g);
    return rc;
}

/* Appends text quoted for sh. */
static enum cf_rc sh_quote(struct cf_buf *out, const char *text)
{
    enum cf_rc rc = cf_buf_puts(out, "'");
    for (const char *c = text; *c && rc == CF_OK; c++)
        rc = *c == '\'' ? cf_buf_puts(out, "'\\''") : cf_buf_append(out, c, 1);
    return rc == CF_OK ? cf_buf_puts(out, "'") : rc;
}

enum cf_rc cf_scan_git_install_hook(const char *repo_path, const char *program,
                                    const char *const *extra, size_t nextra, bool force,
                                    char **written, struct cf_err *err)
{
    git_repository *repo = NULL;
    git_config *config = NULL;
    git_buf hooks = GIT_BUF_INIT_CONST(NULL, 0);
    git_buf configured = GIT_BUF_INIT_CONST(NULL, 0);
    struct cf_buf script, path;
    enum cf_rc rc;
    cf_buf_init(&script, 64 * 1024);
    cf_buf_init(&path, 8192);
    *written = NULL;
    if ((rc = open_repo(&repo, repo_path, err)) != CF_OK)
        goto out;
    if (git_repository_config_snapshot(&config, repo) == 0 &&
        git_config_get_path(&configured, config, "core.hooksPath") == 0) {
        const char *workdir = git_repository_workdir(repo);
        if (configured.ptr[0] != '/' && workdir)
            rc = cf_buf_puts(&path, workdir);
        if (rc == CF_OK)
            rc = cf_buf_printf(&path, "%s/pre-commit", configured.ptr);
    } else if (git_repository_item_path(&hooks, repo, GIT_REPOSITORY_ITEM_HOOKS) == 0) {
        rc = cf_buf_printf(&path, "%spre-commit", hooks.ptr);
    } else {
        rc = git_fail(err, CF_EIO, "cannot find the hooks directory");
        goto out;
    }
    if (rc == CF_OK)
        rc = cf_buf_puts(&script,
                         "#!/bin/sh\n"
                         "# Written by 'coffer scan install-hook': refuses a commit whose staged\n"
                         "# changes hold a secret (see docs/scan.md; 'git commit --no-verify'\n"
                         "# skips it).\n"
                         "exec ");
    if (rc == CF_OK)
        rc = sh_quote(&script, program);
    if (rc == CF_OK)
        rc = cf_buf_puts(&script, " scan --staged");
    for (size_t i = 0; i < nextra && rc == CF_OK; i++) {
        rc = cf_buf_puts(&script, " ");
        if (rc == CF_OK)
            rc = sh_quote(&script, extra[i]);
    }
    if (rc == CF_OK)
        rc = cf_buf_puts(&script, "\n");
    if (rc != CF_OK) {
        rc = cf_err_set(err, rc, "the hook's path or command is too long");
        goto out;
    }
    /* the hooks directory of a fresh clone exists; one named by core.hooksPath may not */
    char *slash = strrchr(path.data, '/');
    if (slash) {
        *slash = '\0';
        (void)mkdir(path.data, 0755);
        *slash = '/';
    }
    rc = force ? cf_file_replace(path.data, script.data, script.len, err)
               : cf_file_create(path.data, script.data, script.len, err);
    if (rc == CF_EEXIST) {
        rc = cf_err_set(err, CF_EEXIST, "'%s' exists: pass --force to replace it", path.data);
        goto out;
    }
    if (rc != CF_OK)
        goto out;
    if (chmod(path.data, 0755) != 0) {
        rc = cf_err_set(err, CF_EIO, "cannot make '%s' executable: %s", path.data, strerror(errno));
        goto out;
    }
    *written = cf_buf_detach(&path, NULL);
    if (!*written)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
out:
    git_buf_dispose(&hooks);
    git_buf_dispose(&configured);
    git_config_free(config);
    git_repository_free(repo);
    cf_buf_release(&script);
    cf_buf_release(&path);
    return rc;
}
