/* Authentication: turns the Authorization header into a principal. A JWT-shaped bearer token is a
 * machine identity's access token (auth/token.h: signature, then the stored record); anything else
 * is compared with the admin token's hash. Credentials are compared by hash in constant time and
 * never echoed. */
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "api/internal.h"
#include "auth/token.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

static enum cf_rc identity_principal(struct cf_core *core, const char *token, const char *client_ip,
                                     struct cf_principal *out, struct cf_err *err)
{
    struct cf_access_token record;
    /* The token's record is all that decides: deleting an identity deletes its tokens. Its name is
     * looked up only when a refusal needs it (core/authz.c), not on every request. */
    enum cf_rc rc = cf_token_check(core->store, core->keyring, token, client_ip, cf_now_ms(), true,
                                   &record, err);
    if (rc != CF_OK)
        return rc;
    out->kind = CF_PRINCIPAL_IDENTITY;
    memcpy(out->id, record.identity_id, sizeof(out->id));
    memcpy(out->token_id, record.id, sizeof(out->token_id));
    return CF_OK;
}

enum cf_rc cf_authn(struct cf_core *core, const uint8_t admin_hash[CF_TOKEN_HASH_BYTES],
                    const char *authorization, const char *client_ip, struct cf_principal *out,
                    struct cf_err *err)
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
    bool admin = cf_token_hash_equal(hash, admin_hash);
    sodium_memzero(hash, sizeof(hash));
    if (admin) {
        out->kind = CF_PRINCIPAL_ADMIN;
        memcpy(out->name, "admin", sizeof("admin"));
        return CF_OK;
    }
    if (cf_token_is_access_token(token))
        return identity_principal(core, token, client_ip, out, err);
    return cf_err_set(err, CF_EUNAUTH, "invalid token: it is not a token this server issued");
}
