/* Marking secrets leaked (core/leaks.h): checks, the mark, the channels' notice and the rotation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/channels.h"
#include "core/leaks.h"
#include "core/names.h"
#include "core/rotations.h"
#include "core/render.h"
#include "util/log.h"
#include "util/str.h"
#include "util/time.h"
#include "util/wipemem.h"
#include "util/banned.h"

/* A required text field: present, not empty, at most max bytes, printable (no control
 * characters, valid UTF-8): it is shown in listings, notices and terminals. */
static enum cf_rc check_text(const char *value, const char *field, size_t max, struct cf_err *err)
{
    if (!value || !*value)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: required", field);
    size_t len = strlen(value);
    if (len > max)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: longer than %zu bytes", field, max);
    if (!cf_utf8_valid(value, len))
        return cf_err_field(err, CF_EVALIDATION, field, "%s: not valid UTF-8", field);
    for (const unsigned char *c = (const unsigned char *)value; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return cf_err_field(err, CF_EVALIDATION, field, "%s: must not hold control characters",
                                field);
    return CF_OK;
}

static enum cf_rc check_fingerprint(const char *value, struct cf_err *err)
{
    if (!value || !*value)
        return CF_OK;
    if (strlen(value) > CF_LEAK_FINGERPRINT_MAX)
        return cf_err_field(err, CF_EVALIDATION, "fingerprint", "fingerprint: longer than %d bytes",
                            CF_LEAK_FINGERPRINT_MAX);
    for (const char *c = value; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == ':' || *c == '.'))
            return cf_err_field(err, CF_EVALIDATION, "fingerprint",
                                "fingerprint: letters, digits, '-', '_', ':' and '.' only");
    return CF_OK;
}

static const char *actor_kind(const struct cf_principal *who)
{
    return who->kind == CF_PRINCIPAL_ADMIN  ? "admin"
           : who->kind == CF_PRINCIPAL_USER ? "user"
                                            : "identity";
}

static const char *actor_name(const struct cf_principal *who)
{
    return who->kind == CF_PRINCIPAL_ADMIN  ? "admin"
           : who->kind == CF_PRINCIPAL_USER ? who->email
                                            : who->name;
}

/* Tells the project's channels, once per secret and version (the notice's item key). */
static void notify_leak(struct cf_core *core, const struct cf_leak_outcome *o)
{
    /* room for the longest names; the notice keeps its first CF_NOTICE_MESSAGE_MAX bytes */
    char key[CF_UUID_LEN + 96], message[4096];
    snprintf(key, sizeof(key), "leak:%s:%lld", o->leak.secret_id, (long long)o->leak.version);
    snprintf(message, sizeof(message),
             "Secret '%s' (environment '%s', path '%s', version %lld) was found leaked at %s "
             "(marked by %s %s): rotate it or change its value",
             o->key, o->env_slug, o->path, (long long)o->leak.version, o->leak.source,
             o->leak.actor_kind, o->leak.actor_name);
    json_t *item =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:o}", "kind", "secret-leak",
                  "projectId", o->project_id, "environment", o->env_slug, "secretPath", o->path,
                  "secretKey", o->key, "secretId", o->leak.secret_id, "version",
                  (json_int_t)o->leak.version, "source", o->leak.source, "fingerprint",
                  o->leak.fingerprint, "leakedAt", cf_time_json(o->leak.leaked_at));
    char *json = item ? json_dumps(item, JSON_COMPACT) : NULL;
    json_decref(item);
    cf_channels_alert(core, o->project_id, key, "secret-leaked", message, json);
    cf_json_free_text(json);
}

/* Whether the JSON object mapping (output -> secret key) names key. */
static bool maps_key(const char *mapping, const char *key)
{
    json_t *root = json_loads(mapping, 0, NULL), *value;
    const char *output;
    bool found = false;
    json_object_foreach(root, output, value)
    {
        (void)output;
        if (json_is_string(value) && strcmp(json_string_value(value), key) == 0)
            found = true;
    }
    json_decref(root);
    return found;
}

/* Asks for the rotation whose output is the secret of o, recording the outcome in o. */
static enum cf_rc rotate(struct cf_core *core, const struct cf_principal *who,
                         const struct cf_scope *scope, const char *owner, struct cf_leak_outcome *o,
                         struct cf_err *err)
{
    struct cf_rotation_list list = {0};
    struct cf_rotation_view *view = NULL;
    struct cf_project project = {0};
    struct cf_err why = {0};
    const struct cf_rotation *match = NULL;
    enum cf_rc rc = cf_store_rotation_list(core->store, scope->project.id, &list, err);
    if (rc != CF_OK)
        return rc;
    for (size_t i = 0; i < list.n && !match; i++)
        if (strcmp(list.items[i].env_id, scope->env.id) == 0 &&
            strcmp(list.items[i].folder_path, scope->folder.path) == 0 &&
            maps_key(list.items[i].secrets_mapping, o->key))
            match = &list.items[i];
    o->rotation = CF_LEAK_ROTATION_NONE;
    if (!match)
        goto out;
    cf_strlcpy(o->rotation_id, match->id, sizeof(o->rotation_id));
    cf_strlcpy(o->rotation_name, match->name, sizeof(o->rotation_name));
    view = calloc(1, sizeof(*view));
    if (!view) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    /* cf_rotations_get answers a rotation who may not run as missing: say what is missing */
    enum cf_rc outcome = cf_project_for_admin(core, who, scope->project.id, &project, &why);
    if (outcome == CF_OK)
        outcome = cf_rotations_trigger(core, who, NULL, match->id, owner, view, &why);
    if (outcome != CF_OK) {
        o->rotation = CF_LEAK_ROTATION_FAILED;
        cf_strlcpy(o->rotation_error, why.msg[0] ? why.msg : cf_rc_str(outcome),
                   sizeof(o->rotation_error));
        goto out;
    }
    o->rotation = CF_LEAK_ROTATION_TRIGGERED;
    cf_strlcpy(o->rotation_status, view->rot.status, sizeof(o->rotation_status));
    if (strcmp(view->rot.status, "failed") == 0)
        cf_strlcpy(o->rotation_error, view->rot.last_error, sizeof(o->rotation_error));
out:
    free(view);
    cf_project_release(&project);
    cf_rotation_list_release(&list);
    return rc;
}

enum cf_rc cf_leaks_mark(struct cf_core *core, const struct cf_principal *who,
                         const struct cf_leak_spec *spec, const char *owner,
                         struct cf_leak_outcome *out, struct cf_err *err)
{
    struct cf_scope scope = {0};
    struct cf_secret row = {0};
    struct cf_secret_leak leak = {0};
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = check_text(spec->project, "projectId", CF_UUID_LEN + CF_SLUG_MAX, err);
    if (rc == CF_OK)
        rc = check_text(spec->environment, "environment", CF_SLUG_MAX, err);
    if (rc == CF_OK)
        rc = check_text(spec->secret_key, "secretKey", CF_KEY_MAX, err);
    if (rc == CF_OK)
        rc = cf_key_check(spec->secret_key, "secretKey", err);
    if (rc == CF_OK)
        rc = check_text(spec->source, "source", CF_LEAK_SOURCE_MAX, err);
    if (rc == CF_OK)
        rc = check_fingerprint(spec->fingerprint, err);
    if (rc == CF_OK)
        rc = cf_scope_resolve(core, who, CF_ACTION_READ, spec->project, spec->environment,
                              spec->secret_path ? spec->secret_path : "/", &scope, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_authz_check(core, who, CF_ACTION_READ, scope.project.id, &scope.env, scope.folder.path,
                        err);
    if (rc == CF_OK) {
        rc = cf_store_secret_get(core->store, scope.folder.id, spec->secret_key, 0, &row, err);
        if (rc == CF_ENOTFOUND)
            rc = cf_err_field(err, CF_ENOTFOUND, "secretKey", "Secret with name '%s' not found",
                              spec->secret_key);
    }
    if (rc != CF_OK)
        goto out;
    cf_strlcpy(leak.secret_id, row.id, sizeof(leak.secret_id));
    leak.version = row.version;
    leak.leaked_at = cf_now_ms();
    cf_strlcpy(leak.source, spec->source, sizeof(leak.source));
    cf_strlcpy(leak.fingerprint, spec->fingerprint ? spec->fingerprint : "",
               sizeof(leak.fingerprint));
    cf_strlcpy(leak.actor_kind, actor_kind(who), sizeof(leak.actor_kind));
    cf_strlcpy(leak.actor_id, who->id, sizeof(leak.actor_id));
    cf_strlcpy(leak.actor_name, actor_name(who), sizeof(leak.actor_name));
    rc = cf_store_leak_mark(core->store, &leak, &out->leak, &out->created, err);
    if (rc != CF_OK)
        goto out;
    cf_strlcpy(out->project_id, scope.project.id, sizeof(out->project_id));
    cf_strlcpy(out->env_slug, scope.env.slug, sizeof(out->env_slug));
    cf_strlcpy(out->path, scope.folder.path, sizeof(out->path));
    cf_strlcpy(out->key, spec->secret_key, sizeof(out->key));
    if (out->created) {
        cf_log_event(CF_LOG_WARN, "secret_leaked", CF_LOG_TEXT("project", out->project_id),
                     CF_LOG_TEXT("environment", out->env_slug), CF_LOG_TEXT("path", out->path),
                     CF_LOG_TEXT("key", out->key), CF_LOG_TEXT("source", out->leak.source));
        notify_leak(core, out);
    }
    if (spec->rotate)
        rc = rotate(core, who, &scope, owner, out, err);
out:
    cf_secret_release(&row);
    cf_scope_release(&scope);
    return rc;
}

enum cf_rc cf_leaks_list(struct cf_core *core, const char *project_id,
                         struct cf_secret_leak_list *out, struct cf_err *err)
{
    return cf_store_leak_list(core->store, project_id, out, err);
}
