/* The seal of a running server whose root key is split into Shamir shares (crypto/shamir.h):
 * the shares operators hand in one at a time (progress k of n, a nonce naming the attempt, a
 * reset), the check that the rebuilt root key is this store's (the root key check kept in the
 * store), the throttle on failed attempts, and the request to seal again.
 *
 * The object only collects and checks; the server (server/server.c) is told through on_change
 * when there is something to do (a root key to take, a seal asked for) and brings its services
 * up or down itself. Shares and the rebuilt key live in locked memory (sodium_malloc) and are
 * wiped when taken, reset or freed. Thread-safe: request threads and the server's main thread
 * share one cf_seal. */
#ifndef CF_CORE_SEAL_H
#define CF_CORE_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/keyring.h"
#include "store/store.h"
#include "util/err.h"

/* The store's meta rows: the Shamir seal record (its presence makes the store a sealed one) and
 * the root key check (a known text sealed by the root key). */
#define CF_SEAL_META_SHAMIR "seal_shamir"
#define CF_SEAL_META_ROOT_CHECK "root_key_check"
/* An attempt's nonce: 32 hex characters and a NUL. */
#define CF_SEAL_NONCE_MAX 33
/* Failed unseal attempts (a full set of shares that does not open the store) allowed in a row
 * before each further one waits: 60 s after the last allowed, doubled each time, at most an hour.
 */
#define CF_SEAL_FREE_FAILURES 3

struct cf_seal;

/* Room for a failed auto-unseal's message. */
#define CF_SEAL_ERROR_MAX 256
/* Unseal attempts kept while sealed: the first and the last this many each; those between are
 * only counted (a flood of attempts must not grow the memory of a sealed server). */
#define CF_SEAL_ATTEMPTS_KEPT 32
/* Room for an attempt's source address (as the audit log's source_ip). */
#define CF_SEAL_SOURCE_MAX 64

/* What became of one attempt while sealed. */
enum cf_seal_outcome {
    CF_SEAL_ACCEPTED,    /* a share taken: detail "share k of t" (and the unseal, for the last) */
    CF_SEAL_REJECTED,    /* a share refused: detail says why (malformed, not a share of this store,
                            duplicate, wrong nonce, throttled), never which share */
    CF_SEAL_RESET,       /* the shares handed in so far dropped */
    CF_SEAL_AUTO_FAILED, /* Key Vault or the PKCS#11 token did not unwrap the key: detail the error
                          */
};

/* One unseal attempt, as remembered while sealed. Holds no share material of any kind. */
struct cf_seal_attempt {
    int64_t time_ms; /* UTC, milliseconds since the epoch */
    enum cf_seal_outcome outcome;
    char source[CF_SEAL_SOURCE_MAX]; /* the client's address; "" for an auto-unseal */
    char detail[CF_SEAL_ERROR_MAX];
};

/* The attempts taken from a seal, oldest first: items[0..n). When attempts were dropped, they
 * fell between items[dropped_after - 1] and items[dropped_after]. */
struct cf_seal_attempts {
    struct cf_seal_attempt *items; /* malloc'd; released with cf_seal_attempts_release */
    size_t n;
    size_t dropped_after;
    uint64_t dropped;
};

struct cf_seal_status {
    const char *type;              /* "shamir", or the auto-unseal's ("azure-key-vault"); static */
    char error[CF_SEAL_ERROR_MAX]; /* why the last auto-unseal failed; "" when it did not */
    bool sealed;     /* no root key in use: every route but the status and unseal ones is 503 */
    bool key_ready;  /* a root key was rebuilt and is being taken into use */
    unsigned shares; /* shares made by init or rekey */
    unsigned threshold;
    unsigned progress;             /* shares handed in for the current attempt */
    char nonce[CF_SEAL_NONCE_MAX]; /* the current attempt's nonce; "" when none */
};

/* Reads the store's seal record. CF_ENOTFOUND when the store is not sealed by shares (its root
 * key is a file or COFFER_ROOT_KEY). on_change (may be NULL) is called, without the lock held and
 * from a request thread, when cf_seal_take_key or cf_seal_take_request has something to return.
 * The new seal is sealed. *out is freed with cf_seal_free. */
enum cf_rc cf_seal_new(struct cf_store *store, void (*on_change)(void *ctx), void *ctx,
                       struct cf_seal **out, struct cf_err *err);

/* A seal whose server unseals itself (type: "azure-key-vault", static): it takes no shares
 * (cf_seal_submit refuses them) and reports the last failure set by cf_seal_set_error. */
enum cf_rc cf_seal_new_auto(const char *type, void (*on_change)(void *ctx), void *ctx,
                            struct cf_seal **out, struct cf_err *err);

/* Records why the last auto-unseal failed ("" or NULL: it did not), for the status. */
void cf_seal_set_error(struct cf_seal *seal, const char *message);

/* Wipes and frees; NULL is a no-op. */
void cf_seal_free(struct cf_seal *seal);

void cf_seal_status(struct cf_seal *seal, struct cf_seal_status *out);

/* Hands in one share (its text, len bytes) for the attempt named nonce (NULL or "": whichever is
 * in progress), from the client at source (NULL: unknown). While sealed, the attempt and its
 * outcome are remembered (cf_seal_take_attempts) and a refusal is logged, naming source, never
 * the share. When it completes the threshold, the shares are combined and the root key checked
 * against the store; on success it waits for cf_seal_take_key. *out is the state after the call
 * (also on failure). CF_EINVAL: not a share, a share given twice, the server not sealed, or a set
 * that does not unseal the store (the attempt is then reset, and the message does not say which
 * share was wrong); CF_ECONFLICT: nonce is not the attempt in progress; CF_ERATELIMIT (with
 * err->retry_after_s): too many failed attempts. */
enum cf_rc cf_seal_submit(struct cf_seal *seal, const char *share, size_t len, const char *nonce,
                          const char *source, struct cf_seal_status *out, struct cf_err *err);

/* Drops the shares handed in so far (a new attempt starts with the next share); source (NULL:
 * unknown) asked for it. Remembered and logged as cf_seal_submit's attempts are. */
void cf_seal_reset(struct cf_seal *seal, const char *source, struct cf_seal_status *out);

/* Remembers (while sealed) and logs an unseal request refused before it reached cf_seal_submit: a
 * body that is not an unseal request (why says what is wrong; it quotes nothing of the body). */
void cf_seal_note_malformed(struct cf_seal *seal, const char *source, const char *why);

/* Remembers a failed auto-unseal (message: why, as the unwrap said it; never secret). */
void cf_seal_note_auto_failure(struct cf_seal *seal, const char *message);

/* Moves the attempts remembered while sealed into *out (the seal keeps none after), for the audit
 * log of the unsealed server. CF_ENOMEM leaves them in the seal. Released with
 * cf_seal_attempts_release (safe on a zeroed struct). */
enum cf_rc cf_seal_take_attempts(struct cf_seal *seal, struct cf_seal_attempts *out,
                                 struct cf_err *err);

void cf_seal_attempts_release(struct cf_seal_attempts *attempts);

/* The outcome's name as the audit log and the server log show it ("accepted", "rejected",
 * "reset", "failed"); static. */
const char *cf_seal_outcome_name(enum cf_seal_outcome outcome);

/* For the server's main thread: when a checked root key is waiting, copies it into key, wipes the
 * seal's copy and returns true (the caller wipes key). */
bool cf_seal_take_key(struct cf_seal *seal, uint8_t key[CF_ROOT_KEY_BYTES]);

/* For the server's main thread: the services are up (true) or down again (false). */
void cf_seal_set_sealed(struct cf_seal *seal, bool sealed);

/* Asks the server to seal (an admin's request): CF_EINVAL when it is sealed already. */
enum cf_rc cf_seal_request(struct cf_seal *seal, struct cf_err *err);

/* For the server's main thread: true once per cf_seal_request. */
bool cf_seal_take_request(struct cf_seal *seal);

#endif
