/* libFuzzer target: arbitrary bytes from a client, through the whole
 * HTTP/1 connection driver (src/server/h1-conn.c, h1-write.c,
 * h1-server.c) over a real loopback connection, as any client of any port
 * may send them: pipelined requests, bodies in pieces, broken heads. The
 * owner answers every request it sees, sometimes streaming, sometimes
 * before the body is in, sometimes refusing it. Whatever
 * came, the connection ends (the client half-closes after sending) and
 * every connection's memory goes: no sanitizer report, no connection
 * left. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/h1-conn.h"

static uv_loop_t loop;
static struct thaw_limits lim;
static struct thaw_h1_server srv;
static int port;
static unsigned style; /* how the owner answers: from the input's first byte */

static int on_head(struct thaw_h1_conn *c)
{
    if (style % 5 == 1)
        thaw_h1_reply(c, 404, "text/plain", NULL, "early\n", 6); /* before the body */
    if (style % 5 == 2)
        return 431;
    return 0;
}

static int on_body(struct thaw_h1_conn *c, const char *at, size_t n)
{
    return style % 7 == 3 && n > 100 ? 413 : 0;
}

static int on_body_end(struct thaw_h1_conn *c)
{
    if (style % 5 == 3) {
        thaw_h1_stream_begin(c, "text/plain");
        thaw_h1_body(c, c->head.url.data, c->head.url.len);
        thaw_h1_done(c);
    } else {
        thaw_h1_reply(c, 200, "text/plain", NULL, c->head.url.data, c->head.url.len);
    }
    return 0;
}

static const struct thaw_h1_ops ops = {
    .on_head = on_head,
    .on_body = on_body,
    .on_body_end = on_body_end,
};

static void start(void)
{
    struct sockaddr_in sa;
    int len = sizeof(sa);

    uv_loop_init(&loop);
    lim.max_header = 4096;
    lim.max_body = 8192;
    lim.header_timeout_ms = 1000;
    lim.body_timeout_ms = 1000;
    lim.body_min_rate = 0;
    lim.keepalive_timeout_ms = 1000;
    srv.limits = &lim;
    srv.ops = &ops;
    srv.conn_size = sizeof(struct thaw_h1_conn);
    srv.max_conns = 4;
    if (thaw_h1_server_listen(&srv, &loop, "127.0.0.1", 0, 16, NULL, 0))
        abort();
    uv_tcp_getsockname(&srv.listener, (struct sockaddr *)&sa, &len);
    port = ntohs(sa.sin_port);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char sink[65536];
    size_t off = 0;
    int fd, spins;

    if (!port)
        start();
    style = size ? data[0] : 0;
    sa.sin_port = htons((uint16_t)port);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
        abort();
    fcntl(fd, F_SETFL, O_NONBLOCK);
    /* send it all, reading answers meanwhile; then half-close: the
     * server ends the connection after what it owes */
    for (spins = 0; spins < 100000; spins++) {
        ssize_t k;
        if (off < size) {
            k = send(fd, data + off, size - off, MSG_NOSIGNAL);
            if (k > 0)
                off += (size_t)k;
            else if (k < 0 && errno != EAGAIN)
                break; /* the server closed early */
            if (off == size)
                shutdown(fd, SHUT_WR);
        } else if (size == 0 && spins == 0) {
            shutdown(fd, SHUT_WR);
        }
        uv_run(&loop, UV_RUN_NOWAIT);
        k = recv(fd, sink, sizeof(sink), 0);
        if (k == 0 || (k < 0 && errno != EAGAIN))
            break;
    }
    close(fd);
    /* the server's side of it closes and its memory goes */
    for (spins = 0; spins < 100000 && srv.n_conns; spins++)
        uv_run(&loop, UV_RUN_NOWAIT);
    if (srv.n_conns)
        abort(); /* a connection was left behind */
    uv_run(&loop, UV_RUN_NOWAIT); /* the closing handles' callbacks */
    return 0;
}
