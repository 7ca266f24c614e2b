#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pool/proc.h"
#include "pool/procops.h"
#include "util/fd.h"

void thaw_proc_init(struct thaw_proc *p, void *data)
{
    p->state = PROC_NONE;
    p->pid = -1;
    p->pidfd = -1;
    p->loop = NULL;
    p->on_exit = p->on_closed = NULL;
    p->data = data;
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct thaw_proc *p = h->data;

    uv_poll_stop(h);
    if (p->state != PROC_RUNNING)
        return;
    p->state = PROC_EXITED;
    p->on_exit(p);
}

int thaw_proc_watch(struct thaw_proc *p, uv_loop_t *loop, pid_t pid, int pidfd,
                    thaw_proc_cb on_exit)
{
    int rc;

    if (p->state != PROC_NONE) {
        close(pidfd);
        return -EBUSY;
    }
    if ((rc = uv_poll_init(loop, &p->poll, pidfd))) {
        thaw_proc_ops->signal(pidfd, SIGKILL);
        close(pidfd);
        return rc;
    }
    p->loop = loop;
    p->pid = pid;
    p->pidfd = pidfd;
    p->on_exit = on_exit;
    p->poll.data = p;
    p->state = PROC_RUNNING;
    uv_poll_start(&p->poll, UV_READABLE, on_poll);
    return 0;
}

void thaw_proc_signal(struct thaw_proc *p, int sig)
{
    if (p->state == PROC_RUNNING)
        thaw_proc_ops->signal(p->pidfd, sig);
}

int thaw_proc_alive(const struct thaw_proc *p)
{
    struct pollfd q = {.fd = p->pidfd, .events = POLLIN};

    if (p->state != PROC_RUNNING)
        return 0;
    return poll(&q, 1, 0) == 0;
}

static void on_poll_closed(uv_handle_t *h)
{
    struct thaw_proc *p = h->data;

    /* the poll is gone from the loop: only now may the number be reused */
    thaw_close_fd(p->loop, p->pidfd);
    p->pidfd = -1;
    p->state = PROC_CLOSED;
    p->on_closed(p);
}

int thaw_proc_close(struct thaw_proc *p, thaw_proc_cb on_closed)
{
    if (p->state != PROC_RUNNING && p->state != PROC_EXITED) {
        if (p->state == PROC_NONE)
            p->state = PROC_CLOSED;
        return p->state == PROC_CLOSING;
    }
    p->state = PROC_CLOSING;
    p->on_closed = on_closed;
    uv_close((uv_handle_t *)&p->poll, on_poll_closed);
    return 1;
}
