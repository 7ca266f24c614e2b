#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind/httphead.h"

static json_t *latin1_json(const char *p, size_t n)
{
    char *s = malloc(n * 2 + 1), *o = s;
    json_t *j;
    size_t i;

    if (!s)
        return NULL;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x80) {
            *o++ = (char)c;
        } else {
            *o++ = (char)(0xc0 | (c >> 6));
            *o++ = (char)(0x80 | (c & 0x3f));
        }
    }
    j = json_stringn(s, (size_t)(o - s));
    free(s);
    return j;
}

int thaw_http_head_init(struct thaw_http_head *h, size_t max)
{
    memset(h, 0, sizeof(*h));
    h->max = max;
    h->headers = json_array();
    return h->headers ? 0 : -1;
}

void thaw_http_head_free(struct thaw_http_head *h)
{
    free(h->reason);
    json_decref(h->headers);
    memset(h, 0, sizeof(*h));
}

void thaw_http_head_reset(struct thaw_http_head *h)
{
    h->status = 0;
    free(h->reason);
    h->reason = NULL;
    json_array_clear(h->headers);
    h->bytes = 0;
    h->done = 0;
}

/* "HTTP/1.1 200 OK", "HTTP/2 200" */
static void status_line(struct thaw_http_head *h, const char *p, size_t n)
{
    const char *sp = memchr(p, ' ', n), *end = p + n;
    size_t keep = h->bytes;

    thaw_http_head_reset(h);
    h->bytes = keep; /* 1xx heads count too */
    if (!sp || end - sp < 4 || !isdigit((unsigned char)sp[1]) ||
        !isdigit((unsigned char)sp[2]) || !isdigit((unsigned char)sp[3]))
        return;
    h->status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
    sp += 4;
    while (sp < end && *sp == ' ')
        sp++;
    if (sp < end) {
        json_t *r = latin1_json(sp, (size_t)(end - sp));
        h->reason = r ? strdup(json_string_value(r)) : NULL;
        json_decref(r);
    }
}

/* An obsolete folded line continues the last value. */
static void fold(struct thaw_http_head *h, const char *p, size_t n)
{
    json_t *last = json_array_get(h->headers, json_array_size(h->headers) - 1);
    json_t *more;
    char *v;

    while (n && (*p == ' ' || *p == '\t'))
        p++, n--;
    more = latin1_json(p, n);
    if (more && asprintf(&v, "%s %s", json_string_value(json_array_get(last, 1)),
                         json_string_value(more)) > 0) {
        json_array_set_new(last, 1, json_string(v));
        free(v);
    }
    json_decref(more);
}

static void field(struct thaw_http_head *h, const char *p, size_t n)
{
    const char *colon = memchr(p, ':', n), *v, *e = p + n;
    json_t *name, *value;
    char *lower;
    size_t i;

    if (!colon || colon == p)
        return; /* not a field: curl would not pass it on either */
    lower = strndup(p, (size_t)(colon - p));
    if (!lower)
        return;
    for (i = 0; lower[i]; i++)
        lower[i] = (char)tolower((unsigned char)lower[i]);
    for (v = colon + 1; v < e && (*v == ' ' || *v == '\t'); v++)
        ;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    name = latin1_json(lower, strlen(lower));
    value = latin1_json(v, (size_t)(e - v));
    free(lower);
    if (name && value) {
        json_array_append_new(h->headers, json_pack("[oo]", name, value));
    } else {
        json_decref(name);
        json_decref(value);
    }
}

int thaw_http_head_line(struct thaw_http_head *h, const char *line, size_t n)
{
    size_t len = n;

    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        status_line(h, line, len);
        return THAW_HEAD_MORE;
    }
    if (h->done)
        return THAW_HEAD_MORE; /* trailers */
    if ((h->bytes += n) > h->max)
        return THAW_HEAD_TOOBIG;
    if (len == 0) {
        if (h->status < 200)
            return THAW_HEAD_MORE; /* 100 Continue and friends: the real head follows */
        h->done = 1;
        return THAW_HEAD_DONE;
    }
    if ((line[0] == ' ' || line[0] == '\t') && json_array_size(h->headers))
        fold(h, line, len);
    else
        field(h, line, len);
    return THAW_HEAD_MORE;
}

const char *thaw_http_head_get(const struct thaw_http_head *h, const char *name)
{
    size_t i;

    for (i = 0; i < json_array_size(h->headers); i++) {
        json_t *p = json_array_get(h->headers, i);
        if (strcmp(json_string_value(json_array_get(p, 0)), name) == 0)
            return json_string_value(json_array_get(p, 1));
    }
    return NULL;
}
