/* `coffer man --out DIR`: writes the man pages, coffer.1 (the commands) and coffer-COMMAND.1 per
 * command (its subcommands with their synopses and help), made from the command tree (common.h:
 * cf_cli_tree_new) and so from the very tables and usage texts the parser uses. `make install`
 * runs it. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/banned.h"

static const char usage[] =
    "usage: coffer man --out DIR\n"
    "\n"
    "Writes the man pages into DIR (made if missing): coffer.1 and one page per\n"
    "command, coffer-secrets.1, ... ('make install' installs them under\n"
    "$PREFIX/share/man/man1).\n"
    "\n"
    "options:\n"
    "  --out DIR          the directory to write into\n"
    "  --output FORMAT    ignored (the pages are roff)\n"
    "  -h, --help         show this help\n";

/* Writes text as roff body text: backslashes as \e, dashes as \-, other than ASCII as \[uXXXX], a
 * line starting with '.' or '\'' protected by \&. */
static void put_roff(FILE *out, const char *text, size_t len)
{
    bool line_start = true;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (line_start && (c == '.' || c == '\''))
            fputs("\\&", out);
        if (c == '\\') {
            fputs("\\e", out);
        } else if (c == '-') {
            fputs("\\-", out);
        } else if (c >= 0xc0) {
            /* a UTF-8 sequence (the usage texts are valid UTF-8): its code point */
            size_t more = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
            unsigned long point = c & (0x3f >> more);
            for (; more && i + 1 < len && ((unsigned char)text[i + 1] & 0xc0) == 0x80; more--)
                point = point << 6 | ((unsigned char)text[++i] & 0x3f);
            fprintf(out, "\\[u%04lX]", point);
        } else if (c >= 0x80) {
            fputc('?', out); /* a stray continuation byte */
        } else {
            fputc(c, out);
        }
        line_start = c == '\n';
    }
}

/* The help text of a leaf command as cf_cli_begin prints it (synopsis with every option, then
 * the rest of the usage text), in a no-fill block. */
static void put_leaf(FILE *out, const struct cf_cli_node *node)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (mem) {
        cf_cli_print_synopsis(mem, node->usage, node->flags, node->nflags);
        const char *blank = strstr(node->usage, "\n\n");
        if (blank)
            fputs(blank + 1, mem);
        fclose(mem);
    }
    fputs(".PP\n.nf\n", out);
    if (text)
        put_roff(out, text, len);
    fputs(".fi\n", out);
    free(text);
}

/* Every leaf under node, each in a subsection named by its command line. */
static void put_leaves(FILE *out, const struct cf_cli_node *node, const char *path)
{
    char child_path[256];
    if (node->usage) {
        fprintf(out, ".SS \"%s\"\n", path);
        if (node->summary && *node->summary) {
            put_roff(out, node->summary, strlen(node->summary));
            fputc('\n', out);
        }
        put_leaf(out, node);
    }
    for (size_t i = 0; i < node->nchildren; i++) {
        snprintf(child_path, sizeof(child_path), "%s %s", path, node->children[i].name);
        put_leaves(out, &node->children[i], child_path);
    }
}

static void put_header(FILE *out, const char *title, const char *name, const char *summary)
{
    fprintf(out,
            ".\\\" Made by `coffer man` from coffer's command table; do not edit.\n"
            ".TH %s 1 \"\" \"coffer %s\" \"Coffer Manual\"\n"
            ".SH NAME\n",
            title, COFFER_VERSION);
    put_roff(out, name, strlen(name));
    fputs(" \\- ", out);
    put_roff(out, summary, strlen(summary));
    fputc('\n', out);
}

/* Opens DIR/name for writing; NULL with the failure printed. */
static FILE *open_page(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *out = fopen(path, "w");
    if (!out)
        cf_cli_fail("cannot write '%s': %s", path, strerror(errno));
    return out;
}

static int close_page(FILE *out, const char *dir, const char *name)
{
    bool failed = ferror(out) != 0;
    if (fclose(out) != 0 || failed)
        return cf_cli_fail("cannot write '%s/%s'", dir, name);
    return CF_EXIT_OK;
}

static int write_overview(const char *dir, const struct cf_cli_node *root)
{
    FILE *out = open_page(dir, "coffer.1");
    if (!out)
        return CF_EXIT_FAILURE;
    put_header(out, "COFFER", "coffer", root->summary);
    fputs(".SH SYNOPSIS\n.B coffer\n.I command\n[\\fIoptions\\fR]\n"
          ".PP\n.B coffer help\n.I command\n[\\fIsubcommand\\fR]\n"
          ".SH DESCRIPTION\n"
          "Coffer is a secrets manager that speaks Infisical's HTTP API: one binary holds the "
          "server and its command-line client. Each command has a page of its own, "
          "\\fBcoffer\\-\\fIcommand\\fR(1), and prints its help with \\fB\\-\\-help\\fR.\n"
          ".SH COMMANDS\n",
          out);
    for (size_t i = 0; i < root->nchildren; i++) {
        fprintf(out, ".TP\n.B coffer %s\n", root->children[i].name);
        put_roff(out, root->children[i].summary, strlen(root->children[i].summary));
        fputc('\n', out);
    }
    fputs(".SH ENVIRONMENT\n"
          ".TP\n.B COFFER_API_URL\nthe server (also INFISICAL_API_URL)\n"
          ".TP\n.B COFFER_TOKEN\nthe access token (also INFISICAL_TOKEN)\n"
          ".TP\n.B COFFER_PROJECT_ID\nthe project of --projectId\n"
          ".TP\n.B COFFER_CACERT\nCA certificates to trust for an https:// server\n"
          ".SH EXIT STATUS\n0 success, 1 failure reported by the server or the system, 2 usage "
          "error.\n.SH SEE ALSO\n",
          out);
    for (size_t i = 0; i < root->nchildren; i++)
        fprintf(out, ".BR coffer\\-%s (1)%s\n", root->children[i].name,
                i + 1 < root->nchildren ? "," : "");
    return close_page(out, dir, "coffer.1");
}

static int write_command(const char *dir, const struct cf_cli_node *command)
{
    char name[128], title[128], file[160];
    snprintf(name, sizeof(name), "coffer-%s", command->name);
    snprintf(file, sizeof(file), "%s.1", name);
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof(title); i++)
        title[i] = name[i] >= 'a' && name[i] <= 'z' ? (char)(name[i] - 'a' + 'A') : name[i];
    title[i] = '\0';
    FILE *out = open_page(dir, file);
    if (!out)
        return CF_EXIT_FAILURE;
    put_header(out, title, name, command->summary);
    fputs(".SH SYNOPSIS\n", out);
    if (command->nchildren) {
        fprintf(out, ".B coffer %s\n.I subcommand\n[\\fIoptions\\fR]\n.SH SUBCOMMANDS\n",
                command->name);
        for (size_t k = 0; k < command->nchildren; k++) {
            fprintf(out, ".TP\n.B %s\n", command->children[k].name);
            put_roff(out, command->children[k].summary, strlen(command->children[k].summary));
            fputc('\n', out);
        }
        fputs(".SH DESCRIPTION\n", out);
    } else {
        fprintf(out, ".B coffer %s\n[\\fIoptions\\fR]\n.SH DESCRIPTION\n", command->name);
    }
    char path[160];
    snprintf(path, sizeof(path), "coffer %s", command->name);
    if (command->usage) {
        put_leaf(out, command); /* one text for all its subcommands (operator) */
    } else {
        for (size_t k = 0; k < command->nchildren; k++) {
            char child[256];
            snprintf(child, sizeof(child), "%s %s", path, command->children[k].name);
            put_leaves(out, &command->children[k], child);
        }
    }
    fputs(".SH SEE ALSO\n.BR coffer (1)\n", out);
    return close_page(out, dir, file);
}

int cf_cmd_man(int argc, char **argv)
{
    const char *dir = NULL;
    const struct cf_opt opts[] = {{"out", CF_OPT_STRING, &dir}};
    const struct cf_cli_spec spec = {usage, CF_CLI_OFFLINE, 0, 0, opts, 1};
    struct cf_cli_node *root = NULL;
    struct cf_cli cli;
    int status;

    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (!dir || !*dir) {
        status = cf_cli_usage_error(&cli, "--out DIR is required");
        goto out;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        status = cf_cli_fail("cannot make '%s': %s", dir, strerror(errno));
        goto out;
    }
    if (cf_cli_tree_new(&root) != CF_OK) {
        status = cf_cli_fail("out of memory");
        goto out;
    }
    status = write_overview(dir, root);
    for (size_t i = 0; status == CF_EXIT_OK && i < root->nchildren; i++)
        status = write_command(dir, &root->children[i]);
out:
    cf_cli_tree_free(root);
    cf_cli_end(&cli);
    return status;
}
