/* Expiry notification channels, a project's thresholds and the delivery log
 * (docs/notifications.md): the domain side of the notifications API. A webhook channel's signing
 * secret is sealed at rest (crypto/serverkey.h) and, when the caller gives none, generated here and
 * shown once. Every operation is server administration: the admin only (cf_authz_admin, "manage
 * notifications"). Which destinations a channel may name (cf_channel_check) and the thresholds'
 * syntax (cf_notify_thresholds_parse) are the notifier's rules (notify/notify.h): the caller checks
 * them. */
#ifndef CF_CORE_CHANNELS_H
#define CF_CORE_CHANNELS_H

#include <stddef.h>

#include "core/core.h"

/* "whsec_" and 48 hex digits, NUL-terminated, with room to spare. */
#define CF_CHANNEL_GENERATED_SECRET_SIZE 80
#define CF_CHANNEL_SECRET_MIN 16
#define CF_CHANNEL_SECRET_MAX 128

/* The project id_or_slug names, its id into id. CF_ENOTFOUND in Infisical's wording. */
enum cf_rc cf_channels_project(struct cf_core *core, const struct cf_principal *who,
                               const char *id_or_slug, char id[CF_UUID_LEN], struct cf_err *err);

/* A channel to add; strings borrowed. type and target already passed cf_channel_check. */
struct cf_channel_spec {
    const char *project_id;     /* "" or NULL: server-wide */
    const char *type;           /* "webhook", "slack", "teams", "email" */
    const char *name;           /* NULL or "": the type */
    const char *target;         /* URL, or comma-separated recipients */
    const char *signing_secret; /* webhook only; NULL: one is generated into generated */
};

/* Checks the sizes, seals the webhook's signing secret and stores the channel; *out is what was
 * stored (its signing secret sealed). generated receives the generated signing secret ("" when none
 * was generated): a credential to show once, the caller wipes it with sodium_memzero.
 * CF_EVALIDATION naming the field. */
enum cf_rc cf_channels_add(struct cf_core *core, const struct cf_principal *who,
                           const struct cf_channel_spec *spec, struct cf_channel *out,
                           char generated[CF_CHANNEL_GENERATED_SECRET_SIZE], struct cf_err *err);

/* Every channel (project_id NULL), or a project's. Release *out with cf_channel_list_release. */
enum cf_rc cf_channels_list(struct cf_core *core, const struct cf_principal *who,
                            const char *project_id, struct cf_channel_list *out,
                            struct cf_err *err);

enum cf_rc cf_channels_delete(struct cf_core *core, const struct cf_principal *who,
                              const char *channel_id, struct cf_err *err);

/* A project's thresholds text ("30d,7d,1d") into out (size bytes); fallback when the project has
 * none of its own or they cannot be read. */
enum cf_rc cf_channels_thresholds_get(struct cf_core *core, const struct cf_principal *who,
                                      const char *project_id, const char *fallback, char *out,
                                      size_t size, struct cf_err *err);

/* Stores a project's thresholds, normalised by cf_notify_thresholds_parse. */
enum cf_rc cf_channels_thresholds_put(struct cf_core *core, const struct cf_principal *who,
                                      const char *project_id, const char *thresholds,
                                      struct cf_err *err);

/* The delivery log, newest first: of one project's channels or (project_id NULL) all, of one state
 * ("pending", "delivered", "failed"; NULL: any), limit from offset. CF_EVALIDATION for another
 * state. Release *out with cf_notice_list_release. */
enum cf_rc cf_channels_deliveries(struct cf_core *core, const struct cf_principal *who,
                                  const char *project_id, const char *state, size_t limit,
                                  size_t offset, struct cf_notice_list *out, struct cf_err *err);

/* Queues a failure notice (threshold: its kind, "sync-failed", "rotation-failed") on every channel
 * of project_id and every server-wide channel, once per item_key and channel (the store claims each
 * notice once, see notices in store.h): the caller puts the failure's hash in item_key so that a
 * new failure is told and a repeated one is not. message and item_json (the item as JSON text) hold
 * no secret. Failures are logged, not returned: an alert that cannot be queued must not change the
 * outcome of what failed. */
void cf_channels_alert(struct cf_core *core, const char *project_id, const char *item_key,
                       const char *threshold, const char *message, const char *item_json);

#endif
