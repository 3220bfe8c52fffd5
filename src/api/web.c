/* The web dashboard's files (api/web.h): found by path in the embedded table (webassets.h). */
#include <stdlib.h>
#include <string.h>

#include "api/web.h"
#include "util/banned.h"

static int by_path(const void *key, const void *item)
{
    return strcmp(key, ((const struct cf_web_asset *)item)->path);
}

static const struct cf_web_asset *lookup(const char *path)
{
    return bsearch(path, cf_web_assets, cf_web_assets_n, sizeof(cf_web_assets[0]), by_path);
}

bool cf_web_path(const char *path)
{
    static const char *const reserved[] = {"/api", "/scim", "/metrics"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        size_t n = strlen(reserved[i]);
        if (strncmp(path, reserved[i], n) == 0 && (path[n] == '\0' || path[n] == '/'))
            return false;
    }
    return path[0] == '/';
}

const struct cf_web_asset *cf_web_find(const char *path)
{
    const struct cf_web_asset *asset = strcmp(path, "/") == 0 ? NULL : lookup(path);
    if (asset)
        return asset;
    /* A file that is not there (a stale asset name, a typo) is not found; anything else is a
     * route of the app, which index.html serves and the app itself routes. */
    const char *last = strrchr(path, '/');
    if (strncmp(path, "/assets/", strlen("/assets/")) == 0 || (last && strchr(last, '.')))
        return NULL;
    return lookup("/index.html");
}
