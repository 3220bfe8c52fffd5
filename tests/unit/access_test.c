/* Unit tests of access requests and temporary grants (core/access.h) over a real SQLite store: the
 * checks of a request, who may decide, the decisions as conditional updates, and the grant check
 * inside cf_authz_check (what it allows, the grant's id noted, the end time honoured, revocation).
 */
#include <string.h>

#include "core_fixture.h"

#include "core/access.h"
#include "core/authz.h"
#include "core/projects.h"
#include "core/users.h"
#include "util/id.h"
#include "util/str.h"
#include "util/time.h"

TestSuite(access, .init = fx_setup, .fini = fx_teardown);

static struct cf_principal user_principal(const char *email, const char *org_role)
{
    struct cf_user user = {0};
    struct cf_principal p = {.kind = CF_PRINCIPAL_USER};
    cr_assert_eq(cf_users_create(&fx_core, &fx_admin, email, NULL, org_role, NULL, 0, &user, &err),
                 CF_OK, "%s", err.msg);
    memcpy(p.id, user.id, sizeof(p.id));
    cf_strlcpy(p.email, user.email, sizeof(p.email));
    cf_strlcpy(p.org_role, user.org_role, sizeof(p.org_role));
    return p;
}

/* The project "shop" with prod:/backend; its prod environment into prod. */
static void make_place(struct cf_env *prod, struct cf_env *dev)
{
    struct cf_project_view view = {0};
    struct cf_folder folder;
    cr_assert_eq(cf_projects_create(&fx_core, &fx_admin, "shop", NULL, NULL, &view, &err), CF_OK,
                 "%s", err.msg);
    cr_assert_eq(
        cf_folders_create(&fx_core, &fx_admin, "shop", "prod", "/", "backend", NULL, &folder, &err),
        CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_env_get(fx_store, view.project.id, "prod", prod, &err), CF_OK);
    cr_assert_eq(cf_store_env_get(fx_store, view.project.id, "dev", dev, &err), CF_OK);
    cf_project_view_release(&view);
}

static const struct cf_access_spec asked = {.project = "shop",
                                            .env = "prod",
                                            .path = "/backend/**",
                                            .duration = "2h",
                                            .reason = "incident"};

Test(access, bad_requests_name_the_field)
{
    struct cf_env prod, dev;
    struct cf_access_request r;
    struct cf_principal asker = user_principal("asker@example.com", "member");
    make_place(&prod, &dev);
    static const struct {
        const char *duration, *actions, *reason, *path, *field;
    } cases[] = {
        {"0", NULL, "why", NULL, "duration"},         {"25h", NULL, "why", NULL, "duration"},
        {"", NULL, "why", NULL, "duration"},          {"2h", "administer", "why", NULL, "actions"},
        {"2h", "read,,edit", "why", NULL, "actions"}, {"2h", NULL, "", NULL, "reason"},
        {"2h", NULL, "why", "backend", "secretPath"},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        struct cf_access_spec spec = asked;
        spec.duration = cases[i].duration;
        spec.actions = cases[i].actions;
        spec.reason = cases[i].reason;
        spec.path = cases[i].path;
        cr_expect_eq(cf_access_request_create(&fx_core, &asker, &spec, &r, &err), CF_EVALIDATION,
                     "case %zu", i);
        cr_expect_str_eq(err.field, cases[i].field, "case %zu: %s", i, err.msg);
    }
    struct cf_access_spec spec = asked;
    spec.project = "nope";
    cr_expect_eq(cf_access_request_create(&fx_core, &asker, &spec, &r, &err), CF_ENOTFOUND);
    fx_core.access_max_s = 3600; /* a configured maximum */
    cr_expect_eq(cf_access_request_create(&fx_core, &asker, &asked, &r, &err), CF_EVALIDATION);
    cr_expect(strstr(err.msg, "3600 seconds") != NULL, "%s", err.msg);
    cr_expect_eq(cf_access_request_create(&fx_core, &fx_admin, &asked, &r, &err), CF_EFORBIDDEN);
}

Test(access, grant_allows_only_what_it_names_until_its_end)
{
    struct cf_env prod, dev;
    struct cf_access_request r, decided;
    struct cf_principal asker = user_principal("asker@example.com", "member");
    struct cf_principal owner = user_principal("owner@example.com", "owner");
    struct cf_principal lead = user_principal("lead@example.com", "member");
    char noted[CF_UUID_LEN] = "";
    make_place(&prod, &dev);
    asker.grant_used = noted;
    cr_assert_eq(cf_access_request_create(&fx_core, &asker, &asked, &r, &err), CF_OK, "%s",
                 err.msg);
    cr_expect_eq(r.actions, CF_ACTION_BIT(CF_ACTION_READ));
    cr_expect_eq(r.duration_s, 7200);
    const char *pid = r.project_id;
    cr_expect_eq(cf_authz_check(&fx_core, &asker, CF_ACTION_READ, pid, &prod, "/backend", &err),
                 CF_EFORBIDDEN, "pending grants nothing");
    /* neither its user (even as an org owner) nor a member without project administration
     * decides */
    cr_expect_eq(cf_access_request_grant(&fx_core, &asker, r.id, NULL, NULL, &decided, &err),
                 CF_EFORBIDDEN);
    cr_expect_eq(cf_access_request_grant(&fx_core, &lead, r.id, NULL, NULL, &decided, &err),
                 CF_ENOTFOUND);
    cr_assert_eq(cf_access_request_grant(&fx_core, &owner, r.id, "1h", "ok", &decided, &err), CF_OK,
                 "%s", err.msg);
    cr_expect_str_eq(decided.status, "granted");
    cr_expect_str_eq(decided.decided_by, "owner@example.com");
    cr_expect_eq(decided.ends_at - decided.starts_at, 3600 * 1000);
    cr_expect_eq(cf_access_request_grant(&fx_core, &owner, r.id, NULL, NULL, &decided, &err),
                 CF_ECONFLICT, "decided once");

    cr_expect_eq(cf_authz_check(&fx_core, &asker, CF_ACTION_READ, pid, &prod, "/backend", &err),
                 CF_OK, "%s", err.msg);
    cr_expect_str_eq(noted, r.id);
    cr_expect_eq(cf_authz_check(&fx_core, &asker, CF_ACTION_READ, pid, &prod, "/backend/api", &err),
                 CF_OK, "%s", err.msg);
    cr_expect_eq(cf_authz_check(&fx_core, &asker, CF_ACTION_READ, pid, &prod, "/frontend", &err),
                 CF_EFORBIDDEN);
    cr_expect_eq(cf_authz_check(&fx_core, &asker, CF_ACTION_READ, pid, &dev, "/backend", &err),
                 CF_EFORBIDDEN);
    cr_expect_eq(cf_authz_check(&fx_core, &asker, CF_ACTION_EDIT, pid, &prod, "/backend", &err),
                 CF_EFORBIDDEN);
    cr_expect_eq(cf_authz_check(&fx_core, &asker, CF_ACTION_ADMIN, pid, NULL, NULL, &err),
                 CF_EFORBIDDEN);

    /* its end passed (stored as such): it stops matching, with no job */
    cr_assert_eq(cf_store_access_request_get(fx_store, r.id, &decided, &err), CF_OK);
    decided.ends_at = cf_now_ms() - 1;
    cr_assert_eq(cf_store_access_request_decide(fx_store, &decided, "granted", &err), CF_OK);
    cr_expect_eq(cf_authz_check(&fx_core, &asker, CF_ACTION_READ, pid, &prod, "/backend", &err),
                 CF_EFORBIDDEN);
    cr_expect_str_eq(cf_access_request_state(&decided, cf_now_ms()), "expired");
    cr_expect_eq(cf_access_request_revoke(&fx_core, &owner, r.id, NULL, &decided, &err),
                 CF_ECONFLICT, "an ended grant is not revoked");
}

Test(access, project_admin_decides_and_revocation_is_immediate)
{
    struct cf_env prod, dev;
    struct cf_access_request r, decided;
    struct cf_access_request_list list = {0};
    struct cf_principal asker = user_principal("asker@example.com", "member");
    struct cf_principal lead = user_principal("lead@example.com", "member");
    struct cf_membership m = {.role = "admin"};
    make_place(&prod, &dev);
    struct cf_access_spec spec = asked;
    spec.actions = "read,edit";
    cr_assert_eq(cf_access_request_create(&fx_core, &asker, &spec, &r, &err), CF_OK, "%s", err.msg);
    cf_uuid_new(m.id);
    memcpy(m.identity_id, lead.id, sizeof(m.identity_id));
    memcpy(m.project_id, r.project_id, sizeof(m.project_id));
    cr_assert_eq(cf_store_user_membership_put(fx_store, &m, &err), CF_OK, "%s", err.msg);
    cr_expect_eq(cf_access_request_list(&fx_core, &asker, "shop", NULL, &list, &err),
                 CF_EFORBIDDEN);
    cr_assert_eq(cf_access_request_list(&fx_core, &lead, "shop", "pending", &list, &err), CF_OK);
    cr_expect_eq(list.n, 1);
    cf_access_request_list_release(&list);
    cr_assert_eq(cf_access_request_grant(&fx_core, &lead, r.id, NULL, NULL, &decided, &err), CF_OK,
                 "%s", err.msg);
    cr_expect_eq(
        cf_authz_check(&fx_core, &asker, CF_ACTION_EDIT, r.project_id, &prod, "/backend", &err),
        CF_OK, "%s", err.msg);
    cr_assert_eq(cf_access_request_list(&fx_core, &asker, NULL, "live", &list, &err), CF_OK);
    cr_expect_eq(list.n, 1, "its own live grant");
    cf_access_request_list_release(&list);
    cr_assert_eq(cf_access_request_revoke(&fx_core, &asker, r.id, "done", &decided, &err), CF_OK,
                 "%s", err.msg);
    cr_expect_str_eq(decided.revoked_by, "asker@example.com");
    cr_expect_eq(
        cf_authz_check(&fx_core, &asker, CF_ACTION_READ, r.project_id, &prod, "/backend", &err),
        CF_EFORBIDDEN);
    cr_expect_eq(cf_access_request_deny(&fx_core, &lead, r.id, NULL, &decided, &err), CF_ECONFLICT);
}
