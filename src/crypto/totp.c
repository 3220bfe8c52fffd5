/* TOTP over liboath (totp.h). */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <liboath/oath.h>
#include <sodium.h>

#include "crypto/totp.h"
#include "util/banned.h"

static pthread_once_t oath_once = PTHREAD_ONCE_INIT;
static int oath_init_rc = OATH_OK;

static void oath_start(void)
{
    oath_init_rc = oath_init();
}

static enum cf_rc oath_ready(struct cf_err *err)
{
    pthread_once(&oath_once, oath_start);
    if (oath_init_rc != OATH_OK)
        return cf_err_set(err, CF_ECRYPTO, "liboath: %s", oath_strerror(oath_init_rc));
    return CF_OK;
}

enum cf_rc cf_totp_secret_new(uint8_t secret[CF_TOTP_SECRET_BYTES],
                              char b32[CF_TOTP_SECRET_B32_MAX], struct cf_err *err)
{
    char *encoded = NULL;
    size_t len = 0;
    enum cf_rc rc = oath_ready(err);
    if (rc != CF_OK)
        return rc;
    randombytes_buf(secret, CF_TOTP_SECRET_BYTES);
    int orc = oath_base32_encode((const char *)secret, CF_TOTP_SECRET_BYTES, &encoded, &len);
    if (orc != OATH_OK)
        rc = cf_err_set(err, CF_ECRYPTO, "base32: %s", oath_strerror(orc));
    else if (len >= CF_TOTP_SECRET_B32_MAX)
        rc = cf_err_set(err, CF_EINTERNAL, "base32 of a TOTP secret is too long");
    if (rc == CF_OK) {
        memcpy(b32, encoded, len);
        b32[len] = '\0';
    }
    if (encoded) {
        sodium_memzero(encoded, len);
        free(encoded);
    }
    if (rc != CF_OK)
        sodium_memzero(secret, CF_TOTP_SECRET_BYTES);
    return rc;
}

enum cf_rc cf_totp_secret_decode(const char *b32, uint8_t *secret, size_t size, size_t *n,
                                 struct cf_err *err)
{
    char *decoded = NULL;
    size_t len = 0;
    enum cf_rc rc = oath_ready(err);
    *n = 0;
    if (rc != CF_OK)
        return rc;
    int orc = oath_base32_decode(b32, strlen(b32), &decoded, &len);
    if (orc != OATH_OK)
        rc = cf_err_set(err, CF_ECRYPTO, "the TOTP secret is not base32");
    else if (len == 0 || len > size)
        rc = cf_err_set(err, CF_ECRYPTO, "the TOTP secret has %zu bytes", len);
    if (rc == CF_OK) {
        memcpy(secret, decoded, len);
        *n = len;
    }
    if (decoded) {
        sodium_memzero(decoded, len);
        free(decoded);
    }
    return rc;
}

bool cf_totp_code_shaped(const char *code)
{
    if (!code || strlen(code) != CF_TOTP_DIGITS)
        return false;
    for (const char *p = code; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return true;
}

enum cf_rc cf_totp_code(const uint8_t *secret, size_t n, int64_t step, char out[CF_TOTP_DIGITS + 1],
                        struct cf_err *err)
{
    enum cf_rc rc = oath_ready(err);
    if (rc != CF_OK)
        return rc;
    if (step < 0)
        return cf_err_set(err, CF_EINVAL, "no TOTP step before the epoch");
    int orc = oath_totp_generate((const char *)secret, n, (time_t)(step * CF_TOTP_STEP_S),
                                 CF_TOTP_STEP_S, OATH_TOTP_DEFAULT_START_TIME, CF_TOTP_DIGITS, out);
    if (orc != OATH_OK)
        return cf_err_set(err, CF_ECRYPTO, "TOTP: %s", oath_strerror(orc));
    return CF_OK;
}

enum cf_rc cf_totp_check(const uint8_t *secret, size_t n, int64_t now_s, const char *code,
                         int64_t last_step, int64_t *step, struct cf_err *err)
{
    /* the current step first, then the one before and the one after (clock skew) */
    static const int offsets[] = {0, -1, 1};
    char expected[CF_TOTP_DIGITS + 1];
    bool replayed = false, found = false;
    enum cf_rc rc = CF_OK;

    *step = 0;
    if (!cf_totp_code_shaped(code))
        return cf_err_set(err, CF_EUNAUTH, "wrong authentication code");
    int64_t now_step = now_s / CF_TOTP_STEP_S;
    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        int64_t s = now_step + offsets[i];
        rc = cf_totp_code(secret, n, s, expected, err);
        if (rc != CF_OK)
            break;
        if (sodium_memcmp(expected, code, CF_TOTP_DIGITS) != 0)
            continue;
        if (s <= last_step) {
            replayed = true;
            continue;
        }
        *step = s;
        found = true;
        break;
    }
    sodium_memzero(expected, sizeof(expected));
    if (rc != CF_OK)
        return rc;
    if (found)
        return CF_OK;
    if (replayed)
        return cf_err_set(err, CF_ECONFLICT,
                          "this authentication code was used already: wait for the next one");
    return cf_err_set(err, CF_EUNAUTH, "wrong authentication code");
}
