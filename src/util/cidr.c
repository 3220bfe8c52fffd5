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

/* Calls fn for each entry of list (trimmed); stops and returns false when fn does. */
static bool each_entry(const char *list, bool (*fn)(const char *entry, size_t n, void *ctx),
                       void *ctx)
{
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *s = p;
        while (s < end && (*s == ' ' || *s == '\t'))
            s++;
        const char *e = end;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (!fn(s, (size_t)(e - s), ctx))
            return false;
        if (!comma)
            return true;
        p = comma + 1;
    }
}

struct check_ctx {
    int count;
    const char *bad;
    size_t bad_len;
};

static bool check_entry(const char *entry, size_t n, void *data)
{
    struct check_ctx *c = data;
    struct range r;
    c->count++;
    if (c->count > CIDR_ENTRIES_MAX || !parse_range(entry, n, &r)) {
        c->bad = entry;
        c->bad_len = n;
        return false;
    }
    return true;
}

enum cf_rc cf_cidr_list_check(const char *list, const char *field, struct cf_err *err)
{
    struct check_ctx c = {0, NULL, 0};
    if (!list || !*list)
        return cf_err_field(err, CF_EVALIDATION, field,
                            "%s: at least one address range is required", field);
    if (each_entry(list, check_entry, &c))
        return CF_OK;
    if (c.count > CIDR_ENTRIES_MAX)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: at most %d address ranges", field,
                            CIDR_ENTRIES_MAX);
    return cf_err_field(
        err, CF_EVALIDATION, field,
        "%s: '%.*s' is not an IP address or CIDR range (e.g. 10.0.0.0/8, 2001:db8::/32)", field,
        (int)(c.bad_len > 64 ? 64 : c.bad_len), c.bad);
}

struct match_ctx {
    struct range addr;
    bool matched;
};

static bool match_entry(const char *entry, size_t n, void *data)
{
    struct match_ctx *m = data;
    struct range r;
    if (!parse_range(entry, n, &r))
        return true;
    const uint8_t *a = m->addr.addr;
    int family = m->addr.family;
    /* ::ffff:a.b.c.d is the IPv4 address a.b.c.d */
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family == AF_INET6 && r.family == AF_INET && memcmp(a, mapped, 12) == 0) {
        a += 12;
        family = AF_INET;
    }
    if (family == r.family && prefix_equal(a, r.addr, r.prefix)) {
        m->matched = true;
        return false;
    }
    return true;
}

bool cf_cidr_list_match(const char *list, const char *address)
{
    struct match_ctx m = {{0}, false};
    if (!list || !address || !parse_range(address, strlen(address), &m.addr))
        return false;
    if (strchr(address, '/'))
        return false;
    /* a list that is not valid as a whole matches nothing, not its valid part */
    if (cf_cidr_list_check(list, "", NULL) != CF_OK)
        return false;
    each_entry(list, match_entry, &m);
    return m.matched;
}
