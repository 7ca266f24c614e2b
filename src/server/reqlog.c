/* The request log: one JSON line per finished request on thaw's log, and
 * the worker's metrics counted at the same place.
 *
 * The line is built by hand into a stack buffer (no printf: at tens of
 * thousands of requests a second the formatting showed in the
 * supervisor's profile), its timestamp's seconds formatted once per
 * second, and handed to the buffered log (util/log.h), which writes every
 * line of a loop iteration in one write. `--access-log off` (limits
 * access_log) skips the line; the metrics are still counted, and thaw
 * serve's `tail` streams (on_log) still get their lines. */
#include <string.h>
#include <time.h>

#include "server/conn.h"
#include "util/log.h"

static const double buckets[] = THAW_LATENCY_BUCKETS;

struct line {
    char *p;
    size_t n, cap;
};

static void put(struct line *l, const char *s, size_t n)
{
    if (n > l->cap - l->n)
        n = l->cap - l->n;
    memcpy(l->p + l->n, s, n);
    l->n += n;
}

#define PUT_LIT(l, s) put((l), (s), sizeof(s) - 1)

/* Unsigned decimal, at least `width` digits (zero-padded). */
static void put_uint(struct line *l, unsigned long long v, int width)
{
    char d[24];
    int k = 0;

    do {
        d[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v || k < width);
    while (k && l->n < l->cap)
        l->p[l->n++] = d[--k];
}

/* s as the inside of a JSON string, cut to at most `room` bytes of output
 * (so the line around it stays whole and valid). */
static void put_escaped(struct line *l, const char *s, size_t room)
{
    static const char hex[] = "0123456789abcdef";
    size_t k, end = l->n + room < l->cap ? l->n + room : l->cap;

    for (k = 0; s[k] && l->n + 6 <= end; k++) {
        unsigned char ch = (unsigned char)s[k];
        if (ch == '"' || ch == '\\') {
            l->p[l->n++] = '\\';
            l->p[l->n++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            char u[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            put(l, u, 6);
        } else {
            l->p[l->n++] = (char)ch;
        }
    }
}

/* "2026-12-06T09:21:50", formatted again only when the second changes. */
static const char *when_text(time_t sec)
{
    static char when[32];
    static time_t when_sec = (time_t)-1;
    struct tm tm;

    if (sec != when_sec) {
        gmtime_r(&sec, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
        when_sec = sec;
    }
    return when;
}

void thaw__conn_log_request(struct conn *c, int status)
{
    struct thaw_worker *w = c->worker ? c->worker : c->srv->worker;
    struct thaw_metrics *m = &w->metrics;
    uint64_t ns = uv_hrtime() - c->req_start_ns, us;
    double secs = (double)ns / 1e9;
    char buf[1024];
    struct line l = {buf, 0, sizeof(buf)};
    struct timespec ts;
    int i, on;

    if (!c->req_start_ns)
        return; /* logged already */
    c->req_start_ns = 0;

    m->by_status[status >= 0 && status < 600 ? status : 0]++;
    for (i = 0; i < THAW_N_LATENCY_BUCKETS && secs > buckets[i]; i++)
        ;
    m->latency[i]++;
    m->latency_sum += secs;
    m->latency_count++;

    /* the server's own setting (thaw serve: its command line) */
    on = c->srv->worker->limits.access_log != 0;
    if (!on && !w->on_log)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    PUT_LIT(&l, "{\"time\":\"");
    put(&l, when_text(ts.tv_sec), 19);
    PUT_LIT(&l, ".");
    put_uint(&l, (unsigned long long)(ts.tv_nsec / 1000000), 3);
    PUT_LIT(&l, "Z\",\"worker\":\"");
    put_escaped(&l, w->cfg.name ? w->cfg.name : "", 200);
    PUT_LIT(&l, "\",\"method\":\"");
    put(&l, c->req_method, strnlen(c->req_method, sizeof(c->req_method)));
    PUT_LIT(&l, "\",\"path\":\"");
    put_escaped(&l, c->req_path, 600);
    PUT_LIT(&l, "\",\"status\":");
    put_uint(&l, (unsigned long long)(status >= 0 ? status : 0), 1);
    /* milliseconds with three decimals, rounded to the microsecond */
    us = (ns + 500) / 1000;
    PUT_LIT(&l, ",\"duration_ms\":");
    put_uint(&l, us / 1000, 1);
    PUT_LIT(&l, ".");
    put_uint(&l, us % 1000, 3);
    PUT_LIT(&l, ",\"start\":\"");
    if (!c->ex.inst_id)
        PUT_LIT(&l, "none");
    else if (c->ex.cold)
        PUT_LIT(&l, "cold");
    else
        PUT_LIT(&l, "warm");
    PUT_LIT(&l, "\",\"instance\":");
    put_uint(&l, c->ex.inst_id, 1);
    PUT_LIT(&l, ",\"request\":");
    put_uint(&l, c->ex.sid, 1);
    PUT_LIT(&l, "}");
    if (on)
        thaw_log_buffered(l.p, l.n);
    if (w->on_log)
        w->on_log(w, l.p, l.n);
}
