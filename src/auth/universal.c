/* Universal auth login (see universal.h). */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "auth/universal.h"
#include "crypto/token.h"
#include "util/cidr.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

/* The same answer to a wrong client secret and to an unknown client id, which must not tell them
 * apart (client ids are not secret, but whether one exists is nobody's business). */
#define INVALID_CREDENTIALS "invalid client secret or unknown client id"

/* The identity whose client secrets an unknown client id is checked against: the nil UUID, which no
 * identity has, so the same query runs and finds none. */
#define NO_IDENTITY "00000000-0000-0000-0000-000000000000"

/* Finds the client secret whose hash matches, comparing against every one (and against a dummy when
 * there are none) so that timing says nothing about which, or whether one, matched, or whether the
 * identity has any. */
static const struct cf_client_secret *match_secret(const struct cf_client_secret_list *secrets,
                                                   const uint8_t hash[CF_TOKEN_HASH_BYTES])
{
    static const uint8_t dummy[CF_TOKEN_HASH_BYTES];
    const struct cf_client_secret *found = NULL;
    if (secrets->n == 0)
        (void)cf_token_hash_equal(dummy, hash);
    for (size_t i = 0; i < secrets->n; i++) {
        if (cf_token_hash_equal(secrets->items[i].hash, hash) && !found)
            found = &secrets->items[i];
    }
    return found;
}

/* The identity's name, for refusal messages only (a successful login does not need it). */
static const char *identity_name(struct cf_store *st, const struct cf_ua_config *config,
                                 struct cf_identity *identity)
{
    struct cf_err ignored;
    if (cf_store_identity_get(st, config->identity_id, identity, &ignored) != CF_OK)
        snprintf(identity->name, sizeof(identity->name), "%s", config->identity_id);
    return identity->name;
}

/* A universal-auth login in progress: the presented credential, the configuration found (or the
 * stand-in of an unknown client id), the identity's secrets and the one that matched. */
struct ua_login {
    const char *client_secret;
    bool known;
    struct cf_ua_config config;
    struct cf_identity identity;
    struct cf_client_secret_list secrets;
    const struct cf_client_secret *secret;
};

/* An unknown client id goes on as far as a known one with a wrong secret: the same queries, the
 * same hash and compare, the same answer. */
static enum cf_rc ua_get(void *ctx, const struct cf_login_call *call, const char *client_id,
                         bool *known, struct cf_err *err)
{
    struct ua_login *login = ctx;
    enum cf_rc rc = cf_store_ua_get_by_client_id(call->st, client_id, &login->config, err);
    *known = login->known = rc == CF_OK;
    if (rc == CF_ENOTFOUND) {
        memset(&login->config, 0, sizeof(login->config));
        cf_strlcpy(login->config.identity_id, NO_IDENTITY, sizeof(login->config.identity_id));
        rc = CF_OK;
    }
    return rc;
}

static enum cf_rc ua_verify(void *ctx, const struct cf_login_call *call,
                            struct cf_login_grant *grant, struct cf_err *err)
{
    struct ua_login *login = ctx;
    uint8_t hash[CF_TOKEN_HASH_BYTES];
    enum cf_rc rc =
        cf_store_client_secret_list(call->st, login->config.identity_id, &login->secrets, err);
    if (rc != CF_OK)
        return rc;
    cf_token_hash(login->client_secret, strlen(login->client_secret), hash);
    login->secret = match_secret(&login->secrets, hash);
    sodium_memzero(hash, sizeof(hash));
    if (!login->known || !login->secret)
        return cf_err_set(err, CF_EUNAUTH, INVALID_CREDENTIALS);
    /* The secret is right: from here on the refusals may say precisely what is wrong (and the
     * address check comes only now, so that the identity's name is told only to its holder). */
    grant->identity_id = login->config.identity_id;
    grant->client_secret_id = login->secret->id;
    grant->policy = &login->config.token;
    grant->login_ips = login->config.client_secret_trusted_ips;
    return CF_OK;
}

static enum cf_rc ua_refuse_address(void *ctx, const struct cf_login_call *call, struct cf_err *err)
{
    struct ua_login *login = ctx;
    return cf_err_set(err, CF_EUNAUTH,
                      "IP address %s is not allowed to use the client secrets of identity \"%s\"",
                      call->client_ip, identity_name(call->st, &login->config, &login->identity));
}

static enum cf_rc ua_admit(void *ctx, const struct cf_login_call *call, struct cf_err *err)
{
    struct ua_login *login = ctx;
    const struct cf_client_secret *secret = login->secret;
    char when[CF_TIME_RFC3339_LEN];
    if (secret->revoked)
        return cf_err_set(err, CF_EUNAUTH, "client secret \"%s\" of identity \"%s\" was revoked",
                          secret->description,
                          identity_name(call->st, &login->config, &login->identity));
    if (secret->expires_at && call->now >= secret->expires_at)
        return cf_err_set(err, CF_EUNAUTH, "client secret \"%s\" of identity \"%s\" expired at %s",
                          secret->description,
                          identity_name(call->st, &login->config, &login->identity),
                          cf_time_format(secret->expires_at, when));
    return CF_OK;
}

static const struct cf_login_method universal_method = {
    .auth_method = "universal-auth",
    .what = "this client id from this address",
    .get = ua_get,
    .verify = ua_verify,
    .refuse_address = ua_refuse_address,
    .admit = ua_admit,
};

enum cf_rc cf_ua_login(struct cf_store *st, struct cf_keyring *kr,
                       const struct cf_login_throttles *throttles, const char *client_id,
                       const char *client_secret, const char *client_ip, int64_t now,
                       struct cf_login_result *out, struct cf_err *err)
{
    struct ua_login login = {.client_secret = client_secret};
    enum cf_rc rc = cf_login_with(st, kr, throttles, &universal_method, &login, client_id,
                                  client_ip, now, out, err);
    if (rc == CF_ECONFLICT && login.secret)
        rc =
            cf_err_set(err, CF_EUNAUTH,
                       "client secret \"%s\" of identity \"%s\" has reached its use limit of %lld",
                       login.secret->description, identity_name(st, &login.config, &login.identity),
                       (long long)login.secret->num_uses_limit);
    cf_client_secret_list_release(&login.secrets);
    return rc;
}
