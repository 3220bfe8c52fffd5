/* Unit tests for the webhook signature (crypto/sign.h) against HMAC-SHA256 values computed
 * independently, and for the "webhook" rotation consumer's configuration refusals
 * (provider/webhook.h), each naming its field. */
#include <string.h>

#include <criterion/criterion.h>

#include "crypto/sign.h"
#include "provider/rotator.h"
#include "provider/webhook.h"
#include "util/str.h"
#include "util/banned.h"

/* Each expected value computed with Python's standard library, e.g.
 *   python3 -c 'import hmac, hashlib; print(hmac.new(b"Jefe", b"0.what do ya want for nothing?",
 *               hashlib.sha256).hexdigest())'
 * (the key and data of RFC 4231 test case 2, with the "<t>." prefix the signature adds). */
Test(webhook_signature, matches_independent_hmac)
{
    static const struct {
        const char *key;
        long long t;
        const char *body;
        const char *expected;
    } cases[] = {
        {"Jefe", 0, "what do ya want for nothing?",
         "t=0,v1=37f471929915ccd2cbbe79feb84ffcff4f2bb25e15fc41c2506687331ae179cc"},
        {"whsec_0123456789abcdef0123456789abcdef", 1764921600, "{\"event\":\"rotation.push\"}",
         "t=1764921600,v1=e17e80592ee0e7d675124bfca2955278e12fd0436a80a4cef19c2158589cfaa2"},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        char out[CF_WEBHOOK_SIGNATURE_MAX];
        struct cf_err err = {0};
        cr_assert_eq(cf_webhook_signature(cases[i].key, strlen(cases[i].key), cases[i].t,
                                          cases[i].body, strlen(cases[i].body), out, sizeof(out),
                                          &err),
                     CF_OK, "case %zu: %s", i, err.msg);
        cr_expect_str_eq(out, cases[i].expected, "case %zu", i);
    }
}

Test(webhook_signature, refuses_an_empty_key_and_a_short_buffer)
{
    char out[CF_WEBHOOK_SIGNATURE_MAX], small[40];
    struct cf_err err = {0};
    cr_expect_eq(cf_webhook_signature("", 0, 1, "{}", 2, out, sizeof(out), &err), CF_EINVAL);
    cr_expect_not_null(strstr(err.msg, "signing secret is empty"), "%s", err.msg);
    cr_expect_eq(cf_webhook_signature("k", 1, 1, "{}", 2, small, sizeof(small), &err), CF_EINVAL);
    cr_expect_str_eq(small, "");
}

Test(webhook_consumer, config_refusals_name_the_field)
{
    static const struct {
        const char *config;
        const char *field; /* NULL: accepted */
        const char *words;
    } cases[] = {
        {"{\"url\":\"https://hooks.example.com/coffer\"}", NULL, NULL},
        {"{\"url\":\"http://127.0.0.1:8080/push\",\"verifyUrl\":\"http://[::1]:8080/v\"}", NULL,
         NULL},
        {"[]", "config", "must be an object"},
        {"{}", "url", "\"url\" is required"},
        {"{\"url\":42}", "url", "\"url\" is required"},
        {"{\"url\":\"\"}", "url", "\"url\" is required"},
        {"{\"url\":\"http://hooks.example.com/coffer\"}", "url", "must be https"},
        {"{\"url\":\"ftp://hooks.example.com/coffer\"}", "url", "must be https"},
        {"{\"url\":\"not a url\"}", "url", "spaces or control characters"},
        {"{\"url\":\"https://hooks.example.com/c?token=abc\"}", "url", "a query string"},
        {"{\"url\":\"https://user:pw@hooks.example.com/c\"}", "url", "a user name"},
        {"{\"url\":\"https://hooks.example.com/c#frag\"}", "url", "a fragment"},
        {"{\"url\":\"https://hooks.example.com/c\",\"verifyUrl\":\"http://10.0.0.1/v\"}",
         "verifyUrl", "\"verifyUrl\" must be https"},
        {"{\"url\":\"https://hooks.example.com/c\",\"verifyUrl\":null}", "verifyUrl",
         "\"verifyUrl\" is required"},
        {"{\"url\":\"https://hooks.example.com/c\",\"secret\":\"x\"}", "config",
         "unknown field \"secret\""},
    };
    const struct cf_consumer_ops *ops = cf_consumer_find("webhook");
    cr_assert_not_null(ops);
    cr_expect_str_eq(ops->connection_app, "webhook");
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        struct cf_err err = {0};
        json_t *config = json_loads(cases[i].config, JSON_DECODE_ANY, NULL);
        cr_assert_not_null(config, "case %zu", i);
        enum cf_rc rc = ops->config_check(config, &err);
        if (!cases[i].field) {
            cr_expect_eq(rc, CF_OK, "case %zu: %s", i, err.msg);
        } else {
            cr_expect_eq(rc, CF_EVALIDATION, "case %zu", i);
            cr_expect_str_eq(err.field, cases[i].field, "case %zu: %s", i, err.msg);
            cr_expect_not_null(strstr(err.msg, cases[i].words), "case %zu: %s", i, err.msg);
        }
        json_decref(config);
    }
}

/* What the plan shows: the two POSTs, their URLs without query, no call made. */
static void collect(void *ctx, const char *step, const char *method, const char *target,
                    const char *purpose)
{
    json_array_append_new(ctx, json_pack("{s:s, s:s, s:s, s:s}", "step", step, "method", method,
                                         "target", target, "purpose", purpose));
}

Test(webhook_consumer, plan_names_both_posts)
{
    const struct cf_consumer_ops *ops = cf_consumer_find("webhook");
    json_t *config = json_pack("{s:s, s:s}", "url", "https://hooks.example.com/push", "verifyUrl",
                               "https://hooks.example.com/verify");
    json_t *calls = json_array();
    struct cf_rotation_ref ref = {.id = "r", .name = "n", .generation = 2};
    ops->plan(NULL, config, &ref, collect, calls);
    cr_assert_eq(json_array_size(calls), 2);
    const json_t *push = json_array_get(calls, 0), *verify = json_array_get(calls, 1);
    cr_expect_str_eq(json_string_value(json_object_get(push, "step")), "push");
    cr_expect_str_eq(json_string_value(json_object_get(push, "method")), "POST");
    cr_expect_str_eq(json_string_value(json_object_get(push, "target")),
                     "https://hooks.example.com/push");
    cr_expect_str_eq(json_string_value(json_object_get(verify, "step")), "verify");
    cr_expect_str_eq(json_string_value(json_object_get(verify, "target")),
                     "https://hooks.example.com/verify");
    json_decref(calls);
    json_decref(config);
}

Test(webhook_consumer, push_without_a_signing_secret_is_refused_before_any_call)
{
    const struct cf_consumer_ops *ops = cf_consumer_find("webhook");
    /* port 9 (discard) on loopback: a call would fail differently */
    json_t *config = json_pack("{s:s}", "url", "http://127.0.0.1:9/push");
    json_t *credentials = json_object();
    struct cf_provider_conn conn = {.app = "webhook", .credentials = credentials};
    struct cf_rotated_cred cred = {.id = "k1"};
    struct cf_rotation_ref ref = {.id = "r", .name = "n", .generation = 1};
    struct cf_err err = {0};
    cred.outputs = json_pack("{s:s}", "clientSecret", "s3cr3t-value");
    cr_expect_eq(ops->push(&conn, config, &ref, &cred, &err), CF_EINVAL);
    cr_expect_not_null(strstr(err.msg, "lacks \"signingSecret\""), "%s", err.msg);
    cr_expect_null(strstr(err.msg, "s3cr3t-value"), "%s", err.msg);
    cf_rotated_cred_release(&cred);
    json_decref(credentials);
    json_decref(config);
}
