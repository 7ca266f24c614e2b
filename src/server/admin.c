#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool/pool.h"
#include "server/admin.h"
#include "util/buf.h"

#define ADMIN_MAX_REQUEST 8192

struct admin_conn {
    uv_tcp_t tcp;
    struct thaw_admin *admin;
    http_parser parser;
    char url[256];
    size_t url_len;
    int done;
    char in[ADMIN_MAX_REQUEST];
};

struct admin_write {
    uv_write_t req;
    char *data;
};

static http_parser_settings settings;

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

static void on_written(uv_write_t *req, int status)
{
    struct admin_write *w = (struct admin_write *)req;

    free(w->data);
    uv_close((uv_handle_t *)req->handle, (uv_close_cb)free);
    free(w);
}

static void respond(struct admin_conn *c, int status, const char *ctype, char *body,
                    size_t n)
{
    struct admin_write *w = malloc(sizeof(*w));
    struct thaw_buf b;
    uv_buf_t ub;

    thaw_buf_init(&b, n + 512);
    thaw_buf_printf(&b, "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
                "connection: close\r\n\r\n",
            status, status == 200 ? "OK" : status == 404 ? "Not Found" : "Bad Request",
            ctype, n);
    thaw_buf_append(&b, body, n);
    free(body);
    if (!w) {
        thaw_buf_free(&b);
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    w->data = b.data;
    ub = uv_buf_init(b.data, (unsigned)b.len);
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &ub, 1, on_written)) {
        free(w->data);
        free(w);
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
    }
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct admin_conn *c = p->data;

    if (c->url_len + n >= sizeof(c->url))
        return -1;
    memcpy(c->url + c->url_len, at, n);
    c->url_len += n;
    c->url[c->url_len] = '\0';
    return 0;
}

static int on_complete(http_parser *p)
{
    struct admin_conn *c = p->data;
    char *q = strchr(c->url, '?');
    size_t n;

    if (q)
        *q = '\0';
    c->done = 1;
    if (p->method == HTTP_GET && strcmp(c->url, "/metrics") == 0) {
        char *text = thaw_admin_metrics(c->admin->worker, &n);
        respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", text, n);
    } else if (p->method == HTTP_GET && strcmp(c->url, "/healthz") == 0) {
        respond(c, 200, "text/plain", strdup("ok\n"), strlen("ok\n"));
    } else {
        static const char nf[] = "not found: try /metrics or /healthz\n";
        respond(c, 404, "text/plain", strdup(nf), strlen(nf));
    }
    return 1; /* one request per connection */
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct admin_conn *c = h->data;

    buf->base = c->in;
    buf->len = sizeof(c->in);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct admin_conn *c = s->data;

    if (nread < 0) {
        uv_close((uv_handle_t *)s, (uv_close_cb)free);
        return;
    }
    http_parser_execute(&c->parser, &settings, buf->base, (size_t)nread);
    if (!c->done && HTTP_PARSER_ERRNO(&c->parser) != HPE_OK)
        respond(c, 400, "text/plain", strdup("bad request\n"), strlen("bad request\n"));
}

static void on_connection(uv_stream_t *server, int status)
{
    struct thaw_admin *a = server->data;
    struct admin_conn *c;

    if (status < 0 || !(c = calloc(1, sizeof(*c))))
        return;
    c->admin = a;
    uv_tcp_init(a->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp)) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int thaw_admin_listen(struct thaw_admin *a, uv_loop_t *loop, const char *addr,
                      struct thaw_worker *w)
{
    struct sockaddr_storage sa;
    char host[128];
    const char *colon = strrchr(addr, ':');
    int port, rc;

    settings.on_url = on_url;
    settings.on_message_complete = on_complete;
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof(host))
        return UV_EINVAL;
    port = atoi(colon + 1);
    if (port <= 0 || port > 65535)
        return UV_EINVAL;
    snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
    if (host[0] == '[') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa);
    } else {
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&sa);
    }
    if (rc)
        return rc;
    a->loop = loop;
    a->worker = w;
    uv_tcp_init(loop, &a->listener);
    a->listener.data = a;
    if ((rc = uv_tcp_bind(&a->listener, (struct sockaddr *)&sa, 0)) ||
        (rc = uv_listen((uv_stream_t *)&a->listener, 64, on_connection))) {
        uv_close((uv_handle_t *)&a->listener, NULL);
        return rc;
    }
    a->listening = 1;
    return 0;
}

void thaw_admin_close(struct thaw_admin *a)
{
    if (a->listening) {
        uv_close((uv_handle_t *)&a->listener, NULL);
        a->listening = 0;
    }
}
