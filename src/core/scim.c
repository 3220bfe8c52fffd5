/* SCIM provisioning (scim.h): tokens, and users over core/users.h with the SCIM record beside. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "core/scim.h"
#include "core/users.h"
#include "crypto/token.h"
#include "util/id.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

/* Provisioning acts as the server: the admin, named "scim" (its audit records name the token). */
static const struct cf_principal scim_actor = {.kind = CF_PRINCIPAL_ADMIN, .name = "scim"};

const struct cf_principal *cf_scim_principal(void)
{
    return &scim_actor;
}

static enum cf_rc require_owner(const struct cf_principal *who, struct cf_err *err)
{
    if (who && (who->kind == CF_PRINCIPAL_ADMIN ||
                (who->kind == CF_PRINCIPAL_USER && strcmp(who->org_role, "owner") == 0)))
        return CF_OK;
    return cf_err_set(err, CF_EFORBIDDEN, "only an owner or the admin may manage SCIM tokens");
}

enum cf_rc cf_scim_token_create(struct cf_core *core, const struct cf_principal *who,
                                const char *name, char token[CF_SCIM_TOKEN_MAX],
                                struct cf_scim_token *out, struct cf_err *err)
{
    char secret[CF_TOKEN_MAX];
    struct cf_scim_token t = {0};
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    token[0] = '\0';
    rc = require_owner(who, err);
    if (rc == CF_OK && (!name || !*name))
        rc = cf_err_field(err, CF_EVALIDATION, "name", "name: required");
    if (rc == CF_OK && (strlen(name) > CF_NAME_MAX || !cf_utf8_valid(name, strlen(name))))
        rc = cf_err_field(err, CF_EVALIDATION, "name", "name: at most %d bytes of valid UTF-8",
                          CF_NAME_MAX);
    if (rc != CF_OK)
        return rc;
    cf_uuid_new(t.id);
    cf_strlcpy(t.name, name, sizeof(t.name));
    cf_strlcpy(t.created_by, who->kind == CF_PRINCIPAL_USER ? who->email : "admin",
               sizeof(t.created_by));
    cf_token_new("", secret, sizeof(secret));
    snprintf(token, CF_SCIM_TOKEN_MAX, "%s%s_%.43s", CF_SCIM_TOKEN_PREFIX, t.id, secret);
    cf_token_hash(token, strlen(token), t.hash);
    t.created_at = cf_now_ms();
    rc = cf_store_scim_token_create(core->store, &t, err);
    if (rc == CF_OK)
        *out = t;
    else
        sodium_memzero(token, CF_SCIM_TOKEN_MAX);
    sodium_memzero(secret, sizeof(secret));
    return rc;
}

enum cf_rc cf_scim_token_list(struct cf_core *core, const struct cf_principal *who,
                              struct cf_scim_token_list *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = require_owner(who, err);
    return rc == CF_OK ? cf_store_scim_token_list(core->store, out, err) : rc;
}

enum cf_rc cf_scim_token_revoke(struct cf_core *core, const struct cf_principal *who,
                                const char *id, struct cf_err *err)
{
    enum cf_rc rc = require_owner(who, err);
    if (rc == CF_OK && (!id || !cf_uuid_valid(id)))
        rc = cf_err_set(err, CF_ENOTFOUND, "SCIM token '%.64s' not found", id ? id : "");
    return rc == CF_OK ? cf_store_scim_token_revoke(core->store, id, err) : rc;
}

enum cf_rc cf_scim_authenticate(struct cf_core *core, const char *authorization,
                                struct cf_scim_token *out, struct cf_err *err)
{
    static const char bearer[] = "Bearer ";
    const size_t prefix = strlen(CF_SCIM_TOKEN_PREFIX);
    uint8_t hash[CF_TOKEN_HASH_BYTES];
    char id[CF_UUID_LEN];
    struct cf_err ignored;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    if (!authorization || strncasecmp(authorization, bearer, strlen(bearer)) != 0)
        return cf_err_set(err, CF_EUNAUTH,
                          "a SCIM token is required: Authorization: Bearer "
                          "coffer_scim_...");
    const char *token = authorization + strlen(bearer);
    size_t len = strlen(token);
    if (strncmp(token, CF_SCIM_TOKEN_PREFIX, prefix) != 0 || len < prefix + CF_UUID_LEN ||
        len >= CF_SCIM_TOKEN_MAX || token[prefix + CF_UUID_LEN - 1] != '_')
        return cf_err_set(err, CF_EUNAUTH,
                          "not a SCIM token: the SCIM routes accept only tokens "
                          "made by coffer scim token create");
    memcpy(id, token + prefix, CF_UUID_LEN - 1);
    id[CF_UUID_LEN - 1] = '\0';
    if (!cf_uuid_valid(id))
        return cf_err_set(err, CF_EUNAUTH, "invalid SCIM token");
    rc = cf_store_scim_token_get(core->store, id, out, &ignored);
    if (rc == CF_ENOTFOUND)
        return cf_err_set(err, CF_EUNAUTH, "invalid SCIM token");
    if (rc != CF_OK)
        return cf_err_set(err, rc, "%s", ignored.msg);
    cf_token_hash(token, len, hash);
    if (!cf_token_hash_equal(hash, out->hash)) {
        memset(out, 0, sizeof(*out));
        return cf_err_set(err, CF_EUNAUTH, "invalid SCIM token");
    }
    if (out->revoked)
        return cf_err_set(err, CF_EUNAUTH, "SCIM token '%s' was revoked", out->id);
    /* at most once a minute: a provisioning cycle sends many requests */
    int64_t now = cf_now_ms();
    if (now - out->last_used_at > 60 * 1000)
        (void)cf_store_scim_token_used(core->store, out->id, now, &ignored);
    return CF_OK;
}

/* Lower-cases text into out (size bytes): CF_EVALIDATION naming field when it does not fit. */
static enum cf_rc lower_copy(const char *text, char *out, size_t size, const char *field,
                             struct cf_err *err)
{
    size_t n = strlen(text);
    if (n == 0 || n >= size)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: required, at most %zu bytes", field,
                            size - 1);
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)((text[i] >= 'A' && text[i] <= 'Z') ? text[i] + 32 : text[i]);
    return CF_OK;
}

/* Fills view->scim for view->user (an empty record when no SCIM client provisioned it). */
static enum cf_rc load_scim(struct cf_core *core, struct cf_scim_user_view *view,
                            struct cf_err *err)
{
    enum cf_rc rc = cf_store_scim_user_get(core->store, view->user.id, &view->scim, err);
    if (rc == CF_ENOTFOUND) {
        memset(&view->scim, 0, sizeof(view->scim));
        rc = CF_OK;
    }
    return rc;
}

/* Applies in's userName and externalId to the SCIM record of user_id, kept in rec. */
static enum cf_rc put_record(struct cf_core *core, const char *user_id,
                             const struct cf_scim_user_input *in, struct cf_scim_user *rec,
                             struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    cf_strlcpy(rec->user_id, user_id, sizeof(rec->user_id));
    if (in->user_name)
        rc = lower_copy(in->user_name, rec->user_name, sizeof(rec->user_name), "userName", err);
    if (rc == CF_OK && in->external_id) {
        if (strlen(in->external_id) >= sizeof(rec->external_id))
            return cf_err_field(err, CF_EVALIDATION, "externalId", "externalId: at most %zu bytes",
                                sizeof(rec->external_id) - 1);
        cf_strlcpy(rec->external_id, in->external_id, sizeof(rec->external_id));
    }
    if (rc == CF_OK && !rec->created_at)
        rec->created_at = cf_now_ms();
    return rc == CF_OK ? cf_store_scim_user_put(core->store, rec, err) : rc;
}

enum cf_rc cf_scim_user_create(struct cf_core *core, const struct cf_scim_user_input *in,
                               struct cf_scim_user_view *out, struct cf_err *err)
{
    struct cf_err ignored;
    struct cf_user gone;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    if (!in->user_name || !*in->user_name)
        return cf_err_field(err, CF_EVALIDATION, "userName", "userName: required");
    rc = cf_users_create(core, &scim_actor, in->email ? in->email : in->user_name,
                         in->name ? in->name : "", NULL, NULL, 0, &out->user, err);
    if (rc == CF_EVALIDATION && strcmp(err->field, "email") == 0 && !in->email)
        rc = cf_err_field(err, CF_EVALIDATION, "userName",
                          "userName: '%.128s' is not an e-mail address, and no emails were given",
                          in->user_name);
    if (rc != CF_OK)
        return rc;
    rc = put_record(core, out->user.id, in, &out->scim, err);
    if (rc == CF_OK && in->active == 0)
        rc = cf_users_update(core, &scim_actor, out->user.id, NULL, NULL, "disabled", &out->user,
                             err);
    if (rc != CF_OK) /* no half-provisioned user: the client will try again */
        (void)cf_users_delete(core, &scim_actor, out->user.id, &gone, &ignored);
    if (rc != CF_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

enum cf_rc cf_scim_user_get(struct cf_core *core, const char *id, struct cf_scim_user_view *out,
                            struct cf_err *err)
{
    enum cf_rc rc;
    memset(out, 0, sizeof(*out));
    if (!id || !cf_uuid_valid(id))
        return cf_err_set(err, CF_ENOTFOUND, "User '%.64s' not found", id ? id : "");
    rc = cf_store_user_get(core->store, id, &out->user, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "User '%s' not found", id);
    if (rc == CF_OK)
        rc = load_scim(core, out, err);
    if (rc != CF_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

enum cf_rc cf_scim_user_find(struct cf_core *core, const char *attribute, const char *value,
                             struct cf_scim_user_view *out, struct cf_err *err)
{
    char lowered[CF_EMAIL_MAX + 1];
    struct cf_scim_user rec;
    struct cf_err ignored;
    enum cf_rc rc = CF_ENOTFOUND;

    memset(out, 0, sizeof(*out));
    if (strcmp(attribute, "externalId") == 0) {
        if (strlen(value) <= CF_SSO_TEXT_MAX)
            rc = cf_store_scim_user_by_external_id(core->store, value, &rec, &ignored);
    } else if (lower_copy(value, lowered, sizeof(lowered), "userName", &ignored) == CF_OK) {
        rc = cf_store_scim_user_by_user_name(core->store, lowered, &rec, &ignored);
        /* a user made before provisioning began (by hand or at a single sign-on) is matched by
         * its e-mail address, so that the client takes it over instead of failing on a
         * duplicate; only one no client claimed yet */
        if (rc == CF_ENOTFOUND &&
            cf_store_user_get_by_email(core->store, lowered, &out->user, &ignored) == CF_OK &&
            cf_store_scim_user_get(core->store, out->user.id, &rec, &ignored) == CF_ENOTFOUND)
            return CF_OK;
    }
    if (rc == CF_OK)
        return cf_scim_user_get(core, rec.user_id, out, err);
    memset(out, 0, sizeof(*out));
    return rc == CF_ENOTFOUND
               ? cf_err_set(err, CF_ENOTFOUND, "no user with %s '%.128s'", attribute, value)
               : cf_err_set(err, rc, "%s", ignored.msg);
}

enum cf_rc cf_scim_user_list(struct cf_core *core, struct cf_scim_user_view **out, size_t *n,
                             struct cf_err *err)
{
    struct cf_user_list users = {0};
    struct cf_scim_user_list recs = {0};
    enum cf_rc rc;

    *out = NULL;
    *n = 0;
    rc = cf_store_user_list(core->store, &users, err);
    if (rc == CF_OK)
        rc = cf_store_scim_user_list(core->store, &recs, err);
    if (rc == CF_OK && users.n > 0) {
        *out = calloc(users.n, sizeof(**out));
        if (!*out)
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    for (size_t i = 0; rc == CF_OK && i < users.n; i++) {
        (*out)[i].user = users.items[i];
        for (size_t j = 0; j < recs.n; j++) {
            if (strcmp(recs.items[j].user_id, users.items[i].id) == 0)
                (*out)[i].scim = recs.items[j];
        }
    }
    if (rc == CF_OK)
        *n = users.n;
    cf_scim_user_list_release(&recs);
    if (users.items)
        sodium_memzero(users.items, users.n * sizeof(*users.items));
    cf_user_list_release(&users);
    return rc;
}

enum cf_rc cf_scim_user_update(struct cf_core *core, const char *id,
                               const struct cf_scim_user_input *in, struct cf_scim_user_view *out,
                               struct cf_err *err)
{
    struct cf_scim_user_view view;
    struct cf_err ignored;
    enum cf_rc rc = cf_scim_user_get(core, id, &view, err);
    const char *status = in->active < 0 ? NULL : in->active ? "active" : "disabled";

    memset(out, 0, sizeof(*out));
    if (rc != CF_OK)
        return rc;
    if (in->name || status)
        rc = cf_users_update(core, &scim_actor, id, in->name, NULL, status, &view.user, err);
    if (rc == CF_OK && in->email && strcasecmp(in->email, view.user.email) != 0)
        rc = cf_err_field(err, CF_EVALIDATION, "emails",
                          "emails: a user's e-mail address cannot be changed through SCIM");
    /* a user taken over by a client gets its record at the first change */
    if (rc == CF_OK && (in->user_name || in->external_id || !view.scim.user_name[0])) {
        struct cf_scim_user_input named = *in;
        if (!view.scim.user_name[0] && !named.user_name)
            named.user_name = view.user.email;
        rc = put_record(core, id, &named, &view.scim, err);
    }
    if (rc == CF_OK && status && strcmp(status, "disabled") == 0)
        (void)cf_store_session_delete_others(core->store, id, NULL, NULL, &ignored);
    if (rc == CF_OK)
        *out = view;
    return rc;
}

enum cf_rc cf_scim_user_delete(struct cf_core *core, const char *id, struct cf_user *out,
                               struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!id || !cf_uuid_valid(id))
        return cf_err_set(err, CF_ENOTFOUND, "User '%.64s' not found", id ? id : "");
    return cf_users_delete(core, &scim_actor, id, out, err);
}
