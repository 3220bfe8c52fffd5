/* A wiping allocator: every block carries its size in a header, and free zeroes the whole block
 * before releasing it. libcurl and jansson keep their own copies of what passes through them
 * (request bodies, headers, every JSON string) and free them without clearing; routing their
 * allocations through these functions makes secret values in those copies be zeroed on release.
 * Thread-safe (it wraps malloc). */
#ifndef CF_UTIL_WIPEMEM_H
#define CF_UTIL_WIPEMEM_H

#include <stddef.h>

void *cf_wipe_malloc(size_t size);
void cf_wipe_free(void *ptr);
void *cf_wipe_realloc(void *ptr, size_t size);
void *cf_wipe_calloc(size_t count, size_t size);
char *cf_wipe_strdup(const char *text);

/* Installs the wiping allocator for jansson. Call once, before any JSON value exists. */
void cf_json_use_wiping_allocator(void);

/* Frees text returned by json_dumps() with jansson's current allocator (wiping it when the wiping
 * allocator is installed). Use this, not free(), for json_dumps results. NULL is a no-op. */
void cf_json_free_text(char *text);

#endif
