/* Libraries loaded at their first use instead of at the program's start: libcurl (outbound HTTP:
 * the client commands, syncs, JWKS, OIDC discovery, webhooks, the Kubernetes API), libpq (the
 * PostgreSQL store, PostgreSQL dynamic secrets and rotated roles), libmariadb (MySQL dynamic
 * secrets), GPGME (unseal shares encrypted to OpenPGP keys), cjose (JWT signatures) and OpenSSL's
 * libcrypto (JWTs, certificates, client assertions, RSA-wrapped shares, age files). A server on
 * SQLite that uses none of them maps none of them, nor the libraries they bring (Kerberos, LDAP,
 * SASL, libssh2, librtmp, nghttp2, libssl, ...): about 4.5 MB less resident memory at start; a
 * client command maps libcurl's tree only once it makes a request, and never libpq's,
 * libmariadb's or GPGME's.
 *
 * The code calls these libraries by their own function names, as if they were linked: for each
 * function the program uses, util/dynlib_*.c define one with the prototype of the library's own
 * header (so the compiler checks it), which loads the library once, thread-safe, and calls the real
 * function. When the library cannot be loaded, each such function fails the way the library itself
 * reports a failure (NULL, CURLE_FAILED_INIT, CONNECTION_BAD, ...), and the reason is logged once;
 * cf_dynlib_load gives the reason to the callers that report their own errors. */
#ifndef CF_UTIL_DYNLIB_H
#define CF_UTIL_DYNLIB_H

#include <stdbool.h>

#include "util/err.h"

struct cf_dynlib;

extern struct cf_dynlib cf_lib_curl;    /* libcurl.so.4 */
extern struct cf_dynlib cf_lib_pq;      /* libpq.so.5 */
extern struct cf_dynlib cf_lib_mariadb; /* libmariadb.so.3 */
extern struct cf_dynlib cf_lib_gpgme;   /* libgpgme.so.11 */
extern struct cf_dynlib cf_lib_cjose;   /* libcjose.so.0 */
extern struct cf_dynlib cf_lib_crypto;  /* libcrypto.so.3 */

/* Loads lib unless it is loaded: CF_OK, or CF_EUNSUPPORTED with a message naming the library, its
 * file and the loader's reason. The first call decides for the life of the process (a library that
 * could not be loaded is not tried again). Thread-safe. */
enum cf_rc cf_dynlib_load(struct cf_dynlib *lib, struct cf_err *err);

/* Whether lib has been loaded; loads nothing. Thread-safe. */
bool cf_dynlib_loaded(struct cf_dynlib *lib);

#endif
