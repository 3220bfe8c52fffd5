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

/* Writes parts[0..n) into out (size bytes), each after the first preceded by sep, NULL parts as
 * "" (a cheaper snprintf("%s<sep>%s...") for keys built on every request). false when the result
 * does not fit; out is then NUL-terminated but cut. */
bool cf_join(char *out, size_t size, char sep, const char *const *parts, size_t n);

/* True when the n bytes at s are well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF)
 * and contain no NUL byte. */
bool cf_utf8_valid(const char *s, size_t n);

/* Like cf_utf8_valid, but NUL bytes are allowed (they are valid UTF-8; JSON can carry them
 * escaped). */
bool cf_utf8_valid_allow_nul(const char *s, size_t n);

/* Makes the NUL-terminated s well-formed UTF-8 in place: every byte that does not belong to a
 * well-formed sequence (as cf_utf8_valid reads them) becomes '?', so the length stays. For text
 * taken from outside, or cut to a field's size, that must later be JSON. Returns the bytes
 * replaced. */
size_t cf_utf8_repair(char *s);

/* The value of the hexadecimal digit c (either case), or -1. */
int cf_hex_digit(char c);

/* Parses a whole decimal integer in [min, max]; false on anything else (sign, junk, overflow). */
bool cf_parse_int64(const char *text, long long min, long long max, long long *out);

/* A slice of a string: n bytes at p, not NUL-terminated. */
struct cf_str {
    const char *p;
    size_t n;
};

/* Walks a comma-separated list without copying or modifying it (strtok is banned). */
struct cf_list_iter {
    const char *next; /* start of the item not yet yielded; NULL or "" when done */
};

/* Starts iterating text (NULL is an empty list). */
void cf_list_init(struct cf_list_iter *it, const char *text);

/* Yields the next item, trimmed of spaces and tabs; false when the list is done. An empty text
 * yields nothing, and a text that ends in a comma ends there ("a," yields "a"), but empty items
 * between or before commas are yielded as empty ("a,,b" yields "a", "", "b"; ",a" yields "", "a"):
 * the caller decides whether an empty item is skipped or an error. */
bool cf_list_next(struct cf_list_iter *it, struct cf_str *item);

/* Like cf_list_next, but the item is exactly the text between commas (nothing trimmed). */
bool cf_list_next_raw(struct cf_list_iter *it, struct cf_str *item);

#endif
