/* `coffer login`: not implemented yet (issue 3). */
#include <stdio.h>

#include "cli/commands.h"
#include "util/banned.h"

int cf_cmd_login(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "coffer: 'login' is not implemented yet (issue 3)\n");
    return 1;
}
