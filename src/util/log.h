/* Logging to stderr, one line per event: "<RFC 3339 time> <level> <message>". The level threshold
 * is frozen configuration set once at start (COFFER_LOG_LEVEL). Callers never pass secret values.
 * Thread-safe. */
#ifndef CF_UTIL_LOG_H
#define CF_UTIL_LOG_H

#include <stdbool.h>

enum cf_log_level { CF_LOG_DEBUG = 0, CF_LOG_INFO, CF_LOG_WARN, CF_LOG_ERROR };

/* Sets the threshold from "debug", "info", "warn" or "error"; returns false for anything else. */
bool cf_log_set_level(const char *name);

void cf_log(enum cf_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define cf_log_debug(...) cf_log(CF_LOG_DEBUG, __VA_ARGS__)
#define cf_log_info(...) cf_log(CF_LOG_INFO, __VA_ARGS__)
#define cf_log_warn(...) cf_log(CF_LOG_WARN, __VA_ARGS__)
#define cf_log_error(...) cf_log(CF_LOG_ERROR, __VA_ARGS__)

#endif
