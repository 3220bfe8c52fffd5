/* The template language of `coffer agent`: the subset of Go's text/template that Infisical's agent
 * templates use, parsed once into a tree and rendered as often as the secrets change.
 *
 * Supported (docs/agent.md lists it for users):
 *   text, copied as it is; {{/ * comment * /}} (without the blanks);
 *   {{- and -}} trim the blanks (space, tab, newline, carriage return) before or after an action;
 *   {{ secret "<project>" "<env>" "<path>" }} (also listSecrets): the folder's secrets, a list;
 *   {{ getSecretByName "<project>" "<env>" "<path>" "<NAME>" }}: one secret;
 *   {{ with PIPELINE }}...{{ end }}: the body with dot set to the pipeline's value (skipped when
 *   the value is an empty list); {{ range PIPELINE }}...{{ end }}: the body once per secret;
 *   {{ . }}, {{ .Key }}, {{ .Value }}, {{ .Comment }}, {{ .SecretPath }}, {{ .Type }} of a secret;
 *   {{ (getSecretByName "p" "e" "/" "N").Value }}: a field of a call's result;
 *   {{ else }} inside with/range: the branch taken when the value is empty.
 * Anything else (variables, pipes, other functions, if) is refused at parse time with the line and
 * column of the action, so a template that parses renders as written. */
#ifndef CF_CLI_TEMPLATE_H
#define CF_CLI_TEMPLATE_H

#include <stddef.h>

#include <jansson.h>

#include "util/buf.h"
#include "util/err.h"

struct cf_template;

/* Reads the secrets of a folder for a template: *secrets receives a JSON array of secret objects
 * in Coffer's v3 shape (secretKey, secretValue, secretComment, secretPath, type), a reference the
 * callback keeps alive until the render ends (the template does not release it). A non-CF_OK
 * result stops the render; err says why (no secret in it). */
typedef enum cf_rc (*cf_template_fetch_fn)(void *ctx, const char *project, const char *env,
                                           const char *path, json_t **secrets, struct cf_err *err);

/* Parses text (len bytes; name, borrowed, names it in messages). *out receives the template (free
 * with cf_template_free). CF_EINVAL with "NAME:LINE:COL: what" for a syntax error or an
 * unsupported construct; CF_ENOMEM. */
enum cf_rc cf_template_parse(const char *name, const char *text, size_t len,
                             struct cf_template **out, struct cf_err *err);

void cf_template_free(struct cf_template *tmpl);

/* Renders tmpl into out (cleared first; it receives secret values: release it with
 * cf_buf_release_wipe), calling fetch for each folder a call names. Errors name NAME:LINE:COL of
 * the action: CF_ENOTFOUND for getSecretByName of a missing secret, CF_EINVAL for a field of a
 * value that has none, fetch's code for a failed read, CF_ETOOLARGE past out's maximum. */
enum cf_rc cf_template_render(const struct cf_template *tmpl, cf_template_fetch_fn fetch, void *ctx,
                              struct cf_buf *out, struct cf_err *err);

#endif
