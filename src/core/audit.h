/* The audit log's evidence: what one event is, how events are chained so that an edit,
 * a deletion, an insertion or a reordering is detectable, how checkpoints are signed, and the walk
 * that verifies a stored log. Pure computation over libsodium: the store keeps the rows, the server
 * appends them, `coffer audit verify` reports what this module finds.
 *
 * Chain: every event carries seq (1, 2, ... with no gaps), the hash of the event before it
 * (prev_hash; 32 zero bytes for event 1), and its own hash: BLAKE2b-256 keyed with the chain key
 * over a length-prefixed encoding of every field, seq and prev_hash included. The key is derived
 * from the audit key (kept wrapped by the root key, never stored in clear), so someone who can
 * write the database but does not hold the root key cannot recompute a chain after editing it.
 *
 * Checkpoints: every so often the server signs (Ed25519, seed derived from the same audit key) the
 * statement "event N has hash H, at time T". They make the log verifiable by anyone holding the
 * public key, and they expose a log cut short: a checkpoint names an event that no longer exists.
 *
 * Head: the same statement about the newest checkpoint, signed under another domain so that a
 * checkpoint row copied out of the database cannot pass for one, and kept outside the database (the
 * head file in the data directory, every audit stream). Someone who deletes the last events and the
 * checkpoints over them still leaves the head naming an event the log no longer has. */
#ifndef CF_CORE_AUDIT_H
#define CF_CORE_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/err.h"

#define CF_AUDIT_HASH_BYTES 32
#define CF_AUDIT_KEY_BYTES 32
#define CF_AUDIT_SIG_BYTES 64
#define CF_AUDIT_PUBLIC_KEY_BYTES 32
_Static_assert(CF_AUDIT_HASH_BYTES == CF_AUDIT_HASH_LEN, "the store keeps audit hashes whole");
_Static_assert(CF_AUDIT_SIG_BYTES == CF_AUDIT_SIG_LEN,
               "the store keeps checkpoint signatures whole");

/* The keys of one audit key: the chain MAC key and the checkpoint signing key pair. Lives in
 * sodium_malloc'd memory (cf_audit_keys_new); wiped on free. */
struct cf_audit_keys;

/* Derives both keys from the 32-byte audit key (borrowed; the caller wipes it). NULL when out of
 * memory. */
struct cf_audit_keys *cf_audit_keys_new(const uint8_t audit_key[CF_AUDIT_KEY_BYTES]);
void cf_audit_keys_free(struct cf_audit_keys *keys);
/* The checkpoint public key, for verifiers outside the server. */
void cf_audit_public_key(const struct cf_audit_keys *keys, uint8_t out[CF_AUDIT_PUBLIC_KEY_BYTES]);

/* struct cf_audit_event and struct cf_audit_checkpoint are in store/store.h. */

/* Sets event->hash from every other field (seq and prev_hash included). */
void cf_audit_chain(const struct cf_audit_keys *keys, struct cf_audit_event *event);

/* True when event->hash is what cf_audit_chain computes for its fields (constant-time compare). */
bool cf_audit_event_intact(const struct cf_audit_keys *keys, const struct cf_audit_event *event);

/* Fills checkpoint->signature over (event_seq, time_us, event_hash). */
void cf_audit_checkpoint_sign(const struct cf_audit_keys *keys,
                              struct cf_audit_checkpoint *checkpoint);

/* True when the signature is valid under public_key. */
bool cf_audit_checkpoint_valid(const uint8_t public_key[CF_AUDIT_PUBLIC_KEY_BYTES],
                               const struct cf_audit_checkpoint *checkpoint);

/* Fills head->signature over (event_seq, time_us, event_hash) under the head domain. */
void cf_audit_head_sign(const struct cf_audit_keys *keys, struct cf_audit_checkpoint *head);

/* True when the head's signature is valid under public_key. */
bool cf_audit_head_valid(const uint8_t public_key[CF_AUDIT_PUBLIC_KEY_BYTES],
                         const struct cf_audit_checkpoint *head);

/* Retention (docs/audit.md "Retention"). The anchor is the statement "the last archived event is
 * N with hash H", signed under a domain of its own and kept in the store, from which the live chain
 * goes on. */
void cf_audit_anchor_sign(const struct cf_audit_keys *keys, struct cf_audit_checkpoint *anchor);
bool cf_audit_anchor_valid(const uint8_t public_key[CF_AUDIT_PUBLIC_KEY_BYTES],
                           const struct cf_audit_checkpoint *anchor);

/* An archive file's signature: Ed25519 directly over its text before the signature line (which
 * starts with the header {"type":"coffer-audit-archive",...}, so it is never the 64-byte digest a
 * checkpoint or head signs), so that anyone holding the public key checks a file with libsodium
 * alone. */
void cf_audit_archive_sign(const struct cf_audit_keys *keys, const void *text, size_t len,
                           uint8_t signature[CF_AUDIT_SIG_BYTES]);

/* What a verification found; CF_AUDIT_OK when the log is intact. */
enum cf_audit_finding {
    CF_AUDIT_OK = 0,
    CF_AUDIT_EDITED,              /* an event's contents changed after it was written */
    CF_AUDIT_DELETED,             /* events are missing from the middle of the chain */
    CF_AUDIT_INSERTED,            /* an event that was never part of the chain */
    CF_AUDIT_REORDERED,           /* an event moved to another position */
    CF_AUDIT_TRUNCATED,           /* the log ends before an event a checkpoint vouches for */
    CF_AUDIT_BAD_CHECKPOINT,      /* a checkpoint's signature is invalid */
    CF_AUDIT_CHECKPOINT_MISMATCH, /* the event a checkpoint (head, anchor) vouches for differs */
    CF_AUDIT_BAD_HEAD,            /* the head file or an anchor has an invalid signature */
    CF_AUDIT_HEAD_MISSING,        /* the head file is gone while the log has events */
};

/* "ok", "edited", "deleted", "inserted", "reordered", "truncated", "bad-checkpoint",
 * "checkpoint-mismatch", "bad-head", "head-missing". */
const char *cf_audit_finding_name(enum cf_audit_finding finding);

struct cf_audit_report {
    enum cf_audit_finding finding;
    int64_t seq;         /* the first event (or checkpoint's event) concerned; 0 when ok */
    int64_t events;      /* events checked */
    int64_t checkpoints; /* checkpoints checked */
    int64_t last_seq;    /* the last event's seq */
    int64_t head_seq;    /* the newest head compared with the log (file, server, anchor); 0: none */
    int64_t
        archived_seq;  /* the last archived event (retention): the chain starts after it; 0: none */
    char message[512]; /* precise, e.g. "event 42 was edited after it was written (...)" */
};

/* The verifier's state, fed the events in seq order (as the store returns them) and then the
 * checkpoints, so that a log of any size is verified in one pass with O(1) memory. */
struct cf_audit_verifier {
    const struct cf_audit_keys *keys;
    struct cf_audit_checkpoint cut; /* the anchor the chain starts after; event_seq 0: none */
    struct cf_audit_report report;
    bool have_prev;
    struct cf_audit_event prev; /* the last event accepted into the chain */
    bool have_pending;
    struct cf_audit_event pending; /* a damaged event, judged when its successor arrives */
};

void cf_audit_verify_begin(struct cf_audit_verifier *v, const struct cf_audit_keys *keys);
/* As cf_audit_verify_begin, for a log whose events up to anchor->event_seq were archived: the
 * first event must follow the anchor, and a checkpoint or head over an archived event is not
 * looked for in the log (the archive vouches for it; one over the anchor's event is compared with
 * the anchor). anchor is copied; its signature is the caller's to check. */
void cf_audit_verify_begin_at(struct cf_audit_verifier *v, const struct cf_audit_keys *keys,
                              const struct cf_audit_checkpoint *anchor);
/* Feeds the next event; false once a finding is made (the report holds it; stop feeding). */
bool cf_audit_verify_event(struct cf_audit_verifier *v, const struct cf_audit_event *event);
/* After the last event: judges a damaged last event. false once a finding is made. */
bool cf_audit_verify_end_events(struct cf_audit_verifier *v);
/* Feeds one checkpoint and the stored event it names (found false when that event does not
 * exist). false once a finding is made. */
bool cf_audit_verify_checkpoint(struct cf_audit_verifier *v,
                                const struct cf_audit_checkpoint *checkpoint, bool found,
                                const struct cf_audit_event *event);
/* After the checkpoints: compares the log with a head kept outside it (signature checked by the
 * caller), named by source in the report ("the head file", "the anchor"), and the stored event at
 * head->event_seq (found false when it does not exist). A head beyond the log's end is a truncation
 * naming the missing range. head->time_us 0: unknown (an anchor given as SEQ:HASH). false once a
 * finding is made. */
bool cf_audit_verify_head(struct cf_audit_verifier *v, const struct cf_audit_checkpoint *head,
                          const char *source, bool found, const struct cf_audit_event *event);
/* Records a finding the caller made (a head that is missing or badly signed). Returns false. */
bool cf_audit_verify_found(struct cf_audit_verifier *v, enum cf_audit_finding finding, int64_t seq,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
