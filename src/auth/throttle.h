/* Throttling of failed logins, so that a client secret cannot be guessed online. Failures are
 * counted per key (a client id, a source address) in a fixed window; past the limit the key is
 * locked out for a while and every attempt is refused at once with the time left. A success does
 * not count and clears the key's failures. Memory is bounded (a fixed table; the stalest entry
 * gives way). Thread-safe. */
#ifndef CF_AUTH_THROTTLE_H
#define CF_AUTH_THROTTLE_H

#include <stdint.h>

#include "util/err.h"

struct cf_throttle;

struct cf_throttle_policy {
    int max_failures; /* failures allowed within window_s before the lockout */
    int window_s;
    int lockout_s;
};

/* NULL when out of memory. */
struct cf_throttle *cf_throttle_new(const struct cf_throttle_policy *policy);
void cf_throttle_free(struct cf_throttle *t);

/* CF_OK when key may try now; CF_ERATELIMIT with err->retry_after_s and a message naming what (e.g.
 * "client id 'x'") otherwise. now in milliseconds. */
enum cf_rc cf_throttle_check(struct cf_throttle *t, const char *key, const char *what, int64_t now,
                             struct cf_err *err);

/* Records a failure (which may start a lockout) or a success (which clears the key). */
void cf_throttle_failure(struct cf_throttle *t, const char *key, int64_t now);
void cf_throttle_success(struct cf_throttle *t, const char *key);

#endif
