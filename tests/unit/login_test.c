/* Unit tests for universal-auth login over a SQLite store: a wrong client secret and an unknown
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
#include <sqlite3.h>

#include "test_dir.h"

#include "auth/login.h"
#include "auth/throttle.h"
#include "auth/token.h"
#include "auth/universal.h"
#include "crypto/keyring.h"
#include "crypto/token.h"
#include "store/store.h"
#include "util/cache.h"
#include "util/log.h"
#include "util/str.h"
#include "util/time.h"

#define KNOWN_CLIENT_ID "6f1c2d9e-0000-4000-8000-00000000c1d0"
#define KNOWN_IDENTITY "6f1c2d9e-0000-4000-8000-0000000001d0"
#define KNOWN_SECRET_ID "6f1c2d9e-0000-4000-8000-0000000005e0"
/* A client secret of KNOWN_IDENTITY with no use left. */
#define SPENT_SECRET_ID "6f1c2d9e-0000-4000-8000-0000000005e1"
/* The identity whose secrets universal.c lists for an unknown client id. */
#define NO_IDENTITY "00000000-0000-0000-0000-000000000000"
#define GOOD_SECRET "cfcs_good-secret-0123456789abcdefghijklmnopqrstuv"

struct fixture {
    char dir[64];
    char db_path[128];
    struct cf_store *store;
    struct cf_throttle *by_pair, *by_address;
    struct cf_login_throttles throttles;
};

static void add_identity(struct cf_store *st, const char *id, const char *name)
{
    struct cf_identity identity = {.created_at = 1, .updated_at = 1};
    struct cf_err err;
    cf_strlcpy(identity.id, id, sizeof(identity.id));
    cf_strlcpy(identity.name, name, sizeof(identity.name));
    cr_assert_eq(cf_store_identity_create(st, &identity, &err), CF_OK, "%s", err.msg);
}

static void add_secret(struct cf_store *st, const char *id, const char *identity_id,
                       const char *secret, int64_t num_uses, int64_t num_uses_limit)
{
    struct cf_client_secret cs = {
        .num_uses = num_uses, .num_uses_limit = num_uses_limit, .created_at = 1, .updated_at = 1};
    struct cf_err err;
    cf_strlcpy(cs.id, id, sizeof(cs.id));
    cf_strlcpy(cs.identity_id, identity_id, sizeof(cs.identity_id));
    cf_strlcpy(cs.description, "ci", sizeof(cs.description));
    cf_strlcpy(cs.prefix, "cfcs_goo", sizeof(cs.prefix));
    cf_token_hash(secret, strlen(secret), cs.hash);
    cr_assert_eq(cf_store_client_secret_create(st, &cs, &err), CF_OK, "%s", err.msg);
}

/* A store holding identity "pipeline" with universal auth (KNOWN_CLIENT_ID, every address) and
 * the client secret GOOD_SECRET, plus a spent secret (SPENT_SECRET_ID). */
static void fixture_init(struct fixture *f, int max_failures)
{
    struct cf_throttle_policy pair = {max_failures, 60, 60};
    struct cf_throttle_policy address = {max_failures * 10, 60, 60};
    struct cf_store_config config = {.dsn = f->db_path};
    struct cf_err err;
    cf_log_set_level("warn");
    cf_strlcpy(f->dir, "/tmp/coffer-login-XXXXXX", sizeof(f->dir));
    cr_assert_not_null(mkdtemp(f->dir));
    snprintf(f->db_path, sizeof(f->db_path), "%s/coffer.db", f->dir);
    cr_assert_eq(cf_store_open(&config, &f->store, &err), CF_OK, "%s", err.msg);
    add_identity(f->store, KNOWN_IDENTITY, "pipeline");
    struct cf_ua_config ua = {.created_at = 1, .updated_at = 1};
    cf_strlcpy(ua.identity_id, KNOWN_IDENTITY, sizeof(ua.identity_id));
    cf_strlcpy(ua.client_id, KNOWN_CLIENT_ID, sizeof(ua.client_id));
    cf_strlcpy(ua.token.trusted_ips, "0.0.0.0/0,::/0", sizeof(ua.token.trusted_ips));
    cf_strlcpy(ua.client_secret_trusted_ips, "0.0.0.0/0,::/0",
               sizeof(ua.client_secret_trusted_ips));
    cr_assert_eq(cf_store_ua_attach(f->store, &ua, &err), CF_OK, "%s", err.msg);
    add_secret(f->store, KNOWN_SECRET_ID, KNOWN_IDENTITY, GOOD_SECRET, 0, 0);
    add_secret(f->store, SPENT_SECRET_ID, KNOWN_IDENTITY, "cfcs_spent", 1, 1);
    f->by_pair = cf_throttle_new(&pair);
    f->by_address = cf_throttle_new(&address);
    cr_assert(f->by_pair && f->by_address);
    f->throttles = (struct cf_login_throttles){f->by_pair, f->by_address};
}

static void fixture_release(struct fixture *f)
{
    cf_throttle_free(f->by_pair);
    cf_throttle_free(f->by_address);
    cf_store_close(f->store);
    test_dir_remove(f->dir);
}

/* Runs sql on the store's file directly (the tests' way to damage rows the store must read). */
static void tamper(struct fixture *f, const char *sql)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(f->db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
}

/* How many access tokens the store holds; the only one into *out when there is one. */
static int tokens_stored(struct fixture *f, struct cf_access_token *out)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    char id[CF_UUID_LEN] = "";
    int n = 0;
    cr_assert_eq(sqlite3_open_v2(f->db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT id FROM identity_access_tokens", -1, &s, NULL),
                 SQLITE_OK);
    while (sqlite3_step(s) == SQLITE_ROW) {
        if (n++ == 0)
            cf_strlcpy(id, (const char *)sqlite3_column_text(s, 0), sizeof(id));
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    if (n == 1 && out) {
        struct cf_err err;
        cr_assert_eq(cf_store_token_get(f->store, id, out, &err), CF_OK, "%s", err.msg);
    }
    return n;
}

/* A refused login (no token is issued, so no keyring is needed). */
static enum cf_rc try_login(struct fixture *f, const char *client_id, const char *secret,
                            const char *ip, int64_t now, struct cf_err *err)
{
    struct cf_login_result result;
    cf_err_clear(err);
    return cf_ua_login(f->store, NULL, &f->throttles, client_id, secret, ip, now, &result, err);
}

/* The shape of an access token: three base64url parts joined by two dots, shorter than
 * CF_ACCESS_TOKEN_MAX; anything else is not one (an admin token, a JWT of another alphabet). */
Test(login, access_token_shape)
{
    static const char *const yes[] = {"a.b.c", "eyJ0-_.Zm9v.YmFy", "..", "AZaz09-_.x.y"};
    static const char *const no[] = {
        "", "abc", "a.b", "a.b.c.d", "a.b.c=", "a+b.c.d", "a/b.c", "a.b.c ", "a.b.c\n", "cfadm_x",
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(yes); i++)
        cr_expect(cf_token_is_access_token(yes[i]), "%s", yes[i]);
    for (size_t i = 0; i < CF_ARRAY_SIZE(no); i++)
        cr_expect_not(cf_token_is_access_token(no[i]), "%s", no[i]);
    char long_token[CF_ACCESS_TOKEN_MAX + 1];
    memset(long_token, 'a', sizeof(long_token) - 1);
    long_token[1] = long_token[3] = '.';
    long_token[CF_ACCESS_TOKEN_MAX - 1] = '\0';
    cr_expect(cf_token_is_access_token(long_token), "the longest that fits");
    long_token[CF_ACCESS_TOKEN_MAX - 1] = 'a';
    long_token[CF_ACCESS_TOKEN_MAX] = '\0';
    cr_expect_not(cf_token_is_access_token(long_token), "one byte too long");
}

Test(login, unknown_client_id_and_wrong_secret_do_the_same_work)
{
    struct fixture f;
    struct cf_err wrong, unknown;
    fixture_init(&f, 100);

    cr_expect_eq(try_login(&f, KNOWN_CLIENT_ID, "cfcs_wrong", "192.0.2.1", 1000, &wrong),
                 CF_EUNAUTH);
    cr_expect_eq(try_login(&f, "6f1c2d9e-0000-4000-8000-0000000000ff", "cfcs_wrong", "192.0.2.1",
                           1000, &unknown),
                 CF_EUNAUTH);
    cr_expect_str_eq(unknown.msg, wrong.msg,
                     "the answers must not tell an unknown client id apart");
    cr_expect_null(strstr(unknown.msg, "6f1c2d9e"), "the client id is not echoed: %s", unknown.msg);

    /* Both list client secrets: with every listed row unreadable (a prefix longer than the store
     * reads), both fail in the store instead of answering 401, the unknown client id on the
     * secrets of the dummy identity. */
    add_identity(f.store, NO_IDENTITY, "dummy");
    add_secret(f.store, "6f1c2d9e-0000-4000-8000-0000000005ee", NO_IDENTITY, "cfcs_other", 0, 0);
    tamper(&f, "UPDATE identity_client_secrets SET prefix = 'a-prefix-longer-than-eight'");
    cr_expect_eq(try_login(&f, KNOWN_CLIENT_ID, "cfcs_wrong", "192.0.2.2", 1001, &wrong), CF_ESTORE,
                 "a wrong secret must list the identity's secrets: %s", wrong.msg);
    cr_expect_eq(try_login(&f, "6f1c2d9e-0000-4000-8000-0000000000ff", "cfcs_wrong", "192.0.2.2",
                           1001, &unknown),
                 CF_ESTORE,
                 "an unknown client id must list (no) secrets and compare against a dummy too: %s",
                 unknown.msg);
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
    const char *client_secret_id; /* of the grant; NULL: none */
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
    grant->client_secret_id = m->client_secret_id;
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
    return cf_login_with(f->store, kr, &f->throttles, &fake_method_table, m, KNOWN_IDENTITY, ip,
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
    cr_expect_eq(tokens_stored(&f, NULL), 0);
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
    cr_expect_eq(tokens_stored(&f, NULL), 0);
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
    cr_expect_eq(tokens_stored(&f, NULL), 0);
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
    struct cf_access_token created;
    cr_assert_eq(tokens_stored(&f, &created), 1);
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
    m.client_secret_id = SPENT_SECRET_ID;
    cr_expect_eq(run(&f, kr, &m, "10.1.2.3", 4000, &out, &err), CF_ECONFLICT, "%s", err.msg);
    cr_expect_eq(out.token[0], '\0');
    cr_expect_eq(tokens_stored(&f, NULL), 0);
    fixture_release(&f);
    cf_keyring_free(kr);
    sodium_memzero(root, sizeof(root));
}

/* ---- access token checks with the verified-signature cache (auth/token.h) ---- */

TestSuite(token_verified);

/* Issues an access token of KNOWN_IDENTITY valid for an hour from now_ms into out. */
static void issue(struct fixture *f, struct cf_keyring *kr, const char *id, int64_t now_ms,
                  char out[CF_ACCESS_TOKEN_MAX])
{
    struct cf_access_token record = {.ttl = 3600, .max_ttl = 3600, .created_at = now_ms};
    struct cf_err err;
    cf_strlcpy(record.id, id, sizeof(record.id));
    cf_strlcpy(record.identity_id, KNOWN_IDENTITY, sizeof(record.identity_id));
    cf_strlcpy(record.auth_method, "universal-auth", sizeof(record.auth_method));
    cf_strlcpy(record.trusted_ips, "0.0.0.0/0,::/0", sizeof(record.trusted_ips));
    cr_assert_eq(cf_token_issue(f->store, kr, &record, out, CF_ACCESS_TOKEN_MAX, &err), CF_OK, "%s",
                 err.msg);
}

/* The first check verifies the signature and remembers it, the next ones find it; the stored
 * record is still what decides (a revoked token is refused at once), and a token that differs by
 * one byte of its signature is never taken for the remembered one. */
Test(token_verified, remembered_once_and_the_record_still_decides)
{
    struct fixture f;
    struct cf_keyring *kr = NULL;
    struct cf_err err;
    uint8_t root[CF_ROOT_KEY_BYTES];
    char token[CF_ACCESS_TOKEN_MAX];
    struct cf_access_token record;
    struct cf_cache_stats stats;
    fixture_init(&f, 5);
    cf_keyring_generate_root(root);
    cr_assert_eq(cf_keyring_from_bytes(root, &kr, &err), CF_OK, "%s", err.msg);
    struct cf_cache *verified = cf_cache_new(&(struct cf_cache_config){.max_entries = 16});
    cr_assert_not_null(verified);
    int64_t now = cf_now_ms();
    issue(&f, kr, "6f1c2d9e-0000-4000-8000-0000000007a0", now, token);

    for (int i = 0; i < 3; i++)
        cr_assert_eq(
            cf_token_check(f.store, kr, verified, token, "127.0.0.1", now, true, &record, &err),
            CF_OK, "check %d: %s", i, err.msg);
    cr_assert_str_eq(record.identity_id, KNOWN_IDENTITY);
    cf_cache_stats(verified, &stats);
    cr_assert_eq(stats.entries, 1, "one token remembered, not %zu", stats.entries);
    cr_assert_eq(stats.hits, 2, "the second and third checks use it, not %llu hits",
                 (unsigned long long)stats.hits);

    /* A forged signature (its last character changed) is checked, and refused. */
    char forged[CF_ACCESS_TOKEN_MAX];
    cf_strlcpy(forged, token, sizeof(forged));
    size_t n = strlen(forged);
    forged[n - 1] = forged[n - 1] == 'A' ? 'B' : 'A';
    cr_assert_eq(
        cf_token_check(f.store, kr, verified, forged, "127.0.0.1", now, true, &record, &err),
        CF_EUNAUTH);
    cf_cache_stats(verified, &stats);
    cr_assert_eq(stats.entries, 1, "a refused token is not remembered");

    /* Another keyring (a rotated root key) has its own cache; with this one the token is refused.
     */
    struct cf_keyring *other = NULL;
    uint8_t other_root[CF_ROOT_KEY_BYTES];
    cf_keyring_generate_root(other_root);
    cr_assert_eq(cf_keyring_from_bytes(other_root, &other, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_token_check(f.store, other, NULL, token, "127.0.0.1", now, true, &record, &err),
                 CF_EUNAUTH);
    cf_keyring_free(other);

    /* Revoked: refused on the next check although its signature is remembered. */
    cr_assert_eq(cf_token_revoke(f.store, kr, token, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(
        cf_token_check(f.store, kr, verified, token, "127.0.0.1", now, true, &record, &err),
        CF_EUNAUTH);
    cr_assert(strstr(err.msg, "revoked") != NULL, "%s", err.msg);

    cf_cache_free(verified);
    cf_keyring_free(kr);
    sodium_memzero(root, sizeof(root));
    sodium_memzero(token, sizeof(token));
    fixture_release(&f);
}
