/* Unseal shares encrypted to RSA public keys (see sharewrap.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "crypto/sharewrap.h"
#include "util/banned.h"

/* The RSA public key in the PEM file at path, or NULL with err set (the caller frees it). */
static EVP_PKEY *load_key(const char *path, struct cf_err *err)
{
    EVP_PKEY *key = NULL;
    FILE *f = fopen(path, "re");
    if (!f) {
        cf_err_set(err, CF_EINVAL, "cannot read the share key '%s': %s", path, strerror(errno));
        return NULL;
    }
    key = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    if (!key) {
        cf_err_set(err, CF_EINVAL, "'%s' is not a PEM public key (-----BEGIN PUBLIC KEY-----)",
                   path);
        return NULL;
    }
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
        cf_err_set(err, CF_EINVAL, "the share key '%s' is not an RSA key", path);
        EVP_PKEY_free(key);
        return NULL;
    }
    if (EVP_PKEY_get_bits(key) < CF_SHAREWRAP_MIN_BITS) {
        cf_err_set(err, CF_EINVAL, "the share key '%s' has %d bits; at least %d are needed", path,
                   EVP_PKEY_get_bits(key), CF_SHAREWRAP_MIN_BITS);
        EVP_PKEY_free(key);
        return NULL;
    }
    return key;
}

enum cf_rc cf_sharewrap_check(const char *path, struct cf_err *err)
{
    EVP_PKEY *key = load_key(path, err);
    if (!key)
        return err->rc;
    EVP_PKEY_free(key);
    return CF_OK;
}

enum cf_rc cf_sharewrap_encrypt(const char *path, const char *text, size_t len,
                                char out[CF_SHAREWRAP_TEXT_MAX], struct cf_err *err)
{
    unsigned char cipher[1024]; /* an RSA-8192 ciphertext */
    size_t cipher_len = sizeof(cipher);
    enum cf_rc rc = CF_OK;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *key = load_key(path, err);
    if (!key)
        return err->rc;
    ctx = EVP_PKEY_CTX_new(key, NULL);
    if (!ctx || EVP_PKEY_encrypt_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) <= 0 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) <= 0 ||
        EVP_PKEY_encrypt(ctx, NULL, &cipher_len, (const unsigned char *)text, len) <= 0 ||
        cipher_len > sizeof(cipher) ||
        EVP_PKEY_encrypt(ctx, cipher, &cipher_len, (const unsigned char *)text, len) <= 0) {
        rc = cf_err_set(err, CF_ECRYPTO, "cannot encrypt a share to the key '%s'", path);
        goto out;
    }
    /* 4 characters per 3 bytes and the NUL: 1024 bytes take 1369 */
    EVP_EncodeBlock((unsigned char *)out, cipher, (int)cipher_len);
out:
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(key);
    return rc;
}
