/* Time: a clock in milliseconds, RFC 3339 timestamps and human durations ("90s", "15m", "12h",
 * "30d", "2w"). */
#ifndef CF_UTIL_TIME_H
#define CF_UTIL_TIME_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

/* Milliseconds since the Unix epoch (wall clock). */
int64_t cf_now_ms(void);
/* True in a test build (meson -Dtest_clock=true), whose cf_now_ms honours COFFER_TEST_CLOCK_OFFSET
 * (read once) and COFFER_TEST_CLOCK_FILE (a file holding an offset, read at every call, so that a
 * test moves a running server's clock); a release build never reads either. */
bool cf_test_clock_build(void);

/* A test build's crash point: when the environment variable named by variable holds where, logs
 * it and exits at once with status 137, as under kill -9, so that the integration tests can stop a
 * multi-step operation at each step (COFFER_TEST_ROTATION_CRASH_AT, COFFER_TEST_ARCHIVE_CRASH_AT).
 * Does nothing in a release build. */
void cf_test_crash_point(const char *variable, const char *where);

struct timespec;
/* Sets *ts to ms milliseconds from now on CLOCK_REALTIME: the deadline pthread_cond_timedwait
 * takes. */
void cf_deadline_in(struct timespec *ts, int64_t ms);

/* Monotonic microseconds, for measuring durations. */
int64_t cf_mono_us(void);

#define CF_TIME_RFC3339_LEN 64

/* Formats unix_ms as "2026-11-24T07:30:00.123Z" (UTC, always milliseconds). out must hold
 * CF_TIME_RFC3339_LEN bytes. Returns out. */
char *cf_time_format(int64_t unix_ms, char out[CF_TIME_RFC3339_LEN]);

/* Parses an RFC 3339 timestamp: date, 'T' or 't' or ' ', time, optional fraction, and 'Z' or a
 * +hh:mm offset. Years 1970..9999. CF_EINVAL with a message naming the problem otherwise. */
enum cf_rc cf_time_parse(const char *text, int64_t *unix_ms, struct cf_err *err);

/* Parses a duration: a positive integer followed by one unit of s, m, h, d, w (e.g. "180d"); a bare
 * integer means seconds. Result in seconds, at most 100 years. CF_EINVAL otherwise. */
enum cf_rc cf_duration_parse(const char *text, int64_t *seconds, struct cf_err *err);

#endif
