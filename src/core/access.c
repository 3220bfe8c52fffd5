/* Access requests and temporary grants (core/access.h): validation, who may decide, the decisions
 * as conditional updates in the store, notices on the channels, and the grant check that
 * authorization consults. */
#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/access.h"
#include "core/authz.h"
#include "core/channels.h"
#include "util/id.h"
#include "util/log.h"
#include "util/str.h"
#include "util/time.h"
#include "util/wipemem.h"
#include "util/banned.h"

/* The actions a grant may carry: a project role's secret actions, never administration. */
static const struct {
    const char *name;
    enum cf_action action;
} grantable[] = {
    {"read", CF_ACTION_READ},
    {"create", CF_ACTION_CREATE},
    {"edit", CF_ACTION_EDIT},
    {"delete", CF_ACTION_DELETE},
};

void cf_access_actions_text(uint32_t mask, char out[CF_ACCESS_ACTIONS_TEXT_MAX])
{
    size_t at = 0;
    out[0] = '\0';
    for (size_t i = 0; i < CF_ARRAY_SIZE(grantable); i++) {
        if (!(mask & CF_ACTION_BIT(grantable[i].action)))
            continue;
        int n = snprintf(out + at, CF_ACCESS_ACTIONS_TEXT_MAX - at, "%s%s", at ? "," : "",
                         grantable[i].name);
        if (n < 0 || (size_t)n >= CF_ACCESS_ACTIONS_TEXT_MAX - at)
            break;
        at += (size_t)n;
    }
}

const char *cf_access_request_state(const struct cf_access_request *req, int64_t now_ms)
{
    if (strcmp(req->status, "granted") == 0 && req->ends_at <= now_ms)
        return "expired";
    return req->status;
}

static enum cf_rc parse_actions(const char *text, uint32_t *mask, struct cf_err *err)
{
    struct cf_list_iter it;
    struct cf_str item;
    *mask = 0;
    if (!text || !text[0]) {
        *mask = CF_ACTION_BIT(CF_ACTION_READ);
        return CF_OK;
    }
    cf_list_init(&it, text);
    while (cf_list_next(&it, &item)) {
        bool known = false;
        for (size_t i = 0; i < CF_ARRAY_SIZE(grantable) && !known; i++) {
            if (item.n == strlen(grantable[i].name) &&
                memcmp(item.p, grantable[i].name, item.n) == 0) {
                *mask |= CF_ACTION_BIT(grantable[i].action);
                known = true;
            }
        }
        if (!known)
            return cf_err_field(err, CF_EVALIDATION, "actions",
                                "actions: '%.*s' is not one of read, create, edit, delete",
                                (int)(item.n > 32 ? 32 : item.n), item.p);
    }
    if (!*mask)
        return cf_err_field(err, CF_EVALIDATION, "actions",
                            "actions: name at least one of read, create, edit, delete");
    return CF_OK;
}

static int64_t max_duration_s(const struct cf_core *core)
{
    return core->access_max_s > 0 ? core->access_max_s : CF_ACCESS_MAX_DEFAULT_S;
}

/* A duration of more than 0 seconds and at most the configured maximum. */
static enum cf_rc parse_duration(const struct cf_core *core, const char *text, int64_t *seconds,
                                 struct cf_err *err)
{
    struct cf_err why;
    int64_t max = max_duration_s(core);
    *seconds = 0;
    if (!text || !text[0])
        return cf_err_field(err, CF_EVALIDATION, "duration",
                            "duration: required, e.g. 2h (at most %lld seconds)", (long long)max);
    if (cf_duration_parse(text, seconds, &why) != CF_OK || *seconds <= 0)
        return cf_err_field(err, CF_EVALIDATION, "duration",
                            "duration: '%.32s' is not a duration of more than 0 such as 30m or 2h",
                            text);
    if (*seconds > max)
        return cf_err_field(err, CF_EVALIDATION, "duration",
                            "duration: '%.32s' is longer than the longest access this server "
                            "grants (%lld seconds, --access-max-duration)",
                            text, (long long)max);
    return CF_OK;
}

static enum cf_rc text_field(const char *value, const char *field, bool required,
                             char out[CF_ACCESS_REASON_MAX + 1], struct cf_err *err)
{
    if (required && (!value || !value[0]))
        return cf_err_field(err, CF_EVALIDATION, field, "%s: required", field);
    if (value && strlen(value) > CF_ACCESS_REASON_MAX)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: longer than %d bytes", field,
                            CF_ACCESS_REASON_MAX);
    cf_strlcpy(out, value ? value : "", CF_ACCESS_REASON_MAX + 1);
    return CF_OK;
}

/* Who decides, as the store records it: a user's email, "admin" for the admin token. */
static const char *decider_name(const struct cf_principal *who)
{
    return who->kind == CF_PRINCIPAL_USER    ? who->email
           : who->kind == CF_PRINCIPAL_ADMIN ? "admin"
                                             : who->name;
}

/* CF_OK when who may decide requests in project_id: the admin, an org owner or admin, or a project
 * administrator; CF_EFORBIDDEN naming the rule otherwise. */
static enum cf_rc may_decide(struct cf_core *core, const struct cf_principal *who,
                             const char *project_id, struct cf_err *err)
{
    struct cf_err ignored;
    if (cf_principal_is_admin(who))
        return CF_OK;
    if (who && who->kind == CF_PRINCIPAL_USER &&
        cf_authz_check(core, who, CF_ACTION_ADMIN, project_id, NULL, NULL, &ignored) == CF_OK)
        return CF_OK;
    return cf_err_set(err, CF_EFORBIDDEN,
                      "only a project administrator or an org owner or admin may decide access "
                      "requests in this project");
}

/* Tells the channels of the project (and the server-wide ones) that req was made or decided
 * (event: "request", "granted", "denied", "revoked"), with where to see it. */
static void notify(struct cf_core *core, const struct cf_access_request *req, const char *event)
{
    char key[CF_UUID_LEN + 32], threshold[16], message[CF_NOTICE_MESSAGE_MAX + 1];
    char actions[CF_ACCESS_ACTIONS_TEXT_MAX];
    char until[CF_TIME_RFC3339_LEN] = "", link[64];
    cf_access_actions_text(req->actions, actions);
    snprintf(key, sizeof(key), "access:%s:%s", req->id, event);
    snprintf(threshold, sizeof(threshold), "access-%s", event);
    snprintf(link, sizeof(link), "/api/v1/access-requests/%s", req->id);
    if (req->ends_at)
        cf_time_format(req->ends_at, until);
    if (strcmp(event, "request") == 0)
        snprintf(message, sizeof(message),
                 "%s asks for %s in %s:%s for %lld s: \"%.200s\". Decide with `coffer access grant "
                 "%s` or `coffer access deny %s` (%s)",
                 req->user_email, actions, req->env_slug, req->path_glob,
                 (long long)req->duration_s, req->reason, req->id, req->id, link);
    else
        snprintf(message, sizeof(message),
                 "Access request %s of %s (%s in %s:%s) was %s by %s%s%s (%s)", req->id,
                 req->user_email, actions, req->env_slug, req->path_glob, event,
                 strcmp(event, "revoked") == 0 ? req->revoked_by : req->decided_by,
                 strcmp(event, "granted") == 0 ? " until " : "",
                 strcmp(event, "granted") == 0 ? until : "", link);
    json_t *item =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "kind", "access-request",
                  "event", event, "requestId", req->id, "user", req->user_email, "projectId",
                  req->project_id, "environment", req->env_slug, "secretPath", req->path_glob,
                  "actions", actions, "endsAt", until, "link", link);
    char *text = item ? json_dumps(item, JSON_COMPACT) : NULL;
    json_decref(item);
    cf_channels_alert(core, req->project_id, key, threshold, message, text);
    cf_json_free_text(text);
}

enum cf_rc cf_access_request_create(struct cf_core *core, const struct cf_principal *who,
                                    const struct cf_access_spec *spec,
                                    struct cf_access_request *out, struct cf_err *err)
{
    struct cf_project project = {0};
    struct cf_env env = {0};
    struct cf_err gone;
    enum cf_rc rc = CF_OK;

    memset(out, 0, sizeof(*out));
    if (!who || who->kind != CF_PRINCIPAL_USER) {
        rc = cf_err_set(err, CF_EFORBIDDEN, "only a user may request access");
        goto out;
    }
    if (!spec->project || !spec->project[0]) {
        rc = cf_err_field(err, CF_EVALIDATION, "projectId", "projectId: required");
        goto out;
    }
    if (!spec->env || !spec->env[0]) {
        rc = cf_err_field(err, CF_EVALIDATION, "environment", "environment: required");
        goto out;
    }
    const char *path = spec->path && spec->path[0] ? spec->path : "/**";
    rc = cf_glob_check(path, "secretPath", err);
    if (rc == CF_OK)
        rc = parse_actions(spec->actions, &out->actions, err);
    if (rc == CF_OK)
        rc = parse_duration(core, spec->duration, &out->duration_s, err);
    if (rc == CF_OK)
        rc = text_field(spec->reason, "reason", true, out->reason, err);
    if (rc != CF_OK)
        goto out;
    rc = cf_store_project_get(core->store, spec->project, &project, &gone);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "Project with ID '%.64s' not found", spec->project);
    else if (rc != CF_OK)
        *err = gone;
    if (rc == CF_OK) {
        rc = cf_store_env_get(core->store, project.id, spec->env, &env, &gone);
        if (rc == CF_ENOTFOUND)
            rc =
                cf_err_set(err, CF_ENOTFOUND, "Environment with slug '%.64s' not found", spec->env);
        else if (rc != CF_OK)
            *err = gone;
    }
    if (rc != CF_OK)
        goto out;
    cf_uuid_new(out->id);
    cf_strlcpy(out->user_id, who->id, sizeof(out->user_id));
    cf_strlcpy(out->user_email, who->email, sizeof(out->user_email));
    cf_strlcpy(out->project_id, project.id, sizeof(out->project_id));
    cf_strlcpy(out->env_id, env.id, sizeof(out->env_id));
    cf_strlcpy(out->env_slug, env.slug, sizeof(out->env_slug));
    cf_strlcpy(out->path_glob, path, sizeof(out->path_glob));
    cf_strlcpy(out->status, "pending", sizeof(out->status));
    out->created_at = cf_now_ms();
    rc = cf_store_access_request_create(core->store, out, err);
    if (rc == CF_OK)
        notify(core, out, "request");
out:
    cf_project_release(&project);
    if (rc != CF_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

enum cf_rc cf_access_request_get(struct cf_core *core, const struct cf_principal *who,
                                 const char *id, struct cf_access_request *out, struct cf_err *err)
{
    struct cf_err refused;
    enum cf_rc rc = cf_store_access_request_get(core->store, id, out, err);
    if (rc != CF_OK)
        return rc;
    bool own = who && who->kind == CF_PRINCIPAL_USER && strcmp(who->id, out->user_id) == 0;
    if (!own && may_decide(core, who, out->project_id, &refused) != CF_OK) {
        memset(out, 0, sizeof(*out));
        return cf_err_set(err, CF_ENOTFOUND, "access request '%.64s' not found", id);
    }
    return CF_OK;
}

enum cf_rc cf_access_request_list(struct cf_core *core, const struct cf_principal *who,
                                  const char *project, const char *status,
                                  struct cf_access_request_list *out, struct cf_err *err)
{
    struct cf_project p = {0};
    struct cf_access_filter filter = {0};
    enum cf_rc rc = CF_OK;

    memset(out, 0, sizeof(*out));
    if (status && status[0]) {
        if (strcmp(status, "live") == 0)
            filter.live_at = cf_now_ms();
        else if (strcmp(status, "pending") == 0 || strcmp(status, "granted") == 0 ||
                 strcmp(status, "denied") == 0 || strcmp(status, "revoked") == 0)
            filter.status = status;
        else
            return cf_err_field(err, CF_EVALIDATION, "status",
                                "status: '%.32s' is not one of pending, granted, denied, revoked, "
                                "live",
                                status);
    }
    if (project && project[0]) {
        rc = cf_store_project_get(core->store, project, &p, err);
        if (rc == CF_ENOTFOUND)
            rc = cf_err_set(err, CF_ENOTFOUND, "Project with ID '%.64s' not found", project);
        if (rc == CF_OK)
            rc = may_decide(core, who, p.id, err);
        filter.project_id = p.id;
    } else if (!cf_principal_is_admin(who)) {
        if (!who || who->kind != CF_PRINCIPAL_USER)
            rc = cf_err_set(err, CF_EFORBIDDEN, "only a user has access requests");
        else
            filter.user_id = who->id;
    }
    if (rc == CF_OK)
        rc = cf_store_access_request_list(core->store, &filter, out, err);
    cf_project_release(&p);
    return rc;
}

/* Reads request id for a decision by who: may decide there, and (for a user) is not its
 * requester. */
static enum cf_rc load_for_decision(struct cf_core *core, const struct cf_principal *who,
                                    const char *id, const char *verb, struct cf_access_request *req,
                                    struct cf_err *err)
{
    enum cf_rc rc = cf_access_request_get(core, who, id, req, err);
    if (rc != CF_OK)
        return rc;
    if (who->kind == CF_PRINCIPAL_USER && strcmp(who->id, req->user_id) == 0)
        return cf_err_set(err, CF_EFORBIDDEN,
                          "you may not %s your own access request: another project administrator "
                          "or org owner or admin must",
                          verb);
    return may_decide(core, who, req->project_id, err);
}

enum cf_rc cf_access_request_grant(struct cf_core *core, const struct cf_principal *who,
                                   const char *id, const char *duration, const char *comment,
                                   struct cf_access_request *out, struct cf_err *err)
{
    int64_t seconds = 0;
    enum cf_rc rc = load_for_decision(core, who, id, "grant", out, err);
    if (rc == CF_OK && duration && duration[0])
        rc = parse_duration(core, duration, &seconds, err);
    else if (rc == CF_OK)
        seconds = out->duration_s;
    if (rc == CF_OK)
        rc = text_field(comment, "comment", false, out->comment, err);
    if (rc == CF_OK && seconds > max_duration_s(core)) /* asked under a larger maximum */
        seconds = max_duration_s(core);
    if (rc != CF_OK)
        goto out;
    int64_t now = cf_now_ms();
    cf_strlcpy(out->status, "granted", sizeof(out->status));
    cf_strlcpy(out->decided_by, decider_name(who), sizeof(out->decided_by));
    out->decided_at = now;
    out->starts_at = now;
    out->ends_at = now + seconds * 1000;
    rc = cf_store_access_request_decide(core->store, out, "pending", err);
    if (rc == CF_OK)
        notify(core, out, "granted");
out:
    if (rc != CF_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

enum cf_rc cf_access_request_deny(struct cf_core *core, const struct cf_principal *who,
                                  const char *id, const char *comment,
                                  struct cf_access_request *out, struct cf_err *err)
{
    enum cf_rc rc = load_for_decision(core, who, id, "deny", out, err);
    if (rc == CF_OK)
        rc = text_field(comment, "comment", false, out->comment, err);
    if (rc == CF_OK) {
        cf_strlcpy(out->status, "denied", sizeof(out->status));
        cf_strlcpy(out->decided_by, decider_name(who), sizeof(out->decided_by));
        out->decided_at = cf_now_ms();
        rc = cf_store_access_request_decide(core->store, out, "pending", err);
    }
    if (rc == CF_OK)
        notify(core, out, "denied");
    if (rc != CF_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

enum cf_rc cf_access_request_revoke(struct cf_core *core, const struct cf_principal *who,
                                    const char *id, const char *comment,
                                    struct cf_access_request *out, struct cf_err *err)
{
    int64_t now = cf_now_ms();
    enum cf_rc rc = cf_access_request_get(core, who, id, out, err);
    bool own = rc == CF_OK && who->kind == CF_PRINCIPAL_USER && strcmp(who->id, out->user_id) == 0;
    if (rc == CF_OK && !own)
        rc = may_decide(core, who, out->project_id, err);
    if (rc == CF_OK && strcmp(out->status, "granted") != 0)
        rc = cf_err_set(err, CF_ECONFLICT, "access request '%s' is %s, not granted", out->id,
                        out->status);
    if (rc == CF_OK && out->ends_at <= now)
        rc = cf_err_set(err, CF_ECONFLICT, "the grant of access request '%s' already ended",
                        out->id);
    if (rc == CF_OK && comment && comment[0])
        rc = text_field(comment, "comment", false, out->comment, err);
    if (rc == CF_OK) {
        cf_strlcpy(out->status, "revoked", sizeof(out->status));
        cf_strlcpy(out->revoked_by, decider_name(who), sizeof(out->revoked_by));
        out->revoked_at = now;
        out->ends_at = now;
        rc = cf_store_access_request_decide(core->store, out, "granted", err);
    }
    if (rc == CF_OK)
        notify(core, out, "revoked");
    if (rc != CF_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

bool cf_access_grant_allows(struct cf_core *core, const struct cf_principal *who,
                            enum cf_action action, const char *project_id, const struct cf_env *env,
                            const char *path)
{
    struct cf_access_grant_list grants = {0};
    struct cf_err err;
    bool allowed = false;

    if (!who || who->kind != CF_PRINCIPAL_USER || action == CF_ACTION_ADMIN || !project_id ||
        !env || !path)
        return false;
    if (cf_store_access_grants(core->store, who->id, project_id, &grants, &err) != CF_OK) {
        cf_log(CF_LOG_WARN, "access grants of user %s not read: %s", who->id, err.msg);
        return false;
    }
    int64_t now = cf_now_ms();
    for (size_t i = 0; i < grants.n && !allowed; i++) {
        const struct cf_access_grant *g = &grants.items[i];
        allowed = g->ends_at > now && (g->actions & CF_ACTION_BIT(action)) &&
                  strcmp(g->env_id, env->id) == 0 && cf_glob_match(g->path_glob, path);
        if (allowed && who->grant_used)
            cf_strlcpy(who->grant_used, g->id, CF_UUID_LEN);
    }
    cf_access_grant_list_release(&grants);
    return allowed;
}
