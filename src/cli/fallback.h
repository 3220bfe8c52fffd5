/* The fallback cache of `coffer run` and `coffer export` (--fallback-cache): after every successful
 * read the merged secrets are kept in a local file, encrypted (XChaCha20-Poly1305) with a key
 * derived from the credential the command used (BLAKE2b keyed by the bearer token, then
 * crypto_kdf), which is never stored; the file's name is a keyed digest of the server, project,
 * environment, folders and read flags under another key derived from the same credential. When a
 * later run cannot reach the server (no answer, or 502/503/504 from a proxy in front of it), and
 * only then, the cache is used if it is younger than --fallback-max-age (default 24h), with a loud
 * warning naming its age. A refusal (401, 403, 404, ...) never falls back: the server has spoken.
 *
 * The credential must be the same from run to run: a token (--token, COFFER_TOKEN, the stored
 * login). A login with the login flags makes a new access token each time (and needs the server),
 * so it is refused with --fallback-cache. */
#ifndef CF_CLI_FALLBACK_H
#define CF_CLI_FALLBACK_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/common.h"
#include "cli/fetch.h"

#define CF_FALLBACK_DEFAULT_MAX_AGE "24h"

/* The settings and the keys of one command's cache. Zero it, then fill the options. */
struct cf_fallback {
    bool enabled;        /* --fallback-cache */
    const char *max_age; /* --fallback-max-age's text, or NULL */
    /* private */
    int64_t max_age_ms;
    unsigned char key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES]; /* wiped by release */
    char *path;
    const char *server;
};

#define CF_FALLBACK_OPTS(fb)                                                                       \
    {"fallback-cache", CF_OPT_BOOL, &(fb)->enabled},                                               \
    {                                                                                              \
        "fallback-max-age", CF_OPT_STRING, &(fb)->max_age                                          \
    }

#define CF_FALLBACK_OPTIONS_HELP                                                                   \
    "  --fallback-cache   keep the secrets read in a local cache encrypted with a key\n"           \
    "                     derived from the token, and use it, with a warning, when the\n"          \
    "                     server cannot be reached (never when it refuses)\n"                      \
    "  --fallback-max-age D  the oldest cache used (default " CF_FALLBACK_DEFAULT_MAX_AGE          \
    ", e.g. 30m, 7d)\n"

/* Checks the options and, with --fallback-cache, derives the keys and the cache's path from cli's
 * token and what fetch reads; command names the command ("run"), so that the two commands keep
 * separate entries. login_used: the command logged in with the login flags (refused). Returns
 * CF_EXIT_OK, or CF_EXIT_USAGE / CF_EXIT_FAILURE after printing why. */
int cf_fallback_setup(struct cf_fallback *fb, const struct cf_cli *cli, const char *command,
                      const struct cf_fetch *fetch, bool login_used);

/* To call with the result of cf_fetch_secrets (status, *set). Without --fallback-cache returns
 * status unchanged. After a successful read, stores *set in the cache (a failure to store is a
 * warning) and returns CF_EXIT_OK. After a failed read, when cli's last request found the server
 * unreachable, replaces *set with the cached secrets and returns CF_EXIT_OK after warning on
 * standard error, or returns CF_EXIT_FAILURE saying why the cache cannot serve (none for this
 * credential, too old, unreadable with this credential). Any other failure is returned as it is. */
int cf_fallback_apply(struct cf_fallback *fb, const struct cf_cli *cli, int status, json_t **set);

/* Wipes the keys and frees the path. Safe on a zeroed struct. */
void cf_fallback_release(struct cf_fallback *fb);

#endif
