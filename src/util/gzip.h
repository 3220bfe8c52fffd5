/* gzip (RFC 1952) in memory, over zlib: what `zcat` reads. Used for the audit archive files, which
 * are written whole (compressed, then fsync'd and renamed into place) and read back whole. */
#ifndef CF_UTIL_GZIP_H
#define CF_UTIL_GZIP_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/err.h"

/* Appends the gzip form of the len bytes at data to out (whose maximum bounds it: CF_ETOOLARGE
 * past it). CF_ENOMEM, or CF_EINTERNAL naming zlib's error. */
enum cf_rc cf_gzip_compress(const void *data, size_t len, struct cf_buf *out, struct cf_err *err);

/* Appends what the gzip data (len bytes; one or more members) holds to out, at most out's
 * maximum: CF_ETOOLARGE past it, CF_EVALIDATION when the data is not gzip or is cut short or
 * damaged (its CRC checked). */
enum cf_rc cf_gzip_decompress(const void *data, size_t len, struct cf_buf *out, struct cf_err *err);

/* Whether an HTTP Accept-Encoding value (RFC 9110 section 12.5.3) lets the answer be sent
 * gzip-compressed: "gzip" or "x-gzip" listed with a weight above 0, or "*" above 0 when neither is
 * listed. Codings are case-insensitive; "gzip;q=0" refuses it, and a weight that does not parse
 * counts as a refusal. NULL (no header) is false: the identity coding is always safe. */
bool cf_gzip_accepted(const char *accept_encoding);

#endif
