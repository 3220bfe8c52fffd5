/* The authorization decision (see core.h and authz.h). An identity's rights in a project come from
 * its one membership there (a user's: its own and its groups', united into one): the role gives a
 * set of actions, and rules, when present, narrow it to actions in an environment under a path
 * glob. Everything not allowed is refused, with a message naming what and where. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/access.h"
#include "core/authz.h"
#include "core/core.h"
#include "core/names.h"
#include "util/str.h"
#include "util/banned.h"

static const char *const action_names[] = {"",       "read",       "create",    "edit",
                                           "delete", "administer", "lease from"};

static const char *action_name(enum cf_action action)
{
    return action >= CF_ACTION_READ && action <= CF_ACTION_LEASE ? action_names[action] : "do";
}

bool cf_role_actions(const char *role, uint32_t *actions)
{
    const uint32_t secrets = CF_ACTION_BIT(CF_ACTION_READ) | CF_ACTION_BIT(CF_ACTION_CREATE) |
                             CF_ACTION_BIT(CF_ACTION_EDIT) | CF_ACTION_BIT(CF_ACTION_DELETE);
    if (strcmp(role, "admin") == 0)
        *actions = secrets | CF_ACTION_BIT(CF_ACTION_ADMIN) | CF_ACTION_BIT(CF_ACTION_LEASE);
    else if (strcmp(role, "member") == 0)
        *actions = secrets;
    else if (strcmp(role, "viewer") == 0)
        *actions = CF_ACTION_BIT(CF_ACTION_READ);
    else if (strcmp(role, "no-access") == 0)
        *actions = 0;
    else
        return false;
    return true;
}

enum cf_rc cf_glob_check(const char *glob, const char *field, struct cf_err *err)
{
    size_t n = strlen(glob);
    if (n == 0 || glob[0] != '/' || n > CF_PATH_MAX)
        return cf_err_field(err, CF_EVALIDATION, field,
                            "%s: '%.64s' must be an absolute path glob such as /backend/**", field,
                            glob);
    if (n == 1)
        return CF_OK;
    size_t segments = 0, wildcards = 0;
    for (const char *p = glob + 1; *p;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        bool stars = (len == 1 && p[0] == '*') || (len == 2 && p[0] == '*' && p[1] == '*');
        bool name = len > 0 && len <= CF_SLUG_MAX;
        for (size_t i = 0; name && i < len; i++) {
            char c = p[i];
            name = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_';
        }
        if (!stars && !name)
            return cf_err_field(err, CF_EVALIDATION, field,
                                "%s: '%.64s' has a segment that is neither a folder name, * nor **",
                                field, glob);
        p += len + (slash ? 1 : 0);
        if (slash && !*p)
            return cf_err_field(err, CF_EVALIDATION, field, "%s: '%.64s' ends with '/'", field,
                                glob);
        segments++;
        wildcards += stars;
    }
    /* Matching is linear, but a rule is evaluated on every request: keep rules simple. */
    if (segments > CF_PATH_DEPTH_MAX)
        return cf_err_field(err, CF_EVALIDATION, field,
                            "%s: '%.64s' has %zu segments, over the limit of %d", field, glob,
                            segments, CF_PATH_DEPTH_MAX);
    if (wildcards > CF_GLOB_WILDCARDS_MAX)
        return cf_err_field(err, CF_EVALIDATION, field,
                            "%s: '%.64s' has %zu wildcards (* or **), over the limit of %d", field,
                            glob, wildcards, CF_GLOB_WILDCARDS_MAX);
    return CF_OK;
}

/* A segment of a glob or path starts at s (after a '/') and ends at the next '/' or the end. */
static size_t segment_len(const char *s)
{
    const char *slash = strchr(s, '/');
    return slash ? (size_t)(slash - s) : strlen(s);
}

static const char *segment_next(const char *s, size_t len)
{
    return s[len] ? s + len + 1 : s + len;
}

static bool segment_is(const char *s, size_t len, const char *what)
{
    return len == strlen(what) && memcmp(s, what, len) == 0;
}

/* Wildcard matching over segments, as over characters with '*' (here "**": any number of
 * segments) and '?' (here "*": one segment). On a mismatch only the latest "**" is retried, one
 * segment further on: earlier ones never need to be, because the latest can absorb anything they
 * could. So a match costs at most (glob segments x path segments) steps, however many "**" the
 * glob has. */
static bool match_segments(const char *g, const char *p)
{
    const char *star_g = NULL; /* the glob after the latest "**" */
    const char *star_p = NULL; /* where in the path that "**" currently stops absorbing */
    while (*p) {
        size_t plen = segment_len(p);
        size_t glen = *g ? segment_len(g) : 0;
        if (*g && segment_is(g, glen, "**")) {
            star_g = segment_next(g, glen);
            star_p = p;
            g = star_g;
            continue;
        }
        if (*g && (segment_is(g, glen, "*") || (glen == plen && memcmp(g, p, plen) == 0))) {
            g = segment_next(g, glen);
            p = segment_next(p, plen);
            continue;
        }
        if (!star_g)
            return false;
        /* the latest "**" absorbs one more segment */
        star_p = segment_next(star_p, segment_len(star_p));
        p = star_p;
        g = star_g;
    }
    while (*g && segment_is(g, segment_len(g), "**"))
        g = segment_next(g, segment_len(g));
    return !*g;
}

bool cf_glob_match(const char *glob, const char *path)
{
    if (glob[0] != '/' || path[0] != '/')
        return false;
    return match_segments(glob + 1, path + 1);
}

/* The caller's display name for a refusal: the principal's own when set, else looked up (only when
 * needed: the request path does not load it). */
static void identity_name(struct cf_core *core, const struct cf_principal *who, char *out,
                          size_t size)
{
    struct cf_identity identity;
    struct cf_err ignored;
    snprintf(out, size, "%s", who->name[0] ? who->name : who->id);
    if (who->kind == CF_PRINCIPAL_USER) {
        cf_strlcpy(out, who->email, size); /* a long address is cut in a message */
        return;
    }
    if (!who->name[0] && cf_store_identity_get(core->store, who->id, &identity, &ignored) == CF_OK)
        snprintf(out, size, "%s", identity.name);
}

bool cf_principal_is_admin(const struct cf_principal *who)
{
    if (!who)
        return false;
    if (who->kind == CF_PRINCIPAL_ADMIN)
        return true;
    return who->kind == CF_PRINCIPAL_USER &&
           (strcmp(who->org_role, "owner") == 0 || strcmp(who->org_role, "admin") == 0);
}

/* Appends to m the rules that say what one membership (role and rules) allows: its own rules with
 * their actions narrowed to the role's, or, without rules, one rule allowing the role's actions
 * everywhere (a rule without environment and path also covers project-wide actions). */
static enum cf_rc union_add(struct cf_membership *m, size_t *cap, const struct cf_membership *one,
                            struct cf_err *err)
{
    uint32_t role_actions = 0;
    size_t adding = one->n_rules > 0 ? one->n_rules : 1;
    if (!cf_role_actions(one->role, &role_actions) || role_actions == 0)
        return CF_OK;
    if (m->n_rules + adding > *cap) {
        size_t want = (m->n_rules + adding) * 2;
        struct cf_membership_rule *grown = realloc(m->rules, want * sizeof(*grown));
        if (!grown)
            return cf_err_set(err, CF_ENOMEM, "out of memory");
        m->rules = grown;
        *cap = want;
    }
    if (one->n_rules == 0) {
        memset(&m->rules[m->n_rules], 0, sizeof(*m->rules));
        m->rules[m->n_rules++].actions = role_actions;
        return CF_OK;
    }
    /* Minting credentials from dynamic secrets is not implied by reading or writing secrets: a
     * member gets it only from a rule that names it (and a viewer never). */
    uint32_t ceiling = role_actions;
    if (strcmp(one->role, "member") == 0)
        ceiling |= CF_ACTION_BIT(CF_ACTION_LEASE);
    for (size_t i = 0; i < one->n_rules; i++) {
        m->rules[m->n_rules] = one->rules[i];
        m->rules[m->n_rules++].actions &= ceiling;
    }
    return CF_OK;
}

/* How strong a role is: admin > member > viewer > no-access (unknown roles: weakest). */
static int role_rank(const char *role)
{
    static const char *const ranked[] = {"no-access", "viewer", "member", "admin"};
    for (int i = 3; i >= 0; i--) {
        if (strcmp(role, ranked[i]) == 0)
            return i;
    }
    return -1;
}

/* A user's access to a project is the union of its own membership and those of every group it
 * belongs to: one membership whose role is the strongest of them and whose rules are all of theirs,
 * each narrowed to its own role's actions (union_add), so that cf_authz_check allows exactly what
 * one of them allows. Without group memberships, the user's own membership as it is. */
static enum cf_rc user_membership(struct cf_core *core, const char *user_id, const char *project_id,
                                  struct cf_membership *out, struct cf_err *err)
{
    struct cf_membership own = {0};
    struct cf_membership_list groups = {0};
    size_t cap = 0;
    enum cf_rc rc;

    rc = cf_store_user_membership_get(core->store, user_id, project_id, &own, err);
    if (rc != CF_OK && rc != CF_ENOTFOUND)
        goto out;
    bool has_own = rc == CF_OK;
    rc = cf_store_user_group_memberships(core->store, user_id, project_id, &groups, err);
    if (rc != CF_OK)
        goto out;
    if (groups.n == 0) {
        if (!has_own) {
            rc = cf_err_set(err, CF_ENOTFOUND, "user '%s' is not a member of project '%s'", user_id,
                            project_id);
            goto out;
        }
        *out = own;
        memset(&own, 0, sizeof(own));
        goto out;
    }
    const struct cf_membership *strongest = has_own ? &own : &groups.items[0];
    for (size_t i = 0; i < groups.n; i++) {
        if (role_rank(groups.items[i].role) > role_rank(strongest->role))
            strongest = &groups.items[i];
    }
    memcpy(out->id, strongest->id, sizeof(out->id));
    memcpy(out->project_id, strongest->project_id, sizeof(out->project_id));
    memcpy(out->role, strongest->role, sizeof(out->role));
    cf_strlcpy(out->identity_id, user_id, sizeof(out->identity_id));
    out->created_at = strongest->created_at;
    out->updated_at = strongest->updated_at;
    if (has_own)
        rc = union_add(out, &cap, &own, err);
    for (size_t i = 0; rc == CF_OK && i < groups.n; i++)
        rc = union_add(out, &cap, &groups.items[i], err);
    if (rc != CF_OK)
        cf_membership_release(out);
out:
    cf_membership_list_release(&groups);
    cf_membership_release(&own);
    return rc;
}

enum cf_rc cf_principal_membership(struct cf_core *core, const struct cf_principal *who,
                                   const char *project_id, struct cf_membership *out,
                                   struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    if (who && who->kind == CF_PRINCIPAL_IDENTITY)
        return cf_store_membership_get(core->store, who->id, project_id, out, err);
    if (who && who->kind == CF_PRINCIPAL_USER)
        return user_membership(core, who->id, project_id, out, err);
    return cf_err_set(err, CF_ENOTFOUND, "no membership in project '%s'", project_id);
}

enum cf_rc cf_authz_admin(const struct cf_principal *who, const char *what, struct cf_err *err)
{
    if (cf_principal_is_admin(who))
        return CF_OK;
    return cf_err_set(err, CF_EFORBIDDEN, "only the admin or an org admin may %s", what);
}

/* Describes where an action was refused: "prod:/backend", "environment 'prod'" or "this project".
 * The project is not named: a refusal must read the same whether the project the caller named
 * exists or not (its id would tell), and the caller knows what it named. */
static void place(char *out, size_t size, const char *env_slug, const char *path)
{
    if (env_slug && path)
        snprintf(out, size, "%s:%s", env_slug, path);
    else if (env_slug)
        snprintf(out, size, "environment '%s'", env_slug);
    else
        snprintf(out, size, "this project");
}

enum cf_rc cf_authz_check(struct cf_core *core, const struct cf_principal *who,
                          enum cf_action action, const char *project_id, const struct cf_env *env,
                          const char *path, struct cf_err *err)
{
    struct cf_membership m = {0};
    char where[CF_PATH_MAX + CF_SLUG_MAX + 32];
    char name[CF_NAME_MAX + 1] = "";
    uint32_t allowed = 0;
    enum cf_rc rc;

    if (cf_principal_is_admin(who))
        return CF_OK;
    place(where, sizeof(where), env ? env->slug : NULL, path);
    if (!who || (who->kind != CF_PRINCIPAL_IDENTITY && who->kind != CF_PRINCIPAL_USER) ||
        !project_id)
        return cf_err_set(err, CF_EFORBIDDEN, "not allowed to %s in %s", action_name(action),
                          where);

    const char *kind = who->kind == CF_PRINCIPAL_USER ? "user" : "identity";
    rc = cf_principal_membership(core, who, project_id, &m, err);
    if (rc == CF_ENOTFOUND && cf_access_grant_allows(core, who, action, project_id, env, path))
        return CF_OK;
    if (rc == CF_ENOTFOUND) {
        identity_name(core, who, name, sizeof(name));
        return cf_err_set(err, CF_EFORBIDDEN,
                          "%s \"%s\" is not a member of this project: not allowed to %s in %s",
                          kind, name, action_name(action), where);
    }
    if (rc != CF_OK)
        return rc;
    if (!cf_role_actions(m.role, &allowed))
        allowed = 0;
    /* a member may lease only where a rule names the action (union_add) */
    if (m.n_rules > 0 && strcmp(m.role, "member") == 0)
        allowed |= CF_ACTION_BIT(CF_ACTION_LEASE);
    bool ok = (allowed & CF_ACTION_BIT(action)) != 0;
    if (ok && m.n_rules > 0) {
        /* Rules narrow the role: one of them must cover this action here. A project-wide action
         * (no env or path) is covered only by a rule without an environment and path. Rules name
         * the environment by id: a slug is only what it is called today. */
        ok = false;
        for (size_t i = 0; i < m.n_rules && !ok; i++) {
            const struct cf_membership_rule *r = &m.rules[i];
            bool env_ok = !r->env_id[0] || (env && strcmp(r->env_id, env->id) == 0);
            bool path_ok = !r->path_glob[0] || (path && cf_glob_match(r->path_glob, path));
            ok = (r->actions & CF_ACTION_BIT(action)) && env_ok && path_ok;
        }
    }
    char role[CF_ROLE_MAX + 1];
    memcpy(role, m.role, sizeof(role));
    cf_membership_release(&m);
    /* A live access grant adds to what the membership allows. */
    if (!ok && cf_access_grant_allows(core, who, action, project_id, env, path))
        ok = true;
    if (!ok) {
        identity_name(core, who, name, sizeof(name));
        return cf_err_set(err, CF_EFORBIDDEN, "%s \"%s\" (role %s) is not allowed to %s in %s",
                          kind, name, role, action_name(action), where);
    }
    return CF_OK;
}
