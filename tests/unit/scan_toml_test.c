/* Unit tests of the TOML rule files of `coffer scan` (scan/rules.h cf_scan_rules_load_toml,
 * src/scan/rules_toml.cc), mirroring scan_test.c's YAML ones: a good file in Coffer's layout and in
 * gitleaks' (allow lists of regexes, stopwords and paths, rule and global), the choice by
 * extension, a built-in rule replaced, and each malformed case refused naming the file, the line
 * and the problem, the set left as it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "scan/engine.h"
#include "scan/report.h"
#include "scan/rules.h"
#include "util/banned.h"

/* Writes text to a new temporary file ending in suffix; returns its path (static). */
static const char *write_temp(const char *text, const char *suffix)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/scan_toml_test_XXXXXX%s", suffix);
    int fd = mkstemps(path, (int)strlen(suffix));
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

struct hits {
    char rules[16][CF_SCAN_RULE_ID_MAX + 1];
    size_t count;
};

static enum cf_rc collect(const struct cf_scan_hit *hit, void *ctx)
{
    struct hits *h = ctx;
    if (h->count < 16)
        snprintf(h->rules[h->count++], sizeof(h->rules[0]), "%s", hit->rule ? hit->rule->id : "");
    return CF_OK;
}

/* How many findings rules make in text. */
static size_t count_in(const struct cf_scan_rules *rules, const char *text)
{
    struct cf_scan_engine *e = NULL;
    struct cf_scanner *s = NULL;
    struct cf_err err = {0};
    struct hits h = {0};
    cr_assert_eq(cf_scan_engine_new(&e, rules, NULL, 0, NULL, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_scanner_new(&s, e, &err), CF_OK);
    cr_assert_eq(cf_scanner_mem(s, text, strlen(text), collect, &h, &err), CF_OK, "%s", err.msg);
    cf_scanner_free(s);
    cf_scan_engine_free(e);
    return h.count;
}

Test(toml, coffer_layout_with_keywords_entropy_and_allowlist)
{
    struct cf_scan_rules user = {0};
    struct cf_err err = {0};
    const char *path = write_temp("[[rules]]\n"
                                  "id = \"acme-key\"\n"
                                  "description = \"ACME API key\"\n"
                                  "regex = 'acme_([a-z0-9]{16})'\n"
                                  "keywords = [\"Vendor\"]\n"
                                  "entropy = 2.5\n"
                                  "allowlist = ['^0+$', 'example']\n",
                                  ".toml");
    cr_assert_eq(cf_scan_rules_load(&user, path, &err), CF_OK, "%s", err.msg);
    unlink(path);
    cr_assert_eq(user.count, 1);
    cr_assert_str_eq(user.items[0].description, "ACME API key");
    cr_assert_str_eq(user.items[0].keywords[0], "vendor");
    cr_assert_eq(user.items[0].nallow, 2);
    struct {
        const char *text;
        size_t want;
    } cases[] = {
        {"VENDOR: acme_k3j4h5g6f7d8s9a1\n", 1}, /* keyword in any case */
        {"key: acme_k3j4h5g6f7d8s9a1\n", 0},    /* no keyword on the line */
        {"vendor acme_0000000000000000\n", 0},  /* allow-listed */
        {"vendor acme_aaaaaaaaaaaaaaaa\n", 0},  /* entropy too low */
        {"vendor acme_exampleab12cd34e\n", 0},  /* allow list matches a part */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_assert_eq(count_in(&user, cases[i].text), cases[i].want, "case %zu: %s", i,
                     cases[i].text);
    cf_scan_rules_release(&user);
}

/* A gitleaks.toml as gitleaks documents it: title, a global allow list, rules with tags,
 * secretGroup, an integer entropy, [rules.allowlist] and [[rules.allowlists]]. */
Test(toml, gitleaks_layout)
{
    struct cf_scan_rules rules = {0};
    struct cf_err err = {0};
    const char *path = write_temp("title = \"my gitleaks config\"\n"
                                  "\n"
                                  "[allowlist]\n"
                                  "description = \"global\"\n"
                                  "regexes = ['''^GLOBALLYOK''']\n"
                                  "paths = ['''(^|/)vendor/''']\n"
                                  "\n"
                                  "[[rules]]\n"
                                  "id = \"acme-token\"\n"
                                  "description = \"ACME token\"\n"
                                  "regex = '''acme_tok_([a-zA-Z0-9]{20})'''\n"
                                  "secretGroup = 1\n"
                                  "entropy = 3\n"
                                  "keywords = [\"acme_tok_\"]\n"
                                  "tags = [\"acme\", \"token\"]\n"
                                  "[rules.allowlist]\n"
                                  "description = \"fixtures\"\n"
                                  "regexTarget = \"secret\"\n"
                                  "stopwords = [\"Sample\"]\n"
                                  "paths = ['''fixtures/''']\n"
                                  "\n"
                                  "[[rules]]\n"
                                  "id = \"beta-key\"\n"
                                  "regex = '''beta_([0-9a-f]{24})'''\n"
                                  "[[rules.allowlists]]\n"
                                  "regexes = ['''^0{24}$''']\n"
                                  "[[rules.allowlists]]\n"
                                  "condition = \"OR\"\n"
                                  "stopwords = [\"deadbeef\"]\n",
                                  ".toml");
    cr_assert_eq(cf_scan_rules_load_toml(&rules, path, &err), CF_OK, "%s", err.msg);
    unlink(path);
    cr_assert_eq(rules.count, 2);
    const struct cf_scan_rule *acme = &rules.items[cf_scan_rules_find(&rules, "acme-token")];
    const struct cf_scan_rule *beta = &rules.items[cf_scan_rules_find(&rules, "beta-key")];
    cr_assert_str_eq(beta->description, "beta-key"); /* none given: the id */
    cr_assert_eq(acme->min_entropy, 3.0);
    cr_assert_eq(acme->nallow, 2); /* the stopword and the global regex */
    cr_assert_eq(beta->nallow, 3);
    cr_assert_eq(acme->nallow_paths, 1);
    cr_assert_eq(rules.nallow_paths, 1);
    cr_assert_eq(count_in(&rules, "x = acme_tok_Q3x9Lm2Pz7Rt5Wv8Ky4N\n"), 1);
    cr_assert_eq(count_in(&rules, "x = acme_tok_SAMPLEx9Lm2Pz7Rt5Wv8K\n"), 0); /* stopword, case */
    cr_assert_eq(count_in(&rules, "b = beta_9f3a1c7e5b2d8f6a4c0e1b3d\n"), 1);
    cr_assert_eq(count_in(&rules, "b = beta_000000000000000000000000\n"), 0);
    cr_assert_eq(count_in(&rules, "b = beta_9f3a1c7edeadbeef4c0e1b3d\n"), 0);

    /* the path allow lists: the rule's and the global one, applied by the report */
    struct cf_scan_report report;
    struct cf_scan_hit hit = {acme, NULL, NULL, 1, 5, 4, "acme_tok_Q3x9Lm2Pz7Rt5Wv8Ky4N", 29};
    struct cf_scan_hit bhit = {beta, NULL, NULL, 1, 5, 4, "beta_9f3a1c7e5b2d8f6a4c0e1b3d", 29};
    struct cf_scan_hit known = {NULL, "p/dev/K", "raw", 1, 1, 0, "acme_tok_Q3x9Lm2Pz7Rt5Wv8Ky4N",
                                29};
    cr_assert_eq(cf_scan_report_init(&report, &err), CF_OK);
    cr_assert_eq(cf_scan_report_use_rules(&report, &rules, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_scan_report_add(&report, &hit, "./src/app.py", NULL), CF_OK);
    cr_assert_eq(cf_scan_report_add(&report, &hit, "./tests/fixtures/a.py", NULL), CF_OK);
    cr_assert_eq(cf_scan_report_add(&report, &bhit, "tests/fixtures/a.py", NULL), CF_OK);
    cr_assert_eq(cf_scan_report_add(&report, &bhit, "./vendor/lib.py", NULL), CF_OK);
    cr_assert_eq(cf_scan_report_add(&report, &known, "./vendor/lib.py", NULL), CF_OK);
    cr_assert_eq(report.count, 3, "%zu", report.count);
    cr_assert_eq(report.path_allowed, 2);
    cr_assert_str_eq(report.items[0].path, "./src/app.py");
    cr_assert_str_eq(report.items[1].path, "tests/fixtures/a.py"); /* not beta's allow list */
    cr_assert_str_eq(report.items[2].known_label, "p/dev/K"); /* known values always reported */
    cf_scan_report_release(&report);
    cf_scan_rules_release(&rules);
}

Test(toml, same_id_replaces_a_builtin_rule_and_the_global_allowlist_reaches_it)
{
    struct cf_scan_rules rules = {0};
    struct cf_err err = {0};
    cr_assert_eq(cf_scan_rules_add_builtin(&rules, &err), CF_OK);
    size_t before = rules.count;
    long aws = cf_scan_rules_find(&rules, "aws-access-key-id");
    size_t aws_allow = rules.items[aws].nallow;
    const char *path = write_temp("[allowlist]\nstopwords = ['NOTREAL']\n"
                                  "[[rules]]\nid = \"github-token\"\nregex = 'ghp_never'\n",
                                  ".toml");
    cr_assert_eq(cf_scan_rules_load(&rules, path, &err), CF_OK, "%s", err.msg);
    unlink(path);
    cr_assert_eq(rules.count, before);
    cr_assert_str_eq(rules.items[cf_scan_rules_find(&rules, "github-token")].regex, "ghp_never");
    cr_assert_eq(rules.items[aws].nallow, aws_allow + 1);
    cf_scan_rules_release(&rules);
}

Test(toml, the_extension_chooses_the_reader)
{
    struct cf_scan_rules rules = {0};
    struct cf_err err = {0};
    /* TOML text in a .yaml file is read as YAML, and refused as such */
    const char *path = write_temp("[[rules]]\nid = \"a\"\nregex = 'x'\n", ".yaml");
    cr_assert_eq(cf_scan_rules_load(&rules, path, &err), CF_EINVAL);
    unlink(path);
    path = write_temp("rules:\n  - id: a\n    regex: x\n", ".yml");
    cr_assert_eq(cf_scan_rules_load(&rules, path, &err), CF_OK, "%s", err.msg);
    unlink(path);
    /* YAML text in a .toml file is read as TOML */
    path = write_temp("rules:\n  - id: b\n    regex: x\n", ".toml");
    cr_assert_eq(cf_scan_rules_load(&rules, path, &err), CF_EINVAL);
    cr_assert(strstr(err.msg, "line 1"), "%s", err.msg);
    unlink(path);
    cr_assert_eq(rules.count, 1);
    cf_scan_rules_release(&rules);
}

Test(toml, bad_files_are_refused_naming_file_line_and_problem)
{
    struct {
        const char *text;
        unsigned line;
        const char *words;
    } cases[] = {
        {"[[rules]\nid = 'a'\n", 1, ""},                                /* not TOML */
        {"[[rules]]\nid = 'a'\nregex = 'x'\nid = 'b'\n", 4, ""},        /* a key twice */
        {"title = 'x'\n", 1, "no [[rules]]"},                           /* no rules */
        {"rules = 5\n", 1, "'rules' must be a list of tables"},         /* rules of another type */
        {"\n[[rules]]\nregex = 'x'\n", 2, "no 'id'"},                   /* rule without id */
        {"[[rules]]\nid = 'a'\n", 1, "rule 'a' has no 'regex'"},        /* rule without regex */
        {"[[rules]]\nid = 'a b'\nregex = 'x'\n", 1, "letters, digits"}, /* bad id */
        {"[[rules]]\nid = 'a'\nregex = 'x'\ncolour = 'red'\n", 4, "unknown key 'colour'"},
        {"[[rules]]\nid = 'a'\nregex = 'x'\nentropy = 'nine'\n", 4, "'entropy' must be a number"},
        {"[[rules]]\nid = 'a'\nregex = 'x'\nentropy = 9\n", 4, "'entropy' must be a number"},
        {"[[rules]]\nid = 'a'\nregex = 'x'\nkeywords = 'k'\n", 4, "'keywords' must be a list"},
        {"[[rules]]\nid = 'a'\nregex = 'x'\nkeywords = ['']\n", 4, "non-empty strings"},
        {"[[rules]]\nid = 'a'\nregex = 'x'\nallowlist = [1]\n", 4, "'allowlist' must be a list"},
        {"[[rules]]\nid = 'a'\nregex = 'x'\nsecretGroup = 2\n", 4, "'secretGroup' must be 1"},
        {"[[rules]]\nid = 'a'\npath = 'y'\n", 1, "a rule with 'path' and no 'regex'"},
        {"[[rules]]\nid = 'a'\nregex = 'x'\npath = 5\n", 4, "'path'"},
        {"[[rules]]\nid = 'a'\nregex = 'x'\n[rules.allowlist]\ncommits = ['abc']\n", 5,
         "unknown allow-list key 'commits'"},
        {"[[rules]]\nid = 'a'\nregex = 'x'\n[rules.allowlist]\nregexTarget = 'line'\n", 5,
         "'regexTarget'"},
        {"[[rules]]\nid = 'a'\nregex = 'x'\n[rules.allowlist]\ncondition = 'AND'\n", 5,
         "'condition'"},
        {"[[rules]]\nid = 'a'\nregex = 'x'\n[rules.allowlist]\npaths = 'p'\n", 5,
         "'paths' must be a list"},
        {"[extend]\nuseDefault = true\n[[rules]]\nid = 'a'\nregex = 'x'\n", 1,
         "unknown top-level key 'extend'"},
        {"[[rules]]\nid = 'a'\nregex = 'x'\n[[rules]]\nid = 'b'\n", 4, "rule 'b' has no 'regex'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cf_scan_rules rules = {0};
        struct cf_err err = {0};
        char line[32];
        const char *path = write_temp(cases[i].text, ".toml");
        cr_assert_eq(cf_scan_rules_load_toml(&rules, path, &err), CF_EINVAL, "case %zu accepted",
                     i);
        snprintf(line, sizeof(line), "line %u:", cases[i].line);
        cr_assert(strstr(err.msg, cases[i].words), "case %zu: '%s' lacks '%s'", i, err.msg,
                  cases[i].words);
        cr_assert(strstr(err.msg, line), "case %zu: '%s' does not say '%s'", i, err.msg, line);
        cr_assert(strstr(err.msg, path), "case %zu: '%s' does not name the file", i, err.msg);
        /* a file is taken whole or not at all */
        cr_assert_eq(rules.count, 0, "case %zu", i);
        unlink(path);
        cf_scan_rules_release(&rules);
    }
    struct cf_scan_rules rules = {0};
    struct cf_err err = {0};
    cr_assert_eq(cf_scan_rules_load_toml(&rules, "/nonexistent/rules.toml", &err), CF_EIO);
    cr_assert(strstr(err.msg, "/nonexistent/rules.toml"), "%s", err.msg);
}

Test(toml, a_path_expression_that_does_not_compile_names_the_rule)
{
    struct cf_scan_rules rules = {0};
    struct cf_scan_report report;
    struct cf_err err = {0};
    const char *path = write_temp("[[rules]]\nid = 'broken'\nregex = 'x'\n"
                                  "[rules.allowlist]\npaths = ['a(b']\n",
                                  ".toml");
    cr_assert_eq(cf_scan_rules_load_toml(&rules, path, &err), CF_OK, "%s", err.msg);
    unlink(path);
    cr_assert_eq(cf_scan_report_init(&report, &err), CF_OK);
    cr_assert_eq(cf_scan_report_use_rules(&report, &rules, &err), CF_EINVAL);
    cr_assert(strstr(err.msg, "rule 'broken'") && strstr(err.msg, "a(b"), "%s", err.msg);
    cf_scan_report_release(&report);
    cf_scan_rules_release(&rules);
}
