/* Reading the secrets a pipeline command needs: one GET /api/v4/secrets per folder path (what
 * Infisical's CLI reads), the merge of each answer with its imports, and the fingerprint `run
 * --watch` compares. Shared by `coffer run`, `coffer export` and `coffer secrets list
 * --include-imports`, so that all three agree on which value wins.
 *
 * Precedence (Infisical's CLI, util.InjectImportedSecret): a folder's own secrets win over imported
 * ones; imports are visited from the last to the first and add only keys not yet present, so a
 * later import wins over an earlier one. Across several --path folders, and among equal keys of a
 * recursive listing, the later one wins. */
#ifndef CF_CLI_FETCH_H
#define CF_CLI_FETCH_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cli/common.h"

/* Called by cf_secrets_merge for each secret that takes part: import is NULL for the folder's own
 * secrets, else the entry of answer.imports it came from ({secretPath, environment, secrets}). Both
 * borrowed. A non-CF_OK result stops the merge and is returned. */
typedef enum cf_rc (*cf_merge_fn)(json_t *secret, json_t *import, void *ctx);

/* Merges one list answer ({secrets: [...], imports?: [...]}, borrowed): calls fn for every secret
 * of answer.secrets in order, then for each import from the last to the first, for each of its
 * secrets whose secretKey is not among the keys seen so far (own secrets and secrets of later
 * imports). Secrets without a string secretKey are skipped. CF_ENOMEM, or fn's error. */
enum cf_rc cf_secrets_merge(json_t *answer, cf_merge_fn fn, void *ctx);

/* What to read. paths: npaths >= 1 folder paths (borrowed). */
struct cf_fetch {
    const char *project_id;
    const char *env;
    const char *const *paths;
    size_t npaths;
    bool recursive;
    bool include_imports;
    bool expand;
    /* With expand: a secret whose references cannot be followed refuses the read (the server's
     * strictReferences) instead of being left out with a warning. */
    bool strict_refs;
    /* Not NULL: the entries of each answer's brokenReferences are appended to this JSON array
     * (borrowed) instead of being printed, for a caller that warns only when it matters. */
    json_t *broken;
};

/* Reads every path with cli's client (GET /v4/secrets with projectId, environment, secretPath,
 * recursive, includeImports, expandSecretReferences, strictReferences), merges each answer
 * (cf_secrets_merge) and folds them in order into *out. A secret the server could not expand
 * (answer.brokenReferences) is warned about on standard error and left out of *out where it would
 * have won, so that no program receives the unexpanded "${...}" text as the value. *out is a new
 * JSON object mapping each key to its winning secret object (json_decref it; values are wiped on
 * release through the client's allocator). Returns CF_EXIT_OK, or CF_EXIT_FAILURE with the server's
 * message (or the connection problem) printed and *out NULL. */
int cf_fetch_secrets(struct cf_cli *cli, const struct cf_fetch *fetch, json_t **out);

/* Expiry of the secrets a pipeline is about to use. The settings come from the options
 * --expiry-warning D (COFFER_EXPIRY_WARNING; default 14d, 0 for none) and --fail-on-expired
 * (COFFER_FAIL_ON_EXPIRED=1). */
#define CF_EXPIRY_OPTIONS_HELP                                                                     \
    "  --expiry-warning D warn on standard error about secrets that expire within D\n"             \
    "                     (default 14d; 0 turns the warnings off)\n"                               \
    "  --fail-on-expired  refuse when an injected secret has expired (exit 3)\n"

/* A gate refused because an injected secret has expired (--fail-on-expired). */
#define CF_EXIT_EXPIRED 3

struct cf_expiry_check {
    const char *warning; /* --expiry-warning's text, or NULL */
    bool fail_on_expired;
};

/* Resolves the settings (flags, then the environment); a usage error (exit status 2, message
 * printed) for a bad duration. *warn_ms receives the window (0: no warnings). */
int cf_expiry_check_setup(const struct cf_cli *cli, struct cf_expiry_check *check,
                          int64_t *warn_ms);

/* Prints to standard error (never standard output) one warning for each secret of set that expires
 * within warn_ms and one line for each that has expired, naming its key, environment, folder and
 * date. Returns CF_EXIT_OK, or CF_EXIT_EXPIRED after saying so when something expired and
 * check->fail_on_expired. */
int cf_secrets_expiry_warn(json_t *set, const struct cf_expiry_check *check, int64_t warn_ms);

/* Prints to standard error one line for each entry of problems (a brokenReferences array of a list
 * or write answer; borrowed; NULL: none): the secret, where it lives, consequence (e.g. "left out")
 * and the server's reason, which names the reference that cannot be followed. */
void cf_secrets_warn_broken(json_t *problems, const char *consequence);

/* The secretValue of secret (borrowed; "" when absent) and its length in bytes. */
const char *cf_secret_value(json_t *secret, size_t *len);

#define CF_FINGERPRINT_BYTES 32

/* SHA-256 over the secrets of set (as made by cf_fetch_secrets) in byte order of their keys, each
 * as its key's length, key, value's length, value (lengths as 8-byte big-endian), so that any
 * change of a key or value changes it. */
void cf_secrets_fingerprint(json_t *set, unsigned char out[CF_FINGERPRINT_BYTES]);

/* The keys of set (borrowed strings, valid while set lives) sorted in byte order, as a new array
 * the caller frees with free(); *n receives the count. NULL when out of memory (or set is empty,
 * with *n 0). */
const char **cf_secrets_sorted_keys(json_t *set, size_t *n);

#endif
