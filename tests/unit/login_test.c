/* Unit tests for universal-auth login over a fake store: a wrong client secret and an unknown
 * client id get the same answer after the same work (the secrets of some identity are listed and
 * the presented secret is hashed and compared either way), and the failed-login throttle locks out
 * a (source address, client id) pair and an address, never the client id everywhere. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "auth/throttle.h"
#include "auth/universal.h"
#include "crypto/token.h"
#include "store/store.h"
#include "util/str.h"

#define KNOWN_CLIENT_ID "6f1c2d9e-0000-4000-8000-00000000c1d0"
#define KNOWN_IDENTITY "6f1c2d9e-0000-4000-8000-0000000001d0"
#define GOOD_SECRET "cfcs_good-secret-0123456789abcdefghijklmnopqrstuv"

/* What the fake store was asked. */
static int secret_lists, lookups;

static enum cf_rc fake_ua_get_by_client_id(struct cf_store *st, const char *client_id,
                                           struct cf_ua_config *out, struct cf_err *err)
{
    (void)st;
    lookups++;
    if (strcmp(client_id, KNOWN_CLIENT_ID) != 0)
        return cf_err_set(err, CF_ENOTFOUND, "no such client id");
    memset(out, 0, sizeof(*out));
    cf_strlcpy(out->identity_id, KNOWN_IDENTITY, sizeof(out->identity_id));
    cf_strlcpy(out->client_id, KNOWN_CLIENT_ID, sizeof(out->client_id));
    cf_strlcpy(out->token.trusted_ips, "0.0.0.0/0,::/0", sizeof(out->token.trusted_ips));
    cf_strlcpy(out->client_secret_trusted_ips, "0.0.0.0/0,::/0",
               sizeof(out->client_secret_trusted_ips));
    return CF_OK;
}

static enum cf_rc fake_client_secret_list(struct cf_store *st, const char *identity_id,
                                          struct cf_client_secret_list *out, struct cf_err *err)
{
    (void)st;
    (void)err;
    secret_lists++;
    out->items = NULL;
    out->n = 0;
    if (strcmp(identity_id, KNOWN_IDENTITY) != 0)
        return CF_OK;
    out->items = calloc(1, sizeof(*out->items));
    cr_assert_not_null(out->items);
    out->n = 1;
    cf_strlcpy(out->items[0].identity_id, KNOWN_IDENTITY, sizeof(out->items[0].identity_id));
    cf_token_hash(GOOD_SECRET, strlen(GOOD_SECRET), out->items[0].hash);
    return CF_OK;
}

static enum cf_rc fake_identity_get(struct cf_store *st, const char *identity_id,
                                    struct cf_identity *out, struct cf_err *err)
{
    (void)st;
    (void)identity_id;
    (void)err;
    memset(out, 0, sizeof(*out));
    cf_strlcpy(out->name, "pipeline", sizeof(out->name));
    return CF_OK;
}

static const struct cf_store_ops fake_ops = {
    .ua_get_by_client_id = fake_ua_get_by_client_id,
    .client_secret_list = fake_client_secret_list,
    .identity_get = fake_identity_get,
};

struct fixture {
    struct cf_store store;
    struct cf_throttle *by_pair, *by_address;
    struct cf_login_throttles throttles;
};

static void fixture_init(struct fixture *f, int max_failures)
{
    struct cf_throttle_policy pair = {max_failures, 60, 60};
    struct cf_throttle_policy address = {max_failures * 10, 60, 60};
    f->store.ops = &fake_ops;
    f->store.backend = "fake";
    f->by_pair = cf_throttle_new(&pair);
    f->by_address = cf_throttle_new(&address);
    cr_assert(f->by_pair && f->by_address);
    f->throttles = (struct cf_login_throttles){f->by_pair, f->by_address};
    secret_lists = lookups = 0;
}

static void fixture_release(struct fixture *f)
{
    cf_throttle_free(f->by_pair);
    cf_throttle_free(f->by_address);
}

/* A refused login (no token is issued, so no keyring is needed). */
static enum cf_rc try_login(struct fixture *f, const char *client_id, const char *secret,
                            const char *ip, int64_t now, struct cf_err *err)
{
    struct cf_login_result result;
    cf_err_clear(err);
    return cf_ua_login(&f->store, NULL, &f->throttles, client_id, secret, ip, now, &result, err);
}

Test(login, unknown_client_id_and_wrong_secret_do_the_same_work)
{
    struct fixture f;
    struct cf_err wrong, unknown;
    fixture_init(&f, 100);

    cr_expect_eq(try_login(&f, KNOWN_CLIENT_ID, "cfcs_wrong", "192.0.2.1", 1000, &wrong),
                 CF_EUNAUTH);
    int lists_for_wrong = secret_lists;
    secret_lists = 0;
    cr_expect_eq(try_login(&f, "6f1c2d9e-0000-4000-8000-0000000000ff", "cfcs_wrong", "192.0.2.1",
                           1000, &unknown),
                 CF_EUNAUTH);
    int lists_for_unknown = secret_lists;

    cr_expect_str_eq(unknown.msg, wrong.msg,
                     "the answers must not tell an unknown client id apart");
    cr_expect_eq(lists_for_wrong, 1);
    cr_expect_eq(lists_for_unknown, 1,
                 "an unknown client id must list (no) secrets and compare against a dummy too");
    cr_expect_null(strstr(unknown.msg, "6f1c2d9e"), "the client id is not echoed: %s", unknown.msg);
    fixture_release(&f);
}

Test(login, failures_lock_out_the_address_not_the_client_id)
{
    struct fixture f;
    struct cf_err err;
    fixture_init(&f, 3);
    int64_t now = 5000000;
    for (int i = 0; i < 3; i++)
        cr_expect_eq(try_login(&f, KNOWN_CLIENT_ID, "cfcs_wrong", "192.0.2.66", now + i, &err),
                     CF_EUNAUTH);
    cr_expect_eq(try_login(&f, KNOWN_CLIENT_ID, "cfcs_wrong", "192.0.2.66", now + 5, &err),
                 CF_ERATELIMIT);
    cr_expect(err.retry_after_s > 0);
    /* From any other address the client id is not locked: a wrong secret is an ordinary 401. */
    cr_expect_eq(try_login(&f, KNOWN_CLIENT_ID, "cfcs_wrong", "192.0.2.7", now + 6, &err),
                 CF_EUNAUTH, "another address is locked out by the attacker's failures: %s",
                 err.msg);
    /* The locked-out pair does not lock the attacker's address for other client ids. */
    cr_expect_eq(
        try_login(&f, "6f1c2d9e-0000-4000-8000-0000000000ff", "x", "192.0.2.66", now + 7, &err),
        CF_EUNAUTH);
    fixture_release(&f);
}

Test(login, many_addresses_keep_memory_bounded_and_lockouts_in_place)
{
    struct fixture f;
    struct cf_err err;
    char address[64];
    fixture_init(&f, 2);
    int64_t now = 9000000;
    /* One address earns a lockout for the client id ... */
    for (int i = 0; i < 2; i++)
        try_login(&f, KNOWN_CLIENT_ID, "cfcs_wrong", "198.51.100.1", now, &err);
    cr_expect_eq(try_login(&f, KNOWN_CLIENT_ID, "cfcs_wrong", "198.51.100.1", now + 1, &err),
                 CF_ERATELIMIT);
    /* ... then 6,000 other addresses (more than the tables hold) fail once each: the fixed tables
     * give way to them without growing, and the stalest unlocked entries go first, so the lockout
     * stays. */
    for (int i = 0; i < 6000; i++) {
        snprintf(address, sizeof(address), "2001:db8::%x:%x", i / 65536, i % 65536);
        cr_assert_eq(try_login(&f, KNOWN_CLIENT_ID, "cfcs_wrong", address, now + 2 + i, &err),
                     CF_EUNAUTH, "%s: %s", address, err.msg);
    }
    cr_expect_eq(try_login(&f, KNOWN_CLIENT_ID, "cfcs_wrong", "198.51.100.1", now + 30000, &err),
                 CF_ERATELIMIT);
    fixture_release(&f);
}
