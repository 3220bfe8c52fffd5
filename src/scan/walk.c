/* Directory walk of `coffer scan PATH...`, with git's ignore rules through libgit2; the list it
 * makes is ordered largest file first (see walk.h). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <git2.h>

#include "scan/walk.h"
#include "util/banned.h"

/* Deeper directories are not entered (a loop of bind mounts cannot make the walk endless). */
#define WALK_DEPTH_MAX 128

struct walk {
    git_repository *repo; /* the work tree the walk is in, or NULL */
    struct cf_scan_paths *out;
    struct cf_err *err;
};

void cf_scan_paths_release(struct cf_scan_paths *paths)
{
    for (size_t i = 0; i < paths->count; i++)
        free(paths->items[i]);
    free(paths->items);
    free(paths->sizes);
    memset(paths, 0, sizeof(*paths));
}

static enum cf_rc add_path(struct walk *w, const char *path, uint64_t size)
{
    struct cf_scan_paths *out = w->out;
    if (out->count >= CF_SCAN_WALK_MAX)
        return cf_err_set(w->err, CF_ETOOLARGE, "more than %d files to scan", CF_SCAN_WALK_MAX);
    if (out->count == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 256;
        char **grown = realloc(out->items, cap * sizeof(*grown));
        if (!grown)
            return cf_err_set(w->err, CF_ENOMEM, "out of memory");
        out->items = grown;
        uint64_t *sizes = realloc(out->sizes, cap * sizeof(*sizes));
        if (!sizes)
            return cf_err_set(w->err, CF_ENOMEM, "out of memory");
        out->sizes = sizes;
        out->cap = cap;
    }
    if (!(out->items[out->count] = strdup(path)))
        return cf_err_set(w->err, CF_ENOMEM, "out of memory");
    out->sizes[out->count] = size;
    out->count++;
    return CF_OK;
}

struct sized_path {
    char *item;
    uint64_t size;
    size_t found; /* position in the walk */
};

static int larger_first(const void *a, const void *b)
{
    const struct sized_path *x = a, *y = b;
    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    return x->found < y->found ? -1 : x->found > y->found;
}

/* Orders paths->items[from..count-1] largest first. */
static enum cf_rc order_largest_first(struct cf_scan_paths *paths, size_t from, struct cf_err *err)
{
    size_t n = paths->count - from;
    if (n < 2)
        return CF_OK;
    struct sized_path *sorted = malloc(n * sizeof(*sorted));
    if (!sorted)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        sorted[i] = (struct sized_path){paths->items[from + i], paths->sizes[from + i], i};
    qsort(sorted, n, sizeof(*sorted), larger_first);
    for (size_t i = 0; i < n; i++) {
        paths->items[from + i] = sorted[i].item;
        paths->sizes[from + i] = sorted[i].size;
    }
    free(sorted);
    return CF_OK;
}

/* Whether rel (relative to the work tree, "" for the work tree itself) is ignored there. */
static bool ignored(struct walk *w, const char *rel, bool dir)
{
    char path[PATH_MAX + 2];
    int yes = 0;
    if (!w->repo || !rel || !*rel)
        return false;
    snprintf(path, sizeof(path), "%s%s", rel, dir ? "/" : "");
    return git_ignore_path_is_ignored(&yes, w->repo, path) == 0 && yes;
}

static enum cf_rc walk_dir(struct walk *w, const char *path, const char *rel, int depth)
{
    enum cf_rc rc = CF_OK;
    struct dirent *entry;
    char child[PATH_MAX], child_rel[PATH_MAX];
    if (depth > WALK_DEPTH_MAX)
        return CF_OK;
    DIR *dir = opendir(path);
    if (!dir)
        return cf_err_set(w->err, CF_EIO, "cannot read directory '%s': %s", path, strerror(errno));
    while (rc == CF_OK && (entry = readdir(dir))) {
        const char *name = entry->d_name;
        struct stat st;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(name, ".git") == 0)
            continue;
        int n = snprintf(child, sizeof(child), "%s%s%s", path,
                         path[strlen(path) - 1] == '/' ? "" : "/", name);
        if (n < 0 || (size_t)n >= sizeof(child))
            continue;
        const char *crel = NULL;
        if (rel) {
            n = snprintf(child_rel, sizeof(child_rel), "%s%s%s", rel, *rel ? "/" : "", name);
            crel = (n >= 0 && (size_t)n < sizeof(child_rel)) ? child_rel : NULL;
        }
        if (lstat(child, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (!ignored(w, crel, true))
                rc = walk_dir(w, child, crel, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            if (!ignored(w, crel, false))
                rc = add_path(w, child, (uint64_t)st.st_size);
        }
    }
    closedir(dir);
    return rc;
}

/* The path of dir relative to the work tree of w->repo, into rel; false when outside it. */
static bool relative_to_workdir(struct walk *w, const char *dir, char *rel, size_t size)
{
    char real[PATH_MAX];
    const char *workdir = git_repository_workdir(w->repo);
    if (!workdir || !realpath(dir, real))
        return false;
    size_t wlen = strlen(workdir);
    /* workdir ends with '/'; the work tree itself is "" */
    if (strncmp(real, workdir, wlen - 1) != 0 || (real[wlen - 1] != '/' && real[wlen - 1] != 0))
        return false;
    const char *rest = real[wlen - 1] == '/' ? real + wlen : real + wlen - 1;
    return snprintf(rel, size, "%s", rest) < (int)size;
}

enum cf_rc cf_scan_walk(const char *const *paths, size_t n, struct cf_scan_paths *out,
                        struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    size_t from = out->count;
    for (size_t i = 0; i < n && rc == CF_OK; i++) {
        struct walk w = {NULL, out, err};
        struct stat st;
        char rel[PATH_MAX];
        if (stat(paths[i], &st) != 0)
            return cf_err_set(err, errno == ENOENT ? CF_ENOTFOUND : CF_EIO, "cannot read '%s': %s",
                              paths[i], strerror(errno));
        if (!S_ISDIR(st.st_mode)) {
            /* a file named on the command line is scanned even when ignored */
            rc = add_path(&w, paths[i], (uint64_t)st.st_size);
            continue;
        }
        if (git_repository_open_ext(&w.repo, paths[i], 0, NULL) != 0)
            w.repo = NULL;
        if (w.repo && git_repository_is_bare(w.repo)) {
            git_repository_free(w.repo);
            w.repo = NULL;
        }
        bool inside = w.repo && relative_to_workdir(&w, paths[i], rel, sizeof(rel));
        rc = walk_dir(&w, paths[i], inside ? rel : NULL, 0);
        git_repository_free(w.repo);
    }
    if (rc == CF_OK)
        rc = order_largest_first(out, from, err);
    return rc;
}
