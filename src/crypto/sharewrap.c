/* Unseal shares encrypted to their holders' public keys (see sharewrap.h): which kind of key an
 * entry is, RSA-OAEP here, age and OpenPGP in their own modules. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <sodium.h>

#include "crypto/age.h"
#include "crypto/pgpwrap.h"
#include "crypto/sharewrap.h"
#include "util/file.h"
#include "util/banned.h"

#define AGE_PREFIX "age1"
#define AGE_SECRET_PREFIX "AGE-SECRET-KEY-"
#define PGP_PUBLIC_ARMOR "-----BEGIN PGP PUBLIC KEY BLOCK-----"
#define PGP_PRIVATE_ARMOR "-----BEGIN PGP PRIVATE KEY BLOCK-----"
#define PEM_BEGIN "-----BEGIN "
#define PEM_PRIVATE "PRIVATE KEY-----"
#define RSA_CIPHER_MAX 1024 /* an RSA-8192 ciphertext */
/* OpenPGP packet tags (RFC 4880 4.3) that can start a transferable key */
#define PGP_TAG_SECRET_KEY 5
#define PGP_TAG_PUBLIC_KEY 6

/* An entry, loaded: its kind, the file's contents (NULL for an inline recipient), and for age the
 * recipient's key. */
struct loaded {
    enum cf_sharewrap_kind kind;
    char *content;
    size_t len;
    uint8_t age_key[CF_AGE_RECIPIENT_BYTES];
};

static void loaded_release(struct loaded *key)
{
    /* a secret key given by mistake is wiped, not just freed */
    if (key->content)
        sodium_memzero(key->content, key->len);
    free(key->content);
    key->content = NULL;
}

const char *cf_sharewrap_kind_name(enum cf_sharewrap_kind kind)
{
    switch (kind) {
    case CF_SHAREWRAP_AGE:
        return "age";
    case CF_SHAREWRAP_OPENPGP:
        return "OpenPGP";
    case CF_SHAREWRAP_RSA:
        break;
    }
    return "RSA";
}

static bool contains(const struct loaded *key, const char *needle)
{
    return memmem(key->content, key->len, needle, strlen(needle)) != NULL;
}

/* The tag of the OpenPGP packet that binary contents start with, or -1 when they do not look
 * like one. */
static int pgp_first_tag(const struct loaded *key)
{
    unsigned char first = key->len ? (unsigned char)key->content[0] : 0;
    if (!(first & 0x80))
        return -1;
    return (first & 0x40) ? first & 0x3f : (first >> 2) & 0x0f;
}

/* The RSA public key of the PEM contents, or NULL with err set (the caller frees it). */
static EVP_PKEY *rsa_key(const char *path, const struct loaded *loaded, struct cf_err *err)
{
    EVP_PKEY *key = NULL;
    BIO *bio = BIO_new_mem_buf(loaded->content, (int)loaded->len);
    if (!bio) {
        cf_err_set(err, CF_ENOMEM, "out of memory");
        return NULL;
    }
    key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
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

/* The one age recipient line of a text file ('#' comments and blank lines aside). */
static enum cf_rc age_file(const char *path, struct loaded *key, struct cf_err *err)
{
    char line[256];
    unsigned recipients = 0, others = 0;
    struct cf_err why;
    char *at = key->content;
    char *end = key->content + key->len;

    while (at < end) {
        char *eol = memchr(at, '\n', (size_t)(end - at));
        size_t n = (size_t)((eol ? eol : end) - at);
        while (n && (at[0] == ' ' || at[0] == '\t')) {
            at++;
            n--;
        }
        while (n && (at[n - 1] == '\r' || at[n - 1] == ' ' || at[n - 1] == '\t'))
            n--;
        if (n && at[0] != '#') {
            if (n > strlen(AGE_PREFIX) && strncasecmp(at, AGE_PREFIX, strlen(AGE_PREFIX)) == 0 &&
                n < sizeof(line)) {
                if (recipients++ == 0) {
                    memcpy(line, at, n);
                    line[n] = '\0';
                }
            } else {
                others++;
            }
        }
        at = eol ? eol + 1 : end;
    }
    if (recipients == 0 || others > 0)
        return cf_err_set(err, CF_EINVAL,
                          "'%s' is not an age recipient (age1...), an OpenPGP public key or an "
                          "RSA PEM public key",
                          path);
    if (recipients > 1)
        return cf_err_set(err, CF_EINVAL,
                          "'%s' holds %u age recipients: one per share key entry is needed", path,
                          recipients);
    cf_err_clear(&why);
    if (cf_age_recipient_parse(line, key->age_key, &why) != CF_OK)
        return cf_err_set(err, CF_EINVAL, "in the share key '%s': %s", path, why.msg);
    key->kind = CF_SHAREWRAP_AGE;
    return CF_OK;
}

/* Loads entry and tells its kind; every refusal of cf_sharewrap_check. */
static enum cf_rc load(const char *entry, struct loaded *key, struct cf_err *err)
{
    struct cf_err why;
    enum cf_rc rc;
    EVP_PKEY *rsa;

    memset(key, 0, sizeof(*key));
    if (strncasecmp(entry, AGE_SECRET_PREFIX, strlen(AGE_SECRET_PREFIX)) == 0)
        /* not quoted: the entry is a secret */
        return cf_err_set(err, CF_EINVAL,
                          "a share key is an age secret key (AGE-SECRET-KEY-...): give its "
                          "recipient (age-keygen -y), and treat that identity as exposed");
    if (strncasecmp(entry, AGE_PREFIX, strlen(AGE_PREFIX)) == 0 && access(entry, F_OK) != 0) {
        key->kind = CF_SHAREWRAP_AGE;
        return cf_age_recipient_parse(entry, key->age_key, err);
    }
    cf_err_clear(&why);
    rc = cf_file_read(entry, CF_SHAREWRAP_FILE_MAX, &key->content, &key->len, &why);
    if (rc == CF_ENOTFOUND)
        return cf_err_set(err, CF_EINVAL,
                          "cannot read the share key '%s': no such file (nor an age1... recipient)",
                          entry);
    if (rc != CF_OK) /* why names the file */
        return cf_err_set(err, CF_EINVAL, "cannot read the share key: %s", why.msg);
    if (contains(key, AGE_SECRET_PREFIX))
        return cf_err_set(err, CF_EINVAL,
                          "'%s' holds an age secret key (an identity): give its recipient, the "
                          "public key (age-keygen -y '%s')",
                          entry, entry);
    if (contains(key, PGP_PRIVATE_ARMOR) || pgp_first_tag(key) == PGP_TAG_SECRET_KEY)
        return cf_err_set(err, CF_EINVAL,
                          "'%s' holds an OpenPGP secret key: give the public key only (gpg "
                          "--export --armor), and keep the secret one away from here",
                          entry);
    if (contains(key, PGP_PUBLIC_ARMOR) || pgp_first_tag(key) == PGP_TAG_PUBLIC_KEY) {
        key->kind = CF_SHAREWRAP_OPENPGP;
        return CF_OK;
    }
    if (contains(key, PEM_BEGIN)) {
        if (contains(key, PEM_PRIVATE))
            return cf_err_set(err, CF_EINVAL,
                              "'%s' holds a private key, not a PEM public key: give the public "
                              "key only (openssl pkey -pubout)",
                              entry);
        key->kind = CF_SHAREWRAP_RSA;
        rsa = rsa_key(entry, key, err);
        EVP_PKEY_free(rsa);
        return rsa ? CF_OK : err->rc;
    }
    return age_file(entry, key, err);
}

enum cf_rc cf_sharewrap_check(const char *entry, enum cf_sharewrap_kind *kind, struct cf_err *err)
{
    struct loaded key;
    enum cf_rc rc = load(entry, &key, err);
    if (rc == CF_OK && key.kind == CF_SHAREWRAP_OPENPGP)
        rc = cf_pgpwrap_check(entry, key.content, key.len, err);
    if (rc == CF_OK)
        *kind = key.kind;
    loaded_release(&key);
    return rc;
}

/* RSA-OAEP SHA-256 of text to the PEM key, as base64 into *out. */
static enum cf_rc rsa_encrypt(const char *path, const struct loaded *loaded, const char *text,
                              size_t len, char **out, struct cf_err *err)
{
    unsigned char cipher[RSA_CIPHER_MAX];
    size_t cipher_len = sizeof(cipher);
    enum cf_rc rc = CF_OK;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *key = rsa_key(path, loaded, err);
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
    /* 4 characters per 3 bytes and the NUL */
    *out = malloc(4 * ((cipher_len + 2) / 3) + 1);
    if (!*out) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    EVP_EncodeBlock((unsigned char *)*out, cipher, (int)cipher_len);
out:
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(key);
    return rc;
}

enum cf_rc cf_sharewrap_encrypt(const char *entry, const char *text, size_t len, char **out,
                                enum cf_sharewrap_kind *kind, struct cf_err *err)
{
    struct loaded key;
    enum cf_rc rc = load(entry, &key, err);
    if (rc != CF_OK)
        goto out;
    *kind = key.kind;
    switch (key.kind) {
    case CF_SHAREWRAP_AGE:
        rc = cf_age_encrypt_armored(key.age_key, text, len, out, err);
        break;
    case CF_SHAREWRAP_OPENPGP:
        rc = cf_pgpwrap_encrypt(entry, key.content, key.len, text, len, out, err);
        break;
    case CF_SHAREWRAP_RSA:
        rc = rsa_encrypt(entry, &key, text, len, out, err);
        break;
    }
out:
    loaded_release(&key);
    return rc;
}
