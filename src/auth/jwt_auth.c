/* JWT auth login (see jwt_auth.h): the stored configuration becomes a key set and a verification
 * policy (auth/jwt.h) for each login, the token is verified, and an access token is issued. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "auth/jwks.h"
#include "auth/jwt.h"
#include "auth/jwt_auth.h"
#include "util/str.h"
#include "util/banned.h"

#define NOT_ATTACHED "JWT auth method not found for identity, did you configure JWT auth?"
#define LIST_MAX 64 /* audiences, claim rules, values: a configuration never needs more */

/* What a policy points into: mutable copies of the configuration's lists, split in place. */
struct policy_store {
    char *audiences_text;
    const char *audiences[LIST_MAX];
    struct cf_jwt_claim_rule rules[LIST_MAX];
    const char *values[LIST_MAX][LIST_MAX];
    char *values_text[LIST_MAX];
    json_t *claims;
};

/* Splits text (modified) at commas into trimmed non-empty items; at most LIST_MAX. */
static size_t split(char *text, const char **items)
{
    size_t n = 0;
    struct cf_list_iter it;
    struct cf_str item;
    cf_list_init(&it, text);
    while (n < LIST_MAX && cf_list_next(&it, &item)) {
        if (!item.n)
            continue;
        char *s = text + (item.p - text);
        s[item.n] = '\0'; /* a blank, the comma already passed, or the NUL */
        items[n++] = s;
    }
    return n;
}

static void policy_store_free(struct policy_store *ps)
{
    free(ps->audiences_text);
    for (size_t i = 0; i < LIST_MAX; i++)
        free(ps->values_text[i]);
    json_decref(ps->claims);
}

/* The policy of config; ps holds what it points into. */
static enum cf_rc build_policy(const struct cf_jwt_auth_config *config, struct policy_store *ps,
                               struct cf_jwt_policy *policy, struct cf_err *err)
{
    const char *name;
    json_t *value;

    cf_jwt_policy_init(policy);
    policy->leeway_s = config->clock_skew_leeway;
    policy->issuer = config->bound_issuer;
    policy->subject = config->bound_subject;
    ps->audiences_text = strdup(config->bound_audiences);
    ps->claims = json_loads(config->bound_claims, 0, NULL);
    if (!ps->audiences_text || !json_is_object(ps->claims))
        return cf_err_set(err, CF_ENOMEM, "out of memory or bad stored bound claims");
    policy->n_audiences = split(ps->audiences_text, ps->audiences);
    policy->audiences = ps->audiences;
    json_object_foreach(ps->claims, name, value)
    {
        size_t i = policy->n_claims;
        if (i == LIST_MAX || !json_is_string(value))
            return cf_err_set(err, CF_EINVAL, "stored bound claims are not usable");
        ps->values_text[i] = strdup(json_string_value(value));
        if (!ps->values_text[i])
            return cf_err_set(err, CF_ENOMEM, "out of memory");
        ps->rules[i].path = name;
        ps->rules[i].values = ps->values[i];
        ps->rules[i].n_values = split(ps->values_text[i], ps->values[i]);
        policy->n_claims++;
    }
    policy->claims = ps->rules;
    return CF_OK;
}

/* The key set of a static configuration: its PEM keys concatenated. */
static enum cf_rc build_keys(const struct cf_jwt_auth_config *config, struct cf_jwt_keys **keys,
                             struct cf_err *err)
{
    json_t *pems = json_loads(config->public_keys, 0, NULL), *pem;
    char *all = NULL;
    size_t len = 0, i;
    enum cf_rc rc = CF_OK;

    *keys = NULL;
    if (!json_is_array(pems)) {
        json_decref(pems);
        return cf_err_set(err, CF_EINVAL, "stored JWT public keys are not usable");
    }
    json_array_foreach(pems, i, pem)
    {
        size_t n = json_string_length(pem);
        char *grown = realloc(all, len + n + 2);
        if (!grown) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
        all = grown;
        memcpy(all + len, json_string_value(pem) ? json_string_value(pem) : "", n);
        len += n;
        all[len++] = '\n';
        all[len] = '\0';
    }
    rc = cf_jwt_keys_from_pem(all ? all : "", len, keys, err);
out:
    free(all);
    json_decref(pems);
    return rc;
}

/* Verifies jwt against the JWKS of config: the cached set, and when it lacks the token's key id, a
 * refetched one (rate-limited by the cache). */
static enum cf_rc verify_jwks(struct cf_jwks_cache *jwks, const struct cf_jwt_auth_config *config,
                              const char *jwt, const struct cf_jwt_policy *policy, int64_t now,
                              struct cf_err *err)
{
    struct cf_jwks_set *set = NULL;
    bool fetched = false;
    enum cf_rc rc;

    if (!jwks)
        return cf_err_set(err, CF_EINTERNAL, "JWKS fetching is not available");
    rc = cf_jwks_get(jwks, config->jwks_url, config->jwks_ca_cert, false, now, &set, &fetched, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_jwt_verify(cf_jwks_set_keys(set), jwt, policy, now / 1000, NULL, err);
    if (rc == CF_EUNAUTH && !fetched && strcmp(err->field, "kid") == 0) {
        struct cf_jwks_set *newer = NULL;
        rc = cf_jwks_get(jwks, config->jwks_url, config->jwks_ca_cert, true, now, &newer, &fetched,
                         err);
        if (rc == CF_OK)
            rc = cf_jwt_verify(cf_jwks_set_keys(newer), jwt, policy, now / 1000, NULL, err);
        cf_jwks_set_release(newer);
    }
    cf_jwks_set_release(set);
    return rc;
}

/* A JWT-auth login in progress: what is presented and the configuration found. */
struct jwt_login {
    struct cf_jwks_cache *jwks;
    const char *jwt;
    struct cf_jwt_auth_config config;
};

static enum cf_rc jwt_get(void *ctx, const struct cf_login_call *call, const char *identity_id,
                          bool *known, struct cf_err *err)
{
    struct jwt_login *login = ctx;
    enum cf_rc rc = cf_store_jwt_auth_get(call->st, identity_id, &login->config, err);
    *known = rc == CF_OK;
    return rc;
}

static enum cf_rc jwt_verify(void *ctx, const struct cf_login_call *call,
                             struct cf_login_grant *grant, struct cf_err *err)
{
    struct jwt_login *login = ctx;
    const struct cf_jwt_auth_config *config = &login->config;
    struct policy_store *ps = NULL;
    struct cf_jwt_keys *keys = NULL;
    struct cf_jwt_policy policy;
    enum cf_rc rc;

    ps = calloc(1, sizeof(*ps));
    if (!ps)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    bool static_keys = strcmp(config->configuration_type, "static") == 0;
    rc = static_keys ? build_keys(config, &keys, err) : CF_OK;
    if (rc == CF_OK)
        rc = build_policy(config, ps, &policy, err);
    if (rc != CF_OK)
        goto out;
    if (static_keys)
        rc = cf_jwt_verify(keys, login->jwt, &policy, call->now / 1000, NULL, err);
    else
        rc = verify_jwks(login->jwks, config, login->jwt, &policy, call->now, err);
    if (rc != CF_OK)
        goto out;
    grant->identity_id = config->identity_id;
    grant->policy = &config->token;
out:
    cf_jwt_keys_free(keys);
    policy_store_free(ps);
    free(ps);
    return rc;
}

static const struct cf_login_method jwt_method = {
    .auth_method = "jwt-auth",
    .what = "this identity from this address",
    .not_found = NOT_ATTACHED,
    .get = jwt_get,
    .verify = jwt_verify,
};

enum cf_rc cf_jwt_login(struct cf_store *st, struct cf_keyring *kr,
                        const struct cf_login_throttles *throttles, struct cf_jwks_cache *jwks,
                        const char *identity_id, const char *jwt, const char *client_ip,
                        int64_t now, struct cf_login_result *out, struct cf_err *err)
{
    struct jwt_login *login = calloc(1, sizeof(*login));
    enum cf_rc rc;

    if (!login) {
        memset(out, 0, sizeof(*out));
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    login->jwks = jwks;
    login->jwt = jwt;
    rc =
        cf_login_with(st, kr, throttles, &jwt_method, login, identity_id, client_ip, now, out, err);
    cf_jwt_auth_config_release(&login->config);
    free(login);
    return rc;
}
