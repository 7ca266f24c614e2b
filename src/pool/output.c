/* Worker output, one pipe per worker version (output.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool/output.h"
#include "util/log.h"

enum { PIPE_OPEN, PIPE_CLOSING, PIPE_CLOSED };

struct thaw_outpipe {
    uv_pipe_t pipe;
    int state;
    int owner_gone;              /* thaw_outpipe_free was called */
    char name[128];              /* the worker: the pipe's, never the text's */
    char *line;                  /* THAW_OUT_LINE_MAX bytes, made at first output */
    size_t len;
    int long_line;               /* the line in progress went past the buffer:
                                    its head was handed on, the rest is logged */
    thaw_outpipe_line_cb on_line;
    void *data;
    struct thaw_outpipe *prev, *next; /* the open pipes (drained at exit) */
};

static struct thaw_outpipe *open_pipes;
static char readbuf[65536];
static int log_fd = 2;

void thaw__outpipe_set_log_fd(int fd) { log_fd = fd; }

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

/* ---- the log: what one read produced, written with one write() ------- */

static char stage[65536];
static size_t stage_len;

/* thaw's stderr gets every byte, in order. */
static void copy_out(const char *p, size_t n)
{
    while (n) {
        ssize_t k = write(log_fd, p, n);
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

static void stage_flush(void)
{
    if (!stage_len)
        return;
    thaw_log_flush(); /* request lines buffered before this output come first */
    copy_out(stage, stage_len);
    stage_len = 0;
}

static void stage_put(const char *p, size_t n)
{
    if (n > sizeof(stage) - stage_len)
        stage_flush();
    if (n > sizeof(stage)) {
        copy_out(p, n);
        return;
    }
    memcpy(stage + stage_len, p, n);
    stage_len += n;
}

/* Worker text into the log, control characters (but tab) as \xNN. */
static void log_text(const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, from = 0;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
        if ((c >= 0x20 && c != 0x7f) || c == '\t')
            continue;
        stage_put(p + from, i - from);
        stage_put(esc, sizeof(esc));
        from = i + 1;
    }
    stage_put(p + from, n - from);
}

/* ---- lines ------------------------------------------------------------ */

/* The line buffered so far, whole (cut 0) or its head (cut 1: the rest
 * follows in the log only). */
static void emit(struct thaw_outpipe *o, int cut)
{
    char name[128];
    long long req = -1;
    size_t off = 0;

    if (thaw_outpipe_parse(o->line, o->len, name, sizeof(name), &req, &off) != 0 ||
        strcmp(name, o->name) != 0) {
        /* untagged, or tagged with another worker's name: this worker's
         * line all the same, shown whole under its own name */
        req = -1;
        off = 0;
        stage_put("[", 1);
        stage_put(o->name, strlen(o->name));
        stage_put("] ", 2);
    }
    log_text(o->line, o->len);
    if (!cut)
        stage_put("\n", 1);
    if (o->on_line && !o->owner_gone)
        o->on_line(o->data, req, o->line + off, o->len - off, cut);
    o->len = 0;
}

void thaw__outpipe_feed(struct thaw_outpipe *o, const char *p, size_t n)
{
    if (!o->line && !(o->line = malloc(THAW_OUT_LINE_MAX)))
        return; /* no memory for a line: its output is lost, not the supervisor */
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t k = nl ? (size_t)(nl - p) : n;

        if (o->long_line) {
            log_text(p, k);
        } else if (o->len + k > THAW_OUT_LINE_MAX) {
            size_t room = THAW_OUT_LINE_MAX - o->len;
            memcpy(o->line + o->len, p, room);
            o->len += room;
            emit(o, 1);
            o->long_line = 1;
            log_text(p + room, k - room);
        } else {
            memcpy(o->line + o->len, p, k);
            o->len += k;
        }
        if (!nl)
            return;
        if (o->long_line) {
            stage_put("\n", 1);
            o->long_line = 0;
        } else {
            emit(o, 0);
        }
        p = nl + 1;
        n -= k + 1;
    }
}

/* A line without its newline when the writers are gone still counts. */
static void end_line(struct thaw_outpipe *o)
{
    if (o->long_line)
        stage_put("\n", 1);
    else if (o->len)
        emit(o, 0);
    o->long_line = 0;
    o->len = 0;
}

/* ---- the pipe --------------------------------------------------------- */

static void unlink_open(struct thaw_outpipe *o)
{
    if (o->prev)
        o->prev->next = o->next;
    else if (open_pipes == o)
        open_pipes = o->next;
    if (o->next)
        o->next->prev = o->prev;
    o->prev = o->next = NULL;
}

static void release(struct thaw_outpipe *o)
{
    free(o->line);
    free(o);
}

static void on_closed(uv_handle_t *h)
{
    struct thaw_outpipe *o = h->data;

    o->state = PIPE_CLOSED;
    if (o->owner_gone)
        release(o);
}

/* The one close path of the handle (and so of its fd). */
static void shut(struct thaw_outpipe *o)
{
    if (o->state != PIPE_OPEN)
        return;
    end_line(o);
    stage_flush();
    unlink_open(o);
    o->state = PIPE_CLOSING;
    uv_close((uv_handle_t *)&o->pipe, on_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    *buf = uv_buf_init(readbuf, sizeof(readbuf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct thaw_outpipe *o = s->data;

    if (n > 0) {
        thaw__outpipe_feed(o, buf->base, (size_t)n);
        stage_flush();
    } else if (n < 0) {
        shut(o); /* EOF: the template, its instances and their children are gone */
    }
}

/* What is in the pipe now (its writers may be gone: no wait). */
static void drain(struct thaw_outpipe *o)
{
    uv_os_fd_t fd;
    ssize_t n;

    if (o->state != PIPE_OPEN || uv_fileno((uv_handle_t *)&o->pipe, &fd))
        return;
    while ((n = read(fd, readbuf, sizeof(readbuf))) > 0) /* libuv made it non-blocking */
        thaw__outpipe_feed(o, readbuf, (size_t)n);
    stage_flush();
}

int thaw_outpipe_open(uv_loop_t *loop, const char *name, thaw_outpipe_line_cb on_line,
                      void *data, struct thaw_outpipe **out, int *write_fd)
{
    struct thaw_outpipe *o = calloc(1, sizeof(*o));
    int fds[2], rc;

    if (!o)
        return -ENOMEM;
    if (pipe2(fds, O_CLOEXEC) < 0) {
        rc = -errno;
        free(o);
        return rc;
    }
    snprintf(o->name, sizeof(o->name), "%s", name);
    o->on_line = on_line;
    o->data = data;
    if ((rc = uv_pipe_init(loop, &o->pipe, 0))) {
        close(fds[0]);
        close(fds[1]);
        free(o);
        return rc;
    }
    o->pipe.data = o;
    o->state = PIPE_OPEN;
    o->next = open_pipes;
    if (open_pipes)
        open_pipes->prev = o;
    open_pipes = o;
    if ((rc = uv_pipe_open(&o->pipe, fds[0])))
        close(fds[0]); /* not taken: the handle has no fd to close */
    else
        rc = uv_read_start((uv_stream_t *)&o->pipe, on_alloc, on_read);
    if (rc) {
        close(fds[1]);
        o->owner_gone = 1; /* nobody holds it: on_closed frees it */
        shut(o);
        return rc;
    }
    *out = o;
    *write_fd = fds[1];
    return 0;
}

void thaw_outpipe_free(struct thaw_outpipe *o)
{
    if (!o)
        return;
    drain(o);
    shut(o); /* its last line still reaches on_line: the owner is alive */
    o->owner_gone = 1;
    if (o->state == PIPE_CLOSED)
        release(o);
    /* PIPE_CLOSING: on_closed releases it */
}

void thaw_outpipe_drain_all(void)
{
    struct thaw_outpipe *o;

    for (o = open_pipes; o; o = o->next) {
        drain(o);
        end_line(o);
    }
    stage_flush();
}
