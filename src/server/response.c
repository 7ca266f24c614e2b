/* An instance's answer, frame by frame, written to its client through
 * the HTTP/1 core (h1-conn.h): the head's headers filtered (hop-by-hop
 * ones are the connection's business), the body framed by the core. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "server/conn.h"
#include "server/static.h"

static int hop_by_hop(const char *name)
{
    static const char *const names[] = {
        "connection", "keep-alive", "transfer-encoding", "upgrade",
        "proxy-connection", "te", "trailer", "content-length",
    };
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(name, names[i]) == 0)
            return 1;
    return 0;
}

static int header_safe(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            return 0;
    return 1;
}

static void on_resp_head(struct thaw_exchange *ex, int status, const char *reason,
                         const char **names, const char **values, int n)
{
    struct conn *c = ex->conn;
    struct thaw_h1_conn *h = &c->h1;
    const char *length = NULL;
    int i, bodyless = status == 204 || status == 304 || status < 200;

    if (status == 101) {
        thaw__conn_ws_accept(c, names, values, n); /* a WebSocket (ws-conn.c) */
        return;
    }
    thaw_h1_status(h, status, reason && *reason && header_safe(reason) ? reason : NULL);
    for (i = 0; i < n; i++) {
        if (strcasecmp(names[i], "content-length") == 0)
            length = values[i];
        if (hop_by_hop(names[i]) || !header_safe(names[i]) || !header_safe(values[i]))
            continue;
        thaw_h1_write(h, names[i], strlen(names[i]));
        thaw_h1_lit(h, ": ");
        thaw_h1_write(h, values[i], strlen(values[i]));
        thaw_h1_lit(h, "\r\n");
    }
    if (length) {
        thaw_h1_lit(h, "content-length: ");
        thaw_h1_write(h, length, strlen(length));
        thaw_h1_lit(h, "\r\n");
    }
    thaw_h1_head_end(h, length || bodyless ? THAW_H1_SIZED : THAW_H1_OPEN);
    c->resp_status = status;
}

static void on_resp_body(struct thaw_exchange *ex, const char *p, size_t n)
{
    struct conn *c = ex->conn;

    thaw_h1_body(&c->h1, p, n);
}

static void on_resp_end(struct thaw_exchange *ex)
{
    struct conn *c = ex->conn;

    thaw__conn_log_request(c, c->resp_status);
    thaw_exchange_release(ex);
    thaw__conn_exchange_over(c);
    thaw_h1_done(&c->h1);
}

static void on_fail(struct thaw_exchange *ex, int status, const char *msg)
{
    struct conn *c = ex->conn;

    thaw_exchange_release(ex);
    thaw__conn_exchange_over(c);
    if (c->ws) {
        thaw__conn_ws_lost(c);
        return;
    }
    if (!status || c->h1.resp_started) {
        thaw__conn_log_request(c, 0);
        thaw_h1_close(&c->h1); /* the client sees a cut response, not a lie */
        return;
    }
    thaw__conn_log_request(c, status);
    thaw_h1_error(&c->h1, status, msg && *msg ? msg : thaw_h1_reason(status));
}

static void on_ws(struct thaw_exchange *ex, int type, const char *p, size_t n)
{
    thaw__conn_ws_frame(ex->conn, type, p, n);
}

static void on_writable(struct thaw_exchange *ex)
{
    struct conn *c = ex->conn;

    thaw__conn_pump_body(c);
    thaw_h1_update_reading(&c->h1);
}

const struct thaw_exchange_ops thaw__conn_ex_ops = {
    .on_resp_head = on_resp_head,
    .on_resp_body = on_resp_body,
    .on_resp_end = on_resp_end,
    .on_fail = on_fail,
    .on_writable = on_writable,
    .on_ws = on_ws,
};
