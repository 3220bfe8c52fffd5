/* Unit tests of core/approvals over a real SQLite store and keyring (tests/unit/core_fixture.h): a
 * user's write to a covered place is held as a change request whose value is sealed at rest; the
 * author cannot approve it nor merge it unapproved; an approver's approval lets it merge, applying
 * the value; a key that moved since the request was made makes the merge a conflict that leaves the
 * request open and the newer value in place; a machine identity is refused naming the policy; an
 * uncovered place is not held. */
#include "core_fixture.h"

#include "core/approvals.h"
#include "core/projects.h"
#include "core/secrets.h"
#include "core/users.h"
#include "util/banned.h"

static struct cf_project_view project;
static struct cf_scope prod, dev;
static struct cf_principal author, approver;

static void make_user(const char *email, const char *role, struct cf_principal *who)
{
    struct cf_user user = {0};
    cr_assert_eq(cf_users_create(&fx_core, &fx_admin, email, NULL, role, NULL, 0, &user, &err),
                 CF_OK, "%s", err.msg);
    cf_users_principal(&user, who);
}

static void setup(void)
{
    fx_setup();
    cr_assert_eq(cf_projects_create(&fx_core, &fx_admin, "app", NULL, NULL, &project, &err), CF_OK,
                 "%s", err.msg);
    cr_assert_eq(
        cf_scope_resolve(&fx_core, &fx_admin, CF_ACTION_READ, "app", "prod", "/", &prod, &err),
        CF_OK, "%s", err.msg);
    cr_assert_eq(
        cf_scope_resolve(&fx_core, &fx_admin, CF_ACTION_READ, "app", "dev", "/", &dev, &err), CF_OK,
        "%s", err.msg);
    /* the author may write anywhere (an org admin); the approver has no membership at all */
    make_user("author@example.com", "admin", &author);
    make_user("approver@example.com", "member", &approver);
    const char *approvers[] = {"approver@example.com"};
    struct cf_approval_policy_spec spec = {.project = "app",
                                           .name = "prod-changes",
                                           .env = "prod",
                                           .path_glob = "/**",
                                           .approvals = 1,
                                           .user_refs = approvers,
                                           .n_users = 1};
    struct cf_approval_policy policy = {0};
    cr_assert_eq(cf_approvals_policy_create(&fx_core, &fx_admin, &spec, &policy, &err), CF_OK, "%s",
                 err.msg);
    cf_approval_policy_release(&policy);
}

static void teardown(void)
{
    cf_scope_release(&prod);
    cf_scope_release(&dev);
    cf_project_view_release(&project);
    fx_teardown();
}

TestSuite(approvals, .init = setup, .fini = teardown);

static struct cf_secret_change upsert(const char *key, const char *value)
{
    return (struct cf_secret_change){.kind = CF_CHANGE_UPSERT,
                                     .key = key,
                                     .has_value = true,
                                     .value = value,
                                     .value_len = strlen(value)};
}

/* Writes key=value directly (as the admin: no approval involved) into scope. */
static void write_direct(const struct cf_scope *scope, const char *key, const char *value)
{
    struct cf_secret_change c = upsert(key, value);
    struct cf_plain_list out = {0};
    cr_assert_eq(cf_secrets_apply(&fx_core, &fx_admin, scope, &c, 1, &out, NULL, &err), CF_OK, "%s",
                 err.msg);
    cf_plain_list_release(&out);
}

/* The current value of key in prod, or "" when there is none. */
static void read_prod(const char *key, char *out, size_t size)
{
    struct cf_plain p = {0};
    struct cf_read_opts opts = {0};
    out[0] = '\0';
    if (cf_secrets_get(&fx_core, &fx_admin, &prod, key, 0, &opts, &p, &err) == CF_OK)
        snprintf(out, size, "%.*s", (int)p.value.len, p.value.data ? p.value.data : "");
    cf_plain_release(&p);
}

static void propose(const char *key, const char *value, struct cf_approval_hold *hold)
{
    struct cf_secret_change c = upsert(key, value);
    cr_assert_eq(cf_approvals_intercept(&fx_core, &author, &prod, &c, 1, hold, &err), CF_OK, "%s",
                 err.msg);
    cr_assert(hold->held);
    cr_assert_str_eq(hold->policy_name, "prod-changes");
}

Test(approvals, held_sealed_approved_and_merged)
{
    struct cf_approval_hold hold;
    struct cf_approval_view view = {0};
    char value[64];

    propose("API_KEY", "canary-approval-7c1e", &hold);
    read_prod("API_KEY", value, sizeof(value));
    cr_assert_str_eq(value, "", "a held write applies nothing");
    cr_assert_not(fx_on_disk("canary-approval-7c1e"), "the proposed value is sealed at rest");

    cr_assert_eq(
        cf_approvals_review(&fx_core, &author, hold.request_id, "approved", "", &view, &err),
        CF_EFORBIDDEN);
    cr_assert(strstr(err.msg, "self-approval"), "%s", err.msg);
    cr_assert_eq(cf_approvals_merge(&fx_core, &author, hold.request_id, NULL, &view, &err),
                 CF_EFORBIDDEN);
    cr_assert(strstr(err.msg, "0 of the 1"), "%s", err.msg);

    cr_assert_eq(
        cf_approvals_review(&fx_core, &approver, hold.request_id, "approved", "ok", &view, &err),
        CF_OK, "%s", err.msg);
    cr_assert(view.approved);
    cf_approval_view_release(&view);
    cr_assert_eq(cf_approvals_merge(&fx_core, &approver, hold.request_id, NULL, &view, &err), CF_OK,
                 "%s", err.msg);
    cr_assert_str_eq(view.req.status, "merged");
    cr_assert_str_eq(view.req.merged_by, "approver@example.com");
    cf_approval_view_release(&view);
    read_prod("API_KEY", value, sizeof(value));
    cr_assert_str_eq(value, "canary-approval-7c1e");
    cr_assert_eq(cf_approvals_merge(&fx_core, &approver, hold.request_id, NULL, &view, &err),
                 CF_ECONFLICT, "merged once");
}

Test(approvals, a_moved_key_is_a_conflict_and_the_request_stays_open)
{
    struct cf_approval_hold hold;
    struct cf_approval_view view = {0};
    char value[64];

    write_direct(&prod, "DB_PASSWORD", "one");
    propose("DB_PASSWORD", "two", &hold);
    write_direct(&prod, "DB_PASSWORD", "three"); /* version 2, made after the request */
    cr_assert_eq(
        cf_approvals_review(&fx_core, &approver, hold.request_id, "approved", "", &view, &err),
        CF_OK, "%s", err.msg);
    cr_assert(view.conflicts);
    cf_approval_view_release(&view);
    cr_assert_eq(cf_approvals_merge(&fx_core, &author, hold.request_id, NULL, &view, &err),
                 CF_ECONFLICT);
    cr_assert(strstr(err.msg, "'DB_PASSWORD' was at version 1, is at 2"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "three"), "%s", err.msg);
    read_prod("DB_PASSWORD", value, sizeof(value));
    cr_assert_str_eq(value, "three");
    cr_assert_eq(cf_approvals_request_get(&fx_core, &author, hold.request_id, &view, &err), CF_OK,
                 "%s", err.msg);
    cr_assert_str_eq(view.req.status, "open");
    cf_approval_view_release(&view);
}

Test(approvals, a_rejection_closes_the_request)
{
    struct cf_approval_hold hold;
    struct cf_approval_view view = {0};
    propose("FLAG", "on", &hold);
    cr_assert_eq(
        cf_approvals_review(&fx_core, &approver, hold.request_id, "rejected", "no", &view, &err),
        CF_OK, "%s", err.msg);
    cr_assert_str_eq(view.req.status, "rejected");
    cf_approval_view_release(&view);
    cr_assert_eq(cf_approvals_merge(&fx_core, &author, hold.request_id, NULL, &view, &err),
                 CF_ECONFLICT);
}

Test(approvals, machine_identities_are_refused_naming_the_policy_and_dev_is_not_covered)
{
    struct cf_principal machine = {.kind = CF_PRINCIPAL_IDENTITY, .name = "ci"};
    struct cf_secret_change c = upsert("BUILD", "x");
    struct cf_approval_hold hold;
    cf_uuid_new(machine.id);
    cr_assert_eq(cf_approvals_intercept(&fx_core, &machine, &prod, &c, 1, &hold, &err),
                 CF_EFORBIDDEN);
    cr_assert(strstr(err.msg, "'prod-changes'") && strstr(err.msg, "machine identities"), "%s",
              err.msg);
    cr_assert_eq(cf_approvals_intercept(&fx_core, &author, &dev, &c, 1, &hold, &err), CF_OK, "%s",
                 err.msg);
    cr_assert_not(hold.held);
}
