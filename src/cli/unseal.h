/* `coffer operator unseal` and `coffer operator seal`: the seal commands that talk to a running
 * server over its API (docs/operations.md "Seal and unseal"); the other operator commands open
 * the data directory themselves (server/operator.c). */
#ifndef CF_CLI_UNSEAL_H
#define CF_CLI_UNSEAL_H

/* `coffer operator unseal [--reset] [--domain URL]`: argv[0] is "unseal". Hands in the shares
 * read from standard input (one a line) or asked on the terminal (echo off), never from argv, and
 * prints the progress; when the threshold is reached, waits until the server is up unsealed.
 * Needs no token. Exit 0 when the shares were taken (or the attempt reset), 1 on a refusal, 2 on
 * a usage error. */
int cf_cmd_operator_unseal(int argc, char **argv);

/* `coffer operator seal [--token T] [--domain URL]`: argv[0] is "seal". Asks the server to seal
 * (the admin token or an owner's token). */
int cf_cmd_operator_seal(int argc, char **argv);

#endif
