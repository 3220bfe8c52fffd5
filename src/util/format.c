/* Export formats (see format.h): quoting and escaping for shells, YAML, CSV, JSON, Azure Pipelines
 * logging commands and GitHub Actions files. Each format is a loop over the items writing into one
 * wiped buffer; the helpers are exported for unit tests. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "util/format.h"
#include "util/jsonw.h"
#include "util/str.h"
#include "util/banned.h"

static const struct {
    const char *name;
    const char *filename;
    const char *extension;
} formats[] = {
    [CF_FORMAT_DOTENV] = {"dotenv", ".env", ".env"},
    [CF_FORMAT_DOTENV_EXPORT] = {"dotenv-export", ".env", ".env"},
    [CF_FORMAT_JSON] = {"json", "secrets.json", ".json"},
    [CF_FORMAT_YAML] = {"yaml", "secrets.yaml", ".yaml"},
    [CF_FORMAT_CSV] = {"csv", "secrets.csv", ".csv"},
    [CF_FORMAT_AZURE_DEVOPS] = {"azure-devops", "secrets.azure-devops.txt", ".txt"},
    [CF_FORMAT_GITHUB] = {"github", "secrets.github.env", ".env"},
};
#define NFORMATS (CF_ARRAY_SIZE(formats))

bool cf_format_from_name(const char *name, enum cf_format *out)
{
    for (size_t i = 0; name && i < NFORMATS; i++) {
        if (strcasecmp(name, formats[i].name) == 0) {
            *out = (enum cf_format)i;
            return true;
        }
    }
    return false;
}

const char *cf_format_name(enum cf_format format)
{
    return (size_t)format < NFORMATS ? formats[format].name : "?";
}

const char *cf_format_default_filename(enum cf_format format)
{
    return (size_t)format < NFORMATS ? formats[format].filename : ".env";
}

const char *cf_format_default_extension(enum cf_format format)
{
    return (size_t)format < NFORMATS ? formats[format].extension : ".env";
}

bool cf_format_shell_name(const char *name)
{
    if (!name ||
        !((*name >= 'A' && *name <= 'Z') || (*name >= 'a' && *name <= 'z') || *name == '_'))
        return false;
    for (const char *p = name + 1; *p; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return false;
    }
    return true;
}

enum cf_rc cf_format_shell_quote(struct cf_buf *out, const char *value, size_t len)
{
    enum cf_rc rc = cf_buf_append(out, "'", 1);
    size_t start = 0;
    for (size_t i = 0; rc == CF_OK && i < len; i++) {
        if (value[i] != '\'')
            continue;
        /* Close the quote, add an escaped quote, reopen: 'it'\''s'. */
        rc = cf_buf_append(out, value + start, i - start);
        if (rc == CF_OK)
            rc = cf_buf_append(out, "'\\''", 4);
        start = i + 1;
    }
    if (rc == CF_OK && len > start)
        rc = cf_buf_append(out, value + start, len - start);
    if (rc == CF_OK)
        rc = cf_buf_append(out, "'", 1);
    return rc;
}

enum cf_rc cf_format_azure_escape(struct cf_buf *out, const char *text, size_t len, bool property)
{
    enum cf_rc rc = CF_OK;
    size_t start = 0;
    for (size_t i = 0; rc == CF_OK && i < len; i++) {
        const char *enc = NULL;
        switch (text[i]) {
        case '%':
            enc = "%AZP25";
            break;
        case '\r':
            enc = "%0D";
            break;
        case '\n':
            enc = "%0A";
            break;
        case ';':
            enc = property ? "%3B" : NULL;
            break;
        case ']':
            enc = property ? "%5D" : NULL;
            break;
        default:
            break;
        }
        if (!enc)
            continue;
        rc = cf_buf_append(out, text + start, i - start);
        if (rc == CF_OK)
            rc = cf_buf_puts(out, enc);
        start = i + 1;
    }
    if (rc == CF_OK && len > start)
        rc = cf_buf_append(out, text + start, len - start);
    return rc;
}

/* Decodes the UTF-8 sequence at s (already validated) into *cp; returns its length. */
static size_t utf8_decode(const unsigned char *s, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if ((s[0] & 0xe0) == 0xc0) {
        *cp = ((uint32_t)(s[0] & 0x1f) << 6) | (s[1] & 0x3f);
        return 2;
    }
    if ((s[0] & 0xf0) == 0xe0) {
        *cp = ((uint32_t)(s[0] & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
        return 3;
    }
    *cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3f) << 12) |
          ((uint32_t)(s[2] & 0x3f) << 6) | (s[3] & 0x3f);
    return 4;
}

/* YAML's c-printable, minus what a double-quoted scalar must not hold literally: line breaks that
 * would be folded (NEL, LS, PS) and the byte order mark. */
static bool yaml_literal(uint32_t cp)
{
    if (cp == '"' || cp == '\\' || cp == 0x2028 || cp == 0x2029 || cp == 0xfeff)
        return false;
    if (cp >= 0x20 && cp <= 0x7e)
        return true;
    if (cp >= 0xa0 && cp <= 0xd7ff)
        return true;
    if (cp >= 0xe000 && cp <= 0xfffd)
        return true;
    if (cp >= 0x10000 && cp <= 0x10ffff)
        return true;
    return false; /* C0 and C1 controls (NEL included), DEL, U+FFFE, U+FFFF */
}

static enum cf_rc yaml_escape(struct cf_buf *out, uint32_t cp)
{
    switch (cp) {
    case 0:
        return cf_buf_puts(out, "\\0");
    case 0x07:
        return cf_buf_puts(out, "\\a");
    case 0x08:
        return cf_buf_puts(out, "\\b");
    case '\t':
        return cf_buf_puts(out, "\\t");
    case '\n':
        return cf_buf_puts(out, "\\n");
    case 0x0b:
        return cf_buf_puts(out, "\\v");
    case 0x0c:
        return cf_buf_puts(out, "\\f");
    case '\r':
        return cf_buf_puts(out, "\\r");
    case 0x1b:
        return cf_buf_puts(out, "\\e");
    case '"':
        return cf_buf_puts(out, "\\\"");
    case '\\':
        return cf_buf_puts(out, "\\\\");
    case 0x85:
        return cf_buf_puts(out, "\\N");
    case 0x2028:
        return cf_buf_puts(out, "\\L");
    case 0x2029:
        return cf_buf_puts(out, "\\P");
    default:
        break;
    }
    if (cp <= 0xff)
        return cf_buf_printf(out, "\\x%02X", (unsigned)cp);
    if (cp <= 0xffff)
        return cf_buf_printf(out, "\\u%04X", (unsigned)cp);
    return cf_buf_printf(out, "\\U%08X", (unsigned)cp);
}

enum cf_rc cf_format_yaml_quote(struct cf_buf *out, const char *text, size_t len)
{
    if (len && !cf_utf8_valid_allow_nul(text, len))
        return CF_EINVAL;
    enum cf_rc rc = cf_buf_append(out, "\"", 1);
    const unsigned char *p = (const unsigned char *)text;
    size_t i = 0, start = 0;
    while (rc == CF_OK && i < len) {
        uint32_t cp;
        size_t n = utf8_decode(p + i, &cp);
        if (!yaml_literal(cp)) {
            rc = cf_buf_append(out, text + start, i - start);
            if (rc == CF_OK)
                rc = yaml_escape(out, cp);
            start = i + n;
        }
        i += n;
    }
    if (rc == CF_OK && len > start)
        rc = cf_buf_append(out, text + start, len - start);
    if (rc == CF_OK)
        rc = cf_buf_append(out, "\"", 1);
    return rc;
}

/* A mapping key that every YAML parser reads back as the same string when written plain: a shell
 * name that is not one of YAML 1.1's booleans or null. */
static bool yaml_plain_key(const char *name)
{
    static const char *const special[] = {"y",   "n",    "yes",   "no",  "on",
                                          "off", "true", "false", "null"};
    if (!cf_format_shell_name(name))
        return false;
    for (size_t i = 0; i < CF_ARRAY_SIZE(special); i++) {
        if (strcasecmp(name, special[i]) == 0)
            return false;
    }
    return true;
}

enum cf_rc cf_format_csv_field(struct cf_buf *out, const char *text, size_t len)
{
    bool quote = len > 0 && (text[0] == ' ' || text[0] == '\t' ||
                             (len == 2 && text[0] == '\\' && text[1] == '.'));
    for (size_t i = 0; !quote && i < len; i++)
        quote = text[i] == ',' || text[i] == '"' || text[i] == '\r' || text[i] == '\n';
    if (!quote)
        return cf_buf_append(out, text, len);
    enum cf_rc rc = cf_buf_append(out, "\"", 1);
    size_t start = 0;
    for (size_t i = 0; rc == CF_OK && i < len; i++) {
        if (text[i] != '"')
            continue;
        rc = cf_buf_append(out, text + start, i + 1 - start); /* through the quote, then another */
        if (rc == CF_OK)
            rc = cf_buf_append(out, "\"", 1);
        start = i + 1;
    }
    if (rc == CF_OK && len > start)
        rc = cf_buf_append(out, text + start, len - start);
    if (rc == CF_OK)
        rc = cf_buf_append(out, "\"", 1);
    return rc;
}

static const char *or_empty(const char *text)
{
    return text ? text : "";
}

static enum cf_rc render_json(const struct cf_format_item *items, size_t n, struct cf_buf *out,
                              struct cf_err *err)
{
    struct cf_jsonw w;
    cf_jsonw_init(&w, out);
    cf_jsonw_array_begin(&w);
    for (size_t i = 0; i < n; i++) {
        const struct cf_format_item *item = &items[i];
        size_t t;
        json_t *tag;
        cf_jsonw_object_begin(&w);
        cf_jsonw_kstr(&w, "key", item->name);
        cf_jsonw_kstr(&w, "workspace", or_empty(item->workspace));
        cf_jsonw_key(&w, "value");
        cf_jsonw_string(&w, item->value_len ? item->value : "", item->value_len);
        cf_jsonw_kstr(&w, "type", item->type ? item->type : "shared");
        cf_jsonw_kstr(&w, "_id", or_empty(item->id));
        cf_jsonw_kstr(&w, "secretPath", or_empty(item->secret_path));
        cf_jsonw_key(&w, "tags");
        cf_jsonw_array_begin(&w);
        json_array_foreach(item->tags, t, tag)
        {
            json_t *color = json_object_get(tag, "color");
            cf_jsonw_object_begin(&w);
            cf_jsonw_kstr(&w, "id", or_empty(json_string_value(json_object_get(tag, "id"))));
            cf_jsonw_kstr(&w, "name", or_empty(json_string_value(json_object_get(tag, "name"))));
            cf_jsonw_kstr(&w, "slug", or_empty(json_string_value(json_object_get(tag, "slug"))));
            if (json_is_string(color))
                cf_jsonw_kstr(&w, "color", json_string_value(color));
            else
                cf_jsonw_knull(&w, "color");
            cf_jsonw_object_end(&w);
        }
        cf_jsonw_array_end(&w);
        cf_jsonw_kstr(&w, "comment", or_empty(item->comment));
        cf_jsonw_kstr(&w, "Etag", "");
        cf_jsonw_kbool(&w, "skipMultilineEncoding", item->skip_multiline);
        cf_jsonw_object_end(&w);
    }
    cf_jsonw_array_end(&w);
    enum cf_rc rc = cf_jsonw_finish(&w);
    if (rc == CF_EINVAL)
        return cf_err_set(err, rc, "a secret's text is not valid UTF-8, which JSON cannot carry");
    if (rc != CF_OK)
        return cf_err_set(err, rc, "the output is too large (%s)", cf_rc_str(rc));
    rc = cf_buf_append(out, "\n", 1);
    return rc == CF_OK ? CF_OK : cf_err_set(err, rc, "the output is too large");
}

static bool has_nul(const struct cf_format_item *item)
{
    return item->value_len && memchr(item->value, '\0', item->value_len) != NULL;
}

/* The checks every line-per-variable format makes before writing anything. */
static enum cf_rc check_items(enum cf_format format, const struct cf_format_item *items, size_t n,
                              struct cf_err *err)
{
    bool shell = format == CF_FORMAT_DOTENV || format == CF_FORMAT_DOTENV_EXPORT;
    bool env_like = shell || format == CF_FORMAT_AZURE_DEVOPS || format == CF_FORMAT_GITHUB;
    for (size_t i = 0; i < n; i++) {
        const char *name = items[i].name;
        if (!name || !*name)
            return cf_err_set(err, CF_EINVAL, "a secret has an empty name");
        if (shell && !cf_format_shell_name(name))
            return cf_err_set(
                err, CF_EINVAL,
                "'%.128s' is not a valid shell variable name ([A-Za-z_][A-Za-z0-9_]*), "
                "so format %s cannot export it; use --format json, yaml or csv, or "
                "rename the secret",
                name, cf_format_name(format));
        if (format == CF_FORMAT_GITHUB &&
            (strchr(name, '=') || strstr(name, "<<") || strpbrk(name, "\r\n")))
            return cf_err_set(err, CF_EINVAL,
                              "'%.128s' cannot be a GitHub Actions variable name (it holds '=', "
                              "'<<' or a line break)",
                              name);
        if (env_like && has_nul(&items[i]))
            return cf_err_set(err, CF_EINVAL,
                              "the value of '%.128s' contains a NUL byte, which an environment "
                              "variable cannot hold; use --format json or yaml",
                              name);
    }
    return CF_OK;
}

static enum cf_rc render_line(enum cf_format format, const struct cf_format_item *item,
                              struct cf_buf *out)
{
    enum cf_rc rc = CF_OK;
    switch (format) {
    case CF_FORMAT_DOTENV_EXPORT:
        rc = cf_buf_puts(out, "export ");
        /* fall through */
    case CF_FORMAT_DOTENV:
        if (rc == CF_OK)
            rc = cf_buf_puts(out, item->name);
        if (rc == CF_OK)
            rc = cf_buf_append(out, "=", 1);
        if (rc == CF_OK)
            rc = cf_format_shell_quote(out, item->value, item->value_len);
        break;
    case CF_FORMAT_YAML:
        if (yaml_plain_key(item->name))
            rc = cf_buf_puts(out, item->name);
        else
            rc = cf_format_yaml_quote(out, item->name, strlen(item->name));
        if (rc == CF_OK)
            rc = cf_buf_append(out, ": ", 2);
        if (rc == CF_OK)
            rc = cf_format_yaml_quote(out, item->value, item->value_len);
        break;
    case CF_FORMAT_CSV:
        rc = cf_format_csv_field(out, item->name, strlen(item->name));
        if (rc == CF_OK)
            rc = cf_buf_append(out, ",", 1);
        if (rc == CF_OK)
            rc = cf_format_csv_field(out, item->value, item->value_len);
        break;
    case CF_FORMAT_AZURE_DEVOPS:
        rc = cf_buf_puts(out, "##vso[task.setvariable variable=");
        if (rc == CF_OK)
            rc = cf_format_azure_escape(out, item->name, strlen(item->name), true);
        if (rc == CF_OK)
            rc = cf_buf_puts(out, ";issecret=true]");
        if (rc == CF_OK)
            rc = cf_format_azure_escape(out, item->value, item->value_len, false);
        break;
    case CF_FORMAT_JSON:
    case CF_FORMAT_GITHUB:
        CF_BUG("not a line format");
    }
    if (rc == CF_OK)
        rc = cf_buf_append(out, "\n", 1);
    return rc;
}

enum cf_rc cf_format_render(enum cf_format format, const struct cf_format_item *items, size_t n,
                            struct cf_buf *out, struct cf_err *err)
{
    if (format == CF_FORMAT_GITHUB)
        CF_BUG("github output goes through cf_format_github");
    if (format == CF_FORMAT_JSON)
        return render_json(items, n, out, err);
    enum cf_rc rc = check_items(format, items, n, err);
    if (rc != CF_OK)
        return rc;
    if (format == CF_FORMAT_CSV && (rc = cf_buf_puts(out, "Key,Value\n")) != CF_OK)
        return cf_err_set(err, rc, "the output is too large");
    for (size_t i = 0; i < n; i++) {
        rc = render_line(format, &items[i], out);
        if (rc == CF_EINVAL)
            return cf_err_set(err, rc, "the name or value of '%.128s' is not valid UTF-8",
                              items[i].name);
        if (rc != CF_OK)
            return cf_err_set(err, rc, "the output is too large (%s)", cf_rc_str(rc));
    }
    return CF_OK;
}

/* ---- github ---------------------------------------------------------------------------------- */

/* Appends one mask line for line (len > 0 bytes without CR/LF), % escaped as the runner expects. */
static enum cf_rc mask_line(struct cf_buf *masks, const char *line, size_t len)
{
    enum cf_rc rc = cf_buf_puts(masks, "::add-mask::");
    size_t start = 0;
    for (size_t i = 0; rc == CF_OK && i < len; i++) {
        if (line[i] != '%')
            continue;
        rc = cf_buf_append(masks, line + start, i - start);
        if (rc == CF_OK)
            rc = cf_buf_puts(masks, "%25");
        start = i + 1;
    }
    if (rc == CF_OK && len > start)
        rc = cf_buf_append(masks, line + start, len - start);
    if (rc == CF_OK)
        rc = cf_buf_append(masks, "\n", 1);
    return rc;
}

static enum cf_rc mask_value(struct cf_buf *masks, const char *value, size_t len)
{
    enum cf_rc rc = CF_OK;
    size_t start = 0;
    for (size_t i = 0; rc == CF_OK && i <= len; i++) {
        if (i < len && value[i] != '\r' && value[i] != '\n')
            continue;
        if (i > start)
            rc = mask_line(masks, value + start, i - start);
        start = i + 1;
    }
    return rc;
}

/* Fills delim (size >= 46) with "ghadelimiter_" and 32 random hex digits not found in value. */
static void choose_delimiter(const char *value, size_t len, char *delim, size_t size)
{
    static const char prefix[] = "ghadelimiter_";
    unsigned char random[16];
    do {
        randombytes_buf(random, sizeof(random));
        memcpy(delim, prefix, sizeof(prefix) - 1);
        sodium_bin2hex(delim + sizeof(prefix) - 1, size - (sizeof(prefix) - 1), random,
                       sizeof(random));
    } while (len && memmem(value, len, delim, strlen(delim)) != NULL);
}

enum cf_rc cf_format_github(const struct cf_format_item *items, size_t n, struct cf_buf *masks,
                            struct cf_buf *env, struct cf_err *err)
{
    enum cf_rc rc = check_items(CF_FORMAT_GITHUB, items, n, err);
    char delim[64];
    if (rc != CF_OK)
        return rc;
    for (size_t i = 0; rc == CF_OK && i < n; i++) {
        const struct cf_format_item *item = &items[i];
        choose_delimiter(item->value, item->value_len, delim, sizeof(delim));
        rc = mask_value(masks, item->value, item->value_len);
        if (rc == CF_OK)
            rc = cf_buf_printf(env, "%s<<%s\n", item->name, delim);
        if (rc == CF_OK)
            rc = cf_buf_append(env, item->value, item->value_len);
        if (rc == CF_OK)
            rc = cf_buf_printf(env, "\n%s\n", delim);
    }
    if (rc != CF_OK)
        return cf_err_set(err, rc, "the output is too large (%s)", cf_rc_str(rc));
    return CF_OK;
}
