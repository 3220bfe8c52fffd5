/* CIDR lists (see cidr.h). Addresses are parsed with inet_pton; prefixes are compared byte by byte.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/cidr.h"
#include "util/str.h"
#include "util/banned.h"

#define CIDR_ENTRIES_MAX 64

struct range {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    int prefix;
};

/* Parses "addr" or "addr/prefix" (n bytes). */
static bool parse_range(const char *text, size_t n, struct range *r)
{
    char buf[INET6_ADDRSTRLEN + 8];
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, text, n);
    buf[n] = '\0';
    char *slash = strchr(buf, '/');
    long long prefix = -1;
    if (slash) {
        *slash = '\0';
        if (!cf_parse_int64(slash + 1, 0, 128, &prefix))
            return false;
    }
    if (inet_pton(AF_INET, buf, r->addr) == 1) {
        r->family = AF_INET;
        r->prefix = prefix < 0 ? 32 : (int)prefix;
        return r->prefix <= 32;
    }
    if (inet_pton(AF_INET6, buf, r->addr) == 1) {
        r->family = AF_INET6;
        r->prefix = prefix < 0 ? 128 : (int)prefix;
        return true;
    }
    return false;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

static enum cf_rc too_many(struct cf_err *err, const char *field)
{
    return cf_err_field(err, CF_EVALIDATION, field, "%s: at most %d address ranges", field,
                        CIDR_ENTRIES_MAX);
}

static enum cf_rc not_a_range(struct cf_err *err, const char *field, struct cf_str entry)
{
    return cf_err_field(
        err, CF_EVALIDATION, field,
        "%s: '%.*s' is not an IP address or CIDR range (e.g. 10.0.0.0/8, 2001:db8::/32)", field,
        (int)(entry.n > 64 ? 64 : entry.n), entry.p);
}

enum cf_rc cf_cidr_list_check(const char *list, const char *field, struct cf_err *err)
{
    struct cf_list_iter it;
    struct cf_str entry;
    struct range r;
    int count = 0;
    if (!list || !*list)
        return cf_err_field(err, CF_EVALIDATION, field,
                            "%s: at least one address range is required", field);
    cf_list_init(&it, list);
    while (cf_list_next(&it, &entry)) {
        if (++count > CIDR_ENTRIES_MAX)
            return too_many(err, field);
        if (!parse_range(entry.p, entry.n, &r))
            return not_a_range(err, field, entry);
    }
    /* The iterator ends a list at a trailing comma, but every entry here must be a range:
     * "10.0.0.0/8," ends in an empty one. */
    size_t len = strlen(list);
    if (list[len - 1] == ',') {
        if (++count > CIDR_ENTRIES_MAX)
            return too_many(err, field);
        return not_a_range(err, field, (struct cf_str){list + len, 0});
    }
    return CF_OK;
}

/* Whether address (parsed) lies in the range text entry. */
static bool entry_matches(const struct range *address, struct cf_str entry)
{
    struct range r;
    if (!parse_range(entry.p, entry.n, &r))
        return false;
    const uint8_t *a = address->addr;
    int family = address->family;
    /* ::ffff:a.b.c.d is the IPv4 address a.b.c.d */
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family == AF_INET6 && r.family == AF_INET && memcmp(a, mapped, 12) == 0) {
        a += 12;
        family = AF_INET;
    }
    return family == r.family && prefix_equal(a, r.addr, r.prefix);
}

bool cf_cidr_list_match(const char *list, const char *address)
{
    struct range addr = {0};
    struct cf_list_iter it;
    struct cf_str entry;
    if (!list || !address || !parse_range(address, strlen(address), &addr))
        return false;
    if (strchr(address, '/'))
        return false;
    /* a list that is not valid as a whole matches nothing, not its valid part */
    if (cf_cidr_list_check(list, "", NULL) != CF_OK)
        return false;
    cf_list_init(&it, list);
    while (cf_list_next(&it, &entry))
        if (entry_matches(&addr, entry))
            return true;
    return false;
}
