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
 * and its call ended (thaw__wsc_maybe_free), both in wsclient-end.c. The
 * instance going away (or dropping the socket) comes as on_cancel: an
 * open socket is closed with 1001 "going away", as a browser leaving the
 * page does.
 *
 * The files, one job each (wsclient-internal.h: what they share):
 *   wsclient.c         the kind: its config, a call's checks and start
 *   wsclient-dial.c    resolving, the egress policy, connecting, TLS, the
 *                      upgrade request
 *   wsclient-io.c      bytes to and from the server, and what each state
 *                      does with them
 *   wsclient-answer.c  the answer to the upgrade: its head, a refusal's body
 *   wsclient-socket.c  the socket after the 101: wslay's callbacks and the
 *                      worker's messages
 *   wsclient-end.c     the end: handles closed, the call ended, the wsc
 *                      freed, the deadlines
 *   wsclient-head.c    the URL, the worker's headers, the 101's checks */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind/kinds.h"
#include "bind/wsclient-internal.h"
#include "ipc/ipc-proto.h"

#define WS_BINDING "__websocket"

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
        thaw__wsc_maybe_free(c);
        return;
    }
    c->headers = json_incref(json_object_get(call->args, "headers"));
    thaw_buf_init(&c->in, 4 * MAX_HEAD_BYTES); /* the head, and what came with it */
    c->call = call;
    call->data = c;
    call->on_cancel = thaw__wsc_on_cancel;
    uv_timer_init(k->loop, &c->timer);
    uv_timer_init(k->loop, &c->resume);
    c->timer.data = c->resume.data = c;
    c->open_handles = 2;
    uv_timer_start(&c->timer, thaw__wsc_on_timer, (uint64_t)k->cfg.connect_timeout_ms, 0);

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", c->u.port);
    c->gai.data = c;
    rc = uv_getaddrinfo(k->loop, &c->gai, thaw__wsc_on_resolved, c->u.host, port, &hints);
    if (rc < 0) {
        snprintf(err, sizeof(err), "the WebSocket connection to %s failed: could not "
                 "resolve \"%s\": %s", c->u.url, c->u.host, uv_strerror(rc));
        thaw__wsc_fail(c, "ConnectionError", err);
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
        thaw__wsc_kind_free(k);
}

const struct thaw_bind_kind thaw_bind_websocket = {
    .name = "websocket",
    .open = ws_open,
    .call = ws_call,
    .close = ws_close,
};
