/* The backend-independent part of the store (see store.h): choosing a backend from the DSN, binding
 * membership rules stored by environment slug to environment ids, and the release and copy
 * functions of the structs that cross the interface. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "store/postgres.h"
#include "store/sqlite.h"
#include "store/store.h"
#include "util/log.h"
#include "util/str.h"
#include "util/banned.h"

static bool has_prefix(const char *text, const char *prefix)
{
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

/* Binds the rules of membership m that still name their environment by slug (stores written before
 * rules were bound by id) to that environment's id, and stores the membership again. A slug that
 * names no environment now binds to CF_RULE_ENV_UNRESOLVED: the rule covers nothing, as a rule
 * naming a missing environment did, and no environment created later inherits it. */
static enum cf_rc bind_rules(struct cf_store *st, struct cf_membership *m, struct cf_err *err)
{
    bool legacy = false;
    for (size_t i = 0; i < m->n_rules; i++) {
        struct cf_membership_rule *rule = &m->rules[i];
        if (!rule->env_slug[0])
            continue;
        struct cf_env env;
        enum cf_rc rc = cf_store_env_get(st, m->project_id, rule->env_slug, &env, err);
        if (rc != CF_OK && rc != CF_ENOTFOUND)
            return rc;
        cf_strlcpy(rule->env_id, rc == CF_OK ? env.id : CF_RULE_ENV_UNRESOLVED,
                   sizeof(rule->env_id));
        rule->env_slug[0] = '\0';
        legacy = true;
    }
    return legacy ? cf_store_membership_put(st, m, err) : CF_OK;
}

/* Runs once per open, after the migrations: every membership of every project. Idempotent (a bound
 * membership is left alone), so nodes opening the same database at once agree. */
static enum cf_rc bind_legacy_rules(struct cf_store *st, struct cf_err *err)
{
    struct cf_project_list projects = {0};
    enum cf_rc rc = cf_store_project_list(st, &projects, err);
    for (size_t p = 0; rc == CF_OK && p < projects.n; p++) {
        struct cf_membership_list members = {0};
        rc = cf_store_membership_list(st, NULL, projects.items[p].id, &members, err);
        for (size_t i = 0; rc == CF_OK && i < members.n; i++)
            rc = bind_rules(st, &members.items[i], err);
        cf_membership_list_release(&members);
        if (rc == CF_ESTORE) {
            /* A membership that cannot be read (a damaged rules column) stays as it is: every
             * check of it fails, as before; it is no reason to refuse the whole store. */
            cf_log_warn("membership rules of project %s left unbound: %s", projects.items[p].id,
                        err->msg);
            rc = CF_OK;
        }
    }
    cf_project_list_release(&projects);
    return rc;
}

static enum cf_rc open_backend(const struct cf_store_config *config, struct cf_store **out,
                               struct cf_err *err)
{
    const char *path;

    *out = NULL;
    if (!config || !config->dsn || !*config->dsn)
        return cf_err_set(
            err, CF_EINVAL,
            "no database given (expected a file path, sqlite:<path> or postgres://...)");
    if (has_prefix(config->dsn, "postgres://") || has_prefix(config->dsn, "postgresql://"))
        return cf_postgres_open(config->dsn, config->busy_timeout_ms, config->pool_size, out, err);
    path = config->dsn;
    if (has_prefix(path, "sqlite:")) {
        path += strlen("sqlite:");
        if (has_prefix(path, "//")) /* sqlite:///var/lib/coffer.db, sqlite://coffer.db */
            path += 2;
    }
    if (!*path)
        return cf_err_set(err, CF_EINVAL, "database '%s' names no file", config->dsn);
    if (strcmp(path, ":memory:") == 0 || has_prefix(path, "file:"))
        return cf_err_set(err, CF_EINVAL,
                          "database '%s' is not a file path (in-memory and URI databases are not "
                          "supported)",
                          config->dsn);
    if (config->must_exist && access(path, F_OK) != 0)
        return cf_err_set(err, CF_ENOTFOUND, "database file '%s' does not exist", path);
    return cf_sqlite_open(path, config->busy_timeout_ms, out, err);
}

enum cf_rc cf_store_open(const struct cf_store_config *config, struct cf_store **out,
                         struct cf_err *err)
{
    enum cf_rc rc = open_backend(config, out, err);
    if (rc == CF_OK)
        rc = bind_legacy_rules(*out, err);
    if (rc != CF_OK && *out) {
        cf_store_close(*out);
        *out = NULL;
    }
    return rc;
}

void cf_store_dsn_shown(const char *dsn, char *out, size_t size)
{
    static const char mask[] = "password=***";
    size_t n = strlen(dsn);
    size_t cap = n + sizeof(mask);
    char *work = malloc(cap); /* redacted whole, then truncated: a cut never leaves part of it */
    if (!work) {
        cf_strlcpy(out, "(the database)", size);
        return;
    }
    memcpy(work, dsn, n + 1);
    char *scheme = strstr(work, "://");
    if (scheme) { /* user:password@ */
        char *auth = scheme + 3;
        char *at = strchr(auth, '@');
        char *slash = strchr(auth, '/');
        char *colon = at && (!slash || at < slash) ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon)
            memmove(colon, at, strlen(at) + 1);
    }
    char *pw = strstr(work, "password=");
    if (pw) { /* ?password=... or &password=... */
        const char *end = strchr(pw, '&');
        size_t rest = end ? strlen(end) : 0;
        memmove(pw + sizeof(mask) - 1, end ? end : "", rest + 1);
        memcpy(pw, mask, sizeof(mask) - 1);
    }
    cf_strlcpy(out, work, size);
    sodium_memzero(work, cap);
    free(work);
}

void cf_project_release(struct cf_project *p)
{
    if (!p)
        return;
    if (p->wrapped_key)
        sodium_memzero(p->wrapped_key, p->wrapped_key_len);
    free(p->wrapped_key);
    memset(p, 0, sizeof(*p));
}

void cf_secret_release(struct cf_secret *s)
{
    if (!s)
        return;
    free(s->sealed);
    free(s->comment);
    free(s->reminder_note);
    free(s->tags);
    memset(s, 0, sizeof(*s));
}

void cf_project_list_release(struct cf_project_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        cf_project_release(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

void cf_secret_list_release(struct cf_secret_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        cf_secret_release(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

void cf_secret_meta_list_release(struct cf_secret_meta_list *l)
{
    if (!l)
        return;
    free(l->items);
    memset(l, 0, sizeof(*l));
}

void cf_env_list_release(struct cf_env_list *l)
{
    if (!l)
        return;
    free(l->items); /* the items own no heap memory */
    memset(l, 0, sizeof(*l));
}

void cf_folder_list_release(struct cf_folder_list *l)
{
    if (!l)
        return;
    free(l->items); /* the items own no heap memory */
    memset(l, 0, sizeof(*l));
}

void cf_import_list_release(struct cf_import_list *l)
{
    if (!l)
        return;
    free(l->items); /* the items own no heap memory */
    memset(l, 0, sizeof(*l));
}

void cf_tag_list_release(struct cf_tag_list *l)
{
    if (!l)
        return;
    free(l->items); /* the items own no heap memory */
    memset(l, 0, sizeof(*l));
}

void cf_identity_list_release(struct cf_identity_list *l)
{
    if (!l)
        return;
    free(l->items);
    memset(l, 0, sizeof(*l));
}

void cf_jwt_auth_config_release(struct cf_jwt_auth_config *c)
{
    if (!c)
        return;
    char **texts[] = {&c->public_keys,     &c->jwks_url,     &c->jwks_ca_cert, &c->bound_issuer,
                      &c->bound_audiences, &c->bound_claims, &c->bound_subject};
    for (size_t i = 0; i < CF_ARRAY_SIZE(texts); i++)
        free(*texts[i]); /* public texts: no wipe needed */
    memset(c, 0, sizeof(*c));
}

void cf_client_secret_list_release(struct cf_client_secret_list *l)
{
    if (!l)
        return;
    free(l->items);
    memset(l, 0, sizeof(*l));
}

void cf_membership_release(struct cf_membership *m)
{
    if (!m)
        return;
    free(m->rules);
    memset(m, 0, sizeof(*m));
}

void cf_membership_list_release(struct cf_membership_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        cf_membership_release(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

/* malloc'd copy of n bytes (at least one byte allocated, so an empty value is still non-NULL). */
static void *dup_bytes(const void *src, size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p && n)
        memcpy(p, src, n);
    return p;
}

enum cf_rc cf_secret_copy(struct cf_secret *dst, const struct cf_secret *src)
{
    *dst = *src;
    dst->sealed = NULL;
    dst->comment = NULL;
    dst->tags = NULL;
    dst->reminder_note = NULL;
    if (src->sealed) {
        dst->sealed = dup_bytes(src->sealed, src->sealed_len);
        if (!dst->sealed)
            goto fail;
    }
    if (src->comment) {
        dst->comment = dup_bytes(src->comment, strlen(src->comment) + 1);
        if (!dst->comment)
            goto fail;
    }
    if (src->tags) {
        dst->tags = dup_bytes(src->tags, strlen(src->tags) + 1);
        if (!dst->tags)
            goto fail;
    }
    if (src->reminder_note) {
        dst->reminder_note = dup_bytes(src->reminder_note, strlen(src->reminder_note) + 1);
        if (!dst->reminder_note)
            goto fail;
    }
    return CF_OK;
fail:
    cf_secret_release(dst);
    return CF_ENOMEM;
}

void cf_audit_event_list_release(struct cf_audit_event_list *l)
{
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

void cf_audit_checkpoint_list_release(struct cf_audit_checkpoint_list *l)
{
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

void cf_audit_last_read_list_release(struct cf_audit_last_read_list *l)
{
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

void cf_channel_list_release(struct cf_channel_list *l)
{
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

void cf_notice_list_release(struct cf_notice_list *l)
{
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

void cf_user_list_release(struct cf_user_list *l)
{
    if (!l)
        return;
    free(l->items);
    memset(l, 0, sizeof(*l));
}

void cf_user_session_list_release(struct cf_user_session_list *l)
{
    if (!l)
        return;
    free(l->items);
    memset(l, 0, sizeof(*l));
}

void cf_pat_list_release(struct cf_pat_list *l)
{
    if (!l)
        return;
    free(l->items);
    memset(l, 0, sizeof(*l));
}

void cf_group_list_release(struct cf_group_list *l)
{
    if (!l)
        return;
    free(l->items);
    memset(l, 0, sizeof(*l));
}

void cf_scim_token_list_release(struct cf_scim_token_list *l)
{
    if (!l)
        return;
    free(l->items);
    memset(l, 0, sizeof(*l));
}

void cf_scim_user_list_release(struct cf_scim_user_list *l)
{
    if (!l)
        return;
    free(l->items);
    memset(l, 0, sizeof(*l));
}
