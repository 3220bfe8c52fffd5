/* Name validation and normalisation (see names.h). */
#include <string.h>

#include "core/names.h"
#include "util/banned.h"

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

enum cf_rc cf_folder_name_check(const char *name, const char *field, struct cf_err *err)
{
    size_t n = strlen(name);
    if (n == 0 || n > CF_SLUG_MAX)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: folder names are 1 to %d characters",
                            field, CF_SLUG_MAX);
    for (size_t i = 0; i < n; i++) {
        if (!is_alnum(name[i]) && name[i] != '-' && name[i] != '_')
            return cf_err_field(err, CF_EVALIDATION, field,
                                "%s: folder names may only contain letters, digits, '-' and '_'",
                                field);
    }
    return CF_OK;
}

enum cf_rc cf_path_normalize(const char *in, char out[CF_PATH_MAX + 1], const char *field,
                             struct cf_err *err)
{
    size_t start = 0, end = strlen(in);
    while (start < end && is_blank(in[start]))
        start++;
    while (end > start && is_blank(in[end - 1]))
        end--;
    size_t trimmed = end - start;
    if (start < end && in[start] == '/')
        start++;
    if (end > start && in[end - 1] == '/')
        end--;
    if (end - start + 1 > CF_PATH_MAX)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: paths are at most %d characters",
                            field, CF_PATH_MAX);
    out[0] = '/';
    memcpy(out + 1, in + start, end - start);
    out[end - start + 1] = '\0';
    if (end == start) {
        if (trimmed > 1) /* "//": an empty folder name, not the root */
            return cf_err_field(err, CF_EVALIDATION, field, "%s: empty folder name in '%.64s'",
                                field, in);
        return CF_OK;
    }

    /* Check each segment in place. */
    int depth = 0;
    char segment[CF_SLUG_MAX + 2];
    const char *p = out + 1;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (++depth > CF_PATH_DEPTH_MAX)
            return cf_err_field(err, CF_EVALIDATION, field, "%s: paths are at most %d folders deep",
                                field, CF_PATH_DEPTH_MAX);
        /* "a//": one trailing '/' was dropped above, a second one ends in an empty name */
        if (len == 0 || len > CF_SLUG_MAX || (slash && slash[1] == '\0'))
            return cf_err_field(err, CF_EVALIDATION, field,
                                "%s: '%.*s' has an empty or over-long folder name", field, 64, out);
        memcpy(segment, p, len);
        segment[len] = '\0';
        enum cf_rc rc = cf_folder_name_check(segment, field, err);
        if (rc != CF_OK)
            return rc;
        p += len + (slash ? 1 : 0);
    }
    return CF_OK;
}

enum cf_rc cf_key_check(const char *key, const char *field, struct cf_err *err)
{
    size_t n = strlen(key);
    if (n == 0)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: the secret key is empty", field);
    if (n > CF_KEY_MAX)
        return cf_err_field(err, CF_EVALIDATION, field,
                            "%s: '%.32s...' is longer than %d characters", field, key, CF_KEY_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        if (!is_alnum(c) && c != '_' && c != '-' && c != '.')
            return cf_err_field(err, CF_EVALIDATION, field,
                                "%s: invalid key '%.64s': secret keys may only contain letters, "
                                "digits, '_', '-' and '.'",
                                field, key);
    }
    if ((key[0] >= '0' && key[0] <= '9') || key[0] == '.')
        return cf_err_field(
            err, CF_EVALIDATION, field,
            "%s: invalid key '%.64s': secret keys must not start with a digit or '.'", field, key);
    return CF_OK;
}

enum cf_rc cf_slug_check(const char *slug, const char *field, struct cf_err *err)
{
    size_t n = strlen(slug);
    if (n == 0 || n > CF_SLUG_MAX)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: slugs are 1 to %d characters", field,
                            CF_SLUG_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = slug[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return cf_err_field(err, CF_EVALIDATION, field,
                                "%s: slugs may only contain lower-case letters, digits and '-'",
                                field);
    }
    return CF_OK;
}

enum cf_rc cf_text_check(const char *text, size_t max, bool required, const char *field,
                         struct cf_err *err)
{
    size_t n = strlen(text);
    size_t start = 0;
    while (start < n && is_blank(text[start]))
        start++;
    if (required && start == n)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: must not be empty", field);
    if (n > max)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: at most %zu bytes", field, max);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f)
            return cf_err_field(err, CF_EVALIDATION, field,
                                "%s: must not contain control characters", field);
    }
    return CF_OK;
}

void cf_slugify(const char *name, char out[CF_SLUG_MAX + 1])
{
    size_t n = 0;
    bool dash = false;
    for (const char *p = name; *p && n < CF_SLUG_MAX; p++) {
        char c = *p;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            if (dash && n > 0 && n < CF_SLUG_MAX - 1)
                out[n++] = '-';
            out[n++] = c;
            dash = false;
        } else {
            dash = true;
        }
    }
    out[n] = '\0';
    if (n == 0)
        memcpy(out, "project", sizeof("project"));
}

enum cf_rc cf_value_normalize(const char *value, size_t len, struct cf_buf *out)
{
    size_t start = 0, end = len;
    bool newline = len > 0 && value[len - 1] == '\n';
    while (start < end && is_blank(value[start]))
        start++;
    while (end > start && is_blank(value[end - 1]))
        end--;
    enum cf_rc rc = cf_buf_append(out, value + start, end - start);
    if (rc == CF_OK && newline)
        rc = cf_buf_append(out, "\n", 1);
    return rc;
}
