/* Outbound WebSockets: `await fetch(url, headers={"Upgrade": "websocket"})`
 * and `WebSocket.new(url)` in a worker (python/workers/_websocket.py).
 * The supervisor makes the connection, as for fetch: it resolves the
 * host, checks every address against the egress policy (egress.h, the
 * check fetch and connect() use), connects, does TLS for wss:// / https://
 * (tls.h, certificates checked as fetch checks them), sends the upgrade
 * request and reads the answer. A 101 with a right Sec-WebSocket-Accept
 * makes the socket: from then on ws/session.c (wslay, as the client:
 * frames masked) speaks RFC 6455 and whole messages travel on the
 * binding call (BIND_WS_* frames, ipc-proto.h). Any other answer is an
 * ordinary response whose body streams as fetch's does (http-parser
 * frames it).
 *
 * The kind registers one binding, WS_BINDING, that env does not show.
 * Its one op, "connect", takes {"url", "headers": [[name, value], ...]}
 * and answers with a head {"status", "statusText", "headers", "url",
 * "redirected": false}: status 101 then messages until BIND_END, or
 * another status then the body. Failures are fetch's classes:
 * PermissionError (the egress policy, or thaw.egress.max_connections
 * sockets open in this instance already), TimeoutError, ConnectionError (DNS,
 * connect, TLS, a broken handshake), TypeError (the URL).
 *
 * Ownership: one struct wsc per call, owning its handles (the resolver
 * request, a TCP handle per attempt, two timers) and its memory; the call
 * is ended once (end_call), and the wsc freed once its handles are closed
 * and its call ended (maybe_free). The instance going away (or dropping
 * the socket) comes as on_cancel: an open socket is closed with 1001
 * "going away", as a browser leaving the page does. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <curl/curl.h>
#include <http_parser.h>
#include <openssl/evp.h>

#include "bind/bind.h"
#include "bind/egress.h"
#include "bind/httphead.h"
#include "bind/kinds.h"
#include "bind/tls.h"
#include "bind/wsclient-head.h"
#include "ipc/codec.h"
#include "ipc/ipc-proto.h"
#include "util/buf.h"
#include "ws/ws.h"

#define WS_BINDING "__websocket"
#define MAX_HEAD_BYTES (64 * 1024)
#define CLOSE_REPLY_MS 5000 /* the server's answer to our close frame */
#define PAUSE_MS 5          /* the instance's channel is full: look again */
#define MAX_OUT (16u << 20) /* bytes waiting for a server that reads nothing */

struct wsk {
    uv_loop_t *loop;
    struct thaw_egress_config cfg;
    char *config_file;
    size_t max_message;
    struct thaw_tls_ctx *tls; /* made at the first wss:// */
    int live;                 /* connections not yet freed */
    int closing;              /* the set is gone: free when live is 0 */
};

enum state { S_DIAL, S_TLS, S_HEAD, S_BODY, S_OPEN, S_OVER };

struct wsc {
    struct wsk *k;
    struct thaw_bind_call *call; /* NULL once ended */
    enum state st;
    struct thaw_wsc_url u;
    json_t *headers;
    char key[25];

    uv_getaddrinfo_t gai;
    int resolving;
    struct addrinfo *res, *next;
    uv_tcp_t *tcp;
    uv_connect_t creq;
    uv_timer_t timer;  /* connect, handshake, close deadlines */
    uv_timer_t resume; /* a full channel: reading again later */
    int open_handles;
    size_t out_bytes;  /* written, not yet sent */

    struct thaw_tls *tls;
    struct thaw_buf in; /* the response head */
    struct thaw_http_head head;
    http_parser hp;
    unsigned long long received;
    int body_done;
    struct thaw_ws *ws;
    int paused;

    char refused[1400];
    char error[300];
};

static char rbuf[64 * 1024]; /* one read at a time on the loop */

static void dial_next(struct wsc *c);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b);
static void on_timer(uv_timer_t *t);
static void on_resume(uv_timer_t *t);

/* ---- the end -------------------------------------------------------- */

static void wsk_free(struct wsk *k)
{
    thaw_tls_ctx_free(k->tls);
    thaw_egress_config_free(&k->cfg);
    free(k->config_file);
    free(k);
}

static void maybe_free(struct wsc *c)
{
    struct wsk *k = c->k;

    if (c->call || c->resolving || c->open_handles)
        return;
    if (c->res)
        uv_freeaddrinfo(c->res);
    thaw_ws_free(c->ws);
    thaw_tls_free(c->tls);
    thaw_buf_free(&c->in);
    thaw_http_head_free(&c->head);
    json_decref(c->headers);
    free(c->u.target);
    free(c->u.url);
    free(c);
    if (--k->live == 0 && k->closing)
        wsk_free(k);
}

static void on_closed(uv_handle_t *h)
{
    struct wsc *c = h->data;

    if ((void *)h == (void *)c->tcp)
        c->tcp = NULL;
    if ((void *)h != (void *)&c->timer && (void *)h != (void *)&c->resume)
        free(h);
    c->open_handles--;
    maybe_free(c);
}

static void close_handle(struct wsc *c, uv_handle_t *h)
{
    if (h && !uv_is_closing(h))
        uv_close(h, on_closed);
}

/* Ends the call once: error NULL is a clean end (after a head), else the
 * call fails with cls (before a head) or its stream ends with the
 * message (after one). */
static void end_call(struct wsc *c, const char *cls, const char *msg)
{
    struct thaw_bind_call *call = c->call;

    if (!call)
        return;
    c->call = NULL;
    call->on_cancel = NULL;
    call->on_message = NULL;
    if (call->replied) {
        char text[1600];
        if (msg)
            snprintf(text, sizeof(text), "%s: %s", cls, msg);
        thaw_bind_end(call, msg ? text : NULL);
    } else {
        thaw_bind_fail(call, cls ? cls : "ConnectionError", "%s", msg ? msg : "closed");
    }
}

/* Everything goes: the connection at once (what is unsent is lost). */
static void teardown(struct wsc *c)
{
    c->st = S_OVER;
    if (c->resolving)
        uv_cancel((uv_req_t *)&c->gai); /* on_resolved still comes */
    close_handle(c, (uv_handle_t *)c->tcp);
    close_handle(c, (uv_handle_t *)&c->timer);
    close_handle(c, (uv_handle_t *)&c->resume);
    maybe_free(c);
}

static void fail(struct wsc *c, const char *cls, const char *msg)
{
    end_call(c, cls, msg);
    teardown(c);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct wsc *c = req->data;

    free(req);
    teardown(c);
}

/* The socket is over: what is written goes out first, then the connection
 * closes (the close timer caps the wait). */
static void finish(struct wsc *c)
{
    uv_shutdown_t *req;

    if (c->st == S_OVER)
        return;
    c->st = S_OVER;
    end_call(c, NULL, NULL);
    if (c->tcp && !uv_is_closing((uv_handle_t *)c->tcp) && (req = malloc(sizeof(*req)))) {
        uv_read_stop((uv_stream_t *)c->tcp);
        req->data = c;
        if (uv_shutdown(req, (uv_stream_t *)c->tcp, on_shutdown) == 0) {
            uv_timer_start(&c->timer, on_timer, CLOSE_REPLY_MS, 0);
            return;
        }
        free(req);
    }
    teardown(c);
}

/* ---- writing -------------------------------------------------------- */

static void on_written(uv_write_t *req, int status)
{
    struct wsc *c = req->data;

    c->out_bytes -= ((uv_buf_t *)(req + 1))->len;
    free(req);
}

static void write_raw(struct wsc *c, const void *p, size_t n)
{
    uv_write_t *req;
    uv_buf_t *b;

    if (!c->tcp || uv_is_closing((uv_handle_t *)c->tcp) || !n)
        return;
    req = malloc(sizeof(*req) + sizeof(*b) + n);
    if (!req)
        return;
    b = (uv_buf_t *)(req + 1);
    *b = uv_buf_init((char *)(b + 1), (unsigned)n);
    memcpy(b->base, p, n);
    req->data = c;
    if (uv_write(req, (uv_stream_t *)c->tcp, b, 1, on_written) < 0) {
        free(req);
        return;
    }
    c->out_bytes += n;
}

static void flush_tls(struct wsc *c)
{
    size_t k;

    while ((k = thaw_tls_take(c->tls, rbuf, sizeof(rbuf))) > 0)
        write_raw(c, rbuf, k);
}

static void write_plain(struct wsc *c, const void *p, size_t n)
{
    if (!c->tls) {
        write_raw(c, p, n);
        return;
    }
    if (thaw_tls_write(c->tls, p, n) == 0)
        flush_tls(c);
}

/* ---- the socket (after the 101) ------------------------------------- */

static void s_write(void *owner, const void *p, size_t n)
{
    write_plain(owner, p, n);
}

static void s_message(void *owner, int type, const void *p, size_t n)
{
    struct wsc *c = owner;

    if (!c->call)
        return;
    thaw_bind_message(c->call, type == THAW_IPC_WS_TEXT ? THAW_IPC_BIND_WS_TEXT
                                                        : THAW_IPC_BIND_WS_BINARY, p, n);
    if (thaw_bind_congested(c->call) && !c->paused && c->tcp) {
        /* the instance is behind: the server waits, in its TCP window */
        c->paused = 1;
        uv_read_stop((uv_stream_t *)c->tcp);
        uv_timer_start(&c->resume, on_resume, PAUSE_MS, 0);
    }
}

static void s_closed(void *owner, int code, const char *reason, size_t n, int clean)
{
    struct wsc *c = owner;
    struct thaw_buf b;

    if (!c->call)
        return;
    thaw_buf_init(&b, 512);
    if (thaw_ws_close_payload(&b, code, reason, n, clean) == 0)
        thaw_bind_message(c->call, THAW_IPC_BIND_WS_CLOSE, b.data, b.len);
    thaw_buf_free(&b);
}

static void s_done(void *owner)
{
    finish(owner);
}

static const struct thaw_ws_ops session_ops = {
    .write = s_write,
    .message = s_message,
    .closed = s_closed,
    .done = s_done,
};

static void on_resume(uv_timer_t *t)
{
    struct wsc *c = t->data;

    if (c->st != S_OPEN || !c->paused || !c->tcp)
        return;
    if (c->call && thaw_bind_congested(c->call)) {
        uv_timer_start(&c->resume, on_resume, PAUSE_MS, 0);
        return;
    }
    c->paused = 0;
    uv_read_start((uv_stream_t *)c->tcp, on_alloc, on_read);
}

/* A message or close() from the worker. */
static void on_message(struct thaw_bind_call *call, int type, const void *p, size_t n)
{
    struct wsc *c = call->data;
    const char *reason;
    size_t rlen;
    int code;

    if (c->st != S_OPEN)
        return;
    if (type != THAW_IPC_BIND_WS_CLOSE) {
        if (c->out_bytes > MAX_OUT) {
            /* the server reads nothing and the worker keeps sending */
            thaw_ws_fail(c->ws, 1008, "the server does not read what the worker sends");
            return;
        }
        thaw_ws_send(c->ws, type == THAW_IPC_BIND_WS_TEXT ? THAW_IPC_WS_TEXT
                                                          : THAW_IPC_WS_BINARY, p, n);
        return;
    }
    thaw_ws_close_parse(p, n, &code, &reason, &rlen);
    thaw_ws_close(c->ws, code, reason, rlen);
    /* a server that never answers does not hold the socket */
    if (c->st == S_OPEN && thaw_ws_close_sent(c->ws))
        uv_timer_start(&c->timer, on_timer, CLOSE_REPLY_MS, 0);
}

/* ---- the answer to the upgrade ------------------------------------------ */

static json_t *head_json(struct wsc *c)
{
    return json_pack("{s:i, s:s, s:O, s:s, s:b}", "status", c->head.status, "statusText",
                     c->head.reason ? c->head.reason : "", "headers", c->head.headers,
                     "url", c->u.url, "redirected", 0);
}

static int hp_body(http_parser *p, const char *at, size_t n)
{
    struct wsc *c = p->data;

    if ((c->received += n) > (unsigned long long)c->k->cfg.max_response_bytes) {
        snprintf(c->error, sizeof(c->error), "the response of %s is over the %lld bytes "
                 "thaw.egress.max_response_bytes allows", c->u.url,
                 c->k->cfg.max_response_bytes);
        return -1;
    }
    if (c->call)
        thaw_bind_data(c->call, at, n);
    return 0;
}

static int hp_done(http_parser *p)
{
    struct wsc *c = p->data;

    c->body_done = 1;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings hp_settings = {
    .on_body = hp_body,
    .on_message_complete = hp_done,
};

/* Body bytes of a refusal (n 0: the connection ended). */
static void body_bytes(struct wsc *c, const char *p, size_t n)
{
    size_t k = http_parser_execute(&c->hp, &hp_settings, p, n);

    if (c->body_done) {
        finish(c);
        return;
    }
    if (c->error[0]) {
        fail(c, "RangeError", c->error);
        return;
    }
    if (k != n || (HTTP_PARSER_ERRNO(&c->hp) != HPE_OK)) {
        snprintf(c->error, sizeof(c->error), "the response of %s is not valid HTTP/1.1: %s",
                 c->u.url, http_errno_description(HTTP_PARSER_ERRNO(&c->hp)));
        fail(c, "ConnectionError", c->error);
        return;
    }
    if (n == 0)
        finish(c); /* a body that runs to the connection's end */
}

/* The response head is in (head bytes: c->in, up to end). */
static void head_done(struct wsc *c, size_t end)
{
    const char *p = c->in.data, *stop = c->in.data + end;
    const char *why;
    char msg[800];

    while (p < stop) {
        const char *nl = memchr(p, '\n', (size_t)(stop - p));
        size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(stop - p);
        thaw_http_head_line(&c->head, p, n);
        p += n;
    }
    if (c->head.status != 101) {
        /* the server refused: an ordinary response, its body streamed */
        thaw_bind_begin(c->call, head_json(c));
        c->st = S_BODY;
        http_parser_init(&c->hp, HTTP_RESPONSE);
        c->hp.data = c;
        body_bytes(c, c->in.data, c->in.len);
        return;
    }
    if ((why = thaw_wsc_bad_101(&c->head, c->key))) {
        snprintf(msg, sizeof(msg), "the WebSocket handshake with %s failed: %s", c->u.url, why);
        fail(c, "ConnectionError", msg);
        return;
    }
    if (!(c->ws = thaw_ws_new_client(&session_ops, c, c->k->max_message))) {
        fail(c, "Error", "out of memory");
        return;
    }
    uv_timer_stop(&c->timer);
    c->st = S_OPEN;
    c->call->on_message = on_message;
    thaw_bind_begin(c->call, head_json(c));
    if (c->in.len > end) /* frames right behind the head */
        thaw_ws_feed(c->ws, c->in.data + end, c->in.len - end);
}

static void head_bytes(struct wsc *c, const char *p, size_t n)
{
    char *end;

    if (thaw_buf_append(&c->in, p, n) < 0) {
        fail(c, "Error", "out of memory");
        return;
    }
    end = memmem(c->in.data, c->in.len, "\r\n\r\n", 4);
    if (end && end - c->in.data <= MAX_HEAD_BYTES) {
        head_done(c, (size_t)(end - c->in.data) + 4);
    } else if (c->in.len > MAX_HEAD_BYTES) {
        char msg[400];
        snprintf(msg, sizeof(msg), "the answer of %s to the WebSocket upgrade has over %d "
                 "bytes of headers", c->u.url, MAX_HEAD_BYTES);
        fail(c, "ConnectionError", msg);
    }
}

static void plain_bytes(struct wsc *c, const char *p, size_t n)
{
    switch (c->st) {
    case S_HEAD:
        head_bytes(c, p, n);
        break;
    case S_BODY:
        body_bytes(c, p, n);
        break;
    case S_OPEN:
        thaw_ws_feed(c->ws, p, n);
        break;
    default:
        break;
    }
}

/* The connection ended (EOF or an error) while st says what was going on. */
static void connection_gone(struct wsc *c, const char *why)
{
    char msg[600];

    switch (c->st) {
    case S_TLS:
    case S_HEAD:
        snprintf(msg, sizeof(msg), "the WebSocket handshake with %s failed: the server "
                 "closed the connection without an answer%s%s", c->u.url, why ? ": " : "",
                 why ? why : "");
        fail(c, "ConnectionError", msg);
        break;
    case S_BODY:
        if (!why) {
            body_bytes(c, NULL, 0);
            break;
        }
        snprintf(msg, sizeof(msg), "the response of %s was cut: %s", c->u.url, why);
        fail(c, "ConnectionError", msg);
        break;
    case S_OPEN:
        /* no close frame: the worker's close event says 1006 (its end) */
        finish(c);
        break;
    default:
        teardown(c);
    }
}

static void send_upgrade(struct wsc *c);

static void tls_step(struct wsc *c)
{
    char err[400], msg[700];
    int rc = thaw_tls_handshake(c->tls, err, sizeof(err));

    flush_tls(c);
    if (rc < 0) {
        snprintf(msg, sizeof(msg), "the WebSocket connection to %s failed: %s", c->u.url, err);
        fail(c, "ConnectionError", msg);
        return;
    }
    if (rc == 1) {
        c->st = S_HEAD;
        send_upgrade(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    *b = uv_buf_init(rbuf, sizeof(rbuf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct wsc *c = s->data;
    static char plain[64 * 1024];
    ssize_t k;

    if (n == 0)
        return;
    if (n < 0) {
        connection_gone(c, n == UV_EOF ? NULL : uv_strerror((int)n));
        return;
    }
    if (!c->tls) {
        plain_bytes(c, b->base, (size_t)n);
        return;
    }
    if (thaw_tls_feed(c->tls, b->base, (size_t)n) < 0) {
        fail(c, "Error", "out of memory");
        return;
    }
    if (c->st == S_TLS) {
        tls_step(c);
        if (c->st != S_HEAD)
            return;
    }
    /* the state can change under each piece (a refusal's body is done,
     * the socket closed): stop once it is over */
    while (c->st == S_HEAD || c->st == S_BODY || c->st == S_OPEN) {
        k = thaw_tls_read(c->tls, plain, sizeof(plain));
        if (k == 0)
            break;
        if (k < 0) {
            connection_gone(c, NULL);
            break;
        }
        plain_bytes(c, plain, (size_t)k);
    }
    if (c->tls && c->st != S_OVER)
        flush_tls(c);
}

/* ---- the upgrade request ------------------------------------------------ */

static void send_upgrade(struct wsc *c)
{
    struct thaw_buf b;
    unsigned char raw[16];
    size_t i;

    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        fail(c, "Error", "thaw could not make a Sec-WebSocket-Key");
        return;
    }
    EVP_EncodeBlock((unsigned char *)c->key, raw, sizeof(raw)); /* 24 + NUL */
    thaw_buf_init(&b, MAX_HEAD_BYTES * 4);
    thaw_buf_printf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                    "Sec-WebSocket-Version: 13\r\n", c->u.target, c->u.hosthdr, c->key);
    for (i = 0; i < json_array_size(c->headers); i++) {
        json_t *h = json_array_get(c->headers, i);
        const char *name = json_string_value(json_array_get(h, 0));
        const char *value = json_string_value(json_array_get(h, 1));
        if (thaw_wsc_own_header(name))
            continue;
        thaw_buf_append(&b, name, strlen(name));
        thaw_buf_append(&b, ": ", 2);
        thaw_buf_append(&b, value, strlen(value));
        thaw_buf_append(&b, "\r\n", 2);
    }
    thaw_buf_printf(&b, "\r\n");
    write_plain(c, b.data, b.len);
    thaw_buf_free(&b);
    /* the answer's timer: thaw.egress.timeout_ms, as a fetch's whole request */
    uv_timer_start(&c->timer, on_timer, (uint64_t)c->k->cfg.timeout_ms, 0);
}

/* ---- connecting --------------------------------------------------------- */

static void on_connected(uv_connect_t *req, int status)
{
    struct wsc *c = req->data;

    if (c->st != S_DIAL)
        return; /* a teardown closed the handle: status is UV_ECANCELED */
    if (status < 0) {
        snprintf(c->error, sizeof(c->error), "%s", uv_strerror(status));
        close_handle(c, (uv_handle_t *)c->tcp);
        c->tcp = NULL;
        c->next = c->next->ai_next;
        dial_next(c);
        return;
    }
    uv_tcp_nodelay(c->tcp, 1);
    uv_read_start((uv_stream_t *)c->tcp, on_alloc, on_read);
    if (c->u.secure) {
        if (!c->k->tls) {
            char err[600];
            if (!(c->k->tls = thaw_tls_ctx_new(c->k->cfg.ca_file, err, sizeof(err)))) {
                fail(c, "ConnectionError", err);
                return;
            }
        }
        if (!(c->tls = thaw_tls_new(c->k->tls, c->u.host))) {
            fail(c, "Error", "out of memory");
            return;
        }
        c->st = S_TLS;
        uv_timer_start(&c->timer, on_timer, (uint64_t)c->k->cfg.timeout_ms, 0);
        tls_step(c);
        return;
    }
    c->st = S_HEAD;
    send_upgrade(c);
}

static void refusal(struct wsc *c, const struct thaw_egress_verdict *why)
{
    char fix[400], target[400];

    if (c->refused[0])
        return; /* the first refusal says it */
    snprintf(target, sizeof(target), "%s (address %s, port %d)", c->u.host, why->addr,
             why->port);
    if (strcmp(c->u.host, why->addr) == 0)
        snprintf(target, sizeof(target), "%s port %d", why->addr, why->port);
    thaw_egress_fix(why, c->k->config_file, fix, sizeof(fix));
    snprintf(c->refused, sizeof(c->refused),
             "thaw egress policy refused the connection to %s for %s: %s is in %s, %s. "
             "Workers may not reach it unless the config allows it: %s",
             target, c->u.url, why->addr, why->rule, why->what, fix);
}

/* Connects to c->next, or the first address after it the policy allows. */
static void dial_next(struct wsc *c)
{
    char msg[1000];

    for (; c->next; c->next = c->next->ai_next) {
        struct addrinfo *ai = c->next;
        struct thaw_egress_verdict why;

        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        if (!thaw_egress_check_sockaddr(c->k->cfg.policy, ai->ai_addr, &why)) {
            refusal(c, &why);
            continue;
        }
        if (!(c->tcp = malloc(sizeof(*c->tcp))) || uv_tcp_init(c->k->loop, c->tcp) < 0) {
            free(c->tcp);
            c->tcp = NULL;
            fail(c, "Error", "out of memory");
            return;
        }
        c->tcp->data = c;
        c->open_handles++;
        c->creq.data = c;
        if (uv_tcp_connect(&c->creq, c->tcp, ai->ai_addr, on_connected) == 0)
            return;
        snprintf(c->error, sizeof(c->error), "cannot connect");
        close_handle(c, (uv_handle_t *)c->tcp);
        c->tcp = NULL;
    }
    if (c->error[0]) {
        snprintf(msg, sizeof(msg), "the WebSocket connection to %s failed: %s", c->u.url,
                 c->error);
        fail(c, "ConnectionError", msg);
    } else if (c->refused[0]) {
        fail(c, "PermissionError", c->refused);
    } else {
        snprintf(msg, sizeof(msg), "the WebSocket connection to %s failed: %s has no IPv4 "
                 "or IPv6 address", c->u.url, c->u.host);
        fail(c, "ConnectionError", msg);
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct wsc *c = req->data;
    char msg[700];

    c->resolving = 0;
    c->res = res;
    if (c->st != S_DIAL) {
        maybe_free(c);
        return;
    }
    if (status < 0) {
        snprintf(msg, sizeof(msg), "the WebSocket connection to %s failed: could not "
                 "resolve \"%s\": %s", c->u.url, c->u.host, uv_strerror(status));
        fail(c, "ConnectionError", msg);
        return;
    }
    c->next = res;
    dial_next(c);
}

/* The timer of whatever phase runs (connect, TLS and handshake). */
static void on_timer(uv_timer_t *t)
{
    struct wsc *c = t->data;
    char msg[800];

    if (c->st == S_OPEN) { /* the close deadline: the server never answered */
        finish(c);
        return;
    }
    if (c->st == S_OVER) {
        teardown(c);
        return;
    }
    snprintf(msg, sizeof(msg), "the WebSocket connection to %s timed out %s (thaw.egress "
             "connect_timeout_ms is %lld, timeout_ms %lld)%s%s", c->u.url,
             c->st == S_DIAL ? "connecting" : c->st == S_BODY ? "reading the response"
                                                              : "in the handshake",
             c->k->cfg.connect_timeout_ms, c->k->cfg.timeout_ms,
             c->error[0] ? "; an earlier address failed: " : "", c->error);
    fail(c, "TimeoutError", msg);
}

/* The instance dropped the socket, or is gone. */
static void on_cancel(struct thaw_bind_call *call)
{
    struct wsc *c = call->data;

    if (c->st == S_OPEN) {
        thaw_ws_fail(c->ws, 1001, "going away"); /* done() follows, or now */
        if (c->call) {
            end_call(c, NULL, NULL);
            uv_timer_start(&c->timer, on_timer, CLOSE_REPLY_MS, 0);
        }
        return;
    }
    fail(c, "Error", "cancelled");
}

/* ---- the call ------------------------------------------------------------ */

static void ws_call(void *impl, struct thaw_bind_call *call)
{
    struct wsk *k = impl;
    struct wsc *c;
    const char *url = json_string_value(json_object_get(call->args, "url"));
    const char *bad;
    struct addrinfo hints;
    char err[1200], port[8];
    int rc;

    if (strcmp(call->op, "connect") != 0) {
        thaw_bind_fail(call, "TypeError", "websocket has no operation \"%s\"", call->op);
        return;
    }
    if (!url) {
        thaw_bind_fail(call, "TypeError", "WebSocket: malformed call (no url)");
        return;
    }
    if ((bad = thaw_wsc_check_headers(json_object_get(call->args, "headers"), err, sizeof(err)))) {
        thaw_bind_fail(call, "TypeError", "WebSocket: %s", bad);
        return;
    }
    if (thaw_bind_siblings(call) >= k->cfg.max_connections) {
        thaw_bind_fail(call, "PermissionError", "this instance already has %d WebSockets "
                       "open or connecting, the most thaw.egress.max_connections (%lld) "
                       "allows: close sockets you are done with (or raise max_connections "
                       "in [thaw.egress])", thaw_bind_siblings(call),
                       k->cfg.max_connections);
        return;
    }
    if (!(c = calloc(1, sizeof(*c)))) {
        thaw_bind_fail(call, "Error", "out of memory");
        return;
    }
    c->k = k;
    k->live++;
    if (thaw_http_head_init(&c->head, MAX_HEAD_BYTES) < 0 ||
        (bad = thaw_wsc_parse_url(&c->u, url, err, sizeof(err)))) {
        thaw_bind_fail(call, "TypeError", "WebSocket: %s", bad ? bad : "out of memory");
        maybe_free(c);
        return;
    }
    c->headers = json_incref(json_object_get(call->args, "headers"));
    thaw_buf_init(&c->in, 4 * MAX_HEAD_BYTES); /* the head, and what came with it */
    c->call = call;
    call->data = c;
    call->on_cancel = on_cancel;
    uv_timer_init(k->loop, &c->timer);
    uv_timer_init(k->loop, &c->resume);
    c->timer.data = c->resume.data = c;
    c->open_handles = 2;
    uv_timer_start(&c->timer, on_timer, (uint64_t)k->cfg.connect_timeout_ms, 0);

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", c->u.port);
    c->gai.data = c;
    rc = uv_getaddrinfo(k->loop, &c->gai, on_resolved, c->u.host, port, &hints);
    if (rc < 0) {
        snprintf(err, sizeof(err), "the WebSocket connection to %s failed: could not "
                 "resolve \"%s\": %s", c->u.url, c->u.host, uv_strerror(rc));
        fail(c, "ConnectionError", err);
        return;
    }
    c->resolving = 1;
}

static int ws_open(const struct thaw_bind_env *env, struct thaw_bindings *set,
                   char *err, size_t errlen)
{
    struct wsk *k = calloc(1, sizeof(*k));

    if (!k) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (thaw_egress_config_load(&k->cfg, env->config, env->config_file, env->worker_dir,
                                env->policy, err, errlen) < 0) {
        free(k);
        return -1;
    }
    k->loop = env->loop;
    k->max_message = env->ws_max_message > 0 ? (size_t)env->ws_max_message
                                             : THAW_IPC_MAX_PAYLOAD;
    k->config_file = strdup(env->config_file ? env->config_file : "the config");
    if (thaw_bindings_add(set, WS_BINDING, &thaw_bind_websocket, k, err, errlen) < 0) {
        thaw_egress_config_free(&k->cfg);
        free(k->config_file);
        free(k);
        return -1;
    }
    return 0;
}

/* The set is gone: no call is pending, but a socket may still be saying
 * goodbye (its close frame, its shutdown): the last one frees k. */
static void ws_close(void *impl)
{
    struct wsk *k = impl;

    k->closing = 1;
    if (k->live == 0)
        wsk_free(k);
}

const struct thaw_bind_kind thaw_bind_websocket = {
    .name = "websocket",
    .open = ws_open,
    .call = ws_call,
    .close = ws_close,
};
