/* The real process operations: the zygote forks templates, pidfds carry
 * signals (pool/procops.h). */
#include <sys/syscall.h>
#include <unistd.h>

#include "pool/pool.h"
#include "pool/procops.h"

static int real_fork_template(struct thaw_version *v, int chan_fd, int out_fd,
                              const char *sandbox_json, thaw_forked_cb cb)
{
    struct thaw_worker *w = v->worker;

    if (!v->zygote) {
        close(chan_fd);
        close(out_fd);
        return -1;
    }
    return thaw_zygote_build(v->zygote, v->id, chan_fd, out_fd, w->cfg.name, w->cfg.dir,
                             w->cfg.main, w->cfg.json, sandbox_json, cb, v);
}

static void real_forget_template(struct thaw_version *v)
{
    if (v->zygote)
        thaw_zygote_forget(v->zygote, v);
}

static int real_signal(int pidfd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

const struct thaw_proc_ops thaw_proc_ops_real = {
    .fork_template = real_fork_template,
    .forget_template = real_forget_template,
    .signal = real_signal,
};

const struct thaw_proc_ops *thaw_proc_ops = &thaw_proc_ops_real;
