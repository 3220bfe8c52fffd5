/* Shares encrypted to RSA public keys (crypto/sharewrap.h): what is encrypted decrypts with the
 * private key under RSA-OAEP SHA-256 / MGF1 SHA-256, as `openssl pkeyutl` would, and the keys that
 * must be refused are, each naming the file. Keys are made here with OpenSSL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "crypto/sharewrap.h"

static char dir[] = "/tmp/cf-sharewrap-XXXXXX";

static void setup(void)
{
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    static const char *const names[] = {"holder.pub", "small.pub", "ec.pub", "junk.pub"};
    char path[256];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    cr_assert_eq(rmdir(dir), 0);
}

/* Writes key's public half as PEM to DIR/name, whose path goes into path. */
static void write_public(EVP_PKEY *key, const char *name, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(PEM_write_PUBKEY(f, key), 1);
    fclose(f);
}

TestSuite(sharewrap, .init = setup, .fini = teardown);

Test(sharewrap, encrypts_to_the_key_and_decrypts_with_oaep_sha256)
{
    EVP_PKEY *key = EVP_RSA_gen(2048);
    char path[256], out[CF_SHAREWRAP_TEXT_MAX];
    struct cf_err err;
    const char *share = "AbMWvxyLJfnJK4XAZpcKS8yVDMNnYEY2MyneUG9XceQj";
    cr_assert_not_null(key);
    write_public(key, "holder.pub", path, sizeof(path));
    cf_err_clear(&err);
    cr_assert_eq(cf_sharewrap_check(path, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_sharewrap_encrypt(path, share, strlen(share), out, &err), CF_OK, "%s", err.msg);
    cr_assert_null(strstr(out, share));

    unsigned char cipher[512], plain[512];
    int cipher_len = EVP_DecodeBlock(cipher, (const unsigned char *)out, (int)strlen(out));
    cr_assert_geq(cipher_len, 256);
    cipher_len = 256; /* EVP_DecodeBlock counts the padding's zero bytes */
    size_t plain_len = sizeof(plain);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
    cr_assert_eq(EVP_PKEY_decrypt_init(ctx), 1);
    cr_assert_eq(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), 1);
    cr_assert_eq(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()), 1);
    cr_assert_eq(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()), 1);
    cr_assert_eq(EVP_PKEY_decrypt(ctx, plain, &plain_len, cipher, (size_t)cipher_len), 1);
    cr_assert_eq(plain_len, strlen(share));
    cr_assert_eq(memcmp(plain, share, plain_len), 0);

    /* a second encryption differs (OAEP is randomised): no share can be matched by its ciphertext
     */
    char again[CF_SHAREWRAP_TEXT_MAX];
    cr_assert_eq(cf_sharewrap_encrypt(path, share, strlen(share), again, &err), CF_OK);
    cr_assert_str_neq(out, again);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(key);
}

Test(sharewrap, refuses_keys_it_cannot_use)
{
    EVP_PKEY *small = EVP_RSA_gen(1024);
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    char small_path[256], ec_path[256], junk_path[256], missing[256];
    struct cf_err err;
    write_public(small, "small.pub", small_path, sizeof(small_path));
    write_public(ec, "ec.pub", ec_path, sizeof(ec_path));
    snprintf(junk_path, sizeof(junk_path), "%s/junk.pub", dir);
    FILE *f = fopen(junk_path, "w");
    fputs("not a key\n", f);
    fclose(f);
    snprintf(missing, sizeof(missing), "%s/missing.pub", dir);
    const struct {
        const char *path, *words;
    } cases[] = {
        {small_path, "has 1024 bits; at least 2048"},
        {ec_path, "is not an RSA key"},
        {junk_path, "is not a PEM public key"},
        {missing, "cannot read the share key"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[CF_SHAREWRAP_TEXT_MAX];
        cf_err_clear(&err);
        cr_assert_eq(cf_sharewrap_check(cases[i].path, &err), CF_EINVAL, "%s", cases[i].path);
        cr_assert_not_null(strstr(err.msg, cases[i].words), "%s", err.msg);
        cr_assert_not_null(strstr(err.msg, cases[i].path), "%s", err.msg);
        cr_assert_eq(cf_sharewrap_encrypt(cases[i].path, "x", 1, out, &err), CF_EINVAL);
    }
    EVP_PKEY_free(small);
    EVP_PKEY_free(ec);
}
