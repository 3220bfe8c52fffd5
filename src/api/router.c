/* Maps method + path to a handler (see internal.h). Patterns are matched segment by segment; a
 * segment starting with ':' captures one path segment. libmicrohttpd has already percent-decoded
 * the path. */
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "util/banned.h"
#include "util/str.h"

static const struct cf_route *const tables[] = {
    cf_routes_status,       cf_routes_auth,        cf_routes_identities, cf_routes_projects,
    cf_routes_environments, cf_routes_folders,     cf_routes_secrets,    cf_routes_imports,
    cf_routes_tags,         cf_routes_expiry,      cf_routes_audit,      cf_routes_notifications,
    cf_routes_inventory,    cf_routes_connections, cf_routes_syncs,      cf_routes_rotations,
    cf_routes_sso,          cf_routes_users,       cf_routes_mfa,        cf_routes_admin_token,
    cf_routes_groups,       cf_routes_scim,        cf_routes_approvals,  cf_routes_access,
    cf_routes_metrics,      cf_routes_dynamic,     cf_routes_sys,
};

/* Returns the length of the segment at p (up to '/' or end). */
static size_t segment_len(const char *p)
{
    const char *slash = strchr(p, '/');
    return slash ? (size_t)(slash - p) : strlen(p);
}

/* Matches path against pattern; on success fills names/values (values point into path, with
 * lengths). */
static bool match(const char *pattern, const char *path, size_t *n, const char **names,
                  const char **values, size_t *lens)
{
    *n = 0;
    /* A trailing slash is tolerated: Infisical's agent calls login with one. */
    size_t plen = strlen(path);
    if (plen > 1 && path[plen - 1] == '/')
        plen--;
    const char *p = path, *end = path + plen, *q = pattern;
    while (*q && p < end) {
        if (*q != '/' || *p != '/')
            return false;
        q++;
        p++;
        size_t ql = segment_len(q);
        size_t pl = segment_len(p);
        if (p + pl > end)
            pl = (size_t)(end - p);
        if (*q == ':') {
            if (pl == 0 || *n >= CF_ROUTE_MAX_PARAMS)
                return false;
            names[*n] = q + 1;
            values[*n] = p;
            lens[*n] = pl;
            (*n)++;
        } else if (ql != pl || memcmp(q, p, pl) != 0) {
            return false;
        }
        q += ql;
        p += pl;
    }
    return *q == '\0' && p == end;
}

enum cf_route_match cf_router_match(struct cf_req *req, const char *method, const char *path)
{
    bool path_known = false;
    const char *names[CF_ROUTE_MAX_PARAMS], *values[CF_ROUTE_MAX_PARAMS];
    size_t lens[CF_ROUTE_MAX_PARAMS], n = 0;

    size_t index = 0;
    for (size_t t = 0; t < CF_ARRAY_SIZE(tables); t++) {
        for (const struct cf_route *r = tables[t]; r->method; r++, index++) {
            if (!match(r->pattern, path, &n, names, values, lens))
                continue;
            path_known = true;
            if (strcmp(r->method, method) != 0)
                continue;
            req->route = r;
            req->route_index = index;
            req->n_params = 0;
            for (size_t i = 0; i < n; i++) {
                char *v = malloc(lens[i] + 1);
                if (!v)
                    return CF_ROUTE_NO_PATH;
                memcpy(v, values[i], lens[i]);
                v[lens[i]] = '\0';
                /* names[i] points into the pattern: it runs to the next '/' or the end. */
                req->param_names[i] = names[i];
                req->param_values[i] = v;
                req->n_params++;
            }
            return CF_ROUTE_FOUND;
        }
    }
    return path_known ? CF_ROUTE_NO_METHOD : CF_ROUTE_NO_PATH;
}

size_t cf_router_count(void)
{
    size_t n = 0;
    for (size_t t = 0; t < CF_ARRAY_SIZE(tables); t++)
        for (const struct cf_route *r = tables[t]; r->method; r++)
            n++;
    return n;
}

const struct cf_route *cf_router_at(size_t index)
{
    for (size_t t = 0; t < CF_ARRAY_SIZE(tables); t++)
        for (const struct cf_route *r = tables[t]; r->method; r++)
            if (index-- == 0)
                return r;
    return NULL;
}
