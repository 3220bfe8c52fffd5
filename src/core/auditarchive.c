/* Audit retention (see auditarchive.h): one run claims the work, reads the due events page by
 * page while checking them, builds the archive text, signs and compresses it, makes the file
 * durable, then commits the anchor, the kept last reads and the deletion in one transaction. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "core/auditarchive.h"
#include "core/render.h"
#include "util/buf.h"
#include "util/file.h"
#include "util/gzip.h"
#include "util/log.h"
#include "util/str.h"
#include "util/time.h"
#include "util/wipemem.h"
#include "util/banned.h"

#define PAGE_EVENTS 500
#define FILE_EVENTS 10000
#define TEXT_MAX (48u * 1024 * 1024)  /* an archive's text at most (events are < 10 KB) */
#define TEXT_FULL (32u * 1024 * 1024) /* a file ends once its text passes this */
#define READS_MAX 20000               /* distinct last reads one file keeps at most */
/* A claim outlives a run that stalls this long; a server killed mid-run holds the others (and
 * itself, restarted: a new process is a new owner) off for as long. */
#define LEASE_US (2LL * 60 * 1000000)
#define NAME_FORMAT "audit-%012" PRId64 "-%012" PRId64 ".jsonl.gz"

/* The read actions whose keys the inventory's "last read" counts (core/inventory.c). */
static bool is_read(const struct cf_audit_event *e)
{
    return strcmp(e->result, "ok") == 0 &&
           (strcmp(e->action, "secrets.list") == 0 || strcmp(e->action, "secrets.read") == 0 ||
            strcmp(e->action, "secrets.versions") == 0);
}

/* The last reads of one file, one per secret (the newest read of each). A list event names up to
 * hundreds of keys and a file holds thousands of events, so the per-key work must be small:
 * - a secret's read is found through an open addressing table of its place's hash (SipHash under a
 *   key of the run's own, since secret names are chosen by users);
 * - what the newest read was is kept as its time and a reference to its actor (found through a
 *   table of the same kind), written out as strings once, at the end (reads_finish);
 * - the places of the last few events' key lists are remembered (memo), so that an event that
 *   names the same keys in the same place as a recent one (a pipeline listing one folder again)
 *   updates its reads without hashing a key. */
struct actor {
    char kind[sizeof(((struct cf_audit_last_read *)0)->actor_kind)];
    char id[sizeof(((struct cf_audit_last_read *)0)->actor_id)];
    char name[sizeof(((struct cf_audit_last_read *)0)->actor_name)];
};

#define MEMO 4

struct memo {
    char *place;  /* the event's project, environment, path and keys, each ended by a NUL */
    size_t len;   /* bytes of place */
    uint32_t *at; /* the index in items of each of its keys' reads */
    size_t n_at;
};

struct reads {
    struct cf_audit_last_read *items; /* the places; times and actors once finished */
    uint64_t *hashes;                 /* of items[i]'s place */
    uint32_t *actor_of;               /* items[i]'s newest read's actor, in actors */
    size_t n, cap;
    uint32_t *slots;                        /* 1 + an index into items; 0: free */
    size_t n_slots;                         /* a power of two, at least twice n */
    uint8_t key[crypto_shorthash_KEYBYTES]; /* made at the first read added */
    bool keyed;
    struct actor *actors;
    uint64_t *actor_hashes; /* of actors[i]'s kind, id and name */
    size_t n_actors, cap_actors;
    uint32_t *actor_slots; /* 1 + an index into actors; 0: free */
    size_t n_actor_slots;  /* a power of two, at least twice n_actors */
    struct memo memo[MEMO];
    size_t memo_next;
};

/* The hash of a read's place: its project, environment, path and key, each ended by a NUL. */
static uint64_t place_hash(const struct reads *r, const struct cf_audit_last_read *x)
{
    char packed[sizeof(x->project_id) + sizeof(x->environment) + sizeof(x->path) + sizeof(x->key)];
    size_t len = 0;
    const char *const parts[] = {x->project_id, x->environment, x->path, x->key};
    for (size_t i = 0; i < CF_ARRAY_SIZE(parts); i++) {
        size_t n = strlen(parts[i]) + 1; /* each fits its field, so all fit packed */
        memcpy(packed + len, parts[i], n);
        len += n;
    }
    uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, (const uint8_t *)packed, len, r->key);
    uint64_t h;
    memcpy(&h, out, sizeof(h));
    return h;
}

static bool same_place(const struct cf_audit_last_read *x, const struct cf_audit_last_read *y)
{
    return strcmp(x->key, y->key) == 0 && strcmp(x->path, y->path) == 0 &&
           strcmp(x->environment, y->environment) == 0 && strcmp(x->project_id, y->project_id) == 0;
}

/* The slot of hash h: the one holding a read of x's place, else the free one where it would go. */
static size_t find_slot(const struct reads *r, uint64_t h, const struct cf_audit_last_read *x)
{
    size_t mask = r->n_slots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint32_t at = r->slots[i];
        if (at == 0 || (r->hashes[at - 1] == h && same_place(&r->items[at - 1], x)))
            return i;
    }
}

/* Grows *array (of *cap elements of size bytes) by doubling when n elements fill it. */
static bool grow(void **array, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    size_t more = *cap ? *cap * 2 : 64;
    void *grown = realloc(*array, more * size);
    if (!grown)
        return false;
    *array = grown;
    *cap = more;
    return true;
}

/* Keeps an open addressing table (*slots: 1 + an index, 0 free; *n_slots a power of two) at most
 * half full with room for one more of the n entries whose hashes are given: doubled (first_size
 * to begin with) and filled again when it would pass that. */
static enum cf_rc slots_reserve(uint32_t **slots, size_t *n_slots, const uint64_t *hashes, size_t n,
                                size_t first_size, struct cf_err *err)
{
    if ((n + 1) * 2 <= *n_slots)
        return CF_OK;
    size_t size = *n_slots ? *n_slots * 2 : first_size;
    uint32_t *table = calloc(size, sizeof(*table));
    if (!table)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        size_t at = (size_t)hashes[i] & (size - 1);
        while (table[at])
            at = (at + 1) & (size - 1);
        table[at] = (uint32_t)i + 1;
    }
    free(*slots);
    *slots = table;
    *n_slots = size;
    return CF_OK;
}

/* Makes room for one more read: the arrays grown by doubling, the table kept at most half full. */
static enum cf_rc reads_reserve(struct reads *r, struct cf_err *err)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        void *items = realloc(r->items, cap * sizeof(*r->items));
        if (items)
            r->items = items;
        void *hashes = items ? realloc(r->hashes, cap * sizeof(*r->hashes)) : NULL;
        if (hashes)
            r->hashes = hashes;
        void *actor_of = hashes ? realloc(r->actor_of, cap * sizeof(*r->actor_of)) : NULL;
        if (!actor_of)
            return cf_err_set(err, CF_ENOMEM, "out of memory");
        r->actor_of = actor_of;
        r->cap = cap;
    }
    return slots_reserve(&r->slots, &r->n_slots, r->hashes, r->n, 512, err);
}

/* Makes items[at]'s read the one at time_us by actor unless a newer one is kept (a tie goes to the
 * later event of the chain). */
static void reads_update(struct reads *r, uint32_t at, int64_t time_us, uint32_t actor)
{
    if (time_us >= r->items[at].read_at_us) {
        r->items[at].read_at_us = time_us;
        r->actor_of[at] = actor;
    }
}

/* The index of x's place in items (a new read there when it has none); x's actor fields unused. */
static enum cf_rc reads_find(struct reads *r, const struct cf_audit_last_read *x, uint32_t *at,
                             struct cf_err *err)
{
    enum cf_rc rc = reads_reserve(r, err);
    if (rc != CF_OK)
        return rc;
    uint64_t h = place_hash(r, x);
    size_t slot = find_slot(r, h, x);
    if (r->slots[slot] == 0) {
        r->items[r->n] = *x;
        r->items[r->n].read_at_us = INT64_MIN;
        r->hashes[r->n] = h;
        r->slots[slot] = (uint32_t)++r->n;
    }
    *at = r->slots[slot] - 1;
    return CF_OK;
}

/* The index of e's actor in actors, added when new: found, like a place, through a table of the
 * actors' hashes (a file may hold the reads of thousands of identities). */
static enum cf_rc actor_of(struct reads *r, const struct cf_audit_event *e, uint32_t *out,
                           struct cf_err *err)
{
    struct actor x;
    memset(&x, 0, sizeof(x));
    cf_strlcpy(x.kind, e->actor_kind, sizeof(x.kind));
    cf_strlcpy(x.id, e->actor_id, sizeof(x.id));
    cf_strlcpy(x.name, e->actor_name, sizeof(x.name));
    uint8_t digest[crypto_shorthash_BYTES];
    uint64_t h;
    crypto_shorthash(digest, (const uint8_t *)&x, sizeof(x), r->key);
    memcpy(&h, digest, sizeof(h));
    enum cf_rc rc =
        slots_reserve(&r->actor_slots, &r->n_actor_slots, r->actor_hashes, r->n_actors, 64, err);
    if (rc != CF_OK)
        return rc;
    size_t mask = r->n_actor_slots - 1, slot = (size_t)h & mask;
    for (; r->actor_slots[slot]; slot = (slot + 1) & mask) {
        uint32_t at = r->actor_slots[slot] - 1;
        if (r->actor_hashes[at] == h && memcmp(&r->actors[at], &x, sizeof(x)) == 0) {
            *out = at;
            return CF_OK;
        }
    }
    size_t cap = r->cap_actors; /* the hashes first: a longer array of them does no harm */
    if (!grow((void **)&r->actor_hashes, &cap, r->n_actors, sizeof(*r->actor_hashes)) ||
        !grow((void **)&r->actors, &r->cap_actors, r->n_actors, sizeof(*r->actors)))
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    r->actors[r->n_actors] = x;
    r->actor_hashes[r->n_actors] = h;
    r->actor_slots[slot] = (uint32_t)++r->n_actors;
    *out = (uint32_t)(r->n_actors - 1);
    return CF_OK;
}

/* The event's place and keys as a memo holds them, written into out when not NULL; returns their
 * bytes. */
static size_t packed_place(const struct cf_audit_event *e, char *out)
{
    size_t len = 0;
    const char *const parts[] = {e->project_id, e->environment, e->path, e->keys};
    for (size_t i = 0; i < CF_ARRAY_SIZE(parts); i++) {
        size_t n = strlen(parts[i]) + 1;
        if (out)
            memcpy(out + len, parts[i], n);
        len += n;
    }
    return len;
}

static bool memo_matches(const struct memo *m, const struct cf_audit_event *e)
{
    const char *p = m->place, *end = m->place + m->len;
    const char *const parts[] = {e->project_id, e->environment, e->path, e->keys};
    for (size_t i = 0; i < CF_ARRAY_SIZE(parts); i++) {
        if (p >= end || strcmp(p, parts[i]) != 0)
            return false;
        p += strlen(p) + 1;
    }
    return true;
}

static void memo_clear(struct memo *m)
{
    free(m->place);
    free(m->at);
    memset(m, 0, sizeof(*m));
}

static enum cf_rc reads_add(struct reads *r, const struct cf_audit_event *e, struct cf_err *err)
{
    if (!r->keyed) {
        crypto_shorthash_keygen(r->key);
        r->keyed = true;
    }
    uint32_t actor = 0;
    enum cf_rc rc = actor_of(r, e, &actor, err);
    if (rc != CF_OK)
        return rc;
    for (size_t i = 0; i < MEMO; i++) {
        const struct memo *m = &r->memo[i];
        if (m->place && memo_matches(m, e)) {
            for (size_t k = 0; k < m->n_at; k++)
                reads_update(r, m->at[k], e->time_us, actor);
            return CF_OK;
        }
    }
    struct memo *m = &r->memo[r->memo_next];
    r->memo_next = (r->memo_next + 1) % MEMO;
    memo_clear(m);
    size_t cap_at = 0;
    m->len = packed_place(e, NULL);
    m->place = malloc(m->len);
    if (!m->place)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    packed_place(e, m->place);

    struct cf_audit_last_read x;
    memset(&x, 0, sizeof(x));
    cf_strlcpy(x.project_id, e->project_id, sizeof(x.project_id));
    cf_strlcpy(x.environment, e->environment, sizeof(x.environment));
    cf_strlcpy(x.path, e->path, sizeof(x.path));
    struct cf_list_iter keys;
    struct cf_str key;
    cf_list_init(&keys, e->keys);
    while (rc == CF_OK && cf_list_next_raw(&keys, &key)) {
        if (key.n == 0 || key.n > CF_KEY_MAX)
            continue;
        memcpy(x.key, key.p, key.n);
        x.key[key.n] = '\0';
        uint32_t at = 0;
        rc = reads_find(r, &x, &at, err);
        if (rc == CF_OK && !grow((void **)&m->at, &cap_at, m->n_at, sizeof(*m->at)))
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        if (rc == CF_OK) {
            m->at[m->n_at++] = at;
            reads_update(r, at, e->time_us, actor);
        }
    }
    if (rc != CF_OK)
        memo_clear(m); /* half made: not to be matched */
    return rc;
}

/* Writes each read's actor into items. */
static void reads_finish(struct reads *r)
{
    for (size_t i = 0; i < r->n; i++) {
        const struct actor *a = &r->actors[r->actor_of[i]];
        cf_strlcpy(r->items[i].actor_kind, a->kind, sizeof(r->items[i].actor_kind));
        cf_strlcpy(r->items[i].actor_id, a->id, sizeof(r->items[i].actor_id));
        cf_strlcpy(r->items[i].actor_name, a->name, sizeof(r->items[i].actor_name));
    }
}

static void reads_release(struct reads *r)
{
    free(r->items);
    free(r->hashes);
    free(r->actor_of);
    free(r->slots);
    free(r->actors);
    free(r->actor_hashes);
    free(r->actor_slots);
    for (size_t i = 0; i < MEMO; i++)
        memo_clear(&r->memo[i]);
}

/* Appends json (taken) to text as one compact line. */
static enum cf_rc put_line(struct cf_buf *text, json_t *json, struct cf_err *err)
{
    char *line = json ? json_dumps(json, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(json);
    enum cf_rc rc = line ? cf_buf_puts(text, line) : CF_ENOMEM;
    if (rc == CF_OK)
        rc = cf_buf_append(text, "\n", 1);
    cf_json_free_text(line);
    if (rc == CF_ETOOLARGE)
        return cf_err_set(err, rc, "an audit archive's text passed %u bytes", TEXT_MAX);
    return rc == CF_OK ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

/* Appends event e to text as one compact line, as put_line(cf_audit_event_json(e)) would. */
static enum cf_rc put_event(struct cf_buf *text, const struct cf_audit_event *e, struct cf_err *err)
{
    struct cf_jsonw w;
    cf_jsonw_init(&w, text);
    cf_audit_event_write(&w, e);
    enum cf_rc rc = cf_jsonw_finish(&w);
    if (rc == CF_OK)
        rc = cf_buf_append(text, "\n", 1);
    if (rc == CF_ETOOLARGE)
        return cf_err_set(err, rc, "an audit archive's text passed %u bytes", TEXT_MAX);
    if (rc == CF_EINVAL)
        return cf_err_set(err, CF_EVALIDATION,
                          "audit event %lld holds text that is not UTF-8 (recorded by an older "
                          "Coffer, which kept such bytes as sent): it cannot be archived as JSON",
                          (long long)e->seq);
    return rc == CF_OK ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

static json_t *hex_of(const uint8_t *bytes, size_t n)
{
    char hex[2 * CF_AUDIT_HASH_BYTES + 1];
    sodium_bin2hex(hex, sizeof(hex), bytes, n < CF_AUDIT_HASH_BYTES ? n : CF_AUDIT_HASH_BYTES);
    return json_string(hex);
}

/* Deletes the files a run interrupted before its commit left above the anchor (only the claim's
 * holder runs this, so no other run is writing one). */
static void remove_uncommitted(const char *dir, int64_t anchor_seq)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        int64_t first = 0, last = 0;
        int used = 0;
        if (sscanf(entry->d_name, "audit-%" SCNd64 "-%" SCNd64 ".jsonl.gz%n", &first, &last,
                   &used) != 2 ||
            entry->d_name[used] != '\0' || first <= anchor_seq)
            continue;
        char path[4200];
        int n = snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
        if (n > 0 && (size_t)n < sizeof(path) && unlink(path) == 0)
            cf_log(CF_LOG_WARN,
                   "audit archive: removed '%s', left by a run that stopped before its commit "
                   "(its events are still in the store and are archived again)",
                   path);
    }
    closedir(d);
}

static enum cf_rc make_dir(const char *dir, struct cf_err *err)
{
    if (mkdir(dir, 0700) == 0 || errno == EEXIST)
        return CF_OK;
    return cf_err_set(err, CF_EIO, "cannot create the audit archive directory '%s': %s", dir,
                      strerror(errno));
}

/* Reads the due events after anchor into text (header and events) and reads; sets run's range
 * and more. */
static enum cf_rc collect(struct cf_audit_archive_run *run,
                          const struct cf_audit_checkpoint *anchor, int64_t newest_seq,
                          struct cf_buf *text, struct reads *reads,
                          uint8_t last_hash[CF_AUDIT_HASH_BYTES], struct cf_err *err)
{
    static const uint8_t zeros[CF_AUDIT_HASH_BYTES];
    const uint8_t *prev = anchor->event_seq ? anchor->event_hash : zeros;
    json_t *header = json_pack("{s:s, s:i, s:I, s:o}", "type", "coffer-audit-archive", "version", 1,
                               "firstSeq", (json_int_t)(anchor->event_seq + 1), "prevHash",
                               hex_of(prev, CF_AUDIT_HASH_BYTES));
    enum cf_rc rc = put_line(text, header, err);
    struct cf_audit_filter filter = {.after_seq = anchor->event_seq, .limit = PAGE_EVENTS};
    int64_t expect = anchor->event_seq + 1;
    bool done = false;
    memcpy(last_hash, prev, CF_AUDIT_HASH_BYTES);
    while (rc == CF_OK && !done) {
        struct cf_audit_event_list page = {0};
        rc = cf_store_audit_list(run->store, &filter, &page, err);
        for (size_t i = 0; rc == CF_OK && !done && i < page.n; i++) {
            const struct cf_audit_event *e = &page.items[i];
            if (e->seq >= newest_seq || e->time_us >= run->older_than_us) {
                done = true;
                break;
            }
            if (e->seq != expect || sodium_memcmp(e->prev_hash, last_hash, CF_AUDIT_HASH_BYTES) ||
                !cf_audit_event_intact(run->keys, e)) {
                rc = cf_err_set(err, CF_EVALIDATION,
                                "event %lld does not verify (see `coffer audit verify`): nothing "
                                "is archived until the log is intact",
                                (long long)expect);
                break;
            }
            rc = put_event(text, e, err);
            if (rc == CF_OK && is_read(e))
                rc = reads_add(reads, e, err);
            if (rc != CF_OK)
                break;
            memcpy(last_hash, e->hash, CF_AUDIT_HASH_BYTES);
            run->last_seq = e->seq;
            run->archived++;
            expect++;
            if (run->archived >= FILE_EVENTS || text->len >= TEXT_FULL || reads->n >= READS_MAX) {
                run->more = true;
                done = true;
            }
        }
        if (page.n < filter.limit)
            done = true;
        if (page.n)
            filter.after_seq = page.items[page.n - 1].seq;
        cf_audit_event_list_release(&page);
    }
    if (rc == CF_OK)
        reads_finish(reads);
    return rc;
}

/* Ends text with the signed trailer, compresses it and makes the file durable at path. */
static enum cf_rc write_archive(struct cf_audit_archive_run *run, struct cf_buf *text,
                                const uint8_t last_hash[CF_AUDIT_HASH_BYTES], const char *path,
                                struct cf_err *err)
{
    struct cf_buf packed;
    uint8_t signature[CF_AUDIT_SIG_BYTES];
    char signature_b64[sodium_base64_ENCODED_LEN(CF_AUDIT_SIG_BYTES,
                                                 sodium_base64_VARIANT_ORIGINAL)];
    cf_buf_init(&packed, TEXT_MAX);
    enum cf_rc rc = put_line(text,
                             json_pack("{s:s, s:I, s:o, s:I}", "type", "end", "lastSeq",
                                       (json_int_t)run->last_seq, "lastHash",
                                       hex_of(last_hash, CF_AUDIT_HASH_BYTES), "events",
                                       (json_int_t)run->archived),
                             err);
    if (rc == CF_OK) {
        cf_audit_archive_sign(run->keys, text->data, text->len, signature);
        sodium_bin2base64(signature_b64, sizeof(signature_b64), signature, sizeof(signature),
                          sodium_base64_VARIANT_ORIGINAL);
        rc = put_line(
            text, json_pack("{s:s, s:s}", "type", "signature", "signature", signature_b64), err);
    }
    if (rc == CF_OK)
        rc = cf_gzip_compress(text->data, text->len, &packed, err);
    if (rc == CF_OK)
        rc = cf_file_replace(path, packed.data, packed.len, err);
    cf_buf_release(&packed);
    return rc;
}

enum cf_rc cf_audit_archive(struct cf_audit_archive_run *run, struct cf_err *err)
{
    struct cf_audit_checkpoint anchor = {0};
    struct cf_audit_event *newest = NULL;
    struct reads reads = {0};
    struct cf_buf text;
    bool claimed = false, anchored = false;
    uint8_t last_hash[CF_AUDIT_HASH_BYTES];
    char path[4200] = "";

    run->archived = 0;
    run->more = false;
    cf_buf_init(&text, TEXT_MAX);
    /* The claim runs on the server's clock (which a test build can move), events' ages on the
     * real one. */
    int64_t claim_now_us = cf_now_ms() * 1000;
    enum cf_rc rc = cf_store_audit_archive_claim(run->store, run->owner, claim_now_us,
                                                 claim_now_us + LEASE_US, &claimed, err);
    if (rc != CF_OK || !claimed)
        goto out;
    rc = make_dir(run->dir, err);
    if (rc == CF_OK)
        rc = cf_store_audit_anchor_get(run->store, &anchor, &anchored, err);
    if (rc != CF_OK)
        goto out;
    uint8_t public_key[CF_AUDIT_PUBLIC_KEY_BYTES];
    cf_audit_public_key(run->keys, public_key);
    if (anchored && !cf_audit_anchor_valid(public_key, &anchor)) {
        rc = cf_err_set(err, CF_EVALIDATION,
                        "the stored anchor of the audit archive does not verify (edited in the "
                        "database): nothing is archived until it is resolved");
        goto out;
    }
    remove_uncommitted(run->dir, anchor.event_seq);
    newest = malloc(sizeof(*newest));
    if (!newest) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    rc = cf_store_audit_get(run->store, 0, newest, err);
    if (rc == CF_ENOTFOUND) {
        rc = CF_OK; /* an empty log: nothing to archive */
        goto out;
    }
    if (rc == CF_OK)
        rc = collect(run, &anchor, newest->seq, &text, &reads, last_hash, err);
    if (rc != CF_OK || run->archived == 0)
        goto out;
    run->first_seq = anchor.event_seq + 1;
    int n =
        snprintf(path, sizeof(path), "%s/" NAME_FORMAT, run->dir, run->first_seq, run->last_seq);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        rc = cf_err_set(err, CF_EINVAL, "the audit archive directory's path is too long");
        goto out;
    }
    rc = write_archive(run, &text, last_hash, path, err);
    if (rc != CF_OK)
        goto out;
    /* A test build stops here on COFFER_TEST_ARCHIVE_CRASH_AT=written: the file durable, its
     * events not yet deleted. */
    cf_test_crash_point("COFFER_TEST_ARCHIVE_CRASH_AT", "written");
    struct cf_audit_checkpoint moved = {.event_seq = run->last_seq, .time_us = run->now_us};
    memcpy(moved.event_hash, last_hash, sizeof(moved.event_hash));
    cf_audit_anchor_sign(run->keys, &moved);
    rc = cf_store_audit_archive_commit(run->store, run->owner, anchor.event_seq, &moved,
                                       reads.items, reads.n, err);
out:
    if (rc != CF_OK)
        run->archived = 0;
    if (claimed && !run->more) {
        struct cf_err ignored;
        cf_store_audit_archive_release(run->store, run->owner, &ignored);
    }
    reads_release(&reads);
    free(newest);
    cf_buf_release(&text);
    return rc;
}
