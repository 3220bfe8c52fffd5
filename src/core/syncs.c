/* Secret syncs: management (authorization, validation, views) and the run of one sync (see
 * core/syncs.h and docs/syncs.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/auditlog.h"
#include "core/channels.h"
#include "core/connections.h"
#include "core/names.h"
#include "core/secrets.h"
#include "core/syncs.h"
#include "provider/provider.h"
#include "util/log.h"
#include "util/str.h"
#include "util/time.h"
#include "util/wipemem.h"
#include "util/banned.h"

#define KEY_PLACEHOLDER "{{secretKey}}"
#define DEFAULT_SCHEMA KEY_PLACEHOLDER
#define CLAIM_LEASE_MS (60 * 1000)
#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS (5 * 60 * 1000)
#define DRIFT_SLACK_MS 2000
#define DUE_SCAN 32

/* Who a run reads and writes the source as: the sync was made by someone allowed to read it all. */
static const struct cf_principal engine = {.kind = CF_PRINCIPAL_ADMIN, .name = "secret-sync"};

void cf_sync_view_list_release(struct cf_sync_view_list *l)
{
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* ---- options ---- */

struct sync_options {
    char key_schema[256];
    char initial[40]; /* initialSyncBehavior */
    bool disable_deletion;
};

enum cf_rc cf_sync_key_apply(const char *schema, const char *key, char *out, size_t size,
                             struct cf_err *err)
{
    const char *at = strstr(schema, KEY_PLACEHOLDER);
    if (!at)
        return cf_err_field(err, CF_EVALIDATION, "syncOptions.keySchema",
                            "syncOptions.keySchema: '%.100s' has no {{secretKey}}", schema);
    int len = snprintf(out, size, "%.*s%s%s", (int)(at - schema), schema, key,
                       at + strlen(KEY_PLACEHOLDER));
    if (len < 0 || (size_t)len >= size)
        return cf_err_set(err, CF_EVALIDATION,
                          "the name made of '%.100s' by the key schema is too long", key);
    return CF_OK;
}

static enum cf_rc options_parse(const json_t *o, struct sync_options *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    cf_strlcpy(out->key_schema, DEFAULT_SCHEMA, sizeof(out->key_schema));
    cf_strlcpy(out->initial, "overwrite-destination", sizeof(out->initial));
    if (!o || json_is_null(o))
        return CF_OK;
    if (!json_is_object(o))
        return cf_err_field(err, CF_EINVAL, "syncOptions", "syncOptions must be an object");
    const json_t *v = json_object_get(o, "keySchema");
    if (v && !json_is_null(v)) {
        const char *s = json_string_value(v);
        if (!s || strlen(s) >= sizeof(out->key_schema))
            return cf_err_field(err, CF_EVALIDATION, "syncOptions.keySchema",
                                "syncOptions.keySchema must be a string of at most %zu bytes",
                                sizeof(out->key_schema) - 1);
        const char *at = strstr(s, KEY_PLACEHOLDER);
        if (!at || strstr(at + 1, KEY_PLACEHOLDER))
            return cf_err_field(err, CF_EVALIDATION, "syncOptions.keySchema",
                                "syncOptions.keySchema: '%.100s' must contain {{secretKey}} once",
                                s);
        if (strchr(s, '{') != at || strchr(at + strlen(KEY_PLACEHOLDER), '{'))
            return cf_err_field(err, CF_EVALIDATION, "syncOptions.keySchema",
                                "syncOptions.keySchema: '%.100s' may hold no other {{...}} than "
                                "{{secretKey}}",
                                s);
        cf_strlcpy(out->key_schema, s, sizeof(out->key_schema));
    }
    v = json_object_get(o, "initialSyncBehavior");
    if (v && !json_is_null(v)) {
        const char *s = json_string_value(v);
        if (!s || (strcmp(s, "overwrite-destination") != 0 &&
                   strcmp(s, "import-prioritize-source") != 0 &&
                   strcmp(s, "import-prioritize-destination") != 0))
            return cf_err_field(err, CF_EVALIDATION, "syncOptions.initialSyncBehavior",
                                "syncOptions.initialSyncBehavior must be overwrite-destination, "
                                "import-prioritize-source or import-prioritize-destination");
        cf_strlcpy(out->initial, s, sizeof(out->initial));
    }
    v = json_object_get(o, "disableSecretDeletion");
    if (v && !json_is_null(v)) {
        if (!json_is_boolean(v))
            return cf_err_field(err, CF_EINVAL, "syncOptions.disableSecretDeletion",
                                "syncOptions.disableSecretDeletion must be a boolean");
        out->disable_deletion = json_is_true(v);
    }
    return CF_OK;
}

/* The options as stored: every field explicit, so that the API shows what applies. */
static enum cf_rc options_text(const struct sync_options *o, char *out, size_t size,
                               struct cf_err *err)
{
    json_t *j = json_pack("{s:s, s:s, s:b}", "keySchema", o->key_schema, "initialSyncBehavior",
                          o->initial, "disableSecretDeletion", o->disable_deletion);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    enum cf_rc rc = CF_OK;
    if (!text)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    else if (!cf_strlcpy(out, text, size))
        rc = cf_err_set(err, CF_EVALIDATION, "syncOptions too large");
    cf_json_free_text(text);
    return rc;
}

/* The connection app a destination needs; NULL: none (a file). */
static const char *app_of(const char *destination)
{
    if (strcmp(destination, "file") == 0)
        return NULL;
    return destination; /* "azure-devops", "azure-key-vault", "github": same slug */
}

/* ---- views and authorization ---- */

static enum cf_rc view_of(struct cf_core *core, const struct cf_sync *s, struct cf_sync_view *out,
                          struct cf_err *err)
{
    struct cf_env env = {0};
    memset(out, 0, sizeof(*out));
    out->sync = *s;
    enum cf_rc rc = cf_store_env_get(core->store, s->project_id, s->env_id, &env, err);
    if (rc == CF_OK) {
        cf_strlcpy(out->env_slug, env.slug, sizeof(out->env_slug));
        cf_strlcpy(out->env_name, env.name, sizeof(out->env_name));
    }
    if (rc == CF_OK && s->connection_id[0]) {
        struct cf_connection conn;
        struct cf_err ignored;
        /* A connection deleted under a sync leaves the sync showing its id alone. */
        if (cf_connection_lookup(core, s->connection_id, &conn, &ignored) == CF_OK) {
            cf_strlcpy(out->connection_app, conn.app, sizeof(out->connection_app));
            cf_strlcpy(out->connection_name, conn.name, sizeof(out->connection_name));
        }
    }
    return rc;
}

/* The sync id of destination (NULL: any), for who, an administrator of its project. A sync in a
 * project who may not administer is answered as missing. */
static enum cf_rc load_sync(struct cf_core *core, const struct cf_principal *who,
                            const char *destination, const char *id, struct cf_sync *out,
                            struct cf_err *err)
{
    if (!id || !cf_uuid_valid(id))
        return cf_err_field(err, CF_EVALIDATION, "syncId", "syncId: '%.40s' is not a UUID",
                            id ? id : "");
    enum cf_rc rc = cf_store_sync_get(core->store, id, out, err);
    if (rc == CF_OK && destination && strcmp(out->destination, destination) != 0)
        rc = CF_ENOTFOUND;
    if (rc == CF_OK) {
        struct cf_err denied;
        if (cf_authz_check(core, who, CF_ACTION_ADMIN, out->project_id, NULL, NULL, &denied) !=
            CF_OK)
            rc = CF_ENOTFOUND;
    }
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "Secret sync with ID '%s' not found", id);
    return rc;
}

/* Checks and fills the source, connection and destination fields of s from spec (fields left NULL
 * in spec keep s's). */
static enum cf_rc apply_spec(struct cf_core *core, const struct cf_principal *who,
                             const struct cf_sync_spec *spec, const struct cf_dest_ops *ops,
                             struct cf_sync *s, struct cf_err *err)
{
    struct cf_store *st = core->store;
    enum cf_rc rc = CF_OK;
    if (spec->name) {
        rc = cf_text_check(spec->name, CF_NAME_MAX, true, "name", err);
        if (rc == CF_OK && !cf_strlcpy(s->name, spec->name, sizeof(s->name)))
            rc = cf_err_field(err, CF_EVALIDATION, "name", "name is too long");
    }
    if (rc == CF_OK && spec->description) {
        rc = cf_text_check(spec->description, CF_SYNC_DESCRIPTION_MAX, false, "description", err);
        if (rc == CF_OK)
            cf_strlcpy(s->description, spec->description, sizeof(s->description));
    }
    if (rc == CF_OK && spec->environment) {
        struct cf_env env;
        rc = cf_store_env_get(st, s->project_id, spec->environment, &env, err);
        if (rc == CF_ENOTFOUND)
            rc = cf_err_field(err, CF_EVALIDATION, "environment",
                              "Environment with slug '%.64s' not found", spec->environment);
        if (rc == CF_OK)
            cf_strlcpy(s->env_id, env.id, sizeof(s->env_id));
    }
    if (rc == CF_OK && spec->secret_path)
        rc = cf_path_normalize(spec->secret_path, s->folder_path, "secretPath", err);
    if (rc == CF_OK && (spec->environment || spec->secret_path)) {
        struct cf_folder folder;
        rc = cf_store_folder_get(st, s->env_id, s->folder_path, &folder, err);
        if (rc == CF_ENOTFOUND)
            rc = cf_err_field(err, CF_EVALIDATION, "secretPath",
                              "Folder with path '%.200s' not found", s->folder_path);
    }
    if (rc == CF_OK && spec->connection_id)
        cf_strlcpy(s->connection_id, spec->connection_id, sizeof(s->connection_id));
    const char *app = app_of(s->destination);
    if (rc == CF_OK && !app && s->connection_id[0])
        rc = cf_err_field(err, CF_EVALIDATION, "connectionId",
                          "connectionId: a %s destination takes no connection", s->destination);
    if (rc == CF_OK && app && !s->connection_id[0])
        rc = cf_err_field(err, CF_EVALIDATION, "connectionId",
                          "connectionId is required for a %s destination", s->destination);
    /* A connection is organisation-wide: it reaches variable groups, vaults and repositories
     * beyond the source project, so aiming it (or changing where a sync that uses it writes, or
     * what it imports) is the admin's, not a project administrator's. */
    if (rc == CF_OK && app && !cf_principal_is_admin(who))
        rc = cf_err_set(err, CF_EFORBIDDEN,
                        "only the admin or an org admin may create or change a sync that uses an "
                        "app connection: "
                        "connections are organisation-wide and reach beyond this project");
    if (rc == CF_OK && app) {
        struct cf_connection conn;
        if (!cf_uuid_valid(s->connection_id))
            rc = cf_err_field(err, CF_EVALIDATION, "connectionId",
                              "connectionId: '%.40s' is not a UUID", s->connection_id);
        if (rc == CF_OK) {
            rc = cf_connection_lookup(core, s->connection_id, &conn, err);
            if (rc == CF_ENOTFOUND)
                rc = cf_err_field(err, CF_EVALIDATION, "connectionId",
                                  "App connection with ID '%s' not found", s->connection_id);
        }
        if (rc == CF_OK && strcmp(conn.app, app) != 0)
            rc = cf_err_field(err, CF_EVALIDATION, "connectionId",
                              "connectionId: connection '%s' is a %s connection, not %s", conn.name,
                              conn.app, app);
    }
    if (rc == CF_OK && spec->destination_config) {
        if (!json_is_object(spec->destination_config))
            return cf_err_field(err, CF_EINVAL, "destinationConfig",
                                "destinationConfig must be an object");
        rc = ops->config_check(spec->destination_config, err);
        char *text = rc == CF_OK ? json_dumps(spec->destination_config, JSON_COMPACT) : NULL;
        if (rc == CF_OK && !text)
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        if (rc == CF_OK && !cf_strlcpy(s->destination_config, text, sizeof(s->destination_config)))
            rc = cf_err_field(err, CF_EVALIDATION, "destinationConfig",
                              "destinationConfig is larger than %d bytes", CF_SYNC_CONFIG_MAX);
        cf_json_free_text(text);
    }
    if (rc == CF_OK && spec->sync_options) {
        struct sync_options o;
        rc = options_parse(spec->sync_options, &o, err);
        if (rc == CF_OK)
            rc = options_text(&o, s->sync_options, sizeof(s->sync_options), err);
    }
    if (rc == CF_OK && spec->auto_sync >= 0)
        s->auto_sync = spec->auto_sync != 0;
    return rc;
}

static void wake_now(void *arg)
{
    struct cf_core *core = arg;
    if (core->sync_wake)
        core->sync_wake(core->sync_wake_ctx);
}

void cf_syncs_wake(struct cf_core *core)
{
    /* Inside a shared write transaction the worker would read the store before the change is
     * there: it is woken once the transaction commits. */
    if (core->store)
        cf_store_after_commit(core->store, wake_now, core);
    else
        wake_now(core);
}

/* out's sync read again from the store (after a write), with its names. */
static enum cf_rc reload(struct cf_core *core, struct cf_sync_view *out, struct cf_err *err)
{
    struct cf_sync *s = malloc(sizeof(*s));
    if (!s)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    enum cf_rc rc = cf_store_sync_get(core->store, out->sync.id, s, err);
    if (rc == CF_OK)
        rc = view_of(core, s, out, err);
    free(s);
    return rc;
}

enum cf_rc cf_syncs_create(struct cf_core *core, const struct cf_principal *who,
                           const char *destination, const struct cf_sync_spec *spec,
                           struct cf_sync_view *out, struct cf_err *err)
{
    struct cf_project project;
    struct cf_sync *s = calloc(1, sizeof(*s));
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    if (!s)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    const struct cf_dest_ops *ops = destination ? cf_dest_find(destination) : NULL;
    if (!ops) {
        free(s);
        return cf_err_set(err, CF_ENOTFOUND, "Unknown secret sync destination '%.40s'",
                          destination ? destination : "");
    }
    rc = cf_project_for_admin(core, who, spec->project, &project, err);
    if (rc != CF_OK) {
        free(s);
        return rc;
    }
    if (!spec->name)
        rc = cf_err_field(err, CF_EVALIDATION, "name", "name is required");
    else if (!spec->environment)
        rc = cf_err_field(err, CF_EVALIDATION, "environment", "environment is required");
    else if (!spec->secret_path)
        rc = cf_err_field(err, CF_EVALIDATION, "secretPath", "secretPath is required");
    else if (!spec->destination_config)
        rc =
            cf_err_field(err, CF_EVALIDATION, "destinationConfig", "destinationConfig is required");
    if (rc == CF_OK) {
        cf_uuid_new(s->id);
        cf_strlcpy(s->project_id, project.id, sizeof(s->project_id));
        cf_strlcpy(s->destination, ops->destination, sizeof(s->destination));
        s->auto_sync = true;
        s->created_at = s->updated_at = cf_now_ms();
        struct cf_sync_spec full = *spec;
        json_t *defaults = json_object();
        if (!full.sync_options)
            full.sync_options = defaults; /* stored with every default explicit */
        rc = apply_spec(core, who, &full, ops, s, err);
        json_decref(defaults);
    }
    if (rc == CF_OK)
        rc = cf_store_sync_create(core->store, s, err);
    if (rc == CF_OK)
        rc = cf_store_sync_get(core->store, s->id, s, err);
    if (rc == CF_OK)
        rc = view_of(core, s, out, err);
    if (rc == CF_OK)
        cf_syncs_wake(core);
    cf_project_release(&project);
    free(s);
    return rc;
}

enum cf_rc cf_syncs_list(struct cf_core *core, const struct cf_principal *who, const char *project,
                         const char *destination, struct cf_sync_view_list *out, struct cf_err *err)
{
    struct cf_project found;
    struct cf_sync_list rows = {0};
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = cf_project_for_admin(core, who, project, &found, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_store_sync_list(core->store, found.id, &rows, err);
    if (rc == CF_OK && rows.n) {
        out->items = calloc(rows.n, sizeof(*out->items));
        if (!out->items)
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    for (size_t i = 0; rc == CF_OK && i < rows.n; i++) {
        if (destination && strcmp(rows.items[i].destination, destination) != 0)
            continue;
        rc = view_of(core, &rows.items[i], &out->items[out->n], err);
        if (rc == CF_OK)
            out->n++;
    }
    if (rc != CF_OK)
        cf_sync_view_list_release(out);
    cf_sync_list_release(&rows);
    cf_project_release(&found);
    return rc;
}

enum cf_rc cf_syncs_get(struct cf_core *core, const struct cf_principal *who,
                        const char *destination, const char *id, struct cf_sync_view *out,
                        struct cf_err *err)
{
    struct cf_sync *s = calloc(1, sizeof(*s));
    memset(out, 0, sizeof(*out));
    if (!s)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    enum cf_rc rc = load_sync(core, who, destination, id, s, err);
    if (rc == CF_OK)
        rc = view_of(core, s, out, err);
    free(s);
    return rc;
}

enum cf_rc cf_syncs_update(struct cf_core *core, const struct cf_principal *who,
                           const char *destination, const char *id,
                           const struct cf_sync_spec *change, struct cf_sync_view *out,
                           struct cf_err *err)
{
    struct cf_sync *s = &out->sync;
    enum cf_rc rc = cf_syncs_get(core, who, destination, id, out, err);
    const struct cf_dest_ops *ops = rc == CF_OK ? cf_dest_find(s->destination) : NULL;
    if (rc == CF_OK && !ops)
        rc = cf_err_set(err, CF_EINTERNAL, "destination '%s' is not built in", s->destination);
    if (rc == CF_OK) {
        struct cf_sync_spec spec = *change;
        spec.project = NULL;
        rc = apply_spec(core, who, &spec, ops, s, err);
    }
    if (rc == CF_OK) {
        s->updated_at = cf_now_ms();
        rc = cf_store_sync_update(core->store, s, err);
    }
    if (rc == CF_OK)
        rc = reload(core, out, err);
    if (rc == CF_OK)
        cf_syncs_wake(core);
    return rc;
}

enum cf_rc cf_syncs_delete(struct cf_core *core, const struct cf_principal *who,
                           const char *destination, const char *id, struct cf_sync_view *out,
                           struct cf_err *err)
{
    enum cf_rc rc = cf_syncs_get(core, who, destination, id, out, err);
    if (rc == CF_OK)
        rc = cf_store_sync_delete(core->store, out->sync.id, err);
    return rc;
}

static enum cf_rc execute(struct cf_core *core, const char *id, const char *owner, bool force,
                          bool *ran, struct cf_err *err);

enum cf_rc cf_syncs_trigger(struct cf_core *core, const struct cf_principal *who,
                            const char *destination, const char *id, const char *owner,
                            struct cf_sync_view *out, struct cf_err *err)
{
    bool ran = false;
    enum cf_rc rc = cf_syncs_get(core, who, destination, id, out, err);
    if (rc == CF_OK)
        rc = cf_store_sync_mark_one(core->store, out->sync.id, err);
    if (rc == CF_OK)
        rc = execute(core, out->sync.id, owner, true, &ran, err);
    /* a run holds it: this server's worker picks up what remains pending */
    if (rc == CF_OK && !ran)
        cf_syncs_wake(core);
    if (rc == CF_OK)
        rc = reload(core, out, err);
    return rc;
}

void cf_syncs_changed(struct cf_core *core, const char *project_id)
{
    struct cf_err err;
    int64_t marked = 0;
    cf_err_clear(&err);
    if (cf_store_syncs_mark(core->store, project_id, &marked, &err) != CF_OK)
        cf_log(CF_LOG_ERROR, "secret syncs of project %s not marked pending: %s", project_id,
               err.msg);
    else if (marked > 0)
        cf_syncs_wake(core);
}

void cf_syncs_recover(struct cf_core *core)
{
    struct cf_err err;
    int64_t marked = 0;
    cf_err_clear(&err);
    if (cf_store_syncs_mark_all(core->store, &marked, &err) != CF_OK)
        cf_log(CF_LOG_ERROR, "secret syncs not marked pending at start: %s", err.msg);
    else if (marked > 0)
        cf_syncs_wake(core);
}

/* ---- a run ---- */

/* One secret of the source as a reader sees it. */
struct src_item {
    const char *key;
    const struct cf_plain *plain;
    const char *env_id;
    const char *path;
    char name[CF_KEY_MAX + 1]; /* at the destination */
};

struct run {
    struct cf_core *core;
    struct cf_sync *sync;
    const struct cf_dest_ops *ops;
    struct sync_options options;
    json_t *config;
    struct cf_scope scope;
    struct cf_plain_list own;
    struct cf_imported_list imported;
    struct src_item *items;
    size_t n;
    struct cf_conn_opened opened;
    const struct cf_provider_conn *conn;
    struct cf_dest_list dest;
    struct cf_sync_item_list before; /* what the last successful run pushed */
    uint8_t hash_key[32];
    json_t *drift; /* [{"name", "change"}] */
    int64_t pushed, deleted;
    bool force;     /* asked for ("run now"): write even when nothing changed */
    bool unchanged; /* the destination already held what this run would write: nothing written */
    const char *cause;
};

static void run_release(struct run *r)
{
    cf_dest_list_release(&r->dest);
    cf_connection_close(&r->opened);
    free(r->items);
    r->items = NULL;
    r->n = 0;
    cf_plain_list_release(&r->own);
    cf_imported_list_release(&r->imported);
    cf_scope_release(&r->scope);
    cf_sync_item_list_release(&r->before);
    json_decref(r->config);
    r->config = NULL;
    json_decref(r->drift);
    r->drift = NULL;
    sodium_memzero(r->hash_key, sizeof(r->hash_key));
}

static void value_hash(const struct run *r, const char *value, size_t len, char out[65])
{
    uint8_t h[32];
    crypto_generichash(h, sizeof(h), (const unsigned char *)value, len, r->hash_key,
                       sizeof(r->hash_key));
    sodium_bin2hex(out, 65, h, sizeof(h));
}

/* Reads the source (folder, then its imports: the folder's own keys win, a later import over an
 * earlier one, as every Coffer reader merges them) and maps each key to its destination name. */
static enum cf_rc read_source(struct run *r, struct cf_err *err)
{
    struct cf_core *core = r->core;
    struct cf_ref_problems problems = {0};
    struct cf_read_opts opts = {.expand = true, .problems = &problems};
    json_t *names = NULL;
    enum cf_rc rc;

    cf_plain_list_release(&r->own);
    cf_imported_list_release(&r->imported);
    free(r->items);
    r->items = NULL;
    r->n = 0;
    rc = cf_secrets_list(core, &engine, &r->scope, &opts, &r->own, err);
    if (rc == CF_OK)
        rc = cf_secrets_list_imports(core, &engine, &r->scope, &opts, &r->imported, err);
    /* What was read leaves Coffer: only once every commit it may include is on disk (a secret
     * write answers before its sync, store.h "Commits synced after the fact"). */
    if (rc == CF_OK)
        rc = cf_store_sync_barrier(core->store, err);
    /* Nothing half-expanded leaves Coffer: a reference that cannot be followed stops the run. */
    if (rc == CF_OK && problems.n > 0) {
        r->cause = "source";
        rc = cf_err_set(err, CF_EVALIDATION, "%s", problems.items[0].reason);
    }
    size_t total = r->own.n;
    for (size_t i = 0; rc == CF_OK && i < r->imported.n; i++)
        total += r->imported.items[i].secrets.n;
    if (rc == CF_OK && total) {
        r->items = calloc(total, sizeof(*r->items));
        if (!r->items)
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    json_t *seen = rc == CF_OK ? json_object() : NULL;
    names = rc == CF_OK ? json_object() : NULL;
    if (rc == CF_OK && (!seen || !names))
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    /* i over the own folder (SIZE_MAX) then the imports from the last to the first. */
    for (size_t k = r->imported.n + 1; rc == CF_OK && k-- > 0;) {
        const struct cf_plain_list *list =
            k == r->imported.n ? &r->own : &r->imported.items[k].secrets;
        const char *env_id = k == r->imported.n ? r->scope.env.id : r->imported.items[k].env.id;
        for (size_t i = 0; rc == CF_OK && i < list->n; i++) {
            const struct cf_plain *p = &list->items[i];
            if (json_object_get(seen, p->meta.key))
                continue;
            json_object_set_new(seen, p->meta.key, json_true());
            struct src_item *it = &r->items[r->n];
            it->key = p->meta.key;
            it->plain = p;
            it->env_id = env_id;
            it->path = p->meta.path;
            char schemed[CF_KEY_MAX + 1];
            rc = cf_sync_key_apply(r->options.key_schema, p->meta.key, schemed, sizeof(schemed),
                                   err);
            if (rc == CF_OK && r->ops->map_name)
                rc = r->ops->map_name(schemed, it->name, sizeof(it->name), err);
            else if (rc == CF_OK)
                cf_strlcpy(it->name, schemed, sizeof(it->name));
            if (rc != CF_OK) {
                r->cause = "name";
                break;
            }
            json_t *other = json_object_get(names, it->name);
            if (other) {
                r->cause = "collision";
                rc = cf_err_set(err, CF_EVALIDATION,
                                "keys '%s' and '%s' both map to '%s' at the %s destination",
                                json_string_value(other), p->meta.key, it->name,
                                r->sync->destination);
                break;
            }
            json_object_set_new(names, it->name, json_string(p->meta.key));
            r->n++;
        }
    }
    json_decref(seen);
    json_decref(names);
    cf_ref_problems_release(&problems);
    return rc;
}

static const struct cf_dest_entry *dest_entry(const struct run *r, const char *name)
{
    for (size_t i = 0; i < r->dest.n; i++) {
        if (strcmp(r->dest.items[i].name, name) == 0)
            return &r->dest.items[i];
    }
    return NULL;
}

static const struct src_item *source_item(const struct run *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->items[i].name, name) == 0)
            return &r->items[i];
    }
    return NULL;
}

/* The Coffer key a destination name stands for under the key schema; false when it does not fit
 * the schema or is no valid key. */
static bool key_of_name(const struct run *r, const char *name, char key[CF_KEY_MAX + 1])
{
    const char *schema = r->options.key_schema;
    const char *at = strstr(schema, KEY_PLACEHOLDER);
    size_t prefix = (size_t)(at - schema), suffix = strlen(at + strlen(KEY_PLACEHOLDER));
    size_t len = strlen(name);
    struct cf_err ignored;
    if (len <= prefix + suffix || strncmp(name, schema, prefix) != 0 ||
        strcmp(name + len - suffix, at + strlen(KEY_PLACEHOLDER)) != 0 ||
        len - prefix - suffix > CF_KEY_MAX)
        return false;
    memcpy(key, name + prefix, len - prefix - suffix);
    key[len - prefix - suffix] = '\0';
    return cf_key_check(key, "key", &ignored) == CF_OK;
}

/* The initial behaviours that import: values the destination holds come into the source folder
 * (all of them, or only those the source lacks), then the source is read again. */
static enum cf_rc import_destination(struct run *r, bool destination_wins, struct cf_err *err)
{
    struct cf_secret_change *changes = NULL;
    struct cf_plain_list written = {0};
    char(*keys)[CF_KEY_MAX + 1] = NULL;
    size_t n = 0;
    enum cf_rc rc = CF_OK;

    if (r->dest.n == 0)
        return CF_OK;
    changes = calloc(r->dest.n, sizeof(*changes));
    keys = calloc(r->dest.n, sizeof(*keys));
    if (!changes || !keys) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < r->dest.n; i++) {
        const struct cf_dest_entry *e = &r->dest.items[i];
        if (!e->value) {
            r->cause = "initial-sync";
            rc = cf_err_set(err, CF_EVALIDATION,
                            "the %s destination cannot be read ('%s' has no readable value): use "
                            "initialSyncBehavior overwrite-destination",
                            r->sync->destination, e->name);
            goto out;
        }
        const struct src_item *have = source_item(r, e->name);
        if (have && !destination_wins)
            continue;
        /* Only the source folder's own secrets are replaced; an imported one is left alone. */
        if (have && strcmp(have->env_id, r->scope.env.id) == 0 &&
            strcmp(have->path, r->scope.folder.path) != 0)
            continue;
        if (!key_of_name(r, e->name, keys[n]))
            continue;
        changes[n].kind = CF_CHANGE_UPSERT;
        changes[n].key = keys[n];
        changes[n].has_value = true;
        changes[n].value = e->value;
        changes[n].value_len = strlen(e->value);
        n++;
    }
    if (n)
        rc = cf_secrets_apply(r->core, &engine, &r->scope, changes, n, &written, NULL, err);
    if (rc == CF_OK && n)
        rc = read_source(r, err);
out:
    cf_plain_list_release(&written);
    free(changes);
    free(keys);
    return rc;
}

/* Notes a drifted name (what changed: "missing", "value", "updated"). */
static void drift_add(struct run *r, const char *name, const char *how)
{
    json_array_append_new(r->drift, json_pack("{s:s, s:s}", "name", name, "change", how));
}

/* Compares what the destination holds with what the last successful run pushed. */
static void detect_drift(struct run *r)
{
    for (size_t i = 0; i < r->before.n; i++) {
        const struct cf_sync_item_row *was = &r->before.items[i];
        const struct cf_dest_entry *now = dest_entry(r, was->name);
        if (!now) {
            drift_add(r, was->name, "missing");
            continue;
        }
        if (now->value) {
            char h[65];
            value_hash(r, now->value, strlen(now->value), h);
            if (sodium_memcmp(h, was->value_hash, 64) != 0)
                drift_add(r, was->name, "value");
        } else if (now->updated_at && now->updated_at > was->pushed_at + DRIFT_SLACK_MS) {
            drift_add(r, was->name, "updated");
        }
    }
}

/* A system that refuses a credential rarely says why (Azure DevOps answers a bare 401 to an expired
 * PAT): when the connection's recorded expiry has passed, the message says so. Returns rc. */
static enum cf_rc refused_expired(const struct run *r, enum cf_rc rc, struct cf_err *err)
{
    char when[CF_TIME_RFC3339_LEN];
    int64_t expires_at = r->opened.expires_at;
    if (rc != CF_EUNAUTH || expires_at <= 0 || expires_at > cf_now_ms())
        return rc;
    size_t len = strlen(err->msg);
    snprintf(err->msg + len, sizeof(err->msg) - len,
             ": the credential of connection '%s' expired at %s", r->opened.name,
             cf_time_format(expires_at, when));
    return rc;
}

/* Whether rows (what this run would push) are exactly what the last successful run pushed: the
 * same names from the same secrets at the same versions with the same keyed hashes. Then the
 * destination, found undrifted, already holds them all; the rows keep their earlier push times
 * so that a later change at the destination is still seen as drift. */
static bool same_as_before(const struct run *r, struct cf_sync_item_row *rows)
{
    if (r->before.n != r->n)
        return false;
    for (size_t i = 0; i < r->n; i++) {
        const struct cf_sync_item_row *was = NULL;
        for (size_t j = 0; j < r->before.n && !was; j++) {
            if (strcmp(r->before.items[j].name, rows[i].name) == 0)
                was = &r->before.items[j];
        }
        if (!was || was->version != rows[i].version ||
            strcmp(was->secret_env_id, rows[i].secret_env_id) != 0 ||
            strcmp(was->secret_path, rows[i].secret_path) != 0 ||
            strcmp(was->secret_key, rows[i].secret_key) != 0 ||
            sodium_memcmp(was->value_hash, rows[i].value_hash, 64) != 0)
            return false;
    }
    for (size_t i = 0; i < r->n; i++) {
        for (size_t j = 0; j < r->before.n; j++) {
            if (strcmp(r->before.items[j].name, rows[i].name) == 0)
                rows[i].pushed_at = r->before.items[j].pushed_at;
        }
    }
    return true;
}

static enum cf_rc run_sync(struct run *r, struct cf_sync_item_row **rows, struct cf_err *err)
{
    struct cf_core *core = r->core;
    struct cf_sync *s = r->sync;
    struct cf_sync_item *push = NULL;
    const char **remove = NULL;
    size_t n_remove = 0;
    char location[CF_PATH_MAX + 2 * CF_SLUG_MAX + 8];
    enum cf_rc rc;

    *rows = NULL;
    r->ops = cf_dest_find(s->destination);
    if (!r->ops) {
        r->cause = "destination";
        return cf_err_set(err, CF_EINTERNAL, "destination '%s' is not built in", s->destination);
    }
    json_t *options = json_loads(s->sync_options, 0, NULL);
    rc = options_parse(options, &r->options, err);
    json_decref(options);
    r->config = json_loads(s->destination_config, 0, NULL);
    if (rc == CF_OK && !r->config)
        rc = cf_err_set(err, CF_ESTORE, "the stored destinationConfig does not parse");
    if (rc == CF_OK)
        rc = cf_scope_resolve(core, &engine, CF_ACTION_READ, s->project_id, s->env_id,
                              s->folder_path, &r->scope, err);
    if (rc != CF_OK) {
        r->cause = "source";
        return rc;
    }
    cf_keyring_derive(core->keyring, "secret-sync-value-hash", r->hash_key);
    rc = read_source(r, err);
    if (rc == CF_OK)
        rc = cf_store_sync_items(core->store, s->id, NULL, &r->before, err);
    if (rc == CF_OK && s->connection_id[0]) {
        rc = cf_connection_open(core, s->connection_id, &r->opened, err);
        if (rc != CF_OK)
            r->cause = "connection";
        r->conn = &r->opened.conn;
    }
    if (rc != CF_OK)
        return rc;
    rc = r->ops->list(r->conn, r->config, &r->dest, err);
    if (rc == CF_ENOTFOUND) { /* the destination object is created by the push */
        cf_dest_list_release(&r->dest);
        rc = CF_OK;
    }
    if (rc != CF_OK)
        return refused_expired(r, rc, err);
    detect_drift(r);

    bool first = !s->initial_done;
    if (first && strcmp(r->options.initial, "import-prioritize-source") == 0)
        rc = import_destination(r, false, err);
    else if (first && strcmp(r->options.initial, "import-prioritize-destination") == 0)
        rc = import_destination(r, true, err);
    if (rc != CF_OK)
        return rc;

    /* Deletions: on the first run with overwrite-destination, everything the destination holds
     * that the source lacks; afterwards, what this sync pushed and the source no longer has. */
    if (!r->options.disable_deletion) {
        size_t cap = r->dest.n + r->before.n;
        remove = cap ? calloc(cap, sizeof(*remove)) : NULL;
        if (cap && !remove)
            return cf_err_set(err, CF_ENOMEM, "out of memory");
        if (first && strcmp(r->options.initial, "overwrite-destination") == 0) {
            for (size_t i = 0; i < r->dest.n; i++) {
                if (!source_item(r, r->dest.items[i].name))
                    remove[n_remove++] = r->dest.items[i].name;
            }
        } else {
            for (size_t i = 0; i < r->before.n; i++) {
                const char *name = r->before.items[i].name;
                if (!source_item(r, name) && dest_entry(r, name))
                    remove[n_remove++] = name;
            }
        }
    }
    push = r->n ? calloc(r->n, sizeof(*push)) : NULL;
    *rows = r->n ? calloc(r->n, sizeof(**rows)) : NULL;
    if (r->n && (!push || !*rows)) {
        free(remove);
        free(push);
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    int64_t now = cf_now_ms();
    for (size_t i = 0; i < r->n; i++) {
        const struct src_item *it = &r->items[i];
        push[i].name = it->name;
        push[i].key = it->key;
        push[i].value = it->plain->value.data ? (const char *)it->plain->value.data : "";
        push[i].value_len = it->plain->value.len;
        push[i].expires_at = it->plain->meta.expires_at;
        push[i].version = it->plain->meta.version;
        struct cf_sync_item_row *row = &(*rows)[i];
        cf_strlcpy(row->name, it->name, sizeof(row->name));
        cf_strlcpy(row->secret_env_id, it->env_id, sizeof(row->secret_env_id));
        cf_strlcpy(row->secret_path, it->path, sizeof(row->secret_path));
        cf_strlcpy(row->secret_key, it->key, sizeof(row->secret_key));
        row->version = it->plain->meta.version;
        row->pushed_at = now;
        value_hash(r, push[i].value, push[i].value_len, row->value_hash);
    }
    snprintf(location, sizeof(location), "%s/%s%s", r->scope.project.slug, r->scope.env.slug,
             r->scope.folder.path);
    for (size_t i = 0; i < r->n; i++)
        push[i].location = location;
    if (!first && !r->force && n_remove == 0 && json_array_size(r->drift) == 0 &&
        same_as_before(r, *rows)) {
        r->unchanged = true;
    } else {
        rc = refused_expired(r, r->ops->push(r->conn, r->config, push, r->n, remove, n_remove, err),
                             err);
        if (rc == CF_OK) {
            r->pushed = (int64_t)r->n;
            r->deleted = (int64_t)n_remove;
        }
    }
    free(push);
    free(remove);
    return rc;
}

/* Tells the project's channels (and the server-wide ones) of a sync's new failure, once per
 * distinct error: the notice's key holds the error's hash, and the store claims each notice once
 * (see notices in store.h). */
static void notify_failure(struct cf_core *core, const struct cf_sync *s, const char *error,
                           const char *hash)
{
    char key[CF_UUID_LEN + 96], message[CF_NOTICE_MESSAGE_MAX + 1];
    snprintf(key, sizeof(key), "sync:%s:%.16s", s->id, hash);
    snprintf(message, sizeof(message), "Secret sync '%s' (%s) failed: %s", s->name, s->destination,
             error);
    json_t *item = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kind", "secret-sync", "syncId",
                             s->id, "name", s->name, "destination", s->destination, "projectId",
                             s->project_id, "error", error);
    char *text = item ? json_dumps(item, JSON_COMPACT) : NULL;
    json_decref(item);
    cf_channels_alert(core, s->project_id, key, "sync-failed", message, text);
    cf_json_free_text(text);
}

/* Records one run in the audit log (docs/audit.md: "secret-syncs.run"): the sync, its destination,
 * what was written and deleted, the outcome and, for a failure, its cause and message (which never
 * hold a value). */
static void audit_run(struct cf_core *core, const struct run *r, const char *cause,
                      const char *message)
{
    const struct cf_sync *s = r->sync;
    struct cf_err err;
    if (!core->audit)
        return;
    struct cf_audit_event *e = calloc(1, sizeof(*e));
    if (!e)
        return;
    cf_err_clear(&err);
    cf_strlcpy(e->actor_kind, "system", sizeof(e->actor_kind));
    cf_strlcpy(e->actor_name, "sync engine", sizeof(e->actor_name));
    cf_strlcpy(e->action, "secret-syncs.run", sizeof(e->action));
    cf_strlcpy(e->project_id, s->project_id, sizeof(e->project_id));
    cf_strlcpy(e->environment, r->scope.env.slug, sizeof(e->environment));
    snprintf(e->path, sizeof(e->path), "/api/v1/secret-syncs/%s/%s", s->destination, s->id);
    cf_strlcpy(e->keys, s->name, sizeof(e->keys));
    if (message) {
        cf_strlcpy(e->result, "failed", sizeof(e->result));
        snprintf(e->reason, sizeof(e->reason), "%s: pushed 0, deleted 0; %s: %s", s->destination,
                 cause, message);
    } else {
        cf_strlcpy(e->result, "ok", sizeof(e->result));
        snprintf(e->reason, sizeof(e->reason), "%s: pushed %lld, deleted %lld%s", s->destination,
                 (long long)r->pushed, (long long)r->deleted,
                 r->unchanged ? " (unchanged: nothing written)" : "");
    }
    if (cf_audit_record(core->audit, e, &err) != CF_OK)
        cf_log(CF_LOG_ERROR, "secret sync %s: run not audited: %s", s->id, err.msg);
    free(e);
}

static enum cf_rc execute(struct cf_core *core, const char *id, const char *owner, bool force,
                          bool *ran, struct cf_err *err)
{
    struct cf_sync *s = calloc(1, sizeof(*s));
    struct run *r = calloc(1, sizeof(*r));
    struct cf_sync_item_row *rows = NULL;
    bool claimed = false;
    enum cf_rc rc;

    *ran = false;
    if (!s || !r) {
        free(s);
        free(r);
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    int64_t started = cf_now_ms();
    rc = cf_store_sync_claim(core->store, id, owner, started, CLAIM_LEASE_MS, &claimed, s, err);
    if (rc != CF_OK || !claimed)
        goto out;
    *ran = true;
    r->core = core;
    r->sync = s;
    r->force = force;
    r->drift = json_array();
    struct cf_err why;
    cf_err_clear(&why);
    enum cf_rc outcome = run_sync(r, &rows, &why);

    /* As many drifted names as the column holds. */
    char drift[CF_SYNC_DRIFT_MAX + 1] = "[]";
    while (r->drift) {
        char *text = json_dumps(r->drift, JSON_COMPACT);
        bool fits = text && cf_strlcpy(drift, text, sizeof(drift));
        cf_json_free_text(text);
        if (fits || json_array_size(r->drift) == 0)
            break;
        json_array_remove(r->drift, json_array_size(r->drift) - 1);
    }
    struct cf_sync_outcome o = {
        .id = s->id,
        .owner = owner,
        .gen = s->pending_gen,
        .ok = outcome == CF_OK,
        .finished_at = cf_now_ms(),
        .items_pushed = r->pushed,
        .drift = drift,
        .initial_done = true,
        .items = rows,
        .n_items = outcome == CF_OK ? r->n : 0,
    };
    char message[CF_SYNC_ERROR_MAX + 1], hash[65];
    if (outcome != CF_OK) {
        const char *cause = r->cause ? r->cause : cf_rc_cause(outcome);
        int64_t delay = BACKOFF_FIRST_MS;
        for (int64_t a = 0; a < s->attempts && delay < BACKOFF_MAX_MS; a++)
            delay *= 2;
        if (delay > BACKOFF_MAX_MS)
            delay = BACKOFF_MAX_MS;
        if (why.retry_after_s > 0 && (int64_t)why.retry_after_s * 1000 > delay)
            delay = (int64_t)why.retry_after_s * 1000;
        snprintf(message, sizeof(message), "%s", why.msg[0] ? why.msg : cf_rc_str(outcome));
        uint8_t h[32];
        crypto_generichash(h, sizeof(h), (const unsigned char *)message, strlen(message), NULL, 0);
        sodium_bin2hex(hash, sizeof(hash), h, sizeof(h));
        o.error = message;
        o.cause = cause;
        o.initial_done = s->initial_done;
        o.next_attempt_at = o.finished_at + delay;
        o.notified_error = hash;
        cf_log_event(CF_LOG_WARN, "sync_failed", CF_LOG_TEXT("sync", s->id),
                     CF_LOG_WORD("destination", s->destination), CF_LOG_WORD("cause", cause),
                     CF_LOG_INT("attempt", s->attempts + 1), CF_LOG_MS("retry_in", delay),
                     CF_LOG_TEXT("error", message));
        if (strcmp(s->notified_error, hash) != 0)
            notify_failure(core, s, message, hash);
        audit_run(core, r, cause, message);
    } else {
        audit_run(core, r, NULL, NULL);
        cf_log_event(CF_LOG_INFO, "sync_done", CF_LOG_TEXT("sync", s->id),
                     CF_LOG_WORD("destination", s->destination), CF_LOG_INT("items", r->pushed),
                     CF_LOG_INT("deleted", r->deleted),
                     CF_LOG_WORD("unchanged", r->unchanged ? "yes" : "no"),
                     CF_LOG_MS("ms", o.finished_at - started), CF_LOG_TEXT("drift", o.drift));
    }
    rc = cf_store_sync_finish(core->store, &o, err);
out:
    free(rows);
    run_release(r);
    free(r);
    free(s);
    return rc;
}

enum cf_rc cf_syncs_execute(struct cf_core *core, const char *id, const char *owner, bool *ran,
                            struct cf_err *err)
{
    return execute(core, id, owner, false, ran, err);
}
