/* stderr logger (see log.h). Each line is built in one buffer and written with a single write() so
 * that lines from concurrent threads never interleave; every value goes through one escaper, so
 * that a value can neither end its line nor add a field of its own. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "util/time.h"
#include "util/banned.h"

#define LINE_MAX_BYTES 4096
#define MESSAGE_MAX_BYTES 2048
#define CUT_MARK "..." /* ends a value that did not fit */

static enum cf_log_level threshold = CF_LOG_INFO;
static bool json_lines; /* --log-format json */
static char *log_path;  /* --log-file; NULL: stderr as inherited */

/* Opens path and puts it in place of stderr. dup2 swaps the file behind descriptor 2 in one step,
 * so a concurrent write() goes whole to the old file or whole to the new one. */
static enum cf_rc attach(const char *path, struct cf_err *err)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return cf_err_set(err, CF_EIO, "cannot open the log file '%s': %s", path, strerror(errno));
    enum cf_rc rc = CF_OK;
    if (fd != STDERR_FILENO && dup2(fd, STDERR_FILENO) < 0)
        rc = cf_err_set(err, CF_EIO, "cannot use the log file '%s': %s", path, strerror(errno));
    if (fd != STDERR_FILENO)
        close(fd);
    return rc;
}

enum cf_rc cf_log_open_file(const char *path, struct cf_err *err)
{
    enum cf_rc rc = attach(path, err);
    if (rc == CF_OK && !(log_path = strdup(path)))
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    return rc;
}

enum cf_rc cf_log_reopen(struct cf_err *err)
{
    return log_path ? attach(log_path, err) : CF_OK;
}

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

bool cf_log_set_format(const char *name)
{
    if (strcmp(name, "json") != 0 && strcmp(name, "text") != 0)
        return false;
    json_lines = strcmp(name, "json") == 0;
    return true;
}

/* A line being built; one byte is always kept for the final newline, and in JSON one more for the
 * closing brace. */
struct line {
    char text[LINE_MAX_BYTES];
    size_t len;
};

static size_t room(const struct line *line)
{
    return sizeof(line->text) - 1 - (json_lines ? 1 : 0) - line->len;
}

static void put(struct line *line, const char *s, size_t n)
{
    if (n > room(line))
        n = room(line);
    memcpy(line->text + line->len, s, n);
    line->len += n;
}

static void put_str(struct line *line, const char *s)
{
    put(line, s, strlen(s));
}

/* A byte written as it is between quotes: printable ASCII but the quote and the backslash. */
static bool plain_byte(unsigned char c)
{
    return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\';
}

/* Appends s quoted and escaped; if it does not fit, as much as fits followed by CUT_MARK, and the
 * closing quote in any case. Runs of plain bytes are copied whole (a request's path and route
 * are on every request line). */
static void put_quoted(struct line *line, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const size_t closing = strlen(CUT_MARK) + 1;
    if (room(line) < closing + 1)
        return;
    put(line, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        size_t run = 0;
        while (plain_byte(p[run]))
            run++;
        if (run) {
            size_t fits = room(line) > closing ? room(line) - closing : 0;
            if (run > fits) {
                put(line, (const char *)p, fits);
                put_str(line, CUT_MARK);
                break;
            }
            put(line, (const char *)p, run);
            p += run;
            if (!*p)
                break;
        }
        char esc[4];
        size_t n = 0;
        if (json_lines && (*p < 0x20 || *p > 0x7e) && *p != '\n' && *p != '\r' && *p != '\t') {
            /* JSON has no \xNN: a byte outside printable ASCII is written as \u00NN */
            char u[7] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15], 0};
            if (room(line) < 6 + closing) {
                put_str(line, CUT_MARK);
                break;
            }
            put(line, u, 6);
            continue;
        }
        switch (*p) {
        case '"':
        case '\\':
            esc[n++] = '\\';
            esc[n++] = (char)*p;
            break;
        case '\n':
            esc[n++] = '\\';
            esc[n++] = 'n';
            break;
        case '\r':
            esc[n++] = '\\';
            esc[n++] = 'r';
            break;
        case '\t':
            esc[n++] = '\\';
            esc[n++] = 't';
            break;
        default:
            esc[n++] = '\\';
            esc[n++] = 'x';
            esc[n++] = hex[*p >> 4];
            esc[n++] = hex[*p & 15];
        }
        if (room(line) < n + closing) {
            put_str(line, CUT_MARK);
            break;
        }
        put(line, esc, n);
    }
    put(line, "\"", 1);
}

static bool is_bare_word(const char *s)
{
    if (!s || !*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))
            continue;
        switch (*p) {
        case '.':
        case '_':
        case ':':
        case '/':
        case '@':
        case '+':
        case '%':
        case ',':
        case '~':
        case '-':
            continue;
        default:
            return false;
        }
    }
    return true;
}

/* Writes v in decimal into out (at least 21 bytes), NUL-terminated; its length. */
static size_t format_int(char *out, long long v)
{
    char digits[24];
    size_t n = 0, len = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        out[len++] = '-';
    while (n)
        out[len++] = digits[--n];
    out[len] = '\0';
    return len;
}

/* Writes ms with two decimals (as "%.2f" does for the durations a log line carries). */
static void format_ms(char *out, size_t size, double ms)
{
    if (!(ms >= 0 && ms < 1e12)) {
        snprintf(out, size, "%.2f", ms);
        return;
    }
    long long hundredths = (long long)(ms * 100 + 0.5);
    size_t len = format_int(out, hundredths / 100);
    out[len++] = '.';
    out[len++] = (char)('0' + hundredths % 100 / 10);
    out[len++] = (char)('0' + hundredths % 10);
    out[len] = '\0';
}

static void put_field(struct line *line, const struct cf_log_field *field)
{
    char number[64];
    /* A field that cannot start with its key and a cut value is left out whole. */
    if (room(line) < strlen(field->key) + 5 + strlen("\"" CUT_MARK "\""))
        return;
    if (json_lines) {
        put(line, ",\"", 2);
        put_str(line, field->key);
        put(line, "\":", 2);
    } else {
        put(line, " ", 1);
        put_str(line, field->key);
        put(line, "=", 1);
    }
    switch (field->kind) {
    case CF_LOGV_WORD:
        if (json_lines) { /* JSON has no bare words */
            put_quoted(line, field->text);
            break;
        }
        /* anything else is written as text */
        if (is_bare_word(field->text) && strlen(field->text) < room(line))
            put_str(line, field->text);
        else
            put_quoted(line, field->text);
        break;
    case CF_LOGV_TEXT:
        put_quoted(line, field->text);
        break;
    case CF_LOGV_INT:
        put(line, number, format_int(number, field->num));
        break;
    case CF_LOGV_MS:
        format_ms(number, sizeof(number), field->ms);
        put_str(line, number);
        break;
    }
}

/* Starts a line with "<time> <level>". */
static void put_prefix(struct line *line, enum cf_log_level level)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char now[CF_TIME_RFC3339_LEN];
    line->len = 0;
    if (json_lines) {
        put_str(line, "{\"time\":\"");
        put_str(line, cf_time_format(cf_now_ms(), now));
        put_str(line, "\",\"level\":\"");
        put_str(line, names[level]);
        put(line, "\"", 1);
        return;
    }
    put_str(line, cf_time_format(cf_now_ms(), now));
    put(line, " ", 1);
    put_str(line, names[level]);
}

static void emit(struct line *line)
{
    if (json_lines)
        line->text[line->len++] = '}';
    line->text[line->len++] = '\n';
    ssize_t unused = write(STDERR_FILENO, line->text, line->len);
    (void)unused;
}

void cf_log_fields(enum cf_log_level level, const char *event, const struct cf_log_field *fields,
                   size_t n)
{
    if (level < threshold)
        return;
    struct line line;
    put_prefix(&line, level);
    if (json_lines) {
        put_str(&line, ",\"event\":\"");
        put_str(&line, event);
        put(&line, "\"", 1);
    } else {
        put(&line, " ", 1);
        put_str(&line, event);
    }
    for (size_t i = 0; i < n; i++)
        put_field(&line, &fields[i]);
    emit(&line);
}

void cf_log(enum cf_log_level level, const char *fmt, ...)
{
    if (level < threshold)
        return;
    char message[MESSAGE_MAX_BYTES];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    if (len >= (int)sizeof(message)) /* say that it was cut */
        memcpy(message + sizeof(message) - sizeof(CUT_MARK), CUT_MARK, strlen(CUT_MARK));
    struct line line;
    put_prefix(&line, level);
    put_field(&line, &CF_LOG_TEXT("msg", message));
    emit(&line);
}
