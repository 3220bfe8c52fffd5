/* Fetching and merging the secrets of `run`, `export` and `secrets list --include-imports` (see
 * fetch.h). The merged set is a JSON object holding references to the secret objects of the
 * server's answers, so no value is copied outside jansson's (wiping) memory. */
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "cli/fetch.h"
#include "util/time.h"
#include "util/banned.h"

enum cf_rc cf_secrets_merge(json_t *answer, cf_merge_fn fn, void *ctx)
{
    json_t *seen = json_object();
    json_t *imports = json_object_get(answer, "imports");
    json_t *secret;
    enum cf_rc rc = CF_OK;
    size_t i;

    if (!seen)
        return CF_ENOMEM;
    json_array_foreach(json_object_get(answer, "secrets"), i, secret)
    {
        const char *key = json_string_value(json_object_get(secret, "secretKey"));
        if (!key)
            continue;
        if (json_object_set_new(seen, key, json_true()) != 0) {
            rc = CF_ENOMEM;
            goto out;
        }
        rc = fn(secret, NULL, ctx);
        if (rc != CF_OK)
            goto out;
    }
    for (size_t k = json_array_size(imports); k-- > 0;) {
        json_t *import = json_array_get(imports, k);
        json_array_foreach(json_object_get(import, "secrets"), i, secret)
        {
            const char *key = json_string_value(json_object_get(secret, "secretKey"));
            if (!key || json_object_get(seen, key))
                continue;
            if (json_object_set_new(seen, key, json_true()) != 0) {
                rc = CF_ENOMEM;
                goto out;
            }
            rc = fn(secret, import, ctx);
            if (rc != CF_OK)
                goto out;
        }
    }
out:
    json_decref(seen);
    return rc;
}

/* cf_merge_fn for cf_fetch_secrets: ctx is the set; a later secret replaces an earlier one. */
static enum cf_rc fold_secret(json_t *secret, json_t *import, void *ctx)
{
    json_t *set = ctx;
    (void)import;
    const char *key = json_string_value(json_object_get(secret, "secretKey"));
    /* The winner moves to the end, so iteration order is "order of last appearance". */
    json_object_del(set, key);
    return json_object_set(set, key, secret) == 0 ? CF_OK : CF_ENOMEM;
}

void cf_secrets_warn_broken(json_t *problems, const char *consequence)
{
    json_t *problem;
    size_t i;
    json_array_foreach(problems, i, problem)
    {
        fprintf(stderr, "coffer: warning: %s (%s:%s) %s: %s\n", cf_cli_str(problem, "secretKey"),
                cf_cli_str(problem, "environment"), cf_cli_str(problem, "secretPath"), consequence,
                cf_cli_str(problem, "reason"));
    }
}

/* Leaves out of set each secret of answer.brokenReferences that won its key (the server left its
 * value unexpanded): a program is better off without the variable than with "${...}" as its value.
 */
static void drop_broken(json_t *answer, json_t *set)
{
    json_t *problem;
    size_t i;
    json_array_foreach(json_object_get(answer, "brokenReferences"), i, problem)
    {
        const char *key = cf_cli_str(problem, "secretKey");
        json_t *winner = json_object_get(set, key);
        if (winner &&
            strcmp(cf_cli_str(winner, "environment"), cf_cli_str(problem, "environment")) == 0 &&
            strcmp(cf_cli_str(winner, "secretPath"), cf_cli_str(problem, "secretPath")) == 0)
            json_object_del(set, key);
    }
}

int cf_fetch_secrets(struct cf_cli *cli, const struct cf_fetch *fetch, json_t **out)
{
    json_t *set = json_object();
    json_t *answer = NULL;
    int status = CF_EXIT_OK;

    *out = NULL;
    if (!set)
        return cf_cli_fail("out of memory");
    for (size_t i = 0; i < fetch->npaths; i++) {
        const struct cf_query_param query[] = {
            {"projectId", fetch->project_id},
            {"environment", fetch->env},
            {"secretPath", fetch->paths[i]},
            {"recursive", fetch->recursive ? "true" : "false"},
            {"includeImports", fetch->include_imports ? "true" : "false"},
            {"expandSecretReferences", fetch->expand ? "true" : "false"},
            {"strictReferences", fetch->expand && fetch->strict_refs ? "true" : NULL},
            {NULL, NULL},
        };
        status = cf_cli_request(cli, "GET", "/v4/secrets", query, NULL, &answer);
        if (status != CF_EXIT_OK)
            goto out;
        if (!json_is_array(json_object_get(answer, "secrets"))) {
            status = cf_cli_fail("the server's answer for path '%s' has no secrets list",
                                 fetch->paths[i]);
            goto out;
        }
        if (cf_secrets_merge(answer, fold_secret, set) != CF_OK) {
            status = cf_cli_fail("out of memory");
            goto out;
        }
        json_t *problems = json_object_get(answer, "brokenReferences");
        if (!fetch->broken)
            cf_secrets_warn_broken(problems, "left out");
        else if (json_is_array(problems) && json_array_extend(fetch->broken, problems) != 0) {
            status = cf_cli_fail("out of memory");
            goto out;
        }
        drop_broken(answer, set);
        json_decref(answer);
        answer = NULL;
    }
    *out = set;
    set = NULL;
out:
    json_decref(answer);
    json_decref(set);
    return status;
}

int cf_expiry_check_setup(const struct cf_cli *cli, struct cf_expiry_check *check, int64_t *warn_ms)
{
    const char *text = check->warning ? check->warning : getenv("COFFER_EXPIRY_WARNING");
    struct cf_err err;
    int64_t seconds = 14 * 86400;
    cf_err_clear(&err);
    if (text && *text && cf_duration_parse(text, &seconds, &err) != CF_OK)
        return cf_cli_usage_error(cli,
                                  "--expiry-warning takes a duration such as 14d, or 0, not "
                                  "'%.64s'",
                                  text);
    *warn_ms = seconds * 1000;
    const char *fail = getenv("COFFER_FAIL_ON_EXPIRED");
    if (!check->fail_on_expired && fail && (strcmp(fail, "1") == 0 || strcmp(fail, "true") == 0))
        check->fail_on_expired = true;
    return CF_EXIT_OK;
}

/* "9d 23h", "5h 2m", "40m" for a span of seconds. */
static void span_text(int64_t seconds, char *out, size_t size)
{
    long long d = seconds / 86400, h = seconds % 86400 / 3600, m = seconds % 3600 / 60;
    if (d > 0)
        snprintf(out, size, "%lldd %lldh", d, h);
    else if (h > 0)
        snprintf(out, size, "%lldh %lldm", h, m);
    else
        snprintf(out, size, "%lldm", m);
}

int cf_secrets_expiry_warn(json_t *set, const struct cf_expiry_check *check, int64_t warn_ms)
{
    const char *key;
    json_t *secret;
    size_t expired = 0;
    int64_t now = cf_now_ms();
    json_object_foreach(set, key, secret)
    {
        const char *at = json_string_value(json_object_get(secret, "expiresAt"));
        struct cf_err err;
        int64_t expires = 0;
        cf_err_clear(&err);
        if (!at || cf_time_parse(at, &expires, &err) != CF_OK)
            continue;
        char span[48];
        const char *env = json_string_value(json_object_get(secret, "environment"));
        const char *path = json_string_value(json_object_get(secret, "secretPath"));
        if (expires <= now) {
            expired++;
            span_text((now - expires) / 1000, span, sizeof(span));
            fprintf(stderr, "coffer: secret %s (%s:%s) EXPIRED at %s, %s ago\n", key,
                    env ? env : "?", path ? path : "?", at, span);
        } else if (warn_ms > 0 && expires - now <= warn_ms) {
            span_text((expires - now) / 1000, span, sizeof(span));
            fprintf(stderr, "coffer: warning: secret %s (%s:%s) expires at %s, in %s\n", key,
                    env ? env : "?", path ? path : "?", at, span);
        }
    }
    if (expired && check->fail_on_expired) {
        fprintf(stderr,
                "coffer: refusing to go on: %zu injected secret%s expired (--fail-on-expired)\n",
                expired, expired == 1 ? " has" : "s have");
        return CF_EXIT_EXPIRED;
    }
    return CF_EXIT_OK;
}

const char *cf_secret_value(json_t *secret, size_t *len)
{
    json_t *value = json_object_get(secret, "secretValue");
    if (!json_is_string(value)) {
        *len = 0;
        return "";
    }
    *len = json_string_length(value);
    return json_string_value(value);
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char **cf_secrets_sorted_keys(json_t *set, size_t *n)
{
    const char *key;
    json_t *secret;
    size_t i = 0;

    *n = json_object_size(set);
    if (*n == 0)
        return NULL;
    const char **keys = calloc(*n, sizeof(*keys));
    if (!keys) {
        *n = 0;
        return NULL;
    }
    json_object_foreach(set, key, secret)
    {
        (void)secret;
        keys[i++] = key;
    }
    qsort(keys, *n, sizeof(*keys), compare_keys);
    return keys;
}

static void hash_field(crypto_hash_sha256_state *state, const char *bytes, size_t len)
{
    unsigned char size[8];
    uint64_t n = len;
    for (int i = 7; i >= 0; i--) {
        size[i] = (unsigned char)(n & 0xff);
        n >>= 8;
    }
    crypto_hash_sha256_update(state, size, sizeof(size));
    crypto_hash_sha256_update(state, (const unsigned char *)bytes, len);
}

void cf_secrets_fingerprint(json_t *set, unsigned char out[CF_FINGERPRINT_BYTES])
{
    crypto_hash_sha256_state state;
    size_t n = 0;
    const char **keys = cf_secrets_sorted_keys(set, &n);

    crypto_hash_sha256_init(&state);
    if (!keys && n == 0 && json_object_size(set) > 0) {
        /* Out of memory: a fingerprint that matches nothing, so a watcher restarts rather than
         * missing a change. */
        randombytes_buf(out, CF_FINGERPRINT_BYTES);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *value = cf_secret_value(json_object_get(set, keys[i]), &len);
        hash_field(&state, keys[i], strlen(keys[i]));
        hash_field(&state, value, len);
    }
    crypto_hash_sha256_final(&state, out);
    sodium_memzero(&state, sizeof(state));
    free(keys);
}
