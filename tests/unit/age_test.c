/* Bech32 decoding (util/bech32.h) against BIP-173's test vectors, age recipients
 * (crypto/age.h) against the age specification's example, and the armored age files we write
 * decrypted by the real `age` CLI (Debian's age package; scripts/deps.sh installs it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "crypto/age.h"
#include "test_dir.h"
#include "util/bech32.h"

/* The example of the age specification (age-encryption.org/v1): an identity and its recipient. */
#define SPEC_IDENTITY "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
#define SPEC_RECIPIENT "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"

Test(bech32, decodes_the_bip173_valid_vectors)
{
    static const struct {
        const char *text, *hrp;
        size_t data_len;
    } cases[] = {
        {"A12UEL5L", "a", 0},
        {"a12uel5l", "a", 0},
        {"an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tg"
         "s",
         "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio", 0},
        {"abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", "abcdef", 20},
        {"11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247"
         "j",
         "1", 51},
        {"split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w", "split", 30},
        {"?1ezyfcl", "?", 0},
        {SPEC_RECIPIENT, "age", 32},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char hrp[CF_BECH32_HRP_MAX + 1];
        uint8_t data[64];
        size_t data_len = 99;
        struct cf_err err;
        cf_err_clear(&err);
        cr_assert_eq(cf_bech32_decode(cases[i].text, hrp, data, sizeof(data), &data_len, &err),
                     CF_OK, "%s: %s", cases[i].text, err.msg);
        cr_assert_str_eq(hrp, cases[i].hrp);
        cr_assert_eq(data_len, cases[i].data_len, "%s", cases[i].text);
    }
    /* the data of abcdef1...: the alphabet in order, 0..31 as 5-bit groups */
    char hrp[CF_BECH32_HRP_MAX + 1];
    uint8_t data[20], want[20];
    size_t data_len = 0;
    cr_assert_eq(cf_bech32_decode("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", hrp, data,
                                  sizeof(data), &data_len, NULL),
                 CF_OK);
    for (unsigned bit = 0; bit < 160; bit++) {
        unsigned group = bit / 5, in_group = 4 - bit % 5;
        if (bit % 8 == 0)
            want[bit / 8] = 0;
        want[bit / 8] |= (uint8_t)(((group >> in_group) & 1) << (7 - bit % 8));
    }
    cr_assert_eq(memcmp(data, want, sizeof(want)), 0);
}

Test(bech32, refuses_the_bip173_invalid_vectors)
{
    static const struct {
        const char *text, *words;
    } cases[] = {
        {"\x20"
         "1nwldj5",
         "outside printable ASCII"},
        {"\x7f"
         "1axkwrx",
         "outside printable ASCII"},
        {"\x80"
         "1eym55h",
         "outside printable ASCII"},
        {"pzry9x0s0muk", "no separator"},
        {"1pzry9x0s0muk", "empty or too long human-readable part"},
        {"x1b4n0q5v", "outside the Bech32 alphabet"},
        {"li1dgmt3", "too short for its checksum"},
        {"de1lg7wt\xff", "outside printable ASCII"},
        {"A1G7SGD8", "checksum that does not match"},
        {"10a06t8", "empty or too long human-readable part"},
        {"1qzzfhee", "empty or too long human-readable part"},
        {"a12UEL5L", "mixed upper and lower case"},
        /* one character of the spec's recipient changed: the checksum catches it */
        {"age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwk",
         "checksum that does not match"},
        {"age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73eqnujwj",
         "checksum that does not match"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char hrp[CF_BECH32_HRP_MAX + 1];
        uint8_t data[64];
        size_t data_len = 0;
        struct cf_err err;
        cf_err_clear(&err);
        cr_assert_eq(cf_bech32_decode(cases[i].text, hrp, data, sizeof(data), &data_len, &err),
                     CF_EINVAL, "case %zu", i);
        cr_assert_not_null(strstr(err.msg, cases[i].words), "case %zu: %s", i, err.msg);
    }
    /* more data than the caller's room */
    char hrp[CF_BECH32_HRP_MAX + 1];
    uint8_t small[31];
    size_t data_len = 0;
    struct cf_err err;
    cf_err_clear(&err);
    cr_assert_eq(cf_bech32_decode(SPEC_RECIPIENT, hrp, small, sizeof(small), &data_len, &err),
                 CF_EINVAL);
    cr_assert_not_null(strstr(err.msg, "more data than the 31 bytes"), "%s", err.msg);
}

Test(age, the_spec_recipient_is_the_public_key_of_the_spec_identity)
{
    char hrp[CF_BECH32_HRP_MAX + 1];
    uint8_t identity[32], recipient[CF_AGE_RECIPIENT_BYTES], derived[32];
    size_t len = 0;
    struct cf_err err;
    cf_err_clear(&err);
    cr_assert_eq(cf_bech32_decode(SPEC_IDENTITY, hrp, identity, sizeof(identity), &len, &err),
                 CF_OK, "%s", err.msg);
    cr_assert_str_eq(hrp, "age-secret-key-");
    cr_assert_eq(len, 32);
    cr_assert_eq(cf_age_recipient_parse(SPEC_RECIPIENT, recipient, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(crypto_scalarmult_base(derived, identity), 0);
    cr_assert_eq(memcmp(derived, recipient, sizeof(derived)), 0);
    /* upper case is Bech32 too */
    uint8_t upper[CF_AGE_RECIPIENT_BYTES];
    cr_assert_eq(cf_age_recipient_parse("AGE1ZVKYG2LQZRAA2LNJVQEJ32NKUU0UES2S82HZRYE869XEEXVN73EQUN"
                                        "UJWJ",
                                        upper, &err),
                 CF_OK, "%s", err.msg);
    cr_assert_eq(memcmp(upper, recipient, sizeof(upper)), 0);
}

Test(age, refuses_what_is_not_an_x25519_recipient)
{
    static const struct {
        const char *text, *words;
    } cases[] = {
        /* a plugin's recipient, valid Bech32 */
        {"age1yubikey1qqqsyqcyq5rqwzqfpg9scrgwpugpzysnzs23v9ccrydpk8qarc0jqmenk29",
         "its prefix is 'age1yubikey', not 'age'"},
        /* 31 bytes */
        {"age1qqqsyqcyq5rqwzqfpg9scrgwpugpzysnzs23v9ccrydpk8qarc535lh4", "31 bytes, not 32"},
        /* the all-zero point (low order) */
        {"age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq5cu47z", "low-order"},
        {"age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwk", "checksum"},
        {"age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnuJwj", "mixed upper and lower"},
        {"age1", "too short for its checksum"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t key[CF_AGE_RECIPIENT_BYTES];
        struct cf_err err;
        cf_err_clear(&err);
        cr_assert_eq(cf_age_recipient_parse(cases[i].text, key, &err), CF_EINVAL, "case %zu", i);
        cr_assert_not_null(strstr(err.msg, cases[i].words), "case %zu: %s", i, err.msg);
    }
}

static char dir[] = "/tmp/cf-age-XXXXXX";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

/* What `age -d -i identity FILE` prints (at most size - 1 bytes), and its exit status. */
static int age_decrypt(const char *identity, const char *file, char *out, size_t size)
{
    char command[1024];
    snprintf(command, sizeof(command), "age -d -i '%s' '%s' 2>/dev/null", identity, file);
    FILE *p = popen(command, "r");
    cr_assert_not_null(p);
    size_t got = fread(out, 1, size - 1, p);
    out[got] = '\0';
    return pclose(p);
}

static void setup_dir(void)
{
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    test_dir_remove(dir);
}

Test(age, age_cli_decrypts_what_is_encrypted_to_its_recipient, .init = setup_dir,
     .fini = remove_dir)
{
    if (system("command -v age >/dev/null 2>&1") != 0)
        cr_skip_test("the age CLI is not installed (scripts/deps.sh installs it)");
    char identity[256], file[256], other_identity[256], plain[1024];
    uint8_t recipient[CF_AGE_RECIPIENT_BYTES];
    struct cf_err err;
    const char *share = "AbMWvxyLJfnJK4XAZpcKS8yVDMNnYEY2MyneUG9XceQj";
    char *armored = NULL;

    snprintf(identity, sizeof(identity), "%s/identity.txt", dir);
    write_file(identity, "# the age specification's example identity\n" SPEC_IDENTITY "\n");
    snprintf(file, sizeof(file), "%s/share.age", dir);
    cf_err_clear(&err);
    cr_assert_eq(cf_age_recipient_parse(SPEC_RECIPIENT, recipient, &err), CF_OK);
    cr_assert_eq(cf_age_encrypt_armored(recipient, share, strlen(share), &armored, &err), CF_OK,
                 "%s", err.msg);
    /* the armor: strict PEM, lines of at most 64 columns, and the share nowhere in clear */
    cr_assert_eq(strncmp(armored, "-----BEGIN AGE ENCRYPTED FILE-----\n", 35), 0);
    cr_assert_not_null(strstr(armored, "\n-----END AGE ENCRYPTED FILE-----\n"));
    cr_assert_null(strstr(armored, share));
    for (const char *line = armored; *line;) {
        const char *eol = strchr(line, '\n');
        cr_assert_not_null(eol);
        cr_assert_leq(eol - line, 64, "a line of %td columns", eol - line);
        line = eol + 1;
    }
    write_file(file, armored);
    cr_assert_eq(age_decrypt(identity, file, plain, sizeof(plain)), 0, "age -d failed");
    cr_assert_str_eq(plain, share);

    /* another identity (32 bytes of 0x11) cannot open it */
    snprintf(other_identity, sizeof(other_identity), "%s/other.txt", dir);
    write_file(other_identity,
               "AGE-SECRET-KEY-1ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYGSUZRZYL\n");
    cr_assert_neq(age_decrypt(other_identity, file, plain, sizeof(plain)), 0);

    /* a second encryption differs (fresh file key, ephemeral share and nonce) */
    char *again = NULL;
    cr_assert_eq(cf_age_encrypt_armored(recipient, share, strlen(share), &again, &err), CF_OK);
    cr_assert_str_neq(armored, again);
    free(again);
    free(armored);

    /* an empty plaintext and one of several STREAM chunks (64 KiB each) decrypt too */
    static char big[3 * 65536 + 17];
    for (size_t i = 0; i < sizeof(big) - 1; i++)
        big[i] = (char)('a' + i % 26);
    cr_assert_eq(cf_age_encrypt_armored(recipient, "", 0, &armored, &err), CF_OK);
    write_file(file, armored);
    free(armored);
    cr_assert_eq(age_decrypt(identity, file, plain, sizeof(plain)), 0);
    cr_assert_str_eq(plain, "");
    cr_assert_eq(cf_age_encrypt_armored(recipient, big, sizeof(big) - 1, &armored, &err), CF_OK);
    write_file(file, armored);
    free(armored);
    char command[1024];
    snprintf(command, sizeof(command), "age -d -i '%s' '%s' | cmp -s - '%s/big'", identity, file,
             dir);
    char big_path[256];
    snprintf(big_path, sizeof(big_path), "%s/big", dir);
    write_file(big_path, big);
    cr_assert_eq(system(command), 0, "age -d of a 3-chunk file");
}
