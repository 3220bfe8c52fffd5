/* The agent's template subset (see template.h): a small recursive-descent parser over the actions
 * between "{{" and "}}", building a tree of nodes, and a renderer walking it. Positions are kept as
 * byte offsets into a private copy of the text and turned into line:column only for messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cli/template.h"
#include "util/banned.h"

#define ARGS_MAX 4
#define DEPTH_MAX 32

enum expr_kind { EXPR_DOT, EXPR_CALL };
enum call_fn { FN_LIST, FN_GET };
enum node_kind { NODE_TEXT, NODE_PRINT, NODE_WITH, NODE_RANGE };

struct expr {
    enum expr_kind kind;
    enum call_fn fn;
    char *args[ARGS_MAX]; /* the call's string arguments */
    size_t nargs;
    const char *field; /* the JSON member of a secret (".Value": "secretValue"), or NULL */
};

struct node_list {
    struct node *items;
    size_t n;
};

struct node {
    enum node_kind kind;
    size_t at;        /* offset of the action (or text) in the template */
    size_t text, len; /* NODE_TEXT: the bytes to copy */
    struct expr expr; /* NODE_PRINT, NODE_WITH, NODE_RANGE */
    struct node_list body, otherwise;
};

struct cf_template {
    char *name;
    char *text;
    size_t len;
    struct node_list root;
};

/* ---- positions ---------------------------------------------------------------------------------
 */

static void position(const struct cf_template *tmpl, size_t at, size_t *line, size_t *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < at && i < tmpl->len; i++) {
        if (tmpl->text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static enum cf_rc fail_at(const struct cf_template *tmpl, size_t at, enum cf_rc rc,
                          struct cf_err *err, const char *what)
{
    size_t line, col;
    position(tmpl, at, &line, &col);
    return cf_err_set(err, rc, "%s:%zu:%zu: %s", tmpl->name, line, col, what);
}

/* ---- the tree ----------------------------------------------------------------------------------
 */

static void expr_release(struct expr *expr)
{
    for (size_t i = 0; i < expr->nargs; i++)
        free(expr->args[i]);
    expr->nargs = 0;
}

static void list_release(struct node_list *list)
{
    for (size_t i = 0; i < list->n; i++) {
        expr_release(&list->items[i].expr);
        list_release(&list->items[i].body);
        list_release(&list->items[i].otherwise);
    }
    free(list->items);
    list->items = NULL;
    list->n = 0;
}

static struct node *list_add(struct node_list *list)
{
    struct node *grown = realloc(list->items, (list->n + 1) * sizeof(*grown));
    if (!grown)
        return NULL;
    list->items = grown;
    memset(&grown[list->n], 0, sizeof(*grown));
    return &grown[list->n++];
}

void cf_template_free(struct cf_template *tmpl)
{
    if (!tmpl)
        return;
    list_release(&tmpl->root);
    free(tmpl->name);
    free(tmpl->text);
    free(tmpl);
}

/* ---- parsing -----------------------------------------------------------------------------------
 */

struct parser {
    struct cf_template *tmpl;
    size_t pos;     /* next byte to read */
    bool trim_next; /* the last action ended with "-}}": the next text loses its leading blanks */
    struct cf_err *err;
};

/* One action: its content's bounds and position. */
struct action {
    size_t at, begin, end; /* "{{" offset; content [begin, end) */
};

enum action_word { ACTION_OTHER, ACTION_END, ACTION_ELSE, ACTION_EOF };

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_ident(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
}

static const struct {
    const char *name, *member;
} fields[] = {
    {"Key", "secretKey"}, {"Value", "secretValue"},     {"Comment", "secretComment"},
    {"Type", "type"},     {"SecretPath", "secretPath"}, {"ID", "id"},
};

/* A string literal at *pos ('"' with Go's common escapes, or a `raw` one) into a new string. */
static enum cf_rc parse_string(struct parser *p, size_t *pos, size_t end, char **out)
{
    const char *text = p->tmpl->text;
    char quote = text[*pos];
    size_t start = *pos, n = 0;
    char *value = malloc(end - start + 1);
    if (!value)
        return cf_err_set(p->err, CF_ENOMEM, "out of memory");
    for (size_t i = start + 1; i < end; i++) {
        char c = text[i];
        if (c == quote) {
            value[n] = '\0';
            *pos = i + 1;
            *out = value;
            return CF_OK;
        }
        if (quote == '"' && c == '\n')
            break;
        if (quote == '"' && c == '\\' && i + 1 < end) {
            char e = text[++i];
            c = e == 'n' ? '\n' : e == 't' ? '\t' : e == '\\' ? '\\' : e == '"' ? '"' : 0;
            if (!c) {
                free(value);
                return fail_at(p->tmpl, i - 1, CF_EINVAL, p->err,
                               "unsupported escape in a string (\\n, \\t, \\\\ and \\\" are)");
            }
        }
        value[n++] = c;
    }
    free(value);
    return fail_at(p->tmpl, start, CF_EINVAL, p->err, "unterminated string");
}

static void skip_blanks(const char *text, size_t *pos, size_t end)
{
    while (*pos < end && is_blank(text[*pos]))
        (*pos)++;
}

/* ".Name" at *pos into expr->field (known names only). */
static enum cf_rc parse_field(struct parser *p, size_t *pos, size_t end, struct expr *expr)
{
    const char *text = p->tmpl->text;
    size_t start = ++*pos;
    while (*pos < end && is_ident(text[*pos], *pos == start))
        (*pos)++;
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (strlen(fields[i].name) == *pos - start &&
            memcmp(fields[i].name, text + start, *pos - start) == 0) {
            expr->field = fields[i].member;
            return CF_OK;
        }
    }
    char what[160];
    snprintf(what, sizeof(what),
             "unknown field '.%.*s' (a secret has .Key, .Value, .Comment, .SecretPath, .Type, .ID)",
             (int)(*pos - start > 40 ? 40 : *pos - start), text + start);
    return fail_at(p->tmpl, start - 1, CF_EINVAL, p->err, what);
}

/* A call: NAME "arg"... at *pos. */
static enum cf_rc parse_call(struct parser *p, size_t *pos, size_t end, struct expr *expr)
{
    const char *text = p->tmpl->text;
    size_t start = *pos;
    while (*pos < end && is_ident(text[*pos], *pos == start))
        (*pos)++;
    size_t len = *pos - start;
    size_t want;
    char what[200];
    if ((len == 6 && memcmp(text + start, "secret", 6) == 0) ||
        (len == 11 && memcmp(text + start, "listSecrets", 11) == 0)) {
        expr->fn = FN_LIST;
        want = 3;
    } else if (len == 15 && memcmp(text + start, "getSecretByName", 15) == 0) {
        expr->fn = FN_GET;
        want = 4;
    } else {
        snprintf(what, sizeof(what),
                 "unsupported '%.*s' (supported: secret, listSecrets, getSecretByName, with, "
                 "range, else, end, and fields of a secret)",
                 (int)(len > 40 ? 40 : len), text + start);
        return fail_at(p->tmpl, start, CF_EINVAL, p->err, what);
    }
    expr->kind = EXPR_CALL;
    for (;;) {
        skip_blanks(text, pos, end);
        if (*pos >= end || (text[*pos] != '"' && text[*pos] != '`'))
            break;
        if (expr->nargs == want)
            break;
        enum cf_rc rc = parse_string(p, pos, end, &expr->args[expr->nargs]);
        if (rc != CF_OK)
            return rc;
        expr->nargs++;
    }
    if (expr->nargs != want || (*pos < end && (text[*pos] == '"' || text[*pos] == '`'))) {
        snprintf(what, sizeof(what), "%.*s takes %zu quoted arguments (%s)", (int)len, text + start,
                 want,
                 want == 3 ? "project, environment, path" : "project, environment, path, name");
        return fail_at(p->tmpl, start, CF_EINVAL, p->err, what);
    }
    return CF_OK;
}

/* A pipeline from *pos to end: ".", ".Field", a call, or "(call).Field". */
static enum cf_rc parse_expr(struct parser *p, size_t pos, size_t end, struct expr *expr)
{
    const char *text = p->tmpl->text;
    enum cf_rc rc = CF_OK;
    skip_blanks(text, &pos, end);
    if (pos >= end)
        return fail_at(p->tmpl, pos, CF_EINVAL, p->err, "missing value");
    if (text[pos] == '.') {
        expr->kind = EXPR_DOT;
        if (pos + 1 < end && is_ident(text[pos + 1], true))
            rc = parse_field(p, &pos, end, expr);
        else
            pos++;
    } else if (text[pos] == '(') {
        pos++;
        skip_blanks(text, &pos, end);
        rc = parse_call(p, &pos, end, expr);
        skip_blanks(text, &pos, end);
        if (rc == CF_OK && (pos >= end || text[pos] != ')'))
            rc = fail_at(p->tmpl, pos, CF_EINVAL, p->err, "missing ')'");
        else if (rc == CF_OK && ++pos < end && text[pos] == '.')
            rc = parse_field(p, &pos, end, expr);
    } else if (is_ident(text[pos], true)) {
        rc = parse_call(p, &pos, end, expr);
    } else {
        char what[80];
        snprintf(what, sizeof(what), "unsupported '%c' (variables, pipes and numbers are not)",
                 text[pos]);
        return fail_at(p->tmpl, pos, CF_EINVAL, p->err, what);
    }
    if (rc != CF_OK)
        return rc;
    skip_blanks(text, &pos, end);
    if (pos < end) {
        char what[80];
        snprintf(what, sizeof(what), "unexpected '%c' (pipes and more arguments are not supported)",
                 text[pos]);
        return fail_at(p->tmpl, pos, CF_EINVAL, p->err, what);
    }
    return CF_OK;
}

/* Finds the next action from p->pos: the text before it is added to list (trimmed as asked), and
 * *action receives its bounds. ACTION_EOF when no action is left. */
static enum cf_rc next_action(struct parser *p, struct node_list *list, struct action *action,
                              bool *eof)
{
    const char *text = p->tmpl->text;
    size_t len = p->tmpl->len;
    const char *open = NULL;
    for (size_t i = p->pos; i + 1 < len; i++) {
        if (text[i] == '{' && text[i + 1] == '{') {
            open = text + i;
            break;
        }
    }
    size_t text_end = open ? (size_t)(open - text) : len;
    size_t text_begin = p->pos;
    bool trim_left =
        open && text_end + 3 < len && text[text_end + 2] == '-' && is_blank(text[text_end + 3]);
    if (p->trim_next)
        while (text_begin < text_end && is_blank(text[text_begin]))
            text_begin++;
    size_t kept_end = text_end;
    if (trim_left)
        while (kept_end > text_begin && is_blank(text[kept_end - 1]))
            kept_end--;
    if (kept_end > text_begin) {
        struct node *node = list_add(list);
        if (!node)
            return cf_err_set(p->err, CF_ENOMEM, "out of memory");
        node->kind = NODE_TEXT;
        node->at = text_begin;
        node->text = text_begin;
        node->len = kept_end - text_begin;
    }
    p->trim_next = false;
    *eof = !open;
    if (!open) {
        p->pos = len;
        return CF_OK;
    }
    action->at = text_end;
    action->begin = text_end + 2 + (trim_left ? 1 : 0);
    /* A comment may hold "}}"; it ends at its closing "*" "/". */
    size_t search = action->begin;
    while (search < len && is_blank(text[search]))
        search++;
    bool comment = search + 1 < len && text[search] == '/' && text[search + 1] == '*';
    if (comment) {
        size_t i = search + 2;
        while (i + 1 < len && !(text[i] == '*' && text[i + 1] == '/'))
            i++;
        if (i + 1 >= len)
            return fail_at(p->tmpl, action->at, CF_EINVAL, p->err, "unterminated comment");
        search = i + 2;
    }
    for (size_t i = search; i + 1 < len; i++) {
        if (text[i] == '}' && text[i + 1] == '}') {
            size_t end = i;
            if (end > action->begin + 1 && text[end - 1] == '-' && is_blank(text[end - 2])) {
                end--;
                p->trim_next = true;
            }
            action->end = comment ? action->begin : end;
            p->pos = i + 2;
            return CF_OK;
        }
        if (!comment && text[i] == '"') {
            /* skip strings, which may hold "}}" */
            size_t j = i + 1;
            while (j < len && text[j] != '"' && text[j] != '\n')
                j += text[j] == '\\' ? 2 : 1;
            i = j < len ? j : len;
        }
    }
    return fail_at(p->tmpl, action->at, CF_EINVAL, p->err, "unclosed action (missing \"}}\")");
}

static bool word_is(const char *text, size_t begin, size_t end, const char *word, size_t *after)
{
    size_t n = strlen(word);
    if (end - begin < n || memcmp(text + begin, word, n) != 0)
        return false;
    if (begin + n < end && !is_blank(text[begin + n]))
        return false;
    *after = begin + n;
    return true;
}

/* Parses nodes into list until an "end" or "else" action (*stop says which) or the end of text. */
static enum cf_rc parse_list(struct parser *p, struct node_list *list, int depth,
                             enum action_word *stop, size_t *stop_at)
{
    const char *text = p->tmpl->text;
    for (;;) {
        struct action action = {0};
        bool eof = false;
        enum cf_rc rc = next_action(p, list, &action, &eof);
        if (rc != CF_OK)
            return rc;
        if (eof) {
            *stop = ACTION_EOF;
            return CF_OK;
        }
        size_t begin = action.begin, end = action.end, after = 0;
        skip_blanks(text, &begin, end);
        while (end > begin && is_blank(text[end - 1]))
            end--;
        if (begin == end)
            continue; /* a comment, or an empty action */
        if (word_is(text, begin, end, "end", &after) && after == end) {
            *stop = ACTION_END;
            *stop_at = action.at;
            return CF_OK;
        }
        if (word_is(text, begin, end, "else", &after) && after == end) {
            *stop = ACTION_ELSE;
            *stop_at = action.at;
            return CF_OK;
        }
        struct node *node = list_add(list);
        if (!node)
            return cf_err_set(p->err, CF_ENOMEM, "out of memory");
        node->at = action.at;
        bool with = word_is(text, begin, end, "with", &after);
        bool range = !with && word_is(text, begin, end, "range", &after);
        if (!with && !range) {
            node->kind = NODE_PRINT;
            rc = parse_expr(p, begin, end, &node->expr);
            if (rc != CF_OK)
                return rc;
            continue;
        }
        size_t at = node->at;
        node->kind = with ? NODE_WITH : NODE_RANGE;
        rc = parse_expr(p, after, end, &node->expr);
        if (rc != CF_OK)
            return rc;
        if (depth >= DEPTH_MAX)
            return fail_at(p->tmpl, at, CF_EINVAL, p->err, "nested too deeply");
        /* The node may move when the child lists grow list->items: only its index is stable. */
        size_t index = (size_t)(node - list->items);
        struct node_list body = {0}, otherwise = {0};
        enum action_word inner = ACTION_OTHER;
        size_t inner_at = 0;
        rc = parse_list(p, &body, depth + 1, &inner, &inner_at);
        if (rc == CF_OK && inner == ACTION_ELSE) {
            rc = parse_list(p, &otherwise, depth + 1, &inner, &inner_at);
            if (rc == CF_OK && inner == ACTION_ELSE)
                rc = fail_at(p->tmpl, inner_at, CF_EINVAL, p->err, "a second {{ else }}");
        }
        if (rc == CF_OK && inner == ACTION_EOF)
            rc = fail_at(p->tmpl, at, CF_EINVAL, p->err,
                         with ? "{{ with }} without {{ end }}" : "{{ range }} without {{ end }}");
        list->items[index].body = body;
        list->items[index].otherwise = otherwise;
        if (rc != CF_OK)
            return rc;
    }
}

enum cf_rc cf_template_parse(const char *name, const char *text, size_t len,
                             struct cf_template **out, struct cf_err *err)
{
    struct cf_template *tmpl = calloc(1, sizeof(*tmpl));
    enum action_word stop = ACTION_OTHER;
    size_t stop_at = 0;
    enum cf_rc rc;

    *out = NULL;
    if (!tmpl)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    tmpl->name = strdup(name);
    tmpl->text = malloc(len + 1);
    if (!tmpl->name || !tmpl->text) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    if (len)
        memcpy(tmpl->text, text, len);
    tmpl->text[len] = '\0';
    tmpl->len = len;
    struct parser p = {tmpl, 0, false, err};
    rc = parse_list(&p, &tmpl->root, 0, &stop, &stop_at);
    if (rc == CF_OK && stop == ACTION_END)
        rc = fail_at(tmpl, stop_at, CF_EINVAL, err, "{{ end }} without {{ with }} or {{ range }}");
    if (rc == CF_OK && stop == ACTION_ELSE)
        rc = fail_at(tmpl, stop_at, CF_EINVAL, err, "{{ else }} outside {{ with }} or {{ range }}");
    if (rc == CF_OK) {
        *out = tmpl;
        tmpl = NULL;
    }
out:
    cf_template_free(tmpl);
    return rc;
}

/* ---- rendering ---------------------------------------------------------------------------------
 */

enum value_kind { VALUE_NONE, VALUE_LIST, VALUE_SECRET, VALUE_STRING };

struct value {
    enum value_kind kind;
    json_t *json;       /* LIST, SECRET (borrowed) */
    const char *string; /* STRING */
    size_t len;
};

struct render {
    const struct cf_template *tmpl;
    cf_template_fetch_fn fetch;
    void *ctx;
    struct cf_buf *out;
    struct cf_err *err;
};

static enum cf_rc eval(struct render *r, const struct node *node, const struct value *dot,
                       struct value *out)
{
    const struct expr *expr = &node->expr;
    struct value base = *dot;
    char what[400];
    if (expr->kind == EXPR_CALL) {
        json_t *secrets = NULL;
        enum cf_rc rc =
            r->fetch(r->ctx, expr->args[0], expr->args[1], expr->args[2], &secrets, r->err);
        if (rc != CF_OK) {
            snprintf(what, sizeof(what), "reading %s:%s%s: %s", expr->args[1], expr->args[2], "",
                     r->err->msg);
            return fail_at(r->tmpl, node->at, rc, r->err, what);
        }
        base = (struct value){VALUE_LIST, secrets, NULL, 0};
        if (expr->fn == FN_GET) {
            json_t *secret, *found = NULL;
            size_t i;
            json_array_foreach(secrets, i, secret)
            {
                const char *key = json_string_value(json_object_get(secret, "secretKey"));
                if (key && strcmp(key, expr->args[3]) == 0)
                    found = secret;
            }
            if (!found) {
                snprintf(what, sizeof(what), "no secret '%.128s' in %.64s:%.128s", expr->args[3],
                         expr->args[1], expr->args[2]);
                return fail_at(r->tmpl, node->at, CF_ENOTFOUND, r->err, what);
            }
            base = (struct value){VALUE_SECRET, found, NULL, 0};
        }
    }
    if (!expr->field) {
        *out = base;
        return CF_OK;
    }
    if (base.kind != VALUE_SECRET)
        return fail_at(r->tmpl, node->at, CF_EINVAL, r->err,
                       base.kind == VALUE_LIST ? "a field of a list of secrets (use range)"
                                               : "a field of a value that is not a secret");
    json_t *member = json_object_get(base.json, expr->field);
    *out =
        (struct value){VALUE_STRING, NULL, json_string_value(member), json_string_length(member)};
    if (!out->string)
        out->string = "";
    return CF_OK;
}

static bool is_empty(const struct value *value)
{
    switch (value->kind) {
    case VALUE_NONE:
        return true;
    case VALUE_LIST:
        return json_array_size(value->json) == 0;
    case VALUE_STRING:
        return value->len == 0;
    case VALUE_SECRET:
        return false;
    }
    return true;
}

static enum cf_rc render_list(struct render *r, const struct node_list *list,
                              const struct value *dot);

static enum cf_rc render_node(struct render *r, const struct node *node, const struct value *dot)
{
    struct value value = {0};
    enum cf_rc rc;
    if (node->kind == NODE_TEXT) {
        rc = cf_buf_append(r->out, r->tmpl->text + node->text, node->len);
        return rc == CF_OK ? CF_OK
                           : fail_at(r->tmpl, node->at, rc, r->err, "the output is too large");
    }
    rc = eval(r, node, dot, &value);
    if (rc != CF_OK)
        return rc;
    switch (node->kind) {
    case NODE_PRINT:
        if (value.kind != VALUE_STRING)
            return fail_at(r->tmpl, node->at, CF_EINVAL, r->err,
                           value.kind == VALUE_LIST ? "cannot print a list of secrets (use range)"
                                                    : "cannot print a secret (use .Value)");
        rc = cf_buf_append(r->out, value.string, value.len);
        return rc == CF_OK ? CF_OK
                           : fail_at(r->tmpl, node->at, rc, r->err, "the output is too large");
    case NODE_WITH:
        return render_list(r, is_empty(&value) ? &node->otherwise : &node->body,
                           is_empty(&value) ? dot : &value);
    case NODE_RANGE: {
        if (value.kind != VALUE_LIST)
            return fail_at(r->tmpl, node->at, CF_EINVAL, r->err,
                           "range needs a list of secrets (secret \"p\" \"e\" \"/path\")");
        if (is_empty(&value))
            return render_list(r, &node->otherwise, dot);
        json_t *secret;
        size_t i;
        json_array_foreach(value.json, i, secret)
        {
            struct value item = {VALUE_SECRET, secret, NULL, 0};
            rc = render_list(r, &node->body, &item);
            if (rc != CF_OK)
                return rc;
        }
        return CF_OK;
    }
    case NODE_TEXT:
        break;
    }
    return CF_OK;
}

static enum cf_rc render_list(struct render *r, const struct node_list *list,
                              const struct value *dot)
{
    for (size_t i = 0; i < list->n; i++) {
        enum cf_rc rc = render_node(r, &list->items[i], dot);
        if (rc != CF_OK)
            return rc;
    }
    return CF_OK;
}

enum cf_rc cf_template_render(const struct cf_template *tmpl, cf_template_fetch_fn fetch, void *ctx,
                              struct cf_buf *out, struct cf_err *err)
{
    struct render r = {tmpl, fetch, ctx, out, err};
    struct value dot = {0};
    cf_buf_reset(out);
    return render_list(&r, &tmpl->root, &dot);
}
