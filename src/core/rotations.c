/* Secret rotations: management (authorization, validation, views) and the state machine that
 * renews one credential (see core/rotations.h and docs/rotation.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "core/auditlog.h"
#include "core/channels.h"
#include "core/connections.h"
#include "core/names.h"
#include "core/rotations.h"
#include "core/secrets.h"
#include "provider/rotator.h"
#include "store/syncs.h"
#include "util/log.h"
#include "util/str.h"
#include "util/time.h"
#include "util/wipemem.h"
#include "util/banned.h"

#define CLAIM_LEASE_MS (5 * 60 * 1000)
#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS (15 * 60 * 1000)
#define SYNC_POLL_MS 2000
#define DAY_MS (24LL * 60 * 60 * 1000)
#define HISTORY_MAX 1000

/* Who the engine reads and writes the mapped secrets as: the rotation was made by someone allowed
 * to administer its project. */
static const struct cf_principal engine = {.kind = CF_PRINCIPAL_ADMIN, .name = "secret-rotation"};

void cf_rotation_view_list_release(struct cf_rotation_view_list *l)
{
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static const struct cf_rotator_ops *rotator_of(struct cf_core *core, const char *type)
{
    return core->rotator_find ? core->rotator_find(type) : cf_rotator_find(type);
}

static const struct cf_consumer_ops *consumer_of(struct cf_core *core, const char *type)
{
    return core->consumer_find ? core->consumer_find(type) : cf_consumer_find(type);
}

/* A test build's crash point (COFFER_TEST_ROTATION_CRASH_AT names where), so that the
 * integration tests can stop a rotation at each step. */
static void crash_point(const char *where)
{
    cf_test_crash_point("COFFER_TEST_ROTATION_CRASH_AT", where);
}

int64_t cf_rotation_next_at(const struct cf_rotation *r)
{
    int64_t best = 0;
    if (r->interval_days > 0) {
        int64_t base = r->last_rotated_at ? r->last_rotated_at : r->created_at;
        int64_t at = base + r->interval_days * DAY_MS;
        best = at - at % DAY_MS + r->rotate_at_minute * 60 * 1000;
    }
    if (r->days_before_expiry > 0 && r->current_expires_at > 0) {
        int64_t at = r->current_expires_at - r->days_before_expiry * DAY_MS;
        if (best == 0 || at < best)
            best = at;
    }
    return best;
}

/* ---- views and authorization ---- */

static enum cf_rc view_of(struct cf_core *core, const struct cf_rotation *r,
                          struct cf_rotation_view *out, struct cf_err *err)
{
    struct cf_env env = {0};
    memset(out, 0, sizeof(*out));
    out->rot = *r;
    enum cf_rc rc = cf_store_env_get(core->store, r->project_id, r->env_id, &env, err);
    if (rc == CF_OK)
        cf_strlcpy(out->env_slug, env.slug, sizeof(out->env_slug));
    return rc;
}

/* The rotation id of type (NULL: any), for who, an administrator of its project. */
static enum cf_rc load_rotation(struct cf_core *core, const struct cf_principal *who,
                                const char *type, const char *id, struct cf_rotation *out,
                                struct cf_err *err)
{
    if (!id || !cf_uuid_valid(id))
        return cf_err_field(err, CF_EVALIDATION, "rotationId", "rotationId: '%.40s' is not a UUID",
                            id ? id : "");
    enum cf_rc rc = cf_store_rotation_get(core->store, id, out, err);
    if (rc == CF_OK && type && strcmp(out->type, type) != 0)
        rc = CF_ENOTFOUND;
    if (rc == CF_OK) {
        struct cf_err denied;
        if (cf_authz_check(core, who, CF_ACTION_ADMIN, out->project_id, NULL, NULL, &denied) !=
            CF_OK)
            rc = CF_ENOTFOUND;
    }
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "Secret rotation with ID '%s' not found", id);
    return rc;
}

/* Checks that connection id (field names it) exists, is of app, and may be used by who. */
static enum cf_rc connection_check(struct cf_core *core, const struct cf_principal *who,
                                   const char *field, const char *id, const char *app,
                                   struct cf_err *err)
{
    struct cf_connection conn;
    if (!app && id && id[0])
        return cf_err_field(err, CF_EVALIDATION, field, "%s: this kind takes no connection", field);
    if (!app)
        return CF_OK;
    if (!id || !id[0])
        return cf_err_field(err, CF_EVALIDATION, field, "%s is required (a %s connection)", field,
                            app);
    /* A connection is organisation-wide: aiming it is the admin's, as for syncs. */
    if (!cf_principal_is_admin(who))
        return cf_err_set(
            err, CF_EFORBIDDEN,
            "only the admin or an org admin may create or change a rotation that uses an app "
            "connection: connections are organisation-wide");
    if (!cf_uuid_valid(id))
        return cf_err_field(err, CF_EVALIDATION, field, "%s: '%.40s' is not a UUID", field, id);
    enum cf_rc rc = cf_connection_lookup(core, id, &conn, err);
    if (rc == CF_ENOTFOUND)
        return cf_err_field(err, CF_EVALIDATION, field, "App connection with ID '%s' not found",
                            id);
    if (rc == CF_OK && strcmp(conn.app, app) != 0)
        rc = cf_err_field(err, CF_EVALIDATION, field,
                          "%s: connection '%s' is a %s connection, not %s", field, conn.name,
                          conn.app, app);
    return rc;
}

/* The JSON text of v into out (size bytes), or CF_EVALIDATION naming field when it does not fit. */
static enum cf_rc json_text(const json_t *v, const char *field, char *out, size_t size,
                            struct cf_err *err)
{
    char *text = json_dumps(v, JSON_COMPACT);
    enum cf_rc rc = CF_OK;
    if (!text)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    else if (!cf_strlcpy(out, text, size))
        rc = cf_err_field(err, CF_EVALIDATION, field, "%s is larger than %zu bytes", field,
                          size - 1);
    cf_json_free_text(text);
    return rc;
}

static enum cf_rc mapping_check(const struct cf_rotator_ops *ops, const json_t *mapping,
                                struct cf_err *err)
{
    const char *output;
    json_t *key;
    if (!json_is_object(mapping))
        return cf_err_field(err, CF_EVALIDATION, "secretsMapping",
                            "secretsMapping must be an object of output name to secret key");
    for (size_t i = 0; ops->outputs[i]; i++) {
        if (!json_is_string(json_object_get(mapping, ops->outputs[i])))
            return cf_err_field(err, CF_EVALIDATION, "secretsMapping",
                                "secretsMapping: '%s' is required for a %s rotation (a secret key)",
                                ops->outputs[i], ops->type);
    }
    json_object_foreach((json_t *)mapping, output, key)
    {
        bool known = false;
        for (size_t i = 0; ops->outputs[i]; i++)
            known = known || strcmp(ops->outputs[i], output) == 0;
        if (!known)
            return cf_err_field(err, CF_EVALIDATION, "secretsMapping",
                                "secretsMapping: '%.64s' is not an output of a %s rotation", output,
                                ops->type);
        enum cf_rc rc = cf_key_check(json_string_value(key), "secretsMapping", err);
        if (rc != CF_OK)
            return rc;
        const char *other;
        json_t *other_key;
        json_object_foreach((json_t *)mapping, other, other_key)
        {
            if (strcmp(other, output) < 0 &&
                strcmp(json_string_value(other_key), json_string_value(key)) == 0)
                return cf_err_field(err, CF_EVALIDATION, "secretsMapping",
                                    "secretsMapping: '%s' and '%s' map to the same key", other,
                                    output);
        }
    }
    return CF_OK;
}

/* The consumer that is one of Coffer's own app connections: the rotated credential replaces the
 * connection's fields of the same names as the rotator's outputs (clientSecret; username and
 * password), and the connection's check proves it. Built into the engine, since it writes to the
 * store rather than to another system. */
#define APP_CONNECTION "app-connection"

static enum cf_rc app_connection_check(struct cf_core *core, const struct cf_principal *who,
                                       const struct cf_rotator_ops *rotator, const char *field,
                                       const char *id, struct cf_err *err)
{
    struct cf_connection conn;
    if (!cf_principal_is_admin(who))
        return cf_err_set(
            err, CF_EFORBIDDEN,
            "only the admin or an org admin may create or change a rotation that uses an app "
            "connection: connections are organisation-wide");
    if (!id || !cf_uuid_valid(id))
        return cf_err_field(err, CF_EVALIDATION, field, "%s: a connection's UUID is required",
                            field);
    enum cf_rc rc = cf_connection_lookup(core, id, &conn, err);
    if (rc == CF_ENOTFOUND)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: App connection with ID '%s' not found",
                            field, id);
    if (rc == CF_OK && !cf_connection_secret_field(conn.app, conn.method, rotator->secret_output))
        rc = cf_err_field(err, CF_EVALIDATION, field,
                          "%s: connection '%s' (%s %s) has no '%s' for the rotated credential",
                          field, conn.name, conn.app, conn.method, rotator->secret_output);
    return rc;
}

static enum cf_rc consumers_check(struct cf_core *core, const struct cf_principal *who,
                                  const struct cf_rotator_ops *rotator, const json_t *consumers,
                                  struct cf_err *err)
{
    size_t i;
    json_t *c;
    if (!json_is_array(consumers))
        return cf_err_field(err, CF_EVALIDATION, "consumers", "consumers must be an array");
    json_array_foreach(consumers, i, c)
    {
        const char *type = json_string_value(json_object_get(c, "type"));
        const json_t *config = json_object_get(c, "config");
        const struct cf_consumer_ops *ops = type ? consumer_of(core, type) : NULL;
        char field[48];
        if (!json_is_object(c) || !type)
            return cf_err_field(err, CF_EVALIDATION, "consumers",
                                "consumers[%zu]: an object with a \"type\" is required", i);
        snprintf(field, sizeof(field), "consumers[%zu].connectionId", i);
        if (strcmp(type, APP_CONNECTION) == 0) {
            enum cf_rc rc =
                app_connection_check(core, who, rotator, field,
                                     json_string_value(json_object_get(c, "connectionId")), err);
            if (rc != CF_OK)
                return rc;
            if (config && !json_is_object(config))
                return cf_err_field(err, CF_EVALIDATION, "consumers",
                                    "consumers[%zu]: \"config\" must be an object", i);
            continue;
        }
        if (!ops)
            return cf_err_field(err, CF_EVALIDATION, "consumers",
                                "consumers[%zu]: unknown consumer type '%.40s'", i, type);
        if (!json_is_object(config))
            return cf_err_field(err, CF_EVALIDATION, "consumers",
                                "consumers[%zu]: \"config\" must be an object", i);
        enum cf_rc rc = connection_check(core, who, field,
                                         json_string_value(json_object_get(c, "connectionId")),
                                         ops->connection_app, err);
        if (rc == CF_OK)
            rc = ops->config_check(config, err);
        if (rc != CF_OK)
            return rc;
    }
    return CF_OK;
}

/* Checks and fills the fields of r that spec gives (NULL / -1 keep r's). */
static enum cf_rc apply_spec(struct cf_core *core, const struct cf_principal *who,
                             const struct cf_rotation_spec *spec, const struct cf_rotator_ops *ops,
                             struct cf_rotation *r, struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    if (spec->name) {
        rc = cf_text_check(spec->name, CF_NAME_MAX, true, "name", err);
        if (rc == CF_OK && !cf_strlcpy(r->name, spec->name, sizeof(r->name)))
            rc = cf_err_field(err, CF_EVALIDATION, "name", "name is too long");
    }
    if (rc == CF_OK && spec->description) {
        rc = cf_text_check(spec->description, CF_ROTATION_DESCRIPTION_MAX, false, "description",
                           err);
        if (rc == CF_OK)
            cf_strlcpy(r->description, spec->description, sizeof(r->description));
    }
    if (rc == CF_OK && spec->parameters) {
        if (!json_is_object(spec->parameters))
            return cf_err_field(err, CF_EVALIDATION, "parameters", "parameters must be an object");
        rc = ops->config_check(spec->parameters, err);
        if (rc == CF_OK)
            rc = json_text(spec->parameters, "parameters", r->parameters, sizeof(r->parameters),
                           err);
    }
    if (rc == CF_OK && spec->secrets_mapping) {
        rc = mapping_check(ops, spec->secrets_mapping, err);
        if (rc == CF_OK)
            rc = json_text(spec->secrets_mapping, "secretsMapping", r->secrets_mapping,
                           sizeof(r->secrets_mapping), err);
    }
    if (rc == CF_OK && spec->consumers) {
        rc = consumers_check(core, who, ops, spec->consumers, err);
        if (rc == CF_OK)
            rc = json_text(spec->consumers, "consumers", r->consumers, sizeof(r->consumers), err);
    }
    if (rc != CF_OK)
        return rc;
    if (spec->interval_days > CF_ROTATION_INTERVAL_DAYS_MAX || spec->interval_days < -1)
        return cf_err_field(err, CF_EVALIDATION, "rotationInterval",
                            "rotationInterval must be between 0 and %d days",
                            CF_ROTATION_INTERVAL_DAYS_MAX);
    if (spec->days_before_expiry > CF_ROTATION_INTERVAL_DAYS_MAX || spec->days_before_expiry < -1)
        return cf_err_field(err, CF_EVALIDATION, "daysBeforeExpiry",
                            "daysBeforeExpiry must be between 0 and %d days",
                            CF_ROTATION_INTERVAL_DAYS_MAX);
    if (spec->rotate_at_minute >= 24 * 60 || spec->rotate_at_minute < -1)
        return cf_err_field(err, CF_EVALIDATION, "rotateAtUtc",
                            "rotateAtUtc must be a time of day between 00:00 and 23:59");
    if (spec->grace_period_ms < -1)
        return cf_err_field(err, CF_EVALIDATION, "gracePeriod", "gracePeriod must not be negative");
    if (spec->lifetime_ms < -1)
        return cf_err_field(err, CF_EVALIDATION, "lifetime", "lifetime must not be negative");
    if (spec->interval_days >= 0)
        r->interval_days = spec->interval_days;
    if (spec->days_before_expiry >= 0)
        r->days_before_expiry = spec->days_before_expiry;
    if (spec->rotate_at_minute >= 0)
        r->rotate_at_minute = spec->rotate_at_minute;
    if (spec->grace_period_ms >= 0)
        r->grace_period_ms = spec->grace_period_ms;
    if (spec->lifetime_ms >= 0)
        r->lifetime_ms = spec->lifetime_ms;
    if (spec->auto_rotate >= 0)
        r->auto_rotate = spec->auto_rotate != 0;
    return CF_OK;
}

/* Adopts spec's current credential into r: the rotator finds it at the provider (through the
 * rotation's connection) and tells its end date. */
static enum cf_rc adopt(struct cf_core *core, const struct cf_rotator_ops *ops,
                        const struct cf_rotation_spec *spec, struct cf_rotation *r,
                        struct cf_err *err)
{
    const char *id = spec->current_credential_id;
    struct cf_conn_opened opened = {0};
    int64_t expires_at = 0;
    enum cf_rc rc = CF_OK;
    if (!ops->adopt)
        return cf_err_field(err, CF_EVALIDATION, "currentCredentialId",
                            "currentCredentialId: a rotation of type '%s' cannot adopt a "
                            "credential",
                            ops->type);
    if (!id[0] || strlen(id) >= sizeof(r->current_cred_id))
        return cf_err_field(err, CF_EVALIDATION, "currentCredentialId",
                            "currentCredentialId must be 1 to %zu characters",
                            sizeof(r->current_cred_id) - 1);
    if (ops->connection_app)
        rc = cf_connection_open(core, r->connection_id, &opened, err);
    if (rc == CF_OK)
        rc = ops->adopt(ops->connection_app ? &opened.conn : NULL, spec->parameters, id,
                        &expires_at, err);
    cf_connection_close(&opened);
    if (rc == CF_ENOTFOUND) /* a reference in the request that does not resolve */
        rc = err->rc = CF_EVALIDATION;
    if (rc == CF_OK) {
        cf_strlcpy(r->current_cred_id, id, sizeof(r->current_cred_id));
        r->current_expires_at = expires_at;
    }
    return rc;
}

static void wake(struct cf_core *core)
{
    if (core->rotation_wake)
        core->rotation_wake(core->rotation_wake_ctx);
}

enum cf_rc cf_rotations_create(struct cf_core *core, const struct cf_principal *who,
                               const char *type, const struct cf_rotation_spec *spec,
                               struct cf_rotation_view *out, struct cf_err *err)
{
    struct cf_project project = {0};
    struct cf_scope scope = {0};
    struct cf_rotation *r = calloc(1, sizeof(*r));
    enum cf_rc rc = CF_OK;

    memset(out, 0, sizeof(*out));
    if (!r)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    const struct cf_rotator_ops *ops = type ? rotator_of(core, type) : NULL;
    if (!ops) {
        rc =
            cf_err_set(err, CF_ENOTFOUND, "Unknown secret rotation type '%.40s'", type ? type : "");
        goto out;
    }
    rc = cf_project_for_admin(core, who, spec->project, &project, err);
    if (rc != CF_OK)
        goto out;
    if (!spec->name)
        rc = cf_err_field(err, CF_EVALIDATION, "name", "name is required");
    else if (!spec->environment)
        rc = cf_err_field(err, CF_EVALIDATION, "environment", "environment is required");
    else if (!spec->secret_path)
        rc = cf_err_field(err, CF_EVALIDATION, "secretPath", "secretPath is required");
    else if (!spec->parameters)
        rc = cf_err_field(err, CF_EVALIDATION, "parameters", "parameters is required");
    else if (!spec->secrets_mapping)
        rc = cf_err_field(err, CF_EVALIDATION, "secretsMapping", "secretsMapping is required");
    if (rc == CF_OK) {
        rc = cf_scope_resolve(core, who, CF_ACTION_ADMIN, project.id, spec->environment,
                              spec->secret_path, &scope, err);
        if (rc == CF_ENOTFOUND) {
            char missing[sizeof(err->msg)];
            cf_strlcpy(missing, err->msg, sizeof(missing));
            rc = cf_err_field(err, CF_EVALIDATION, "secretPath", "%s", missing);
        }
    }
    if (rc == CF_OK)
        rc = connection_check(core, who, "connectionId", spec->connection_id, ops->connection_app,
                              err);
    if (rc != CF_OK)
        goto out;
    cf_uuid_new(r->id);
    cf_strlcpy(r->project_id, project.id, sizeof(r->project_id));
    cf_strlcpy(r->env_id, scope.env.id, sizeof(r->env_id));
    cf_strlcpy(r->folder_path, scope.folder.path, sizeof(r->folder_path));
    cf_strlcpy(r->type, ops->type, sizeof(r->type));
    if (spec->connection_id)
        cf_strlcpy(r->connection_id, spec->connection_id, sizeof(r->connection_id));
    cf_strlcpy(r->consumers, "[]", sizeof(r->consumers));
    r->grace_period_ms = CF_ROTATION_GRACE_DEFAULT_MS;
    r->auto_rotate = true;
    r->created_at = r->updated_at = cf_now_ms();
    rc = apply_spec(core, who, spec, ops, r, err);
    if (rc == CF_OK && spec->current_credential_id)
        rc = adopt(core, ops, spec, r, err);
    /* The first credential is issued at once (until then the mapped secrets hold none), unless
     * one in use was adopted: that one is rotated on the schedule, as any current credential. */
    if (r->current_cred_id[0])
        r->next_rotation_at = r->auto_rotate ? cf_rotation_next_at(r) : 0;
    else
        r->next_rotation_at = r->auto_rotate ? r->created_at : 0;
    if (rc == CF_OK)
        rc = cf_store_rotation_create(core->store, r, err);
    if (rc == CF_OK)
        rc = cf_store_rotation_get(core->store, r->id, r, err);
    if (rc == CF_OK)
        rc = view_of(core, r, out, err);
    if (rc == CF_OK)
        wake(core);
out:
    cf_scope_release(&scope);
    cf_project_release(&project);
    free(r);
    return rc;
}

enum cf_rc cf_rotations_list(struct cf_core *core, const struct cf_principal *who,
                             const char *project, const char *type,
                             struct cf_rotation_view_list *out, struct cf_err *err)
{
    struct cf_project found;
    struct cf_rotation_list rows = {0};
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = cf_project_for_admin(core, who, project, &found, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_store_rotation_list(core->store, found.id, &rows, err);
    if (rc == CF_OK && rows.n) {
        out->items = calloc(rows.n, sizeof(*out->items));
        if (!out->items)
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    for (size_t i = 0; rc == CF_OK && i < rows.n; i++) {
        if (type && strcmp(rows.items[i].type, type) != 0)
            continue;
        rc = view_of(core, &rows.items[i], &out->items[out->n], err);
        if (rc == CF_OK)
            out->n++;
    }
    if (rc != CF_OK)
        cf_rotation_view_list_release(out);
    cf_rotation_list_release(&rows);
    cf_project_release(&found);
    return rc;
}

enum cf_rc cf_rotations_get(struct cf_core *core, const struct cf_principal *who, const char *type,
                            const char *id, struct cf_rotation_view *out, struct cf_err *err)
{
    struct cf_rotation *r = calloc(1, sizeof(*r));
    memset(out, 0, sizeof(*out));
    if (!r)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    enum cf_rc rc = load_rotation(core, who, type, id, r, err);
    if (rc == CF_OK)
        rc = view_of(core, r, out, err);
    free(r);
    return rc;
}

enum cf_rc cf_rotations_update(struct cf_core *core, const struct cf_principal *who,
                               const char *type, const char *id,
                               const struct cf_rotation_spec *change, struct cf_rotation_view *out,
                               struct cf_err *err)
{
    struct cf_rotation *r = &out->rot;
    enum cf_rc rc = cf_rotations_get(core, who, type, id, out, err);
    const struct cf_rotator_ops *ops = rc == CF_OK ? rotator_of(core, r->type) : NULL;
    if (rc == CF_OK && !ops)
        rc = cf_err_set(err, CF_EINTERNAL, "rotation type '%s' is not built in", r->type);
    if (rc == CF_OK &&
        (change->project || change->environment || change->secret_path || change->connection_id))
        rc = cf_err_set(err, CF_EVALIDATION,
                        "a rotation's project, environment, secretPath and connectionId cannot "
                        "change: create another rotation");
    if (rc == CF_OK)
        rc = apply_spec(core, who, change, ops, r, err);
    if (rc == CF_OK) {
        r->updated_at = cf_now_ms();
        if (!r->pending_step[0] && r->generation > 0)
            r->next_rotation_at = r->auto_rotate ? cf_rotation_next_at(r) : 0;
        rc = cf_store_rotation_update(core->store, r, err);
    }
    if (rc == CF_OK)
        rc = cf_rotations_get(core, who, type, id, out, err);
    if (rc == CF_OK)
        wake(core);
    return rc;
}

enum cf_rc cf_rotations_delete(struct cf_core *core, const struct cf_principal *who,
                               const char *type, const char *id, struct cf_rotation_view *out,
                               struct cf_err *err)
{
    enum cf_rc rc = cf_rotations_get(core, who, type, id, out, err);
    const struct cf_rotation *r = &out->rot;
    if (rc == CF_OK && r->pending_step[0] && strcmp(r->pending_step, "issue") != 0)
        rc = cf_err_set(err, CF_ECONFLICT,
                        "secret rotation '%s' is in progress (step '%s'): deleting it now would "
                        "leave a credential nobody revokes; wait for it to finish",
                        r->name, r->pending_step);
    if (rc == CF_OK)
        rc = cf_store_rotation_delete(core->store, r->id, err);
    return rc;
}

enum cf_rc cf_rotations_history(struct cf_core *core, const struct cf_principal *who,
                                const char *id, size_t limit, struct cf_rotation_event_list *out,
                                struct cf_err *err)
{
    struct cf_rotation *r = calloc(1, sizeof(*r));
    memset(out, 0, sizeof(*out));
    if (!r)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    enum cf_rc rc = load_rotation(core, who, NULL, id, r, err);
    if (rc == CF_OK)
        rc = cf_store_rotation_history(core->store, r->id,
                                       limit > HISTORY_MAX ? HISTORY_MAX : limit, out, err);
    free(r);
    return rc;
}

/* ---- the state machine ---- */

struct run {
    struct cf_core *core;
    struct cf_rotation *rot;
    const char *owner;
    const struct cf_rotator_ops *ops;
    json_t *params, *mapping, *consumers;
    struct cf_conn_opened opened;
    const struct cf_provider_conn *conn;
    struct cf_scope scope;
    struct cf_rotated_cred cred; /* the credential being rolled out, when in memory */
    bool have_cred;
    bool waiting;      /* the step waits (syncs, grace): claim released, due again later */
    const char *cause; /* a failure's class when not derived from its code */
    const char *step;  /* the step running */
    char step_buf[CF_ROTATION_STEP_MAX + 1];
};

static void run_release(struct run *r)
{
    cf_rotated_cred_release(&r->cred);
    cf_connection_close(&r->opened);
    cf_scope_release(&r->scope);
    json_decref(r->params);
    json_decref(r->mapping);
    json_decref(r->consumers);
}

static struct cf_rotation_ref ref_of(const struct run *r)
{
    struct cf_rotation_ref ref = {
        .id = r->rot->id,
        .name = r->rot->name,
        .generation =
            r->rot->pending_generation ? r->rot->pending_generation : r->rot->generation + 1,
        .lifetime_ms = r->rot->lifetime_ms,
        .current = r->rot->current_cred_id,
    };
    return ref;
}

/* Records one step in the audit log ("secret-rotations.<step>"): the rotation, its generation,
 * the credential id (never a value) and the outcome. */
static void audit_step(struct run *r, const char *step, const char *result, const char *reason)
{
    struct cf_core *core = r->core;
    const struct cf_rotation *rot = r->rot;
    struct cf_err err;
    if (!core->audit)
        return;
    struct cf_audit_event *e = calloc(1, sizeof(*e));
    if (!e)
        return;
    cf_err_clear(&err);
    cf_strlcpy(e->actor_kind, "system", sizeof(e->actor_kind));
    cf_strlcpy(e->actor_name, "rotation engine", sizeof(e->actor_name));
    snprintf(e->action, sizeof(e->action), "secret-rotations.%s", step);
    cf_strlcpy(e->project_id, rot->project_id, sizeof(e->project_id));
    cf_strlcpy(e->environment, r->scope.env.slug, sizeof(e->environment));
    snprintf(e->path, sizeof(e->path), "/api/v2/secret-rotations/%s/%s", rot->type, rot->id);
    cf_strlcpy(e->keys, rot->name, sizeof(e->keys));
    cf_strlcpy(e->result, result, sizeof(e->result));
    cf_strlcpy(e->reason, reason, sizeof(e->reason));
    if (cf_audit_record(core->audit, e, &err) != CF_OK)
        cf_log(CF_LOG_ERROR, "secret rotation %s: step not audited: %s", rot->id, err.msg);
    free(e);
}

/* Writes the rotation's state (claim kept for another lease unless release) with one history
 * event for step, and audits it. */
static enum cf_rc save(struct run *r, const char *step, const char *outcome, const char *cause,
                       const char *message, const char *cred_id, bool release, struct cf_err *err)
{
    struct cf_rotation *rot = r->rot;
    struct cf_rotation_event e = {0};
    int64_t now = cf_now_ms();
    char reason[512];
    cf_strlcpy(e.rotation_id, rot->id, sizeof(e.rotation_id));
    e.generation = rot->pending_generation ? rot->pending_generation : rot->generation;
    cf_strlcpy(e.step, step, sizeof(e.step));
    cf_strlcpy(e.outcome, outcome, sizeof(e.outcome));
    cf_strlcpy(e.cause, cause ? cause : "", sizeof(e.cause));
    cf_strlcpy(e.message, message ? message : "", sizeof(e.message));
    cf_strlcpy(e.credential_id, cred_id ? cred_id : "", sizeof(e.credential_id));
    e.at = now;
    rot->updated_at = now;
    rot->claim_until = now + CLAIM_LEASE_MS;
    enum cf_rc rc = cf_store_rotation_save(r->core->store, rot, r->owner, release, &e, err);
    snprintf(reason, sizeof(reason), "generation %lld%s%s%s%s%s%s", (long long)e.generation,
             e.credential_id[0] ? ", credential " : "", e.credential_id, cause ? "; " : "",
             cause ? cause : "", message && message[0] ? ": " : "", message ? message : "");
    audit_step(r, step, outcome, reason);
    return rc;
}

/* Moves to step next (its attempts start at zero) and records that step done finished. */
static enum cf_rc advance(struct run *r, const char *done, const char *next, const char *message,
                          const char *cred_id, struct cf_err *err)
{
    struct cf_rotation *rot = r->rot;
    cf_strlcpy(rot->pending_step, next, sizeof(rot->pending_step));
    rot->step_attempts = 0;
    rot->step_started_at = 0;
    rot->next_attempt_at = 0;
    return save(r, done, "ok", NULL, message, cred_id, false, err);
}

/* Records the start of an attempt of the current step: its intent is durable before any call. */
static enum cf_rc attempt(struct run *r, struct cf_err *err)
{
    struct cf_rotation *rot = r->rot;
    rot->step_attempts++;
    rot->step_started_at = cf_now_ms();
    rot->claim_until = rot->step_started_at + CLAIM_LEASE_MS;
    return cf_store_rotation_save(r->core->store, rot, r->owner, false, NULL, err);
}

/* Opens the connection of id for app (NULL: none; *conn NULL). */
static enum cf_rc open_conn(struct run *r, const char *id, const char *app,
                            struct cf_conn_opened *opened, const struct cf_provider_conn **conn,
                            struct cf_err *err)
{
    *conn = NULL;
    if (!app)
        return CF_OK;
    enum cf_rc rc = cf_connection_open(r->core, id, opened, err);
    if (rc == CF_OK)
        *conn = &opened->conn;
    else
        r->cause = "connection";
    return rc;
}

/* The key output maps to. */
static const char *key_of(const struct run *r, const char *output)
{
    return json_string_value(json_object_get(r->mapping, output));
}

/* The comment the store step gives the secret versions it writes: how a resume recognises that
 * the value of pending_cred_id was stored. No value in it. */
static void stored_comment(const struct cf_rotation *rot, char *out, size_t size)
{
    snprintf(out, size, "rotated by secret rotation '%s' (generation %lld, credential %s)",
             rot->name, (long long)rot->pending_generation, rot->pending_cred_id);
}

/* Reads the credential being rolled out back from the mapped secrets (after a restart: the value
 * lives only there). *found false when the current version of the secret output's key is not the
 * one the store step wrote for this credential. */
static enum cf_rc cred_from_secrets(struct run *r, bool *found, struct cf_err *err)
{
    struct cf_rotation *rot = r->rot;
    struct cf_read_opts opts = {0};
    char comment[512];
    enum cf_rc rc = CF_OK;
    *found = false;
    stored_comment(rot, comment, sizeof(comment));
    cf_rotated_cred_release(&r->cred);
    r->have_cred = false;
    r->cred.outputs = json_object();
    if (!r->cred.outputs)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    for (size_t i = 0; rc == CF_OK && r->ops->outputs[i]; i++) {
        const char *output = r->ops->outputs[i];
        struct cf_plain p = {0};
        rc = cf_secrets_get(r->core, &engine, &r->scope, key_of(r, output), 0, &opts, &p, err);
        if (rc == CF_ENOTFOUND) {
            cf_plain_release(&p);
            return CF_OK; /* not stored */
        }
        bool secret = strcmp(output, r->ops->secret_output) == 0;
        if (rc == CF_OK && secret && strcmp(p.meta.comment ? p.meta.comment : "", comment) != 0) {
            cf_plain_release(&p);
            return CF_OK; /* the current version is not this credential's */
        }
        json_t *v = rc == CF_OK ? json_stringn((const char *)(p.value.data ? p.value.data : ""),
                                               p.value.len)
                                : NULL;
        if (rc == CF_OK && (!v || json_object_set_new(r->cred.outputs, output, v) != 0))
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        if (rc == CF_OK && secret) {
            r->cred.secret = malloc(p.value.len + 1);
            if (!r->cred.secret)
                rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            else {
                if (p.value.len)
                    memcpy(r->cred.secret, p.value.data, p.value.len);
                r->cred.secret[p.value.len] = '\0';
                r->cred.secret_len = p.value.len;
            }
        }
        cf_plain_release(&p);
    }
    if (rc == CF_OK) {
        cf_strlcpy(r->cred.id, rot->pending_cred_id, sizeof(r->cred.id));
        r->cred.expires_at = rot->pending_expires_at;
        r->have_cred = true;
        *found = true;
    }
    return rc;
}

static enum cf_rc step_issue(struct run *r, struct cf_err *err)
{
    struct cf_rotation *rot = r->rot;
    struct cf_rotation_ref ref = ref_of(r);
    enum cf_rc rc = CF_OK;
    /* An earlier attempt of this step may have issued a credential and died before recording its
     * id: revoke what the provider holds for this generation (never the current one). */
    if (rot->step_attempts > 0 && r->ops->list_issued) {
        char **ids = NULL;
        size_t n = 0;
        rc = r->ops->list_issued(r->conn, r->params, &ref, &ids, &n, err);
        for (size_t i = 0; rc == CF_OK && i < n; i++) {
            if (strcmp(ids[i], rot->current_cred_id) == 0 ||
                strcmp(ids[i], rot->previous_cred_id) == 0)
                continue;
            rc = r->ops->revoke(r->conn, r->params, &ref, ids[i], err);
            if (rc == CF_OK)
                rc = save(r, "issue", "ok", NULL,
                          "revoked a credential an interrupted attempt "
                          "issued and never recorded",
                          ids[i], false, err);
        }
        cf_rotated_ids_free(ids, n);
        if (rc != CF_OK)
            return rc;
    }
    rc = attempt(r, err);
    if (rc != CF_OK)
        return rc;
    crash_point("issue-before");
    /* r->cred may hold what a look for a stored value found (outputs without the secret) */
    cf_rotated_cred_release(&r->cred);
    r->have_cred = false;
    rc = r->ops->issue(r->conn, r->params, &ref, &r->cred, err);
    if (rc != CF_OK)
        return rc;
    r->have_cred = true;
    crash_point("issue");
    cf_strlcpy(rot->pending_cred_id, r->cred.id, sizeof(rot->pending_cred_id));
    rot->pending_expires_at = r->cred.expires_at;
    return advance(r, "issue", "store", "issued", r->cred.id, err);
}

static enum cf_rc step_store(struct run *r, struct cf_err *err)
{
    struct cf_rotation *rot = r->rot;
    struct cf_secret_change changes[16];
    struct cf_plain_list written = {0};
    char comment[512];
    size_t n = 0;
    enum cf_rc rc;

    if (!r->have_cred) {
        bool found = false;
        rc = cred_from_secrets(r, &found, err);
        if (rc != CF_OK)
            return rc;
        if (found) /* stored before the interruption */
            return advance(r, "store", "verify", "found stored", rot->pending_cred_id, err);
        /* Issued, never stored: the value is gone with the process that had it. Revoke that
         * credential (never in use anywhere) and issue again. */
        struct cf_rotation_ref ref = ref_of(r);
        rc = r->ops->revoke(r->conn, r->params, &ref, rot->pending_cred_id, err);
        if (rc != CF_OK)
            return rc;
        char revoked[CF_ROTATION_CRED_ID_MAX];
        cf_strlcpy(revoked, rot->pending_cred_id, sizeof(revoked));
        rot->pending_cred_id[0] = '\0';
        rot->pending_expires_at = 0;
        return advance(r, "store", "issue",
                       "the issued value was lost before it was stored: "
                       "revoked, issuing again",
                       revoked, err);
    }
    size_t outputs = 0;
    while (r->ops->outputs[outputs])
        outputs++;
    if (outputs > CF_ARRAY_SIZE(changes))
        return cf_err_set(err, CF_EINTERNAL, "rotation type '%s' has more outputs than %zu",
                          r->ops->type, CF_ARRAY_SIZE(changes));
    rc = attempt(r, err);
    if (rc != CF_OK)
        return rc;
    stored_comment(rot, comment, sizeof(comment));
    memset(changes, 0, sizeof(changes));
    for (size_t i = 0; i < outputs; i++) {
        const char *output = r->ops->outputs[i];
        struct cf_secret_change *c = &changes[n++];
        c->kind = CF_CHANGE_UPSERT;
        c->key = key_of(r, output);
        c->has_value = true;
        if (strcmp(output, r->ops->secret_output) == 0) {
            c->value = r->cred.secret;
            c->value_len = r->cred.secret_len;
        } else {
            const json_t *v = json_object_get(r->cred.outputs, output);
            c->value = json_is_string(v) ? json_string_value(v) : "";
            c->value_len = json_is_string(v) ? json_string_length(v) : 0;
        }
        c->has_comment = true;
        c->comment = comment;
        c->has_expires = true;
        c->expires_at = r->cred.expires_at;
    }
    rc = cf_secrets_apply(r->core, &engine, &r->scope, changes, n, &written, NULL, err);
    for (size_t i = 0; rc == CF_OK && i < written.n; i++) {
        if (strcmp(written.items[i].meta.key, key_of(r, r->ops->secret_output)) == 0)
            rot->pending_version = written.items[i].meta.version;
    }
    cf_plain_list_release(&written);
    if (rc != CF_OK) {
        r->cause = "store";
        return rc;
    }
    crash_point("store");
    /* The keys written, never their values. */
    char message[CF_ROTATION_ERROR_MAX + 1];
    size_t len = (size_t)snprintf(message, sizeof(message), "stored as a new version of");
    for (size_t i = 0; i < n && len < sizeof(message); i++)
        len += (size_t)snprintf(message + len, sizeof(message) - len, "%s %s", i ? "," : "",
                                changes[i].key);
    return advance(r, "store", "verify", message, rot->pending_cred_id, err);
}

/* The credential in memory, read back from the secrets when a restart lost it. */
static enum cf_rc need_cred(struct run *r, struct cf_err *err)
{
    bool found = false;
    if (r->have_cred)
        return CF_OK;
    enum cf_rc rc = cred_from_secrets(r, &found, err);
    if (rc == CF_OK && !found) {
        r->cause = "store";
        rc = cf_err_set(err, CF_ECONFLICT,
                        "the secret '%s' no longer holds the value this rotation stored (it was "
                        "changed meanwhile)",
                        key_of(r, r->ops->secret_output));
    }
    return rc;
}

static enum cf_rc step_verify(struct run *r, struct cf_err *err)
{
    enum cf_rc rc = need_cred(r, err);
    if (rc == CF_OK)
        rc = attempt(r, err);
    if (rc == CF_OK)
        rc = r->ops->verify(r->conn, r->params, &r->cred, err);
    if (rc == CF_OK)
        crash_point("verify");
    if (rc == CF_OK)
        rc = advance(r, "verify", "push", "verified", r->rot->pending_cred_id, err);
    return rc;
}

/* Gives connection id the credential (every output the connection has a field for) and checks
 * that the connection works with it. */
static enum cf_rc push_app_connection(struct run *r, const char *id, struct cf_err *err)
{
    struct cf_connection conn;
    json_t *report = NULL;
    enum cf_rc rc =
        cf_connection_replace_fields(r->core, &engine, id, r->cred.outputs, r->ops->secret_output,
                                     r->cred.expires_at, &conn, err);
    if (rc == CF_OK)
        crash_point("push");
    if (rc == CF_OK)
        rc = cf_connections_check(r->core, &engine, NULL, id, &report, &conn, err);
    json_decref(report);
    return rc;
}

/* The dry run's lines for an app-connection consumer. */
static void plan_app_connection(struct cf_core *core, const char *id,
                                const struct cf_rotator_ops *rotator,
                                void (*fn)(void *ctx, const char *step, const char *method,
                                           const char *target, const char *purpose),
                                void *ctx)
{
    struct cf_connection conn;
    struct cf_err ignored;
    char target[CF_NAME_MAX + 32], purpose[160];
    if (!id || cf_connection_lookup(core, id, &conn, &ignored) != CF_OK)
        return;
    snprintf(target, sizeof(target), "app connection %s", conn.name);
    snprintf(purpose, sizeof(purpose), "replace its %s (and same-named fields) with the new value",
             rotator->secret_output);
    fn(ctx, "push", "WRITE", target, purpose);
    fn(ctx, "push", "CHECK", target, "the connection's check with the new credential");
}

/* Gives consumer c (an element of the rotation's consumers) the credential and verifies it. */
static enum cf_rc push_one(struct run *r, const json_t *c, const struct cf_rotation_ref *ref,
                           struct cf_err *err)
{
    const char *type = json_string_value(json_object_get(c, "type"));
    const char *connection_id = json_string_value(json_object_get(c, "connectionId"));
    const struct cf_consumer_ops *ops = type ? consumer_of(r->core, type) : NULL;
    const json_t *config = json_object_get(c, "config");
    struct cf_conn_opened opened = {0};
    const struct cf_provider_conn *conn = NULL;
    bool app_connection = type && strcmp(type, APP_CONNECTION) == 0;
    if (!ops && !app_connection) {
        r->cause = "consumer";
        return cf_err_set(err, CF_EINTERNAL, "consumer type '%.40s' is not built in",
                          type ? type : "");
    }
    enum cf_rc rc = attempt(r, err);
    if (rc == CF_OK && app_connection)
        return push_app_connection(r, connection_id, err);
    if (rc == CF_OK)
        rc = open_conn(r, connection_id, ops->connection_app, &opened, &conn, err);
    if (rc == CF_OK)
        rc = ops->push(conn, config, ref, &r->cred, err);
    if (rc == CF_OK)
        crash_point("push");
    if (rc == CF_OK)
        rc = ops->verify(conn, config, ref, &r->cred, err);
    cf_connection_close(&opened);
    return rc;
}

static enum cf_rc step_push(struct run *r, struct cf_err *err)
{
    struct cf_rotation *rot = r->rot;
    struct cf_rotation_ref ref = ref_of(r);
    enum cf_rc rc = need_cred(r, err);
    size_t n = json_array_size(r->consumers);
    while (rc == CF_OK && (size_t)rot->pending_consumer < n) {
        const json_t *c = json_array_get(r->consumers, (size_t)rot->pending_consumer);
        char message[128];
        rc = push_one(r, c, &ref, err);
        if (rc != CF_OK) {
            /* A consumer that throttles or cannot be reached says so; any other failure is the
             * consumer's refusal, named by its place. */
            if (!r->cause && rc != CF_ERATELIMIT && rc != CF_EIO)
                r->cause = "consumer";
            return rc;
        }
        snprintf(message, sizeof(message), "consumer %lld (%.40s) updated and verified",
                 (long long)rot->pending_consumer, json_string_value(json_object_get(c, "type")));
        rot->pending_consumer++;
        rc = save(r, "push", "ok", NULL, message, rot->pending_cred_id, false, err);
    }
    if (rc == CF_OK)
        rc = advance(r, "push", "syncs", "every consumer holds the new credential",
                     rot->pending_cred_id, err);
    return rc;
}

/* The syncs of the rotation's folder: done when every auto-sync of that folder delivered the
 * change; a failed one fails the step (the old credential stays valid). */
static enum cf_rc step_syncs(struct run *r, struct cf_err *err)
{
    struct cf_rotation *rot = r->rot;
    struct cf_sync_list syncs = {0};
    bool pending = false;
    enum cf_rc rc = cf_store_sync_list(r->core->store, rot->project_id, &syncs, err);
    for (size_t i = 0; rc == CF_OK && i < syncs.n; i++) {
        const struct cf_sync *s = &syncs.items[i];
        if (!s->auto_sync || strcmp(s->env_id, rot->env_id) != 0 ||
            strcmp(s->folder_path, rot->folder_path) != 0)
            continue;
        if (strcmp(s->sync_status, "failed") == 0) {
            r->cause = "sync";
            rc = cf_err_set(err, CF_EIO, "secret sync '%s' failed: %s", s->name, s->last_error);
        } else if (s->pending_gen > s->done_gen || strcmp(s->sync_status, "succeeded") != 0) {
            pending = true;
        }
    }
    cf_sync_list_release(&syncs);
    if (rc != CF_OK)
        return rc;
    if (pending) {
        r->waiting = true;
        rot->next_attempt_at = cf_now_ms() + SYNC_POLL_MS;
        return save(r, "syncs", "waiting", NULL, "waiting for the syncs of the folder",
                    rot->pending_cred_id, true, err);
    }
    /* Everything uses the new credential: it becomes the current one, the old one waits out
     * the grace period. */
    int64_t now = cf_now_ms();
    char promoted[CF_ROTATION_CRED_ID_MAX];
    cf_strlcpy(promoted, rot->pending_cred_id, sizeof(promoted));
    if (rot->current_cred_id[0])
        cf_strlcpy(rot->previous_cred_id, rot->current_cred_id, sizeof(rot->previous_cred_id));
    cf_strlcpy(rot->current_cred_id, rot->pending_cred_id, sizeof(rot->current_cred_id));
    rot->current_expires_at = rot->pending_expires_at;
    rot->generation = rot->pending_generation;
    rot->grace_until = now + rot->grace_period_ms;
    return advance(r, "syncs", rot->previous_cred_id[0] ? "grace" : "revoke",
                   "the new credential is current", promoted, err);
}

static enum cf_rc step_grace(struct run *r, struct cf_err *err)
{
    struct cf_rotation *rot = r->rot;
    if (cf_now_ms() < rot->grace_until) {
        r->waiting = true;
        rot->next_attempt_at = rot->grace_until;
        return save(r, "grace", "waiting", NULL,
                    "the previous credential stays valid until the "
                    "grace period ends",
                    rot->previous_cred_id, true, err);
    }
    return advance(r, "grace", "revoke", "the grace period ended", rot->previous_cred_id, err);
}

/* *gone: the provider's list of what the rotation issued (ref->generation's and every other) no
 * longer holds id. A list that fails leaves *gone false: the revoke, repeatable, decides. */
static void issued_gone(struct run *r, const struct cf_rotation_ref *ref, const char *id,
                        bool *gone)
{
    char **ids = NULL;
    size_t n = 0;
    struct cf_err ignored;
    *gone = false;
    cf_err_clear(&ignored);
    if (r->ops->list_issued(r->conn, r->params, ref, &ids, &n, &ignored) != CF_OK)
        return;
    *gone = true;
    for (size_t i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0)
            *gone = false;
    cf_rotated_ids_free(ids, n);
}

static enum cf_rc step_revoke(struct run *r, struct cf_err *err)
{
    struct cf_rotation *rot = r->rot;
    struct cf_rotation_ref ref = ref_of(r);
    char revoked[CF_ROTATION_CRED_ID_MAX];
    bool gone = false;
    cf_strlcpy(revoked, rot->previous_cred_id, sizeof(revoked));
    /* An earlier attempt may have revoked it and died before recording that: where the provider
     * can list what the rotation issued, a credential no longer there is not revoked again. The
     * list holds the rotation's own generations only: a credential adopted at creation (the one
     * generation 1 replaced) is revoked again instead, which is repeatable. */
    if (revoked[0] && rot->step_attempts > 0 && r->ops->list_issued && rot->generation > 1)
        issued_gone(r, &ref, revoked, &gone);
    enum cf_rc rc = attempt(r, err);
    if (rc == CF_OK && revoked[0] && !gone)
        rc = r->ops->revoke(r->conn, r->params, &ref, revoked, err);
    if (rc != CF_OK)
        return rc;
    crash_point("revoke");
    int64_t now = cf_now_ms();
    rot->previous_cred_id[0] = '\0';
    rot->pending_step[0] = '\0';
    rot->pending_generation = 0;
    rot->pending_cred_id[0] = '\0';
    rot->pending_expires_at = 0;
    rot->pending_version = 0;
    rot->pending_consumer = 0;
    rot->grace_until = 0;
    rot->step_attempts = 0;
    rot->step_started_at = 0;
    rot->next_attempt_at = 0;
    rot->last_error[0] = rot->last_error_cause[0] = rot->last_error_step[0] = '\0';
    rot->notified_error[0] = '\0';
    cf_strlcpy(rot->status, "succeeded", sizeof(rot->status));
    rot->last_rotated_at = now;
    rot->next_rotation_at = rot->auto_rotate ? cf_rotation_next_at(rot) : 0;
    return save(r, "revoke", "ok", NULL,
                revoked[0] ? "revoked the previous credential; done" : "nothing to revoke; done",
                revoked, true, err);
}

/* Records a failure of the running step: the old credential stays, the step is retried after a
 * backoff, the channels are told once per distinct failure. */
static enum cf_rc fail(struct run *r, enum cf_rc outcome, const struct cf_err *why,
                       struct cf_err *err)
{
    struct cf_rotation *rot = r->rot;
    const char *cause = r->cause ? r->cause : cf_rc_cause(outcome);
    char message[CF_ROTATION_ERROR_MAX + 1], hash[65];
    int64_t delay = BACKOFF_FIRST_MS;
    for (int64_t a = 1; a < rot->step_attempts && delay < BACKOFF_MAX_MS; a++)
        delay *= 2;
    if (delay > BACKOFF_MAX_MS)
        delay = BACKOFF_MAX_MS;
    if (why->retry_after_s > 0 && (int64_t)why->retry_after_s * 1000 > delay)
        delay = (int64_t)why->retry_after_s * 1000;
    snprintf(message, sizeof(message), "%s", why->msg[0] ? why->msg : cf_rc_str(outcome));
    uint8_t h[32];
    char text[CF_ROTATION_ERROR_MAX + 64];
    snprintf(text, sizeof(text), "%s|%s", r->step, message);
    crypto_generichash(h, sizeof(h), (const unsigned char *)text, strlen(text), NULL, 0);
    sodium_bin2hex(hash, sizeof(hash), h, sizeof(h));
    cf_strlcpy(rot->last_error, message, sizeof(rot->last_error));
    cf_strlcpy(rot->last_error_cause, cause, sizeof(rot->last_error_cause));
    cf_strlcpy(rot->last_error_step, r->step, sizeof(rot->last_error_step));
    cf_strlcpy(rot->status, "failed", sizeof(rot->status));
    rot->next_attempt_at = cf_now_ms() + delay;
    cf_log_event(CF_LOG_WARN, "rotation_failed", CF_LOG_TEXT("rotation", rot->id),
                 CF_LOG_WORD("step", r->step), CF_LOG_WORD("cause", cause),
                 CF_LOG_INT("attempt", rot->step_attempts), CF_LOG_MS("retry_in", delay),
                 CF_LOG_TEXT("error", message));
    if (strcmp(rot->notified_error, hash) != 0) {
        char key[CF_UUID_LEN + 96], notice[2048];
        snprintf(key, sizeof(key), "rotation:%s:%.16s", rot->id, hash);
        snprintf(notice, sizeof(notice),
                 "Secret rotation '%s' (%s) failed at step '%s' (%s): %s; the previous credential "
                 "stays in use",
                 rot->name, rot->type, r->step, cause, message);
        json_t *item =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "kind", "secret-rotation",
                      "rotationId", rot->id, "name", rot->name, "type", rot->type, "projectId",
                      rot->project_id, "step", r->step, "cause", cause, "error", message);
        char *json = item ? json_dumps(item, JSON_COMPACT) : NULL;
        json_decref(item);
        cf_channels_alert(r->core, rot->project_id, key, "rotation-failed", notice, json);
        cf_json_free_text(json);
        cf_strlcpy(rot->notified_error, hash, sizeof(rot->notified_error));
    }
    return save(r, r->step, "failed", cause, message, rot->pending_cred_id, true, err);
}

/* Sets up a run of the claimed rotation: its JSON, scope and connection. */
static enum cf_rc run_open(struct run *r, struct cf_err *err)
{
    struct cf_rotation *rot = r->rot;
    r->ops = rotator_of(r->core, rot->type);
    if (!r->ops) {
        r->cause = "type";
        return cf_err_set(err, CF_EINTERNAL, "rotation type '%s' is not built in", rot->type);
    }
    r->params = json_loads(rot->parameters, 0, NULL);
    r->mapping = json_loads(rot->secrets_mapping, 0, NULL);
    r->consumers = json_loads(rot->consumers, 0, NULL);
    if (!r->params || !r->mapping || !json_is_array(r->consumers))
        return cf_err_set(err, CF_ESTORE, "the stored rotation '%s' does not parse", rot->id);
    enum cf_rc rc = cf_scope_resolve(r->core, &engine, CF_ACTION_EDIT, rot->project_id, rot->env_id,
                                     rot->folder_path, &r->scope, err);
    if (rc != CF_OK) {
        r->cause = "secrets";
        return rc;
    }
    return open_conn(r, rot->connection_id, r->ops->connection_app, &r->opened, &r->conn, err);
}

static enum cf_rc run_step(struct run *r, struct cf_err *err)
{
    const char *step = r->rot->pending_step;
    if (strcmp(step, "issue") == 0)
        return step_issue(r, err);
    if (strcmp(step, "store") == 0)
        return step_store(r, err);
    if (strcmp(step, "verify") == 0)
        return step_verify(r, err);
    if (strcmp(step, "push") == 0)
        return step_push(r, err);
    if (strcmp(step, "syncs") == 0)
        return step_syncs(r, err);
    if (strcmp(step, "grace") == 0)
        return step_grace(r, err);
    if (strcmp(step, "revoke") == 0)
        return step_revoke(r, err);
    return cf_err_set(err, CF_ESTORE, "unknown rotation step '%s'", step);
}

enum cf_rc cf_rotations_execute(struct cf_core *core, const char *id, const char *owner, bool *ran,
                                struct cf_err *err)
{
    struct cf_rotation *rot = calloc(1, sizeof(*rot));
    struct run *r = calloc(1, sizeof(*r));
    bool claimed = false;
    enum cf_rc rc;

    *ran = false;
    if (!rot || !r) {
        free(rot);
        free(r);
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    rc = cf_store_rotation_claim(core->store, id, owner, cf_now_ms(), CLAIM_LEASE_MS, &claimed, rot,
                                 err);
    if (rc != CF_OK || !claimed)
        goto out;
    *ran = true;
    r->core = core;
    r->rot = rot;
    r->owner = owner;
    /* A run asked for is this one, whether it starts a rotation or continues one. */
    rot->run_requested = false;
    if (!rot->pending_step[0]) {
        /* A new rotation starts: the generation it issues is recorded before anything else. */
        cf_strlcpy(rot->pending_step, "issue", sizeof(rot->pending_step));
        rot->pending_generation = rot->generation + 1;
        rot->pending_cred_id[0] = '\0';
        rot->pending_consumer = 0;
        rot->step_attempts = 0;
        cf_strlcpy(rot->status, "rotating", sizeof(rot->status));
        r->step = "start";
        rc = save(r, "start", "ok", NULL, "rotation started", NULL, false, err);
        if (rc != CF_OK)
            goto out;
    }
    struct cf_err why;
    cf_err_clear(&why);
    r->step = rot->pending_step;
    enum cf_rc outcome = run_open(r, &why);
    while (outcome == CF_OK && rot->pending_step[0] && !r->waiting) {
        cf_strlcpy(r->step_buf, rot->pending_step, sizeof(r->step_buf));
        r->step = r->step_buf;
        r->cause = NULL;
        if (strcmp(rot->status, "failed") == 0)
            cf_strlcpy(rot->status, "rotating", sizeof(rot->status));
        outcome = run_step(r, &why);
        if (outcome == CF_ECONFLICT && strstr(why.msg, "the claim on secret rotation")) {
            rc = cf_err_set(err, CF_ECONFLICT, "%s", why.msg);
            goto out;
        }
    }
    if (outcome != CF_OK) {
        r->step = r->step && strcmp(r->step, "start") != 0 ? r->step : rot->pending_step;
        rc = fail(r, outcome, &why, err);
    } else if (!rot->pending_step[0]) {
        cf_log_event(CF_LOG_INFO, "rotation_done", CF_LOG_TEXT("rotation", rot->id),
                     CF_LOG_INT("generation", rot->generation));
    }
out:
    run_release(r);
    free(r);
    free(rot);
    return rc;
}

enum cf_rc cf_rotations_trigger(struct cf_core *core, const struct cf_principal *who,
                                const char *type, const char *id, const char *owner,
                                struct cf_rotation_view *out, struct cf_err *err)
{
    bool ran = false;
    enum cf_rc rc = cf_rotations_get(core, who, type, id, out, err);
    if (rc == CF_OK)
        rc = cf_store_rotation_request(core->store, out->rot.id, err);
    if (rc == CF_OK)
        rc = cf_rotations_execute(core, out->rot.id, owner, &ran, err);
    if (rc == CF_OK)
        wake(core); /* what waits, or a run held elsewhere, the worker continues */
    if (rc == CF_OK)
        rc = cf_rotations_get(core, who, type, id, out, err);
    return rc;
}

enum cf_rc cf_rotations_dry_run(struct cf_core *core, const struct cf_principal *who,
                                const char *type, const char *id,
                                void (*fn)(void *ctx, const char *step, const char *method,
                                           const char *target, const char *purpose),
                                void *ctx, struct cf_err *err)
{
    struct cf_rotation_view *v = calloc(1, sizeof(*v));
    struct run r = {0};
    enum cf_rc rc = v ? cf_rotations_get(core, who, type, id, v, err)
                      : cf_err_set(err, CF_ENOMEM, "out of memory");
    if (rc != CF_OK) {
        free(v);
        return rc;
    }
    r.core = core;
    r.rot = &v->rot;
    r.ops = rotator_of(core, v->rot.type);
    if (!r.ops)
        rc = cf_err_set(err, CF_EINTERNAL, "rotation type '%s' is not built in", v->rot.type);
    if (rc == CF_OK) {
        r.params = json_loads(v->rot.parameters, 0, NULL);
        r.mapping = json_loads(v->rot.secrets_mapping, 0, NULL);
        r.consumers = json_loads(v->rot.consumers, 0, NULL);
        if (!r.params || !r.mapping || !json_is_array(r.consumers))
            rc = cf_err_set(err, CF_ESTORE, "the stored rotation '%s' does not parse", id);
    }
    if (rc == CF_OK) {
        rc = open_conn(&r, v->rot.connection_id, r.ops->connection_app, &r.opened, &r.conn, err);
    }
    if (rc == CF_OK) {
        struct cf_rotation_ref ref = ref_of(&r);
        /* The plans name the calls without making them (a connection is opened, not used). */
        if (r.ops->plan)
            r.ops->plan(r.conn, r.params, &ref, fn, ctx);
        for (size_t i = 0; r.ops->outputs[i]; i++) {
            char target[CF_PATH_MAX + CF_KEY_MAX + CF_SLUG_MAX + 8];
            snprintf(target, sizeof(target), "%s%s%s%s", v->env_slug, v->rot.folder_path,
                     strcmp(v->rot.folder_path, "/") == 0 ? "" : "/",
                     key_of(&r, r.ops->outputs[i]));
            fn(ctx, "store", "WRITE", target, "a new version of the mapped secret");
        }
        size_t i;
        json_t *c;
        json_array_foreach(r.consumers, i, c)
        {
            const char *ctype = json_string_value(json_object_get(c, "type"));
            const struct cf_consumer_ops *ops = consumer_of(core, ctype);
            struct cf_conn_opened opened = {0};
            const struct cf_provider_conn *conn = NULL;
            if (ctype && strcmp(ctype, APP_CONNECTION) == 0)
                plan_app_connection(core, json_string_value(json_object_get(c, "connectionId")),
                                    r.ops, fn, ctx);
            if (ops && ops->plan &&
                open_conn(&r, json_string_value(json_object_get(c, "connectionId")),
                          ops->connection_app, &opened, &conn, err) == CF_OK)
                ops->plan(conn, json_object_get(c, "config"), &ref, fn, ctx);
            cf_connection_close(&opened);
        }
        fn(ctx, "syncs", "WAIT", v->rot.folder_path, "the syncs of the folder deliver the change");
        fn(ctx, "grace", "WAIT", "", "the grace period before the previous credential is revoked");
    }
    run_release(&r);
    free(v);
    return rc;
}
