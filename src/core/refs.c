/* Reference expansion (see refs.h). Every value fetched or expanded during a request is an entry of
 * one table; an entry is RAW (fetched), EXPANDING (on the current chain: meeting it again is a
 * cycle) or EXPANDED (memoised). The chain of entries being expanded is kept for error messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/refs.h"
#include "core/core.h"
#include "util/str.h"
#include "util/banned.h"

enum entry_state { ENTRY_RAW, ENTRY_EXPANDING, ENTRY_EXPANDED };

struct entry {
    char env[CF_SLUG_MAX + 1];
    char path[CF_PATH_MAX + 1];
    char key[CF_KEY_MAX + 1];
    struct cf_buf raw;
    struct cf_buf expanded;
    enum entry_state state;
};

struct cf_refs {
    cf_refs_resolve_fn resolve;
    void *ctx;
    struct entry *entries;
    size_t n, cap;
    /* The chain being expanded, as entry indices; the root may be outside the table (root_name). */
    size_t chain[CF_REF_DEPTH_MAX + 2];
    size_t depth;
    char root_env[CF_SLUG_MAX + 1];
    char root_path[CF_PATH_MAX + 1];
    char root_key[CF_KEY_MAX + 1];
};

struct target {
    char env[CF_SLUG_MAX + 1];
    char path[CF_PATH_MAX + 1];
    char key[CF_KEY_MAX + 1];
};

static bool ref_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

/* Finds the next reference at or after *pos: sets [start, end) of the whole "${...}" and returns
 * true. */
static bool next_ref(const char *value, size_t len, size_t *pos, size_t *start, size_t *end)
{
    for (size_t i = *pos; i + 2 < len; i++) {
        if (value[i] != '$' || value[i + 1] != '{')
            continue;
        size_t j = i + 2;
        while (j < len && ref_char(value[j]))
            j++;
        if (j < len && value[j] == '}' && j > i + 2) {
            *start = i;
            *end = j + 1;
            *pos = j + 1;
            return true;
        }
    }
    return false;
}

bool cf_refs_present(const char *value, size_t len)
{
    size_t pos = 0, start, end;
    return next_ref(value, len, &pos, &start, &end);
}

/* Parses the inside of "${...}" relative to the holder's env and path. False when malformed (empty
 * segments, a segment too long): such text is then not a reference. */
static bool parse_target(const char *inner, size_t n, const char *env, const char *path,
                         struct target *t)
{
    size_t dots = 0;
    for (size_t i = 0; i < n; i++)
        dots += inner[i] == '.';
    if (dots == 0) {
        if (n > CF_KEY_MAX)
            return false;
        cf_strlcpy(t->env, env, sizeof(t->env));
        cf_strlcpy(t->path, path, sizeof(t->path));
        memcpy(t->key, inner, n);
        t->key[n] = '\0';
        return true;
    }
    /* env . folder . folder ... . KEY */
    size_t seg_start = 0, seg = 0, plen = 0;
    t->path[0] = '\0';
    for (size_t i = 0; i <= n; i++) {
        if (i < n && inner[i] != '.')
            continue;
        size_t seg_len = i - seg_start;
        if (seg_len == 0)
            return false;
        const char *s = inner + seg_start;
        if (seg == 0) {
            if (seg_len > CF_SLUG_MAX)
                return false;
            memcpy(t->env, s, seg_len);
            t->env[seg_len] = '\0';
        } else if (i == n) {
            if (seg_len > CF_KEY_MAX)
                return false;
            memcpy(t->key, s, seg_len);
            t->key[seg_len] = '\0';
        } else {
            if (plen + seg_len + 1 > CF_PATH_MAX)
                return false;
            t->path[plen++] = '/';
            memcpy(t->path + plen, s, seg_len);
            plen += seg_len;
            t->path[plen] = '\0';
        }
        seg++;
        seg_start = i + 1;
    }
    if (plen == 0)
        memcpy(t->path, "/", 2);
    return true;
}

struct cf_refs *cf_refs_new(cf_refs_resolve_fn resolve, void *ctx)
{
    struct cf_refs *refs = calloc(1, sizeof(*refs));
    if (!refs)
        return NULL;
    refs->resolve = resolve;
    refs->ctx = ctx;
    return refs;
}

void cf_refs_free(struct cf_refs *refs)
{
    if (!refs)
        return;
    for (size_t i = 0; i < refs->n; i++) {
        cf_buf_release_wipe(&refs->entries[i].raw);
        cf_buf_release_wipe(&refs->entries[i].expanded);
    }
    free(refs->entries);
    free(refs);
}

static long find(struct cf_refs *refs, const char *env, const char *path, const char *key)
{
    for (size_t i = 0; i < refs->n; i++) {
        const struct entry *e = &refs->entries[i];
        if (strcmp(e->key, key) == 0 && strcmp(e->path, path) == 0 && strcmp(e->env, env) == 0)
            return (long)i;
    }
    return -1;
}

static enum cf_rc add_entry(struct cf_refs *refs, const char *env, const char *path,
                            const char *key, size_t *index, struct cf_err *err)
{
    if (refs->n == refs->cap) {
        if (refs->cap >= CF_REFS_MAX_ENTRIES)
            return cf_err_set(err, CF_EVALIDATION,
                              "too many referenced secrets in one request (at most %d)",
                              CF_REFS_MAX_ENTRIES);
        size_t cap = refs->cap ? refs->cap * 2 : 16;
        /* Moving entries is safe: they hold only pointers to their buffers, never plaintext inline.
         */
        struct entry *grown = realloc(refs->entries, cap * sizeof(*grown));
        if (!grown)
            return cf_err_set(err, CF_ENOMEM, "out of memory");
        refs->entries = grown;
        refs->cap = cap;
    }
    struct entry *e = &refs->entries[refs->n];
    memset(e, 0, sizeof(*e));
    cf_strlcpy(e->env, env, sizeof(e->env));
    cf_strlcpy(e->path, path, sizeof(e->path));
    cf_strlcpy(e->key, key, sizeof(e->key));
    cf_buf_init(&e->raw, CF_VALUE_MAX + 1);
    cf_buf_init(&e->expanded, 0);
    e->state = ENTRY_RAW;
    *index = refs->n++;
    return CF_OK;
}

enum cf_rc cf_refs_add(struct cf_refs *refs, const char *env_slug, const char *path,
                       const char *key, const char *value, size_t len, struct cf_err *err)
{
    if (find(refs, env_slug, path, key) >= 0)
        return CF_OK;
    size_t i;
    enum cf_rc rc = add_entry(refs, env_slug, path, key, &i, err);
    if (rc == CF_OK && cf_buf_append(&refs->entries[i].raw, value, len) != CF_OK)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    return rc;
}

/* Writes a display name for an entry: KEY when it lives beside the root, else env.a.b.KEY. */
static void display(const struct cf_refs *refs, const char *env, const char *path, const char *key,
                    struct cf_buf *out)
{
    if (strcmp(env, refs->root_env) == 0 && strcmp(path, refs->root_path) == 0) {
        cf_buf_puts(out, key);
        return;
    }
    cf_buf_puts(out, env);
    for (const char *p = path; *p; p++) {
        if (*p == '/' && p[1])
            cf_buf_puts(out, ".");
        else if (*p != '/')
            cf_buf_append(out, p, 1);
    }
    cf_buf_printf(out, ".%s", key);
}

/* "A -> B -> C": the root, then the chain, then (optionally) one more entry. */
static void chain_text(const struct cf_refs *refs, long extra, struct cf_buf *out)
{
    cf_buf_puts(out, refs->root_key);
    for (size_t i = 0; i < refs->depth; i++) {
        const struct entry *e = &refs->entries[refs->chain[i]];
        cf_buf_puts(out, " -> ");
        display(refs, e->env, e->path, e->key, out);
    }
    if (extra >= 0) {
        const struct entry *e = &refs->entries[extra];
        cf_buf_puts(out, " -> ");
        display(refs, e->env, e->path, e->key, out);
    }
}

static enum cf_rc expand_into(struct cf_refs *refs, const char *env, const char *path,
                              const char *holder, const char *value, size_t len, struct cf_buf *out,
                              struct cf_err *err);

/* Returns the index of the target's entry, expanded. */
static enum cf_rc resolve_target(struct cf_refs *refs, const struct target *t, const char *holder,
                                 const char *inner, size_t inner_len, size_t *index,
                                 struct cf_err *err)
{
    enum cf_rc rc;
    long found = find(refs, t->env, t->path, t->key);
    size_t i;
    if (found < 0) {
        rc = add_entry(refs, t->env, t->path, t->key, &i, err);
        if (rc != CF_OK)
            return rc;
        struct cf_err inner_err;
        cf_err_clear(&inner_err);
        rc = refs->resolve(refs->ctx, t->env, t->path, t->key, &refs->entries[i].raw, &inner_err);
        if (rc == CF_ENOTFOUND) {
            refs->n--; /* forget the placeholder: a later reference re-asks */
            cf_buf_release_wipe(&refs->entries[i].raw);
            return cf_err_field(err, CF_EVALIDATION, holder,
                                "secret '%s' references ${%.*s}, which does not exist (%s)", holder,
                                (int)inner_len, inner, inner_err.msg);
        }
        if (rc != CF_OK) {
            refs->n--;
            cf_buf_release_wipe(&refs->entries[i].raw);
            *err = inner_err;
            return rc;
        }
    } else {
        i = (size_t)found;
    }

    struct entry *e = &refs->entries[i];
    if (e->state == ENTRY_EXPANDED) {
        *index = i;
        return CF_OK;
    }
    if (e->state == ENTRY_EXPANDING) {
        struct cf_buf text;
        cf_buf_init(&text, 2048);
        chain_text(refs, (long)i, &text);
        rc = cf_err_field(err, CF_EVALIDATION, refs->root_key, "reference cycle: %s",
                          text.data ? text.data : "");
        cf_buf_release(&text);
        return rc;
    }
    if (refs->depth >= CF_REF_DEPTH_MAX) {
        struct cf_buf text;
        cf_buf_init(&text, 2048);
        chain_text(refs, (long)i, &text);
        rc = cf_err_field(err, CF_EVALIDATION, refs->root_key,
                          "reference chain is deeper than %d levels: %s", CF_REF_DEPTH_MAX,
                          text.data ? text.data : "");
        cf_buf_release(&text);
        return rc;
    }
    e->state = ENTRY_EXPANDING;
    refs->chain[refs->depth++] = i;
    /* entries may move when the table grows: copy what expand_into needs and re-find after. */
    char env[CF_SLUG_MAX + 1], path[CF_PATH_MAX + 1], key[CF_KEY_MAX + 1];
    cf_strlcpy(env, e->env, sizeof(env));
    cf_strlcpy(path, e->path, sizeof(path));
    cf_strlcpy(key, e->key, sizeof(key));
    struct cf_buf expanded;
    cf_buf_init(&expanded, 0);
    rc = expand_into(refs, env, path, key,
                     refs->entries[i].raw.data ? refs->entries[i].raw.data : "",
                     refs->entries[i].raw.len, &expanded, err);
    refs->depth--;
    e = &refs->entries[i];
    if (rc != CF_OK) {
        e->state = ENTRY_RAW;
        cf_buf_release_wipe(&expanded);
        return rc;
    }
    cf_buf_release_wipe(&e->expanded);
    e->expanded = expanded;
    e->state = ENTRY_EXPANDED;
    *index = i;
    return CF_OK;
}

static enum cf_rc expand_into(struct cf_refs *refs, const char *env, const char *path,
                              const char *holder, const char *value, size_t len, struct cf_buf *out,
                              struct cf_err *err)
{
    size_t pos = 0, start, end, copied = 0;
    enum cf_rc rc;
    while (next_ref(value, len, &pos, &start, &end)) {
        struct target t;
        const char *inner = value + start + 2;
        size_t inner_len = end - start - 3;
        if (!parse_target(inner, inner_len, env, path, &t))
            continue; /* not a reference: kept as text */
        size_t i = 0;
        rc = resolve_target(refs, &t, holder, inner, inner_len, &i, err);
        if (rc != CF_OK)
            return rc;
        const struct cf_buf *v = &refs->entries[i].expanded;
        if (cf_buf_append(out, value + copied, start - copied) != CF_OK ||
            cf_buf_append(out, v->data ? v->data : "", v->len) != CF_OK)
            return cf_err_set(err, CF_ETOOLARGE, "expanded value of '%s' is too large", holder);
        copied = end;
    }
    if (cf_buf_append(out, value + copied, len - copied) != CF_OK)
        return cf_err_set(err, CF_ETOOLARGE, "expanded value of '%s' is too large", holder);
    return CF_OK;
}

enum cf_rc cf_refs_expand(struct cf_refs *refs, const char *env_slug, const char *path,
                          const char *key, const char *value, size_t len, struct cf_buf *out,
                          struct cf_err *err)
{
    enum cf_rc rc;
    cf_strlcpy(refs->root_env, env_slug, sizeof(refs->root_env));
    cf_strlcpy(refs->root_path, path, sizeof(refs->root_path));
    cf_strlcpy(refs->root_key, key, sizeof(refs->root_key));
    refs->depth = 0;

    /* When the value is the one in the table (the current version), expand through the table so
     * that the root itself takes part in cycle detection and its result is memoised. */
    long found = find(refs, env_slug, path, key);
    if (found >= 0) {
        struct entry *e = &refs->entries[found];
        if (e->raw.len == len && (len == 0 || memcmp(e->raw.data, value, len) == 0)) {
            if (e->state != ENTRY_EXPANDED) {
                /* The root is the chain's implicit start: mark it so a reference back to it is a
                 * cycle. */
                e->state = ENTRY_EXPANDING;
                struct cf_buf expanded;
                cf_buf_init(&expanded, 0);
                rc = expand_into(refs, env_slug, path, key, value, len, &expanded, err);
                e = &refs->entries[found];
                if (rc != CF_OK) {
                    e->state = ENTRY_RAW;
                    cf_buf_release_wipe(&expanded);
                    return rc;
                }
                cf_buf_release_wipe(&e->expanded);
                e->expanded = expanded;
                e->state = ENTRY_EXPANDED;
            }
            const struct cf_buf *v = &refs->entries[found].expanded;
            if (cf_buf_append(out, v->data ? v->data : "", v->len) != CF_OK)
                return cf_err_set(err, CF_ETOOLARGE, "expanded value of '%s' is too large", key);
            return CF_OK;
        }
    }
    return expand_into(refs, env_slug, path, key, value, len, out, err);
}
