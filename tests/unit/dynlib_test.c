/* util/dynlib: the libraries loaded at their first use. Each Criterion test runs in a process of
 * its own, so every test starts with nothing loaded. */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cjose/cjose.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <gpgme.h>
#include <libpq-fe.h>
#include <mysql.h>
#include <openssl/evp.h>

#include "util/dynlib_impl.h"
#include "util/banned.h"

/* Whether a file whose name contains name is mapped into this process. */
static bool mapped(const char *name)
{
    FILE *f = fopen("/proc/self/maps", "r");
    cr_assert_not_null(f);
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, name) != NULL;
    fclose(f);
    return found;
}

Test(dynlib, nothing_is_mapped_before_its_first_use)
{
    struct {
        struct cf_dynlib *lib;
        const char *file;
    } libs[] = {{&cf_lib_curl, "/libcurl.so"},
                {&cf_lib_pq, "/libpq.so"},
                {&cf_lib_mariadb, "/libmariadb.so"},
                {&cf_lib_gpgme, "/libgpgme.so"},
                {&cf_lib_cjose, "/libcjose.so"}};
    for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]); i++) {
        cr_expect_not(cf_dynlib_loaded(libs[i].lib), "%s", libs[i].file);
        cr_expect_not(mapped(libs[i].file), "%s mapped before its first use", libs[i].file);
    }
    /* libcrypto is not in the list: Criterion maps it (through libgit2 and libssh2) and calls it at
     * its start, through this program's definitions, which take precedence over the library's own
     * since the library is in the link. test_outbound.py reads a server's mappings instead. */
    /* the first call of one of its functions loads it */
    cr_assert_str_eq(curl_easy_strerror(CURLE_OK), "No error");
    cr_expect(cf_dynlib_loaded(&cf_lib_curl));
    cr_expect(mapped("/libcurl.so"));
    cr_expect_not(mapped("/libpq.so"));
    struct cf_err err;
    cf_err_clear(&err);
    cr_assert_eq(cf_dynlib_load(&cf_lib_pq, &err), CF_OK, "%s", err.msg);
    cr_expect(mapped("/libpq.so"));
}

static int sockets_asked;

static curl_socket_t refuse_socket(void *data, curlsocktype purpose, struct curl_sockaddr *address)
{
    (void)data;
    (void)purpose;
    (void)address;
    sockets_asked++;
    return CURL_SOCKET_BAD;
}

/* curl_easy_setopt and curl_easy_getinfo are variadic: each kind of argument must reach libcurl as
 * the type it reads, which libcurl's own checks of the values show. */
Test(dynlib, curl_options_of_every_kind_reach_libcurl)
{
    CURL *curl = curl_easy_init();
    cr_assert_not_null(curl);
    /* a long */
    cr_expect_eq(curl_easy_setopt(curl, CURLOPT_MAXREDIRS, -2L), CURLE_BAD_FUNCTION_ARGUMENT);
    cr_expect_eq(curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 3L), CURLE_OK);
    /* a curl_off_t */
    cr_expect_eq(curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)-5),
                 CURLE_BAD_FUNCTION_ARGUMENT);
    cr_expect_eq(curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)1 << 40), CURLE_OK);
    /* an object pointer and a function pointer: the address is used, and the callback called */
    cr_expect_eq(curl_easy_setopt(curl, CURLOPT_URL, "http://127.0.0.1:9/dynlib"), CURLE_OK);
    cr_expect_eq(curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, refuse_socket), CURLE_OK);
    cr_expect_eq(curl_easy_setopt(curl, CURLOPT_NOPROXY, "*"), CURLE_OK);
    cr_expect_eq(curl_easy_perform(curl), CURLE_COULDNT_CONNECT);
    cr_expect_eq(sockets_asked, 1);
    char *url = NULL;
    cr_expect_eq(curl_easy_getinfo(curl, CURLINFO_EFFECTIVE_URL, &url), CURLE_OK);
    cr_expect_str_eq(url, "http://127.0.0.1:9/dynlib");
    long code = -1;
    cr_expect_eq(curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code), CURLE_OK);
    cr_expect_eq(code, 0);
    curl_easy_cleanup(curl);
}

Test(dynlib, the_other_libraries_answer_as_themselves)
{
    const char *const keys[] = {"host", "connect_timeout", NULL};
    const char *const values[] = {"/nonexistent-dynlib-test", "1", NULL};
    PGconn *pg = PQconnectdbParams(keys, values, 0);
    cr_assert_not_null(pg);
    cr_expect_eq(PQstatus(pg), CONNECTION_BAD);
    cr_expect(strstr(PQerrorMessage(pg), "/nonexistent-dynlib-test") != NULL, "%s",
              PQerrorMessage(pg));
    PQfinish(pg);

    MYSQL *m = mysql_init(NULL);
    cr_assert_not_null(m);
    cr_expect_eq(mysql_errno(m), 0);
    cr_expect_str_eq(mysql_error(m), "");
    mysql_close(m);

    cr_expect_not_null(gpgme_check_version(NULL));
    cr_expect_str_eq(gpgme_strerror(0), "Success");
}

/* libcrypto through its definitions: SHA-256 of "abc" (FIPS 180-2, appendix B.1); cjose's own
 * error for a token that is not a JWS, and libcrypto mapped with it. */
Test(dynlib, openssl_and_cjose_answer_as_themselves)
{
    static const unsigned char expected[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                               0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                               0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                               0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    cr_assert_eq(EVP_Digest("abc", 3, md, &len, EVP_sha256(), NULL), 1);
    cr_assert_eq(len, 32);
    cr_expect_eq(memcmp(md, expected, sizeof(expected)), 0);
    cr_expect(cf_dynlib_loaded(&cf_lib_crypto));
    cr_expect_not(cf_dynlib_loaded(&cf_lib_cjose));

    cjose_err err = {0};
    cr_expect_null(cjose_jws_import("not.a-jws", 9, &err));
    cr_expect_neq(err.code, CJOSE_ERR_NONE);
    cr_expect(cf_dynlib_loaded(&cf_lib_cjose));
    cr_assert_not_null(err.message);
    cr_expect_str_neq(err.message, "cjose could not be loaded");
}

/* A library that is not installed: a clear error naming it, and its functions fail as documented.
 */
int cf_test_absent_answer(int x);
#define ABSENT_FUNCTIONS(F, V, M) F(int, cf_test_absent_answer, (int x), (x), -7)
CF_DYNLIB_DEFINE(absent_lib, "libabsent", "libcoffer-absent-test.so.1", ABSENT_FUNCTIONS)

Test(dynlib, a_library_that_is_not_installed_is_named)
{
    cr_expect_eq(cf_test_absent_answer(3), -7);
    struct cf_err err;
    cf_err_clear(&err);
    cr_assert_eq(cf_dynlib_load(&absent_lib, &err), CF_EUNSUPPORTED);
    cr_expect(strstr(err.msg, "libabsent could not be loaded") != NULL, "%s", err.msg);
    cr_expect(strstr(err.msg, "libcoffer-absent-test.so.1") != NULL, "%s", err.msg);
    cr_expect_not(cf_dynlib_loaded(&absent_lib));
}

/* A library that is there but lacks a function the program needs (built by hand: one
 * CF_DYNLIB_DEFINE per file). */
static const char *const missing_symbols[] = {"zlibVersion", "cf_test_missing_function"};
static cf_dynlib_fn missing_slots[2];
static void missing_load_once(void);
static struct cf_dynlib missing_lib = {.label = "zlib",
                                       .soname = "libz.so.1",
                                       .symbols = missing_symbols,
                                       .slots = missing_slots,
                                       .count = 2,
                                       .once = PTHREAD_ONCE_INIT,
                                       .load_once = missing_load_once};
static void missing_load_once(void)
{
    cf_dynlib_open(&missing_lib);
}

Test(dynlib, a_missing_function_is_named)
{
    struct cf_err err;
    cf_err_clear(&err);
    cr_assert_eq(cf_dynlib_load(&missing_lib, &err), CF_EUNSUPPORTED);
    cr_expect(strstr(err.msg, "\"cf_test_missing_function\"") != NULL, "%s", err.msg);
    cr_expect(strstr(err.msg, "libz.so.1") != NULL, "%s", err.msg);
    cr_expect_null(missing_slots[0], "a half-loaded library keeps no function");
    cr_expect_not(cf_dynlib_loaded(&missing_lib));
}

static void *call_absent(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)cf_test_absent_answer(1);
}

Test(dynlib, the_first_use_from_many_threads_loads_once)
{
    pthread_t threads[8];
    for (size_t i = 0; i < 8; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, call_absent, NULL), 0);
    for (size_t i = 0; i < 8; i++) {
        void *answer = NULL;
        pthread_join(threads[i], &answer);
        cr_expect_eq((intptr_t)answer, -7);
    }
    cr_expect_not(cf_dynlib_loaded(&absent_lib));
}
