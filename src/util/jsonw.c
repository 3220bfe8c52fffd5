/* Streaming JSON writer (see jsonw.h). */
#include <stdio.h>
#include <string.h>

#include "util/jsonw.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

void cf_jsonw_init(struct cf_jsonw *w, struct cf_buf *out)
{
    memset(w, 0, sizeof(*w));
    w->out = out;
    w->first[0] = true;
}

static void put(struct cf_jsonw *w, const char *bytes, size_t n)
{
    struct cf_buf *b = w->out;
    if (w->rc != CF_OK)
        return;
    if (b->data && b->len + n < b->cap && b->len + n <= b->max) { /* room already there */
        memcpy(b->data + b->len, bytes, n);
        b->len += n;
        b->data[b->len] = '\0';
        return;
    }
    w->rc = cf_buf_append(b, bytes, n);
}

/* Writes the separator a new value needs at the current level. */
static void value_start(struct cf_jsonw *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (!w->first[w->depth])
        put(w, ",", 1);
    w->first[w->depth] = false;
}

static void open_level(struct cf_jsonw *w, char c)
{
    value_start(w);
    if (w->depth + 1 >= CF_JSONW_DEPTH_MAX) {
        w->rc = w->rc ? w->rc : CF_EINVAL;
        return;
    }
    put(w, &c, 1);
    w->first[++w->depth] = true;
}

static void close_level(struct cf_jsonw *w, char c)
{
    if (w->depth == 0 || w->after_key) {
        w->rc = w->rc ? w->rc : CF_EINVAL;
        return;
    }
    w->depth--;
    put(w, &c, 1);
}

void cf_jsonw_object_begin(struct cf_jsonw *w)
{
    open_level(w, '{');
}

void cf_jsonw_object_end(struct cf_jsonw *w)
{
    close_level(w, '}');
}

void cf_jsonw_array_begin(struct cf_jsonw *w)
{
    open_level(w, '[');
}

void cf_jsonw_array_end(struct cf_jsonw *w)
{
    close_level(w, ']');
}

/* What each byte needs in a JSON string: nothing (0), an escape (1), or, above 0x7f, a UTF-8
 * check of the whole string afterwards (2). */
/* clang-format off */
static const unsigned char byte_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};
/* clang-format on */

static void escaped(struct cf_jsonw *w, const char *text, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char seen = 0; /* the classes of every byte, or'ed */
    put(w, "\"", 1);
    size_t run = 0; /* start of the pending run of bytes that need no escaping */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        unsigned char cls = byte_class[c];
        seen |= cls;
        if (cls != 1)
            continue;
        put(w, text + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t len = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            len = 6;
        }
        put(w, esc, len);
    }
    put(w, text + run, n - run);
    put(w, "\"", 1);
    /* Only text with bytes above 0x7f can be malformed UTF-8; checking it after the fact keeps the
     * common ASCII case to one pass. */
    if ((seen & 2) && w->rc == CF_OK && !cf_utf8_valid_allow_nul(text, n))
        w->rc = CF_EINVAL;
}

void cf_jsonw_key(struct cf_jsonw *w, const char *key)
{
    char text[CF_JSONW_KEY_MAX + 4];
    size_t n = strlen(key);
    size_t at = 0;
    if (w->depth == 0 || w->after_key || n > CF_JSONW_KEY_MAX) {
        w->rc = w->rc ? w->rc : CF_EINVAL;
        return;
    }
    /* The separator, the name and the colon in one write. Keys are the program's own plain names
     * (see jsonw.h), so they need no escaping. */
    if (!w->first[w->depth])
        text[at++] = ',';
    w->first[w->depth] = false;
    text[at++] = '"';
    memcpy(text + at, key, n);
    at += n;
    text[at++] = '"';
    text[at++] = ':';
    put(w, text, at);
    w->after_key = true;
}

void cf_jsonw_string(struct cf_jsonw *w, const char *text, size_t n)
{
    value_start(w);
    escaped(w, text, n);
}

void cf_jsonw_cstr(struct cf_jsonw *w, const char *text)
{
    cf_jsonw_string(w, text, strlen(text));
}

void cf_jsonw_int(struct cf_jsonw *w, long long value)
{
    char text[24];
    int n = snprintf(text, sizeof(text), "%lld", value);
    value_start(w);
    put(w, text, (size_t)n);
}

void cf_jsonw_bool(struct cf_jsonw *w, bool value)
{
    value_start(w);
    if (value)
        put(w, "true", 4);
    else
        put(w, "false", 5);
}

void cf_jsonw_null(struct cf_jsonw *w)
{
    value_start(w);
    put(w, "null", 4);
}

void cf_jsonw_time(struct cf_jsonw *w, int64_t unix_ms)
{
    if (unix_ms == 0) {
        cf_jsonw_null(w);
        return;
    }
    if (unix_ms != w->time_ms) {
        /* cf_time_format writes digits, '-', ':', 'T', '.' and 'Z' only: nothing to escape. */
        char text[CF_TIME_RFC3339_LEN];
        size_t n = strlen(cf_time_format(unix_ms, text));
        w->time_text[0] = '"';
        memcpy(w->time_text + 1, text, n);
        w->time_text[n + 1] = '"';
        w->time_len = n + 2;
        w->time_ms = unix_ms;
    }
    value_start(w);
    put(w, w->time_text, w->time_len);
}

void cf_jsonw_kstr(struct cf_jsonw *w, const char *key, const char *text)
{
    cf_jsonw_key(w, key);
    cf_jsonw_cstr(w, text);
}

void cf_jsonw_kint(struct cf_jsonw *w, const char *key, long long value)
{
    cf_jsonw_key(w, key);
    cf_jsonw_int(w, value);
}

void cf_jsonw_kbool(struct cf_jsonw *w, const char *key, bool value)
{
    cf_jsonw_key(w, key);
    cf_jsonw_bool(w, value);
}

void cf_jsonw_knull(struct cf_jsonw *w, const char *key)
{
    cf_jsonw_key(w, key);
    cf_jsonw_null(w);
}

void cf_jsonw_ktime(struct cf_jsonw *w, const char *key, int64_t unix_ms)
{
    cf_jsonw_key(w, key);
    cf_jsonw_time(w, unix_ms);
}

enum cf_rc cf_jsonw_finish(struct cf_jsonw *w)
{
    if (w->rc == CF_OK && (w->depth != 0 || w->after_key))
        w->rc = CF_EINVAL;
    return w->rc;
}
