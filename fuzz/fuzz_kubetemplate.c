/* The template subset of the Kubernetes operator's managed Secrets (kube/template.h): values of an
 * InfisicalSecret's template.data, written by whoever may edit resources in the cluster.
 * Properties: rendering ends with CF_OK or one of its documented refusals; text without "{{"
 * renders to itself. Input: the template on the first line, then KEY=VALUE lines (the scope). */
#include "kube/template.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_parts p;
    struct cf_err err;
    struct cf_buf out;
    json_t *secrets = json_object();
    if (!secrets)
        abort();
    fuzz_split(data, size, '\n', 16, &p);
    for (size_t i = 1; i < p.n; i++) {
        char *eq = strchr(p.part[i], '=');
        if (!eq)
            continue;
        *eq = '\0';
        json_object_set_new(secrets, p.part[i],
                            json_pack("{s:s, s:s}", "secretValue", eq + 1, "secretPath", "/"));
    }
    const char *tmpl = p.n ? p.part[0] : "";
    cf_buf_init(&out, 1 << 16);
    enum cf_rc rc = cf_kube_template_render("T", tmpl, secrets, &out, &err);
    FUZZ_CHECK(rc == CF_OK || rc == CF_EVALIDATION || rc == CF_EUNSUPPORTED || rc == CF_ENOTFOUND ||
                   rc == CF_ETOOLARGE,
               "rendering failed with %s: %s", cf_rc_str(rc), err.msg);
    if (!strstr(tmpl, "{{"))
        FUZZ_CHECK(rc == CF_OK && strcmp(out.data ? out.data : "", tmpl) == 0,
                   "text without an action changed");
    cf_buf_release_wipe(&out);
    json_decref(secrets);
    fuzz_parts_free(&p);
    return 0;
}
