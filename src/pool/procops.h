/* The pool's seam to real processes: the few operations through which
 * src/pool/ makes and stops processes. thaw uses the zygote and pidfds
 * (procops.c); unit tests (tests/unit/test_pool_*.c) put fakes here and
 * drive the pool without Python.
 *
 * Instances need no operation of their own: a template forks them when it
 * reads a SPAWN frame on its channel and answers SPAWNED with the new
 * process's pidfd, so a fake template (the other end of that channel) is
 * also the fake fork of instances. A "pidfd" only has to be an fd that
 * polls readable once the process is gone (an eventfd does, in tests). */
#ifndef THAW_POOL_PROCOPS_H
#define THAW_POOL_PROCOPS_H

#include <sys/types.h>

#include "zygote/client.h"

struct thaw_version;

struct thaw_proc_ops {
    /* Forks v's template. It takes over chan_fd (its end of the template
     * channel) and out_fd (its fd 1 and 2), also on error. Later, once:
     * cb(v, pid, pidfd, NULL), or cb(v, -1, -1, why). Returns 0, or a
     * negative errno and cb is never called. */
    int (*fork_template)(struct thaw_version *v, int chan_fd, int out_fd,
                         const char *sandbox_json, thaw_forked_cb cb);
    /* v goes while its fork_template is pending: cb must not be called,
     * and the process it makes is killed. */
    void (*forget_template)(struct thaw_version *v);
    /* Sends sig to the process behind pidfd. */
    int (*signal)(int pidfd, int sig);
};

/* The operations in use (default: thaw_proc_ops_real). */
extern const struct thaw_proc_ops *thaw_proc_ops;
extern const struct thaw_proc_ops thaw_proc_ops_real;

#endif
