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
