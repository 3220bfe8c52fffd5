/* Unit tests for cli/template: the agent's template subset rendered over a table of folders
 * standing in for the server (each fetch counted), trim markers, with/range/else, getSecretByName,
 * field access on a call, comments, and the line:column of every refusal, at parse and at render
 * time. */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "cli/template.h"
#include "util/str.h"

struct fake_server {
    json_t *folders; /* "env:path" -> array of secrets */
    int fetches;
};

static enum cf_rc fake_fetch(void *ctx, const char *project, const char *env, const char *path,
                             json_t **secrets, struct cf_err *err)
{
    struct fake_server *fs = ctx;
    char key[256];
    fs->fetches++;
    snprintf(key, sizeof(key), "%s:%s", env, path);
    *secrets = strcmp(project, "p1") == 0 ? json_object_get(fs->folders, key) : NULL;
    if (!*secrets)
        return cf_err_set(err, CF_EFORBIDDEN, "not allowed to read '%s'", key);
    return CF_OK;
}

static json_t *folders(void)
{
    return json_pack("{s:[{s:s,s:s,s:s},{s:s,s:s,s:s}], s:[], s:[{s:s,s:s}]}", "dev:/", "secretKey",
                     "DB_USER", "secretValue", "app", "secretComment", "the user", "secretKey",
                     "DB_PASS", "secretValue", "p\"w\nx", "secretComment", "", "dev:/empty",
                     "prod:/api", "secretKey", "TOKEN", "secretValue", "t0k");
}

/* Renders text; returns the output (static buffer) or the error message prefixed with "ERR ". */
static const char *render(const char *text, int *fetches)
{
    static char result[1024];
    struct fake_server fs = {folders(), 0};
    struct cf_template *tmpl = NULL;
    struct cf_buf out;
    struct cf_err err;
    cf_err_clear(&err);
    cf_buf_init(&out, 4096);
    enum cf_rc rc = cf_template_parse("t", text, strlen(text), &tmpl, &err);
    if (rc == CF_OK)
        rc = cf_template_render(tmpl, fake_fetch, &fs, &out, &err);
    if (rc == CF_OK)
        snprintf(result, sizeof(result), "%.*s", (int)out.len, out.data ? out.data : "");
    else
        snprintf(result, sizeof(result), "ERR %s", err.msg);
    if (fetches)
        *fetches = fs.fetches;
    cf_template_free(tmpl);
    cf_buf_release_wipe(&out);
    json_decref(fs.folders);
    return result;
}

Test(template, infisical_forms)
{
    cr_assert_str_eq(
        render("{{ with secret \"p1\" \"dev\" \"/\" }}{{ range . }}{{ .Key }}={{ .Value "
               "}}\n{{ end }}{{ end }}",
               NULL),
        "DB_USER=app\nDB_PASS=p\"w\nx\n");
    cr_assert_str_eq(
        render("u={{ with getSecretByName \"p1\" \"dev\" \"/\" \"DB_USER\" }}{{ .Value "
               "}}{{ end }}",
               NULL),
        "u=app");
    cr_assert_str_eq(
        render("{{ (getSecretByName \"p1\" \"prod\" \"/api\" \"TOKEN\").Value }}", NULL), "t0k");
    cr_assert_str_eq(
        render("{{ range listSecrets `p1` `dev` `/` }}[{{ .Comment }}]{{ end }}", NULL),
        "[the user][]");
}

Test(template, trim_markers_comments_and_else)
{
    cr_assert_str_eq(render("a  \n  {{- /* note */ -}}  \n  b", NULL), "ab");
    cr_assert_str_eq(render("x {{/* a }} in a comment */}} y", NULL), "x  y");
    cr_assert_str_eq(
        render("{{ range secret \"p1\" \"dev\" \"/empty\" }}item{{ else }}none{{ end }}", NULL),
        "none");
    cr_assert_str_eq(
        render("{{ with secret \"p1\" \"dev\" \"/empty\" }}some{{ else }}empty{{ end }}", NULL),
        "empty");
    cr_assert_str_eq(render("{{ \"}}\" }}", NULL), "ERR t:1:4: unsupported '\"' (variables, pipes "
                                                   "and numbers are not)");
}

Test(template, one_fetch_per_call)
{
    int fetches = 0;
    render(
        "{{ range secret \"p1\" \"dev\" \"/\" }}{{ .Key }}{{ end }}{{ range secret \"p1\" \"dev\" "
        "\"/\" }}{{ .Key }}{{ end }}",
        &fetches);
    /* The template asks each time; the agent's callback keeps one read per folder and render. */
    cr_assert_eq(fetches, 2);
}

Test(template, render_errors_name_the_position)
{
    cr_assert_str_eq(render("x\n  {{ getSecretByName \"p1\" \"dev\" \"/\" \"NOPE\" }}", NULL),
                     "ERR t:2:3: no secret 'NOPE' in dev:/");
    cr_assert_str_eq(render("{{ secret \"p2\" \"dev\" \"/\" }}", NULL),
                     "ERR t:1:1: reading dev:/: not allowed to read 'dev:/'");
    cr_assert_str_eq(render("{{ secret \"p1\" \"dev\" \"/\" }}", NULL),
                     "ERR t:1:1: cannot print a list of secrets (use range)");
    cr_assert_str_eq(render("{{ range secret \"p1\" \"dev\" \"/\" }}{{ . }}{{ end }}", NULL),
                     "ERR t:1:34: cannot print a secret (use .Value)");
    cr_assert_str_eq(render("{{ .Value }}", NULL),
                     "ERR t:1:1: a field of a value that is not a secret");
    cr_assert_str_eq(render("{{ with secret \"p1\" \"dev\" \"/\" }}{{ .Key }}{{ end }}", NULL),
                     "ERR t:1:33: a field of a list of secrets (use range)");
}

Test(template, parse_errors_name_the_position)
{
    static const struct {
        const char *text, *error;
    } cases[] = {
        {"{{ if . }}x{{ end }}", "ERR t:1:4: unsupported 'if'"},
        {"ab\n {{ with . }}", "ERR t:2:2: {{ with }} without {{ end }}"},
        {"{{ else }}", "ERR t:1:1: {{ else }} outside {{ with }} or {{ range }}"},
        {"{{ secret \"a\" \"b\" \"c\" \"d\" }}", "ERR t:1:4: secret takes 3 quoted arguments"},
        {"{{ getSecretByName \"a\" }}", "ERR t:1:4: getSecretByName takes 4 quoted arguments"},
        {"{{ \"x\\q\" }}", "ERR t:1:4: unsupported '\"' (variables, pipes and numbers are not)"},
        {"{{ (secret \"a\" \"b\" \"c\" }}", "ERR t:1:23: missing ')'"},
        {"{{ . .Key }}", "ERR t:1:6: unexpected '.' (pipes and more arguments are not supported)"},
        {"{{ /* open }}", "ERR t:1:1: unterminated comment"},
        {"{{ }}", ""},
    };
    /* The messages go on with hints; their beginning is what matters. */
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        const char *got = render(cases[i].text, NULL);
        cr_assert(strncmp(got, cases[i].error, strlen(cases[i].error)) == 0 &&
                      (cases[i].error[0] || !got[0]),
                  "case %zu: got '%s'", i, got);
    }
}

Test(template, nesting_is_bounded)
{
    char text[2048];
    size_t len = 0;
    for (int i = 0; i < 40; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "{{ with . }}");
    cr_assert(strstr(render(text, NULL), "nested too deeply") != NULL);
}
