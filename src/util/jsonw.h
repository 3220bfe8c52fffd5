/* A streaming JSON writer into a struct cf_buf, for the responses on Coffer's hot path (secret
 * lists).
 *
 * Why not jansson here: building a json_t tree of 100 secrets and dumping it costs ~575 µs per
 * request on the benchmark machine (hash-table inserts per field, then a per-character UTF-8 walk
 * when dumping), which alone caps listing at ~1,700 req/s per core. Writing the same bytes straight
 * into a buffer costs a few tens of µs. jansson stays the parser and the builder of every other
 * response. This writer only encodes: strings are escaped per RFC 8259 (quote, backslash, control
 * characters) and must be valid UTF-8 (checked).
 *
 * Errors are sticky: after the first failure every call is a no-op and cf_jsonw_finish reports it.
 */
#ifndef CF_UTIL_JSONW_H
#define CF_UTIL_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/time.h"

#define CF_JSONW_DEPTH_MAX 32

/* Room for a time as written: an RFC 3339 string and its quotes. */
#define CF_JSONW_TIME_MAX (CF_TIME_RFC3339_LEN + 2)

struct cf_jsonw {
    struct cf_buf *out;
    enum cf_rc rc;
    int depth;
    bool first[CF_JSONW_DEPTH_MAX]; /* no element written yet at this level */
    bool after_key;
    /* The last time written and its quoted text: the secrets of one list share a handful of times
     * (those of the batches that wrote them), so most are copied, not formatted. */
    int64_t time_ms; /* 0: none yet */
    size_t time_len;
    char time_text[CF_JSONW_TIME_MAX];
};

/* Starts writing into out (appending). */
void cf_jsonw_init(struct cf_jsonw *w, struct cf_buf *out);

void cf_jsonw_object_begin(struct cf_jsonw *w);
void cf_jsonw_object_end(struct cf_jsonw *w);
void cf_jsonw_array_begin(struct cf_jsonw *w);
void cf_jsonw_array_end(struct cf_jsonw *w);

#define CF_JSONW_KEY_MAX 64

/* An object member's name; the next call writes its value. Names are the program's own: plain
 * ASCII, no quote, backslash or control character, at most CF_JSONW_KEY_MAX bytes (longer is
 * CF_EINVAL). Data from outside never becomes a key. */
void cf_jsonw_key(struct cf_jsonw *w, const char *key);

/* A string of n bytes (valid UTF-8, may contain any character; NUL is escaped). */
void cf_jsonw_string(struct cf_jsonw *w, const char *text, size_t n);
void cf_jsonw_cstr(struct cf_jsonw *w, const char *text);
void cf_jsonw_int(struct cf_jsonw *w, long long value);
void cf_jsonw_bool(struct cf_jsonw *w, bool value);
void cf_jsonw_null(struct cf_jsonw *w);
/* An RFC 3339 time string, or null for 0. */
void cf_jsonw_time(struct cf_jsonw *w, int64_t unix_ms);

/* Key + value shorthands. */
void cf_jsonw_kstr(struct cf_jsonw *w, const char *key, const char *text);
void cf_jsonw_kint(struct cf_jsonw *w, const char *key, long long value);
void cf_jsonw_kbool(struct cf_jsonw *w, const char *key, bool value);
void cf_jsonw_knull(struct cf_jsonw *w, const char *key);
void cf_jsonw_ktime(struct cf_jsonw *w, const char *key, int64_t unix_ms);

/* CF_OK, or the first error: CF_ETOOLARGE/CF_ENOMEM from the buffer, CF_EINVAL for invalid UTF-8 or
 * unbalanced nesting. */
enum cf_rc cf_jsonw_finish(struct cf_jsonw *w);

#endif
