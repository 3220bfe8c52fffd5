/* The bootstrap admin token as a break-glass credential (docs/users.md "The admin token as
 * break-glass"): once owners exist, an owner may disable it, so that no shared never-expiring
 * credential works day to day; it is re-enabled by an owner, or on the server host by `coffer
 * operator admin-token enable` (which writes the store directly, for an organisation that lost its
 * owners' sign-in, e.g. its identity provider). Disabling is refused unless at least one active
 * owner has a usable sign-in (a password or a single sign-on link), so that nobody locks the
 * organisation out. Thread-safe. */
#ifndef CF_CORE_ADMIN_TOKEN_H
#define CF_CORE_ADMIN_TOKEN_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"

struct cf_admin_token_state {
    bool enabled;
    int64_t usable_owners; /* active owners with a password or a single sign-on link */
};

/* Counts the active owners with a usable sign-in into *n (for the operator command too). */
enum cf_rc cf_admin_token_usable_owners(struct cf_store *st, int64_t *n, struct cf_err *err);

/* The switch's state: administrators (the admin token, owners, admins). */
enum cf_rc cf_admin_token_state_get(struct cf_core *core, const struct cf_principal *who,
                                    struct cf_admin_token_state *out, struct cf_err *err);

/* Disables (disable true) or enables the admin token: a signed-in owner only (CF_EFORBIDDEN
 * otherwise). Disabling is CF_ECONFLICT without a usable owner. out receives the new state. */
enum cf_rc cf_admin_token_switch(struct cf_core *core, const struct cf_principal *who, bool disable,
                                 struct cf_admin_token_state *out, struct cf_err *err);

#endif
