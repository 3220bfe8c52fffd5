/* A growable byte buffer with a hard maximum. Always NUL-terminated after its contents (the
 * terminator is not counted in len), so text can be used as a C string. A buffer that may hold
 * secret bytes is released with cf_buf_release_wipe, which zeroes every byte it ever held before
 * freeing. */
#ifndef CF_UTIL_BUF_H
#define CF_UTIL_BUF_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

struct cf_buf {
    char *data; /* NULL until the first append */
    size_t len;
    size_t cap;
    size_t max; /* appends that would exceed this fail with CF_ETOOLARGE; 0 means 64 MiB */
};

/* Initialises an empty buffer that may grow to max bytes (0: 64 MiB). */
void cf_buf_init(struct cf_buf *buf, size_t max);

/* Appends n bytes; CF_ETOOLARGE past max, CF_ENOMEM on allocation failure (contents unchanged
 * then). */
enum cf_rc cf_buf_append(struct cf_buf *buf, const void *bytes, size_t n);
enum cf_rc cf_buf_puts(struct cf_buf *buf, const char *text);
enum cf_rc cf_buf_printf(struct cf_buf *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Makes room for n more bytes without changing the contents (to avoid repeated growth on hot
 * paths). When that needs new memory, exactly len + n bytes (and the NUL) are allocated. */
enum cf_rc cf_buf_reserve(struct cf_buf *buf, size_t n);

/* Empties the buffer, keeping its memory. */
void cf_buf_reset(struct cf_buf *buf);

/* Frees the memory. cf_buf_release_wipe zeroes it first (for secret contents). Both leave an empty
 * buffer. */
void cf_buf_release(struct cf_buf *buf);
void cf_buf_release_wipe(struct cf_buf *buf);

/* Makes buf (released or never used) hold len bytes at data, taking the block: data was
 * allocated with malloc, size bytes, and data[len] is the NUL (len < size). Released like any
 * buffer's (with cf_buf_release_wipe, every one of the size bytes is zeroed). */
void cf_buf_adopt(struct cf_buf *buf, char *data, size_t len, size_t size);

/* Hands the contents to the caller (free() it; NUL-terminated) and leaves the buffer empty. Never
 * NULL on success: an empty buffer yields "". Returns NULL only when out of memory. */
char *cf_buf_detach(struct cf_buf *buf, size_t *len);

#endif
