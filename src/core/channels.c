/* Notification channels, thresholds and the delivery log (see channels.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/channels.h"
#include "crypto/serverkey.h"
#include "util/id.h"
#include "util/log.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

#define WHAT "manage notifications"

enum cf_rc cf_channels_project(struct cf_core *core, const struct cf_principal *who,
                               const char *id_or_slug, char id[CF_UUID_LEN], struct cf_err *err)
{
    struct cf_project project = {0};
    enum cf_rc rc = cf_authz_admin(who, WHAT, err);
    if (rc == CF_OK)
        rc = cf_store_project_get(core->store, id_or_slug, &project, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "Project with ID '%s' not found", id_or_slug);
    if (rc == CF_OK)
        cf_strlcpy(id, project.id, CF_UUID_LEN);
    cf_project_release(&project);
    return rc;
}

/* A new webhook signing secret: "whsec_" and 24 random bytes in hex. */
static void generate_secret(char out[CF_CHANNEL_GENERATED_SECRET_SIZE])
{
    uint8_t raw[24];
    randombytes_buf(raw, sizeof(raw));
    memcpy(out, "whsec_", 6);
    sodium_bin2hex(out + 6, CF_CHANNEL_GENERATED_SECRET_SIZE - 6, raw, sizeof(raw));
    sodium_memzero(raw, sizeof(raw));
}

enum cf_rc cf_channels_add(struct cf_core *core, const struct cf_principal *who,
                           const struct cf_channel_spec *spec, struct cf_channel *out,
                           char generated[CF_CHANNEL_GENERATED_SECRET_SIZE], struct cf_err *err)
{
    const char *secret = spec->signing_secret;
    const char *target = spec->target ? spec->target : "";
    generated[0] = '\0';
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = cf_authz_admin(who, WHAT, err);
    if (rc == CF_OK && strlen(target) > CF_CHANNEL_TARGET_MAX)
        rc = cf_err_field(err, CF_EVALIDATION, "url", "url: at most %d characters",
                          CF_CHANNEL_TARGET_MAX);
    if (rc == CF_OK && spec->name && strlen(spec->name) > CF_NAME_MAX)
        rc = cf_err_field(err, CF_EVALIDATION, "name", "name: at most %d characters", CF_NAME_MAX);
    if (rc == CF_OK && secret &&
        (strlen(secret) < CF_CHANNEL_SECRET_MIN || strlen(secret) > CF_CHANNEL_SECRET_MAX))
        rc =
            cf_err_field(err, CF_EVALIDATION, "signingSecret", "signingSecret: %d to %d characters",
                         CF_CHANNEL_SECRET_MIN, CF_CHANNEL_SECRET_MAX);
    if (rc != CF_OK)
        return rc;
    cf_uuid_new(out->id);
    cf_strlcpy(out->project_id, spec->project_id ? spec->project_id : "", sizeof(out->project_id));
    cf_strlcpy(out->type, spec->type, sizeof(out->type));
    cf_strlcpy(out->name, spec->name && *spec->name ? spec->name : spec->type, sizeof(out->name));
    cf_strlcpy(out->target, target, sizeof(out->target));
    out->created_at = cf_now_ms();
    if (strcmp(spec->type, "webhook") == 0) {
        /* Signed: the receiver checks X-Coffer-Signature with this secret, shown once. */
        if (!secret) {
            generate_secret(generated);
            secret = generated;
        }
        char context[CF_CREDENTIAL_CONTEXT_MAX];
        snprintf(context, sizeof(context), "channel:%s", out->id);
        rc = cf_credential_seal(core->store, core->keyring, context, secret, out->signing_secret,
                                sizeof(out->signing_secret), err);
    }
    if (rc == CF_OK)
        rc = cf_store_channel_create(core->store, out, err);
    if (rc != CF_OK)
        sodium_memzero(generated, CF_CHANNEL_GENERATED_SECRET_SIZE);
    return rc;
}

enum cf_rc cf_channels_list(struct cf_core *core, const struct cf_principal *who,
                            const char *project_id, struct cf_channel_list *out, struct cf_err *err)
{
    enum cf_rc rc = cf_authz_admin(who, WHAT, err);
    return rc == CF_OK ? cf_store_channel_list(core->store, project_id, out, err) : rc;
}

enum cf_rc cf_channels_delete(struct cf_core *core, const struct cf_principal *who,
                              const char *channel_id, struct cf_err *err)
{
    enum cf_rc rc = cf_authz_admin(who, WHAT, err);
    return rc == CF_OK ? cf_store_channel_delete(core->store, channel_id, err) : rc;
}

enum cf_rc cf_channels_thresholds_get(struct cf_core *core, const struct cf_principal *who,
                                      const char *project_id, const char *fallback, char *out,
                                      size_t size, struct cf_err *err)
{
    enum cf_rc rc = cf_authz_admin(who, WHAT, err);
    if (rc != CF_OK)
        return rc;
    struct cf_err missing;
    if (cf_store_notify_thresholds_get(core->store, project_id, out, size, &missing) != CF_OK)
        cf_strlcpy(out, fallback, size);
    return CF_OK;
}

enum cf_rc cf_channels_thresholds_put(struct cf_core *core, const struct cf_principal *who,
                                      const char *project_id, const char *thresholds,
                                      struct cf_err *err)
{
    enum cf_rc rc = cf_authz_admin(who, WHAT, err);
    return rc == CF_OK ? cf_store_notify_thresholds_put(core->store, project_id, thresholds, err)
                       : rc;
}

enum cf_rc cf_channels_deliveries(struct cf_core *core, const struct cf_principal *who,
                                  const char *project_id, const char *state, size_t limit,
                                  size_t offset, struct cf_notice_list *out, struct cf_err *err)
{
    enum cf_rc rc = cf_authz_admin(who, WHAT, err);
    if (rc != CF_OK)
        return rc;
    if (state && strcmp(state, "pending") != 0 && strcmp(state, "delivered") != 0 &&
        strcmp(state, "failed") != 0)
        return cf_err_field(err, CF_EVALIDATION, "status",
                            "status: pending, delivered or failed, not '%.32s'", state);
    return cf_store_notice_list(core->store, project_id, state, limit, offset, out, err);
}

void cf_channels_alert(struct cf_core *core, const char *project_id, const char *item_key,
                       const char *threshold, const char *message, const char *item_json)
{
    struct cf_store *st = core->store;
    struct cf_channel_list chs = {0};
    struct cf_err err;
    struct cf_notice *n = calloc(1, sizeof(*n));
    cf_err_clear(&err);
    if (!n || cf_store_channel_list(st, NULL, &chs, &err) != CF_OK) {
        free(n);
        return;
    }
    cf_strlcpy(n->item_key, item_key, sizeof(n->item_key));
    cf_strlcpy(n->threshold, threshold, sizeof(n->threshold));
    cf_strlcpy(n->project_id, project_id, sizeof(n->project_id));
    cf_strlcpy(n->message, message, sizeof(n->message));
    cf_strlcpy(n->item, item_json ? item_json : "{}", sizeof(n->item));
    n->created_at = cf_now_ms();
    for (size_t i = 0; i < chs.n; i++) {
        bool created = false;
        if (chs.items[i].project_id[0] && strcmp(chs.items[i].project_id, project_id) != 0)
            continue;
        cf_uuid_new(n->id);
        cf_strlcpy(n->channel_id, chs.items[i].id, sizeof(n->channel_id));
        if (cf_store_notice_claim(st, n, &created, &err) != CF_OK)
            cf_log(CF_LOG_ERROR, "%s notice not stored: %s", threshold, err.msg);
    }
    cf_channel_list_release(&chs);
    free(n);
}
