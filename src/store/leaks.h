/* Secrets marked leaked (migration 0026, docs/scan.md "Marking leaked secrets"): which version of a
 * secret was found where, when and by whom. A mark counts while its version is the secret's current
 * one; a new version makes it stale (listed no more) and a new mark replaces it. No value is ever
 * stored: source and fingerprint come from the scan's report. Thread-safe. */
#ifndef CF_STORE_LEAKS_H
#define CF_STORE_LEAKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/err.h"

/* The longest source ("path:line", "commit <id> path:line") and fingerprint, in bytes. */
#define CF_LEAK_SOURCE_MAX 512
#define CF_LEAK_FINGERPRINT_MAX 128

struct cf_secret_leak {
    char secret_id[CF_UUID_LEN];
    int64_t version; /* the version whose value was found */
    int64_t leaked_at;
    char source[CF_LEAK_SOURCE_MAX + 1];
    char fingerprint[CF_LEAK_FINGERPRINT_MAX + 1]; /* "" when none was given */
    char actor_kind[16];                           /* "admin", "identity", "user" */
    char actor_id[CF_UUID_LEN];
    char actor_name[CF_NAME_MAX + 1];
};

struct cf_secret_leak_list {
    struct cf_secret_leak *items;
    size_t n;
};

void cf_secret_leak_list_release(struct cf_secret_leak_list *l);

/* Marks leak->secret_id leaked at leak->version, unless it is marked at that version already:
 * then *out is the mark that stands and *created false (marking is idempotent); otherwise the mark
 * (replacing a stale one of an older version) is stored, *out is leak and *created true. One
 * transaction. */
enum cf_rc cf_store_leak_mark(struct cf_store *st, const struct cf_secret_leak *leak,
                              struct cf_secret_leak *out, bool *created, struct cf_err *err);

/* The marks of project_id's secrets that still hold (their version is the current one), in no
 * particular order. Release with cf_secret_leak_list_release. */
enum cf_rc cf_store_leak_list(struct cf_store *st, const char *project_id,
                              struct cf_secret_leak_list *out, struct cf_err *err);

/* A mark that still holds, with where its secret is ("slug/env/path/KEY"), for reports. */
struct cf_standing_leak {
    char place[CF_NAME_MAX * 2 + CF_PATH_MAX + CF_KEY_MAX + 8];
    char source[CF_LEAK_SOURCE_MAX + 1];
    int64_t leaked_at;
};

/* Every mark that still holds, in every project, oldest first: *out (malloc'd, n items; NULL when
 * none). */
enum cf_rc cf_store_leak_standing(struct cf_store *st, struct cf_standing_leak **out, size_t *n,
                                  struct cf_err *err);

#endif
