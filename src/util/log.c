#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

static char pending[256 * 1024];
static size_t pending_len;

void thaw_log_flush(void)
{
    size_t off = 0;

    while (off < pending_len) {
        ssize_t n = write(2, pending + off, pending_len - off);
        if (n <= 0)
            break; /* a log that cannot be written is not worth a stall */
        off += (size_t)n;
    }
    pending_len = 0;
}

void thaw_log_buffered(const char *line, size_t len)
{
    if (pending_len + len + 1 > sizeof(pending))
        thaw_log_flush();
    if (len + 1 > sizeof(pending))
        return;
    memcpy(pending + pending_len, line, len);
    pending[pending_len + len] = '\n';
    pending_len += len + 1;
}

void thaw_log(const char *fmt, ...)
{
    char line[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    thaw_log_flush(); /* keep the order of buffered and direct lines */
    fprintf(stderr, "[thaw] %s\n", line);
    fflush(stderr);
}

void thaw_log_block(const char *tag, const char *text, size_t len)
{
    const char *p = text, *end = text + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        fprintf(stderr, "[%s] %.*s\n", tag, (int)n, p);
        p += n + (nl ? 1 : 0);
    }
    fflush(stderr);
}
