/* GET /api/v1/expiring (docs/api.md "Expiry"): every secret expiry, rotation reminder and
 * client-secret expiry the caller may see that falls due within a window or already has, soonest
 * first. Query: within (a duration, default 30d), projectId or workspaceId (id or slug), include (a
 * comma list of secrets, reminders, clientSecrets, connections; default all). */
#include <stdio.h>
#include <string.h>

#include "api/http.h"
#include "core/expiry.h"
#include "core/render.h"
#include "util/time.h"
#include "util/str.h"
#include "util/banned.h"

#define DEFAULT_WITHIN_MS (30LL * 86400 * 1000)

/* include=secrets,reminders,clientSecrets */
static enum cf_rc parse_include(const char *text, struct cf_expiry_query *q, struct cf_err *err)
{
    q->secrets = q->reminders = q->client_secrets = q->connections = false;
    struct cf_list_iter it;
    struct cf_str item;
    cf_list_init(&it, text);
    while (cf_list_next_raw(&it, &item)) {
        const char *p = item.p;
        size_t n = item.n;
        if (n == 7 && strncmp(p, "secrets", n) == 0)
            q->secrets = true;
        else if (n == 9 && strncmp(p, "reminders", n) == 0)
            q->reminders = true;
        else if (n == 13 && strncmp(p, "clientSecrets", n) == 0)
            q->client_secrets = true;
        else if (n == 11 && strncmp(p, "connections", n) == 0)
            q->connections = true;
        else
            return cf_err_field(err, CF_EVALIDATION, "include",
                                "include: expected a comma-separated list of secrets, reminders, "
                                "clientSecrets and connections, not '%.*s'",
                                (int)(n > 64 ? 64 : n), p);
    }
    if (!q->secrets && !q->reminders && !q->client_secrets && !q->connections)
        return cf_err_field(err, CF_EVALIDATION, "include", "include: names nothing to list");
    return CF_OK;
}

static enum cf_rc expiring(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const char *within = NULL, *project = NULL, *workspace = NULL, *include = NULL;
    struct cf_expiry_query q = {.now = cf_now_ms(),
                                .within_ms = DEFAULT_WITHIN_MS,
                                .secrets = true,
                                .reminders = true,
                                .client_secrets = true,
                                .connections = true};
    struct cf_expiry_list list = {0};
    enum cf_rc rc = cf_req_query(req, "within", &within, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "projectId", &project, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "workspaceId", &workspace, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "include", &include, err);
    if (rc != CF_OK)
        return rc;
    if (within) {
        int64_t seconds = 0;
        if (cf_duration_parse(within, &seconds, err) != CF_OK)
            return cf_err_field(err, CF_EVALIDATION, "within",
                                "within: expected a duration such as 30d, 12h or 3600, not '%.64s'",
                                within);
        if (seconds > 3650LL * 86400)
            return cf_err_field(err, CF_EVALIDATION, "within", "within: at most 3650d");
        q.within_ms = seconds * 1000;
    }
    if (include && (rc = parse_include(include, &q, err)) != CF_OK)
        return rc;
    q.project = project && *project ? project : (workspace && *workspace ? workspace : NULL);
    rc = cf_expiry_list(cf_req_core(req), cf_req_principal(req), &q, &list, err);
    if (rc != CF_OK)
        return rc;
    json_t *items = json_array();
    for (size_t i = 0; items && i < list.n; i++)
        if (json_array_append_new(items, cf_expiry_item_json(&list.items[i])) != 0) {
            json_decref(items);
            items = NULL;
        }
    cf_expiry_list_release(&list);
    if (!items)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    *out = json_pack("{s:o, s:o, s:I, s:o}", "now", cf_json_time(q.now), "until",
                     cf_json_time(q.now + q.within_ms), "count", (json_int_t)json_array_size(items),
                     "items", items);
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

const struct cf_route cf_routes_expiry[] = {
    {"GET", "/api/v1/expiring", expiring, false, NULL},
    {NULL, NULL, NULL, false, NULL},
};
