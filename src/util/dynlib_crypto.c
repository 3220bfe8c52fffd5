/* OpenSSL's libcrypto, loaded at its first use (util/dynlib.h): the functions of libcrypto the
 * program calls (JWT signatures, client assertions, certificates, RSA-wrapped unseal shares, age
 * files, HKDF). Relocating libcrypto alone makes about 1.4 MB of a process resident, and a server
 * that verifies no JWT and reads no certificate never calls it. When it cannot be loaded, each
 * function fails as libcrypto reports a failure: NULL, 0 or -1, as its manual pages say. */
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "util/dynlib_impl.h"
#include "util/banned.h"

/* OSSL_PARAM_construct_* fill a struct and touch no state of the library: when it is not loaded,
 * the end marker stands in, and the call that takes the parameters fails. */
#define PARAM_END ((OSSL_PARAM)OSSL_PARAM_END)

#define CRYPTO_FUNCTIONS(F, V, M)                                                                  \
    F(int, ASN1_TIME_diff, (int *pday, int *psec, const ASN1_TIME *from, const ASN1_TIME *to),     \
      (pday, psec, from, to), 0)                                                                   \
    F(int, ASN1_TIME_to_tm, (const ASN1_TIME *s, struct tm *tm), (s, tm), 0)                       \
    F(long, BIO_ctrl, (BIO * bp, int cmd, long larg, void *parg), (bp, cmd, larg, parg), 0)        \
    F(int, BIO_free, (BIO * a), (a), 0)                                                            \
    F(BIO *, BIO_new_mem_buf, (const void *buf, int len), (buf, len), NULL)                        \
    F(int, BN_bn2binpad, (const BIGNUM *a, unsigned char *to, int tolen), (a, to, tolen), -1)      \
    V(BN_free, (BIGNUM * a), (a))                                                                  \
    F(int, BN_num_bits, (const BIGNUM *a), (a), 0)                                                 \
    V(CRYPTO_free, (void *ptr, const char *file, int line), (ptr, file, line))                     \
    V(ERR_clear_error, (void), ())                                                                 \
    F(int, EVP_Digest,                                                                             \
      (const void *data, size_t count, unsigned char *md, unsigned int *size, const EVP_MD *type,  \
       ENGINE *impl),                                                                              \
      (data, count, md, size, type, impl), 0)                                                      \
    F(int, EVP_DigestSign,                                                                         \
      (EVP_MD_CTX * ctx, unsigned char *sigret, size_t *siglen, const unsigned char *tbs,          \
       size_t tbslen),                                                                             \
      (ctx, sigret, siglen, tbs, tbslen), 0)                                                       \
    F(int, EVP_DigestSignInit,                                                                     \
      (EVP_MD_CTX * ctx, EVP_PKEY_CTX * *pctx, const EVP_MD *type, ENGINE *e, EVP_PKEY *pkey),     \
      (ctx, pctx, type, e, pkey), 0)                                                               \
    F(int, EVP_DigestVerify,                                                                       \
      (EVP_MD_CTX * ctx, const unsigned char *sigret, size_t siglen, const unsigned char *tbs,     \
       size_t tbslen),                                                                             \
      (ctx, sigret, siglen, tbs, tbslen), -1)                                                      \
    F(int, EVP_DigestVerifyInit,                                                                   \
      (EVP_MD_CTX * ctx, EVP_PKEY_CTX * *pctx, const EVP_MD *type, ENGINE *e, EVP_PKEY *pkey),     \
      (ctx, pctx, type, e, pkey), 0)                                                               \
    F(int, EVP_EncodeBlock, (unsigned char *t, const unsigned char *f, int n), (t, f, n), 0)       \
    V(EVP_KDF_CTX_free, (EVP_KDF_CTX * ctx), (ctx))                                                \
    F(EVP_KDF_CTX *, EVP_KDF_CTX_new, (EVP_KDF * kdf), (kdf), NULL)                                \
    F(int, EVP_KDF_derive,                                                                         \
      (EVP_KDF_CTX * ctx, unsigned char *key, size_t keylen, const OSSL_PARAM params[]),           \
      (ctx, key, keylen, params), 0)                                                               \
    F(EVP_KDF *, EVP_KDF_fetch,                                                                    \
      (OSSL_LIB_CTX * libctx, const char *algorithm, const char *properties),                      \
      (libctx, algorithm, properties), NULL)                                                       \
    V(EVP_KDF_free, (EVP_KDF * kdf), (kdf))                                                        \
    V(EVP_MD_CTX_free, (EVP_MD_CTX * ctx), (ctx))                                                  \
    F(EVP_MD_CTX *, EVP_MD_CTX_new, (void), (), NULL)                                              \
    V(EVP_PKEY_CTX_free, (EVP_PKEY_CTX * ctx), (ctx))                                              \
    F(EVP_PKEY_CTX *, EVP_PKEY_CTX_new, (EVP_PKEY * pkey, ENGINE * e), (pkey, e), NULL)            \
    F(int, EVP_PKEY_CTX_set_rsa_mgf1_md, (EVP_PKEY_CTX * ctx, const EVP_MD *md), (ctx, md), 0)     \
    F(int, EVP_PKEY_CTX_set_rsa_oaep_md, (EVP_PKEY_CTX * ctx, const EVP_MD *md), (ctx, md), 0)     \
    F(int, EVP_PKEY_CTX_set_rsa_padding, (EVP_PKEY_CTX * ctx, int pad_mode), (ctx, pad_mode), 0)   \
    F(int, EVP_PKEY_encrypt,                                                                       \
      (EVP_PKEY_CTX * ctx, unsigned char *out, size_t *outlen, const unsigned char *in,            \
       size_t inlen),                                                                              \
      (ctx, out, outlen, in, inlen), 0)                                                            \
    F(int, EVP_PKEY_encrypt_init, (EVP_PKEY_CTX * ctx), (ctx), 0)                                  \
    V(EVP_PKEY_free, (EVP_PKEY * pkey), (pkey))                                                    \
    F(int, EVP_PKEY_get_base_id, (const EVP_PKEY *pkey), (pkey), EVP_PKEY_NONE)                    \
    F(int, EVP_PKEY_get_bits, (const EVP_PKEY *pkey), (pkey), 0)                                   \
    F(int, EVP_PKEY_get_bn_param, (const EVP_PKEY *pkey, const char *key_name, BIGNUM **bn),       \
      (pkey, key_name, bn), 0)                                                                     \
    F(int, EVP_PKEY_get_group_name,                                                                \
      (const EVP_PKEY *pkey, char *name, size_t name_sz, size_t *gname_len),                       \
      (pkey, name, name_sz, gname_len), 0)                                                         \
    F(int, EVP_PKEY_get_raw_public_key, (const EVP_PKEY *pkey, unsigned char *pub, size_t *len),   \
      (pkey, pub, len), 0)                                                                         \
    F(EVP_PKEY *, EVP_PKEY_new_raw_public_key,                                                     \
      (int type, ENGINE *e, const unsigned char *pub, size_t len), (type, e, pub, len), NULL)      \
    F(const EVP_MD *, EVP_sha1, (void), (), NULL)                                                  \
    F(const EVP_MD *, EVP_sha256, (void), (), NULL)                                                \
    F(unsigned char *, HMAC,                                                                       \
      (const EVP_MD *evp_md, const void *key, int key_len, const unsigned char *data,              \
       size_t data_len, unsigned char *md, unsigned int *md_len),                                  \
      (evp_md, key, key_len, data, data_len, md, md_len), NULL)                                    \
    F(int, OBJ_sn2nid, (const char *s), (s), NID_undef)                                            \
    F(OSSL_PARAM, OSSL_PARAM_construct_end, (void), (), PARAM_END)                                 \
    F(OSSL_PARAM, OSSL_PARAM_construct_octet_string, (const char *key, void *buf, size_t bsize),   \
      (key, buf, bsize), PARAM_END)                                                                \
    F(OSSL_PARAM, OSSL_PARAM_construct_utf8_string, (const char *key, char *buf, size_t bsize),    \
      (key, buf, bsize), PARAM_END)                                                                \
    F(X509 *, PEM_read_X509, (FILE * out, X509 * *x, pem_password_cb * cb, void *u),               \
      (out, x, cb, u), NULL)                                                                       \
    F(EVP_PKEY *, PEM_read_bio_PUBKEY, (BIO * out, EVP_PKEY * *x, pem_password_cb * cb, void *u),  \
      (out, x, cb, u), NULL)                                                                       \
    F(EVP_PKEY *, PEM_read_bio_PrivateKey,                                                         \
      (BIO * out, EVP_PKEY * *x, pem_password_cb * cb, void *u), (out, x, cb, u), NULL)            \
    F(X509 *, PEM_read_bio_X509, (BIO * out, X509 * *x, pem_password_cb * cb, void *u),            \
      (out, x, cb, u), NULL)                                                                       \
    F(int, X509_check_private_key, (const X509 *cert, const EVP_PKEY *pkey), (cert, pkey), 0)      \
    F(int, X509_digest,                                                                            \
      (const X509 *data, const EVP_MD *type, unsigned char *md, unsigned int *len),                \
      (data, type, md, len), 0)                                                                    \
    V(X509_free, (X509 * a), (a))                                                                  \
    F(const ASN1_TIME *, X509_get0_notAfter, (const X509 *x), (x), NULL)                           \
    F(int, i2d_PUBKEY, (const EVP_PKEY *a, unsigned char **pp), (a, pp), -1)                       \
    F(int, i2d_X509, (const X509 *a, unsigned char **out), (a, out), -1)

CF_DYNLIB_DEFINE(cf_lib_crypto, "libcrypto", "libcrypto.so.3", CRYPTO_FUNCTIONS)
