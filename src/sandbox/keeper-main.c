/* thaw-pidns-init: the init of a worker version's pid namespace.
 * Instances are forked into that namespace, so they see (and can signal)
 * only their own siblings, never the supervisor, the template or another
 * worker. The kernel kills every process of a pid namespace when its init
 * dies, so the init is a separate tiny process rather than the first
 * instance, and it outlives the template for as long as instances are left
 * (a killed template must not take its live instances with it). It runs
 * no Python.
 *
 * A program of its own, statically linked, that the template starts with
 * vfork + exec (keeper.c): forking the template itself, a Python process
 * of 40-100 MB, took 1.3-2.5 ms of every template build.
 *
 * usage: thaw-pidns-init REPORT_FD LIFE_FD (started by thaw only) */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* life_fd is the read end of a pipe whose write end the template and
 * every instance hold (instances inherit it at fork): it reports POLLHUP
 * once all of them are gone, however they went (a SIGKILL included), which
 * a parent-death signal cannot promise (it races with the fork, and says
 * nothing of the instances). report_fd gets 0, or the errno of mounting
 * /proc. */
int main(int argc, char **argv)
{
    struct timespec tick = {1, 0};
    int report_fd, life_fd, e = 0;
    sigset_t set;
    siginfo_t si;

    if (argc != 3) {
        fprintf(stderr, "usage: thaw-pidns-init REPORT_FD LIFE_FD (started by thaw)\n");
        return 2;
    }
    report_fd = atoi(argv[1]);
    life_fd = atoi(argv[2]);
    /* set, not added to: the template blocked every signal around the
     * vfork, and a mask survives exec */
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_SETMASK, &set, NULL);
    prctl(PR_SET_NAME, "thaw-pidns-init", 0, 0, 0);
    /* this namespace's own /proc: an instance lists only its siblings */
    if (mount("proc", "/proc", "proc", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
        e = errno;
    if (write(report_fd, &e, sizeof(e)) < 0 || e)
        return 1;
    if (dup2(life_fd, 0) < 0)
        return 1;
    syscall(SYS_close_range, 1, ~0U, 0);
    for (;;) {
        struct pollfd pfd = {0, POLLIN, 0};

        /* a signal (SIGCHLD) or a second, whichever comes first */
        sigtimedwait(&set, &si, &tick);
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        if (poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR)) &&
            waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD)
            return 0; /* nobody is left to hold the namespace open for */
    }
}
