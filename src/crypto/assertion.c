/* Client assertions signed with a certificate's key (crypto/assertion.h). */
#include "crypto/assertion.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "util/wipemem.h"
#include "util/banned.h"

/* base64url without padding of n bytes appended to out. */
static enum cf_rc b64_bytes(struct cf_buf *out, const unsigned char *bytes, size_t n)
{
    size_t size = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *enc = malloc(size);
    enum cf_rc rc = CF_ENOMEM;
    if (enc) {
        sodium_bin2base64(enc, size, bytes, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        rc = cf_buf_puts(out, enc);
    }
    free(enc);
    return rc;
}

/* base64url(JSON of o) appended to out. */
static enum cf_rc b64_json(struct cf_buf *out, json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    enum cf_rc rc = text ? b64_bytes(out, (const unsigned char *)text, strlen(text)) : CF_ENOMEM;
    cf_json_free_text(text);
    return rc;
}

enum cf_rc cf_assertion_sign(const char *pem, const char *what, const char *client_id,
                             const char *audience, int64_t now_s, struct cf_buf *out,
                             struct cf_err *err)
{
    BIO *bio = NULL;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *md = NULL;
    json_t *header = NULL, *claims = NULL;
    unsigned char *der = NULL, *sig = NULL;
    unsigned char sha1[20], sha256[32], jti[16];
    char x5t[64], x5t256[64], jti_hex[33];
    size_t sig_len = 0;
    enum cf_rc rc = CF_EINVAL;

    bio = BIO_new_mem_buf(pem, -1);
    cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    bio = BIO_new_mem_buf(pem, -1);
    key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    if (!cert || !key) {
        cf_err_field(err, CF_EINVAL, "certificate",
                     "%s must hold a PEM certificate and its private key", what);
        goto out;
    }
    if (EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
        cf_err_field(err, CF_EINVAL, "certificate", "%s key must be RSA (Entra ID takes RS256)",
                     what);
        goto out;
    }
    int der_len = i2d_X509(cert, &der);
    if (der_len <= 0) {
        cf_err_field(err, CF_EINVAL, "certificate", "%s: the certificate cannot be encoded", what);
        goto out;
    }
    EVP_Digest(der, (size_t)der_len, sha1, NULL, EVP_sha1(), NULL);
    EVP_Digest(der, (size_t)der_len, sha256, NULL, EVP_sha256(), NULL);
    randombytes_buf(jti, sizeof(jti));
    sodium_bin2hex(jti_hex, sizeof(jti_hex), jti, sizeof(jti));
    sodium_bin2base64(x5t, sizeof(x5t), sha1, sizeof(sha1),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_bin2base64(x5t256, sizeof(x5t256), sha256, sizeof(sha256),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    header = json_pack("{s:s, s:s, s:s, s:s}", "alg", "RS256", "typ", "JWT", "x5t", x5t, "x5t#S256",
                       x5t256);
    claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "aud", audience, "iss", client_id,
                       "sub", client_id, "jti", jti_hex, "nbf", (json_int_t)now_s, "iat",
                       (json_int_t)now_s, "exp", (json_int_t)(now_s + CF_ASSERTION_TTL_S));
    size_t start = out->len;
    rc = b64_json(out, header);
    if (rc == CF_OK)
        rc = cf_buf_puts(out, ".");
    if (rc == CF_OK)
        rc = b64_json(out, claims);
    if (rc != CF_OK) {
        cf_err_set(err, rc, "out of memory");
        goto out;
    }
    const unsigned char *signing_input = (const unsigned char *)out->data + start;
    size_t signing_len = out->len - start;
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, &sig_len, signing_input, signing_len) != 1 ||
        !(sig = malloc(sig_len)) ||
        EVP_DigestSign(md, sig, &sig_len, signing_input, signing_len) != 1) {
        rc = cf_err_set(err, CF_ECRYPTO, "the client assertion could not be signed");
        goto out;
    }
    rc = cf_buf_puts(out, ".");
    if (rc == CF_OK)
        rc = b64_bytes(out, sig, sig_len);
    if (rc != CF_OK)
        cf_err_set(err, rc, "out of memory");
out:
    free(sig);
    EVP_MD_CTX_free(md);
    json_decref(header);
    json_decref(claims);
    OPENSSL_free(der);
    EVP_PKEY_free(key); /* OpenSSL clears private key material when it frees it */
    X509_free(cert);
    BIO_free(bio);
    return rc;
}
