/* IP address ranges: CIDR lists such as "10.0.0.0/8, 192.168.1.7, 2001:db8::/32" (a bare address is
 * a single-host range), checked when configured and matched against a client's address on every
 * login and request that a trusted-IP list guards. IPv4 and IPv6; an IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) matches IPv4 ranges. */
#ifndef CF_UTIL_CIDR_H
#define CF_UTIL_CIDR_H

#include <stdbool.h>

#include "util/err.h"

/* CF_OK when list is a comma-separated list of 1..64 valid ranges (blanks around entries allowed);
 * CF_EVALIDATION naming field and the first bad entry otherwise. */
enum cf_rc cf_cidr_list_check(const char *list, const char *field, struct cf_err *err);

/* True when address (textual IPv4 or IPv6) lies in one of the ranges of list. An invalid address or
 * list matches nothing. */
bool cf_cidr_list_match(const char *list, const char *address);

#endif
