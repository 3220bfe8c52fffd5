/* The agent's templates (cli/template.h), as users write them in template files or
 * template-content: parsed, then rendered over a fixed folder of two secrets. Properties: a
 * refusal names "NAME:LINE:COL" within the input's lines; a template that parses renders or fails
 * only with a named position too; text without "{{" renders to itself. */
#include <jansson.h>

#include "cli/template.h"
#include "util/buf.h"
#include "fuzz.h"

static json_t *folder;

static enum cf_rc fetch(void *ctx, const char *project, const char *env, const char *path,
                        json_t **secrets, struct cf_err *err)
{
    (void)ctx;
    (void)project;
    if (env[0] == 'x')
        return cf_err_set(err, CF_EFORBIDDEN, "not allowed to read '%s:%s'", env, path);
    *secrets = folder;
    return CF_OK;
}

/* Whether msg starts with "t:LINE:COL: " with LINE at most lines. */
static bool names_position(const char *msg, size_t lines)
{
    unsigned long line = 0, col = 0;
    int consumed = 0;
    if (sscanf(msg, "t:%lu:%lu: %n", &line, &col, &consumed) != 2 || consumed == 0)
        return false;
    return line >= 1 && line <= lines && col >= 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cf_template *tmpl = NULL;
    struct cf_buf out;
    struct cf_err err;
    size_t lines = 1;

    if (!folder)
        folder = json_pack("[{s:s,s:s},{s:s,s:s}]", "secretKey", "A", "secretValue", "1",
                           "secretKey", "B", "secretValue", "two");
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    cf_err_clear(&err);
    cf_buf_init(&out, 1 << 20);
    enum cf_rc rc = cf_template_parse("t", (const char *)data, size, &tmpl, &err);
    if (rc == CF_EINVAL)
        FUZZ_CHECK(names_position(err.msg, lines), "a parse error without its position: %s",
                   err.msg);
    if (rc == CF_OK) {
        rc = cf_template_render(tmpl, fetch, NULL, &out, &err);
        FUZZ_CHECK(rc == CF_OK || names_position(err.msg, lines),
                   "a render error without its position: %s", err.msg);
        bool plain = true;
        for (size_t i = 0; i + 1 < size && plain; i++)
            plain = !(data[i] == '{' && data[i + 1] == '{');
        if (rc == CF_OK && plain)
            FUZZ_CHECK(out.len == size && (size == 0 || memcmp(out.data, data, size) == 0),
                       "plain text did not render to itself");
    }
    cf_template_free(tmpl);
    cf_buf_release_wipe(&out);
    return 0;
}
