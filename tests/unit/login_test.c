/* Unit tests for universal-auth login over a fake store: a wrong client secret and an unknown
 * client id get the same answer after the same work (the secrets of some identity are listed and
 * the presented secret is hashed and compared either way), and the failed-login throttle locks out
 * a (source address, client id) pair and an address, never the client id everywhere. Then the
 * login block every method shares (auth/login.h), driven by a fake method: throttled before the
 * method is asked, an unknown configuration refused and counted, a login from an address outside
 * the grant's ranges refused and counted, a refusal of admit not counted, and a success issuing a
 * token under the method's token policy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "auth/login.h"
#include "auth/throttle.h"
#include "auth/universal.h"
#include "crypto/keyring.h"
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

/* The last access token stored, and what the next token_create answers. */
static struct cf_access_token created;
static int tokens_created;
static enum cf_rc token_create_rc;

static enum cf_rc fake_token_create(struct cf_store *st, const struct cf_access_token *token,
                                    struct cf_err *err)
{
    (void)st;
    if (token_create_rc != CF_OK)
        return cf_err_set(err, token_create_rc, "out of uses");
    created = *token;
    tokens_created++;
    return CF_OK;
}

static const struct cf_store_ops fake_ops = {
    .token_create = fake_token_create,
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
    tokens_created = 0;
    token_create_rc = CF_OK;
    memset(&created, 0, sizeof(created));
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

/* A fake login method: what its callbacks answer and how often they were called. */
struct fake_method {
    enum cf_rc get_rc, verify_rc, admit_rc;
    const char *login_ips;
    struct cf_token_policy policy;
    int gets, verifies, admits;
};

static enum cf_rc fake_get(void *ctx, const struct cf_login_call *call, const char *key,
                           bool *known, struct cf_err *err)
{
    struct fake_method *m = ctx;
    (void)call;
    (void)key;
    m->gets++;
    *known = m->get_rc == CF_OK;
    return m->get_rc == CF_OK ? CF_OK : cf_err_set(err, m->get_rc, "store says no");
}

static enum cf_rc fake_verify(void *ctx, const struct cf_login_call *call,
                              struct cf_login_grant *grant, struct cf_err *err)
{
    struct fake_method *m = ctx;
    (void)call;
    m->verifies++;
    if (m->verify_rc != CF_OK)
        return cf_err_set(err, m->verify_rc, "bad credential");
    grant->identity_id = KNOWN_IDENTITY;
    grant->policy = &m->policy;
    grant->login_ips = m->login_ips;
    return CF_OK;
}

static enum cf_rc fake_admit(void *ctx, const struct cf_login_call *call, struct cf_err *err)
{
    struct fake_method *m = ctx;
    (void)call;
    m->admits++;
    return m->admit_rc == CF_OK ? CF_OK : cf_err_set(err, m->admit_rc, "credential revoked");
}

static const struct cf_login_method fake_method_table = {
    .auth_method = "jwt-auth",
    .what = "this identity from this address",
    .not_found = "fake auth method not found for identity",
    .get = fake_get,
    .verify = fake_verify,
    .admit = fake_admit,
};

static enum cf_rc run(struct fixture *f, struct cf_keyring *kr, struct fake_method *m,
                      const char *ip, int64_t now, struct cf_login_result *out, struct cf_err *err)
{
    cf_err_clear(err);
    return cf_login_with(&f->store, kr, &f->throttles, &fake_method_table, m, KNOWN_IDENTITY, ip,
                         now, out, err);
}

Test(login_block, throttled_before_the_method_is_asked)
{
    struct fixture f;
    struct fake_method m = {.verify_rc = CF_EUNAUTH};
    struct cf_login_result out;
    struct cf_err err;
    fixture_init(&f, 2);
    for (int i = 0; i < 2; i++)
        cr_expect_eq(run(&f, NULL, &m, "192.0.2.1", 1000 + i, &out, &err), CF_EUNAUTH);
    cr_expect_str_eq(err.msg, "bad credential");
    cr_expect(out.subject_known);
    cr_expect_eq(run(&f, NULL, &m, "192.0.2.1", 1010, &out, &err), CF_ERATELIMIT);
    cr_expect(err.retry_after_s > 0);
    cr_expect_not_null(strstr(err.msg, "this identity from this address"), "%s", err.msg);
    cr_expect_eq(m.gets, 2, "a throttled login must not read the configuration");
    cr_expect_eq(tokens_created, 0);
    fixture_release(&f);
}

Test(login_block, not_found_is_refused_and_counted)
{
    struct fixture f;
    struct fake_method m = {.get_rc = CF_ENOTFOUND};
    struct cf_login_result out;
    struct cf_err err;
    fixture_init(&f, 1);
    cr_expect_eq(run(&f, NULL, &m, "192.0.2.2", 1000, &out, &err), CF_ENOTFOUND);
    cr_expect_str_eq(err.msg, "fake auth method not found for identity");
    cr_expect_not(out.subject_known, "an unknown identity id must not be logged as it is");
    cr_expect_eq(m.verifies, 0);
    cr_expect_eq(run(&f, NULL, &m, "192.0.2.2", 1001, &out, &err), CF_ERATELIMIT,
                 "the unknown identity was not counted as a failed attempt: %s", err.msg);
    /* Any other store failure is passed on as it is and not counted. */
    struct fake_method broken = {.get_rc = CF_EIO};
    cr_expect_eq(run(&f, NULL, &broken, "192.0.2.3", 1002, &out, &err), CF_EIO);
    cr_expect_eq(run(&f, NULL, &broken, "192.0.2.3", 1003, &out, &err), CF_EIO);
    fixture_release(&f);
}

Test(login_block, address_outside_the_login_ranges_is_refused_and_counted)
{
    struct fixture f;
    struct fake_method m = {.login_ips = "10.0.0.0/8"};
    struct cf_login_result out;
    struct cf_err err;
    fixture_init(&f, 1);
    cr_expect_eq(run(&f, NULL, &m, "192.0.2.5", 1000, &out, &err), CF_EUNAUTH);
    cr_expect_str_eq(err.msg, "IP address 192.0.2.5 is not allowed to log in");
    cr_expect_eq(m.admits, 0, "admit runs only for an allowed address");
    cr_expect_eq(tokens_created, 0);
    cr_expect_eq(run(&f, NULL, &m, "192.0.2.5", 1001, &out, &err), CF_ERATELIMIT);
    fixture_release(&f);
}

Test(login_block, admit_refusals_are_not_counted)
{
    struct fixture f;
    struct fake_method m = {.admit_rc = CF_EUNAUTH};
    struct cf_login_result out;
    struct cf_err err;
    fixture_init(&f, 1);
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(run(&f, NULL, &m, "192.0.2.6", 1000 + i, &out, &err), CF_EUNAUTH);
        cr_expect_str_eq(err.msg, "credential revoked");
    }
    cr_expect_eq(tokens_created, 0);
    fixture_release(&f);
}

Test(login_block, success_issues_a_token_under_the_policy)
{
    struct fixture f;
    struct fake_method m = {.login_ips = "10.0.0.0/8",
                            .policy = {.ttl = 600, .max_ttl = 3600, .num_uses_limit = 5}};
    struct cf_login_result out;
    struct cf_err err;
    struct cf_keyring *kr = NULL;
    uint8_t root[CF_ROOT_KEY_BYTES], hash[CF_TOKEN_HASH_BYTES];
    cf_strlcpy(m.policy.trusted_ips, "10.1.0.0/16", sizeof(m.policy.trusted_ips));
    cf_keyring_generate_root(root);
    cr_assert_eq(cf_keyring_from_bytes(root, &kr, &err), CF_OK, "%s", err.msg);
    fixture_init(&f, 2);

    /* One failure first: a success clears the (address, identity) count. */
    m.verify_rc = CF_EUNAUTH;
    cr_expect_eq(run(&f, kr, &m, "10.1.2.3", 1000, &out, &err), CF_EUNAUTH);
    m.verify_rc = CF_OK;
    cr_assert_eq(run(&f, kr, &m, "10.1.2.3", 2000, &out, &err), CF_OK, "%s", err.msg);
    cr_expect_eq(tokens_created, 1);
    cr_expect_eq(created.ttl, 600);
    cr_expect_eq(created.max_ttl, 3600);
    cr_expect_eq(created.num_uses_limit, 5);
    cr_expect_str_eq(created.trusted_ips, "10.1.0.0/16");
    cr_expect_str_eq(created.auth_method, "jwt-auth");
    cr_expect_str_eq(created.identity_id, KNOWN_IDENTITY);
    cr_expect_str_eq(created.client_secret_id, "");
    cr_expect_eq(created.created_at, 2000);
    cr_expect_eq(out.expires_in, 600);
    cr_expect_eq(out.max_ttl, 3600);
    cr_expect(cf_token_is_access_token(out.token), "%s", out.token);
    cf_token_hash(out.token, strlen(out.token), hash);
    cr_expect(cf_token_hash_equal(hash, created.hash), "the stored hash is not the token's");
    /* Had the success not cleared the first failure, this second one would reach the limit. */
    m.verify_rc = CF_EUNAUTH;
    cr_expect_eq(run(&f, kr, &m, "10.1.2.3", 3000, &out, &err), CF_EUNAUTH);
    cr_expect_eq(run(&f, kr, &m, "10.1.2.3", 3001, &out, &err), CF_EUNAUTH,
                 "the failure before the success still counts: %s", err.msg);

    /* A store that refuses the token (a client secret out of uses): the code is passed on and
     * no token is left in out. */
    fixture_release(&f);
    fixture_init(&f, 2);
    m.verify_rc = CF_OK;
    token_create_rc = CF_ECONFLICT;
    cr_expect_eq(run(&f, kr, &m, "10.1.2.3", 4000, &out, &err), CF_ECONFLICT);
    cr_expect_eq(out.token[0], '\0');
    fixture_release(&f);
    cf_keyring_free(kr);
    sodium_memzero(root, sizeof(root));
}
