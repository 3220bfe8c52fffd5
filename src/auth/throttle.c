/* Login throttling (see throttle.h). A small open table searched linearly: it holds only keys with
 * recent failures, and a login already costs far more than a scan of a few thousand short strings.
 * The table grows as failures come, up to TABLE_SIZE entries: a server nobody fails to log in to
 * holds none. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "auth/throttle.h"
#include "util/str.h"
#include "util/banned.h"

#define TABLE_SIZE 4096
#define KEY_MAX 96

struct entry {
    char key[KEY_MAX];
    int failures;
    int64_t window_start; /* ms */
    int64_t locked_until; /* ms; 0: not locked */
    int64_t last_seen;    /* ms */
};

struct cf_throttle {
    struct cf_throttle_policy policy;
    pthread_mutex_t lock;
    struct entry *entries;
    size_t n, cap;
};

struct cf_throttle *cf_throttle_new(const struct cf_throttle_policy *policy)
{
    struct cf_throttle *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->policy = *policy;
    pthread_mutex_init(&t->lock, NULL);
    return t;
}

void cf_throttle_free(struct cf_throttle *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->lock);
    free(t->entries);
    free(t);
}

/* Room for one more entry: true when the table has it or could grow to give it. */
static bool make_room(struct cf_throttle *t)
{
    if (t->n < t->cap)
        return true;
    if (t->cap >= TABLE_SIZE)
        return false;
    size_t cap = t->cap ? t->cap * 2 : 16;
    if (cap > TABLE_SIZE)
        cap = TABLE_SIZE;
    struct entry *grown = realloc(t->entries, cap * sizeof(*grown));
    if (!grown)
        return false;
    t->entries = grown;
    t->cap = cap;
    return true;
}

static struct entry *find(struct cf_throttle *t, const char *key)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->entries[i].key, key) == 0)
            return &t->entries[i];
    }
    return NULL;
}

enum cf_rc cf_throttle_check(struct cf_throttle *t, const char *key, const char *what, int64_t now,
                             struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    pthread_mutex_lock(&t->lock);
    struct entry *e = find(t, key);
    if (e && e->locked_until > now) {
        int wait = (int)((e->locked_until - now + 999) / 1000);
        rc = cf_err_set(err, CF_ERATELIMIT, "too many failed logins for %s: try again in %d s",
                        what, wait);
        if (err)
            err->retry_after_s = wait;
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

void cf_throttle_failure(struct cf_throttle *t, const char *key, int64_t now)
{
    pthread_mutex_lock(&t->lock);
    struct entry *e = find(t, key);
    if (!e) {
        if (make_room(t)) {
            e = &t->entries[t->n++];
        } else if (t->n == 0) {
            pthread_mutex_unlock(&t->lock); /* out of memory before the first entry */
            return;
        } else {
            /* Full: the entry seen longest ago gives way (an unlocked one first). */
            e = &t->entries[0];
            for (size_t i = 1; i < t->n; i++) {
                struct entry *c = &t->entries[i];
                bool c_locked = c->locked_until > now, e_locked = e->locked_until > now;
                if ((e_locked && !c_locked) ||
                    (e_locked == c_locked && c->last_seen < e->last_seen))
                    e = c;
            }
        }
        memset(e, 0, sizeof(*e));
        cf_strlcpy(e->key, key, sizeof(e->key));
        e->window_start = now;
    }
    if (now - e->window_start > (int64_t)t->policy.window_s * 1000) {
        e->window_start = now;
        e->failures = 0;
    }
    e->last_seen = now;
    if (++e->failures >= t->policy.max_failures) {
        e->locked_until = now + (int64_t)t->policy.lockout_s * 1000;
        e->failures = 0;
        e->window_start = now;
    }
    pthread_mutex_unlock(&t->lock);
}

void cf_throttle_success(struct cf_throttle *t, const char *key)
{
    pthread_mutex_lock(&t->lock);
    struct entry *e = find(t, key);
    if (e)
        *e = t->entries[--t->n];
    pthread_mutex_unlock(&t->lock);
}
