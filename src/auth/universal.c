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
    if (st->ops->identity_get(st, config->identity_id, identity, &ignored) != CF_OK)
        snprintf(identity->name, sizeof(identity->name), "%s", config->identity_id);
    return identity->name;
}

enum cf_rc cf_login_throttle_check(const struct cf_login_throttles *t, const char *key,
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

enum cf_rc cf_login_failed(const struct cf_login_throttles *t, const char *key,
                           const char *client_ip, int64_t now, enum cf_rc rc)
{
    char pair[PAIR_KEY_MAX];
    pair_key(client_ip, key, pair);
    cf_throttle_failure(t->by_address_and_id, pair, now);
    cf_throttle_failure(t->by_address, client_ip, now);
    return rc;
}

enum cf_rc cf_login_issue(struct cf_store *st, struct cf_keyring *kr,
                          const struct cf_login_throttles *throttles, const char *key,
                          const char *client_ip, const struct cf_login_grant *grant, int64_t now,
                          struct cf_login_result *out, struct cf_err *err)
{
    struct cf_access_token record = {0};
    char pair[PAIR_KEY_MAX];
    cf_uuid_new(record.id);
    cf_strlcpy(record.identity_id, grant->identity_id, sizeof(record.identity_id));
    cf_strlcpy(record.client_secret_id, grant->client_secret_id ? grant->client_secret_id : "",
               sizeof(record.client_secret_id));
    cf_strlcpy(record.auth_method, grant->auth_method, sizeof(record.auth_method));
    record.ttl = grant->ttl;
    record.max_ttl = grant->max_ttl;
    cf_token_cap_ttls(&record.ttl, &record.max_ttl);
    record.num_uses_limit = grant->num_uses_limit;
    cf_strlcpy(record.trusted_ips, grant->trusted_ips, sizeof(record.trusted_ips));
    record.created_at = now;
    enum cf_rc rc = cf_token_issue(st, kr, &record, out->token, sizeof(out->token), err);
    if (rc != CF_OK)
        return rc;
    out->expires_in = record.ttl;
    out->max_ttl = record.max_ttl;
    pair_key(client_ip ? client_ip : "", key, pair);
    cf_throttle_success(throttles->by_address_and_id, pair);
    return CF_OK;
}

enum cf_rc cf_ua_login(struct cf_store *st, struct cf_keyring *kr,
                       const struct cf_login_throttles *throttles, const char *client_id,
                       const char *client_secret, const char *client_ip, int64_t now,
                       struct cf_login_result *out, struct cf_err *err)
{
    struct cf_ua_config config;
    struct cf_identity identity;
    struct cf_client_secret_list secrets = {0};
    uint8_t hash[CF_TOKEN_HASH_BYTES];
    char when[CF_TIME_RFC3339_LEN];
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    if (!client_ip)
        client_ip = "";
    rc = cf_login_throttle_check(throttles, client_id, "this client id from this address",
                                 client_ip, now, err);
    if (rc != CF_OK)
        return rc;

    /* An unknown client id goes on as far as a known one with a wrong secret: the same queries, the
     * same hash and compare, the same answer. */
    rc = st->ops->ua_get_by_client_id(st, client_id, &config, err);
    bool known = rc == CF_OK;
    if (rc == CF_ENOTFOUND) {
        memset(&config, 0, sizeof(config));
        cf_strlcpy(config.identity_id, NO_IDENTITY, sizeof(config.identity_id));
    } else if (rc != CF_OK) {
        return rc;
    }
    out->subject_known = known;
    rc = st->ops->client_secret_list(st, config.identity_id, &secrets, err);
    if (rc != CF_OK)
        return rc;
    cf_token_hash(client_secret, strlen(client_secret), hash);
    const struct cf_client_secret *secret = match_secret(&secrets, hash);
    sodium_memzero(hash, sizeof(hash));
    if (!known || !secret) {
        rc = cf_login_failed(throttles, client_id, client_ip, now,
                             cf_err_set(err, CF_EUNAUTH, INVALID_CREDENTIALS));
        goto out;
    }
    /* The secret is right: from here on the refusals may say precisely what is wrong (and the
     * address check comes only now, so that the identity's name is told only to its holder). */
    if (*client_ip && !cf_cidr_list_match(config.client_secret_trusted_ips, client_ip)) {
        rc = cf_login_failed(
            throttles, client_id, client_ip, now,
            cf_err_set(err, CF_EUNAUTH,
                       "IP address %s is not allowed to use the client secrets of identity "
                       "\"%s\"",
                       client_ip, identity_name(st, &config, &identity)));
        goto out;
    }
    if (secret->revoked) {
        rc = cf_err_set(err, CF_EUNAUTH, "client secret \"%s\" of identity \"%s\" was revoked",
                        secret->description, identity_name(st, &config, &identity));
        goto out;
    }
    if (secret->expires_at && now >= secret->expires_at) {
        rc = cf_err_set(err, CF_EUNAUTH, "client secret \"%s\" of identity \"%s\" expired at %s",
                        secret->description, identity_name(st, &config, &identity),
                        cf_time_format(secret->expires_at, when));
        goto out;
    }
    struct cf_login_grant grant = {
        config.identity_id,      "universal-auth",     secret->id,
        config.token.ttl,        config.token.max_ttl, config.token.num_uses_limit,
        config.token.trusted_ips};
    rc = cf_login_issue(st, kr, throttles, client_id, client_ip, &grant, now, out, err);
    if (rc == CF_ECONFLICT) {
        rc = cf_err_set(err, CF_EUNAUTH,
                        "client secret \"%s\" of identity \"%s\" has reached its use limit of %lld",
                        secret->description, identity_name(st, &config, &identity),
                        (long long)secret->num_uses_limit);
        goto out;
    }
out:
    cf_client_secret_list_release(&secrets);
    return rc;
}
