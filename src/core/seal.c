/* Unseal progress, checks and throttle of a server sealed by Shamir shares (see seal.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/seal.h"
#include "crypto/shamir.h"
#include "util/log.h"
#include "util/time.h"
#include "util/banned.h"

#define NONCE_BYTES 16
#define FIRST_WAIT_S 60
#define LONGEST_WAIT_S 3600

struct cf_seal {
    pthread_mutex_t lock;
    struct cf_store *store; /* NULL for an auto-unseal */
    const char *type;
    char error[CF_SEAL_ERROR_MAX];
    uint8_t record[CF_SHAMIR_RECORD_BYTES];
    uint8_t *check; /* the store's root key check (not secret) */
    size_t check_len;
    unsigned shares, threshold;
    uint8_t (*given)[CF_SHARE_BYTES]; /* sodium_malloc'd, CF_SHAMIR_MAX_SHARES */
    unsigned progress;
    char nonce[CF_SEAL_NONCE_MAX];
    uint8_t *root; /* sodium_malloc'd: the checked key while key_ready */
    bool key_ready;
    bool sealed;
    bool seal_requested;
    /* attempts while sealed: the first KEPT, then a ring of the last KEPT (oldest at last_start) */
    struct cf_seal_attempt first[CF_SEAL_ATTEMPTS_KEPT];
    struct cf_seal_attempt last[CF_SEAL_ATTEMPTS_KEPT];
    size_t first_n, last_n, last_start;
    uint64_t dropped;
    unsigned failures;     /* failed attempts in a row */
    int64_t wait_until_ms; /* no attempt before this */
    void (*on_change)(void *ctx);
    void *ctx;
};

enum cf_rc cf_seal_new(struct cf_store *store, void (*on_change)(void *ctx), void *ctx,
                       struct cf_seal **out, struct cf_err *err)
{
    uint8_t *record = NULL;
    size_t record_len = 0;
    struct cf_seal *seal = NULL;
    enum cf_rc rc;

    *out = NULL;
    rc = cf_store_meta_get(store, CF_SEAL_META_SHAMIR, &record, &record_len, err);
    if (rc != CF_OK)
        return rc;
    seal = calloc(1, sizeof(*seal));
    if (!seal) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    pthread_mutex_init(&seal->lock, NULL);
    seal->sealed = true;
    seal->type = "shamir";
    seal->store = store;
    seal->on_change = on_change;
    seal->ctx = ctx;
    rc = cf_shamir_record_info(record, record_len, &seal->shares, &seal->threshold, err);
    if (rc != CF_OK)
        goto out;
    memcpy(seal->record, record, sizeof(seal->record));
    rc = cf_store_meta_get(store, CF_SEAL_META_ROOT_CHECK, &seal->check, &seal->check_len, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_EINVAL, "the store has a seal record but no root key check");
    if (rc != CF_OK)
        goto out;
    seal->given = sodium_malloc(CF_SHAMIR_MAX_SHARES * CF_SHARE_BYTES);
    seal->root = sodium_malloc(CF_ROOT_KEY_BYTES);
    if (!seal->given || !seal->root) {
        rc = cf_err_set(err, CF_ENOMEM, "cannot allocate locked memory for the unseal shares");
        goto out;
    }
    *out = seal;
    seal = NULL;
out:
    cf_seal_free(seal);
    free(record);
    return rc;
}

enum cf_rc cf_seal_new_auto(const char *type, void (*on_change)(void *ctx), void *ctx,
                            struct cf_seal **out, struct cf_err *err)
{
    struct cf_seal *seal = calloc(1, sizeof(*seal));
    *out = NULL;
    if (!seal)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    pthread_mutex_init(&seal->lock, NULL);
    seal->sealed = true;
    seal->type = type;
    seal->on_change = on_change;
    seal->ctx = ctx;
    *out = seal;
    return CF_OK;
}

void cf_seal_set_error(struct cf_seal *seal, const char *message)
{
    pthread_mutex_lock(&seal->lock);
    snprintf(seal->error, sizeof(seal->error), "%s", message ? message : "");
    pthread_mutex_unlock(&seal->lock);
}

void cf_seal_free(struct cf_seal *seal)
{
    if (!seal)
        return;
    sodium_free(seal->given); /* sodium_free wipes */
    sodium_free(seal->root);
    free(seal->check);
    pthread_mutex_destroy(&seal->lock);
    free(seal);
}

/* Reads the seal record again (with the lock held), at the start of an attempt and when the server
 * seals: `coffer operator rekey` may have replaced it beside the running server. On failure the
 * record read before stays. */
static void reload(struct cf_seal *seal)
{
    uint8_t *record = NULL;
    size_t len = 0;
    unsigned shares = 0, threshold = 0;
    if (seal->store &&
        cf_store_meta_get(seal->store, CF_SEAL_META_SHAMIR, &record, &len, NULL) == CF_OK &&
        cf_shamir_record_info(record, len, &shares, &threshold, NULL) == CF_OK) {
        memcpy(seal->record, record, sizeof(seal->record));
        seal->shares = shares;
        seal->threshold = threshold;
    }
    free(record);
}

/* With the lock held. */
static void clear_attempt(struct cf_seal *seal)
{
    if (seal->given)
        sodium_memzero(seal->given, CF_SHAMIR_MAX_SHARES * CF_SHARE_BYTES);
    seal->progress = 0;
    seal->nonce[0] = '\0';
}

/* Remembers an attempt (with the lock held): into the first ones while there is room, else into
 * the ring of the last ones, dropping (and counting) the oldest of those. */
static void remember(struct cf_seal *seal, enum cf_seal_outcome outcome, const char *source,
                     const char *detail)
{
    struct cf_seal_attempt *slot;
    if (seal->first_n < CF_SEAL_ATTEMPTS_KEPT) {
        slot = &seal->first[seal->first_n++];
    } else if (seal->last_n < CF_SEAL_ATTEMPTS_KEPT) {
        slot = &seal->last[(seal->last_start + seal->last_n++) % CF_SEAL_ATTEMPTS_KEPT];
    } else {
        slot = &seal->last[seal->last_start];
        seal->last_start = (seal->last_start + 1) % CF_SEAL_ATTEMPTS_KEPT;
        seal->dropped++;
    }
    slot->time_ms = cf_now_ms();
    slot->outcome = outcome;
    snprintf(slot->source, sizeof(slot->source), "%s", source ? source : "");
    snprintf(slot->detail, sizeof(slot->detail), "%s", detail);
}

const char *cf_seal_outcome_name(enum cf_seal_outcome outcome)
{
    switch (outcome) {
    case CF_SEAL_ACCEPTED:
        return "accepted";
    case CF_SEAL_REJECTED:
        return "rejected";
    case CF_SEAL_RESET:
        return "reset";
    case CF_SEAL_AUTO_FAILED:
        return "failed";
    }
    return "unknown";
}

void cf_seal_note_auto_failure(struct cf_seal *seal, const char *message)
{
    pthread_mutex_lock(&seal->lock);
    if (seal->sealed)
        remember(seal, CF_SEAL_AUTO_FAILED, NULL, message ? message : "");
    pthread_mutex_unlock(&seal->lock);
}

void cf_seal_note_malformed(struct cf_seal *seal, const char *source, const char *why)
{
    char detail[CF_SEAL_ERROR_MAX];
    snprintf(detail, sizeof(detail), "malformed request: %s", why ? why : "");
    pthread_mutex_lock(&seal->lock);
    if (seal->sealed) {
        remember(seal, CF_SEAL_REJECTED, source, detail);
        cf_log_warn("unseal: a request from %s was rejected: %s",
                    source && *source ? source : "an unknown address", detail);
    }
    pthread_mutex_unlock(&seal->lock);
}

enum cf_rc cf_seal_take_attempts(struct cf_seal *seal, struct cf_seal_attempts *out,
                                 struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&seal->lock);
    size_t n = seal->first_n + seal->last_n;
    if (n > 0) {
        out->items = calloc(n, sizeof(*out->items));
        if (!out->items) {
            pthread_mutex_unlock(&seal->lock);
            return cf_err_set(err, CF_ENOMEM, "out of memory");
        }
        memcpy(out->items, seal->first, seal->first_n * sizeof(*out->items));
        for (size_t i = 0; i < seal->last_n; i++)
            out->items[seal->first_n + i] =
                seal->last[(seal->last_start + i) % CF_SEAL_ATTEMPTS_KEPT];
    }
    out->n = n;
    out->dropped_after = seal->first_n;
    out->dropped = seal->dropped;
    seal->first_n = seal->last_n = seal->last_start = 0;
    seal->dropped = 0;
    pthread_mutex_unlock(&seal->lock);
    return CF_OK;
}

void cf_seal_attempts_release(struct cf_seal_attempts *attempts)
{
    free(attempts->items);
    memset(attempts, 0, sizeof(*attempts));
}

/* With the lock held. */
static void fill_status(struct cf_seal *seal, struct cf_seal_status *out)
{
    memset(out, 0, sizeof(*out));
    out->type = seal->type;
    memcpy(out->error, seal->error, sizeof(out->error));
    out->sealed = seal->sealed;
    out->key_ready = seal->key_ready;
    out->shares = seal->shares;
    out->threshold = seal->threshold;
    out->progress = seal->progress;
    memcpy(out->nonce, seal->nonce, sizeof(out->nonce));
}

void cf_seal_status(struct cf_seal *seal, struct cf_seal_status *out)
{
    pthread_mutex_lock(&seal->lock);
    fill_status(seal, out);
    pthread_mutex_unlock(&seal->lock);
}

/* Combines the shares handed in and checks the key against the store; with the lock held. */
static enum cf_rc combine(struct cf_seal *seal, struct cf_err *err)
{
    struct cf_keyring *candidate = NULL;
    enum cf_rc rc = cf_shamir_open(seal->record, sizeof(seal->record),
                                   (const uint8_t(*)[CF_SHARE_BYTES])seal->given, seal->progress,
                                   seal->root, err);
    if (rc == CF_OK)
        rc = cf_keyring_from_bytes(seal->root, &candidate, err);
    if (rc == CF_OK &&
        cf_keyring_verify_check(candidate, seal->check, seal->check_len, NULL) != CF_OK)
        rc = cf_err_set(err, CF_ECRYPTO, "the rebuilt key is not this store's root key");
    cf_keyring_free(candidate);
    if (rc == CF_ECRYPTO)
        cf_err_set(err, CF_EINVAL,
                   "the shares given do not unseal this store: at least one of them is wrong; "
                   "the attempt was reset, start again with the first share");
    if (rc != CF_OK)
        sodium_memzero(seal->root, CF_ROOT_KEY_BYTES);
    return rc;
}

enum cf_rc cf_seal_submit(struct cf_seal *seal, const char *share, size_t len, const char *nonce,
                          const char *source, struct cf_seal_status *out, struct cf_err *err)
{
    uint8_t decoded[CF_SHARE_BYTES];
    char detail[sizeof(((struct cf_err *)0)->msg) + 32] = ""; /* "malformed: " and a message */
    bool changed = false, logged = false;
    enum cf_rc rc = CF_OK;
    const char *from = source && *source ? source : "an unknown address";

    pthread_mutex_lock(&seal->lock);
    int64_t now = cf_now_ms();
    if (!seal->sealed) {
        /* the unsealed server audits this request itself */
        rc = cf_err_set(err, CF_EINVAL, "the server is not sealed");
        goto out;
    }
    if (seal->key_ready) {
        rc = cf_err_set(err, CF_EINVAL, "the server is not sealed");
        snprintf(detail, sizeof(detail), "late: the server is unsealing already");
        goto out;
    }
    if (!seal->given) {
        rc = cf_err_set(err, CF_EINVAL,
                        "this server unseals itself with %s: it takes no shares (see its log and "
                        "GET /api/status for why it is sealed)",
                        seal->type);
        snprintf(detail, sizeof(detail), "this server takes no shares (it unseals itself)");
        goto out;
    }
    if (now < seal->wait_until_ms) {
        rc = cf_err_set(err, CF_ERATELIMIT,
                        "too many failed unseal attempts: try again in %lld second(s)",
                        (long long)((seal->wait_until_ms - now + 999) / 1000));
        err->retry_after_s = (int)((seal->wait_until_ms - now + 999) / 1000);
        snprintf(detail, sizeof(detail), "throttled: too many failed attempts");
        goto out;
    }
    if (nonce && *nonce && seal->progress > 0 && strcmp(nonce, seal->nonce) != 0) {
        rc = cf_err_set(err, CF_ECONFLICT,
                        "the unseal attempt in progress is not the one named by 'nonce' (another "
                        "was started or it was reset)");
        snprintf(detail, sizeof(detail), "wrong nonce: not the attempt in progress");
        goto out;
    }
    rc = cf_shamir_share_decode(share, len, decoded, err);
    if (rc != CF_OK) {
        /* the decoder's message quotes none of the text */
        snprintf(detail, sizeof(detail), "malformed: %s", err ? err->msg : "not a share");
        goto out;
    }
    for (unsigned i = 0; i < seal->progress; i++) {
        if (decoded[0] == seal->given[i][0]) {
            /* Said the same way whether the values are equal or not: the answer must not tell
               a caller anything about the share held. */
            rc = cf_err_set(err, CF_EINVAL,
                            "share number %u was already given in this attempt (the same share "
                            "twice, or another share with its number: then one of them is wrong "
                            "and 'coffer operator unseal --reset' starts the attempt again)",
                            (unsigned)decoded[0]);
            snprintf(detail, sizeof(detail), "duplicate: share number %u already given",
                     (unsigned)decoded[0]);
            goto out;
        }
    }
    if (seal->progress == 0) {
        uint8_t raw[NONCE_BYTES];
        reload(seal);
        randombytes_buf(raw, sizeof(raw));
        sodium_bin2hex(seal->nonce, sizeof(seal->nonce), raw, sizeof(raw));
    }
    memcpy(seal->given[seal->progress++], decoded, CF_SHARE_BYTES);
    snprintf(detail, sizeof(detail), "share %u of %u", seal->progress, seal->threshold);
    if (seal->progress < seal->threshold) {
        cf_log_info("unseal: share %u of %u accepted from %s", seal->progress, seal->threshold,
                    from);
        logged = true;
        goto out;
    }
    rc = combine(seal, err);
    clear_attempt(seal);
    if (rc != CF_OK) {
        seal->failures++;
        if (seal->failures >= CF_SEAL_FREE_FAILURES) {
            unsigned doublings = seal->failures - CF_SEAL_FREE_FAILURES;
            int64_t wait_s = doublings >= 6 ? LONGEST_WAIT_S : (int64_t)FIRST_WAIT_S << doublings;
            if (wait_s > LONGEST_WAIT_S)
                wait_s = LONGEST_WAIT_S;
            seal->wait_until_ms = now + wait_s * 1000;
        }
        snprintf(detail, sizeof(detail),
                 rc == CF_ECRYPTO ? "not a share of this store: a full set of shares did not "
                                    "unseal it, the attempt was reset"
                                  : "the shares could not be combined");
        cf_log_warn("unseal: a full set of shares did not unseal the store (%u failed attempt(s) "
                    "in a row); the last share came from %s",
                    seal->failures, from);
        logged = true;
        goto out;
    }
    seal->failures = 0;
    seal->wait_until_ms = 0;
    seal->key_ready = true;
    changed = true;
    snprintf(detail, sizeof(detail), "share %u of %u: the root key was rebuilt and checked",
             seal->threshold, seal->threshold);
    cf_log_info("unseal: share %u of %u accepted from %s; the root key was rebuilt and checked; "
                "unsealing",
                seal->threshold, seal->threshold, from);
    logged = true;
out:
    if (seal->sealed && detail[0]) {
        remember(seal, rc == CF_OK ? CF_SEAL_ACCEPTED : CF_SEAL_REJECTED, source, detail);
        if (!logged)
            cf_log_warn("unseal: a share from %s was rejected: %s", from, detail);
    }
    sodium_memzero(decoded, sizeof(decoded));
    if (out)
        fill_status(seal, out);
    pthread_mutex_unlock(&seal->lock);
    if (changed && seal->on_change)
        seal->on_change(seal->ctx);
    return rc;
}

void cf_seal_reset(struct cf_seal *seal, const char *source, struct cf_seal_status *out)
{
    char detail[CF_SEAL_ERROR_MAX];
    pthread_mutex_lock(&seal->lock);
    if (seal->sealed && !seal->key_ready) {
        snprintf(detail, sizeof(detail), "progress reset: %u share(s) dropped", seal->progress);
        remember(seal, CF_SEAL_RESET, source, detail);
        cf_log_warn("unseal: %s by %s", detail, source && *source ? source : "an unknown address");
    }
    clear_attempt(seal);
    if (out)
        fill_status(seal, out);
    pthread_mutex_unlock(&seal->lock);
}

bool cf_seal_take_key(struct cf_seal *seal, uint8_t key[CF_ROOT_KEY_BYTES])
{
    pthread_mutex_lock(&seal->lock);
    bool ready = seal->key_ready;
    if (ready) {
        memcpy(key, seal->root, CF_ROOT_KEY_BYTES);
        sodium_memzero(seal->root, CF_ROOT_KEY_BYTES);
    }
    pthread_mutex_unlock(&seal->lock);
    return ready;
}

void cf_seal_set_sealed(struct cf_seal *seal, bool sealed)
{
    pthread_mutex_lock(&seal->lock);
    if (sealed)
        reload(seal);
    seal->sealed = sealed;
    seal->key_ready = false;
    seal->seal_requested = false;
    clear_attempt(seal);
    pthread_mutex_unlock(&seal->lock);
}

enum cf_rc cf_seal_request(struct cf_seal *seal, struct cf_err *err)
{
    pthread_mutex_lock(&seal->lock);
    bool sealed = seal->sealed;
    if (!sealed)
        seal->seal_requested = true;
    pthread_mutex_unlock(&seal->lock);
    if (sealed)
        return cf_err_set(err, CF_EINVAL, "the server is sealed already");
    if (seal->on_change)
        seal->on_change(seal->ctx);
    return CF_OK;
}

bool cf_seal_take_request(struct cf_seal *seal)
{
    pthread_mutex_lock(&seal->lock);
    bool requested = seal->seal_requested;
    seal->seal_requested = false;
    pthread_mutex_unlock(&seal->lock);
    return requested;
}
