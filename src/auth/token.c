/* Access tokens (see token.h). */
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "auth/token.h"
#include "crypto/token.h"
#include "util/cache.h"
#include "util/cidr.h"
#include "util/time.h"
#include "util/wipemem.h"
#include "util/banned.h"

_Static_assert(CF_TOKEN_HASH_BYTES == CF_TOKEN_HASH_LEN, "the store keeps token hashes whole");

#define SIGNING_CONTEXT "access-token"
/* base64url of {"alg":"HS256","typ":"JWT"} */
#define HEADER_B64 "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING
/* The claims of an access token, in JSON and in base64url. */
#define PAYLOAD_MAX 768
/* Room for the base64url of the HMAC-SHA-256 that signs a token. */
#define MAC_B64_MAX 64

_Static_assert(MAC_B64_MAX >= sodium_base64_ENCODED_LEN(crypto_auth_hmacsha256_BYTES, B64),
               "the signature fits");
_Static_assert(CF_SUBKEY_BYTES == crypto_auth_hmacsha256_KEYBYTES, "a subkey is an HMAC key");

/* Frozen configuration (see cf_token_set_max_ttl): written once before the server's threads
 * start, read only afterwards. */
static int64_t max_token_ttl = CF_TOKEN_MAX_TTL_DEFAULT;

void cf_token_set_max_ttl(int64_t seconds)
{
    if (seconds <= 0)
        CF_BUG("cf_token_set_max_ttl: the limit must be positive");
    max_token_ttl = seconds;
}

void cf_token_cap_ttls(int64_t *ttl, int64_t *max_ttl)
{
    if (*max_ttl <= 0 || *max_ttl > max_token_ttl)
        *max_ttl = max_token_ttl;
    if (*ttl <= 0 || *ttl > *max_ttl)
        *ttl = *max_ttl;
}

enum cf_rc cf_token_prune(struct cf_store *st, int64_t now, int max_batches, int64_t *deleted,
                          bool *more, struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    *deleted = 0;
    *more = true;
    for (int batch = 0; rc == CF_OK && *more && batch < max_batches; batch++) {
        int64_t n = 0;
        rc = cf_store_tokens_prune(st, now - CF_TOKEN_PRUNE_MARGIN_MS, max_token_ttl,
                                   CF_TOKEN_PRUNE_BATCH, &n, err);
        *deleted += n;
        *more = rc == CF_OK && n == CF_TOKEN_PRUNE_BATCH;
    }
    return rc;
}

bool cf_token_is_access_token(const char *text)
{
    /* base64url and the two dots, checked by strspn's table rather than byte by byte: every
     * request with a bearer token asks (an access token is some 300 bytes). */
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                   "0123456789-_.";
    size_t n = strspn(text, alphabet);
    if (text[n] != '\0' || n >= CF_ACCESS_TOKEN_MAX)
        return false;
    int dots = 0;
    for (const char *p = memchr(text, '.', n); p;
         p = memchr(p + 1, '.', n - (size_t)(p + 1 - text)))
        dots++;
    return dots == 2;
}

static void sign(struct cf_keyring *kr, const char *text, size_t n,
                 uint8_t mac[crypto_auth_hmacsha256_BYTES])
{
    uint8_t key[CF_SUBKEY_BYTES];
    cf_keyring_derive(kr, SIGNING_CONTEXT, key);
    crypto_auth_hmacsha256(mac, (const uint8_t *)text, n, key);
    sodium_memzero(key, sizeof(key));
}

enum cf_rc cf_token_issue(struct cf_store *st, struct cf_keyring *kr,
                          struct cf_access_token *record, char *out, size_t size,
                          struct cf_err *err)
{
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    char payload_b64[PAYLOAD_MAX], mac_b64[MAC_B64_MAX];
    char *payload = NULL;
    enum cf_rc rc;

    json_t *claims =
        json_pack("{s:s, s:s, s:s, s:I}", "identityId", record->identity_id,
                  "identityAccessTokenId", record->id, "authTokenType", "identityAccessToken",
                  "iat", (json_int_t)(record->created_at / 1000));
    if (claims && record->client_secret_id[0])
        json_object_set_new(claims, "clientSecretId", json_string(record->client_secret_id));
    if (claims && record->ttl > 0)
        json_object_set_new(claims, "exp",
                            json_integer((json_int_t)(record->created_at / 1000 + record->ttl)));
    payload = claims ? json_dumps(claims, JSON_COMPACT) : NULL;
    json_decref(claims);
    if (!payload)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    sodium_bin2base64(payload_b64, sizeof(payload_b64), (const uint8_t *)payload, strlen(payload),
                      B64);
    cf_json_free_text(payload);
    int n = snprintf(out, size, "%s.%s", HEADER_B64, payload_b64);
    if (n < 0 || (size_t)n + sizeof(mac_b64) >= size)
        return cf_err_set(err, CF_EINTERNAL, "access token too long");
    sign(kr, out, (size_t)n, mac);
    sodium_bin2base64(mac_b64, sizeof(mac_b64), mac, sizeof(mac), B64);
    snprintf(out + n, size - (size_t)n, ".%s", mac_b64);
    cf_token_hash(out, strlen(out), record->hash);
    rc = cf_store_token_create(st, record, err);
    if (rc != CF_OK)
        sodium_memzero(out, size);
    return rc;
}

/* Verifies the signature and extracts the token id. CF_EUNAUTH otherwise. */
static enum cf_rc parse(struct cf_keyring *kr, const char *token, char id[CF_UUID_LEN],
                        struct cf_err *err)
{
    uint8_t mac[crypto_auth_hmacsha256_BYTES], given[crypto_auth_hmacsha256_BYTES];
    char payload[PAYLOAD_MAX];
    size_t mac_len = 0, payload_len = 0;

    if (!cf_token_is_access_token(token))
        return cf_err_set(err, CF_EUNAUTH, "malformed access token");
    const char *dot1 = strchr(token, '.');
    const char *dot2 = strchr(dot1 + 1, '.');
    if (sodium_base642bin(given, sizeof(given), dot2 + 1, strlen(dot2 + 1), NULL, &mac_len, NULL,
                          B64) != 0 ||
        mac_len != sizeof(given))
        return cf_err_set(err, CF_EUNAUTH, "malformed access token");
    sign(kr, token, (size_t)(dot2 - token), mac);
    bool ok = sodium_memcmp(mac, given, sizeof(mac)) == 0;
    sodium_memzero(mac, sizeof(mac));
    if (!ok)
        return cf_err_set(err, CF_EUNAUTH,
                          "invalid access token: its signature does not verify (not issued by this "
                          "server, or issued before a root key rotation)");
    if (sodium_base642bin((uint8_t *)payload, sizeof(payload) - 1, dot1 + 1,
                          (size_t)(dot2 - dot1 - 1), NULL, &payload_len, NULL, B64) != 0)
        return cf_err_set(err, CF_EUNAUTH, "malformed access token");
    payload[payload_len] = '\0';
    json_t *claims = json_loads(payload, 0, NULL);
    const char *tid = json_string_value(json_object_get(claims, "identityAccessTokenId"));
    enum cf_rc rc = CF_OK;
    if (!tid || !cf_uuid_valid(tid))
        rc = cf_err_set(err, CF_EUNAUTH, "malformed access token");
    else
        memcpy(id, tid, CF_UUID_LEN);
    json_decref(claims);
    return rc;
}

/* The id of a token whose signature verifies, hash being cf_token_hash of it: from verified (NULL:
 * none) when this token verified before, else parse() (which fills verified on success). A hit is
 * sound because verified belongs to one keyring, whose signing key never changes, and the hash
 * names one token text: the same text verifies again with the same result. The caller still
 * checks the stored record on every use. */
static enum cf_rc verified_id(struct cf_cache *verified, struct cf_keyring *kr, const char *token,
                              const uint8_t hash[CF_TOKEN_HASH_BYTES], char id[CF_UUID_LEN],
                              struct cf_err *err)
{
    char key[2 * CF_TOKEN_HASH_BYTES + 1];
    void *value = NULL;
    size_t len = 0;
    if (verified) {
        sodium_bin2hex(key, sizeof(key), hash, CF_TOKEN_HASH_BYTES);
        if (cf_cache_get(verified, key, 0, &value, &len)) {
            bool whole = len == CF_UUID_LEN && ((const char *)value)[CF_UUID_LEN - 1] == '\0';
            if (whole)
                memcpy(id, value, CF_UUID_LEN);
            cf_cache_value_free(verified, value, len);
            if (whole)
                return CF_OK;
        }
    }
    enum cf_rc rc = parse(kr, token, id, err);
    if (rc == CF_OK && verified)
        cf_cache_put(verified, key, 0, id, CF_UUID_LEN);
    return rc;
}

/* The record of a verified token, with the common checks: hash, revoked, IP. CF_EUNAUTH when
 * refused; *revoked (may be NULL) then says whether it was because the token is revoked or gone
 * (a genuine token, its record revoked or deleted), rather than not genuine or from elsewhere. */
static enum cf_rc load(struct cf_store *st, struct cf_keyring *kr, struct cf_cache *verified,
                       const char *token, const char *client_ip, struct cf_access_token *record,
                       bool *revoked, struct cf_err *err)
{
    char id[CF_UUID_LEN];
    uint8_t hash[CF_TOKEN_HASH_BYTES];
    bool ignored;
    if (!revoked)
        revoked = &ignored;
    *revoked = false;
    cf_token_hash(token, strlen(token), hash);
    enum cf_rc rc = verified_id(verified, kr, token, hash, id, err);
    if (rc == CF_OK)
        rc = cf_store_token_get(st, id, record, err);
    *revoked = rc == CF_ENOTFOUND;
    if (rc == CF_ENOTFOUND)
        cf_err_set(err, CF_EUNAUTH,
                   "access token was revoked (its identity was deleted, or it never existed)");
    if (rc != CF_OK) {
        sodium_memzero(hash, sizeof(hash));
        return rc == CF_ENOTFOUND ? CF_EUNAUTH : rc;
    }
    bool same = cf_token_hash_equal(hash, record->hash);
    sodium_memzero(hash, sizeof(hash));
    if (!same)
        return cf_err_set(err, CF_EUNAUTH, "invalid access token");
    *revoked = record->revoked || (record->client_secret_id[0] &&
                                   (!record->client_secret_found || record->client_secret_revoked));
    if (record->revoked)
        return cf_err_set(err, CF_EUNAUTH, "access token was revoked");
    if (record->client_secret_id[0] && !record->client_secret_found)
        return cf_err_set(err, CF_EUNAUTH,
                          "access token was revoked: the client secret that issued it was deleted");
    if (record->client_secret_id[0] && record->client_secret_revoked)
        return cf_err_set(err, CF_EUNAUTH,
                          "access token was revoked: the client secret that issued it was revoked");
    if (client_ip && !cf_cidr_list_match(record->trusted_ips, client_ip))
        return cf_err_set(err, CF_EUNAUTH, "IP address %s is not allowed to use this access token",
                          client_ip);
    /* A token stored with no limit, or one above today's server maximum, ends at that maximum. */
    cf_token_cap_ttls(&record->ttl, &record->max_ttl);
    return CF_OK;
}

/* Both limits are set once load() has capped them. */
static int64_t max_deadline(const struct cf_access_token *r)
{
    return r->created_at + r->max_ttl * 1000;
}

static int64_t expiry(const struct cf_access_token *r)
{
    return (r->last_renewed_at ? r->last_renewed_at : r->created_at) + r->ttl * 1000;
}

static enum cf_rc check_times(const struct cf_access_token *r, int64_t now, struct cf_err *err)
{
    char when[CF_TIME_RFC3339_LEN];
    int64_t max = max_deadline(r), exp = expiry(r);
    if (r->client_secret_id[0] && r->client_secret_expires_at && now >= r->client_secret_expires_at)
        return cf_err_set(err, CF_EUNAUTH,
                          "access token expired: the client secret that issued it expired at %s",
                          cf_time_format(r->client_secret_expires_at, when));
    if (now >= max)
        return cf_err_set(err, CF_EUNAUTH, "access token has reached its max TTL at %s",
                          cf_time_format(max, when));
    if (now >= exp)
        return cf_err_set(err, CF_EUNAUTH, "access token expired at %s", cf_time_format(exp, when));
    return CF_OK;
}

enum cf_rc cf_token_check(struct cf_store *st, struct cf_keyring *kr, struct cf_cache *verified,
                          const char *token, const char *client_ip, int64_t now, bool count_use,
                          struct cf_access_token *record, struct cf_err *err)
{
    enum cf_rc rc = load(st, kr, verified, token, client_ip, record, NULL, err);
    if (rc == CF_OK)
        rc = check_times(record, now, err);
    if (rc != CF_OK)
        return rc;
    if (record->num_uses_limit > 0) {
        if (!count_use) {
            if (record->num_uses >= record->num_uses_limit)
                return cf_err_set(err, CF_EUNAUTH, "access token has reached its use limit of %lld",
                                  (long long)record->num_uses_limit);
            return CF_OK;
        }
        rc = cf_store_token_use(st, record->id, err);
        if (rc == CF_ECONFLICT)
            return cf_err_set(err, CF_EUNAUTH, "access token has reached its use limit of %lld",
                              (long long)record->num_uses_limit);
    }
    return rc;
}

enum cf_rc cf_token_renew(struct cf_store *st, struct cf_keyring *kr, const char *token,
                          const char *client_ip, int64_t now, struct cf_access_token *record,
                          int64_t *expires_in, struct cf_err *err)
{
    enum cf_rc rc = cf_token_check(st, kr, NULL, token, client_ip, now, false, record, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_store_token_renew(st, record->id, now, err);
    if (rc != CF_OK)
        return rc;
    record->last_renewed_at = now;
    int64_t exp = expiry(record), max = max_deadline(record);
    if (exp > max)
        exp = max;
    *expires_in = (exp - now + 999) / 1000;
    return CF_OK;
}

enum cf_rc cf_token_revoke(struct cf_store *st, struct cf_keyring *kr, const char *token,
                           struct cf_err *err)
{
    struct cf_access_token record;
    bool revoked;
    enum cf_rc rc = load(st, kr, NULL, token, NULL, &record, &revoked, err);
    if (rc != CF_OK) {
        /* Revoking a revoked (or deleted) token is not an error. */
        if (rc == CF_EUNAUTH && revoked)
            return CF_OK;
        return rc;
    }
    return cf_store_token_revoke(st, record.id, err);
}
