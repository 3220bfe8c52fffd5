/* HTTP handlers for groups of users (core/groups.h): /api/v1/groups and their members. Groups'
 * project memberships are served with the identities' and users' (api/identities.c,
 * group-memberships). See docs/users.md "Groups". */
#include <stdio.h>
#include <string.h>

#include "api/http.h"
#include "api/render.h"
#include "core/groups.h"
#include "util/banned.h"

/* Group: {id, name, externalId | null, createdAt, updatedAt}. */
static json_t *render_group(const struct cf_group *g)
{
    return json_pack("{s:s, s:s, s:o, s:o, s:o}", "id", g->id, "name", g->name, "externalId",
                     g->external_id[0] ? json_string(g->external_id) : json_null(), "createdAt",
                     cf_json_time(g->created_at), "updatedAt", cf_json_time(g->updated_at));
}

/* Notes action on the group (and the user, when one is named) in the audit record's path:
 * "group ops", "group ops user a@example.com". */
static void audit_group(struct cf_req *req, const char *action, const struct cf_group *group,
                        const struct cf_user *user)
{
    char what[CF_NAME_MAX + CF_EMAIL_MAX + 16];
    if (user)
        snprintf(what, sizeof(what), "group %s user %s", group->name, user->email);
    else
        snprintf(what, sizeof(what), "group %s", group->name);
    cf_req_audit(req, action, NULL, NULL, what);
}

static enum cf_rc reply_group(const struct cf_group *group, json_t **out, struct cf_err *err)
{
    return cf_render_reply_member("group", render_group(group), out, err);
}

/* POST /api/v1/groups {name, externalId?} -> {group} */
static enum cf_rc create_group(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_group group = {0};
    json_t *body = NULL;
    const char *name = NULL, *external_id = NULL;
    enum cf_rc rc;

    rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "name", true, &name, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "externalId", false, &external_id, err);
    if (rc == CF_OK)
        rc = cf_groups_create(cf_req_core(req), cf_req_principal(req), name, external_id, &group,
                              err);
    if (rc == CF_OK) {
        audit_group(req, "groups.create", &group, NULL);
        rc = reply_group(&group, out, err);
    }
    return rc;
}

/* GET /api/v1/groups -> {groups: [Group]} */
static enum cf_rc list_groups(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_group_list list = {0};
    json_t *array = NULL;
    enum cf_rc rc = cf_groups_list(cf_req_core(req), cf_req_principal(req), &list, err);
    if (rc != CF_OK)
        return rc;
    array = json_array();
    for (size_t i = 0; array && i < list.n; i++)
        array = cf_render_append(array, render_group(&list.items[i]));
    rc = cf_render_reply_member("groups", array, out, err);
    cf_group_list_release(&list);
    return rc;
}

/* GET /api/v1/groups/{groupId|name} -> {group} */
static enum cf_rc get_group(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_group group;
    enum cf_rc rc = cf_groups_get(cf_req_core(req), cf_req_principal(req),
                                  cf_req_param(req, "groupId"), &group, err);
    return rc == CF_OK ? reply_group(&group, out, err) : rc;
}

/* PATCH /api/v1/groups/{groupId} {name?, externalId?} -> {group} */
static enum cf_rc update_group(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_group group;
    json_t *body = NULL, *external = NULL;
    const char *name = NULL, *external_id = NULL;
    enum cf_rc rc;

    rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "name", false, &name, err);
    external = json_object_get(body, "externalId");
    if (rc == CF_OK && json_is_null(external))
        external_id = ""; /* null removes it */
    else if (rc == CF_OK)
        rc = cf_json_string(body, "externalId", false, &external_id, err);
    if (rc == CF_OK)
        rc = cf_groups_update(cf_req_core(req), cf_req_principal(req), cf_req_param(req, "groupId"),
                              name, external_id, &group, err);
    if (rc == CF_OK) {
        audit_group(req, "groups.update", &group, NULL);
        rc = reply_group(&group, out, err);
    }
    return rc;
}

/* DELETE /api/v1/groups/{groupId} -> {group} (as it was) */
static enum cf_rc delete_group(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_group group;
    enum cf_rc rc = cf_groups_delete(cf_req_core(req), cf_req_principal(req),
                                     cf_req_param(req, "groupId"), &group, err);
    if (rc == CF_OK) {
        audit_group(req, "groups.delete", &group, NULL);
        rc = reply_group(&group, out, err);
    }
    return rc;
}

/* GET /api/v1/groups/{groupId}/users -> {users: [User], totalCount} */
static enum cf_rc list_members(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_user_list list = {0};
    json_t *array = NULL;
    enum cf_rc rc = cf_groups_members(cf_req_core(req), cf_req_principal(req),
                                      cf_req_param(req, "groupId"), &list, err);
    if (rc != CF_OK)
        return rc;
    array = json_array();
    for (size_t i = 0; array && i < list.n; i++)
        array = cf_render_append(array, cf_render_user(&list.items[i]));
    rc = cf_render_reply(
        array ? json_pack("{s:o, s:I}", "users", array, "totalCount", (json_int_t)list.n) : NULL,
        out, err);
    cf_user_list_release(&list);
    return rc;
}

/* POST /api/v1/groups/{groupId}/users/{userId|email} -> {user}; DELETE the same -> {user} */
static enum cf_rc change_member(struct cf_req *req, json_t **out, struct cf_err *err)
{
    bool add = cf_req_route_data(req) != NULL;
    struct cf_group group;
    struct cf_user user = {0};
    enum cf_rc rc;

    rc = cf_groups_get(cf_req_core(req), cf_req_principal(req), cf_req_param(req, "groupId"),
                       &group, err);
    if (rc == CF_OK && add)
        rc = cf_groups_member_add(cf_req_core(req), cf_req_principal(req), group.id,
                                  cf_req_param(req, "userId"), &user, NULL, err);
    else if (rc == CF_OK)
        rc = cf_groups_member_remove(cf_req_core(req), cf_req_principal(req), group.id,
                                     cf_req_param(req, "userId"), &user, err);
    if (rc == CF_OK) {
        audit_group(req, add ? "groups.member.add" : "groups.member.remove", &group, &user);
        rc = cf_render_reply_member("user", cf_render_user(&user), out, err);
    }
    return rc;
}

static const bool adding = true;

const struct cf_route cf_routes_groups[] = {
    {"POST", "/api/v1/groups", create_group, false},
    {"GET", "/api/v1/groups", list_groups, false},
    {"GET", "/api/v1/groups/:groupId", get_group, false},
    {"PATCH", "/api/v1/groups/:groupId", update_group, false},
    {"DELETE", "/api/v1/groups/:groupId", delete_group, false},
    {"GET", "/api/v1/groups/:groupId/users", list_members, false},
    {"POST", "/api/v1/groups/:groupId/users/:userId", change_member, false, &adding},
    {"DELETE", "/api/v1/groups/:groupId/users/:userId", change_member, false, NULL},
    {NULL, NULL, NULL, false},
};
