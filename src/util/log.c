/* stderr logger (see log.h). Each line is built in one buffer and written with a single write() so
 * that lines from concurrent threads never interleave; every value goes through one escaper, so
 * that a value can neither end its line nor add a field of its own. While the gatherer runs (the
 * server, between its "listening on" line and its stop), lines are copied into a shared buffer and
 * one thread writes what has gathered with one write(). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

/* Writes all of text to stderr (a write may take part of it; one interrupted is tried again). */
static void write_all(const char *text, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, text, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* nowhere to report it: the log is the place it would go */
        text += n;
        len -= (size_t)n;
    }
}

/* The gatherer (cf_log_gather_start). Lines are appended to the filling half of a double buffer;
 * the writer thread swaps the halves and writes the full one while the next fills. The first line
 * into an empty half wakes the writer, which then gathers for GATHER_MS more (or until the half is
 * half full, or a warning waits) and writes everything with one write(): at most GATHER_MS late
 * at low load, one wake-up and one system call for many lines under load (waking it for every
 * line costs more than the write() it saves). A line that finds the half full waits for room
 * (nothing is dropped or reordered); a warning or an error waits until it is written, so that it
 * is out by the time its caller goes on, as without the gatherer. Global like the rest of the
 * logger's state: there is one stderr. */
#define GATHER_BYTES (128 * 1024)
#define GATHER_MS 1
static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;    /* to the writer: lines came, a warning waits, or stop */
    pthread_cond_t written; /* from the writer: a half was written (room, and a waiting warning) */
    char *half[2];
    size_t len;           /* bytes in half[filling] */
    int filling;          /* the half lines go to */
    uint64_t taken, done; /* halves the writer took, and wrote */
    int urgent;           /* warnings waiting to be written */
    bool running, stopping;
    pthread_t thread;
} gather = {.lock = PTHREAD_MUTEX_INITIALIZER,
            .wake = PTHREAD_COND_INITIALIZER,
            .written = PTHREAD_COND_INITIALIZER};

static void *gather_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&gather.lock);
    for (;;) {
        while (gather.len == 0 && !gather.stopping)
            pthread_cond_wait(&gather.wake, &gather.lock);
        if (gather.len == 0)
            break; /* stopping, and everything is written */
        struct timespec until;
        cf_deadline_in(&until, GATHER_MS);
        while (!gather.stopping && !gather.urgent && gather.len < GATHER_BYTES / 2)
            if (pthread_cond_timedwait(&gather.wake, &gather.lock, &until) == ETIMEDOUT)
                break;
        char *full = gather.half[gather.filling];
        size_t len = gather.len;
        gather.filling ^= 1;
        gather.len = 0;
        gather.taken++;
        pthread_mutex_unlock(&gather.lock);
        write_all(full, len);
        pthread_mutex_lock(&gather.lock);
        gather.done++;
        pthread_cond_broadcast(&gather.written);
    }
    /* Under the lock that found nothing left: from here every line is written by its caller, after
     * every gathered one. */
    gather.running = false;
    pthread_cond_broadcast(&gather.written);
    pthread_mutex_unlock(&gather.lock);
    return NULL;
}

enum cf_rc cf_log_gather_start(struct cf_err *err)
{
    pthread_mutex_lock(&gather.lock);
    enum cf_rc rc = CF_OK;
    if (gather.running || gather.half[0])
        goto out; /* running (or a stop not yet joined) */
    if (!(gather.half[0] = malloc(2 * GATHER_BYTES))) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    gather.half[1] = gather.half[0] + GATHER_BYTES;
    gather.len = 0;
    gather.filling = 0;
    gather.stopping = false;
    gather.running = pthread_create(&gather.thread, NULL, gather_main, NULL) == 0;
    if (!gather.running) {
        free(gather.half[0]);
        gather.half[0] = gather.half[1] = NULL;
        rc = cf_err_set(err, CF_EINTERNAL, "cannot start the log writer thread");
    }
out:
    pthread_mutex_unlock(&gather.lock);
    return rc;
}

void cf_log_gather_stop(void)
{
    pthread_mutex_lock(&gather.lock);
    if (!gather.running) {
        pthread_mutex_unlock(&gather.lock);
        return;
    }
    gather.stopping = true;
    pthread_cond_signal(&gather.wake);
    pthread_mutex_unlock(&gather.lock);
    pthread_join(gather.thread, NULL); /* it writes what is left first */
    pthread_mutex_lock(&gather.lock);
    free(gather.half[0]);
    gather.half[0] = gather.half[1] = NULL;
    pthread_mutex_unlock(&gather.lock);
}

/* Hands a finished line to the gatherer; false when it does not run (the caller writes it). */
static bool gathered(const struct line *line, enum cf_log_level level)
{
    pthread_mutex_lock(&gather.lock);
    while (gather.running && gather.len + line->len > GATHER_BYTES)
        pthread_cond_wait(&gather.written, &gather.lock);
    if (!gather.running) {
        pthread_mutex_unlock(&gather.lock);
        return false;
    }
    memcpy(gather.half[gather.filling] + gather.len, line->text, line->len);
    bool crossed = gather.len < GATHER_BYTES / 2 && gather.len + line->len >= GATHER_BYTES / 2;
    if (gather.len == 0 || crossed || level >= CF_LOG_WARN)
        pthread_cond_signal(&gather.wake);
    gather.len += line->len;
    if (level >= CF_LOG_WARN) {
        /* the half holding this line is the next one taken: it is out once done counts it */
        uint64_t half = gather.taken + 1;
        gather.urgent++;
        while (gather.running && gather.done < half)
            pthread_cond_wait(&gather.written, &gather.lock);
        gather.urgent--;
    }
    pthread_mutex_unlock(&gather.lock);
    return true;
}

static void emit(struct line *line, enum cf_log_level level)
{
    if (json_lines)
        line->text[line->len++] = '}';
    line->text[line->len++] = '\n';
    if (!gathered(line, level))
        write_all(line->text, line->len);
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
    emit(&line, level);
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
    emit(&line, level);
}
