/* Secret references (`${KEY}`, `${env.a.b.KEY}`): a folder's secrets from the input, each expanded.
 * Properties: a value without a well-formed reference expands to itself; expansion never fails with
 * anything but a validation error (cycle, missing target, too deep) or a size limit. Input: lines
 * KEY=VALUE for dev:/ (a key starting with '@' goes to prod:/a instead). */
#include "core/refs.h"
#include "fuzz.h"

static enum cf_rc not_found(void *ctx, const char *env_slug, const char *path, const char *key,
                            struct cf_buf *value, struct cf_err *err)
{
    (void)ctx;
    (void)value;
    return cf_err_set(err, CF_ENOTFOUND, "no secret '%s' in %s:%s", key, env_slug, path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_parts p;
    struct cf_err err;
    struct cf_refs *refs = cf_refs_new(not_found, NULL);
    if (!refs)
        abort();
    fuzz_split(data, size, '\n', 8, &p);
    for (size_t i = 0; i < p.n; i++) {
        char *eq = memchr(p.part[i], '=', p.len[i]);
        if (!eq || eq == p.part[i])
            continue;
        *eq = '\0';
        bool prod = p.part[i][0] == '@';
        cf_refs_add(refs, prod ? "prod" : "dev", prod ? "/a" : "/", p.part[i] + prod, eq + 1,
                    p.len[i] - (size_t)(eq + 1 - p.part[i]), &err);
    }
    for (size_t i = 0; i < p.n; i++) {
        const char *key = p.part[i];
        const char *value = key + strlen(key) + 1;
        if (value > p.part[i] + p.len[i] || !*key)
            continue;
        size_t len = p.len[i] - (size_t)(value - key);
        struct cf_buf out;
        cf_buf_init(&out, 1 << 20);
        enum cf_rc rc = cf_refs_expand(refs, "dev", "/", key, value, len, &out, &err);
        FUZZ_CHECK(rc == CF_OK || rc == CF_EVALIDATION || rc == CF_ETOOLARGE || rc == CF_EINVAL,
                   "expansion failed with %s: %s", cf_rc_str(rc), err.msg);
        if (rc == CF_OK && !cf_refs_present(value, len))
            FUZZ_CHECK(out.len == len && (len == 0 || memcmp(out.data, value, len) == 0),
                       "a value without references changed in expansion");
        cf_buf_release_wipe(&out);
    }
    fuzz_parts_free(&p);
    cf_refs_free(refs);
    return 0;
}
