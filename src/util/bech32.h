/* Bech32 (BIP-173) decoding, as age writes its keys: a human-readable part, the separator '1', and
 * 5-bit groups with a 6-character checksum, all lower case or all upper case. Unlike BIP-173 there
 * is no length limit on the data (age does not keep the 90-character one). Thread-safe (no state).
 */
#ifndef CF_UTIL_BECH32_H
#define CF_UTIL_BECH32_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* The longest human-readable part accepted, without its NUL (BIP-173's own limit). */
#define CF_BECH32_HRP_MAX 83

/* Decodes text (NUL-terminated; borrowed): the human-readable part, lower-cased, goes into hrp
 * (CF_BECH32_HRP_MAX + 1 bytes) and the data, converted from 5-bit groups to bytes (the padding
 * bits must be zero and fewer than 5), into data (data_max bytes), its length into *data_len.
 * CF_EINVAL when text is not valid Bech32 (mixed case, a character outside the alphabet, no
 * separator, an empty or too long human-readable part, a checksum that does not match, data that
 * does not convert or does not fit). The message says which, without quoting the text (it may be
 * a secret key). */
enum cf_rc cf_bech32_decode(const char *text, char hrp[CF_BECH32_HRP_MAX + 1], uint8_t *data,
                            size_t data_max, size_t *data_len, struct cf_err *err);

#endif
