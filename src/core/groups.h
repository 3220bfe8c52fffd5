/* Groups of users: a group has a name, optionally the id its identity provider knows it by
 * (external id: an Entra ID group's object id, or a SCIM client's id for it), members (users) and
 * project memberships exactly like a user's (core/identities.h, cf_member_set with
 * CF_MEMBER_GROUP). Every member holds its groups' memberships as well as its own: the union is
 * taken in cf_principal_membership (core.h), so every authorization decision covers it, and a
 * change of a group's members or memberships is seen on the very next request.
 *
 * Managing groups is server administration (cf_authz_admin, "manage groups"). Outputs are filled
 * by the callee (zeroed on failure); lists are released with their store.h release functions.
 * Thread-safe. */
#ifndef CF_CORE_GROUPS_H
#define CF_CORE_GROUPS_H

#include <stdbool.h>

#include "core/core.h"

/* The group named by ref: its id, its name, or its external id (tried in that order).
 * CF_ENOTFOUND "Group 'ref' not found"; CF_EVALIDATION when ref is empty. No authorization: for
 * core's own lookups. */
enum cf_rc cf_groups_find(struct cf_core *core, const char *ref, struct cf_group *out,
                          struct cf_err *err);

/* Creates a group: name required (field "name": at most CF_NAME_MAX bytes, no control
 * characters; CF_EEXIST when taken), external_id NULL or "" for none (field "externalId"). */
enum cf_rc cf_groups_create(struct cf_core *core, const struct cf_principal *who, const char *name,
                            const char *external_id, struct cf_group *out, struct cf_err *err);
enum cf_rc cf_groups_list(struct cf_core *core, const struct cf_principal *who,
                          struct cf_group_list *out, struct cf_err *err);
enum cf_rc cf_groups_get(struct cf_core *core, const struct cf_principal *who, const char *ref,
                         struct cf_group *out, struct cf_err *err);
/* Changes what is not NULL: name, external_id ("" removes it). */
enum cf_rc cf_groups_update(struct cf_core *core, const struct cf_principal *who, const char *ref,
                            const char *name, const char *external_id, struct cf_group *out,
                            struct cf_err *err);
/* Deletes the group with its members and project memberships; out is the group as it was. */
enum cf_rc cf_groups_delete(struct cf_core *core, const struct cf_principal *who, const char *ref,
                            struct cf_group *out, struct cf_err *err);

/* Adds the user user_ref (id or email) to the group ref; a member already stays one (*added false;
 * added may be NULL). user receives the user (may be NULL). */
enum cf_rc cf_groups_member_add(struct cf_core *core, const struct cf_principal *who,
                                const char *ref, const char *user_ref, struct cf_user *user,
                                bool *added, struct cf_err *err);
/* Removes a member: CF_ENOTFOUND naming both when the user is not one. */
enum cf_rc cf_groups_member_remove(struct cf_core *core, const struct cf_principal *who,
                                   const char *ref, const char *user_ref, struct cf_user *user,
                                   struct cf_err *err);
/* The members of group ref, by email. */
enum cf_rc cf_groups_members(struct cf_core *core, const struct cf_principal *who, const char *ref,
                             struct cf_user_list *out, struct cf_err *err);

#endif
