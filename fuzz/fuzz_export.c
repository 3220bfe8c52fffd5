/* `coffer export` formats. Properties: the POSIX shell quoting of any value reads back to the value
 * (the quoted form is evaluated by a single-quote reader, as sh does); a CSV field reads back to
 * its text; the JSON format parses and gives each value back; every format renders any input or
 * refuses it with an error naming the variable (never a crash). Input: NAME 0x1F VALUE 0x1F NAME
 * 0x1F VALUE. */
#include <jansson.h>

#include "util/format.h"
#include "fuzz.h"

/* What sh makes of a word made only of single-quoted strings and \' escapes. */
static bool shell_unquote(const char *q, size_t len, struct cf_buf *out)
{
    size_t i = 0;
    while (i < len) {
        if (q[i] == '\'') {
            size_t end = i + 1;
            while (end < len && q[end] != '\'')
                end++;
            if (end == len)
                return false;
            if (cf_buf_append(out, q + i + 1, end - i - 1) != CF_OK)
                return false;
            i = end + 1;
        } else if (q[i] == '\\' && i + 1 < len) {
            if (cf_buf_append(out, q + i + 1, 1) != CF_OK)
                return false;
            i += 2;
        } else {
            return false; /* anything else would be open to the shell's expansions */
        }
    }
    return true;
}

/* RFC 4180 reading of one field. */
static bool csv_unquote(const char *f, size_t len, struct cf_buf *out)
{
    if (len == 0 || f[0] != '"')
        return cf_buf_append(out, f, len) == CF_OK;
    if (len < 2 || f[len - 1] != '"')
        return false;
    for (size_t i = 1; i + 1 < len; i++) {
        if (f[i] == '"') {
            if (f[i + 1] != '"' || i + 2 >= len)
                return false;
            i++;
        }
        if (cf_buf_append(out, f + i, 1) != CF_OK)
            return false;
    }
    return true;
}

static bool same(const struct cf_buf *b, const char *bytes, size_t len)
{
    return b->len == len && (len == 0 || memcmp(b->data, bytes, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_parts p;
    struct cf_err err;
    fuzz_split(data, size, 0x1f, 4, &p);
    const char *value = p.part[1];
    size_t len = p.len[1];

    struct cf_buf quoted, back;
    cf_buf_init(&quoted, 0);
    cf_buf_init(&back, 0);
    FUZZ_CHECK(cf_format_shell_quote(&quoted, value, len) == CF_OK, "shell quoting failed");
    FUZZ_CHECK(shell_unquote(quoted.data, quoted.len, &back) && same(&back, value, len),
               "the shell quoting does not read back");
    cf_buf_reset(&quoted);
    cf_buf_reset(&back);
    FUZZ_CHECK(cf_format_csv_field(&quoted, value, len) == CF_OK, "CSV quoting failed");
    FUZZ_CHECK(csv_unquote(quoted.data ? quoted.data : "", quoted.len, &back) &&
                   same(&back, value, len),
               "the CSV field does not read back");
    cf_buf_release_wipe(&quoted);
    cf_buf_release_wipe(&back);

    struct cf_format_item items[2] = {
        {.name = p.part[0], .value = p.part[1], .value_len = p.len[1]},
        {.name = p.part[2], .value = p.part[3], .value_len = p.len[3]},
    };
    for (int f = CF_FORMAT_DOTENV; f <= CF_FORMAT_AZURE_DEVOPS; f++) {
        struct cf_buf out;
        cf_buf_init(&out, 0);
        enum cf_rc rc = cf_format_render((enum cf_format)f, items, 2, &out, &err);
        if (rc == CF_OK && f == CF_FORMAT_JSON) {
            json_error_t jerr;
            json_t *doc = json_loadb(out.data, out.len, JSON_ALLOW_NUL, &jerr);
            FUZZ_CHECK(doc && json_is_array(doc) && json_array_size(doc) == 2,
                       "the json format does not parse: %s", jerr.text);
            for (size_t i = 0; i < 2; i++) {
                json_t *v = json_object_get(json_array_get(doc, i), "value");
                FUZZ_CHECK(json_is_string(v) && json_string_length(v) == items[i].value_len &&
                               memcmp(json_string_value(v), items[i].value, items[i].value_len) ==
                                   0,
                           "the json format changed value %zu", i);
            }
            json_decref(doc);
        }
        cf_buf_release_wipe(&out);
    }
    struct cf_buf masks, env;
    cf_buf_init(&masks, 0);
    cf_buf_init(&env, 0);
    cf_format_github(items, 2, &masks, &env, &err);
    cf_buf_release_wipe(&masks);
    cf_buf_release_wipe(&env);
    fuzz_parts_free(&p);
    return 0;
}
