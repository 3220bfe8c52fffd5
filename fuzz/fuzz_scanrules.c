/* The readers of `coffer scan`'s rule files (scan/rules.h): TOML (rules_toml.cc, toml++ behind a C
 * boundary that must let no C++ exception through) and YAML (libyaml). A rules file may come with
 * the repository being scanned (a gitleaks.toml), so it is input. Properties: the reader returns
 * CF_OK or an error whose message names the file and, for malformed input, a line; a set it fills
 * holds only rules with an id and a regex; nothing aborts. Input: the first byte chooses the reader
 * (even: TOML, odd: YAML), the rest is the file. */
#include <sys/mman.h>
#include <unistd.h>

#include "scan/rules.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cf_scan_rules rules = {0};
    struct cf_err err = {0};
    char path[64];
    if (size < 1)
        return 0;
    int fd = memfd_create("fuzz_scanrules", 0);
    FUZZ_CHECK(fd >= 0, "memfd_create failed");
    FUZZ_CHECK(write(fd, data + 1, size - 1) == (ssize_t)(size - 1), "write to the memfd failed");
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    enum cf_rc rc = (data[0] & 1) ? cf_scan_rules_load_yaml(&rules, path, &err)
                                  : cf_scan_rules_load_toml(&rules, path, &err);
    if (rc == CF_OK) {
        for (size_t i = 0; i < rules.count; i++)
            FUZZ_CHECK(rules.items[i].id && rules.items[i].regex && rules.items[i].description,
                       "rule %zu lacks its id, regex or description", i);
    } else {
        FUZZ_CHECK(rc == CF_EINVAL || rc == CF_ENOMEM, "unexpected code %d: %s", (int)rc, err.msg);
        FUZZ_CHECK(rc != CF_EINVAL || strstr(err.msg, path), "the error names no file: %s",
                   err.msg);
    }
    cf_scan_rules_release(&rules);
    close(fd);
    return 0;
}
