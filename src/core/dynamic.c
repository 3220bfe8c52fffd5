/* Dynamic secrets (core/dynamic.h): their management at a place, the provider lookup and the
 * checks of their settings; the leases are core/leases.c. */
#include "core/dynamic.h"

#include <stdlib.h>
#include <string.h>

#include "core/connections.h"
#include "core/leases.h"
#include "core/names.h"
#include "provider/dynamic.h"
#include "util/str.h"
#include "util/wipemem.h"
#include "util/time.h"
#include "util/banned.h"

void cf_dynamic_view_list_release(struct cf_dynamic_view_list *l)
{
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

const struct cf_dynamic_ops *cf_dynamic_provider(struct cf_core *core, const char *type)
{
    if (!type)
        return NULL;
    return core->dynamic_find ? core->dynamic_find(type) : cf_dynamic_find(type);
}

static enum cf_rc view_of(struct cf_core *core, const struct cf_dynamic_secret *ds,
                          struct cf_dynamic_view *out, struct cf_err *err)
{
    struct cf_project project = {0};
    struct cf_env env = {0};
    memset(out, 0, sizeof(*out));
    out->ds = *ds;
    enum cf_rc rc = cf_store_project_get(core->store, ds->project_id, &project, err);
    if (rc == CF_OK)
        rc = cf_store_env_get(core->store, ds->project_id, ds->env_id, &env, err);
    if (rc == CF_OK) {
        cf_strlcpy(out->project_slug, project.slug, sizeof(out->project_slug));
        cf_strlcpy(out->env_slug, env.slug, sizeof(out->env_slug));
    }
    cf_project_release(&project);
    return rc;
}

/* Resolves where's place for who and action (CF_ACTION_LEASE, CF_ACTION_ADMIN, or CF_ACTION_READ:
 * leasing or administering, whichever who may). */
static enum cf_rc place_of(struct cf_core *core, const struct cf_principal *who,
                           const struct cf_dynamic_where *where, enum cf_action action,
                           struct cf_scope *scope, struct cf_err *err)
{
    memset(scope, 0, sizeof(*scope));
    if (!where->project || !where->project[0])
        return cf_err_field(err, CF_EVALIDATION, "projectSlug", "projectSlug is required");
    if (!where->environment || !where->environment[0])
        return cf_err_field(err, CF_EVALIDATION, "environmentSlug", "environmentSlug is required");
    enum cf_action asked = action == CF_ACTION_READ ? CF_ACTION_LEASE : action;
    const char *path = where->path && where->path[0] ? where->path : "/";
    enum cf_rc rc =
        cf_scope_resolve(core, who, asked, where->project, where->environment, path, scope, err);
    if (rc == CF_OK)
        rc = cf_authz_check(core, who, asked, scope->project.id, &scope->env, scope->folder.path,
                            err);
    if (rc == CF_EFORBIDDEN && action == CF_ACTION_READ) {
        struct cf_err ignored;
        if (cf_authz_check(core, who, CF_ACTION_ADMIN, scope->project.id, &scope->env,
                           scope->folder.path, &ignored) == CF_OK)
            rc = err->rc = CF_OK;
    }
    if (rc != CF_OK)
        cf_scope_release(scope);
    return rc;
}

static enum cf_rc check_name(const char *name, const char *field, struct cf_err *err)
{
    if (!name || !name[0])
        return cf_err_field(err, CF_EVALIDATION, field, "%s is required", field);
    /* the API's lease routes sit beside the dynamic secrets' names */
    if (strcmp(name, "leases") == 0)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: 'leases' is reserved", field);
    return cf_slug_check(name, field, err);
}

/* Checks the TTLs of ds (default within max, both within the limits). */
static enum cf_rc check_ttls(const struct cf_dynamic_secret *ds, struct cf_err *err)
{
    if (ds->max_ttl_ms < CF_DYNAMIC_TTL_MIN_MS || ds->max_ttl_ms > CF_DYNAMIC_TTL_MAX_MS)
        return cf_err_field(err, CF_EVALIDATION, "maxTTL", "maxTTL must be between 1s and 366d");
    if (ds->default_ttl_ms < CF_DYNAMIC_TTL_MIN_MS || ds->default_ttl_ms > CF_DYNAMIC_TTL_MAX_MS)
        return cf_err_field(err, CF_EVALIDATION, "defaultTTL",
                            "defaultTTL must be between 1s and 366d");
    if (ds->default_ttl_ms > ds->max_ttl_ms)
        return cf_err_field(err, CF_EVALIDATION, "defaultTTL",
                            "defaultTTL must not be longer than maxTTL");
    return CF_OK;
}

/* params as compact JSON text into ds->params, checked by ops. */
static enum cf_rc set_params(const struct cf_dynamic_ops *ops, const json_t *params,
                             struct cf_dynamic_secret *ds, struct cf_err *err)
{
    enum cf_rc rc = ops->config_check(params, err);
    if (rc != CF_OK)
        return rc;
    char *text = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    if (strlen(text) > CF_DYNAMIC_PARAMS_MAX)
        rc = cf_err_field(err, CF_EVALIDATION, "provider.inputs",
                          "provider.inputs: at most %d bytes as JSON", CF_DYNAMIC_PARAMS_MAX);
    else
        cf_strlcpy(ds->params, text, sizeof(ds->params));
    cf_json_free_text(text);
    return rc;
}

enum cf_rc cf_dynamic_create(struct cf_core *core, const struct cf_principal *who,
                             const struct cf_dynamic_where *where,
                             const struct cf_dynamic_spec *spec, struct cf_dynamic_view *out,
                             struct cf_err *err)
{
    struct cf_scope scope = {0};
    struct cf_connection conn;
    struct cf_dynamic_secret *ds = calloc(1, sizeof(*ds));
    memset(out, 0, sizeof(*out));
    if (!ds)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    const struct cf_dynamic_ops *ops = cf_dynamic_provider(core, spec->type);
    /* A connection is organisation-wide: aiming it is the admin's, as for syncs and rotations. */
    enum cf_rc rc = cf_authz_admin(who, "create dynamic secrets (they use app connections)", err);
    if (rc == CF_OK)
        rc = check_name(where->name, "name", err);
    if (rc == CF_OK && !ops)
        rc = cf_err_field(err, CF_EVALIDATION, "provider.type",
                          "provider.type: unknown dynamic secret provider '%.40s'",
                          spec->type ? spec->type : "");
    if (rc == CF_OK && !spec->params)
        rc = cf_err_field(err, CF_EVALIDATION, "provider.inputs", "provider.inputs is required");
    if (rc == CF_OK)
        rc = place_of(core, who, where, CF_ACTION_ADMIN, &scope, err);
    if (rc == CF_OK && !ops->connection_app && spec->connection_id && spec->connection_id[0])
        rc = cf_err_field(err, CF_EVALIDATION, "provider.inputs.connectionId",
                          "provider.inputs.connectionId: provider '%s' takes no connection",
                          ops->type);
    if (rc == CF_OK && ops->connection_app &&
        (!spec->connection_id || !cf_uuid_valid(spec->connection_id)))
        rc = cf_err_field(err, CF_EVALIDATION, "provider.inputs.connectionId",
                          "provider.inputs.connectionId: the id of a %s app connection is required",
                          ops->connection_app);
    if (rc == CF_OK && ops->connection_app) {
        rc = cf_connection_lookup(core, spec->connection_id, &conn, err);
        if (rc == CF_ENOTFOUND)
            rc = cf_err_field(err, CF_EVALIDATION, "provider.inputs.connectionId",
                              "App connection with ID '%s' not found", spec->connection_id);
        else if (rc == CF_OK && strcmp(conn.app, ops->connection_app) != 0)
            rc = cf_err_field(err, CF_EVALIDATION, "provider.inputs.connectionId",
                              "provider.inputs.connectionId: connection '%s' is a %s connection, "
                              "not %s",
                              conn.name, conn.app, ops->connection_app);
    }
    if (rc != CF_OK)
        goto out;
    cf_uuid_new(ds->id);
    cf_strlcpy(ds->project_id, scope.project.id, sizeof(ds->project_id));
    cf_strlcpy(ds->env_id, scope.env.id, sizeof(ds->env_id));
    cf_strlcpy(ds->folder_path, scope.folder.path, sizeof(ds->folder_path));
    cf_strlcpy(ds->name, where->name, sizeof(ds->name));
    cf_strlcpy(ds->type, ops->type, sizeof(ds->type));
    if (ops->connection_app)
        cf_strlcpy(ds->connection_id, spec->connection_id, sizeof(ds->connection_id));
    ds->default_ttl_ms =
        spec->default_ttl_ms >= 0 ? spec->default_ttl_ms : CF_DYNAMIC_TTL_DEFAULT_MS;
    ds->max_ttl_ms = spec->max_ttl_ms >= 0 ? spec->max_ttl_ms : ds->default_ttl_ms;
    if (spec->default_ttl_ms < 0 && spec->max_ttl_ms >= 0 && ds->max_ttl_ms < ds->default_ttl_ms)
        ds->default_ttl_ms = ds->max_ttl_ms;
    ds->created_at = ds->updated_at = cf_now_ms();
    rc = check_ttls(ds, err);
    if (rc == CF_OK)
        rc = set_params(ops, spec->params, ds, err);
    if (rc == CF_OK)
        rc = cf_store_dynamic_create(core->store, ds, err);
    if (rc == CF_OK)
        rc = view_of(core, ds, out, err);
out:
    cf_scope_release(&scope);
    free(ds);
    return rc;
}

enum cf_rc cf_dynamic_list(struct cf_core *core, const struct cf_principal *who,
                           const struct cf_dynamic_where *where, struct cf_dynamic_view_list *out,
                           struct cf_err *err)
{
    struct cf_scope scope;
    struct cf_dynamic_secret_list list = {0};
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = place_of(core, who, where, CF_ACTION_READ, &scope, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_store_dynamic_list(core->store, scope.project.id, scope.env.id, scope.folder.path,
                               &list, err);
    if (rc == CF_OK && list.n) {
        out->items = calloc(list.n, sizeof(*out->items));
        if (!out->items)
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    for (size_t i = 0; rc == CF_OK && i < list.n; i++) {
        out->items[i].ds = list.items[i];
        cf_strlcpy(out->items[i].project_slug, scope.project.slug,
                   sizeof(out->items[i].project_slug));
        cf_strlcpy(out->items[i].env_slug, scope.env.slug, sizeof(out->items[i].env_slug));
        out->n++;
    }
    if (rc != CF_OK)
        cf_dynamic_view_list_release(out);
    cf_dynamic_secret_list_release(&list);
    cf_scope_release(&scope);
    return rc;
}

enum cf_rc cf_dynamic_get(struct cf_core *core, const struct cf_principal *who,
                          const struct cf_dynamic_where *where, enum cf_action action,
                          struct cf_dynamic_view *out, struct cf_err *err)
{
    struct cf_scope scope;
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = check_name(where->name, "name", err);
    if (rc == CF_OK)
        rc = place_of(core, who, where, action, &scope, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_store_dynamic_find(core->store, scope.project.id, scope.env.id, scope.folder.path,
                               where->name, &out->ds, err);
    if (rc == CF_OK) {
        cf_strlcpy(out->project_slug, scope.project.slug, sizeof(out->project_slug));
        cf_strlcpy(out->env_slug, scope.env.slug, sizeof(out->env_slug));
    } else {
        memset(out, 0, sizeof(*out));
    }
    cf_scope_release(&scope);
    return rc;
}

enum cf_rc cf_dynamic_get_by_id(struct cf_core *core, const char *id, struct cf_dynamic_view *out,
                                struct cf_err *err)
{
    struct cf_dynamic_secret ds;
    enum cf_rc rc = cf_store_dynamic_get(core->store, id, &ds, err);
    if (rc == CF_OK)
        rc = view_of(core, &ds, out, err);
    return rc;
}

enum cf_rc cf_dynamic_update(struct cf_core *core, const struct cf_principal *who,
                             const struct cf_dynamic_where *where,
                             const struct cf_dynamic_spec *change, struct cf_dynamic_view *out,
                             struct cf_err *err)
{
    struct cf_dynamic_view *current = calloc(1, sizeof(*current));
    if (!current)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = cf_dynamic_get(core, who, where, CF_ACTION_ADMIN, current, err);
    struct cf_dynamic_secret *ds = &current->ds;
    const struct cf_dynamic_ops *ops = rc == CF_OK ? cf_dynamic_provider(core, ds->type) : NULL;
    if (rc == CF_OK && !ops)
        rc = cf_err_set(err, CF_EINTERNAL, "dynamic secret '%s' has an unknown provider '%s'",
                        ds->name, ds->type);
    if (rc == CF_OK &&
        ((change->type && strcmp(change->type, ds->type) != 0) ||
         (change->connection_id && strcmp(change->connection_id, ds->connection_id) != 0)))
        rc = cf_err_field(err, CF_EVALIDATION, "provider",
                          "the provider and the connection of a dynamic secret cannot change: "
                          "create another one");
    if (rc == CF_OK && change->new_name) {
        rc = check_name(change->new_name, "newName", err);
        if (rc == CF_OK)
            cf_strlcpy(ds->name, change->new_name, sizeof(ds->name));
    }
    if (rc == CF_OK && change->default_ttl_ms >= 0)
        ds->default_ttl_ms = change->default_ttl_ms;
    if (rc == CF_OK && change->max_ttl_ms >= 0)
        ds->max_ttl_ms = change->max_ttl_ms;
    if (rc == CF_OK)
        rc = check_ttls(ds, err);
    if (rc == CF_OK && change->params)
        rc = set_params(ops, change->params, ds, err);
    if (rc == CF_OK) {
        ds->updated_at = cf_now_ms();
        rc = cf_store_dynamic_update(core->store, ds, err);
    }
    if (rc == CF_OK)
        *out = *current;
    free(current);
    return rc;
}

enum cf_rc cf_dynamic_delete(struct cf_core *core, const struct cf_principal *who,
                             const struct cf_dynamic_where *where, const char *owner,
                             struct cf_dynamic_view *out, struct cf_err *err)
{
    struct cf_lease_list leases = {0};
    enum cf_rc rc = cf_dynamic_get(core, who, where, CF_ACTION_ADMIN, out, err);
    if (rc == CF_OK)
        rc = cf_store_lease_list(core->store, out->ds.id, NULL, true, CF_LEASE_LIST_MAX, &leases,
                                 err);
    for (size_t i = 0; rc == CF_OK && i < leases.n; i++) {
        struct cf_lease claimed;
        bool got = false;
        rc = cf_store_lease_claim(core->store, leases.items[i].id, owner, cf_now_ms(),
                                  CF_LEASE_CLAIM_MS, true, &got, &claimed, err);
        if (rc == CF_OK && !got)
            rc = cf_err_set(err, CF_ECONFLICT,
                            "lease '%s' of dynamic secret '%s' is being revoked: try again",
                            leases.items[i].id, out->ds.name);
        if (rc == CF_OK)
            rc = cf_lease_revoke_claimed(core, &claimed, owner, who, err);
        if (rc != CF_OK && rc != CF_ECONFLICT && rc != CF_ESTORE)
            rc = cf_err_set(err, CF_ECONFLICT,
                            "dynamic secret '%s' was kept: lease '%s' could not be revoked (%s); "
                            "the revocation is retried",
                            out->ds.name, leases.items[i].id, err->msg);
    }
    if (rc == CF_OK)
        rc = cf_store_dynamic_delete(core->store, out->ds.id, err);
    cf_lease_list_release(&leases);
    if (rc != CF_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}
