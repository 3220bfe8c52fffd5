/* The "webhook" rotation consumer (provider/webhook.h): two signed POSTs, one that hands the
 * receiver the new credential and one that asks it whether the credential works. */
#include "provider/webhook.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#include "crypto/sign.h"
#include "net/http.h"
#include "provider/azure.h"
#include "util/str.h"
#include "util/time.h"
#include "util/wipemem.h"
#include "util/banned.h"

#define SYSTEM "the webhook receiver"
#define ATTEMPTS 3        /* tries per request: 429 and 5xx are retried, Retry-After honoured */
#define RETRY_BASE_MS 500 /* first backoff when no Retry-After came */
#define TIMEOUT_MS 15000  /* a receiver may test the credential before it answers */
#define EVENT_PUSH "rotation.push"
#define EVENT_VERIFY "rotation.verify"

/* Checks one URL field: https (or http to a loopback host) without userinfo, query or fragment. */
static enum cf_rc url_check(const char *field, const json_t *value, bool required,
                            struct cf_err *err)
{
    const char *url = json_string_value(value);
    const char *why = NULL;
    if (!value && !required)
        return CF_OK;
    if (!url || !url[0] || strlen(url) > CF_WEBHOOK_URL_MAX)
        return cf_err_field(err, CF_EVALIDATION, field,
                            "\"%s\" is required: the receiver's https URL (at most %d characters)",
                            field, CF_WEBHOOK_URL_MAX);
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return cf_err_field(err, CF_EVALIDATION, field,
                                "\"%s\" must not hold spaces or control characters", field);
    why = cf_net_url_refused(url);
    if (why)
        return cf_err_field(err, CF_EVALIDATION, field, "\"%s\" %s", field, why);
    /* a credential in a URL ends up in proxies' and servers' logs: the signature is the proof */
    CURLU *u = curl_url();
    char *part = NULL;
    static const struct {
        CURLUPart part;
        const char *what;
    } refused[] = {{CURLUPART_USER, "a user name"},
                   {CURLUPART_PASSWORD, "a password"},
                   {CURLUPART_QUERY, "a query string"},
                   {CURLUPART_FRAGMENT, "a fragment"}};
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        curl_url_cleanup(u);
        return cf_err_field(err, CF_EVALIDATION, field, "\"%s\" is not a URL", field);
    }
    for (size_t i = 0; !why && i < CF_ARRAY_SIZE(refused); i++) {
        if (curl_url_get(u, refused[i].part, &part, 0) == CURLUE_OK)
            why = refused[i].what;
        curl_free(part);
        part = NULL;
    }
    curl_url_cleanup(u);
    if (why)
        return cf_err_field(err, CF_EVALIDATION, field,
                            "\"%s\" must not hold %s (credentials do not belong in a URL; every "
                            "request is signed with the connection's signing secret)",
                            field, why);
    return CF_OK;
}

static enum cf_rc wh_config_check(const json_t *config, struct cf_err *err)
{
    const char *key;
    const json_t *value;
    enum cf_rc rc;
    if (!json_is_object(config))
        return cf_err_field(err, CF_EVALIDATION, "config", "the consumer config must be an object");
    json_object_foreach((json_t *)config, key, value)
    {
        if (strcmp(key, "url") != 0 && strcmp(key, "verifyUrl") != 0)
            return cf_err_field(err, CF_EVALIDATION, "config",
                                "unknown field \"%.40s\" in the webhook consumer's config (it "
                                "takes \"url\" and \"verifyUrl\")",
                                key);
    }
    rc = url_check("url", json_object_get(config, "url"), true, err);
    if (rc == CF_OK)
        rc = url_check("verifyUrl", json_object_get(config, "verifyUrl"), false, err);
    return rc;
}

/* The error for an answer that is not 2xx: throttling, else what status means for event. */
static enum cf_rc status_error(const char *event, const char *url, long status, long retry_after_s,
                               struct cf_err *err)
{
    char target[256];
    cf_net_url_redact(url, target, sizeof(target));
    if (status == 429 || (status == 503 && retry_after_s > 0)) {
        cf_err_set(err, CF_ERATELIMIT, SYSTEM " at %s is throttling (HTTP %ld) after %d tries",
                   target, status, ATTEMPTS);
        /* the engine's next attempt waits at least this long */
        if (err)
            err->retry_after_s = (int)retry_after_s;
        return CF_ERATELIMIT;
    }
    if (strcmp(event, EVENT_VERIFY) == 0)
        return cf_err_set(err, CF_EUNAUTH,
                          SYSTEM " at %s refused the credential (HTTP %ld): it does not work "
                                 "there",
                          target, status);
    if (status == 401 || status == 403)
        return cf_err_set(err, CF_EUNAUTH,
                          SYSTEM " at %s refused the push (HTTP %ld): does it hold the "
                                 "connection's signing secret?",
                          target, status);
    return cf_err_set(err, cf_azure_status_rc(status), SYSTEM " at %s refused the push (HTTP %ld)",
                      target, status);
}

/* POSTs body (a JSON object, borrowed) to url as event for ref, signed with conn's secret. The
 * dumped text is wiped: it may hold the credential. */
static enum cf_rc post(const struct cf_provider_conn *conn, const char *url, const char *event,
                       const struct cf_rotation_ref *ref, const json_t *body, struct cf_err *err)
{
    const char *secret =
        conn ? json_string_value(json_object_get(conn->credentials, "signingSecret")) : NULL;
    char content_type[] = "Content-Type: application/json";
    char event_h[64], delivery[128],
        signature[sizeof(CF_WEBHOOK_SIGNATURE_HEADER ": ") + CF_WEBHOOK_SIGNATURE_MAX];
    char value[CF_WEBHOOK_SIGNATURE_MAX];
    struct cf_http_response resp = {0};
    char *text = NULL;
    size_t text_len = 0;
    enum cf_rc rc;

    if (!secret || !secret[0])
        return cf_err_set(err, CF_EINVAL,
                          "the webhook consumer's connection lacks \"signingSecret\"");
    text = json_dumps(body, JSON_COMPACT);
    if (!text)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    text_len = strlen(text);
    rc = cf_webhook_signature(secret, strlen(secret), cf_now_ms() / 1000, text, text_len, value,
                              sizeof(value), err);
    if (rc != CF_OK)
        goto out;
    snprintf(signature, sizeof(signature), CF_WEBHOOK_SIGNATURE_HEADER ": %s", value);
    snprintf(event_h, sizeof(event_h), "X-Coffer-Event: %s", event);
    snprintf(delivery, sizeof(delivery), "X-Coffer-Delivery: %.64s.%" PRId64, ref->id,
             ref->generation);
    const char *headers[] = {content_type, event_h, delivery, signature, NULL};
    struct cf_http_request req = {
        .net = {.url = url, .timeout_ms = TIMEOUT_MS},
        .method = "POST",
        .body = text,
        .body_len = text_len,
        .headers = headers,
        .discard_body = true,
        .attempts = ATTEMPTS,
        .retry_base_ms = RETRY_BASE_MS,
    };
    rc = cf_http_perform(&req, &resp, err);
    if (rc != CF_OK) {
        if (rc != CF_ENOMEM) {
            char why[CF_ERR_MSG_MAX];
            snprintf(why, sizeof(why), "%s", err->msg);
            cf_err_set(err, rc, SYSTEM " is unreachable: %s", why);
        }
        goto out;
    }
    if (resp.status < 200 || resp.status > 299)
        rc = status_error(event, url, resp.status, resp.retry_after_s, err);
out:
    cf_http_response_release(&resp);
    sodium_memzero(text, text_len);
    cf_json_free_text(text);
    sodium_memzero(value, sizeof(value));
    sodium_memzero(signature, sizeof(signature));
    return rc;
}

/* {"event", "rotation": {"id", "name", "generation"}, "credentialId"} for ref and cred. */
static json_t *envelope(const char *event, const struct cf_rotation_ref *ref,
                        const struct cf_rotated_cred *cred)
{
    return json_pack("{s:s, s:{s:s, s:s, s:I}, s:s}", "event", event, "rotation", "id", ref->id,
                     "name", ref->name ? ref->name : "", "generation", (json_int_t)ref->generation,
                     "credentialId", cred->id);
}

static enum cf_rc wh_push(const struct cf_provider_conn *conn, const json_t *config,
                          const struct cf_rotation_ref *ref, const struct cf_rotated_cred *cred,
                          struct cf_err *err)
{
    json_t *body = NULL;
    char expires[CF_TIME_RFC3339_LEN];
    enum cf_rc rc = wh_config_check(config, err);
    if (rc != CF_OK)
        return rc;
    if (!cred || !json_is_object(cred->outputs) || json_object_size(cred->outputs) == 0)
        return cf_err_set(err, CF_EINVAL, "no credential values to push to the webhook");
    body = envelope(EVENT_PUSH, ref, cred);
    /* "values" shares the credential's own strings (wiped by cf_rotated_cred_release): no copy of
     * a secret is made but the dumped text, which post wipes */
    if (!body ||
        json_object_set_new(body, "expiresAt",
                            cred->expires_at
                                ? json_string(cf_time_format(cred->expires_at, expires))
                                : json_null()) != 0 ||
        json_object_set(body, "values", cred->outputs) != 0) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    rc = post(conn, json_string_value(json_object_get(config, "url")), EVENT_PUSH, ref, body, err);
out:
    json_decref(body);
    return rc;
}

static enum cf_rc wh_verify(const struct cf_provider_conn *conn, const json_t *config,
                            const struct cf_rotation_ref *ref, const struct cf_rotated_cred *cred,
                            struct cf_err *err)
{
    json_t *body = NULL;
    const char *url = json_string_value(json_object_get(config, "verifyUrl"));
    enum cf_rc rc = wh_config_check(config, err);
    if (rc != CF_OK)
        return rc;
    if (!cred)
        return cf_err_set(err, CF_EINVAL, "no credential for the webhook to verify");
    body = envelope(EVENT_VERIFY, ref, cred);
    if (!body)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    rc = post(conn, url ? url : json_string_value(json_object_get(config, "url")), EVENT_VERIFY,
              ref, body, err);
    json_decref(body);
    return rc;
}

static void wh_plan(const struct cf_provider_conn *conn, const json_t *config,
                    const struct cf_rotation_ref *ref, cf_rotation_plan_fn fn, void *ctx)
{
    const char *url = json_string_value(json_object_get(config, "url"));
    const char *verify_url = json_string_value(json_object_get(config, "verifyUrl"));
    char target[CF_WEBHOOK_URL_MAX + 1];
    (void)conn;
    (void)ref;
    cf_net_url_redact(url ? url : "?", target, sizeof(target));
    fn(ctx, "push", "POST", target,
       "hand the receiver the new credential's values (event rotation.push, signed)");
    cf_net_url_redact(verify_url ? verify_url : (url ? url : "?"), target, sizeof(target));
    fn(ctx, "verify", "POST", target,
       "ask the receiver whether the new credential works (event rotation.verify, signed, no "
       "values)");
}

enum cf_rc cf_webhook_check(const struct cf_provider_conn *conn, json_t **report,
                            struct cf_err *err)
{
    (void)conn;
    *report = NULL;
    return cf_err_set(err, CF_EINVAL,
                      "a webhook connection cannot be checked on its own: it names no receiver; "
                      "each rotation's push and verify prove its signing secret");
}

const struct cf_consumer_ops cf_consumer_webhook = {
    .type = "webhook",
    .connection_app = "webhook",
    .config_check = wh_config_check,
    .push = wh_push,
    .verify = wh_verify,
    .plan = wh_plan,
};
