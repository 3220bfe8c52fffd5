/* The audit log's API (docs/audit.md), for the admin: list events with filters and a
 * cursor, verify the chain and its checkpoints, sign a checkpoint now, and the public key that
 * checkpoints verify under.
 *
 *   GET  /api/v1/audit/events?since=&until=&actor=&action=&projectId=&after=&limit=
 *   POST /api/v1/audit/verify        (optional {"anchor": HEAD or [HEAD...]}: seq, hash[, timeUs,
 * signature]) POST /api/v1/audit/checkpoints GET  /api/v1/audit/public-key */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api/http.h"
#include "core/auditlog.h"
#include "core/render.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

#define LIST_DEFAULT 100
#define LIST_MAX 1000

static enum cf_rc audit_of(struct cf_req *req, struct cf_audit_log **out, struct cf_err *err)
{
    enum cf_rc rc = cf_authz_admin(cf_req_principal(req), "read the audit log", err);
    if (rc != CF_OK)
        return rc;
    *out = cf_req_core(req)->audit;
    if (!*out)
        return cf_err_set(err, CF_EUNAVAIL,
                          "the audit log is off on this server (coffer server --audit off)");
    return CF_OK;
}

/* A time filter: RFC 3339, or a duration meaning that long ago ("24h"). */
static enum cf_rc time_param(struct cf_req *req, const char *name, int64_t *out_us,
                             struct cf_err *err)
{
    const char *text = NULL;
    enum cf_rc rc = cf_req_query(req, name, &text, err);
    if (rc != CF_OK || !text || !*text)
        return rc;
    int64_t ms = 0, seconds = 0;
    struct cf_err ignored;
    if (cf_time_parse(text, &ms, &ignored) == CF_OK) {
        *out_us = ms * 1000;
        return CF_OK;
    }
    if (cf_duration_parse(text, &seconds, &ignored) == CF_OK) {
        *out_us = (cf_now_ms() - seconds * 1000) * 1000;
        return CF_OK;
    }
    return cf_err_field(err, CF_EVALIDATION, name,
                        "%s: expected an RFC 3339 time or a duration such as 24h, not '%.64s'",
                        name, text);
}

static enum cf_rc list_events(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_audit_log *log;
    struct cf_audit_filter filter = {.limit = LIST_DEFAULT};
    const char *after = NULL, *limit = NULL;
    enum cf_rc rc = audit_of(req, &log, err);
    if (rc == CF_OK)
        rc = time_param(req, "since", &filter.since_us, err);
    if (rc == CF_OK)
        rc = time_param(req, "until", &filter.until_us, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "actor", &filter.actor, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "action", &filter.action, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "projectId", &filter.project_id, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "after", &after, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "limit", &limit, err);
    if (rc != CF_OK)
        return rc;
    long long n = 0;
    if (after && !cf_parse_int64(after, 0, INT64_MAX, &n))
        return cf_err_field(err, CF_EVALIDATION, "after", "after: expected an event number");
    filter.after_seq = n;
    if (limit) {
        if (!cf_parse_int64(limit, 1, LIST_MAX, &n))
            return cf_err_field(err, CF_EVALIDATION, "limit", "limit: from 1 to %d", LIST_MAX);
        filter.limit = (size_t)n;
    }
    struct cf_audit_event_list list = {0};
    rc = cf_audit_log_list(log, &filter, &list, err);
    if (rc != CF_OK)
        return rc;
    json_t *events = json_array();
    for (size_t i = 0; events && i < list.n; i++)
        if (json_array_append_new(events, cf_audit_event_json(&list.items[i])) != 0) {
            json_decref(events);
            events = NULL;
        }
    json_t *next = list.n == filter.limit ? json_integer(list.items[list.n - 1].seq) : json_null();
    cf_audit_event_list_release(&list);
    if (!events) {
        json_decref(next);
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    *out = json_pack("{s:o, s:o}", "events", events, "nextAfter", next);
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

#define ANCHORS_MAX 1000

/* The optional body {"anchor": HEAD or [HEAD, ...]}: heads the operator kept (docs/audit.md "The
 * head"). *out is a new array (free it), NULL when none. */
static enum cf_rc anchors_of(struct cf_req *req, struct cf_audit_anchor **out, size_t *n,
                             struct cf_err *err)
{
    json_t *body = NULL;
    enum cf_rc rc = cf_req_json(req, false, &body, err);
    json_t *value = body ? json_object_get(body, "anchor") : NULL;
    *out = NULL;
    *n = 0;
    if (rc != CF_OK || !value || json_is_null(value))
        return rc;
    size_t count = json_is_array(value) ? json_array_size(value) : 1;
    if (count == 0 || count > ANCHORS_MAX)
        return cf_err_field(err, CF_EVALIDATION, "anchor",
                            "anchor: expected a head or 1..%d of them", ANCHORS_MAX);
    struct cf_audit_anchor *anchors = calloc(count, sizeof(*anchors));
    if (!anchors)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    for (size_t i = 0; i < count; i++) {
        json_t *item = json_is_array(value) ? json_array_get(value, i) : value;
        struct cf_err why;
        if (cf_audit_head_parse(item, &anchors[i].head, &anchors[i].is_signed, &why) != CF_OK) {
            free(anchors);
            return cf_err_field(err, CF_EVALIDATION, "anchor", "anchor: %s", why.msg);
        }
    }
    *out = anchors;
    *n = count;
    return CF_OK;
}

static enum cf_rc verify(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_audit_log *log;
    struct cf_audit_report report;
    struct cf_audit_anchor *anchors = NULL;
    size_t n = 0;
    enum cf_rc rc = audit_of(req, &log, err);
    if (rc == CF_OK)
        rc = anchors_of(req, &anchors, &n, err);
    if (rc == CF_OK)
        rc = cf_audit_log_verify(log, anchors, n, &report, err);
    free(anchors);
    if (rc != CF_OK)
        return rc;
    bool ok = report.finding == CF_AUDIT_OK;
    *out =
        json_pack("{s:b, s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:I}", "ok", ok, "finding",
                  cf_audit_finding_name(report.finding), "seq", (json_int_t)report.seq, "message",
                  ok ? (report.head_seq ? "the chain, every checkpoint and the head are intact"
                                        : "the chain and every checkpoint are intact")
                     : report.message,
                  "events", (json_int_t)report.events, "checkpoints",
                  (json_int_t)report.checkpoints, "lastSeq", (json_int_t)report.last_seq, "headSeq",
                  (json_int_t)report.head_seq, "archivedSeq", (json_int_t)report.archived_seq);
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

static enum cf_rc checkpoint(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_audit_log *log;
    enum cf_rc rc = audit_of(req, &log, err);
    if (rc == CF_OK)
        rc = cf_audit_log_checkpoint(log, err);
    if (rc == CF_ENOTFOUND)
        return cf_err_set(err, CF_ENOTFOUND, "the audit log is empty: nothing to checkpoint");
    if (rc != CF_OK)
        return rc;
    *out = json_pack("{s:s}", "message", "checkpoint signed");
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

static enum cf_rc public_key(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_audit_log *log;
    enum cf_rc rc = audit_of(req, &log, err);
    if (rc != CF_OK)
        return rc;
    uint8_t key[CF_AUDIT_PUBLIC_KEY_BYTES];
    char hex[2 * CF_AUDIT_PUBLIC_KEY_BYTES + 1];
    char b64[sodium_base64_ENCODED_LEN(CF_AUDIT_PUBLIC_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    cf_audit_log_public_key(log, key);
    sodium_bin2base64(b64, sizeof(b64), key, sizeof(key), sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
    *out =
        json_pack("{s:s, s:s, s:s}", "algorithm", "Ed25519", "publicKey", b64, "publicKeyHex", hex);
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

const struct cf_route cf_routes_audit[] = {
    {"GET", "/api/v1/audit/events", list_events, false, NULL},
    {"POST", "/api/v1/audit/verify", verify, false, NULL},
    {"POST", "/api/v1/audit/checkpoints", checkpoint, false, NULL},
    {"GET", "/api/v1/audit/public-key", public_key, false, NULL},
    {NULL, NULL, NULL, false, NULL},
};
