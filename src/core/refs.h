/* Secret references: `${KEY}` names KEY in the same environment and folder as the secret holding
 * the reference; `${env.a.b.KEY}` names KEY in folder /a/b of environment env (`${env.KEY}`: its
 * root). Expansion replaces each reference by the referenced value, itself expanded, to a depth of
 * CF_REF_DEPTH_MAX. Text that is not a well-formed reference is kept as is. A cycle, a missing
 * target or a chain too deep is an error naming the keys involved.
 *
 * This module is pure: values are fetched through a resolver callback, and everything fetched or
 * expanded during one request is memoised in a struct cf_refs (so a diamond of references costs
 * each value once, and plaintext lives in one place that is wiped on release). Not thread-safe; one
 * per request. */
#ifndef CF_CORE_REFS_H
#define CF_CORE_REFS_H

#include <stdbool.h>
#include <stddef.h>

#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

#define CF_REFS_MAX_ENTRIES 10000

/* Fetches the raw (unexpanded) value of key in env_slug at path, appending it to value.
 * CF_ENOTFOUND with a message such as "no secret 'B' in dev:/" when it does not exist; any other
 * error is passed through. */
typedef enum cf_rc (*cf_refs_resolve_fn)(void *ctx, const char *env_slug, const char *path,
                                         const char *key, struct cf_buf *value, struct cf_err *err);

struct cf_refs;

/* A new expansion context using resolve(ctx, ...). NULL when out of memory. */
struct cf_refs *cf_refs_new(cf_refs_resolve_fn resolve, void *ctx);

/* Wipes every value held and frees; NULL is a no-op. */
void cf_refs_free(struct cf_refs *refs);

/* Seeds the context with a raw value already at hand (e.g. the secrets of a folder being listed),
 * so the resolver is not asked for it. The value is copied. */
enum cf_rc cf_refs_add(struct cf_refs *refs, const char *env_slug, const char *path,
                       const char *key, const char *value, size_t len, struct cf_err *err);

/* Expands value, which belongs to key in env_slug at path, appending the result to out (which the
 * caller wipes). CF_EVALIDATION naming the problem for a cycle, a missing target or a chain deeper
 * than CF_REF_DEPTH_MAX. */
enum cf_rc cf_refs_expand(struct cf_refs *refs, const char *env_slug, const char *path,
                          const char *key, const char *value, size_t len, struct cf_buf *out,
                          struct cf_err *err);

/* True when value contains at least one well-formed reference (a fast pre-check). */
bool cf_refs_present(const char *value, size_t len);

#endif
