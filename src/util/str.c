/* String helpers (see str.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/str.h"
#include "util/banned.h"

bool cf_strlcpy(char *dst, const char *src, size_t size)
{
    size_t n = strlen(src);
    if (size == 0)
        return n == 0;
    size_t copy = n < size ? n : size - 1;
    memcpy(dst, src, copy);
    dst[copy] = '\0';
    return copy == n;
}

/* The length of the well-formed UTF-8 sequence at p (avail bytes there, avail > 0): 1 for ASCII,
 * 2-4 for a multi-byte one; 0 when the bytes there are not one (a stray or truncated continuation,
 * an overlong form, a surrogate, a code point above U+10FFFF). */
static size_t utf8_sequence(const unsigned char *p, size_t avail)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (avail < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((p[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[k] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static bool utf8_valid(const char *s, size_t n, bool allow_nul)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (p[i] == 0 && !allow_nul)
            return false;
        size_t len = utf8_sequence(p + i, n - i);
        if (len == 0)
            return false;
        i += len;
    }
    return true;
}

bool cf_utf8_valid(const char *s, size_t n)
{
    return utf8_valid(s, n, false);
}

bool cf_utf8_valid_allow_nul(const char *s, size_t n)
{
    return utf8_valid(s, n, true);
}

size_t cf_utf8_repair(char *s)
{
    unsigned char *p = (unsigned char *)s;
    size_t n = strlen(s), replaced = 0;
    /* ASCII, the usual case: one pass the compiler vectorizes */
    unsigned char high = 0;
    for (size_t i = 0; i < n; i++)
        high |= p[i];
    if (!(high & 0x80))
        return 0;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_sequence(p + i, n - i);
        if (len == 0) {
            p[i] = '?';
            replaced++;
            len = 1;
        }
        i += len;
    }
    return replaced;
}

bool cf_join(char *out, size_t size, char sep, const char *const *parts, size_t n)
{
    size_t at = 0;
    if (size == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *part = parts[i] ? parts[i] : "";
        size_t len = strlen(part), need = len + (i > 0);
        if (need >= size - at) {
            out[at] = '\0';
            return false;
        }
        if (i > 0)
            out[at++] = sep;
        memcpy(out + at, part, len);
        at += len;
    }
    out[at] = '\0';
    return true;
}

int cf_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool cf_parse_int64(const char *text, long long min, long long max, long long *out)
{
    if (!text || !*text || !((*text >= '0' && *text <= '9') || *text == '-'))
        return false;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (errno || !end || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

void cf_list_init(struct cf_list_iter *it, const char *text)
{
    it->next = text;
}

bool cf_list_next_raw(struct cf_list_iter *it, struct cf_str *item)
{
    const char *p = it->next;
    if (!p || !*p)
        return false;
    const char *comma = strchr(p, ',');
    item->p = p;
    item->n = comma ? (size_t)(comma - p) : strlen(p);
    it->next = comma ? comma + 1 : NULL;
    return true;
}

bool cf_list_next(struct cf_list_iter *it, struct cf_str *item)
{
    if (!cf_list_next_raw(it, item))
        return false;
    while (item->n && (item->p[0] == ' ' || item->p[0] == '\t')) {
        item->p++;
        item->n--;
    }
    while (item->n && (item->p[item->n - 1] == ' ' || item->p[item->n - 1] == '\t'))
        item->n--;
    return true;
}
