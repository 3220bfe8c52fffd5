/* The wiping allocator (see wipemem.h). The header is as large as the strictest alignment, so the
 * returned pointer stays suitably aligned for any type. */
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "util/wipemem.h"
#include "util/banned.h"

#define WIPE_HDR (alignof(max_align_t) > sizeof(size_t) ? alignof(max_align_t) : sizeof(size_t))

void *cf_wipe_malloc(size_t size)
{
    if (size > SIZE_MAX - WIPE_HDR)
        return NULL;
    unsigned char *block = malloc(size + WIPE_HDR);
    if (!block)
        return NULL;
    memcpy(block, &size, sizeof(size));
    return block + WIPE_HDR;
}

void cf_wipe_free(void *ptr)
{
    if (!ptr)
        return;
    unsigned char *block = (unsigned char *)ptr - WIPE_HDR;
    size_t size;
    memcpy(&size, block, sizeof(size));
    sodium_memzero(block, size + WIPE_HDR);
    free(block);
}

void *cf_wipe_realloc(void *ptr, size_t size)
{
    if (!ptr)
        return cf_wipe_malloc(size);
    unsigned char *block = (unsigned char *)ptr - WIPE_HDR;
    size_t old_size;
    memcpy(&old_size, block, sizeof(old_size));
    void *fresh = cf_wipe_malloc(size);
    if (!fresh)
        return NULL;
    memcpy(fresh, ptr, old_size < size ? old_size : size);
    cf_wipe_free(ptr);
    return fresh;
}

void *cf_wipe_calloc(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *ptr = cf_wipe_malloc(count * size);
    if (ptr)
        memset(ptr, 0, count * size);
    return ptr;
}

char *cf_wipe_strdup(const char *text)
{
    size_t len = strlen(text);
    char *copy = cf_wipe_malloc(len + 1);
    if (copy)
        memcpy(copy, text, len + 1);
    return copy;
}

void cf_json_use_wiping_allocator(void)
{
    json_set_alloc_funcs(cf_wipe_malloc, cf_wipe_free);
}

void cf_json_free_text(char *text)
{
    json_malloc_t malloc_fn;
    json_free_t free_fn;
    if (!text)
        return;
    json_get_alloc_funcs(&malloc_fn, &free_fn);
    free_fn(text);
}
