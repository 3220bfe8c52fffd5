/* Unseal shares as the unseal route and `coffer operator rekey` read them (crypto/shamir.h), and
 * the seal record a store holds. Properties: text that decodes is a share that encodes back to the
 * same text (blanks around it aside); a record that is accepted names a threshold within its share
 * count; opening never succeeds with bytes that are not a real split. Input: share text 0x1F
 * record bytes. */
#include <string.h>

#include "crypto/shamir.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_parts p;
    struct cf_err err;
    uint8_t share[CF_SHARE_BYTES];
    char text[CF_SHARE_TEXT_MAX];
    fuzz_split(data, size, 0x1f, 2, &p);
    if (cf_shamir_share_decode(p.part[0], strlen(p.part[0]), share, &err) == CF_OK) {
        cf_shamir_share_encode(share, text);
        FUZZ_CHECK(strstr(p.part[0], text) != NULL, "a decoded share does not encode back");
        FUZZ_CHECK(share[0] != 0, "a share with x = 0 was accepted");
    }
    unsigned n = 0, threshold = 0;
    const uint8_t *record = (const uint8_t *)p.part[1];
    size_t record_len = strlen(p.part[1]);
    if (cf_shamir_record_info(record, record_len, &n, &threshold, &err) == CF_OK) {
        FUZZ_CHECK(threshold >= 1 && threshold <= n && n <= CF_SHAMIR_MAX_SHARES,
                   "a record with an impossible threshold was accepted");
        uint8_t shares[CF_SHAMIR_MAX_SHARES][CF_SHARE_BYTES];
        uint8_t root[CF_ROOT_KEY_BYTES];
        for (unsigned i = 0; i < threshold; i++) {
            memcpy(shares[i], share, CF_SHARE_BYTES);
            shares[i][0] = (uint8_t)(i + 1);
        }
        FUZZ_CHECK(cf_shamir_open(record, record_len, shares, threshold, root, &err) != CF_OK,
                   "made-up shares opened a made-up record");
    }
    fuzz_parts_free(&p);
    return 0;
}
