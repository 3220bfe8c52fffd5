/* The values of an InfisicalSecret's template.data: the forms Infisical's documentation shows,
 * {{ .KEY.Value }} (the secret's value) and {{ .KEY.SecretPath }} (the folder it came from), with
 * any literal text around them and blanks inside the braces. Other Go template constructs
 * (pipelines, functions, range, with, comments) are refused, so that a manifest relying on them
 * fails loudly in its status instead of producing a different value. */
#ifndef CF_KUBE_TEMPLATE_H
#define CF_KUBE_TEMPLATE_H

#include <jansson.h>

#include "util/buf.h"
#include "util/err.h"

/* Renders tmpl (the value of template.data's key name, used in messages) with secrets (borrowed:
 * an object mapping each key to {secretValue, secretPath}) into out (cleared first; release it
 * with cf_buf_release_wipe: it holds secret values). CF_EVALIDATION for a "{{" without "}}",
 * CF_EUNSUPPORTED for another construct, CF_ENOTFOUND for a key not in secrets, CF_ETOOLARGE past
 * out's maximum; err names the template key and the offset, never a value. */
enum cf_rc cf_kube_template_render(const char *name, const char *tmpl, json_t *secrets,
                                   struct cf_buf *out, struct cf_err *err);

#endif
