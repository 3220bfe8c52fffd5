/* Maps method + path to a handler (see internal.h). Patterns are matched segment by segment; a
 * segment starting with ':' captures one path segment. libmicrohttpd has already percent-decoded
 * the path. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "util/banned.h"
#include "util/str.h"

/* The route tables, each with the resource it serves (the OpenAPI document's tag, api/openapi.c).
 */
static const struct {
    const char *resource;
    const struct cf_route *routes;
} tables[] = {
    {"status", cf_routes_status},
    {"auth", cf_routes_auth},
    {"identities", cf_routes_identities},
    {"projects", cf_routes_projects},
    {"environments", cf_routes_environments},
    {"folders", cf_routes_folders},
    {"secrets", cf_routes_secrets},
    {"imports", cf_routes_imports},
    {"tags", cf_routes_tags},
    {"expiry", cf_routes_expiry},
    {"audit", cf_routes_audit},
    {"notifications", cf_routes_notifications},
    {"inventory", cf_routes_inventory},
    {"connections", cf_routes_connections},
    {"syncs", cf_routes_syncs},
    {"rotations", cf_routes_rotations},
    {"sso", cf_routes_sso},
    {"users", cf_routes_users},
    {"mfa", cf_routes_mfa},
    {"admin-token", cf_routes_admin_token},
    {"groups", cf_routes_groups},
    {"scim", cf_routes_scim},
    {"approvals", cf_routes_approvals},
    {"access", cf_routes_access},
    {"metrics", cf_routes_metrics},
    {"dynamic", cf_routes_dynamic},
    {"leaks", cf_routes_leaks},
    {"sys", cf_routes_sys},
    {"openapi", cf_routes_openapi},
};

/* Returns the length of the segment at p (up to '/' or end). */
static size_t segment_len(const char *p)
{
    const char *slash = strchr(p, '/');
    return slash ? (size_t)(slash - p) : strlen(p);
}

/* Matches path (plen bytes, a trailing slash already dropped) against pattern; on success fills
 * names/values (values point into path, with lengths). A literal segment is compared in place, so
 * that the many patterns that differ early cost a few byte compares each. */
static bool match(const char *pattern, const char *path, size_t plen, size_t *n, const char **names,
                  const char **values, size_t *lens)
{
    *n = 0;
    const char *p = path, *end = path + plen, *q = pattern;
    while (*q && p < end) {
        if (*q != '/' || *p != '/')
            return false;
        q++;
        p++;
        size_t ql = segment_len(q);
        if (*q == ':') {
            const char *slash = memchr(p, '/', (size_t)(end - p));
            size_t pl = slash ? (size_t)(slash - p) : (size_t)(end - p);
            if (pl == 0 || *n >= CF_ROUTE_MAX_PARAMS)
                return false;
            names[*n] = q + 1;
            values[*n] = p;
            lens[*n] = pl;
            (*n)++;
            p += pl;
        } else {
            if ((size_t)(end - p) < ql || memcmp(q, p, ql) != 0 || (p + ql < end && p[ql] != '/'))
                return false;
            p += ql;
        }
        q += ql;
    }
    return *q == '\0' && p == end;
}

/* The length of each route's literal start, up to its first ':' segment (its whole pattern when it
 * has none), in table order: a path that does not begin with it cannot match, so one memcmp turns
 * away most of the routes before match() walks their segments. Made once. */
static size_t *literal_lens;
static pthread_once_t literal_once = PTHREAD_ONCE_INIT;

static void literal_init(void)
{
    size_t *lens = malloc(cf_router_count() * sizeof(*lens));
    if (!lens)
        return; /* every route is then walked */
    size_t i = 0;
    for (size_t t = 0; t < CF_ARRAY_SIZE(tables); t++)
        for (const struct cf_route *r = tables[t].routes; r->method; r++)
            lens[i++] = strcspn(r->pattern, ":");
    literal_lens = lens;
}

enum cf_route_match cf_router_match(struct cf_req *req, const char *method, const char *path)
{
    bool path_known = false;
    const char *names[CF_ROUTE_MAX_PARAMS], *values[CF_ROUTE_MAX_PARAMS];
    size_t lens[CF_ROUTE_MAX_PARAMS], n = 0;

    /* A trailing slash is tolerated: Infisical's agent calls login with one. */
    size_t plen = strlen(path);
    if (plen > 1 && path[plen - 1] == '/')
        plen--;
    pthread_once(&literal_once, literal_init);
    size_t index = 0;
    for (size_t t = 0; t < CF_ARRAY_SIZE(tables); t++) {
        for (const struct cf_route *r = tables[t].routes; r->method; r++, index++) {
            if (literal_lens &&
                (plen < literal_lens[index] || memcmp(r->pattern, path, literal_lens[index]) != 0))
                continue;
            if (!match(r->pattern, path, plen, &n, names, values, lens))
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
        for (const struct cf_route *r = tables[t].routes; r->method; r++)
            n++;
    return n;
}

const struct cf_route *cf_router_at(size_t index)
{
    for (size_t t = 0; t < CF_ARRAY_SIZE(tables); t++)
        for (const struct cf_route *r = tables[t].routes; r->method; r++)
            if (index-- == 0)
                return r;
    return NULL;
}

const char *cf_router_resource(size_t index)
{
    for (size_t t = 0; t < CF_ARRAY_SIZE(tables); t++)
        for (const struct cf_route *r = tables[t].routes; r->method; r++)
            if (index-- == 0)
                return tables[t].resource;
    return NULL;
}
