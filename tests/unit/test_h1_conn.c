/* The HTTP/1 core's connection driver (src/server/h1-conn.c, h1-write.c,
 * h1-server.c) with a small owner of its own, over a real loopback
 * socket: pipelined requests reach the owner one at a time and are
 * answered in order, a body comes in pieces and stops while the owner
 * says it is full, the core answers broken requests and clocks itself,
 * and every connection ends in on_abort/on_close/on_free. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "server/h1-conn.h"

/* ---- the owner -------------------------------------------------------- */

static char events[4096];   /* what the owner saw, in order */
static struct thaw_h1_conn *waiting; /* a request the test answers itself */
static int defer;           /* leave requests unanswered (in `waiting`) */
static int full;            /* body_full's answer */
static size_t body_seen;

static void note(const char *fmt, ...)
{
    size_t n = strlen(events);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(events + n, sizeof(events) - n, fmt, ap);
    va_end(ap);
}

static int on_head(struct thaw_h1_conn *c)
{
    note("head %.*s;", (int)c->head.url.len, c->head.url.data);
    return 0;
}

static int on_body(struct thaw_h1_conn *c, const char *at, size_t n)
{
    body_seen += n;
    return 0;
}

static int on_body_end(struct thaw_h1_conn *c)
{
    char text[64];
    int n = snprintf(text, sizeof(text), "%.*s %zu", (int)c->head.url.len, c->head.url.data,
                     body_seen);

    note("end;");
    body_seen = 0;
    if (defer)
        waiting = c;
    else
        thaw_h1_reply(c, 200, "text/plain", NULL, text, (size_t)n);
    return 0;
}

static int body_full(struct thaw_h1_conn *c)
{
    return full;
}

static void on_abort(struct thaw_h1_conn *c, int status)
{
    note("abort %d;", status);
    if (waiting == c)
        waiting = NULL;
}

static void on_free(struct thaw_h1_conn *c)
{
    note("free;");
}

static size_t raw_seen;

static void on_raw(struct thaw_h1_conn *c, const char *p, size_t n)
{
    raw_seen += n;
}

static const struct thaw_h1_ops ops = {
    .on_raw = on_raw,
    .on_head = on_head,
    .on_body = on_body,
    .on_body_end = on_body_end,
    .body_full = body_full,
    .on_abort = on_abort,
    .on_free = on_free,
};

/* ---- a server and a client on one loop -------------------------------- */

static uv_loop_t loop;
static struct thaw_limits lim;
static struct thaw_h1_server srv;
static int port;

static int setup(void **state)
{
    char authority[64];

    events[0] = '\0';
    waiting = NULL;
    defer = full = 0;
    body_seen = raw_seen = 0;
    uv_loop_init(&loop);
    thaw_limits_defaults(&lim);
    lim.max_body = 100000;
    memset(&srv, 0, sizeof(srv));
    srv.limits = &lim;
    srv.ops = &ops;
    srv.conn_size = sizeof(struct thaw_h1_conn);
    assert_int_equal(thaw_h1_server_listen(&srv, &loop, "127.0.0.1", 0, 16, authority,
                                           sizeof(authority)), 0);
    {
        struct sockaddr_in sa;
        int len = sizeof(sa);
        uv_tcp_getsockname(&srv.listener, (struct sockaddr *)&sa, &len);
        port = ntohs(sa.sin_port);
    }
    return 0;
}

static int teardown(void **state)
{
    thaw_h1_server_close(&srv);
    uv_run(&loop, UV_RUN_DEFAULT); /* every handle closes */
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

static int client(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EAGAIN) {
            uv_run(&loop, UV_RUN_NOWAIT);
            continue;
        }
        assert_true(k > 0);
        s += k;
        n -= (size_t)k;
    }
}

/* Runs the loop until got holds want (or the connection ends, or 3 s);
 * what the client received collects in got. 1 when the server closed. */
static int pump(int fd, char *got, size_t n, const char *want)
{
    uint64_t end = uv_now(&loop) + 3000;
    size_t len = strlen(got);

    while (uv_now(&loop) < end && !(want && strstr(got, want))) {
        ssize_t k;
        uv_run(&loop, UV_RUN_NOWAIT);
        k = recv(fd, got + len, n - len - 1, 0);
        if (k == 0)
            return 1;
        if (k > 0) {
            len += (size_t)k;
            got[len] = '\0';
        } else {
            usleep(1000);
            uv_update_time(&loop);
        }
    }
    return 0;
}

static void run_a_while(int ms)
{
    uint64_t end;

    uv_update_time(&loop);
    end = uv_now(&loop) + (uint64_t)ms;
    while (uv_now(&loop) < end) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
        uv_update_time(&loop);
    }
}

/* ---- tests ------------------------------------------------------------ */

/* After thaw_h1_upgrade (a WebSocket's 101) every byte goes to on_raw:
 * those that came with the head first, from the loop; a full owner stops
 * the reading as for a body; the client's close ends the request. */
static void an_upgraded_connection_gives_raw_bytes(void **state)
{
    static const char req[] = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\n\r\nEARLY";
    static char more[30000];
    char got[4096] = "";
    int fd = client();
    struct thaw_h1_conn *c;

    defer = 1;
    send_all(fd, req, sizeof(req) - 1);
    run_a_while(50);
    assert_string_equal(events, "head /ws;end;");
    assert_int_equal(raw_seen, 0); /* not HTTP body, not yet anyone's */
    c = waiting;
    thaw_h1_status(c, 101, "Switching Protocols");
    thaw_h1_lit(c, "upgrade: websocket\r\n\r\n");
    full = 1; /* the owner takes what it is given, then no more */
    thaw_h1_upgrade(c);
    pump(fd, got, sizeof(got), "\r\n\r\n");
    assert_non_null(strstr(got, "HTTP/1.1 101 Switching Protocols"));
    assert_int_equal(raw_seen, 5); /* EARLY */
    send_all(fd, more, sizeof(more));
    run_a_while(50);
    assert_int_equal(raw_seen, 5);
    full = 0;
    thaw_h1_update_reading(c);
    run_a_while(50);
    assert_int_equal(raw_seen, 5 + sizeof(more));
    close(fd);
    run_a_while(20);
    assert_string_equal(events, "head /ws;end;abort 0;free;");
}

static void pipelined_requests_are_answered_in_order(void **state)
{
    static const char two[] = "GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
                              "GET /two HTTP/1.1\r\nHost: x\r\n\r\n";
    char got[4096] = "";
    int fd = client();

    defer = 1;
    send_all(fd, two, sizeof(two) - 1);
    run_a_while(50);
    /* the second request waits until the first is answered */
    assert_string_equal(events, "head /one;end;");
    assert_non_null(waiting);
    defer = 0;
    thaw_h1_reply(waiting, 200, "text/plain", NULL, "first", 5);
    pump(fd, got, sizeof(got), "/two 0");
    assert_string_equal(events, "head /one;end;head /two;end;");
    assert_non_null(strstr(got, "first"));
    assert_true(strstr(got, "first") < strstr(got, "/two 0"));
    assert_null(strstr(got, "connection:")); /* kept alive */
    close(fd);
    run_a_while(20);
    assert_string_equal(events, "head /one;end;head /two;end;free;");
}

static void a_full_owner_stops_the_body(void **state)
{
    static char body[40000];
    char head[256], got[4096] = "";
    size_t seen;
    int fd = client();
    int n = snprintf(head, sizeof(head), "POST /up HTTP/1.1\r\nHost: x\r\n"
                     "Content-Length: %zu\r\n\r\n", 2 * sizeof(body));

    memset(body, 'b', sizeof(body));
    full = 1;
    memcpy(head + n, body, 100); /* the head and a first piece in one read */
    send_all(fd, head, (size_t)n + 100);
    run_a_while(50);
    assert_string_equal(events, "head /up;");
    seen = body_seen;
    assert_int_equal(seen, 100);
    /* while the owner is full nothing more is read */
    send_all(fd, body, sizeof(body));
    run_a_while(50);
    assert_int_equal(body_seen, seen);
    full = 0;
    thaw_h1_update_reading((struct thaw_h1_conn *)srv.conns);
    send_all(fd, body, sizeof(body) - 100);
    pump(fd, got, sizeof(got), "/up 80000");
    assert_non_null(strstr(got, "HTTP/1.1 200 OK"));
    close(fd);
    run_a_while(20);
}

static void a_client_leaving_mid_body_is_aborted(void **state)
{
    static const char req[] = "PUT /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab";
    int fd = client();

    send_all(fd, req, sizeof(req) - 1);
    run_a_while(50);
    close(fd);
    run_a_while(50);
    assert_string_equal(events, "head /slow;abort 499;free;");
}

/* A whole request's client that half-closes (shutdown) still gets its
 * answer; the connection ends after it. */
static void a_half_closed_client_is_answered(void **state)
{
    static const char req[] = "GET /half HTTP/1.1\r\nHost: x\r\n\r\n";
    char got[4096] = "";
    int fd = client();

    defer = 1;
    send_all(fd, req, sizeof(req) - 1);
    shutdown(fd, SHUT_WR);
    run_a_while(50);
    assert_non_null(waiting);
    thaw_h1_reply(waiting, 200, "text/plain", NULL, "late", 4);
    assert_int_equal(pump(fd, got, sizeof(got), NULL), 1);
    assert_non_null(strstr(got, "connection: close\r\n\r\nlate"));
    close(fd);
    run_a_while(20);
    assert_string_equal(events, "head /half;end;free;");
}

/* Garbage after an answered request on a kept connection is a 400 of its
 * own, then the connection ends. */
static void garbage_after_a_request_is_400(void **state)
{
    static const char req[] = "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n";
    char got[4096] = "";
    int fd = client();

    send_all(fd, req, sizeof(req) - 1);
    pump(fd, got, sizeof(got), "/ok 0");
    send_all(fd, "\x01\x02 nonsense\r\n\r\n", 16);
    assert_int_equal(pump(fd, got, sizeof(got), NULL), 1);
    assert_non_null(strstr(got, "HTTP/1.1 400 "));
    close(fd);
}

static void a_declared_body_over_the_limit_is_413(void **state)
{
    static const char req[] = "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 100001\r\n\r\n";
    char got[4096] = "";
    int fd = client();

    send_all(fd, req, sizeof(req) - 1);
    assert_int_equal(pump(fd, got, sizeof(got), NULL), 1); /* closed after */
    assert_non_null(strstr(got, "HTTP/1.1 413 "));
    assert_non_null(strstr(got, "connection: close"));
    assert_string_equal(events, "free;"); /* the owner never saw it */
    close(fd);
}

static void the_clocks_answer_and_close(void **state)
{
    char got[4096] = "";
    int fd;

    lim.header_timeout_ms = 50;
    lim.keepalive_timeout_ms = 50;
    fd = client();
    send_all(fd, "GET /x HTTP/1.1\r\nHo", 19);
    assert_int_equal(pump(fd, got, sizeof(got), NULL), 1);
    assert_non_null(strstr(got, "HTTP/1.1 408 "));
    close(fd);
    /* a connection that asks nothing is let go */
    fd = client();
    got[0] = '\0';
    assert_int_equal(pump(fd, got, sizeof(got), NULL), 1);
    assert_string_equal(got, "");
    close(fd);
}

static void http10_streams_to_the_close(void **state)
{
    static const char req[] = "GET /s HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    char got[4096] = "";
    int fd = client();

    defer = 1;
    send_all(fd, req, sizeof(req) - 1);
    run_a_while(50);
    assert_non_null(waiting);
    thaw_h1_stream_begin(waiting, "text/plain");
    thaw_h1_body(waiting, "abc", 3);
    thaw_h1_done(waiting);
    assert_int_equal(pump(fd, got, sizeof(got), NULL), 1);
    /* no chunks for HTTP/1.0: the body ends with the connection */
    assert_non_null(strstr(got, "connection: close\r\n\r\nabc"));
    assert_null(strstr(got, "chunked"));
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(an_upgraded_connection_gives_raw_bytes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(pipelined_requests_are_answered_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_full_owner_stops_the_body, setup, teardown),
        cmocka_unit_test_setup_teardown(a_client_leaving_mid_body_is_aborted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_half_closed_client_is_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(garbage_after_a_request_is_400, setup, teardown),
        cmocka_unit_test_setup_teardown(a_declared_body_over_the_limit_is_413, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(the_clocks_answer_and_close, setup, teardown),
        cmocka_unit_test_setup_teardown(http10_streams_to_the_close, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
