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

/* The last reads of one file, kept distinct per secret (the newest read of each). */
struct reads {
    struct cf_audit_last_read *items;
    size_t n, cap;
};

static int by_secret_then_newest(const void *a, const void *b)
{
    const struct cf_audit_last_read *x = a, *y = b;
    int c = strcmp(x->project_id, y->project_id);
    if (!c)
        c = strcmp(x->environment, y->environment);
    if (!c)
        c = strcmp(x->path, y->path);
    if (!c)
        c = strcmp(x->key, y->key);
    if (!c)
        c = (x->read_at_us < y->read_at_us) - (x->read_at_us > y->read_at_us);
    return c;
}

/* Sorts and keeps the newest read of each secret. */
static void reads_compact(struct reads *r)
{
    if (r->n < 2)
        return;
    qsort(r->items, r->n, sizeof(*r->items), by_secret_then_newest);
    size_t kept = 1;
    for (size_t i = 1; i < r->n; i++) {
        const struct cf_audit_last_read *x = &r->items[kept - 1], *y = &r->items[i];
        if (strcmp(x->project_id, y->project_id) == 0 &&
            strcmp(x->environment, y->environment) == 0 && strcmp(x->path, y->path) == 0 &&
            strcmp(x->key, y->key) == 0)
            continue;
        r->items[kept++] = *y;
    }
    r->n = kept;
}

static enum cf_rc reads_add(struct reads *r, const struct cf_audit_event *e, struct cf_err *err)
{
    struct cf_list_iter keys;
    struct cf_str key;
    cf_list_init(&keys, e->keys);
    while (cf_list_next_raw(&keys, &key)) {
        if (key.n == 0 || key.n > CF_KEY_MAX)
            continue;
        if (r->n == r->cap) {
            reads_compact(r);
            if (r->cap == 0 || r->n * 2 > r->cap) {
                size_t cap = r->cap ? r->cap * 2 : 256;
                void *grown = realloc(r->items, cap * sizeof(*r->items));
                if (!grown)
                    return cf_err_set(err, CF_ENOMEM, "out of memory");
                r->items = grown;
                r->cap = cap;
            }
        }
        struct cf_audit_last_read *x = &r->items[r->n++];
        memset(x, 0, sizeof(*x));
        cf_strlcpy(x->project_id, e->project_id, sizeof(x->project_id));
        cf_strlcpy(x->environment, e->environment, sizeof(x->environment));
        cf_strlcpy(x->path, e->path, sizeof(x->path));
        memcpy(x->key, key.p, key.n);
        x->read_at_us = e->time_us;
        cf_strlcpy(x->actor_kind, e->actor_kind, sizeof(x->actor_kind));
        cf_strlcpy(x->actor_id, e->actor_id, sizeof(x->actor_id));
        cf_strlcpy(x->actor_name, e->actor_name, sizeof(x->actor_name));
    }
    return CF_OK;
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
            rc = put_line(text, cf_audit_event_json(e), err);
            if (rc == CF_OK && is_read(e))
                rc = reads_add(reads, e, err);
            if (rc != CF_OK)
                break;
            memcpy(last_hash, e->hash, CF_AUDIT_HASH_BYTES);
            run->last_seq = e->seq;
            run->archived++;
            expect++;
            if (run->archived >= FILE_EVENTS || text->len >= TEXT_FULL || reads->n >= READS_MAX) {
                reads_compact(reads);
                if (reads->n >= READS_MAX || run->archived >= FILE_EVENTS ||
                    text->len >= TEXT_FULL) {
                    run->more = true;
                    done = true;
                }
            }
        }
        if (page.n < filter.limit)
            done = true;
        if (page.n)
            filter.after_seq = page.items[page.n - 1].seq;
        cf_audit_event_list_release(&page);
    }
    if (rc == CF_OK)
        reads_compact(reads);
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
    free(reads.items);
    free(newest);
    cf_buf_release(&text);
    return rc;
}
