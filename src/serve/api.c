/* The admin API's HTTP side: a small server that reads one request per
 * connection, authenticates it, collects its body and hands it over. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "serve/api.h"
#include "util/log.h"

static http_parser_settings settings;

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 503: return "Service Unavailable";
    default: return status < 400 ? "OK" : "Error";
    }
}

int thaw_api_token_equal(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b), i;
    unsigned char diff = (unsigned char)(na != nb);

    /* time depends on the length of a (what the client sent), never on
     * where the first difference is */
    for (i = 0; i < na; i++)
        diff |= (unsigned char)a[i] ^ (unsigned char)b[nb ? i % nb : 0];
    return diff == 0;
}

static void free_req(uv_handle_t *h)
{
    struct thaw_api_req *r = h->data;

    thaw_buf_free(&r->body);
    free(r);
}

static void close_req(struct thaw_api_req *r)
{
    if (r->closed)
        return;
    r->closed = 1;
    if (r->on_gone)
        r->on_gone(r);
    uv_close((uv_handle_t *)&r->tcp, free_req);
}

struct api_write {
    uv_write_t req;
    char *data;
    int close_after;
};

static void on_written(uv_write_t *req, int status)
{
    struct api_write *w = (struct api_write *)req;
    struct thaw_api_req *r = req->handle->data;

    free(w->data);
    if ((status < 0 || w->close_after) && !r->closed)
        close_req(r);
    free(w);
}

/* Takes ownership of data (malloc'd). */
static void send_bytes(struct thaw_api_req *r, char *data, size_t n, int close_after)
{
    struct api_write *w;
    uv_buf_t b;

    if (r->closed || !(w = malloc(sizeof(*w)))) {
        free(data);
        return;
    }
    w->data = data;
    w->close_after = close_after;
    b = uv_buf_init(data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&r->tcp, &b, 1, on_written)) {
        free(data);
        free(w);
        close_req(r);
    }
}

void thaw_api_reply(struct thaw_api_req *r, int status, const char *ctype,
                    const char *body, size_t n)
{
    struct thaw_buf b;

    if (r->answered || r->closed)
        return;
    r->answered = 1;
    r->on_gone = NULL;
    thaw_buf_init(&b, n + 1024);
    if (thaw_buf_printf(&b, "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
                        "%sconnection: close\r\n\r\n", status, reason(status), ctype, n,
                        status == 401 ? "www-authenticate: Bearer\r\n" : "") ||
        thaw_buf_append(&b, body, n)) {
        thaw_buf_free(&b);
        close_req(r);
        return;
    }
    send_bytes(r, b.data, b.len, 1);
}

void thaw_api_reply_json(struct thaw_api_req *r, int status, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    size_t n = text ? strlen(text) : 0;

    json_decref(j);
    if (!text) {
        thaw_api_reply(r, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    text = realloc(text, n + 2);
    text[n++] = '\n';
    thaw_api_reply(r, status, "application/json", text, n);
    free(text);
}

void thaw_api_error(struct thaw_api_req *r, int status, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    thaw_api_reply_json(r, status, json_pack("{s:s}", "error", msg));
}

void thaw_api_stream_begin(struct thaw_api_req *r, const char *ctype)
{
    char head[256];
    int n;

    if (r->answered || r->closed)
        return;
    r->answered = r->streaming = 1;
    n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\ncontent-type: %s\r\n"
                 "transfer-encoding: chunked\r\ncache-control: no-cache\r\n"
                 "connection: close\r\n\r\n", ctype);
    send_bytes(r, strndup(head, (size_t)n), (size_t)n, 0);
}

void thaw_api_stream_write(struct thaw_api_req *r, const char *p, size_t n)
{
    struct thaw_buf b;

    if (!r->streaming || r->closed || n == 0)
        return;
    thaw_buf_init(&b, n + 64);
    if (thaw_buf_printf(&b, "%zx\r\n", n) || thaw_buf_append(&b, p, n) ||
        thaw_buf_append(&b, "\r\n", 2)) {
        thaw_buf_free(&b);
        return;
    }
    send_bytes(r, b.data, b.len, 0);
}

size_t thaw_api_stream_queued(struct thaw_api_req *r)
{
    return r->closed ? 0 : uv_stream_get_write_queue_size((uv_stream_t *)&r->tcp);
}

void thaw_api_stream_end(struct thaw_api_req *r)
{
    if (!r->streaming || r->closed)
        return;
    r->streaming = 0;
    r->on_gone = NULL;
    send_bytes(r, strdup("0\r\n\r\n"), 5, 1);
}

/* ---- parsing ---------------------------------------------------------- */

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct thaw_api_req *r = p->data;
    size_t len = strlen(r->path);

    if (len + n >= sizeof(r->path))
        return -1;
    memcpy(r->path + len, at, n);
    r->path[len + n] = '\0';
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct thaw_api_req *r = p->data;

    if (r->in_auth == 2)
        r->header[0] = '\0'; /* a new header begins */
    r->in_auth = 1;
    if (strlen(r->header) + n < sizeof(r->header))
        strncat(r->header, at, n);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct thaw_api_req *r = p->data;
    size_t len = strlen(r->auth);

    r->in_auth = 2;
    if (strcasecmp(r->header, "authorization") != 0)
        return 0;
    if (len + n >= sizeof(r->auth))
        return -1;
    memcpy(r->auth + len, at, n);
    r->auth[len + n] = '\0';
    return 0;
}

static int authorized(struct thaw_api_req *r)
{
    const char *a = r->auth;

    if (strncasecmp(a, "Bearer ", 7) != 0)
        return 0;
    a += 7;
    while (*a == ' ')
        a++;
    return thaw_api_token_equal(a, r->api->token);
}

static int on_headers_complete(http_parser *p)
{
    struct thaw_api_req *r = p->data;
    char *q = strchr(r->path, '?');
    char body[512];
    int status;

    if (q) {
        snprintf(r->query, sizeof(r->query), "%s", q + 1);
        *q = '\0';
    }
    r->method = p->method;
    if (p->method == HTTP_GET && r->api->probe &&
        (status = r->api->probe(r->path, body, sizeof(body), r->api->data)) > 0) {
        thaw_api_reply(r, status, "text/plain", body, strlen(body));
        return -1;
    }
    if (!authorized(r)) {
        thaw_log("admin API: 401 for %s %s from %s: %s", http_method_str(p->method), r->path,
                 r->peer, r->auth[0] ? "bad token" : "no Authorization header");
        thaw_api_error(r, 401, "missing or bad API token: send `Authorization: Bearer "
                       "TOKEN` (THAW_API_TOKEN, or the token file in the state directory)");
        return -1;
    }
    if (p->content_length != ULLONG_MAX && p->content_length > (uint64_t)r->api->max_body) {
        thaw_api_error(r, 413, "the request body is over the limit of %lld bytes",
                       r->api->max_body);
        return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct thaw_api_req *r = p->data;

    if (thaw_buf_append(&r->body, at, n)) {
        thaw_api_error(r, 413, "the request body is over the limit of %lld bytes",
                       r->api->max_body);
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct thaw_api_req *r = p->data;

    r->complete = 1;
    r->api->handler(r, r->api->data);
    return -1; /* one request per connection: stop parsing */
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char slab[65536];

    buf->base = slab;
    buf->len = sizeof(slab);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct thaw_api_req *r = s->data;

    if (nread < 0) {
        close_req(r); /* the client left (or finished reading a stream) */
        return;
    }
    if (r->complete || r->answered || nread == 0)
        return; /* after the request: only EOF matters */
    http_parser_execute(&r->parser, &settings, buf->base, (size_t)nread);
    if (!r->complete && !r->answered && HTTP_PARSER_ERRNO(&r->parser) != HPE_OK)
        thaw_api_error(r, 400, "malformed request (%s)",
                       http_errno_description(HTTP_PARSER_ERRNO(&r->parser)));
}

static void on_connection(uv_stream_t *server, int status)
{
    struct thaw_api *a = server->data;
    struct thaw_api_req *r;
    struct sockaddr_storage sa;
    int len = sizeof(sa);

    if (status < 0 || !(r = calloc(1, sizeof(*r))))
        return;
    r->api = a;
    uv_tcp_init(a->loop, &r->tcp);
    r->tcp.data = r;
    if (uv_accept(server, (uv_stream_t *)&r->tcp)) {
        uv_close((uv_handle_t *)&r->tcp, (uv_close_cb)free);
        return;
    }
    if (uv_tcp_getpeername(&r->tcp, (struct sockaddr *)&sa, &len) == 0) {
        if (sa.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&sa, r->peer, sizeof(r->peer));
        else
            uv_ip4_name((struct sockaddr_in *)&sa, r->peer, sizeof(r->peer));
    }
    thaw_buf_init(&r->body, (size_t)a->max_body);
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = r;
    uv_read_start((uv_stream_t *)&r->tcp, on_alloc, on_read);
}

int thaw_api_listen(struct thaw_api *a, uv_loop_t *loop, const char *addr)
{
    struct sockaddr_storage sa;
    char host[128];
    const char *colon = strrchr(addr, ':');
    int port, rc;

    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
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
    uv_tcp_init(loop, &a->listener);
    a->listener.data = a;
    if ((rc = uv_tcp_bind(&a->listener, (struct sockaddr *)&sa, 0)) ||
        (rc = uv_listen((uv_stream_t *)&a->listener, 128, on_connection))) {
        uv_close((uv_handle_t *)&a->listener, NULL);
        return rc;
    }
    a->listening = 1;
    return 0;
}

void thaw_api_close(struct thaw_api *a)
{
    if (a->listening) {
        uv_close((uv_handle_t *)&a->listener, NULL);
        a->listening = 0;
    }
}
