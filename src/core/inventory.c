/* The inventory (see inventory.h): per project one scan of its secrets' metadata (the store's
 * secret_inventory, which reads no value), its environments and its memberships; readers are
 * derived from each membership's role and rules the way cf_authz_check decides a read, and an
 * identity's own view is filtered with cf_authz_check itself. */
#include <stdlib.h>
#include <string.h>

#include "core/authz.h"
#include "core/identities.h"
#include "core/inventory.h"
#include "store/syncs.h"
#include "core/auditlog.h"
#include "util/str.h"
#include "util/banned.h"

/* Makes room for one more item in items (n used of *cap, each size bytes): the array, perhaps
 * moved, or NULL when out of memory (items is then unchanged). */
static void *grow(void *items, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return items;
    size_t new_cap = *cap ? *cap * 2 : 8;
    void *grown = new_cap <= SIZE_MAX / size ? realloc(items, new_cap * size) : NULL;
    if (grown)
        *cap = new_cap;
    return grown;
}

static void reader_release(struct cf_inventory_reader *reader)
{
    free(reader->paths);
    reader->paths = NULL;
    reader->n_paths = 0;
}

static void env_release(struct cf_inventory_env *env)
{
    for (size_t i = 0; i < env->n_readers; i++)
        reader_release(&env->readers[i]);
    free(env->readers);
    for (size_t i = 0; i < env->n_secrets; i++)
        free(env->secrets[i].copies);
    free(env->secrets);
    memset(env, 0, sizeof(*env));
}

static void project_release(struct cf_inventory_project *project)
{
    for (size_t i = 0; i < project->n_envs; i++)
        env_release(&project->envs[i]);
    free(project->envs);
    memset(project, 0, sizeof(*project));
}

void cf_inventory_release(struct cf_inventory *inventory)
{
    if (!inventory)
        return;
    for (size_t i = 0; i < inventory->n_projects; i++)
        project_release(&inventory->projects[i]);
    free(inventory->projects);
    memset(inventory, 0, sizeof(*inventory));
}

static enum cf_rc add_path(struct cf_inventory_reader *reader, const char *glob, struct cf_err *err)
{
    for (size_t i = 0; i < reader->n_paths; i++)
        if (strcmp(reader->paths[i], glob) == 0)
            return CF_OK;
    char(*grown)[CF_PATH_MAX + 1] = realloc(reader->paths, (reader->n_paths + 1) * sizeof(*grown));
    if (!grown)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    reader->paths = grown;
    cf_strlcpy(reader->paths[reader->n_paths++], glob, sizeof(*grown));
    return CF_OK;
}

/* Fills reader->paths with where membership m lets its identity read in environment env_id, as
 * cf_authz_check decides a read: the role must allow reading, and with rules, a rule naming read
 * that matches the environment (by id) covers its path glob. n_paths stays 0 when it can read
 * nothing. */
static enum cf_rc reader_paths(const struct cf_membership *m, const char *env_id,
                               struct cf_inventory_reader *reader, struct cf_err *err)
{
    uint32_t actions = 0;
    if (!cf_role_actions(m->role, &actions) || !(actions & CF_ACTION_BIT(CF_ACTION_READ)))
        return CF_OK;
    if (m->n_rules == 0)
        return add_path(reader, CF_INVENTORY_ALL_PATHS, err);
    for (size_t i = 0; i < m->n_rules; i++) {
        const struct cf_membership_rule *r = &m->rules[i];
        if (!(r->actions & CF_ACTION_BIT(CF_ACTION_READ)) ||
            (r->env_id[0] && strcmp(r->env_id, env_id) != 0))
            continue;
        const char *glob = r->path_glob[0] ? r->path_glob : CF_INVENTORY_ALL_PATHS;
        if (strcmp(glob, CF_INVENTORY_ALL_PATHS) == 0) {
            /* The whole environment: narrower globs add nothing. */
            reader_release(reader);
            return add_path(reader, CF_INVENTORY_ALL_PATHS, err);
        }
        enum cf_rc rc = add_path(reader, glob, err);
        if (rc != CF_OK)
            return rc;
    }
    return CF_OK;
}

static int by_reader_name(const void *a, const void *b)
{
    const struct cf_inventory_reader *x = a, *y = b;
    int c = strcmp(x->identity_name, y->identity_name);
    return c ? c : strcmp(x->identity_id, y->identity_id);
}

/* Who may be named: the identities', users' and groups' names (the admin's view), or the caller
 * alone. */
struct names {
    const struct cf_identity_list *identities; /* NULL for an identity caller */
    const char *caller_name;
    const struct cf_user_list *users;
    const struct cf_group_list *groups;
};

static const char *identity_name(const struct names *names, const char *identity_id)
{
    if (!names->identities)
        return names->caller_name;
    for (size_t i = 0; names->users && i < names->users->n; i++)
        if (strcmp(names->users->items[i].id, identity_id) == 0)
            return names->users->items[i].email;
    for (size_t i = 0; names->groups && i < names->groups->n; i++)
        if (strcmp(names->groups->items[i].id, identity_id) == 0)
            return names->groups->items[i].name;
    for (size_t i = 0; i < names->identities->n; i++)
        if (strcmp(names->identities->items[i].id, identity_id) == 0)
            return names->identities->items[i].name;
    return "";
}

/* Adds the readers of env among memberships (of members of kind), sorted by name; *cap is the room
 * of env->readers. */
static enum cf_rc env_readers(const struct cf_membership_list *memberships, const char *kind,
                              const struct names *names, struct cf_inventory_env *env, size_t *cap,
                              struct cf_err *err)
{
    for (size_t i = 0; i < memberships->n; i++) {
        const struct cf_membership *m = &memberships->items[i];
        struct cf_inventory_reader reader = {0};
        enum cf_rc rc = reader_paths(m, env->id, &reader, err);
        struct cf_inventory_reader *grown = NULL;
        if (rc == CF_OK && reader.n_paths > 0 &&
            !(grown = grow(env->readers, cap, env->n_readers, sizeof(reader))))
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        if (rc != CF_OK || reader.n_paths == 0) {
            reader_release(&reader);
            if (rc != CF_OK)
                return rc;
            continue;
        }
        env->readers = grown;
        cf_strlcpy(reader.kind, kind, sizeof(reader.kind));
        cf_strlcpy(reader.identity_id, m->identity_id, sizeof(reader.identity_id));
        cf_strlcpy(reader.identity_name, identity_name(names, m->identity_id),
                   sizeof(reader.identity_name));
        cf_strlcpy(reader.role, m->role, sizeof(reader.role));
        env->readers[env->n_readers++] = reader;
    }
    if (env->n_readers > 1)
        qsort(env->readers, env->n_readers, sizeof(*env->readers), by_reader_name);
    return CF_OK;
}

/* The memberships whose readers are shown: all of the project's for the admin, the caller's own
 * for an identity (none when it is not a member). */
static enum cf_rc project_memberships(struct cf_core *core, const struct cf_principal *who,
                                      const char *project_id, struct cf_membership_list *out,
                                      struct cf_err *err)
{
    struct cf_store *st = core->store;
    memset(out, 0, sizeof(*out));
    if (cf_principal_is_admin(who))
        return cf_store_membership_list(st, NULL, project_id, out, err);
    out->items = calloc(1, sizeof(*out->items));
    if (!out->items)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    enum cf_rc rc = cf_principal_membership(core, who, project_id, &out->items[0], err);
    if (rc == CF_OK)
        out->n = 1;
    else if (rc == CF_ENOTFOUND)
        rc = CF_OK;
    return rc;
}

/* Whether who may read the secrets of the folder at path in env, asked once per folder (the
 * store returns a folder's secrets together). */
struct read_cache {
    const char *env_id;
    const char *path;
    bool readable;
};

static enum cf_rc may_read(struct cf_core *core, const struct cf_principal *who,
                           const char *project_id, const struct cf_inventory_env *env,
                           const struct cf_secret_meta *s, struct read_cache *cache,
                           struct cf_err *err)
{
    if (cf_principal_is_admin(who)) {
        cache->readable = true;
        return CF_OK;
    }
    if (cache->env_id && strcmp(cache->env_id, s->env_id) == 0 && strcmp(cache->path, s->path) == 0)
        return CF_OK;
    struct cf_err denied;
    struct cf_env place = {0};
    cf_strlcpy(place.id, env->id, sizeof(place.id));
    cf_strlcpy(place.slug, env->slug, sizeof(place.slug));
    enum cf_rc rc = cf_authz_check(core, who, CF_ACTION_READ, project_id, &place, s->path, &denied);
    if (rc != CF_OK && rc != CF_EFORBIDDEN) {
        *err = denied;
        return rc;
    }
    cache->env_id = s->env_id;
    cache->path = s->path;
    cache->readable = rc == CF_OK;
    return CF_OK;
}

static void fill_secret(struct cf_inventory_secret *out, const struct cf_secret_meta *s)
{
    memset(out, 0, sizeof(*out));
    cf_strlcpy(out->secret_id, s->id, sizeof(out->secret_id));
    cf_strlcpy(out->path, s->path, sizeof(out->path));
    cf_strlcpy(out->key, s->key, sizeof(out->key));
    out->version = s->version;
    out->version_count = s->version_count;
    out->created_at = s->created_at;
    out->last_changed_at = s->updated_at;
    out->expires_at = s->expires_at;
    out->reminder_repeat_days = s->reminder_repeat_days;
    out->last_read_known = false; /* until an audit event says otherwise (last_reads) */
}

static int by_path_key(const void *a, const void *b)
{
    const struct cf_inventory_secret *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    return c ? c : strcmp(x->key, y->key);
}

/* Marks the secret named by env/path/key as read by event e, when e is newer than its creation. */
static void mark_read(struct cf_inventory_project *out, const struct cf_audit_event *e,
                      const char *key, size_t key_len)
{
    struct cf_inventory_secret probe;
    if (key_len == 0 || key_len >= sizeof(probe.key) ||
        (key_len == 3 && memcmp(key, "...", 3) == 0))
        return;
    cf_strlcpy(probe.path, e->path, sizeof(probe.path));
    memcpy(probe.key, key, key_len);
    probe.key[key_len] = '\0';
    for (size_t i = 0; i < out->n_envs; i++) {
        struct cf_inventory_env *env = &out->envs[i];
        if (strcmp(env->slug, e->environment) != 0)
            continue;
        if (env->n_secrets == 0)
            return;
        struct cf_inventory_secret *s =
            bsearch(&probe, env->secrets, env->n_secrets, sizeof(*s), by_path_key);
        if (!s || e->time_us / 1000 < s->created_at)
            return; /* gone, or a read of an earlier secret that had the same name */
        s->last_read_known = true;
        s->last_read_at = e->time_us / 1000;
        cf_strlcpy(s->last_read_by_kind, e->actor_kind, sizeof(s->last_read_by_kind));
        cf_strlcpy(s->last_read_by_id, e->actor_id, sizeof(s->last_read_by_id));
        cf_strlcpy(s->last_read_by_name, e->actor_name, sizeof(s->last_read_by_name));
        return;
    }
}

/* Last reads from the audit log: the reads kept from archived events (audit retention), then the
 * project's successful read events, oldest first, so that the newest read of each secret is the
 * one kept. Without an audit log nothing is known. */
static enum cf_rc last_reads(struct cf_core *core, struct cf_inventory_project *out,
                             struct cf_err *err)
{
    if (!core->audit)
        return CF_OK;
    for (size_t i = 0; i < out->n_envs; i++) /* the store's order, made explicit for bsearch */
        if (out->envs[i].n_secrets > 1)
            qsort(out->envs[i].secrets, out->envs[i].n_secrets, sizeof(*out->envs[i].secrets),
                  by_path_key);
    cf_audit_log_flush(core->audit);
    /* First what was kept of the archived events (all older than the live ones), then the live. */
    struct cf_audit_last_read_list kept = {0};
    enum cf_rc kept_rc = cf_store_audit_last_reads(core->store, out->id, &kept, err);
    if (kept_rc != CF_OK)
        return kept_rc;
    struct cf_audit_event *as_event = kept.n ? calloc(1, sizeof(*as_event)) : NULL;
    if (kept.n && !as_event) {
        cf_audit_last_read_list_release(&kept);
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < kept.n; i++) {
        const struct cf_audit_last_read *r = &kept.items[i];
        cf_strlcpy(as_event->environment, r->environment, sizeof(as_event->environment));
        cf_strlcpy(as_event->path, r->path, sizeof(as_event->path));
        as_event->time_us = r->read_at_us;
        cf_strlcpy(as_event->actor_kind, r->actor_kind, sizeof(as_event->actor_kind));
        cf_strlcpy(as_event->actor_id, r->actor_id, sizeof(as_event->actor_id));
        cf_strlcpy(as_event->actor_name, r->actor_name, sizeof(as_event->actor_name));
        mark_read(out, as_event, r->key, strlen(r->key));
    }
    free(as_event);
    cf_audit_last_read_list_release(&kept);
    struct cf_audit_filter filter = {.limit = 1000, .action = "secrets.", .project_id = out->id};
    for (;;) {
        struct cf_audit_event_list page = {0};
        enum cf_rc rc = cf_store_audit_list(core->store, &filter, &page, err);
        if (rc != CF_OK)
            return rc;
        for (size_t i = 0; i < page.n; i++) {
            const struct cf_audit_event *e = &page.items[i];
            if (strcmp(e->result, "ok") != 0 ||
                (strcmp(e->action, "secrets.list") != 0 && strcmp(e->action, "secrets.read") != 0 &&
                 strcmp(e->action, "secrets.versions") != 0))
                continue;
            struct cf_list_iter keys;
            struct cf_str key;
            cf_list_init(&keys, e->keys);
            while (cf_list_next_raw(&keys, &key))
                mark_read(out, e, key.p, key.n);
        }
        bool last = page.n < filter.limit;
        if (page.n)
            filter.after_seq = page.items[page.n - 1].seq;
        cf_audit_event_list_release(&page);
        if (last)
            return CF_OK;
    }
}

/* Places the secrets of the project in their environments (out->envs, those visible), keeping
 * those who may read. */
static enum cf_rc place_secrets(struct cf_core *core, const struct cf_principal *who,
                                const struct cf_secret_meta_list *secrets,
                                struct cf_inventory_project *out, struct cf_err *err)
{
    struct read_cache cache = {0};
    size_t *caps = calloc(out->n_envs ? out->n_envs : 1, sizeof(*caps));
    enum cf_rc rc = caps ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
    for (size_t i = 0; rc == CF_OK && i < secrets->n; i++) {
        const struct cf_secret_meta *s = &secrets->items[i];
        size_t e = 0;
        while (e < out->n_envs && strcmp(out->envs[e].id, s->env_id) != 0)
            e++;
        if (e == out->n_envs)
            continue; /* an environment the caller cannot read in */
        struct cf_inventory_env *env = &out->envs[e];
        rc = may_read(core, who, out->id, env, s, &cache, err);
        if (rc != CF_OK || !cache.readable)
            continue;
        struct cf_inventory_secret *grown =
            grow(env->secrets, &caps[e], env->n_secrets, sizeof(*grown));
        if (!grown) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            break;
        }
        env->secrets = grown;
        fill_secret(&env->secrets[env->n_secrets++], s);
    }
    free(caps);
    return rc;
}

/* Who last read a secret is shown to the admin, to a project admin and to the reader itself; to
 * anyone else only that (and when) it was read: other identities' activity is not theirs to see. */
static void hide_other_readers(struct cf_core *core, const struct cf_principal *who,
                               struct cf_inventory_project *out)
{
    struct cf_err ignored;
    if (cf_principal_is_admin(who) ||
        cf_authz_check(core, who, CF_ACTION_ADMIN, out->id, NULL, NULL, &ignored) == CF_OK)
        return;
    for (size_t e = 0; e < out->n_envs; e++) {
        for (size_t i = 0; i < out->envs[e].n_secrets; i++) {
            struct cf_inventory_secret *s = &out->envs[e].secrets[i];
            if (strcmp(s->last_read_by_kind, "identity") == 0 &&
                strcmp(s->last_read_by_id, who->id) == 0)
                continue;
            s->last_read_by_kind[0] = '\0';
            s->last_read_by_id[0] = '\0';
            s->last_read_by_name[0] = '\0';
        }
    }
}

static int item_cmp(const void *a, const void *b)
{
    const struct cf_sync_item_row *x = a, *y = b;
    int c = strcmp(x->secret_env_id, y->secret_env_id);
    if (c == 0)
        c = strcmp(x->secret_path, y->secret_path);
    if (c == 0)
        c = strcmp(x->secret_key, y->secret_key);
    return c;
}

/* Where each secret of out was pushed by the project's secret syncs. */
static enum cf_rc synced_copies(struct cf_core *core, struct cf_inventory_project *out,
                                struct cf_err *err)
{
    struct cf_sync_item_list items = {0};
    struct cf_sync_list syncs = {0};
    enum cf_rc rc = cf_store_sync_items(core->store, NULL, out->id, &items, err);
    if (rc == CF_OK && items.n)
        rc = cf_store_sync_list(core->store, out->id, &syncs, err);
    if (rc != CF_OK || items.n == 0)
        goto out;
    qsort(items.items, items.n, sizeof(*items.items), item_cmp);
    for (size_t e = 0; rc == CF_OK && e < out->n_envs; e++) {
        struct cf_inventory_env *env = &out->envs[e];
        for (size_t i = 0; rc == CF_OK && i < env->n_secrets; i++) {
            struct cf_inventory_secret *secret = &env->secrets[i];
            struct cf_sync_item_row probe;
            cf_strlcpy(probe.secret_env_id, env->id, sizeof(probe.secret_env_id));
            cf_strlcpy(probe.secret_path, secret->path, sizeof(probe.secret_path));
            cf_strlcpy(probe.secret_key, secret->key, sizeof(probe.secret_key));
            const struct cf_sync_item_row *hit =
                bsearch(&probe, items.items, items.n, sizeof(*items.items), item_cmp);
            if (!hit)
                continue;
            while (hit > items.items && item_cmp(hit - 1, &probe) == 0)
                hit--;
            size_t n = 0;
            while (hit + n < items.items + items.n && item_cmp(hit + n, &probe) == 0)
                n++;
            secret->copies = calloc(n, sizeof(*secret->copies));
            if (!secret->copies) {
                rc = cf_err_set(err, CF_ENOMEM, "out of memory");
                break;
            }
            for (size_t k = 0; k < n; k++) {
                struct cf_inventory_copy *copy = &secret->copies[secret->n_copies++];
                cf_strlcpy(copy->sync_id, hit[k].sync_id, sizeof(copy->sync_id));
                cf_strlcpy(copy->name, hit[k].name, sizeof(copy->name));
                copy->version = hit[k].version;
                copy->pushed_at = hit[k].pushed_at;
                for (size_t s = 0; s < syncs.n; s++) {
                    if (strcmp(syncs.items[s].id, hit[k].sync_id) == 0) {
                        cf_strlcpy(copy->sync_name, syncs.items[s].name, sizeof(copy->sync_name));
                        cf_strlcpy(copy->destination, syncs.items[s].destination,
                                   sizeof(copy->destination));
                    }
                }
            }
        }
    }
out:
    cf_sync_list_release(&syncs);
    cf_sync_item_list_release(&items);
    return rc;
}

/* Which secrets of out are marked leaked at their current version (core/leaks.h). */
static enum cf_rc leaks(struct cf_core *core, struct cf_inventory_project *out, struct cf_err *err)
{
    struct cf_secret_leak_list marks = {0};
    enum cf_rc rc = cf_store_leak_list(core->store, out->id, &marks, err);
    for (size_t m = 0; rc == CF_OK && m < marks.n; m++) {
        const struct cf_secret_leak *l = &marks.items[m];
        for (size_t e = 0; e < out->n_envs; e++)
            for (size_t i = 0; i < out->envs[e].n_secrets; i++) {
                struct cf_inventory_secret *s = &out->envs[e].secrets[i];
                if (strcmp(s->secret_id, l->secret_id) != 0 || s->version != l->version)
                    continue;
                s->leaked = true;
                s->leaked_at = l->leaked_at;
                cf_strlcpy(s->leak_source, l->source, sizeof(s->leak_source));
                cf_strlcpy(s->leaked_by_kind, l->actor_kind, sizeof(s->leaked_by_kind));
                cf_strlcpy(s->leaked_by_name, l->actor_name, sizeof(s->leaked_by_name));
            }
    }
    cf_secret_leak_list_release(&marks);
    return rc;
}

/* The inventory of project p as who sees it, into out: its environments (for an identity, those
 * it can read in), their readers and secrets. */
static enum cf_rc build_project(struct cf_core *core, const struct cf_principal *who,
                                const struct cf_project *p, const struct names *names,
                                struct cf_inventory_project *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_membership_list memberships = {0}, users = {0}, groups = {0};
    struct cf_env_list envs = {0};
    struct cf_secret_meta_list secrets = {0};
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    cf_strlcpy(out->id, p->id, sizeof(out->id));
    cf_strlcpy(out->slug, p->slug, sizeof(out->slug));
    cf_strlcpy(out->name, p->name, sizeof(out->name));
    rc = project_memberships(core, who, p->id, &memberships, err);
    /* the admin sees people too: users' and groups' memberships */
    if (rc == CF_OK && cf_principal_is_admin(who))
        rc = cf_store_user_membership_list(st, NULL, p->id, &users, err);
    if (rc == CF_OK && cf_principal_is_admin(who))
        rc = cf_store_group_membership_list(st, NULL, p->id, &groups, err);
    if (rc == CF_OK)
        rc = cf_store_env_list(st, p->id, &envs, err);
    if (rc == CF_OK && envs.n > 0 && !(out->envs = calloc(envs.n, sizeof(*out->envs))))
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    for (size_t i = 0; rc == CF_OK && i < envs.n; i++) {
        struct cf_inventory_env *env = &out->envs[out->n_envs];
        cf_strlcpy(env->id, envs.items[i].id, sizeof(env->id));
        cf_strlcpy(env->slug, envs.items[i].slug, sizeof(env->slug));
        cf_strlcpy(env->name, envs.items[i].name, sizeof(env->name));
        out->n_envs++;
        size_t cap = 0;
        rc = env_readers(&memberships, who && who->kind == CF_PRINCIPAL_USER ? "user" : "identity",
                         names, env, &cap, err);
        if (rc == CF_OK)
            rc = env_readers(&users, "user", names, env, &cap, err);
        if (rc == CF_OK)
            rc = env_readers(&groups, "group", names, env, &cap, err);
        if (rc == CF_OK && !cf_principal_is_admin(who) && env->n_readers == 0)
            env_release(&out->envs[--out->n_envs]); /* nothing the caller can read here */
    }
    if (rc == CF_OK && out->n_envs > 0)
        rc = cf_store_secret_inventory(st, p->id, &secrets, err);
    if (rc == CF_OK)
        rc = place_secrets(core, who, &secrets, out, err);
    if (rc == CF_OK)
        rc = last_reads(core, out, err);
    if (rc == CF_OK)
        rc = synced_copies(core, out, err);
    if (rc == CF_OK)
        rc = leaks(core, out, err);
    if (rc == CF_OK)
        hide_other_readers(core, who, out);
    cf_secret_meta_list_release(&secrets);
    cf_env_list_release(&envs);
    cf_membership_list_release(&groups);
    cf_membership_list_release(&users);
    cf_membership_list_release(&memberships);
    if (rc != CF_OK)
        project_release(out);
    return rc;
}

/* The caller's name for readers and refusals: the principal's, else the identity's record. */
static void caller_name(struct cf_core *core, const struct cf_principal *who, char *out,
                        size_t size)
{
    struct cf_identity identity;
    struct cf_err ignored;
    cf_strlcpy(out, who->name[0] ? who->name : who->id, size);
    if (!who->name[0] && cf_store_identity_get(core->store, who->id, &identity, &ignored) == CF_OK)
        cf_strlcpy(out, identity.name, size);
}

/* The projects to look at: the one named (project_get's answer) or all. */
static enum cf_rc projects_of(struct cf_core *core, const char *project,
                              struct cf_project_list *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    memset(out, 0, sizeof(*out));
    if (!project)
        return cf_store_project_list(st, out, err);
    out->items = calloc(1, sizeof(*out->items));
    if (!out->items)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    enum cf_rc rc = cf_store_project_get(st, project, &out->items[0], err);
    if (rc == CF_OK)
        out->n = 1;
    else if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "Project with ID '%s' not found", project);
    return rc;
}

/* For an identity naming a project: a member (else the 404 of an unknown project, so that
 * membership elsewhere is not revealed). */
static enum cf_rc member_of(struct cf_core *core, const struct cf_principal *who,
                            const char *project, const char *project_id, struct cf_err *err)
{
    struct cf_membership m = {0};
    enum cf_rc rc = cf_principal_membership(core, who, project_id, &m, err);
    cf_membership_release(&m);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "Project with ID '%s' not found", project);
    return rc;
}

enum cf_rc cf_inventory_build(struct cf_core *core, const struct cf_principal *who,
                              const char *project, struct cf_inventory *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_project_list projects = {0};
    struct cf_identity_list identities = {0};
    struct cf_user_list users = {0};
    struct cf_group_list groups = {0};
    char name[CF_NAME_MAX + 1] = "";
    struct names names = {NULL, name, NULL, NULL};
    size_t cap = 0;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    if (!who)
        return cf_err_set(err, CF_EFORBIDDEN, "not allowed to read the inventory");
    bool admin = cf_principal_is_admin(who);
    out->readers_complete = admin;
    rc = projects_of(core, project, &projects, err);
    if (rc == CF_OK && project && !admin)
        rc = member_of(core, who, project, projects.items[0].id, err);
    if (rc == CF_OK && admin) {
        rc = cf_store_identity_list(st, &identities, err);
        if (rc == CF_OK)
            rc = cf_store_user_list(st, &users, err);
        if (rc == CF_OK)
            rc = cf_store_group_list(st, &groups, err);
        names.identities = &identities;
        names.users = &users;
        names.groups = &groups;
    } else if (rc == CF_OK) {
        caller_name(core, who, name, sizeof(name));
    }
    for (size_t i = 0; rc == CF_OK && i < projects.n; i++) {
        struct cf_inventory_project *grown =
            grow(out->projects, &cap, out->n_projects, sizeof(*grown));
        if (!grown) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            break;
        }
        out->projects = grown;
        struct cf_inventory_project *p = &out->projects[out->n_projects];
        rc = build_project(core, who, &projects.items[i], &names, p, err);
        if (rc != CF_OK)
            break;
        if (admin || p->n_envs > 0) {
            out->n_projects++;
            continue;
        }
        project_release(p);
        if (project) /* a member that can read nothing there */
            rc = cf_err_set(err, CF_EFORBIDDEN,
                            "identity \"%s\" may not read anything in project '%s'", name,
                            projects.items[i].slug);
    }
    cf_group_list_release(&groups);
    cf_user_list_release(&users);
    cf_identity_list_release(&identities);
    cf_project_list_release(&projects);
    if (rc != CF_OK)
        cf_inventory_release(out);
    return rc;
}

enum cf_rc cf_inventory_build_for_identity(struct cf_core *core, const struct cf_principal *who,
                                           const char *identity_id, const char *project,
                                           struct cf_inventory *out, struct cf_err *err)
{
    struct cf_identity identity;
    struct cf_principal as = {.kind = CF_PRINCIPAL_IDENTITY};

    memset(out, 0, sizeof(*out));
    /* cf_identity_get refuses anyone but an administrator, and answers 404 for an unknown id */
    enum cf_rc rc = cf_identity_get(core, who, identity_id, &identity, err);
    if (rc != CF_OK)
        return rc;
    /* the same principal an access token of the identity gives: the same decisions as its reads */
    cf_strlcpy(as.id, identity.id, sizeof(as.id));
    cf_strlcpy(as.name, identity.name, sizeof(as.name));
    return cf_inventory_build(core, &as, project, out, err);
}
