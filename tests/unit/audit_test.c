/* The audit chain's evidence (core/audit.h): a log built with the real chain function is verified
 * intact, and each kind of tampering a person with write access to the database could do (edit,
 * delete, insert, reorder, cut the tail, forge a checkpoint) is found and named at the right event,
 * and a head kept outside the log exposes a tail cut together with its checkpoints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "core/audit.h"
#include "core/render.h"
#include "util/buf.h"
#include "util/jsonw.h"
#include "util/str.h"

#define N 12

static struct cf_audit_keys *keys;
static struct cf_audit_event log_[N + 1];
static size_t n_log;

static void build(void)
{
    uint8_t audit_key[CF_AUDIT_KEY_BYTES];
    cr_assert(sodium_init() >= 0);
    memset(audit_key, 7, sizeof(audit_key));
    keys = cf_audit_keys_new(audit_key);
    cr_assert_not_null(keys);
    memset(log_, 0, sizeof(log_));
    for (int i = 0; i < N; i++) {
        struct cf_audit_event *e = &log_[i];
        e->seq = i + 1;
        e->time_us = 1700000000000000LL + i;
        snprintf(e->id, sizeof(e->id), "00000000-0000-4000-8000-%012d", i + 1);
        snprintf(e->actor_kind, sizeof(e->actor_kind), "identity");
        snprintf(e->action, sizeof(e->action), i % 2 ? "secrets.read" : "auth.login");
        snprintf(e->keys, sizeof(e->keys), "KEY_%d", i);
        snprintf(e->result, sizeof(e->result), "ok");
        if (i > 0)
            memcpy(e->prev_hash, log_[i - 1].hash, sizeof(e->prev_hash));
        cf_audit_chain(keys, e);
    }
    n_log = N;
}

static void teardown_keys(void)
{
    cf_audit_keys_free(keys);
    keys = NULL;
}

/* Verifies log_[0..n_log) plus the given checkpoints; returns the report. */
static struct cf_audit_report verify(const struct cf_audit_checkpoint *cps, size_t n_cps)
{
    struct cf_audit_verifier v;
    cf_audit_verify_begin(&v, keys);
    bool going = true;
    for (size_t i = 0; going && i < n_log; i++)
        going = cf_audit_verify_event(&v, &log_[i]);
    if (going)
        going = cf_audit_verify_end_events(&v);
    for (size_t i = 0; going && i < n_cps; i++) {
        const struct cf_audit_event *event = NULL;
        for (size_t j = 0; j < n_log; j++)
            if (log_[j].seq == cps[i].event_seq)
                event = &log_[j];
        going = cf_audit_verify_checkpoint(&v, &cps[i], event != NULL, event);
    }
    return v.report;
}

static struct cf_audit_checkpoint checkpoint_of(int64_t seq)
{
    struct cf_audit_checkpoint c = {.event_seq = seq, .time_us = 1700000000999999LL};
    memcpy(c.event_hash, log_[seq - 1].hash, sizeof(c.event_hash));
    cf_audit_checkpoint_sign(keys, &c);
    return c;
}

TestSuite(audit, .init = build, .fini = teardown_keys);

Test(audit, intact_log_verifies)
{
    struct cf_audit_checkpoint cps[] = {checkpoint_of(4), checkpoint_of(N)};
    struct cf_audit_report r = verify(cps, 2);
    cr_assert_eq(r.finding, CF_AUDIT_OK, "%s", r.message);
    cr_assert_eq(r.events, N);
    cr_assert_eq(r.checkpoints, 2);
    cr_assert_eq(r.last_seq, N);
}

Test(audit, every_field_is_covered_by_the_hash)
{
    struct cf_audit_event e = log_[4];
    char *fields[] = {e.id,         e.actor_kind, e.actor_id,   e.actor_name,  e.source_ip,
                      e.user_agent, e.action,     e.project_id, e.environment, e.path,
                      e.keys,       e.result,     e.reason,     e.request_id};
    for (size_t i = 0; i < CF_ARRAY_SIZE(fields); i++) {
        struct cf_audit_event copy = e;
        char *f = (char *)&copy + (fields[i] - (char *)&e);
        f[0] = f[0] == 'x' ? 'y' : 'x';
        cr_assert(!cf_audit_event_intact(keys, &copy), "field %zu is not covered", i);
    }
    struct cf_audit_event copy = e;
    copy.time_us++;
    cr_assert(!cf_audit_event_intact(keys, &copy));
    copy = e;
    copy.prev_hash[0] ^= 1;
    cr_assert(!cf_audit_event_intact(keys, &copy));
    cr_assert(cf_audit_event_intact(keys, &e));
}

/* The chain's bytes are a stored format: events written by earlier versions must verify. These
 * digests were computed by the first implementation (one update per part); a long key list
 * crosses the hash input's buffer. */
Test(audit, chain_hashes_are_stable)
{
    struct cf_audit_event e = log_[N - 1];
    char hex[2 * CF_AUDIT_HASH_BYTES + 1];
    sodium_bin2hex(hex, sizeof(hex), e.hash, sizeof(e.hash));
    cr_assert_str_eq(hex, "1b6b702ae9d990df7fe1a06c759cfbfb26adfec64bb76019d4be2fe7d69f0594");
    memset(e.keys, 'K', 1500);
    e.keys[1500] = '\0';
    snprintf(e.reason, sizeof(e.reason), "a reason");
    cf_audit_chain(keys, &e);
    sodium_bin2hex(hex, sizeof(hex), e.hash, sizeof(e.hash));
    cr_assert_str_eq(hex, "428dcce5e70b0707c87742f271ae63b85faaf8f7109eb92081017d9afb25669c");
}

Test(audit, length_prefix_separates_fields)
{
    struct cf_audit_event a = log_[0], b = log_[0];
    snprintf(a.actor_name, sizeof(a.actor_name), "ab");
    snprintf(a.source_ip, sizeof(a.source_ip), "c");
    snprintf(b.actor_name, sizeof(b.actor_name), "a");
    snprintf(b.source_ip, sizeof(b.source_ip), "bc");
    cf_audit_chain(keys, &a);
    cf_audit_chain(keys, &b);
    cr_assert_neq(memcmp(a.hash, b.hash, sizeof(a.hash)), 0);
}

Test(audit, edited_event_is_named)
{
    snprintf(log_[4].reason, sizeof(log_[4].reason), "nothing to see");
    struct cf_audit_report r = verify(NULL, 0);
    cr_assert_eq(r.finding, CF_AUDIT_EDITED, "%s: %s", cf_audit_finding_name(r.finding), r.message);
    cr_assert_eq(r.seq, 5);
    cr_assert(strstr(r.message, "event 5") && strstr(r.message, "edited"), "%s", r.message);
}

Test(audit, edited_last_event_is_named)
{
    snprintf(log_[N - 1].result, sizeof(log_[N - 1].result), "denied");
    struct cf_audit_report r = verify(NULL, 0);
    cr_assert_eq(r.finding, CF_AUDIT_EDITED, "%s", r.message);
    cr_assert_eq(r.seq, N);
}

Test(audit, deleted_event_is_named)
{
    memmove(&log_[6], &log_[7], (N - 7) * sizeof(log_[0])); /* event 7 gone */
    n_log = N - 1;
    struct cf_audit_report r = verify(NULL, 0);
    cr_assert_eq(r.finding, CF_AUDIT_DELETED, "%s", r.message);
    cr_assert_eq(r.seq, 7);
    cr_assert(strstr(r.message, "event 7 was deleted"), "%s", r.message);
}

Test(audit, deleted_range_is_named)
{
    memmove(&log_[2], &log_[5], (N - 5) * sizeof(log_[0])); /* events 3, 4, 5 gone */
    n_log = N - 3;
    struct cf_audit_report r = verify(NULL, 0);
    cr_assert_eq(r.finding, CF_AUDIT_DELETED, "%s", r.message);
    cr_assert_eq(r.seq, 3);
    cr_assert(strstr(r.message, "events 3 to 5 were deleted"), "%s", r.message);
}

Test(audit, deleted_and_renumbered_is_named)
{
    memmove(&log_[6], &log_[7], (N - 7) * sizeof(log_[0]));
    n_log = N - 1;
    for (size_t i = 6; i < n_log; i++)
        log_[i].seq--; /* no gap left */
    struct cf_audit_report r = verify(NULL, 0);
    cr_assert_eq(r.finding, CF_AUDIT_DELETED, "%s", r.message);
    cr_assert_eq(r.seq, 7);
}

Test(audit, inserted_event_is_named)
{
    /* A forged event at position 6, the later ones pushed back. */
    memmove(&log_[6], &log_[5], (N - 5) * sizeof(log_[0]));
    n_log = N + 1;
    for (size_t i = 6; i < n_log; i++)
        log_[i].seq++;
    struct cf_audit_event *forged = &log_[5];
    snprintf(forged->id, sizeof(forged->id), "ffffffff-0000-4000-8000-000000000000");
    snprintf(forged->action, sizeof(forged->action), "secrets.delete");
    memcpy(forged->prev_hash, log_[4].hash, sizeof(forged->prev_hash));
    randombytes_buf(forged->hash, sizeof(forged->hash));
    struct cf_audit_report r = verify(NULL, 0);
    cr_assert_eq(r.finding, CF_AUDIT_INSERTED, "%s: %s", cf_audit_finding_name(r.finding),
                 r.message);
    cr_assert_eq(r.seq, 6);
}

Test(audit, swapped_events_are_named)
{
    struct cf_audit_event a = log_[7];
    log_[7] = log_[8];
    log_[8] = a;
    log_[7].seq = 8; /* each keeps its position's number */
    log_[8].seq = 9;
    struct cf_audit_report r = verify(NULL, 0);
    cr_assert_eq(r.finding, CF_AUDIT_REORDERED, "%s: %s", cf_audit_finding_name(r.finding),
                 r.message);
    cr_assert_eq(r.seq, 8);
    cr_assert(strstr(r.message, "swapped"), "%s", r.message);
}

Test(audit, moved_event_is_named)
{
    /* Event 3 moved to the end: 1 2 4 5 ... 12 3, renumbered 1..12. */
    struct cf_audit_event moved = log_[2];
    memmove(&log_[2], &log_[3], (N - 3) * sizeof(log_[0]));
    log_[N - 1] = moved;
    for (size_t i = 0; i < N; i++)
        log_[i].seq = (int64_t)i + 1;
    struct cf_audit_report r = verify(NULL, 0);
    cr_assert_neq(r.finding, CF_AUDIT_OK);
    cr_assert_eq(r.seq, 3, "%s: %s", cf_audit_finding_name(r.finding), r.message);
}

Test(audit, truncated_log_is_found_by_a_checkpoint)
{
    struct cf_audit_checkpoint cps[] = {checkpoint_of(10)};
    n_log = 8; /* events 9.. cut */
    struct cf_audit_report r = verify(cps, 1);
    cr_assert_eq(r.finding, CF_AUDIT_TRUNCATED, "%s", r.message);
    cr_assert(strstr(r.message, "event 10") && strstr(r.message, "ends at event 8"), "%s",
              r.message);
}

Test(audit, forged_or_mismatched_checkpoints_are_found)
{
    struct cf_audit_checkpoint c = checkpoint_of(6);
    c.event_seq = 7; /* signature no longer matches */
    struct cf_audit_report r = verify(&c, 1);
    cr_assert_eq(r.finding, CF_AUDIT_BAD_CHECKPOINT, "%s", r.message);

    /* A checkpoint signed by another key. */
    uint8_t other_key[CF_AUDIT_KEY_BYTES];
    memset(other_key, 9, sizeof(other_key));
    struct cf_audit_keys *other = cf_audit_keys_new(other_key);
    struct cf_audit_checkpoint foreign = {.event_seq = 6};
    memcpy(foreign.event_hash, log_[5].hash, sizeof(foreign.event_hash));
    cf_audit_checkpoint_sign(other, &foreign);
    cf_audit_keys_free(other);
    r = verify(&foreign, 1);
    cr_assert_eq(r.finding, CF_AUDIT_BAD_CHECKPOINT, "%s", r.message);

    /* A valid checkpoint over a hash the stored event no longer has. */
    struct cf_audit_checkpoint good = checkpoint_of(6);
    log_[5].hash[3] ^= 0x10;
    r = verify(&good, 1);
    cr_assert_neq(r.finding, CF_AUDIT_OK, "%s", r.message);
}

Test(audit, another_key_cannot_forge_the_chain)
{
    uint8_t other_key[CF_AUDIT_KEY_BYTES];
    memset(other_key, 8, sizeof(other_key));
    struct cf_audit_keys *other = cf_audit_keys_new(other_key);
    snprintf(log_[3].reason, sizeof(log_[3].reason), "rewritten");
    cf_audit_chain(other, &log_[3]); /* recomputed, but not with the server's key */
    cf_audit_keys_free(other);
    struct cf_audit_report r = verify(NULL, 0);
    cr_assert_neq(r.finding, CF_AUDIT_OK);
    cr_assert_eq(r.seq, 4, "%s", r.message);
}

/* Verifies log_[0..n_log) and then compares it with one head kept outside the log. */
static struct cf_audit_report verify_with_head(const struct cf_audit_checkpoint *head)
{
    struct cf_audit_verifier v;
    cf_audit_verify_begin(&v, keys);
    bool going = true;
    for (size_t i = 0; going && i < n_log; i++)
        going = cf_audit_verify_event(&v, &log_[i]);
    if (going)
        going = cf_audit_verify_end_events(&v);
    const struct cf_audit_event *event = NULL;
    for (size_t j = 0; j < n_log; j++)
        if (log_[j].seq == head->event_seq)
            event = &log_[j];
    if (going)
        cf_audit_verify_head(&v, head, "the head file", event != NULL, event);
    return v.report;
}

Test(audit, a_checkpoint_signature_is_not_a_head_signature)
{
    uint8_t public_key[CF_AUDIT_PUBLIC_KEY_BYTES];
    cf_audit_public_key(keys, public_key);
    struct cf_audit_checkpoint c = checkpoint_of(5), head = c;
    cf_audit_head_sign(keys, &head);
    cr_assert(cf_audit_head_valid(public_key, &head));
    cr_assert(cf_audit_checkpoint_valid(public_key, &c));
    /* A checkpoint row copied out of the database does not pass for a head, nor the other way. */
    cr_assert_not(cf_audit_head_valid(public_key, &c));
    cr_assert_not(cf_audit_checkpoint_valid(public_key, &head));
    head.event_seq = 6;
    cr_assert_not(cf_audit_head_valid(public_key, &head));
}

Test(audit, a_head_beyond_the_log_names_the_missing_range)
{
    struct cf_audit_checkpoint head = checkpoint_of(N);
    head.time_us = 1796400000000000LL; /* 2026-12-04T... */
    n_log = N - 5;                     /* events 8..12 cut, and every checkpoint over them */
    struct cf_audit_report r = verify_with_head(&head);
    cr_assert_eq(r.finding, CF_AUDIT_TRUNCATED, "%s", r.message);
    cr_assert_eq(r.seq, N - 4);
    cr_assert(strstr(r.message, "events 8..12 are missing (the head file says seq 12 at 2026-"),
              "%s", r.message);
    n_log = 0; /* both tables wiped */
    r = verify_with_head(&head);
    cr_assert(strstr(r.message, "events 1..12 are missing"), "%s", r.message);
}

Test(audit, a_head_over_a_log_grown_again_is_a_mismatch)
{
    struct cf_audit_checkpoint head = checkpoint_of(8);
    struct cf_audit_report r = verify_with_head(&head);
    cr_assert_eq(r.finding, CF_AUDIT_OK, "%s", r.message);
    cr_assert_eq(r.head_seq, 8);
    /* The log cut after event 6 and written again from there: event 8 is another event. */
    for (int i = 6; i < N; i++) {
        snprintf(log_[i].reason, sizeof(log_[i].reason), "after the cut");
        memcpy(log_[i].prev_hash, log_[i - 1].hash, sizeof(log_[i].prev_hash));
        cf_audit_chain(keys, &log_[i]);
    }
    r = verify_with_head(&head);
    cr_assert_eq(r.finding, CF_AUDIT_CHECKPOINT_MISMATCH, "%s", r.message);
    cr_assert_eq(r.seq, 8);
    cr_assert(strstr(r.message, "the head file"), "%s", r.message);
}

/* ---- retention: the chain verified from an anchor ---- */

/* Verifies log_[from..n_log) from an anchor over event from (1-based: log_[from - 1]), with the
 * checkpoints given. */
static struct cf_audit_report verify_from(size_t from, const struct cf_audit_checkpoint *cps,
                                          size_t n_cps)
{
    struct cf_audit_verifier v;
    struct cf_audit_checkpoint anchor = {.event_seq = (int64_t)from};
    memcpy(anchor.event_hash, log_[from - 1].hash, sizeof(anchor.event_hash));
    cf_audit_verify_begin_at(&v, keys, &anchor);
    bool going = true;
    for (size_t i = from; going && i < n_log; i++)
        going = cf_audit_verify_event(&v, &log_[i]);
    if (going)
        going = cf_audit_verify_end_events(&v);
    for (size_t i = 0; going && i < n_cps; i++) {
        bool stored = cps[i].event_seq > (int64_t)from;
        going = cf_audit_verify_checkpoint(&v, &cps[i], stored,
                                           stored ? &log_[cps[i].event_seq - 1] : NULL);
    }
    return v.report;
}

Test(audit, a_log_cut_at_an_anchor_verifies_with_older_checkpoints)
{
    struct cf_audit_checkpoint cps[] = {checkpoint_of(3), checkpoint_of(5), checkpoint_of(9)};
    struct cf_audit_report r = verify_from(5, cps, 3);
    cr_assert_eq(r.finding, CF_AUDIT_OK, "%s", r.message);
    cr_assert_eq(r.events, N - 5);
    cr_assert_eq(r.last_seq, N);
}

Test(audit, the_first_event_after_the_anchor_deleted_or_edited_is_named)
{
    memmove(&log_[5], &log_[6], sizeof(log_[0]) * (N - 6));
    n_log = N - 1;
    struct cf_audit_report r = verify_from(5, NULL, 0);
    cr_assert_eq(r.finding, CF_AUDIT_DELETED, "%s", r.message);
    cr_assert_eq(r.seq, 6);
    build();
    cf_strlcpy(log_[5].reason, "rewritten", sizeof(log_[5].reason));
    r = verify_from(5, NULL, 0);
    cr_assert_eq(r.finding, CF_AUDIT_EDITED, "%s", r.message);
    cr_assert_eq(r.seq, 6);
}

Test(audit, a_checkpoint_over_the_anchor_must_match_it)
{
    struct cf_audit_checkpoint cp = checkpoint_of(5);
    cp.event_hash[0] ^= 1;
    cf_audit_checkpoint_sign(keys, &cp);
    struct cf_audit_report r = verify_from(5, &cp, 1);
    cr_assert_eq(r.finding, CF_AUDIT_CHECKPOINT_MISMATCH, "%s", r.message);
    cr_assert_eq(r.seq, 5);
}

Test(audit, an_anchor_signature_is_its_own)
{
    uint8_t public_key[CF_AUDIT_PUBLIC_KEY_BYTES];
    cf_audit_public_key(keys, public_key);
    struct cf_audit_checkpoint anchor = checkpoint_of(5); /* a checkpoint's signature */
    cr_assert_not(cf_audit_anchor_valid(public_key, &anchor));
    cf_audit_anchor_sign(keys, &anchor);
    cr_assert(cf_audit_anchor_valid(public_key, &anchor));
    cr_assert_not(cf_audit_checkpoint_valid(public_key, &anchor));
    cr_assert_not(cf_audit_head_valid(public_key, &anchor));
    anchor.event_seq = 4;
    cr_assert_not(cf_audit_anchor_valid(public_key, &anchor));
}

Test(audit, an_archive_signature_verifies_with_the_public_key_alone)
{
    static const char text[] = "{\"type\":\"coffer-audit-archive\",\"version\":1}\n";
    uint8_t signature[CF_AUDIT_SIG_BYTES], public_key[CF_AUDIT_PUBLIC_KEY_BYTES];
    cf_audit_public_key(keys, public_key);
    cf_audit_archive_sign(keys, text, strlen(text), signature);
    cr_assert_eq(
        crypto_sign_verify_detached(signature, (const uint8_t *)text, strlen(text), public_key), 0);
    cr_assert_neq(
        crypto_sign_verify_detached(signature, (const uint8_t *)text, strlen(text) - 1, public_key),
        0);
}

/* The archive's writer (cf_audit_event_write) against the tree every other sink dumps: the same
 * bytes for ordinary text, the same JSON where the two escape a control character differently. */
static char *written(const struct cf_audit_event *e)
{
    struct cf_buf out;
    cf_buf_init(&out, 1 << 20);
    struct cf_jsonw w;
    cf_jsonw_init(&w, &out);
    cf_audit_event_write(&w, e);
    cr_assert_eq(cf_jsonw_finish(&w), CF_OK);
    cr_assert_eq(cf_buf_append(&out, "", 1), CF_OK);
    char *text = strdup(out.data);
    cf_buf_release(&out);
    return text;
}

static char *dumped(const struct cf_audit_event *e)
{
    json_t *tree = cf_audit_event_json(e);
    cr_assert_not_null(tree);
    char *text = json_dumps(tree, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(tree);
    return text;
}

Test(audit, the_archive_writes_an_event_as_the_api_shows_it)
{
    struct cf_audit_event admin = log_[3], identity = log_[4], odd = log_[5];
    snprintf(admin.actor_kind, sizeof(admin.actor_kind), "admin");
    snprintf(admin.actor_name, sizeof(admin.actor_name), "admin");
    snprintf(admin.keys, sizeof(admin.keys), "A,B_2,C.3");
    snprintf(admin.user_agent, sizeof(admin.user_agent),
             "curl/8.0 \"quoted\" back\\slash caf\xc3\xa9");
    snprintf(admin.path, sizeof(admin.path), "/backend/api");
    snprintf(admin.reason, sizeof(admin.reason), "line\nbreak\ttab");
    identity.keys[0] = '\0'; /* no keys: an empty array */
    snprintf(identity.actor_id, sizeof(identity.actor_id), "0190a0b0-0000-7000-8000-000000000001");
    snprintf(identity.request_id, sizeof(identity.request_id), "0123456789abcdef");
    for (const struct cf_audit_event *e = &admin; e; e = e == &admin ? &identity : NULL) {
        char *a = written(e), *b = dumped(e);
        cr_assert_str_eq(a, b);
        free(a);
        free(b);
    }
    /* jansson writes \u0001 with upper-case digits, jsonw with lower: the same JSON */
    snprintf(odd.user_agent, sizeof(odd.user_agent),
             "ctl\x01"
             "char \x1f");
    char *a = written(&odd), *b = dumped(&odd);
    json_t *x = json_loads(a, 0, NULL), *y = json_loads(b, 0, NULL);
    cr_assert(x && y && json_equal(x, y), "%s\n%s", a, b);
    json_decref(x);
    json_decref(y);
    free(a);
    free(b);
}
