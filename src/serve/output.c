/* thaw serve's worker output pipe (output.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serve/output.h"

static char readbuf[65536];

int thaw_outpipe_parse(const char *line, size_t n, char *name, size_t name_len,
                       long long *request, size_t *msg_off)
{
    const char *end = line + n, *p, *close;
    size_t k;

    if (n < 3 || line[0] != '[' || !(close = memchr(line, ']', n)))
        return -1;
    for (p = line + 1; p < close && *p != ' '; p++)
        ;
    k = (size_t)(p - line - 1);
    if (k == 0 || k >= name_len)
        return -1;
    memcpy(name, line + 1, k);
    name[k] = '\0';
    *request = -1;
    if (p < close) { /* " req=N" */
        char *num_end;
        if ((size_t)(close - p) < 6 || memcmp(p, " req=", 5) != 0)
            return -1;
        *request = strtoll(p + 5, &num_end, 10);
        if (num_end != close)
            return -1;
    }
    p = close + 1;
    if (p < end && *p == ' ')
        p++;
    *msg_off = (size_t)(p - line);
    return 0;
}

/* thaw's stderr gets every byte, in order. */
static void copy_out(const char *p, size_t n)
{
    while (n) {
        ssize_t k = write(2, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) { /* a non-blocking stderr: wait for room */
                usleep(1000);
                continue;
            }
            return; /* stderr is gone: nothing to do about it */
        }
        p += k;
        n -= (size_t)k;
    }
}

static void emit(struct thaw_outpipe *o)
{
    char name[128];
    long long req;
    size_t off;

    if ((!o->wanted || o->wanted(o->data)) &&
        thaw_outpipe_parse(o->line, o->len, name, sizeof(name), &req, &off) == 0)
        o->on_line(o->data, name, req, o->line + off, o->len - off, o->truncated);
    o->len = 0;
    o->truncated = 0;
}

static void split(struct thaw_outpipe *o, const char *p, size_t n)
{
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t k = nl ? (size_t)(nl - p) : n, room = sizeof(o->line) - o->len;

        if (k > room) {
            o->truncated = 1;
            memcpy(o->line + o->len, p, room);
            o->len += room;
        } else {
            memcpy(o->line + o->len, p, k);
            o->len += k;
        }
        if (!nl)
            return;
        emit(o);
        p = nl + 1;
        n -= k + 1;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    *buf = uv_buf_init(readbuf, sizeof(readbuf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct thaw_outpipe *o = s->data;

    if (n <= 0)
        return; /* EOF: every writer is gone; a restarted zygote gets the same pipe */
    copy_out(buf->base, (size_t)n);
    split(o, buf->base, (size_t)n);
}

int thaw_outpipe_open(struct thaw_outpipe *o, uv_loop_t *loop, int *write_fd)
{
    int fds[2], rc;

    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    if ((rc = uv_pipe_init(loop, &o->pipe, 0)) || (rc = uv_pipe_open(&o->pipe, fds[0]))) {
        close(fds[0]);
        close(fds[1]);
        return rc;
    }
    o->pipe.data = o;
    o->open = 1;
    /* the supervisor keeps the write end too, so the pipe never sees EOF
     * while zygotes come and go */
    *write_fd = fds[1];
    return uv_read_start((uv_stream_t *)&o->pipe, on_alloc, on_read);
}

void thaw_outpipe_drain(struct thaw_outpipe *o)
{
    uv_os_fd_t fd;
    ssize_t n;

    if (!o->open || uv_fileno((uv_handle_t *)&o->pipe, &fd))
        return;
    while ((n = read(fd, readbuf, sizeof(readbuf))) > 0) /* libuv made it non-blocking */
        copy_out(readbuf, (size_t)n);
}
