/* The web dashboard's files, embedded at build time by scripts/web_embed.py from web/ (the
 * generated webassets.c): served by api/web.c. docs/dashboard.md. */
#ifndef CF_API_WEBASSETS_H
#define CF_API_WEBASSETS_H

#include <stdbool.h>
#include <stddef.h>

struct cf_web_asset {
    const char *path;         /* "/index.html", "/assets/index-3f2a9c1b.js" */
    const char *content_type; /* with its charset where it has one */
    bool immutable;           /* a content-hashed name: cached for a year */
    const unsigned char *data;
    size_t len;
    const unsigned char *gzip; /* the same bytes gzip-compressed, or NULL when that saves little */
    size_t gzip_len;
};

/* The files, ending with an entry whose path is NULL; sorted by path. */
extern const struct cf_web_asset cf_web_assets[];
extern const size_t cf_web_assets_n;
/* NULL when the dashboard is built in; otherwise why it is not (no Node.js at build time, ...). */
extern const char *const cf_web_missing;

#endif
