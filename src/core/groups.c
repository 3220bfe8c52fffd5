/* Groups of users (groups.h): validation, authorization and the store calls. */
#include <string.h>

#include "core/groups.h"
#include "core/names.h"
#include "core/users.h"
#include "util/id.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

#define WHAT "manage groups"

enum cf_rc cf_groups_find(struct cf_core *core, const char *ref, struct cf_group *out,
                          struct cf_err *err)
{
    struct cf_err ignored;
    enum cf_rc rc = CF_ENOTFOUND;

    memset(out, 0, sizeof(*out));
    if (!ref || !*ref)
        return cf_err_field(err, CF_EVALIDATION, "groupId", "groupId: required");
    if (cf_uuid_valid(ref))
        rc = cf_store_group_get(core->store, ref, out, err);
    if (rc == CF_ENOTFOUND && strlen(ref) <= CF_NAME_MAX)
        rc = cf_store_group_get_by_name(core->store, ref, out, &ignored);
    if (rc == CF_ENOTFOUND && strlen(ref) <= CF_SSO_TEXT_MAX)
        rc = cf_store_group_get_by_external_id(core->store, ref, out, &ignored);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "Group '%.128s' not found", ref);
    if (rc != CF_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* Checks and copies a group's name (required) and external id (NULL: leave out as it is). */
static enum cf_rc group_fields(const char *name, const char *external_id, struct cf_group *out,
                               struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    if (name) {
        rc = cf_text_check(name, CF_NAME_MAX, true, "name", err);
        if (rc == CF_OK)
            cf_strlcpy(out->name, name, sizeof(out->name));
    }
    if (rc == CF_OK && external_id) {
        rc = cf_text_check(external_id, CF_SSO_TEXT_MAX, false, "externalId", err);
        if (rc == CF_OK)
            cf_strlcpy(out->external_id, external_id, sizeof(out->external_id));
    }
    return rc;
}

enum cf_rc cf_groups_create(struct cf_core *core, const struct cf_principal *who, const char *name,
                            const char *external_id, struct cf_group *out, struct cf_err *err)
{
    struct cf_group group = {0};
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = cf_authz_admin(who, WHAT, err);
    if (rc == CF_OK && !name)
        rc = cf_err_field(err, CF_EVALIDATION, "name", "name: required");
    if (rc == CF_OK)
        rc = group_fields(name, external_id, &group, err);
    if (rc != CF_OK)
        return rc;
    cf_uuid_new(group.id);
    group.created_at = group.updated_at = cf_now_ms();
    rc = cf_store_group_create(core->store, &group, err);
    if (rc == CF_OK)
        *out = group;
    return rc;
}

enum cf_rc cf_groups_list(struct cf_core *core, const struct cf_principal *who,
                          struct cf_group_list *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = cf_authz_admin(who, WHAT, err);
    return rc == CF_OK ? cf_store_group_list(core->store, out, err) : rc;
}

enum cf_rc cf_groups_get(struct cf_core *core, const struct cf_principal *who, const char *ref,
                         struct cf_group *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = cf_authz_admin(who, WHAT, err);
    return rc == CF_OK ? cf_groups_find(core, ref, out, err) : rc;
}

enum cf_rc cf_groups_update(struct cf_core *core, const struct cf_principal *who, const char *ref,
                            const char *name, const char *external_id, struct cf_group *out,
                            struct cf_err *err)
{
    struct cf_group group = {0};
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = cf_authz_admin(who, WHAT, err);
    if (rc == CF_OK)
        rc = cf_groups_find(core, ref, &group, err);
    if (rc == CF_OK)
        rc = group_fields(name, external_id, &group, err);
    if (rc == CF_OK)
        rc = cf_store_group_update(core->store, &group, err);
    if (rc == CF_OK)
        rc = cf_store_group_get(core->store, group.id, out, err);
    return rc;
}

enum cf_rc cf_groups_delete(struct cf_core *core, const struct cf_principal *who, const char *ref,
                            struct cf_group *out, struct cf_err *err)
{
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = cf_authz_admin(who, WHAT, err);
    if (rc == CF_OK)
        rc = cf_groups_find(core, ref, out, err);
    if (rc == CF_OK)
        rc = cf_store_group_delete(core->store, out->id, err);
    if (rc != CF_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* The group and the user a member operation names. */
static enum cf_rc find_pair(struct cf_core *core, const struct cf_principal *who, const char *ref,
                            const char *user_ref, struct cf_group *group, struct cf_user *user,
                            struct cf_err *err)
{
    enum cf_rc rc = cf_authz_admin(who, WHAT, err);
    if (rc == CF_OK)
        rc = cf_groups_find(core, ref, group, err);
    if (rc == CF_OK)
        rc = cf_users_find(core, user_ref, user, err);
    return rc;
}

enum cf_rc cf_groups_member_add(struct cf_core *core, const struct cf_principal *who,
                                const char *ref, const char *user_ref, struct cf_user *user,
                                bool *added, struct cf_err *err)
{
    struct cf_group group = {0};
    struct cf_user found = {0};
    enum cf_rc rc = find_pair(core, who, ref, user_ref, &group, &found, err);
    if (rc == CF_OK)
        rc = cf_store_group_member_add(core->store, group.id, found.id, added, err);
    if (user)
        *user = found;
    return rc;
}

enum cf_rc cf_groups_member_remove(struct cf_core *core, const struct cf_principal *who,
                                   const char *ref, const char *user_ref, struct cf_user *user,
                                   struct cf_err *err)
{
    struct cf_group group = {0};
    struct cf_user found = {0};
    enum cf_rc rc = find_pair(core, who, ref, user_ref, &group, &found, err);
    if (rc == CF_OK) {
        rc = cf_store_group_member_remove(core->store, group.id, found.id, err);
        if (rc == CF_ENOTFOUND)
            rc = cf_err_set(err, CF_ENOTFOUND, "user '%s' is not a member of group '%s'",
                            found.email, group.name);
    }
    if (user)
        *user = found;
    return rc;
}

enum cf_rc cf_groups_members(struct cf_core *core, const struct cf_principal *who, const char *ref,
                             struct cf_user_list *out, struct cf_err *err)
{
    struct cf_group group = {0};
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = cf_authz_admin(who, WHAT, err);
    if (rc == CF_OK)
        rc = cf_groups_find(core, ref, &group, err);
    return rc == CF_OK ? cf_store_group_members(core->store, group.id, out, err) : rc;
}
