/* Unit tests for src/cli/format (the formats of `coffer export`) and the merge of src/cli/fetch.
 *
 * The shell formats are checked the way users rely on them: the rendered text is eval'ed by real
 * shells (/bin/sh, which is dash on Debian, and bash) and the variables they end up with are
 * compared byte for byte with the original values, for a table of nasty values. The github format
 * is read back with a transcription of the Actions runner's env-file parser; azure-devops, yaml and
 * csv are compared with expected texts written by hand from the formats' specifications. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>

#include "cli/fetch.h"
#include "util/format.h"
#include "util/banned.h"
#include "util/str.h"

static void suite_init(void)
{
    cr_assert(sodium_init() >= 0, "sodium_init failed");
}

/* Values a careless exporter gets wrong. */
static const char *const nasty[] = {
    "",
    "plain",
    "it's",
    "''",
    "'",
    "\"double\" quotes",
    "back\\slash\\",
    "\\n is not a newline",
    "$HOME and ${HOME} and $(id) and `id`",
    "a=b=c",
    "# not a comment",
    "value # trailing",
    "line1\nline2",
    "trailing newline\n",
    "\n\nleading newlines",
    "crlf\r\nline",
    "tab\there",
    "  surrounding blanks  ",
    "unicode: caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91 \xe4\xb8\xad\xe6\x96\x87",
    "!bang !! !$",
    "semi;colon & amp | pipe > redirect < in",
    "*glob? [x]",
    "%percent %AZP25 %0A",
    "]bracket;semicolon",
    "esc \x1b[31m red",
    "-----BEGIN KEY-----\nMHcCAQEE\nAwEHoUQD\n-----END KEY-----\n",
    "'\\''",
    "ends with backslash \\",
    "~tilde",
    "multi\n'quoted'\nlines\n",
};
#define NNASTY (CF_ARRAY_SIZE(nasty))

/* Runs shell -c script with arg as $1; returns its stdout (malloc'd, *len bytes). */
static char *run_shell(const char *shell, const char *script, const char *arg, size_t *len)
{
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        dup2(pipefd[1], STDOUT_FILENO);
        close(pipefd[0]);
        close(pipefd[1]);
        execl(shell, shell, "-c", script, "sh", arg, (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    size_t cap = 4096, n = 0;
    char *out = malloc(cap);
    for (;;) {
        if (n == cap)
            out = realloc(out, cap *= 2);
        ssize_t got = read(pipefd[0], out + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    close(pipefd[0]);
    int wstatus;
    cr_assert_eq(waitpid(pid, &wstatus, 0), pid);
    cr_assert(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0, "%s exited with %d", shell, wstatus);
    *len = n;
    return out;
}

static void items_from(struct cf_format_item *items, char names[][16], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], 16, "V%u", (unsigned)(i % 1000));
        memset(&items[i], 0, sizeof(items[i]));
        items[i].name = names[i];
        items[i].value = nasty[i];
        items[i].value_len = strlen(nasty[i]);
    }
}

/* Evals the rendering of all nasty values in shell and checks every variable. */
static void check_eval(const char *shell, enum cf_format format)
{
    struct cf_format_item items[NNASTY];
    char names[NNASTY][16];
    struct cf_buf out;
    struct cf_err err;

    if (access(shell, X_OK) != 0) {
        cr_log_warn("%s not installed; skipped", shell);
        return;
    }
    items_from(items, names, NNASTY);
    cf_buf_init(&out, 0);
    cr_assert_eq(cf_format_render(format, items, NNASTY, &out, &err), CF_OK, "%s", err.msg);
    /* As a pipeline would: through command substitution, which drops trailing newlines. */
    for (size_t i = 0; i < NNASTY; i++) {
        char script[128];
        size_t len;
        if (format == CF_FORMAT_DOTENV_EXPORT)
            snprintf(script, sizeof(script),
                     "eval \"$(printf '%%s' \"$1\")\"; printf '%%s' \"$V%zu\"", i);
        else /* dotenv: the issue's `sed 's/^/export TF_VAR_/'`-style use, without the sed */
            snprintf(script, sizeof(script),
                     "set -a; eval \"$(printf '%%s' \"$1\")\"; printf '%%s' \"$V%zu\"", i);
        char *got = run_shell(shell, script, out.data, &len);
        cr_expect_eq(len, strlen(nasty[i]), "%s %s: value %zu has %zu bytes, expected %zu", shell,
                     cf_format_name(format), i, len, strlen(nasty[i]));
        cr_expect(len == strlen(nasty[i]) && memcmp(got, nasty[i], len) == 0,
                  "%s %s: value %zu differs", shell, cf_format_name(format), i);
        free(got);
    }
    cf_buf_release_wipe(&out);
}

TestSuite(shell, .init = suite_init);

Test(shell, dotenv_export_eval_sh)
{
    check_eval("/bin/sh", CF_FORMAT_DOTENV_EXPORT);
}
Test(shell, dotenv_export_eval_bash)
{
    check_eval("/bin/bash", CF_FORMAT_DOTENV_EXPORT);
}
Test(shell, dotenv_eval_sh)
{
    check_eval("/bin/sh", CF_FORMAT_DOTENV);
}
Test(shell, dotenv_eval_bash)
{
    check_eval("/bin/bash", CF_FORMAT_DOTENV);
}

Test(shell, quote_texts)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"", "''"},       {"abc", "'abc'"},   {"it's", "'it'\\''s'"},
        {"'", "''\\'''"}, {"a\nb", "'a\nb'"}, {"$x\\", "'$x\\'"},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        struct cf_buf b;
        cf_buf_init(&b, 0);
        cr_assert_eq(cf_format_shell_quote(&b, cases[i].in, strlen(cases[i].in)), CF_OK);
        cr_expect_str_eq(b.data, cases[i].out, "quote of case %zu", i);
        cf_buf_release(&b);
    }
}

Test(shell, dotenv_lines)
{
    struct cf_format_item items[2] = {{.name = "A", .value = "x'y", .value_len = 3},
                                      {.name = "B_2", .value = "", .value_len = 0}};
    struct cf_buf b;
    struct cf_err err;
    cf_buf_init(&b, 0);
    cr_assert_eq(cf_format_render(CF_FORMAT_DOTENV, items, 2, &b, &err), CF_OK);
    cr_expect_str_eq(b.data, "A='x'\\''y'\nB_2=''\n");
    cf_buf_reset(&b);
    cr_assert_eq(cf_format_render(CF_FORMAT_DOTENV_EXPORT, items, 2, &b, &err), CF_OK);
    cr_expect_str_eq(b.data, "export A='x'\\''y'\nexport B_2=''\n");
    cf_buf_release(&b);
}

Test(shell, names)
{
    cr_expect(cf_format_shell_name("A"));
    cr_expect(cf_format_shell_name("_a9"));
    cr_expect(cf_format_shell_name("TF_VAR_db_password"));
    cr_expect_not(cf_format_shell_name(""));
    cr_expect_not(cf_format_shell_name("9A"));
    cr_expect_not(cf_format_shell_name("A-B"));
    cr_expect_not(cf_format_shell_name("A.B"));
    cr_expect_not(cf_format_shell_name("A B"));
    cr_expect_not(cf_format_shell_name("\xc3\xa9"));
}

Test(shell, bad_names_and_nul_refused)
{
    struct cf_format_item dash = {.name = "MY-KEY", .value = "v", .value_len = 1};
    struct cf_format_item nul = {.name = "OK", .value = "a\0b", .value_len = 3};
    struct cf_buf b;
    struct cf_err err;
    cf_buf_init(&b, 0);
    for (int f = CF_FORMAT_DOTENV; f <= CF_FORMAT_DOTENV_EXPORT; f++) {
        cf_err_clear(&err);
        cr_expect_eq(cf_format_render((enum cf_format)f, &dash, 1, &b, &err), CF_EINVAL);
        cr_expect(strstr(err.msg, "'MY-KEY'") && strstr(err.msg, "not a valid shell variable name"),
                  "message: %s", err.msg);
        cr_expect_eq(cf_format_render((enum cf_format)f, &nul, 1, &b, &err), CF_EINVAL);
        cr_expect(strstr(err.msg, "NUL"), "message: %s", err.msg);
        cr_expect_eq(b.len, 0, "nothing is written on error");
    }
    /* Other formats take such names. */
    cr_expect_eq(cf_format_render(CF_FORMAT_YAML, &dash, 1, &b, &err), CF_OK);
    cf_buf_release(&b);
}

/* ---- azure-devops ---- */

TestSuite(azure, .init = suite_init);

Test(azure, exact_lines)
{
    struct cf_format_item items[] = {
        {.name = "PLAIN", .value = "v", .value_len = 1},
        {.name = "PCT", .value = "100%", .value_len = 4},
        {.name = "ML", .value = "a\r\nb\nc", .value_len = 6},
        {.name = "SPECIAL", .value = "x;y]z", .value_len = 5},
        {.name = "we;ird]na%me", .value = "", .value_len = 0},
        {.name = "AZP", .value = "%AZP25", .value_len = 6},
    };
    struct cf_buf b;
    struct cf_err err;
    cf_buf_init(&b, 0);
    cr_assert_eq(cf_format_render(CF_FORMAT_AZURE_DEVOPS, items, 6, &b, &err), CF_OK, "%s",
                 err.msg);
    cr_expect_str_eq(b.data, "##vso[task.setvariable variable=PLAIN;issecret=true]v\n"
                             "##vso[task.setvariable variable=PCT;issecret=true]100%AZP25\n"
                             "##vso[task.setvariable variable=ML;issecret=true]a%0D%0Ab%0Ac\n"
                             "##vso[task.setvariable variable=SPECIAL;issecret=true]x;y]z\n"
                             "##vso[task.setvariable variable=we%3Bird%5Dna%AZP25me;"
                             "issecret=true]\n"
                             "##vso[task.setvariable variable=AZP;issecret=true]%AZP25AZP25\n");
    cf_buf_release(&b);
}

/* The agent's unescaping (azure-pipelines-agent CommandStringConvertor.Unescape for data). */
static char *azure_unescape(const char *s)
{
    char *out = malloc(strlen(s) + 1), *o = out;
    while (*s) {
        if (strncmp(s, "%AZP25", 6) == 0) {
            *o++ = '%';
            s += 6;
        } else if (strncmp(s, "%0D", 3) == 0) {
            *o++ = '\r';
            s += 3;
        } else if (strncmp(s, "%0A", 3) == 0) {
            *o++ = '\n';
            s += 3;
        } else {
            *o++ = *s++;
        }
    }
    *o = '\0';
    return out;
}

Test(azure, round_trip_nasty)
{
    for (size_t i = 0; i < NNASTY; i++) {
        struct cf_buf b;
        cf_buf_init(&b, 0);
        cr_assert_eq(cf_format_azure_escape(&b, nasty[i], strlen(nasty[i]), false), CF_OK);
        cr_expect_null(b.data ? strpbrk(b.data, "\r\n") : NULL, "no line break left in %zu", i);
        char *back = azure_unescape(b.data ? b.data : "");
        cr_expect_str_eq(back, nasty[i], "value %zu", i);
        free(back);
        cf_buf_release(&b);
    }
}

/* ---- github ---- */

TestSuite(github, .init = suite_init);

/* The runner's SetEnvFileCommand (Linux: lines end at LF): parses text into at most max pairs. */
static size_t parse_github_env(const char *text, size_t len, char names[][64], char **values,
                               size_t max)
{
    size_t index = 0, count = 0;
    while (index < len) {
        const char *nl = memchr(text + index, '\n', len - index);
        size_t line_end = nl ? (size_t)(nl - text) : len;
        size_t line_start = index;
        index = nl ? line_end + 1 : len;
        if (line_end == line_start)
            continue;
        const char *line = text + line_start;
        size_t line_len = line_end - line_start;
        const char *heredoc = memmem(line, line_len, "<<", 2);
        cr_assert_not_null(heredoc, "line without <<");
        cr_assert(count < max);
        size_t name_len = (size_t)(heredoc - line);
        cr_assert(name_len < 64);
        memcpy(names[count], line, name_len);
        names[count][name_len] = '\0';
        char delim[128];
        size_t delim_len = line_len - name_len - 2;
        cr_assert(delim_len > 0 && delim_len < sizeof(delim));
        memcpy(delim, heredoc + 2, delim_len);
        delim[delim_len] = '\0';
        size_t start = index, end = index;
        for (;;) {
            cr_assert(index < len, "matching delimiter not found");
            const char *lf = memchr(text + index, '\n', len - index);
            size_t e = lf ? (size_t)(lf - text) : len;
            bool is_delim = e - index == delim_len && memcmp(text + index, delim, delim_len) == 0;
            size_t next = lf ? e + 1 : len;
            if (is_delim) {
                index = next;
                break;
            }
            end = lf ? next - 1 : next;
            index = next;
        }
        size_t vlen = end > start ? end - start : 0;
        values[count] = malloc(vlen + 1);
        memcpy(values[count], text + start, vlen);
        values[count][vlen] = '\0';
        count++;
    }
    return count;
}

Test(github, env_file_round_trip)
{
    struct cf_format_item items[NNASTY];
    char names[NNASTY][16];
    char parsed_names[NNASTY][64];
    char *values[NNASTY];
    struct cf_buf masks, env;
    struct cf_err err;

    items_from(items, names, NNASTY);
    cf_buf_init(&masks, 0);
    cf_buf_init(&env, 0);
    cr_assert_eq(cf_format_github(items, NNASTY, &masks, &env, &err), CF_OK, "%s", err.msg);
    size_t n = parse_github_env(env.data, env.len, parsed_names, values, NNASTY);
    cr_assert_eq(n, NNASTY);
    for (size_t i = 0; i < n; i++) {
        cr_expect_str_eq(parsed_names[i], names[i]);
        cr_expect_str_eq(values[i], nasty[i], "value %zu", i);
        free(values[i]);
    }
    cf_buf_release_wipe(&masks);
    cf_buf_release_wipe(&env);
}

Test(github, masks_every_line)
{
    struct cf_format_item items[] = {
        {.name = "A", .value = "one\ntwo\r\nthree\n", .value_len = 15},
        {.name = "B", .value = "", .value_len = 0},
        {.name = "C", .value = "50%", .value_len = 3},
    };
    struct cf_buf masks, env;
    struct cf_err err;
    cf_buf_init(&masks, 0);
    cf_buf_init(&env, 0);
    cr_assert_eq(cf_format_github(items, 3, &masks, &env, &err), CF_OK);
    cr_expect_str_eq(masks.data, "::add-mask::one\n::add-mask::two\n::add-mask::three\n"
                                 "::add-mask::50%25\n");
    /* One heredoc per item with a fresh random delimiter. */
    char d1[64], d2[64];
    cr_assert_eq(sscanf(env.data, "A<<%63s", d1), 1);
    cr_expect_eq(strncmp(d1, "ghadelimiter_", 13), 0);
    cr_expect_eq(strlen(d1), 13 + 32);
    const char *b = strstr(env.data, "\nB<<");
    cr_assert_not_null(b);
    cr_assert_eq(sscanf(b + 1, "B<<%63s", d2), 1);
    cr_expect_str_neq(d1, d2);
    cf_buf_release(&masks);
    cf_buf_release(&env);
}

Test(github, refuses_bad_names)
{
    struct cf_format_item eq = {.name = "A=B", .value = "v", .value_len = 1};
    struct cf_format_item hd = {.name = "A<<B", .value = "v", .value_len = 1};
    struct cf_buf masks, env;
    struct cf_err err;
    cf_buf_init(&masks, 0);
    cf_buf_init(&env, 0);
    cr_expect_eq(cf_format_github(&eq, 1, &masks, &env, &err), CF_EINVAL);
    cr_expect_eq(cf_format_github(&hd, 1, &masks, &env, &err), CF_EINVAL);
    cr_expect_eq(env.len, 0);
    cf_buf_release(&masks);
    cf_buf_release(&env);
}

/* ---- yaml, csv, json ---- */

TestSuite(text_formats, .init = suite_init);

Test(text_formats, yaml_quoting)
{
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"", 0, "\"\""},
        {"plain", 5, "\"plain\""},
        {"a\"b\\c", 5, "\"a\\\"b\\\\c\""},
        {"l1\nl2\r\n\t", 8, "\"l1\\nl2\\r\\n\\t\""},
        {"nul\0x", 5, "\"nul\\0x\""},
        {"\x1b\x7f", 2, "\"\\e\\x7F\""},
        {"caf\xc3\xa9 \xe2\x82\xac", 9, "\"caf\xc3\xa9 \xe2\x82\xac\""},
        {"\xc2\x85\xc2\x9f", 4, "\"\\N\\x9F\""},
        {"\xe2\x80\xa8\xe2\x80\xa9\xef\xbb\xbf", 9, "\"\\L\\P\\uFEFF\""},
        {"\xf0\x9f\x94\x91", 4, "\"\xf0\x9f\x94\x91\""},
        {"# yes: no", 9, "\"# yes: no\""},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        struct cf_buf b;
        cf_buf_init(&b, 0);
        cr_assert_eq(cf_format_yaml_quote(&b, cases[i].in, cases[i].len), CF_OK);
        cr_expect_str_eq(b.data, cases[i].out, "yaml case %zu", i);
        cf_buf_release(&b);
    }
    struct cf_buf b;
    cf_buf_init(&b, 0);
    cr_expect_eq(cf_format_yaml_quote(&b, "\xff", 1), CF_EINVAL);
    cf_buf_release(&b);
}

Test(text_formats, yaml_document)
{
    struct cf_format_item items[] = {
        {.name = "DB_URL", .value = "postgres://u:p@h/db", .value_len = 19},
        {.name = "yes", .value = "1", .value_len = 1},
        {.name = "my-key.v2", .value = "x", .value_len = 1},
    };
    struct cf_buf b;
    struct cf_err err;
    cf_buf_init(&b, 0);
    cr_assert_eq(cf_format_render(CF_FORMAT_YAML, items, 3, &b, &err), CF_OK);
    cr_expect_str_eq(b.data, "DB_URL: \"postgres://u:p@h/db\"\n\"yes\": \"1\"\n"
                             "\"my-key.v2\": \"x\"\n");
    cf_buf_release(&b);
}

Test(text_formats, csv_fields)
{
    struct cf_format_item items[] = {
        {.name = "A", .value = "simple", .value_len = 6},
        {.name = "B", .value = "a,b", .value_len = 3},
        {.name = "C", .value = "say \"hi\"", .value_len = 8},
        {.name = "D", .value = "l1\nl2", .value_len = 5},
        {.name = "E", .value = " lead", .value_len = 5},
        {.name = "F", .value = "", .value_len = 0},
    };
    struct cf_buf b;
    struct cf_err err;
    cf_buf_init(&b, 0);
    cr_assert_eq(cf_format_render(CF_FORMAT_CSV, items, 6, &b, &err), CF_OK);
    cr_expect_str_eq(b.data, "Key,Value\nA,simple\nB,\"a,b\"\nC,\"say \"\"hi\"\"\"\n"
                             "D,\"l1\nl2\"\nE,\" lead\"\nF,\n");
    cf_buf_release(&b);
}

Test(text_formats, json_round_trip)
{
    struct cf_format_item items[NNASTY];
    char names[NNASTY][16];
    struct cf_buf b;
    struct cf_err err;

    items_from(items, names, NNASTY);
    items[1].id = "id-1";
    items[1].workspace = "proj";
    items[1].secret_path = "/a";
    items[1].comment = "c";
    json_t *tags =
        json_pack("[{s:s, s:s, s:s, s:n}]", "id", "t1", "slug", "s", "name", "n", "color");
    items[1].tags = tags;
    cf_buf_init(&b, 0);
    cr_assert_eq(cf_format_render(CF_FORMAT_JSON, items, NNASTY, &b, &err), CF_OK, "%s", err.msg);
    json_t *doc = json_loadb(b.data, b.len, 0, NULL);
    cr_assert(json_is_array(doc) && json_array_size(doc) == NNASTY);
    for (size_t i = 0; i < NNASTY; i++) {
        json_t *o = json_array_get(doc, i);
        cr_expect_str_eq(json_string_value(json_object_get(o, "key")), names[i]);
        cr_expect_str_eq(json_string_value(json_object_get(o, "value")), nasty[i]);
        cr_expect_str_eq(json_string_value(json_object_get(o, "type")), "shared");
    }
    json_t *second = json_array_get(doc, 1);
    cr_expect_str_eq(json_string_value(json_object_get(second, "_id")), "id-1");
    cr_expect_str_eq(json_string_value(json_object_get(second, "workspace")), "proj");
    cr_expect_str_eq(json_string_value(json_object_get(second, "secretPath")), "/a");
    cr_expect_str_eq(json_string_value(json_object_get(second, "comment")), "c");
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(second, "tags"), 0), "slug")),
                     "s");
    cr_expect(json_is_false(json_object_get(second, "skipMultilineEncoding")));
    json_decref(doc);
    json_decref(tags);
    cf_buf_release(&b);
}

Test(text_formats, format_names)
{
    enum cf_format f;
    cr_expect(cf_format_from_name("dotenv-export", &f) && f == CF_FORMAT_DOTENV_EXPORT);
    cr_expect(cf_format_from_name("AZURE-DEVOPS", &f) && f == CF_FORMAT_AZURE_DEVOPS);
    cr_expect(cf_format_from_name("github", &f) && f == CF_FORMAT_GITHUB);
    cr_expect_not(cf_format_from_name("toml", &f));
    cr_expect_not(cf_format_from_name(NULL, &f));
    cr_expect_str_eq(cf_format_default_filename(CF_FORMAT_JSON), "secrets.json");
    cr_expect_str_eq(cf_format_default_filename(CF_FORMAT_DOTENV), ".env");
}

/* ---- merge ---- */

TestSuite(merge, .init = suite_init);

struct seen {
    char log[512];
};

static enum cf_rc record(json_t *secret, json_t *import, void *ctx)
{
    struct seen *seen = ctx;
    size_t len = strlen(seen->log);
    snprintf(seen->log + len, sizeof(seen->log) - len, "%s=%s@%s ",
             json_string_value(json_object_get(secret, "secretKey")),
             json_string_value(json_object_get(secret, "secretValue")),
             import ? json_string_value(json_object_get(import, "environment")) : "local");
    return CF_OK;
}

Test(merge, local_wins_then_later_imports)
{
    json_t *answer =
        json_loads("{\"secrets\": [{\"secretKey\": \"A\", \"secretValue\": \"local\"}],"
                   " \"imports\": ["
                   "  {\"environment\": \"first\", \"secrets\": [{\"secretKey\": \"A\", "
                   "\"secretValue\": \"1\"},"
                   "                                            {\"secretKey\": \"B\", "
                   "\"secretValue\": \"1\"},"
                   "                                            {\"secretKey\": \"C\", "
                   "\"secretValue\": \"1\"}]},"
                   "  {\"environment\": \"second\", \"secrets\": [{\"secretKey\": \"B\", "
                   "\"secretValue\": \"2\"}]}"
                   "]}",
                   0, NULL);
    struct seen seen = {""};
    cr_assert_not_null(answer);
    cr_assert_eq(cf_secrets_merge(answer, record, &seen), CF_OK);
    cr_expect_str_eq(seen.log, "A=local@local B=2@second C=1@first ");
    json_decref(answer);
}

Test(merge, fingerprint_changes_with_any_byte)
{
    json_t *a = json_pack("{s:{s:s, s:s}, s:{s:s, s:s}}", "K1", "secretKey", "K1", "secretValue",
                          "v", "K2", "secretKey", "K2", "secretValue", "w");
    json_t *b = json_pack("{s:{s:s, s:s}, s:{s:s, s:s}}", "K2", "secretKey", "K2", "secretValue",
                          "w", "K1", "secretKey", "K1", "secretValue", "v");
    json_t *c = json_pack("{s:{s:s, s:s}, s:{s:s, s:s}}", "K1", "secretKey", "K1", "secretValue",
                          "vK2", "K2", "secretKey", "K2", "secretValue", "");
    unsigned char fa[CF_FINGERPRINT_BYTES], fb[CF_FINGERPRINT_BYTES], fc[CF_FINGERPRINT_BYTES];
    cf_secrets_fingerprint(a, fa);
    cf_secrets_fingerprint(b, fb);
    cf_secrets_fingerprint(c, fc);
    cr_expect_eq(memcmp(fa, fb, sizeof(fa)), 0, "order of insertion does not matter");
    cr_expect_neq(memcmp(fa, fc, sizeof(fa)), 0, "moved bytes change the fingerprint");
    json_decref(a);
    json_decref(b);
    json_decref(c);
}
