/* Secret references: `${KEY}` names KEY in the same environment and folder as the secret holding
 * the reference; `${env.a.b.KEY}` names KEY in folder /a/b of environment env (`${env.KEY}`: its
 * root). Expansion replaces each reference by the referenced value, itself expanded, to a depth of
 * CF_REF_DEPTH_MAX (counted through memoised values too). Text that is not a well-formed reference
 * is kept as is. A cycle, a missing target or a chain too deep is an error naming the keys
 * involved; cf_refs_broken tells such an error (the value's own) from a refusal (permission, the
 * budget, the store), so that a read of many values can report the one and go on.
 *
 * A reference multiplies: 6 bytes can stand for 64 KiB, and references nest. So expansion works in
 * two steps: it first measures what a value would expand to (its size and the substitutions it
 * makes, memoised per referenced value, no expanded bytes allocated), checks that against the
 * limits of a budget shared by every expansion of one request, and only then writes the result
 * into a buffer of exactly that size.
 *
 * This module is pure: values are fetched through a resolver callback, and everything fetched
 * during one request is memoised in a struct cf_refs (so a diamond of references costs each value
 * once, and plaintext lives in one place that is wiped on release). Not thread-safe; one per
 * request. */
#ifndef CF_CORE_REFS_H
#define CF_CORE_REFS_H

#include <stdbool.h>
#include <stddef.h>

#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

#define CF_REFS_MAX_ENTRIES 10000

/* The longest reference text ("${env.a.b.KEY}") cf_refs_broken gives. */
#define CF_REF_TEXT_MAX (CF_SLUG_MAX + CF_PATH_MAX + CF_KEY_MAX + 8)

/* The default limits of expansion (docs/api.md, "Secret references"): one expanded value, every
 * byte one request's expansions produce or fetch, and the references one request substitutes. */
#define CF_EXPAND_VALUE_MAX (1024 * 1024)
#define CF_EXPAND_REQUEST_MAX (8 * 1024 * 1024)
#define CF_EXPAND_REFS_MAX 100000

/* What the expansions of one request may cost, and what they cost so far. Shared by every struct
 * cf_refs of the request (a list and its imports); owned by the caller. */
struct cf_refs_budget {
    size_t value_max; /* bytes of one expanded value */
    size_t bytes_max; /* bytes expanded plus bytes fetched through references, per request */
    size_t refs_max;  /* references substituted, per request */
    size_t bytes_used;
    size_t refs_used;
    size_t refs_seen; /* references parsed while measuring (bounds the work of a refusal too) */
};

/* A budget with the default limits and nothing used. */
void cf_refs_budget_init(struct cf_refs_budget *budget);

/* Fetches the raw (unexpanded) value of key in env_slug at path, appending it to value.
 * CF_ENOTFOUND with a message such as "no secret 'B' in dev:/" when it does not exist; any other
 * error is passed through. */
typedef enum cf_rc (*cf_refs_resolve_fn)(void *ctx, const char *env_slug, const char *path,
                                         const char *key, struct cf_buf *value, struct cf_err *err);

struct cf_refs;

/* A new expansion context using resolve(ctx, ...). NULL when out of memory. */
struct cf_refs *cf_refs_new(cf_refs_resolve_fn resolve, void *ctx);

/* Makes refs count against budget (borrowed; it must outlive refs) instead of a budget of its own
 * with the default limits. */
void cf_refs_use_budget(struct cf_refs *refs, struct cf_refs_budget *budget);

/* Wipes every value held and frees; NULL is a no-op. */
void cf_refs_free(struct cf_refs *refs);

/* Seeds the context with a raw value already at hand (e.g. the secrets of a folder being listed),
 * so the resolver is not asked for it. The value is copied. */
enum cf_rc cf_refs_add(struct cf_refs *refs, const char *env_slug, const char *path,
                       const char *key, const char *value, size_t len, struct cf_err *err);

/* Expands value, which belongs to key in env_slug at path, appending the result to out (which the
 * caller wipes). Nothing is appended unless the whole expansion fits the budget. CF_EVALIDATION
 * naming the problem (field: key) for a cycle, a missing target, a chain deeper than
 * CF_REF_DEPTH_MAX, an expansion larger than the budget's value_max, or one that would take the
 * request over the budget's bytes_max or refs_max; the message names key and the limit. */
enum cf_rc cf_refs_expand(struct cf_refs *refs, const char *env_slug, const char *path,
                          const char *key, const char *value, size_t len, struct cf_buf *out,
                          struct cf_err *err);

/* The two steps of cf_refs_expand, for a caller that measures many values before writing any (so
 * that a request over its budget allocates no expanded text at all). cf_refs_measure fails as
 * cf_refs_expand does and otherwise charges the budget and sets *size; cf_refs_write then writes
 * that value's expansion, of exactly size bytes, to out. Between the two, refs must only be
 * measured further (never freed or given other values). */
enum cf_rc cf_refs_measure(struct cf_refs *refs, const char *env_slug, const char *path,
                           const char *key, const char *value, size_t len, size_t *size,
                           struct cf_err *err);
enum cf_rc cf_refs_write(struct cf_refs *refs, const char *env_slug, const char *path,
                         const char *key, const char *value, size_t len, size_t size,
                         struct cf_buf *out, struct cf_err *err);

/* After cf_refs_measure or cf_refs_expand failed: true when the value cannot be expanded because
 * of what the secrets hold (a reference to a secret, folder or environment that does not exist, a
 * cycle, a chain deeper than CF_REF_DEPTH_MAX), with *reference the reference that could not be
 * followed ("${...}", borrowed until the next call on refs); false (*reference NULL) when the
 * failure is a refusal: the caller may not read a target (CF_EFORBIDDEN), the budget is exceeded,
 * or the store or memory failed. A "missing" target is only ever one the caller may read where it
 * would be (the resolver answers CF_EFORBIDDEN elsewhere), so reporting it reveals nothing. */
bool cf_refs_broken(const struct cf_refs *refs, const char **reference);

/* Told, during cf_refs_check, of each reference (inner: the text between "${" and "}") in the
 * value of holder whose target does not exist, with the resolver's reason. */
typedef void (*cf_refs_missing_fn)(void *ctx, const char *holder, const char *inner,
                                   size_t inner_len, const char *reason);

/* Makes cf_refs_check tell fn(ctx, ...) of missing targets; fn NULL: no one. */
void cf_refs_on_missing(struct cf_refs *refs, cf_refs_missing_fn fn, void *ctx);

/* For a write: measures what value would expand to, without expanding it, and refuses
 * (CF_EVALIDATION, field "secretValue", naming key and the limit) a value larger than value_max
 * expanded or needing more than refs_max substitutions. References that cannot be followed
 * (missing, unreadable, cyclic, too deep) count as empty here, so the check is a lower bound that
 * never reveals anything about a value the writer may not read: reads enforce the limits again. */
enum cf_rc cf_refs_check(struct cf_refs *refs, const char *env_slug, const char *path,
                         const char *key, const char *value, size_t len, struct cf_err *err);

/* True when value contains at least one well-formed reference (a fast pre-check). */
bool cf_refs_present(const char *value, size_t len);

#endif
