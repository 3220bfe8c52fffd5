/* The JSON and one-line forms of audit records and expiry items (see render.h). */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "core/render.h"
#include "util/time.h"
#include "util/str.h"
#include "util/banned.h"

json_t *cf_time_json(int64_t unix_ms)
{
    char text[CF_TIME_RFC3339_LEN];
    return unix_ms > 0 ? json_string(cf_time_format(unix_ms, text)) : json_null();
}

/* ---- items ---- */

/* The item's status word: secrets and client secrets are "expired" or "expiring", reminders
 * "overdue" or "due". */
static const char *status_of(const struct cf_expiry_item *item)
{
    if (item->kind == CF_EXPIRY_REMINDER)
        return item->past ? "overdue" : "due";
    return item->past ? "expired" : "expiring";
}

/* One line that says what and where, the way a person would want it in a pipeline log or a
 * notification: `secret "API_KEY" in payments/prod:/backend expires at T`. */
void cf_expiry_item_describe(const struct cf_expiry_item *item, char *out, size_t size)
{
    char when[CF_TIME_RFC3339_LEN];
    cf_time_format(item->due_at, when);
    switch (item->kind) {
    case CF_EXPIRY_SECRET:
        snprintf(out, size, "secret \"%s\" in %s/%s:%s %s at %s", item->key, item->project_name,
                 item->env_slug, item->path, item->past ? "expired" : "expires", when);
        break;
    case CF_EXPIRY_REMINDER:
        snprintf(out, size,
                 "secret \"%s\" in %s/%s:%s %s rotation (every %lld days, unchanged since "
                 "version %lld)%s%s",
                 item->key, item->project_name, item->env_slug, item->path,
                 item->past ? "is overdue for" : "falls due for",
                 (long long)item->reminder_repeat_days, (long long)item->version,
                 item->note[0] ? ": " : "", item->note);
        break;
    case CF_EXPIRY_CLIENT_SECRET:
        snprintf(out, size, "client secret \"%s\" of identity \"%s\" %s at %s",
                 item->description[0] ? item->description : item->credential_id,
                 item->identity_name, item->past ? "expired" : "expires", when);
        break;
    case CF_EXPIRY_CONNECTION:
        snprintf(out, size, "the credential of app connection \"%s\" (%s %s) %s at %s",
                 item->description, item->app, item->method, item->past ? "expired" : "expires",
                 when);
        break;
    }
}

json_t *cf_expiry_item_json(const struct cf_expiry_item *item)
{
    char message[8192];
    cf_expiry_item_describe(item, message, sizeof(message));
    json_t *o = json_pack("{s:s, s:s, s:o, s:s}", "kind", cf_expiry_kind_name(item->kind), "status",
                          status_of(item), "dueAt", cf_time_json(item->due_at), "message", message);
    if (!o)
        return NULL;
    int bad = 0;
    if (item->kind == CF_EXPIRY_CONNECTION) {
        bad |= json_object_set_new(o, "expiresAt", cf_time_json(item->due_at));
        bad |= json_object_set_new(o, "appConnection",
                                   json_pack("{s:s, s:s, s:s, s:s}", "id", item->credential_id,
                                             "name", item->description, "app", item->app, "method",
                                             item->method));
    } else if (item->kind == CF_EXPIRY_CLIENT_SECRET) {
        bad |= json_object_set_new(o, "expiresAt", cf_time_json(item->due_at));
        bad |= json_object_set_new(
            o, "identity",
            json_pack("{s:s, s:s}", "id", item->identity_id, "name", item->identity_name));
        bad |= json_object_set_new(o, "clientSecretId", json_string(item->credential_id));
        bad |= json_object_set_new(o, "description", json_string(item->description));
        bad |= json_object_set_new(o, "createdAt", cf_time_json(item->updated_at));
    } else {
        bad |= json_object_set_new(
            o, "project",
            json_pack("{s:s, s:s}", "id", item->project_id, "name", item->project_name));
        bad |= json_object_set_new(o, "environment", json_string(item->env_slug));
        bad |= json_object_set_new(o, "secretPath", json_string(item->path));
        bad |= json_object_set_new(o, "secretKey", json_string(item->key));
        bad |= json_object_set_new(o, "secretId", json_string(item->secret_id));
        bad |= json_object_set_new(o, "version", json_integer(item->version));
        bad |= json_object_set_new(o, "lastChangedAt", cf_time_json(item->updated_at));
        if (item->kind == CF_EXPIRY_SECRET) {
            bad |= json_object_set_new(o, "expiresAt", cf_time_json(item->due_at));
        } else {
            bad |= json_object_set_new(o, "secretReminderRepeatDays",
                                       json_integer(item->reminder_repeat_days));
            bad |= json_object_set_new(o, "secretReminderNote", json_string(item->note));
        }
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* RFC 3339 with microseconds: 2026-12-04T02:30:00.123456Z. */
#define TIME_US_TEXT (CF_TIME_RFC3339_LEN + 8)

/* An event's time as RFC 3339 with microseconds (...:00.123456Z); false when it cannot be
 * formatted. */
static bool time_us_text(int64_t time_us, char text[TIME_US_TEXT])
{
    char ms_text[CF_TIME_RFC3339_LEN];
    cf_time_format(time_us / 1000, ms_text); /* ...:00.123Z */
    size_t n = strlen(ms_text);
    if (n < 1)
        return false;
    snprintf(text, TIME_US_TEXT, "%.*s%03lldZ", (int)(n - 1), ms_text,
             (long long)(time_us % 1000 + 1000) % 1000);
    return true;
}

static json_t *time_us_json(int64_t time_us)
{
    char text[TIME_US_TEXT];
    return time_us_text(time_us, text) ? json_string(text) : json_null();
}

#define HEX_MAX (2 * 64 + 1)

static json_t *hex_json(const uint8_t *bytes, size_t n)
{
    char hex[HEX_MAX];
    sodium_bin2hex(hex, sizeof(hex), bytes, n);
    return json_string(hex);
}

static json_t *keys_json(const char *keys)
{
    json_t *array = json_array();
    struct cf_list_iter it;
    struct cf_str item;
    cf_list_init(&it, keys);
    while (array && cf_list_next_raw(&it, &item)) {
        if (json_array_append_new(array, json_stringn(item.p, item.n)) != 0) {
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

json_t *cf_audit_event_json(const struct cf_audit_event *e)
{
    json_t *event = json_pack(
        "{s:I, s:s, s:o, s:{s:s, s:s, s:s}, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, "
        "s:s, s:s, s:o, s:o}",
        "seq", (json_int_t)e->seq, "id", e->id, "time", time_us_json(e->time_us), "actor", "kind",
        e->actor_kind, "id", e->actor_id, "name", e->actor_name, "sourceIp", e->source_ip,
        "userAgent", e->user_agent, "action", e->action, "projectId", e->project_id, "environment",
        e->environment, "secretPath", e->path, "keys", keys_json(e->keys), "result", e->result,
        "reason", e->reason, "requestId", e->request_id, "prevHash",
        hex_json(e->prev_hash, sizeof(e->prev_hash)), "hash", hex_json(e->hash, sizeof(e->hash)));
    /* the admin token is the break-glass credential: every use of it says so */
    json_t *actor = event ? json_object_get(event, "actor") : NULL;
    if (actor && strcmp(e->actor_kind, "admin") == 0)
        json_object_set_new(actor, "breakGlass", json_true());
    return event;
}

void cf_audit_event_write(struct cf_jsonw *w, const struct cf_audit_event *e)
{
    char text[TIME_US_TEXT > HEX_MAX ? TIME_US_TEXT : HEX_MAX];
    cf_jsonw_object_begin(w);
    cf_jsonw_kint(w, "seq", e->seq);
    cf_jsonw_kstr(w, "id", e->id);
    cf_jsonw_key(w, "time");
    if (time_us_text(e->time_us, text))
        cf_jsonw_cstr(w, text);
    else
        cf_jsonw_null(w);
    cf_jsonw_key(w, "actor");
    cf_jsonw_object_begin(w);
    cf_jsonw_kstr(w, "kind", e->actor_kind);
    cf_jsonw_kstr(w, "id", e->actor_id);
    cf_jsonw_kstr(w, "name", e->actor_name);
    /* the admin token is the break-glass credential: every use of it says so */
    if (strcmp(e->actor_kind, "admin") == 0)
        cf_jsonw_kbool(w, "breakGlass", true);
    cf_jsonw_object_end(w);
    cf_jsonw_kstr(w, "sourceIp", e->source_ip);
    cf_jsonw_kstr(w, "userAgent", e->user_agent);
    cf_jsonw_kstr(w, "action", e->action);
    cf_jsonw_kstr(w, "projectId", e->project_id);
    cf_jsonw_kstr(w, "environment", e->environment);
    cf_jsonw_kstr(w, "secretPath", e->path);
    cf_jsonw_key(w, "keys");
    cf_jsonw_array_begin(w);
    struct cf_list_iter it;
    struct cf_str item;
    cf_list_init(&it, e->keys);
    while (cf_list_next_raw(&it, &item))
        cf_jsonw_string(w, item.p, item.n);
    cf_jsonw_array_end(w);
    cf_jsonw_kstr(w, "result", e->result);
    cf_jsonw_kstr(w, "reason", e->reason);
    cf_jsonw_kstr(w, "requestId", e->request_id);
    sodium_bin2hex(text, sizeof(text), e->prev_hash, sizeof(e->prev_hash));
    cf_jsonw_kstr(w, "prevHash", text);
    sodium_bin2hex(text, sizeof(text), e->hash, sizeof(e->hash));
    cf_jsonw_kstr(w, "hash", text);
    cf_jsonw_object_end(w);
}

json_t *cf_audit_head_json(const struct cf_audit_checkpoint *head)
{
    char signature[sodium_base64_ENCODED_LEN(sizeof(head->signature),
                                             sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(signature, sizeof(signature), head->signature, sizeof(head->signature),
                      sodium_base64_VARIANT_ORIGINAL);
    return json_pack(
        "{s:s, s:I, s:o, s:o, s:I, s:s}", "type", "head", "seq", (json_int_t)head->event_seq,
        "hash", hex_json(head->event_hash, sizeof(head->event_hash)), "time",
        time_us_json(head->time_us), "timeUs", (json_int_t)head->time_us, "signature", signature);
}

enum cf_rc cf_audit_head_parse(json_t *json, struct cf_audit_checkpoint *out, bool *is_signed,
                               struct cf_err *err)
{
    json_t *seq = json_object_get(json, "seq"), *time_us = json_object_get(json, "timeUs");
    const char *hash = json_string_value(json_object_get(json, "hash"));
    const char *signature = json_string_value(json_object_get(json, "signature"));
    size_t n = 0;
    memset(out, 0, sizeof(*out));
    *is_signed = false;
    if (!json_is_object(json) || !json_is_integer(seq) || json_integer_value(seq) < 1)
        return cf_err_set(err, CF_EVALIDATION, "expected a head: seq is not a positive integer");
    out->event_seq = (int64_t)json_integer_value(seq);
    if (!hash || strlen(hash) != 2 * sizeof(out->event_hash) ||
        sodium_hex2bin(out->event_hash, sizeof(out->event_hash), hash, strlen(hash), NULL, &n,
                       NULL) != 0 ||
        n != sizeof(out->event_hash))
        return cf_err_set(err, CF_EVALIDATION, "expected a head: hash is not 64 hex digits");
    if (time_us && (!json_is_integer(time_us) || json_integer_value(time_us) < 0))
        return cf_err_set(err, CF_EVALIDATION, "expected a head: timeUs is not a time");
    out->time_us = time_us ? (int64_t)json_integer_value(time_us) : 0;
    if (!signature)
        return CF_OK;
    if (sodium_base642bin(out->signature, sizeof(out->signature), signature, strlen(signature),
                          NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        n != sizeof(out->signature))
        return cf_err_set(err, CF_EVALIDATION, "expected a head: signature is not 64 bytes");
    *is_signed = true;
    return CF_OK;
}
