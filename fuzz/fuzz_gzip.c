/* gzip in memory (util/gzip.h), which reads the audit archive files given to `coffer audit verify
 * --archive`. Properties: damaged or foreign input is refused, never read past or grown past the
 * buffer's maximum; what decompresses compresses and decompresses back to the same bytes. Input:
 * any bytes. */
#include "util/gzip.h"
#include "fuzz.h"

#define OUT_MAX (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cf_buf text, packed, again;
    struct cf_err err;
    cf_buf_init(&text, OUT_MAX);
    cf_buf_init(&packed, 2 * OUT_MAX);
    cf_buf_init(&again, OUT_MAX);
    enum cf_rc rc = cf_gzip_decompress(data, size, &text, &err);
    FUZZ_CHECK(rc == CF_OK || rc == CF_EVALIDATION || rc == CF_ETOOLARGE, "unexpected code %d", rc);
    FUZZ_CHECK(text.len <= OUT_MAX, "grew past its maximum");
    if (rc == CF_OK) {
        FUZZ_CHECK(cf_gzip_compress(text.data, text.len, &packed, &err) == CF_OK, "%s", err.msg);
        FUZZ_CHECK(cf_gzip_decompress(packed.data, packed.len, &again, &err) == CF_OK, "%s",
                   err.msg);
        FUZZ_CHECK(again.len == text.len &&
                       (text.len == 0 || memcmp(again.data, text.data, text.len) == 0),
                   "the round trip changed the bytes");
    }
    cf_buf_release(&text);
    cf_buf_release(&packed);
    cf_buf_release(&again);
    return 0;
}
