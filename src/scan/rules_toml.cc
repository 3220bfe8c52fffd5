/* The reader of TOML rule files of `coffer scan` (scan/rules.h cf_scan_rules_load_toml), through
 * toml++ (Debian's libtomlplusplus-dev; there is no C TOML library in Debian 12). The project's one
 * C++ file: it fills the same struct cf_scan_rule the YAML reader fills, through the C functions of
 * rules.h, and no C++ exception crosses its extern "C" boundary (a malformed file, like any other
 * failure, is an error naming the file, the line and the problem).
 *
 * Two layouts are read, both under [[rules]]: Coffer's own (the YAML keys: id, description, regex,
 * prefilter, keywords, entropy, allowlist as a list of expressions) and gitleaks' (title,
 * secretGroup, tags, [rules.allowlist] / [[rules.allowlists]] tables, a global [allowlist]), so
 * that a gitleaks.toml can be used as it is. A key neither knows is refused, as in YAML. */
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

/* util/err.h is C: its declarations get C linkage here, and C11's _Noreturn (not a C++ keyword) is
   spelt as C++'s attribute while it is read. */
#define _Noreturn [[noreturn]]
extern "C" {
#include "util/err.h"
}
#undef _Noreturn
#include "scan/rules.h"

namespace
{

/* A failure already written into the caller's struct cf_err. */
struct failed {
    enum cf_rc rc;
};

struct reader {
    const char *path;
    struct cf_err *err;

    [[noreturn]] void fail(const toml::node *at, const std::string &what) const
    {
        unsigned long line = at ? (unsigned long)at->source().begin.line : 0UL;
        throw failed{
            cf_err_set(err, CF_EINVAL, "rules file '%s', line %lu: %s", path, line, what.c_str())};
    }

    [[noreturn]] void fail_line(unsigned long line, const std::string &what) const
    {
        throw failed{
            cf_err_set(err, CF_EINVAL, "rules file '%s', line %lu: %s", path, line, what.c_str())};
    }
};

/* A malloc'd copy (the rule structures are released with free()). */
char *dup(const std::string &text)
{
    char *copy = static_cast<char *>(std::malloc(text.size() + 1));
    if (!copy)
        throw std::bad_alloc();
    std::memcpy(copy, text.c_str(), text.size() + 1);
    return copy;
}

/* Appends text to the malloc'd list *items / *count (at most CF_SCAN_RULE_LIST_MAX entries). */
void append(const reader &r, const toml::node *at, const char *name, char ***items, size_t *count,
            const std::string &text)
{
    if (*count >= CF_SCAN_RULE_LIST_MAX)
        r.fail(at, std::string("'") + name + "' has more than " +
                       std::to_string(CF_SCAN_RULE_LIST_MAX) + " entries");
    char **grown = static_cast<char **>(std::realloc(*items, (*count + 1) * sizeof(char *)));
    if (!grown)
        throw std::bad_alloc();
    *items = grown;
    (*items)[*count] = dup(text);
    (*count)++;
}

/* The non-empty strings of the array node (lower-cased when lower). */
std::vector<std::string> strings(const reader &r, const toml::node &node, const char *name,
                                 bool lower)
{
    const toml::array *array = node.as_array();
    if (!array)
        r.fail(&node, std::string("'") + name + "' must be a list of strings");
    std::vector<std::string> out;
    for (const toml::node &item : *array) {
        const std::string *text = item.is_string() ? &item.as_string()->get() : nullptr;
        if (!text || text->empty() || text->find('\0') != std::string::npos)
            r.fail(&item, std::string("'") + name + "' must be a list of non-empty strings");
        std::string value = *text;
        if (lower)
            for (char &c : value)
                if (c >= 'A' && c <= 'Z')
                    c = static_cast<char>(c - 'A' + 'a');
        out.push_back(std::move(value));
    }
    return out;
}

std::string string_of(const reader &r, const toml::node &node, const std::string &name)
{
    const toml::value<std::string> *value = node.as_string();
    if (!value || value->get().empty() || value->get().find('\0') != std::string::npos)
        r.fail(&node, "'" + name + "' must be a non-empty string");
    return value->get();
}

/* A PCRE2 expression matching text literally, in any case: a stopword as an allow-list entry. */
std::string stopword_regex(const std::string &word)
{
    std::string out = "(?i)";
    for (char c : word) {
        if (std::strchr("\\^$.|?*+()[]{}-/#", c) || c == ' ')
            out += '\\';
        out += c;
    }
    return out;
}

/* What an allow list (gitleaks' table) gives: expressions on the secret, on the path. */
struct allow {
    std::vector<std::string> secrets;
    std::vector<std::string> paths;
};

void read_allow_table(const reader &r, const toml::table &table, allow &out)
{
    for (const auto &[key, value] : table) {
        std::string_view k = key.str();
        if (k == "description")
            (void)string_of(r, value, "description");
        else if (k == "regexes")
            for (std::string &e : strings(r, value, "regexes", false))
                out.secrets.push_back(std::move(e));
        else if (k == "stopwords")
            for (const std::string &w : strings(r, value, "stopwords", false))
                out.secrets.push_back(stopword_regex(w));
        else if (k == "paths")
            for (std::string &e : strings(r, value, "paths", false))
                out.paths.push_back(std::move(e));
        else if (k == "regexTarget") {
            if (string_of(r, value, "regexTarget") != "secret")
                r.fail(&value, "'regexTarget' other than \"secret\" is not supported (the allow "
                               "list's expressions are matched against the secret)");
        } else if (k == "condition") {
            if (string_of(r, value, "condition") != "OR")
                r.fail(&value, "'condition' other than \"OR\" is not supported");
        } else
            r.fail(&value, "unknown allow-list key '" + std::string(k).substr(0, 40) +
                               "' (expected description, regexes, stopwords, paths, regexTarget)");
    }
}

/* [allowlist] (a table), [[allowlists]] (an array of tables), or in Coffer's layout "allowlist" as
 * a list of expressions. */
void read_allow(const reader &r, const toml::node &node, const char *name, allow &out)
{
    if (const toml::table *table = node.as_table()) {
        read_allow_table(r, *table, out);
        return;
    }
    const toml::array *array = node.as_array();
    if (!array)
        r.fail(&node, std::string("'") + name + "' must be a table or a list");
    if (std::strcmp(name, "allowlist") == 0 && (array->empty() || !array->is_array_of_tables())) {
        for (std::string &e : strings(r, node, name, false))
            out.secrets.push_back(std::move(e));
        return;
    }
    for (const toml::node &item : *array) {
        const toml::table *table = item.as_table();
        if (!table)
            r.fail(&item, std::string("'") + name + "' must be a list of tables");
        read_allow_table(r, *table, out);
    }
}

/* Reads one [[rules]] table into rule (zeroed; filled as it goes so that the caller releases it
 * on failure). */
void read_rule(const reader &r, const toml::table &table, struct cf_scan_rule *rule)
{
    allow extra;
    for (const auto &[key, value] : table) {
        std::string_view k = key.str();
        char **slot = nullptr;
        if (k == "id")
            slot = &rule->id;
        else if (k == "description")
            slot = &rule->description;
        else if (k == "regex")
            slot = &rule->regex;
        else if (k == "prefilter")
            slot = &rule->prefilter;
        else if (k == "path")
            slot = &rule->path;
        else if (k == "keywords")
            for (const std::string &w : strings(r, value, "keywords", true))
                append(r, &value, "keywords", &rule->keywords, &rule->nkeywords, w);
        else if (k == "entropy") {
            std::optional<double> entropy = value.value<double>();
            if (!value.is_number() || !entropy || !(*entropy >= 0 && *entropy <= 8))
                r.fail(&value, "'entropy' must be a number from 0 to 8");
            rule->min_entropy = *entropy;
        } else if (k == "secretGroup") {
            std::optional<int64_t> group = value.value<int64_t>();
            if (!value.is_integer() || !group || *group != 1)
                r.fail(&value, "'secretGroup' must be 1 (the first capture group is the secret)");
        } else if (k == "tags")
            (void)strings(r, value, "tags", false);
        else if (k == "allowlist" || k == "allowlists")
            read_allow(r, value, k == "allowlist" ? "allowlist" : "allowlists", extra);
        else
            r.fail(&value, "unknown key '" + std::string(k).substr(0, 40) +
                               "' (expected id, description, regex, path, prefilter, keywords, "
                               "entropy, allowlist, allowlists, secretGroup, tags)");
        if (slot) {
            std::string text = string_of(r, value, std::string(k));
            std::free(*slot);
            *slot = nullptr;
            *slot = dup(text);
        }
    }
    if (rule->path && !rule->regex)
        r.fail(&table, "a rule with 'path' and no 'regex' (one that reports files by their name "
                       "alone) is not supported: give it a regex for their contents");
    for (const std::string &e : extra.secrets)
        append(r, &table, "allowlist", &rule->allow, &rule->nallow, e);
    for (const std::string &e : extra.paths)
        append(r, &table, "paths", &rule->allow_paths, &rule->nallow_paths, e);
}

/* Reads the whole file into text; CF_EIO naming it. */
void read_file(const reader &r, std::string &text)
{
    FILE *file = std::fopen(r.path, "rb");
    if (!file)
        throw failed{cf_err_set(r.err, CF_EIO, "cannot read rules file '%s': %s", r.path,
                                std::strerror(errno))};
    char buffer[65536];
    size_t n;
    bool too_big = false;
    while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0 && !too_big) {
        text.append(buffer, n);
        too_big = text.size() > 16 * 1024 * 1024;
    }
    bool failed_read = std::ferror(file);
    std::fclose(file);
    if (failed_read)
        throw failed{cf_err_set(r.err, CF_EIO, "cannot read rules file '%s'", r.path)};
    if (too_big)
        throw failed{cf_err_set(r.err, CF_EINVAL, "rules file '%s' is over 16 MiB", r.path)};
}

void load(const reader &r, struct cf_scan_rules *rules)
{
    std::string text;
    read_file(r, text);
    toml::table root;
    try {
        root = toml::parse(text, std::string_view(r.path));
    } catch (const toml::parse_error &e) {
        std::string what(e.description());
        r.fail_line((unsigned long)e.source().begin.line, what.substr(0, 160));
    }
    allow global;
    const toml::array *list = nullptr;
    const toml::node *list_node = nullptr;
    for (const auto &[key, value] : root) {
        std::string_view k = key.str();
        if (k == "rules") {
            list_node = &value;
            list = value.as_array();
            if (!list || (!list->empty() && !list->is_array_of_tables()))
                r.fail(&value, "'rules' must be a list of tables ([[rules]])");
        } else if (k == "title")
            (void)string_of(r, value, "title");
        else if (k == "allowlist" || k == "allowlists")
            read_allow(r, value, k == "allowlist" ? "global allowlist" : "allowlists", global);
        else
            r.fail(&value, "unknown top-level key '" + std::string(k).substr(0, 40) +
                               "' (expected rules, title, allowlist, allowlists)");
    }
    if (!list)
        r.fail_line(1, "the file has no [[rules]]");
    (void)list_node;
    /* every rule of the file is read before any is added: a file is taken whole or not at all */
    std::vector<struct cf_scan_rule> read;
    try {
        for (const toml::node &item : *list) {
            struct cf_scan_rule rule = {};
            read.push_back(rule);
            read_rule(r, *item.as_table(), &read.back());
            enum cf_rc rc = cf_scan_rule_check(&read.back(), r.path,
                                               (unsigned long)item.source().begin.line, r.err);
            if (rc != CF_OK)
                throw failed{rc};
        }
    } catch (...) {
        for (struct cf_scan_rule &rule : read)
            cf_scan_rule_release(&rule);
        throw;
    }
    for (size_t i = 0; i < read.size(); i++) {
        enum cf_rc rc = cf_scan_rules_add(rules, &read[i], r.err);
        if (rc != CF_OK) {
            for (size_t j = i + 1; j < read.size(); j++)
                cf_scan_rule_release(&read[j]);
            throw failed{rc};
        }
    }
    /* the global allow list: its expressions on secrets join every rule's (the built-in ones
       too), its paths the set's */
    for (size_t i = 0; i < rules->count; i++)
        for (const std::string &e : global.secrets)
            append(r, &root, "allowlist", &rules->items[i].allow, &rules->items[i].nallow, e);
    for (const std::string &e : global.paths) {
        if (rules->nallow_paths >= CF_SCAN_RULE_LIST_MAX)
            r.fail(&root, "the global 'paths' have more than " +
                              std::to_string(CF_SCAN_RULE_LIST_MAX) + " entries");
        append(r, &root, "paths", &rules->allow_paths, &rules->nallow_paths, e);
    }
}

} // namespace

extern "C" enum cf_rc cf_scan_rules_load_toml(struct cf_scan_rules *rules, const char *path,
                                              struct cf_err *err)
{
    try {
        load(reader{path, err}, rules);
        return CF_OK;
    } catch (const failed &f) {
        return f.rc;
    } catch (const std::bad_alloc &) {
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    } catch (const std::exception &e) {
        return cf_err_set(err, CF_EINVAL, "rules file '%s': %.160s", path, e.what());
    } catch (...) {
        return cf_err_set(err, CF_EINTERNAL, "rules file '%s': unexpected error", path);
    }
}
