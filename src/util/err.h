/* Error codes and error detail shared by every module. A fallible function returns enum cf_rc and,
 * when it fails, fills a caller-supplied struct cf_err with a lower-case message naming the subject
 * in quotes. Messages never contain secret bytes. */
#ifndef CF_UTIL_ERR_H
#define CF_UTIL_ERR_H

#include <stdarg.h>

enum cf_rc {
    CF_OK = 0,
    CF_EINVAL,      /* malformed request or argument (HTTP 400) */
    CF_EVALIDATION, /* a field failed validation (HTTP 422), err->field names it */
    CF_ENOTFOUND,   /* no such project/environment/folder/secret (HTTP 404) */
    CF_EMETHOD,     /* the resource exists but not with this method (HTTP 405) */
    CF_EEXIST,      /* already exists (HTTP 400, as Infisical answers duplicates) */
    CF_ECONFLICT,   /* concurrent modification; the caller may retry (HTTP 409) */
    CF_EUNAUTH,     /* missing or invalid credential (HTTP 401) */
    CF_EFORBIDDEN,  /* authenticated but not allowed (HTTP 403) */
    CF_ETOOLARGE,   /* body or value over its limit (HTTP 413) */
    CF_ETARGET,     /* request target (path and query) over its limit (HTTP 414) */
    CF_EHEADERS,    /* request headers over their limit (HTTP 431) */
    CF_EVERSION,    /* HTTP version not supported (HTTP 505) */
    CF_ERATELIMIT,  /* too many attempts (HTTP 429) */
    CF_ECRYPTO,     /* a ciphertext failed to open, or key material is wrong (HTTP 500) */
    CF_ESTORE,      /* the store failed (HTTP 500) */
    CF_EUNAVAIL,    /* temporarily unavailable, e.g. store busy or shutting down (HTTP 503) */
    CF_ENOMEM,      /* out of memory (HTTP 500) */
    CF_EIO,         /* file or network I/O failed */
    CF_EINTERNAL,   /* anything else (HTTP 500) */
    /* a feature this build does not have (HTTP 501) */
    CF_EUNSUPPORTED,
    /* the server is sealed: its root key is not in memory until it is unsealed (HTTP 503) */
    CF_ESEALED,
};

#define CF_ERR_FIELD_MAX 64
#define CF_ERR_MSG_MAX 256

struct cf_err {
    enum cf_rc rc;
    char field[CF_ERR_FIELD_MAX]; /* for CF_EVALIDATION/CF_EINVAL: the offending field, or "" */
    char msg[CF_ERR_MSG_MAX];
    int retry_after_s; /* for CF_ERATELIMIT: seconds until a retry may succeed */
};

/* Sets err (which may be NULL) to rc and the formatted message, clears err->field; returns rc. */
enum cf_rc cf_err_set(struct cf_err *err, enum cf_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like cf_err_set but also records the field the problem is about. */
enum cf_rc cf_err_field(struct cf_err *err, enum cf_rc rc, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Resets err to CF_OK with empty strings. */
void cf_err_clear(struct cf_err *err);

/* The stable lower-case name of rc, e.g. "not found". Never NULL. */
const char *cf_rc_str(enum cf_rc rc);

/* The class of a failure at an outside system, one word for a status field: "unauthorized",
 * "forbidden", "not-found", "throttled", "unreachable", "invalid", else "internal". */
const char *cf_rc_cause(enum cf_rc rc);

/* Aborts with a message: only for broken invariants, never for bad input. */
#define CF_BUG(msg) cf_bug(__FILE__, __LINE__, (msg))
_Noreturn void cf_bug(const char *file, int line, const char *msg);

#endif
