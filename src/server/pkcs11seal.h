/* Auto-unseal with a PKCS#11 token (docs/operations.md "Auto-unseal with a PKCS#11 token"): the
 * root key encrypted (CKM_AES_GCM) by an AES key that never leaves an HSM, kept in the store's meta
 * row CF_PKCS11SEAL_META as JSON {"module", "token", "key", "iv", "wrapped"} (base64url); nothing
 * in it is secret. The module (a shared library) is loaded with dlopen and entered through
 * C_GetFunctionList. The user PIN of the token comes from the environment of every node and
 * command that wraps or unwraps: CF_PKCS11SEAL_PIN_ENV, or a file named by
 * CF_PKCS11SEAL_PIN_FILE_ENV (never from the command line, where other users could read it).
 * Not thread-safe: a module's C_Initialize and C_Finalize are process-wide; one caller at a time.
 */
#ifndef CF_SERVER_PKCS11SEAL_H
#define CF_SERVER_PKCS11SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/keyring.h"
#include "util/err.h"

#define CF_PKCS11SEAL_META "seal_pkcs11"
#define CF_PKCS11SEAL_PIN_ENV "COFFER_SEAL_PKCS11_PIN"
#define CF_PKCS11SEAL_PIN_FILE_ENV "COFFER_SEAL_PKCS11_PIN_FILE"

/* Which module, token and key (all borrowed). */
struct cf_pkcs11seal_config {
    const char *module;      /* path of the PKCS#11 shared library */
    const char *token_label; /* CKA token label (as in C_GetTokenInfo) */
    const char *key_label;   /* CKA_LABEL of the AES secret key in that token */
};

/* Encrypts root with the token's key and returns the record to store (*record: malloc'd JSON text,
 * the caller frees it). CF_EINVAL for a missing PIN or an incomplete config; CF_EUNAVAIL when the
 * module cannot be loaded or the token is absent; CF_EUNAUTH for a PIN the token refuses;
 * CF_ENOTFOUND when the token holds no (or more than one) key of that label; CF_ECRYPTO when the
 * token refuses the operation. */
enum cf_rc cf_pkcs11seal_wrap(const struct cf_pkcs11seal_config *config,
                              const uint8_t root[CF_ROOT_KEY_BYTES], char **record,
                              struct cf_err *err);

/* Decrypts the root key of a stored record into root (the caller wipes it). CF_EINVAL for a record
 * that is not one; otherwise the codes of cf_pkcs11seal_wrap. root is zeroed on failure. */
enum cf_rc cf_pkcs11seal_unwrap(const uint8_t *record, size_t len, uint8_t root[CF_ROOT_KEY_BYTES],
                                struct cf_err *err);

#endif
