/* Shares encrypted to their holders' keys (crypto/sharewrap.h): what is encrypted to an RSA key
 * decrypts with the private key under RSA-OAEP SHA-256 / MGF1 SHA-256, as `openssl pkeyutl` would;
 * each kind of entry is told apart (RSA PEM, age recipient inline or in a file, OpenPGP); and the
 * entries that must be refused are, each naming the file (a secret given inline is never quoted).
 * RSA keys are made here with OpenSSL. The age and OpenPGP outputs are decrypted by the real
 * tools in age_test.c and tests/integration/test_sealed_backup.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "crypto/sharewrap.h"
#include "test_dir.h"

static char dir[] = "/tmp/cf-sharewrap-XXXXXX";

static void setup(void)
{
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    test_dir_remove(dir);
}

/* Writes text to DIR/name, whose path goes into path. */
static void write_text(const char *name, const void *text, size_t len, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
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
    char path[256], *out = NULL;
    enum cf_sharewrap_kind kind = CF_SHAREWRAP_AGE;
    struct cf_err err;
    const char *share = "AbMWvxyLJfnJK4XAZpcKS8yVDMNnYEY2MyneUG9XceQj";
    cr_assert_not_null(key);
    write_public(key, "holder.pub", path, sizeof(path));
    cf_err_clear(&err);
    cr_assert_eq(cf_sharewrap_check(path, &kind, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(kind, CF_SHAREWRAP_RSA);
    kind = CF_SHAREWRAP_AGE;
    cr_assert_eq(cf_sharewrap_encrypt(path, share, strlen(share), &out, &kind, &err), CF_OK, "%s",
                 err.msg);
    cr_assert_eq(kind, CF_SHAREWRAP_RSA);
    cr_assert_str_eq(cf_sharewrap_kind_name(kind), "RSA");
    cr_assert_null(strstr(out, share));
    cr_assert_null(strchr(out, '\n'), "RSA's base64 is one line");

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
    char *again = NULL;
    cr_assert_eq(cf_sharewrap_encrypt(path, share, strlen(share), &again, &kind, &err), CF_OK);
    cr_assert_str_neq(out, again);
    free(again);
    free(out);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(key);
}

#define RECIPIENT "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"
#define IDENTITY "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"

Test(sharewrap, tells_age_recipients_inline_and_in_files)
{
    static const char *const files[] = {
        RECIPIENT "\n",                                             /* age-keygen -y */
        "# Alice, made 2026-12-01\n\n  " RECIPIENT "  \r\n# end\n", /* a recipients file */
        "AGE1ZVKYG2LQZRAA2LNJVQEJ32NKUU0UES2S82HZRYE869XEEXVN73EQUNUJWJ",
    };
    char path[256], *out = NULL;
    enum cf_sharewrap_kind kind = CF_SHAREWRAP_RSA;
    struct cf_err err;
    const char *share = "AbMWvxyLJfnJK4XAZpcKS8yVDMNnYEY2MyneUG9XceQj";

    cf_err_clear(&err);
    cr_assert_eq(cf_sharewrap_check(RECIPIENT, &kind, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(kind, CF_SHAREWRAP_AGE);
    cr_assert_str_eq(cf_sharewrap_kind_name(kind), "age");
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        write_text("alice.txt", files[i], strlen(files[i]), path, sizeof(path));
        kind = CF_SHAREWRAP_RSA;
        cr_assert_eq(cf_sharewrap_check(path, &kind, &err), CF_OK, "%zu: %s", i, err.msg);
        cr_assert_eq(kind, CF_SHAREWRAP_AGE);
    }
    kind = CF_SHAREWRAP_RSA;
    cr_assert_eq(cf_sharewrap_encrypt(RECIPIENT, share, strlen(share), &out, &kind, &err), CF_OK,
                 "%s", err.msg);
    cr_assert_eq(kind, CF_SHAREWRAP_AGE);
    cr_assert_eq(strncmp(out, "-----BEGIN AGE ENCRYPTED FILE-----\n", 35), 0);
    cr_assert_null(strstr(out, share));
    free(out);
    /* a file named like a recipient is read as a file */
    write_text("age1.pub", "not a key\n", 10, path, sizeof(path));
    cr_assert_eq(chdir(dir), 0);
    cr_assert_eq(cf_sharewrap_check("age1.pub", &kind, &err), CF_EINVAL);
    cr_assert_not_null(strstr(err.msg, "'age1.pub' is not an age recipient"), "%s", err.msg);
    cr_assert_eq(chdir("/"), 0);
}

Test(sharewrap, refuses_keys_it_cannot_use)
{
    EVP_PKEY *small = EVP_RSA_gen(1024);
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    char small_path[256], ec_path[256], junk_path[256], missing[256], private_path[256];
    char identity_path[256], pgp_secret_path[256], pgp_binary_path[256], two_path[256];
    char other_hrp_path[256], bad_line_path[256];
    struct cf_err err;
    write_public(small, "small.pub", small_path, sizeof(small_path));
    write_public(ec, "ec.pub", ec_path, sizeof(ec_path));
    write_text("junk.pub", "not a key\n", 10, junk_path, sizeof(junk_path));
    snprintf(missing, sizeof(missing), "%s/missing.pub", dir);
    snprintf(private_path, sizeof(private_path), "%s/private.pem", dir);
    FILE *f = fopen(private_path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(PEM_write_PrivateKey(f, rsa, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    /* what age-keygen writes: the identity, with the recipient in a comment */
    static const char identity[] =
        "# created: 2026-12-01T00:00:00Z\n# public key: " RECIPIENT "\n" IDENTITY "\n";
    write_text("identity.txt", identity, strlen(identity), identity_path, sizeof(identity_path));
    static const char pgp_secret[] = "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlFgEZ...\n"
                                     "-----END PGP PRIVATE KEY BLOCK-----\n";
    write_text("secret.asc", pgp_secret, strlen(pgp_secret), pgp_secret_path,
               sizeof(pgp_secret_path));
    /* an old-format secret key packet (tag 5), as `gpg --export-secret-keys` writes it */
    static const unsigned char pgp_binary[] = {0x95, 0x01, 0x02, 0x04, 0x00};
    write_text("secret.gpg", pgp_binary, sizeof(pgp_binary), pgp_binary_path,
               sizeof(pgp_binary_path));
    static const char two[] = RECIPIENT "\n" RECIPIENT "\n";
    write_text("two.txt", two, strlen(two), two_path, sizeof(two_path));
    static const char other_hrp[] =
        "age1yubikey1qqqsyqcyq5rqwzqfpg9scrgwpugpzysnzs23v9ccrydpk8qarc0jqmenk29\n";
    write_text("yubikey.txt", other_hrp, strlen(other_hrp), other_hrp_path, sizeof(other_hrp_path));
    static const char bad_line[] = RECIPIENT "\nssh-ed25519 AAAA\n";
    write_text("mixed.txt", bad_line, strlen(bad_line), bad_line_path, sizeof(bad_line_path));
    const struct {
        const char *entry, *words;
        bool named; /* the message quotes the entry */
    } cases[] = {
        {small_path, "has 1024 bits; at least 2048", true},
        {ec_path, "is not an RSA key", true},
        {junk_path, "is not an age recipient (age1...), an OpenPGP public key or an RSA PEM", true},
        {missing, "cannot read the share key", true},
        {private_path, "holds a private key, not a PEM public key", true},
        {identity_path, "holds an age secret key (an identity)", true},
        {pgp_secret_path, "holds an OpenPGP secret key", true},
        {pgp_binary_path, "holds an OpenPGP secret key", true},
        {two_path, "holds 2 age recipients: one per share key entry", true},
        {other_hrp_path, "its prefix is 'age1yubikey', not 'age'", true},
        {bad_line_path, "is not an age recipient (age1...)", true},
        {IDENTITY, "is an age secret key (AGE-SECRET-KEY-...)", false},
        {"age-secret-key-1gfpyysjzgfpyysjzgfpyysjzgfpyysjzgfpyysjzgfpyysjzgfpq4egaex",
         "is an age secret key", false},
        {"age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwk",
         "checksum that does not match", true},
        {"age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq5cu47z", "low-order", true},
        {"", "cannot read the share key ''", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL;
        enum cf_sharewrap_kind kind;
        cf_err_clear(&err);
        cr_assert_eq(cf_sharewrap_check(cases[i].entry, &kind, &err), CF_EINVAL, "%s",
                     cases[i].entry);
        cr_assert_not_null(strstr(err.msg, cases[i].words), "%s", err.msg);
        if (cases[i].named)
            cr_assert_not_null(strstr(err.msg, cases[i].entry), "%s", err.msg);
        else /* a secret given inline is not repeated, in either case */
            cr_assert_null(strcasestr(err.msg, "GFPYYSJZ"), "%s", err.msg);
        cr_assert_eq(cf_sharewrap_encrypt(cases[i].entry, "x", 1, &out, &kind, &err), CF_EINVAL);
        cr_assert_null(out);
    }
    EVP_PKEY_free(small);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
}
