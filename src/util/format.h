/* The output formats of `coffer export` and of the file sync destination (provider/filedest.c):
 * dotenv (`KEY='value'`), dotenv-export (`export KEY='value'`), json (Infisical's array of {key,
 * value, ...}), yaml, csv, azure-devops
 * (`##vso[task.setvariable ...]` logging commands) and github (`::add-mask::` lines plus the
 * $GITHUB_ENV multi-line syntax). Pure functions from a list of items to bytes in a struct cf_buf,
 * so that the exactness of every format (quoting, escaping) is unit-testable without a server.
 *
 * Exactness guarantees, for every value (any bytes but NUL, valid UTF-8 where the format needs it):
 *  - dotenv-export: `eval "$(coffer export --format=dotenv-export)"` in a POSIX shell sets each
 *    variable to its value byte for byte (single quotes; a quote is written '\'' ).
 *  - dotenv: the same lines without `export`.
 *  - yaml: every value is a double-quoted scalar with YAML escapes, so a YAML 1.1 or 1.2 parser
 * reads back the exact string; keys are plain only when they cannot be read as anything else.
 *  - csv: RFC 4180 quoting as Go's encoding/csv does it (Infisical's csv output).
 *  - azure-devops: values escaped as the Azure Pipelines agent unescapes them (% as %AZP25, CR as
 *    %0D, LF as %0A; in the variable name also ';' as %3B and ']' as %5D).
 *  - github: the env-file heredoc syntax with a random delimiter that occurs nowhere in the value,
 *    read back exactly by the Actions runner; a mask line for every non-empty line of every value.
 *
 * Output buffers may hold secret values: release them with cf_buf_release_wipe. Nothing here keeps
 * state or prints. Thread-safe. */
#ifndef CF_UTIL_FORMAT_H
#define CF_UTIL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "util/buf.h"
#include "util/err.h"

enum cf_format {
    CF_FORMAT_DOTENV,
    CF_FORMAT_DOTENV_EXPORT,
    CF_FORMAT_JSON,
    CF_FORMAT_YAML,
    CF_FORMAT_CSV,
    CF_FORMAT_AZURE_DEVOPS,
    CF_FORMAT_GITHUB,
};

/* One exported variable. All pointers are borrowed. Only name and value matter to every format; the
 * rest fills the json format's fields (NULL: "" or [], as Infisical writes them). */
struct cf_format_item {
    const char *name;  /* the variable's name, prefix already applied */
    const char *value; /* value_len bytes; may be NULL when value_len is 0 */
    size_t value_len;
    const char *id;
    const char *workspace;
    const char *type; /* NULL: "shared" */
    const char *secret_path;
    const char *comment;
    json_t *tags; /* a JSON array of {id, name, slug, color}, or NULL */
    bool skip_multiline;
};

/* The format named name ("dotenv", "dotenv-export", "json", "yaml", "csv", "azure-devops",
 * "github"; case-insensitive). False for anything else. */
bool cf_format_from_name(const char *name, enum cf_format *out);

/* The format's name as accepted by cf_format_from_name. */
const char *cf_format_name(enum cf_format format);

/* The file name `export --output-file DIR` writes in a directory (".env", "secrets.json",
 * "secrets.yaml", "secrets.csv", "secrets.azure-devops.txt", "secrets.github.env") and the
 * extension added to a file name that has none (".env", ".json", ".yaml", ".csv", ".txt", ".env").
 */
const char *cf_format_default_filename(enum cf_format format);
const char *cf_format_default_extension(enum cf_format format);

/* True when name is a POSIX shell variable name: [A-Za-z_][A-Za-z0-9_]*. */
bool cf_format_shell_name(const char *name);

/* Appends value (len bytes) single-quoted for a POSIX shell: 'text', each ' written as '\''. The
 * empty value becomes ''. Every other byte is literal inside single quotes. */
enum cf_rc cf_format_shell_quote(struct cf_buf *out, const char *value, size_t len);

/* Appends text escaped for an Azure Pipelines logging command: % -> %AZP25, CR -> %0D, LF -> %0A,
 * and with property true (a name in the [...] part) also ';' -> %3B and ']' -> %5D. */
enum cf_rc cf_format_azure_escape(struct cf_buf *out, const char *text, size_t len, bool property);

/* Appends text (valid UTF-8) as a YAML double-quoted scalar: backslash, quote and every
 * non-printable character escaped (\0 \a \b \t \n \v \f \r \e \xNN \N \L \P \uNNNN). CF_EINVAL for
 * invalid UTF-8. */
enum cf_rc cf_format_yaml_quote(struct cf_buf *out, const char *text, size_t len);

/* Appends one CSV field: quoted (with "" for ") when it holds a comma, quote, CR or LF, starts with
 * a blank, or is `\.`; as is otherwise. */
enum cf_rc cf_format_csv_field(struct cf_buf *out, const char *text, size_t len);

/* Renders items, in the given order, as format (anything but CF_FORMAT_GITHUB), appending to out.
 * CF_EINVAL with a message naming the variable when a name is not valid for the format (dotenv
 * formats: cf_format_shell_name; azure-devops: non-empty), or when a value holds a NUL byte that an
 * environment variable cannot carry (dotenv formats, azure-devops) or is not UTF-8 (yaml, json);
 * CF_ENOMEM/CF_ETOOLARGE from the buffer. Messages never contain values. */
enum cf_rc cf_format_render(enum cf_format format, const struct cf_format_item *items, size_t n,
                            struct cf_buf *out, struct cf_err *err);

/* Renders items for GitHub Actions: into masks, an `::add-mask::` line for each non-empty line of
 * each value (lines split at CR and LF; % CR LF escaped as %25 %0D %0A); into env, for each item
 * `NAME<<DELIM` LF value LF `DELIM` LF, where DELIM is "ghadelimiter_" and 32 random hex digits,
 * chosen again until it occurs nowhere in the value. Names must be non-empty and hold no '=', "<<",
 * CR or LF; values no NUL (CF_EINVAL naming the variable). */
enum cf_rc cf_format_github(const struct cf_format_item *items, size_t n, struct cf_buf *masks,
                            struct cf_buf *env, struct cf_err *err);

#endif
