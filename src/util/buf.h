/* A growable byte buffer with a maximum fixed at birth (STYLE.md habit 5):
 * growing past the maximum is a distinct error the caller turns into
 * 413/431, never a crash. */
#ifndef THAW_BUF_H
#define THAW_BUF_H

#include <stdarg.h>
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
/* Appends formatted text (at most 8 KiB a call). 0, THAW_E_TOOBIG or
 * -ENOMEM. */
int thaw_buf_printf(struct thaw_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int thaw_buf_vprintf(struct thaw_buf *b, const char *fmt, va_list ap);
/* Drops the first n bytes. */
void thaw_buf_consume(struct thaw_buf *b, size_t n);

#endif
