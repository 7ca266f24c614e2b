/* Reading a request head from http-parser's callbacks, for every port:
 * the target, each header whole with its name in lower case, the bytes
 * counted against max_header (431 over it), Host headers counted. */
#include <ctype.h>

#include "server/h1.h"

void thaw_h1_head_init(struct thaw_h1_head *h, size_t max, thaw_h1_header_cb on_header)
{
    thaw_buf_init(&h->url, max + 1);
    thaw_buf_init(&h->field, max + 1);
    thaw_buf_init(&h->value, max + 1);
    h->on_header = on_header;
    thaw_h1_head_reset(h, max);
}

void thaw_h1_head_reset(struct thaw_h1_head *h, size_t max)
{
    h->url.len = h->field.len = h->value.len = 0;
    h->last_was_value = 0;
    h->bytes = 0;
    h->max = max;
    h->hosts = 0;
}

void thaw_h1_head_free(struct thaw_h1_head *h)
{
    thaw_buf_free(&h->url);
    thaw_buf_free(&h->field);
    thaw_buf_free(&h->value);
}

static int add(struct thaw_h1_head *h, struct thaw_buf *b, const char *at, size_t n)
{
    h->bytes += n;
    if (h->bytes > h->max || thaw_buf_append(b, at, n))
        return -1;
    return 0;
}

int thaw_h1_head_url(struct thaw_h1_head *h, const char *at, size_t n)
{
    return add(h, &h->url, at, n);
}

/* The header whose name and value are collected goes to the owner. */
static int finish(struct thaw_h1_head *h)
{
    char *name = h->field.data;
    size_t i, n = h->field.len;
    int rc;

    if (!n)
        return 0;
    for (i = 0; i < n; i++)
        name[i] = (char)tolower((unsigned char)name[i]);
    if (n == 4 && name[0] == 'h' && name[1] == 'o' && name[2] == 's' && name[3] == 't')
        h->hosts++;
    rc = h->on_header(h, name, n, h->value.data, h->value.len);
    h->field.len = h->value.len = 0;
    return rc;
}

int thaw_h1_head_field(struct thaw_h1_head *h, const char *at, size_t n)
{
    if (h->last_was_value && finish(h))
        return -1;
    h->last_was_value = 0;
    return add(h, &h->field, at, n);
}

int thaw_h1_head_value(struct thaw_h1_head *h, const char *at, size_t n)
{
    h->last_was_value = 1;
    return add(h, &h->value, at, n);
}

int thaw_h1_head_done(struct thaw_h1_head *h)
{
    return finish(h);
}
