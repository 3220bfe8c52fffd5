/* Unit tests for crypto/shamir.c: a split opened by every subset of threshold shares and by none
 * smaller, a wrong or foreign share refused, a changed record header refused, the text form of a
 * share and the refusal of text that is not one. */
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "crypto/shamir.h"
#include "util/err.h"
#include "util/banned.h"

#define N 5
#define T 3

static uint8_t root[CF_ROOT_KEY_BYTES];
static uint8_t shares[N][CF_SHARE_BYTES];
static uint8_t record[CF_SHAMIR_RECORD_BYTES];

static void split(void)
{
    struct cf_err err;
    cr_assert(sodium_init() >= 0);
    randombytes_buf(root, sizeof(root));
    cr_assert_eq(cf_shamir_seal(root, N, T, shares, record, &err), CF_OK, "%s", err.msg);
}

TestSuite(shamir, .init = split);

Test(shamir, every_subset_of_threshold_opens_it)
{
    /* every 3-subset of 5 shares, in both orders of each pair of positions */
    for (unsigned mask = 0; mask < (1u << N); mask++) {
        if (__builtin_popcount(mask) != T)
            continue;
        uint8_t chosen[T][CF_SHARE_BYTES];
        unsigned k = 0;
        for (unsigned i = N; i-- > 0;)
            if (mask & (1u << i))
                memcpy(chosen[k++], shares[i], CF_SHARE_BYTES);
        uint8_t out[CF_ROOT_KEY_BYTES] = {0};
        struct cf_err err;
        cr_assert_eq(cf_shamir_open(record, sizeof(record), chosen, T, out, &err), CF_OK,
                     "subset %x: %s", mask, err.msg);
        cr_assert_eq(memcmp(out, root, sizeof(root)), 0, "subset %x", mask);
    }
    /* all five also open it */
    uint8_t out[CF_ROOT_KEY_BYTES] = {0};
    cr_assert_eq(cf_shamir_open(record, sizeof(record), shares, N, out, NULL), CF_OK);
    cr_assert_eq(memcmp(out, root, sizeof(root)), 0);
}

Test(shamir, fewer_than_threshold_or_repeated_are_refused)
{
    uint8_t out[CF_ROOT_KEY_BYTES];
    struct cf_err err;
    cr_assert_eq(cf_shamir_open(record, sizeof(record), shares, T - 1, out, &err), CF_EINVAL);
    cr_assert(strstr(err.msg, "2 share(s) given, 3 needed"), "%s", err.msg);
    uint8_t twice[T][CF_SHARE_BYTES];
    memcpy(twice[0], shares[0], CF_SHARE_BYTES);
    memcpy(twice[1], shares[1], CF_SHARE_BYTES);
    memcpy(twice[2], shares[0], CF_SHARE_BYTES);
    cr_assert_eq(cf_shamir_open(record, sizeof(record), twice, T, out, &err), CF_EINVAL);
    cr_assert(strstr(err.msg, "twice"), "%s", err.msg);
}

Test(shamir, a_wrong_share_is_refused_without_naming_it)
{
    uint8_t wrong[T][CF_SHARE_BYTES];
    uint8_t out[CF_ROOT_KEY_BYTES];
    struct cf_err err;
    memcpy(wrong, shares, sizeof(wrong));
    wrong[1][9] ^= 0x01;
    cr_assert_eq(cf_shamir_open(record, sizeof(record), wrong, T, out, &err), CF_ECRYPTO);
    cr_assert(strstr(err.msg, "at least one"), "%s", err.msg);
    uint8_t zero[CF_ROOT_KEY_BYTES] = {0};
    cr_assert_eq(memcmp(out, zero, sizeof(out)), 0, "a refused key is wiped");

    /* shares of another split of the same root key */
    uint8_t other[N][CF_SHARE_BYTES], other_record[CF_SHAMIR_RECORD_BYTES];
    cr_assert_eq(cf_shamir_seal(root, N, T, other, other_record, NULL), CF_OK);
    memcpy(wrong, shares, sizeof(wrong));
    memcpy(wrong[2], other[2], CF_SHARE_BYTES);
    cr_assert_eq(cf_shamir_open(record, sizeof(record), wrong, T, out, NULL), CF_ECRYPTO);
}

Test(shamir, the_record_header_is_bound)
{
    uint8_t changed[CF_SHAMIR_RECORD_BYTES];
    uint8_t out[CF_ROOT_KEY_BYTES];
    memcpy(changed, record, sizeof(changed));
    changed[1] = N + 1; /* claims one more share */
    cr_assert_eq(cf_shamir_open(changed, sizeof(changed), shares, T, out, NULL), CF_ECRYPTO);
    unsigned n = 0, t = 0;
    cr_assert_eq(cf_shamir_record_info(record, sizeof(record), &n, &t, NULL), CF_OK);
    cr_assert_eq(n, N);
    cr_assert_eq(t, T);
    cr_assert_eq(cf_shamir_record_info(record, sizeof(record) - 1, &n, &t, NULL), CF_EINVAL);
    changed[1] = N;
    changed[0] = 9; /* another format */
    cr_assert_eq(cf_shamir_record_info(changed, sizeof(changed), &n, &t, NULL), CF_EINVAL);
}

Test(shamir, bad_splits_are_refused)
{
    uint8_t many[CF_SHAMIR_MAX_SHARES + 1][CF_SHARE_BYTES];
    uint8_t rec[CF_SHAMIR_RECORD_BYTES];
    cr_assert_eq(cf_shamir_seal(root, 5, 6, many, rec, NULL), CF_EINVAL);
    cr_assert_eq(cf_shamir_seal(root, 5, 1, many, rec, NULL), CF_EINVAL);
    cr_assert_eq(cf_shamir_seal(root, 0, 0, many, rec, NULL), CF_EINVAL);
    cr_assert_eq(cf_shamir_seal(root, CF_SHAMIR_MAX_SHARES + 1, 2, many, rec, NULL), CF_EINVAL);
    /* one share of one: the unseal key itself */
    uint8_t out[CF_ROOT_KEY_BYTES];
    cr_assert_eq(cf_shamir_seal(root, 1, 1, many, rec, NULL), CF_OK);
    cr_assert_eq(cf_shamir_open(rec, sizeof(rec), many, 1, out, NULL), CF_OK);
    cr_assert_eq(memcmp(out, root, sizeof(root)), 0);
}

Test(shamir, text_round_trip_and_refusals)
{
    char text[CF_SHARE_TEXT_MAX];
    uint8_t back[CF_SHARE_BYTES];
    struct cf_err err;
    cf_shamir_share_encode(shares[3], text);
    cr_assert_eq(strlen(text), 44);
    cr_assert_eq(cf_shamir_share_decode(text, strlen(text), back, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(memcmp(back, shares[3], CF_SHARE_BYTES), 0);
    char padded[64];
    snprintf(padded, sizeof(padded), "  %s\r\n", text);
    cr_assert_eq(cf_shamir_share_decode(padded, strlen(padded), back, NULL), CF_OK);

    static const char *const bad[] = {
        "",
        "hello",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  /* x = 0 */
        "AbMWvxyLJfnJK4XAZpcKS8yVDMNnYEY2MyneUG9XceQ",   /* 43 characters */
        "AbMWvxyLJfnJK4XAZpcKS8yVDMNnYEY2MyneUG9XceQjA", /* 45 */
        "AbMWvxyLJfnJK4XAZpcKS8yVDMNnYEY2MyneUG9Xce+/",  /* standard alphabet */
        "AbMWvxyLJfnJK4XAZpcKS8yVDMNnYEY2MyneUG9Xce Q",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(cf_shamir_share_decode(bad[i], strlen(bad[i]), back, &err), CF_EINVAL, "%zu",
                     i);
        cr_assert(strstr(err.msg, "44 characters"), "%s", err.msg);
    }
}
