/* Logging to stderr, one line per event, in logfmt after a time and a level:
 *
 *   <RFC 3339 time> <level> <event> key=value key="text value" ...
 *   <RFC 3339 time> <level> msg="free text"
 *
 * Every value is escaped so that no input can end a line or add a field: text values are always in
 * double quotes, with '"' and '\' backslash-escaped, newline, CR and tab as \n \r \t, and every
 * other control byte and every byte above 0x7e (so also UTF-8, which could hold bidirectional
 * controls or line separators) as \xNN. A value that no longer fits in the line is cut and ends in
 * "...". Anything taken from a request, a peer or the store goes in a text field (cf_log_event) or,
 * in a free-text message (cf_log), is quoted with the rest of the message. The level threshold is
 * frozen configuration set once at start (COFFER_LOG_LEVEL), as is the log file that may replace
 * stderr (--log-file). Callers never pass secret values.
 * Thread-safe: a line is written with a single write(). */
#ifndef CF_UTIL_LOG_H
#define CF_UTIL_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

enum cf_log_level { CF_LOG_DEBUG = 0, CF_LOG_INFO, CF_LOG_WARN, CF_LOG_ERROR };

/* How a field's value is written. */
enum cf_log_kind {
    CF_LOGV_TEXT, /* always quoted and escaped: anything that may come from outside */
    CF_LOGV_WORD, /* bare when made only of [A-Za-z0-9._:/@+%,~-] (ids, addresses, names of
                   * codes), otherwise quoted and escaped like text */
    CF_LOGV_INT,
    CF_LOGV_MS, /* a duration in milliseconds, two decimals */
};

/* One key=value of an event line; build it with CF_LOG_TEXT() and its siblings. key is a literal
 * made of [a-z_]; text may be NULL (written as ""). Borrowed for the call only. */
struct cf_log_field {
    const char *key;
    enum cf_log_kind kind;
    const char *text;
    long long num;
    double ms;
};

#define CF_LOG_TEXT(k, v) ((struct cf_log_field){.key = (k), .kind = CF_LOGV_TEXT, .text = (v)})
#define CF_LOG_WORD(k, v) ((struct cf_log_field){.key = (k), .kind = CF_LOGV_WORD, .text = (v)})
#define CF_LOG_INT(k, v)                                                                           \
    ((struct cf_log_field){.key = (k), .kind = CF_LOGV_INT, .num = (long long)(v)})
#define CF_LOG_MS(k, v) ((struct cf_log_field){.key = (k), .kind = CF_LOGV_MS, .ms = (double)(v)})

/* Sends the log (and everything else written to stderr) to path instead: opened for appending
 * (created with mode 0600) and put in place of stderr, so that a line is never written half to one
 * file and half to another. Call once at start, before other threads; path is copied. CF_EIO
 * naming the file. */
enum cf_rc cf_log_open_file(const char *path, struct cf_err *err);

/* Opens the log file again under its name, after logrotate moved it away (its postrotate step
 * sends SIGHUP): lines written meanwhile land in the old file, none is lost. Does nothing without
 * cf_log_open_file. CF_EIO naming the file when it cannot be opened (the old one stays in use). */
enum cf_rc cf_log_reopen(struct cf_err *err);

/* Sets the line format: "text" (logfmt, as above; the default) or "json": one JSON object per line,
 * {"time": ..., "level": ..., "event": ..., then each field under its key} or {"time", "level",
 * "msg"}; text and words are JSON strings escaped the same way (a byte outside printable ASCII as
 * \u00NN), numbers bare. Frozen configuration, set once at start; false for another name. */
bool cf_log_set_format(const char *name);

/* Sets the threshold from "debug", "info", "warn" or "error"; returns false for anything else. */
bool cf_log_set_level(const char *name);

/* Gathers lines from now on: each line is copied into a buffer that one writer thread writes out,
 * many lines per write() under load, in the order they were logged, each line whole, none lost;
 * warnings and errors are written before their call returns. For the server, which logs a line per
 * request: a write() each was the largest system-call cost of a cached read. Anything written to
 * stderr other than through this logger may come out ahead of lines still gathered. CF_ENOMEM or
 * CF_EINTERNAL (the thread); a no-op when running. Thread-safe. */
enum cf_rc cf_log_gather_start(struct cf_err *err);

/* Writes every gathered line and goes back to one write() per line. Thread-safe; a no-op when the
 * gatherer does not run. */
void cf_log_gather_stop(void);

/* Writes "<event> key=value..." (event is a literal word, e.g. "req") with the n fields in order.
 */
void cf_log_fields(enum cf_log_level level, const char *event, const struct cf_log_field *fields,
                   size_t n);

/* cf_log_event(level, "event", CF_LOG_TEXT("who", who), CF_LOG_INT("status", 200), ...) */
#define cf_log_event(level, event, ...)                                                            \
    cf_log_fields((level), (event), (const struct cf_log_field[]){__VA_ARGS__},                    \
                  sizeof((const struct cf_log_field[]){__VA_ARGS__}) /                             \
                      sizeof(struct cf_log_field))

/* Writes a free-text message the server composes as msg="<formatted text>", escaped as above. */
void cf_log(enum cf_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define cf_log_debug(...) cf_log(CF_LOG_DEBUG, __VA_ARGS__)
#define cf_log_info(...) cf_log(CF_LOG_INFO, __VA_ARGS__)
#define cf_log_warn(...) cf_log(CF_LOG_WARN, __VA_ARGS__)
#define cf_log_error(...) cf_log(CF_LOG_ERROR, __VA_ARGS__)

#endif
