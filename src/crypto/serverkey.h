/* Long-lived server keys kept in the store's meta table, wrapped by the root key like project keys
 * (crypto/keyring.h: made with cf_keyring_new_project_key under a label that is no project id,
 * rewrapped by `coffer operator rotate-root-key`), and the sealing of credentials the server must
 * keep at rest and use again (a Kubernetes token-reviewer JWT).
 *
 * A sealed credential is stored as text: "sealed:v1:" and the base64 of nonce || ciphertext || tag,
 * sealed with the auth key and bound to a context naming its owner and purpose, so that it cannot
 * be moved to another row. Text without that prefix is a credential written before sealing existed
 * and is taken as is. */
#ifndef CF_CRYPTO_SERVERKEY_H
#define CF_CRYPTO_SERVERKEY_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/keyring.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

#define CF_SERVER_KEY_AUDIT_META "audit_key" /* core/auditlog.h */
#define CF_SERVER_KEY_AUDIT_LABEL "~audit"
#define CF_SERVER_KEY_AUTH_META "auth_key" /* sealed credentials */
#define CF_SERVER_KEY_AUTH_LABEL "~auth"
#define CF_SERVER_KEY_ADMIN_META "admin_key" /* auth/admin.h: keys the admin token's hash */
#define CF_SERVER_KEY_ADMIN_LABEL "~admin"

/* Every server key, for root key rotation: {meta name, label}. */
struct cf_server_key_name {
    const char *meta;
    const char *label;
};
extern const struct cf_server_key_name cf_server_keys[];
extern const size_t cf_server_keys_n;

/* The wrapped key stored under meta, made (and stored) on first use; when two servers make it at
 * once, the first stored wins. *wrapped is malloc'd (free it; it holds no plaintext). */
enum cf_rc cf_server_key_wrapped(struct cf_store *st, struct cf_keyring *kr, const char *meta,
                                 const char *label, uint8_t **wrapped, size_t *wrapped_len,
                                 struct cf_err *err);

#define CF_SEALED_PREFIX "sealed:v1:"

/* The stored text of a credential of plain_len bytes at most (its prefix and base64 included):
 * the sealed bytes are a version byte, the 24-byte nonce, the ciphertext and the 16-byte tag. */
#define CF_SEALED_TEXT_MAX(plain_len)                                                              \
    (sizeof(CF_SEALED_PREFIX) + ((plain_len) + 41 + 2) / 3 * 4 + 1)

/* Seals plain (a NUL-terminated credential) bound to context (e.g. "k8s-reviewer:<identity id>")
 * into out (size bytes) as stored text. CF_EVALIDATION when it does not fit. */
enum cf_rc cf_credential_seal(struct cf_store *st, struct cf_keyring *kr, const char *context,
                              const char *plain, char *out, size_t size, struct cf_err *err);

/* Appends the credential stored as text to out (release it with cf_buf_release_wipe): opened when
 * sealed, copied when written before sealing existed. CF_ECRYPTO when a sealed one does not open
 * (another context, or tampered with). */
enum cf_rc cf_credential_open(struct cf_store *st, struct cf_keyring *kr, const char *context,
                              const char *stored, struct cf_buf *out, struct cf_err *err);

#endif
