/* Providers: the outside systems Coffer writes secrets into (Azure DevOps variable groups, Azure
 * Key Vault, GitHub Actions secrets, a file), and the credentials it holds to reach them.
 *
 * A provider knows nothing of the store or of Coffer's projects. It receives a connection's
 * credentials in plaintext (borrowed for one call), a destination's configuration and the items to
 * write; it talks HTTP only through src/net/http.h (so the destination policy, timeouts, size caps
 * and retries with Retry-After apply); it returns what happened, with errors that name the system,
 * the HTTP status and the provider's own error code and description, and never a credential, a
 * secret value or a URL's query.
 *
 * Return codes of provider calls (the sync engine maps them; they describe the outside system, not
 * the caller of Coffer's API): CF_EUNAUTH the system refused the connection's credential (expired,
 * revoked, wrong); CF_EFORBIDDEN the credential lacks a permission or scope (the message names it);
 * CF_ENOTFOUND the destination object does not exist; CF_EINVAL/CF_EVALIDATION a configuration or
 * name the system cannot take; CF_ERATELIMIT throttled beyond the retries; CF_EIO unreachable, TLS,
 * timeout or an answer that does not parse; CF_ENOMEM. */
#ifndef CF_PROVIDER_PROVIDER_H
#define CF_PROVIDER_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/err.h"

/* Entra ID access tokens cached per (authority, tenant, client, scope) until shortly before they
 * expire; defined in provider/entra.h. Thread-safe. */
struct cf_entra_cache;

/* GitHub App installation tokens cached per (host, app, installation) until 5 minutes before they
 * expire; defined in provider/github.h. Thread-safe. */
struct cf_github_cache;

/* A connection, opened for one call. credentials is the app's JSON object, in the shapes of
 * Infisical's app connections:
 * - azure-devops, access-token: {"accessToken", "orgName"};
 * - azure-devops, client-secret: {"tenantId", "clientId", "clientSecret", "orgName"};
 * - azure-devops, certificate: {"tenantId", "clientId", "certificate" (PEM certificate and private
 *   key), "orgName"};
 * - azure-key-vault, client-secret or certificate: as above, without orgName;
 * - github, app: {"appId", "privateKey" (PEM), "installationId"};
 * - github, personal-access-token: {"personalAccessToken"};
 * - postgres and mysql, username-and-password: {"host", "port", "database", "username",
 *   "password", ...} (provider/pgrole.h, provider/mysqldynamic.h);
 * with optional endpoint overrides for sovereign clouds, GitHub Enterprise and tests: "instanceUrl"
 * (Azure DevOps; default https://dev.azure.com), "authorityHost" (Entra ID; default
 * https://login.microsoftonline.com), "host" (GitHub API; default https://api.github.com). */
struct cf_provider_conn {
    const char *app;                /* "azure-devops", "azure-key-vault", "github" */
    const char *method;             /* "access-token", "client-secret", "certificate", "app",
                                       "personal-access-token" */
    const json_t *credentials;      /* plaintext, borrowed; the caller wipes it */
    struct cf_entra_cache *entra;   /* NULL: no caching */
    struct cf_github_cache *github; /* NULL: no caching */
};

/* One item to write, its name already through the key schema and the destination's name rule. */
struct cf_sync_item {
    const char *name;  /* the destination-side name */
    const char *key;   /* the Coffer key it came from */
    const char *value; /* plaintext, borrowed */
    size_t value_len;
    int64_t expires_at;   /* Unix ms; 0: none (Key Vault mirrors it to attributes.exp) */
    const char *location; /* "project/env/path" of the source, for tags and descriptions */
    int64_t version;      /* the Coffer version written */
};

/* What a destination holds now: for drift detection, the initial behaviour and deletions. */
struct cf_dest_entry {
    char *name;
    char *value;        /* heap, wiped on release; NULL where the system cannot be read (Azure
                           DevOps secret variables, GitHub secrets) */
    bool managed;       /* carries Coffer's marker, where the system has a place for one */
    int64_t updated_at; /* Unix ms when the system says; 0: unknown */
};

struct cf_dest_list {
    struct cf_dest_entry *items;
    size_t n;
};

/* Frees l's entries (values wiped) and clears it; safe on a zeroed list. */
void cf_dest_list_release(struct cf_dest_list *l);

struct cf_dest_ops {
    const char *destination; /* Infisical's slug: "azure-devops", "azure-key-vault", "github",
                                "file" */
    /* Checks a destinationConfig object: CF_EVALIDATION naming the field. */
    enum cf_rc (*config_check)(const json_t *config, struct cf_err *err);
    /* Applies the system's name rule to a name (Key Vault: letters, digits and dashes):
     * CF_EVALIDATION when it cannot be mapped. Collisions between mapped names are the caller's
     * to find. */
    enum cf_rc (*map_name)(const char *name, char *out, size_t size, struct cf_err *err);
    /* Reads what the destination holds, creating nothing. */
    enum cf_rc (*list)(const struct cf_provider_conn *conn, const json_t *config,
                       struct cf_dest_list *out, struct cf_err *err);
    /* Writes items (created or updated) and deletes the names in remove. On failure err names the
     * first item that failed and why; items already written stay written (a run is repeatable). */
    enum cf_rc (*push)(const struct cf_provider_conn *conn, const json_t *config,
                       const struct cf_sync_item *items, size_t n, const char *const *remove,
                       size_t n_remove, struct cf_err *err);
};

/* The destination named slug, or NULL. */
const struct cf_dest_ops *cf_dest_find(const char *slug);

/* Writes pem, a CA certificate a connection trusts (public), to a new file for a client library
 * that reads its CA from a file (libpq, libmariadb): *path its name (size bytes at most), which the
 * caller unlinks once the session is open; *path empty when pem is NULL. CF_EIO when it cannot be
 * written ($TMPDIR, else /tmp). */
enum cf_rc cf_provider_ca_file(const char *pem, char *path, size_t size, struct cf_err *err);

/* Checks a connection's credential against its system: CF_OK with *report a new JSON object
 * {"ok": true, "expiresAt": ISO-8601 or null, "scopes": [...], "detail": "..."}, or the failure
 * in err as described above. */
enum cf_rc cf_provider_check(const struct cf_provider_conn *conn, json_t **report,
                             struct cf_err *err);

#endif
