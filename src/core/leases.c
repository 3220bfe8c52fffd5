/* Leases of dynamic secrets (core/leases.h): creation through the provider, renewal, revocation by
 * a caller or by the worker once a lease has ended, with its claim, backoff and alert. */
#include "core/leases.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/auditlog.h"
#include "core/channels.h"
#include "core/connections.h"
#include "provider/dynamic.h"
#include "util/log.h"
#include "util/str.h"
#include "util/wipemem.h"
#include "util/time.h"
#include "util/banned.h"

void cf_lease_view_list_release(struct cf_lease_view_list *l)
{
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

void cf_lease_data_free(json_t *data)
{
    const char *name;
    json_t *value;
    if (!data)
        return;
    json_object_foreach(data, name, value)
    {
        if (json_is_string(value))
            sodium_memzero((char *)json_string_value(value), json_string_length(value));
    }
    json_decref(data);
}

static void wake(struct cf_core *core)
{
    if (core->lease_wake)
        core->lease_wake(core->lease_wake_ctx);
}

/* Records a step of the revocation worker in the audit log ("dynamic-secrets.lease-<step>"): the
 * lease, its provider-side name (never the credential) and the outcome. */
static void audit_system(struct cf_core *core, const struct cf_lease *lease,
                         const struct cf_dynamic_view *dv, const char *step, const char *result,
                         const char *reason)
{
    struct cf_err err;
    if (!core->audit)
        return;
    struct cf_audit_event *e = calloc(1, sizeof(*e));
    if (!e)
        return;
    cf_err_clear(&err);
    cf_strlcpy(e->actor_kind, "system", sizeof(e->actor_kind));
    cf_strlcpy(e->actor_name, "lease revocation", sizeof(e->actor_name));
    snprintf(e->action, sizeof(e->action), "dynamic-secrets.lease-%s", step);
    cf_strlcpy(e->project_id, lease->project_id, sizeof(e->project_id));
    cf_strlcpy(e->environment, dv->env_slug, sizeof(e->environment));
    snprintf(e->path, sizeof(e->path), "/api/v1/dynamic-secrets/leases/%s", lease->id);
    snprintf(e->keys, sizeof(e->keys), "%s", dv->ds.name);
    cf_strlcpy(e->result, result, sizeof(e->result));
    snprintf(e->reason, sizeof(e->reason), "lease %s, credential '%.64s'%s%.300s", lease->id,
             lease->provider_id, reason ? ": " : "", reason ? reason : "");
    if (cf_audit_record(core->audit, e, &err) != CF_OK)
        cf_log(CF_LOG_ERROR, "lease %s: revocation not audited: %s", lease->id, err.msg);
    free(e);
}

/* A provider's failure as the caller of Coffer's API sees it: the target unreachable or throttling
 * is a 503, anything the target refused a 409 naming it; never a 401 or 404 of the caller's own. */
static enum cf_rc provider_failure(const char *name, enum cf_rc rc, struct cf_err *err)
{
    char msg[CF_ERR_MSG_MAX];
    snprintf(msg, sizeof(msg), "%s", err->msg);
    enum cf_rc mapped = rc == CF_EIO || rc == CF_ERATELIMIT                      ? CF_EUNAVAIL
                        : rc == CF_ENOMEM || rc == CF_ESTORE || rc == CF_ECRYPTO ? rc
                                                                                 : CF_ECONFLICT;
    return cf_err_set(err, mapped, "dynamic secret '%s': %s", name, msg);
}

/* The connection a provider call takes: NULL for a provider that needs none. */
static const struct cf_provider_conn *conn_of(const struct cf_dynamic_ops *ops,
                                              const struct cf_conn_opened *opened)
{
    return ops->connection_app ? &opened->conn : NULL;
}

/* The provider and opened connection of dv (close with cf_connection_close). */
static enum cf_rc open_provider(struct cf_core *core, const struct cf_dynamic_view *dv,
                                const struct cf_dynamic_ops **ops, json_t **params,
                                struct cf_conn_opened *opened, struct cf_err *err)
{
    json_error_t jerr;
    *params = NULL;
    *ops = cf_dynamic_provider(core, dv->ds.type);
    if (!*ops)
        return cf_err_set(err, CF_EINTERNAL, "dynamic secret '%s' has an unknown provider '%s'",
                          dv->ds.name, dv->ds.type);
    *params = json_loads(dv->ds.params, 0, &jerr);
    if (!*params)
        return cf_err_set(err, CF_ESTORE, "dynamic secret '%s': its settings do not parse",
                          dv->ds.name);
    enum cf_rc rc = (*ops)->connection_app
                        ? cf_connection_open(core, dv->ds.connection_id, opened, err)
                        : CF_OK;
    if (rc != CF_OK) {
        json_decref(*params);
        *params = NULL;
    }
    return rc;
}

static bool is_owner(const struct cf_principal *who, const struct cf_lease *lease)
{
    const char *kind = who->kind == CF_PRINCIPAL_IDENTITY ? "identity"
                       : who->kind == CF_PRINCIPAL_USER   ? "user"
                                                          : "admin";
    return strcmp(lease->actor_kind, kind) == 0 && strcmp(lease->actor_id, who->id) == 0;
}

/* May who see and act on lease (of dv)? Its creator, the admin and org admins, a project
 * administrator of its place. */
static bool may_see(struct cf_core *core, const struct cf_principal *who,
                    const struct cf_lease *lease, const struct cf_dynamic_view *dv)
{
    struct cf_env env = {0};
    struct cf_err ignored;
    if (is_owner(who, lease) || cf_principal_is_admin(who))
        return true;
    if (cf_store_env_get(core->store, dv->ds.project_id, dv->ds.env_id, &env, &ignored) != CF_OK)
        return false;
    return cf_authz_check(core, who, CF_ACTION_ADMIN, dv->ds.project_id, &env, dv->ds.folder_path,
                          &ignored) == CF_OK;
}

/* The lease id with its dynamic secret, for who. */
static enum cf_rc load(struct cf_core *core, const struct cf_principal *who, const char *id,
                       struct cf_lease_view *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!id || !cf_uuid_valid(id))
        return cf_err_field(err, CF_EVALIDATION, "leaseId", "leaseId: '%.40s' is not a UUID",
                            id ? id : "");
    enum cf_rc rc = cf_store_lease_get(core->store, id, &out->lease, err);
    if (rc == CF_OK)
        rc = cf_dynamic_get_by_id(core, out->lease.dynamic_secret_id, &out->dynamic, err);
    if (rc == CF_OK && !may_see(core, who, &out->lease, &out->dynamic))
        rc = cf_err_set(err, CF_ENOTFOUND, "Lease with ID '%s' not found", id);
    if (rc != CF_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* The TTL asked for (0: the default), checked against the maximum from created_at. */
static enum cf_rc end_of(const struct cf_dynamic_secret *ds, int64_t created_at, int64_t now,
                         int64_t ttl_ms, int64_t *expires_at, struct cf_err *err)
{
    if (ttl_ms == 0)
        ttl_ms = ds->default_ttl_ms;
    if (ttl_ms < CF_DYNAMIC_TTL_MIN_MS)
        return cf_err_field(err, CF_EVALIDATION, "ttl", "ttl must be at least 1s");
    if (now + ttl_ms > created_at + ds->max_ttl_ms)
        return cf_err_field(
            err, CF_EVALIDATION, "ttl",
            "ttl: the lease would end after the dynamic secret's maxTTL (%llds from "
            "the lease's creation)",
            (long long)(ds->max_ttl_ms / 1000));
    *expires_at = now + ttl_ms;
    return CF_OK;
}

enum cf_rc cf_lease_create(struct cf_core *core, const struct cf_principal *who,
                           const struct cf_dynamic_where *where, int64_t ttl_ms,
                           struct cf_lease_view *out, json_t **data, struct cf_err *err)
{
    struct cf_conn_opened opened = {0};
    struct cf_leased_cred cred = {0};
    const struct cf_dynamic_ops *ops = NULL;
    json_t *params = NULL;
    struct cf_lease *lease = &out->lease;
    *data = NULL;
    memset(out, 0, sizeof(*out));
    int64_t now = cf_now_ms();
    enum cf_rc rc = cf_dynamic_get(core, who, where, CF_ACTION_LEASE, &out->dynamic, err);
    if (rc == CF_OK)
        rc = end_of(&out->dynamic.ds, now, now, ttl_ms, &lease->expires_at, err);
    if (rc == CF_OK)
        rc = open_provider(core, &out->dynamic, &ops, &params, &opened, err);
    if (rc != CF_OK)
        goto out;
    cf_uuid_new(lease->id);
    cf_strlcpy(lease->dynamic_secret_id, out->dynamic.ds.id, sizeof(lease->dynamic_secret_id));
    cf_strlcpy(lease->project_id, out->dynamic.ds.project_id, sizeof(lease->project_id));
    cf_strlcpy(lease->actor_kind,
               who->kind == CF_PRINCIPAL_IDENTITY ? "identity"
               : who->kind == CF_PRINCIPAL_USER   ? "user"
                                                  : "admin",
               sizeof(lease->actor_kind));
    cf_strlcpy(lease->actor_id, who->id, sizeof(lease->actor_id));
    cf_strlcpy(lease->actor_name, who->kind == CF_PRINCIPAL_USER ? who->email : who->name,
               sizeof(lease->actor_name));
    cf_strlcpy(lease->state, "active", sizeof(lease->state));
    lease->created_at = now;
    /* The row first: a process that dies after the provider made the credential leaves a lease
     * the worker revokes at its end, never a credential nobody knows of. */
    rc = cf_store_lease_create(core->store, lease, err);
    if (rc != CF_OK)
        goto out;
    const struct cf_lease_ref ref = {lease->id, out->dynamic.ds.name, lease->expires_at};
    rc = ops->create(conn_of(ops, &opened), params, &ref, &cred, err);
    if (rc != CF_OK) {
        struct cf_err ignored;
        rc = provider_failure(out->dynamic.ds.name, rc, err);
        cf_store_lease_created(core->store, lease->id, NULL, 0, &ignored);
        goto out;
    }
    cf_strlcpy(lease->provider_id, cred.id, sizeof(lease->provider_id));
    rc = cf_store_lease_created(core->store, lease->id, cred.id, cred.expires_at, err);
    if (rc != CF_OK) /* kept with an empty provider id: the worker revokes it at its end */
        goto out;
    if (cred.expires_at > 0 && cred.expires_at < lease->expires_at)
        lease->expires_at = cred.expires_at; /* as stored: the credential ends first */
    *data = cred.fields;
    cred.fields = NULL;
    wake(core);
out:
    cf_leased_cred_release(&cred);
    cf_connection_close(&opened);
    json_decref(params);
    if (rc != CF_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

enum cf_rc cf_lease_get(struct cf_core *core, const struct cf_principal *who, const char *id,
                        struct cf_lease_view *out, struct cf_err *err)
{
    return load(core, who, id, out, err);
}

/* Claims the lease of view for owner (any time: a caller's renew or revoke). */
static enum cf_rc claim_now(struct cf_core *core, struct cf_lease_view *view, const char *owner,
                            struct cf_err *err)
{
    bool claimed = false;
    enum cf_rc rc = cf_store_lease_claim(core->store, view->lease.id, owner, cf_now_ms(),
                                         CF_LEASE_CLAIM_MS, true, &claimed, &view->lease, err);
    if (rc == CF_OK && !claimed)
        rc = cf_err_set(err, CF_ECONFLICT, "lease '%s' is %s", view->lease.id,
                        strcmp(view->lease.state, "active") == 0 ? "being revoked"
                                                                 : view->lease.state);
    return rc;
}

/* Refuses to move the end of view's lease past the end its credential carries at the system when
 * the provider cannot move that end (credential_end_fixed): the credential was made to end at the
 * lease's end, and a renewal has only ever kept or shortened it since. */
static enum cf_rc check_fixed_end(struct cf_core *core, const struct cf_lease_view *view,
                                  int64_t expires_at, struct cf_err *err)
{
    const struct cf_dynamic_ops *ops = cf_dynamic_provider(core, view->dynamic.ds.type);
    char end[CF_TIME_RFC3339_LEN];
    if (!ops || ops->renew || !ops->credential_end_fixed || expires_at <= view->lease.expires_at)
        return CF_OK;
    cf_time_format(view->lease.expires_at, end);
    return cf_err_set(err, CF_ECONFLICT,
                      "lease '%s' cannot be renewed past %s: its credential ends then at the "
                      "provider '%s', which cannot move that end; create a new lease",
                      view->lease.id, end, ops->type);
}

enum cf_rc cf_lease_renew(struct cf_core *core, const struct cf_principal *who, const char *id,
                          int64_t ttl_ms, const char *owner, struct cf_lease_view *out,
                          struct cf_err *err)
{
    struct cf_conn_opened opened = {0};
    const struct cf_dynamic_ops *ops = NULL;
    json_t *params = NULL;
    int64_t now = cf_now_ms(), expires_at = 0;
    bool claimed = false;
    enum cf_rc rc = load(core, who, id, out, err);
    if (rc == CF_OK && strcmp(out->lease.state, "active") == 0 && out->lease.expires_at <= now)
        rc = cf_err_set(err, CF_ECONFLICT, "lease '%s' has ended and cannot be renewed", id);
    if (rc == CF_OK)
        rc = end_of(&out->dynamic.ds, out->lease.created_at, now, ttl_ms, &expires_at, err);
    if (rc == CF_OK)
        rc = check_fixed_end(core, out, expires_at, err);
    if (rc == CF_OK)
        rc = claim_now(core, out, owner, err);
    claimed = rc == CF_OK;
    if (rc == CF_OK)
        rc = open_provider(core, &out->dynamic, &ops, &params, &opened, err);
    if (rc == CF_OK && ops->renew) {
        const struct cf_lease_ref ref = {out->lease.id, out->dynamic.ds.name, expires_at};
        rc = ops->renew(conn_of(ops, &opened), params, &ref, out->lease.provider_id, err);
        if (rc != CF_OK)
            rc = provider_failure(out->dynamic.ds.name, rc, err);
    }
    if (claimed) {
        struct cf_err save_err;
        if (rc == CF_OK)
            out->lease.expires_at = expires_at;
        cf_err_clear(&save_err);
        enum cf_rc saved = cf_store_lease_save(core->store, &out->lease, owner, &save_err);
        if (rc == CF_OK && saved != CF_OK) {
            *err = save_err;
            rc = saved;
        }
    }
    cf_connection_close(&opened);
    json_decref(params);
    if (rc != CF_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* Tells the channels once that a lease's revocation keeps failing. */
static void alert(struct cf_core *core, struct cf_lease *lease, const struct cf_dynamic_view *dv)
{
    char key[CF_UUID_LEN + 32], notice[1024];
    snprintf(key, sizeof(key), "lease-revocation:%s", lease->id);
    snprintf(
        notice, sizeof(notice),
        "Lease %s of dynamic secret '%s' (%s) could not be revoked after %lld attempts: %.400s; "
        "its credential '%.64s' is still live and the revocation is retried",
        lease->id, dv->ds.name, dv->ds.type, (long long)lease->revoke_attempts, lease->last_error,
        lease->provider_id);
    json_t *item = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "kind", "dynamic-secret-lease",
                             "leaseId", lease->id, "dynamicSecret", dv->ds.name, "projectId",
                             lease->project_id, "credential", lease->provider_id, "attempts",
                             (json_int_t)lease->revoke_attempts, "error", lease->last_error);
    char *json = item ? json_dumps(item, JSON_COMPACT) : NULL;
    json_decref(item);
    cf_channels_alert(core, lease->project_id, key, "lease-revocation-failed", notice, json);
    cf_json_free_text(json);
    lease->notified = true;
}

enum cf_rc cf_lease_revoke_claimed(struct cf_core *core, struct cf_lease *lease, const char *owner,
                                   const struct cf_principal *actor, struct cf_err *err)
{
    struct cf_dynamic_view dv;
    struct cf_conn_opened opened = {0};
    const struct cf_dynamic_ops *ops = NULL;
    json_t *params = NULL;
    struct cf_err why;
    int64_t now = cf_now_ms();
    cf_err_clear(&why);
    enum cf_rc rc = cf_dynamic_get_by_id(core, lease->dynamic_secret_id, &dv, err);
    if (rc != CF_OK)
        return rc;
    enum cf_rc outcome = open_provider(core, &dv, &ops, &params, &opened, &why);
    if (outcome == CF_OK) {
        const struct cf_lease_ref ref = {lease->id, dv.ds.name, lease->expires_at};
        outcome = ops->revoke(conn_of(ops, &opened), params, &ref, lease->provider_id, &why);
    }
    cf_connection_close(&opened);
    json_decref(params);
    if (outcome == CF_OK) {
        cf_strlcpy(lease->state, "revoked", sizeof(lease->state));
        lease->revoked_at = now;
        lease->last_error[0] = '\0';
        if (lease->expires_at > now)
            lease->expires_at = now;
    } else {
        int64_t delay = CF_LEASE_BACKOFF_FIRST_MS;
        for (int64_t a = 0; a < lease->revoke_attempts && delay < CF_LEASE_BACKOFF_MAX_MS; a++)
            delay *= 2;
        if (delay > CF_LEASE_BACKOFF_MAX_MS)
            delay = CF_LEASE_BACKOFF_MAX_MS;
        lease->revoke_attempts++;
        lease->next_attempt_at = now + delay;
        /* a caller's revocation that failed makes the lease end now: the worker takes it over */
        if (lease->expires_at > now)
            lease->expires_at = now;
        cf_strlcpy(lease->last_error, why.msg[0] ? why.msg : cf_rc_str(outcome),
                   sizeof(lease->last_error));
        cf_log_event(CF_LOG_WARN, "lease_revocation_failed", CF_LOG_TEXT("lease", lease->id),
                     CF_LOG_INT("attempt", lease->revoke_attempts), CF_LOG_MS("retry_in", delay),
                     CF_LOG_TEXT("error", lease->last_error));
        if (lease->revoke_attempts >= CF_LEASE_ALERT_AFTER && !lease->notified)
            alert(core, lease, &dv);
    }
    if (!actor)
        audit_system(core, lease, &dv, "revoke", outcome == CF_OK ? "ok" : "failed",
                     outcome == CF_OK ? NULL : lease->last_error);
    rc = cf_store_lease_save(core->store, lease, owner, err);
    if (rc == CF_OK && outcome != CF_OK) {
        *err = why;
        rc = provider_failure(dv.ds.name, outcome, err);
    }
    return rc;
}

enum cf_rc cf_lease_revoke(struct cf_core *core, const struct cf_principal *who, const char *id,
                           const char *owner, struct cf_lease_view *out, struct cf_err *err)
{
    enum cf_rc rc = load(core, who, id, out, err);
    if (rc == CF_OK)
        rc = claim_now(core, out, owner, err);
    if (rc == CF_OK)
        rc = cf_lease_revoke_claimed(core, &out->lease, owner, who, err);
    return rc;
}

enum cf_rc cf_leases_list(struct cf_core *core, const struct cf_principal *who,
                          const struct cf_dynamic_where *where, bool all, bool include_ended,
                          struct cf_lease_view_list *out, struct cf_err *err)
{
    struct cf_lease_list leases = {0};
    struct cf_dynamic_view *dv = calloc(1, sizeof(*dv));
    memset(out, 0, sizeof(*out));
    if (!dv)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    enum cf_rc rc = CF_OK;
    if (where)
        rc = cf_dynamic_get(core, who, where, CF_ACTION_READ, dv, err);
    else if (all)
        rc = cf_authz_admin(who, "list every lease", err);
    const char *actor = where || all ? NULL : who->id;
    if (rc == CF_OK)
        rc = cf_store_lease_list(core->store, where ? dv->ds.id : NULL, actor, !include_ended,
                                 CF_LEASE_LIST_MAX, &leases, err);
    if (rc == CF_OK && leases.n) {
        out->items = calloc(leases.n, sizeof(*out->items));
        if (!out->items)
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    for (size_t i = 0; rc == CF_OK && i < leases.n; i++) {
        struct cf_lease_view *v = &out->items[out->n];
        v->lease = leases.items[i];
        /* the admin's own leases have no actor id: listed by kind too */
        if (!where && !all && !is_owner(who, &v->lease))
            continue;
        if (strcmp(dv->ds.id, v->lease.dynamic_secret_id) != 0)
            rc = cf_dynamic_get_by_id(core, v->lease.dynamic_secret_id, dv, err);
        if (rc == CF_OK && where && !may_see(core, who, &v->lease, dv))
            continue;
        v->dynamic = *dv;
        out->n += rc == CF_OK;
    }
    if (rc != CF_OK)
        cf_lease_view_list_release(out);
    cf_lease_list_release(&leases);
    free(dv);
    return rc;
}

enum cf_rc cf_leases_execute(struct cf_core *core, const char *id, const char *owner, bool *ran,
                             struct cf_err *err)
{
    struct cf_lease lease;
    *ran = false;
    enum cf_rc rc = cf_store_lease_claim(core->store, id, owner, cf_now_ms(), CF_LEASE_CLAIM_MS,
                                         false, ran, &lease, err);
    if (rc != CF_OK || !*ran)
        return rc;
    struct cf_err why;
    cf_err_clear(&why);
    rc = cf_lease_revoke_claimed(core, &lease, owner, NULL, &why);
    /* a failure at the target is recorded on the lease (and logged), and a claim lost meanwhile
     * means another node has the lease: only the store's failures are the worker's */
    if (rc == CF_ESTORE || rc == CF_ENOMEM)
        *err = why;
    else
        rc = CF_OK;
    return rc;
}
