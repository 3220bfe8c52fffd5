/* Growable buffers with a hard maximum (see buf.h). Growth reallocates by hand rather than with
 * realloc() so that a buffer holding secrets never leaves an unwiped copy behind in freed memory.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "util/buf.h"
#include "util/banned.h"

#define CF_BUF_DEFAULT_MAX (64u * 1024u * 1024u)

void cf_buf_init(struct cf_buf *buf, size_t max)
{
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
    buf->max = max ? max : CF_BUF_DEFAULT_MAX;
}

/* Makes room for extra more bytes and the NUL. When that needs new memory, the old block is not
 * freed but handed back in *retired, so that a caller copying from it (bytes that point into the
 * buffer itself) can finish first; retire() wipes and frees it. */
static enum cf_rc grow(struct cf_buf *buf, size_t extra, bool exact, char **retired,
                       size_t *retired_cap)
{
    *retired = NULL;
    *retired_cap = 0;
    if (extra > buf->max || buf->len > buf->max - extra)
        return CF_ETOOLARGE;
    size_t need = buf->len + extra + 1;
    if (need <= buf->cap)
        return CF_OK;
    size_t cap = buf->cap ? buf->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (exact)
        cap = need;
    char *data = malloc(cap);
    if (!data)
        return CF_ENOMEM;
    if (buf->data)
        memcpy(data, buf->data, buf->len + 1);
    *retired = buf->data;
    *retired_cap = buf->cap;
    buf->data = data;
    buf->cap = cap;
    return CF_OK;
}

static void retire(char *old, size_t cap)
{
    if (old) {
        sodium_memzero(old, cap);
        free(old);
    }
}

enum cf_rc cf_buf_append(struct cf_buf *buf, const void *bytes, size_t n)
{
    char *old = NULL;
    size_t old_cap = 0;
    enum cf_rc rc = grow(buf, n, false, &old, &old_cap);
    if (rc != CF_OK)
        return rc;
    if (n)
        memmove(buf->data + buf->len, bytes, n); /* bytes may lie in the buffer, even in old */
    buf->len += n;
    buf->data[buf->len] = '\0';
    retire(old, old_cap);
    return CF_OK;
}

enum cf_rc cf_buf_reserve(struct cf_buf *buf, size_t n)
{
    char *old = NULL;
    size_t old_cap = 0;
    enum cf_rc rc = grow(buf, n, true, &old, &old_cap);
    if (rc == CF_OK && !buf->data) {
        rc = grow(buf, 0, true, &old, &old_cap); /* an empty buffer still gets its NUL */
    }
    if (rc == CF_OK && buf->data)
        buf->data[buf->len] = '\0';
    retire(old, old_cap);
    return rc;
}

enum cf_rc cf_buf_puts(struct cf_buf *buf, const char *text)
{
    return cf_buf_append(buf, text, strlen(text));
}

/* Formats into separate memory first (a stack buffer, or a heap one for long text) and then
 * appends: an argument may point into buf itself, which formatting straight into buf would
 * overwrite while reading it. The text may be secret, so both are wiped. */
enum cf_rc cf_buf_printf(struct cf_buf *buf, const char *fmt, ...)
{
    char small[256];
    char *text = small;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    enum cf_rc rc = CF_OK;
    if (n < 0) {
        rc = CF_EINTERNAL;
        goto out;
    }
    if ((size_t)n >= sizeof(small)) {
        if ((size_t)n > buf->max || buf->len > buf->max - (size_t)n) {
            rc = CF_ETOOLARGE;
            goto out;
        }
        text = malloc((size_t)n + 1);
        if (!text) {
            text = small;
            rc = CF_ENOMEM;
            goto out;
        }
        va_start(ap, fmt);
        vsnprintf(text, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    rc = cf_buf_append(buf, text, (size_t)n);
out:
    if (text != small) {
        sodium_memzero(text, (size_t)n + 1);
        free(text);
    }
    sodium_memzero(small, sizeof(small));
    return rc;
}

void cf_buf_reset(struct cf_buf *buf)
{
    buf->len = 0;
    if (buf->data)
        buf->data[0] = '\0';
}

void cf_buf_release(struct cf_buf *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}

void cf_buf_release_wipe(struct cf_buf *buf)
{
    if (buf->data)
        sodium_memzero(buf->data, buf->cap);
    cf_buf_release(buf);
}

void cf_buf_adopt(struct cf_buf *buf, char *data, size_t len, size_t size)
{
    cf_buf_init(buf, len < CF_BUF_DEFAULT_MAX ? 0 : len);
    buf->data = data;
    buf->len = len;
    buf->cap = size;
}

char *cf_buf_detach(struct cf_buf *buf, size_t *len)
{
    char *data = buf->data;
    if (len)
        *len = buf->len;
    if (!data) {
        data = calloc(1, 1);
    }
    buf->data = NULL;
    buf->len = buf->cap = 0;
    return data;
}
