/* cjose, loaded at its first use (util/dynlib.h): the JWS verification of JWT logins. It brings
 * libcrypto with it. When it cannot be loaded, each function fails as cjose does, with *err set
 * (the callers report err->message). */
#include <cjose/cjose.h>

#include "util/dynlib_impl.h"
#include "util/banned.h"

/* Fills err as cjose's own failures do; NULL, to return. */
static void *unloaded(cjose_err *err)
{
    if (err) {
        err->code = CJOSE_ERR_INVALID_STATE;
        err->message = "cjose could not be loaded";
        err->function = "";
        err->file = "";
        err->line = 0;
    }
    return NULL;
}

#define CJOSE_FUNCTIONS(F, V, M)                                                                   \
    F(cjose_jwk_t *, cjose_jwk_create_EC_spec, (const cjose_jwk_ec_keyspec *spec, cjose_err *err), \
      (spec, err), unloaded(err))                                                                  \
    F(cjose_jwk_t *, cjose_jwk_create_RSA_spec,                                                    \
      (const cjose_jwk_rsa_keyspec *spec, cjose_err *err), (spec, err), unloaded(err))             \
    F(bool, cjose_jwk_release, (cjose_jwk_t * jwk), (jwk), false)                                  \
    F(cjose_jws_t *, cjose_jws_import, (const char *compact, size_t compact_len, cjose_err *err),  \
      (compact, compact_len, err), unloaded(err))                                                  \
    V(cjose_jws_release, (cjose_jws_t * jws), (jws))                                               \
    F(bool, cjose_jws_verify, (cjose_jws_t * jws, const cjose_jwk_t *jwk, cjose_err *err),         \
      (jws, jwk, err), (unloaded(err), false))

CF_DYNLIB_DEFINE(cf_lib_cjose, "cjose", "libcjose.so.0", CJOSE_FUNCTIONS)
