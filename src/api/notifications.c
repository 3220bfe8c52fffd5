/* Expiry notifications' API (docs/notifications.md), for the admin: channels (per project
 * or server-wide), a project's thresholds, a scan-and-deliver pass now, and the delivery log.
 *
 *   POST   /api/v1/notifications/channels {workspaceId?, type, name?, url | recipients,
 * signingSecret?} GET    /api/v1/notifications/channels?workspaceId= DELETE
 * /api/v1/notifications/channels/:channelId GET    /api/v1/notifications/settings?workspaceId= PUT
 * /api/v1/notifications/settings {workspaceId, thresholds: ["30d", "7d", "1d"]} POST
 * /api/v1/notifications/run POST /api/v1/notifications/channels/:channelId/test GET
 * /api/v1/notifications/deliveries?workspaceId=&status=&limit=&offset= */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "api/http.h"
#include "core/channels.h"
#include "notify/notify.h"
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
    return cf_channels_project(cf_req_core(req), cf_req_principal(req), name, id, err);
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
    char project[CF_UUID_LEN];
    struct cf_channel ch;
    char generated[CF_CHANNEL_GENERATED_SECRET_SIZE] = "";
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
        rc = project_of(req, body, project, err);
    if (rc != CF_OK)
        return rc;
    const char *target = strcmp(type, "email") == 0 ? recipients : url;
    rc = cf_channel_check(type, target ? target : "", err);
    struct cf_channel_spec spec = {.project_id = project,
                                   .type = type,
                                   .name = name,
                                   .target = target,
                                   .signing_secret = secret};
    if (rc == CF_OK)
        rc = cf_channels_add(cf_req_core(req), cf_req_principal(req), &spec, &ch, generated, err);
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
    enum cf_rc rc = cf_authz_admin(cf_req_principal(req), "manage notifications", err);
    if (rc == CF_OK)
        rc = project_of(req, NULL, project, err);
    if (rc == CF_OK)
        rc = cf_channels_list(cf_req_core(req), cf_req_principal(req), project[0] ? project : NULL,
                              &list, err);
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
    const char *id = cf_req_param(req, "channelId");
    enum cf_rc rc = cf_authz_admin(cf_req_principal(req), "manage notifications", err);
    if (rc == CF_OK)
        rc = cf_channels_delete(cf_req_core(req), cf_req_principal(req), id, err);
    if (rc != CF_OK)
        return rc;
    *out = json_pack("{s:s}", "message", "channel deleted");
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

static enum cf_rc thresholds_reply(const char *text, json_t **out, struct cf_err *err)
{
    json_t *array = json_array();
    struct cf_list_iter it;
    struct cf_str item;
    cf_list_init(&it, text);
    while (array && cf_list_next_raw(&it, &item))
        json_array_append_new(array, json_stringn(item.p, item.n));
    *out = array ? json_pack("{s:o}", "thresholds", array) : NULL;
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

static enum cf_rc get_settings(struct cf_req *req, json_t **out, struct cf_err *err)
{
    char project[CF_UUID_LEN], text[256];
    enum cf_rc rc = cf_authz_admin(cf_req_principal(req), "manage notifications", err);
    if (rc == CF_OK)
        rc = project_of(req, NULL, project, err);
    if (rc == CF_OK && !project[0])
        rc = cf_err_field(err, CF_EVALIDATION, "workspaceId", "workspaceId: required");
    if (rc == CF_OK)
        rc = cf_channels_thresholds_get(cf_req_core(req), cf_req_principal(req), project,
                                        CF_NOTIFY_DEFAULT_THRESHOLDS, text, sizeof(text), err);
    return rc == CF_OK ? thresholds_reply(text, out, err) : rc;
}

static enum cf_rc put_settings(struct cf_req *req, json_t **out, struct cf_err *err)
{
    char project[CF_UUID_LEN], joined[256] = "", normal[256];
    json_t *body = NULL;
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
        rc = cf_channels_thresholds_put(cf_req_core(req), cf_req_principal(req), project, normal,
                                        err);
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

/* POST /api/v1/notifications/channels/:channelId/test -> {channelId, delivered, error}: one test
 * message now. A channel that refuses it is not an error of the request: delivered is false and
 * error says why, as the delivery log would. */
static enum cf_rc test_channel(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_notifier *nf = cf_req_core(req)->notifier;
    char failure[256];
    enum cf_rc rc = cf_authz_admin(cf_req_principal(req), "manage notifications", err);
    if (rc == CF_OK && !nf)
        rc = cf_err_set(err, CF_EUNAVAIL, "notifications are not running on this server");
    if (rc == CF_OK)
        rc = cf_notifier_test(nf, cf_req_param(req, "channelId"), failure, sizeof(failure), err);
    if (rc != CF_OK)
        return rc;
    *out = json_pack("{s:s, s:b, s:o}", "channelId", cf_req_param(req, "channelId"), "delivered",
                     failure[0] == '\0', "error", failure[0] ? json_string(failure) : json_null());
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

static enum cf_rc deliveries(struct cf_req *req, json_t **out, struct cf_err *err)
{
    char project[CF_UUID_LEN];
    const char *status = NULL, *limit_text = NULL, *offset_text = NULL;
    long long limit = 100, offset = 0;
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
    if (limit_text && !cf_parse_int64(limit_text, 1, 1000, &limit))
        return cf_err_field(err, CF_EVALIDATION, "limit", "limit: from 1 to 1000");
    if (offset_text && !cf_parse_int64(offset_text, 0, INT32_MAX, &offset))
        return cf_err_field(err, CF_EVALIDATION, "offset", "offset: 0 or more");
    struct cf_notice_list list = {0};
    rc =
        cf_channels_deliveries(cf_req_core(req), cf_req_principal(req), project[0] ? project : NULL,
                               status, (size_t)limit, (size_t)offset, &list, err);
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
    {"POST", "/api/v1/notifications/channels/:channelId/test", test_channel, false, NULL},
    {"GET", "/api/v1/notifications/settings", get_settings, false, NULL},
    {"PUT", "/api/v1/notifications/settings", put_settings, false, NULL},
    {"POST", "/api/v1/notifications/run", run_now, false, NULL},
    {"GET", "/api/v1/notifications/deliveries", deliveries, false, NULL},
    {NULL, NULL, NULL, false, NULL},
};
