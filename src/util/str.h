/* Small string helpers: bounded copies, UTF-8 validation. */
#ifndef CF_UTIL_STR_H
#define CF_UTIL_STR_H

#include <stdbool.h>
#include <stddef.h>

/* Number of elements of the array a. Passing a pointer (whose sizeof is not the array's) fails to
 * compile: the bit-field width goes negative when a and &a[0] have the same type, as in Linux. */
#define CF_MUST_BE_ARRAY(a)                                                                        \
    (sizeof(struct {                                                                               \
         int : (-!!__builtin_types_compatible_p(__typeof__(a), __typeof__(&(a)[0])));              \
     }) *                                                                                          \
     0)
#define CF_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]) + CF_MUST_BE_ARRAY(a))

/* Copies src into dst (size bytes, always NUL-terminated). Returns false when src was truncated. */
bool cf_strlcpy(char *dst, const char *src, size_t size);

/* True when the n bytes at s are well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF)
 * and contain no NUL byte. */
bool cf_utf8_valid(const char *s, size_t n);

/* Like cf_utf8_valid, but NUL bytes are allowed (they are valid UTF-8; JSON can carry them
 * escaped). */
bool cf_utf8_valid_allow_nul(const char *s, size_t n);

/* Parses a whole decimal integer in [min, max]; false on anything else (sign, junk, overflow). */
bool cf_parse_int64(const char *text, long long min, long long max, long long *out);

#endif
