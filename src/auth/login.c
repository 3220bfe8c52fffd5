/* The login block shared by every auth method (see login.h). */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "auth/login.h"
#include "util/cidr.h"
#include "util/str.h"
#include "util/banned.h"

/* Throttle keys of (address, id): the id is hashed, so that the table never holds a presented
 * string (which may be a credential pasted into the wrong field) and every key fits. */
#define PAIR_KEY_MAX 96

static void pair_key(const char *client_ip, const char *id, char out[PAIR_KEY_MAX])
{
    uint8_t digest[16];
    char hex[2 * sizeof(digest) + 1];
    crypto_generichash(digest, sizeof(digest), (const uint8_t *)id, strlen(id), NULL, 0);
    sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
    snprintf(out, PAIR_KEY_MAX, "%.46s %s", client_ip, hex); /* 46: INET6_ADDRSTRLEN */
}

/* CF_ERATELIMIT when the address, or key from this address, is locked out. */
static enum cf_rc throttle_check(const struct cf_login_throttles *t, const char *key,
                                 const char *what, const char *client_ip, int64_t now,
                                 struct cf_err *err)
{
    char pair[PAIR_KEY_MAX];
    enum cf_rc rc = cf_throttle_check(t->by_address, client_ip, "this address", now, err);
    pair_key(client_ip, key, pair);
    if (rc == CF_OK)
        rc = cf_throttle_check(t->by_address_and_id, pair, what, now, err);
    return rc;
}

/* Records a failed attempt of key from client_ip against both throttles and returns rc. */
static enum cf_rc failed(const struct cf_login_throttles *t, const char *key, const char *client_ip,
                         int64_t now, enum cf_rc rc)
{
    char pair[PAIR_KEY_MAX];
    pair_key(client_ip, key, pair);
    cf_throttle_failure(t->by_address_and_id, pair, now);
    cf_throttle_failure(t->by_address, client_ip, now);
    return rc;
}

/* Issues the access token of grant into out and clears the failures of (client_ip, key). */
static enum cf_rc issue(const struct cf_login_call *call,
                        const struct cf_login_throttles *throttles, const char *auth_method,
                        const char *key, const struct cf_login_grant *grant,
                        struct cf_login_result *out, struct cf_err *err)
{
    struct cf_access_token record = {0};
    char pair[PAIR_KEY_MAX];
    cf_uuid_new(record.id);
    cf_strlcpy(record.identity_id, grant->identity_id, sizeof(record.identity_id));
    cf_strlcpy(record.client_secret_id, grant->client_secret_id ? grant->client_secret_id : "",
               sizeof(record.client_secret_id));
    cf_strlcpy(record.auth_method, auth_method, sizeof(record.auth_method));
    record.ttl = grant->policy->ttl;
    record.max_ttl = grant->policy->max_ttl;
    cf_token_cap_ttls(&record.ttl, &record.max_ttl);
    record.num_uses_limit = grant->policy->num_uses_limit;
    cf_strlcpy(record.trusted_ips, grant->policy->trusted_ips, sizeof(record.trusted_ips));
    record.created_at = call->now;
    enum cf_rc rc =
        cf_token_issue(call->st, call->kr, &record, out->token, sizeof(out->token), err);
    if (rc != CF_OK)
        return rc;
    out->expires_in = record.ttl;
    out->max_ttl = record.max_ttl;
    pair_key(call->client_ip, key, pair);
    cf_throttle_success(throttles->by_address_and_id, pair);
    return CF_OK;
}

enum cf_rc cf_login_with(struct cf_store *st, struct cf_keyring *kr,
                         const struct cf_login_throttles *throttles,
                         const struct cf_login_method *method, void *ctx, const char *key,
                         const char *client_ip, int64_t now, struct cf_login_result *out,
                         struct cf_err *err)
{
    struct cf_login_call call = {st, kr, client_ip ? client_ip : "", now};
    struct cf_login_grant grant = {0};
    bool known = false;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = throttle_check(throttles, key, method->what, call.client_ip, now, err);
    if (rc != CF_OK)
        return rc;
    rc = method->get(ctx, &call, key, &known, err);
    out->subject_known = known;
    if (rc == CF_ENOTFOUND && method->not_found)
        return failed(throttles, key, call.client_ip, now,
                      cf_err_set(err, CF_ENOTFOUND, "%s", method->not_found));
    if (rc != CF_OK)
        return rc;
    rc = method->verify(ctx, &call, &grant, err);
    if (rc == CF_EUNAUTH)
        return failed(throttles, key, call.client_ip, now, rc);
    if (rc != CF_OK)
        goto out;
    if (grant.login_ips && *call.client_ip &&
        !cf_cidr_list_match(grant.login_ips, call.client_ip)) {
        rc = method->refuse_address
                 ? method->refuse_address(ctx, &call, err)
                 : cf_err_set(err, CF_EUNAUTH, "IP address %s is not allowed to log in",
                              call.client_ip);
        return failed(throttles, key, call.client_ip, now, rc);
    }
    if (method->admit) {
        rc = method->admit(ctx, &call, err);
        if (rc != CF_OK)
            goto out;
    }
    rc = issue(&call, throttles, method->auth_method, key, &grant, out, err);
out:
    if (rc != CF_OK)
        sodium_memzero(out->token, sizeof(out->token));
    return rc;
}
