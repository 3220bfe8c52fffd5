/* Error detail helpers (see err.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/banned.h"

__attribute__((format(printf, 2, 0))) static void set_msg(struct cf_err *err, const char *fmt,
                                                          va_list ap)
{
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

enum cf_rc cf_err_set(struct cf_err *err, enum cf_rc rc, const char *fmt, ...)
{
    if (!err)
        return rc;
    va_list ap;
    err->rc = rc;
    err->field[0] = '\0';
    err->retry_after_s = 0;
    va_start(ap, fmt);
    set_msg(err, fmt, ap);
    va_end(ap);
    return rc;
}

enum cf_rc cf_err_field(struct cf_err *err, enum cf_rc rc, const char *field, const char *fmt, ...)
{
    if (!err)
        return rc;
    va_list ap;
    err->rc = rc;
    snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
    err->retry_after_s = 0;
    va_start(ap, fmt);
    set_msg(err, fmt, ap);
    va_end(ap);
    return rc;
}

void cf_err_clear(struct cf_err *err)
{
    if (!err)
        return;
    err->rc = CF_OK;
    err->field[0] = '\0';
    err->retry_after_s = 0;
    err->msg[0] = '\0';
}

const char *cf_rc_str(enum cf_rc rc)
{
    switch (rc) {
    case CF_OK:
        return "ok";
    case CF_EINVAL:
        return "invalid request";
    case CF_EVALIDATION:
        return "validation failed";
    case CF_ENOTFOUND:
        return "not found";
    case CF_EMETHOD:
        return "method not allowed";
    case CF_EEXIST:
        return "already exists";
    case CF_ECONFLICT:
        return "conflict";
    case CF_EUNAUTH:
        return "unauthorized";
    case CF_EFORBIDDEN:
        return "forbidden";
    case CF_ETOOLARGE:
        return "too large";
    case CF_ETARGET:
        return "request target too long";
    case CF_EHEADERS:
        return "request headers too large";
    case CF_EVERSION:
        return "http version not supported";
    case CF_ERATELIMIT:
        return "rate limited";
    case CF_ECRYPTO:
        return "cryptographic failure";
    case CF_ESTORE:
        return "store failure";
    case CF_EUNAVAIL:
        return "unavailable";
    case CF_ENOMEM:
        return "out of memory";
    case CF_EIO:
        return "i/o error";
    case CF_EINTERNAL:
        return "internal error";
    case CF_EUNSUPPORTED:
        return "not implemented";
    case CF_ESEALED:
        return "sealed";
    }
    return "unknown error";
}

void cf_bug(const char *file, int line, const char *msg)
{
    fprintf(stderr, "coffer: BUG at %s:%d: %s\n", file, line, msg);
    abort();
}

const char *cf_rc_cause(enum cf_rc rc)
{
    switch (rc) {
    case CF_EUNAUTH:
        return "unauthorized";
    case CF_EFORBIDDEN:
        return "forbidden";
    case CF_ENOTFOUND:
        return "not-found";
    case CF_ERATELIMIT:
        return "throttled";
    case CF_EIO:
        return "unreachable";
    case CF_EINVAL:
    case CF_EVALIDATION:
        return "invalid";
    default:
        return "internal";
    }
}
