/* Machine-identity access tokens. A token is JWT-shaped, as Infisical's clients expect: base64url
 * header
 * {"alg":"HS256","typ":"JWT"}, a payload {identityId, identityAccessTokenId, authTokenType:
 * "identityAccessToken", clientSecretId?, iat, exp?} and an HMAC-SHA256 signature with a key
 * derived from the root key. The store keeps, per token id, the token's hash and its limits; the
 * store's record is what counts (so revocation, identity deletion and use limits take effect on the
 * next request), the signature only keeps forged ids from reaching the store. The token itself is
 * never stored. */
#ifndef CF_AUTH_TOKEN_H
#define CF_AUTH_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/keyring.h"
#include "store/store.h"
#include "util/cache.h"
#include "util/err.h"

#define CF_ACCESS_TOKEN_MAX 1024

/* The longest any access token lives, in seconds, unless the server sets another limit: 30 days. */
#define CF_TOKEN_MAX_TTL_DEFAULT (30LL * 24 * 3600)

/* Sets the server-wide maximum lifetime of an access token (seconds, > 0): a TTL or max TTL of 0
 * ("none") or above it becomes it, at login, on renewal and when a stored token is checked (tokens
 * stored before the limit existed included). Frozen configuration: call it once at start, before
 * any thread serves a request. */
void cf_token_set_max_ttl(int64_t seconds);

/* The TTL and max TTL (seconds) a new token gets for the given settings (0: none) under the
 * server-wide maximum: neither is 0 or above it afterwards, and ttl <= max_ttl. */
void cf_token_cap_ttls(int64_t *ttl, int64_t *max_ttl);

/* How long after its end an access token's row is kept before cf_token_prune deletes it (so that
 * a client using it just after gets "expired at T" rather than "not found", and nodes whose
 * clocks differ a little agree that it has ended): one hour. */
#define CF_TOKEN_PRUNE_MARGIN_MS (3600LL * 1000)
/* Rows deleted per transaction by cf_token_prune, so that a long backlog never holds the write
 * lock for long. */
#define CF_TOKEN_PRUNE_BATCH 1000

/* Deletes, in transactions of CF_TOKEN_PRUNE_BATCH rows, up to max_batches batches of stored
 * access tokens that ended (TTL or max TTL, as cf_token_check caps them) more than
 * CF_TOKEN_PRUNE_MARGIN_MS before now (ms), revoked tokens included once they ended. *deleted
 * receives how many went; *more is true when the last batch was full (there may be more).
 * Idempotent: safe on several servers sharing a store at once. Thread-safe. */
enum cf_rc cf_token_prune(struct cf_store *st, int64_t now, int max_batches, int64_t *deleted,
                          bool *more, struct cf_err *err);

/* True when text has the shape of an access token (three base64url segments). */
bool cf_token_is_access_token(const char *text);

/* Signs a token for record (id, identity_id, client_secret_id, ttl, created_at filled by the
 * caller), fills record->hash, stores the record and writes the token into out (size >=
 * CF_ACCESS_TOKEN_MAX; the caller wipes it). */
enum cf_rc cf_token_issue(struct cf_store *st, struct cf_keyring *kr,
                          struct cf_access_token *record, char *out, size_t size,
                          struct cf_err *err);

/* Checks a presented token: signature, the stored record (exists, same hash, not revoked, within
 * its TTL and max TTL as capped by cf_token_set_max_ttl, within its use limit, client address
 * allowed), the client secret that issued it (still there, not revoked, not expired) and counts one
 * use when it has a limit. On success *record is the stored record, its TTLs capped. Each failure
 * is CF_EUNAUTH with a message naming the cause (expired at T, revoked, max TTL reached at T, use
 * limit reached, IP not allowed, its client secret revoked, deleted or expired), never the
 * token. verified (borrowed; NULL: none) remembers, by the token's hash, the id of each token
 * whose signature verified, so that the signature and the claims are checked once per token
 * rather than once per request; the stored record is read on every call all the same. Use one
 * verified cache with one keyring only (a cf_cache of plain values, util/cache.h; about 100 bytes
 * an entry). Thread-safe. */
enum cf_rc cf_token_check(struct cf_store *st, struct cf_keyring *kr, struct cf_cache *verified,
                          const char *token, const char *client_ip, int64_t now, bool count_use,
                          struct cf_access_token *record, struct cf_err *err);

/* Renews a valid token: its TTL restarts now, but never past its max TTL. *expires_in receives the
 * seconds the token is now valid for (0: no expiry). */
enum cf_rc cf_token_renew(struct cf_store *st, struct cf_keyring *kr, const char *token,
                          const char *client_ip, int64_t now, struct cf_access_token *record,
                          int64_t *expires_in, struct cf_err *err);

/* Revokes a token given its text (the signature must verify; revoking twice is fine). */
enum cf_rc cf_token_revoke(struct cf_store *st, struct cf_keyring *kr, const char *token,
                           struct cf_err *err);

#endif
