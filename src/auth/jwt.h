/* JWT verification for JWT/OIDC auth: a key set (from a JWKS document or PEM public keys)
 * and a verifier that checks a compact JWS against it and then checks the claims against a policy.
 * RS256/384/512, PS256/384/512, ES256/384 go through cjose over OpenSSL; EdDSA (Ed25519) through
 * OpenSSL's EVP_DigestVerify (cjose 0.6 has no OKP keys). Nothing else is accepted: `none`, HMAC,
 * and any algorithm the chosen key's type (or its declared "alg") does not fit are refused. The
 * key is chosen by the header's "kid"; without a kid every key of a fitting type is tried. The
 * "jku", "x5u", "jwk" and "x5c" headers are never used (nothing is fetched from a token). Tokens
 * over CF_JWT_TOKEN_MAX bytes, malformed base64url, bad JSON and JSON with duplicate member names
 * are refused. Every refusal is CF_EUNAUTH with a message naming the cause; a message never
 * contains the token, and values copied from the token (issuer, kid, alg) are truncated to
 * printable ASCII. Key sets are immutable once built, so one may be shared between threads. */
#ifndef CF_AUTH_JWT_H
#define CF_AUTH_JWT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define CF_JWT_TOKEN_MAX 16384     /* bytes of compact serialization */
#define CF_JWT_KEYS_MAX 64         /* keys in one set */
#define CF_JWT_LEEWAY_DEFAULT_S 60 /* clock skew allowed on exp/nbf/iat */
#define CF_JWT_LEEWAY_MAX_S 3600
#define CF_JWT_RSA_MIN_BITS 2048

struct cf_jwt_keys;

/* Builds a key set from a JWKS document ({"keys":[...]}, json/len need not be NUL-terminated).
 * Keys that cannot verify one of the supported algorithms are skipped: "use" other than "sig",
 * "key_ops" without "verify", kty "oct" or unknown, curves other than P-256/P-384/Ed25519, RSA
 * under CF_JWT_RSA_MIN_BITS, a declared "alg" Coffer does not accept. Private members are ignored
 * (only the public part is imported). CF_EINVAL when the document is not a JWKS, has duplicate
 * member names, more than CF_JWT_KEYS_MAX keys, a malformed key, or no usable key at all;
 * CF_ENOMEM. On success *out is the set (free with cf_jwt_keys_free). */
enum cf_rc cf_jwt_keys_from_jwks(const char *json, size_t len, struct cf_jwt_keys **out,
                                 struct cf_err *err);

/* Builds a key set from one or more concatenated PEM "PUBLIC KEY" blocks (RSA >= 2048 bits, EC
 * P-256/P-384, Ed25519). PEM keys have no kid, so a token is checked against each key of a fitting
 * type. CF_EINVAL when a block does not parse, a key is of another type, or there is no key;
 * CF_ENOMEM. On success *out is the set (free with cf_jwt_keys_free). */
enum cf_rc cf_jwt_keys_from_pem(const char *pem, size_t len, struct cf_jwt_keys **out,
                                struct cf_err *err);

/* Number of keys in the set. */
size_t cf_jwt_keys_count(const struct cf_jwt_keys *keys);

/* Frees a key set; NULL is a no-op. */
void cf_jwt_keys_free(struct cf_jwt_keys *keys);

/* One bound claim: the claim at path (a top-level member name, or else a dotted path into nested
 * objects, e.g. "extension_attributes.team") must equal one of values. A value may be a glob
 * (fnmatch with FNM_PATHNAME: '*' and '?' do not match '/', as Infisical's picomatch). A string
 * claim is matched as is, a number as its integer text, a boolean as "true"/"false", an array when
 * any of its scalar elements matches. */
struct cf_jwt_claim_rule {
    const char *path;
    const char *const *values;
    size_t n_values;
};

/* What a verified token must also satisfy. Empty (NULL or "") fields and zero counts mean "not
 * bound". Borrowed by cf_jwt_verify for the duration of the call. */
struct cf_jwt_policy {
    const char *issuer;           /* exact match of "iss" */
    const char *const *audiences; /* any one must equal "aud" or one of its elements (exact) */
    size_t n_audiences;
    const char *subject;                    /* glob (as claim values) against "sub" */
    const struct cf_jwt_claim_rule *claims; /* every rule must hold */
    size_t n_claims;
    int64_t leeway_s; /* 0..CF_JWT_LEEWAY_MAX_S */
};

/* Sets policy to "nothing bound" with the default leeway. */
void cf_jwt_policy_init(struct cf_jwt_policy *policy);

/* Checks only the JWS layer of token (NUL-terminated): size, shape, base64url, header JSON, the
 * algorithm, the key choice and the signature. The payload may be any bytes. On success, when
 * payload is not NULL, *payload receives a NUL-terminated copy of the decoded payload (free with
 * free()) and *payload_len its length. Refusals are CF_EUNAUTH: "malformed token: ...",
 * "algorithm \"A\" not allowed", "unknown key id \"K\"", "bad signature"; CF_ENOMEM. Thread-safe.
 */
enum cf_rc cf_jwt_verify_signature(const struct cf_jwt_keys *keys, const char *token,
                                   char **payload, size_t *payload_len, struct cf_err *err);

/* A refusal because no key of the set matches the token's kid (or, without a kid, its algorithm)
 * has err->field set to "kid", so that a caller holding a cached key set knows a refetch may help.
 */
/* Verifies token as a JWT at time now (Unix seconds): cf_jwt_verify_signature, then the payload
 * must be a JSON object without duplicate names, "exp" is required, "nbf" and "iat" are honoured,
 * all with policy->leeway_s, and the policy's bindings must hold. Refusals are CF_EUNAUTH:
 * those of cf_jwt_verify_signature, "token has no exp claim", "token expired at T", "token not
 * yet valid (nbf T)", "token issued in the future (iat T)", "issuer \"X\" not allowed", "audience
 * mismatch", "subject mismatch", "claim \"C\" mismatch"; CF_EINVAL for a bad policy; CF_ENOMEM.
 * On success, when claims is not NULL, *claims is the payload object (json_decref it).
 * Thread-safe. */
enum cf_rc cf_jwt_verify(const struct cf_jwt_keys *keys, const char *token,
                         const struct cf_jwt_policy *policy, int64_t now, json_t **claims,
                         struct cf_err *err);

#endif
