#include <errno.h>
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
