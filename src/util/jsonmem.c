/* Wiping allocator for jansson (see jsonmem.h). Each block carries its size in a 16-byte header so that free
 * can zero exactly what was allocated. */
#include <stdlib.h>

#include <jansson.h>
#include <sodium.h>

#include "util/jsonmem.h"
#include "util/banned.h"

#define HEADER 16 /* keeps the user pointer 16-byte aligned */

static void *wiping_malloc(size_t size)
{
    if (size > SIZE_MAX - HEADER)
        return NULL;
    unsigned char *block = malloc(size + HEADER);
    if (!block)
        return NULL;
    *(size_t *)block = size;
    return block + HEADER;
}

static void wiping_free(void *ptr)
{
    if (!ptr)
        return;
    unsigned char *block = (unsigned char *)ptr - HEADER;
    sodium_memzero(block, *(size_t *)block + HEADER);
    free(block);
}

void cf_json_use_wiping_allocator(void)
{
    json_set_alloc_funcs(wiping_malloc, wiping_free);
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
