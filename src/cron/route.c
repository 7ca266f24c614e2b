/* The `/__scheduled?cron=...` route of `thaw dev` (sched.h): a request to
 * it becomes a scheduled event with that cron, run now. wrangler serves
 * the same under `--test-scheduled` (and `/cdn-cgi/handler/scheduled` in
 * its newer versions); thaw dev always does. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cron/sched.h"
#include "ipc/codec.h"

static const char *const PATHS[] = {"/__scheduled", "/cdn-cgi/handler/scheduled"};

static int route_on;

void thaw__cron_route_enable(void)
{
    route_on = 1;
}

static int hex(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = tolower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Decodes a query value (`+` is a space, %XX a byte) into out. */
static size_t decode(const char *p, size_t n, char *out, size_t cap)
{
    size_t i, k = 0;

    for (i = 0; i < n && k + 1 < cap; i++) {
        if (p[i] == '+') {
            out[k++] = ' ';
        } else if (p[i] == '%' && i + 2 < n && hex((unsigned char)p[i + 1]) >= 0 &&
                   hex((unsigned char)p[i + 2]) >= 0) {
            out[k++] = (char)(hex((unsigned char)p[i + 1]) * 16 + hex((unsigned char)p[i + 2]));
            i += 2;
        } else {
            out[k++] = p[i];
        }
    }
    out[k] = '\0';
    return k;
}

/* The decoded `cron` parameter of query q (n bytes); "" when absent, as
 * wrangler passes. */
static size_t cron_param(const char *q, size_t n, char *out, size_t cap)
{
    const char *end = q + n;

    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp ? amp : end;
        if (stop - q >= 5 && memcmp(q, "cron=", 5) == 0)
            return decode(q + 5, (size_t)(stop - q - 5), out, cap);
        q = amp ? amp + 1 : end;
    }
    out[0] = '\0';
    return 0;
}

int thaw_cron_http_head(struct thaw_buf *b, const char *url, size_t n)
{
    const char *path = url, *end = url + n, *q;
    char cron[1024], when[32];
    struct timespec ts;
    size_t i, plen, clen;
    int hit = 0;

    if (!route_on)
        return 0;
    if (n > 7 && (memcmp(url, "http://", 7) == 0 || memcmp(url, "https://", 8) == 0)) {
        path = memchr(url + 8, '/', n - 8); /* absolute-form: skip the authority */
        if (!path)
            return 0;
    }
    q = memchr(path, '?', (size_t)(end - path));
    plen = (size_t)((q ? q : end) - path);
    for (i = 0; i < sizeof(PATHS) / sizeof(PATHS[0]); i++)
        if (plen == strlen(PATHS[i]) && memcmp(path, PATHS[i], plen) == 0)
            hit = 1;
    if (!hit)
        return 0;
    clen = q ? cron_param(q + 1, (size_t)(end - q - 1), cron, sizeof(cron))
             : cron_param("", 0, cron, sizeof(cron));
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(when, sizeof(when), "%lld",
             (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    if (thaw_ipc_put_str(b, ":event") || thaw_ipc_put_str(b, "scheduled") ||
        thaw_ipc_put_str(b, ":cron") || thaw_ipc_put_field(b, cron, clen) ||
        thaw_ipc_put_str(b, ":scheduled-time") || thaw_ipc_put_str(b, when))
        return -1;
    return 0;
}
