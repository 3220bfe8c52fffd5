/* The admin token's break-glass switch (admin_token.h). */
#include <string.h>

#include <sodium.h>

#include "auth/admin.h"
#include "core/admin_token.h"
#include "util/banned.h"

enum cf_rc cf_admin_token_usable_owners(struct cf_store *st, int64_t *n, struct cf_err *err)
{
    struct cf_user_list users = {0};
    *n = 0;
    enum cf_rc rc = cf_store_user_list(st, &users, err);
    for (size_t i = 0; rc == CF_OK && i < users.n; i++) {
        const struct cf_user *u = &users.items[i];
        if (strcmp(u->org_role, "owner") == 0 && strcmp(u->status, "active") == 0 &&
            (u->password_hash[0] || u->sso_subject[0]))
            (*n)++;
    }
    for (size_t i = 0; i < users.n; i++)
        sodium_memzero(users.items[i].password_hash, sizeof(users.items[i].password_hash));
    cf_user_list_release(&users);
    return rc;
}

static enum cf_rc state_read(struct cf_store *st, struct cf_admin_token_state *out,
                             struct cf_err *err)
{
    bool disabled = false;
    enum cf_rc rc = cf_admin_token_disabled(st, &disabled, err);
    if (rc == CF_OK)
        rc = cf_admin_token_usable_owners(st, &out->usable_owners, err);
    out->enabled = !disabled;
    return rc;
}

enum cf_rc cf_admin_token_state_get(struct cf_core *core, const struct cf_principal *who,
                                    struct cf_admin_token_state *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = cf_authz_admin(who, "read the admin token's state", err);
    return rc == CF_OK ? state_read(core->store, out, err) : rc;
}

enum cf_rc cf_admin_token_switch(struct cf_core *core, const struct cf_principal *who, bool disable,
                                 struct cf_admin_token_state *out, struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    memset(out, 0, sizeof(*out));
    /* a person answers for the switch: not the token itself, not an org admin */
    if (!who || who->kind != CF_PRINCIPAL_USER || strcmp(who->org_role, "owner") != 0)
        return cf_err_set(err, CF_EFORBIDDEN,
                          "only a signed-in owner may %s the admin token (on the server host: "
                          "coffer operator admin-token %s)",
                          disable ? "disable" : "enable", disable ? "disable" : "enable");
    if (disable) {
        int64_t owners = 0;
        rc = cf_admin_token_usable_owners(core->store, &owners, err);
        if (rc == CF_OK && owners < 1)
            rc = cf_err_set(err, CF_ECONFLICT,
                            "no active owner can sign in (with a password or single sign-on): "
                            "the admin token stays enabled so that nobody is locked out");
    }
    if (rc == CF_OK)
        rc = cf_admin_token_set_disabled(core->store, disable, err);
    if (rc == CF_OK)
        rc = state_read(core->store, out, err);
    return rc;
}
