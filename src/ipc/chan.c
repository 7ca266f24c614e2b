#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc/chan.h"
#include "util/fd.h"

#define READ_CHUNK (256 * 1024)
/* A drained buffer bigger than this is given back: a channel lives as
 * long as its instance or zygote, and thaw has one per worker version, so
 * keeping every channel's high-water buffer (at least READ_CHUNK in, the
 * largest burst out) made the supervisor's heap grow with the number of
 * channels and the sizes they ever saw (issue 15, the soak's RSS). */
#define KEEP_IDLE (16 * 1024)
#define OUT_MAX (256u * 1024 * 1024)
#define MAX_FDS 64
/* fds queued to send: one per frame that carries one, so a burst (every
 * worker's template build at a start of thaw serve sends two to the
 * zygote before it reads any) needs many; each is an fd thaw holds, so
 * RLIMIT_NOFILE bounds them before this does */
#define MAX_OUT_FDS 65536

struct pending_fd {
    size_t off; /* absolute offset in the out stream where the fd rides */
    int fd;
};

struct thaw_chan {
    uv_poll_t poll;
    /* Output goes out once per loop iteration, written straight away (no
     * wait for EPOLLOUT): `flusher` (a check: right after the I/O
     * callbacks that queued most frames) writes, and `nudge` (an idle)
     * keeps the poll before it from sleeping when frames were queued
     * outside it (a timer, the server's prepare). Only a full socket arms
     * UV_WRITABLE. Each uv_poll_start costs an epoll_ctl DEL and ADD in
     * libuv, and arming it per batch cost two per batch and one turn of
     * the loop (issue 16). */
    uv_check_t flusher;
    uv_idle_t nudge;
    int flush_armed;
    int want_write;   /* a write met EAGAIN: wait for UV_WRITABLE */
    int handles;      /* of poll, flusher and nudge, not yet closed */
    int fd;
    int events;
    int reading;
    int closed;
    int dispatching;
    thaw_chan_frame_cb on_frame;
    thaw_chan_close_cb on_close;
    thaw_chan_drain_cb on_drain;
    int was_high;
    void *data;

    struct thaw_buf in;
    int in_fds[MAX_FDS];
    int n_in_fds;

    struct thaw_buf out;
    size_t out_head;  /* bytes of out already written */
    size_t out_base;  /* absolute stream offset of out.data[0] */
    struct pending_fd *out_fds; /* grown up to MAX_OUT_FDS */
    int n_out_fds, cap_out_fds;
};

static void on_poll(uv_poll_t *h, int status, int events);
static void on_flush(uv_check_t *h);
static void on_nudge(uv_idle_t *h) {}

static void update_poll(struct thaw_chan *c)
{
    int ev = 0;

    if (c->closed)
        return;
    if (c->reading)
        ev |= UV_READABLE;
    if (c->want_write && c->out.len > c->out_head)
        ev |= UV_WRITABLE;
    if (ev == c->events)
        return;
    c->events = ev;
    if (ev)
        uv_poll_start(&c->poll, ev, on_poll);
    else
        uv_poll_stop(&c->poll);
}

int thaw_chan_open(uv_loop_t *loop, int fd, thaw_chan_frame_cb on_frame,
                   thaw_chan_close_cb on_close, void *data,
                   struct thaw_chan **out)
{
    struct thaw_chan *c = calloc(1, sizeof(*c));
    int rc;

    if (!c)
        return -ENOMEM;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    c->fd = fd;
    c->on_frame = on_frame;
    c->on_close = on_close;
    c->data = data;
    thaw_buf_init(&c->in, THAW_IPC_MAX_PAYLOAD + THAW_IPC_HEADER_SIZE + READ_CHUNK);
    thaw_buf_init(&c->out, OUT_MAX);
    if ((rc = uv_poll_init(loop, &c->poll, fd))) {
        free(c);
        return rc;
    }
    uv_check_init(loop, &c->flusher);
    uv_idle_init(loop, &c->nudge);
    c->handles = 3;
    c->poll.data = c->flusher.data = c->nudge.data = c;
    c->reading = 1;
    update_poll(c);
    *out = c;
    return 0;
}

int thaw_chan_fd(const struct thaw_chan *c) { return c->fd; }

void thaw_chan_on_drain(struct thaw_chan *c, thaw_chan_drain_cb cb)
{
    c->on_drain = cb;
}

size_t thaw_chan_queued(const struct thaw_chan *c)
{
    return c->out.len - c->out_head;
}

int thaw_chan_flush_pending(const struct thaw_chan *c)
{
    return c->flush_armed && !c->want_write;
}

static void free_chan(uv_handle_t *h)
{
    struct thaw_chan *c = h->data;
    int i;

    if (--c->handles > 0)
        return; /* the last of its three handles frees it */
    /* only now, with the poll out of the loop, may the fd number be
     * reused (util/fd.h) */
    thaw_close_fd(h->loop, c->fd);
    for (i = 0; i < c->n_in_fds; i++)
        close(c->in_fds[i]);
    for (i = 0; i < c->n_out_fds; i++)
        close(c->out_fds[i].fd);
    free(c->out_fds);
    thaw_buf_free(&c->in);
    thaw_buf_free(&c->out);
    free(c);
}

static void close_handles(struct thaw_chan *c)
{
    if (uv_is_closing((uv_handle_t *)&c->poll))
        return;
    uv_close((uv_handle_t *)&c->poll, free_chan);
    uv_close((uv_handle_t *)&c->flusher, free_chan);
    uv_close((uv_handle_t *)&c->nudge, free_chan);
}

void thaw_chan_close(struct thaw_chan *c)
{
    if (c->closed)
        return;
    c->closed = 1;
    uv_poll_stop(&c->poll);
    uv_check_stop(&c->flusher);
    uv_idle_stop(&c->nudge);
    /* the peer sees EOF now; the fd itself is closed after the poll
     * (free_chan): closed here, while a dispatch defers the uv_close, a
     * socketpair opened meanwhile would get its number and lose its
     * epoll registration to that uv_close */
    shutdown(c->fd, SHUT_RDWR);
    if (!c->dispatching)
        close_handles(c);
}

static void fail(struct thaw_chan *c, int err)
{
    if (c->closed)
        return;
    c->dispatching++;
    c->on_close(c, err, c->data);
    c->dispatching--;
    thaw_chan_close(c);
}

void thaw_chan_read_stop(struct thaw_chan *c)
{
    c->reading = 0;
    update_poll(c);
}

void thaw_chan_read_start(struct thaw_chan *c)
{
    c->reading = 1;
    update_poll(c);
}

/* Output was queued: write it at the end of this loop iteration. */
static void arm_flush(struct thaw_chan *c)
{
    if (c->was_high || thaw_chan_queued(c) > THAW_CHAN_HIGH)
        c->was_high = 1;
    if (c->want_write) {
        update_poll(c); /* the socket is full: UV_WRITABLE says when */
        return;
    }
    if (c->flush_armed)
        return;
    c->flush_armed = 1;
    uv_check_start(&c->flusher, on_flush);
    uv_idle_start(&c->nudge, on_nudge);
}

/* Before a frame is appended: room in the fd list, written space
 * reclaimed. 0, or -EPIPE / -ENOBUFS (fd_to_pass closed). */
static int begin_frame(struct thaw_chan *c, int fd_to_pass)
{
    if (c->closed) {
        if (fd_to_pass >= 0)
            close(fd_to_pass);
        return -EPIPE;
    }
    if (fd_to_pass >= 0 && c->n_out_fds == c->cap_out_fds) {
        int cap = c->cap_out_fds ? 2 * c->cap_out_fds : 16;
        struct pending_fd *more = cap <= MAX_OUT_FDS
            ? realloc(c->out_fds, (size_t)cap * sizeof(*more)) : NULL;

        if (!more) {
            close(fd_to_pass);
            return -ENOBUFS;
        }
        c->out_fds = more;
        c->cap_out_fds = cap;
    }
    /* reclaim written space before growing */
    if (c->out_head == c->out.len) {
        c->out_base += c->out_head;
        c->out.len = c->out_head = 0;
    } else if (c->out_head > c->out.len / 2 && c->out_head > 65536) {
        thaw_buf_consume(&c->out, c->out_head);
        c->out_base += c->out_head;
        c->out_head = 0;
    }
    return 0;
}

/* The frame that starts at out.data[start] is complete. */
static void end_frame(struct thaw_chan *c, size_t start, int fd_to_pass)
{
    if (fd_to_pass >= 0) {
        c->out_fds[c->n_out_fds].off = c->out_base + start;
        c->out_fds[c->n_out_fds].fd = fd_to_pass;
        c->n_out_fds++;
    }
    arm_flush(c);
}

int thaw_chan_send(struct thaw_chan *c, const void *frame, size_t len,
                   int fd_to_pass)
{
    size_t start;
    int rc;

    if ((rc = begin_frame(c, fd_to_pass)))
        return rc;
    start = c->out.len;
    if (thaw_buf_append(&c->out, frame, len)) {
        if (fd_to_pass >= 0)
            close(fd_to_pass);
        return -ENOBUFS;
    }
    end_frame(c, start, fd_to_pass);
    return 0;
}

int thaw_chan_send_frame(struct thaw_chan *c, uint8_t type, uint32_t stream,
                         const void *payload, size_t n)
{
    size_t mark;
    int rc;

    if ((rc = begin_frame(c, -1)))
        return rc;
    if (thaw_ipc_begin(&c->out, type, 0, stream, &mark) ||
        (n && thaw_ipc_put_raw(&c->out, payload, n)) || thaw_ipc_end(&c->out, mark)) {
        c->out.len = mark; /* no partial frame stays queued */
        return -ENOBUFS;
    }
    end_frame(c, mark, -1);
    return 0;
}

int thaw_chan_send_fields(struct thaw_chan *c, uint8_t type, uint32_t stream,
                          int fd_to_pass, int nfields, const char **fields)
{
    size_t mark;
    int i, rc;

    if ((rc = begin_frame(c, fd_to_pass)))
        return rc;
    /* encoded in place, at the end of the queue */
    rc = thaw_ipc_begin(&c->out, type, fd_to_pass >= 0 ? THAW_IPC_F_FD : 0, stream, &mark);
    for (i = 0; !rc && i < nfields; i++)
        rc = thaw_ipc_put_str(&c->out, fields[i]);
    if (!rc)
        rc = thaw_ipc_end(&c->out, mark);
    if (rc) {
        c->out.len = mark;
        if (fd_to_pass >= 0)
            close(fd_to_pass);
        return rc == THAW_IPC_E_TOOBIG ? rc : -ENOBUFS;
    }
    end_frame(c, mark, fd_to_pass);
    return 0;
}

/* Writes as much as the socket takes; an fd goes out on the first byte of
 * its frame, so a write never runs past the next fd's offset. */
static int do_write(struct thaw_chan *c)
{
    while (c->out_head < c->out.len) {
        size_t pos = c->out_base + c->out_head;
        size_t end = c->out.len - c->out_head;
        struct msghdr msg = {0};
        struct iovec iov;
        char cbuf[CMSG_SPACE(sizeof(int))];
        int with_fd = 0;
        ssize_t n;

        if (c->n_out_fds) {
            size_t off = c->out_fds[0].off;
            if (off == pos)
                with_fd = 1;
            else if (off - pos < end)
                end = off - pos;
        }
        if (with_fd && c->n_out_fds > 1 && c->out_fds[1].off - pos < end)
            end = c->out_fds[1].off - pos;
        iov.iov_base = c->out.data + c->out_head;
        iov.iov_len = end;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        if (with_fd) {
            struct cmsghdr *cm;
            memset(cbuf, 0, sizeof(cbuf));
            msg.msg_control = cbuf;
            msg.msg_controllen = sizeof(cbuf);
            cm = CMSG_FIRSTHDR(&msg);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(cm), &c->out_fds[0].fd, sizeof(int));
        }
        n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            return -errno;
        }
        if (with_fd) {
            close(c->out_fds[0].fd);
            memmove(c->out_fds, c->out_fds + 1,
                    (size_t)(--c->n_out_fds) * sizeof(c->out_fds[0]));
        }
        c->out_head += (size_t)n;
    }
    return 0;
}

static int do_read(struct thaw_chan *c)
{
    char cbuf[CMSG_SPACE(sizeof(int) * 8)];
    struct msghdr msg = {0};
    struct iovec iov;
    struct cmsghdr *cm;
    ssize_t n;
    size_t off;
    int rc;

    if ((rc = thaw_buf_reserve(&c->in, READ_CHUNK)))
        return THAW_IPC_E_TOOBIG;
    iov.iov_base = c->in.data + c->in.len;
    iov.iov_len = c->in.cap - c->in.len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof(cbuf);
    n = recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0)
        return (errno == EAGAIN || errno == EINTR) ? 1 : -errno;
    for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            int k, nfd = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (k = 0; k < nfd; k++) {
                int fd;
                memcpy(&fd, CMSG_DATA(cm) + k * sizeof(int), sizeof(int));
                if (c->n_in_fds < MAX_FDS)
                    c->in_fds[c->n_in_fds++] = fd;
                else
                    close(fd);
            }
        }
    }
    if (n == 0)
        return 0; /* EOF */
    c->in.len += (size_t)n;

    off = 0;
    c->dispatching++;
    /* every complete frame is delivered even if a callback paused
     * reading: pausing only stops the next recvmsg */
    while (!c->closed) {
        struct thaw_ipc_frame f;
        int used = thaw_ipc_decode((uint8_t *)c->in.data + off,
                                   c->in.len - off, &f);
        int fd = -1;
        if (used == 0)
            break;
        if (used < 0) {
            c->dispatching--;
            return used;
        }
        if (f.flags & THAW_IPC_F_FD) {
            if (c->n_in_fds) {
                fd = c->in_fds[0];
                memmove(c->in_fds, c->in_fds + 1,
                        (size_t)(--c->n_in_fds) * sizeof(int));
            }
        }
        off += (size_t)used;
        c->on_frame(c, &f, fd, c->data);
    }
    c->dispatching--;
    if (c->closed)
        return 1;
    thaw_buf_consume(&c->in, off);
    if (c->in.len == 0 && c->in.cap > KEEP_IDLE)
        thaw_buf_free(&c->in);
    return 1;
}

/* After a write: the caller may produce again once the queue is low. */
static int after_write(struct thaw_chan *c)
{
    if (c->was_high && thaw_chan_queued(c) < THAW_CHAN_LOW) {
        c->was_high = 0;
        if (c->on_drain) {
            c->dispatching++;
            c->on_drain(c, c->data);
            c->dispatching--;
        }
    }
    return c->closed ? -1 : 0;
}

/* Writes what is queued; a full socket waits for UV_WRITABLE. */
static int write_out(struct thaw_chan *c)
{
    int rc = do_write(c);

    if (rc < 0)
        return rc;
    c->want_write = c->out_head < c->out.len;
    return 0;
}

static void on_flush(uv_check_t *h)
{
    struct thaw_chan *c = h->data;
    int rc;

    uv_check_stop(&c->flusher);
    uv_idle_stop(&c->nudge);
    c->flush_armed = 0;
    if (c->closed)
        return;
    if ((rc = write_out(c)) < 0) {
        fail(c, rc);
        goto out;
    }
    if (after_write(c) < 0)
        goto out;
    update_poll(c);
out:
    if (c->closed && !c->dispatching)
        close_handles(c);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct thaw_chan *c = h->data;
    int rc;

    if (status < 0) {
        fail(c, status);
        goto out;
    }
    if ((events & UV_WRITABLE) && c->want_write) {
        if ((rc = write_out(c)) < 0) {
            fail(c, rc);
            goto out;
        }
        if (after_write(c) < 0)
            goto out;
    }
    if ((events & (UV_READABLE | UV_DISCONNECT)) && c->reading) {
        rc = do_read(c);
        if (rc <= 0) {
            fail(c, rc);
            goto out;
        }
    }
    update_poll(c);
out:
    if (c->closed && !c->dispatching)
        close_handles(c);
}
