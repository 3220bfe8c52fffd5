/* Unit tests of core/projects over a real SQLite store (tests/unit/core_fixture.h): a project
 * comes with its three environments and root folders, duplicate and malformed names are refused
 * with the field named, projects resolve by id or slug, environments and folders are created,
 * listed and deleted, and an identity without a membership sees and changes nothing. */
#include "core_fixture.h"

#include "core/identities.h"
#include "core/projects.h"
#include "util/banned.h"

TestSuite(projects, .init = fx_setup, .fini = fx_teardown);

/* Leaves non-zero bytes where the next call's locals will be, so that a local released without
 * being initialised frees garbage (and crashes) instead of passing by luck. */
static __attribute__((noinline)) void dirty_stack(void)
{
    volatile unsigned char junk[64 * 1024];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = 0x5a;
}

static struct cf_project_view make_project(const char *name)
{
    struct cf_project_view view = {0};
    cr_assert_eq(cf_projects_create(&fx_core, &fx_admin, name, NULL, "d", &view, &err), CF_OK, "%s",
                 err.msg);
    return view;
}

Test(projects, create_with_default_environments_and_get_by_id_or_slug)
{
    struct cf_project_view view = make_project("Payments API");
    cr_expect_str_eq(view.project.slug, "payments-api");
    cr_assert_eq(view.envs.n, 3);
    cr_expect_str_eq(view.envs.items[0].slug, "dev");
    cr_expect_str_eq(view.envs.items[1].slug, "staging");
    cr_expect_str_eq(view.envs.items[2].slug, "prod");

    struct cf_project_view by_slug = {0}, by_id = {0};
    cr_assert_eq(cf_projects_get(&fx_core, &fx_admin, "payments-api", &by_slug, &err), CF_OK);
    cr_assert_eq(cf_projects_get(&fx_core, &fx_admin, view.project.id, &by_id, &err), CF_OK);
    cr_expect_str_eq(by_slug.project.id, view.project.id);
    cr_expect_str_eq(by_id.project.name, "Payments API");

    struct cf_project_view_list list = {0};
    cr_assert_eq(cf_projects_list(&fx_core, &fx_admin, &list, &err), CF_OK);
    cr_expect_eq(list.n, 1);
    cf_project_view_list_release(&list);
    cf_project_view_release(&by_id);
    cf_project_view_release(&by_slug);
    cf_project_view_release(&view);
}

Test(projects, bad_names_and_duplicates_are_refused)
{
    struct cf_project_view view = make_project("billing");
    struct cf_project_view other = {0};
    cr_expect_eq(cf_projects_create(&fx_core, &fx_admin, "billing", NULL, NULL, &other, &err),
                 CF_EEXIST);
    cr_expect(strstr(err.msg, "billing") != NULL, "%s", err.msg);
    cr_expect_eq(cf_projects_create(&fx_core, &fx_admin, "", NULL, NULL, &other, &err),
                 CF_EVALIDATION);
    cr_expect_str_eq(err.field, "projectName");
    cr_expect_eq(cf_projects_create(&fx_core, &fx_admin, "x", "Not A Slug!", NULL, &other, &err),
                 CF_EVALIDATION);
    cr_expect_eq(other.envs.n, 0, "a refused create leaves its output zeroed");
    cr_expect_eq(cf_projects_get(&fx_core, &fx_admin, "nothing-here", &other, &err), CF_ENOTFOUND);
    cf_project_view_release(&view);
}

Test(projects, environments_and_folders)
{
    struct cf_project_view view = make_project("shop");
    struct cf_env env = {0};
    cr_assert_eq(cf_envs_create(&fx_core, &fx_admin, "shop", "QA", "qa", 0, &env, &err), CF_OK,
                 "%s", err.msg);
    cr_expect_eq(env.position, 4, "position 0 appends");
    cr_expect_eq(cf_envs_create(&fx_core, &fx_admin, "shop", "QA again", "qa", 0, &env, &err),
                 CF_EEXIST);
    cr_expect_eq(cf_envs_create(&fx_core, &fx_admin, "shop", "far", "far", 9, &env, &err),
                 CF_EVALIDATION, "a position past n+1");

    struct cf_folder folder = {0};
    cr_assert_eq(
        cf_folders_create(&fx_core, &fx_admin, "shop", "dev", "/", "backend", NULL, &folder, &err),
        CF_OK, "%s", err.msg);
    cr_expect_eq(
        cf_folders_create(&fx_core, &fx_admin, "shop", "dev", "/", "backend", NULL, &folder, &err),
        CF_EEXIST);
    cr_expect_eq(
        cf_folders_create(&fx_core, &fx_admin, "shop", "dev", "/missing", "x", NULL, &folder, &err),
        CF_ENOTFOUND);
    cr_expect(strstr(err.msg, "/missing") != NULL, "%s", err.msg);
    cr_expect_eq(
        cf_folders_create(&fx_core, &fx_admin, "shop", "nope", "/", "x", NULL, &folder, &err),
        CF_ENOTFOUND);

    struct cf_folder_list folders = {0};
    cr_assert_eq(cf_folders_list(&fx_core, &fx_admin, "shop", "dev", "/", false, &folders, &err),
                 CF_OK);
    cr_expect_eq(folders.n, 1);
    cr_expect_str_eq(folders.items[0].name, "backend");
    cf_folder_list_release(&folders);

    cr_assert_eq(
        cf_folders_delete(&fx_core, &fx_admin, "shop", "dev", "/", "backend", &folder, &err), CF_OK,
        "%s", err.msg);
    cr_assert_eq(cf_folders_list(&fx_core, &fx_admin, "shop", "dev", "/", false, &folders, &err),
                 CF_OK);
    cr_expect_eq(folders.n, 0);
    cf_folder_list_release(&folders);

    struct cf_env deleted = {0};
    cr_assert_eq(cf_envs_delete(&fx_core, &fx_admin, "shop", "qa", &deleted, &err), CF_OK);
    cr_expect_str_eq(deleted.slug, "qa");
    cr_expect_eq(cf_envs_delete(&fx_core, &fx_admin, "shop", "qa", &deleted, &err), CF_ENOTFOUND);
    cf_project_view_release(&view);
}

Test(projects, an_identity_without_membership_sees_and_changes_nothing)
{
    struct cf_project_view view = make_project("secret-plans");
    struct cf_identity id = {0};
    cr_assert_eq(cf_identity_create(&fx_core, &fx_admin, "ci-bot", &id, &err), CF_OK, "%s",
                 err.msg);
    struct cf_principal bot = {.kind = CF_PRINCIPAL_IDENTITY};
    snprintf(bot.id, sizeof(bot.id), "%s", id.id);
    snprintf(bot.name, sizeof(bot.name), "%s", id.name);

    struct cf_project_view_list list = {0};
    cr_assert_eq(cf_projects_list(&fx_core, &bot, &list, &err), CF_OK);
    cr_expect_eq(list.n, 0, "a project without membership is not listed");
    cf_project_view_list_release(&list);

    struct cf_project_view got = {0};
    cr_expect_eq(cf_projects_get(&fx_core, &bot, "secret-plans", &got, &err), CF_EFORBIDDEN);
    cr_expect(strstr(err.msg, "not a member") != NULL, "%s", err.msg);
    cr_expect_eq(cf_projects_create(&fx_core, &bot, "mine", NULL, NULL, &got, &err), CF_EFORBIDDEN);
    struct cf_env env = {0};
    cr_expect_eq(cf_envs_create(&fx_core, &bot, "secret-plans", "x", "x", 0, &env, &err),
                 CF_EFORBIDDEN);
    dirty_stack();
    cr_expect_eq(cf_projects_delete(&fx_core, &bot, "secret-plans", &got, &err), CF_EFORBIDDEN);

    /* a viewer may read the project but not administer it */
    struct cf_membership membership = {0};
    cr_assert_eq(cf_membership_set(&fx_core, &fx_admin, "secret-plans", id.id, "viewer", NULL, 0,
                                   &membership, &err),
                 CF_OK, "%s", err.msg);
    cf_membership_release(&membership);
    cr_expect_eq(cf_projects_get(&fx_core, &bot, "secret-plans", &got, &err), CF_OK, "%s", err.msg);
    cf_project_view_release(&got);
    cr_expect_eq(cf_envs_create(&fx_core, &bot, "secret-plans", "x", "x", 0, &env, &err),
                 CF_EFORBIDDEN);

    struct cf_project_view deleted = {0};
    cr_assert_eq(cf_projects_delete(&fx_core, &fx_admin, "secret-plans", &deleted, &err), CF_OK);
    cf_project_view_release(&deleted);
    cr_expect_eq(cf_projects_get(&fx_core, &fx_admin, "secret-plans", &got, &err), CF_ENOTFOUND);
    cf_project_view_release(&view);
}
