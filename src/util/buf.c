/* Growable buffers with a hard maximum (see buf.h). Growth reallocates by hand rather than with realloc()
 * so that a buffer holding secrets never leaves an unwiped copy behind in freed memory. */
#include <stdarg.h>
#include <stdint.h>
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

static enum cf_rc grow(struct cf_buf *buf, size_t extra)
{
    if (extra > buf->max || buf->len > buf->max - extra)
        return CF_ETOOLARGE;
    size_t need = buf->len + extra + 1;
    if (need <= buf->cap)
        return CF_OK;
    size_t cap = buf->cap ? buf->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *data = malloc(cap);
    if (!data)
        return CF_ENOMEM;
    if (buf->data) {
        memcpy(data, buf->data, buf->len + 1);
        sodium_memzero(buf->data, buf->cap);
        free(buf->data);
    }
    buf->data = data;
    buf->cap = cap;
    return CF_OK;
}

enum cf_rc cf_buf_append(struct cf_buf *buf, const void *bytes, size_t n)
{
    /* bytes may point into the buffer itself (appending a slice of it): grow() frees the old
     * memory, so remember the offset and copy from the new memory. */
    const char *src = bytes;
    uintptr_t at = (uintptr_t)src, base = (uintptr_t)buf->data;
    bool inside = buf->data && n && at >= base && at - base < buf->cap;
    size_t offset = inside ? (size_t)(at - base) : 0;
    enum cf_rc rc = grow(buf, n);
    if (rc != CF_OK)
        return rc;
    if (inside)
        src = buf->data + offset;
    if (n)
        memmove(buf->data + buf->len, src, n);
    buf->len += n;
    buf->data[buf->len] = '\0';
    return CF_OK;
}

enum cf_rc cf_buf_puts(struct cf_buf *buf, const char *text)
{
    return cf_buf_append(buf, text, strlen(text));
}

enum cf_rc cf_buf_printf(struct cf_buf *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return CF_EINTERNAL;
    enum cf_rc rc = grow(buf, (size_t)n);
    if (rc != CF_OK)
        return rc;
    va_start(ap, fmt);
    vsnprintf(buf->data + buf->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf->len += (size_t)n;
    return CF_OK;
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
