/* The store's part of secret syncs (docs/syncs.md): the syncs themselves, their queue state and
 * what each one last pushed. A sync's queue state lives on its row: a change to its source raises
 * pending_gen (cf_store_syncs_mark); a node claims a due sync for a lease (cf_store_sync_claim) and
 * records the run's outcome (cf_store_sync_finish), which on success sets done_gen to the
 * generation seen at the claim. pending_gen > done_gen is "a change has not reached the destination
 * yet": durable, shared by every node of a PostgreSQL database, and claimed by one node at a time
 * (writes are serial across nodes, see sqldb.h). */
#ifndef CF_STORE_SYNCS_H
#define CF_STORE_SYNCS_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"
#include "util/err.h"
#include "util/id.h"

#define CF_SYNC_DEST_MAX 32
#define CF_SYNC_CONFIG_MAX 4096
#define CF_SYNC_OPTIONS_MAX 1024
#define CF_SYNC_DRIFT_MAX 2048
#define CF_SYNC_ERROR_MAX 512
#define CF_SYNC_DESCRIPTION_MAX 1024

struct cf_sync {
    char id[CF_UUID_LEN];
    char project_id[CF_UUID_LEN];
    char name[CF_NAME_MAX + 1];
    char description[CF_SYNC_DESCRIPTION_MAX + 1];
    char env_id[CF_UUID_LEN];
    char folder_path[CF_PATH_MAX + 1];
    char destination[CF_SYNC_DEST_MAX + 1];
    char connection_id[CF_UUID_LEN];                 /* "": none (a file) */
    char destination_config[CF_SYNC_CONFIG_MAX + 1]; /* JSON object */
    char sync_options[CF_SYNC_OPTIONS_MAX + 1];      /* JSON object */
    bool auto_sync;
    /* Status, written by runs. */
    char sync_status[16]; /* "pending", "running", "succeeded", "failed" */
    int64_t last_attempt_at;
    int64_t last_synced_at;
    char last_error[CF_SYNC_ERROR_MAX + 1];
    char last_error_cause[32];
    int64_t items_pushed;
    char drift[CF_SYNC_DRIFT_MAX + 1]; /* JSON array of names */
    bool initial_done;
    /* Queue state. */
    int64_t pending_gen;
    int64_t done_gen;
    char claim_owner[CF_UUID_LEN];
    int64_t claim_until;
    int64_t attempts;
    int64_t next_attempt_at;
    char notified_error[65];
    int64_t created_at;
    int64_t updated_at;
};

struct cf_sync_list {
    struct cf_sync *items;
    size_t n;
};

/* One name a sync holds at its destination, and where it came from. */
struct cf_sync_item_row {
    char sync_id[CF_UUID_LEN];
    char name[CF_KEY_MAX + 1];
    char secret_env_id[CF_UUID_LEN];
    char secret_path[CF_PATH_MAX + 1];
    char secret_key[CF_KEY_MAX + 1];
    int64_t version;
    char value_hash[65]; /* hex of a keyed hash; never the value */
    int64_t pushed_at;
};

struct cf_sync_item_list {
    struct cf_sync_item_row *items;
    size_t n;
};

void cf_sync_list_release(struct cf_sync_list *l);
void cf_sync_item_list_release(struct cf_sync_item_list *l);

/* Stores a new sync (its queue state as given: a new sync starts pending). CF_EEXIST when the
 * project has a sync of that name. */
enum cf_rc cf_store_sync_create(struct cf_store *st, const struct cf_sync *sync,
                                struct cf_err *err);
/* CF_ENOTFOUND "Secret sync with ID 'x' not found". */
enum cf_rc cf_store_sync_get(struct cf_store *st, const char *id, struct cf_sync *out,
                             struct cf_err *err);
/* A project's syncs (project_id NULL: every sync), by name. */
enum cf_rc cf_store_sync_list(struct cf_store *st, const char *project_id, struct cf_sync_list *out,
                              struct cf_err *err);
/* Replaces what a caller may change (name, description, source, connection, destination config,
 * options, auto-sync) and makes the sync pending, so that the change is applied at once. CF_EEXIST
 * for a name taken in the project, CF_ENOTFOUND when gone. */
enum cf_rc cf_store_sync_update(struct cf_store *st, const struct cf_sync *sync,
                                struct cf_err *err);
/* Deletes the sync and its items. CF_ENOTFOUND when gone. */
enum cf_rc cf_store_sync_delete(struct cf_store *st, const char *id, struct cf_err *err);

/* Makes every auto-sync of project_id pending (a change in its source); *marked (may be NULL)
 * receives how many. */
enum cf_rc cf_store_syncs_mark(struct cf_store *st, const char *project_id, int64_t *marked,
                               struct cf_err *err);
/* Makes every auto-sync of every project pending (a server's start: a change committed just before
 * a crash may not have been marked); *marked (may be NULL) receives how many. */
enum cf_rc cf_store_syncs_mark_all(struct cf_store *st, int64_t *marked, struct cf_err *err);
/* Makes one sync pending now, whatever its auto-sync setting and backoff ("run now"). */
enum cf_rc cf_store_sync_mark_one(struct cf_store *st, const char *id, struct cf_err *err);
/* Ids of pending syncs that are due at now and not claimed by a live lease, oldest first, at most
 * limit (ids: limit slots; *n receives the count). */
enum cf_rc cf_store_syncs_due(struct cf_store *st, int64_t now, size_t limit,
                              char (*ids)[CF_UUID_LEN], size_t *n, struct cf_err *err);
/* Claims sync id for owner until now + lease_ms when it is pending, due and not claimed by a live
 * lease: *claimed says whether it was, and out (when claimed) is the sync as claimed (its
 * pending_gen is the generation this run delivers). */
enum cf_rc cf_store_sync_claim(struct cf_store *st, const char *id, const char *owner, int64_t now,
                               int64_t lease_ms, bool *claimed, struct cf_sync *out,
                               struct cf_err *err);

/* A run's outcome. */
struct cf_sync_outcome {
    const char *id;
    const char *owner;   /* the claim it ends */
    int64_t gen;         /* the generation claimed */
    bool ok;             /* success: done_gen = gen, attempts 0, items replaced */
    int64_t finished_at; /* last_attempt_at (and last_synced_at on success) */
    const char *error;   /* failure: the message (no value) */
    const char *cause;   /* failure: its class */
    int64_t next_attempt_at;
    int64_t items_pushed;
    const char *drift;          /* JSON array text */
    bool initial_done;          /* the initial behaviour has been applied */
    const char *notified_error; /* the failure's hash once told to the channels; NULL: keep */
    /* Success: what the destination holds now (replaces the sync's rows). */
    const struct cf_sync_item_row *items;
    size_t n_items;
};

/* Records a run's outcome and ends the claim, in one transaction. CF_ECONFLICT (nothing written)
 * when owner no longer holds the claim (its lease ran out and another node took the sync). */
enum cf_rc cf_store_sync_finish(struct cf_store *st, const struct cf_sync_outcome *outcome,
                                struct cf_err *err);

/* What a sync holds (sync_id), or every item of every sync of a project (project_id), by name. */
enum cf_rc cf_store_sync_items(struct cf_store *st, const char *sync_id, const char *project_id,
                               struct cf_sync_item_list *out, struct cf_err *err);

#endif
