/* How an outbound WebSocket connection ends (wsclient.c has the whole
 * story). Kept in one file so that the one close path of every libuv
 * handle, the call ended once and the wsc freed once can be read
 * together: a handle closes through thaw__wsc_close_handle only; on_closed
 * counts it off; thaw__wsc_maybe_free frees the wsc when nothing holds
 * it. The deadlines (on_timer) and the instance's cancel end things too,
 * so they are here. */
#include <stdio.h>
#include <stdlib.h>

#include "bind/wsclient-internal.h"

void thaw__wsc_kind_free(struct wsk *k)
{
    thaw_tls_ctx_free(k->tls);
    thaw_egress_config_free(&k->cfg);
    free(k->config_file);
    free(k);
}

void thaw__wsc_maybe_free(struct wsc *c)
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
        thaw__wsc_kind_free(k);
}

static void on_closed(uv_handle_t *h)
{
    struct wsc *c = h->data;

    if ((void *)h == (void *)c->tcp)
        c->tcp = NULL;
    if ((void *)h != (void *)&c->timer && (void *)h != (void *)&c->resume)
        free(h);
    c->open_handles--;
    thaw__wsc_maybe_free(c);
}

void thaw__wsc_close_handle(struct wsc *c, uv_handle_t *h)
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
void thaw__wsc_teardown(struct wsc *c)
{
    c->st = S_OVER;
    if (c->resolving)
        uv_cancel((uv_req_t *)&c->gai); /* thaw__wsc_on_resolved still comes */
    thaw__wsc_close_handle(c, (uv_handle_t *)c->tcp);
    thaw__wsc_close_handle(c, (uv_handle_t *)&c->timer);
    thaw__wsc_close_handle(c, (uv_handle_t *)&c->resume);
    thaw__wsc_maybe_free(c);
}

void thaw__wsc_fail(struct wsc *c, const char *cls, const char *msg)
{
    end_call(c, cls, msg);
    thaw__wsc_teardown(c);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct wsc *c = req->data;

    free(req);
    thaw__wsc_teardown(c);
}

/* The socket is over: what is written goes out first, then the connection
 * closes (the close timer caps the wait). */
void thaw__wsc_finish(struct wsc *c)
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
            uv_timer_start(&c->timer, thaw__wsc_on_timer, CLOSE_REPLY_MS, 0);
            return;
        }
        free(req);
    }
    thaw__wsc_teardown(c);
}


/* The timer of whatever phase runs (connect, TLS and handshake). */
void thaw__wsc_on_timer(uv_timer_t *t)
{
    struct wsc *c = t->data;
    char msg[800];

    if (c->st == S_OPEN) { /* the close deadline: the server never answered */
        thaw__wsc_finish(c);
        return;
    }
    if (c->st == S_OVER) {
        thaw__wsc_teardown(c);
        return;
    }
    snprintf(msg, sizeof(msg), "the WebSocket connection to %s timed out %s (thaw.egress "
             "connect_timeout_ms is %lld, timeout_ms %lld)%s%s", c->u.url,
             c->st == S_DIAL ? "connecting" : c->st == S_BODY ? "reading the response"
                                                              : "in the handshake",
             c->k->cfg.connect_timeout_ms, c->k->cfg.timeout_ms,
             c->error[0] ? "; an earlier address failed: " : "", c->error);
    thaw__wsc_fail(c, "TimeoutError", msg);
}

/* The instance dropped the socket, or is gone. */
void thaw__wsc_on_cancel(struct thaw_bind_call *call)
{
    struct wsc *c = call->data;

    if (c->st == S_OPEN) {
        thaw_ws_fail(c->ws, 1001, "going away"); /* done() follows, or now */
        if (c->call) {
            end_call(c, NULL, NULL);
            uv_timer_start(&c->timer, thaw__wsc_on_timer, CLOSE_REPLY_MS, 0);
        }
        return;
    }
    thaw__wsc_fail(c, "Error", "cancelled");
}
