#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/devvars.h"

static int name_ok(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || isdigit((unsigned char)s[0]))
        return 0;
    for (i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return 0;
    return 1;
}

/* The value after '=', up to the end of its line: quoted ("..." with \n
 * \t \\ \" escapes, or '...' taken as is; either may span lines) or bare
 * (trimmed; " #" starts a comment). Returns where the next line starts, or
 * NULL with *why set. */
static const char *parse_value(const char *p, const char *end, char *out,
                               size_t outcap, const char **why)
{
    size_t o = 0;
    const char *eol;

    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p < end && (*p == '"' || *p == '\'')) {
        char q = *p++;
        while (p < end && *p != q) {
            char c = *p++;
            if (q == '"' && c == '\\' && p < end) {
                c = *p++;
                c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
            }
            if (o + 1 >= outcap) {
                *why = "value too long";
                return NULL;
            }
            out[o++] = c;
        }
        if (p >= end) {
            *why = "unterminated quote";
            return NULL;
        }
        p++;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
            p++;
        if (p < end && *p != '#' && *p != '\n') {
            *why = "text after the closing quote";
            return NULL;
        }
        out[o] = 0;
        eol = memchr(p, '\n', (size_t)(end - p));
        return eol ? eol + 1 : end;
    }
    eol = memchr(p, '\n', (size_t)(end - p));
    {
        const char *v = p, *le = eol ? eol : end, *e = v;
        while (e < le && !(*e == '#' && (e == v || e[-1] == ' ' || e[-1] == '\t')))
            e++;
        while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
            e--;
        if ((size_t)(e - v) + 1 > outcap) {
            *why = "value too long";
            return NULL;
        }
        memcpy(out, v, (size_t)(e - v));
        out[e - v] = 0;
    }
    return eol ? eol + 1 : end;
}

int thaw_devvars_parse(const char *text, size_t len, const char *file,
                       json_t *out, char *err, size_t errlen)
{
    const char *p = text, *end = text + len;
    int line = 1;
    static char value[65536];

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end, *eq, *k, *ke, *next, *c;
        const char *why = NULL;
        char name[256];

        k = p;
        while (k < le && (*k == ' ' || *k == '\t' || *k == '\r'))
            k++;
        if (k == le || *k == '#') {
            p = eol ? eol + 1 : end;
            line++;
            continue;
        }
        if (le - k > 7 && strncmp(k, "export ", 7) == 0)
            k += 7;
        eq = memchr(k, '=', (size_t)(le - k));
        if (!eq) {
            snprintf(err, errlen, "%s:%d: expected KEY=value, got a line without '='",
                     file, line);
            return -1;
        }
        ke = eq;
        while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t'))
            ke--;
        if (!name_ok(k, (size_t)(ke - k)) || (size_t)(ke - k) >= sizeof(name)) {
            snprintf(err, errlen, "%s:%d: \"%.*s\" is not a valid name (letters, digits "
                     "and _, not starting with a digit)", file, line,
                     (int)(ke - k > 64 ? 64 : ke - k), k);
            return -1;
        }
        memcpy(name, k, (size_t)(ke - k));
        name[ke - k] = 0;
        if (!(next = parse_value(eq + 1, end, value, sizeof(value), &why))) {
            snprintf(err, errlen, "%s:%d: %s in the value of %s", file, line, why, name);
            return -1;
        }
        json_object_set_new(out, name, json_string(value));
        for (c = p; c < next; c++)
            if (*c == '\n')
                line++;
        p = next;
    }
    return 0;
}

json_t *thaw_devvars_load(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    FILE *f;
    char *text = NULL;
    size_t len = 0, cap = 0, n;
    json_t *out;

    snprintf(path, sizeof(path), "%s/.dev.vars", dir);
    out = json_object();
    if (!(f = fopen(path, "r"))) {
        if (errno == ENOENT)
            return out;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        json_decref(out);
        return NULL;
    }
    for (;;) {
        if (len + 4096 > cap) {
            char *t = realloc(text, cap = cap ? cap * 2 : 8192);
            if (!t || cap > (1u << 20)) {
                free(t ? t : text);
                fclose(f);
                snprintf(err, errlen, "%s: over 1 MiB", path);
                json_decref(out);
                return NULL;
            }
            text = t;
        }
        n = fread(text + len, 1, cap - len, f);
        if (n == 0)
            break;
        len += n;
    }
    fclose(f);
    if (thaw_devvars_parse(text ? text : "", len, ".dev.vars", out, err, errlen) < 0) {
        json_decref(out);
        out = NULL;
    }
    free(text);
    return out;
}
