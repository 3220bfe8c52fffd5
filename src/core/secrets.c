/* Secrets (see secrets.h). Every write seals the value anew, because the version number is part of
 * the associated data: version 5 of a secret cannot be passed off as version 4. Writes are
 * optimistic: we read the current versions, build the batch, and let the store refuse it
 * (CF_ECONFLICT) if anything moved in between, in which case the whole batch is rebuilt from fresh
 * reads. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/names.h"
#include "core/refs.h"
#include "core/secrets.h"
#include "core/approvals.h"
#include "core/syncs.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

#define WRITE_ATTEMPTS 5

void cf_plain_release(struct cf_plain *p)
{
    if (!p)
        return;
    free(p->meta.text);
    memset(&p->meta, 0, sizeof(p->meta));
    cf_buf_release_wipe(&p->value);
}

/* Fills meta from row (borrowed): its strings copied into one block. */
static enum cf_rc meta_from_row(struct cf_plain_meta *meta, const struct cf_secret *row,
                                struct cf_err *err)
{
    const char *parts[] = {row->path, row->key, row->comment ? row->comment : "",
                           row->tags ? row->tags : "[]",
                           row->reminder_note ? row->reminder_note : ""};
    size_t lens[CF_ARRAY_SIZE(parts)];
    size_t total = 0;
    for (size_t i = 0; i < CF_ARRAY_SIZE(parts); i++) {
        lens[i] = strlen(parts[i]) + 1;
        total += lens[i];
    }
    char *text = malloc(total);
    if (!text)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    const char **fields[] = {&meta->path, &meta->key, &meta->comment, &meta->tags,
                             &meta->reminder_note};
    char *at = text;
    for (size_t i = 0; i < CF_ARRAY_SIZE(parts); i++) {
        memcpy(at, parts[i], lens[i]);
        *fields[i] = at;
        at += lens[i];
    }
    meta->text = text;
    memcpy(meta->id, row->id, sizeof(meta->id));
    meta->version = row->version;
    meta->expires_at = row->expires_at;
    meta->reminder_repeat_days = row->reminder_repeat_days;
    meta->created_at = row->created_at;
    meta->updated_at = row->updated_at;
    meta->skip_multiline = row->skip_multiline;
    return CF_OK;
}

void cf_plain_list_release(struct cf_plain_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        cf_plain_release(&l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

void cf_ref_problems_release(struct cf_ref_problems *l)
{
    if (!l)
        return;
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* Appends a problem (strings borrowed; reference is the text between "${" and "}" when inner_len
 * is given, else the whole "${...}"). With dedupe, a list already holding the same secret and
 * reference is left as is (a write check may meet one reference many times; a read reports each
 * secret once by construction). */
static enum cf_rc add_problem(struct cf_ref_problems *l, const char *env, const char *path,
                              const char *key, const char *reference, size_t inner_len,
                              const char *reason, bool dedupe, struct cf_err *err)
{
    struct cf_ref_problem p;
    memset(&p, 0, sizeof(p));
    cf_strlcpy(p.env, env, sizeof(p.env));
    cf_strlcpy(p.path, path, sizeof(p.path));
    cf_strlcpy(p.key, key, sizeof(p.key));
    if (inner_len)
        snprintf(p.reference, sizeof(p.reference), "${%.*s}", (int)inner_len, reference);
    else
        cf_strlcpy(p.reference, reference, sizeof(p.reference));
    cf_strlcpy(p.reason, reason, sizeof(p.reason));
    for (size_t i = 0; dedupe && i < l->n; i++) {
        const struct cf_ref_problem *q = &l->items[i];
        if (strcmp(q->key, p.key) == 0 && strcmp(q->path, p.path) == 0 &&
            strcmp(q->env, p.env) == 0 && strcmp(q->reference, p.reference) == 0)
            return CF_OK;
    }
    if ((l->n & (l->n - 1)) == 0) { /* n is 0 or a power of two: the array is full */
        struct cf_ref_problem *grown = realloc(l->items, (l->n ? l->n * 2 : 1) * sizeof(*grown));
        if (!grown)
            return cf_err_set(err, CF_ENOMEM, "out of memory");
        l->items = grown;
    }
    l->items[l->n++] = p;
    return CF_OK;
}

void cf_imported_list_release(struct cf_imported_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        cf_plain_list_release(&l->items[i].secrets);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* Opens row's value into out->value and copies row's metadata into out->meta (row is borrowed; out
 * is left zeroed on failure). */
static enum cf_rc open_row(struct cf_core *core, const struct cf_project *project,
                           const struct cf_secret *row, struct cf_plain *out, struct cf_err *err)
{
    struct cf_seal_ad ad = {project->id, row->env_id, row->path, row->key, row->version};
    cf_buf_init(&out->value, CF_VALUE_MAX + 1);
    enum cf_rc rc = cf_keyring_open(core->keyring, project->wrapped_key, project->wrapped_key_len,
                                    &ad, row->sealed, row->sealed_len, &out->value, err);
    if (rc == CF_OK)
        rc = meta_from_row(&out->meta, row, err);
    if (rc != CF_OK)
        cf_plain_release(out);
    return rc;
}

/* Appends an item to list, growing its array geometrically (cap: the items allocated); the new
 * item is zeroed and not yet counted. NULL when out of memory. */
static struct cf_plain *plain_list_grow(struct cf_plain_list *list, size_t *cap)
{
    if (list->n == *cap) {
        size_t grown_cap = *cap ? *cap * 2 : 16;
        if (grown_cap > SIZE_MAX / sizeof(*list->items))
            return NULL;
        struct cf_plain *grown = realloc(list->items, grown_cap * sizeof(*grown));
        if (!grown)
            return NULL;
        list->items = grown;
        *cap = grown_cap;
    }
    struct cf_plain *p = &list->items[list->n];
    memset(p, 0, sizeof(*p));
    return p;
}

/* Opens every row of list into out (list is emptied either way). */
static enum cf_rc open_list(struct cf_core *core, const struct cf_project *project,
                            struct cf_secret_list *list, struct cf_plain_list *out,
                            struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    out->n = 0;
    out->items = list->n ? calloc(list->n, sizeof(*out->items)) : NULL;
    if (list->n && !out->items) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < list->n; i++) {
        rc = open_row(core, project, &list->items[i], &out->items[out->n], err);
        if (rc != CF_OK) {
            cf_plain_list_release(out);
            goto out;
        }
        out->n++;
    }
out:
    cf_secret_list_release(list);
    return rc;
}

/* A folder listed straight into a plain list (cf_store_secret_list_each): each row's value opened
 * with the one opener of the request and its metadata copied once, into its final place. */
struct list_fill {
    struct cf_core *core;
    const struct cf_principal *who;
    const struct cf_scope *scope;
    /* Sub-folders the caller may not read are left out (rows come ordered by path), so that a
     * recursive list never reveals a key name the caller could not read directly. */
    bool check_paths;
    bool checked_any;
    bool readable;
    char checked[CF_PATH_MAX + 1];
    struct cf_keyring_opener opener;
    struct cf_plain_list *out;
    size_t cap;
};

static enum cf_rc fill_row(void *ctx, const struct cf_secret *row, struct cf_err *err)
{
    struct list_fill *f = ctx;
    if (f->check_paths && (!f->checked_any || strcmp(f->checked, row->path) != 0)) {
        struct cf_err ignored;
        f->readable = cf_authz_check(f->core, f->who, CF_ACTION_READ, f->scope->project.id,
                                     &f->scope->env, row->path, &ignored) == CF_OK;
        cf_strlcpy(f->checked, row->path, sizeof(f->checked));
        f->checked_any = true;
    }
    if (f->check_paths && !f->readable)
        return CF_OK;
    struct cf_plain *p = plain_list_grow(f->out, &f->cap);
    if (!p)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    cf_buf_init(&p->value, CF_VALUE_MAX + 1);
    enum cf_rc rc = cf_keyring_opener_open(&f->opener, row->path, row->key, row->version,
                                           row->sealed, row->sealed_len, &p->value, err);
    if (rc == CF_OK)
        rc = meta_from_row(&p->meta, row, err);
    if (rc != CF_OK) {
        cf_plain_release(p);
        return rc;
    }
    f->out->n++;
    return CF_OK;
}

/* Lists the folder at path of scope's environment (its subtree when recursive) into out, which is
 * released on failure. check_paths: leave out the sub-folders who may not read. */
static enum cf_rc list_folder(struct cf_core *core, const struct cf_principal *who,
                              const struct cf_scope *scope, const struct cf_env *env,
                              const char *path, bool recursive, bool check_paths,
                              struct cf_plain_list *out, struct cf_err *err)
{
    struct list_fill *f = calloc(1, sizeof(*f));
    enum cf_rc rc;
    memset(out, 0, sizeof(*out));
    if (!f)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    f->core = core;
    f->who = who;
    f->scope = scope;
    f->check_paths = check_paths;
    f->out = out;
    rc = cf_keyring_opener_init(&f->opener, core->keyring, scope->project.wrapped_key,
                                scope->project.wrapped_key_len, scope->project.id, env->id, err);
    if (rc == CF_OK)
        rc = cf_store_secret_list_each(core->store, env->id, path, recursive, fill_row, f, err);
    cf_keyring_opener_release(&f->opener);
    free(f);
    if (rc != CF_OK)
        cf_plain_list_release(out);
    return rc;
}

/* ---- references ---- */

struct resolver {
    struct cf_core *core;
    const struct cf_principal *who;
    const struct cf_project *project;
    /* whom to tell of each value fetched (on_ref_read); NULL: none */
    const struct cf_read_opts *opts;
};

static enum cf_rc resolve_ref(void *ctx, const char *env_slug, const char *path, const char *key,
                              struct cf_buf *value, struct cf_err *err)
{
    struct resolver *r = ctx;
    struct cf_store *st = r->core->store;
    struct cf_env env;
    struct cf_folder folder;
    struct cf_secret row = {0};
    struct cf_plain plain = {0};
    enum cf_rc rc;

    rc = cf_store_env_get(st, r->project->id, env_slug, &env, err);
    if (rc == CF_ENOTFOUND) {
        /* To a reader that may not read there, a missing environment is the refusal of an
         * existing one. */
        cf_err_set(err, CF_ENOTFOUND, "no environment '%s' in this project", env_slug);
        return cf_scope_not_found(r->core, r->who, CF_ACTION_READ, r->project->id, env_slug, path,
                                  err);
    }
    if (rc != CF_OK)
        return rc;
    /* Reading through a reference needs the same right as reading directly. */
    rc = cf_authz_check(r->core, r->who, CF_ACTION_READ, r->project->id, &env, path, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_store_folder_get(st, env.id, path, &folder, err);
    if (rc == CF_ENOTFOUND)
        return cf_err_set(err, CF_ENOTFOUND, "no folder '%s' in %s", path, env_slug);
    if (rc != CF_OK)
        return rc;
    rc = cf_store_secret_get(st, folder.id, key, 0, &row, err);
    if (rc == CF_ENOTFOUND)
        return cf_err_set(err, CF_ENOTFOUND, "no secret '%s' in %s:%s", key, env_slug, path);
    if (rc != CF_OK)
        return rc;
    rc = open_row(r->core, r->project, &row, &plain, err);
    if (rc == CF_OK && cf_buf_append(value, plain.value.data, plain.value.len) != CF_OK)
        rc = cf_err_set(err, CF_ETOOLARGE, "value of '%s' is too large", key);
    if (rc == CF_OK && r->opts &&
        r->opts->on_ref_read) /* its value goes out inside the expansion */
        r->opts->on_ref_read(r->opts->on_ref_read_ctx, env.slug, folder.path, key);
    cf_secret_release(&row);
    cf_plain_release(&plain);
    return rc;
}

/* Replaces each item's value by its expansion. Items are seeded into refs first, so references
 * among them cost no store reads; every item is measured before any is expanded, so a list over
 * the budget is refused before its expansions take any memory. With problems, an item that cannot
 * be expanded is reported there and keeps its value (its size is then SIZE_MAX: not written). */
static enum cf_rc expand_list(struct cf_refs *refs, const char *env_slug,
                              struct cf_plain_list *list, struct cf_ref_problems *problems,
                              struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    size_t *sizes = NULL;
    for (size_t i = 0; i < list->n; i++) {
        struct cf_plain *p = &list->items[i];
        rc = cf_refs_add(refs, env_slug, p->meta.path, p->meta.key,
                         p->value.data ? p->value.data : "", p->value.len, err);
        if (rc != CF_OK)
            return rc;
    }
    sizes = list->n ? calloc(list->n, sizeof(*sizes)) : NULL;
    if (list->n && !sizes)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    for (size_t i = 0; i < list->n && rc == CF_OK; i++) {
        struct cf_plain *p = &list->items[i];
        const char *reference;
        if (!p->value.data || !cf_refs_present(p->value.data, p->value.len))
            continue;
        rc = cf_refs_measure(refs, env_slug, p->meta.path, p->meta.key, p->value.data, p->value.len,
                             &sizes[i], err);
        if (rc != CF_OK && problems && cf_refs_broken(refs, &reference)) {
            /* One secret that cannot be expanded does not take the others down. */
            sizes[i] = SIZE_MAX;
            rc = add_problem(problems, env_slug, p->meta.path, p->meta.key, reference, 0, err->msg,
                             false, err);
            if (rc == CF_OK)
                cf_err_clear(err);
        }
    }
    for (size_t i = 0; i < list->n && rc == CF_OK; i++) {
        struct cf_plain *p = &list->items[i];
        if (!p->value.data || !cf_refs_present(p->value.data, p->value.len) || sizes[i] == SIZE_MAX)
            continue;
        struct cf_buf expanded;
        cf_buf_init(&expanded, 0);
        rc = cf_refs_write(refs, env_slug, p->meta.path, p->meta.key, p->value.data, p->value.len,
                           sizes[i], &expanded, err);
        if (rc != CF_OK) {
            cf_buf_release_wipe(&expanded);
            break;
        }
        cf_buf_release_wipe(&p->value);
        p->value = expanded;
    }
    free(sizes);
    return rc;
}

static enum cf_rc expand_scope_list(struct cf_core *core, const struct cf_principal *who,
                                    const struct cf_project *project, const char *env_slug,
                                    const struct cf_read_opts *opts, struct cf_plain_list *list,
                                    struct cf_err *err)
{
    struct resolver r = {core, who, project, opts};
    struct cf_refs *refs = cf_refs_new(resolve_ref, &r);
    if (!refs)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    if (opts->budget)
        cf_refs_use_budget(refs, opts->budget);
    enum cf_rc rc = expand_list(refs, env_slug, list, opts->problems, err);
    cf_refs_free(refs);
    return rc;
}

/* ---- reads ---- */

enum cf_rc cf_secrets_list(struct cf_core *core, const struct cf_principal *who,
                           const struct cf_scope *scope, const struct cf_read_opts *opts,
                           struct cf_plain_list *out, struct cf_err *err)
{
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = cf_authz_check(core, who, CF_ACTION_READ, scope->project.id, &scope->env,
                        scope->folder.path, err);
    if (rc != CF_OK)
        return rc;
    rc = list_folder(core, who, scope, &scope->env, scope->folder.path, opts->recursive,
                     opts->recursive && (!who || who->kind != CF_PRINCIPAL_ADMIN), out, err);
    if (rc == CF_OK && opts->expand)
        rc = expand_scope_list(core, who, &scope->project, scope->env.slug, opts, out, err);
    if (rc != CF_OK)
        cf_plain_list_release(out);
    return rc;
}

enum cf_rc cf_secrets_get(struct cf_core *core, const struct cf_principal *who,
                          const struct cf_scope *scope, const char *key, int64_t version,
                          const struct cf_read_opts *opts, struct cf_plain *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_secret row = {0};
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = cf_key_check(key, "secretName", err);
    if (rc != CF_OK)
        return rc;
    rc = cf_authz_check(core, who, CF_ACTION_READ, scope->project.id, &scope->env,
                        scope->folder.path, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_store_secret_get(st, scope->folder.id, key, version, &row, err);
    if (rc == CF_ENOTFOUND) {
        if (version > 0)
            return cf_err_set(err, CF_ENOTFOUND, "Secret with name '%s' has no version %lld", key,
                              (long long)version);
        return cf_err_set(err, CF_ENOTFOUND, "Secret with name '%s' not found", key);
    }
    if (rc != CF_OK)
        return rc;
    rc = open_row(core, &scope->project, &row, out, err);
    cf_secret_release(&row);
    if (rc != CF_OK || !opts->expand || !cf_refs_present(out->value.data, out->value.len))
        goto out;

    struct resolver r = {core, who, &scope->project, opts};
    struct cf_refs *refs = cf_refs_new(resolve_ref, &r);
    struct cf_buf expanded;
    cf_buf_init(&expanded, 0);
    /* Seeding the current version makes the secret itself part of cycle detection (A -> B -> A). */
    rc = refs ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
    if (rc == CF_OK && opts->budget)
        cf_refs_use_budget(refs, opts->budget);
    if (rc == CF_OK && version == 0)
        rc = cf_refs_add(refs, scope->env.slug, out->meta.path, out->meta.key, out->value.data,
                         out->value.len, err);
    if (rc == CF_OK)
        rc = cf_refs_expand(refs, scope->env.slug, out->meta.path, out->meta.key, out->value.data,
                            out->value.len, &expanded, err);
    cf_refs_free(refs);
    if (rc == CF_OK) {
        cf_buf_release_wipe(&out->value);
        out->value = expanded;
    } else {
        cf_buf_release_wipe(&expanded);
    }
out:
    if (rc != CF_OK)
        cf_plain_release(out);
    return rc;
}

enum cf_rc cf_secrets_list_imports(struct cf_core *core, const struct cf_principal *who,
                                   const struct cf_scope *scope, const struct cf_read_opts *opts,
                                   struct cf_imported_list *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_import_list imports = {0};
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = cf_store_import_list(st, scope->folder.id, &imports, err);
    if (rc != CF_OK)
        return rc;
    if (imports.n) {
        out->items = calloc(imports.n, sizeof(*out->items));
        if (!out->items) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
    }
    for (size_t i = 0; i < imports.n; i++) {
        const struct cf_import *imp = &imports.items[i];
        struct cf_imported *dst = &out->items[out->n];
        struct cf_folder folder;

        rc = cf_store_env_get(st, scope->project.id, imp->import_env_id, &dst->env, err);
        if (rc == CF_ENOTFOUND)
            continue;
        if (rc != CF_OK)
            goto out;
        rc = cf_store_folder_get(st, dst->env.id, imp->import_path, &folder, err);
        if (rc == CF_ENOTFOUND)
            continue;
        if (rc != CF_OK)
            goto out;
        rc = cf_authz_check(core, who, CF_ACTION_READ, scope->project.id, &dst->env, folder.path,
                            err);
        if (rc != CF_OK)
            goto out;
        cf_strlcpy(dst->path, folder.path, sizeof(dst->path));
        cf_strlcpy(dst->folder_id, folder.id, sizeof(dst->folder_id));
        rc =
            list_folder(core, who, scope, &dst->env, folder.path, false, false, &dst->secrets, err);
        if (rc != CF_OK)
            goto out;
        out->n++;
        if (opts->expand) {
            rc = expand_scope_list(core, who, &scope->project, dst->env.slug, opts, &dst->secrets,
                                   err);
            if (rc != CF_OK)
                goto out;
        }
    }
    rc = CF_OK;
out:
    cf_import_list_release(&imports);
    if (rc != CF_OK)
        cf_imported_list_release(out);
    return rc;
}

/* ---- writes ---- */

static enum cf_action change_action(enum cf_change_kind kind)
{
    switch (kind) {
    case CF_CHANGE_CREATE:
        return CF_ACTION_CREATE;
    case CF_CHANGE_DELETE:
        return CF_ACTION_DELETE;
    case CF_CHANGE_UPDATE:
    case CF_CHANGE_UPSERT:
        break;
    }
    return CF_ACTION_EDIT;
}

static enum cf_rc check_changes(struct cf_core *core, const struct cf_principal *who,
                                const struct cf_scope *scope,
                                const struct cf_secret_change *changes, size_t n,
                                struct cf_err *err)
{
    enum cf_rc rc;
    if (n == 0)
        return cf_err_field(err, CF_EVALIDATION, "secrets", "secrets: at least one is required");
    if (n > CF_BATCH_MAX)
        return cf_err_field(err, CF_EVALIDATION, "secrets", "secrets: at most %d in one batch",
                            CF_BATCH_MAX);
    for (size_t i = 0; i < n; i++) {
        const struct cf_secret_change *c = &changes[i];
        rc = cf_key_check(c->key, "secretKey", err);
        if (rc == CF_OK && c->new_key)
            rc = cf_key_check(c->new_key, "newSecretName", err);
        if (rc != CF_OK)
            return rc;
        if (c->has_value && c->value_len > CF_VALUE_MAX)
            return cf_err_field(err, CF_ETOOLARGE, "secretValue",
                                "value of '%s' is %zu bytes, over the limit of %d bytes", c->key,
                                c->value_len, CF_VALUE_MAX);
        if (c->has_comment)
            rc = cf_text_check(c->comment, CF_COMMENT_MAX, false, "secretComment", err);
        if (rc != CF_OK)
            return rc;
        if (c->kind == CF_CHANGE_CREATE && !c->has_value)
            return cf_err_field(err, CF_EVALIDATION, "secretValue",
                                "secretValue: required to create '%s'", c->key);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(changes[j].key, c->key) == 0)
                return cf_err_field(err, CF_EINVAL, "secretKey", "duplicate key '%s' in one batch",
                                    c->key);
        }
        rc = cf_authz_check(core, who, change_action(c->kind), scope->project.id, &scope->env,
                            scope->folder.path, err);
        if (rc != CF_OK)
            return rc;
    }
    return CF_OK;
}

/* Collects the missing targets a write check meets (cf_refs_missing_fn). */
struct dangling_ctx {
    const struct cf_scope *scope;
    struct cf_ref_problems *out;
    enum cf_rc rc; /* CF_ENOMEM once a problem could not be kept */
};

static void note_dangling(void *ctx, const char *holder, const char *inner, size_t inner_len,
                          const char *reason)
{
    struct dangling_ctx *d = ctx;
    char text[CF_ERR_MSG_MAX];
    struct cf_err err;
    snprintf(text, sizeof(text), "secret '%s' references ${%.*s}, which does not exist (%s)",
             holder, (int)inner_len, inner, reason);
    if (d->rc == CF_OK)
        d->rc = add_problem(d->out, d->scope->env.slug, d->scope->folder.path, holder, inner,
                            inner_len, text, true, &err);
}

/* Refuses a change whose value would expand past the limits (core/refs.h) when read. The values
 * of the batch stand in for the stored ones of the same keys; references the writer may not read
 * count as empty, so a refusal reveals nothing the writer could not read. References to what does
 * not exist are accepted, and reported in dangling (NULL: not). */
static enum cf_rc check_expansions(struct cf_core *core, const struct cf_principal *who,
                                   const struct cf_scope *scope,
                                   const struct cf_secret_change *changes, size_t n,
                                   struct cf_ref_problems *dangling, struct cf_err *err)
{
    struct resolver r = {core, who, &scope->project};
    struct dangling_ctx d = {scope, dangling, CF_OK};
    struct cf_refs *refs = NULL;
    enum cf_rc rc = CF_OK;
    for (size_t i = 0; i < n && rc == CF_OK; i++) {
        const struct cf_secret_change *c = &changes[i];
        if (!c->has_value || !cf_refs_present(c->value, c->value_len))
            continue;
        if (!refs) {
            refs = cf_refs_new(resolve_ref, &r);
            if (!refs)
                return cf_err_set(err, CF_ENOMEM, "out of memory");
            if (dangling)
                cf_refs_on_missing(refs, note_dangling, &d);
            for (size_t j = 0; j < n && rc == CF_OK; j++) {
                if (changes[j].has_value && changes[j].kind != CF_CHANGE_DELETE)
                    rc = cf_refs_add(refs, scope->env.slug, scope->folder.path,
                                     changes[j].new_key ? changes[j].new_key : changes[j].key,
                                     changes[j].value, changes[j].value_len, err);
            }
            if (rc != CF_OK)
                break;
        }
        rc = cf_refs_check(refs, scope->env.slug, scope->folder.path,
                           c->new_key ? c->new_key : c->key, c->value, c->value_len, err);
    }
    cf_refs_free(refs);
    if (rc == CF_OK && d.rc != CF_OK)
        rc = cf_err_set(err, d.rc, "out of memory");
    return rc;
}

/* Seals value as version `version` of key in scope into row->sealed. */
static enum cf_rc seal_into(struct cf_core *core, const struct cf_scope *scope, const char *key,
                            int64_t version, const struct cf_buf *value, struct cf_secret *row,
                            struct cf_err *err)
{
    struct cf_seal_ad ad = {scope->project.id, scope->env.id, scope->folder.path, key, version};
    return cf_keyring_seal(core->keyring, scope->project.wrapped_key,
                           scope->project.wrapped_key_len, &ad, value->data ? value->data : "",
                           value->len, &row->sealed, &row->sealed_len, err);
}

/* What one change becomes: the store write, and the plaintext of the result for the caller. */
struct planned {
    struct cf_secret_write write;
    struct cf_secret current; /* the version the change was based on (id empty when none) */
    struct cf_buf value;      /* plaintext of the result (or of the deleted secret) */
};

static void planned_release(struct planned *p)
{
    free(p->write.row.sealed);
    free(p->write.row.comment);
    free(p->write.row.tags);
    free(p->write.row.reminder_note);
    cf_secret_release(&p->current);
    cf_buf_release_wipe(&p->value);
    memset(p, 0, sizeof(*p));
}

static char *dup_text(const char *text)
{
    return strdup(text ? text : "");
}

/* Builds the store write for one change from the current state of the folder. */
static enum cf_rc plan_change(struct cf_core *core, const struct cf_scope *scope,
                              const struct cf_secret_change *c, int64_t now, struct planned *p,
                              struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_secret *row = &p->write.row;
    enum cf_rc rc;
    bool exists;

    cf_buf_init(&p->value, CF_VALUE_MAX + 2);
    rc = cf_store_secret_get(st, scope->folder.id, c->key, 0, &p->current, err);
    if (rc != CF_OK && rc != CF_ENOTFOUND)
        return rc;
    exists = rc == CF_OK;

    enum cf_change_kind kind = c->kind;
    if (kind == CF_CHANGE_UPSERT)
        kind = exists ? CF_CHANGE_UPDATE : CF_CHANGE_CREATE;
    if (kind == CF_CHANGE_CREATE && exists)
        return cf_err_field(err, CF_EEXIST, "secretKey",
                            "Secret with name '%s' already exists in folder '%s'", c->key,
                            scope->folder.path);
    if (kind != CF_CHANGE_CREATE && !exists)
        return cf_err_field(err, CF_ENOTFOUND, "secretKey", "Secret with name '%s' not found",
                            c->key);
    if (kind == CF_CHANGE_CREATE && !c->has_value)
        return cf_err_field(err, CF_EVALIDATION, "secretValue",
                            "secretValue: required to create '%s'", c->key);

    cf_strlcpy(row->folder_id, scope->folder.id, sizeof(row->folder_id));
    cf_strlcpy(row->project_id, scope->project.id, sizeof(row->project_id));
    cf_strlcpy(row->env_id, scope->env.id, sizeof(row->env_id));
    cf_strlcpy(row->path, scope->folder.path, sizeof(row->path));
    row->updated_at = now;

    if (kind == CF_CHANGE_DELETE || (kind == CF_CHANGE_UPDATE && !c->has_value)) {
        /* The current plaintext is needed: to return the deleted secret, or to re-seal it under the
         * new version's associated data. */
        struct cf_plain cur = {0};
        rc = open_row(core, &scope->project, &p->current, &cur, err);
        if (rc != CF_OK)
            return rc;
        cf_buf_release_wipe(&p->value);
        p->value = cur.value;
        memset(&cur.value, 0, sizeof(cur.value));
        cf_plain_release(&cur);
    } else {
        rc = cf_value_normalize(c->value, c->value_len, &p->value);
        if (rc != CF_OK)
            return cf_err_field(err, rc, "secretValue", "value of '%s' is too large", c->key);
    }

    if (kind == CF_CHANGE_DELETE) {
        p->write.op = CF_SECRET_OP_DELETE;
        p->write.expected_version = p->current.version;
        cf_strlcpy(row->id, p->current.id, sizeof(row->id));
        cf_strlcpy(row->key, p->current.key, sizeof(row->key));
        row->version = p->current.version;
        row->comment = dup_text(p->current.comment);
        row->tags = dup_text(p->current.tags);
        row->expires_at = p->current.expires_at;
        row->reminder_repeat_days = p->current.reminder_repeat_days;
        row->skip_multiline = p->current.skip_multiline;
        row->created_at = p->current.created_at;
        row->updated_at = p->current.updated_at;
        return row->comment && row->tags ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
    }

    if (kind == CF_CHANGE_CREATE) {
        p->write.op = CF_SECRET_OP_CREATE;
        cf_uuid_new(row->id);
        cf_strlcpy(row->key, c->key, sizeof(row->key));
        row->version = 1;
        row->created_at = now;
        row->comment = dup_text(c->has_comment ? c->comment : "");
        row->tags = dup_text(c->has_tags ? c->tags_json : "[]");
        row->expires_at = c->has_expires ? c->expires_at : 0;
        row->reminder_repeat_days = c->has_reminder_days ? c->reminder_repeat_days : 0;
        row->reminder_note = dup_text(c->has_reminder_note ? c->reminder_note : "");
        row->skip_multiline = c->has_skip_multiline && c->skip_multiline;
    } else {
        p->write.op = CF_SECRET_OP_UPDATE;
        p->write.expected_version = p->current.version;
        cf_strlcpy(row->id, p->current.id, sizeof(row->id));
        cf_strlcpy(row->key, c->new_key ? c->new_key : p->current.key, sizeof(row->key));
        row->version = p->current.version + 1;
        row->created_at = p->current.created_at;
        row->comment = dup_text(c->has_comment ? c->comment : p->current.comment);
        row->tags = dup_text(c->has_tags ? c->tags_json : p->current.tags);
        row->expires_at = c->has_expires ? c->expires_at : p->current.expires_at;
        row->reminder_repeat_days =
            c->has_reminder_days ? c->reminder_repeat_days : p->current.reminder_repeat_days;
        row->reminder_note =
            dup_text(c->has_reminder_note ? c->reminder_note : p->current.reminder_note);
        row->skip_multiline = c->has_skip_multiline ? c->skip_multiline : p->current.skip_multiline;
    }
    if (!row->comment || !row->tags || !row->reminder_note)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    return seal_into(core, scope, row->key, row->version, &p->value, row, err);
}

/* Moves the planned results' values into out as plaintext secrets, with copies of their metadata.
 */
static enum cf_rc collect(struct planned *plans, size_t n, struct cf_plain_list *out,
                          struct cf_err *err)
{
    out->items = calloc(n, sizeof(*out->items));
    if (!out->items)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        struct cf_plain *dst = &out->items[i];
        enum cf_rc rc = meta_from_row(&dst->meta, &plans[i].write.row, err);
        if (rc != CF_OK)
            return rc;
        dst->value = plans[i].value;
        memset(&plans[i].value, 0, sizeof(plans[i].value));
        out->n++;
    }
    return CF_OK;
}

/* What a merge of a change request adds to a write (cf_secrets_apply_merge). */
struct merge_terms {
    const int64_t *base_versions;
    const char *request_id;
    const char *merged_by;
    const char *bypass_reason;
};

/* CF_ECONFLICT naming the key when the plan's current version is not the one the change request
 * was made against (0: the key did not exist). */
static enum cf_rc check_base(const struct planned *p, const struct cf_secret_change *c,
                             int64_t base, struct cf_err *err)
{
    int64_t now_at = p->current.id[0] ? p->current.version : 0;
    if (now_at == base)
        return CF_OK;
    return cf_err_set(err, CF_ECONFLICT,
                      "secret '%s' changed since the request was made: it was at version %lld, "
                      "it is at version %lld now",
                      c->key, (long long)base, (long long)now_at);
}

static enum cf_rc apply(struct cf_core *core, const struct cf_principal *who,
                        const struct cf_scope *scope, const struct cf_secret_change *changes,
                        size_t n, const struct merge_terms *merge, struct cf_plain_list *out,
                        struct cf_ref_problems *dangling, struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct planned *plans = NULL;
    struct cf_secret_write *writes = NULL;
    int64_t syncs_marked = 0;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = check_changes(core, who, scope, changes, n, err);
    if (rc == CF_OK)
        rc = check_expansions(core, who, scope, changes, n, dangling, err);
    if (rc != CF_OK) {
        cf_ref_problems_release(dangling);
        return rc;
    }
    plans = calloc(n, sizeof(*plans));
    writes = calloc(n, sizeof(*writes));
    if (!plans || !writes) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    for (int attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
        int64_t now = cf_now_ms();
        for (size_t i = 0; i < n; i++)
            planned_release(&plans[i]);
        for (size_t i = 0; i < n; i++) {
            rc = plan_change(core, scope, &changes[i], now, &plans[i], err);
            /* a merge meets a key created, deleted or changed since the request was made as a
             * conflict whatever the kind of change */
            if (merge && (rc == CF_OK || rc == CF_EEXIST || rc == CF_ENOTFOUND)) {
                enum cf_rc moved = check_base(&plans[i], &changes[i], merge->base_versions[i], err);
                if (moved != CF_OK)
                    rc = moved;
            }
            if (rc != CF_OK)
                goto out;
            writes[i] = plans[i].write;
        }
        if (merge) {
            /* a conflict is the request's to show, not one to retry */
            rc = cf_store_change_request_merge(st, merge->request_id, merge->merged_by,
                                               merge->bypass_reason, writes, n, &syncs_marked, err);
            if (rc == CF_EEXIST)
                rc = cf_err_set(err, CF_ECONFLICT, "%s", err->msg);
            goto applied;
        }
        rc = cf_store_secret_write(st, writes, n, &syncs_marked, err);
        if (rc != CF_ECONFLICT)
            break;
    }
    if (rc == CF_ECONFLICT)
        rc = cf_err_set(err, CF_ECONFLICT,
                        "secrets in '%s' kept changing concurrently; retry the request",
                        scope->folder.path);
applied:
    /* The project's secret syncs carry the change out: the write marked them in its transaction. */
    if (rc == CF_OK && syncs_marked > 0)
        cf_syncs_wake(core);
    if (rc == CF_OK)
        rc = collect(plans, n, out, err);
out:
    if (plans) {
        for (size_t i = 0; i < n; i++)
            planned_release(&plans[i]);
    }
    free(plans);
    free(writes);
    if (rc != CF_OK) {
        cf_plain_list_release(out);
        cf_ref_problems_release(dangling);
    }
    return rc;
}

enum cf_rc cf_secrets_apply(struct cf_core *core, const struct cf_principal *who,
                            const struct cf_scope *scope, const struct cf_secret_change *changes,
                            size_t n, struct cf_plain_list *out, struct cf_ref_problems *dangling,
                            struct cf_err *err)
{
    return apply(core, who, scope, changes, n, NULL, out, dangling, err);
}

enum cf_rc cf_secrets_apply_merge(struct cf_core *core, const struct cf_principal *who,
                                  const struct cf_scope *scope,
                                  const struct cf_secret_change *changes,
                                  const int64_t *base_versions, size_t n, const char *request_id,
                                  const char *merged_by, const char *bypass_reason,
                                  struct cf_plain_list *out, struct cf_err *err)
{
    const struct merge_terms merge = {base_versions, request_id, merged_by, bypass_reason};
    return apply(core, who, scope, changes, n, &merge, out, NULL, err);
}

/* Loads what history and rollback need about a secret given by id: its current version and project.
 */
static enum cf_rc load_by_id(struct cf_core *core, const struct cf_principal *who,
                             const char *secret_id, enum cf_action action,
                             struct cf_secret *current, struct cf_scope *scope, struct cf_err *err)
{
    struct cf_store *st = core->store;
    enum cf_rc rc;

    memset(scope, 0, sizeof(*scope));
    if (!cf_uuid_valid(secret_id))
        return cf_err_field(err, CF_EVALIDATION, "secretId", "secretId: '%.40s' is not a UUID",
                            secret_id);
    rc = cf_store_secret_get_by_id(st, secret_id, 0, current, err);
    if (rc == CF_ENOTFOUND)
        return cf_err_set(err, CF_ENOTFOUND, "Secret with ID '%s' not found", secret_id);
    if (rc != CF_OK)
        return rc;
    rc = cf_store_project_get(st, current->project_id, &scope->project, err);
    if (rc == CF_OK)
        rc = cf_store_env_get(st, current->project_id, current->env_id, &scope->env, err);
    if (rc == CF_OK)
        rc = cf_store_folder_get(st, current->env_id, current->path, &scope->folder, err);
    if (rc == CF_OK)
        rc = cf_authz_check(core, who, action, scope->project.id, &scope->env, current->path, err);
    if (rc != CF_OK) {
        cf_secret_release(current);
        cf_scope_release(scope);
    }
    return rc;
}

enum cf_rc cf_secrets_history(struct cf_core *core, const struct cf_principal *who,
                              const char *secret_id, struct cf_scope *scope,
                              struct cf_plain_list *out, struct cf_err *err)
{
    struct cf_secret current = {0};
    struct cf_secret_list rows = {0};
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = load_by_id(core, who, secret_id, CF_ACTION_READ, &current, scope, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_store_secret_history(core->store, secret_id, &rows, err);
    if (rc == CF_OK)
        rc = open_list(core, &scope->project, &rows, out, err);
    cf_secret_release(&current);
    if (rc != CF_OK)
        cf_scope_release(scope);
    return rc;
}

enum cf_rc cf_secrets_tags(struct cf_core *core, const char *project_id, struct cf_tag_list *out,
                           struct cf_err *err)
{
    return cf_store_tag_list(core->store, project_id, out, err);
}

enum cf_rc cf_secrets_rollback(struct cf_core *core, const struct cf_principal *who,
                               const char *secret_id, int64_t version, struct cf_scope *scope,
                               struct cf_plain *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_secret current = {0}, old = {0};
    struct cf_plain old_plain = {0};
    struct cf_plain_list result = {0};
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = load_by_id(core, who, secret_id, CF_ACTION_EDIT, &current, scope, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_store_secret_get_by_id(st, secret_id, version, &old, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "Secret '%s' has no version %lld", current.key,
                        (long long)version);
    if (rc == CF_OK)
        rc = open_row(core, &scope->project, &old, &old_plain, err);
    if (rc != CF_OK)
        goto out;

    /* a place that needs approval takes changes as change requests, which a rollback is not */
    rc = cf_approvals_guard_direct(core, who, scope, "rollback", err);
    if (rc != CF_OK)
        goto out;

    /* A rollback is an update of the current key to the old version's contents. */
    struct cf_secret_change change = {
        .kind = CF_CHANGE_UPDATE,
        .key = current.key,
        .has_value = true,
        .value = old_plain.value.data ? old_plain.value.data : "",
        .value_len = old_plain.value.len,
        .has_comment = true,
        .comment = old_plain.meta.comment,
        .has_tags = true,
        .tags_json = old_plain.meta.tags,
        .has_expires = true,
        .expires_at = old_plain.meta.expires_at,
        .has_skip_multiline = true,
        .skip_multiline = old_plain.meta.skip_multiline,
        .has_reminder_days = true,
        .reminder_repeat_days = old_plain.meta.reminder_repeat_days,
        .has_reminder_note = true,
        .reminder_note = old_plain.meta.reminder_note,
    };
    rc = cf_secrets_apply(core, who, scope, &change, 1, &result, NULL, err);
    if (rc == CF_OK) {
        *out = result.items[0];
        memset(&result.items[0], 0, sizeof(result.items[0]));
    }
out:
    cf_plain_list_release(&result);
    cf_plain_release(&old_plain);
    cf_secret_release(&old);
    cf_secret_release(&current);
    if (rc != CF_OK)
        cf_scope_release(scope);
    return rc;
}
