/* Pieces of the authorization decision (core.h has the decision itself, cf_authz_check), exposed
 * for validation and tests: roles and secret path globs.
 *
 * Glob syntax: an absolute path whose segments are folder names, a single star (any one folder
 * name) or a double star (any number of folders, including none). So "/backend/" followed by a
 * double star matches
 * "/backend" and everything below it, and "/" followed by a double star matches everything.
 * (Spelled out because the pattern itself would end this comment.) */
#ifndef CF_CORE_AUTHZ_H
#define CF_CORE_AUTHZ_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

/* Bit of an action in a rule's action mask. */
#define CF_ACTION_BIT(action) (1u << (action))

/* The actions a role allows (mask), or false for an unknown role. */
bool cf_role_actions(const char *role, uint32_t *actions);

/* A glob may have at most this many wildcard segments (single or double stars), and at most
 * CF_PATH_DEPTH_MAX segments in all. */
#define CF_GLOB_WILDCARDS_MAX 8

/* CF_OK when glob is a valid path glob within the limits above; CF_EVALIDATION naming field (and
 * the limit) otherwise. */
enum cf_rc cf_glob_check(const char *glob, const char *field, struct cf_err *err);

/* True when the normalised path matches glob. Time O(glob segments x path segments), no recursion.
 */
bool cf_glob_match(const char *glob, const char *path);

#endif
