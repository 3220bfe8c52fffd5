/* SCIM 2.0 (RFC 7643 resources, RFC 7644 protocol) for identity providers that provision users and
 * groups, Microsoft Entra ID's provisioning service first (docs/users.md "SCIM provisioning"):
 * /scim/v2/Users, /scim/v2/Groups and the discovery resources ServiceProviderConfig, ResourceTypes
 * and Schemas. Every route takes a SCIM token (core/scim.h) and nothing else; answers and errors
 * are application/scim+json (the route's scim flag, api/server.c). Filters are the "eq" form the
 * clients send (userName, externalId, displayName, id); PATCH takes add, replace and remove in any
 * case ("Replace"), booleans as JSON or as Entra's strings ("False"), values with or without a
 * path, and member paths such as members[value eq "..."]. Attributes Coffer does not keep (titles,
 * phone numbers, the enterprise extension) are accepted and ignored, so that a client's default
 * attribute mapping works. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "api/http.h"
#include "api/render.h"
#include "core/groups.h"
#include "core/scim.h"
#include "core/users.h"
#include "util/id.h"
#include "util/str.h"
#include "util/banned.h"

#define SCHEMA_USER "urn:ietf:params:scim:schemas:core:2.0:User"
#define SCHEMA_GROUP "urn:ietf:params:scim:schemas:core:2.0:Group"
#define SCHEMA_LIST "urn:ietf:params:scim:api:messages:2.0:ListResponse"
#define SCHEMA_PATCH "urn:ietf:params:scim:api:messages:2.0:PatchOp"

/* Every SCIM route starts here: the caller must present a SCIM token; the audit record names it
 * (actor kind "scim"). */
static enum cf_rc scim_auth(struct cf_req *req, struct cf_err *err)
{
    struct cf_scim_token token;
    enum cf_rc rc =
        cf_scim_authenticate(cf_req_core(req), cf_req_header(req, "Authorization"), &token, err);
    if (rc == CF_OK)
        cf_req_audit_actor(req, "scim", token.id, token.name);
    return rc;
}

/* Notes the SCIM action and its target (a user's e-mail address, a group's name). */
static void audit_target(struct cf_req *req, const char *action, const char *kind,
                         const char *target)
{
    char what[CF_EMAIL_MAX + 32];
    snprintf(what, sizeof(what), "%s %s", kind, target);
    cf_req_audit(req, action, NULL, NULL, what);
}

static json_t *render_meta(const char *type, const char *id, int64_t created, int64_t modified)
{
    char location[96];
    snprintf(location, sizeof(location), "/scim/v2/%ss/%s", type, id);
    return json_pack("{s:s, s:o, s:o, s:s}", "resourceType", type, "created", cf_json_time(created),
                     "lastModified", cf_json_time(modified), "location", location);
}

static json_t *render_user(const struct cf_scim_user_view *v)
{
    const struct cf_user *u = &v->user;
    json_t *j = json_pack("{s:[s], s:s, s:s, s:{s:s}, s:s, s:[{s:s, s:s, s:b}], s:b, s:o}",
                          "schemas", SCHEMA_USER, "id", u->id, "userName",
                          v->scim.user_name[0] ? v->scim.user_name : u->email, "name", "formatted",
                          u->name, "displayName", u->name, "emails", "value", u->email, "type",
                          "work", "primary", 1, "active", strcmp(u->status, "active") == 0, "meta",
                          render_meta("User", u->id, u->created_at, u->updated_at));
    if (j && v->scim.external_id[0])
        json_object_set_new(j, "externalId", json_string(v->scim.external_id));
    return j;
}

static json_t *render_group(struct cf_req *req, const struct cf_group *g, bool members,
                            struct cf_err *err, enum cf_rc *rc)
{
    struct cf_user_list list = {0};
    json_t *j =
        json_pack("{s:[s], s:s, s:s, s:o}", "schemas", SCHEMA_GROUP, "id", g->id, "displayName",
                  g->name, "meta", render_meta("Group", g->id, g->created_at, g->updated_at));
    if (j && g->external_id[0])
        json_object_set_new(j, "externalId", json_string(g->external_id));
    *rc = CF_OK;
    if (!j || !members)
        return j;
    *rc = cf_groups_members(cf_req_core(req), cf_scim_principal(), g->id, &list, err);
    json_t *array = *rc == CF_OK ? json_array() : NULL;
    for (size_t i = 0; array && i < list.n; i++)
        array = cf_render_append(array, json_pack("{s:s, s:s}", "value", list.items[i].id,
                                                  "display", list.items[i].email));
    cf_user_list_release(&list);
    if (!array || json_object_set_new(j, "members", array) != 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* ---- filters: ATTRIBUTE eq "VALUE" ---- */

/* A filter (or a path's [filter]) of the one form supported: attribute eq "value". The value is a
 * JSON string (jansson decodes it); value receives a copy (size bytes). */
static enum cf_rc parse_eq(const char *text, size_t len, const char *field, char *attribute,
                           size_t attribute_size, char *value, size_t size, struct cf_err *err)
{
    const char *p = text, *end = text + len;
    while (p < end && *p == ' ')
        p++;
    const char *attr = p;
    while (p < end && *p != ' ')
        p++;
    size_t attr_len = (size_t)(p - attr);
    while (p < end && *p == ' ')
        p++;
    bool eq = end - p > 3 && strncasecmp(p, "eq ", 3) == 0;
    if (eq)
        p += 3;
    while (p < end && *p == ' ')
        p++;
    while (end > p && end[-1] == ' ')
        end--;
    json_t *decoded = NULL;
    if (eq && attr_len > 0 && attr_len < attribute_size && p < end && *p == '"')
        decoded = json_loadb(p, (size_t)(end - p), JSON_DECODE_ANY, NULL);
    if (!json_is_string(decoded) || json_string_length(decoded) >= size) {
        json_decref(decoded);
        return cf_err_field(err, CF_EINVAL, field,
                            "%s: only ATTRIBUTE eq \"VALUE\" is supported (for example userName eq "
                            "\"a@example.com\")",
                            field);
    }
    memcpy(attribute, attr, attr_len);
    attribute[attr_len] = '\0';
    memcpy(value, json_string_value(decoded), json_string_length(decoded) + 1);
    json_decref(decoded);
    return CF_OK;
}

/* The query's filter, when there is one: *has false without. */
static enum cf_rc query_filter(struct cf_req *req, bool *has, char *attribute, size_t attr_size,
                               char *value, size_t size, struct cf_err *err)
{
    const char *filter = NULL;
    enum cf_rc rc = cf_req_query(req, "filter", &filter, err);
    *has = rc == CF_OK && filter && *filter;
    if (rc != CF_OK || !*has)
        return rc;
    return parse_eq(filter, strlen(filter), "filter", attribute, attr_size, value, size, err);
}

/* {schemas, totalResults, startIndex, itemsPerPage, Resources} of resources (taken), paged by the
 * query's startIndex (1-based) and count. */
static enum cf_rc reply_list(struct cf_req *req, json_t *resources, json_t **out,
                             struct cf_err *err)
{
    const char *start_text = NULL, *count_text = NULL;
    long long start = 1, count = -1;
    enum cf_rc rc = cf_req_query(req, "startIndex", &start_text, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "count", &count_text, err);
    if (rc == CF_OK && start_text && !cf_parse_int64(start_text, 1, 1LL << 40, &start))
        start = 1; /* RFC 7644 section 3.4.2.4: a value below 1 is 1 */
    if (rc == CF_OK && count_text && !cf_parse_int64(count_text, 0, 1LL << 40, &count))
        count = 0;
    if (rc != CF_OK || !resources) {
        json_decref(resources);
        return rc != CF_OK ? rc : cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    size_t total = json_array_size(resources);
    json_t *page = json_array();
    for (size_t i = (size_t)start - 1;
         page && i < total && (count < 0 || (long long)json_array_size(page) < count); i++)
        json_array_append(page, json_array_get(resources, i));
    json_decref(resources);
    if (!page)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    return cf_render_reply(json_pack("{s:[s], s:I, s:I, s:I, s:o}", "schemas", SCHEMA_LIST,
                                     "totalResults", (json_int_t)total, "startIndex",
                                     (json_int_t)start, "itemsPerPage",
                                     (json_int_t)json_array_size(page), "Resources", page),
                           out, err);
}

/* ---- values ---- */

/* A boolean as JSON or as Entra's strings "True"/"False" (any case). */
static enum cf_rc bool_value(json_t *v, const char *field, int *out, struct cf_err *err)
{
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return CF_OK;
    }
    if (json_is_string(v) && strcasecmp(json_string_value(v), "true") == 0) {
        *out = 1;
        return CF_OK;
    }
    if (json_is_string(v) && strcasecmp(json_string_value(v), "false") == 0) {
        *out = 0;
        return CF_OK;
    }
    return cf_err_field(err, CF_EINVAL, field, "%s: expected a boolean", field);
}

static enum cf_rc string_value(json_t *v, const char *field, const char **out, struct cf_err *err)
{
    if (json_is_null(v)) {
        *out = "";
        return CF_OK;
    }
    if (!json_is_string(v))
        return cf_err_field(err, CF_EINVAL, field, "%s: expected a string", field);
    *out = json_string_value(v);
    return CF_OK;
}

/* The address of a SCIM emails array: the primary one, else the work one, else the first. */
static const char *pick_email(json_t *emails)
{
    size_t i;
    json_t *e;
    const char *work = NULL, *first = NULL;
    json_array_foreach(emails, i, e)
    {
        const char *value = json_string_value(json_object_get(e, "value"));
        const char *type = json_string_value(json_object_get(e, "type"));
        if (!value)
            continue;
        if (json_is_true(json_object_get(e, "primary")))
            return value;
        if (!work && type && strcmp(type, "work") == 0)
            work = value;
        if (!first)
            first = value;
    }
    return work ? work : first;
}

/* One user attribute (a top-level name, or a PATCH path) into in. Names are case-insensitive
 * (RFC 7643 section 2.1). Attributes Coffer does not keep are ignored. */
static enum cf_rc user_attribute(const char *name, json_t *v, struct cf_scim_user_input *in,
                                 char *name_buf, size_t name_size, struct cf_err *err)
{
    if (strcasecmp(name, "userName") == 0)
        return string_value(v, "userName", &in->user_name, err);
    if (strcasecmp(name, "externalId") == 0)
        return string_value(v, "externalId", &in->external_id, err);
    if (strcasecmp(name, "active") == 0)
        return bool_value(v, "active", &in->active, err);
    if (strcasecmp(name, "displayName") == 0 || strcasecmp(name, "name.formatted") == 0)
        return string_value(v, name, &in->name, err);
    if (strcasecmp(name, "emails") == 0) {
        if (!json_is_array(v))
            return cf_err_field(err, CF_EINVAL, "emails", "emails: expected an array");
        in->email = pick_email(v);
        return CF_OK;
    }
    if (strncasecmp(name, "emails[", 7) == 0) /* emails[type eq "work"].value */
        return string_value(v, "emails", &in->email, err);
    if (strcasecmp(name, "name") == 0 && json_is_object(v) && !in->name) {
        const char *formatted = json_string_value(json_object_get(v, "formatted"));
        const char *given = json_string_value(json_object_get(v, "givenName"));
        const char *family = json_string_value(json_object_get(v, "familyName"));
        if (formatted)
            in->name = formatted;
        else if (given || family) {
            snprintf(name_buf, name_size, "%s%s%s", given ? given : "", given && family ? " " : "",
                     family ? family : "");
            in->name = name_buf;
        }
    }
    return CF_OK;
}

/* A whole User resource (POST, PUT) into in. */
static enum cf_rc parse_user(json_t *body, struct cf_scim_user_input *in, char *name_buf,
                             size_t name_size, struct cf_err *err)
{
    const char *key;
    json_t *v;
    enum cf_rc rc = CF_OK;
    memset(in, 0, sizeof(*in));
    in->active = -1;
    /* displayName wins over name: read it first */
    v = json_object_get(body, "displayName");
    if (v)
        rc = user_attribute("displayName", v, in, name_buf, name_size, err);
    json_object_foreach(body, key, v)
    {
        if (rc == CF_OK && strcasecmp(key, "displayName") != 0)
            rc = user_attribute(key, v, in, name_buf, name_size, err);
    }
    return rc;
}

/* The Operations of a PATCH body: CF_OK with *ops the array, or CF_EINVAL naming the problem. */
static enum cf_rc patch_ops(struct cf_req *req, json_t **ops, struct cf_err *err)
{
    json_t *body = NULL;
    enum cf_rc rc = cf_req_json(req, true, &body, err);
    if (rc != CF_OK)
        return rc;
    *ops = json_object_get(body, "Operations");
    if (!*ops)
        *ops = json_object_get(body, "operations");
    if (!json_is_array(*ops) || json_array_size(*ops) == 0)
        return cf_err_field(err, CF_EINVAL, "op",
                            "Operations: expected a non-empty array of "
                            "{op, path?, value?} (schema " SCHEMA_PATCH ")");
    return CF_OK;
}

/* An operation's op, lower-cased: "add", "replace" or "remove". */
static enum cf_rc op_name(json_t *op, char out[8], struct cf_err *err)
{
    const char *name = json_string_value(json_object_get(op, "op"));
    if (name && (strcasecmp(name, "add") == 0 || strcasecmp(name, "replace") == 0 ||
                 strcasecmp(name, "remove") == 0)) {
        for (size_t i = 0; i < 8 && (i == 0 || name[i - 1]); i++)
            out[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
        return CF_OK;
    }
    return cf_err_field(err, CF_EINVAL, "op", "op: must be add, replace or remove");
}

/* ---- Users ---- */

/* GET /scim/v2/Users[?filter=userName eq "..."|externalId eq "..."|id eq "..."] */
static enum cf_rc list_users(struct cf_req *req, json_t **out, struct cf_err *err)
{
    char attribute[32], value[CF_SSO_TEXT_MAX + 1];
    struct cf_scim_user_view one, *all = NULL;
    size_t n = 0;
    bool has = false;
    json_t *resources = NULL;
    enum cf_rc rc = scim_auth(req, err);

    if (rc == CF_OK)
        rc = query_filter(req, &has, attribute, sizeof(attribute), value, sizeof(value), err);
    if (rc != CF_OK)
        return rc;
    resources = json_array();
    if (has) {
        if (strcasecmp(attribute, "userName") == 0 || strcasecmp(attribute, "externalId") == 0)
            rc = cf_scim_user_find(cf_req_core(req),
                                   strcasecmp(attribute, "userName") == 0 ? "userName"
                                                                          : "externalId",
                                   value, &one, err);
        else if (strcmp(attribute, "id") == 0)
            rc = cf_scim_user_get(cf_req_core(req), value, &one, err);
        else
            rc = cf_err_field(err, CF_EINVAL, "filter",
                              "filter: users are filtered by userName, externalId or id, not "
                              "'%s'",
                              attribute);
        if (rc == CF_OK)
            resources = cf_render_append(resources, render_user(&one));
        else if (rc == CF_ENOTFOUND)
            rc = CF_OK; /* no match: an empty list */
    } else {
        rc = cf_scim_user_list(cf_req_core(req), &all, &n, err);
        for (size_t i = 0; rc == CF_OK && resources && i < n; i++)
            resources = cf_render_append(resources, render_user(&all[i]));
        free(all);
    }
    if (rc != CF_OK) {
        json_decref(resources);
        return rc;
    }
    return reply_list(req, resources, out, err);
}

/* POST /scim/v2/Users {userName, externalId?, active?, displayName?|name?, emails?} -> 201 User */
static enum cf_rc create_user(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_scim_user_input in;
    struct cf_scim_user_view view;
    char name[CF_NAME_MAX + 1];
    json_t *body = NULL;
    enum cf_rc rc = scim_auth(req, err);

    if (rc == CF_OK)
        rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = parse_user(body, &in, name, sizeof(name), err);
    if (rc == CF_OK)
        rc = cf_scim_user_create(cf_req_core(req), &in, &view, err);
    if (rc != CF_OK)
        return rc;
    audit_target(req, "scim.users.create", "user", view.user.email);
    cf_req_set_status(req, 201);
    return cf_render_reply(render_user(&view), out, err);
}

/* GET /scim/v2/Users/{id} */
static enum cf_rc get_user(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_scim_user_view view;
    enum cf_rc rc = scim_auth(req, err);
    if (rc == CF_OK)
        rc = cf_scim_user_get(cf_req_core(req), cf_req_param(req, "id"), &view, err);
    return rc == CF_OK ? cf_render_reply(render_user(&view), out, err) : rc;
}

/* Answers an update of a user: the audit action says what it did (a deprovisioning stands out). */
static enum cf_rc reply_updated(struct cf_req *req, const struct cf_scim_user_input *in,
                                const struct cf_scim_user_view *view, json_t **out,
                                struct cf_err *err)
{
    audit_target(req,
                 in->active == 0   ? "scim.users.deactivate"
                 : in->active == 1 ? "scim.users.activate"
                                   : "scim.users.update",
                 "user", view->user.email);
    return cf_render_reply(render_user(view), out, err);
}

/* PUT /scim/v2/Users/{id}: the whole resource (what Coffer keeps of it) */
static enum cf_rc replace_user(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_scim_user_input in;
    struct cf_scim_user_view view;
    char name[CF_NAME_MAX + 1];
    json_t *body = NULL;
    enum cf_rc rc = scim_auth(req, err);

    if (rc == CF_OK)
        rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = parse_user(body, &in, name, sizeof(name), err);
    /* a replacement is a whole user: userName is required as on creation (RFC 7643 section 4.1) */
    if (rc == CF_OK && (!in.user_name || !*in.user_name))
        rc = cf_err_field(err, CF_EINVAL, "userName",
                          "userName: required (PUT replaces the whole user)");
    if (rc == CF_OK)
        rc = cf_scim_user_update(cf_req_core(req), cf_req_param(req, "id"), &in, &view, err);
    return rc == CF_OK ? reply_updated(req, &in, &view, out, err) : rc;
}

/* PATCH /scim/v2/Users/{id} {schemas: [PatchOp], Operations: [{op, path?, value}]} */
static enum cf_rc patch_user(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_scim_user_input in = {.active = -1};
    struct cf_scim_user_view view;
    char name[CF_NAME_MAX + 1], op[8];
    json_t *ops = NULL, *item;
    size_t i;
    enum cf_rc rc = scim_auth(req, err);

    if (rc == CF_OK)
        rc = patch_ops(req, &ops, err);
    json_array_foreach(ops, i, item)
    {
        const char *path = json_string_value(json_object_get(item, "path"));
        json_t *value = json_object_get(item, "value");
        const char *key;
        json_t *v;
        if (rc == CF_OK)
            rc = op_name(item, op, err);
        if (rc != CF_OK)
            break;
        if (strcmp(op, "remove") == 0) {
            /* only externalId can be removed; the rest of a user is not optional here */
            if (path && strcasecmp(path, "externalId") == 0)
                in.external_id = "";
            continue;
        }
        if (path)
            rc = user_attribute(path, value, &in, name, sizeof(name), err);
        else if (json_is_object(value))
            json_object_foreach(value, key, v)
            {
                if (rc == CF_OK)
                    rc = user_attribute(key, v, &in, name, sizeof(name), err);
            }
        else
            rc = cf_err_field(err, CF_EINVAL, "path",
                              "Operations[%zu]: without a path, value must be an object", i);
    }
    if (rc == CF_OK)
        rc = cf_scim_user_update(cf_req_core(req), cf_req_param(req, "id"), &in, &view, err);
    return rc == CF_OK ? reply_updated(req, &in, &view, out, err) : rc;
}

/* DELETE /scim/v2/Users/{id} -> 204: the user, its memberships, sessions and tokens are gone */
static enum cf_rc delete_user(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_user user;
    enum cf_rc rc = scim_auth(req, err);
    (void)out;
    if (rc == CF_OK)
        rc = cf_scim_user_delete(cf_req_core(req), cf_req_param(req, "id"), &user, err);
    if (rc == CF_OK) {
        audit_target(req, "scim.users.delete", "user", user.email);
        cf_req_set_status(req, 204);
    }
    return rc;
}

/* ---- Groups ---- */

/* The group a path names, by id only (SCIM ids are Coffer's ids). */
static enum cf_rc path_group(struct cf_req *req, struct cf_group *out, struct cf_err *err)
{
    const char *id = cf_req_param(req, "id");
    enum cf_rc rc =
        cf_uuid_valid(id) ? cf_groups_find(cf_req_core(req), id, out, err) : CF_ENOTFOUND;
    return rc == CF_ENOTFOUND ? cf_err_set(err, CF_ENOTFOUND, "Group '%.64s' not found", id) : rc;
}

/* Whether the query asks to leave the members out (excludedAttributes=members, as Entra does when
 * it only looks a group up). */
static bool without_members(struct cf_req *req)
{
    const char *excluded = NULL;
    struct cf_err ignored;
    return cf_req_query(req, "excludedAttributes", &excluded, &ignored) == CF_OK && excluded &&
           strcasestr(excluded, "members") != NULL;
}

/* GET /scim/v2/Groups[?filter=displayName eq "..."|externalId eq "..."|id eq "..."] */
static enum cf_rc list_groups(struct cf_req *req, json_t **out, struct cf_err *err)
{
    char attribute[32], value[CF_SSO_TEXT_MAX + 1];
    struct cf_group_list list = {0};
    bool has = false, members = !without_members(req);
    json_t *resources = NULL;
    enum cf_rc rc = scim_auth(req, err);

    if (rc == CF_OK)
        rc = query_filter(req, &has, attribute, sizeof(attribute), value, sizeof(value), err);
    if (rc == CF_OK)
        rc = cf_groups_list(cf_req_core(req), cf_scim_principal(), &list, err);
    if (rc == CF_OK && has && strcasecmp(attribute, "displayName") != 0 &&
        strcasecmp(attribute, "externalId") != 0 && strcmp(attribute, "id") != 0)
        rc = cf_err_field(err, CF_EINVAL, "filter",
                          "filter: groups are filtered by displayName, externalId or id, not '%s'",
                          attribute);
    if (rc == CF_OK)
        resources = json_array();
    for (size_t i = 0; rc == CF_OK && resources && i < list.n; i++) {
        const struct cf_group *g = &list.items[i];
        if (has && !(strcasecmp(attribute, "displayName") == 0  ? strcmp(g->name, value) == 0
                     : strcasecmp(attribute, "externalId") == 0 ? strcmp(g->external_id, value) == 0
                                                                : strcmp(g->id, value) == 0))
            continue;
        resources = cf_render_append(resources, render_group(req, g, members, err, &rc));
    }
    cf_group_list_release(&list);
    if (rc != CF_OK) {
        json_decref(resources);
        return rc;
    }
    return reply_list(req, resources, out, err);
}

/* Adds (add true) or removes each {value: user id} of members to or from group; remove tolerates a
 * user who is no member (the client's view may be older). */
static enum cf_rc change_members(struct cf_req *req, const struct cf_group *group, json_t *members,
                                 bool add, struct cf_err *err)
{
    size_t i;
    json_t *m;
    enum cf_rc rc = CF_OK;
    if (!json_is_array(members))
        return cf_err_field(err, CF_EINVAL, "members", "members: expected an array of {value}");
    json_array_foreach(members, i, m)
    {
        const char *user_id = json_string_value(json_object_get(m, "value"));
        if (!user_id)
            return cf_err_field(err, CF_EINVAL, "members", "members[%zu].value: expected a user id",
                                i);
        rc = add ? cf_groups_member_add(cf_req_core(req), cf_scim_principal(), group->id, user_id,
                                        NULL, NULL, err)
                 : cf_groups_member_remove(cf_req_core(req), cf_scim_principal(), group->id,
                                           user_id, NULL, err);
        if (rc == CF_ENOTFOUND && !add)
            rc = CF_OK;
        if (rc != CF_OK)
            return rc;
    }
    return rc;
}

/* Makes group's members exactly members (an array of {value}). */
static enum cf_rc set_members(struct cf_req *req, const struct cf_group *group, json_t *members,
                              struct cf_err *err)
{
    struct cf_user_list now = {0};
    enum cf_rc rc = json_is_array(members) ? CF_OK
                                           : cf_err_field(err, CF_EINVAL, "members",
                                                          "members: expected an array of {value}");
    if (rc == CF_OK)
        rc = cf_groups_members(cf_req_core(req), cf_scim_principal(), group->id, &now, err);
    for (size_t i = 0; rc == CF_OK && i < now.n; i++) {
        bool keep = false;
        size_t j;
        json_t *m;
        json_array_foreach(members, j, m)
        {
            const char *v = json_string_value(json_object_get(m, "value"));
            keep = keep || (v && strcmp(v, now.items[i].id) == 0);
        }
        if (!keep)
            rc = cf_groups_member_remove(cf_req_core(req), cf_scim_principal(), group->id,
                                         now.items[i].id, NULL, err);
    }
    cf_user_list_release(&now);
    return rc == CF_OK ? change_members(req, group, members, true, err) : rc;
}

static enum cf_rc reply_group(struct cf_req *req, const char *id, json_t **out, struct cf_err *err)
{
    struct cf_group group;
    enum cf_rc rc = cf_groups_find(cf_req_core(req), id, &group, err);
    json_t *j = rc == CF_OK ? render_group(req, &group, !without_members(req), err, &rc) : NULL;
    if (rc != CF_OK) {
        json_decref(j);
        return rc;
    }
    return cf_render_reply(j, out, err);
}

/* POST /scim/v2/Groups {displayName, externalId?, members?} -> 201 Group */
static enum cf_rc create_group(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_group group;
    struct cf_group gone;
    struct cf_err ignored;
    json_t *body = NULL, *members;
    const char *name = NULL, *external_id = NULL;
    enum cf_rc rc = scim_auth(req, err);

    if (rc == CF_OK)
        rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "displayName", true, &name, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "externalId", false, &external_id, err);
    if (rc == CF_OK)
        rc =
            cf_groups_create(cf_req_core(req), cf_scim_principal(), name, external_id, &group, err);
    if (rc != CF_OK)
        return rc;
    members = json_object_get(body, "members");
    if (members)
        rc = change_members(req, &group, members, true, err);
    if (rc != CF_OK) { /* all or nothing: the client will send it again */
        (void)cf_groups_delete(cf_req_core(req), cf_scim_principal(), group.id, &gone, &ignored);
        return rc;
    }
    audit_target(req, "scim.groups.create", "group", group.name);
    cf_req_set_status(req, 201);
    return reply_group(req, group.id, out, err);
}

/* GET /scim/v2/Groups/{id} */
static enum cf_rc get_group(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_group group;
    enum cf_rc rc = scim_auth(req, err);
    if (rc == CF_OK)
        rc = path_group(req, &group, err);
    return rc == CF_OK ? reply_group(req, group.id, out, err) : rc;
}

/* PUT /scim/v2/Groups/{id} {displayName, externalId?, members?}: members replaced as given */
static enum cf_rc replace_group(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_group group, updated;
    json_t *body = NULL, *members;
    const char *name = NULL, *external_id = NULL;
    enum cf_rc rc = scim_auth(req, err);

    if (rc == CF_OK)
        rc = path_group(req, &group, err);
    if (rc == CF_OK)
        rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "displayName", true, &name, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "externalId", false, &external_id, err);
    if (rc == CF_OK)
        rc = cf_groups_update(cf_req_core(req), cf_scim_principal(), group.id, name,
                              external_id ? external_id : "", &updated, err);
    members = json_object_get(body, "members");
    if (rc == CF_OK)
        rc = set_members(req, &group, members ? members : json_array(), err);
    if (rc != CF_OK)
        return rc;
    audit_target(req, "scim.groups.update", "group", updated.name);
    return reply_group(req, group.id, out, err);
}

/* One PATCH operation on a group. */
static enum cf_rc patch_group_op(struct cf_req *req, const struct cf_group *group, json_t *item,
                                 size_t i, struct cf_err *err)
{
    char op[8], attribute[32], user_id[CF_UUID_LEN + 8];
    const char *path = json_string_value(json_object_get(item, "path"));
    json_t *value = json_object_get(item, "value");
    const char *text = NULL;
    struct cf_group updated;
    enum cf_rc rc = op_name(item, op, err);

    if (rc != CF_OK)
        return rc;
    if (!path) { /* the value holds the attributes */
        if (!json_is_object(value))
            return cf_err_field(err, CF_EINVAL, "path",
                                "Operations[%zu]: without a path, value must be an object", i);
        const char *key;
        json_t *v;
        json_object_foreach(value, key, v)
        {
            json_t *one = json_pack("{s:s, s:s, s:O}", "op", op, "path", key, "value", v);
            rc = one ? patch_group_op(req, group, one, i, err)
                     : cf_err_set(err, CF_ENOMEM, "out of memory");
            json_decref(one);
            if (rc != CF_OK)
                return rc;
        }
        return CF_OK;
    }
    if (strcasecmp(path, "displayName") == 0 || strcasecmp(path, "externalId") == 0) {
        bool name = strcasecmp(path, "displayName") == 0;
        if (strcmp(op, "remove") == 0 && name)
            return cf_err_field(err, CF_EINVAL, "path", "displayName cannot be removed");
        rc = strcmp(op, "remove") == 0 ? CF_OK : string_value(value, path, &text, err);
        if (rc == CF_OK)
            rc = cf_groups_update(cf_req_core(req), cf_scim_principal(), group->id,
                                  name ? text : NULL, name ? NULL : (text ? text : ""), &updated,
                                  err);
        return rc;
    }
    if (strcasecmp(path, "members") == 0) {
        if (strcmp(op, "replace") == 0)
            return set_members(req, group, value, err);
        if (strcmp(op, "remove") == 0 && !value) /* all of them */
            return set_members(req, group, json_array(), err);
        return change_members(req, group, value, strcmp(op, "add") == 0, err);
    }
    /* members[value eq "USER-ID"] (remove) */
    size_t len = strlen(path);
    if (strncasecmp(path, "members[", 8) == 0 && len > 9 && path[len - 1] == ']') {
        rc = parse_eq(path + 8, len - 9, "path", attribute, sizeof(attribute), user_id,
                      sizeof(user_id), err);
        if (rc == CF_OK && strcmp(attribute, "value") != 0)
            rc = cf_err_field(err, CF_EINVAL, "path", "path: members are chosen by value");
        if (rc != CF_OK)
            return rc;
        json_t *one = json_pack("[{s:s}]", "value", user_id);
        rc = one ? change_members(req, group, one, strcmp(op, "remove") != 0, err)
                 : cf_err_set(err, CF_ENOMEM, "out of memory");
        json_decref(one);
        return rc;
    }
    return cf_err_field(err, CF_EINVAL, "path",
                        "path: '%.128s' is not displayName, externalId or members", path);
}

/* PATCH /scim/v2/Groups/{id} {Operations}: 204 (Entra does not need the group back), or 200 with
 * the group when the query asks for attributes */
static enum cf_rc patch_group(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_group group;
    json_t *ops = NULL, *item;
    size_t i;
    enum cf_rc rc = scim_auth(req, err);

    if (rc == CF_OK)
        rc = path_group(req, &group, err);
    if (rc == CF_OK)
        rc = patch_ops(req, &ops, err);
    json_array_foreach(ops, i, item)
    {
        if (rc == CF_OK)
            rc = patch_group_op(req, &group, item, i, err);
    }
    if (rc != CF_OK)
        return rc;
    audit_target(req, "scim.groups.update", "group", group.name);
    return reply_group(req, group.id, out, err);
}

/* DELETE /scim/v2/Groups/{id} -> 204 */
static enum cf_rc delete_group(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_group group, gone;
    enum cf_rc rc = scim_auth(req, err);
    (void)out;
    if (rc == CF_OK)
        rc = path_group(req, &group, err);
    if (rc == CF_OK)
        rc = cf_groups_delete(cf_req_core(req), cf_scim_principal(), group.id, &gone, err);
    if (rc == CF_OK) {
        audit_target(req, "scim.groups.delete", "group", gone.name);
        cf_req_set_status(req, 204);
    }
    return rc;
}

/* ---- discovery (RFC 7644 section 4) ---- */

/* GET /scim/v2/ServiceProviderConfig */
static enum cf_rc service_provider_config(struct cf_req *req, json_t **out, struct cf_err *err)
{
    enum cf_rc rc = scim_auth(req, err);
    if (rc != CF_OK)
        return rc;
    return cf_render_reply(
        json_pack("{s:[s], s:s, s:{s:b}, s:{s:b, s:i}, s:{s:b, s:i, s:i}, s:{s:b}, s:{s:b}, "
                  "s:{s:b}, s:[{s:s, s:s, s:s, s:b}]}",
                  "schemas", "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig",
                  "documentationUri", "https://github.com/coffer/coffer/blob/main/docs/users.md",
                  "patch", "supported", 1, "filter", "supported", 1, "maxResults", 10000, "bulk",
                  "supported", 0, "maxOperations", 0, "maxPayloadSize", 0, "changePassword",
                  "supported", 0, "sort", "supported", 0, "etag", "supported", 0,
                  "authenticationSchemes", "type", "oauthbearertoken", "name", "Bearer token",
                  "description", "a SCIM token made by coffer scim token create", "primary", 1),
        out, err);
}

static json_t *resource_type(const char *name, const char *schema)
{
    char endpoint[32];
    snprintf(endpoint, sizeof(endpoint), "/%ss", name);
    return json_pack("{s:[s], s:s, s:s, s:s, s:s, s:{s:s}}", "schemas",
                     "urn:ietf:params:scim:schemas:core:2.0:ResourceType", "id", name, "name", name,
                     "endpoint", endpoint, "schema", schema, "meta", "resourceType",
                     "ResourceType");
}

/* GET /scim/v2/ResourceTypes */
static enum cf_rc resource_types(struct cf_req *req, json_t **out, struct cf_err *err)
{
    enum cf_rc rc = scim_auth(req, err);
    if (rc != CF_OK)
        return rc;
    json_t *list = cf_render_append(json_array(), resource_type("User", SCHEMA_USER));
    return reply_list(req, cf_render_append(list, resource_type("Group", SCHEMA_GROUP)), out, err);
}

/* An attribute of a minimal schema: a single-valued string unless said otherwise. */
static json_t *attribute(const char *name, const char *type, bool multi, bool required)
{
    return json_pack("{s:s, s:s, s:b, s:b, s:s, s:s, s:s, s:b}", "name", name, "type", type,
                     "multiValued", multi, "required", required, "mutability", "readWrite",
                     "returned", "default", "uniqueness",
                     strcmp(name, "userName") == 0 ? "server" : "none", "caseExact", 0);
}

/* GET /scim/v2/Schemas: the attributes Coffer keeps of users and groups */
static enum cf_rc schemas(struct cf_req *req, json_t **out, struct cf_err *err)
{
    enum cf_rc rc = scim_auth(req, err);
    if (rc != CF_OK)
        return rc;
    json_t *user_attrs = json_array();
    user_attrs = cf_render_append(user_attrs, attribute("userName", "string", false, true));
    user_attrs = cf_render_append(user_attrs, attribute("externalId", "string", false, false));
    user_attrs = cf_render_append(user_attrs, attribute("displayName", "string", false, false));
    user_attrs = cf_render_append(user_attrs, attribute("emails", "complex", true, false));
    user_attrs = cf_render_append(user_attrs, attribute("active", "boolean", false, false));
    json_t *group_attrs = json_array();
    group_attrs = cf_render_append(group_attrs, attribute("displayName", "string", false, true));
    group_attrs = cf_render_append(group_attrs, attribute("externalId", "string", false, false));
    group_attrs = cf_render_append(group_attrs, attribute("members", "complex", true, false));
    json_t *list = json_array();
    if (user_attrs)
        list = cf_render_append(list, json_pack("{s:s, s:s, s:o}", "id", SCHEMA_USER, "name",
                                                "User", "attributes", user_attrs));
    if (group_attrs)
        list = cf_render_append(list, json_pack("{s:s, s:s, s:o}", "id", SCHEMA_GROUP, "name",
                                                "Group", "attributes", group_attrs));
    return reply_list(req, list, out, err);
}

/* ---- SCIM tokens, managed by owners through the ordinary API ---- */

static json_t *render_token(const struct cf_scim_token *t)
{
    return json_pack("{s:s, s:s, s:b, s:s, s:o, s:o}", "id", t->id, "name", t->name, "revoked",
                     t->revoked, "createdBy", t->created_by, "createdAt",
                     cf_json_time(t->created_at), "lastUsedAt", cf_json_time(t->last_used_at));
}

/* POST /api/v1/scim/tokens {name} -> {token, scimToken} (the token shown once) */
static enum cf_rc create_token(struct cf_req *req, json_t **out, struct cf_err *err)
{
    char token[CF_SCIM_TOKEN_MAX] = "";
    struct cf_scim_token t;
    json_t *body = NULL;
    const char *name = NULL;
    enum cf_rc rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "name", true, &name, err);
    if (rc == CF_OK)
        rc = cf_scim_token_create(cf_req_core(req), cf_req_principal(req), name, token, &t, err);
    if (rc == CF_OK) {
        audit_target(req, "scim.token.create", "token", t.id);
        rc = cf_render_reply(json_pack("{s:s, s:o}", "token", token, "scimToken", render_token(&t)),
                             out, err);
    }
    sodium_memzero(token, sizeof(token));
    return rc;
}

/* GET /api/v1/scim/tokens -> {scimTokens: [...]} (never the tokens themselves) */
static enum cf_rc list_tokens(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_scim_token_list list = {0};
    enum cf_rc rc = cf_scim_token_list(cf_req_core(req), cf_req_principal(req), &list, err);
    json_t *array = rc == CF_OK ? json_array() : NULL;
    for (size_t i = 0; array && i < list.n; i++)
        array = cf_render_append(array, render_token(&list.items[i]));
    cf_scim_token_list_release(&list);
    return rc == CF_OK ? cf_render_reply_member("scimTokens", array, out, err) : rc;
}

/* DELETE /api/v1/scim/tokens/{id} -> {message}: revoked at once */
static enum cf_rc revoke_token(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const char *id = cf_req_param(req, "tokenId");
    enum cf_rc rc = cf_scim_token_revoke(cf_req_core(req), cf_req_principal(req), id, err);
    if (rc == CF_OK) {
        audit_target(req, "scim.token.revoke", "token", id);
        rc = cf_render_reply(json_pack("{s:s}", "message", "SCIM token revoked"), out, err);
    }
    return rc;
}

const struct cf_route cf_routes_scim[] = {
    {"POST", "/api/v1/scim/tokens", create_token, false},
    {"GET", "/api/v1/scim/tokens", list_tokens, false},
    {"DELETE", "/api/v1/scim/tokens/:tokenId", revoke_token, false},
    {"GET", "/scim/v2/ServiceProviderConfig", service_provider_config, true, NULL, false, true},
    {"GET", "/scim/v2/ResourceTypes", resource_types, true, NULL, false, true},
    {"GET", "/scim/v2/Schemas", schemas, true, NULL, false, true},
    {"GET", "/scim/v2/Users", list_users, true, NULL, false, true},
    {"POST", "/scim/v2/Users", create_user, true, NULL, false, true},
    {"GET", "/scim/v2/Users/:id", get_user, true, NULL, false, true},
    {"PUT", "/scim/v2/Users/:id", replace_user, true, NULL, false, true},
    {"PATCH", "/scim/v2/Users/:id", patch_user, true, NULL, false, true},
    {"DELETE", "/scim/v2/Users/:id", delete_user, true, NULL, false, true},
    {"GET", "/scim/v2/Groups", list_groups, true, NULL, false, true},
    {"POST", "/scim/v2/Groups", create_group, true, NULL, false, true},
    {"GET", "/scim/v2/Groups/:id", get_group, true, NULL, false, true},
    {"PUT", "/scim/v2/Groups/:id", replace_group, true, NULL, false, true},
    {"PATCH", "/scim/v2/Groups/:id", patch_group, true, NULL, false, true},
    {"DELETE", "/scim/v2/Groups/:id", delete_group, true, NULL, false, true},
    {NULL, NULL, NULL, false, NULL, false, false},
};
