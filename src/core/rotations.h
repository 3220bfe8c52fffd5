/* Secret rotations (docs/rotation.md): a credential at a provider (provider/rotator.h: an Entra ID
 * client secret, a PostgreSQL password) that Coffer renews by itself, on a schedule or on demand,
 * keeping its current value in Coffer secrets (project, environment, folder path and the keys of
 * the secrets mapping), in the shapes of Infisical's secret rotations v2.
 *
 * Managing rotations is a project administrator's right; a rotation or consumer that uses an app
 * connection is the admin's (connections are organisation-wide), as for syncs.
 *
 * A rotation runs as a state machine whose position is on the rotation's row (store/rotations.h),
 * one recorded step at a time, so that a process killed at any step leaves a state the next run
 * continues from:
 *   issue   the intent (the generation to issue) is recorded, then the provider issues, then the
 *           new credential's id is recorded; a retry of this step first revokes what an earlier
 *           attempt issued for that generation and never recorded (list_issued);
 *   store   the new value becomes new versions of the mapped secrets (written by the rotation,
 *           audited, expiresAt = the credential's end); a resume that finds the value lost (it
 *           was never stored) revokes that credential and issues again;
 *   verify  the credential is proved at its own system;
 *   push    each consumer is given the value (read back from the secret when resuming) and
 *           verified with it;
 *   syncs   the syncs of the rotation's folder report success for the new version;
 *   grace   the grace period (default one hour) runs, the old credential still valid;
 *   revoke  the previous credential is revoked at the provider; done.
 * A failure at any step keeps the old credential (nothing still in use is revoked), records the
 * step and its cause, tells the notification channels once per distinct failure, and retries the
 * step with exponential backoff. Every step is audited ("secret-rotations.<step>") and recorded in
 * the rotation's history. */
#ifndef CF_CORE_ROTATIONS_H
#define CF_CORE_ROTATIONS_H

#include <jansson.h>

#include "core/core.h"
#include "store/rotations.h"

#define CF_ROTATION_GRACE_DEFAULT_MS (60 * 60 * 1000)
#define CF_ROTATION_INTERVAL_DAYS_MAX 3650

/* A new rotation, or a change to one (NULL / -1: keep, or the default on create). Strings and JSON
 * borrowed. */
struct cf_rotation_spec {
    const char *project;           /* id or slug; create only */
    const char *name;              /* required on create */
    const char *description;       /* NULL: "" on create */
    const char *environment;       /* slug; create only, required */
    const char *secret_path;       /* create only, required */
    const char *connection_id;     /* create only; required when the rotator needs a connection */
    const json_t *parameters;      /* required on create: the rotator checks it */
    const json_t *secrets_mapping; /* required on create: every output of the rotator -> a key */
    const json_t *consumers;       /* array of {type, connectionId, config}; NULL: [] */
    const char *current_credential_id; /* create only; NULL: none. The credential in use before
                                          the rotation, adopted: looked up at the provider, and
                                          retired by the first rotation like its own */
    int64_t interval_days;             /* -1: keep (0 on create); 0: none */
    int64_t days_before_expiry;        /* -1: keep (0 on create); 0: none */
    int64_t rotate_at_minute;          /* -1: keep (0 on create); minutes after 00:00 UTC */
    int64_t grace_period_ms;           /* -1: keep (one hour on create) */
    int64_t lifetime_ms;               /* -1: keep (0 on create: the provider's default) */
    int auto_rotate;                   /* -1: keep (true on create), 0 or 1 */
};

/* A rotation as shown: the row and the environment's slug. */
struct cf_rotation_view {
    struct cf_rotation rot;
    char env_slug[CF_SLUG_MAX + 1];
};

struct cf_rotation_view_list {
    struct cf_rotation_view *items;
    size_t n;
};

void cf_rotation_view_list_release(struct cf_rotation_view_list *l);

/* Creates a rotation of type (a rotator core->rotator_find knows) and makes it due at once when
 * auto-rotation is on (its first credential is issued by the worker). CF_ENOTFOUND for an unknown
 * type; CF_EVALIDATION naming the field (parameters the rotator refuses, a mapping missing an
 * output or naming an unknown one or an invalid key, an unknown consumer type or configuration,
 * a connection missing, unknown or of another app, a negative grace period or lifetime, a
 * schedule out of range); CF_EEXIST for a name taken in the project; CF_EFORBIDDEN as above. */
enum cf_rc cf_rotations_create(struct cf_core *core, const struct cf_principal *who,
                               const char *type, const struct cf_rotation_spec *spec,
                               struct cf_rotation_view *out, struct cf_err *err);

/* The rotations of a project (id or slug), of one type when type is non-NULL. */
enum cf_rc cf_rotations_list(struct cf_core *core, const struct cf_principal *who,
                             const char *project, const char *type,
                             struct cf_rotation_view_list *out, struct cf_err *err);

/* The rotation id (of type when non-NULL: another type's rotation is not found). A rotation in a
 * project who may not administer is answered as missing. */
enum cf_rc cf_rotations_get(struct cf_core *core, const struct cf_principal *who, const char *type,
                            const char *id, struct cf_rotation_view *out, struct cf_err *err);

/* Changes name, description, parameters, mapping, consumers, schedule, grace period, lifetime or
 * auto-rotation (a rotation in progress continues with the new settings). */
enum cf_rc cf_rotations_update(struct cf_core *core, const struct cf_principal *who,
                               const char *type, const char *id,
                               const struct cf_rotation_spec *change, struct cf_rotation_view *out,
                               struct cf_err *err);

/* Deletes the rotation and its history (the credentials and secrets stay). *out is what it was.
 * CF_ECONFLICT while a rotation is in progress past its issue step (deleting it then would orphan
 * a credential): the caller waits for it to finish or fail. */
enum cf_rc cf_rotations_delete(struct cf_core *core, const struct cf_principal *who,
                               const char *type, const char *id, struct cf_rotation_view *out,
                               struct cf_err *err);

/* Rotates now: asks for a rotation and runs it on this thread as far as it goes without waiting
 * (owner: this server's worker id); what waits (syncs, the grace period) the worker finishes. *out
 * is the rotation afterwards, its status holding the outcome. */
enum cf_rc cf_rotations_trigger(struct cf_core *core, const struct cf_principal *who,
                                const char *type, const char *id, const char *owner,
                                struct cf_rotation_view *out, struct cf_err *err);

/* A dry run: the calls a rotation would make, step by step (rotator.h's plan callbacks of the
 * rotator and each consumer), and the secret writes, told to fn. Nothing is called or written. */
enum cf_rc cf_rotations_dry_run(struct cf_core *core, const struct cf_principal *who,
                                const char *type, const char *id,
                                void (*fn)(void *ctx, const char *step, const char *method,
                                           const char *target, const char *purpose),
                                void *ctx, struct cf_err *err);

/* The rotation's history, newest first, at most limit events. */
enum cf_rc cf_rotations_history(struct cf_core *core, const struct cf_principal *who,
                                const char *id, size_t limit, struct cf_rotation_event_list *out,
                                struct cf_err *err);

/* Claims the rotation id for owner when it is due and advances its state machine as far as it goes
 * (to done, to a wait, or to a failure, recorded with its backoff). *ran says whether this call
 * claimed it. CF_OK unless the store failed: the outcome is in the rotation's status. Thread-safe.
 */
enum cf_rc cf_rotations_execute(struct cf_core *core, const char *id, const char *owner, bool *ran,
                                struct cf_err *err);

/* When rot should next rotate after base (Unix ms): the interval from its last rotation (or
 * creation) landing on rotate_at_minute UTC of that day, or days_before_expiry before the
 * current credential's expiry, whichever comes first; 0 when neither applies. */
int64_t cf_rotation_next_at(const struct cf_rotation *rot);

#endif
