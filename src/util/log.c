#include <stdio.h>
#include <string.h>

#include "util/log.h"

void thaw_log(const char *fmt, ...)
{
    char line[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
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
