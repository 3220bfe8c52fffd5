/* The expiry query (see expiry.h): two store scans (current secret versions with an expiry or a
 * reminder due, client secrets with an expiry), each filtered by what the caller may see, named
 * (project, environment, identity) and sorted. The scans read only the rows that match, through the
 * partial indexes of migration 0005. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/expiry.h"
#include "store/connections.h"
#include "util/str.h"
#include "util/banned.h"

#define DAY_MS (86400LL * 1000)

const char *cf_expiry_kind_name(enum cf_expiry_kind kind)
{
    switch (kind) {
    case CF_EXPIRY_SECRET:
        return "secret";
    case CF_EXPIRY_REMINDER:
        return "reminder";
    case CF_EXPIRY_CLIENT_SECRET:
        return "clientSecret";
    case CF_EXPIRY_CONNECTION:
        return "connection";
    }
    return "unknown";
}

void cf_expiry_list_release(struct cf_expiry_list *list)
{
    free(list->items);
    list->items = NULL;
    list->n = 0;
}

void cf_expiry_item_key(const struct cf_expiry_item *item, int64_t now, char *out, size_t size)
{
    switch (item->kind) {
    case CF_EXPIRY_SECRET:
        snprintf(out, size, "secret/%s/%lld", item->secret_id, (long long)item->due_at);
        break;
    case CF_EXPIRY_REMINDER: {
        /* Interval 1 falls due at due_at, interval 2 one interval later, and so on. */
        int64_t every = item->reminder_repeat_days * DAY_MS;
        long long n = 1 + (every > 0 && now > item->due_at ? (now - item->due_at) / every : 0);
        snprintf(out, size, "reminder/%s/v%lld/%lld", item->secret_id, (long long)item->version, n);
        break;
    }
    case CF_EXPIRY_CLIENT_SECRET:
        snprintf(out, size, "client-secret/%s", item->credential_id);
        break;
    case CF_EXPIRY_CONNECTION:
        snprintf(out, size, "connection/%s/%lld", item->credential_id, (long long)item->due_at);
        break;
    }
}

/* A growable item array. */
struct items {
    struct cf_expiry_item *v;
    size_t n, cap;
};

static struct cf_expiry_item *push(struct items *it, struct cf_err *err)
{
    if (it->n == it->cap) {
        size_t cap = it->cap ? it->cap * 2 : 16;
        struct cf_expiry_item *v = realloc(it->v, cap * sizeof(*v));
        if (!v) {
            cf_err_set(err, CF_ENOMEM, "out of memory");
            return NULL;
        }
        it->v = v;
        it->cap = cap;
    }
    struct cf_expiry_item *item = &it->v[it->n++];
    memset(item, 0, sizeof(*item));
    return item;
}

/* The names of the last project seen (secrets of one project tend to come together). */
struct names {
    char project_id[CF_UUID_LEN];
    struct cf_project project;
    struct cf_env_list envs;
};

static enum cf_rc name_project(struct cf_store *st, struct names *cache, const char *project_id,
                               struct cf_err *err)
{
    if (strcmp(cache->project_id, project_id) == 0)
        return CF_OK;
    cf_project_release(&cache->project);
    cf_env_list_release(&cache->envs);
    cache->project_id[0] = '\0';
    enum cf_rc rc = cf_store_project_get(st, project_id, &cache->project, err);
    if (rc == CF_OK)
        rc = cf_store_env_list(st, project_id, &cache->envs, err);
    if (rc == CF_OK)
        cf_strlcpy(cache->project_id, project_id, sizeof(cache->project_id));
    return rc;
}

/* The environment env_id of the cached project, or NULL when it is gone. */
static const struct cf_env *find_env(const struct names *cache, const char *env_id)
{
    for (size_t i = 0; i < cache->envs.n; i++)
        if (strcmp(cache->envs.items[i].id, env_id) == 0)
            return &cache->envs.items[i];
    return NULL;
}

static void fill_secret(struct cf_expiry_item *item, enum cf_expiry_kind kind, int64_t due_at,
                        const struct cf_secret *s, const struct names *cache, const char *slug)
{
    item->kind = kind;
    item->due_at = due_at;
    cf_strlcpy(item->project_id, s->project_id, sizeof(item->project_id));
    cf_strlcpy(item->project_name, cache->project.name, sizeof(item->project_name));
    cf_strlcpy(item->env_slug, slug, sizeof(item->env_slug));
    cf_strlcpy(item->path, s->path, sizeof(item->path));
    cf_strlcpy(item->key, s->key, sizeof(item->key));
    cf_strlcpy(item->secret_id, s->id, sizeof(item->secret_id));
    item->version = s->version;
    item->updated_at = s->updated_at;
    item->reminder_repeat_days = s->reminder_repeat_days;
    if (kind == CF_EXPIRY_REMINDER && s->reminder_note)
        cf_strlcpy(item->note, s->reminder_note, sizeof(item->note));
}

static enum cf_rc scan_secrets(struct cf_core *core, const struct cf_principal *who,
                               const struct cf_expiry_query *q, const char *project_id,
                               int64_t until, struct items *it, struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_secret_list list = {0};
    struct names cache = {0};
    enum cf_rc rc = cf_store_secret_expiring(st, project_id, until, &list, err);
    for (size_t i = 0; rc == CF_OK && i < list.n; i++) {
        const struct cf_secret *s = &list.items[i];
        int64_t remind_at =
            s->reminder_repeat_days > 0 ? s->updated_at + s->reminder_repeat_days * DAY_MS : 0;
        bool expiring = q->secrets && s->expires_at > 0 && s->expires_at <= until;
        bool reminding = q->reminders && remind_at > 0 && remind_at <= until;
        if (!expiring && !reminding)
            continue;
        rc = name_project(st, &cache, s->project_id, err);
        if (rc != CF_OK)
            break;
        const struct cf_env *env = find_env(&cache, s->env_id);
        struct cf_err denied;
        if (!env || cf_authz_check(core, who, CF_ACTION_READ, s->project_id, env, s->path,
                                   &denied) != CF_OK)
            continue; /* not the caller's to see (or deleted meanwhile) */
        const char *slug = env->slug;
        struct cf_expiry_item *item;
        if (expiring) {
            if (!(item = push(it, err)))
                rc = CF_ENOMEM;
            else
                fill_secret(item, CF_EXPIRY_SECRET, s->expires_at, s, &cache, slug);
        }
        if (rc == CF_OK && reminding) {
            if (!(item = push(it, err)))
                rc = CF_ENOMEM;
            else
                fill_secret(item, CF_EXPIRY_REMINDER, remind_at, s, &cache, slug);
        }
    }
    cf_project_release(&cache.project);
    cf_env_list_release(&cache.envs);
    cf_secret_list_release(&list);
    return rc;
}

static enum cf_rc scan_client_secrets(struct cf_core *core, const struct cf_principal *who,
                                      const char *project_id, int64_t until, struct items *it,
                                      struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_client_secret_list list = {0};
    struct cf_identity identity = {0};
    enum cf_rc rc = cf_store_client_secret_expiring(st, until, &list, err);
    for (size_t i = 0; rc == CF_OK && i < list.n; i++) {
        const struct cf_client_secret *c = &list.items[i];
        if (!cf_principal_is_admin(who) && strcmp(who->id, c->identity_id) != 0)
            continue;
        if (project_id) {
            struct cf_membership m = {0};
            enum cf_rc found = cf_store_membership_get(st, c->identity_id, project_id, &m, err);
            cf_membership_release(&m);
            if (found == CF_ENOTFOUND)
                continue;
            if (found != CF_OK) {
                rc = found;
                break;
            }
        }
        if (strcmp(identity.id, c->identity_id) != 0) {
            rc = cf_store_identity_get(st, c->identity_id, &identity, err);
            if (rc == CF_ENOTFOUND) { /* deleted meanwhile */
                rc = CF_OK;
                memset(&identity, 0, sizeof(identity));
                continue;
            }
            if (rc != CF_OK)
                break;
        }
        struct cf_expiry_item *item = push(it, err);
        if (!item) {
            rc = CF_ENOMEM;
            break;
        }
        item->kind = CF_EXPIRY_CLIENT_SECRET;
        item->due_at = c->expires_at;
        cf_strlcpy(item->identity_id, c->identity_id, sizeof(item->identity_id));
        cf_strlcpy(item->identity_name, identity.name, sizeof(item->identity_name));
        cf_strlcpy(item->credential_id, c->id, sizeof(item->credential_id));
        cf_strlcpy(item->description, c->description, sizeof(item->description));
        item->updated_at = c->created_at;
    }
    cf_client_secret_list_release(&list);
    return rc;
}

/* App connections: organisation-wide, so the admin's, and not a project's. */
static enum cf_rc scan_connections(struct cf_core *core, const struct cf_principal *who,
                                   int64_t until, struct items *it, struct cf_err *err)
{
    struct cf_connection_list list = {0};
    if (!cf_principal_is_admin(who))
        return CF_OK;
    enum cf_rc rc = cf_store_connection_expiring(core->store, until, &list, err);
    for (size_t i = 0; rc == CF_OK && i < list.n; i++) {
        const struct cf_connection *c = &list.items[i];
        struct cf_expiry_item *item = push(it, err);
        if (!item) {
            rc = CF_ENOMEM;
            break;
        }
        item->kind = CF_EXPIRY_CONNECTION;
        item->due_at = c->expires_at;
        cf_strlcpy(item->credential_id, c->id, sizeof(item->credential_id));
        cf_strlcpy(item->description, c->name, sizeof(item->description));
        cf_strlcpy(item->app, c->app, sizeof(item->app));
        cf_strlcpy(item->method, c->method, sizeof(item->method));
        item->updated_at = c->updated_at;
    }
    cf_connection_list_release(&list);
    return rc;
}

static int by_due(const void *a, const void *b)
{
    const struct cf_expiry_item *x = a, *y = b;
    if (x->due_at != y->due_at)
        return x->due_at < y->due_at ? -1 : 1;
    if (x->kind != y->kind)
        return (int)x->kind - (int)y->kind;
    int c = strcmp(x->project_name, y->project_name);
    if (c == 0)
        c = strcmp(x->env_slug, y->env_slug);
    if (c == 0)
        c = strcmp(x->path, y->path);
    if (c == 0)
        c = strcmp(x->key, y->key);
    if (c == 0)
        c = strcmp(x->identity_name, y->identity_name);
    if (c == 0)
        c = strcmp(x->credential_id, y->credential_id);
    return c;
}

enum cf_rc cf_expiry_list(struct cf_core *core, const struct cf_principal *who,
                          const struct cf_expiry_query *query, struct cf_expiry_list *out,
                          struct cf_err *err)
{
    struct items it = {0};
    struct cf_project project = {0};
    const char *project_id = NULL;
    enum cf_rc rc = CF_OK;

    memset(out, 0, sizeof(*out));
    if (query->within_ms < 0)
        return cf_err_field(err, CF_EVALIDATION, "within", "within: must not be negative");
    if (query->project) {
        rc = cf_store_project_get(core->store, query->project, &project, err);
        if (rc == CF_ENOTFOUND)
            rc = cf_err_set(err, CF_ENOTFOUND, "Project with ID '%s' not found", query->project);
        if (rc == CF_OK && !cf_principal_is_admin(who)) {
            /* An identity or a user names a project it belongs to; otherwise the same 404 as for
             * none. */
            struct cf_membership m = {0};
            rc = cf_principal_membership(core, who, project.id, &m, err);
            cf_membership_release(&m);
            if (rc == CF_ENOTFOUND)
                rc =
                    cf_err_set(err, CF_ENOTFOUND, "Project with ID '%s' not found", query->project);
        }
        if (rc != CF_OK) {
            cf_project_release(&project);
            return rc;
        }
        project_id = project.id;
    }
    int64_t until = query->now + query->within_ms;
    if (query->secrets || query->reminders)
        rc = scan_secrets(core, who, query, project_id, until, &it, err);
    if (rc == CF_OK && query->client_secrets)
        rc = scan_client_secrets(core, who, project_id, until, &it, err);
    if (rc == CF_OK && query->connections && !project_id)
        rc = scan_connections(core, who, until, &it, err);
    cf_project_release(&project);
    if (rc != CF_OK) {
        free(it.v);
        return rc;
    }
    for (size_t i = 0; i < it.n; i++)
        it.v[i].past = it.v[i].due_at <= query->now;
    if (it.n > 1)
        qsort(it.v, it.n, sizeof(*it.v), by_due);
    out->items = it.v;
    out->n = it.n;
    return CF_OK;
}
