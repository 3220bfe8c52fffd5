/* Client assertions (RFC 7523, "private_key_jwt"): the JWT a confidential client signs with its
 * certificate's private key instead of sending a client secret, as Microsoft Entra ID documents
 * it (https://learn.microsoft.com/entra/identity-platform/certificate-credentials): header
 * {alg: RS256, typ: JWT, x5t, x5t#S256} (base64url SHA-1 and SHA-256 thumbprints of the
 * certificate's DER), claims {aud: the token endpoint, iss = sub = the client id, jti (random),
 * nbf, iat, exp}. Used by Entra ID connections (provider/entra.h) and single sign-on's token
 * requests (auth/oidc.h). Signed with OpenSSL's EVP_DigestSign; the key never leaves the PEM. */
#ifndef CF_CRYPTO_ASSERTION_H
#define CF_CRYPTO_ASSERTION_H

#include <stdint.h>

#include "util/buf.h"
#include "util/err.h"

#define CF_ASSERTION_TTL_S (10 * 60) /* lifetime of a signed client assertion */

/* Appends the signed assertion of client_id for audience (the token endpoint's URL), valid from
 * now_s for CF_ASSERTION_TTL_S, to out. pem holds the PEM certificate and its RSA private key
 * (borrowed). CF_EINVAL naming field "certificate" when the PEM lacks either or the key is not
 * RSA (what names the credential in the message, e.g. "the connection's \"certificate\""),
 * CF_ECRYPTO, CF_ENOMEM. Thread-safe. */
enum cf_rc cf_assertion_sign(const char *pem, const char *what, const char *client_id,
                             const char *audience, int64_t now_s, struct cf_buf *out,
                             struct cf_err *err);

#endif
