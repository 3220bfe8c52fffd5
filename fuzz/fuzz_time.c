/* Timestamps and durations as users write them (`--expires-at`, `--within 30d`, `expiresAt`).
 * Properties: a parsed timestamp formats to RFC 3339 and parses back to the same millisecond; a
 * parsed duration is not negative. Input: text; the part before 0x1F as a timestamp, after as a
 * duration. */
#include "util/time.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_parts p;
    struct cf_err err;
    int64_t ms = 0, back = 0, seconds = 0;
    fuzz_split(data, size, 0x1f, 2, &p);
    for (size_t i = 0; i < 2; i++) {
        if (cf_time_parse(p.part[i], &ms, &err) == CF_OK) {
            char text[CF_TIME_RFC3339_LEN];
            cf_time_format(ms, text);
            FUZZ_CHECK(cf_time_parse(text, &back, &err) == CF_OK, "%s does not parse back: %s",
                       text, err.msg);
            FUZZ_CHECK(back == ms, "%s parsed back to %lld, not %lld", text, (long long)back,
                       (long long)ms);
        }
        if (cf_duration_parse(p.part[i], &seconds, &err) == CF_OK)
            FUZZ_CHECK(seconds >= 0, "duration %lld", (long long)seconds);
    }
    fuzz_parts_free(&p);
    return 0;
}
