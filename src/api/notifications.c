/* Expiry notifications' API (docs/notifications.md), for the admin: channels (per project
 * or server-wide), a project's thresholds, a scan-and-deliver pass now, and the delivery log.
 *
 *   POST   /api/v1/notifications/channels {workspaceId?, type, name?, url | recipients, signingSecret?}
 *   GET    /api/v1/notifications/channels?workspaceId=
 *   DELETE /api/v1/notifications/channels/:channelId
 *   GET    /api/v1/notifications/settings?workspaceId=
 *   PUT    /api/v1/notifications/settings {workspaceId, thresholds: ["30d", "7d", "1d"]}
 *   POST   /api/v1/notifications/run
 *   GET    /api/v1/notifications/deliveries?workspaceId=&status=&limit=&offset= */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "api/http.h"
#include "crypto/serverkey.h"
#include "notify/notify.h"
#include "util/id.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

/* The project named by workspaceId (id or slug) in query or body, into id; "" when none named. */
static enum cf_rc project_of(struct cf_req *req, json_t *body, char id[CF_UUID_LEN],
                             struct cf_err *err)
{
    const char *name = NULL;
    enum cf_rc rc = body ? cf_json_string(body, "workspaceId", false, &name, err)
                         : cf_req_query(req, "workspaceId", &name, err);
    if (rc == CF_OK && !name && !body)
        rc = cf_req_query(req, "projectId", &name, err);
    id[0] = '\0';
    if (rc != CF_OK || !name || !*name)
        return rc;
    struct cf_project project = {0};
    struct cf_store *st = cf_req_core(req)->store;
    rc = st->ops->project_get(st, name, &project, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "Project with ID '%s' not found", name);
    if (rc == CF_OK)
        cf_strlcpy(id, project.id, CF_UUID_LEN);
    cf_project_release(&project);
    return rc;
}

static json_t *render_channel(const struct cf_channel *c)
{
    bool email = strcmp(c->type, "email") == 0;
    return json_pack("{s:s, s:o, s:s, s:s, s:s, s:b, s:o}", "id", c->id, "workspaceId",
                     c->project_id[0] ? json_string(c->project_id) : json_null(), "type", c->type,
                     "name", c->name, email ? "recipients" : "url", c->target, "signed",
                     c->signing_secret[0] != '\0', "createdAt",
                     json_string(cf_time_format(c->created_at, (char[CF_TIME_RFC3339_LEN]){0})));
}

static enum cf_rc add_channel(struct cf_req *req, json_t **out, struct cf_err *err)
{
    json_t *body = NULL;
    const char *type = NULL, *name = NULL, *url = NULL, *recipients = NULL, *secret = NULL;
    struct cf_channel ch = {0};
    char generated[80] = "";
    enum cf_rc rc = cf_authz_admin(cf_req_principal(req), "manage notifications", err);
    if (rc == CF_OK)
        rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "type", true, &type, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "name", false, &name, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "url", false, &url, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "recipients", false, &recipients, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "signingSecret", false, &secret, err);
    if (rc == CF_OK)
        rc = project_of(req, body, ch.project_id, err);
    if (rc != CF_OK)
        return rc;
    const char *target = strcmp(type, "email") == 0 ? recipients : url;
    rc = cf_channel_check(type, target ? target : "", err);
    if (rc == CF_OK && strlen(target) > CF_CHANNEL_TARGET_MAX)
        rc = cf_err_field(err, CF_EVALIDATION, "url", "url: at most %d characters",
                          CF_CHANNEL_TARGET_MAX);
    if (rc == CF_OK && name && strlen(name) > CF_NAME_MAX)
        rc = cf_err_field(err, CF_EVALIDATION, "name", "name: at most %d characters", CF_NAME_MAX);
    if (rc == CF_OK && secret && (strlen(secret) < 16 || strlen(secret) > 128))
        rc = cf_err_field(err, CF_EVALIDATION, "signingSecret",
                          "signingSecret: 16 to 128 characters");
    if (rc != CF_OK)
        return rc;
    cf_uuid_new(ch.id);
    cf_strlcpy(ch.type, type, sizeof(ch.type));
    cf_strlcpy(ch.name, name && *name ? name : type, sizeof(ch.name));
    cf_strlcpy(ch.target, target, sizeof(ch.target));
    ch.created_at = cf_now_ms();
    if (strcmp(type, "webhook") == 0) {
        /* Signed: the receiver checks X-Coffer-Signature with this secret, shown once. */
        if (!secret) {
            uint8_t raw[24];
            randombytes_buf(raw, sizeof(raw));
            memcpy(generated, "whsec_", 6);
            sodium_bin2hex(generated + 6, sizeof(generated) - 6, raw, sizeof(raw));
            sodium_memzero(raw, sizeof(raw));
            secret = generated;
        }
        char context[64];
        snprintf(context, sizeof(context), "channel:%s", ch.id);
        rc = cf_credential_seal(cf_req_core(req)->store, cf_req_core(req)->keyring, context,
                                secret, ch.signing_secret, sizeof(ch.signing_secret), err);
    }
    if (rc == CF_OK)
        rc = cf_req_core(req)->store->ops->channel_create(cf_req_core(req)->store, &ch, err);
    if (rc == CF_OK) {
        *out = json_pack("{s:o}", "channel", render_channel(&ch));
        if (*out && generated[0])
            json_object_set_new(*out, "signingSecret", json_string(generated));
        if (!*out)
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    sodium_memzero(generated, sizeof(generated));
    return rc;
}

static enum cf_rc list_channels(struct cf_req *req, json_t **out, struct cf_err *err)
{
    char project[CF_UUID_LEN];
    struct cf_channel_list list = {0};
    struct cf_store *st = cf_req_core(req)->store;
    enum cf_rc rc = cf_authz_admin(cf_req_principal(req), "manage notifications", err);
    if (rc == CF_OK)
        rc = project_of(req, NULL, project, err);
    if (rc == CF_OK)
        rc = st->ops->channel_list(st, project[0] ? project : NULL, &list, err);
    if (rc != CF_OK)
        return rc;
    json_t *array = json_array();
    for (size_t i = 0; array && i < list.n; i++)
        if (json_array_append_new(array, render_channel(&list.items[i])) != 0) {
            json_decref(array);
            array = NULL;
        }
    cf_channel_list_release(&list);
    *out = array ? json_pack("{s:o}", "channels", array) : NULL;
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

static enum cf_rc delete_channel(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_store *st = cf_req_core(req)->store;
    const char *id = cf_req_param(req, "channelId");
    enum cf_rc rc = cf_authz_admin(cf_req_principal(req), "manage notifications", err);
    if (rc == CF_OK)
        rc = st->ops->channel_delete(st, id, err);
    if (rc != CF_OK)
        return rc;
    *out = json_pack("{s:s}", "message", "channel deleted");
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

static enum cf_rc thresholds_reply(const char *text, json_t **out, struct cf_err *err)
{
    json_t *array = json_array();
    for (const char *p = text; array && *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        json_array_append_new(array, json_stringn(p, n));
        p += n + (comma ? 1 : 0);
    }
    *out = array ? json_pack("{s:o}", "thresholds", array) : NULL;
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

static enum cf_rc get_settings(struct cf_req *req, json_t **out, struct cf_err *err)
{
    char project[CF_UUID_LEN], text[256];
    struct cf_store *st = cf_req_core(req)->store;
    enum cf_rc rc = cf_authz_admin(cf_req_principal(req), "manage notifications", err);
    if (rc == CF_OK)
        rc = project_of(req, NULL, project, err);
    if (rc == CF_OK && !project[0])
        rc = cf_err_field(err, CF_EVALIDATION, "workspaceId", "workspaceId: required");
    if (rc != CF_OK)
        return rc;
    struct cf_err missing;
    if (st->ops->notify_thresholds_get(st, project, text, sizeof(text), &missing) != CF_OK)
        cf_strlcpy(text, CF_NOTIFY_DEFAULT_THRESHOLDS, sizeof(text));
    return thresholds_reply(text, out, err);
}

static enum cf_rc put_settings(struct cf_req *req, json_t **out, struct cf_err *err)
{
    char project[CF_UUID_LEN], joined[256] = "", normal[256];
    json_t *body = NULL;
    struct cf_store *st = cf_req_core(req)->store;
    enum cf_rc rc = cf_authz_admin(cf_req_principal(req), "manage notifications", err);
    if (rc == CF_OK)
        rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = project_of(req, body, project, err);
    if (rc == CF_OK && !project[0])
        rc = cf_err_field(err, CF_EVALIDATION, "workspaceId", "workspaceId: required");
    if (rc != CF_OK)
        return rc;
    json_t *list = json_object_get(body, "thresholds");
    size_t i;
    json_t *v;
    if (!json_is_array(list))
        return cf_err_field(err, CF_EVALIDATION, "thresholds",
                            "thresholds: expected an array such as [\"30d\", \"7d\", \"1d\"]");
    json_array_foreach(list, i, v)
    {
        if (!json_is_string(v) || strlen(joined) + json_string_length(v) + 2 >= sizeof(joined))
            return cf_err_field(err, CF_EVALIDATION, "thresholds",
                                "thresholds: expected durations such as \"30d\"");
        size_t used = strlen(joined);
        snprintf(joined + used, sizeof(joined) - used, "%s%s", i ? "," : "", json_string_value(v));
    }
    rc = cf_notify_thresholds_parse(joined, normal, sizeof(normal), err);
    if (rc == CF_OK)
        rc = st->ops->notify_thresholds_put(st, project, normal, err);
    return rc == CF_OK ? thresholds_reply(normal, out, err) : rc;
}

static enum cf_rc run_now(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_notify_counts c;
    struct cf_notifier *nf = cf_req_core(req)->notifier;
    enum cf_rc rc = cf_authz_admin(cf_req_principal(req), "manage notifications", err);
    if (rc == CF_OK && !nf)
        rc = cf_err_set(err, CF_EUNAVAIL, "notifications are not running on this server");
    if (rc == CF_OK)
        rc = cf_notifier_run(nf, &c, err);
    if (rc != CF_OK)
        return rc;
    *out = json_pack("{s:I, s:I, s:I, s:I, s:I}", "items", (json_int_t)c.items, "created",
                     (json_int_t)c.created, "delivered", (json_int_t)c.delivered, "retrying",
                     (json_int_t)c.retrying, "failed", (json_int_t)c.failed);
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

static enum cf_rc deliveries(struct cf_req *req, json_t **out, struct cf_err *err)
{
    char project[CF_UUID_LEN];
    const char *status = NULL, *limit_text = NULL, *offset_text = NULL;
    long long limit = 100, offset = 0;
    struct cf_store *st = cf_req_core(req)->store;
    enum cf_rc rc = cf_authz_admin(cf_req_principal(req), "manage notifications", err);
    if (rc == CF_OK)
        rc = project_of(req, NULL, project, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "status", &status, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "limit", &limit_text, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "offset", &offset_text, err);
    if (rc != CF_OK)
        return rc;
    if (status && strcmp(status, "pending") != 0 && strcmp(status, "delivered") != 0 &&
        strcmp(status, "failed") != 0)
        return cf_err_field(err, CF_EVALIDATION, "status",
                            "status: pending, delivered or failed, not '%.32s'", status);
    if (limit_text && !cf_parse_int64(limit_text, 1, 1000, &limit))
        return cf_err_field(err, CF_EVALIDATION, "limit", "limit: from 1 to 1000");
    if (offset_text && !cf_parse_int64(offset_text, 0, INT32_MAX, &offset))
        return cf_err_field(err, CF_EVALIDATION, "offset", "offset: 0 or more");
    struct cf_notice_list list = {0};
    rc = st->ops->notice_list(st, project[0] ? project : NULL, status, (size_t)limit,
                              (size_t)offset, &list, err);
    if (rc != CF_OK)
        return rc;
    json_t *array = json_array();
    for (size_t i = 0; array && i < list.n; i++) {
        const struct cf_notice *n = &list.items[i];
        char t1[CF_TIME_RFC3339_LEN], t2[CF_TIME_RFC3339_LEN], t3[CF_TIME_RFC3339_LEN];
        json_t *o = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:o, s:o}", "id", n->id, "channelId",
            n->channel_id, "threshold", n->threshold, "message", n->message, "itemKey", n->item_key,
            "status", n->state, "attempts", (json_int_t)n->attempts, "lastError", n->last_error,
            "createdAt", cf_time_format(n->created_at, t1), "nextAttemptAt",
            strcmp(n->state, "pending") == 0 ? json_string(cf_time_format(n->next_attempt_at, t2))
                                             : json_null(),
            "deliveredAt",
            n->delivered_at ? json_string(cf_time_format(n->delivered_at, t3)) : json_null());
        if (json_array_append_new(array, o) != 0) {
            json_decref(array);
            array = NULL;
        }
    }
    cf_notice_list_release(&list);
    *out = array ? json_pack("{s:o}", "deliveries", array) : NULL;
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

const struct cf_route cf_routes_notifications[] = {
    {"POST", "/api/v1/notifications/channels", add_channel, false, NULL},
    {"GET", "/api/v1/notifications/channels", list_channels, false, NULL},
    {"DELETE", "/api/v1/notifications/channels/:channelId", delete_channel, false, NULL},
    {"GET", "/api/v1/notifications/settings", get_settings, false, NULL},
    {"PUT", "/api/v1/notifications/settings", put_settings, false, NULL},
    {"POST", "/api/v1/notifications/run", run_now, false, NULL},
    {"GET", "/api/v1/notifications/deliveries", deliveries, false, NULL},
    {NULL, NULL, NULL, false, NULL},
};
