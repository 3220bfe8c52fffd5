/* The audit log writer (see auditlog.h): a bounded queue of event copies, one writer thread that
 * commits them in batches through the store's audit_append (which numbers and chains them inside
 * its transaction, so the chain holds even with several writers on one database), checkpoints, and
 * the waits of fail-closed mode. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/serverkey.h"
#include "core/auditarchive.h"
#include "core/auditlog.h"
#include "core/render.h"
#include "util/file.h"
#include "util/id.h"
#include "util/log.h"
#include "util/str.h"
#include "util/time.h"
#include "util/wipemem.h"
#include "util/banned.h"

#define BATCH_MAX 256
#define RETRY_MS 1000
/* Normal mode: how long the writer lets a batch fill before committing it. Fewer, larger
 * transactions keep the writer's share of the CPU and of the disk's flushes small under load. */
#define COALESCE_MS 20
/* The longest the idle writer sleeps before looking at the checkpoint timer. */
#define IDLE_WAKE_MS 1000
#define HEAD_FILE_MAX 4096

/* A fail-closed caller waiting for its event's commit. */
struct waiter {
    bool done;
    enum cf_rc rc;
    char msg[CF_ERR_MSG_MAX];
};

struct item {
    struct cf_audit_event event;
    struct waiter *waiter; /* NULL in normal mode, or once its caller gave up */
    bool inflight;         /* taken by the writer */
};

struct cf_audit_log {
    struct cf_store *store;
    struct cf_audit_keys *keys;
    struct cf_audit_log_config config;

    pthread_mutex_t lock;
    pthread_cond_t wake; /* the writer: work, or stop */
    pthread_cond_t done; /* waiters and flushes: a batch finished */
    pthread_t writer;
    bool started, stopping;

    struct item **queue; /* ring of queue_max */
    size_t head, count;
    size_t inflight; /* items taken by the writer, not yet finished */

    int64_t dropped;
    int64_t since_checkpoint; /* events committed since the last checkpoint */
    int64_t last_checkpoint_ms;
    bool failing; /* the last batch failed (logged once per failure run) */

    /* The head. head_lock serialises head publication and every call into the sinks. */
    pthread_mutex_t head_lock;
    struct cf_audit_checkpoint
        signed_head; /* the newest head of this chain that this process knows */
    bool have_head;
    bool head_frozen;  /* the head file is evidence against the store: left as it is */
    bool head_lost;    /* the head file was missing at start while the store held events */
    bool head_failing; /* the last head file write failed (logged once per failure run) */
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the audit key ---- */

static enum cf_rc load_keys(struct cf_store *st, struct cf_keyring *kr, struct cf_audit_keys **out,
                            struct cf_err *err)
{
    uint8_t *wrapped = NULL;
    size_t wrapped_len = 0;
    enum cf_rc rc = cf_server_key_wrapped(st, kr, CF_AUDIT_KEY_META, CF_AUDIT_KEY_LABEL, &wrapped,
                                          &wrapped_len, err);
    if (rc != CF_OK)
        return rc;
    uint8_t *key = sodium_malloc(CF_AUDIT_KEY_BYTES);
    if (!key) {
        free(wrapped);
        return cf_err_set(err, CF_ENOMEM, "cannot allocate locked memory");
    }
    rc = cf_keyring_unwrap_key(kr, CF_AUDIT_KEY_LABEL, wrapped, wrapped_len, key, err);
    if (rc == CF_OK) {
        *out = cf_audit_keys_new(key);
        if (!*out)
            rc = cf_err_set(err, CF_ENOMEM, "cannot allocate locked memory");
    }
    sodium_free(key);
    free(wrapped);
    return rc;
}

/* ---- the writer ---- */

static void chain_one(void *ctx, struct cf_audit_event *event)
{
    cf_audit_chain(ctx, event);
}

/* ---- the head ---- */

/* Reads and checks the head file: CF_ENOTFOUND when it does not exist; CF_EVALIDATION naming the
 * fault when it is malformed, unsigned or its signature does not verify. */
static enum cf_rc head_read(const struct cf_audit_log *log, struct cf_audit_checkpoint *out,
                            struct cf_err *err)
{
    char *text = NULL;
    size_t len = 0;
    enum cf_rc rc = cf_file_read(log->config.head_path, HEAD_FILE_MAX, &text, &len, err);
    if (rc != CF_OK)
        return rc;
    json_error_t jerr;
    json_t *json = json_loadb(text, len, 0, &jerr);
    bool is_signed = false;
    uint8_t public_key[CF_AUDIT_PUBLIC_KEY_BYTES];
    cf_audit_public_key(log->keys, public_key);
    if (!json)
        rc = cf_err_set(err, CF_EVALIDATION, "it is not JSON");
    else
        rc = cf_audit_head_parse(json, out, &is_signed, err);
    if (rc == CF_OK && (!is_signed || !cf_audit_head_valid(public_key, out)))
        rc = cf_err_set(err, CF_EVALIDATION, "its signature does not verify (forged, or damaged)");
    json_decref(json);
    free(text);
    return rc;
}

static enum cf_rc head_write(const struct cf_audit_log *log, const struct cf_audit_checkpoint *head,
                             struct cf_err *err)
{
    json_t *json = cf_audit_head_json(head);
    char *text = json ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    enum cf_rc rc = text ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
    if (rc == CF_OK) {
        size_t n = strlen(text);
        text[n] = '\n'; /* json_dumps leaves room: the NUL becomes the newline */
        rc = cf_file_replace(log->config.head_path, text, n + 1, err);
        text[n] = '\0';
    }
    cf_json_free_text(text);
    return rc;
}

/* True when the stored chain still holds head's event with head's hash, or archived it: an event
 * before the anchor is vouched for by its archive file, the anchor's own by the anchor. */
static bool store_holds(struct cf_audit_log *log, const struct cf_audit_checkpoint *head)
{
    struct cf_audit_checkpoint anchor;
    bool anchored = false;
    struct cf_err err;
    if (cf_store_audit_anchor_get(log->store, &anchor, &anchored, &err) == CF_OK && anchored &&
        head->event_seq <= anchor.event_seq)
        return head->event_seq < anchor.event_seq ||
               sodium_memcmp(anchor.event_hash, head->event_hash, CF_AUDIT_HASH_BYTES) == 0;
    struct cf_audit_event *event = malloc(sizeof(*event));
    bool holds = event && cf_store_audit_get(log->store, head->event_seq, event, &err) == CF_OK &&
                 sodium_memcmp(event->hash, head->event_hash, CF_AUDIT_HASH_BYTES) == 0;
    free(event);
    return holds;
}

static bool head_file_exists(const struct cf_audit_log *log)
{
    return access(log->config.head_path, F_OK) == 0 || errno != ENOENT;
}

/* At start: the head file, checked against the store. Nothing here refuses to start: what is wrong
 * is logged now and reported by every verification. */
static void head_load(struct cf_audit_log *log)
{
    const char *path = log->config.head_path;
    struct cf_err err;
    cf_err_clear(&err);
    enum cf_rc rc = head_read(log, &log->signed_head, &err);
    if (rc == CF_ENOTFOUND) {
        struct cf_audit_event *last = malloc(sizeof(*last));
        struct cf_err ignored;
        if (last && cf_store_audit_get(log->store, 0, last, &ignored) == CF_OK) {
            log->head_frozen = true;
            log->head_lost = true;
            cf_log_error("audit: the head file '%s' is missing while the log holds events up to "
                         "%lld: nothing outside the database vouches for the end of the log, and "
                         "`coffer audit verify` says so until an operator who has checked it "
                         "(against a stream, or --anchor) runs `coffer audit checkpoint`",
                         path, (long long)last->seq);
        }
        free(last);
        return;
    }
    if (rc != CF_OK) {
        log->head_frozen = true;
        cf_log_error("audit: the head file '%s' is not valid (%s): it is kept as it is, and "
                     "`coffer audit verify` reports it",
                     path, err.msg);
        return;
    }
    log->have_head = true;
    if (!store_holds(log, &log->signed_head)) {
        log->head_frozen = true;
        cf_log_error("audit: the stored log does not hold event %lld as the head file '%s' "
                     "vouches for it (the end of the log was cut, or replaced): the head file is "
                     "kept as evidence, and `coffer audit verify` reports it",
                     (long long)log->signed_head.event_seq, path);
    }
}

/* After a checkpoint over cp's event is stored: the head over the same event, in the head file
 * (when it may be replaced) and in the streams. by_operator: `coffer audit checkpoint`, which may
 * write a head file that was moved away. */
static void head_publish(struct cf_audit_log *log, const struct cf_audit_checkpoint *cp,
                         bool by_operator)
{
    const char *path = log->config.head_path;
    struct cf_audit_checkpoint head = *cp;
    cf_audit_head_sign(log->keys, &head);
    pthread_mutex_lock(&log->head_lock);
    bool file_exists = path && head_file_exists(log);
    if (path && by_operator && !file_exists) {
        if (log->head_frozen || log->have_head)
            cf_log_warn("audit: writing a new head file '%s' (event %lld) on the operator's "
                        "checkpoint",
                        path, (long long)head.event_seq);
        log->head_frozen = false;
        log->head_lost = false;
        log->have_head = false; /* the operator accepts the stored log as it is */
    } else if (!log->head_frozen && log->have_head && !store_holds(log, &log->signed_head)) {
        log->head_frozen = true;
        cf_log_error("audit: the stored log no longer holds event %lld as the last head vouches "
                     "for it (the end of the log was cut, or replaced): %s",
                     (long long)log->signed_head.event_seq,
                     path ? "the head file is kept as evidence" : "verification reports it");
    } else if (!log->head_frozen && path && log->have_head && !file_exists) {
        log->head_frozen = true;
        cf_log_error("audit: the head file '%s' was deleted: not written again until an "
                     "operator runs `coffer audit checkpoint`",
                     path);
    }
    /* An older head than the last one (the operator's checkpoint and the writer's, racing) adds
     * nothing. */
    bool stale = !log->head_frozen && log->have_head && head.event_seq < log->signed_head.event_seq;
    if (!log->head_frozen && !stale) {
        struct cf_err err;
        cf_err_clear(&err);
        enum cf_rc rc = path ? head_write(log, &head, &err) : CF_OK;
        if (rc != CF_OK && !log->head_failing)
            cf_log_error("audit: cannot write the head file: %s", err.msg);
        else if (rc == CF_OK && log->head_failing)
            cf_log_info("audit: the head file is written again");
        log->head_failing = rc != CF_OK;
        if (rc == CF_OK) {
            log->signed_head = head;
            log->have_head = true;
        }
    }
    if (log->config.sink_head && !stale)
        log->config.sink_head(log->config.sink_ctx, &head);
    pthread_mutex_unlock(&log->head_lock);
}

/* ---- checkpoints ---- */

/* Signs and stores a checkpoint over event last, then publishes its head. */
static enum cf_rc checkpoint_over(struct cf_audit_log *log, const struct cf_audit_event *last,
                                  bool by_operator, struct cf_err *err)
{
    struct cf_audit_checkpoint cp = {.event_seq = last->seq, .time_us = now_us()};
    memcpy(cp.event_hash, last->hash, sizeof(cp.event_hash));
    cf_audit_checkpoint_sign(log->keys, &cp);
    enum cf_rc rc = cf_store_audit_checkpoint_add(log->store, &cp, err);
    if (rc == CF_EEXIST)
        rc = CF_OK; /* the last event already has one (another node's, or the timer's) */
    if (rc == CF_OK)
        head_publish(log, &cp, by_operator);
    return rc;
}

static void checkpoint_after(struct cf_audit_log *log, const struct cf_audit_event *last)
{
    struct cf_err err;
    cf_err_clear(&err);
    if (checkpoint_over(log, last, false, &err) != CF_OK)
        cf_log_warn("audit: cannot store a checkpoint for event %lld: %s", (long long)last->seq,
                    err.msg);
}

/* A checkpoint over the last stored event (the lock is not held). */
static void checkpoint_stored_last(struct cf_audit_log *log)
{
    struct cf_audit_event *last = malloc(sizeof(*last));
    struct cf_err err;
    if (last && cf_store_audit_get(log->store, 0, last, &err) == CF_OK)
        checkpoint_after(log, last);
    free(last);
}

/* Commits one batch (the lock is not held). The events are completed (seq, hashes, an
 * identity's name) where they wait in the queue: the writer holds them until it is done. */
static enum cf_rc commit(struct cf_audit_log *log, struct item **batch, size_t n,
                         struct cf_audit_event **events, struct cf_err *err)
{
    /* An identity's name is looked up here, off the request path (the token names only the id). */
    struct cf_identity identity = {0};
    for (size_t i = 0; i < n; i++) {
        struct cf_audit_event *e = events[i] = &batch[i]->event;
        if (e->actor_name[0] || strcmp(e->actor_kind, "identity") != 0 || !e->actor_id[0])
            continue;
        struct cf_err ignored;
        if (strcmp(identity.id, e->actor_id) != 0 &&
            cf_store_identity_get(log->store, e->actor_id, &identity, &ignored) != CF_OK)
            memset(&identity, 0, sizeof(identity));
        if (strcmp(identity.id, e->actor_id) == 0)
            cf_strlcpy(e->actor_name, identity.name, sizeof(e->actor_name));
    }
    enum cf_rc rc = cf_store_audit_append(log->store, events, n, chain_one, log->keys, err);
    if (rc == CF_OK && log->config.sink) {
        pthread_mutex_lock(&log->head_lock);
        for (size_t i = 0; i < n; i++)
            log->config.sink(log->config.sink_ctx, events[i]);
        if (log->config.sink_batch_end)
            log->config.sink_batch_end(log->config.sink_ctx);
        pthread_mutex_unlock(&log->head_lock);
    }
    return rc;
}

static void *writer_main(void *arg)
{
    struct cf_audit_log *log = arg;
    struct item *batch[BATCH_MAX];
    struct cf_audit_event *events[BATCH_MAX];
    bool connected = false; /* the thread may hold a store connection: given up when idle */
    pthread_mutex_lock(&log->lock);
    for (;;) {
        while (log->count == 0 && !log->stopping) {
            struct timespec ts;
            cf_deadline_in(&ts, log->config.checkpoint_ms < IDLE_WAKE_MS ? log->config.checkpoint_ms
                                                                         : IDLE_WAKE_MS);
            bool woken = pthread_cond_timedwait(&log->wake, &log->lock, &ts) == 0;
            if (log->count == 0 && log->since_checkpoint > 0 &&
                cf_mono_us() / 1000 - log->last_checkpoint_ms >= log->config.checkpoint_ms)
                break; /* a time-based checkpoint below */
            if (!woken && log->count == 0 && connected) {
                /* A wait without events: the connection may serve another thread meanwhile. */
                pthread_mutex_unlock(&log->lock);
                cf_store_idle(log->store);
                pthread_mutex_lock(&log->lock);
                connected = false;
            }
        }
        if (log->count > 0 && log->count < BATCH_MAX && !log->stopping &&
            !log->config.fail_closed) {
            struct timespec ts;
            cf_deadline_in(&ts, COALESCE_MS);
            pthread_cond_timedwait(&log->wake, &log->lock, &ts); /* or a full batch, or a stop */
        }
        if (log->count == 0 && log->stopping) {
            if (log->since_checkpoint > 0 && !log->failing) { /* the last events get one too */
                log->since_checkpoint = 0;
                pthread_mutex_unlock(&log->lock);
                checkpoint_stored_last(log);
                pthread_mutex_lock(&log->lock);
            }
            break;
        }
        size_t n = 0;
        while (n < BATCH_MAX && n < log->count) {
            struct item *it = log->queue[(log->head + n) % log->config.queue_max];
            it->inflight = true;
            batch[n++] = it;
        }
        log->inflight = n;
        pthread_mutex_unlock(&log->lock);

        /* Each batch's sync runs after the store's write lock is released, shared with the
         * requests' deferred commits, instead of holding every writer of the process while it
         * runs; a batch still counts as stored only once it is on disk. Asked of whichever
         * connection the thread holds now (none until the first batch). */
        cf_store_sync_unlocked(log->store);
        connected = true;
        struct cf_err err;
        cf_err_clear(&err);
        enum cf_rc rc = n ? commit(log, batch, n, events, &err) : CF_OK;
        bool checkpoint = false;

        pthread_mutex_lock(&log->lock);
        if (rc == CF_OK) {
            if (log->failing)
                cf_log_info("audit: the store takes events again");
            log->failing = false;
            log->head = (log->head + n) % log->config.queue_max;
            log->count -= n;
            log->since_checkpoint += (int64_t)n;
            int64_t now_ms = cf_mono_us() / 1000;
            checkpoint =
                log->since_checkpoint > 0 &&
                (log->since_checkpoint >= log->config.checkpoint_every ||
                 now_ms - log->last_checkpoint_ms >= log->config.checkpoint_ms || log->stopping);
            if (checkpoint) {
                log->since_checkpoint = 0;
                log->last_checkpoint_ms = now_ms;
            }
        } else {
            if (!log->failing)
                cf_log_error("audit: cannot store %zu event(s): %s", n, err.msg);
            log->failing = true;
        }
        for (size_t i = 0; i < n; i++) {
            struct item *it = batch[i];
            it->inflight = false;
            if (it->waiter) {
                it->waiter->done = true;
                it->waiter->rc = rc;
                cf_strlcpy(it->waiter->msg, err.msg, sizeof(it->waiter->msg));
                it->waiter = NULL;
            }
        }
        /* The checkpoint covers the batch's last event, whose item is freed below. */
        struct cf_audit_event *last = NULL;
        if (checkpoint && n && (last = malloc(sizeof(*last))))
            *last = *events[n - 1];
        if (rc == CF_OK) {
            for (size_t i = 0; i < n; i++)
                free(batch[i]);
        } else if (log->config.fail_closed || log->stopping) {
            /* Fail-closed: those requests fail with 503; their events are not kept for later. At
             * shutdown, events that cannot be stored are reported and dropped. */
            for (size_t i = 0; i < n; i++)
                free(batch[i]);
            log->head = (log->head + n) % log->config.queue_max;
            log->count -= n;
            log->dropped += (int64_t)n;
        }
        log->inflight = 0;
        pthread_cond_broadcast(&log->done);
        if (last) {
            pthread_mutex_unlock(&log->lock);
            checkpoint_after(log, last);
            free(last);
            pthread_mutex_lock(&log->lock);
        } else if (checkpoint) {
            pthread_mutex_unlock(&log->lock);
            checkpoint_stored_last(log);
            pthread_mutex_lock(&log->lock);
        }
        if (rc != CF_OK && !log->stopping) {
            struct timespec ts;
            cf_deadline_in(&ts, RETRY_MS);
            pthread_cond_timedwait(&log->wake, &log->lock, &ts);
        }
    }
    pthread_mutex_unlock(&log->lock);
    return NULL;
}

/* ---- the interface ---- */

enum cf_rc cf_audit_log_open(struct cf_store *store, struct cf_keyring *keyring,
                             const struct cf_audit_log_config *config, struct cf_audit_log **out,
                             struct cf_err *err)
{
    struct cf_audit_log *log = calloc(1, sizeof(*log));
    if (!log)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    log->store = store;
    log->config = *config;
    if (!log->config.queue_max)
        log->config.queue_max = 8192;
    if (!log->config.checkpoint_every)
        log->config.checkpoint_every = 1000;
    if (!log->config.checkpoint_ms)
        log->config.checkpoint_ms = 10000;
    if (!log->config.fail_closed_wait_ms)
        log->config.fail_closed_wait_ms = 5000;
    if (!log->config.full_wait_ms)
        log->config.full_wait_ms = 1000;
    log->last_checkpoint_ms = cf_mono_us() / 1000;
    log->queue = calloc(log->config.queue_max, sizeof(*log->queue));
    if (config->head_path && !(log->config.head_path = strdup(config->head_path))) {
        free(log->queue);
        log->queue = NULL; /* out of memory, reported below */
    }
    if (config->archive_dir && !(log->config.archive_dir = strdup(config->archive_dir))) {
        free(log->queue);
        log->queue = NULL;
    }
    pthread_mutex_init(&log->lock, NULL);
    pthread_cond_init(&log->wake, NULL);
    pthread_cond_init(&log->done, NULL);
    pthread_mutex_init(&log->head_lock, NULL);
    enum cf_rc rc = log->queue ? load_keys(store, keyring, &log->keys, err)
                               : cf_err_set(err, CF_ENOMEM, "out of memory");
    if (rc == CF_OK && log->config.head_path)
        head_load(log);
    if (rc == CF_OK && pthread_create(&log->writer, NULL, writer_main, log) != 0)
        rc = cf_err_set(err, CF_EINTERNAL, "cannot start the audit writer thread");
    if (rc != CF_OK) {
        cf_audit_log_close(log);
        return rc;
    }
    log->started = true;
    *out = log;
    return CF_OK;
}

void cf_audit_log_close(struct cf_audit_log *log)
{
    if (!log)
        return;
    if (log->started) {
        pthread_mutex_lock(&log->lock);
        log->stopping = true;
        pthread_cond_signal(&log->wake);
        pthread_mutex_unlock(&log->lock);
        pthread_join(log->writer, NULL);
        if (log->dropped)
            cf_log_error("audit: %lld event(s) could not be stored", (long long)log->dropped);
    }
    for (size_t i = 0; log->queue && i < log->count; i++)
        free(log->queue[(log->head + i) % log->config.queue_max]);
    free(log->queue);
    cf_audit_keys_free(log->keys);
    pthread_mutex_destroy(&log->head_lock);
    free((char *)log->config.head_path);
    free((char *)log->config.archive_dir);
    pthread_cond_destroy(&log->done);
    pthread_cond_destroy(&log->wake);
    pthread_mutex_destroy(&log->lock);
    free(log);
}

/* Text of an event that came from outside (a User-Agent header, a request path, a name cut to its
 * field's size) need not be UTF-8, and every JSON form of the event (the audit list, the streams,
 * the archive files) must be: bytes that are not become '?' here, before the event is chained, so
 * that one request with a malformed header cannot make the log unreadable or stop its archiving. */
/* The text fields of an event (store.h), for the two functions below; one a line, which is the
 * form clang-format keeps as it is. */
#define TEXT_FIELDS(X)                                                                             \
    X(id)                                                                                          \
    X(actor_kind)                                                                                  \
    X(actor_id)                                                                                    \
    X(actor_name)                                                                                  \
    X(source_ip)                                                                                   \
    X(user_agent)                                                                                  \
    X(action)                                                                                      \
    X(project_id)                                                                                  \
    X(environment)                                                                                 \
    X(path)                                                                                        \
    X(keys)                                                                                        \
    X(result)                                                                                      \
    X(reason)                                                                                      \
    X(request_id)

/* Replaces what is not UTF-8 in e's text (cf_utf8_repair). */
static void repair_text(struct cf_audit_event *e)
{
#define REPAIR_TEXT(field) cf_utf8_repair(e->field);
    TEXT_FIELDS(REPAIR_TEXT)
#undef REPAIR_TEXT
}

/* Copies event into *to, each text field up to its end (the struct is 6 KB, its text a few hundred
 * bytes on most requests: a whole-struct copy was a visible part of a cached read), and repairs
 * what is not UTF-8 on the way. The bytes after each field's end are left as they are: nothing
 * reads past the end of a field's text. */
static void copy_event(struct cf_audit_event *to, const struct cf_audit_event *from)
{
#define COPY_TEXT(field)                                                                           \
    {                                                                                              \
        size_t n = strnlen(from->field, sizeof(from->field) - 1);                                  \
        memcpy(to->field, from->field, n);                                                         \
        to->field[n] = '\0';                                                                       \
        cf_utf8_repair(to->field);                                                                 \
    }
    to->seq = from->seq;
    to->time_us = from->time_us;
    TEXT_FIELDS(COPY_TEXT)
    memcpy(to->prev_hash, from->prev_hash, sizeof(to->prev_hash));
    memcpy(to->hash, from->hash, sizeof(to->hash));
#undef COPY_TEXT
}

enum cf_rc cf_audit_record(struct cf_audit_log *log, const struct cf_audit_event *event,
                           struct cf_err *err)
{
    struct item *it = malloc(sizeof(*it));
    if (!it)
        return log->config.fail_closed ? cf_err_set(err, CF_EUNAVAIL, "audit: out of memory")
                                       : CF_OK;
    copy_event(&it->event, event);
    it->inflight = false;
    if (!it->event.time_us)
        it->event.time_us = now_us();
    /* Time-ordered, and the store keeps only its random half (the rest is the event's time). */
    if (!it->event.id[0])
        cf_uuid_v7(it->event.time_us, it->event.id);
    struct waiter w = {0};
    it->waiter = log->config.fail_closed ? &w : NULL;

    pthread_mutex_lock(&log->lock);
    /* Back-pressure: a writer that is only behind (the store takes its batches) frees room within
     * a batch's time, so the request waits for it rather than losing another request's event;
     * load then slows to what the audit log can record instead of outrunning it. Only a store
     * that refuses events, or a writer stuck for longer than full_wait_ms, makes events drop. */
    if (log->count == log->config.queue_max && !log->config.fail_closed && !log->failing &&
        !log->stopping) {
        struct timespec ts;
        cf_deadline_in(&ts, log->config.full_wait_ms);
        while (log->count == log->config.queue_max && !log->failing && !log->stopping)
            if (pthread_cond_timedwait(&log->done, &log->lock, &ts) == ETIMEDOUT)
                break;
    }
    if (log->count == log->config.queue_max) {
        if (log->config.fail_closed) {
            pthread_mutex_unlock(&log->lock);
            free(it);
            return cf_err_set(err, CF_EUNAVAIL,
                              "the audit log is not keeping up (%zu events waiting): the request "
                              "was refused rather than served unaudited",
                              log->config.queue_max);
        }
        /* Normal mode: the oldest waiting event makes room (the writer never holds it: a full
         * queue is far larger than one batch). The events the writer holds, at most a batch, move
         * up one slot over it, rather than every later event down one: this runs on every request
         * while the writer lags. The writer finds its events again from head. */
        if (log->inflight < log->count) {
            size_t max = log->config.queue_max;
            size_t oldest = (log->head + log->inflight) % max;
            free(log->queue[oldest]);
            for (size_t i = log->inflight; i > 0; i--)
                log->queue[(log->head + i) % max] = log->queue[(log->head + i - 1) % max];
            log->head = (log->head + 1) % max;
            log->count--;
            if (log->dropped++ % 1000 == 0)
                cf_log_error("audit: the queue is full; oldest events dropped (%lld so far)",
                             (long long)log->dropped);
        }
    }
    log->queue[(log->head + log->count) % log->config.queue_max] = it;
    log->count++;
    /* The writer needs waking for the first event (it sleeps when idle), for a full batch, and for
     * a fail-closed caller, who waits; other events join the batch it is filling. */
    if (log->count == 1 || log->count == BATCH_MAX || log->config.fail_closed)
        pthread_cond_signal(&log->wake);
    if (!log->config.fail_closed) {
        pthread_mutex_unlock(&log->lock);
        return CF_OK;
    }
    struct timespec ts;
    cf_deadline_in(&ts, log->config.fail_closed_wait_ms);
    while (!w.done) {
        int waited = pthread_cond_timedwait(&log->done, &log->lock, &ts);
        if (waited == ETIMEDOUT && !w.done && !it->inflight) {
            it->waiter = NULL; /* the writer may still store it later; this caller stops waiting */
            pthread_mutex_unlock(&log->lock);
            return cf_err_set(err, CF_EUNAVAIL,
                              "the audit log could not record this request within %lld ms: it "
                              "was refused rather than served unaudited",
                              (long long)log->config.fail_closed_wait_ms);
        }
        if (waited == ETIMEDOUT)
            cf_deadline_in(&ts, 100); /* in the writer's hands: its store call ends soon */
    }
    pthread_mutex_unlock(&log->lock);
    if (w.rc != CF_OK)
        return cf_err_set(err, CF_EUNAVAIL,
                          "the audit log cannot store events (%s): the request was refused "
                          "rather than served unaudited",
                          w.msg);
    return CF_OK;
}

void cf_audit_log_flush(struct cf_audit_log *log)
{
    pthread_mutex_lock(&log->lock);
    int rounds = 0;
    while ((log->count > 0 || log->inflight > 0) && rounds++ < 100) {
        struct timespec ts;
        cf_deadline_in(&ts, 100);
        pthread_cond_signal(&log->wake);
        pthread_cond_timedwait(&log->done, &log->lock, &ts);
    }
    pthread_mutex_unlock(&log->lock);
    /* the writer thread committed the events: a request's read scope must see them next */
    cf_store_read_refresh(log->store);
}

enum cf_rc cf_audit_log_list(struct cf_audit_log *log, const struct cf_audit_filter *filter,
                             struct cf_audit_event_list *out, struct cf_err *err)
{
    cf_audit_log_flush(log);
    enum cf_rc rc = cf_store_audit_list(log->store, filter, out, err);
    /* Events recorded before text was repaired on the way in may hold bytes that are not UTF-8:
     * shown with '?' like newer ones (the chain is verified from the store, not from this list). */
    for (size_t i = 0; rc == CF_OK && i < out->n; i++)
        repair_text(&out->items[i]);
    return rc;
}

enum cf_rc cf_audit_log_checkpoint(struct cf_audit_log *log, struct cf_err *err)
{
    struct cf_audit_event *last = malloc(sizeof(*last));
    if (!last)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    cf_audit_log_flush(log);
    enum cf_rc rc = cf_store_audit_get(log->store, 0, last, err);
    if (rc == CF_OK)
        rc = checkpoint_over(log, last, true, err);
    free(last);
    return rc;
}

enum cf_rc cf_audit_log_archive(struct cf_audit_log *log, const char *owner, int64_t *archived,
                                bool *more, struct cf_err *err)
{
    *archived = 0;
    *more = false;
    if (log->config.retention_ms <= 0 || !log->config.archive_dir)
        return CF_OK;
    /* What the writer committed before now is what the run sees. */
    int64_t now = now_us();
    struct cf_audit_archive_run run = {
        .store = log->store,
        .keys = log->keys,
        .dir = log->config.archive_dir,
        .owner = owner,
        .older_than_us = now - log->config.retention_ms * 1000,
        .now_us = now,
    };
    enum cf_rc rc = cf_audit_archive(&run, err);
    if (rc == CF_OK && run.archived > 0)
        cf_log_info("audit: archived events %lld..%lld (older than the retention) to '%s/"
                    "audit-%012lld-%012lld.jsonl.gz' and removed them from the store",
                    (long long)run.first_seq, (long long)run.last_seq, run.dir,
                    (long long)run.first_seq, (long long)run.last_seq);
    *archived = run.archived;
    *more = rc == CF_OK && run.more;
    return rc;
}

int64_t cf_audit_log_retention_ms(const struct cf_audit_log *log)
{
    return log && log->config.archive_dir ? log->config.retention_ms : 0;
}

bool cf_audit_log_fail_closed(const struct cf_audit_log *log)
{
    return log->config.fail_closed;
}

int64_t cf_audit_log_dropped(struct cf_audit_log *log)
{
    pthread_mutex_lock(&log->lock);
    int64_t n = log->dropped;
    pthread_mutex_unlock(&log->lock);
    return n;
}

void cf_audit_log_backlog(struct cf_audit_log *log, int64_t *waiting, int64_t *oldest_ms)
{
    pthread_mutex_lock(&log->lock);
    *waiting = (int64_t)log->count;
    *oldest_ms = 0;
    if (log->count > 0) {
        /* the ring keeps the writer's items until they finish: its head is the oldest event */
        int64_t age_us = now_us() - log->queue[log->head]->event.time_us;
        *oldest_ms = age_us > 0 ? age_us / 1000 : 0;
    }
    pthread_mutex_unlock(&log->lock);
}

void cf_audit_log_public_key(struct cf_audit_log *log, uint8_t out[CF_AUDIT_PUBLIC_KEY_BYTES])
{
    cf_audit_public_key(log->keys, out);
}

/* Compares the log with one head: the stored event it names, looked up. */
static enum cf_rc verify_head(struct cf_audit_log *log, struct cf_audit_verifier *v,
                              const struct cf_audit_checkpoint *head, const char *source,
                              struct cf_audit_event *event, bool *going, struct cf_err *err)
{
    if (!*going)
        return CF_OK;
    enum cf_rc got = cf_store_audit_get(log->store, head->event_seq, event, err);
    if (got != CF_OK && got != CF_ENOTFOUND)
        return got;
    *going = cf_audit_verify_head(v, head, source, got == CF_OK, event);
    return CF_OK;
}

static int by_seq_descending(const void *a, const void *b)
{
    int64_t x = ((const struct cf_audit_anchor *)a)->head.event_seq;
    int64_t y = ((const struct cf_audit_anchor *)b)->head.event_seq;
    return (x < y) - (x > y);
}

/* One verification, from the anchor it read (*anchor_seq: its event, 0 when none). */
static enum cf_rc verify_once(struct cf_audit_log *log, struct cf_audit_anchor *anchors, size_t n,
                              struct cf_audit_report *report, int64_t *anchor_seq,
                              struct cf_err *err)
{
    struct cf_store *st = log->store;
    struct cf_audit_verifier *v = malloc(sizeof(*v));
    struct cf_audit_event *event = malloc(sizeof(*event));
    struct cf_audit_checkpoint_list cps = {0};
    struct cf_audit_checkpoint file_head = {0}, last_head = {0};
    struct cf_err file_err;
    enum cf_rc file_rc = CF_ENOTFOUND;
    bool have_last_head = false, head_lost = false;
    enum cf_rc rc = v && event ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
    if (rc != CF_OK)
        goto out;
    cf_audit_log_flush(log);
    /* The heads before the events: a head is written after its event is committed, so every event
     * a head read now names is in the listing below. */
    cf_err_clear(&file_err);
    if (log->config.head_path)
        file_rc = head_read(log, &file_head, &file_err);
    pthread_mutex_lock(&log->head_lock);
    have_last_head = log->have_head;
    head_lost = log->head_lost;
    last_head = log->signed_head;
    pthread_mutex_unlock(&log->head_lock);
    struct cf_audit_checkpoint cut;
    bool anchored = false;
    rc = cf_store_audit_anchor_get(st, &cut, &anchored, err);
    if (rc != CF_OK)
        goto out;
    *anchor_seq = cut.event_seq;
    uint8_t public_key[CF_AUDIT_PUBLIC_KEY_BYTES];
    cf_audit_public_key(log->keys, public_key);
    bool going = true;
    if (anchored) {
        cf_audit_verify_begin_at(v, log->keys, &cut);
        if (!cf_audit_anchor_valid(public_key, &cut))
            going = cf_audit_verify_found(v, CF_AUDIT_BAD_HEAD, cut.event_seq,
                                          "the archive anchor (event %lld) has an invalid "
                                          "signature: it was edited in the database",
                                          (long long)cut.event_seq);
    } else {
        cf_audit_verify_begin(v, log->keys);
    }
    struct cf_audit_filter filter = {.limit = 1000, .after_seq = cut.event_seq};
    while (going) {
        struct cf_audit_event_list page = {0};
        rc = cf_store_audit_list(st, &filter, &page, err);
        if (rc != CF_OK)
            goto out;
        for (size_t i = 0; going && i < page.n; i++)
            going = cf_audit_verify_event(v, &page.items[i]);
        bool last_page = page.n < filter.limit;
        if (page.n)
            filter.after_seq = page.items[page.n - 1].seq;
        cf_audit_event_list_release(&page);
        if (last_page)
            break;
    }
    if (going)
        going = cf_audit_verify_end_events(v);
    if (going)
        rc = cf_store_audit_checkpoint_list(st, &cps, err);
    for (size_t i = 0; rc == CF_OK && going && i < cps.n; i++) {
        enum cf_rc got = cf_store_audit_get(st, cps.items[i].event_seq, event, err);
        if (got != CF_OK && got != CF_ENOTFOUND) {
            rc = got;
            break;
        }
        going = cf_audit_verify_checkpoint(v, &cps.items[i], got == CF_OK, event);
    }
    const char *path = log->config.head_path;
    if (rc == CF_OK && going && file_rc == CF_OK)
        rc = verify_head(log, v, &file_head, "the head file", event, &going, err);
    if (rc == CF_OK && going && have_last_head)
        rc = verify_head(log, v, &last_head, "the server's last head", event, &going, err);
    /* The highest first: a log cut and grown again is named by the range it lost. */
    if (n > 1)
        qsort(anchors, n, sizeof(*anchors), by_seq_descending);
    for (size_t i = 0; rc == CF_OK && going && i < n; i++) {
        const struct cf_audit_checkpoint *anchor = &anchors[i].head;
        if (anchors[i].is_signed && !cf_audit_head_valid(public_key, anchor))
            going = cf_audit_verify_found(v, CF_AUDIT_BAD_HEAD, anchor->event_seq,
                                          "the anchor for event %lld: its signature does not "
                                          "verify (forged, or damaged)",
                                          (long long)anchor->event_seq);
        rc = verify_head(log, v, anchor, "the anchor", event, &going, err);
    }
    if (rc == CF_OK && going && path && file_rc != CF_OK && file_rc != CF_ENOTFOUND)
        going = cf_audit_verify_found(v, CF_AUDIT_BAD_HEAD, 0,
                                      "the head file '%s' is not valid: %s", path, file_err.msg);
    /* Missing where one is expected: it was there (this server wrote or read it), or the log had
     * events when the server started without it. A log younger than its first checkpoint has
     * none yet. */
    if (rc == CF_OK && going && path && file_rc == CF_ENOTFOUND && (have_last_head || head_lost))
        going = cf_audit_verify_found(
            v, CF_AUDIT_HEAD_MISSING, v->report.last_seq,
            "the head file '%s' is missing: nothing outside the database vouches for the end "
            "of the log (event %lld); compare it with a stream or a noted head (--anchor), then "
            "write a new head file with `coffer audit checkpoint`",
            path, (long long)v->report.last_seq);
    if (rc == CF_OK)
        *report = v->report;
out:
    cf_audit_checkpoint_list_release(&cps);
    free(event);
    free(v);
    return rc;
}

enum cf_rc cf_audit_log_verify(struct cf_audit_log *log, struct cf_audit_anchor *anchors, size_t n,
                               struct cf_audit_report *report, struct cf_err *err)
{
    /* An archiving run that commits while the chain is read deletes events the walk expected:
     * when the anchor moved meanwhile, the finding is the walk's, not the log's; walk again. */
    for (int attempt = 0;; attempt++) {
        int64_t used = 0;
        struct cf_audit_checkpoint now;
        bool anchored = false;
        enum cf_rc rc = verify_once(log, anchors, n, report, &used, err);
        if (rc != CF_OK || report->finding == CF_AUDIT_OK || attempt == 2)
            return rc;
        rc = cf_store_audit_anchor_get(log->store, &now, &anchored, err);
        if (rc != CF_OK || now.event_seq == used)
            return rc;
    }
}
