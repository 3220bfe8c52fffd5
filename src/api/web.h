/* The web dashboard (docs/dashboard.md): which request paths are its pages and files, and what to
 * answer for one. The files are embedded at build time (webassets.h); api/server.c sends them with
 * the dashboard's headers (its Content-Security-Policy, caching). Thread-safe (read-only data). */
#ifndef CF_API_WEB_H
#define CF_API_WEB_H

#include <stdbool.h>

#include "api/webassets.h"

/* Whether path (as requested, without the query) belongs to the dashboard: every path but /api,
 * /scim and what is under them. */
bool cf_web_path(const char *path);

/* The file to answer path with: the embedded file of that name; index.html for "/" and for any
 * other path without a file extension (a route of the single-page app); NULL for a missing file
 * (under /assets/ or with an extension). */
const struct cf_web_asset *cf_web_find(const char *path);

#endif
