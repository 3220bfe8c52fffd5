/* Unit tests for kube/template (the template subset of managed Secrets) and kube/kube's start-up
 * checks (in-cluster configuration, server URL rule, token file). The operator's behaviour against
 * an API server is tested end to end in tests/integration/test_k8s_operator.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "kube/kube.h"
#include "kube/template.h"
#include "util/buf.h"
#include "util/file.h"

static json_t *scope(void)
{
    json_t *secrets =
        json_pack("{s:{s:s, s:s}, s:{s:s, s:s}}", "KEY", "secretValue", "v1", "secretPath", "/",
                  "DB_URL", "secretValue", "postgres://x", "secretPath", "/db");
    cr_assert_not_null(secrets);
    return secrets;
}

struct template_case {
    const char *tmpl;
    enum cf_rc rc;
    const char *want; /* the rendering, or a part of the message */
};

static const struct template_case template_cases[] = {
    {"plain text", CF_OK, "plain text"},
    {"", CF_OK, ""},
    {"{{ .KEY.Value }}", CF_OK, "v1"},
    {"{{.KEY.Value}}", CF_OK, "v1"},
    {"{{ .KEY.SecretPath }} {{ .KEY.Value }}", CF_OK, "/ v1"},
    {"url={{ .DB_URL.Value }};path={{ .DB_URL.SecretPath }}!", CF_OK, "url=postgres://x;path=/db!"},
    {"a } b }} c", CF_OK, "a } b }} c"},
    {"{{ .KEY.Value | upper }}", CF_EUNSUPPORTED, "template 'T': only {{ .KEY.Value }}"},
    {"{{ range . }}x{{ end }}", CF_EUNSUPPORTED, "(offset 0)"},
    {"ab{{- .KEY.Value -}}", CF_EUNSUPPORTED, "(offset 2)"},
    {"{{ .KEY.Name }}", CF_EUNSUPPORTED, "only"},
    {"{{ ..Value }}", CF_EUNSUPPORTED, "only"},
    {"{{ .MISSING.Value }}", CF_ENOTFOUND, "no secret 'MISSING' in the scope"},
    {"x {{ .KEY.Value", CF_EVALIDATION, "'{{' at offset 2 is not closed"},
};

Test(kube_template, cases)
{
    json_t *secrets = scope();
    for (size_t i = 0; i < sizeof(template_cases) / sizeof(template_cases[0]); i++) {
        const struct template_case *c = &template_cases[i];
        struct cf_buf out;
        struct cf_err err = {0};
        cf_buf_init(&out, 1024);
        enum cf_rc rc = cf_kube_template_render("T", c->tmpl, secrets, &out, &err);
        cr_expect_eq(rc, c->rc, "'%s': %s (%s)", c->tmpl, cf_rc_str(rc), err.msg);
        if (rc == CF_OK)
            cr_expect_str_eq(out.data ? out.data : "", c->want, "'%s'", c->tmpl);
        else
            cr_expect(strstr(err.msg, c->want) != NULL, "'%s': %s", c->tmpl, err.msg);
        cf_buf_release_wipe(&out);
    }
    json_decref(secrets);
}

Test(kube_template, output_limit)
{
    json_t *secrets = scope();
    struct cf_buf out;
    struct cf_err err = {0};
    cf_buf_init(&out, 4);
    cr_expect_eq(cf_kube_template_render("T", "{{ .DB_URL.Value }}", secrets, &out, &err),
                 CF_ETOOLARGE);
    cr_expect(strstr(err.msg, "too large") != NULL);
    cr_expect(strstr(err.msg, "postgres") == NULL, "no value in the message");
    cf_buf_release_wipe(&out);
    json_decref(secrets);
}

static enum cf_rc kube_new(const char *server, const char *token_file, struct cf_err *err)
{
    struct cf_kube_options options = {.server = server, .token_file = token_file};
    struct cf_kube *kube = NULL;
    enum cf_rc rc = cf_kube_new(&options, &kube, err);
    cr_expect((rc == CF_OK) == (kube != NULL));
    cf_kube_free(kube);
    return rc;
}

Test(kube_config, servers_and_tokens)
{
    char dir[] = "/tmp/coffer-kube-test-XXXXXX";
    char token[sizeof(dir) + 16];
    struct cf_err err = {0};
    cr_assert_not_null(mkdtemp(dir));
    snprintf(token, sizeof(token), "%s/token", dir);
    cr_assert_eq(cf_file_create(token, "sa-token\n", 9, &err), CF_OK, "%s", err.msg);

    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    cr_expect_eq(kube_new(NULL, token, &err), CF_EINVAL);
    cr_expect(strstr(err.msg, "KUBERNETES_SERVICE_HOST") != NULL, "%s", err.msg);
    setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    cr_expect_eq(kube_new(NULL, token, &err), CF_OK, "%s", err.msg);
    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    struct cf_kube_options options = {.token_file = token};
    struct cf_kube *kube = NULL;
    cr_assert_eq(cf_kube_new(&options, &kube, &err), CF_OK, "%s", err.msg);
    cr_expect_str_eq(cf_kube_server(kube), "https://[fd00::1]:443");
    cf_kube_free(kube);
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");

    cr_expect_eq(kube_new("https://k8s.example:6443/", token, &err), CF_OK, "%s", err.msg);
    cr_expect_eq(kube_new("http://127.0.0.1:8001", token, &err), CF_OK, "%s", err.msg);
    cr_expect_eq(kube_new("http://[::1]:8001", token, &err), CF_OK, "%s", err.msg);
    cr_expect_eq(kube_new("http://k8s.example", token, &err), CF_EINVAL);
    cr_expect(strstr(err.msg, "must be an https URL") != NULL, "%s", err.msg);
    cr_expect_eq(kube_new("ftp://127.0.0.1", token, &err), CF_EINVAL);
    cr_expect_eq(kube_new("https://127.0.0.1", "/nonexistent/token", &err), CF_EIO);
    cr_expect(strstr(err.msg, "kubernetes token: cannot open '/nonexistent/token'") != NULL, "%s",
              err.msg);
    remove(token);
    remove(dir);
}

Test(kube_reply, messages)
{
    struct cf_kube_reply reply = {.status = 409};
    cr_expect_str_eq(cf_kube_reply_message(&reply), "conflict");
    reply.json = json_pack("{s:s}", "message", "secrets \"x\" not found");
    reply.status = 404;
    cr_expect_str_eq(cf_kube_reply_message(&reply), "secrets \"x\" not found");
    cf_kube_reply_release(&reply);
    cr_expect_eq(reply.status, 0);
}
