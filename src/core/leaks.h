/* Marking secrets leaked (docs/scan.md "Marking leaked secrets"): someone who found the value of a
 * secret where it should not be (`coffer scan --known --mark-leaked` found it in a file or a
 * commit) records it, and may ask for the rotation that renews that secret. The mark names where
 * the value was found (source, a fingerprint of the finding) and never the value; it holds while
 * the version found is the secret's current one (a new version, a changed value, clears it: see
 * store/leaks.h), is shown by the inventory (core/inventory.h) and told to the project's
 * notification channels (threshold "secret-leaked", once per secret and version).
 *
 * Authorization: who must be able to read the secret (it found its value). Asking for its rotation
 * further needs the right to run rotations (a project administrator, core/rotations.h); without it
 * the secret is still marked and the outcome says the rotation was refused. */
#ifndef CF_CORE_LEAKS_H
#define CF_CORE_LEAKS_H

#include "core/core.h"
#include "store/leaks.h"

/* A finding to mark; strings borrowed. */
struct cf_leak_spec {
    const char *project;     /* id or slug, required */
    const char *environment; /* slug, required */
    const char *secret_path; /* NULL: "/" */
    const char *secret_key;  /* required */
    const char *source;      /* required: where it was found, printable text, no value */
    const char *fingerprint; /* NULL or "": none; letters, digits, '-', '_', ':', '.' */
    bool rotate;             /* also ask for the rotation whose output is the secret */
};

enum cf_leak_rotation {
    CF_LEAK_ROTATION_NOT_ASKED = 0,
    CF_LEAK_ROTATION_NONE,      /* no rotation has the secret as an output */
    CF_LEAK_ROTATION_TRIGGERED, /* asked for; rotation_status says how far it went */
    CF_LEAK_ROTATION_FAILED,    /* refused or failed to start: rotation_error says why */
};

struct cf_leak_outcome {
    struct cf_secret_leak leak; /* the mark that stands */
    bool created;               /* false: that version was marked already (nothing changed) */
    char project_id[CF_UUID_LEN];
    char env_slug[CF_SLUG_MAX + 1];
    char path[CF_PATH_MAX + 1];
    char key[CF_KEY_MAX + 1];
    enum cf_leak_rotation rotation;
    char rotation_id[CF_UUID_LEN];
    char rotation_name[CF_NAME_MAX + 1];
    char rotation_status[16];            /* the rotation's status afterwards ("succeeded", ...) */
    char rotation_error[CF_ERR_MSG_MAX]; /* CF_LEAK_ROTATION_FAILED: why; no secret */
};

/* Marks the secret of spec leaked at its current version (idempotent: a second mark of the same
 * version changes nothing and tells no channel again), then, with spec->rotate, asks for its
 * rotation (owner: this server's worker id, as cf_rotations_trigger takes it). CF_EVALIDATION
 * naming the field (projectId, environment, secretKey, source, fingerprint); the 404/403 of
 * cf_scope_resolve and cf_authz_check for the place; CF_ENOTFOUND "Secret with name 'K' not
 * found". A failed rotation is an outcome, not an error. Thread-safe. */
enum cf_rc cf_leaks_mark(struct cf_core *core, const struct cf_principal *who,
                         const struct cf_leak_spec *spec, const char *owner,
                         struct cf_leak_outcome *out, struct cf_err *err);

/* The marks that hold in project_id (see store/leaks.h), for the inventory. */
enum cf_rc cf_leaks_list(struct cf_core *core, const char *project_id,
                         struct cf_secret_leak_list *out, struct cf_err *err);

#endif
