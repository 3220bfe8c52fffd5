/* SCIM 2.0 provisioning (RFC 7643/7644; the HTTP side is api/scim.c): an identity provider (Entra
 * ID's provisioning service) creates, updates, deactivates and deletes users and groups through
 * the protocol's resources, authenticated by a SCIM token.
 *
 * A SCIM token ("coffer_scim_<id>_<43 base64url characters>") is made by an owner (or the admin
 * token), shown once, stored as a keyed hash, listed and revoked; it is accepted by the SCIM routes
 * only (cf_authn does not know it), and they accept nothing else. Behind the token, provisioning
 * acts as the server itself: the users' and groups' own rules apply (the last active owner is kept,
 * e-mail addresses and group names are unique), and the audit log names the token.
 *
 * Provisioned users are single sign-on users: they have no password, and are recorded with the
 * userName and externalId the client gave (struct cf_scim_user), so that the client finds them
 * again by either. A deactivated (active false) or deleted user's sessions and tokens fail on their
 * next request (core/users.h). Outputs are filled by the callee; lists are released with their
 * store.h release functions. Thread-safe. */
#ifndef CF_CORE_SCIM_H
#define CF_CORE_SCIM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"

#define CF_SCIM_TOKEN_PREFIX "coffer_scim_"
/* "coffer_scim_" + id + "_" + 43 base64url characters, with room to spare and the NUL */
#define CF_SCIM_TOKEN_MAX 128

/* Makes a SCIM token named name (required, field "name"); who must be an owner or the admin.
 * token receives it (CF_SCIM_TOKEN_MAX bytes; shown once, wiped by the caller). */
enum cf_rc cf_scim_token_create(struct cf_core *core, const struct cf_principal *who,
                                const char *name, char token[CF_SCIM_TOKEN_MAX],
                                struct cf_scim_token *out, struct cf_err *err);
enum cf_rc cf_scim_token_list(struct cf_core *core, const struct cf_principal *who,
                              struct cf_scim_token_list *out, struct cf_err *err);
/* Revokes a token at once (CF_ENOTFOUND naming it when unknown). */
enum cf_rc cf_scim_token_revoke(struct cf_core *core, const struct cf_principal *who,
                                const char *id, struct cf_err *err);

/* Authenticates an Authorization header's value ("Bearer coffer_scim_..."): CF_OK with out the
 * token's record, CF_EUNAUTH naming the cause (missing, not a SCIM token, unknown, revoked)
 * otherwise. Never quotes the credential. */
enum cf_rc cf_scim_authenticate(struct cf_core *core, const char *authorization,
                                struct cf_scim_token *out, struct cf_err *err);

/* What a SCIM request says of a user; NULL (active: -1) leaves a field as it is. user_name is
 * required to create; email defaults to user_name; external_id "" removes it. */
struct cf_scim_user_input {
    const char *user_name;
    const char *external_id;
    const char *email;
    const char *name;
    int active; /* 1, 0, or -1 */
};

/* A user as SCIM shows it: the user, and its SCIM record (user_name "" when no SCIM client
 * provisioned it: userName is then its e-mail address). */
struct cf_scim_user_view {
    struct cf_user user;
    struct cf_scim_user scim;
};

/* Provisions a user: a member without a password, active unless in->active is 0. CF_EEXIST (409)
 * when the userName, externalId or e-mail belongs to another user. */
enum cf_rc cf_scim_user_create(struct cf_core *core, const struct cf_scim_user_input *in,
                               struct cf_scim_user_view *out, struct cf_err *err);
/* The user with this id (any user of the organisation). CF_ENOTFOUND naming it. */
enum cf_rc cf_scim_user_get(struct cf_core *core, const char *id, struct cf_scim_user_view *out,
                            struct cf_err *err);
/* The user whose userName (case-insensitive; a user no SCIM client provisioned matches by e-mail
 * address) or externalId is value; attribute is "userName" or "externalId". CF_ENOTFOUND when
 * none. */
enum cf_rc cf_scim_user_find(struct cf_core *core, const char *attribute, const char *value,
                             struct cf_scim_user_view *out, struct cf_err *err);
/* Every user, by e-mail: *out (malloc'd array of *n views, freed by the caller with free()). */
enum cf_rc cf_scim_user_list(struct cf_core *core, struct cf_scim_user_view **out, size_t *n,
                             struct cf_err *err);
/* Changes what in says. active 0 deprovisions: the user is disabled, its sessions end, and its
 * personal access tokens fail from their next request; active 1 enables it again. */
enum cf_rc cf_scim_user_update(struct cf_core *core, const char *id,
                               const struct cf_scim_user_input *in, struct cf_scim_user_view *out,
                               struct cf_err *err);
/* Deletes the user with its memberships, sessions and tokens; out is the user as it was. */
enum cf_rc cf_scim_user_delete(struct cf_core *core, const char *id, struct cf_user *out,
                               struct cf_err *err);

/* Groups through SCIM act as their administrators do (core/groups.h) on behalf of the server: this
 * is the principal the SCIM handlers pass to cf_groups_*. */
const struct cf_principal *cf_scim_principal(void);

#endif
