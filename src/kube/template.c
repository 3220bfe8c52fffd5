/* The template subset of managed Secrets (template.h). */
#include <string.h>

#include "kube/template.h"
#include "util/banned.h"

enum cf_rc cf_kube_template_render(const char *name, const char *tmpl, json_t *secrets,
                                   struct cf_buf *out, struct cf_err *err)
{
    const char *at = tmpl;
    cf_buf_reset(out);
    while (*at) {
        const char *open = strstr(at, "{{");
        if (!open) {
            if (cf_buf_puts(out, at) != CF_OK)
                return cf_err_set(err, CF_ETOOLARGE, "template '%s' is too large", name);
            break;
        }
        const char *close = strstr(open + 2, "}}");
        if (cf_buf_append(out, at, (size_t)(open - at)) != CF_OK)
            return cf_err_set(err, CF_ETOOLARGE, "template '%s' is too large", name);
        if (!close)
            return cf_err_set(err, CF_EVALIDATION,
                              "template '%s': '{{' at offset %zu is not closed", name,
                              (size_t)(open - tmpl));
        const char *p = open + 2, *end = close;
        while (p < end && *p == ' ')
            p++;
        while (end > p && end[-1] == ' ')
            end--;
        const char *dot = p < end && *p == '.' ? memchr(p + 1, '.', (size_t)(end - p - 1)) : NULL;
        char key[256];
        size_t key_len = dot ? (size_t)(dot - p - 1) : 0;
        if (!dot || key_len == 0 || key_len >= sizeof(key))
            return cf_err_set(err, CF_EUNSUPPORTED,
                              "template '%s': only {{ .KEY.Value }} and {{ .KEY.SecretPath }} are "
                              "supported (offset %zu)",
                              name, (size_t)(open - tmpl));
        memcpy(key, p + 1, key_len);
        key[key_len] = '\0';
        size_t field_len = (size_t)(end - dot - 1);
        const char *field = NULL;
        if (field_len == 5 && memcmp(dot + 1, "Value", 5) == 0)
            field = "secretValue";
        else if (field_len == 10 && memcmp(dot + 1, "SecretPath", 10) == 0)
            field = "secretPath";
        else
            return cf_err_set(err, CF_EUNSUPPORTED,
                              "template '%s': only {{ .KEY.Value }} and {{ .KEY.SecretPath }} are "
                              "supported (offset %zu)",
                              name, (size_t)(open - tmpl));
        json_t *secret = json_object_get(secrets, key);
        if (!secret)
            return cf_err_set(err, CF_ENOTFOUND, "template '%s': no secret '%s' in the scope", name,
                              key);
        const char *value = json_string_value(json_object_get(secret, field));
        if (cf_buf_append(out, value ? value : "",
                          value ? json_string_length(json_object_get(secret, field)) : 0) != CF_OK)
            return cf_err_set(err, CF_ETOOLARGE, "template '%s' is too large", name);
        at = close + 2;
    }
    return CF_OK;
}
