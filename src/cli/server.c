/* Placeholder: replaced by the real command. */
#include <stdio.h>
#include "cli/commands.h"
int cf_cmd_server(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "coffer: 'server' is not implemented yet\n");
    return 1;
}
