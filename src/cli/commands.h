/* The entry point of every `coffer` subcommand. Each takes the arguments after the command name
 * (argv[0] is the command name) and returns the process exit status: 0 success, 1 failure reported
 * by the server or the system, 2 usage error. */
#ifndef CF_CLI_COMMANDS_H
#define CF_CLI_COMMANDS_H

int cf_cmd_access(int argc, char **argv);
/* `coffer agent`: renders templates of secrets to files (cli/agent.c). */
int cf_cmd_agent(int argc, char **argv);
int cf_cmd_audit(int argc, char **argv);
int cf_cmd_completion(int argc, char **argv);
int cf_cmd_connections(int argc, char **argv);
int cf_cmd_dynamic_secrets(int argc, char **argv);
int cf_cmd_envs(int argc, char **argv);
int cf_cmd_expiring(int argc, char **argv);
int cf_cmd_export(int argc, char **argv);
int cf_cmd_folders(int argc, char **argv);
int cf_cmd_groups(int argc, char **argv);
int cf_cmd_help(int argc, char **argv);
int cf_cmd_identities(int argc, char **argv);
int cf_cmd_inventory(int argc, char **argv);
int cf_cmd_leases(int argc, char **argv);
int cf_cmd_login(int argc, char **argv);
int cf_cmd_man(int argc, char **argv);
int cf_cmd_notifications(int argc, char **argv);
int cf_cmd_rotations(int argc, char **argv);
int cf_cmd_syncs(int argc, char **argv);
int cf_cmd_projects(int argc, char **argv);
int cf_cmd_run(int argc, char **argv);
/* `coffer scan`: secrets in files, standard input, git history and staged changes (cli/scan.c). */
int cf_cmd_scan(int argc, char **argv);
int cf_cmd_scim(int argc, char **argv);
int cf_cmd_secrets(int argc, char **argv);
int cf_cmd_users(int argc, char **argv);
/* `coffer approvals`: approval policies and change requests (cli/approvals.c). */
int cf_cmd_approvals(int argc, char **argv);

/* `coffer users add-to-project|remove-from-project|memberships`: the identities' membership
 * commands (cli/identities.c) for users. */
int cf_cmd_users_add_to_project(int argc, char **argv);
int cf_cmd_users_remove_from_project(int argc, char **argv);
int cf_cmd_users_memberships(int argc, char **argv);
/* `coffer users mfa ...`: two-factor sign-in (cli/mfa.c). */
int cf_cmd_users_mfa(int argc, char **argv);

/* `coffer groups add-to-project|remove-from-project|memberships`: the same for groups. */
int cf_cmd_groups_add_to_project(int argc, char **argv);
int cf_cmd_groups_remove_from_project(int argc, char **argv);
int cf_cmd_groups_memberships(int argc, char **argv);

#endif
