/* Secrets endpoints: Infisical's v3 "raw" API (what the SDK uses), the v4 reads and writes (what the Infisical
 * CLI uses), batches, versions and rollback. Handlers parse and validate, call core/secrets, and render
 * Infisical's secret shape (plus Coffer's expiresAt). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/http.h"
#include "core/secrets.h"
#include "util/str.h"
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

/* The project's tags as {id: {id, slug, name, color}}, loaded once per request when a secret has tags. */
struct tag_index {
    struct cf_core *core;
    const char *project_id;
    json_t *by_id;
};

static json_t *render_tags(struct tag_index *index, const char *tags_json)
{
    json_t *out = json_array();
    if (!tags_json || strcmp(tags_json, "[]") == 0) /* the common case, on the hot path */
        return out;
    json_t *ids = json_loads(tags_json, 0, NULL);
    if (!json_is_array(ids) || json_array_size(ids) == 0)
        goto out;
    if (!index->by_id) {
        struct cf_tag_list tags = {0};
        struct cf_err err;
        index->by_id = json_object();
        if (cf_secrets_tags(index->core, index->project_id, &tags, &err) == CF_OK) {
            for (size_t i = 0; i < tags.n; i++) {
                const struct cf_tag *t = &tags.items[i];
                json_object_set_new(index->by_id, t->id,
                                    json_pack("{s:s, s:s, s:s, s:s}", "id", t->id, "slug", t->slug,
                                              "name", t->name, "color", t->color));
            }
        }
        cf_tag_list_release(&tags);
    }
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id) {
        json_t *tag = json_is_string(id) ? json_object_get(index->by_id, json_string_value(id)) : NULL;
        if (tag)
            json_array_append(out, tag);
    }
out:
    json_decref(ids);
    return out;
}

static json_t *render_secret(struct tag_index *tags, const char *project_id, const char *env_slug,
                             const struct cf_plain *p, bool hide)
{
    const struct cf_secret *m = &p->meta;
    const char *value = hide || !p->value.data ? "" : p->value.data;
    size_t value_len = hide || !p->value.data ? 0 : p->value.len;
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s#, s:s, s:b, s:b, s:n, s:n, s:[],"
                     " s:o, s:o, s:b, s:n, s:n, s:o, s:o}",
                     "id", m->id, "_id", m->id, "workspace", project_id, "environment", env_slug,
                     "secretPath", m->path, "version", (json_int_t)m->version, "type", "shared",
                     "secretKey", m->key, "secretValue", value, value_len, "secretComment",
                     m->comment ? m->comment : "", "skipMultilineEncoding", m->skip_multiline,
                     "secretValueHidden", hide, "secretReminderNote", "secretReminderRepeatDays",
                     "secretMetadata", "tags", render_tags(tags, m->tags), "expiresAt",
                     cf_json_time(m->expires_at), "isRotatedSecret", false, "rotationId", "actor",
                     "createdAt", cf_json_time(m->created_at), "updatedAt",
                     cf_json_time(m->updated_at));
}

static json_t *render_list(struct tag_index *tags, const char *project_id, const char *env_slug,
                           const struct cf_plain_list *list, bool hide)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < list->n; i++) {
        json_t *s = render_secret(tags, project_id, env_slug, &list->items[i], hide);
        if (!s || json_array_append_new(arr, s) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static enum cf_rc finish(json_t *body, const char *what, json_t **out, struct cf_err *err)
{
    if (!body)
        return cf_err_set(err, CF_EINTERNAL, "cannot render %s", what);
    *out = body;
    return CF_OK;
}

/* ---- request parsing ---- */

static enum cf_rc resolve(struct cf_req *req, json_t *body, const struct flavour *fl,
                          struct cf_scope *scope, struct cf_err *err)
{
    const char *project, *env, *path;
    enum cf_rc rc = cf_req_field(req, body, fl->project_fields, true, &project, err);
    if (rc == CF_OK)
        rc = cf_req_field(req, body, env_fields, true, &env, err);
    if (rc == CF_OK)
        rc = cf_req_field(req, body, path_fields, false, &path, err);
    if (rc != CF_OK)
        return rc;
    return cf_scope_resolve(cf_req_core(req), project, env, path ? path : "/", scope, err);
}

/* Only shared secrets exist; Infisical answers personal ones from machine identities with 400 too. */
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
    /* Whichever spelling the client sent wins; v3 clients send include_imports. */
    f->imports = snake ? imports_snake : imports_camel;
    f->hide = !view;
    return rc;
}

/* Keeps the secrets that carry at least one of the comma-separated tag slugs. */
static void filter_by_tags(json_t *secrets, const char *slugs)
{
    if (!slugs || !*slugs)
        return;
    for (size_t i = json_array_size(secrets); i-- > 0;) {
        json_t *tags = json_object_get(json_array_get(secrets, i), "tags");
        bool keep = false;
        size_t j;
        json_t *tag;
        json_array_foreach(tags, j, tag) {
            const char *slug = json_string_value(json_object_get(tag, "slug"));
            size_t n = slug ? strlen(slug) : 0;
            for (const char *p = slugs; slug && *p;) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t)(comma - p) : strlen(p);
                if (len == n && strncmp(p, slug, n) == 0)
                    keep = true;
                p += len + (comma ? 1 : 0);
            }
        }
        if (!keep)
            json_array_remove(secrets, i);
    }
}

/* ---- list and get ---- */

static enum cf_rc list_common(struct cf_req *req, const struct flavour *fl, json_t **out,
                              struct cf_err *err)
{
    struct cf_core *core = cf_req_core(req);
    const struct cf_principal *who = cf_req_principal(req);
    struct cf_scope scope;
    struct cf_plain_list list = {0};
    struct cf_imported_list imported = {0};
    struct read_flags f = {0};
    const char *tag_slugs = NULL;
    json_t *body = NULL;
    enum cf_rc rc;

    rc = read_flags(req, fl, &f, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "tagSlugs", &tag_slugs, err);
    if (rc != CF_OK)
        return rc;
    rc = resolve(req, NULL, fl, &scope, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_secrets_list(core, who, &scope, &f.opts, &list, err);
    if (rc == CF_OK && f.imports) {
        struct cf_read_opts import_opts = {.recursive = false, .expand = f.opts.expand};
        rc = cf_secrets_list_imports(core, who, &scope, &import_opts, &imported, err);
    }
    if (rc != CF_OK)
        goto out;

    struct tag_index tags = {core, scope.project.id, NULL};
    json_t *secrets = render_list(&tags, scope.project.id, scope.env.slug, &list, f.hide);
    filter_by_tags(secrets, tag_slugs);
    body = json_pack("{s:o*}", "secrets", secrets);
    if (body && f.imports) {
        json_t *imports = json_array();
        for (size_t i = 0; i < imported.n; i++) {
            const struct cf_imported *imp = &imported.items[i];
            json_t *s = render_list(&tags, scope.project.id, imp->env.slug, &imp->secrets, f.hide);
            filter_by_tags(s, tag_slugs);
            json_array_append_new(imports, json_pack("{s:s, s:s, s:s, s:o*}", "secretPath",
                                                     imp->path, "environment", imp->env.slug,
                                                     "folderId", imp->folder_id, "secrets", s));
        }
        json_object_set_new(body, "imports", imports);
    }
    json_decref(tags.by_id);
    rc = finish(body, "the secrets", out, err);
out:
    cf_plain_list_release(&list);
    cf_imported_list_release(&imported);
    cf_scope_release(&scope);
    return rc;
}

static enum cf_rc list_v3(struct cf_req *req, json_t **out, struct cf_err *err)
{
    return list_common(req, &v3, out, err);
}

static enum cf_rc list_v4(struct cf_req *req, json_t **out, struct cf_err *err)
{
    return list_common(req, &v4, out, err);
}

/* Looks key up among the folder's imports (first import wins), for a get with imports. */
static enum cf_rc get_from_imports(struct cf_req *req, const struct cf_scope *scope,
                                   const struct read_flags *f, const char *key,
                                   struct tag_index *tags, json_t **secret, struct cf_err *err)
{
    struct cf_imported_list imported = {0};
    struct cf_read_opts opts = {.expand = f->opts.expand};
    enum cf_rc rc = cf_secrets_list_imports(cf_req_core(req), cf_req_principal(req), scope, &opts,
                                            &imported, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_err_set(err, CF_ENOTFOUND, "Secret with name '%s' not found", key);
    for (size_t i = 0; i < imported.n && rc != CF_OK; i++) {
        const struct cf_imported *imp = &imported.items[i];
        for (size_t j = 0; j < imp->secrets.n; j++) {
            if (strcmp(imp->secrets.items[j].meta.key, key) == 0) {
                *secret = render_secret(tags, scope->project.id, imp->env.slug,
                                        &imp->secrets.items[j], f->hide);
                rc = CF_OK;
                break;
            }
        }
    }
    cf_imported_list_release(&imported);
    return rc;
}

static enum cf_rc get_common(struct cf_req *req, const struct flavour *fl, json_t **out,
                             struct cf_err *err)
{
    struct cf_core *core = cf_req_core(req);
    const char *key = cf_req_param(req, "name");
    const char *version_text = NULL;
    struct cf_scope scope;
    struct cf_plain plain = {0};
    struct read_flags f = {0};
    long long version = 0;
    json_t *secret = NULL;
    enum cf_rc rc;

    rc = read_flags(req, fl, &f, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "version", &version_text, err);
    if (rc != CF_OK)
        return rc;
    if (version_text && !cf_parse_int64(version_text, 1, INT64_MAX, &version))
        return cf_err_field(err, CF_EVALIDATION, "version", "version: must be a positive integer");
    rc = resolve(req, NULL, fl, &scope, err);
    if (rc != CF_OK)
        return rc;
    struct tag_index tags = {core, scope.project.id, NULL};
    rc = cf_secrets_get(core, cf_req_principal(req), &scope, key, version, &f.opts, &plain, err);
    if (rc == CF_OK)
        secret = render_secret(&tags, scope.project.id, scope.env.slug, &plain, f.hide);
    else if (rc == CF_ENOTFOUND && f.imports && version == 0)
        rc = get_from_imports(req, &scope, &f, key, &tags, &secret, err);
    if (rc == CF_OK)
        rc = finish(json_pack("{s:o*}", "secret", secret), "the secret", out, err);
    json_decref(tags.by_id);
    cf_plain_release(&plain);
    cf_scope_release(&scope);
    return rc;
}

static enum cf_rc get_v3(struct cf_req *req, json_t **out, struct cf_err *err)
{
    return get_common(req, &v3, out, err);
}

static enum cf_rc get_v4(struct cf_req *req, json_t **out, struct cf_err *err)
{
    return get_common(req, &v4, out, err);
}

/* ---- writes ---- */

/* Reads the optional fields of one change from a JSON object. tag_text receives a malloc'd JSON array text of
 * tag ids when tagIds is present (the caller frees it). */
static enum cf_rc parse_change(json_t *obj, const struct cf_tag_list *project_tags,
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
    rc = cf_json_bool(obj, "skipMultilineEncoding", &c->skip_multiline, &c->has_skip_multiline, err);
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

    json_t *ids = json_object_get(obj, "tagIds");
    if (ids && !json_is_null(ids)) {
        if (!json_is_array(ids))
            return cf_err_field(err, CF_EINVAL, "tagIds", "tagIds: expected an array of tag ids");
        size_t i;
        json_t *id;
        json_array_foreach(ids, i, id) {
            bool known = false;
            for (size_t t = 0; json_is_string(id) && t < project_tags->n; t++)
                known = known || strcmp(project_tags->items[t].id, json_string_value(id)) == 0;
            if (!json_is_string(id))
                return cf_err_field(err, CF_EINVAL, "tagIds", "tagIds: expected strings");
            if (!known)
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

static enum cf_rc write_common(struct cf_req *req, const struct flavour *fl, enum cf_change_kind kind,
                               enum write_shape shape, json_t **out, struct cf_err *err)
{
    struct cf_core *core = cf_req_core(req);
    struct cf_scope scope = {0};
    struct cf_tag_list project_tags = {0};
    struct cf_plain_list result = {0};
    struct cf_secret_change *changes = NULL;
    char **tag_texts = NULL;
    size_t n = 0;
    json_t *body = NULL, *items = NULL;
    enum cf_rc rc;

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
            return cf_err_field(err, CF_EVALIDATION, "secrets",
                                "secrets: between 1 and %d items", CF_BATCH_MAX);
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
    rc = resolve(req, body, fl, &scope, err);
    if (rc != CF_OK)
        return rc;
    changes = calloc(n, sizeof(*changes));
    tag_texts = calloc(n, sizeof(*tag_texts));
    if (!changes || !tag_texts) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    rc = cf_secrets_tags(core, scope.project.id, &project_tags, err);
    if (rc != CF_OK)
        goto out;
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
        if (rc == CF_OK && kind != CF_CHANGE_DELETE)
            rc = parse_change(obj, &project_tags, c, &tag_texts[i], err);
        if (rc == CF_OK && kind == CF_CHANGE_CREATE && !c->has_value)
            rc = cf_err_field(err, CF_EVALIDATION, "secretValue", "secretValue: required");
        if (rc != CF_OK)
            goto out;
    }
    rc = cf_secrets_apply(core, cf_req_principal(req), &scope, changes, n, &result, err);
    if (rc != CF_OK)
        goto out;

    struct tag_index tags = {core, scope.project.id, NULL};
    if (shape == WRITE_BATCH) {
        body = json_pack("{s:o*}", "secrets",
                         render_list(&tags, scope.project.id, scope.env.slug, &result, false));
    } else {
        body = json_pack("{s:o*}", "secret",
                         render_secret(&tags, scope.project.id, scope.env.slug, &result.items[0],
                                       false));
    }
    json_decref(tags.by_id);
    rc = finish(body, "the secrets", out, err);
out:
    for (size_t i = 0; tag_texts && i < n; i++)
        cf_json_free_text(tag_texts[i]);
    free(tag_texts);
    free(changes);
    cf_plain_list_release(&result);
    cf_tag_list_release(&project_tags);
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

    rc = cf_req_query(req, "offset", &offset_text, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "limit", &limit_text, err);
    if (rc != CF_OK)
        return rc;
    if (offset_text && !cf_parse_int64(offset_text, 0, INT32_MAX, &offset))
        return cf_err_field(err, CF_EVALIDATION, "offset", "offset: must be 0 or more");
    if (limit_text && !cf_parse_int64(limit_text, 1, 100, &limit))
        return cf_err_field(err, CF_EVALIDATION, "limit", "limit: must be between 1 and 100");
    rc = cf_secrets_history(cf_req_core(req), cf_req_principal(req), cf_req_param(req, "secretId"),
                            &scope, &list, err);
    if (rc != CF_OK)
        return rc;
    struct tag_index tags = {cf_req_core(req), scope.project.id, NULL};
    json_t *arr = json_array();
    for (size_t i = (size_t)offset; arr && i < list.n && i < (size_t)(offset + limit); i++) {
        const struct cf_plain *p = &list.items[i];
        char version_id[CF_UUID_LEN + 24];
        snprintf(version_id, sizeof(version_id), "%s:%lld", p->meta.id, (long long)p->meta.version);
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:I, s:s, s:s#, s:s, s:b, s:o, s:o, s:o}", "id", version_id, "secretId", p->meta.id, "version", (json_int_t)p->meta.version,
                           "secretKey", p->meta.key, "secretValue",
                           p->value.data ? p->value.data : "", p->value.len, "secretComment",
                           p->meta.comment ? p->meta.comment : "", "skipMultilineEncoding",
                           p->meta.skip_multiline, "tags", render_tags(&tags, p->meta.tags),
                           "expiresAt", cf_json_time(p->meta.expires_at), "createdAt",
                           cf_json_time(p->meta.updated_at)));
    }
    json_decref(tags.by_id);
    rc = finish(json_pack("{s:o*}", "secretVersions", arr), "the versions", out, err);
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

    rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_int(body, "version", 1, INT64_MAX, &version, &present, err);
    if (rc == CF_OK && !present)
        rc = cf_err_field(err, CF_EVALIDATION, "version", "version: required");
    if (rc != CF_OK)
        return rc;
    rc = cf_secrets_rollback(cf_req_core(req), cf_req_principal(req), cf_req_param(req, "secretId"),
                             version, &scope, &plain, err);
    if (rc != CF_OK)
        return rc;
    struct tag_index tags = {cf_req_core(req), scope.project.id, NULL};
    rc = finish(json_pack("{s:o*}", "secret",
                          render_secret(&tags, scope.project.id, scope.env.slug, &plain, false)),
                "the secret", out, err);
    json_decref(tags.by_id);
    cf_plain_release(&plain);
    cf_scope_release(&scope);
    return rc;
}

const struct cf_route cf_routes_secrets[] = {
    {"GET", "/api/v3/secrets/raw", list_v3, false},
    {"GET", "/api/v3/secrets/raw/:name", get_v3, false},
    {"POST", "/api/v3/secrets/raw/:name", write_secrets, false, &create_v3},
    {"PATCH", "/api/v3/secrets/raw/:name", write_secrets, false, &update_v3},
    {"DELETE", "/api/v3/secrets/raw/:name", write_secrets, false, &delete_v3},
    {"POST", "/api/v3/secrets/batch/raw", write_secrets, false, &batch_create},
    {"PATCH", "/api/v3/secrets/batch/raw", write_secrets, false, &batch_update},
    {"DELETE", "/api/v3/secrets/batch/raw", write_secrets, false, &batch_delete},
    {"GET", "/api/v4/secrets", list_v4, false},
    {"GET", "/api/v4/secrets/:name", get_v4, false},
    {"POST", "/api/v4/secrets/:name", write_secrets, false, &create_v4},
    {"PATCH", "/api/v4/secrets/:name", write_secrets, false, &update_v4},
    {"DELETE", "/api/v4/secrets/:name", write_secrets, false, &delete_v4},
    {"GET", "/api/v1/secret/:secretId/secret-versions", versions, false},
    {"POST", "/api/v1/secret/:secretId/rollback", rollback, false},
    {NULL, NULL, NULL, false, NULL},
};
