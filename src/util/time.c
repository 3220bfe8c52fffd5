/* Clock, RFC 3339 and duration helpers (see time.h). Parsing is strict and locale-independent. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/time.h"
#include "util/banned.h"

#ifdef CF_TEST_CLOCK
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* Test builds only (meson -Dtest_clock=true). Two offsets move every reading of the clock, each a
 * duration with an optional sign ("9d", "-2h"; "0" for none):
 * - COFFER_TEST_CLOCK_OFFSET, read once, for a process that starts in another time;
 * - COFFER_TEST_CLOCK_FILE, the name of a file holding one (or nothing, also no offset), read at
 *   every reading of the clock, so that a test moves a running server's clock by replacing the
 *   file (written elsewhere and renamed over it, so that no reader sees it half written).
 * Anything else there (a bad offset, a file that cannot be read) ends the process (status 2), so
 * that a test that meant to travel in time cannot silently run at the real time. The file is read
 * from any thread while the server runs: _exit, so that no exit handler runs under the feet of the
 * other threads. */
static int64_t offset_ms(const char *name, const char *text, void (*quit)(int))
{
    int64_t value = 0;
    int sign = 1;
    if (!*text || strcmp(text, "0") == 0)
        return 0;
    if (*text == '-' || *text == '+')
        sign = *text++ == '-' ? -1 : 1;
    struct cf_err err;
    cf_err_clear(&err);
    if (cf_duration_parse(text, &value, &err) != CF_OK) {
        fprintf(stderr, "coffer: %s: %s\n", name, err.msg);
        quit(2);
    }
    return value * sign * 1000;
}

static int64_t env_offset_ms(void)
{
    static int64_t offset;
    static int state; /* 0 unread, 1 read; a race only reads the same value twice */
    if (__atomic_load_n(&state, __ATOMIC_ACQUIRE))
        return offset;
    const char *text = getenv("COFFER_TEST_CLOCK_OFFSET");
    offset = text ? offset_ms("COFFER_TEST_CLOCK_OFFSET", text, exit) : 0;
    __atomic_store_n(&state, 1, __ATOMIC_RELEASE);
    return offset;
}

static int64_t file_offset_ms(void)
{
    const char *path = getenv("COFFER_TEST_CLOCK_FILE");
    char text[64];
    ssize_t n = -1;
    int read_errno = 0;
    if (!path || !*path)
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
        n = read(fd, text, sizeof(text));
    read_errno = errno;
    if (fd >= 0)
        close(fd);
    if (n < 0 || (size_t)n == sizeof(text)) {
        fprintf(stderr, "coffer: COFFER_TEST_CLOCK_FILE: cannot read an offset from '%s': %s\n",
                path, n < 0 ? strerror(read_errno) : "too long");
        _exit(2);
    }
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
        n--;
    text[n] = '\0';
    return offset_ms("COFFER_TEST_CLOCK_FILE", text, _exit);
}
#endif

void cf_test_crash_point(const char *variable, const char *where)
{
#ifdef CF_TEST_CLOCK
    const char *at = getenv(variable);
    if (at && strcmp(at, where) == 0) {
        cf_log(CF_LOG_WARN, "test build: exiting at crash point '%s' (%s)", where, variable);
        _exit(137);
    }
#else
    (void)variable;
    (void)where;
#endif
}

bool cf_test_clock_build(void)
{
#ifdef CF_TEST_CLOCK
    return true;
#else
    return false;
#endif
}

/* The one clock of expiry, token and notification logic. */
int64_t cf_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
#ifdef CF_TEST_CLOCK
    now += env_offset_ms() + file_offset_ms();
#endif
    return now;
}

void cf_deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

int64_t cf_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (Howard Hinnant's algorithm).
 */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* The inverse of days_from_civil (same algorithm family). */
static void civil_from_days(int64_t z, int *year, unsigned *month, unsigned *day)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *day = doy - (153 * mp + 2) / 5 + 1;
    *month = mp < 10 ? mp + 3 : mp - 9;
    *year = (int)(yoe + era * 400 + (*month <= 2));
}

static char *put_digits(char *p, unsigned value, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + value % 10);
        value /= 10;
    }
    return p + width;
}

/* Formatted by hand rather than with gmtime_r and snprintf: it runs twice per secret in every list
 * response. Years outside 0..9999 are clamped (RFC 3339 cannot express them). */
char *cf_time_format(int64_t unix_ms, char out[CF_TIME_RFC3339_LEN])
{
    int64_t secs = unix_ms / 1000;
    int ms = (int)(unix_ms % 1000);
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    int64_t days = secs / 86400;
    int64_t rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days -= 1;
    }
    int year;
    unsigned month, day;
    civil_from_days(days, &year, &month, &day);
    if (year < 0)
        year = 0;
    if (year > 9999)
        year = 9999;
    char *p = out;
    p = put_digits(p, (unsigned)year, 4);
    *p++ = '-';
    p = put_digits(p, month, 2);
    *p++ = '-';
    p = put_digits(p, day, 2);
    *p++ = 'T';
    p = put_digits(p, (unsigned)(rem / 3600), 2);
    *p++ = ':';
    p = put_digits(p, (unsigned)(rem / 60 % 60), 2);
    *p++ = ':';
    p = put_digits(p, (unsigned)(rem % 60), 2);
    *p++ = '.';
    p = put_digits(p, (unsigned)ms, 3);
    *p++ = 'Z';
    *p = '\0';
    return out;
}

static bool digits(const char *p, int n, int *value)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *value = v;
    return true;
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

enum cf_rc cf_time_parse(const char *text, int64_t *unix_ms, struct cf_err *err)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int year, month, day, hour, minute, second, ms = 0;
    const char *p = text;

    if (!text || strlen(text) < 20 || !digits(p, 4, &year) || p[4] != '-' ||
        !digits(p + 5, 2, &month) || p[7] != '-' || !digits(p + 8, 2, &day) ||
        (p[10] != 'T' && p[10] != 't' && p[10] != ' ') || !digits(p + 11, 2, &hour) ||
        p[13] != ':' || !digits(p + 14, 2, &minute) || p[16] != ':' || !digits(p + 17, 2, &second))
        goto bad;
    if (year < 1970 || month < 1 || month > 12 || day < 1 ||
        day > mdays[month - 1] + (month == 2 && leap(year)) || hour > 23 || minute > 59 ||
        second > 60)
        goto bad;
    if (second == 60)
        second = 59; /* a leap second is clamped, as POSIX time cannot represent it */
    p += 19;
    if (*p == '.') {
        int n = 0;
        p++;
        while (*p >= '0' && *p <= '9') {
            if (n < 3)
                ms = ms * 10 + (*p - '0');
            n++;
            p++;
        }
        if (n == 0 || n > 9)
            goto bad;
        for (; n < 3; n++)
            ms *= 10;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
            goto bad;
        offset_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        goto bad;
    }
    if (*p != '\0')
        goto bad;

    int64_t days = days_from_civil(year, (unsigned)month, (unsigned)day);
    int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - (int64_t)offset_min * 60;
    /* 1970-01-01T00:30:00+01:00 or 9999-12-31T23:00:00-01:01: times that cf_time_format could
     * not give back (found by fuzz/fuzz_time.c) */
    if (secs < 0)
        return cf_err_set(err, CF_EINVAL, "invalid timestamp: before 1970-01-01T00:00:00Z");
    if (secs > 253402300799) /* 9999-12-31T23:59:59Z */
        return cf_err_set(err, CF_EINVAL, "invalid timestamp: after 9999-12-31T23:59:59Z");
    *unix_ms = secs * 1000 + ms;
    return CF_OK;
bad:
    return cf_err_set(err, CF_EINVAL,
                      "invalid timestamp: expected RFC 3339 such as 2026-12-31T22:59:59Z");
}

enum cf_rc cf_duration_parse(const char *text, int64_t *seconds, struct cf_err *err)
{
    const int64_t limit = 100LL * 366 * 86400;
    int64_t value = 0;
    const char *p = text;

    if (!text || !*text)
        goto bad;
    while (*p >= '0' && *p <= '9') {
        value = value * 10 + (*p - '0');
        if (value > limit)
            goto bad;
        p++;
    }
    if (p == text)
        goto bad;
    int64_t unit = 1;
    switch (*p) {
    case '\0':
        break;
    case 's':
        unit = 1;
        p++;
        break;
    case 'm':
        unit = 60;
        p++;
        break;
    case 'h':
        unit = 3600;
        p++;
        break;
    case 'd':
        unit = 86400;
        p++;
        break;
    case 'w':
        unit = 7 * 86400;
        p++;
        break;
    default:
        goto bad;
    }
    if (*p != '\0' || value == 0 || value > limit / unit)
        goto bad;
    *seconds = value * unit;
    return CF_OK;
bad:
    return cf_err_set(err, CF_EINVAL,
                      "invalid duration: expected a positive number with a unit s, m, h, d or w "
                      "(e.g. 90s, 15m, 12h, 30d), at most 100 years");
}
