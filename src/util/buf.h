/* A growable byte buffer with a maximum fixed at birth (STYLE.md habit 5):
 * growing past the maximum is a distinct error the caller turns into
 * 413/431, never a crash. */
#ifndef THAW_BUF_H
#define THAW_BUF_H

#include <stddef.h>

struct thaw_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};

#define THAW_E_TOOBIG (-7001)

void thaw_buf_init(struct thaw_buf *b, size_t max);
void thaw_buf_free(struct thaw_buf *b);
/* 0, THAW_E_TOOBIG or -ENOMEM */
int thaw_buf_append(struct thaw_buf *b, const void *p, size_t n);
int thaw_buf_reserve(struct thaw_buf *b, size_t extra);
/* Drops the first n bytes. */
void thaw_buf_consume(struct thaw_buf *b, size_t n);

#endif
