/* Validation and normalisation of every name that comes from outside: folder paths, secret keys,
 * slugs, display names, and secret values (Infisical's trimming rule). Pure functions; each failure
 * is CF_EVALIDATION with err->field set to the given field name and a message saying what is
 * allowed. */
#ifndef CF_CORE_NAMES_H
#define CF_CORE_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

#define CF_PATH_DEPTH_MAX 32

/* Normalises a folder path into out: surrounding blanks trimmed, a leading '/' added, a trailing
 * '/' removed.
 * "" and "/" are the root. Each segment must be a valid folder name (see cf_folder_name_check). */
enum cf_rc cf_path_normalize(const char *in, char out[CF_PATH_MAX + 1], const char *field,
                             struct cf_err *err);

/* Secret key: 1..CF_KEY_MAX characters of [A-Za-z0-9_.-], not starting with a digit or '.'. */
enum cf_rc cf_key_check(const char *key, const char *field, struct cf_err *err);

/* Project/environment/tag slug: 1..CF_SLUG_MAX characters of [a-z0-9-]. */
enum cf_rc cf_slug_check(const char *slug, const char *field, struct cf_err *err);

/* Folder name: 1..CF_SLUG_MAX characters of [A-Za-z0-9_-]. */
enum cf_rc cf_folder_name_check(const char *name, const char *field, struct cf_err *err);

/* Display name or description: at most max bytes, no control characters; non-empty when required.
 */
enum cf_rc cf_text_check(const char *text, size_t max, bool required, const char *field,
                         struct cf_err *err);

/* Derives a slug from a display name: lower-case ASCII letters and digits kept, runs of anything
 * else become one '-', no leading or trailing '-'; "project" when nothing is left. */
void cf_slugify(const char *name, char out[CF_SLUG_MAX + 1]);

/* Appends the normalised form of a value to out: surrounding blanks (space, tab, CR, LF) trimmed,
 * then one
 * '\n' added back if the original ended with '\n' (keeps PEM files intact). */
enum cf_rc cf_value_normalize(const char *value, size_t len, struct cf_buf *out);

#endif
