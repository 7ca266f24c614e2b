#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

void thaw_buf_init(struct thaw_buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

void thaw_buf_free(struct thaw_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int thaw_buf_reserve(struct thaw_buf *b, size_t extra)
{
    size_t need = b->len + extra, cap;
    char *p;

    if (need > b->max)
        return THAW_E_TOOBIG;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > b->max)
        cap = b->max;
    p = realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int thaw_buf_append(struct thaw_buf *b, const void *p, size_t n)
{
    int rc = thaw_buf_reserve(b, n);

    if (rc)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void thaw_buf_consume(struct thaw_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

int thaw_buf_vprintf(struct thaw_buf *b, const char *fmt, va_list ap)
{
    char line[8192];
    int n = vsnprintf(line, sizeof(line), fmt, ap);

    if (n <= 0)
        return 0;
    return thaw_buf_append(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

int thaw_buf_printf(struct thaw_buf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = thaw_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}
