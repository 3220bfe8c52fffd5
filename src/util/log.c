/* stderr logger (see log.h). Each line is formatted into one buffer and written with a single
 * write() so that lines from concurrent threads never interleave; control characters in messages
 * are replaced so that one event is always exactly one line. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "util/time.h"
#include "util/banned.h"

static enum cf_log_level threshold = CF_LOG_INFO;

bool cf_log_set_level(const char *name)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, names[i]) == 0) {
            threshold = (enum cf_log_level)i;
            return true;
        }
    }
    return false;
}

void cf_log(enum cf_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (level < threshold)
        return;
    char line[2048];
    char now[CF_TIME_RFC3339_LEN];
    int n = snprintf(line, sizeof(line), "%s %s ", cf_time_format(cf_now_ms(), now), names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    /* Messages may carry request data (paths, user agents): a control character there could end the
     * line early and forge the next event, so each one is shown as a space. */
    for (size_t i = (size_t)n; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            line[i] = ' ';
    }
    line[len++] = '\n';
    ssize_t unused = write(STDERR_FILENO, line, len);
    (void)unused;
}
