/* Connecting an outbound WebSocket (wsclient.c has the whole story): the
 * host's addresses in turn, each checked against the egress policy
 * (egress.h) before it is dialled, the first refusal kept to say why when
 * none is left; TLS for wss:// (tls.h); then the upgrade request with a
 * fresh Sec-WebSocket-Key and the worker's headers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/evp.h>

#include "bind/wsclient-internal.h"

static void dial_next(struct wsc *c);
static void send_upgrade(struct wsc *c);

void thaw__wsc_tls_step(struct wsc *c)
{
    char err[400], msg[700];
    int rc = thaw_tls_handshake(c->tls, err, sizeof(err));

    thaw__wsc_flush_tls(c);
    if (rc < 0) {
        snprintf(msg, sizeof(msg), "the WebSocket connection to %s failed: %s", c->u.url, err);
        thaw__wsc_fail(c, "ConnectionError", msg);
        return;
    }
    if (rc == 1) {
        c->st = S_HEAD;
        send_upgrade(c);
    }
}

static void send_upgrade(struct wsc *c)
{
    struct thaw_buf b;
    unsigned char raw[16];
    size_t i;

    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        thaw__wsc_fail(c, "Error", "thaw could not make a Sec-WebSocket-Key");
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
    thaw__wsc_write_plain(c, b.data, b.len);
    thaw_buf_free(&b);
    /* the answer's timer: thaw.egress.timeout_ms, as a fetch's whole request */
    uv_timer_start(&c->timer, thaw__wsc_on_timer, (uint64_t)c->k->cfg.timeout_ms, 0);
}

/* ---- connecting --------------------------------------------------------- */

static void on_connected(uv_connect_t *req, int status)
{
    struct wsc *c = req->data;

    if (c->st != S_DIAL)
        return; /* a thaw__wsc_teardown closed the handle: status is UV_ECANCELED */
    if (status < 0) {
        snprintf(c->error, sizeof(c->error), "%s", uv_strerror(status));
        thaw__wsc_close_handle(c, (uv_handle_t *)c->tcp);
        c->tcp = NULL;
        c->next = c->next->ai_next;
        dial_next(c);
        return;
    }
    uv_tcp_nodelay(c->tcp, 1);
    uv_read_start((uv_stream_t *)c->tcp, thaw__wsc_on_alloc, thaw__wsc_on_read);
    if (c->u.secure) {
        if (!c->k->tls) {
            char err[600];
            if (!(c->k->tls = thaw_tls_ctx_new(c->k->cfg.ca_file, err, sizeof(err)))) {
                thaw__wsc_fail(c, "ConnectionError", err);
                return;
            }
        }
        if (!(c->tls = thaw_tls_new(c->k->tls, c->u.host))) {
            thaw__wsc_fail(c, "Error", "out of memory");
            return;
        }
        c->st = S_TLS;
        uv_timer_start(&c->timer, thaw__wsc_on_timer, (uint64_t)c->k->cfg.timeout_ms, 0);
        thaw__wsc_tls_step(c);
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
            thaw__wsc_fail(c, "Error", "out of memory");
            return;
        }
        c->tcp->data = c;
        c->open_handles++;
        c->creq.data = c;
        if (uv_tcp_connect(&c->creq, c->tcp, ai->ai_addr, on_connected) == 0)
            return;
        snprintf(c->error, sizeof(c->error), "cannot connect");
        thaw__wsc_close_handle(c, (uv_handle_t *)c->tcp);
        c->tcp = NULL;
    }
    if (c->error[0]) {
        snprintf(msg, sizeof(msg), "the WebSocket connection to %s failed: %s", c->u.url,
                 c->error);
        thaw__wsc_fail(c, "ConnectionError", msg);
    } else if (c->refused[0]) {
        thaw__wsc_fail(c, "PermissionError", c->refused);
    } else {
        snprintf(msg, sizeof(msg), "the WebSocket connection to %s failed: %s has no IPv4 "
                 "or IPv6 address", c->u.url, c->u.host);
        thaw__wsc_fail(c, "ConnectionError", msg);
    }
}

void thaw__wsc_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct wsc *c = req->data;
    char msg[700];

    c->resolving = 0;
    c->res = res;
    if (c->st != S_DIAL) {
        thaw__wsc_maybe_free(c);
        return;
    }
    if (status < 0) {
        snprintf(msg, sizeof(msg), "the WebSocket connection to %s failed: could not "
                 "resolve \"%s\": %s", c->u.url, c->u.host, uv_strerror(status));
        thaw__wsc_fail(c, "ConnectionError", msg);
        return;
    }
    c->next = res;
    dial_next(c);
}

