/* `coffer completion bash|zsh`: prints a completion script for every command, subcommand and
 * option. The script is made from the command tree (common.h: cf_cli_tree_new), that is from the
 * tables the parser itself uses, so a new option completes as soon as it parses. Both shells share
 * two generated functions: _coffer_words NODE prints what may follow NODE ("secrets list": its
 * options; "secrets": its subcommands), _coffer_value NODE --OPTION prints the name of the option's
 * value (SLUG, FILE, a|b|c) and fails for a flag without one. Values named FILE or DIR complete as
 * file names, choices a|b|c as those words. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/banned.h"

static const char usage[] =
    "usage: coffer completion bash|zsh\n"
    "\n"
    "Prints a completion script for every command and option on standard output.\n"
    "  bash:  source <(coffer completion bash)      (or install it as\n"
    "         $PREFIX/share/bash-completion/completions/coffer)\n"
    "  zsh:   source <(coffer completion zsh)       (or install it as _coffer in\n"
    "         a directory of $fpath, e.g. $PREFIX/share/zsh/site-functions)\n"
    "'make install' installs both.\n"
    "\n"
    "options:\n"
    "  --output FORMAT    ignored (the script is text)\n"
    "  -h, --help         show this help\n";

/* Node paths and option names are words of [A-Za-z0-9_-] (the tables' own): safe in a case
 * pattern within double quotes. */

static void print_words(FILE *out, const struct cf_cli_node *root, const struct cf_cli_node *node,
                        const char *path)
{
    char child_path[256];
    fprintf(out, "    \"%s\") echo '", path);
    for (size_t i = 0; i < node->nchildren; i++)
        fprintf(out, "%s ", node->children[i].name);
    /* `coffer help COMMAND`: the commands */
    if (node != root && strcmp(path, "help") == 0) {
        for (size_t i = 0; i < root->nchildren; i++)
            fprintf(out, "%s ", root->children[i].name);
    }
    for (size_t i = 0; i < node->nflags; i++)
        fprintf(out, "--%s ", node->flags[i].name);
    fprintf(out, "%s' ;;\n", node == root ? "--help --version" : node->nflags ? "" : "--help");
    for (size_t i = 0; i < node->nchildren; i++) {
        snprintf(child_path, sizeof(child_path), "%s%s%s", path, *path ? " " : "",
                 node->children[i].name);
        print_words(out, root, &node->children[i], child_path);
    }
}

static void print_values(FILE *out, const struct cf_cli_node *node, const char *path)
{
    char child_path[256];
    for (size_t i = 0; i < node->nflags; i++) {
        if (node->flags[i].takes_value)
            fprintf(out, "    \"%s --%s\") echo '%s' ;;\n", path, node->flags[i].name,
                    node->flags[i].metavar);
    }
    for (size_t i = 0; i < node->nchildren; i++) {
        snprintf(child_path, sizeof(child_path), "%s%s%s", path, *path ? " " : "",
                 node->children[i].name);
        print_values(out, &node->children[i], child_path);
    }
}

/* The part both shells understand: the two table functions and the walk over the words typed so
 * far, which leaves the node in $node and the option awaiting a value (if any) in $want. Expects
 * the shell's words in $1.. up to (not including) the one being completed. */
static void print_common(FILE *out, const struct cf_cli_node *root)
{
    fputs("_coffer_words()\n{\n    case \"$1\" in\n", out);
    print_words(out, root, root, "");
    fputs("    *) return 1 ;;\n    esac\n}\n\n", out);
    fputs("_coffer_value()\n{\n    case \"$1 $2\" in\n", out);
    print_values(out, root, "");
    fputs("    *) return 1 ;;\n    esac\n}\n\n", out);
    fputs("# _coffer_walk WORD...: sets node (the command path), want (the option whose value\n"
          "# comes next, or empty) and rest (1 after \"--\": a command line of its own follows)\n"
          "_coffer_walk()\n"
          "{\n"
          "    node='' want='' rest=0\n"
          "    local word\n"
          "    for word in \"$@\"; do\n"
          "        if [ -n \"$want\" ]; then\n"
          "            want=''\n"
          "            continue\n"
          "        fi\n"
          "        case $word in\n"
          "        --) rest=1; return ;;\n"
          "        --*=*) ;;\n"
          "        --*) _coffer_value \"$node\" \"$word\" >/dev/null && want=$word ;;\n"
          "        -*) ;;\n"
          "        *)\n"
          "            if [ -z \"$node\" ]; then\n"
          "                _coffer_words \"$word\" >/dev/null && node=$word\n"
          "            else\n"
          "                _coffer_words \"$node $word\" >/dev/null && node=\"$node $word\"\n"
          "            fi\n"
          "            ;;\n"
          "        esac\n"
          "    done\n"
          "}\n\n",
          out);
}

static void print_bash(FILE *out, const struct cf_cli_node *root)
{
    fputs("# bash completion for coffer, made by `coffer completion bash`.\n\n", out);
    print_common(out, root);
    fputs("_coffer()\n"
          "{\n"
          "    local cur=${COMP_WORDS[COMP_CWORD]} node want rest value\n"
          "    _coffer_walk \"${COMP_WORDS[@]:1:COMP_CWORD-1}\"\n"
          "    COMPREPLY=()\n"
          "    ((rest)) && return 1 # the command after \"--\": bash's default completion\n"
          "    if [ -n \"$want\" ]; then\n"
          "        value=$(_coffer_value \"$node\" \"$want\")\n"
          "        case $value in\n"
          "        *FILE* | *DIR*) COMPREPLY=($(compgen -f -- \"$cur\")) ;;\n"
          "        *'|'*) COMPREPLY=($(compgen -W \"${value//|/ }\" -- \"$cur\")) ;;\n"
          "        esac\n"
          "        return 0\n"
          "    fi\n"
          "    COMPREPLY=($(compgen -W \"$(_coffer_words \"$node\")\" -- \"$cur\"))\n"
          "}\n\n"
          "complete -o default -F _coffer coffer\n",
          out);
}

static void print_zsh(FILE *out, const struct cf_cli_node *root)
{
    fputs("#compdef coffer\n# zsh completion for coffer, made by `coffer completion zsh`.\n\n",
          out);
    print_common(out, root);
    fputs("_coffer()\n"
          "{\n"
          "    local node want rest value\n"
          "    _coffer_walk \"${(@)words[2,CURRENT-1]}\"\n"
          "    ((rest)) && { _files; return; }\n"
          "    if [[ -n $want ]]; then\n"
          "        value=$(_coffer_value \"$node\" \"$want\")\n"
          "        case $value in\n"
          "        *FILE* | *DIR*) _files ;;\n"
          "        *'|'*) compadd -- ${(s:|:)value} ;;\n"
          "        esac\n"
          "        return\n"
          "    fi\n"
          "    compadd -- ${=$(_coffer_words \"$node\")}\n"
          "}\n\n"
          "if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then\n"
          "    _coffer \"$@\"\n"
          "else\n"
          "    compdef _coffer coffer\n"
          "fi\n",
          out);
}

int cf_cmd_completion(int argc, char **argv)
{
    const struct cf_cli_spec spec = {usage, CF_CLI_OFFLINE, 1, 1, NULL, 0};
    struct cf_cli_node *root = NULL;
    struct cf_cli cli;
    int status;

    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    bool bash = strcmp(cli.args[0], "bash") == 0;
    if (!bash && strcmp(cli.args[0], "zsh") != 0) {
        status =
            cf_cli_usage_error(&cli, "completion is for bash or zsh, not '%.32s'", cli.args[0]);
        goto out;
    }
    if (cf_cli_tree_new(&root) != CF_OK) {
        status = cf_cli_fail("out of memory");
        goto out;
    }
    if (bash)
        print_bash(stdout, root);
    else
        print_zsh(stdout, root);
    if (fflush(stdout) != 0 || ferror(stdout))
        status = cf_cli_fail("cannot write to standard output");
out:
    cf_cli_tree_free(root);
    cf_cli_end(&cli);
    return status;
}
