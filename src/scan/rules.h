/* The rules of `coffer scan`: the built-in set (cloud providers' credentials, tokens of common
 * services, private keys, JWTs, connection strings, generic passwords and Coffer's own token
 * formats) and user rules read from a YAML or a TOML file (gitleaks' layout too). A rule is a PCRE2
 * regular expression whose first capture group, when it has one, is the secret; optional keywords
 * (one must appear on the line), a minimum Shannon entropy of the secret, and an allow list of
 * regular expressions a secret may match to be ignored, and of regular expressions on the path of a
 * file whose findings of the rule are ignored. The engine (scan/engine.h) compiles them. Nothing
 * here is thread-specific: a filled struct cf_scan_rules is immutable and may be shared. */
#ifndef CF_SCAN_RULES_H
#define CF_SCAN_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The most rules a set holds, and the most keywords and allow-list entries of one rule. */
#define CF_SCAN_RULES_MAX 1024
#define CF_SCAN_RULE_LIST_MAX 64
/* The longest rule id (bytes, without the NUL). */
#define CF_SCAN_RULE_ID_MAX 64

struct cf_scan_rule {
    char *id;          /* "github-token": letters, digits, '-', '_' and '.' */
    char *description; /* one line for people */
    char *regex;       /* PCRE2 syntax; capture group 1, when present, is the secret */
    /* NULL, or the Hyperscan expression that finds the lines regex may match (every match of
       regex contains a match of it): cheaper to compile than regex itself */
    char *prefilter;
    char **keywords; /* lower-case; a match counts only on a line holding one (none: always) */
    size_t nkeywords;
    double min_entropy; /* bits per byte the secret must reach; 0: no filter */
    char **allow;       /* PCRE2 expressions: a secret matching one is not a finding */
    size_t nallow;
    char **allow_paths; /* PCRE2 expressions: no finding in a file whose path matches one */
    size_t nallow_paths;
    char *path; /* NULL, or a PCRE2 expression: the rule reports only in files whose path matches */
    /* a rule that recognises a secret by the name it is assigned to, not by its shape: its
       finding is dropped where a shape rule found the same secret (reports say it once) */
    bool generic;
};

struct cf_scan_rules {
    struct cf_scan_rule *items;
    size_t count;
    /* PCRE2 expressions on paths: no rule's finding in a file whose path matches one (a TOML
       file's global [allowlist] paths; known values are still reported there) */
    char **allow_paths;
    size_t nallow_paths;
};

/* Appends the built-in rules to rules (zeroed or filled before). CF_ENOMEM. */
enum cf_rc cf_scan_rules_add_builtin(struct cf_scan_rules *rules, struct cf_err *err);

/* Appends the rules of the YAML file at path: a mapping with a "rules" sequence whose items are
 * mappings with "id" and "regex" (required), "description", "prefilter" (a cheaper expression for
 * Hyperscan, see struct cf_scan_rule), "keywords" (a sequence of strings), "path" (a regular
 * expression on the file's path: the rule reports only where it matches),
 * "entropy" (a number of bits per byte, 0 to 8) and "allowlist" (a sequence of regular
 * expressions). An id already present replaces that rule (so a user file can retune a built-in
 * one). CF_EINVAL naming the file, the line and the problem; CF_EIO when it cannot be read;
 * CF_ENOMEM. The regular expressions are checked when the engine compiles them. */
enum cf_rc cf_scan_rules_load_yaml(struct cf_scan_rules *rules, const char *path,
                                   struct cf_err *err);

/* Appends the rules of the TOML file at path (scan/rules_toml.cc, through toml++): Coffer's keys as
 * in YAML under [[rules]], and gitleaks' configuration layout: title; [[rules]] with id,
 * description, regex, path (with a regex only), secretGroup (1 only), entropy, keywords, tags
 * (ignored), [rules.allowlist] or
 * [[rules.allowlists]] with description, regexes, stopwords (a secret holding one, in any case, is
 * not a finding), paths (regular expressions on the file's path) and regexTarget "secret"; a global
 * [allowlist] (or [[allowlists]]) whose regexes and stopwords join every rule's allow list and
 * whose paths join rules->allow_paths. Other keys are refused, as in YAML. Errors as
 * cf_scan_rules_load_yaml (file, line, problem); no C++ exception leaves it. */
enum cf_rc cf_scan_rules_load_toml(struct cf_scan_rules *rules, const char *path,
                                   struct cf_err *err);

/* cf_scan_rules_load_toml for a path ending in ".toml", else cf_scan_rules_load_yaml. */
enum cf_rc cf_scan_rules_load(struct cf_scan_rules *rules, const char *path, struct cf_err *err);

/* For the readers of rule files: adds rule (taken: on failure it is released) to rules, replacing
 * one with the same id. CF_EINVAL past CF_SCAN_RULES_MAX; CF_ENOMEM. */
enum cf_rc cf_scan_rules_add(struct cf_scan_rules *rules, struct cf_scan_rule *rule,
                             struct cf_err *err);

/* For the readers of rule files: checks that rule, read from file at line (1-based), has a valid
 * id and a regex, and gives it its id as description when it has none. CF_EINVAL naming the file,
 * the line and the problem; CF_ENOMEM. */
enum cf_rc cf_scan_rule_check(struct cf_scan_rule *rule, const char *file, unsigned long line,
                              struct cf_err *err);

/* Frees a rule's strings and zeroes it. */
void cf_scan_rule_release(struct cf_scan_rule *rule);

/* The index of the rule named id, or -1. */
long cf_scan_rules_find(const struct cf_scan_rules *rules, const char *id);

/* Frees every rule; leaves rules zeroed. Safe on a zeroed struct. */
void cf_scan_rules_release(struct cf_scan_rules *rules);

/* Shannon entropy of bytes[0..len-1] in bits per byte (0 for len 0). */
double cf_scan_entropy(const char *bytes, size_t len);

#ifdef __cplusplus
}
#endif

#endif
