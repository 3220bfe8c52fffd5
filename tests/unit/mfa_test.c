/* Unit tests of two-factor sign-in: crypto/totp against RFC 6238's own test vectors (appendix B,
 * SHA-1, the last six digits of its eight) and its skew and replay rules; core/mfa over a real
 * SQLite store: enrolment shown once and counted only after a right code, a code accepted once,
 * recovery codes used up one by one, sign-in tickets single-use, and no TOTP secret or recovery
 * code on disk in the clear. */
#include <string.h>

#include "core_fixture.h"

#include "core/mfa.h"
#include "core/users.h"
#include "crypto/totp.h"
#include "util/str.h"
#include "util/time.h"

/* RFC 6238 appendix B: the SHA-1 seed is the ASCII "12345678901234567890". */
static const uint8_t rfc_seed[] = "12345678901234567890";
#define RFC_SEED_LEN 20

Test(totp, rfc6238_vectors)
{
    static const struct {
        int64_t t;
        const char *code;
    } vectors[] = {
        {59, "287082"},         {1111111109, "081804"}, {1111111111, "050471"},
        {1234567890, "005924"}, {2000000000, "279037"}, {20000000000, "353130"},
    };
    struct cf_err e;
    for (size_t i = 0; i < CF_ARRAY_SIZE(vectors); i++) {
        char code[CF_TOTP_DIGITS + 1];
        int64_t step = -1;
        cr_assert_eq(cf_totp_code(rfc_seed, RFC_SEED_LEN, vectors[i].t / CF_TOTP_STEP_S, code, &e),
                     CF_OK, "%s", e.msg);
        cr_assert_str_eq(code, vectors[i].code, "T=%lld", (long long)vectors[i].t);
        cr_assert_eq(
            cf_totp_check(rfc_seed, RFC_SEED_LEN, vectors[i].t, vectors[i].code, 0, &step, &e),
            CF_OK, "T=%lld: %s", (long long)vectors[i].t, e.msg);
        cr_assert_eq(step, vectors[i].t / CF_TOTP_STEP_S);
    }
}

Test(totp, one_step_either_side_and_no_further)
{
    struct cf_err e;
    char code[CF_TOTP_DIGITS + 1];
    int64_t now = 1234567890, step = 0, here = now / CF_TOTP_STEP_S;
    for (int64_t d = -3; d <= 3; d++) {
        cr_assert_eq(cf_totp_code(rfc_seed, RFC_SEED_LEN, here + d, code, &e), CF_OK);
        enum cf_rc rc = cf_totp_check(rfc_seed, RFC_SEED_LEN, now, code, 0, &step, &e);
        if (d >= -CF_TOTP_SKEW_STEPS && d <= CF_TOTP_SKEW_STEPS) {
            cr_assert_eq(rc, CF_OK, "step %+lld: %s", (long long)d, e.msg);
            cr_assert_eq(step, here + d);
        } else {
            cr_assert_eq(rc, CF_EUNAUTH, "step %+lld accepted", (long long)d);
        }
    }
}

Test(totp, a_used_step_and_earlier_ones_are_refused)
{
    struct cf_err e;
    char code[CF_TOTP_DIGITS + 1];
    int64_t now = 1234567890, step = 0, here = now / CF_TOTP_STEP_S;
    cr_assert_eq(cf_totp_code(rfc_seed, RFC_SEED_LEN, here, code, &e), CF_OK);
    cr_assert_eq(cf_totp_check(rfc_seed, RFC_SEED_LEN, now, code, here, &step, &e), CF_ECONFLICT);
    cr_assert_eq(cf_totp_code(rfc_seed, RFC_SEED_LEN, here - 1, code, &e), CF_OK);
    cr_assert_eq(cf_totp_check(rfc_seed, RFC_SEED_LEN, now, code, here, &step, &e), CF_ECONFLICT);
    cr_assert_eq(cf_totp_code(rfc_seed, RFC_SEED_LEN, here + 1, code, &e), CF_OK);
    cr_assert_eq(cf_totp_check(rfc_seed, RFC_SEED_LEN, now, code, here, &step, &e), CF_OK);
    cr_assert_eq(step, here + 1);
}

Test(totp, shapes)
{
    struct cf_err e;
    int64_t step;
    cr_assert(cf_totp_code_shaped("012345"));
    const char *bad[] = {"", "12345", "1234567", "12345a", " 12345", "123 456", "-12345"};
    for (size_t i = 0; i < CF_ARRAY_SIZE(bad); i++) {
        cr_assert_not(cf_totp_code_shaped(bad[i]), "'%s'", bad[i]);
        cr_assert_eq(cf_totp_check(rfc_seed, RFC_SEED_LEN, 59, bad[i], 0, &step, &e), CF_EUNAUTH);
    }
}

Test(totp, secret_base32_round_trip)
{
    struct cf_err e;
    uint8_t secret[CF_TOTP_SECRET_BYTES], back[64];
    char b32[CF_TOTP_SECRET_B32_MAX];
    size_t n = 0;
    cr_assert_eq(cf_totp_secret_new(secret, b32, &e), CF_OK, "%s", e.msg);
    cr_assert_eq(strlen(b32), 32);
    for (const char *p = b32; *p; p++)
        cr_assert((*p >= 'A' && *p <= 'Z') || (*p >= '2' && *p <= '7'), "'%c' in %s", *p, b32);
    cr_assert_eq(cf_totp_secret_decode(b32, back, sizeof(back), &n, &e), CF_OK, "%s", e.msg);
    cr_assert_eq(n, CF_TOTP_SECRET_BYTES);
    cr_assert_eq(memcmp(secret, back, n), 0);
    cr_assert_eq(cf_totp_secret_decode("not base32!", back, sizeof(back), &n, &e), CF_ECRYPTO);
}

/* ---- core/mfa over the store ---- */

TestSuite(mfa, .init = fx_setup, .fini = fx_teardown);

static struct cf_principal make_user(const char *email)
{
    struct cf_user user = {0};
    struct cf_principal p = {.kind = CF_PRINCIPAL_USER};
    cr_assert_eq(cf_users_create(&fx_core, &fx_admin, email, NULL, "member", NULL, 0, &user, &err),
                 CF_OK, "%s", err.msg);
    memcpy(p.id, user.id, sizeof(p.id));
    cf_strlcpy(p.email, user.email, sizeof(p.email));
    cf_strlcpy(p.org_role, user.org_role, sizeof(p.org_role));
    return p;
}

/* The code of the enrolment's secret at the current step plus delta. */
static void code_at(const struct cf_totp_enrolment *enrolment, int64_t delta,
                    char out[CF_TOTP_DIGITS + 1])
{
    uint8_t secret[64];
    size_t n = 0;
    cr_assert_eq(cf_totp_secret_decode(enrolment->secret, secret, sizeof(secret), &n, &err), CF_OK,
                 "%s", err.msg);
    cr_assert_eq(cf_totp_code(secret, n, cf_now_ms() / 1000 / CF_TOTP_STEP_S + delta, out, &err),
                 CF_OK, "%s", err.msg);
    sodium_memzero(secret, sizeof(secret));
}

/* Enrols who and confirms it with the current step's code: the enrolment and the recovery codes
 * into the outputs. */
static void enrol(const struct cf_principal *who, struct cf_totp_enrolment *enrolment,
                  struct cf_recovery_codes *codes)
{
    char code[CF_TOTP_DIGITS + 1];
    cr_assert_eq(cf_mfa_totp_begin(&fx_core, who, enrolment, &err), CF_OK, "%s", err.msg);
    code_at(enrolment, 0, code);
    cr_assert_eq(cf_mfa_totp_confirm(&fx_core, who, code, codes, &err), CF_OK, "%s", err.msg);
}

Test(mfa, enrolment_counts_only_after_a_right_code)
{
    struct cf_principal who = make_user("ana@example.com");
    struct cf_totp_enrolment enrolment;
    struct cf_recovery_codes codes;
    struct cf_mfa_status status;
    bool required = true;
    char code[CF_TOTP_DIGITS + 1];

    cr_assert_eq(cf_mfa_totp_begin(&fx_core, &who, &enrolment, &err), CF_OK, "%s", err.msg);
    cr_assert(strstr(enrolment.otpauth_uri, "otpauth://totp/") == enrolment.otpauth_uri);
    cr_assert_not_null(strstr(enrolment.otpauth_uri, enrolment.secret));
    cr_assert_eq(cf_mfa_required(&fx_core, who.id, &required, &err), CF_OK);
    cr_assert_not(required, "a pending enrolment must not be asked for at sign-in");
    cr_assert_eq(cf_mfa_status_get(&fx_core, &who, who.id, &status, &err), CF_OK, "%s", err.msg);
    cr_assert(status.totp_pending && !status.totp_enabled);

    code_at(&enrolment, 3, code); /* far off: wrong */
    cr_assert_eq(cf_mfa_totp_confirm(&fx_core, &who, code, &codes, &err), CF_EUNAUTH);
    cr_assert_str_eq(err.field, "code");
    cr_assert_eq(cf_mfa_totp_confirm(&fx_core, &who, "12ab56", &codes, &err), CF_EVALIDATION);
    code_at(&enrolment, 0, code);
    cr_assert_eq(cf_mfa_totp_confirm(&fx_core, &who, code, &codes, &err), CF_OK, "%s", err.msg);
    for (size_t i = 0; i < CF_RECOVERY_CODES_N; i++) {
        cr_assert_eq(strlen(codes.codes[i]), 11, "%s", codes.codes[i]);
        cr_assert_eq(codes.codes[i][5], '-');
    }
    cr_assert_eq(cf_mfa_required(&fx_core, who.id, &required, &err), CF_OK);
    cr_assert(required);
    struct cf_totp_enrolment again;
    cr_assert_eq(cf_mfa_totp_begin(&fx_core, &who, &again, &err), CF_ECONFLICT);

    /* neither the secret nor a recovery code is stored in the clear */
    cr_assert_eq(strlen(enrolment.secret), 32);
    cr_assert_not(fx_on_disk(enrolment.secret));
    for (size_t i = 0; i < CF_RECOVERY_CODES_N; i++) {
        char plain[11];
        memcpy(plain, codes.codes[i], 5);
        memcpy(plain + 5, codes.codes[i] + 6, 5);
        plain[10] = '\0';
        cr_assert_not(fx_on_disk(codes.codes[i]));
        cr_assert_not(fx_on_disk(plain));
    }
}

Test(mfa, a_code_works_once_and_recovery_codes_are_used_up)
{
    struct cf_principal who = make_user("ben@example.com");
    struct cf_totp_enrolment enrolment;
    struct cf_recovery_codes codes;
    struct cf_mfa_status status;
    char code[CF_TOTP_DIGITS + 1];
    bool recovery = true;

    enrol(&who, &enrolment, &codes);
    /* the confirming code's step is used: the same code again is a replay */
    code_at(&enrolment, 0, code);
    cr_assert_eq(cf_mfa_check(&fx_core, who.id, code, &recovery, &err), CF_ECONFLICT);
    code_at(&enrolment, 1, code);
    cr_assert_eq(cf_mfa_check(&fx_core, who.id, code, &recovery, &err), CF_OK, "%s", err.msg);
    cr_assert_not(recovery);
    cr_assert_eq(cf_mfa_check(&fx_core, who.id, code, &recovery, &err), CF_ECONFLICT);

    /* a recovery code in any case, with or without its dash, once */
    char typed[CF_RECOVERY_CODE_MAX];
    cf_strlcpy(typed, codes.codes[4], sizeof(typed));
    for (char *p = typed; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    cr_assert_eq(cf_mfa_check(&fx_core, who.id, typed, &recovery, &err), CF_OK, "%s", err.msg);
    cr_assert(recovery);
    cr_assert_eq(cf_mfa_check(&fx_core, who.id, codes.codes[4], &recovery, &err), CF_EUNAUTH);
    cr_assert_eq(cf_mfa_check(&fx_core, who.id, "AAAAA-AAAAA", &recovery, &err), CF_EUNAUTH);
    cr_assert_eq(cf_mfa_status_get(&fx_core, &who, who.id, &status, &err), CF_OK);
    cr_assert_eq(status.recovery_codes_remaining, CF_RECOVERY_CODES_N - 1);

    /* regenerating replaces them all: an old one stops working */
    struct cf_recovery_codes fresh;
    code_at(&enrolment, -1, code); /* a step before the last used one: refused */
    cr_assert_neq(cf_mfa_recovery_regenerate(&fx_core, &who, code, &fresh, &err), CF_OK);
    memset(&fresh, 0, sizeof(fresh));
    cr_assert_eq(cf_mfa_recovery_regenerate(&fx_core, &who, codes.codes[0], &fresh, &err),
                 CF_EVALIDATION, "regenerating takes an authenticator code, not a recovery code");
    cr_assert_eq(cf_mfa_check(&fx_core, who.id, codes.codes[1], &recovery, &err), CF_OK);
}

Test(mfa, tickets_are_single_use_and_disable_needs_a_code)
{
    struct cf_principal who = make_user("cy@example.com"), other = make_user("di@example.com");
    struct cf_totp_enrolment enrolment;
    struct cf_recovery_codes codes;
    struct cf_user target;
    char ticket[CF_MFA_TICKET_MAX], user_id[CF_UUID_LEN];
    int64_t expires_at = 0;

    enrol(&who, &enrolment, &codes);
    cr_assert_eq(cf_mfa_ticket_issue(&fx_core, who.id, "127.0.0.1", ticket, &expires_at, &err),
                 CF_OK, "%s", err.msg);
    cr_assert(strncmp(ticket, CF_MFA_TICKET_PREFIX, strlen(CF_MFA_TICKET_PREFIX)) == 0);
    cr_assert_gt(expires_at, cf_now_ms());
    cr_assert_leq(expires_at, cf_now_ms() + CF_MFA_TICKET_TTL_S * 1000);
    cr_assert_not(fx_on_disk(ticket));
    cr_assert_eq(cf_mfa_ticket_user(&fx_core, ticket, user_id, &err), CF_OK, "%s", err.msg);
    cr_assert_str_eq(user_id, who.id);
    cr_assert_eq(cf_mfa_ticket_take(&fx_core, ticket, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_mfa_ticket_take(&fx_core, ticket, &err), CF_EUNAUTH);
    cr_assert_eq(cf_mfa_ticket_user(&fx_core, ticket, user_id, &err), CF_EUNAUTH);
    ticket[strlen(ticket) - 1] ^= 1;
    cr_assert_eq(cf_mfa_ticket_user(&fx_core, ticket, user_id, &err), CF_EUNAUTH);

    /* a member cannot turn off someone else's; the user itself needs a code */
    cr_assert_eq(cf_mfa_disable(&fx_core, &other, who.id, NULL, &target, &err), CF_EFORBIDDEN);
    cr_assert_neq(cf_mfa_disable(&fx_core, &who, who.id, NULL, &target, &err), CF_OK);
    cr_assert_eq(cf_mfa_disable(&fx_core, &who, who.id, "BBBBB-BBBBB", &target, &err), CF_EUNAUTH);
    cr_assert_eq(cf_mfa_disable(&fx_core, &who, who.id, codes.codes[9], &target, &err), CF_OK, "%s",
                 err.msg);
    bool required = true;
    cr_assert_eq(cf_mfa_required(&fx_core, who.id, &required, &err), CF_OK);
    cr_assert_not(required);
    cr_assert_eq(cf_mfa_disable(&fx_core, &fx_admin, who.id, NULL, &target, &err), CF_ENOTFOUND);

    /* an administrator resets another user's without a code */
    enrol(&other, &enrolment, &codes);
    cr_assert_eq(cf_mfa_disable(&fx_core, &fx_admin, other.id, NULL, &target, &err), CF_OK, "%s",
                 err.msg);
    cr_assert_str_eq(target.email, "di@example.com");
}
