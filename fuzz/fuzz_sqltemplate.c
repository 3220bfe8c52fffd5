/* The statement templates of the "mysql" dynamic provider (provider/mysqldynamic.h): the input is a
 * creation statement, rendered with plain values and with hostile ones (quotes, backslashes,
 * backquotes, semicolons, comment starters, a line break, a placeholder's text). Properties: a
 * template is refused only with a validation error, and the same way with or without a session;
 * an accepted one renders to the same number of statements whatever the values, and a hostile
 * value appears in a statement only escaped (no unescaped single quote inside it). */
#include <mysql.h>

#include "fuzz.h"
#include "provider/mysqldynamic.h"

#define HOSTILE "x'`;\\-- #/*\n{{password}}\"%"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *template = malloc(size + 1);
    MYSQL *m = mysql_init(NULL);
    if (!template || !m)
        abort();
    memcpy(template, data, size);
    template[size] = '\0';
    const struct cf_mysql_values plain = {"u", "p", "e"};
    const struct cf_mysql_values hostile = {HOSTILE, HOSTILE, HOSTILE};
    struct cf_mysql_statements a = {0}, b = {0}, check = {0};
    struct cf_err err = {0};
    enum cf_rc rc_a = cf_mysql_render(m, "t", template, &plain, &a, &err);
    FUZZ_CHECK(rc_a == CF_OK || rc_a == CF_EVALIDATION, "render failed with %s: %s",
               cf_rc_str(rc_a), err.msg);
    enum cf_rc rc_b = cf_mysql_render(m, "t", template, &hostile, &b, &err);
    enum cf_rc rc_check = cf_mysql_render(NULL, "t", template, &plain, &check, &err);
    FUZZ_CHECK(rc_a == rc_b && rc_a == rc_check, "the values or the session changed the outcome");
    FUZZ_CHECK(a.n == b.n, "hostile values changed the number of statements (%zu, %zu)", a.n, b.n);
    FUZZ_CHECK(rc_a != CF_OK || check.used == a.used, "a check saw other placeholders");
    /* the hostile value's quote is always escaped: "x'`;" never stands unescaped (unless the
     * template itself holds that text) */
    for (size_t i = 0; !strstr(template, "x'`;") && i < b.n; i++) {
        for (const char *at = strstr(b.items[i], "x'`;"); at; at = strstr(at + 1, "x'`;"))
            FUZZ_CHECK(0, "an unescaped hostile value in statement %zu", i);
    }
    cf_mysql_statements_release(&a);
    cf_mysql_statements_release(&b);
    cf_mysql_statements_release(&check);
    mysql_close(m);
    free(template);
    return 0;
}
