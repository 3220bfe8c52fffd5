/* `coffer`: one binary, a server and the clients of its API. This file only dispatches to the
 * command named by the first argument (see the sorted table below). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "kube/operator.h"
#include "server/commands.h"
#include "util/time.h"
#include "util/banned.h"
#include "util/str.h"

/* Help, completion and man pages are made from this table (cli/common.h: cf_cli_tree_new). */
static const struct cf_cli_sub commands[] = {
    {"access", cf_cmd_access, "access requests: ask for, grant, deny, revoke temporary access"},
    {"agent", cf_cmd_agent, "keep a token renewed and render secrets into files (Infisical agent)"},
    {"approvals", cf_cmd_approvals,
     "approval policies and change requests: requests, show, approve, reject, merge"},
    {"audit", cf_cmd_audit, "list and verify the tamper-evident audit log"},
    {"completion", cf_cmd_completion, "print a bash or zsh completion script"},
    {"connections", cf_cmd_connections,
     "app connections: credentials for Azure DevOps, Key Vault, GitHub"},
    {"doctor", cf_cmd_doctor,
     "check a deployment from its host: permissions, keys, database, TLS, audit, expiry"},
    {"dynamic-secrets", cf_cmd_dynamic_secrets,
     "dynamic secrets: credentials made per lease (database logins, Entra ID secrets)"},
    {"envs", cf_cmd_envs, "list, create, rename, reorder and delete environments"},
    {"expiring", cf_cmd_expiring,
     "what expires or is due for rotation soon: secrets, client secrets"},
    {"export", cf_cmd_export, "print secrets as dotenv, json, yaml, azure-devops or github lines"},
    {"folders", cf_cmd_folders, "list, create and delete folders"},
    {"groups", cf_cmd_groups, "groups of users: members and project roles for all of them"},
    {"help", cf_cmd_help, "show the help of a command: coffer help secrets list"},
    {"identities", cf_cmd_identities,
     "machine identities, universal auth, client secrets, memberships"},
    {"inventory", cf_cmd_inventory,
     "every secret with versions, changes, expiry, and who can read it"},
    {"k8s-operator", cf_cmd_k8s_operator,
     "sync secrets into Kubernetes Secrets from InfisicalSecret resources"},
    {"leases", cf_cmd_leases, "leases of dynamic secrets: create, renew, revoke, list"},
    {"login", cf_cmd_login, "exchange machine-identity credentials for an access token"},
    {"man", cf_cmd_man, "write the man pages (coffer.1, coffer-COMMAND.1) into a directory"},
    {"notifications", cf_cmd_notifications,
     "expiry notices: channels, a pass now, the delivery log"},
    {"operator", cf_cmd_operator,
     "offline maintenance: rotate-root-key, rotate-admin-token, migrate"},
    {"projects", cf_cmd_projects, "create, list, get and delete projects"},
    {"rotations", cf_cmd_rotations, "secret rotations: renew, push, verify, retire credentials"},
    {"run", cf_cmd_run, "run a command with secrets in its environment"},
    {"scan", cf_cmd_scan,
     "find secrets in files, git history and staged changes (a pre-commit gate)"},
    {"scim", cf_cmd_scim, "SCIM provisioning: tokens for an identity provider"},
    {"secrets", cf_cmd_secrets, "set, get, list, delete secrets; history and rollback"},
    {"server", cf_cmd_server, "run the Coffer server"},
    {"syncs", cf_cmd_syncs, "secret syncs to Azure DevOps, Key Vault, GitHub, files: runs, status"},
    {"users", cf_cmd_users, "people: create, list, disable, delete users; roles and memberships"},
};

int main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "coffer: libsodium failed to initialise\n");
        return 1;
    }
    cf_cli_set_program(commands, CF_ARRAY_SIZE(commands));
    if (argc < 2) {
        cf_cli_print_program_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cf_cli_print_program_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("coffer %s%s\n", COFFER_VERSION,
               cf_test_clock_build() ? " (test build: COFFER_TEST_CLOCK_OFFSET and "
                                       "COFFER_TEST_CLOCK_FILE move the clock)"
                                     : "");
        return 0;
    }
    return cf_cli_finish(cf_cli_run_command(argc - 1, argv + 1));
}
