/* The entry points of the commands that own a data directory and wire every layer (the store, the
 * keys, auth, core, the API, the notifier and the streams): `coffer server` and `coffer operator`.
 * Same contract as cli/commands.h: argv[0] is the command name; the return value is the exit
 * status (0 success, 1 failure, 2 usage error). */
#ifndef CF_SERVER_COMMANDS_H
#define CF_SERVER_COMMANDS_H

int cf_cmd_doctor(int argc, char **argv);
int cf_cmd_operator(int argc, char **argv);
int cf_cmd_server(int argc, char **argv);

#endif
