/* Trusted-IP lists (`accessTokenTrustedIps`, `clientSecretTrustedIps`) and the match against a
 * client address. Property: a list that fails its check matches no address. Input: list 0x1F
 * address. */
#include "util/cidr.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_parts p;
    struct cf_err err;
    fuzz_split(data, size, 0x1f, 2, &p);
    bool valid = cf_cidr_list_check(p.part[0], "trustedIps", &err) == CF_OK;
    bool match = cf_cidr_list_match(p.part[0], p.part[1]);
    FUZZ_CHECK(valid || !match, "an invalid list matched an address");
    cf_cidr_list_match(p.part[1], p.part[0]);
    fuzz_parts_free(&p);
    return 0;
}
