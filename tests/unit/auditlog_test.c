/* The audit log writer (core/auditlog.h) over a real SQLite store: what a full queue keeps while
 * the writer is stuck on a batch. */
#include <pthread.h>
#include <sqlite3.h>
#include <time.h>

#include "core_fixture.h"

#include "core/auditlog.h"
#include "util/str.h"

TestSuite(auditlog, .init = fx_setup, .fini = fx_teardown);

static void record(struct cf_audit_log *log, int n)
{
    struct cf_audit_event e = {0};
    struct cf_err record_err;
    cf_strlcpy(e.actor_kind, "admin", sizeof(e.actor_kind));
    cf_strlcpy(e.action, "secrets.read", sizeof(e.action));
    cf_strlcpy(e.result, "ok", sizeof(e.result));
    snprintf(e.request_id, sizeof(e.request_id), "r%03d", n);
    cr_assert_eq(cf_audit_record(log, &e, &record_err), CF_OK, "%s", record_err.msg);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The writer takes event r000 and waits for the database, held by another connection for longer
 * than a record waits for room; meanwhile 20 more events arrive in a queue of 8. The event the
 * writer holds is kept, the oldest waiting ones make room, and what is stored is r000 then the
 * newest 7, in order, with a chain that verifies. */
Test(auditlog, a_full_queue_drops_the_oldest_waiting_events_and_keeps_the_writers)
{
    enum { QUEUE = 8, BURST = 20 };
    struct cf_audit_log_config config = {.queue_max = QUEUE, .full_wait_ms = 1};
    struct cf_audit_log *log = NULL;
    sqlite3 *holder = NULL;
    cr_assert_eq(cf_audit_log_open(fx_store, fx_keyring, &config, &log, &err), CF_OK, "%s",
                 err.msg);
    cr_assert_eq(sqlite3_open_v2(fx_db, &holder, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(holder, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    record(log, 0);
    sleep_ms(300); /* the writer takes it (after its 20 ms of coalescing) and waits for the lock */
    for (int i = 1; i <= BURST; i++)
        record(log, i);
    cr_assert_eq(sqlite3_exec(holder, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(holder);
    cf_audit_log_flush(log);

    struct cf_audit_filter filter = {.limit = 100, .action = "secrets.read"};
    struct cf_audit_event_list events = {0};
    cr_assert_eq(cf_audit_log_list(log, &filter, &events, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(events.n, QUEUE, "%zu events stored", events.n);
    cr_assert_str_eq(events.items[0].request_id, "r000");
    for (size_t i = 1; i < events.n; i++) {
        char want[8];
        snprintf(want, sizeof(want), "r%03d", (int)(BURST - (QUEUE - 1) + i));
        cr_assert_str_eq(events.items[i].request_id, want, "event %zu", i);
        cr_assert_eq(events.items[i].seq, events.items[i - 1].seq + 1);
    }
    cf_audit_event_list_release(&events);
    struct cf_audit_report report;
    cr_assert_eq(cf_audit_log_verify(log, NULL, 0, &report, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(report.finding, CF_AUDIT_OK, "%s", report.message);
    cr_assert_eq(cf_audit_log_dropped(log), BURST + 1 - QUEUE);
    cf_audit_log_close(log);
}

/* Every field of a recorded event reaches the store as it was given (cf_audit_record copies the
 * event field by field), with full-length text and bytes that are not UTF-8 repaired. */
Test(auditlog, a_recorded_event_keeps_every_field)
{
    struct cf_audit_log *log = NULL;
    cr_assert_eq(
        cf_audit_log_open(fx_store, fx_keyring, &(struct cf_audit_log_config){0}, &log, &err),
        CF_OK, "%s", err.msg);
    struct cf_audit_event *e = calloc(1, sizeof(*e));
    cr_assert_not_null(e);
    e->time_us = 1765000000123456;
    cf_strlcpy(e->actor_kind, "identity", sizeof(e->actor_kind));
    cf_strlcpy(e->actor_id, "0b7c5d2e-4a3f-4c1e-9d2b-1f2e3d4c5b6a", sizeof(e->actor_id));
    cf_strlcpy(e->actor_name, "deploy-prod", sizeof(e->actor_name));
    cf_strlcpy(e->source_ip, "10.0.0.7", sizeof(e->source_ip));
    memset(e->user_agent, 'u', sizeof(e->user_agent) - 1); /* as long as the field holds */
    e->user_agent[3] = (char)0xff;                         /* not UTF-8: becomes '?' */
    cf_strlcpy(e->action, "secrets.read", sizeof(e->action));
    cf_strlcpy(e->project_id, "7d1e2f3a-4b5c-4d6e-8f70-a1b2c3d4e5f6", sizeof(e->project_id));
    cf_strlcpy(e->environment, "prod", sizeof(e->environment));
    cf_strlcpy(e->path, "/backend/api", sizeof(e->path));
    cf_strlcpy(e->keys, "DB_PASSWORD,API_TOKEN", sizeof(e->keys));
    cf_strlcpy(e->result, "denied", sizeof(e->result));
    cf_strlcpy(e->reason, "no rule allows it", sizeof(e->reason));
    cf_strlcpy(e->request_id, "5f0c2a9e1b7d4c3a", sizeof(e->request_id));
    cr_assert_eq(cf_audit_record(log, e, &err), CF_OK, "%s", err.msg);
    struct cf_audit_filter filter = {.limit = 10, .action = "secrets.read"};
    struct cf_audit_event_list events = {0};
    cr_assert_eq(cf_audit_log_list(log, &filter, &events, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(events.n, 1);
    const struct cf_audit_event *got = &events.items[0];
    e->user_agent[3] = '?';
    cr_expect_eq(got->time_us, e->time_us);
    cr_expect_str_eq(got->actor_kind, e->actor_kind);
    cr_expect_str_eq(got->actor_id, e->actor_id);
    cr_expect_str_eq(got->actor_name, e->actor_name);
    cr_expect_str_eq(got->source_ip, e->source_ip);
    cr_expect_str_eq(got->user_agent, e->user_agent);
    cr_expect_str_eq(got->project_id, e->project_id);
    cr_expect_str_eq(got->environment, e->environment);
    cr_expect_str_eq(got->path, e->path);
    cr_expect_str_eq(got->keys, e->keys);
    cr_expect_str_eq(got->result, e->result);
    cr_expect_str_eq(got->reason, e->reason);
    cr_expect_str_eq(got->request_id, e->request_id);
    cr_expect_neq(got->id[0], '\0', "an id is given to an event recorded without one");
    cf_audit_event_list_release(&events);
    free(e);
    cf_audit_log_close(log);
}

struct holder {
    sqlite3 *db;
    long hold_ms;
};

static void *release_later(void *arg)
{
    struct holder *h = arg;
    sleep_ms(h->hold_ms);
    sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL);
    return NULL;
}

/* The same burst while the writer is only behind (the database is released within the time a
 * record waits for room): the records wait instead of dropping, and every event is stored. */
Test(auditlog, a_writer_that_is_behind_slows_records_down_and_loses_nothing)
{
    enum { QUEUE = 8, BURST = 20 };
    struct cf_audit_log_config config = {.queue_max = QUEUE, .full_wait_ms = 10000};
    struct cf_audit_log *log = NULL;
    struct holder h = {.hold_ms = 500};
    pthread_t releaser;
    cr_assert_eq(cf_audit_log_open(fx_store, fx_keyring, &config, &log, &err), CF_OK, "%s",
                 err.msg);
    cr_assert_eq(sqlite3_open_v2(fx_db, &h.db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h.db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    record(log, 0);
    sleep_ms(100); /* the writer takes it and waits for the lock */
    cr_assert_eq(pthread_create(&releaser, NULL, release_later, &h), 0);
    for (int i = 1; i <= BURST; i++)
        record(log, i);
    pthread_join(releaser, NULL);
    sqlite3_close(h.db);
    cf_audit_log_flush(log);

    struct cf_audit_filter filter = {.limit = 100, .action = "secrets.read"};
    struct cf_audit_event_list events = {0};
    cr_assert_eq(cf_audit_log_list(log, &filter, &events, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(events.n, BURST + 1, "%zu events stored", events.n);
    for (size_t i = 0; i < events.n; i++) {
        char want[8];
        snprintf(want, sizeof(want), "r%03d", (int)i);
        cr_assert_str_eq(events.items[i].request_id, want, "event %zu", i);
    }
    cf_audit_event_list_release(&events);
    cr_assert_eq(cf_audit_log_dropped(log), 0);
    cf_audit_log_close(log);
}

/* ---- archiving: the newest read of each secret ---- */

#include "core/audit.h"
#include "core/auditarchive.h"

enum { READ_EVENTS = 240, KEYS_PER_EVENT = 300, KEY_STEP = 100 };

/* More actors than the archiver's first table of them holds. */
#define READERS 97

static void chain_with(void *ctx, struct cf_audit_event *e)
{
    cf_audit_chain(ctx, e);
}

/* Event i: a list in "dev" (every third one in "prod") of the keys K_<i*KEY_STEP> .. +
 * KEYS_PER_EVENT, by one of READERS actors; every fifth repeats the event before it (same place,
 * same keys) under another actor, as a pipeline listing one folder again does. */
static void make_read(struct cf_audit_event *e, int i, const struct cf_audit_event *before)
{
    memset(e, 0, sizeof(*e));
    e->time_us = 1700000000000000LL + i;
    cf_strlcpy(e->actor_kind, "identity", sizeof(e->actor_kind));
    snprintf(e->actor_id, sizeof(e->actor_id), "actor-%d", i % READERS);
    snprintf(e->actor_name, sizeof(e->actor_name), "reader %d", i % READERS);
    cf_strlcpy(e->action, "secrets.list", sizeof(e->action));
    cf_strlcpy(e->result, "ok", sizeof(e->result));
    cf_strlcpy(e->project_id, "p", sizeof(e->project_id));
    cf_strlcpy(e->path, "/", sizeof(e->path));
    if (before && i % 5 == 0) {
        cf_strlcpy(e->environment, before->environment, sizeof(e->environment));
        cf_strlcpy(e->keys, before->keys, sizeof(e->keys));
        return;
    }
    cf_strlcpy(e->environment, i % 3 == 0 ? "prod" : "dev", sizeof(e->environment));
    size_t at = 0;
    for (int k = 0; k < KEYS_PER_EVENT; k++)
        at += (size_t)snprintf(e->keys + at, sizeof(e->keys) - at, "%sK_%d", k ? "," : "",
                               i * KEY_STEP + k);
    cr_assert_lt(at, sizeof(e->keys) - 1, "the keys must fit the event");
}

/* 240 list events naming 300 keys each (about 24,000 distinct secrets: more than one file keeps,
 * so archiving takes several), with repeats: after archiving everything but the newest event, each
 * secret's kept read is the newest archived event naming it, with that event's actor. */
Test(auditlog, archiving_keeps_the_newest_read_of_every_secret)
{
    uint8_t audit_key[CF_AUDIT_KEY_BYTES];
    randombytes_buf(audit_key, sizeof(audit_key));
    struct cf_audit_keys *keys = cf_audit_keys_new(audit_key);
    cr_assert_not_null(keys);
    struct cf_audit_event *events = calloc(READ_EVENTS, sizeof(*events));
    struct cf_audit_event **ptrs = calloc(READ_EVENTS, sizeof(*ptrs));
    cr_assert(events && ptrs);
    for (int i = 0; i < READ_EVENTS; i++) {
        make_read(&events[i], i, i ? &events[i - 1] : NULL);
        ptrs[i] = &events[i];
    }
    cr_assert_eq(cf_store_audit_append(fx_store, ptrs, READ_EVENTS, chain_with, keys, &err), CF_OK,
                 "%s", err.msg);

    char dir[300];
    snprintf(dir, sizeof(dir), "%s/archive", fx_dir);
    struct cf_audit_archive_run run = {.store = fx_store,
                                       .keys = keys,
                                       .dir = dir,
                                       .owner = "test",
                                       .older_than_us = INT64_MAX,
                                       .now_us = 1700000000000000LL + READ_EVENTS};
    int files = 0;
    do {
        cr_assert_eq(cf_audit_archive(&run, &err), CF_OK, "%s", err.msg);
        files += run.archived > 0;
    } while (run.more);
    cr_assert_eq(run.last_seq, READ_EVENTS - 1, "all but the newest event archived");
    cr_assert_gt(files, 1, "a file keeps at most 20,000 reads: archiving took several");

    /* What each secret's newest archived read is: events in order, the later one winning. */
    enum { MAX_KEY = READ_EVENTS * KEY_STEP + KEYS_PER_EVENT };
    static int newest[2][MAX_KEY]; /* 1 + the event's index; [0] dev, [1] prod */
    memset(newest, 0, sizeof(newest));
    size_t expected = 0;
    for (int i = 0; i < READ_EVENTS - 1; i++) {
        struct cf_list_iter it;
        struct cf_str key;
        int env = strcmp(events[i].environment, "prod") == 0;
        cf_list_init(&it, events[i].keys);
        while (cf_list_next_raw(&it, &key)) {
            int n = atoi(key.p + 2);
            cr_assert(n >= 0 && n < MAX_KEY);
            expected += newest[env][n] == 0;
            newest[env][n] = i + 1;
        }
    }
    struct cf_audit_last_read_list kept = {0};
    cr_assert_eq(cf_store_audit_last_reads(fx_store, "p", &kept, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(kept.n, expected, "one kept read per secret read");
    cr_assert_gt(kept.n, 20000);
    for (size_t r = 0; r < kept.n; r++) {
        const struct cf_audit_last_read *x = &kept.items[r];
        int env = strcmp(x->environment, "prod") == 0, n = atoi(x->key + 2);
        cr_assert(n >= 0 && n < MAX_KEY && newest[env][n] > 0, "%s/%s was never read",
                  x->environment, x->key);
        const struct cf_audit_event *e = &events[newest[env][n] - 1];
        cr_assert_eq(x->read_at_us, e->time_us, "%s/%s", x->environment, x->key);
        cr_assert_str_eq(x->actor_id, e->actor_id, "%s/%s", x->environment, x->key);
        cr_assert_str_eq(x->actor_name, e->actor_name, "%s/%s", x->environment, x->key);
        cr_assert_str_eq(x->actor_kind, "identity");
    }
    cf_audit_last_read_list_release(&kept);
    free(ptrs);
    free(events);
    cf_audit_keys_free(keys);
}
