/* A process the supervisor watches but did not fork (a template or an
 * instance: the zygote or a template is its parent): its pid, the pidfd
 * its forker sent, and a uv_poll_t on that pidfd that says when it exits.
 *
 * States:
 *   NONE     no process yet (thaw_proc_init)
 *   RUNNING  watched: on_exit is called once, when it exits
 *   EXITED   it exited; the pidfd is still open
 *   CLOSING  thaw_proc_close() called: the poll is closing through
 *            uv_close; on_closed follows, after the pidfd is closed
 *   CLOSED   nothing held (also NONE closed)
 * The owner embeds it and must not free it before on_closed (or before
 * thaw_proc_close() returned 0: nothing was open). */
#ifndef THAW_POOL_PROC_H
#define THAW_POOL_PROC_H

#include <sys/types.h>
#include <uv.h>

enum thaw_proc_state { PROC_NONE, PROC_RUNNING, PROC_EXITED, PROC_CLOSING, PROC_CLOSED };

struct thaw_proc;
typedef void (*thaw_proc_cb)(struct thaw_proc *p);

struct thaw_proc {
    enum thaw_proc_state state;
    pid_t pid;
    int pidfd;
    uv_loop_t *loop;
    uv_poll_t poll;
    thaw_proc_cb on_exit;
    thaw_proc_cb on_closed;
    void *data;
};

void thaw_proc_init(struct thaw_proc *p, void *data);
/* Starts watching a process; takes ownership of pidfd (closed here on
 * error, when the process is SIGKILLed: a process thaw cannot watch
 * would be charged to no one). 0 or a negative errno. */
int thaw_proc_watch(struct thaw_proc *p, uv_loop_t *loop, pid_t pid, int pidfd,
                    thaw_proc_cb on_exit);
/* Sends sig while the pidfd is open (a pidfd never hits a reused pid). */
void thaw_proc_signal(struct thaw_proc *p, int sig);
/* Whether the process is alive (a poll of its pidfd, no wait). */
int thaw_proc_alive(const struct thaw_proc *p);
/* Starts closing: returns 1 when on_closed will be called, 0 when there
 * was nothing open (no callback). The process is not signalled. */
int thaw_proc_close(struct thaw_proc *p, thaw_proc_cb on_closed);

#endif
