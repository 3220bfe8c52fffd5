/* Authentication: turns the Authorization header into a principal. Today only the admin token
 * exists; the machine-identities issue adds access tokens here. Credentials are compared by hash in
 * constant time and never echoed. */
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "api/internal.h"
#include "util/banned.h"

enum cf_rc cf_authn(const uint8_t admin_hash[CF_TOKEN_HASH_BYTES], const char *authorization,
                    struct cf_principal *out, struct cf_err *err)
{
    uint8_t hash[CF_TOKEN_HASH_BYTES];
    memset(out, 0, sizeof(*out));
    if (!authorization || !*authorization)
        return cf_err_set(err, CF_EUNAUTH,
                          "missing credentials: send the header 'Authorization: Bearer <token>'");
    if (strncasecmp(authorization, "Bearer ", 7) != 0)
        return cf_err_set(err, CF_EUNAUTH,
                          "unsupported Authorization scheme: expected 'Bearer <token>'");
    const char *token = authorization + 7;
    while (*token == ' ')
        token++;
    size_t len = strlen(token);
    if (len == 0)
        return cf_err_set(err, CF_EUNAUTH, "empty bearer token");
    cf_token_hash(token, len, hash);
    bool ok = cf_token_hash_equal(hash, admin_hash);
    sodium_memzero(hash, sizeof(hash));
    if (!ok)
        return cf_err_set(err, CF_EUNAUTH, "invalid token: it is not a token this server issued");
    out->kind = CF_PRINCIPAL_ADMIN;
    memcpy(out->name, "admin", sizeof("admin"));
    return CF_OK;
}
