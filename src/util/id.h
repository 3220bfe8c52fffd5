/* Random identifiers: UUIDv4 strings for rows and short hex ids for requests. */
#ifndef CF_UTIL_ID_H
#define CF_UTIL_ID_H

#include <stdbool.h>
#include <stdint.h>

#define CF_UUID_LEN 37 /* 36 characters and the NUL */

/* Writes a random lower-case UUIDv4 into out. */
void cf_uuid_new(char out[CF_UUID_LEN]);

/* Writes a lower-case UUIDv7 (RFC 9562) for time_us (microseconds since the epoch) into out: the
 * Unix milliseconds in its first 48 bits, the microseconds within the millisecond in the 12 bits
 * after the version (the RFC's "increased clock precision"), then 62 random bits. */
void cf_uuid_v7(int64_t time_us, char out[CF_UUID_LEN]);

/* The first 8 bytes of every UUIDv7 of time_us (the time, the version), as cf_uuid_v7 makes them:
 * what a store can leave out of such an id and rebuild from the time. */
#define CF_UUID_V7_HEAD_BYTES 8
void cf_uuid_v7_head(int64_t time_us, uint8_t head[CF_UUID_V7_HEAD_BYTES]);

/* True when text is a UUID in canonical 8-4-4-4-12 hexadecimal form (any case). */
bool cf_uuid_valid(const char *text);

#define CF_REQID_LEN 17 /* 16 hex characters and the NUL */

/* Writes a random 16-hex-character request id into out. */
void cf_reqid_new(char out[CF_REQID_LEN]);

#endif
