/* Expiry you cannot miss: what expires, has expired or is due for rotation, across the
 * store, as the caller may see it. The one query behind GET /api/v1/expiring, `coffer expiring`,
 * the inventory and the notification scheduler. Times are Unix milliseconds from cf_now_ms
 * (util/time.h), the one clock that test builds can move.
 *
 * Items:
 * - a secret whose current version carries expiresAt (the end date of a credential stored in
 * Coffer);
 * - a secret whose rotation reminder (secretReminderRepeatDays) falls due: the current version was
 *   written that many days ago, i.e. the value was not changed within its interval;
 * - a machine identity's client secret with an expiry, not revoked;
 * - an app connection's credential with a known expiry (core/connections.h: given by the admin,
 *   a certificate's notAfter, or learnt by a check): the admin's only, as connections are.
 * Access tokens are not items: they are short-lived by design (a pipeline logs in per run), renewed
 * or replaced by the next login, and their lifetime is in every login answer (expiresIn); listing
 * them would bury the credentials that matter under thousands of routine expiries. */
#ifndef CF_CORE_EXPIRY_H
#define CF_CORE_EXPIRY_H

#include "core/core.h"
#include "core/secrets.h"

enum cf_expiry_kind {
    CF_EXPIRY_SECRET = 1,
    CF_EXPIRY_REMINDER,
    CF_EXPIRY_CLIENT_SECRET,
    CF_EXPIRY_CONNECTION,
};

/* "secret", "reminder", "clientSecret", "connection" (the API's kind names). */
const char *cf_expiry_kind_name(enum cf_expiry_kind kind);

struct cf_expiry_item {
    enum cf_expiry_kind kind;
    int64_t due_at; /* the expiry, or when the rotation reminder falls due */
    bool past;      /* due_at <= now: expired, or rotation overdue */
    /* secrets and reminders: where the secret lives and which version is meant */
    char project_id[CF_UUID_LEN];
    char project_name[CF_NAME_MAX + 1];
    char env_slug[CF_SLUG_MAX + 1];
    char path[CF_PATH_MAX + 1];
    char key[CF_KEY_MAX + 1];
    char secret_id[CF_UUID_LEN];
    int64_t version;
    int64_t updated_at;           /* when the current version was written */
    int64_t reminder_repeat_days; /* reminders */
    char note[CF_REMINDER_NOTE_MAX + 1];
    /* client secrets: whose credential */
    char identity_id[CF_UUID_LEN];
    char identity_name[CF_NAME_MAX + 1];
    char credential_id[CF_UUID_LEN];
    char description[CF_DESC_MAX + 1];
    /* connections: credential_id is the connection's id, description its name */
    char app[32];
    char method[32];
};

struct cf_expiry_list {
    struct cf_expiry_item *items;
    size_t n;
};
void cf_expiry_list_release(struct cf_expiry_list *list);

struct cf_expiry_query {
    const char *project; /* id or slug; NULL: every project */
    int64_t now;
    int64_t within_ms;   /* items due by now + within_ms; expired / overdue ones always */
    bool secrets;        /* secret expiry */
    bool reminders;      /* rotation reminders */
    bool client_secrets; /* identities' client secrets */
    bool connections;    /* app connections' credentials (the admin's only; none with a project) */
};

/* The items the caller may see, soonest first (ties by place, for a stable order). The admin sees
 * everything. An identity sees the secrets it may read (cf_authz_check) and its own client secrets.
 * With a project, client secrets are those of identities that are members of it. */
enum cf_rc cf_expiry_list(struct cf_core *core, const struct cf_principal *who,
                          const struct cf_expiry_query *query, struct cf_expiry_list *out,
                          struct cf_err *err);

/* A stable name for one notice-worthy state of an item, for "once per item per threshold": a
 * secret's expiry is named with its date (a new expiresAt is a new item), a reminder with the
 * version and the interval number it is in, a client secret by its id, a connection by its id and
 * expiry date (a renewed credential is a new item). */
void cf_expiry_item_key(const struct cf_expiry_item *item, int64_t now, char *out, size_t size);

#endif
