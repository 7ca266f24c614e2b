/* The IPC channel (src/ipc/chan.c) on a real socketpair and libuv loop:
 * frames carrying fds, queued faster than the peer reads them, all arrive
 * in order with their fds. (thaw serve's start queues two fds per worker
 * to the zygote before it reads any: with 64 queued, later builds failed.) */
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "ipc/chan.h"
#include "ipc/codec.h"
#include "ipc/ipc-proto.h"

#define FRAMES 300

static void on_frame(struct thaw_chan *c, const struct thaw_ipc_frame *f, int fd, void *data)
{
    if (fd >= 0)
        close(fd);
}

static void on_close(struct thaw_chan *c, int err, void *data) {}

/* Reads what is there on the peer's end; returns the fds received. */
static int peer_read(int s)
{
    char buf[4096], cbuf[CMSG_SPACE(sizeof(int) * 8)];
    struct iovec iov = {buf, sizeof(buf)};
    struct msghdr msg = {0};
    struct cmsghdr *cm;
    int got = 0;

    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof(cbuf);
    if (recvmsg(s, &msg, MSG_DONTWAIT) <= 0)
        return 0;
    for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        int n = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int)), i, fd;

        for (i = 0; i < n; i++) {
            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            close(fd);
            got++;
        }
    }
    return got;
}

static void many_fds_queued_before_the_peer_reads(void **state)
{
    uv_loop_t loop;
    struct thaw_chan *c;
    int sv[2], i, got = 0, spins;

    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(thaw_chan_open(&loop, sv[0], on_frame, on_close, NULL, &c), 0);
    for (i = 0; i < FRAMES; i++) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

        assert_true(fd >= 0);
        assert_int_equal(thaw_chan_send_fields(c, THAW_IPC_STDIO, (uint32_t)i, fd, 0, NULL), 0);
    }
    for (spins = 0; got < FRAMES && spins < 100000; spins++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        got += peer_read(sv[1]);
    }
    assert_int_equal(got, FRAMES);
    assert_int_equal(thaw_chan_queued(c), 0);
    thaw_chan_close(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    close(sv[1]);
}

static int drains;

static void on_drain(struct thaw_chan *c, void *data)
{
    drains++;
}

/* Frames queued in one loop turn are written at its end, without waiting
 * for the socket to be reported writable; a burst bigger than the socket
 * holds waits for UV_WRITABLE, arrives whole and in order, and the drain
 * callback says when the queue is low again (src/ipc/chan.c). */
static void a_burst_over_the_socket_buffer_arrives_in_order(void **state)
{
    enum { N = 3000, PAYLOAD = 1000 };
    static uint8_t in[N * (PAYLOAD + 12) + 65536];
    char payload[PAYLOAD];
    uv_loop_t loop;
    struct thaw_chan *c;
    size_t got = 0, off = 0;
    int sv[2], i, spins, seen = 0;

    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(thaw_chan_open(&loop, sv[0], on_frame, on_close, NULL, &c), 0);
    thaw_chan_on_drain(c, on_drain);
    fcntl(sv[1], F_SETFL, O_NONBLOCK); /* a test that fails, not one that hangs */
    drains = 0;
    /* one small frame: out at the end of the first turn, nothing armed */
    assert_int_equal(thaw_chan_send_frame(c, THAW_IPC_REQ_END, 7, NULL, 0), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 1);
    assert_int_equal(thaw_chan_queued(c), 0);
    assert_int_equal(read(sv[1], in, sizeof(in)), 12);
    assert_int_equal(in[4], THAW_IPC_REQ_END);
    assert_int_equal(in[8], 7);
    /* ~3 MB: over THAW_CHAN_HIGH and over what the socket holds */
    for (i = 0; i < N; i++) {
        memset(payload, i & 0xff, sizeof(payload));
        assert_int_equal(thaw_chan_send_frame(c, THAW_IPC_REQ_BODY, (uint32_t)i, payload,
                                              sizeof(payload)), 0);
    }
    got = 0;
    for (spins = 0; got < (size_t)N * (PAYLOAD + 12) && spins < 1000000; spins++) {
        ssize_t n;
        uv_run(&loop, UV_RUN_NOWAIT);
        while ((n = read(sv[1], in + got, sizeof(in) - got)) > 0)
            got += (size_t)n;
    }
    assert_int_equal(got, (size_t)N * (PAYLOAD + 12));
    for (off = 0; off < got; seen++) {
        struct thaw_ipc_frame f;
        int used = thaw_ipc_decode(in + off, got - off, &f);
        assert_true(used > 0);
        assert_int_equal(f.stream, (uint32_t)seen);
        assert_int_equal(f.len, PAYLOAD);
        assert_int_equal(f.payload[0], seen & 0xff);
        off += (size_t)used;
    }
    assert_int_equal(seen, N);
    assert_int_equal(thaw_chan_queued(c), 0);
    assert_int_equal(drains, 1);
    thaw_chan_close(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(many_fds_queued_before_the_peer_reads),
        cmocka_unit_test(a_burst_over_the_socket_buffer_arrives_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
