/* libcurl, loaded at its first use (util/dynlib.h): the functions of libcurl the program calls. */
#include <stdarg.h>

/* curl.h otherwise makes curl_easy_setopt and curl_easy_getinfo macros (typecheck-gcc.h), and the
 * definitions below must be the functions themselves. The callers keep the type checks. */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#include "util/dynlib_impl.h"
#include "util/banned.h"

#define CURL_FUNCTIONS(F, V, M)                                                                    \
    F(CURLcode, curl_global_init, (long flags), (flags), CURLE_FAILED_INIT)                        \
    F(CURLcode, curl_global_init_mem,                                                              \
      (long flags, curl_malloc_callback m, curl_free_callback f, curl_realloc_callback r,          \
       curl_strdup_callback s, curl_calloc_callback c),                                            \
      (flags, m, f, r, s, c), CURLE_FAILED_INIT)                                                   \
    F(CURL *, curl_easy_init, (void), (), NULL)                                                    \
    M(curl_easy_setopt)                                                                            \
    M(curl_easy_getinfo)                                                                           \
    F(CURLcode, curl_easy_perform, (CURL * curl), (curl), CURLE_FAILED_INIT)                       \
    V(curl_easy_reset, (CURL * curl), (curl))                                                      \
    V(curl_easy_cleanup, (CURL * curl), (curl))                                                    \
    F(const char *, curl_easy_strerror, (CURLcode code), (code), "libcurl could not be loaded")    \
    F(CURLHcode, curl_easy_header,                                                                 \
      (CURL * easy, const char *name, size_t index, unsigned int origin, int request,              \
       struct curl_header **hout),                                                                 \
      (easy, name, index, origin, request, hout), CURLHE_NOT_BUILT_IN)                             \
    F(char *, curl_easy_escape, (CURL * handle, const char *string, int length),                   \
      (handle, string, length), NULL)                                                              \
    V(curl_free, (void *p), (p))                                                                   \
    F(struct curl_slist *, curl_slist_append, (struct curl_slist * list, const char *data),        \
      (list, data), NULL)                                                                          \
    V(curl_slist_free_all, (struct curl_slist * list), (list))                                     \
    F(CURLU *, curl_url, (void), (), NULL)                                                         \
    V(curl_url_cleanup, (CURLU * handle), (handle))                                                \
    F(CURLUcode, curl_url_get, (CURLU * handle, CURLUPart what, char **part, unsigned int flags),  \
      (handle, what, part, flags), CURLUE_OUT_OF_MEMORY)                                           \
    F(CURLUcode, curl_url_set,                                                                     \
      (CURLU * handle, CURLUPart what, const char *part, unsigned int flags),                      \
      (handle, what, part, flags), CURLUE_OUT_OF_MEMORY)

CF_DYNLIB_DEFINE(cf_lib_curl, "libcurl", "libcurl.so.4", CURL_FUNCTIONS)

typedef CURLcode (*curl_variadic)(CURL *, int, ...);

/* The option's number says the type of its one argument (curl.h, CURLOPTTYPE_*: below 10000 a
 * long, then an object pointer, a function pointer, a curl_off_t, and a struct curl_blob pointer),
 * which libcurl reads with va_arg as that type: it is passed on as that type. */
CURLcode curl_easy_setopt(CURL *curl, CURLoption option, ...)
{
    if (!cf_dynlib_ready(lib_this))
        return CURLE_FAILED_INIT;
    curl_variadic real = (curl_variadic)lib_slots[CF_DYNLIB_SLOT_curl_easy_setopt];
    va_list ap;
    va_start(ap, option);
    CURLcode rc;
    if (option < CURLOPTTYPE_OBJECTPOINT)
        rc = real(curl, option, va_arg(ap, long));
    else if (option < CURLOPTTYPE_FUNCTIONPOINT)
        rc = real(curl, option, va_arg(ap, void *));
    else if (option < CURLOPTTYPE_OFF_T)
        rc = real(curl, option, va_arg(ap, cf_dynlib_fn));
    else if (option < CURLOPTTYPE_BLOB)
        rc = real(curl, option, va_arg(ap, curl_off_t));
    else
        rc = real(curl, option, va_arg(ap, void *));
    va_end(ap);
    return rc;
}

/* Every CURLINFO takes a pointer to where the answer goes (curl.h, curl_easy_getinfo). */
CURLcode curl_easy_getinfo(CURL *curl, CURLINFO info, ...)
{
    if (!cf_dynlib_ready(lib_this))
        return CURLE_FAILED_INIT;
    curl_variadic real = (curl_variadic)lib_slots[CF_DYNLIB_SLOT_curl_easy_getinfo];
    va_list ap;
    va_start(ap, info);
    CURLcode rc = real(curl, info, va_arg(ap, void *));
    va_end(ap);
    return rc;
}
