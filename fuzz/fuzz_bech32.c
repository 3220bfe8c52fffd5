/* Bech32 text as an age recipient given to `coffer operator init/rekey --share-keys`
 * (util/bech32.h, crypto/age.h). Properties: an accepted text has a human-readable part equal to
 * its text before the last '1' (lower-cased), data no longer than the room given and than its 5-bit
 * groups allow, and is all one case; an accepted age recipient is "age1" and 58 characters, in
 * either case. */
#include <stdbool.h>
#include <string.h>

#include "crypto/age.h"
#include "fuzz.h"
#include "util/bech32.h"

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_parts p;
    struct cf_err err;
    char hrp[CF_BECH32_HRP_MAX + 1];
    uint8_t out[64];
    uint8_t key[CF_AGE_RECIPIENT_BYTES];
    size_t out_len = 0;
    fuzz_split(data, size, '\0', 1, &p);
    const char *text = p.part[0];
    size_t len = strlen(text);
    if (cf_bech32_decode(text, hrp, out, sizeof(out), &out_len, &err) == CF_OK) {
        const char *sep = strrchr(text, '1');
        FUZZ_CHECK(sep != NULL, "accepted without a separator");
        size_t hrp_len = (size_t)(sep - text);
        FUZZ_CHECK(strlen(hrp) == hrp_len, "the human-readable part is not the text before '1'");
        for (size_t i = 0; i < hrp_len; i++)
            FUZZ_CHECK(hrp[i] == lower(text[i]), "the human-readable part differs from the text");
        size_t groups = len - hrp_len - 1 - 6;
        FUZZ_CHECK(out_len <= sizeof(out) && out_len == groups * 5 / 8, "%zu bytes from %zu groups",
                   out_len, groups);
        bool has_lower = false, has_upper = false;
        for (size_t i = 0; i < len; i++) {
            has_lower |= text[i] >= 'a' && text[i] <= 'z';
            has_upper |= text[i] >= 'A' && text[i] <= 'Z';
        }
        FUZZ_CHECK(!(has_lower && has_upper), "mixed case accepted");
    } else {
        FUZZ_CHECK(err.msg[0] != '\0', "a refusal without a message");
    }
    if (cf_age_recipient_parse(text, key, &err) == CF_OK)
        FUZZ_CHECK(len == 62 && (strncmp(text, "age1", 4) == 0 || strncmp(text, "AGE1", 4) == 0),
                   "an age recipient of %zu characters", len);
    fuzz_parts_free(&p);
    return 0;
}
