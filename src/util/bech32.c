/* Bech32 decoding (see bech32.h), after BIP-173's reference description. */
#include <string.h>

#include "util/bech32.h"
#include "util/banned.h"

static const char CHARSET[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/* BIP-173's checksum polynomial, over the values fed so far. */
static uint32_t polymod_step(uint32_t chk, uint8_t value)
{
    static const uint32_t GEN[5] = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3};
    uint8_t top = (uint8_t)(chk >> 25);
    chk = ((chk & 0x1ffffff) << 5) ^ value;
    for (int i = 0; i < 5; i++)
        if ((top >> i) & 1)
            chk ^= GEN[i];
    return chk;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

enum cf_rc cf_bech32_decode(const char *text, char hrp[CF_BECH32_HRP_MAX + 1], uint8_t *data,
                            size_t data_max, size_t *data_len, struct cf_err *err)
{
    size_t len = strlen(text);
    size_t sep = len;
    int has_lower = 0, has_upper = 0;
    uint32_t chk = 1;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t out = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 33 || c > 126)
            return cf_err_set(err, CF_EINVAL, "a character outside printable ASCII");
        has_lower |= c >= 'a' && c <= 'z';
        has_upper |= c >= 'A' && c <= 'Z';
        if (c == '1')
            sep = i;
    }
    if (has_lower && has_upper)
        return cf_err_set(err, CF_EINVAL, "mixed upper and lower case");
    if (sep == len)
        return cf_err_set(err, CF_EINVAL, "no separator '1'");
    if (sep == 0 || sep > CF_BECH32_HRP_MAX)
        return cf_err_set(err, CF_EINVAL, "an empty or too long human-readable part");
    if (len - sep - 1 < 6)
        return cf_err_set(err, CF_EINVAL, "too short for its checksum");
    for (size_t i = 0; i < sep; i++) {
        hrp[i] = lower(text[i]);
        chk = polymod_step(chk, (uint8_t)((unsigned char)hrp[i] >> 5));
    }
    hrp[sep] = '\0';
    chk = polymod_step(chk, 0);
    for (size_t i = 0; i < sep; i++)
        chk = polymod_step(chk, (uint8_t)((unsigned char)hrp[i] & 31));
    for (size_t i = sep + 1; i < len; i++) {
        const char *at = strchr(CHARSET, lower(text[i]));
        if (!at || !*at)
            return cf_err_set(err, CF_EINVAL, "a character outside the Bech32 alphabet");
        chk = polymod_step(chk, (uint8_t)(at - CHARSET));
    }
    if (chk != 1)
        return cf_err_set(err, CF_EINVAL, "a checksum that does not match (a mistyped character?)");
    /* the data without its checksum, from 5-bit groups to bytes */
    for (size_t i = sep + 1; i < len - 6; i++) {
        acc = (acc << 5) | (uint32_t)(strchr(CHARSET, lower(text[i])) - CHARSET);
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            if (out == data_max)
                return cf_err_set(err, CF_EINVAL, "more data than the %zu bytes expected",
                                  data_max);
            data[out++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (bits >= 5 || acc != 0)
        return cf_err_set(err, CF_EINVAL, "data whose padding is not zero");
    *data_len = out;
    return CF_OK;
}
