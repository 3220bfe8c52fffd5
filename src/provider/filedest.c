/* The file destination (see filedest.h): reads a dotenv, JSON or YAML file back into entries,
 * merges a push into them, renders the result with util/format.h and replaces the file whole. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "provider/filedest.h"
#include "util/buf.h"
#include "util/file.h"
#include "util/format.h"
#include "util/str.h"
#include "util/banned.h"

#define PATH_MAX_LEN 4000 /* leaves room for the temporary file's suffix (util/file.c) */

/* ---- configuration ----------------------------------------------------------------------------
 */

/* The directory file syncs may write below (--sync-file-dir), resolved; "" while file syncs are
 * off. Without it, whoever may create a sync (a project's admin) could make the server write or
 * read any file its user can: its own root key, another service's configuration. Frozen
 * configuration: set once at start, before the sync worker runs. */
static char file_root[PATH_MAX_LEN + 1];

enum cf_rc cf_filedest_set_root(const char *dir, struct cf_err *err)
{
    char resolved[PATH_MAX];
    struct stat st;
    file_root[0] = '\0';
    if (!dir || !*dir)
        return CF_OK;
    if (dir[0] != '/')
        return cf_err_set(err, CF_EINVAL, "--sync-file-dir takes an absolute directory path");
    if (!realpath(dir, resolved))
        return cf_err_set(err, CF_EINVAL, "--sync-file-dir '%.512s': %s", dir, strerror(errno));
    if (stat(resolved, &st) != 0 || !S_ISDIR(st.st_mode))
        return cf_err_set(err, CF_EINVAL, "--sync-file-dir '%.512s' is not a directory", dir);
    if (strcmp(resolved, "/") == 0)
        return cf_err_set(err, CF_EINVAL,
                          "--sync-file-dir cannot be / (name the one directory "
                          "file syncs may write to)");
    if (!cf_strlcpy(file_root, resolved, sizeof(file_root)))
        return cf_err_set(err, CF_EINVAL, "--sync-file-dir is longer than %d bytes", PATH_MAX_LEN);
    return CF_OK;
}

/* CF_OK when path (absolute) lies below the --sync-file-dir directory: no empty, "." or ".."
 * component, and its directory, with every symbolic link resolved, is that directory or below
 * it. Checked on every use, so that a link swapped in later does not lead out of it. */
static enum cf_rc path_allowed(const char *path, struct cf_err *err)
{
    if (!file_root[0])
        return cf_err_field(err, CF_EVALIDATION, "path",
                            "file syncs are off on this server: its administrator allows them "
                            "below one directory with --sync-file-dir DIR (COFFER_SYNC_FILE_DIR)");
    for (const char *c = path + 1;; c++) {
        const char *end = strchr(c, '/');
        size_t len = end ? (size_t)(end - c) : strlen(c);
        if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
            return cf_err_field(err, CF_EVALIDATION, "path",
                                "'path' must not hold empty, '.' or '..' components");
        if (!end)
            break;
        c = end;
    }
    /* The deepest directory of path that exists, with its links resolved: components below it
     * do not exist yet, so cannot be links (a push checks again). */
    char dir[PATH_MAX_LEN + 1], resolved[PATH_MAX];
    cf_strlcpy(dir, path, sizeof(dir));
    for (;;) {
        char *slash = strrchr(dir, '/');
        if (slash == dir) {
            cf_strlcpy(resolved, "/", sizeof(resolved));
            break;
        }
        *slash = '\0';
        if (realpath(dir, resolved))
            break;
        struct stat link;
        if (errno != ENOENT || lstat(dir, &link) == 0) /* lstat: a link to nothing (yet) */
            return cf_err_field(err, CF_EVALIDATION, "path",
                                "the directory of 'path' cannot be used (%s)", strerror(errno));
    }
    size_t root_len = strlen(file_root);
    if (strncmp(resolved, file_root, root_len) != 0 ||
        (resolved[root_len] != '\0' && resolved[root_len] != '/'))
        return cf_err_field(err, CF_EVALIDATION, "path",
                            "'path' must lie below the server's --sync-file-dir directory");
    return CF_OK;
}

static enum cf_rc config_get(const json_t *config, const char **path, enum cf_format *format,
                             struct cf_err *err)
{
    if (!json_is_object(config))
        return cf_err_field(err, CF_EVALIDATION, "destinationConfig",
                            "the file destination's configuration must be an object");
    const json_t *jpath = json_object_get(config, "path");
    const json_t *jformat = json_object_get(config, "format");
    const char *p = json_string_value(jpath);
    if (!p || p[0] != '/')
        return cf_err_field(err, CF_EVALIDATION, "path",
                            "'path' must be an absolute file path (a string starting with /)");
    if (strlen(p) != json_string_length(jpath) || strlen(p) > PATH_MAX_LEN ||
        p[strlen(p) - 1] == '/')
        return cf_err_field(err, CF_EVALIDATION, "path",
                            "'path' must name a file (no NUL, no trailing /, at most %d bytes)",
                            PATH_MAX_LEN);
    enum cf_rc rc = path_allowed(p, err);
    if (rc != CF_OK)
        return rc;
    *format = CF_FORMAT_DOTENV;
    if (jformat && !json_is_null(jformat)) {
        const char *f = json_string_value(jformat);
        if (!f || !cf_format_from_name(f, format) ||
            (*format != CF_FORMAT_DOTENV && *format != CF_FORMAT_JSON && *format != CF_FORMAT_YAML))
            return cf_err_field(err, CF_EVALIDATION, "format",
                                "'format' must be \"dotenv\", \"json\" or \"yaml\"");
    }
    *path = p;
    return CF_OK;
}

static enum cf_rc file_config_check(const json_t *config, struct cf_err *err)
{
    const char *path;
    enum cf_format format;
    return config_get(config, &path, &format, err);
}

/* Names are kept as they are, but must be environment variable names: the same sync may be read
 * as dotenv, and a YAML or JSON reader takes them too. */
static enum cf_rc file_map_name(const char *name, char *out, size_t size, struct cf_err *err)
{
    if (!cf_format_shell_name(name))
        return cf_err_field(err, CF_EVALIDATION, "name",
                            "'%.64s' is not a variable name a file destination takes (letters, "
                            "digits and _, not starting with a digit)",
                            name);
    if (!cf_strlcpy(out, name, size))
        return cf_err_field(err, CF_EVALIDATION, "name", "'%.64s...' is too long", name);
    return CF_OK;
}

/* ---- entries ----------------------------------------------------------------------------------
 */

/* Sets name to value (value_len bytes, copied) in l, replacing an entry of that name. */
static enum cf_rc entry_set(struct cf_dest_list *l, const char *name, size_t name_len,
                            const char *value, size_t value_len)
{
    char *v = malloc(value_len + 1);
    if (!v)
        return CF_ENOMEM;
    memcpy(v, value, value_len);
    v[value_len] = '\0';
    for (size_t i = 0; i < l->n; i++) {
        if (strlen(l->items[i].name) == name_len && memcmp(l->items[i].name, name, name_len) == 0) {
            sodium_memzero(l->items[i].value, strlen(l->items[i].value));
            free(l->items[i].value);
            l->items[i].value = v;
            return CF_OK;
        }
    }
    struct cf_dest_entry *items = realloc(l->items, (l->n + 1) * sizeof(*items));
    char *n = strndup(name, name_len);
    if (!items || !n) {
        if (items)
            l->items = items;
        free(n);
        sodium_memzero(v, value_len);
        free(v);
        return CF_ENOMEM;
    }
    l->items = items;
    l->items[l->n] = (struct cf_dest_entry){.name = n, .value = v};
    l->n++;
    return CF_OK;
}

static void entry_remove(struct cf_dest_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->items[i].name, name) != 0)
            continue;
        free(l->items[i].name);
        sodium_memzero(l->items[i].value, strlen(l->items[i].value));
        free(l->items[i].value);
        memmove(&l->items[i], &l->items[i + 1], (l->n - i - 1) * sizeof(l->items[0]));
        l->n--;
        return;
    }
}

/* ---- reading back -----------------------------------------------------------------------------
 */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static bool is_name_char(char c, bool first)
{
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (!first && c >= '0' && c <= '9');
}

/* One dotenv value at text[*pos], shell-style: '...' literal, "..." with \" \\ \$ \` and \n
 * escapes, \c, and bare characters, concatenated up to a blank or the end of the line. */
static enum cf_rc dotenv_value(const char *text, size_t len, size_t *pos, struct cf_buf *value)
{
    size_t i = *pos;
    enum cf_rc rc = CF_OK;
    while (rc == CF_OK && i < len && !is_blank(text[i]) && text[i] != '\n') {
        if (text[i] == '\'') {
            const char *end = memchr(text + i + 1, '\'', len - i - 1);
            if (!end)
                return CF_EINVAL;
            rc = cf_buf_append(value, text + i + 1, (size_t)(end - text) - i - 1);
            i = (size_t)(end - text) + 1;
        } else if (text[i] == '"') {
            for (i++; rc == CF_OK && i < len && text[i] != '"'; i++) {
                char c = text[i];
                if (c == '\\' && i + 1 < len && strchr("\"\\$`n", text[i + 1])) {
                    c = text[i + 1] == 'n' ? '\n' : text[i + 1];
                    i++;
                }
                rc = cf_buf_append(value, &c, 1);
            }
            if (i >= len)
                return CF_EINVAL;
            i++;
        } else if (text[i] == '\\' && i + 1 < len) {
            rc = cf_buf_append(value, text + i + 1, 1);
            i += 2;
        } else {
            rc = cf_buf_append(value, text + i, 1);
            i++;
        }
    }
    *pos = i;
    return rc;
}

/* Skips blanks and a comment to the end of the line; false when something else is there. */
static bool line_end(const char *text, size_t len, size_t *pos)
{
    size_t i = *pos;
    while (i < len && is_blank(text[i]))
        i++;
    if (i < len && text[i] == '#') {
        while (i < len && text[i] != '\n')
            i++;
    }
    if (i < len && text[i] != '\n')
        return false;
    *pos = i;
    return true;
}

static enum cf_rc parse_dotenv(const char *text, size_t len, struct cf_dest_list *out,
                               size_t *bad_line)
{
    struct cf_buf value;
    enum cf_rc rc = CF_OK;
    size_t i = 0, line = 1;
    cf_buf_init(&value, CF_FILEDEST_MAX);
    while (rc == CF_OK && i < len) {
        size_t start_line = line;
        while (i < len && is_blank(text[i]))
            i++;
        if (i < len && (text[i] == '\n' || text[i] == '#')) {
            line_end(text, len, &i);
            if (i < len) {
                i++;
                line++;
            }
            continue;
        }
        if (i + 7 <= len && memcmp(text + i, "export ", 7) == 0)
            i += 7;
        size_t name = i;
        while (i < len && is_name_char(text[i], i == name))
            i++;
        if (i == name || i >= len || text[i] != '=') {
            *bad_line = start_line;
            rc = CF_EINVAL;
            break;
        }
        size_t name_len = i - name;
        i++;
        cf_buf_reset(&value);
        size_t value_start = i;
        rc = dotenv_value(text, len, &i, &value);
        for (size_t k = value_start; k < i; k++)
            line += text[k] == '\n';
        if (rc == CF_OK && !line_end(text, len, &i))
            rc = CF_EINVAL;
        if (rc == CF_OK)
            rc = entry_set(out, text + name, name_len, value.len ? value.data : "", value.len);
        if (rc == CF_EINVAL)
            *bad_line = start_line;
        if (i < len) {
            i++;
            line++;
        }
    }
    cf_buf_release_wipe(&value);
    return rc;
}

/* Infisical's export array [{"key", "value", ...}] (what the json format writes), or a plain
 * object {"NAME": "value"}. */
static enum cf_rc parse_json(const char *text, size_t len, struct cf_dest_list *out)
{
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, 0, &jerr);
    enum cf_rc rc = CF_OK;
    size_t idx;
    json_t *elem;
    const char *key;
    if (json_is_array(doc)) {
        json_array_foreach(doc, idx, elem)
        {
            const json_t *k = json_object_get(elem, "key");
            const json_t *v = json_object_get(elem, "value");
            if (!json_is_string(k) || !json_is_string(v)) {
                rc = CF_EINVAL;
                break;
            }
            rc = entry_set(out, json_string_value(k), strlen(json_string_value(k)),
                           json_string_value(v), json_string_length(v));
            if (rc != CF_OK)
                break;
        }
    } else if (json_is_object(doc)) {
        json_object_foreach(doc, key, elem)
        {
            if (!json_is_string(elem)) {
                rc = CF_EINVAL;
                break;
            }
            rc =
                entry_set(out, key, strlen(key), json_string_value(elem), json_string_length(elem));
            if (rc != CF_OK)
                break;
        }
    } else {
        rc = CF_EINVAL;
    }
    json_decref(doc);
    return rc;
}

static enum cf_rc append_utf8(struct cf_buf *out, uint32_t cp)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else if (cp < 0x110000) {
        b[0] = (unsigned char)(0xF0 | (cp >> 18));
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    } else {
        return CF_EINVAL;
    }
    enum cf_rc rc = cf_buf_append(out, b, n);
    sodium_memzero(b, sizeof(b));
    return rc;
}

/* A YAML double-quoted scalar on one line at text[*pos] (the opening quote), unescaped into out:
 * the escapes cf_format_yaml_quote writes and the rest of YAML 1.2's. */
static enum cf_rc yaml_dq(const char *text, size_t len, size_t *pos, struct cf_buf *out)
{
    static const char simple_in[] = "0abtnvfre \"/\\\t";
    static const char simple_out[] = "\0\a\b\t\n\v\f\r\x1b \"/\\\t";
    size_t i = *pos + 1;
    enum cf_rc rc = CF_OK;
    while (rc == CF_OK && i < len && text[i] != '"' && text[i] != '\n') {
        if (text[i] != '\\') {
            rc = cf_buf_append(out, text + i, 1);
            i++;
            continue;
        }
        if (i + 1 >= len)
            return CF_EINVAL;
        char e = text[i + 1];
        const char *s = e ? memchr(simple_in, e, sizeof(simple_in) - 1) : NULL;
        i += 2;
        if (s) {
            rc = cf_buf_append(out, &simple_out[s - simple_in], 1);
            continue;
        }
        size_t digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
        uint32_t cp = e == 'N' ? 0x85 : e == '_' ? 0xA0 : e == 'L' ? 0x2028 : e == 'P' ? 0x2029 : 0;
        if (!digits && !cp)
            return CF_EINVAL;
        for (size_t d = 0; d < digits; d++) {
            int h = i < len ? cf_hex_digit(text[i]) : -1;
            if (h < 0)
                return CF_EINVAL;
            cp = cp * 16 + (uint32_t)h;
            i++;
        }
        if (e == 'x')
            rc = cf_buf_append(out, (char[]){(char)cp}, 1);
        else
            rc = append_utf8(out, cp);
    }
    if (rc == CF_OK && (i >= len || text[i] != '"'))
        return CF_EINVAL;
    *pos = i + 1;
    return rc;
}

/* The YAML this destination writes: one `key: "value"` mapping per line (keys plain or
 * double-quoted), with comments, blank lines and a `---` start marker allowed. Plain scalars are
 * taken as text up to the end of the line. */
static enum cf_rc parse_yaml(const char *text, size_t len, struct cf_dest_list *out,
                             size_t *bad_line)
{
    struct cf_buf key, value;
    enum cf_rc rc = CF_OK;
    size_t i = 0, line = 0;
    cf_buf_init(&key, 4096);
    cf_buf_init(&value, CF_FILEDEST_MAX);
    while (rc == CF_OK && i < len) {
        line++;
        *bad_line = line;
        while (i < len && is_blank(text[i]))
            i++;
        if (i + 3 <= len && memcmp(text + i, "---", 3) == 0)
            i += 3;
        if (!line_end(text, len, &i)) {
            cf_buf_reset(&key);
            cf_buf_reset(&value);
            if (text[i] == '"') {
                rc = yaml_dq(text, len, &i, &key);
            } else {
                size_t start = i;
                while (i < len && text[i] != ':' && text[i] != '\n')
                    i++;
                rc = cf_buf_append(&key, text + start, i - start);
            }
            if (rc == CF_OK && (i + 1 >= len || text[i] != ':' || !is_blank(text[i + 1])))
                rc = CF_EINVAL;
            while (rc == CF_OK && i + 1 < len && is_blank(text[i + 1]))
                i++;
            i++;
            if (rc == CF_OK && i < len && text[i] == '"') {
                rc = yaml_dq(text, len, &i, &value);
                if (rc == CF_OK && !line_end(text, len, &i))
                    rc = CF_EINVAL;
            } else if (rc == CF_OK) {
                size_t start = i;
                while (i < len && text[i] != '\n')
                    i++;
                size_t end = i;
                while (end > start && is_blank(text[end - 1]))
                    end--;
                rc = cf_buf_append(&value, text + start, end - start);
            }
            if (rc == CF_OK && (key.len == 0 || memchr(key.data, '\0', key.len)))
                rc = CF_EINVAL;
            if (rc == CF_OK)
                rc = entry_set(out, key.data, key.len, value.len ? value.data : "", value.len);
        }
        if (i < len)
            i++;
    }
    cf_buf_release(&key);
    cf_buf_release_wipe(&value);
    return rc;
}

/* Opens path for reading without following a symbolic link; *exists false when it does not
 * exist. Refuses a link, a directory or anything but a regular file. */
static enum cf_rc read_file(const char *path, struct cf_buf *out, bool *exists, struct cf_err *err)
{
    struct stat st;
    enum cf_rc rc = CF_OK;
    *exists = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT)
        return CF_OK;
    if (fd < 0 && errno == ELOOP)
        return cf_err_field(err, CF_EINVAL, "path",
                            "'%s' is a symbolic link; the file destination writes only to a "
                            "regular file",
                            path);
    if (fd < 0)
        return cf_err_set(err, CF_EIO, "cannot open '%s': %s", path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        rc = cf_err_set(err, CF_EIO, "cannot stat '%s': %s", path, strerror(errno));
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = cf_err_field(err, CF_EINVAL, "path", "'%s' is a directory", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = cf_err_field(err, CF_EINVAL, "path", "'%s' is not a regular file", path);
        goto out;
    }
    *exists = true;
    for (;;) {
        char chunk[4096];
        ssize_t got = read(fd, chunk, sizeof(chunk));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = cf_err_set(err, CF_EIO, "cannot read '%s': %s", path, strerror(errno));
            break;
        }
        if (got == 0)
            break;
        rc = cf_buf_append(out, chunk, (size_t)got);
        sodium_memzero(chunk, sizeof(chunk));
        if (rc != CF_OK) {
            rc = cf_err_set(err, rc, "'%s' is larger than %d bytes", path, CF_FILEDEST_MAX);
            break;
        }
    }
out:
    close(fd);
    return rc;
}

/* Reads path back into out (empty when the file does not exist yet). */
static enum cf_rc load(const char *path, enum cf_format format, struct cf_dest_list *out,
                       struct cf_err *err)
{
    struct cf_buf text;
    bool exists;
    size_t bad_line = 0;
    cf_buf_init(&text, CF_FILEDEST_MAX);
    enum cf_rc rc = read_file(path, &text, &exists, err);
    if (rc != CF_OK || !exists || text.len == 0)
        goto out;
    if (format == CF_FORMAT_JSON)
        rc = parse_json(text.data, text.len, out);
    else if (format == CF_FORMAT_YAML)
        rc = parse_yaml(text.data, text.len, out, &bad_line);
    else
        rc = parse_dotenv(text.data, text.len, out, &bad_line);
    if (rc == CF_EINVAL && bad_line)
        cf_err_set(err, rc, "'%s' is not a %s file this destination can read (line %zu)", path,
                   cf_format_name(format), bad_line);
    else if (rc == CF_EINVAL)
        cf_err_set(err, rc, "'%s' is not a %s file this destination can read", path,
                   cf_format_name(format));
    else if (rc != CF_OK)
        cf_err_set(err, rc, "cannot read '%s' (%s)", path, cf_rc_str(rc));
out:
    cf_buf_release_wipe(&text);
    if (rc != CF_OK)
        cf_dest_list_release(out);
    return rc;
}

static enum cf_rc file_list(const struct cf_provider_conn *conn, const json_t *config,
                            struct cf_dest_list *out, struct cf_err *err)
{
    const char *path;
    enum cf_format format;
    (void)conn;
    *out = (struct cf_dest_list){0};
    enum cf_rc rc = config_get(config, &path, &format, err);
    if (rc != CF_OK)
        return rc;
    return load(path, format, out, err);
}

static enum cf_rc file_push(const struct cf_provider_conn *conn, const json_t *config,
                            const struct cf_sync_item *items, size_t n, const char *const *remove,
                            size_t n_remove, struct cf_err *err)
{
    const char *path;
    enum cf_format format;
    struct cf_dest_list entries = {0};
    struct cf_format_item *rows = NULL;
    struct cf_buf text;
    (void)conn;
    cf_buf_init(&text, CF_FILEDEST_MAX);
    enum cf_rc rc = config_get(config, &path, &format, err);
    if (rc == CF_OK)
        rc = load(path, format, &entries, err);
    if (rc != CF_OK)
        goto out;
    for (size_t i = 0; i < n_remove; i++)
        entry_remove(&entries, remove[i]);
    for (size_t i = 0; i < n && rc == CF_OK; i++) {
        if (items[i].value_len && memchr(items[i].value, '\0', items[i].value_len)) {
            rc = cf_err_set(err, CF_EVALIDATION,
                            "the value of '%.128s' holds a NUL byte, which a file cannot carry",
                            items[i].name);
            goto out;
        }
        rc = entry_set(&entries, items[i].name, strlen(items[i].name),
                       items[i].value ? items[i].value : "", items[i].value_len);
    }
    if (rc != CF_OK || !(rows = calloc(entries.n + 1, sizeof(*rows)))) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < entries.n; i++)
        rows[i] = (struct cf_format_item){.name = entries.items[i].name,
                                          .value = entries.items[i].value,
                                          .value_len = strlen(entries.items[i].value)};
    rc = cf_format_render(format, rows, entries.n, &text, err);
    if (rc == CF_OK)
        rc = cf_file_replace(path, text.len ? text.data : "", text.len, err);
out:
    free(rows);
    cf_buf_release_wipe(&text);
    cf_dest_list_release(&entries);
    return rc;
}

const struct cf_dest_ops cf_file_dest = {
    .destination = "file",
    .config_check = file_config_check,
    .map_name = file_map_name,
    .list = file_list,
    .push = file_push,
};
