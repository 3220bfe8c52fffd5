/* Reading the agent's YAML configuration (see agent_config.h): libyaml's document loader builds
 * the node tree, and each mapping is checked against the keys it may hold before its values are
 * taken, so a misspelt key is an error naming its position rather than a setting silently lost. */
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "cli/agent_config.h"
#include "util/file.h"
#include "util/time.h"
#include "util/banned.h"

#define CONFIG_MAX (1024 * 1024)
#define TEMPLATE_MAX (1024 * 1024)

void cf_agent_config_release(struct cf_agent_config *config)
{
    free(config->address);
    free(config->auth_type);
    free(config->client_id_path);
    free(config->client_secret_path);
    free(config->identity_id_path);
    free(config->token_path);
    for (size_t i = 0; i < config->nsinks; i++)
        free(config->sinks[i]);
    free(config->sinks);
    for (size_t i = 0; i < config->ntemplates; i++) {
        struct cf_agent_template *t = &config->templates[i];
        free(t->name);
        cf_template_free(t->tmpl);
        free(t->destination);
        free(t->command);
        free(t->pid_file);
        json_decref(t->etags);
    }
    free(config->templates);
    memset(config, 0, sizeof(*config));
}

struct yaml_ctx {
    yaml_document_t *doc;
    const char *file;
    struct cf_err *err;
};

static enum cf_rc yaml_fail(struct yaml_ctx *y, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum cf_rc yaml_fail(struct yaml_ctx *y, const yaml_node_t *node, const char *fmt, ...)
{
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return cf_err_set(y->err, CF_EINVAL, "%s:%zu:%zu: %s", y->file,
                      node ? (size_t)node->start_mark.line + 1 : 0,
                      node ? (size_t)node->start_mark.column + 1 : 0, what);
}

/* Checks that every key of the mapping node is one of known (NULL-terminated) or ignored (listed
 * with a warning: Infisical's keys that Coffer does not act on). */
static enum cf_rc check_keys(struct yaml_ctx *y, yaml_node_t *node, const char *where,
                             const char *const *known, const char *const *ignored)
{
    if (!node || node->type != YAML_MAPPING_NODE)
        return yaml_fail(y, node, "%s must be a mapping", where);
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = yaml_document_get_node(y->doc, pair->key);
        if (!key || key->type != YAML_SCALAR_NODE)
            return yaml_fail(y, key, "%s: keys must be plain words", where);
        const char *name = (const char *)key->data.scalar.value;
        bool found = false;
        for (size_t i = 0; known[i] && !found; i++)
            found = strcmp(name, known[i]) == 0;
        for (size_t i = 0; ignored && ignored[i] && !found; i++) {
            if (strcmp(name, ignored[i]) == 0) {
                found = true;
                fprintf(stderr,
                        "coffer agent: %s:%zu:%zu: '%s' is not supported by Coffer's "
                        "agent and is ignored\n",
                        y->file, (size_t)key->start_mark.line + 1,
                        (size_t)key->start_mark.column + 1, name);
            }
        }
        if (!found)
            return yaml_fail(y, key, "unknown key '%.64s' in %s", name, where);
    }
    return CF_OK;
}

static yaml_node_t *map_get(struct yaml_ctx *y, yaml_node_t *node, const char *name)
{
    if (!node || node->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = yaml_document_get_node(y->doc, pair->key);
        if (key && key->type == YAML_SCALAR_NODE &&
            strcmp((const char *)key->data.scalar.value, name) == 0)
            return yaml_document_get_node(y->doc, pair->value);
    }
    return NULL;
}

/* The scalar at key name of node into *out (a new string; NULL when absent and !required). */
static enum cf_rc get_string(struct yaml_ctx *y, yaml_node_t *node, const char *name, bool required,
                             char **out)
{
    yaml_node_t *value = map_get(y, node, name);
    *out = NULL;
    if (!value) {
        if (required)
            return yaml_fail(y, node, "missing '%s'", name);
        return CF_OK;
    }
    if (value->type != YAML_SCALAR_NODE)
        return yaml_fail(y, value, "'%s' must be a single value", name);
    if (required && value->data.scalar.length == 0)
        return yaml_fail(y, value, "'%s' must not be empty", name);
    if (strlen((const char *)value->data.scalar.value) != value->data.scalar.length)
        return yaml_fail(y, value, "'%s' holds a NUL byte", name);
    *out = strdup((const char *)value->data.scalar.value);
    return *out ? CF_OK : cf_err_set(y->err, CF_ENOMEM, "out of memory");
}

static enum cf_rc get_bool(struct yaml_ctx *y, yaml_node_t *node, const char *name, bool *out)
{
    char *text = NULL;
    enum cf_rc rc = get_string(y, node, name, false, &text);
    if (rc != CF_OK || !text)
        return rc;
    if (strcmp(text, "true") == 0)
        *out = true;
    else if (strcmp(text, "false") == 0)
        *out = false;
    else
        rc = yaml_fail(y, map_get(y, node, name), "'%s' must be true or false", name);
    free(text);
    return rc;
}

/* A duration ("60s", "5m", or seconds) at key name into *seconds (unchanged when absent). */
static enum cf_rc get_duration(struct yaml_ctx *y, yaml_node_t *node, const char *name,
                               int64_t *seconds)
{
    char *text = NULL;
    struct cf_err parse_err;
    enum cf_rc rc = get_string(y, node, name, false, &text);
    if (rc != CF_OK || !text)
        return rc;
    cf_err_clear(&parse_err);
    if (cf_duration_parse(text, seconds, &parse_err) != CF_OK)
        rc = yaml_fail(y, map_get(y, node, name), "'%s': %s", name, parse_err.msg);
    free(text);
    return rc;
}

static const struct {
    const char *name;
    int number;
} signals[] = {{"SIGHUP", SIGHUP},   {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2},
               {"SIGTERM", SIGTERM}, {"SIGINT", SIGINT},   {"SIGQUIT", SIGQUIT}};

static enum cf_rc load_template(struct yaml_ctx *y, yaml_node_t *node, size_t index,
                                const char *config_dir, struct cf_agent_template *t)
{
    static const char *const keys[] = {"source-path", "template-content", "destination-path",
                                       "config", NULL};
    static const char *const config_keys[] = {
        "polling-interval", "execute", "permissions", "owner", "group", "pid-file", "signal", NULL};
    static const char *const execute_keys[] = {"command", "timeout", NULL};
    char *source = NULL, *content = NULL, *text = NULL, *value = NULL;
    int64_t interval_s = CF_AGENT_DEFAULT_POLLING_S;
    size_t len = 0;
    enum cf_rc rc;
    char where[48];

    snprintf(where, sizeof(where), "templates[%zu]", index);
    t->timeout_s = CF_AGENT_DEFAULT_EXEC_TIMEOUT_S;
    t->mode = 0600;
    t->signal = SIGHUP;
    rc = check_keys(y, node, where, keys, NULL);
    if (rc == CF_OK)
        rc = get_string(y, node, "source-path", false, &source);
    if (rc == CF_OK)
        rc = get_string(y, node, "template-content", false, &content);
    if (rc == CF_OK)
        rc = get_string(y, node, "destination-path", true, &t->destination);
    if (rc != CF_OK)
        goto out;
    if (!source == !content) {
        rc = yaml_fail(y, node, "%s needs one of source-path and template-content", where);
        goto out;
    }
    yaml_node_t *config = map_get(y, node, "config");
    if (config) {
        rc = check_keys(y, config, "the template's config", config_keys, NULL);
        if (rc == CF_OK)
            rc = get_duration(y, config, "polling-interval", &interval_s);
        yaml_node_t *execute = map_get(y, config, "execute");
        if (rc == CF_OK && execute) {
            rc = check_keys(y, execute, "execute", execute_keys, NULL);
            if (rc == CF_OK)
                rc = get_string(y, execute, "command", false, &t->command);
            if (rc == CF_OK)
                rc = get_duration(y, execute, "timeout", &t->timeout_s);
        }
        if (rc == CF_OK)
            rc = get_string(y, config, "pid-file", false, &t->pid_file);
        if (rc == CF_OK)
            rc = get_string(y, config, "permissions", false, &value);
        if (rc == CF_OK && value) {
            char *end = NULL;
            unsigned long mode = strtoul(value, &end, 8);
            if (!*value || *end || mode > 0777)
                rc = yaml_fail(y, map_get(y, config, "permissions"),
                               "'permissions' must be an octal mode such as \"0640\"");
            t->mode = (mode_t)mode;
        }
        free(value);
        value = NULL;
        if (rc == CF_OK)
            rc = get_string(y, config, "owner", false, &value);
        if (rc == CF_OK && value) {
            struct passwd *pw = getpwnam(value);
            if (!pw)
                rc = yaml_fail(y, map_get(y, config, "owner"), "no user '%.64s'", value);
            else {
                t->uid = pw->pw_uid;
                t->set_owner = true;
            }
        }
        free(value);
        value = NULL;
        if (rc == CF_OK)
            rc = get_string(y, config, "group", false, &value);
        if (rc == CF_OK && value) {
            struct group *gr = getgrnam(value);
            if (!gr)
                rc = yaml_fail(y, map_get(y, config, "group"), "no group '%.64s'", value);
            else {
                t->gid = gr->gr_gid;
                t->set_group = true;
            }
        }
        free(value);
        value = NULL;
        if (rc == CF_OK)
            rc = get_string(y, config, "signal", false, &value);
        if (rc == CF_OK && value) {
            bool known = false;
            for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
                if (strcmp(value, signals[i].name) == 0 ||
                    strcmp(value, signals[i].name + 3) == 0) {
                    t->signal = signals[i].number;
                    known = true;
                }
            }
            if (!known)
                rc = yaml_fail(y, map_get(y, config, "signal"),
                               "'signal' must be one of HUP, USR1, USR2, TERM, INT, QUIT");
            else if (!t->pid_file)
                rc = yaml_fail(y, map_get(y, config, "signal"), "'signal' needs 'pid-file'");
        }
        if (rc != CF_OK)
            goto out;
    }
    if (interval_s < 1) {
        rc = yaml_fail(y, node, "polling-interval must be at least 1s");
        goto out;
    }
    t->interval_us = interval_s * 1000000;
    if (source) {
        struct cf_err read_err;
        cf_err_clear(&read_err);
        char *path = source;
        char joined[PATH_MAX];
        if (source[0] != '/' && config_dir) {
            int n = snprintf(joined, sizeof(joined), "%s/%s", config_dir, source);
            if (n < 0 || (size_t)n >= sizeof(joined)) {
                rc = yaml_fail(y, map_get(y, node, "source-path"), "the path is too long");
                goto out;
            }
            path = joined;
        }
        if (cf_file_read(path, TEMPLATE_MAX, &text, &len, &read_err) != CF_OK) {
            rc = yaml_fail(y, map_get(y, node, "source-path"), "cannot read the template: %s",
                           read_err.msg);
            goto out;
        }
        t->name = strdup(source);
    } else {
        t->name = strdup(where);
    }
    t->etags = json_object();
    if (!t->name || !t->etags) {
        rc = cf_err_set(y->err, CF_ENOMEM, "out of memory");
        goto out;
    }
    rc = cf_template_parse(t->name, source ? text : content, source ? len : strlen(content),
                           &t->tmpl, y->err);
out:
    free(value);
    free(text);
    free(source);
    free(content);
    return rc;
}

enum cf_rc cf_agent_config_load(const char *file, struct cf_agent_config *config,
                                struct cf_err *err)
{
    static const char *const top_keys[] = {"infisical", "auth", "sinks", "templates", NULL};
    static const char *const top_ignored[] = {"version", "cache", "certificates", NULL};
    static const char *const infisical_keys[] = {"address", "exit-after-auth",
                                                 "revoke-credentials-on-shutdown", NULL};
    static const char *const infisical_ignored[] = {"retry-strategy", NULL};
    static const char *const auth_keys[] = {"type", "config", NULL};
    static const char *const ua_keys[] = {"client-id", "client-secret",
                                          "remove_client_secret_on_read",
                                          "remove-client-secret-on-read", NULL};
    static const char *const k8s_keys[] = {"identity-id", "service-account-token", NULL};
    static const char *const jwt_keys[] = {"identity-id", "path", NULL};
    static const char *const sink_keys[] = {"type", "config", NULL};
    static const char *const sink_config_keys[] = {"path", NULL};
    yaml_parser_t parser;
    yaml_document_t doc;
    bool parser_ready = false, doc_ready = false;
    char *text = NULL, *dir = NULL;
    size_t len = 0;
    struct yaml_ctx y = {&doc, file, err};
    enum cf_rc rc;

    rc = cf_file_read(file, CONFIG_MAX, &text, &len, err);
    if (rc != CF_OK)
        goto out;
    if (!yaml_parser_initialize(&parser)) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    parser_ready = true;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = cf_err_set(
            err, CF_EINVAL, "%s:%zu:%zu: %s", file, (size_t)parser.problem_mark.line + 1,
            (size_t)parser.problem_mark.column + 1, parser.problem ? parser.problem : "not YAML");
        goto out;
    }
    doc_ready = true;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        rc = cf_err_set(err, CF_EINVAL, "%s: the configuration is empty", file);
        goto out;
    }
    rc = check_keys(&y, root, "the configuration", top_keys, top_ignored);
    if (rc != CF_OK)
        goto out;
    yaml_node_t *infisical = map_get(&y, root, "infisical");
    if (infisical) {
        rc = check_keys(&y, infisical, "infisical", infisical_keys, infisical_ignored);
        if (rc == CF_OK)
            rc = get_string(&y, infisical, "address", false, &config->address);
        if (rc == CF_OK)
            rc = get_bool(&y, infisical, "exit-after-auth", &config->exit_after_auth);
        if (rc == CF_OK)
            rc = get_bool(&y, infisical, "revoke-credentials-on-shutdown",
                          &config->revoke_on_shutdown);
        if (rc != CF_OK)
            goto out;
    }
    yaml_node_t *auth = map_get(&y, root, "auth");
    if (!auth) {
        rc = yaml_fail(&y, root, "missing 'auth'");
        goto out;
    }
    rc = check_keys(&y, auth, "auth", auth_keys, NULL);
    if (rc == CF_OK)
        rc = get_string(&y, auth, "type", true, &config->auth_type);
    if (rc != CF_OK)
        goto out;
    yaml_node_t *auth_config = map_get(&y, auth, "config");
    if (!auth_config) {
        rc = yaml_fail(&y, auth, "missing 'config' in auth");
        goto out;
    }
    if (strcmp(config->auth_type, "universal-auth") == 0) {
        rc = check_keys(&y, auth_config, "auth.config", ua_keys, NULL);
        if (rc == CF_OK)
            rc = get_string(&y, auth_config, "client-id", true, &config->client_id_path);
        if (rc == CF_OK)
            rc = get_string(&y, auth_config, "client-secret", true, &config->client_secret_path);
        if (rc == CF_OK)
            rc = get_bool(&y, auth_config, "remove_client_secret_on_read",
                          &config->remove_secret_on_read);
        if (rc == CF_OK)
            rc = get_bool(&y, auth_config, "remove-client-secret-on-read",
                          &config->remove_secret_on_read);
    } else if (strcmp(config->auth_type, "kubernetes") == 0) {
        rc = check_keys(&y, auth_config, "auth.config", k8s_keys, NULL);
        if (rc == CF_OK)
            rc = get_string(&y, auth_config, "identity-id", true, &config->identity_id_path);
        if (rc == CF_OK)
            rc = get_string(&y, auth_config, "service-account-token", false, &config->token_path);
    } else if (strcmp(config->auth_type, "jwt") == 0 ||
               strcmp(config->auth_type, "jwt-auth") == 0) {
        rc = check_keys(&y, auth_config, "auth.config", jwt_keys, NULL);
        if (rc == CF_OK)
            rc = get_string(&y, auth_config, "identity-id", true, &config->identity_id_path);
        if (rc == CF_OK)
            rc = get_string(&y, auth_config, "path", true, &config->token_path);
    } else {
        rc = yaml_fail(&y, map_get(&y, auth, "type"),
                       "auth type '%.64s' is not supported (universal-auth, kubernetes, jwt)",
                       config->auth_type);
    }
    if (rc != CF_OK)
        goto out;
    yaml_node_t *sinks = map_get(&y, root, "sinks");
    if (sinks) {
        if (sinks->type != YAML_SEQUENCE_NODE) {
            rc = yaml_fail(&y, sinks, "'sinks' must be a list");
            goto out;
        }
        size_t n = (size_t)(sinks->data.sequence.items.top - sinks->data.sequence.items.start);
        config->sinks = calloc(n ? n : 1, sizeof(*config->sinks));
        if (!config->sinks) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            yaml_node_t *sink = yaml_document_get_node(&doc, sinks->data.sequence.items.start[i]);
            char *type = NULL;
            rc = check_keys(&y, sink, "a sink", sink_keys, NULL);
            if (rc == CF_OK)
                rc = get_string(&y, sink, "type", true, &type);
            if (rc == CF_OK && strcmp(type, "file") != 0)
                rc = yaml_fail(&y, map_get(&y, sink, "type"),
                               "sink type '%.64s' is not supported (file)", type);
            free(type);
            yaml_node_t *sink_config = rc == CF_OK ? map_get(&y, sink, "config") : NULL;
            if (rc == CF_OK && !sink_config)
                rc = yaml_fail(&y, sink, "missing 'config' in the sink");
            if (rc == CF_OK)
                rc = check_keys(&y, sink_config, "the sink's config", sink_config_keys, NULL);
            if (rc == CF_OK)
                rc = get_string(&y, sink_config, "path", true, &config->sinks[i]);
            if (rc != CF_OK)
                goto out;
            config->nsinks++;
        }
    }
    yaml_node_t *templates = map_get(&y, root, "templates");
    if (templates) {
        if (templates->type != YAML_SEQUENCE_NODE) {
            rc = yaml_fail(&y, templates, "'templates' must be a list");
            goto out;
        }
        size_t n =
            (size_t)(templates->data.sequence.items.top - templates->data.sequence.items.start);
        config->templates = calloc(n ? n : 1, sizeof(*config->templates));
        if (!config->templates) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
        dir = strdup(file);
        if (!dir) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        for (size_t i = 0; i < n; i++) {
            yaml_node_t *node =
                yaml_document_get_node(&doc, templates->data.sequence.items.start[i]);
            config->ntemplates++;
            rc = load_template(&y, node, i, slash ? dir : NULL, &config->templates[i]);
            if (rc != CF_OK)
                goto out;
        }
    }
    if (!config->nsinks && !config->ntemplates)
        rc = yaml_fail(&y, root, "nothing to do: no sinks and no templates");
out:
    if (doc_ready)
        yaml_document_delete(&doc);
    if (parser_ready)
        yaml_parser_delete(&parser);
    free(dir);
    free(text);
    return rc;
}
