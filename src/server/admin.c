/* The dev admin port: its routes on the shared HTTP/1 core (h1-conn.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "do/alarms.h"
#include "do/live.h"
#include "do/ws.h"
#include "pool/pool.h"
#include "server/admin.h"
#include "util/buf.h"

/* it takes no bodies; a small one is read and dropped */
#define ADMIN_MAX_BODY 65536

static void label(char *out, size_t n, const char *s)
{
    size_t k = 0;

    for (; s && *s && k + 3 < n; s++) {
        if (*s == '"' || *s == '\\')
            out[k++] = '\\';
        out[k++] = *s == '\n' ? ' ' : *s;
    }
    out[k] = '\0';
}

static long long self_rss_bytes(void)
{
    char buf[4096];
    FILE *f = fopen("/proc/self/status", "r");
    long long kb = 0;

    if (!f)
        return 0;
    while (fgets(buf, sizeof(buf), f))
        if (sscanf(buf, "VmRSS: %lld kB", &kb) == 1)
            break;
    fclose(f);
    return kb * 1024;
}

/* Prometheus wants every series of a family together: each family is
 * written for all workers before the next one starts. */
char *thaw_admin_metrics_many(struct thaw_worker **ws, int n, size_t *len)
{
    static const double le[] = THAW_LATENCY_BUCKETS;
    struct thaw_worker_stats *st = calloc(n > 0 ? (size_t)n : 1, sizeof(*st));
    char (*names)[256] = calloc(n > 0 ? (size_t)n : 1, sizeof(*names));
    struct thaw_buf b;
    int i, k;

    /* about 3 kB per worker; the cap only guards against a runaway */
    thaw_buf_init(&b, (1 << 20) + (size_t)n * 8192);
    for (k = 0; k < n && st && names; k++) {
        label(names[k], sizeof(names[k]), ws[k]->cfg.name ? ws[k]->cfg.name : "");
        thaw_worker_stats(ws[k], &st[k]);
    }
    if (!st || !names)
        n = 0;

    thaw_buf_printf(&b, "# HELP thaw_requests_total Requests answered, by status code (0: cut short, "
                "499: the client left).\n# TYPE thaw_requests_total counter\n");
    for (k = 0; k < n; k++)
        for (i = 0; i < 600; i++)
            if (ws[k]->metrics.by_status[i])
                thaw_buf_printf(&b, "thaw_requests_total{worker=\"%s\",status=\"%d\"} %llu\n",
                        names[k], i, (unsigned long long)ws[k]->metrics.by_status[i]);
    thaw_buf_printf(&b, "# HELP thaw_request_duration_seconds Request to complete response, in "
                "the supervisor.\n# TYPE thaw_request_duration_seconds histogram\n");
    for (k = 0; k < n; k++) {
        const struct thaw_metrics *m = &ws[k]->metrics;
        uint64_t cum = 0;
        for (i = 0; i <= THAW_N_LATENCY_BUCKETS; i++) {
            cum += m->latency[i];
            if (i < THAW_N_LATENCY_BUCKETS)
                thaw_buf_printf(&b, "thaw_request_duration_seconds_bucket{worker=\"%s\",le=\"%g\"} %llu\n",
                        names[k], le[i], (unsigned long long)cum);
            else
                thaw_buf_printf(&b, "thaw_request_duration_seconds_bucket{worker=\"%s\",le=\"+Inf\"} %llu\n",
                        names[k], (unsigned long long)cum);
        }
        thaw_buf_printf(&b, "thaw_request_duration_seconds_sum{worker=\"%s\"} %.6f\n", names[k],
                m->latency_sum);
        thaw_buf_printf(&b, "thaw_request_duration_seconds_count{worker=\"%s\"} %llu\n", names[k],
                (unsigned long long)m->latency_count);
    }
    thaw_buf_printf(&b, "# HELP thaw_starts_total How requests found their instance: warm (it "
                "served before), fork (its first request: a cold start), and template "
                "builds.\n# TYPE thaw_starts_total counter\n");
    for (k = 0; k < n; k++) {
        const struct thaw_metrics *m = &ws[k]->metrics;
        thaw_buf_printf(&b, "thaw_starts_total{worker=\"%s\",kind=\"warm\"} %llu\n", names[k],
                (unsigned long long)m->starts_warm);
        thaw_buf_printf(&b, "thaw_starts_total{worker=\"%s\",kind=\"fork\"} %llu\n", names[k],
                (unsigned long long)m->starts_fork);
        thaw_buf_printf(&b, "thaw_starts_total{worker=\"%s\",kind=\"template_build\"} %llu\n",
                names[k], (unsigned long long)m->template_builds);
    }
    thaw_buf_printf(&b, "# HELP thaw_routing_total Routing: requests that waited in the queue "
                "for an instance, busy instances passed over as blocked, the "
                "/proc/PID/syscall reads that decided it, and requests packed onto an "
                "instance busy with others (cheap requests: no other instance woken)."
                "\n# TYPE thaw_routing_total counter\n");
    for (k = 0; k < n; k++) {
        const struct thaw_metrics *m = &ws[k]->metrics;
        thaw_buf_printf(&b, "thaw_routing_total{worker=\"%s\",kind=\"queued\"} %llu\n", names[k],
                (unsigned long long)m->queued);
        thaw_buf_printf(&b, "thaw_routing_total{worker=\"%s\",kind=\"blocked_skip\"} %llu\n",
                names[k], (unsigned long long)m->blocked_skips);
        thaw_buf_printf(&b, "thaw_routing_total{worker=\"%s\",kind=\"syscall_read\"} %llu\n",
                names[k], (unsigned long long)m->syscall_reads);
        thaw_buf_printf(&b, "thaw_routing_total{worker=\"%s\",kind=\"packed\"} %llu\n",
                names[k], (unsigned long long)m->packed);
    }
    thaw_buf_printf(&b, "# HELP thaw_template_evictions_total Templates evicted after "
                "template_idle_timeout_ms without traffic.\n"
                "# TYPE thaw_template_evictions_total counter\n");
    for (k = 0; k < n; k++)
        thaw_buf_printf(&b, "thaw_template_evictions_total{worker=\"%s\"} %llu\n", names[k],
                (unsigned long long)ws[k]->metrics.template_evictions);
    thaw_buf_printf(&b, "# HELP thaw_instances Live instances.\n# TYPE thaw_instances gauge\n");
    for (k = 0; k < n; k++)
        thaw_buf_printf(&b, "thaw_instances{worker=\"%s\"} %d\n", names[k], st[k].instances);
    thaw_buf_printf(&b, "# HELP thaw_templates Template processes up (0: cold).\n"
                "# TYPE thaw_templates gauge\n");
    for (k = 0; k < n; k++)
        thaw_buf_printf(&b, "thaw_templates{worker=\"%s\"} %d\n", names[k], st[k].templates);
    thaw_buf_printf(&b, "# HELP thaw_queued_requests Requests waiting for an instance.\n"
                "# TYPE thaw_queued_requests gauge\n");
    for (k = 0; k < n; k++)
        thaw_buf_printf(&b, "thaw_queued_requests{worker=\"%s\"} %d\n", names[k], st[k].queued);
    thaw_buf_printf(&b, "# HELP thaw_do_objects Durable Objects live in memory (an event "
                "within durable_object_idle_timeout_ms, host alive).\n"
                "# TYPE thaw_do_objects gauge\n");
    for (k = 0; k < n; k++)
        thaw_buf_printf(&b, "thaw_do_objects{worker=\"%s\"} %d\n", names[k],
                        thaw_do_live_count(ws[k]));
    thaw_buf_printf(&b, "# HELP thaw_do_alarms Durable Objects with an alarm armed.\n"
                "# TYPE thaw_do_alarms gauge\n");
    for (k = 0; k < n; k++)
        thaw_buf_printf(&b, "thaw_do_alarms{worker=\"%s\"} %d\n", names[k],
                        thaw_do_alarms_armed(ws[k]));
    thaw_buf_printf(&b, "# HELP thaw_do_websockets Durable Objects' hibernatable WebSockets "
                "open (ctx.acceptWebSocket): held by the supervisor whether or not their "
                "object is in memory.\n# TYPE thaw_do_websockets gauge\n");
    for (k = 0; k < n; k++)
        thaw_buf_printf(&b, "thaw_do_websockets{worker=\"%s\"} %d\n", names[k],
                        thaw_do_ws_open(ws[k]));
    thaw_buf_printf(&b, "# HELP thaw_memory_bytes Memory: the supervisor's RSS, and the private "
                "(unshared) memory of a worker's instances.\n# TYPE thaw_memory_bytes gauge\n");
    thaw_buf_printf(&b, "thaw_memory_bytes{process=\"supervisor\"} %lld\n", self_rss_bytes());
    for (k = 0; k < n; k++)
        thaw_buf_printf(&b, "thaw_memory_bytes{worker=\"%s\",process=\"instances\"} %lld\n",
                names[k], st[k].private_kb * 1024);
    free(st);
    free(names);
    *len = b.len;
    return b.data;
}

char *thaw_admin_metrics(struct thaw_worker *w, size_t *len)
{
    return thaw_admin_metrics_many(&w, 1, len);
}

/* ---- routing: GET /metrics and /healthz -------------------------------- */

/* Answered once the request is in (a body it takes none of is read under
 * the body clock and dropped). */
static int on_body_end(struct thaw_h1_conn *c)
{
    struct thaw_admin *a = c->srv->data;
    size_t n = c->head.url.len;
    const char *q = memchr(c->head.url.data, '?', n);

    if (q)
        n = (size_t)(q - c->head.url.data);
#define IS(path) (n == sizeof(path) - 1 && memcmp(c->head.url.data, path, n) == 0)
    if (c->parser.method == HTTP_GET && IS("/metrics")) {
        size_t len;
        char *text = thaw_admin_metrics(a->worker, &len);
        thaw_h1_reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, text, len);
        free(text);
    } else if (c->parser.method == HTTP_GET && IS("/healthz")) {
        thaw_h1_reply(c, 200, "text/plain", NULL, "ok\n", 3);
    } else {
        static const char nf[] = "not found: try /metrics or /healthz\n";
        thaw_h1_reply(c, 404, "text/plain", NULL, nf, sizeof(nf) - 1);
    }
#undef IS
    return 0;
}

static const struct thaw_h1_ops admin_ops = {
    .on_body_end = on_body_end,
};

int thaw_admin_listen(struct thaw_admin *a, uv_loop_t *loop, const char *addr,
                      struct thaw_worker *w)
{
    a->worker = w;
    a->srv = (struct thaw_h1_server){
        .limits = &w->limits, .max_body = ADMIN_MAX_BODY, .max_conns = THAW_ADMIN_MAX_CONNS,
        .ops = &admin_ops, .conn_size = sizeof(struct thaw_h1_conn), .data = a,
    };
    return thaw_h1_server_listen_addr(&a->srv, loop, addr);
}

void thaw_admin_close(struct thaw_admin *a)
{
    thaw_h1_server_close(&a->srv);
}
