/* The configuration of `coffer agent` (agent.c): Infisical's agent format (infisical:, auth:,
 * sinks:, templates:) read with libyaml into a struct, every key checked, the templates read and
 * parsed (template.h). docs/agent.md lists the keys. Errors name the file, line and column. */
#ifndef CF_CLI_AGENT_CONFIG_H
#define CF_CLI_AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "cli/template.h"
#include "util/err.h"

#define CF_AGENT_DEFAULT_POLLING_S 300
#define CF_AGENT_DEFAULT_EXEC_TIMEOUT_S 30

/* One entry of templates: (strings owned, freed by cf_agent_config_release). */
struct cf_agent_template {
    char *name; /* source-path, or "templates[N]" */
    struct cf_template *tmpl;
    char *destination;
    int64_t interval_us;
    char *command;
    int64_t timeout_s;
    char *pid_file;
    int signal;
    mode_t mode;
    uid_t uid;
    gid_t gid;
    bool set_owner, set_group;
    /* the agent loop's state (zero after loading, etags an empty object) */
    int64_t due_us;
    int64_t rendered_us;
    bool rendered;
    /* folder key -> {project, environment, path, etag}: the folders of the last render and the
       entity tag of each one's last probe */
    json_t *etags;
};

struct cf_agent_config {
    char *address;
    bool exit_after_auth;
    bool revoke_on_shutdown;
    char *auth_type; /* universal-auth, kubernetes, jwt */
    char *client_id_path, *client_secret_path;
    bool remove_secret_on_read;
    char *identity_id_path, *token_path;
    char **sinks;
    size_t nsinks;
    struct cf_agent_template *templates;
    size_t ntemplates;
};

/* Reads file into config (zeroed by the caller; release it with cf_agent_config_release, also on
 * failure). Template files named by a relative source-path are read relative to file's directory.
 * CF_EINVAL with "FILE:LINE:COL: what" for a bad configuration or template, CF_ENOTFOUND / CF_EIO /
 * CF_ETOOLARGE when file cannot be read, CF_ENOMEM. Keys of Infisical's that Coffer does not act on
 * are accepted with a warning on standard error. */
enum cf_rc cf_agent_config_load(const char *file, struct cf_agent_config *config,
                                struct cf_err *err);

/* Frees everything config holds and zeroes it. Safe on a zeroed struct. */
void cf_agent_config_release(struct cf_agent_config *config);

#endif
