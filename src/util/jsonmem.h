/* A jansson allocator that wipes memory before freeing it. JSON documents carry secret values (request bodies,
 * responses, CLI output), and jansson frees without clearing; installing this once at start-up makes every
 * JSON string and buffer be zeroed on release. */
#ifndef CF_UTIL_JSONMEM_H
#define CF_UTIL_JSONMEM_H

/* Installs the wiping allocator for jansson. Call once, before any JSON value exists. */
void cf_json_use_wiping_allocator(void);

/* Frees text returned by json_dumps() with jansson's current allocator (wiping it when the wiping allocator is
 * installed). Use this, not free(), for json_dumps results. NULL is a no-op. */
void cf_json_free_text(char *text);

#endif
