#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

/* Pass 1 blanks comments, pass 2 blanks commas that precede a closing
 * bracket; strings are copied untouched in both. */
static int strip_comments(char *s, size_t len, char *err, size_t errlen)
{
    size_t i = 0;
    int line = 1;

    while (i < len) {
        char ch = s[i];
        if (ch == '\n')
            line++;
        if (ch == '"') {
            i++;
            while (i < len && s[i] != '"') {
                if (s[i] == '\\' && i + 1 < len)
                    i++;
                else if (s[i] == '\n')
                    line++;
                i++;
            }
            i++;
        } else if (ch == '/' && i + 1 < len && s[i + 1] == '/') {
            while (i < len && s[i] != '\n')
                s[i++] = ' ';
        } else if (ch == '/' && i + 1 < len && s[i + 1] == '*') {
            int start = line;
            s[i++] = ' ';
            s[i++] = ' ';
            while (i < len && !(s[i] == '*' && i + 1 < len && s[i + 1] == '/')) {
                if (s[i] == '\n')
                    line++;
                else
                    s[i] = ' ';
                i++;
            }
            if (i >= len) {
                snprintf(err, errlen,
                         "line %d: a /* comment is never closed with */", start);
                return -1;
            }
            s[i++] = ' ';
            s[i++] = ' ';
        } else {
            i++;
        }
    }
    return 0;
}

static void strip_trailing_commas(char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        if (s[i] == '"') {
            i++;
            while (i < len && s[i] != '"') {
                if (s[i] == '\\' && i + 1 < len)
                    i++;
                i++;
            }
            i++;
        } else if (s[i] == ',') {
            size_t j = i + 1;
            while (j < len && strchr(" \t\r\n", s[j]))
                j++;
            if (j < len && (s[j] == '}' || s[j] == ']'))
                s[i] = ' ';
            i++;
        } else {
            i++;
        }
    }
}

int thaw_jsonc_to_json(const char *in, size_t len, char **out, char *err,
                       size_t errlen)
{
    char *s = malloc(len + 1);

    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(s, in, len);
    s[len] = '\0';
    if (strip_comments(s, len, err, errlen)) {
        free(s);
        return -1;
    }
    strip_trailing_commas(s, len);
    *out = s;
    return 0;
}
