/* The store's part of secret rotations (docs/rotation.md): the rotations with the persistent state
 * of their state machine, and their history (one row per step outcome). A rotation is claimed by
 * one node at a time for a lease (cf_store_rotation_claim), like a sync; every step's outcome is
 * written with cf_store_rotation_save, which refuses a writer that no longer holds the claim, so
 * that a node whose lease ran out cannot overwrite what another node did since. No secret value is
 * ever written here: a credential's value lives only in the versions of the mapped secrets. */
#ifndef CF_STORE_ROTATIONS_H
#define CF_STORE_ROTATIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"
#include "util/err.h"
#include "util/id.h"

#define CF_ROTATION_TYPE_MAX 48
#define CF_ROTATION_PARAMS_MAX 4096
#define CF_ROTATION_MAPPING_MAX 2048
#define CF_ROTATION_CONSUMERS_MAX 8192
#define CF_ROTATION_ERROR_MAX 512
#define CF_ROTATION_DESCRIPTION_MAX 1024
#define CF_ROTATION_CRED_ID_MAX 128 /* as provider/rotator.h CF_ROTATED_ID_MAX */
#define CF_ROTATION_STEP_MAX 16

struct cf_rotation {
    char id[CF_UUID_LEN];
    char project_id[CF_UUID_LEN];
    char name[CF_NAME_MAX + 1];
    char description[CF_ROTATION_DESCRIPTION_MAX + 1];
    char env_id[CF_UUID_LEN];
    char folder_path[CF_PATH_MAX + 1];
    char type[CF_ROTATION_TYPE_MAX + 1];
    char connection_id[CF_UUID_LEN];                   /* "": none */
    char parameters[CF_ROTATION_PARAMS_MAX + 1];       /* JSON object */
    char secrets_mapping[CF_ROTATION_MAPPING_MAX + 1]; /* JSON object: output -> secret key */
    char consumers[CF_ROTATION_CONSUMERS_MAX + 1];     /* JSON array */
    int64_t interval_days;
    int64_t days_before_expiry;
    int64_t rotate_at_minute; /* minutes after 00:00 UTC */
    int64_t grace_period_ms;
    int64_t lifetime_ms;
    bool auto_rotate;
    /* The credential in use, and the one it replaced until that is revoked. */
    int64_t generation;
    char current_cred_id[CF_ROTATION_CRED_ID_MAX];
    int64_t current_expires_at;
    char previous_cred_id[CF_ROTATION_CRED_ID_MAX];
    /* The rotation in progress. */
    char pending_step[CF_ROTATION_STEP_MAX + 1]; /* "": idle */
    int64_t pending_generation;
    char pending_cred_id[CF_ROTATION_CRED_ID_MAX];
    int64_t pending_expires_at;
    int64_t pending_version;
    int64_t pending_consumer;
    int64_t grace_until;
    int64_t step_started_at;
    int64_t step_attempts;
    int64_t next_attempt_at;
    char last_error[CF_ROTATION_ERROR_MAX + 1];
    char last_error_cause[32];
    char last_error_step[CF_ROTATION_STEP_MAX + 1];
    char notified_error[65];
    char status[16]; /* "idle", "rotating", "failed", "succeeded" */
    bool run_requested;
    int64_t last_rotated_at;
    int64_t next_rotation_at; /* 0: none scheduled */
    char claim_owner[CF_UUID_LEN];
    int64_t claim_until;
    int64_t created_at;
    int64_t updated_at;
};

struct cf_rotation_list {
    struct cf_rotation *items;
    size_t n;
};

/* One step outcome. */
struct cf_rotation_event {
    char rotation_id[CF_UUID_LEN];
    int64_t generation;
    char step[CF_ROTATION_STEP_MAX + 1];
    char outcome[16]; /* "ok", "failed", "waiting" */
    char cause[32];
    char message[CF_ROTATION_ERROR_MAX + 1]; /* no secret value */
    char credential_id[CF_ROTATION_CRED_ID_MAX];
    int64_t at;
};

struct cf_rotation_event_list {
    struct cf_rotation_event *items;
    size_t n;
};

void cf_rotation_list_release(struct cf_rotation_list *l);
void cf_rotation_event_list_release(struct cf_rotation_event_list *l);

/* Stores a new rotation (its state as given). CF_EEXIST when the project has a rotation of that
 * name. */
enum cf_rc cf_store_rotation_create(struct cf_store *st, const struct cf_rotation *rot,
                                    struct cf_err *err);
/* CF_ENOTFOUND "Secret rotation with ID 'x' not found". */
enum cf_rc cf_store_rotation_get(struct cf_store *st, const char *id, struct cf_rotation *out,
                                 struct cf_err *err);
/* A project's rotations (project_id NULL: every rotation), by name. */
enum cf_rc cf_store_rotation_list(struct cf_store *st, const char *project_id,
                                  struct cf_rotation_list *out, struct cf_err *err);
/* Replaces what a caller may change (name, description, parameters, mapping, consumers, schedule,
 * grace period, lifetime, auto-rotation, next_rotation_at); the state machine's columns are left
 * alone. CF_EEXIST for a name taken in the project, CF_ENOTFOUND when gone. */
enum cf_rc cf_store_rotation_update(struct cf_store *st, const struct cf_rotation *rot,
                                    struct cf_err *err);
/* Deletes the rotation and its history. CF_ENOTFOUND when gone. */
enum cf_rc cf_store_rotation_delete(struct cf_store *st, const char *id, struct cf_err *err);

/* Asks for a rotation now (a manual run): due at once, whatever the schedule and a backoff. */
enum cf_rc cf_store_rotation_request(struct cf_store *st, const char *id, struct cf_err *err);

/* Ids of the rotations due at now and not claimed by a live lease: one in progress whose retry is
 * due, one asked for, or an auto-rotation whose next_rotation_at has come; at most limit (ids:
 * limit slots; *n receives the count). */
enum cf_rc cf_store_rotations_due(struct cf_store *st, int64_t now, size_t limit,
                                  char (*ids)[CF_UUID_LEN], size_t *n, struct cf_err *err);
/* Claims rotation id for owner until now + lease_ms when it is due at now (as above) and not
 * claimed by a live lease: *claimed says whether it was; out (when claimed) is the row as
 * claimed. */
enum cf_rc cf_store_rotation_claim(struct cf_store *st, const char *id, const char *owner,
                                   int64_t now, int64_t lease_ms, bool *claimed,
                                   struct cf_rotation *out, struct cf_err *err);
/* Writes rot's state-machine columns (generation through next_rotation_at) and claim_until, and
 * appends event (NULL: none), in one transaction, when owner holds the claim; release: the claim
 * ends (claim_owner ""). CF_ECONFLICT (nothing written) when owner no longer holds it. */
enum cf_rc cf_store_rotation_save(struct cf_store *st, const struct cf_rotation *rot,
                                  const char *owner, bool release,
                                  const struct cf_rotation_event *event, struct cf_err *err);

/* The history of rotation id, newest first, at most limit events. */
enum cf_rc cf_store_rotation_history(struct cf_store *st, const char *id, size_t limit,
                                     struct cf_rotation_event_list *out, struct cf_err *err);

#endif
