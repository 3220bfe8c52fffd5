/* Names and values from the outside: folder paths, secret keys, slugs, folder names, display text,
 * and value normalisation. Properties: a normalised path normalises to itself and passes as a path
 * again; a normalised value normalises to itself. Input: parts separated by 0x1F, each fed to every
 * check. */
#include "core/names.h"
#include "util/buf.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_parts p;
    struct cf_err err;
    fuzz_split(data, size, 0x1f, 4, &p);
    for (size_t i = 0; i < p.n; i++) {
        const char *text = p.part[i];
        char path[CF_PATH_MAX + 1], again[CF_PATH_MAX + 1];
        if (cf_path_normalize(text, path, "path", &err) == CF_OK) {
            FUZZ_CHECK(path[0] == '/', "a normalised path starts with '/': %s", path);
            FUZZ_CHECK(cf_path_normalize(path, again, "path", &err) == CF_OK,
                       "a normalised path is refused: %s", err.msg);
            FUZZ_CHECK(strcmp(path, again) == 0, "normalising twice changed %s", path);
        }
        cf_key_check(text, "key", &err);
        cf_slug_check(text, "slug", &err);
        cf_folder_name_check(text, "name", &err);
        cf_text_check(text, 64, i % 2 == 0, "name", &err);

        struct cf_buf once, twice;
        cf_buf_init(&once, 0);
        cf_buf_init(&twice, 0);
        if (cf_value_normalize(p.part[i], p.len[i], &once) == CF_OK &&
            cf_value_normalize(once.data ? once.data : "", once.len, &twice) == CF_OK)
            FUZZ_CHECK(once.len == twice.len &&
                           (once.len == 0 || memcmp(once.data, twice.data, once.len) == 0),
                       "normalising a value twice changed it");
        cf_buf_release_wipe(&once);
        cf_buf_release_wipe(&twice);
    }
    fuzz_parts_free(&p);
    return 0;
}
