/* Time-based one-time passwords (RFC 6238, HMAC-SHA1, 30-second steps, 6 digits: what every
 * authenticator app does by default) for two-factor sign-in, over liboath (HOTP and base32 are
 * not written here). A code is accepted for its own step and one step either side (clock skew),
 * and never for a step at or before the last one accepted (replay). Thread-safe. */
#ifndef CF_CRYPTO_TOTP_H
#define CF_CRYPTO_TOTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define CF_TOTP_SECRET_BYTES 20   /* 160 bits, as RFC 4226 recommends */
#define CF_TOTP_SECRET_B32_MAX 40 /* base32 of the secret (32 characters) and the NUL */
#define CF_TOTP_STEP_S 30
#define CF_TOTP_DIGITS 6
#define CF_TOTP_SKEW_STEPS 1

/* Fills secret with fresh random bytes and writes its base32 (RFC 4648, unpadded for 20 bytes)
 * into b32. The caller wipes both. */
enum cf_rc cf_totp_secret_new(uint8_t secret[CF_TOTP_SECRET_BYTES],
                              char b32[CF_TOTP_SECRET_B32_MAX], struct cf_err *err);

/* Decodes a base32 secret into secret (at most size bytes, *n receives how many). CF_ECRYPTO
 * when it is not base32 or too long. The caller wipes secret. */
enum cf_rc cf_totp_secret_decode(const char *b32, uint8_t *secret, size_t size, size_t *n,
                                 struct cf_err *err);

/* Whether code is a code's shape: CF_TOTP_DIGITS decimal digits. */
bool cf_totp_code_shaped(const char *code);

/* Checks code against secret (n bytes) at now_s (Unix seconds): CF_OK with *step the time step it
 * belongs to (now_s / 30, or one either side); CF_ECONFLICT when it belongs only to a step at or
 * before last_step (a code used already); CF_EUNAUTH when it is no code of those steps (or not a
 * code's shape). Compared in constant time. */
enum cf_rc cf_totp_check(const uint8_t *secret, size_t n, int64_t now_s, const char *code,
                         int64_t last_step, int64_t *step, struct cf_err *err);

/* The code of step (for tests and for an enrolment's own check). out: CF_TOTP_DIGITS + 1 bytes. */
enum cf_rc cf_totp_code(const uint8_t *secret, size_t n, int64_t step, char out[CF_TOTP_DIGITS + 1],
                        struct cf_err *err);

#endif
