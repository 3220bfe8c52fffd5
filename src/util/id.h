/* Random identifiers: UUIDv4 strings for rows and short hex ids for requests. */
#ifndef CF_UTIL_ID_H
#define CF_UTIL_ID_H

#include <stdbool.h>

#define CF_UUID_LEN 37 /* 36 characters and the NUL */

/* Writes a random lower-case UUIDv4 into out. */
void cf_uuid_new(char out[CF_UUID_LEN]);

/* True when text is a UUID in canonical 8-4-4-4-12 hexadecimal form (any case). */
bool cf_uuid_valid(const char *text);

#define CF_REQID_LEN 17 /* 16 hex characters and the NUL */

/* Writes a random 16-hex-character request id into out. */
void cf_reqid_new(char out[CF_REQID_LEN]);

#endif
