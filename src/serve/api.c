/* The admin API's HTTP side: its routing of a request on the shared
 * HTTP/1 core (server/h1-conn.h): probes, authentication, then the
 * handler with the whole body. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "serve/api.h"
#include "util/log.h"

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

void thaw_api_reply(struct thaw_api_req *r, int status, const char *ctype,
                    const char *body, size_t n)
{
    r->on_gone = NULL;
    thaw_h1_reply(&r->h1, status, ctype, status == 401 ? "www-authenticate: Bearer\r\n" : NULL,
                  body, n);
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
    thaw_h1_stream_begin(&r->h1, ctype);
}

void thaw_api_stream_write(struct thaw_api_req *r, const char *p, size_t n)
{
    thaw_h1_body(&r->h1, p, n);
}

size_t thaw_api_stream_queued(struct thaw_api_req *r)
{
    return thaw_h1_queued(&r->h1);
}

void thaw_api_stream_end(struct thaw_api_req *r)
{
    r->on_gone = NULL;
    thaw_h1_done(&r->h1);
}

/* ---- routing ---------------------------------------------------------- */

static struct thaw_api_req *req_of(struct thaw_h1_conn *c)
{
    return (struct thaw_api_req *)c;
}

static void on_begin(struct thaw_h1_conn *c)
{
    struct thaw_api_req *r = req_of(c);

    r->api = c->srv->data;
    r->path[0] = r->query[0] = r->auth[0] = '\0';
    r->auth_over = 0;
    r->pending = NULL;
    r->on_gone = NULL;
    r->next_sub = NULL;
    r->dropped = 0;
    thaw_buf_free(&r->body); /* a refused request's */
    thaw_buf_init(&r->body, (size_t)thaw_h1_max_body(c->srv));
}

static int on_header(struct thaw_h1_conn *c, const char *name, size_t nlen,
                     const char *value, size_t vlen)
{
    struct thaw_api_req *r = req_of(c);

    if (nlen != 13 || memcmp(name, "authorization", 13) != 0)
        return 0;
    if (vlen >= sizeof(r->auth))
        r->auth_over = 1; /* cannot be our token */
    else
        snprintf(r->auth, sizeof(r->auth), "%.*s", (int)vlen, value);
    return 0;
}

static int authorized(struct thaw_api_req *r)
{
    const char *a = r->auth;

    if (r->auth_over || strncasecmp(a, "Bearer ", 7) != 0)
        return 0;
    a += 7;
    while (*a == ' ')
        a++;
    return thaw_api_token_equal(a, r->api->token);
}

/* Probes and authentication are answered before any body is read. */
static int on_head(struct thaw_h1_conn *c)
{
    struct thaw_api_req *r = req_of(c);
    struct thaw_api *a = r->api;
    size_t n = c->head.url.len;
    const char *q = memchr(c->head.url.data, '?', n);
    char body[512];
    int status;

    if (q) {
        snprintf(r->query, sizeof(r->query), "%.*s", (int)(c->head.url.data + n - q - 1), q + 1);
        n = (size_t)(q - c->head.url.data);
    }
    if (n >= sizeof(r->path)) {
        thaw_api_error(r, 404, "no such path");
        return 0;
    }
    memcpy(r->path, c->head.url.data, n);
    r->path[n] = '\0';
    r->method = c->parser.method;
    if (r->method == HTTP_GET && a->probe &&
        (status = a->probe(r->path, body, sizeof(body), a->data)) > 0) {
        thaw_api_reply(r, status, "text/plain", body, strlen(body));
        return 0;
    }
    if (!authorized(r)) {
        thaw_log("admin API: 401 for %s %s from %s: %s", http_method_str(r->method), r->path,
                 c->link.peer_ip, r->auth[0] ? "bad token" : "no Authorization header");
        c->keep_alive = 0; /* a stranger's body is not read */
        thaw_api_error(r, 401, "missing or bad API token: send `Authorization: Bearer "
                       "TOKEN` (THAW_API_TOKEN, or the token file in the state directory)");
    }
    return 0;
}

/* The handler gets the body whole. */
static int on_body(struct thaw_h1_conn *c, const char *at, size_t n)
{
    return thaw_buf_append(&req_of(c)->body, at, n) ? 413 : 0;
}

static int on_body_end(struct thaw_h1_conn *c)
{
    struct thaw_api_req *r = req_of(c);

    r->api->handler(r, r->api->data);
    thaw_buf_free(&r->body); /* a bundle's memory goes once it is read */
    return 0;
}

static void on_abort(struct thaw_h1_conn *c, int status)
{
    struct thaw_api_req *r = req_of(c);

    if (r->on_gone)
        r->on_gone(r);
    r->on_gone = NULL;
}

static void on_free(struct thaw_h1_conn *c)
{
    thaw_buf_free(&req_of(c)->body);
}

static const struct thaw_h1_ops api_ops = {
    .on_begin = on_begin,
    .on_header = on_header,
    .on_head = on_head,
    .on_body = on_body,
    .on_body_end = on_body_end,
    .on_abort = on_abort,
    .on_free = on_free,
};

int thaw_api_listen(struct thaw_api *a, uv_loop_t *loop, const char *addr)
{
    if (!a->limits) {
        thaw_limits_defaults(&a->default_limits);
        a->limits = &a->default_limits;
    }
    a->srv = (struct thaw_h1_server){
        .limits = a->limits, .max_body = a->max_body, .max_conns = THAW_API_MAX_CONNS,
        .ops = &api_ops, .conn_size = sizeof(struct thaw_api_req), .data = a,
    };
    return thaw_h1_server_listen_addr(&a->srv, loop, addr);
}

void thaw_api_close(struct thaw_api *a)
{
    thaw_h1_server_close(&a->srv);
}
