/* Approval policies and change requests (core/approvals.h, docs/approvals.md). A request's proposed
 * values are sealed with the project key like secret versions, under associated data of their own
 * (path "change-request/<id>", the key, version = the item's position), so that a sealed proposal
 * cannot pass for a secret version or for another request's. Decisions and merges notify the
 * project's channels (core/channels.h) with a link to the request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "core/approvals.h"
#include "core/authz.h"
#include "core/channels.h"
#include "core/names.h"
#include "core/users.h"
#include "util/id.h"
#include "util/str.h"
#include "util/time.h"
#include "util/wipemem.h"
#include "util/banned.h"

/* Where a request is shown: the API path (the server has no public URL setting). */
#define REQUEST_LINK "/api/v1/secret-approval-requests/"

void cf_approval_view_release(struct cf_approval_view *v)
{
    if (!v)
        return;
    cf_change_request_release(&v->req);
    free(v->current_versions);
    memset(v, 0, sizeof(*v));
}

void cf_approval_view_list_release(struct cf_approval_view_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        cf_approval_view_release(&l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

void cf_approval_reveal_release(struct cf_approval_reveal *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        cf_buf_release_wipe(&r->items[i].proposed);
        cf_buf_release_wipe(&r->items[i].current);
    }
    free(r->items);
    r->items = NULL;
    r->n = 0;
}

/* ---- who may do what ---- */

/* Whether who may see the project at all: an org admin, or a member of it. */
static enum cf_rc project_visible(struct cf_core *core, const struct cf_principal *who,
                                  const char *project, struct cf_project *out, struct cf_err *err)
{
    struct cf_membership m = {0};
    memset(out, 0, sizeof(*out));
    if (!project || !project[0])
        return cf_err_field(err, CF_EVALIDATION, "projectId", "projectId is required");
    enum cf_rc rc = cf_store_project_get(core->store, project, out, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "Project with ID '%s' not found", project);
    if (rc != CF_OK || cf_principal_is_admin(who))
        return rc;
    rc = cf_principal_membership(core, who, out->id, &m, err);
    cf_membership_release(&m);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_EFORBIDDEN, "you are not a member of project '%s'", out->slug);
    if (rc != CF_OK)
        cf_project_release(out);
    return rc;
}

static bool is_approver(struct cf_core *core, const struct cf_principal *who,
                        const struct cf_change_request *req)
{
    struct cf_err err;
    bool yes = false;
    if (who->kind != CF_PRINCIPAL_USER || !req->policy_id[0])
        return false;
    return cf_store_approval_is_approver(core->store, req->policy_id, who->id, &yes, &err) ==
               CF_OK &&
           yes;
}

static bool is_author(const struct cf_principal *who, const struct cf_change_request *req)
{
    return who->kind == CF_PRINCIPAL_USER && strcmp(who->id, req->author_id) == 0;
}

/* Whether who may do action at the request's place (env by id, its path). */
static bool may_at_place(struct cf_core *core, const struct cf_principal *who,
                         const struct cf_approval_view *v, enum cf_action action)
{
    struct cf_env env = {0};
    struct cf_err err;
    cf_strlcpy(env.id, v->req.env_id, sizeof(env.id));
    cf_strlcpy(env.project_id, v->req.project_id, sizeof(env.project_id));
    cf_strlcpy(env.slug, v->env_slug, sizeof(env.slug));
    return cf_authz_check(core, who, action, v->req.project_id, &env,
                          action == CF_ACTION_ADMIN ? NULL : v->req.path, &err) == CF_OK;
}

static bool may_view(struct cf_core *core, const struct cf_principal *who,
                     const struct cf_approval_view *v)
{
    return is_author(who, &v->req) || is_approver(core, who, &v->req) ||
           may_at_place(core, who, v, CF_ACTION_ADMIN) ||
           may_at_place(core, who, v, CF_ACTION_READ);
}

/* ---- views ---- */

/* Fills v's computed fields from v->req: the slugs, the approvals counted, the current versions. */
static enum cf_rc complete_view(struct cf_core *core, struct cf_approval_view *v,
                                struct cf_err *err)
{
    struct cf_project project = {0};
    struct cf_env env = {0};
    enum cf_rc rc = cf_store_project_get(core->store, v->req.project_id, &project, err);
    if (rc == CF_OK)
        rc = cf_store_env_get(core->store, v->req.project_id, v->req.env_id, &env, err);
    if (rc == CF_OK) {
        cf_strlcpy(v->project_slug, project.slug, sizeof(v->project_slug));
        cf_strlcpy(v->env_slug, env.slug, sizeof(v->env_slug));
    }
    cf_project_release(&project);
    if (rc != CF_OK)
        return rc;
    v->approvals = 0;
    for (size_t i = 0; i < v->req.n_reviews; i++)
        if (strcmp(v->req.reviews[i].decision, "approved") == 0 &&
            strcmp(v->req.reviews[i].user_id, v->req.author_id) != 0)
            v->approvals++;
    v->approved = v->approvals >= v->req.approvals_required;
    v->current_versions = calloc(v->req.n_items ? v->req.n_items : 1, sizeof(int64_t));
    if (!v->current_versions)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    v->conflicts = false;
    for (size_t i = 0; i < v->req.n_items; i++) {
        struct cf_secret cur = {0};
        rc = cf_store_secret_get(core->store, v->req.folder_id, v->req.items[i].key, 0, &cur, err);
        if (rc == CF_OK)
            v->current_versions[i] = cur.version;
        cf_secret_release(&cur);
        if (rc != CF_OK && rc != CF_ENOTFOUND)
            return rc;
        rc = CF_OK;
        if (strcmp(v->req.status, "open") == 0 &&
            v->current_versions[i] != v->req.items[i].base_version)
            v->conflicts = true;
    }
    return CF_OK;
}

/* Loads request id for who: CF_ENOTFOUND also when who may not see it. */
static enum cf_rc load_view(struct cf_core *core, const struct cf_principal *who, const char *id,
                            struct cf_approval_view *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!id || !cf_uuid_valid(id))
        return cf_err_field(err, CF_EVALIDATION, "requestId", "requestId: '%.40s' is not a UUID",
                            id ? id : "");
    enum cf_rc rc = cf_store_change_request_get(core->store, id, &out->req, err);
    if (rc == CF_OK)
        rc = complete_view(core, out, err);
    if (rc == CF_OK && !may_view(core, who, out))
        rc = cf_err_set(err, CF_ENOTFOUND, "change request '%s' not found", id);
    if (rc != CF_OK)
        cf_approval_view_release(out);
    return rc;
}

/* ---- notifications ---- */

/* Tells the project's channels of event ("opened", "approved", "rejected", "merged", "closed")
 * on v by actor (an email). Keys and counts only, never a value. */
static void notify(struct cf_core *core, const struct cf_approval_view *v, const char *event,
                   const char *actor)
{
    char key[CF_UUID_LEN + 64 + CF_EMAIL_MAX], threshold[32], link[CF_UUID_LEN + 64];
    char message[CF_NOTICE_MESSAGE_MAX + 1];
    snprintf(key, sizeof(key), "approval:%s:%s:%s", v->req.id, event, actor);
    snprintf(threshold, sizeof(threshold), "change-%s", event);
    snprintf(link, sizeof(link), REQUEST_LINK "%s", v->req.id);
    snprintf(message, sizeof(message),
             "Change request %s (%zu change%s to %s:%s in project '%s', policy '%s') was %s by "
             "%s; %lld of %lld approvals. %s",
             v->req.id, v->req.n_items, v->req.n_items == 1 ? "" : "s", v->env_slug, v->req.path,
             v->project_slug, v->req.policy_name, event, actor, (long long)v->approvals,
             (long long)v->req.approvals_required, link);
    json_t *keys = json_array();
    for (size_t i = 0; keys && i < v->req.n_items; i++)
        json_array_append_new(keys, json_string(v->req.items[i].key));
    json_t *item =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:s}", "kind",
                  "change-request", "requestId", v->req.id, "event", event, "status", v->req.status,
                  "projectId", v->req.project_id, "environment", v->env_slug, "secretPath",
                  v->req.path, "policy", v->req.policy_name, "keys", keys ? keys : json_array(),
                  "approvals", (json_int_t)v->approvals, "approvalsRequired",
                  (json_int_t)v->req.approvals_required, "link", link);
    char *text = item ? json_dumps(item, JSON_COMPACT) : NULL;
    json_decref(item);
    cf_channels_alert(core, v->req.project_id, key, threshold, message, text);
    cf_json_free_text(text);
}

/* ---- policies ---- */

static enum cf_rc resolve_user(struct cf_core *core, const char *ref, struct cf_user *out,
                               struct cf_err *err)
{
    enum cf_rc rc;
    if (cf_uuid_valid(ref)) {
        rc = cf_store_user_get(core->store, ref, out, err);
    } else {
        char email[CF_EMAIL_MAX + 1];
        size_t n = strlen(ref);
        if (n >= sizeof(email))
            return cf_err_field(err, CF_EVALIDATION, "approvers", "approvers: '%.64s' is too long",
                                ref);
        for (size_t i = 0; i <= n; i++)
            email[i] = (ref[i] >= 'A' && ref[i] <= 'Z') ? (char)(ref[i] - 'A' + 'a') : ref[i];
        rc = cf_store_user_get_by_email(core->store, email, out, err);
    }
    if (rc == CF_ENOTFOUND)
        rc = cf_err_field(err, CF_ENOTFOUND, "approvers", "approver user '%s' not found", ref);
    return rc;
}

enum cf_rc cf_approvals_policy_create(struct cf_core *core, const struct cf_principal *who,
                                      const struct cf_approval_policy_spec *spec,
                                      struct cf_approval_policy *out, struct cf_err *err)
{
    struct cf_project project = {0};
    struct cf_env env = {0};
    size_t n = spec->n_users + spec->n_groups;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = cf_project_for_admin(core, who, spec->project, &project, err);
    if (rc != CF_OK)
        return rc;
    if (!spec->name || !spec->name[0])
        rc = cf_err_field(err, CF_EVALIDATION, "name", "name: required");
    else if (strlen(spec->name) > CF_NAME_MAX)
        rc = cf_err_field(err, CF_EVALIDATION, "name", "name: at most %d bytes", CF_NAME_MAX);
    else if (!spec->env || !spec->env[0])
        rc = cf_err_field(err, CF_EVALIDATION, "environment", "environment: required");
    else if (spec->approvals < 1 || spec->approvals > CF_APPROVALS_REQUIRED_MAX)
        rc = cf_err_field(err, CF_EVALIDATION, "approvals", "approvals: between 1 and %d",
                          CF_APPROVALS_REQUIRED_MAX);
    else if (spec->enforcement && strcmp(spec->enforcement, "hard") != 0 &&
             strcmp(spec->enforcement, "soft") != 0)
        rc = cf_err_field(err, CF_EVALIDATION, "enforcementLevel",
                          "enforcementLevel: 'hard' or 'soft', not '%.16s'", spec->enforcement);
    else if (n == 0)
        rc = cf_err_field(err, CF_EVALIDATION, "approvers", "approvers: at least one");
    else if (n > CF_APPROVERS_MAX)
        rc = cf_err_field(err, CF_EVALIDATION, "approvers", "approvers: at most %d",
                          CF_APPROVERS_MAX);
    if (rc == CF_OK)
        rc = cf_glob_check(spec->path_glob ? spec->path_glob : "/", "secretPath", err);
    if (rc == CF_OK) {
        rc = cf_store_env_get(core->store, project.id, spec->env, &env, err);
        if (rc == CF_ENOTFOUND)
            rc = cf_err_field(err, CF_ENOTFOUND, "environment",
                              "Environment with slug '%s' in project '%s' not found", spec->env,
                              project.slug);
    }
    if (rc != CF_OK)
        goto out;

    cf_uuid_new(out->id);
    cf_strlcpy(out->project_id, project.id, sizeof(out->project_id));
    cf_strlcpy(out->name, spec->name, sizeof(out->name));
    cf_strlcpy(out->env_id, env.id, sizeof(out->env_id));
    cf_strlcpy(out->path_glob, spec->path_glob ? spec->path_glob : "/", sizeof(out->path_glob));
    out->approvals = spec->approvals;
    cf_strlcpy(out->enforcement, spec->enforcement ? spec->enforcement : "hard",
               sizeof(out->enforcement));
    out->allow_machines = spec->allow_machines;
    out->approvers = calloc(n, sizeof(*out->approvers));
    if (!out->approvers) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < spec->n_users && rc == CF_OK; i++) {
        struct cf_user user = {0};
        rc = resolve_user(core, spec->user_refs[i], &user, err);
        if (rc == CF_OK) {
            struct cf_approval_approver *a = &out->approvers[out->n_approvers++];
            cf_strlcpy(a->user_id, user.id, sizeof(a->user_id));
            cf_strlcpy(a->name, user.email, sizeof(a->name));
        }
        sodium_memzero(user.password_hash, sizeof(user.password_hash));
    }
    for (size_t i = 0; i < spec->n_groups && rc == CF_OK; i++) {
        struct cf_approval_approver *a = &out->approvers[out->n_approvers];
        rc = cf_store_approval_group_find(core->store, spec->group_refs[i], a->group_id, err);
        if (rc == CF_ENOTFOUND)
            rc = cf_err_field(err, CF_ENOTFOUND, "approvers", "approver group '%s' not found",
                              spec->group_refs[i]);
        if (rc == CF_OK) {
            cf_strlcpy(a->name, spec->group_refs[i], sizeof(a->name));
            out->n_approvers++;
        }
    }
    for (size_t i = 0; i < out->n_approvers && rc == CF_OK; i++)
        for (size_t j = 0; j < i && rc == CF_OK; j++)
            if (strcmp(out->approvers[i].user_id, out->approvers[j].user_id) == 0 &&
                strcmp(out->approvers[i].group_id, out->approvers[j].group_id) == 0)
                rc = cf_err_field(err, CF_EVALIDATION, "approvers",
                                  "approvers: '%s' is named twice", out->approvers[i].name);
    if (rc == CF_OK)
        rc = cf_store_approval_policy_create(core->store, out, err);
    if (rc == CF_OK)
        out->created_at = out->updated_at = cf_now_ms();
out:
    cf_project_release(&project);
    if (rc != CF_OK)
        cf_approval_policy_release(out);
    return rc;
}

enum cf_rc cf_approvals_policy_list(struct cf_core *core, const struct cf_principal *who,
                                    const char *project, struct cf_approval_policy_list *out,
                                    char (**env_slugs)[CF_SLUG_MAX + 1], struct cf_err *err)
{
    struct cf_project p = {0};
    memset(out, 0, sizeof(*out));
    *env_slugs = NULL;
    enum cf_rc rc = project_visible(core, who, project, &p, err);
    if (rc == CF_OK)
        rc = cf_store_approval_policy_list(core->store, p.id, NULL, out, err);
    if (rc == CF_OK) {
        *env_slugs = calloc(out->n ? out->n : 1, sizeof(**env_slugs));
        if (!*env_slugs)
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < out->n && rc == CF_OK; i++) {
        struct cf_env env = {0};
        if (cf_store_env_get(core->store, p.id, out->items[i].env_id, &env, err) == CF_OK)
            cf_strlcpy((*env_slugs)[i], env.slug, sizeof((*env_slugs)[i]));
    }
    cf_project_release(&p);
    if (rc != CF_OK) {
        cf_approval_policy_list_release(out);
        free(*env_slugs);
        *env_slugs = NULL;
    }
    return rc;
}

enum cf_rc cf_approvals_policy_delete(struct cf_core *core, const struct cf_principal *who,
                                      const char *project, const char *policy, struct cf_err *err)
{
    struct cf_project p = {0};
    enum cf_rc rc = cf_project_for_admin(core, who, project, &p, err);
    if (rc == CF_OK)
        rc = cf_store_approval_policy_delete(core->store, p.id, policy, err);
    cf_project_release(&p);
    return rc;
}

/* ---- intercepting writes ---- */

/* The policy that governs scope's folder, if any: of those covering it, the one asking for the most
 * approvals, hard before soft on a tie, then by name. *found says whether there is one. */
static enum cf_rc governing_policy(struct cf_core *core, const struct cf_scope *scope,
                                   struct cf_approval_policy *out, bool *found, struct cf_err *err)
{
    struct cf_approval_policy_list list = {0};
    const struct cf_approval_policy *best = NULL;
    *found = false;
    memset(out, 0, sizeof(*out));
    enum cf_rc rc =
        cf_store_approval_policy_list(core->store, scope->project.id, scope->env.id, &list, err);
    for (size_t i = 0; i < list.n && rc == CF_OK; i++) {
        const struct cf_approval_policy *p = &list.items[i];
        if (!cf_glob_match(p->path_glob, scope->folder.path))
            continue;
        bool hard = strcmp(p->enforcement, "hard") == 0;
        if (!best || p->approvals > best->approvals ||
            (p->approvals == best->approvals && hard && strcmp(best->enforcement, "hard") != 0))
            best = p;
    }
    if (rc == CF_OK && best) {
        *out = *best;
        out->approvers = NULL; /* not needed by the callers: they ask the store per user */
        out->n_approvers = 0;
        *found = true;
    }
    cf_approval_policy_list_release(&list);
    return rc;
}

static enum cf_action change_action(enum cf_change_kind kind)
{
    return kind == CF_CHANGE_CREATE   ? CF_ACTION_CREATE
           : kind == CF_CHANGE_DELETE ? CF_ACTION_DELETE
                                      : CF_ACTION_EDIT;
}

/* Fills item from change c (checked as a write would be), sealing its value for request_id at
 * position i. */
static enum cf_rc plan_item(struct cf_core *core, const struct cf_principal *who,
                            const struct cf_scope *scope, const struct cf_secret_change *c,
                            const char *request_id, size_t i, struct cf_change_item *item,
                            struct cf_err *err)
{
    struct cf_secret cur = {0};
    struct cf_buf value;
    char ad_path[CF_UUID_LEN + 32];
    enum cf_rc rc;

    cf_buf_init(&value, CF_VALUE_MAX + 2);
    item->skip_multiline = -1;
    rc = cf_key_check(c->key, "secretKey", err);
    if (rc == CF_OK && c->new_key)
        rc = cf_key_check(c->new_key, "newSecretName", err);
    if (rc == CF_OK && c->has_value && c->value_len > CF_VALUE_MAX)
        rc = cf_err_field(err, CF_ETOOLARGE, "secretValue",
                          "value of '%s' is %zu bytes, over the limit of %d bytes", c->key,
                          c->value_len, CF_VALUE_MAX);
    if (rc == CF_OK && c->has_comment)
        rc = cf_text_check(c->comment, CF_COMMENT_MAX, false, "secretComment", err);
    if (rc == CF_OK &&
        (c->has_tags || c->has_expires || c->has_reminder_days || c->has_reminder_note))
        rc = cf_err_field(err, CF_EVALIDATION,
                          c->has_tags      ? "tagIds"
                          : c->has_expires ? "expiresAt"
                                           : "secretReminderRepeatDays",
                          "'%s' is in a place that needs approval: a change request may change "
                          "values, comments and names, not tags, expiry or reminders",
                          c->key);
    if (rc == CF_OK)
        rc = cf_authz_check(core, who, change_action(c->kind), scope->project.id, &scope->env,
                            scope->folder.path, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_store_secret_get(core->store, scope->folder.id, c->key, 0, &cur, err);
    if (rc != CF_OK && rc != CF_ENOTFOUND)
        goto out;
    bool exists = rc == CF_OK;
    rc = CF_OK;
    enum cf_change_kind kind = c->kind;
    if (kind == CF_CHANGE_UPSERT)
        kind = exists ? CF_CHANGE_UPDATE : CF_CHANGE_CREATE;
    if (kind == CF_CHANGE_CREATE && exists)
        rc = cf_err_field(err, CF_EEXIST, "secretKey",
                          "Secret with name '%s' already exists in folder '%s'", c->key,
                          scope->folder.path);
    else if (kind != CF_CHANGE_CREATE && !exists)
        rc =
            cf_err_field(err, CF_ENOTFOUND, "secretKey", "Secret with name '%s' not found", c->key);
    else if (kind == CF_CHANGE_CREATE && !c->has_value)
        rc = cf_err_field(err, CF_EVALIDATION, "secretValue",
                          "secretValue: required to create '%s'", c->key);
    if (rc != CF_OK)
        goto out;
    cf_strlcpy(item->op,
               kind == CF_CHANGE_CREATE   ? "create"
               : kind == CF_CHANGE_DELETE ? "delete"
                                          : "update",
               sizeof(item->op));
    cf_strlcpy(item->key, c->key, sizeof(item->key));
    if (c->new_key && kind == CF_CHANGE_UPDATE)
        cf_strlcpy(item->new_key, c->new_key, sizeof(item->new_key));
    item->base_version = exists ? cur.version : 0;
    if (kind == CF_CHANGE_DELETE)
        goto out;
    if (c->has_comment) {
        item->comment = strdup(c->comment ? c->comment : "");
        if (!item->comment) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (c->has_skip_multiline)
        item->skip_multiline = c->skip_multiline ? 1 : 0;
    if (c->has_value) {
        rc = cf_value_normalize(c->value, c->value_len, &value);
        if (rc != CF_OK) {
            rc = cf_err_field(err, rc, "secretValue", "value of '%s' is too large", c->key);
            goto out;
        }
        snprintf(ad_path, sizeof(ad_path), "change-request/%s", request_id);
        struct cf_seal_ad ad = {scope->project.id, scope->env.id, ad_path, c->key, (int64_t)i};
        rc = cf_keyring_seal(core->keyring, scope->project.wrapped_key,
                             scope->project.wrapped_key_len, &ad, value.data ? value.data : "",
                             value.len, &item->sealed, &item->sealed_len, err);
    }
out:
    cf_buf_release_wipe(&value);
    cf_secret_release(&cur);
    return rc;
}

enum cf_rc cf_approvals_intercept(struct cf_core *core, const struct cf_principal *who,
                                  const struct cf_scope *scope,
                                  const struct cf_secret_change *changes, size_t n,
                                  struct cf_approval_hold *hold, struct cf_err *err)
{
    struct cf_approval_policy policy = {0};
    struct cf_approval_view view = {0};
    struct cf_change_request *req = &view.req;
    bool found = false;
    enum cf_rc rc;

    memset(hold, 0, sizeof(*hold));
    rc = governing_policy(core, scope, &policy, &found, err);
    if (rc != CF_OK || !found)
        return rc;
    if (who->kind == CF_PRINCIPAL_IDENTITY) {
        if (policy.allow_machines)
            return CF_OK;
        return cf_err_set(err, CF_EFORBIDDEN,
                          "secrets at %s:%s need approval (approval policy '%s'): machine "
                          "identities may not write there",
                          scope->env.slug, scope->folder.path, policy.name);
    }
    if (who->kind != CF_PRINCIPAL_USER)
        return cf_err_set(err, CF_EFORBIDDEN,
                          "secrets at %s:%s need approval (approval policy '%s'): the admin token "
                          "cannot propose changes; sign in as a person (coffer login --user)",
                          scope->env.slug, scope->folder.path, policy.name);
    if (n == 0 || n > CF_BATCH_MAX)
        return cf_err_field(err, CF_EVALIDATION, "secrets", "secrets: between 1 and %d",
                            CF_BATCH_MAX);

    cf_uuid_new(req->id);
    cf_strlcpy(req->project_id, scope->project.id, sizeof(req->project_id));
    cf_strlcpy(req->policy_id, policy.id, sizeof(req->policy_id));
    cf_strlcpy(req->policy_name, policy.name, sizeof(req->policy_name));
    req->approvals_required = policy.approvals;
    cf_strlcpy(req->enforcement, policy.enforcement, sizeof(req->enforcement));
    cf_strlcpy(req->env_id, scope->env.id, sizeof(req->env_id));
    cf_strlcpy(req->folder_id, scope->folder.id, sizeof(req->folder_id));
    cf_strlcpy(req->path, scope->folder.path, sizeof(req->path));
    cf_strlcpy(req->author_id, who->id, sizeof(req->author_id));
    cf_strlcpy(req->author_email, who->email, sizeof(req->author_email));
    cf_strlcpy(req->status, "open", sizeof(req->status));
    req->created_at = req->updated_at = cf_now_ms();
    req->items = calloc(n, sizeof(*req->items));
    if (!req->items) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n && rc == CF_OK; i++) {
        for (size_t j = 0; j < i && rc == CF_OK; j++)
            if (strcmp(changes[j].key, changes[i].key) == 0)
                rc = cf_err_field(err, CF_EINVAL, "secretKey", "duplicate key '%s' in one batch",
                                  changes[i].key);
        if (rc == CF_OK)
            rc = plan_item(core, who, scope, &changes[i], req->id, i, &req->items[i], err);
        req->n_items = i + 1;
    }
    if (rc == CF_OK)
        rc = cf_store_change_request_create(core->store, req, err);
    if (rc != CF_OK)
        goto out;
    hold->held = true;
    cf_strlcpy(hold->request_id, req->id, sizeof(hold->request_id));
    cf_strlcpy(hold->policy_name, policy.name, sizeof(hold->policy_name));
    hold->approvals_required = policy.approvals;
    cf_strlcpy(view.project_slug, scope->project.slug, sizeof(view.project_slug));
    cf_strlcpy(view.env_slug, scope->env.slug, sizeof(view.env_slug));
    notify(core, &view, "opened", who->email);
out:
    cf_approval_view_release(&view);
    return rc;
}

enum cf_rc cf_approvals_guard_direct(struct cf_core *core, const struct cf_principal *who,
                                     const struct cf_scope *scope, const char *what,
                                     struct cf_err *err)
{
    struct cf_approval_policy policy = {0};
    bool found = false;
    enum cf_rc rc = governing_policy(core, scope, &policy, &found, err);
    if (rc != CF_OK || !found)
        return rc;
    if (who->kind == CF_PRINCIPAL_IDENTITY && policy.allow_machines)
        return CF_OK;
    return cf_err_set(err, CF_EFORBIDDEN,
                      "secrets at %s:%s need approval (approval policy '%s'): a %s cannot go "
                      "through a change request; propose the value with a write instead",
                      scope->env.slug, scope->folder.path, policy.name, what);
}

/* ---- requests ---- */

enum cf_rc cf_approvals_request_list(struct cf_core *core, const struct cf_principal *who,
                                     const char *project, const char *status,
                                     struct cf_approval_view_list *out, struct cf_err *err)
{
    struct cf_project p = {0};
    struct cf_change_request_list list = {0};
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    if (status && strcmp(status, "open") != 0 && strcmp(status, "merged") != 0 &&
        strcmp(status, "rejected") != 0 && strcmp(status, "closed") != 0)
        return cf_err_field(err, CF_EVALIDATION, "status",
                            "status: open, merged, rejected or closed, not '%.16s'", status);
    rc = project_visible(core, who, project, &p, err);
    if (rc == CF_OK)
        rc = cf_store_change_request_list(core->store, p.id, status, &list, err);
    if (rc == CF_OK && list.n) {
        out->items = calloc(list.n, sizeof(*out->items));
        if (!out->items)
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < list.n && rc == CF_OK; i++) {
        struct cf_approval_view *v = &out->items[out->n];
        v->req = list.items[i];
        memset(&list.items[i], 0, sizeof(list.items[i]));
        out->n++;
        rc = complete_view(core, v, err);
        if (rc == CF_OK && !may_view(core, who, v)) {
            cf_approval_view_release(v);
            out->n--;
        }
    }
    cf_change_request_list_release(&list);
    cf_project_release(&p);
    if (rc != CF_OK)
        cf_approval_view_list_release(out);
    return rc;
}

enum cf_rc cf_approvals_request_get(struct cf_core *core, const struct cf_principal *who,
                                    const char *id, struct cf_approval_view *out,
                                    struct cf_err *err)
{
    return load_view(core, who, id, out, err);
}

/* Reloads out (request id) after a change, for the answer. */
static enum cf_rc reload(struct cf_core *core, const char *id, struct cf_approval_view *out,
                         struct cf_err *err)
{
    cf_approval_view_release(out);
    enum cf_rc rc = cf_store_change_request_get(core->store, id, &out->req, err);
    if (rc == CF_OK)
        rc = complete_view(core, out, err);
    if (rc != CF_OK)
        cf_approval_view_release(out);
    return rc;
}

enum cf_rc cf_approvals_review(struct cf_core *core, const struct cf_principal *who, const char *id,
                               const char *decision, const char *comment,
                               struct cf_approval_view *out, struct cf_err *err)
{
    struct cf_change_review review = {0};
    char req_id[CF_UUID_LEN];
    enum cf_rc rc;

    if (!decision || (strcmp(decision, "approved") != 0 && strcmp(decision, "rejected") != 0))
        return cf_err_field(err, CF_EVALIDATION, "status", "status: 'approved' or 'rejected'");
    if (comment && strlen(comment) > CF_REVIEW_COMMENT_MAX)
        return cf_err_field(err, CF_EVALIDATION, "comment", "comment: at most %d bytes",
                            CF_REVIEW_COMMENT_MAX);
    rc = cf_text_check(comment ? comment : "", CF_REVIEW_COMMENT_MAX, false, "comment", err);
    if (rc == CF_OK)
        rc = load_view(core, who, id, out, err);
    if (rc != CF_OK)
        return rc;
    cf_strlcpy(req_id, out->req.id, sizeof(req_id));
    if (strcmp(out->req.status, "open") != 0) {
        rc = cf_err_set(err, CF_ECONFLICT, "change request '%s' is %s, not open", req_id,
                        out->req.status);
    } else if (is_author(who, &out->req)) {
        rc = cf_err_set(err, CF_EFORBIDDEN,
                        "you made change request '%s': its author cannot review it (self-approval "
                        "is refused)",
                        req_id);
    } else if (!is_approver(core, who, &out->req)) {
        rc = cf_err_set(err, CF_EFORBIDDEN,
                        "you are not an approver of approval policy '%s', which governs change "
                        "request '%s'",
                        out->req.policy_name, req_id);
    }
    if (rc == CF_OK) {
        cf_strlcpy(review.user_id, who->id, sizeof(review.user_id));
        cf_strlcpy(review.decision, decision, sizeof(review.decision));
        cf_strlcpy(review.comment, comment ? comment : "", sizeof(review.comment));
        rc = cf_store_change_request_review(core->store, req_id, &review, err);
    }
    if (rc == CF_OK)
        rc = reload(core, req_id, out, err);
    if (rc == CF_OK)
        notify(core, out, decision, who->email);
    if (rc != CF_OK)
        cf_approval_view_release(out);
    return rc;
}

/* The request's item i as the change a write would make, its value opened into value (wiped by
 * the caller). */
static enum cf_rc item_change(struct cf_core *core, const struct cf_scope *scope,
                              const struct cf_change_request *req, size_t i,
                              struct cf_secret_change *c, struct cf_buf *value, struct cf_err *err)
{
    const struct cf_change_item *x = &req->items[i];
    memset(c, 0, sizeof(*c));
    c->key = x->key;
    c->kind = strcmp(x->op, "create") == 0   ? CF_CHANGE_CREATE
              : strcmp(x->op, "delete") == 0 ? CF_CHANGE_DELETE
                                             : CF_CHANGE_UPDATE;
    c->new_key = x->new_key[0] ? x->new_key : NULL;
    if (x->comment) {
        c->has_comment = true;
        c->comment = x->comment;
    }
    if (x->skip_multiline >= 0) {
        c->has_skip_multiline = true;
        c->skip_multiline = x->skip_multiline != 0;
    }
    if (!x->sealed)
        return CF_OK;
    char ad_path[CF_UUID_LEN + 32];
    snprintf(ad_path, sizeof(ad_path), "change-request/%s", req->id);
    struct cf_seal_ad ad = {scope->project.id, scope->env.id, ad_path, x->key, (int64_t)i};
    enum cf_rc rc =
        cf_keyring_open(core->keyring, scope->project.wrapped_key, scope->project.wrapped_key_len,
                        &ad, x->sealed, x->sealed_len, value, err);
    if (rc == CF_OK) {
        c->has_value = true;
        c->value = value->data ? value->data : "";
        c->value_len = value->len;
    }
    return rc;
}

/* The conflict message of a merge: every item whose key moved, with both versions. */
static enum cf_rc conflict_error(const struct cf_approval_view *v, struct cf_err *err)
{
    char text[CF_ERR_MSG_MAX];
    size_t at = 0;
    text[0] = '\0';
    for (size_t i = 0; i < v->req.n_items && at < sizeof(text); i++) {
        if (v->current_versions[i] == v->req.items[i].base_version)
            continue;
        int w =
            snprintf(text + at, sizeof(text) - at, "%s'%s' was at version %lld, is at %lld",
                     at ? "; " : "", v->req.items[i].key, (long long)v->req.items[i].base_version,
                     (long long)v->current_versions[i]);
        if (w < 0)
            break;
        at += (size_t)w;
    }
    return cf_err_set(err, CF_ECONFLICT,
                      "change request '%s' conflicts with changes made since: %s; it stays open "
                      "(close it and propose the change again)",
                      v->req.id, text);
}

enum cf_rc cf_approvals_merge(struct cf_core *core, const struct cf_principal *who, const char *id,
                              const char *bypass_reason, struct cf_approval_view *out,
                              struct cf_err *err)
{
    struct cf_scope scope = {0};
    struct cf_user author = {0};
    struct cf_principal as_author;
    struct cf_secret_change *changes = NULL;
    struct cf_buf *values = NULL;
    int64_t *bases = NULL;
    struct cf_plain_list written = {0};
    char req_id[CF_UUID_LEN];
    bool bypass = false;
    size_t n = 0;
    enum cf_rc rc;

    if (bypass_reason && strlen(bypass_reason) > CF_BYPASS_REASON_MAX)
        return cf_err_field(err, CF_EVALIDATION, "bypassReason", "bypassReason: at most %d bytes",
                            CF_BYPASS_REASON_MAX);
    rc = cf_text_check(bypass_reason ? bypass_reason : "", CF_BYPASS_REASON_MAX, false,
                       "bypassReason", err);
    if (rc == CF_OK)
        rc = load_view(core, who, id, out, err);
    if (rc != CF_OK)
        return rc;
    cf_strlcpy(req_id, out->req.id, sizeof(req_id));
    if (strcmp(out->req.status, "open") != 0) {
        rc = cf_err_set(err, CF_ECONFLICT, "change request '%s' is %s, not open", req_id,
                        out->req.status);
        goto out;
    }
    if (!is_author(who, &out->req) && !is_approver(core, who, &out->req)) {
        rc = cf_err_set(err, CF_EFORBIDDEN,
                        "only the author or an approver of approval policy '%s' may merge change "
                        "request '%s'",
                        out->req.policy_name, req_id);
        goto out;
    }
    if (!out->approved) {
        bool owner = who->kind == CF_PRINCIPAL_USER && strcmp(who->org_role, "owner") == 0;
        if (strcmp(out->req.enforcement, "soft") != 0)
            rc = cf_err_set(err, CF_EFORBIDDEN,
                            "change request '%s' has %lld of the %lld approvals approval policy "
                            "'%s' requires, and the policy is hard-enforced: nobody may bypass it",
                            req_id, (long long)out->approvals,
                            (long long)out->req.approvals_required, out->req.policy_name);
        else if (!owner)
            rc = cf_err_set(err, CF_EFORBIDDEN,
                            "change request '%s' has %lld of the %lld approvals approval policy "
                            "'%s' requires; only an org owner may bypass a soft policy",
                            req_id, (long long)out->approvals,
                            (long long)out->req.approvals_required, out->req.policy_name);
        else if (!bypass_reason || !bypass_reason[0])
            rc = cf_err_field(err, CF_EVALIDATION, "bypassReason",
                              "bypassReason: required to merge change request '%s' without the "
                              "%lld approvals it needs",
                              req_id, (long long)out->req.approvals_required);
        if (rc != CF_OK)
            goto out;
        bypass = true;
    }
    if (out->conflicts) {
        rc = conflict_error(out, err);
        goto out;
    }

    /* the changes apply with the author's permissions, as the write would have */
    rc = cf_store_user_get(core->store, out->req.author_id, &author, err);
    if (rc != CF_OK)
        goto out;
    cf_users_principal(&author, &as_author);
    rc = cf_scope_resolve(core, NULL, CF_ACTION_EDIT, out->req.project_id, out->req.env_id,
                          out->req.path, &scope, err);
    if (rc != CF_OK)
        goto out;
    n = out->req.n_items;
    changes = calloc(n ? n : 1, sizeof(*changes));
    values = calloc(n ? n : 1, sizeof(*values));
    bases = calloc(n ? n : 1, sizeof(*bases));
    if (!changes || !values || !bases) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        cf_buf_init(&values[i], CF_VALUE_MAX + 2);
    for (size_t i = 0; i < n && rc == CF_OK; i++) {
        bases[i] = out->req.items[i].base_version;
        rc = item_change(core, &scope, &out->req, i, &changes[i], &values[i], err);
    }
    if (rc == CF_OK)
        rc = cf_secrets_apply_merge(core, &as_author, &scope, changes, bases, n, req_id, who->email,
                                    bypass ? bypass_reason : "", &written, err);
    if (rc == CF_ECONFLICT) {
        /* a key moved between the check above and the write: show the request as it is now */
        if (reload(core, req_id, out, err) == CF_OK && out->conflicts)
            rc = conflict_error(out, err);
        else
            rc = cf_err_set(err, CF_ECONFLICT, "change request '%s' could not be merged: %s",
                            req_id, err->msg);
        goto out;
    }
    if (rc == CF_OK)
        rc = reload(core, req_id, out, err);
    if (rc == CF_OK)
        notify(core, out, "merged", who->email);
out:
    cf_plain_list_release(&written);
    for (size_t i = 0; values && i < n; i++)
        cf_buf_release_wipe(&values[i]);
    free(values);
    free(changes);
    free(bases);
    cf_scope_release(&scope);
    sodium_memzero(author.password_hash, sizeof(author.password_hash));
    if (rc != CF_OK)
        cf_approval_view_release(out);
    return rc;
}

enum cf_rc cf_approvals_close(struct cf_core *core, const struct cf_principal *who, const char *id,
                              struct cf_approval_view *out, struct cf_err *err)
{
    char req_id[CF_UUID_LEN];
    enum cf_rc rc = load_view(core, who, id, out, err);
    if (rc != CF_OK)
        return rc;
    cf_strlcpy(req_id, out->req.id, sizeof(req_id));
    if (!is_author(who, &out->req) && !may_at_place(core, who, out, CF_ACTION_ADMIN))
        rc = cf_err_set(err, CF_EFORBIDDEN,
                        "only the author or a project administrator may close change request '%s'",
                        req_id);
    if (rc == CF_OK)
        rc = cf_store_change_request_close(core->store, req_id, "closed", err);
    if (rc == CF_OK)
        rc = reload(core, req_id, out, err);
    if (rc == CF_OK)
        notify(core, out, "closed", who->kind == CF_PRINCIPAL_USER ? who->email : "admin");
    if (rc != CF_OK)
        cf_approval_view_release(out);
    return rc;
}

enum cf_rc cf_approvals_reveal(struct cf_core *core, const struct cf_principal *who, const char *id,
                               struct cf_approval_view *view, struct cf_approval_reveal *out,
                               struct cf_err *err)
{
    struct cf_scope scope = {0};
    struct cf_secret_change change;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = load_view(core, who, id, view, err);
    if (rc != CF_OK)
        return rc;
    if (!may_at_place(core, who, view, CF_ACTION_READ)) {
        rc = cf_err_set(err, CF_EFORBIDDEN,
                        "revealing the values of change request '%s' needs read permission on "
                        "%s:%s",
                        view->req.id, view->env_slug, view->req.path);
        goto out;
    }
    rc = cf_scope_resolve(core, NULL, CF_ACTION_READ, view->req.project_id, view->req.env_id,
                          view->req.path, &scope, err);
    if (rc != CF_OK)
        goto out;
    out->items = calloc(view->req.n_items ? view->req.n_items : 1, sizeof(*out->items));
    if (!out->items) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    out->n = view->req.n_items;
    for (size_t i = 0; i < out->n && rc == CF_OK; i++) {
        struct cf_approval_reveal_item *r = &out->items[i];
        struct cf_secret cur = {0};
        cf_buf_init(&r->proposed, CF_VALUE_MAX + 2);
        cf_buf_init(&r->current, CF_VALUE_MAX + 2);
        rc = item_change(core, &scope, &view->req, i, &change, &r->proposed, err);
        r->has_proposed = rc == CF_OK && change.has_value;
        if (rc != CF_OK)
            break;
        rc =
            cf_store_secret_get(core->store, scope.folder.id, view->req.items[i].key, 0, &cur, err);
        if (rc == CF_OK) {
            struct cf_seal_ad ad = {scope.project.id, cur.env_id, cur.path, cur.key, cur.version};
            rc = cf_keyring_open(core->keyring, scope.project.wrapped_key,
                                 scope.project.wrapped_key_len, &ad, cur.sealed, cur.sealed_len,
                                 &r->current, err);
            r->has_current = rc == CF_OK;
        } else if (rc == CF_ENOTFOUND) {
            rc = CF_OK;
        }
        cf_secret_release(&cur);
    }
out:
    cf_scope_release(&scope);
    if (rc != CF_OK) {
        cf_approval_reveal_release(out);
        cf_approval_view_release(view);
    }
    return rc;
}
