/* The built-in rules of `coffer scan` and the reader of user rule files in YAML (through libyaml;
 * TOML files are read by rules_toml.cc).
 * The shapes below are the documented formats of each provider's credentials; each rule captures
 * the secret itself as group 1 so that it can be redacted, fingerprinted and entropy-checked. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "scan/rules.h"
#include "util/banned.h"

/* Values that look like assignments of a secret but are placeholders, references or file names. */
#define PLACEHOLDERS                                                                               \
    "^(?:\\$\\{[^}]*\\}|\\{\\{[^}]*\\}\\}|\\$\\([^)]*\\)|\\$[A-Za-z_][A-Za-z0-9_]*|%[A-Za-z_]+%|"  \
    "<[^>]*>|\\*+|x+|X+|\\.+|(?i:changeme|change_me|password|passwd|secret|example|redacted|"      \
    "placeholder|your[_-]?\\w*|dummy|null|none|undefined|true|false)|"                             \
    "[A-Za-z0-9_./-]+\\.(?:c|h|js|mjs|json|ts|py|rb|go|java|txt|md|ya?ml|html|css|sh))$"

struct builtin {
    const char *id;
    const char *description;
    const char *regex;
    double min_entropy;
    const char *allow; /* one allow-list expression, or NULL */
    bool generic;
};

/* The names generic-password's and dotenv-secret's prefilters start at: a superset of each rule's
 * own, so that Hyperscan looks these common words up once for both rules. */
#define SECRET_WORDS "(?i:password|passwd|pwd|secret|api[_-]?key|access[_-]?key|token|private_?key)"

/* The Hyperscan expression of a built-in rule, when it is not the rule's own regex: a shorter
 * expression every match of the rule contains (on the same line), which compiles in a fraction of
 * the time (the bounded repeats and case-insensitive alternations of the full expressions cost
 * Hyperscan hundreds of milliseconds, paid at every run of a pre-commit hook). PCRE2 then checks
 * the full expression on that line. Blanks are [^\S\n] where the rule has \s: PCRE2 looks at one
 * line, so a match across lines is never reported, and Hyperscan is 4-5% faster without them. */
static const struct {
    const char *id;
    const char *prefilter;
} prefilters[] = {
    {"entra-client-secret", "[0-9]Q~[A-Za-z0-9_~.-]{8}"},
    {"azure-storage-key", "(?i:accountkey|storage[_-]?(?:account[_-]?)?(?:access[_-]?)?key)[\"\']?"
                          "[^\\S\\n]*[:=][^\\S\\n]*[\"\']?[A-Za-z0-9+/]{16}"},
    {"azure-sas-token", "[?&]sig=(?:[A-Za-z0-9]|%2[BbFf]|[+/]){16}"},
    /* starts at the name before the value: "[:=]" alone is on most lines of code */
    {"azure-devops-pat",
     "(?i:ado|devops|vsts|pat|accesstoken)[A-Za-z0-9_.-]*[\"\']?[^\\S\\n]*[:=][^\\S\\n]*"
     "[\"\']?[a-z2-7]{16}"},
    {"azure-devops-pat-v2", "[A-Za-z0-9]{4}AZDO[A-Za-z0-9]{4}"},
    {"aws-access-key-id", "(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{8}"},
    {"aws-secret-access-key", "(?i:aws)[A-Za-z0-9_.-]*(?i:secret)"},
    {"gcp-api-key", "AIza[0-9A-Za-z_-]{8}"},
    {"github-token", "gh[pousr]_[A-Za-z0-9]{8}"},
    {"github-fine-grained-pat", "github_pat_[A-Za-z0-9]{8}"},
    {"gitlab-token", "glpat-[A-Za-z0-9_-]{8}"},
    {"slack-token", "xox[abposr]-[0-9]{6}"},
    {"slack-webhook", "hooks\\.slack\\.com/services/T"},
    {"stripe-key", "(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{8}"},
    {"jwt", "eyJ[A-Za-z0-9_-]{8}[A-Za-z0-9_-]*\\.eyJ"},
    /* these two start at the rarer end of their rules: "://" and "server" are on many lines of
       code, a password before an '@' and a password after a ';' on few */
    {"connection-string-url", ":[^\\s:@/\"\'<>]{3}[^\\s:@/\"\'<>]*@[A-Za-z0-9.\\[-]"},
    {"connection-string", ";[^\"\'\\n]*(?i:password|pwd)[^\\S\\n]*=[^\\S\\n]*[^;\"\'\\s]{3}"},
    {"generic-password",
     SECRET_WORDS "[A-Za-z0-9_-]*[\"\']?[^\\S\\n]*(?::|=|:=|=>)[^\\S\\n]*[\"\'`][^\"\'`\\s]{8}"},
    /* the value ends the line, as in the rule: an assignment in code does not reach Hyperscan */
    {"dotenv-secret",
     SECRET_WORDS "[A-Za-z0-9_]*[ \\t]*=[ \\t]*[^\\s\"\'#]{8}[^\\s\"\'#]*[ \\t]*$"},
    {"coffer-token", "(?:cfadm_|cfcs_)[A-Za-z0-9_-]{8}"},
    {"coffer-user-token", "coffer_(?:pat|scim)_[0-9a-fA-F]{8}-"},
};

static const struct builtin builtins[] = {
    /* Entra ID (Azure AD) application client secrets: 40 characters, the fourth a digit, then the
       "Q~" marker. */
    {"entra-client-secret", "Entra ID client secret",
     "(?<![A-Za-z0-9_~.-])([A-Za-z0-9_~.-]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34})(?![A-Za-z0-9_~.-])", 0,
     NULL},
    /* Storage account keys: 64 random bytes in base64, assigned to AccountKey= in connection
       strings or to a variable named after the key. */
    {"azure-storage-key", "Azure storage account key",
     "(?i:accountkey|storage[_-]?(?:account[_-]?)?(?:access[_-]?)?key)[\"']?\\s*[:=]\\s*[\"']?"
     "([A-Za-z0-9+/]{86}==)",
     0, NULL},
    /* Shared access signatures: the sig= parameter is a base64 HMAC-SHA256 (44 characters), often
       percent-encoded. */
    {"azure-sas-token", "Azure shared access signature",
     "[?&]sig=((?:[A-Za-z0-9]|%2[BbFf]|[+/]){43}(?:%3[Dd]|=))", 0, NULL},
    /* Azure DevOps personal access tokens: 52 lower-case base32 characters (older format, only
       next to a name that says what it is) or 84 characters with "AZDO" at positions 77-80. */
    {"azure-devops-pat", "Azure DevOps personal access token",
     "(?i:ado|azure[_-]?devops|devops|vsts|pat|system[_-]?accesstoken)[A-Za-z0-9_.-]{0,20}"
     "[\"']?\\s*[:=]\\s*[\"']?([a-z2-7]{52})(?![A-Za-z0-9])",
     0, NULL},
    {"azure-devops-pat-v2", "Azure DevOps personal access token",
     "(?<![A-Za-z0-9])([A-Za-z0-9]{76}AZDO[A-Za-z0-9]{4})(?![A-Za-z0-9])", 0, NULL},
    /* AWS access key ids: a four-letter kind and 16 base32 characters. */
    {"aws-access-key-id", "AWS access key id",
     "(?<![A-Z0-9])((?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})(?![A-Z0-9])", 0, "EXAMPLE$"},
    {"aws-secret-access-key", "AWS secret access key",
     "(?i:aws)[A-Za-z0-9_.-]{0,20}(?i:secret)[A-Za-z0-9_.-]{0,20}[\"']?\\s*[:=]\\s*[\"']?"
     "([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
     3.5, "EXAMPLEKEY$"},
    /* GCP service-account key files carry the key's id beside the PEM private key. */
    {"gcp-service-account-key", "GCP service account key",
     "\"private_key_id\"\\s*:\\s*\"([0-9a-f]{40})\"", 0, NULL},
    {"gcp-api-key", "GCP API key", "(?<![A-Za-z0-9_-])(AIza[0-9A-Za-z_-]{35})(?![A-Za-z0-9_-])", 0,
     NULL},
    {"github-token", "GitHub token",
     "(?<![A-Za-z0-9_])(gh[pousr]_[A-Za-z0-9]{36,251})(?![A-Za-z0-9_])", 0, NULL},
    {"github-fine-grained-pat", "GitHub fine-grained personal access token",
     "(?<![A-Za-z0-9_])(github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})(?![A-Za-z0-9_])", 0, NULL},
    {"gitlab-token", "GitLab personal access token",
     "(?<![A-Za-z0-9_-])(glpat-[A-Za-z0-9_-]{20})(?![A-Za-z0-9_-])", 0, NULL},
    {"slack-token", "Slack token", "(?<![A-Za-z0-9])(xox[abposr]-[0-9]{6,15}-[0-9A-Za-z-]{8,100})",
     0, NULL},
    {"slack-webhook", "Slack incoming webhook URL",
     "(https://hooks\\.slack\\.com/services/T[A-Z0-9]{6,12}/B[A-Z0-9]{6,12}/[A-Za-z0-9]{20,32})", 0,
     NULL},
    {"stripe-key", "Stripe secret or restricted key",
     "(?<![A-Za-z0-9])((?:sk|rk)_(?:live|test)_[0-9A-Za-z]{24,99})(?![A-Za-z0-9])", 0, NULL},
    /* The key itself follows the header; the header alone says a private key is there. */
    {"private-key", "private key",
     "-----BEGIN (?:RSA |DSA |EC |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----", 0, NULL},
    {"putty-private-key", "PuTTY private key", "PuTTY-User-Key-File-[23]: [A-Za-z0-9-]+", 0, NULL},
    /* A header and a payload that are base64url JSON objects ("eyJ" is '{"'), and a signature.
       Coffer's access tokens have this shape too. */
    {"jwt", "JSON Web Token",
     "(?<![A-Za-z0-9_-])(eyJ[A-Za-z0-9_-]{8,}\\.eyJ[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{16,})", 0,
     NULL},
    {"connection-string-url", "password in a connection URL",
     "(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\\s:@/\"'<>]{1,64}:"
     "([^\\s:@/\"'<>]{3,128})@[A-Za-z0-9.\\[-]",
     0, PLACEHOLDERS},
    {"connection-string", "password in a connection string",
     "(?i:server|data source|host|address)\\s*=[^;\"'\\n]{1,200};[^\"'\\n]{0,400}"
     "(?i:password|pwd)\\s*=\\s*([^;\"'\\s]{3,128})",
     0, PLACEHOLDERS},
    /* A quoted value assigned to a name that says it is secret; the entropy filter leaves out
       words and sample values. */
    {"generic-password", "password or secret assigned in code or configuration",
     "(?i:password|passwd|pwd|secret|api[_-]?key|access[_-]?key|auth[_-]?token|token)"
     "[A-Za-z0-9_-]{0,20}[\"']?\\s*(?::|=|:=|=>)\\s*[\"'`]([^\"'`\\s]{8,128})[\"'`]",
     3.0, PLACEHOLDERS, true},
    {"dotenv-secret", "secret in an environment file",
     "^[ \\t]*(?:export[ \\t]+)?[A-Za-z0-9_]*(?i:password|passwd|secret|token|api_?key|"
     "private_?key)[A-Za-z0-9_]*[ \\t]*=[ \\t]*([^\\s\"'#]{8,128})[ \\t]*$",
     3.5, PLACEHOLDERS, true},
    /* Coffer's own credentials (crypto/token.h, auth/admin.h, core/users.h, core/scim.h). */
    {"coffer-token", "Coffer admin token or client secret",
     "(?<![A-Za-z0-9_-])((?:cfadm_|cfcs_)[A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])", 0, NULL},
    {"coffer-user-token", "Coffer personal access token or SCIM token",
     "(?<![A-Za-z0-9_-])(coffer_(?:pat|scim)_[0-9a-fA-F-]{36}_[A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])",
     0, NULL},
};

static void free_list(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

void cf_scan_rule_release(struct cf_scan_rule *rule)
{
    free(rule->id);
    free(rule->description);
    free(rule->regex);
    free(rule->prefilter);
    for (size_t i = 0; i < rule->nkeywords; i++)
        free(rule->keywords[i]);
    free(rule->keywords);
    free_list(rule->allow, rule->nallow);
    free_list(rule->allow_paths, rule->nallow_paths);
    free(rule->path);
    memset(rule, 0, sizeof(*rule));
}

void cf_scan_rules_release(struct cf_scan_rules *rules)
{
    for (size_t i = 0; i < rules->count; i++)
        cf_scan_rule_release(&rules->items[i]);
    free(rules->items);
    free_list(rules->allow_paths, rules->nallow_paths);
    memset(rules, 0, sizeof(*rules));
}

long cf_scan_rules_find(const struct cf_scan_rules *rules, const char *id)
{
    for (size_t i = 0; i < rules->count; i++)
        if (strcmp(rules->items[i].id, id) == 0)
            return (long)i;
    return -1;
}

enum cf_rc cf_scan_rules_add(struct cf_scan_rules *rules, struct cf_scan_rule *rule,
                             struct cf_err *err)
{
    long at = cf_scan_rules_find(rules, rule->id);
    if (at >= 0) {
        cf_scan_rule_release(&rules->items[at]);
        rules->items[at] = *rule;
        return CF_OK;
    }
    if (rules->count >= CF_SCAN_RULES_MAX) {
        cf_scan_rule_release(rule);
        return cf_err_set(err, CF_EINVAL, "more than %d rules", CF_SCAN_RULES_MAX);
    }
    struct cf_scan_rule *grown = realloc(rules->items, (rules->count + 1) * sizeof(*grown));
    if (!grown) {
        cf_scan_rule_release(rule);
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    rules->items = grown;
    rules->items[rules->count++] = *rule;
    return CF_OK;
}

enum cf_rc cf_scan_rules_add_builtin(struct cf_scan_rules *rules, struct cf_err *err)
{
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        const struct builtin *b = &builtins[i];
        struct cf_scan_rule rule = {0};
        rule.id = strdup(b->id);
        rule.description = strdup(b->description);
        rule.regex = strdup(b->regex);
        rule.min_entropy = b->min_entropy;
        rule.generic = b->generic;
        for (size_t j = 0; j < sizeof(prefilters) / sizeof(prefilters[0]); j++)
            if (strcmp(prefilters[j].id, b->id) == 0 &&
                !(rule.prefilter = strdup(prefilters[j].prefilter))) {
                cf_scan_rule_release(&rule);
                return cf_err_set(err, CF_ENOMEM, "out of memory");
            }
        if (b->allow) {
            rule.allow = calloc(1, sizeof(char *));
            if (rule.allow) {
                rule.allow[0] = strdup(b->allow);
                rule.nallow = 1;
            }
        }
        if (!rule.id || !rule.description || !rule.regex ||
            (b->allow && (!rule.allow || !rule.allow[0]))) {
            cf_scan_rule_release(&rule);
            return cf_err_set(err, CF_ENOMEM, "out of memory");
        }
        enum cf_rc rc = cf_scan_rules_add(rules, &rule, err);
        if (rc != CF_OK)
            return rc;
    }
    return CF_OK;
}

double cf_scan_entropy(const char *bytes, size_t len)
{
    size_t counts[256] = {0};
    double entropy = 0;
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        counts[(unsigned char)bytes[i]]++;
    for (size_t i = 0; i < 256; i++) {
        if (counts[i] == 0)
            continue;
        double p = (double)counts[i] / (double)len;
        entropy -= p * log2(p);
    }
    return entropy;
}

/* ---- YAML ------------------------------------------------------------------------------------ */

struct yaml_ctx {
    yaml_document_t *doc;
    const char *path;
    struct cf_err *err;
};

static enum cf_rc yaml_fail(struct yaml_ctx *ctx, const yaml_node_t *node, const char *what)
{
    return cf_err_set(ctx->err, CF_EINVAL, "rules file '%s', line %lu: %s", ctx->path,
                      node ? (unsigned long)node->start_mark.line + 1 : 0UL, what);
}

/* The scalar text of node, or NULL when node is not a scalar. */
static const char *scalar(const yaml_node_t *node)
{
    if (!node || node->type != YAML_SCALAR_NODE)
        return NULL;
    /* A scalar holding a NUL cannot be a rule's text: treat it as not a string. */
    if (strlen((const char *)node->data.scalar.value) != node->data.scalar.length)
        return NULL;
    return (const char *)node->data.scalar.value;
}

/* Reads a sequence of strings into *items / *count (lower-cased when lower). */
static enum cf_rc string_list(struct yaml_ctx *ctx, yaml_node_t *node, const char *name, bool lower,
                              char ***items, size_t *count)
{
    char message[128];
    if (node->type != YAML_SEQUENCE_NODE) {
        snprintf(message, sizeof(message), "'%s' must be a list of strings", name);
        return yaml_fail(ctx, node, message);
    }
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (n > CF_SCAN_RULE_LIST_MAX) {
        snprintf(message, sizeof(message), "'%s' has more than %d entries", name,
                 CF_SCAN_RULE_LIST_MAX);
        return yaml_fail(ctx, node, message);
    }
    *items = calloc(n ? n : 1, sizeof(char *));
    if (!*items)
        return cf_err_set(ctx->err, CF_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = yaml_document_get_node(ctx->doc, node->data.sequence.items.start[i]);
        const char *text = scalar(item);
        if (!text || !*text) {
            snprintf(message, sizeof(message), "'%s' must be a list of non-empty strings", name);
            return yaml_fail(ctx, item, message);
        }
        (*items)[i] = strdup(text);
        if (!(*items)[i])
            return cf_err_set(ctx->err, CF_ENOMEM, "out of memory");
        *count = i + 1;
        if (lower)
            for (char *c = (*items)[i]; *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                    *c = (char)(*c - 'A' + 'a');
    }
    return CF_OK;
}

static bool valid_id(const char *id)
{
    size_t len = strlen(id);
    if (len == 0 || len > CF_SCAN_RULE_ID_MAX)
        return false;
    for (const char *c = id; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.'))
            return false;
    return true;
}

enum cf_rc cf_scan_rule_check(struct cf_scan_rule *rule, const char *file, unsigned long line,
                              struct cf_err *err)
{
    if (!rule->id)
        return cf_err_set(err, CF_EINVAL, "rules file '%s', line %lu: a rule has no 'id'", file,
                          line);
    if (!valid_id(rule->id))
        return cf_err_set(err, CF_EINVAL,
                          "rules file '%s', line %lu: rule id '%.64s' must be 1 to %d letters, "
                          "digits, '-', '_' or '.'",
                          file, line, rule->id, CF_SCAN_RULE_ID_MAX);
    if (!rule->regex)
        return cf_err_set(err, CF_EINVAL, "rules file '%s', line %lu: rule '%s' has no 'regex'",
                          file, line, rule->id);
    if (!rule->description && !(rule->description = strdup(rule->id)))
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    return CF_OK;
}

static enum cf_rc read_rule(struct yaml_ctx *ctx, yaml_node_t *node, struct cf_scan_rule *rule)
{
    char message[160];
    enum cf_rc rc = CF_OK;
    if (node->type != YAML_MAPPING_NODE)
        return yaml_fail(ctx, node, "each rule must be a mapping");
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top && rc == CF_OK; pair++) {
        yaml_node_t *key_node = yaml_document_get_node(ctx->doc, pair->key);
        yaml_node_t *value = yaml_document_get_node(ctx->doc, pair->value);
        const char *key = scalar(key_node);
        const char *text = scalar(value);
        char **slot = NULL;
        if (!key)
            return yaml_fail(ctx, key_node, "rule keys must be strings");
        if (strcmp(key, "id") == 0)
            slot = &rule->id;
        else if (strcmp(key, "description") == 0)
            slot = &rule->description;
        else if (strcmp(key, "regex") == 0)
            slot = &rule->regex;
        else if (strcmp(key, "prefilter") == 0)
            slot = &rule->prefilter;
        else if (strcmp(key, "path") == 0)
            slot = &rule->path;
        else if (strcmp(key, "keywords") == 0)
            rc = string_list(ctx, value, key, true, &rule->keywords, &rule->nkeywords);
        else if (strcmp(key, "allowlist") == 0)
            rc = string_list(ctx, value, key, false, &rule->allow, &rule->nallow);
        else if (strcmp(key, "entropy") == 0) {
            char *end = NULL;
            errno = 0;
            double entropy = text ? strtod(text, &end) : -1;
            if (!text || !*text || errno || *end || !(entropy >= 0 && entropy <= 8))
                return yaml_fail(ctx, value, "'entropy' must be a number from 0 to 8");
            rule->min_entropy = entropy;
        } else {
            snprintf(message, sizeof(message),
                     "unknown key '%.40s' (expected id, description, regex, prefilter, path, "
                     "keywords, entropy, allowlist)",
                     key);
            return yaml_fail(ctx, key_node, message);
        }
        if (slot) {
            if (!text || !*text) {
                snprintf(message, sizeof(message), "'%s' must be a non-empty string", key);
                return yaml_fail(ctx, value, message);
            }
            free(*slot);
            *slot = strdup(text);
            if (!*slot)
                return cf_err_set(ctx->err, CF_ENOMEM, "out of memory");
        }
    }
    if (rc != CF_OK)
        return rc;
    return cf_scan_rule_check(rule, ctx->path, (unsigned long)node->start_mark.line + 1, ctx->err);
}

enum cf_rc cf_scan_rules_load_yaml(struct cf_scan_rules *rules, const char *path,
                                   struct cf_err *err)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    bool parser_ready = false, doc_ready = false;
    struct yaml_ctx ctx = {&doc, path, err};
    enum cf_rc rc = CF_OK;
    FILE *file = fopen(path, "rb");
    if (!file)
        return cf_err_set(err, CF_EIO, "cannot read rules file '%s': %s", path, strerror(errno));
    if (!yaml_parser_initialize(&parser)) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    parser_ready = true;
    yaml_parser_set_input_file(&parser, file);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = cf_err_set(err, CF_EINVAL, "rules file '%s', line %lu: %s", path,
                        (unsigned long)parser.problem_mark.line + 1,
                        parser.problem ? parser.problem : "not valid YAML");
        goto out;
    }
    doc_ready = true;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || root->type != YAML_MAPPING_NODE) {
        rc = yaml_fail(&ctx, root, "the file must be a mapping with a 'rules' list");
        goto out;
    }
    yaml_node_t *list = NULL;
    for (yaml_node_pair_t *pair = root->data.mapping.pairs.start;
         pair < root->data.mapping.pairs.top; pair++) {
        const char *key = scalar(yaml_document_get_node(&doc, pair->key));
        if (key && strcmp(key, "rules") == 0)
            list = yaml_document_get_node(&doc, pair->value);
        else {
            rc = yaml_fail(&ctx, yaml_document_get_node(&doc, pair->key),
                           "unknown top-level key (expected 'rules')");
            goto out;
        }
    }
    if (!list || list->type != YAML_SEQUENCE_NODE) {
        rc = yaml_fail(&ctx, list ? list : root, "'rules' must be a list of rules");
        goto out;
    }
    for (yaml_node_item_t *item = list->data.sequence.items.start;
         item < list->data.sequence.items.top; item++) {
        struct cf_scan_rule rule = {0};
        rc = read_rule(&ctx, yaml_document_get_node(&doc, *item), &rule);
        if (rc != CF_OK) {
            cf_scan_rule_release(&rule);
            goto out;
        }
        rc = cf_scan_rules_add(rules, &rule, err);
        if (rc != CF_OK)
            goto out;
    }
out:
    if (doc_ready)
        yaml_document_delete(&doc);
    if (parser_ready)
        yaml_parser_delete(&parser);
    fclose(file);
    return rc;
}

enum cf_rc cf_scan_rules_load(struct cf_scan_rules *rules, const char *path, struct cf_err *err)
{
    size_t len = strlen(path);
    if (len >= 5 && strcmp(path + len - 5, ".toml") == 0)
        return cf_scan_rules_load_toml(rules, path, err);
    return cf_scan_rules_load_yaml(rules, path, err);
}
