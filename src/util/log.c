#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

/* Request lines of one loop iteration (or until this fills: a flush then,
 * so a write carries at most this much). */
static char pending[256 * 1024];
static size_t pending_len;
static int flush_at_exit;

void thaw_log_flush(void)
{
    size_t off = 0;

    while (off < pending_len) {
        ssize_t n = write(2, pending + off, pending_len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            /* a non-blocking stderr (a pipe someone else set so) that is
             * full: wait for its reader a while rather than lose lines */
            struct pollfd p = {.fd = 2, .events = POLLOUT};
            if (poll(&p, 1, 1000) > 0)
                continue;
        }
        if (n <= 0)
            break; /* gone (EPIPE, EBADF) or stuck for a second: give up */
        off += (size_t)n;
    }
    pending_len = 0;
}

static void flush_on_exit(void)
{
    thaw_log_flush();
}

void thaw_log_buffered(const char *line, size_t len)
{
    if (!flush_at_exit) {
        flush_at_exit = 1;
        atexit(flush_on_exit); /* exit() from anywhere loses no line */
    }
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
