/* The lease engine (core/leases.c) over a real SQLite store with a stand-in dynamic provider given
 * through core->dynamic_find (no stand-in ships in the binary): a due lease is revoked once however
 * many owners run it, a failed revocation is retried after its backoff and not before, a failed
 * create keeps no lease, and renewal stops at the maximum TTL and, for a credential whose end the
 * provider cannot move, at that end. Time moves with the test clock's
 * file (a test build; the tests that need it are skipped otherwise). */
#include <stdio.h>
#include <stdlib.h>

#include "core_fixture.h"

#include "core/dynamic.h"
#include "core/leases.h"
#include "core/projects.h"
#include "provider/dynamic.h"
#include "util/time.h"

static struct {
    int creates, renews, revokes;
    enum cf_rc create_rc, revoke_rc;
    int64_t credential_cut_ms; /* the credential ends this much before the lease asked */
} fake;

static enum cf_rc fake_check(const json_t *params, struct cf_err *e)
{
    return json_is_object(params) ? CF_OK
                                  : cf_err_field(e, CF_EVALIDATION, "inputs", "inputs: an object");
}

static enum cf_rc fake_create(const struct cf_provider_conn *conn, const json_t *params,
                              const struct cf_lease_ref *ref, struct cf_leased_cred *out,
                              struct cf_err *e)
{
    (void)conn;
    (void)params;
    fake.creates++;
    if (fake.create_rc != CF_OK)
        return cf_err_set(e, fake.create_rc, "fake: target unreachable");
    snprintf(out->id, sizeof(out->id), "user-%.8s", ref->id);
    out->fields = json_pack("{s:s, s:s}", "USER", out->id, "PASSWORD", "fake-password");
    out->expires_at = ref->expires_at - fake.credential_cut_ms;
    return CF_OK;
}

static enum cf_rc fake_renew(const struct cf_provider_conn *conn, const json_t *params,
                             const struct cf_lease_ref *ref, const char *id, struct cf_err *e)
{
    (void)conn, (void)params, (void)ref, (void)id, (void)e;
    fake.renews++;
    return CF_OK;
}

static enum cf_rc fake_revoke(const struct cf_provider_conn *conn, const json_t *params,
                              const struct cf_lease_ref *ref, const char *id, struct cf_err *e)
{
    (void)conn, (void)params, (void)ref, (void)id;
    fake.revokes++;
    return fake.revoke_rc == CF_OK ? CF_OK : cf_err_set(e, fake.revoke_rc, "fake: unreachable");
}

static const char *const fake_fields[] = {"USER", "PASSWORD", NULL};

static const struct cf_dynamic_ops fake_ops = {
    .type = "fake",
    .connection_app = NULL,
    .fields = fake_fields,
    .config_check = fake_check,
    .create = fake_create,
    .renew = fake_renew,
    .revoke = fake_revoke,
};

/* A provider whose credential ends with the lease it was made for and cannot be moved (as an Entra
 * ID client secret's endDateTime). */
static const struct cf_dynamic_ops fixed_ops = {
    .type = "fixed",
    .connection_app = NULL,
    .fields = fake_fields,
    .config_check = fake_check,
    .create = fake_create,
    .credential_end_fixed = true,
    .renew = NULL,
    .revoke = fake_revoke,
};

static const struct cf_dynamic_ops *find_fake(const char *type)
{
    return strcmp(type, "fake") == 0 ? &fake_ops : strcmp(type, "fixed") == 0 ? &fixed_ops : NULL;
}

static struct cf_project_view project;
static char clock_path[300];
static const struct cf_dynamic_where where = {"app", "dev", "/", "db"};

/* Moves the clock to seconds from the real time. */
static void set_clock(long seconds)
{
    char tmp[310];
    snprintf(tmp, sizeof(tmp), "%s.new", clock_path);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    if (seconds)
        fprintf(f, "%+lds\n", seconds);
    else
        fprintf(f, "0\n");
    fclose(f);
    cr_assert_eq(rename(tmp, clock_path), 0);
}

static void setup(void)
{
    fx_setup();
    memset(&fake, 0, sizeof(fake));
    fx_core.dynamic_find = find_fake;
    snprintf(clock_path, sizeof(clock_path), "%s/clock", fx_dir);
    set_clock(0);
    setenv("COFFER_TEST_CLOCK_FILE", clock_path, 1);
    cr_assert_eq(cf_projects_create(&fx_core, &fx_admin, "app", NULL, NULL, &project, &err), CF_OK,
                 "%s", err.msg);
    json_t *params = json_object();
    struct cf_dynamic_spec spec = {.type = "fake",
                                   .params = params,
                                   .default_ttl_ms = 3600 * 1000,
                                   .max_ttl_ms = 2 * 3600 * 1000};
    struct cf_dynamic_view view;
    cr_assert_eq(cf_dynamic_create(&fx_core, &fx_admin, &where, &spec, &view, &err), CF_OK, "%s",
                 err.msg);
    json_decref(params);
}

static void teardown(void)
{
    unsetenv("COFFER_TEST_CLOCK_FILE");
    cf_project_view_release(&project);
    fx_teardown();
}

TestSuite(leases, .init = setup, .fini = teardown);

static void new_lease(struct cf_lease_view *out)
{
    json_t *data = NULL;
    cr_assert_eq(cf_lease_create(&fx_core, &fx_admin, &where, 0, out, &data, &err), CF_OK, "%s",
                 err.msg);
    cr_assert_str_eq(json_string_value(json_object_get(data, "PASSWORD")), "fake-password");
    cf_lease_data_free(data);
}

Test(leases, revoked_once_however_many_owners_run_it)
{
    struct cf_lease_view view, after;
    bool ran_a = false, ran_b = false;
    if (!cf_test_clock_build())
        cr_skip("needs a test build (meson -Dtest_clock=true)");
    new_lease(&view);
    cr_assert_eq(cf_leases_execute(&fx_core, view.lease.id, "owner-a", &ran_a, &err), CF_OK);
    cr_assert(!ran_a, "revoked before its end");
    set_clock(3601);
    cr_assert_eq(cf_leases_execute(&fx_core, view.lease.id, "owner-a", &ran_a, &err), CF_OK, "%s",
                 err.msg);
    cr_assert_eq(cf_leases_execute(&fx_core, view.lease.id, "owner-b", &ran_b, &err), CF_OK, "%s",
                 err.msg);
    cr_assert(ran_a && !ran_b);
    cr_assert_eq(fake.revokes, 1);
    cr_assert_eq(cf_lease_get(&fx_core, &fx_admin, view.lease.id, &after, &err), CF_OK);
    cr_assert_str_eq(after.lease.state, "revoked");
}

Test(leases, failed_revocation_waits_for_its_backoff)
{
    struct cf_lease_view view, after;
    bool ran = false;
    if (!cf_test_clock_build())
        cr_skip("needs a test build (meson -Dtest_clock=true)");
    new_lease(&view);
    fake.revoke_rc = CF_EIO;
    set_clock(3601);
    cr_assert_eq(cf_leases_execute(&fx_core, view.lease.id, "w", &ran, &err), CF_OK, "%s", err.msg);
    cr_assert(ran);
    cr_assert_eq(cf_lease_get(&fx_core, &fx_admin, view.lease.id, &after, &err), CF_OK);
    cr_assert_str_eq(after.lease.state, "active");
    cr_assert_eq(after.lease.revoke_attempts, 1);
    cr_assert_str_eq(after.lease.last_error, "fake: unreachable");
    cr_assert_eq(cf_leases_execute(&fx_core, view.lease.id, "w", &ran, &err), CF_OK);
    cr_assert(!ran, "retried before the backoff ran out");
    set_clock(3601 + CF_LEASE_BACKOFF_FIRST_MS / 1000 + 1);
    cr_assert_eq(cf_leases_execute(&fx_core, view.lease.id, "w", &ran, &err), CF_OK);
    cr_assert(ran);
    cr_assert_eq(cf_lease_get(&fx_core, &fx_admin, view.lease.id, &after, &err), CF_OK);
    cr_assert_eq(after.lease.revoke_attempts, 2);
    /* the second wait doubles */
    cr_assert_geq(after.lease.next_attempt_at - cf_now_ms(), 2 * CF_LEASE_BACKOFF_FIRST_MS - 1000);
    fake.revoke_rc = CF_OK;
    set_clock(3601 + 60);
    cr_assert_eq(cf_leases_execute(&fx_core, view.lease.id, "w", &ran, &err), CF_OK);
    cr_assert(ran);
    cr_assert_eq(cf_lease_get(&fx_core, &fx_admin, view.lease.id, &after, &err), CF_OK);
    cr_assert_str_eq(after.lease.state, "revoked");
    cr_assert_eq(fake.revokes, 3);
}

Test(leases, failed_create_keeps_no_lease)
{
    struct cf_lease_view view;
    struct cf_lease_view_list list = {0};
    json_t *data = NULL;
    fake.create_rc = CF_EIO;
    cr_assert_eq(cf_lease_create(&fx_core, &fx_admin, &where, 0, &view, &data, &err), CF_EUNAVAIL);
    cr_assert_null(data);
    cr_assert(strstr(err.msg, "unreachable"), "%s", err.msg);
    cr_assert_eq(cf_leases_list(&fx_core, &fx_admin, &where, false, true, &list, &err), CF_OK);
    cr_assert_eq(list.n, 0);
    cf_lease_view_list_release(&list);
}

Test(leases, renewal_stops_at_the_maximum)
{
    struct cf_lease_view view, renewed;
    new_lease(&view);
    cr_assert_eq(
        cf_lease_renew(&fx_core, &fx_admin, view.lease.id, 3 * 3600 * 1000, "r", &renewed, &err),
        CF_EVALIDATION);
    cr_assert_str_eq(err.field, "ttl");
    cr_assert_eq(fake.renews, 0);
    cr_assert_eq(
        cf_lease_renew(&fx_core, &fx_admin, view.lease.id, 90 * 60 * 1000, "r", &renewed, &err),
        CF_OK, "%s", err.msg);
    cr_assert_eq(fake.renews, 1);
    cr_assert_gt(renewed.lease.expires_at, view.lease.expires_at);
    cr_assert_eq(cf_lease_revoke(&fx_core, &fx_admin, view.lease.id, "r", &renewed, &err), CF_OK);
    cr_assert_eq(cf_lease_renew(&fx_core, &fx_admin, view.lease.id, 0, "r", &renewed, &err),
                 CF_ECONFLICT);
}

Test(leases, renewal_stops_at_a_credential_end_the_provider_cannot_move)
{
    const struct cf_dynamic_where fixed_where = {"app", "dev", "/", "fixed"};
    json_t *params = json_object();
    struct cf_dynamic_spec spec = {.type = "fixed",
                                   .params = params,
                                   .default_ttl_ms = 3600 * 1000,
                                   .max_ttl_ms = 4 * 3600 * 1000};
    struct cf_dynamic_view dv;
    struct cf_lease_view view, renewed;
    json_t *data = NULL;
    cr_assert_eq(cf_dynamic_create(&fx_core, &fx_admin, &fixed_where, &spec, &dv, &err), CF_OK,
                 "%s", err.msg);
    json_decref(params);
    cr_assert_eq(cf_lease_create(&fx_core, &fx_admin, &fixed_where, 0, &view, &data, &err), CF_OK,
                 "%s", err.msg);
    cf_lease_data_free(data);
    char end[CF_TIME_RFC3339_LEN];
    cf_time_format(view.lease.expires_at, end);
    /* within maxTTL, but past the credential's own end: refused, naming that end */
    cr_assert_eq(
        cf_lease_renew(&fx_core, &fx_admin, view.lease.id, 2 * 3600 * 1000, "r", &renewed, &err),
        CF_ECONFLICT);
    cr_assert(strstr(err.msg, end), "%s", err.msg);
    cr_assert(strstr(err.msg, "cannot be renewed past"), "%s", err.msg);
    struct cf_lease_view now;
    cr_assert_eq(cf_lease_get(&fx_core, &fx_admin, view.lease.id, &now, &err), CF_OK);
    cr_assert_eq(now.lease.expires_at, view.lease.expires_at);
    cr_assert_str_eq(now.lease.state, "active");
    /* shortening it is fine, and then it cannot grow back either */
    cr_assert_eq(
        cf_lease_renew(&fx_core, &fx_admin, view.lease.id, 30 * 60 * 1000, "r", &renewed, &err),
        CF_OK, "%s", err.msg);
    cr_assert_lt(renewed.lease.expires_at, view.lease.expires_at);
    cr_assert_eq(
        cf_lease_renew(&fx_core, &fx_admin, view.lease.id, 50 * 60 * 1000, "r", &renewed, &err),
        CF_ECONFLICT);
    cr_assert_eq(fake.renews, 0);

    /* a credential that ends before the lease asked for: the lease ends with it */
    fake.credential_cut_ms = 10 * 60 * 1000;
    struct cf_lease_view cut;
    cr_assert_eq(cf_lease_create(&fx_core, &fx_admin, &fixed_where, 0, &cut, &data, &err), CF_OK,
                 "%s", err.msg);
    cf_lease_data_free(data);
    cr_assert_eq(cf_lease_get(&fx_core, &fx_admin, cut.lease.id, &now, &err), CF_OK);
    cr_assert_eq(now.lease.expires_at, cut.lease.expires_at);
    cr_assert_lt(now.lease.expires_at - now.lease.created_at, 51 * 60 * 1000);
}
