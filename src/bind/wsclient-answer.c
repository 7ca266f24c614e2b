/* The server's answer to an outbound WebSocket's upgrade request
 * (wsclient.c has the whole story): the head, read up to MAX_HEAD_BYTES;
 * a 101 whose Sec-WebSocket-Accept matches the key opens the socket
 * (wsclient-socket.c), any other status is an ordinary response whose
 * body http-parser frames and streams to the worker as fetch's does. */
#include <stdio.h>
#include <string.h>

#include "bind/wsclient-internal.h"

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
void thaw__wsc_body_bytes(struct wsc *c, const char *p, size_t n)
{
    size_t k = http_parser_execute(&c->hp, &hp_settings, p, n);

    if (c->body_done) {
        thaw__wsc_finish(c);
        return;
    }
    if (c->error[0]) {
        thaw__wsc_fail(c, "RangeError", c->error);
        return;
    }
    if (k != n || (HTTP_PARSER_ERRNO(&c->hp) != HPE_OK)) {
        snprintf(c->error, sizeof(c->error), "the response of %s is not valid HTTP/1.1: %s",
                 c->u.url, http_errno_description(HTTP_PARSER_ERRNO(&c->hp)));
        thaw__wsc_fail(c, "ConnectionError", c->error);
        return;
    }
    if (n == 0)
        thaw__wsc_finish(c); /* a body that runs to the connection's end */
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
        thaw__wsc_body_bytes(c, c->in.data, c->in.len);
        return;
    }
    if ((why = thaw_wsc_bad_101(&c->head, c->key))) {
        snprintf(msg, sizeof(msg), "the WebSocket handshake with %s failed: %s", c->u.url, why);
        thaw__wsc_fail(c, "ConnectionError", msg);
        return;
    }
    if (!(c->ws = thaw_ws_new_client(&thaw__wsc_session_ops, c, c->k->max_message))) {
        thaw__wsc_fail(c, "Error", "out of memory");
        return;
    }
    uv_timer_stop(&c->timer);
    c->st = S_OPEN;
    c->call->on_message = thaw__wsc_on_message;
    thaw_bind_begin(c->call, head_json(c));
    if (c->in.len > end) /* frames right behind the head */
        thaw_ws_feed(c->ws, c->in.data + end, c->in.len - end);
}

void thaw__wsc_head_bytes(struct wsc *c, const char *p, size_t n)
{
    char *end;

    if (thaw_buf_append(&c->in, p, n) < 0) {
        thaw__wsc_fail(c, "Error", "out of memory");
        return;
    }
    end = memmem(c->in.data, c->in.len, "\r\n\r\n", 4);
    if (end && end - c->in.data <= MAX_HEAD_BYTES) {
        head_done(c, (size_t)(end - c->in.data) + 4);
    } else if (c->in.len > MAX_HEAD_BYTES) {
        char msg[400];
        snprintf(msg, sizeof(msg), "the answer of %s to the WebSocket upgrade has over %d "
                 "bytes of headers", c->u.url, MAX_HEAD_BYTES);
        thaw__wsc_fail(c, "ConnectionError", msg);
    }
}
