/* Audit chain, checkpoints and verification (see audit.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/audit.h"
#include "util/time.h"
#include "util/banned.h"
#include "util/str.h"

/* How far from its position a damaged event's original position is looked for. */
#define WRITTEN_AS_WINDOW 64

struct cf_audit_keys {
    uint8_t chain_key[crypto_generichash_KEYBYTES];
    uint8_t sign_public[crypto_sign_PUBLICKEYBYTES];
    uint8_t sign_secret[crypto_sign_SECRETKEYBYTES];
};

struct cf_audit_keys *cf_audit_keys_new(const uint8_t audit_key[CF_AUDIT_KEY_BYTES])
{
    struct cf_audit_keys *keys = sodium_malloc(sizeof(*keys));
    if (!keys)
        return NULL;
    uint8_t seed[crypto_sign_SEEDBYTES];
    /* Two independent subkeys of one audit key (BLAKE2b-based KDF, context "cfaudit_"). */
    crypto_kdf_derive_from_key(keys->chain_key, sizeof(keys->chain_key), 1, "cfaudit_", audit_key);
    crypto_kdf_derive_from_key(seed, sizeof(seed), 2, "cfaudit_", audit_key);
    crypto_sign_seed_keypair(keys->sign_public, keys->sign_secret, seed);
    sodium_memzero(seed, sizeof(seed));
    sodium_mprotect_readonly(keys);
    return keys;
}

void cf_audit_keys_free(struct cf_audit_keys *keys)
{
    sodium_free(keys); /* wipes */
}

void cf_audit_public_key(const struct cf_audit_keys *keys, uint8_t out[CF_AUDIT_PUBLIC_KEY_BYTES])
{
    memcpy(out, keys->sign_public, CF_AUDIT_PUBLIC_KEY_BYTES);
}

/* ---- the chain ---- */

/* A hash input gathered in a buffer and passed on a block at a time: an event is about thirty
 * short parts, and one update per part cost more than the hashing itself. The bytes hashed are
 * the same either way. */
struct hash_input {
    crypto_generichash_state *h;
    size_t len;
    uint8_t buf[1024];
};

static void hash_flush(struct hash_input *in)
{
    crypto_generichash_update(in->h, in->buf, in->len);
    in->len = 0;
}

static void hash_bytes(struct hash_input *in, const void *bytes, size_t n)
{
    if (n > sizeof(in->buf) - in->len) {
        hash_flush(in);
        if (n > sizeof(in->buf)) {
            crypto_generichash_update(in->h, bytes, n);
            return;
        }
    }
    memcpy(in->buf + in->len, bytes, n);
    in->len += n;
}

static void put_int(struct hash_input *in, int64_t value)
{
    uint8_t b[8];
    uint64_t u = (uint64_t)value;
    for (int i = 7; i >= 0; i--, u >>= 8)
        b[i] = (uint8_t)u;
    hash_bytes(in, b, sizeof(b));
}

/* Length-prefixed, so that no two different events encode alike ("ab","c" vs "a","bc"). */
static void put_text(struct hash_input *in, const char *text)
{
    size_t n = strlen(text);
    put_int(in, (int64_t)n);
    hash_bytes(in, text, n);
}

static void event_hash(const struct cf_audit_keys *keys, const struct cf_audit_event *e,
                       int64_t seq, uint8_t out[CF_AUDIT_HASH_BYTES])
{
    crypto_generichash_state h;
    struct hash_input in = {.h = &h};
    crypto_generichash_init(&h, keys->chain_key, sizeof(keys->chain_key), CF_AUDIT_HASH_BYTES);
    put_text(&in, "coffer-audit-event-v1");
    put_int(&in, seq);
    hash_bytes(&in, e->prev_hash, sizeof(e->prev_hash));
    put_int(&in, e->time_us);
    const char *const fields[] = {e->id,          e->actor_kind, e->actor_id, e->actor_name,
                                  e->source_ip,   e->user_agent, e->action,   e->project_id,
                                  e->environment, e->path,       e->keys,     e->result,
                                  e->reason,      e->request_id};
    for (size_t i = 0; i < CF_ARRAY_SIZE(fields); i++)
        put_text(&in, fields[i]);
    hash_flush(&in);
    crypto_generichash_final(&h, out, CF_AUDIT_HASH_BYTES);
}

void cf_audit_chain(const struct cf_audit_keys *keys, struct cf_audit_event *event)
{
    event_hash(keys, event, event->seq, event->hash);
}

static bool intact_as(const struct cf_audit_keys *keys, const struct cf_audit_event *e, int64_t seq)
{
    uint8_t expect[CF_AUDIT_HASH_BYTES];
    event_hash(keys, e, seq, expect);
    return sodium_memcmp(expect, e->hash, sizeof(expect)) == 0;
}

bool cf_audit_event_intact(const struct cf_audit_keys *keys, const struct cf_audit_event *event)
{
    return intact_as(keys, event, event->seq);
}

/* True when e's hash holds at position seq linked to prev: where the event was written when the
 * store reads prevHash from the event now before it (so that a moved event's own link is lost). */
static bool intact_linked(const struct cf_audit_keys *keys, const struct cf_audit_event *e,
                          int64_t seq, const uint8_t prev[CF_AUDIT_HASH_BYTES])
{
    struct cf_audit_event *copy = malloc(sizeof(*copy));
    if (!copy)
        return false;
    *copy = *e;
    memcpy(copy->prev_hash, prev, sizeof(copy->prev_hash));
    bool intact = intact_as(keys, copy, seq);
    free(copy);
    return intact;
}

/* ---- checkpoints ---- */

#define CHECKPOINT_DOMAIN "coffer-audit-checkpoint-v1"
#define HEAD_DOMAIN "coffer-audit-head-v1"
#define ANCHOR_DOMAIN "coffer-audit-anchor-v1"
/* What a checkpoint's signature covers: a BLAKE2b-512 digest of its fields. */
#define CHECKPOINT_MESSAGE_BYTES crypto_generichash_BYTES_MAX

static void checkpoint_message(const char *domain, const struct cf_audit_checkpoint *c,
                               uint8_t out[CHECKPOINT_MESSAGE_BYTES])
{
    crypto_generichash_state h;
    struct hash_input in = {.h = &h};
    crypto_generichash_init(&h, NULL, 0, CHECKPOINT_MESSAGE_BYTES);
    put_text(&in, domain);
    put_int(&in, c->event_seq);
    put_int(&in, c->time_us);
    hash_bytes(&in, c->event_hash, sizeof(c->event_hash));
    hash_flush(&in);
    crypto_generichash_final(&h, out, CHECKPOINT_MESSAGE_BYTES);
}

static void sign_as(const char *domain, const struct cf_audit_keys *keys,
                    struct cf_audit_checkpoint *c)
{
    uint8_t message[CHECKPOINT_MESSAGE_BYTES];
    checkpoint_message(domain, c, message);
    crypto_sign_detached(c->signature, NULL, message, sizeof(message), keys->sign_secret);
}

static bool valid_as(const char *domain, const uint8_t public_key[CF_AUDIT_PUBLIC_KEY_BYTES],
                     const struct cf_audit_checkpoint *c)
{
    uint8_t message[CHECKPOINT_MESSAGE_BYTES];
    checkpoint_message(domain, c, message);
    return crypto_sign_verify_detached(c->signature, message, sizeof(message), public_key) == 0;
}

void cf_audit_checkpoint_sign(const struct cf_audit_keys *keys,
                              struct cf_audit_checkpoint *checkpoint)
{
    sign_as(CHECKPOINT_DOMAIN, keys, checkpoint);
}

bool cf_audit_checkpoint_valid(const uint8_t public_key[CF_AUDIT_PUBLIC_KEY_BYTES],
                               const struct cf_audit_checkpoint *checkpoint)
{
    return valid_as(CHECKPOINT_DOMAIN, public_key, checkpoint);
}

void cf_audit_head_sign(const struct cf_audit_keys *keys, struct cf_audit_checkpoint *head)
{
    sign_as(HEAD_DOMAIN, keys, head);
}

bool cf_audit_head_valid(const uint8_t public_key[CF_AUDIT_PUBLIC_KEY_BYTES],
                         const struct cf_audit_checkpoint *head)
{
    return valid_as(HEAD_DOMAIN, public_key, head);
}

void cf_audit_anchor_sign(const struct cf_audit_keys *keys, struct cf_audit_checkpoint *anchor)
{
    sign_as(ANCHOR_DOMAIN, keys, anchor);
}

bool cf_audit_anchor_valid(const uint8_t public_key[CF_AUDIT_PUBLIC_KEY_BYTES],
                           const struct cf_audit_checkpoint *anchor)
{
    return valid_as(ANCHOR_DOMAIN, public_key, anchor);
}

void cf_audit_archive_sign(const struct cf_audit_keys *keys, const void *text, size_t len,
                           uint8_t signature[CF_AUDIT_SIG_BYTES])
{
    crypto_sign_detached(signature, NULL, text, len, keys->sign_secret);
}

/* ---- verification ---- */

const char *cf_audit_finding_name(enum cf_audit_finding finding)
{
    switch (finding) {
    case CF_AUDIT_OK:
        return "ok";
    case CF_AUDIT_EDITED:
        return "edited";
    case CF_AUDIT_DELETED:
        return "deleted";
    case CF_AUDIT_INSERTED:
        return "inserted";
    case CF_AUDIT_REORDERED:
        return "reordered";
    case CF_AUDIT_TRUNCATED:
        return "truncated";
    case CF_AUDIT_BAD_CHECKPOINT:
        return "bad-checkpoint";
    case CF_AUDIT_CHECKPOINT_MISMATCH:
        return "checkpoint-mismatch";
    case CF_AUDIT_BAD_HEAD:
        return "bad-head";
    case CF_AUDIT_HEAD_MISSING:
        return "head-missing";
    }
    return "unknown";
}

static bool found_v(struct cf_audit_verifier *v, enum cf_audit_finding finding, int64_t seq,
                    const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

static bool found_v(struct cf_audit_verifier *v, enum cf_audit_finding finding, int64_t seq,
                    const char *fmt, va_list ap)
{
    vsnprintf(v->report.message, sizeof(v->report.message), fmt, ap);
    v->report.finding = finding;
    v->report.seq = seq;
    return false;
}

static bool found(struct cf_audit_verifier *v, enum cf_audit_finding finding, int64_t seq,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static bool found(struct cf_audit_verifier *v, enum cf_audit_finding finding, int64_t seq,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    found_v(v, finding, seq, fmt, ap);
    va_end(ap);
    return false;
}

bool cf_audit_verify_found(struct cf_audit_verifier *v, enum cf_audit_finding finding, int64_t seq,
                           const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    found_v(v, finding, seq, fmt, ap);
    va_end(ap);
    return false;
}

void cf_audit_verify_begin(struct cf_audit_verifier *v, const struct cf_audit_keys *keys)
{
    memset(v, 0, sizeof(*v));
    v->keys = keys;
}

void cf_audit_verify_begin_at(struct cf_audit_verifier *v, const struct cf_audit_keys *keys,
                              const struct cf_audit_checkpoint *anchor)
{
    cf_audit_verify_begin(v, keys);
    v->cut = *anchor;
    v->have_prev = true;
    v->prev.seq = anchor->event_seq;
    memcpy(v->prev.hash, anchor->event_hash, sizeof(v->prev.hash));
    v->report.last_seq = anchor->event_seq;
    v->report.archived_seq = anchor->event_seq;
}

/* A checkpoint or head over an event at or before the cut: true when it is consistent with the
 * anchor (*going is false when it is not: the finding is made). */
static bool judged_at_cut(struct cf_audit_verifier *v, const struct cf_audit_checkpoint *c,
                          const char *source, bool *going)
{
    if (v->cut.event_seq == 0 || c->event_seq > v->cut.event_seq)
        return false;
    *going = true;
    if (c->event_seq == v->cut.event_seq &&
        sodium_memcmp(c->event_hash, v->cut.event_hash, CF_AUDIT_HASH_BYTES) != 0)
        *going = found(v, CF_AUDIT_CHECKPOINT_MISMATCH, c->event_seq,
                       "event %lld, the last archived one, differs from the one %s vouches for",
                       (long long)c->event_seq, source);
    return true;
}

/* The position an event was written at, when its hash holds for another seq near its own; 0 when
 * it holds for none (its contents changed, or it was never written by the server). */
static int64_t written_as(const struct cf_audit_keys *keys, const struct cf_audit_event *e)
{
    for (int64_t d = 1; d <= WRITTEN_AS_WINDOW; d++) {
        if (e->seq - d >= 1 && intact_as(keys, e, e->seq - d))
            return e->seq - d;
        if (intact_as(keys, e, e->seq + d))
            return e->seq + d;
    }
    return 0;
}

static const uint8_t zero_hash[CF_AUDIT_HASH_BYTES];

static const uint8_t *prev_hash_of(const struct cf_audit_verifier *v)
{
    return v->have_prev ? v->prev.hash : zero_hash;
}

static int64_t expected_seq(const struct cf_audit_verifier *v)
{
    return v->have_prev ? v->prev.seq + 1 : 1;
}

/* Judges the damaged event v->pending, given its successor next (NULL at the end of the log). */
static bool judge_pending(struct cf_audit_verifier *v, const struct cf_audit_event *next)
{
    const struct cf_audit_event *p = &v->pending;
    /* Two events swapped, as a store that reads each event's prevHash from the event before it
     * shows them: each holds at the other's position, linked as it was written. */
    if (next && intact_linked(v->keys, p, p->seq + 1, next->hash) &&
        intact_linked(v->keys, next, p->seq, prev_hash_of(v)))
        return found(v, CF_AUDIT_REORDERED, p->seq,
                     "events %lld and %lld were swapped: each is stored at the other's position",
                     (long long)p->seq, (long long)next->seq);
    int64_t was = written_as(v->keys, p);
    if (was > 0) {
        if (next && was == p->seq + 1 && written_as(v->keys, next) == p->seq)
            return found(v, CF_AUDIT_REORDERED, p->seq,
                         "events %lld and %lld were swapped: each is stored at the other's "
                         "position",
                         (long long)p->seq, (long long)next->seq);
        if (was > p->seq)
            return found(v, CF_AUDIT_DELETED, p->seq,
                         "event %lld was deleted: the event stored at position %lld was written "
                         "as event %lld, and the later ones were renumbered",
                         (long long)p->seq, (long long)p->seq, (long long)was);
        return found(v, CF_AUDIT_REORDERED, p->seq,
                     "event %lld was moved: it is stored at position %lld", (long long)was,
                     (long long)p->seq);
    }
    /* The next event links past it to the one before: by its stored link, or (a store that reads
     * prevHash from the event before) by its hash at p's position linked to the one before. */
    if (next && (sodium_memcmp(next->prev_hash, prev_hash_of(v), CF_AUDIT_HASH_BYTES) == 0 ||
                 intact_linked(v->keys, next, p->seq, prev_hash_of(v))))
        return found(v, CF_AUDIT_INSERTED, p->seq,
                     "event %lld was inserted: it is not part of the chain (event %lld links to "
                     "event %lld)",
                     (long long)p->seq, (long long)next->seq, (long long)(p->seq - 1));
    return found(v, CF_AUDIT_EDITED, p->seq,
                 "event %lld (id %s, action %s) was edited after it was written: its contents "
                 "no longer match its hash",
                 (long long)p->seq, p->id, p->action);
}

bool cf_audit_verify_event(struct cf_audit_verifier *v, const struct cf_audit_event *event)
{
    if (v->report.finding != CF_AUDIT_OK)
        return false;
    if (v->have_pending)
        return judge_pending(v, event);
    v->report.events++;
    v->report.last_seq = event->seq;
    int64_t expect = expected_seq(v);
    /* A gap is a deletion whatever the event after it holds: a store that reads prevHash from the
     * event before gives an event after a gap no link at all, so its hash cannot hold either. */
    if (event->seq > expect)
        return found(
            v, CF_AUDIT_DELETED, expect,
            expect == event->seq - 1 ? "event %lld was deleted (the log goes from event "
                                       "%lld to event %lld)"
                                     : "events %lld to %lld were deleted (the log goes "
                                       "from event %lld to event %lld)",
            (long long)expect, (long long)(expect == event->seq - 1 ? expect - 1 : event->seq - 1),
            (long long)(expect == event->seq - 1 ? event->seq : expect - 1), (long long)event->seq);
    if (!cf_audit_event_intact(v->keys, event)) {
        v->pending = *event;
        v->have_pending = true;
        return true; /* judged with its successor */
    }
    if (event->seq < expect ||
        sodium_memcmp(event->prev_hash, prev_hash_of(v), CF_AUDIT_HASH_BYTES) != 0)
        return found(v, CF_AUDIT_DELETED, event->seq,
                     "event %lld does not follow event %lld: it was chained to an event that is "
                     "no longer in the log",
                     (long long)event->seq, (long long)(event->seq - 1));
    v->prev = *event;
    v->have_prev = true;
    return true;
}

bool cf_audit_verify_end_events(struct cf_audit_verifier *v)
{
    if (v->report.finding != CF_AUDIT_OK)
        return false;
    if (v->have_pending)
        return judge_pending(v, NULL);
    return true;
}

bool cf_audit_verify_checkpoint(struct cf_audit_verifier *v,
                                const struct cf_audit_checkpoint *checkpoint, bool exists,
                                const struct cf_audit_event *event)
{
    if (v->report.finding != CF_AUDIT_OK)
        return false;
    uint8_t public_key[CF_AUDIT_PUBLIC_KEY_BYTES];
    cf_audit_public_key(v->keys, public_key);
    v->report.checkpoints++;
    if (!cf_audit_checkpoint_valid(public_key, checkpoint))
        return found(v, CF_AUDIT_BAD_CHECKPOINT, checkpoint->event_seq,
                     "the checkpoint for event %lld has an invalid signature",
                     (long long)checkpoint->event_seq);
    bool going = true;
    if (judged_at_cut(v, checkpoint, "a signed checkpoint", &going))
        return going;
    if (!exists) {
        if (checkpoint->event_seq > v->report.last_seq)
            return found(v, CF_AUDIT_TRUNCATED, v->report.last_seq + 1,
                         "truncated: events %lld..%lld are missing (a signed checkpoint vouches "
                         "for event %lld but the log ends at event %lld)",
                         (long long)v->report.last_seq + 1, (long long)checkpoint->event_seq,
                         (long long)checkpoint->event_seq, (long long)v->report.last_seq);
        return found(v, CF_AUDIT_DELETED, checkpoint->event_seq,
                     "event %lld was deleted: a signed checkpoint vouches for it",
                     (long long)checkpoint->event_seq);
    }
    if (sodium_memcmp(event->hash, checkpoint->event_hash, CF_AUDIT_HASH_BYTES) != 0)
        return found(v, CF_AUDIT_CHECKPOINT_MISMATCH, checkpoint->event_seq,
                     "event %lld differs from the one a signed checkpoint vouches for",
                     (long long)checkpoint->event_seq);
    return true;
}

bool cf_audit_verify_head(struct cf_audit_verifier *v, const struct cf_audit_checkpoint *head,
                          const char *source, bool exists, const struct cf_audit_event *event)
{
    if (v->report.finding != CF_AUDIT_OK)
        return false;
    if (head->event_seq > v->report.head_seq)
        v->report.head_seq = head->event_seq;
    char at[CF_TIME_RFC3339_LEN + 8] = "";
    if (head->time_us > 0) {
        char stamp[CF_TIME_RFC3339_LEN];
        snprintf(at, sizeof(at), " at %s", cf_time_format(head->time_us / 1000, stamp));
    }
    bool going = true;
    if (judged_at_cut(v, head, source, &going))
        return going;
    if (head->event_seq > v->report.last_seq)
        return found(v, CF_AUDIT_TRUNCATED, v->report.last_seq + 1,
                     "truncated: events %lld..%lld are missing (%s says seq %lld%s; the log ends "
                     "at event %lld)",
                     (long long)v->report.last_seq + 1, (long long)head->event_seq, source,
                     (long long)head->event_seq, at, (long long)v->report.last_seq);
    if (!exists)
        return found(v, CF_AUDIT_DELETED, head->event_seq,
                     "event %lld was deleted: %s vouches for it", (long long)head->event_seq,
                     source);
    if (sodium_memcmp(event->hash, head->event_hash, CF_AUDIT_HASH_BYTES) != 0)
        return found(v, CF_AUDIT_CHECKPOINT_MISMATCH, head->event_seq,
                     "event %lld differs from the one %s vouches for (seq %lld%s): the log was "
                     "cut there and written again",
                     (long long)head->event_seq, source, (long long)head->event_seq, at);
    return true;
}
