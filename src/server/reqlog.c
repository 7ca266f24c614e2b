/* The request log: one JSON line per finished request on thaw's log, and
 * the worker's metrics counted at the same place. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/conn.h"
#include "util/log.h"

static const double buckets[] = THAW_LATENCY_BUCKETS;

/* Copies s into out as the inside of a JSON string. */
static void json_escape(char *out, size_t n, const char *s)
{
    size_t k = 0;

    for (; *s && k + 7 < n; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[k++] = '\\';
            out[k++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            k += (size_t)snprintf(out + k, n - k, "\\u%04x", ch);
        } else {
            out[k++] = (char)ch;
        }
    }
    out[k] = '\0';
}

void thaw__conn_log_request(struct conn *c, int status)
{
    struct thaw_worker *w = c->worker ? c->worker : c->srv->worker;
    struct thaw_metrics *m = &w->metrics;
    double secs = (double)(uv_hrtime() - c->req_start_ns) / 1e9;
    char line[1024], path[600], name[200], when[40];
    struct timespec ts;
    struct tm tm;
    int i, n;

    if (!c->req_start_ns)
        return; /* logged already */
    c->req_start_ns = 0;

    m->by_status[status >= 0 && status < 600 ? status : 0]++;
    for (i = 0; i < THAW_N_LATENCY_BUCKETS && secs > buckets[i]; i++)
        ;
    m->latency[i]++;
    m->latency_sum += secs;
    m->latency_count++;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    json_escape(path, sizeof(path), c->req_path);
    json_escape(name, sizeof(name), w->cfg.name ? w->cfg.name : "");
    n = snprintf(line, sizeof(line),
                 "{\"time\":\"%s.%03ldZ\",\"worker\":\"%s\",\"method\":\"%s\","
                 "\"path\":\"%s\",\"status\":%d,\"duration_ms\":%.3f,\"start\":\"%s\","
                 "\"instance\":%u,\"request\":%u}",
                 when, ts.tv_nsec / 1000000, name, c->req_method, path, status, secs * 1e3,
                 c->ex.inst_id ? (c->ex.cold ? "cold" : "warm") : "none", c->ex.inst_id,
                 c->ex.sid);
    if (n > 0)
        thaw_log_buffered(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    if (n > 0 && w->on_log)
        w->on_log(w, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}
