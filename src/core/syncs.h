/* Secret syncs (docs/syncs.md): one source folder (project, environment, folder path, with its
 * imports and references expanded as a reader sees them) pushed to one destination (provider.h's
 * cf_dest_ops: Azure DevOps, Key Vault, GitHub, a file) through an app connection
 * (core/connections.h; none for a file), in the shapes of Infisical's secret syncs.
 *
 * Managing syncs is a project administrator's right (or the admin token's): a sync copies every
 * value of its source out of Coffer. A run reads the source, maps each key through the key schema
 * ("{{secretKey}}" with a prefix and/or suffix) and the destination's name rule, refuses two keys
 * that map to one name, applies the initial behaviour on the first run, pushes, deletes what it
 * pushed earlier and is gone from the source (unless disableSecretDeletion), records what it
 * pushed (a keyed hash per value, never the value) and reports drift: a name it pushed that the
 * destination no longer holds, or holds with another value or a later change time.
 *
 * Propagation: every change to a project's secrets (set, delete, rollback, import changes) marks
 * every auto-sync of that project pending (cf_syncs_changed), which is simpler than following
 * imports across folders and still correct: a run of a sync whose source did not change finds
 * the destination holding what it last pushed and writes nothing. The worker of src/sync/ claims
 * pending syncs and runs them (cf_syncs_execute). */
#ifndef CF_CORE_SYNCS_H
#define CF_CORE_SYNCS_H

#include <jansson.h>

#include "core/core.h"
#include "store/syncs.h"

/* A new sync, or a change to one (NULL / -1: keep). Strings and JSON borrowed. */
struct cf_sync_spec {
    const char *project;     /* id or slug; create only */
    const char *name;        /* required on create */
    const char *description; /* NULL: "" on create */
    const char *environment; /* slug; required on create */
    const char *secret_path; /* required on create */
    const char *connection_id;
    const json_t *destination_config; /* required on create */
    const json_t *sync_options;       /* NULL: defaults */
    int auto_sync;                    /* -1: keep (true on create), 0 or 1 */
};

/* A sync as shown: the row and the names it refers to. */
struct cf_sync_view {
    struct cf_sync sync;
    char env_slug[CF_SLUG_MAX + 1];
    char env_name[CF_NAME_MAX + 1];
    char connection_app[32];
    char connection_name[CF_NAME_MAX + 1];
};

struct cf_sync_view_list {
    struct cf_sync_view *items;
    size_t n;
};

void cf_sync_view_list_release(struct cf_sync_view_list *l);

/* Creates a sync to destination (a slug cf_dest_find knows) and makes it pending. CF_EVALIDATION
 * naming the field (unknown destination, a configuration the destination refuses, a key schema
 * without {{secretKey}}, an unknown option value, a connection of another app, a connection given
 * to or missing for a destination), CF_EEXIST for a name taken in the project. */
enum cf_rc cf_syncs_create(struct cf_core *core, const struct cf_principal *who,
                           const char *destination, const struct cf_sync_spec *spec,
                           struct cf_sync_view *out, struct cf_err *err);

/* The syncs of a project (id or slug), of one destination when destination is non-NULL. */
enum cf_rc cf_syncs_list(struct cf_core *core, const struct cf_principal *who, const char *project,
                         const char *destination, struct cf_sync_view_list *out,
                         struct cf_err *err);

/* The sync id (of destination when non-NULL: another destination's sync is not found). */
enum cf_rc cf_syncs_get(struct cf_core *core, const struct cf_principal *who,
                        const char *destination, const char *id, struct cf_sync_view *out,
                        struct cf_err *err);

enum cf_rc cf_syncs_update(struct cf_core *core, const struct cf_principal *who,
                           const char *destination, const char *id,
                           const struct cf_sync_spec *change, struct cf_sync_view *out,
                           struct cf_err *err);

/* Deletes the sync (what it pushed stays at the destination). *out is what it was. */
enum cf_rc cf_syncs_delete(struct cf_core *core, const struct cf_principal *who,
                           const char *destination, const char *id, struct cf_sync_view *out,
                           struct cf_err *err);

/* Runs the sync now, whatever its auto-sync setting: marks it pending and runs it on this thread
 * (owner: this server's worker id) unless another run holds it, in which case that run or the next
 * one delivers; a run asked for writes every item, changed or not. *out is the sync afterwards,
 * with the run's outcome in its status. */
enum cf_rc cf_syncs_trigger(struct cf_core *core, const struct cf_principal *who,
                            const char *destination, const char *id, const char *owner,
                            struct cf_sync_view *out, struct cf_err *err);

/* After a committed change to project_id's secrets: marks its auto-syncs pending and wakes this
 * server's worker (core->sync_wake). A failure is logged, not returned: the change itself stands,
 * and "run now" or the next change delivers it. */
void cf_syncs_changed(struct cf_core *core, const char *project_id);
/* Wakes this server's worker after a change that marked its project's auto-syncs pending in its own
 * transaction (cf_store_secret_write, cf_store_change_request_merge); inside a shared write
 * transaction, once that commits (cf_store_after_commit). */
void cf_syncs_wake(struct cf_core *core);

/* Marks every auto-sync pending, at a server's start: a change committed just before a crash, whose
 * mark was lost with the process, is delivered all the same. A run whose source is what the sync
 * last pushed, at a destination found undrifted, writes nothing. A failure is logged. */
void cf_syncs_recover(struct cf_core *core);

/* Claims the sync id for owner when it is pending and due, runs it and records the outcome
 * (retries with exponential backoff, honouring a destination's Retry-After; a new failure told once
 * to the notification channels; every run audited as "secret-syncs.run"). A run that would write
 * exactly what the sync last pushed, to a destination without drift, writes nothing. *ran says
 * whether this call ran it. CF_OK unless the store failed: the run's own outcome is in the sync's
 * status. Thread-safe. */
enum cf_rc cf_syncs_execute(struct cf_core *core, const char *id, const char *owner, bool *ran,
                            struct cf_err *err);

/* The key schema applied to key: CF_EVALIDATION when schema lacks {{secretKey}}. */
enum cf_rc cf_sync_key_apply(const char *schema, const char *key, char *out, size_t size,
                             struct cf_err *err);

#endif
