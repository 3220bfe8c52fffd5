/* Reference expansion (see refs.h). Every value fetched during a request is an entry of one table,
 * found through a hash index; an entry is RAW (fetched), MEASURING (on the current chain: meeting
 * it again is a cycle), MEASURED (its expanded size and substitution count memoised) or MISSING (a
 * target that does not exist, remembered with the reason so that many references to it cost one
 * lookup). Expanded
 * text is never memoised: it is written once, straight into the caller's buffer, after the
 * measurement has shown it fits. The chain of entries being measured is kept for error messages.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/refs.h"
#include "core/core.h"
#include "util/str.h"
#include "util/banned.h"

enum entry_state { ENTRY_RAW, ENTRY_MEASURING, ENTRY_MEASURED, ENTRY_MISSING };

/* What expanding a value takes. */
struct measure {
    size_t size;   /* bytes of the expansion (SIZE_MAX: at least that) */
    size_t refs;   /* references substituted, nested ones included (saturating likewise) */
    size_t height; /* levels of references below the value: 0 without any */
};

struct entry {
    char env[CF_SLUG_MAX + 1];
    char path[CF_PATH_MAX + 1];
    char key[CF_KEY_MAX + 1];
    struct cf_buf raw;
    struct measure m; /* when MEASURED; all zero when MISSING */
    char *missing;    /* when MISSING: why (the resolver's message; malloc'd, no secret) */
    enum entry_state state;
};

struct cf_refs {
    cf_refs_resolve_fn resolve;
    void *ctx;
    struct entry *entries;
    size_t n, cap;
    /* Open addressing over entries: slot holds index + 1, 0 when free; n_slots a power of two. */
    size_t *slots;
    size_t n_slots;
    struct cf_refs_budget own_budget;
    struct cf_refs_budget *budget;
    /* Measuring for a write check: references that cannot be followed count as empty. */
    bool lenient;
    /* Set when a budget limit was hit: such an error is never excused by lenient. */
    bool over_budget;
    /* Set by the failure of the last measurement when the value itself cannot be expanded (see
     * cf_refs_broken), with the reference that could not be followed. */
    bool broken;
    char broken_ref[CF_REF_TEXT_MAX + 1];
    /* Told of each reference to a missing target met during a write check; NULL: none. */
    cf_refs_missing_fn on_missing;
    void *on_missing_ctx;
    /* The chain being measured, as entry indices; the root may be outside the table (root_key). */
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

static size_t add_sat(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

void cf_refs_budget_init(struct cf_refs_budget *budget)
{
    memset(budget, 0, sizeof(*budget));
    budget->value_max = CF_EXPAND_VALUE_MAX;
    budget->bytes_max = CF_EXPAND_REQUEST_MAX;
    budget->refs_max = CF_EXPAND_REFS_MAX;
}

struct cf_refs *cf_refs_new(cf_refs_resolve_fn resolve, void *ctx)
{
    struct cf_refs *refs = calloc(1, sizeof(*refs));
    if (!refs)
        return NULL;
    refs->resolve = resolve;
    refs->ctx = ctx;
    cf_refs_budget_init(&refs->own_budget);
    refs->budget = &refs->own_budget;
    return refs;
}

void cf_refs_use_budget(struct cf_refs *refs, struct cf_refs_budget *budget)
{
    refs->budget = budget;
}

void cf_refs_on_missing(struct cf_refs *refs, cf_refs_missing_fn fn, void *ctx)
{
    refs->on_missing = fn;
    refs->on_missing_ctx = ctx;
}

bool cf_refs_broken(const struct cf_refs *refs, const char **reference)
{
    *reference = refs->broken && !refs->over_budget ? refs->broken_ref : NULL;
    return *reference != NULL;
}

void cf_refs_free(struct cf_refs *refs)
{
    if (!refs)
        return;
    for (size_t i = 0; i < refs->n; i++) {
        cf_buf_release_wipe(&refs->entries[i].raw);
        free(refs->entries[i].missing);
    }
    free(refs->entries);
    free(refs->slots);
    free(refs);
}

/* FNV-1a over env, path and key, each with its terminator (so "a","bc" and "ab","c" differ). */
static size_t entry_hash(const char *env, const char *path, const char *key)
{
    uint64_t h = 14695981039346656037u;
    const char *parts[] = {env, path, key};
    for (size_t i = 0; i < 3; i++) {
        const unsigned char *p = (const unsigned char *)parts[i];
        do {
            h ^= *p;
            h *= 1099511628211u;
        } while (*p++);
    }
    return (size_t)h;
}

static long find(const struct cf_refs *refs, const char *env, const char *path, const char *key)
{
    if (!refs->n_slots)
        return -1;
    size_t mask = refs->n_slots - 1;
    for (size_t s = entry_hash(env, path, key) & mask; refs->slots[s]; s = (s + 1) & mask) {
        const struct entry *e = &refs->entries[refs->slots[s] - 1];
        if (strcmp(e->key, key) == 0 && strcmp(e->path, path) == 0 && strcmp(e->env, env) == 0)
            return (long)(refs->slots[s] - 1);
    }
    return -1;
}

static void slot_put(size_t *slots, size_t n_slots, const struct entry *e, size_t index)
{
    size_t mask = n_slots - 1;
    size_t s = entry_hash(e->env, e->path, e->key) & mask;
    while (slots[s])
        s = (s + 1) & mask;
    slots[s] = index + 1;
}

/* Makes entry index findable; the index stays at most half full. */
static enum cf_rc index_entry(struct cf_refs *refs, size_t index, struct cf_err *err)
{
    if ((refs->n + 1) * 2 > refs->n_slots) {
        size_t n_slots = refs->n_slots ? refs->n_slots * 2 : 64;
        size_t *slots = calloc(n_slots, sizeof(*slots));
        if (!slots)
            return cf_err_set(err, CF_ENOMEM, "out of memory");
        for (size_t s = 0; s < refs->n_slots; s++) {
            if (refs->slots[s])
                slot_put(slots, n_slots, &refs->entries[refs->slots[s] - 1], refs->slots[s] - 1);
        }
        free(refs->slots);
        refs->slots = slots;
        refs->n_slots = n_slots;
    }
    slot_put(refs->slots, refs->n_slots, &refs->entries[index], index);
    return CF_OK;
}

/* Appends an entry (not yet findable: index_entry does that once it holds its value). */
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
    e->state = ENTRY_RAW;
    *index = refs->n++;
    return CF_OK;
}

/* Forgets the last entry (a placeholder whose fetch failed): a later reference re-asks. */
static void drop_last(struct cf_refs *refs)
{
    refs->n--;
    cf_buf_release_wipe(&refs->entries[refs->n].raw);
    free(refs->entries[refs->n].missing);
    refs->entries[refs->n].missing = NULL;
}

/* Marks the failure of the measurement under way as the value's own (see cf_refs_broken): the
 * reference inner (the text between "${" and "}") could not be followed. */
static void mark_broken(struct cf_refs *refs, const char *inner, size_t inner_len)
{
    refs->broken = true;
    snprintf(refs->broken_ref, sizeof(refs->broken_ref), "${%.*s}", (int)inner_len, inner);
}

enum cf_rc cf_refs_add(struct cf_refs *refs, const char *env_slug, const char *path,
                       const char *key, const char *value, size_t len, struct cf_err *err)
{
    if (find(refs, env_slug, path, key) >= 0)
        return CF_OK;
    size_t i;
    enum cf_rc rc = add_entry(refs, env_slug, path, key, &i, err);
    if (rc != CF_OK)
        return rc;
    if (cf_buf_append(&refs->entries[i].raw, value, len) != CF_OK)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    if (rc == CF_OK)
        rc = index_entry(refs, i, err);
    if (rc != CF_OK)
        drop_last(refs);
    return rc;
}

enum limit { LIMIT_VALUE_BYTES, LIMIT_VALUE_REFS, LIMIT_REQUEST_BYTES, LIMIT_REQUEST_REFS };

/* The field of an error about the value being measured: its key on a read, secretValue for a
 * write check. */
static const char *root_field(const struct cf_refs *refs)
{
    return refs->lenient ? "secretValue" : refs->root_key;
}

/* A refusal for a limit of the budget, naming the secret (key) and the limit, with field as the
 * error's field. Never excused by lenient. */
static enum cf_rc over_limit(struct cf_refs *refs, enum limit limit, const char *field,
                             const char *key, struct cf_err *err)
{
    const struct cf_refs_budget *b = refs->budget;
    refs->over_budget = true;
    switch (limit) {
    case LIMIT_VALUE_BYTES:
        return cf_err_field(err, CF_EVALIDATION, field,
                            "'%s' would expand to more than %zu bytes, the limit for one expanded "
                            "value",
                            key, b->value_max);
    case LIMIT_VALUE_REFS:
        return cf_err_field(err, CF_EVALIDATION, field,
                            "'%s' would substitute more than %zu references when expanded, the "
                            "limit for one request",
                            key, b->refs_max);
    case LIMIT_REQUEST_BYTES:
        return cf_err_field(err, CF_EVALIDATION, field,
                            "expanding '%s' would take this request over %zu bytes of referenced "
                            "and expanded values, the limit for one request: read fewer secrets "
                            "at a time, or without expansion",
                            key, b->bytes_max);
    case LIMIT_REQUEST_REFS:
        break;
    }
    return cf_err_field(err, CF_EVALIDATION, field,
                        "expanding '%s' would take this request over %zu reference substitutions, "
                        "the limit for one request: read fewer secrets at a time, or without "
                        "expansion",
                        key, b->refs_max);
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

static enum cf_rc measure_value(struct cf_refs *refs, const char *env, const char *path,
                                const char *holder, const char *value, size_t len,
                                struct measure *m, struct cf_err *err);

/* A chain of references deeper than CF_REF_DEPTH_MAX through entry i (named last). */
static enum cf_rc too_deep(struct cf_refs *refs, size_t i, struct cf_err *err)
{
    struct cf_buf text;
    cf_buf_init(&text, 2048);
    display(refs, refs->entries[i].env, refs->entries[i].path, refs->entries[i].key, &text);
    mark_broken(refs, text.data ? text.data : "", text.len);
    cf_buf_reset(&text);
    chain_text(refs, (long)i, &text);
    enum cf_rc rc = cf_err_field(err, CF_EVALIDATION, refs->root_key,
                                 "reference chain is deeper than %d levels: %s", CF_REF_DEPTH_MAX,
                                 text.data ? text.data : "");
    cf_buf_release(&text);
    return rc;
}

/* Finds or fetches the target's entry and measures it; returns its index. */
static enum cf_rc resolve_target(struct cf_refs *refs, const struct target *t, const char *holder,
                                 const char *inner, size_t inner_len, size_t *index,
                                 struct cf_err *err)
{
    struct cf_refs_budget *budget = refs->budget;
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
            /* Remembered with its reason, so that a value (or a list) naming it a thousand times
             * costs one lookup. */
            struct entry *miss = &refs->entries[i];
            cf_buf_reset(&miss->raw);
            miss->missing = strdup(inner_err.msg);
            miss->state = ENTRY_MISSING;
            rc = miss->missing ? index_entry(refs, i, err)
                               : cf_err_set(err, CF_ENOMEM, "out of memory");
            if (rc != CF_OK) {
                drop_last(refs);
                return rc;
            }
        } else if (refs->lenient && rc == CF_EFORBIDDEN) {
            /* A write check: remember the target as empty, so that a value naming it a thousand
             * times costs one lookup. */
            cf_buf_reset(&refs->entries[i].raw);
            refs->entries[i].state = ENTRY_MEASURED;
            rc = index_entry(refs, i, err);
            if (rc != CF_OK)
                drop_last(refs);
            *index = i;
            return rc;
        } else if (rc != CF_OK) {
            drop_last(refs);
            *err = inner_err;
            return rc;
        } else {
            /* What a reference brings into memory counts, not only what it expands to. */
            budget->bytes_used = add_sat(budget->bytes_used, refs->entries[i].raw.len);
            if (budget->bytes_used > budget->bytes_max) {
                drop_last(refs);
                return over_limit(refs, LIMIT_REQUEST_BYTES, root_field(refs), refs->root_key, err);
            }
            rc = index_entry(refs, i, err);
            if (rc != CF_OK) {
                drop_last(refs);
                return rc;
            }
        }
    } else {
        i = (size_t)found;
    }

    struct entry *e = &refs->entries[i];
    if (e->state == ENTRY_MISSING) {
        if (refs->lenient) {
            /* A write check counts it as empty, and tells (the writer may read there: a place it
             * may not read answers CF_EFORBIDDEN, never CF_ENOTFOUND). */
            if (refs->on_missing)
                refs->on_missing(refs->on_missing_ctx, holder, inner, inner_len, e->missing);
            *index = i;
            return CF_OK;
        }
        mark_broken(refs, inner, inner_len);
        return cf_err_field(err, CF_EVALIDATION, holder,
                            "secret '%s' references ${%.*s}, which does not exist (%s)", holder,
                            (int)inner_len, inner, e->missing);
    }
    if (e->state == ENTRY_MEASURED) {
        /* Memoised, but the chain so far plus its own levels must still fit: expansion recurses
         * that deep. */
        if (refs->depth + e->m.height >= CF_REF_DEPTH_MAX)
            return too_deep(refs, i, err);
        *index = i;
        return CF_OK;
    }
    if (e->state == ENTRY_MEASURING) {
        struct cf_buf text;
        cf_buf_init(&text, 2048);
        mark_broken(refs, inner, inner_len);
        chain_text(refs, (long)i, &text);
        rc = cf_err_field(err, CF_EVALIDATION, refs->root_key, "reference cycle: %s",
                          text.data ? text.data : "");
        cf_buf_release(&text);
        return rc;
    }
    if (refs->depth >= CF_REF_DEPTH_MAX)
        return too_deep(refs, i, err);
    e->state = ENTRY_MEASURING;
    refs->chain[refs->depth++] = i;
    /* The table may grow (and move) while measuring: copy what is needed and re-find after. */
    char env[CF_SLUG_MAX + 1], path[CF_PATH_MAX + 1], key[CF_KEY_MAX + 1];
    cf_strlcpy(env, e->env, sizeof(env));
    cf_strlcpy(path, e->path, sizeof(path));
    cf_strlcpy(key, e->key, sizeof(key));
    struct measure m;
    rc = measure_value(refs, env, path, key,
                       refs->entries[i].raw.data ? refs->entries[i].raw.data : "",
                       refs->entries[i].raw.len, &m, err);
    refs->depth--;
    e = &refs->entries[i];
    if (rc != CF_OK) {
        e->state = ENTRY_RAW;
        return rc;
    }
    e->m = m;
    e->state = ENTRY_MEASURED;
    *index = i;
    return CF_OK;
}

/* Whether a failure to follow one reference is excused while measuring for a write check. */
static bool excused(const struct cf_refs *refs, enum cf_rc rc)
{
    return refs->lenient && !refs->over_budget &&
           (rc == CF_EVALIDATION || rc == CF_ENOTFOUND || rc == CF_EFORBIDDEN);
}

/* Measures the expansion of value (held by holder at env:path) into *m. Fetches and measures
 * every target on the way; allocates no expanded text. */
static enum cf_rc measure_value(struct cf_refs *refs, const char *env, const char *path,
                                const char *holder, const char *value, size_t len,
                                struct measure *m, struct cf_err *err)
{
    struct cf_refs_budget *budget = refs->budget;
    size_t pos = 0, start, end;
    size_t literal = len, expanded = 0, count = 0, height = 0;
    enum cf_rc rc;
    while (next_ref(value, len, &pos, &start, &end)) {
        struct target t;
        const char *inner = value + start + 2;
        size_t inner_len = end - start - 3;
        if (!parse_target(inner, inner_len, env, path, &t))
            continue; /* not a reference: kept as text */
        /* Each distinct value is measured once, so this bounds the work even of a refusal. */
        if (++budget->refs_seen > budget->refs_max)
            return over_limit(refs, LIMIT_REQUEST_REFS, root_field(refs), refs->root_key, err);
        literal -= end - start;
        count = add_sat(count, 1);
        size_t i = 0;
        rc = resolve_target(refs, &t, holder, inner, inner_len, &i, err);
        if (rc != CF_OK && excused(refs, rc))
            continue; /* counted as empty */
        if (rc != CF_OK)
            return rc;
        const struct measure *target = &refs->entries[i].m;
        expanded = add_sat(expanded, target->size);
        count = add_sat(count, target->refs);
        if (target->height + 1 > height)
            height = target->height + 1;
    }
    m->size = add_sat(literal, expanded);
    m->refs = count;
    m->height = height;
    return CF_OK;
}

/* Writes the expansion of value (held at env:path) into out, which has room for all of it: every
 * target was measured, so each is in the table. */
static enum cf_rc emit(struct cf_refs *refs, const char *env, const char *path, const char *value,
                       size_t len, struct cf_buf *out)
{
    size_t pos = 0, start, end, copied = 0;
    while (next_ref(value, len, &pos, &start, &end)) {
        struct target t;
        if (!parse_target(value + start + 2, end - start - 3, env, path, &t))
            continue;
        long i = find(refs, t.env, t.path, t.key);
        if (i < 0 || refs->entries[i].state != ENTRY_MEASURED)
            CF_BUG("a measured reference is not in the table");
        const struct entry *e = &refs->entries[i];
        enum cf_rc rc = cf_buf_append(out, value + copied, start - copied);
        if (rc == CF_OK)
            rc = emit(refs, e->env, e->path, e->raw.data ? e->raw.data : "", e->raw.len, out);
        if (rc != CF_OK)
            return rc;
        copied = end;
    }
    return cf_buf_append(out, value + copied, len - copied);
}

/* Measures value as the root of an expansion (see cf_refs_expand). */
static enum cf_rc measure_root(struct cf_refs *refs, const char *env_slug, const char *path,
                               const char *key, const char *value, size_t len, struct measure *m,
                               struct cf_err *err)
{
    cf_strlcpy(refs->root_env, env_slug, sizeof(refs->root_env));
    cf_strlcpy(refs->root_path, path, sizeof(refs->root_path));
    cf_strlcpy(refs->root_key, key, sizeof(refs->root_key));
    refs->depth = 0;
    refs->over_budget = false;
    refs->broken = false;

    /* When the value is the one in the table (the current version), measure through the table so
     * that the root itself takes part in cycle detection and its result is memoised. */
    long found = find(refs, env_slug, path, key);
    if (found >= 0) {
        struct entry *e = &refs->entries[found];
        if (e->raw.len == len && (len == 0 || memcmp(e->raw.data, value, len) == 0)) {
            if (e->state != ENTRY_MEASURED) {
                /* The root is the chain's implicit start: mark it so a reference back to it is a
                 * cycle. */
                e->state = ENTRY_MEASURING;
                enum cf_rc rc = measure_value(refs, env_slug, path, key, value, len, m, err);
                e = &refs->entries[found];
                if (rc != CF_OK) {
                    e->state = ENTRY_RAW;
                    return rc;
                }
                e->m = *m;
                e->state = ENTRY_MEASURED;
            }
            /* Memoised as a target: its own levels must fit below a root (see resolve_target). */
            if (e->m.height > CF_REF_DEPTH_MAX)
                return too_deep(refs, (size_t)found, err);
            *m = e->m;
            return CF_OK;
        }
    }
    return measure_value(refs, env_slug, path, key, value, len, m, err);
}

/* The limits every expansion of one value must keep, checked before anything is allocated. */
static enum cf_rc check_value(struct cf_refs *refs, const char *field, const char *key,
                              const struct measure *m, struct cf_err *err)
{
    if (m->size > refs->budget->value_max)
        return over_limit(refs, LIMIT_VALUE_BYTES, field, key, err);
    if (m->refs > refs->budget->refs_max)
        return over_limit(refs, LIMIT_VALUE_REFS, field, key, err);
    return CF_OK;
}

enum cf_rc cf_refs_measure(struct cf_refs *refs, const char *env_slug, const char *path,
                           const char *key, const char *value, size_t len, size_t *size,
                           struct cf_err *err)
{
    struct cf_refs_budget *budget = refs->budget;
    struct measure m;
    *size = 0;
    refs->lenient = false;
    enum cf_rc rc = measure_root(refs, env_slug, path, key, value, len, &m, err);
    if (rc == CF_OK)
        rc = check_value(refs, key, key, &m, err);
    if (rc != CF_OK)
        return rc;
    if (add_sat(budget->refs_used, m.refs) > budget->refs_max)
        return over_limit(refs, LIMIT_REQUEST_REFS, key, key, err);
    if (add_sat(budget->bytes_used, m.size) > budget->bytes_max)
        return over_limit(refs, LIMIT_REQUEST_BYTES, key, key, err);
    budget->refs_used += m.refs;
    budget->bytes_used += m.size;
    *size = m.size;
    return CF_OK;
}

enum cf_rc cf_refs_write(struct cf_refs *refs, const char *env_slug, const char *path,
                         const char *key, const char *value, size_t len, size_t size,
                         struct cf_buf *out, struct cf_err *err)
{
    /* Exactly the measured size: the expansion below never grows the buffer. */
    enum cf_rc rc = cf_buf_reserve(out, size);
    if (rc == CF_ETOOLARGE)
        return cf_err_set(err, rc, "expanded value of '%s' is too large", key);
    if (rc != CF_OK)
        return cf_err_set(err, rc, "out of memory expanding '%s'", key);
    rc = emit(refs, env_slug, path, value, len, out);
    if (rc != CF_OK)
        return cf_err_set(err, rc, "expanding '%s' failed: %s", key, cf_rc_str(rc));
    return CF_OK;
}

enum cf_rc cf_refs_expand(struct cf_refs *refs, const char *env_slug, const char *path,
                          const char *key, const char *value, size_t len, struct cf_buf *out,
                          struct cf_err *err)
{
    size_t size = 0;
    enum cf_rc rc = cf_refs_measure(refs, env_slug, path, key, value, len, &size, err);
    if (rc == CF_OK)
        rc = cf_refs_write(refs, env_slug, path, key, value, len, size, out, err);
    return rc;
}

enum cf_rc cf_refs_check(struct cf_refs *refs, const char *env_slug, const char *path,
                         const char *key, const char *value, size_t len, struct cf_err *err)
{
    struct measure m;
    refs->lenient = true;
    enum cf_rc rc = measure_root(refs, env_slug, path, key, value, len, &m, err);
    refs->lenient = false;
    if (rc == CF_OK)
        rc = check_value(refs, "secretValue", key, &m, err);
    return rc;
}
