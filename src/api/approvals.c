/* Approval endpoints (docs/approvals.md): secret approval policies and change requests in the
 * shape of Infisical's /api/v1/secret-approvals and /api/v1/secret-approval-requests. Handlers
 * parse, call core/approvals and render; values appear only in the reveal, which is audited. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/http.h"
#include "core/approvals.h"
#include "util/jsonw.h"
#include "util/str.h"
#include "util/banned.h"

static const char *const project_fields[] = {"workspaceId", "projectId", "workspaceSlug",
                                             "projectSlug", NULL};

#define REQUEST_PATH "/api/v1/secret-approval-requests/"

/* ---- rendering ---- */

static json_t *render_policy(const struct cf_approval_policy *p, const char *env_slug)
{
    json_t *approvers = json_array();
    for (size_t i = 0; approvers && i < p->n_approvers; i++) {
        const struct cf_approval_approver *a = &p->approvers[i];
        json_t *item = a->user_id[0] ? json_pack("{s:s, s:s, s:s}", "type", "user", "id",
                                                 a->user_id, "username", a->name)
                                     : json_pack("{s:s, s:s, s:s}", "type", "group", "id",
                                                 a->group_id, "name", a->name);
        if (!item || json_array_append_new(approvers, item) != 0) {
            json_decref(approvers);
            approvers = NULL;
        }
    }
    if (!approvers)
        return NULL;
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:b, s:o, s:o, s:o}", "id", p->id,
                     "projectId", p->project_id, "name", p->name, "environment", env_slug,
                     "secretPath", p->path_glob, "approvals", (json_int_t)p->approvals,
                     "enforcementLevel", p->enforcement, "allowMachineIdentities",
                     p->allow_machines, "approvers", approvers, "createdAt",
                     cf_json_time(p->created_at), "updatedAt", cf_json_time(p->updated_at));
}

/* A change request: its changes as a diff of keys, values masked. */
static json_t *render_request(const struct cf_approval_view *v)
{
    const struct cf_change_request *r = &v->req;
    json_t *reviewers = json_array(), *commits = json_array();
    json_t *added = json_array(), *changed = json_array(), *deleted = json_array();
    json_t *out = NULL;
    if (!reviewers || !commits || !added || !changed || !deleted)
        goto out;
    for (size_t i = 0; i < r->n_reviews; i++) {
        const struct cf_change_review *x = &r->reviews[i];
        if (json_array_append_new(reviewers,
                                  json_pack("{s:s, s:s, s:s, s:s, s:o}", "userId", x->user_id,
                                            "email", x->email, "status", x->decision, "comment",
                                            x->comment, "createdAt", cf_json_time(x->created_at))))
            goto out;
    }
    for (size_t i = 0; i < r->n_items; i++) {
        const struct cf_change_item *x = &r->items[i];
        bool conflict = strcmp(r->status, "open") == 0 && v->current_versions[i] != x->base_version;
        json_t *list = strcmp(x->op, "create") == 0   ? added
                       : strcmp(x->op, "delete") == 0 ? deleted
                                                      : changed;
        if (json_array_append_new(list, json_string(x->key)))
            goto out;
        if (json_array_append_new(
                commits, json_pack("{s:s, s:s, s:o, s:b, s:o, s:b, s:I, s:I, s:b}", "op", x->op,
                                   "secretKey", x->key, "newSecretName",
                                   x->new_key[0] ? json_string(x->new_key) : json_null(),
                                   "valueChanged", x->sealed != NULL, "secretValue",
                                   x->sealed ? json_string("<hidden>") : json_null(),
                                   "commentChanged", x->comment != NULL, "baseVersion",
                                   (json_int_t)x->base_version, "currentVersion",
                                   (json_int_t)v->current_versions[i], "conflict", conflict)))
            goto out;
    }
    char link[sizeof(REQUEST_PATH) + CF_UUID_LEN];
    snprintf(link, sizeof(link), REQUEST_PATH "%s", r->id);
    out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:o, s:s, s:I, s:s}, s:s, s:s, s:I, s:I, "
                    "s:b, s:b, s:b, s:s, s:s, s:o, s:O, s:O, s:{s:O, s:O, s:O}, s:s, s:o}",
                    "id", r->id, "status", r->status, "projectId", r->project_id, "workspace",
                    v->project_slug, "environment", v->env_slug, "secretPath", r->path, "policy",
                    "id", r->policy_id[0] ? json_string(r->policy_id) : json_null(), "name",
                    r->policy_name, "approvals", (json_int_t)r->approvals_required,
                    "enforcementLevel", r->enforcement, "committerUserId", r->author_id,
                    "committer", r->author_email, "approvals", (json_int_t)v->approvals,
                    "approvalsRequired", (json_int_t)r->approvals_required, "approved", v->approved,
                    "conflicts", v->conflicts, "hasMerged", strcmp(r->status, "merged") == 0,
                    "mergedBy", r->merged_by, "bypassReason", r->bypass_reason, "createdAt",
                    cf_json_time(r->created_at), "reviewers", reviewers, "commits", commits, "diff",
                    "added", added, "changed", changed, "deleted", deleted, "url", link,
                    "updatedAt", cf_json_time(r->updated_at));
out:
    json_decref(reviewers);
    json_decref(commits);
    json_decref(added);
    json_decref(changed);
    json_decref(deleted);
    return out;
}

static enum cf_rc reply_request(const struct cf_approval_view *v, json_t **out, struct cf_err *err)
{
    json_t *item = render_request(v);
    *out = item ? json_pack("{s:o}", "approval", item) : NULL;
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

/* Notes action on the request's place and keys for the audit record. */
static void audit_request(struct cf_req *req, const char *action, const struct cf_approval_view *v)
{
    cf_req_audit(req, action, v->req.project_id, v->env_slug, v->req.path);
    for (size_t i = 0; i < v->req.n_items; i++)
        cf_req_audit_key(req, v->req.items[i].key);
}

/* ---- policies ---- */

/* Collects the approvers array [{type: "user"|"group", id | username | name}] into user and group
 * references (borrowed from body; the arrays are the caller's to free). */
static enum cf_rc parse_approvers(json_t *body, const char ***users, size_t *n_users,
                                  const char ***groups, size_t *n_groups, struct cf_err *err)
{
    json_t *list = json_object_get(body, "approvers");
    *users = *groups = NULL;
    *n_users = *n_groups = 0;
    if (!list)
        return cf_err_field(err, CF_EVALIDATION, "approvers", "approvers: required");
    if (!json_is_array(list))
        return cf_err_field(err, CF_EINVAL, "approvers", "approvers: expected an array");
    size_t n = json_array_size(list);
    if (n == 0 || n > CF_APPROVERS_MAX)
        return cf_err_field(err, CF_EVALIDATION, "approvers", "approvers: between 1 and %d",
                            CF_APPROVERS_MAX);
    *users = calloc(n, sizeof(**users));
    *groups = calloc(n, sizeof(**groups));
    if (!*users || !*groups)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(list, i);
        const char *type = NULL, *ref = NULL;
        if (!json_is_object(a))
            return cf_err_field(err, CF_EINVAL, "approvers", "approvers[%zu]: expected an object",
                                i);
        enum cf_rc rc = cf_json_string(a, "type", true, &type, err);
        if (rc == CF_OK)
            rc = cf_json_string(a, "id", false, &ref, err);
        if (rc == CF_OK && !ref)
            rc = cf_json_string(a, strcmp(type, "group") == 0 ? "name" : "username", false, &ref,
                                err);
        if (rc != CF_OK)
            return rc;
        if (!ref || !ref[0])
            return cf_err_field(err, CF_EVALIDATION, "approvers",
                                "approvers[%zu]: needs id (or %s)", i,
                                strcmp(type, "group") == 0 ? "name" : "username");
        if (strcmp(type, "user") == 0)
            (*users)[(*n_users)++] = ref;
        else if (strcmp(type, "group") == 0)
            (*groups)[(*n_groups)++] = ref;
        else
            return cf_err_field(err, CF_EVALIDATION, "approvers",
                                "approvers[%zu].type: 'user' or 'group', not '%.16s'", i, type);
    }
    return CF_OK;
}

static enum cf_rc policy_create(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_approval_policy_spec spec = {0};
    struct cf_approval_policy policy = {0};
    const char **users = NULL, **groups = NULL;
    json_t *body = NULL;
    long long approvals = 1;
    bool present = false;
    enum cf_rc rc;

    cf_req_audit(req, "approvals.policies.create", NULL, NULL, NULL);
    rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_req_field(req, body, project_fields, true, &spec.project, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "name", true, &spec.name, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "environment", true, &spec.env, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "secretPath", false, &spec.path_glob, err);
    if (rc == CF_OK)
        rc =
            cf_json_int(body, "approvals", 1, CF_APPROVALS_REQUIRED_MAX, &approvals, &present, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "enforcementLevel", false, &spec.enforcement, err);
    if (rc == CF_OK)
        rc = cf_json_bool(body, "allowMachineIdentities", &spec.allow_machines, &present, err);
    if (rc == CF_OK)
        rc = parse_approvers(body, &users, &spec.n_users, &groups, &spec.n_groups, err);
    if (rc != CF_OK)
        goto out;
    spec.approvals = approvals;
    spec.user_refs = users;
    spec.group_refs = groups;
    rc = cf_approvals_policy_create(cf_req_core(req), cf_req_principal(req), &spec, &policy, err);
    if (rc != CF_OK)
        goto out;
    char what[CF_NAME_MAX + 16];
    snprintf(what, sizeof(what), "policy %s", policy.name);
    cf_req_audit(req, "approvals.policies.create", policy.project_id, spec.env, what);
    json_t *item = render_policy(&policy, spec.env);
    *out = item ? json_pack("{s:o}", "approval", item) : NULL;
    if (!*out)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
out:
    free(users);
    free(groups);
    cf_approval_policy_release(&policy);
    return rc;
}

static enum cf_rc policy_list(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_approval_policy_list list = {0};
    char(*envs)[CF_SLUG_MAX + 1] = NULL;
    const char *project = NULL;
    enum cf_rc rc;

    cf_req_audit(req, "approvals.policies.list", NULL, NULL, NULL);
    rc = cf_req_field(req, NULL, project_fields, true, &project, err);
    if (rc == CF_OK)
        rc = cf_approvals_policy_list(cf_req_core(req), cf_req_principal(req), project, &list,
                                      &envs, err);
    if (rc != CF_OK)
        return rc;
    json_t *items = json_array();
    for (size_t i = 0; items && i < list.n; i++)
        if (json_array_append_new(items, render_policy(&list.items[i], envs[i])) != 0) {
            json_decref(items);
            items = NULL;
        }
    if (list.n)
        cf_req_audit(req, "approvals.policies.list", list.items[0].project_id, NULL, NULL);
    *out = items ? json_pack("{s:o}", "approvals", items) : NULL;
    if (!*out)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    free(envs);
    cf_approval_policy_list_release(&list);
    return rc;
}

static enum cf_rc policy_delete(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const char *project = NULL, *id = cf_req_param(req, "policyId");
    json_t *body = NULL;
    char what[CF_NAME_MAX + 16];
    enum cf_rc rc;

    snprintf(what, sizeof(what), "policy %s", id);
    cf_req_audit(req, "approvals.policies.delete", NULL, NULL, what);
    rc = cf_req_json(req, false, &body, err);
    if (rc == CF_OK)
        rc = cf_req_field(req, body, project_fields, true, &project, err);
    if (rc == CF_OK)
        rc = cf_approvals_policy_delete(cf_req_core(req), cf_req_principal(req), project, id, err);
    if (rc == CF_OK) {
        *out = json_pack("{s:{s:s}}", "approval", "id", id);
        if (!*out)
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    return rc;
}

/* ---- requests ---- */

static enum cf_rc request_list(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_approval_view_list list = {0};
    const char *project = NULL, *status = NULL;
    enum cf_rc rc;

    cf_req_audit(req, "approvals.requests.list", NULL, NULL, NULL);
    rc = cf_req_field(req, NULL, project_fields, true, &project, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "status", &status, err);
    if (rc == CF_OK)
        rc = cf_approvals_request_list(cf_req_core(req), cf_req_principal(req), project, status,
                                       &list, err);
    if (rc != CF_OK)
        return rc;
    json_t *items = json_array();
    for (size_t i = 0; items && i < list.n; i++)
        if (json_array_append_new(items, render_request(&list.items[i])) != 0) {
            json_decref(items);
            items = NULL;
        }
    *out = items ? json_pack("{s:o}", "approvals", items) : NULL;
    if (!*out)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    cf_approval_view_list_release(&list);
    return rc;
}

static enum cf_rc request_get(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_approval_view view = {0};
    cf_req_audit(req, "approvals.requests.get", NULL, NULL, NULL);
    enum cf_rc rc = cf_approvals_request_get(cf_req_core(req), cf_req_principal(req),
                                             cf_req_param(req, "requestId"), &view, err);
    if (rc == CF_OK) {
        audit_request(req, "approvals.requests.get", &view);
        rc = reply_request(&view, out, err);
    }
    cf_approval_view_release(&view);
    return rc;
}

static enum cf_rc request_review(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_approval_view view = {0};
    const char *status = NULL, *comment = NULL;
    json_t *body = NULL;
    enum cf_rc rc;

    cf_req_audit(req, "approvals.requests.review", NULL, NULL, NULL);
    rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "status", true, &status, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "comment", false, &comment, err);
    if (rc != CF_OK)
        return rc;
    cf_req_audit(req,
                 strcmp(status, "approved") == 0   ? "approvals.requests.approve"
                 : strcmp(status, "rejected") == 0 ? "approvals.requests.reject"
                                                   : "approvals.requests.review",
                 NULL, NULL, NULL);
    rc = cf_approvals_review(cf_req_core(req), cf_req_principal(req),
                             cf_req_param(req, "requestId"), status, comment, &view, err);
    if (rc == CF_OK) {
        audit_request(req,
                      strcmp(status, "approved") == 0 ? "approvals.requests.approve"
                                                      : "approvals.requests.reject",
                      &view);
        if (comment && comment[0])
            cf_req_audit_reason(req, comment);
        rc = reply_request(&view, out, err);
    }
    cf_approval_view_release(&view);
    return rc;
}

static enum cf_rc request_merge(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_approval_view view = {0};
    const char *reason = NULL;
    json_t *body = NULL;
    enum cf_rc rc;

    cf_req_audit(req, "approvals.requests.merge", NULL, NULL, NULL);
    rc = cf_req_json(req, false, &body, err);
    if (rc == CF_OK && body)
        rc = cf_json_string(body, "bypassReason", false, &reason, err);
    if (rc == CF_OK)
        rc = cf_approvals_merge(cf_req_core(req), cf_req_principal(req),
                                cf_req_param(req, "requestId"), reason, &view, err);
    if (rc == CF_OK) {
        audit_request(req, "approvals.requests.merge", &view);
        if (view.req.bypass_reason[0]) {
            char text[CF_BYPASS_REASON_MAX + 64];
            snprintf(text, sizeof(text), "approval bypassed (%lld of %lld approvals): %s",
                     (long long)view.approvals, (long long)view.req.approvals_required,
                     view.req.bypass_reason);
            cf_req_audit_reason(req, text);
        }
        rc = reply_request(&view, out, err);
    }
    cf_approval_view_release(&view);
    return rc;
}

static enum cf_rc request_status(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_approval_view view = {0};
    const char *status = NULL;
    json_t *body = NULL;
    enum cf_rc rc;

    cf_req_audit(req, "approvals.requests.close", NULL, NULL, NULL);
    rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "status", true, &status, err);
    if (rc == CF_OK && strcmp(status, "close") != 0 && strcmp(status, "closed") != 0)
        rc = cf_err_field(err, CF_EVALIDATION, "status",
                          "status: only 'close' (a closed request cannot be reopened)");
    if (rc == CF_OK)
        rc = cf_approvals_close(cf_req_core(req), cf_req_principal(req),
                                cf_req_param(req, "requestId"), &view, err);
    if (rc == CF_OK) {
        audit_request(req, "approvals.requests.close", &view);
        rc = reply_request(&view, out, err);
    }
    cf_approval_view_release(&view);
    return rc;
}

/* A value of the reveal, or null when has is false. */
static void value_or_null(struct cf_jsonw *w, const char *key, bool has, const struct cf_buf *value)
{
    cf_jsonw_key(w, key);
    if (has)
        cf_jsonw_string(w, value->data ? value->data : "", value->len);
    else
        cf_jsonw_null(w);
}

/* {approvalId, status, values: [{op, secretKey, proposedValue, currentValue}]}, rendered with
 * util/jsonw into a buffer that is wiped after sending, as secret reads are. */
static enum cf_rc request_reveal(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_approval_view view = {0};
    struct cf_approval_reveal reveal = {0};
    struct cf_buf body;
    struct cf_jsonw w;
    enum cf_rc rc;

    *out = NULL; /* the body is rendered with util/jsonw and handed over raw */
    cf_req_audit(req, "approvals.requests.reveal", NULL, NULL, NULL);
    rc = cf_approvals_reveal(cf_req_core(req), cf_req_principal(req),
                             cf_req_param(req, "requestId"), &view, &reveal, err);
    if (rc != CF_OK)
        return rc;
    audit_request(req, "approvals.requests.reveal", &view);
    cf_buf_init(&body, 0);
    cf_jsonw_init(&w, &body);
    cf_jsonw_object_begin(&w);
    cf_jsonw_kstr(&w, "approvalId", view.req.id);
    cf_jsonw_kstr(&w, "status", view.req.status);
    cf_jsonw_key(&w, "values");
    cf_jsonw_array_begin(&w);
    for (size_t i = 0; i < reveal.n; i++) {
        const struct cf_approval_reveal_item *x = &reveal.items[i];
        cf_jsonw_object_begin(&w);
        cf_jsonw_kstr(&w, "op", view.req.items[i].op);
        cf_jsonw_kstr(&w, "secretKey", view.req.items[i].key);
        value_or_null(&w, "proposedValue", x->has_proposed, &x->proposed);
        value_or_null(&w, "currentValue", x->has_current, &x->current);
        cf_jsonw_object_end(&w);
    }
    cf_jsonw_array_end(&w);
    cf_jsonw_object_end(&w);
    rc = cf_jsonw_finish(&w);
    if (rc == CF_OK)
        cf_req_reply_raw(req, &body);
    else
        rc = cf_err_set(err, rc, "cannot render the values");
    cf_buf_release_wipe(&body);
    cf_approval_reveal_release(&reveal);
    cf_approval_view_release(&view);
    return rc;
}

const struct cf_route cf_routes_approvals[] = {
    {"GET", "/api/v1/secret-approvals", policy_list, false},
    {"POST", "/api/v1/secret-approvals", policy_create, false},
    {"DELETE", "/api/v1/secret-approvals/:policyId", policy_delete, false},
    {"GET", "/api/v1/secret-approval-requests", request_list, false},
    {"GET", "/api/v1/secret-approval-requests/:requestId", request_get, false},
    {"POST", "/api/v1/secret-approval-requests/:requestId/review", request_review, false},
    {"POST", "/api/v1/secret-approval-requests/:requestId/merge", request_merge, false},
    {"POST", "/api/v1/secret-approval-requests/:requestId/status", request_status, false},
    {"GET", "/api/v1/secret-approval-requests/:requestId/reveal", request_reveal, false},
    {NULL, NULL, NULL, false, NULL},
};
