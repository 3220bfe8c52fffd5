/* Secrets endpoints: Infisical's v3 "raw" API (what the SDK uses), the v4 reads and writes (what
 * the Infisical CLI uses), batches, versions and rollback. Handlers parse and validate, call
 * core/secrets, and render Infisical's secret shape (plus Coffer's expiresAt). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/http.h"
#include "core/approvals.h"
#include "core/listcache.h"
#include "core/names.h"
#include "core/refs.h"
#include "core/secrets.h"
#include "util/str.h"
#include "util/jsonw.h"
#include "util/log.h"
#include "util/time.h"
#include "util/wipemem.h"
#include "util/banned.h"

/* The differences between the v3 and v4 flavours of the same operation. */
struct flavour {
    const char *const *project_fields;
    bool default_expand;
    bool default_imports;
};

static const char *const v3_project[] = {"workspaceId", "projectId", "workspaceSlug", "projectSlug",
                                         NULL};
static const char *const v4_project[] = {"projectId", "workspaceId", "projectSlug", NULL};
static const struct flavour v3 = {v3_project, false, false};
static const struct flavour v4 = {v4_project, true, true};
static const char *const env_fields[] = {"environment", NULL};
static const char *const path_fields[] = {"secretPath", "path", NULL};

/* ---- rendering ---- */

/* The project's tags, loaded on first need (most secrets carry none). */
struct tag_index {
    struct cf_core *core;
    const char *project_id;
    bool loaded;
    struct cf_tag_list tags;
};

static void tag_index_release(struct tag_index *index)
{
    cf_tag_list_release(&index->tags);
}

/* Loads the tags at the first call; a load that failed leaves none (and says why once). */
static enum cf_rc tag_index_load(struct tag_index *index, struct cf_err *err)
{
    if (index->loaded)
        return CF_OK;
    index->loaded = true;
    enum cf_rc rc = cf_secrets_tags(index->core, index->project_id, &index->tags, err);
    if (rc != CF_OK)
        memset(&index->tags, 0, sizeof(index->tags));
    return rc;
}

static const struct cf_tag *tag_by_id(struct tag_index *index, const char *id)
{
    struct cf_err ignored; /* rendered without the tag's name */
    tag_index_load(index, &ignored);
    for (size_t i = 0; i < index->tags.n; i++) {
        if (strcmp(index->tags.items[i].id, id) == 0)
            return &index->tags.items[i];
    }
    return NULL;
}

/* The tag ids of a secret (its stored JSON array text), as a jansson array (a new reference), or
 * NULL when it has none. */
static json_t *tag_ids(const char *tags_json)
{
    if (!tags_json || strcmp(tags_json, "[]") == 0) /* the common case, on the hot path */
        return NULL;
    json_t *ids = json_loads(tags_json, 0, NULL);
    if (!json_is_array(ids)) {
        json_decref(ids);
        return NULL;
    }
    return ids;
}

static void render_tags(struct cf_jsonw *w, struct tag_index *index, const char *tags_json)
{
    json_t *ids = tag_ids(tags_json);
    size_t i;
    json_t *id;
    cf_jsonw_array_begin(w);
    json_array_foreach(ids, i, id)
    {
        const struct cf_tag *t =
            json_is_string(id) ? tag_by_id(index, json_string_value(id)) : NULL;
        if (!t)
            continue;
        cf_jsonw_object_begin(w);
        cf_jsonw_kstr(w, "id", t->id);
        cf_jsonw_kstr(w, "slug", t->slug);
        cf_jsonw_kstr(w, "name", t->name);
        cf_jsonw_kstr(w, "color", t->color);
        cf_jsonw_object_end(w);
    }
    cf_jsonw_array_end(w);
    json_decref(ids);
}

/* True when slugs (comma-separated) is empty or names one of the secret's tags. */
static bool tag_filter_match(struct tag_index *index, const char *tags_json, const char *slugs)
{
    if (!slugs || !*slugs)
        return true;
    json_t *ids = tag_ids(tags_json);
    bool match = false;
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id)
    {
        const struct cf_tag *t =
            json_is_string(id) ? tag_by_id(index, json_string_value(id)) : NULL;
        size_t n = t ? strlen(t->slug) : 0;
        struct cf_list_iter it;
        struct cf_str slug;
        cf_list_init(&it, t ? slugs : NULL);
        while (!match && cf_list_next_raw(&it, &slug))
            match = slug.n == n && strncmp(slug.p, t->slug, n) == 0;
    }
    json_decref(ids);
    return match;
}

/* One secret in Infisical's raw shape, plus Coffer's expiresAt. */
static void render_secret(struct cf_jsonw *w, struct tag_index *tags, const char *env_slug,
                          const struct cf_plain *p, bool hide)
{
    const struct cf_plain_meta *m = &p->meta;
    cf_jsonw_object_begin(w);
    cf_jsonw_kstr(w, "id", m->id);
    cf_jsonw_kstr(w, "_id", m->id);
    cf_jsonw_kstr(w, "workspace", tags->project_id);
    cf_jsonw_kstr(w, "environment", env_slug);
    cf_jsonw_kstr(w, "secretPath", m->path);
    cf_jsonw_kint(w, "version", m->version);
    cf_jsonw_kstr(w, "type", "shared");
    cf_jsonw_kstr(w, "secretKey", m->key);
    cf_jsonw_key(w, "secretValue");
    if (hide || !p->value.data)
        cf_jsonw_string(w, "", 0);
    else
        cf_jsonw_string(w, p->value.data, p->value.len);
    cf_jsonw_kstr(w, "secretComment", m->comment ? m->comment : "");
    cf_jsonw_kbool(w, "skipMultilineEncoding", m->skip_multiline);
    cf_jsonw_kbool(w, "secretValueHidden", hide);
    if (m->reminder_note && *m->reminder_note)
        cf_jsonw_kstr(w, "secretReminderNote", m->reminder_note);
    else
        cf_jsonw_knull(w, "secretReminderNote");
    if (m->reminder_repeat_days > 0)
        cf_jsonw_kint(w, "secretReminderRepeatDays", m->reminder_repeat_days);
    else
        cf_jsonw_knull(w, "secretReminderRepeatDays");
    cf_jsonw_key(w, "secretMetadata");
    cf_jsonw_array_begin(w);
    cf_jsonw_array_end(w);
    cf_jsonw_key(w, "tags");
    render_tags(w, tags, m->tags);
    cf_jsonw_ktime(w, "expiresAt", m->expires_at);
    cf_jsonw_kbool(w, "isRotatedSecret", false);
    cf_jsonw_knull(w, "rotationId");
    cf_jsonw_ktime(w, "createdAt", m->created_at);
    cf_jsonw_ktime(w, "updatedAt", m->updated_at);
    cf_jsonw_object_end(w);
}

static void render_list(struct cf_jsonw *w, struct tag_index *tags, const char *env_slug,
                        const struct cf_plain_list *list, bool hide, const char *tag_slugs)
{
    cf_jsonw_array_begin(w);
    for (size_t i = 0; i < list->n; i++) {
        if (tag_filter_match(tags, list->items[i].meta.tags, tag_slugs))
            render_secret(w, tags, env_slug, &list->items[i], hide);
    }
    cf_jsonw_array_end(w);
}

/* "brokenReferences": the secrets a read could not expand, or a write stores with references to
 * what does not exist (core/secrets.h, struct cf_ref_problem). */
static void render_problems(struct cf_jsonw *w, const struct cf_ref_problems *problems)
{
    cf_jsonw_key(w, "brokenReferences");
    cf_jsonw_array_begin(w);
    for (size_t i = 0; i < problems->n; i++) {
        const struct cf_ref_problem *p = &problems->items[i];
        cf_jsonw_object_begin(w);
        cf_jsonw_kstr(w, "secretKey", p->key);
        cf_jsonw_kstr(w, "secretPath", p->path);
        cf_jsonw_kstr(w, "environment", p->env);
        cf_jsonw_kstr(w, "reference", p->reference);
        cf_jsonw_kstr(w, "reason", p->reason);
        cf_jsonw_object_end(w);
    }
    cf_jsonw_array_end(w);
}

/* Finishes a writer's buffer; on failure wipes it and names the problem. */
static enum cf_rc finish(struct cf_jsonw *w, struct cf_buf *body, struct cf_err *err)
{
    enum cf_rc rc = cf_jsonw_finish(w);
    if (rc != CF_OK) {
        cf_buf_release_wipe(body);
        return cf_err_set(err, rc, "cannot render the response (%s)", cf_rc_str(rc));
    }
    return CF_OK;
}

/* Hands a finished writer's buffer to the server as the response. */
static enum cf_rc reply(struct cf_req *req, struct cf_jsonw *w, struct cf_buf *body,
                        struct cf_err *err)
{
    enum cf_rc rc = finish(w, body, err);
    if (rc == CF_OK)
        cf_req_reply_raw(req, body);
    return rc;
}

/* {"secret": <one secret>}, with "brokenReferences" when problems holds any (NULL: none); also
 * kept in the list cache under cache_key (NULL: not). */
static enum cf_rc reply_secret_cached(struct cf_req *req, struct tag_index *tags,
                                      const char *env_slug, const struct cf_plain *p, bool hide,
                                      const struct cf_ref_problems *problems, const char *cache_key,
                                      struct cf_err *err)
{
    struct cf_buf body;
    struct cf_jsonw w;
    cf_buf_init(&body, 0);
    cf_jsonw_init(&w, &body);
    cf_jsonw_object_begin(&w);
    cf_jsonw_key(&w, "secret");
    render_secret(&w, tags, env_slug, p, hide);
    if (problems && problems->n)
        render_problems(&w, problems);
    cf_jsonw_object_end(&w);
    enum cf_rc rc = finish(&w, &body, err);
    if (rc != CF_OK)
        return rc;
    if (cache_key) {
        cf_listcache_put(cf_req_core(req), cache_key, p->meta.key, strlen(p->meta.key), body.data,
                         body.len);
        cf_log_debug("secrets.read: %s:%s rendered for the list cache", env_slug, p->meta.path);
    }
    cf_req_reply_raw(req, &body);
    return CF_OK;
}

static enum cf_rc reply_secret(struct cf_req *req, struct tag_index *tags, const char *env_slug,
                               const struct cf_plain *p, bool hide,
                               const struct cf_ref_problems *problems, struct cf_err *err)
{
    return reply_secret_cached(req, tags, env_slug, p, hide, problems, NULL, err);
}

/* ---- request parsing ---- */

/* The place a request names, resolved for the caller about to do action there (a missing place is
 * a 403 to a caller that may not do action there, as an existing one would be). */
static enum cf_rc resolve(struct cf_req *req, json_t *body, const struct flavour *fl,
                          enum cf_action action, struct cf_scope *scope, struct cf_err *err)
{
    const char *project, *env, *path;
    enum cf_rc rc = cf_req_field(req, body, fl->project_fields, true, &project, err);
    if (rc == CF_OK)
        rc = cf_req_field(req, body, env_fields, true, &env, err);
    if (rc == CF_OK)
        rc = cf_req_field(req, body, path_fields, false, &path, err);
    if (rc != CF_OK)
        return rc;
    return cf_scope_resolve(cf_req_core(req), cf_req_principal(req), action, project, env,
                            path ? path : "/", scope, err);
}

/* Only shared secrets exist; Infisical answers personal ones from machine identities with 400 too.
 */
static enum cf_rc check_type(json_t *body, struct cf_req *req, struct cf_err *err)
{
    const char *type = NULL;
    static const char *const fields[] = {"type", NULL};
    enum cf_rc rc = cf_req_field(req, body, fields, false, &type, err);
    if (rc != CF_OK || !type || strcmp(type, "shared") == 0)
        return rc;
    if (strcmp(type, "personal") == 0)
        return cf_err_field(err, CF_EINVAL, "type",
                            "personal secrets are not supported: use type 'shared'");
    return cf_err_field(err, CF_EVALIDATION, "type", "type: must be 'shared' or 'personal'");
}

struct read_flags {
    struct cf_read_opts opts;
    bool imports;
    bool hide;
    bool strict_refs; /* strictReferences: a secret that cannot be expanded refuses the read */
};

static enum cf_rc read_flags(struct cf_req *req, const struct flavour *fl, struct read_flags *f,
                             struct cf_err *err)
{
    bool imports_snake = fl->default_imports, imports_camel = fl->default_imports, view = true;
    const char *snake = NULL;
    enum cf_rc rc = cf_req_query_bool(req, "recursive", false, &f->opts.recursive, err);
    if (rc == CF_OK)
        rc = cf_req_query_bool(req, "expandSecretReferences", fl->default_expand, &f->opts.expand,
                               err);
    if (rc == CF_OK)
        rc = cf_req_query_bool(req, "include_imports", fl->default_imports, &imports_snake, err);
    if (rc == CF_OK)
        rc = cf_req_query_bool(req, "includeImports", fl->default_imports, &imports_camel, err);
    if (rc == CF_OK)
        rc = cf_req_query_bool(req, "viewSecretValue", true, &view, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "include_imports", &snake, err);
    if (rc == CF_OK)
        rc = cf_req_query_bool(req, "strictReferences", false, &f->strict_refs, err);
    /* Whichever spelling the client sent wins; v3 clients send include_imports. */
    f->imports = snake ? imports_snake : imports_camel;
    f->hide = !view;
    /* A value read only through a reference is recorded where it lives. */
    f->opts.on_ref_read = cf_req_audit_ref_read;
    f->opts.on_ref_read_ctx = req;
    return rc;
}

/* ---- list and get ---- */

/* Records the names a cached body lists (cf_listcache_get's on_names; ctx: the request). */
static void audit_names(void *ctx, const char *names, size_t len)
{
    cf_req_audit_keys(ctx, names, len);
}

/* Whether an If-None-Match header (may be NULL) names etag: "*", or one of its comma-separated
 * tags, weak ones (W/"...") compared weakly as RFC 9110 13.1.2 asks. */
static bool etag_matches(const char *header, const char *etag)
{
    size_t etag_len = strlen(etag);
    if (!header)
        return false;
    for (const char *at = header; *at;) {
        at += strspn(at, " \t,");
        size_t len = strcspn(at, ",");
        size_t end = len;
        while (end && (at[end - 1] == ' ' || at[end - 1] == '\t'))
            end--;
        const char *tag = at;
        if (end >= 2 && strncmp(tag, "W/", 2) == 0) {
            tag += 2;
            end -= 2;
        }
        if ((end == 1 && tag[0] == '*') || (end == etag_len && memcmp(tag, etag, end) == 0))
            return true;
        at += len;
    }
    return false;
}

/* GET list (route data: the flavour). */
static enum cf_rc list_secrets(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const struct flavour *fl = cf_req_route_data(req);
    struct cf_core *core = cf_req_core(req);
    const struct cf_principal *who = cf_req_principal(req);
    struct cf_scope scope;
    struct cf_plain_list list = {0};
    struct cf_imported_list imported = {0};
    struct cf_ref_problems problems = {0};
    struct read_flags f = {0};
    const char *tag_slugs = NULL;
    enum cf_rc rc;

    *out = NULL;
    rc = read_flags(req, fl, &f, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "tagSlugs", &tag_slugs, err);
    if (rc != CF_OK)
        return rc;
    /* A secret that cannot be expanded is reported, not a refusal of the whole list (unless the
     * caller asks for strictReferences). */
    if (f.opts.expand && !f.strict_refs)
        f.opts.problems = &problems;
    /* One expansion budget for the folder and its imports together. */
    struct cf_refs_budget budget;
    cf_refs_budget_init(&budget);
    f.opts.budget = &budget;
    cf_req_audit(req, "secrets.list", NULL, NULL, NULL);
    rc = resolve(req, NULL, fl, CF_ACTION_READ, &scope, err);
    if (rc != CF_OK)
        return rc;
    cf_req_audit(req, "secrets.list", scope.project.id, scope.env.slug, scope.folder.path);
    /* A body that depends only on the folder and the flags (core/listcache.h) is served from the
     * cache to a caller allowed to read the folder, checked here on every request. */
    char cache_key[CF_LISTCACHE_KEY_MAX];
    /* The same bodies carry an entity tag, and a request whose If-None-Match holds it is answered
     * 304 without a body: only after the read right was checked, so a caller who may not read
     * the folder gets its 403, never a hint that the folder is unchanged. */
    bool tagged = !f.opts.expand && !f.opts.recursive && !f.imports &&
                  cf_listcache_key(cache_key, sizeof(cache_key), &scope, f.hide, tag_slugs);
    bool cacheable = tagged && core->lists;
    if (tagged) {
        struct cf_listcache_hit cached;
        char etag[CF_LISTCACHE_ETAG_LEN];
        rc = cf_authz_check(core, who, CF_ACTION_READ, scope.project.id, &scope.env,
                            scope.folder.path, err);
        if (rc != CF_OK)
            goto out;
        if (cf_listcache_etag(core, cache_key, who, etag)) {
            cf_req_set_etag(req, etag);
            if (etag_matches(cf_req_header(req, "If-None-Match"), etag)) {
                cf_req_set_status(req, 304);
                goto out;
            }
        }
        if (cacheable && cf_listcache_get(core, cache_key, &cached, audit_names, req)) {
            cf_log_debug("secrets.list: %s:%s answered from the list cache", scope.env.slug,
                         scope.folder.path);
            cf_req_reply_leased(req, cached.body, cached.len, cached.lease);
            goto out;
        }
    }
    rc = cf_secrets_list(core, who, &scope, &f.opts, &list, err);
    if (rc == CF_OK && f.imports) {
        struct cf_read_opts import_opts = f.opts;
        import_opts.recursive = false;
        rc = cf_secrets_list_imports(core, who, &scope, &import_opts, &imported, err);
    }
    if (rc != CF_OK)
        goto out;

    struct tag_index tags = {core, scope.project.id, false, {0}};
    /* The names listed, kept with a cached body for the audit of its later reads. */
    struct cf_buf names;
    cf_buf_init(&names, 0);
    /* Every secret in the answer is recorded where it lives: a sub-folder's (recursive) or an
     * imported folder's at its own place. */
    for (size_t i = 0; i < list.n; i++) {
        const struct cf_plain_meta *m = &list.items[i].meta;
        if (!tag_filter_match(&tags, m->tags, tag_slugs))
            continue;
        if (strcmp(m->path, scope.folder.path) == 0)
            cf_req_audit_key(req, m->key);
        else
            cf_req_audit_read(req, scope.env.slug, m->path, m->key);
        if (cacheable && ((names.len && cf_buf_append(&names, ",", 1) != CF_OK) ||
                          cf_buf_append(&names, m->key, strlen(m->key)) != CF_OK))
            cacheable = false;
    }
    for (size_t i = 0; i < imported.n; i++) {
        const struct cf_imported *imp = &imported.items[i];
        for (size_t j = 0; j < imp->secrets.n; j++) {
            const struct cf_plain_meta *m = &imp->secrets.items[j].meta;
            if (tag_filter_match(&tags, m->tags, tag_slugs))
                cf_req_audit_read(req, imp->env.slug, m->path, m->key);
        }
    }
    struct cf_buf body;
    struct cf_jsonw w;
    cf_buf_init(&body, 0);
    /* One allocation of about the final size: a secret renders to ~600 bytes plus its value. */
    size_t estimate = 1024;
    for (size_t i = 0; i < list.n; i++)
        estimate += 640 + list.items[i].value.len;
    cf_buf_reserve(&body, estimate);
    cf_jsonw_init(&w, &body);
    cf_jsonw_object_begin(&w);
    cf_jsonw_key(&w, "secrets");
    render_list(&w, &tags, scope.env.slug, &list, f.hide, tag_slugs);
    if (f.imports) {
        cf_jsonw_key(&w, "imports");
        cf_jsonw_array_begin(&w);
        for (size_t i = 0; i < imported.n; i++) {
            const struct cf_imported *imp = &imported.items[i];
            cf_jsonw_object_begin(&w);
            cf_jsonw_kstr(&w, "secretPath", imp->path);
            cf_jsonw_kstr(&w, "environment", imp->env.slug);
            cf_jsonw_kstr(&w, "folderId", imp->folder_id);
            cf_jsonw_key(&w, "secrets");
            render_list(&w, &tags, imp->env.slug, &imp->secrets, f.hide, tag_slugs);
            cf_jsonw_object_end(&w);
        }
        cf_jsonw_array_end(&w);
    }
    if (f.opts.expand)
        render_problems(&w, &problems);
    cf_jsonw_object_end(&w);
    rc = finish(&w, &body, err);
    if (rc == CF_OK && cacheable) {
        cf_listcache_put(core, cache_key, names.data, names.len, body.data, body.len);
        cf_log_debug("secrets.list: %s:%s rendered for the list cache", scope.env.slug,
                     scope.folder.path);
    }
    cf_buf_release(&names);
    if (rc == CF_OK)
        cf_req_reply_raw(req, &body);
    tag_index_release(&tags);
out:
    cf_ref_problems_release(&problems);
    cf_plain_list_release(&list);
    cf_imported_list_release(&imported);
    cf_scope_release(&scope);
    return rc;
}

/* GET one secret (route data: the flavour). */
static enum cf_rc get_secret(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const struct flavour *fl = cf_req_route_data(req);
    struct cf_core *core = cf_req_core(req);
    const char *key = cf_req_param(req, "name");
    const char *version_text = NULL;
    struct cf_scope scope;
    struct cf_plain plain = {0};
    struct cf_imported_list imported = {0};
    struct read_flags f = {0};
    long long version = 0;
    enum cf_rc rc;

    *out = NULL;
    rc = read_flags(req, fl, &f, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "version", &version_text, err);
    if (rc != CF_OK)
        return rc;
    if (version_text && !cf_parse_int64(version_text, 1, INT64_MAX, &version))
        return cf_err_field(err, CF_EVALIDATION, "version", "version: must be a positive integer");
    struct cf_refs_budget budget;
    cf_refs_budget_init(&budget);
    f.opts.budget = &budget;
    cf_req_audit(req, "secrets.read", NULL, NULL, NULL);
    rc = resolve(req, NULL, fl, CF_ACTION_READ, &scope, err);
    if (rc != CF_OK) {
        cf_req_audit_key(req, key);
        return rc;
    }
    cf_req_audit(req, "secrets.read", scope.project.id, scope.env.slug, scope.folder.path);
    /* The current version of a secret found in the folder itself, not expanded, depends on nothing
     * but the folder (core/listcache.h): served from the cache to a caller allowed to read the
     * folder, checked here on every request. */
    char cache_key[CF_LISTCACHE_KEY_MAX];
    struct cf_err bad_name;
    bool cacheable = core->lists && version == 0 && !f.opts.expand &&
                     cf_key_check(key, "secretName", &bad_name) == CF_OK &&
                     cf_listcache_one_key(cache_key, sizeof(cache_key), &scope, f.hide, key);
    if (cacheable) {
        struct cf_listcache_hit cached;
        rc = cf_authz_check(core, cf_req_principal(req), CF_ACTION_READ, scope.project.id,
                            &scope.env, scope.folder.path, err);
        bool hit = rc == CF_OK && cf_listcache_get(core, cache_key, &cached, audit_names, req);
        if (rc != CF_OK)
            cf_req_audit_key(req, key);
        if (hit) {
            cf_log_debug("secrets.read: %s:%s answered from the list cache", scope.env.slug,
                         scope.folder.path);
            cf_req_reply_leased(req, cached.body, cached.len, cached.lease);
        }
        if (rc != CF_OK || hit) {
            cf_scope_release(&scope);
            return rc;
        }
    }
    struct tag_index tags = {core, scope.project.id, false, {0}};
    const struct cf_plain *found = &plain;
    const struct cf_imported *from = NULL; /* the import that answered */
    rc = cf_secrets_get(core, cf_req_principal(req), &scope, key, version, &f.opts, &plain, err);
    if (rc == CF_ENOTFOUND && f.imports && version == 0) {
        /* Not in the folder: the imports answer, the later import winning as in `coffer run` and
         * Infisical's CLI. Their values are taken as stored: only the one answered is expanded
         * (below), so that only its own references are read. */
        struct cf_read_opts opts = {.budget = &budget};
        struct cf_err not_found = *err;
        rc = cf_secrets_list_imports(core, cf_req_principal(req), &scope, &opts, &imported, err);
        found = NULL;
        for (size_t i = imported.n; rc == CF_OK && !found && i-- > 0;) {
            for (size_t j = 0; !found && j < imported.items[i].secrets.n; j++) {
                if (strcmp(imported.items[i].secrets.items[j].meta.key, key) == 0) {
                    found = &imported.items[i].secrets.items[j];
                    from = &imported.items[i];
                }
            }
        }
        if (rc == CF_OK && !found) {
            *err = not_found;
            rc = CF_ENOTFOUND;
        }
        if (rc == CF_OK && f.opts.expand) {
            /* Read again where it lives (a borrowed copy of the scope: not released). */
            struct cf_scope source = {.project = scope.project, .env = from->env};
            cf_strlcpy(source.folder.id, from->folder_id, sizeof(source.folder.id));
            cf_strlcpy(source.folder.env_id, from->env.id, sizeof(source.folder.env_id));
            cf_strlcpy(source.folder.path, from->path, sizeof(source.folder.path));
            rc = cf_secrets_get(core, cf_req_principal(req), &source, key, 0, &f.opts, &plain, err);
            found = &plain;
        }
    }
    /* The secret answered is recorded where it lives. */
    if (rc == CF_OK && from)
        cf_req_audit_read(req, from->env.slug, found->meta.path, key);
    else
        cf_req_audit_key(req, key);
    if (rc == CF_OK)
        rc = reply_secret_cached(req, &tags, from ? from->env.slug : scope.env.slug, found, f.hide,
                                 NULL, cacheable && !from ? cache_key : NULL, err);
    tag_index_release(&tags);
    cf_imported_list_release(&imported);
    cf_plain_release(&plain);
    cf_scope_release(&scope);
    return rc;
}

/* ---- writes ---- */

/* Reads the optional fields of one change from a JSON object. tag_text receives a malloc'd JSON
 * array text of tag ids when tagIds is present (the caller frees it). */
static enum cf_rc parse_change(json_t *obj, struct tag_index *project_tags,
                               struct cf_secret_change *c, char **tag_text, struct cf_err *err)
{
    const char *value = NULL, *expires = NULL;
    enum cf_rc rc;

    rc = cf_json_string(obj, "secretValue", false, &value, err);
    if (rc != CF_OK)
        return rc;
    if (value) {
        c->has_value = true;
        c->value = value;
        c->value_len = strlen(value);
    }
    rc = cf_json_string(obj, "secretComment", false, &c->comment, err);
    if (rc != CF_OK)
        return rc;
    c->has_comment = c->comment != NULL;
    rc = cf_json_string(obj, "newSecretName", false, &c->new_key, err);
    if (rc != CF_OK)
        return rc;
    if (c->new_key && strcmp(c->new_key, c->key) == 0)
        c->new_key = NULL;
    rc =
        cf_json_bool(obj, "skipMultilineEncoding", &c->skip_multiline, &c->has_skip_multiline, err);
    if (rc != CF_OK)
        return rc;

    json_t *exp = json_object_get(obj, "expiresAt");
    if (exp) {
        c->has_expires = true;
        c->expires_at = 0;
        if (!json_is_null(exp)) {
            rc = cf_json_string(obj, "expiresAt", false, &expires, err);
            if (rc != CF_OK)
                return rc;
            if (cf_time_parse(expires, &c->expires_at, err) != CF_OK)
                return cf_err_field(err, CF_EVALIDATION, "expiresAt",
                                    "expiresAt: expected an RFC 3339 time such as "
                                    "2026-12-31T22:59:59Z");
        }
    }

    /* Rotation reminder: Infisical's two fields; null clears either. */
    json_t *days = json_object_get(obj, "secretReminderRepeatDays");
    if (days) {
        c->has_reminder_days = true;
        c->reminder_repeat_days = 0;
        if (!json_is_null(days)) {
            if (!json_is_integer(days) || json_integer_value(days) < 0 ||
                json_integer_value(days) > CF_REMINDER_DAYS_MAX)
                return cf_err_field(err, CF_EVALIDATION, "secretReminderRepeatDays",
                                    "secretReminderRepeatDays: expected a whole number of days "
                                    "from 1 to %d, or null",
                                    CF_REMINDER_DAYS_MAX);
            c->reminder_repeat_days = json_integer_value(days);
        }
    }
    json_t *note = json_object_get(obj, "secretReminderNote");
    if (note) {
        c->has_reminder_note = true;
        c->reminder_note = "";
        if (!json_is_null(note)) {
            rc = cf_json_string(obj, "secretReminderNote", false, &c->reminder_note, err);
            if (rc != CF_OK)
                return rc;
            if (strlen(c->reminder_note) > CF_REMINDER_NOTE_MAX)
                return cf_err_field(err, CF_EVALIDATION, "secretReminderNote",
                                    "secretReminderNote: at most %d bytes", CF_REMINDER_NOTE_MAX);
        }
    }

    json_t *ids = json_object_get(obj, "tagIds");
    if (ids && !json_is_null(ids)) {
        if (!json_is_array(ids))
            return cf_err_field(err, CF_EINVAL, "tagIds", "tagIds: expected an array of tag ids");
        size_t i;
        json_t *id;
        /* Read only for a change that names tags: most carry none. */
        rc = tag_index_load(project_tags, err);
        if (rc != CF_OK)
            return rc;
        json_array_foreach(ids, i, id)
        {
            if (!json_is_string(id))
                return cf_err_field(err, CF_EINVAL, "tagIds", "tagIds: expected strings");
            if (!tag_by_id(project_tags, json_string_value(id)))
                return cf_err_field(err, CF_ENOTFOUND, "tagIds",
                                    "Tag with ID '%.40s' not found in this project",
                                    json_string_value(id));
        }
        *tag_text = json_dumps(ids, JSON_COMPACT);
        if (!*tag_text)
            return cf_err_set(err, CF_ENOMEM, "out of memory");
        c->has_tags = true;
        c->tags_json = *tag_text;
    }
    return CF_OK;
}

enum write_shape { WRITE_ONE, WRITE_BATCH };

/* The 202 answer to a write held for approval: what an SDK or the CLI sees instead of the
 * secret (docs/approvals.md). */
static enum cf_rc reply_held(struct cf_req *req, const struct cf_approval_hold *hold, json_t **out,
                             struct cf_err *err)
{
    char link[CF_UUID_LEN + 64], message[CF_NAME_MAX + 200];
    snprintf(link, sizeof(link), "/api/v1/secret-approval-requests/%s", hold->request_id);
    snprintf(message, sizeof(message),
             "the change needs approval (approval policy '%s', %lld approval%s): change request "
             "%s was opened",
             hold->policy_name, (long long)hold->approvals_required,
             hold->approvals_required == 1 ? "" : "s", hold->request_id);
    *out = json_pack("{s:b, s:s, s:{s:s, s:s, s:s, s:I, s:s}}", "approvalRequired", 1, "message",
                     message, "approvalRequest", "id", hold->request_id, "status", "open", "policy",
                     hold->policy_name, "approvalsRequired", (json_int_t)hold->approvals_required,
                     "url", link);
    if (!*out)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    cf_req_set_status(req, 202);
    return CF_OK;
}

static enum cf_rc write_common(struct cf_req *req, const struct flavour *fl,
                               enum cf_change_kind kind, enum write_shape shape, json_t **out,
                               struct cf_err *err)
{
    struct cf_core *core = cf_req_core(req);
    struct cf_scope scope = {0};
    struct tag_index tags = {core, NULL, false, {0}};
    struct cf_plain_list result = {0};
    struct cf_ref_problems dangling = {0};
    struct cf_secret_change *changes = NULL;
    char **tag_texts = NULL;
    size_t n = 0;
    json_t *body = NULL, *items = NULL;
    enum cf_rc rc;
    *out = NULL; /* the body is rendered with util/jsonw and handed over raw */

    rc = cf_req_json(req, shape == WRITE_BATCH || kind != CF_CHANGE_DELETE, &body, err);
    if (rc == CF_OK)
        rc = check_type(body, req, err);
    if (rc != CF_OK)
        return rc;
    if (shape == WRITE_BATCH) {
        items = json_object_get(body, "secrets");
        if (!items)
            return cf_err_field(err, CF_EVALIDATION, "secrets", "secrets: required");
        if (!json_is_array(items))
            return cf_err_field(err, CF_EINVAL, "secrets", "secrets: expected an array");
        n = json_array_size(items);
        if (n == 0 || n > CF_BATCH_MAX)
            return cf_err_field(err, CF_EVALIDATION, "secrets", "secrets: between 1 and %d items",
                                CF_BATCH_MAX);
        if (kind == CF_CHANGE_UPDATE) {
            const char *mode = NULL;
            rc = cf_json_string(body, "mode", false, &mode, err);
            if (rc != CF_OK)
                return rc;
            if (mode && strcmp(mode, "upsert") == 0)
                kind = CF_CHANGE_UPSERT;
            else if (mode && strcmp(mode, "failOnNotFound") != 0)
                return cf_err_field(err, CF_EVALIDATION, "mode",
                                    "mode: must be 'failOnNotFound' or 'upsert'");
        }
    } else {
        n = 1;
    }
    static const char *const actions[] = {[CF_CHANGE_CREATE] = "secrets.create",
                                          [CF_CHANGE_UPDATE] = "secrets.update",
                                          [CF_CHANGE_UPSERT] = "secrets.upsert",
                                          [CF_CHANGE_DELETE] = "secrets.delete"};
    cf_req_audit(req, actions[kind], NULL, NULL, NULL);
    static const enum cf_action kind_actions[] = {[CF_CHANGE_CREATE] = CF_ACTION_CREATE,
                                                  [CF_CHANGE_UPDATE] = CF_ACTION_EDIT,
                                                  [CF_CHANGE_UPSERT] = CF_ACTION_EDIT,
                                                  [CF_CHANGE_DELETE] = CF_ACTION_DELETE};
    rc = resolve(req, body, fl, kind_actions[kind], &scope, err);
    if (rc != CF_OK)
        return rc;
    cf_req_audit(req, actions[kind], scope.project.id, scope.env.slug, scope.folder.path);
    changes = calloc(n, sizeof(*changes));
    tag_texts = calloc(n, sizeof(*tag_texts));
    if (!changes || !tag_texts) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    tags.project_id = scope.project.id;
    for (size_t i = 0; i < n; i++) {
        struct cf_secret_change *c = &changes[i];
        json_t *obj = body;
        c->kind = kind;
        if (shape == WRITE_BATCH) {
            obj = json_array_get(items, i);
            if (!json_is_object(obj)) {
                rc = cf_err_field(err, CF_EINVAL, "secrets", "secrets[%zu]: expected an object", i);
                goto out;
            }
            rc = cf_json_string(obj, "secretKey", true, &c->key, err);
        } else {
            c->key = cf_req_param(req, "name");
        }
        if (rc == CF_OK)
            cf_req_audit_key(req, c->key);
        if (rc == CF_OK && kind != CF_CHANGE_DELETE)
            rc = parse_change(obj, &tags, c, &tag_texts[i], err);
        if (rc == CF_OK && kind == CF_CHANGE_CREATE && !c->has_value)
            rc = cf_err_field(err, CF_EVALIDATION, "secretValue", "secretValue: required");
        if (rc != CF_OK)
            goto out;
    }
    /* a place an approval policy covers takes a change request instead (core/approvals.h) */
    struct cf_approval_hold hold;
    rc = cf_approvals_intercept(core, cf_req_principal(req), &scope, changes, n, &hold, err);
    if (rc == CF_OK && hold.held) {
        cf_req_audit(req, "approvals.requests.create", scope.project.id, scope.env.slug,
                     scope.folder.path);
        rc = reply_held(req, &hold, out, err);
        goto out;
    }
    if (rc == CF_OK)
        rc = cf_secrets_apply(core, cf_req_principal(req), &scope, changes, n, &result, &dangling,
                              err);
    if (rc != CF_OK)
        goto out;

    /* A caller that may write but not read gets the result without its values. */
    struct cf_err read_err;
    bool hide = cf_authz_check(core, cf_req_principal(req), CF_ACTION_READ, scope.project.id,
                               &scope.env, scope.folder.path, &read_err) != CF_OK;
    if (shape == WRITE_BATCH) {
        struct cf_buf reply_body;
        struct cf_jsonw w;
        cf_buf_init(&reply_body, 0);
        cf_jsonw_init(&w, &reply_body);
        cf_jsonw_object_begin(&w);
        cf_jsonw_key(&w, "secrets");
        render_list(&w, &tags, scope.env.slug, &result, hide, NULL);
        /* Accepted, but said: a reference to what does not exist (where the writer may read). */
        if (dangling.n)
            render_problems(&w, &dangling);
        cf_jsonw_object_end(&w);
        rc = reply(req, &w, &reply_body, err);
    } else {
        rc = reply_secret(req, &tags, scope.env.slug, &result.items[0], hide, &dangling, err);
    }
out:
    tag_index_release(&tags);
    for (size_t i = 0; tag_texts && i < n; i++)
        cf_json_free_text(tag_texts[i]);
    free(tag_texts);
    free(changes);
    cf_plain_list_release(&result);
    cf_ref_problems_release(&dangling);
    cf_scope_release(&scope);
    return rc;
}

/* What a write route does: its flavour, kind of change and shape (route data). */
struct write_route {
    const struct flavour *fl;
    enum cf_change_kind kind;
    enum write_shape shape;
};

static const struct write_route create_v3 = {&v3, CF_CHANGE_CREATE, WRITE_ONE};
static const struct write_route update_v3 = {&v3, CF_CHANGE_UPDATE, WRITE_ONE};
static const struct write_route delete_v3 = {&v3, CF_CHANGE_DELETE, WRITE_ONE};
static const struct write_route create_v4 = {&v4, CF_CHANGE_CREATE, WRITE_ONE};
static const struct write_route update_v4 = {&v4, CF_CHANGE_UPDATE, WRITE_ONE};
static const struct write_route delete_v4 = {&v4, CF_CHANGE_DELETE, WRITE_ONE};
static const struct write_route batch_create = {&v3, CF_CHANGE_CREATE, WRITE_BATCH};
static const struct write_route batch_update = {&v3, CF_CHANGE_UPDATE, WRITE_BATCH};
static const struct write_route batch_delete = {&v3, CF_CHANGE_DELETE, WRITE_BATCH};

static enum cf_rc write_secrets(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const struct write_route *w = cf_req_route_data(req);
    return write_common(req, w->fl, w->kind, w->shape, out, err);
}

/* ---- versions ---- */

static enum cf_rc versions(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_scope scope = {0};
    struct cf_plain_list list = {0};
    const char *offset_text = NULL, *limit_text = NULL;
    long long offset = 0, limit = 20;
    enum cf_rc rc;
    *out = NULL; /* the body is rendered with util/jsonw and handed over raw */

    rc = cf_req_query(req, "offset", &offset_text, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "limit", &limit_text, err);
    if (rc != CF_OK)
        return rc;
    if (offset_text && !cf_parse_int64(offset_text, 0, INT32_MAX, &offset))
        return cf_err_field(err, CF_EVALIDATION, "offset", "offset: must be 0 or more");
    if (limit_text && !cf_parse_int64(limit_text, 1, 100, &limit))
        return cf_err_field(err, CF_EVALIDATION, "limit", "limit: must be between 1 and 100");
    cf_req_audit(req, "secrets.versions", NULL, NULL, NULL);
    rc = cf_secrets_history(cf_req_core(req), cf_req_principal(req), cf_req_param(req, "secretId"),
                            &scope, &list, err);
    if (rc != CF_OK)
        return rc;
    cf_req_audit(req, "secrets.versions", scope.project.id, scope.env.slug, scope.folder.path);
    if (list.n)
        cf_req_audit_key(req, list.items[0].meta.key);
    struct tag_index tags = {cf_req_core(req), scope.project.id, false, {0}};
    struct cf_buf body;
    struct cf_jsonw w;
    cf_buf_init(&body, 0);
    cf_jsonw_init(&w, &body);
    cf_jsonw_object_begin(&w);
    cf_jsonw_key(&w, "secretVersions");
    cf_jsonw_array_begin(&w);
    for (size_t i = (size_t)offset; i < list.n && i < (size_t)(offset + limit); i++) {
        const struct cf_plain *p = &list.items[i];
        char version_id[CF_UUID_LEN + 24];
        snprintf(version_id, sizeof(version_id), "%s:%lld", p->meta.id, (long long)p->meta.version);
        cf_jsonw_object_begin(&w);
        cf_jsonw_kstr(&w, "id", version_id);
        cf_jsonw_kstr(&w, "secretId", p->meta.id);
        cf_jsonw_kint(&w, "version", p->meta.version);
        cf_jsonw_kstr(&w, "secretKey", p->meta.key);
        cf_jsonw_key(&w, "secretValue");
        cf_jsonw_string(&w, p->value.data ? p->value.data : "", p->value.len);
        cf_jsonw_kstr(&w, "secretComment", p->meta.comment ? p->meta.comment : "");
        cf_jsonw_kbool(&w, "skipMultilineEncoding", p->meta.skip_multiline);
        cf_jsonw_key(&w, "tags");
        render_tags(&w, &tags, p->meta.tags);
        cf_jsonw_ktime(&w, "expiresAt", p->meta.expires_at);
        cf_jsonw_ktime(&w, "createdAt", p->meta.updated_at);
        cf_jsonw_object_end(&w);
    }
    cf_jsonw_array_end(&w);
    cf_jsonw_object_end(&w);
    rc = reply(req, &w, &body, err);
    tag_index_release(&tags);
    cf_plain_list_release(&list);
    cf_scope_release(&scope);
    return rc;
}

static enum cf_rc rollback(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_scope scope = {0};
    struct cf_plain plain = {0};
    json_t *body = NULL;
    long long version = 0;
    bool present = false;
    enum cf_rc rc;
    *out = NULL; /* the body is rendered with util/jsonw and handed over raw */

    rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_int(body, "version", 1, INT64_MAX, &version, &present, err);
    if (rc == CF_OK && !present)
        rc = cf_err_field(err, CF_EVALIDATION, "version", "version: required");
    if (rc != CF_OK)
        return rc;
    cf_req_audit(req, "secrets.rollback", NULL, NULL, NULL);
    rc = cf_secrets_rollback(cf_req_core(req), cf_req_principal(req), cf_req_param(req, "secretId"),
                             version, &scope, &plain, err);
    if (rc != CF_OK)
        return rc;
    cf_req_audit(req, "secrets.rollback", scope.project.id, scope.env.slug, scope.folder.path);
    cf_req_audit_key(req, plain.meta.key);
    struct cf_err read_err;
    bool hide = cf_authz_check(cf_req_core(req), cf_req_principal(req), CF_ACTION_READ,
                               scope.project.id, &scope.env, scope.folder.path, &read_err) != CF_OK;
    struct tag_index tags = {cf_req_core(req), scope.project.id, false, {0}};
    rc = reply_secret(req, &tags, scope.env.slug, &plain, hide, NULL, err);
    tag_index_release(&tags);
    cf_plain_release(&plain);
    cf_scope_release(&scope);
    return rc;
}

const struct cf_route cf_routes_secrets[] = {
    {"GET", "/api/v3/secrets/raw", list_secrets, false, &v3},
    {"GET", "/api/v3/secrets/raw/:name", get_secret, false, &v3},
    {"POST", "/api/v3/secrets/raw/:name", write_secrets, false, &create_v3, true, .batch = true},
    {"PATCH", "/api/v3/secrets/raw/:name", write_secrets, false, &update_v3, true, .batch = true},
    {"DELETE", "/api/v3/secrets/raw/:name", write_secrets, false, &delete_v3, true, .batch = true},
    {"POST", "/api/v3/secrets/batch/raw", write_secrets, false, &batch_create, true, .batch = true},
    {"PATCH", "/api/v3/secrets/batch/raw", write_secrets, false, &batch_update, true,
     .batch = true},
    {"DELETE", "/api/v3/secrets/batch/raw", write_secrets, false, &batch_delete, true,
     .batch = true},
    {"GET", "/api/v4/secrets", list_secrets, false, &v4},
    {"GET", "/api/v4/secrets/:name", get_secret, false, &v4},
    {"POST", "/api/v4/secrets/:name", write_secrets, false, &create_v4, true, .batch = true},
    {"PATCH", "/api/v4/secrets/:name", write_secrets, false, &update_v4, true, .batch = true},
    {"DELETE", "/api/v4/secrets/:name", write_secrets, false, &delete_v4, true, .batch = true},
    {"GET", "/api/v1/secret/:secretId/secret-versions", versions, false},
    {"POST", "/api/v1/secret/:secretId/rollback", rollback, false, NULL, true},
    {NULL, NULL, NULL, false, NULL},
};
