/* The init of a worker version's pid namespace. Instances are forked into
 * that namespace, so they see (and can signal) only their own siblings,
 * never the supervisor, the template or another worker. The kernel kills
 * every process of a pid namespace when its init dies, so the init is a
 * separate tiny process rather than the first instance, and it outlives
 * the template for as long as instances are left (a killed template must
 * not take its live instances with it). It runs no Python. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/sandbox-internal.h"

/* life_fd is the read end of a pipe whose write end the template and
 * every instance hold (instances inherit it at fork): it reports POLLHUP
 * once all of them are gone, however they went (a SIGKILL included), which
 * a parent-death signal cannot promise (it races with the fork, and says
 * nothing of the instances). */
static void __attribute__((noreturn)) keeper_main(int report_fd, int life_fd)
{
    struct timespec tick = {1, 0};
    sigset_t set;
    siginfo_t si;
    int e = 0;

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    prctl(PR_SET_NAME, "thaw-pidns-init", 0, 0, 0);
    /* this namespace's own /proc: an instance lists only its siblings */
    if (mount("proc", "/proc", "proc", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
        e = errno;
    if (write(report_fd, &e, sizeof(e)) < 0 || e)
        _exit(1);
    if (dup2(life_fd, 0) < 0)
        _exit(1);
    syscall(SYS_close_range, 1, ~0U, 0);
    for (;;) {
        struct pollfd pfd = {0, POLLIN, 0};

        /* a signal (SIGCHLD) or a second, whichever comes first */
        sigtimedwait(&set, &si, &tick);
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        if (poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR)) &&
            waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD)
            _exit(0); /* nobody is left to hold the namespace open for */
    }
}

int thaw__sb_pidns_init(char *err, size_t errlen)
{
    int p[2], life[2], e = 0;
    pid_t pid;
    ssize_t n;

    if (pipe2(p, O_CLOEXEC))
        return thaw__sb_fail(err, errlen, "pipe");
    if (pipe2(life, O_CLOEXEC)) {
        close(p[0]);
        close(p[1]);
        return thaw__sb_fail(err, errlen, "pipe");
    }
    pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        close(life[0]);
        close(life[1]);
        return thaw__sb_fail(err, errlen, "fork the pid namespace's init");
    }
    if (pid == 0) {
        close(p[0]);
        close(life[1]);
        keeper_main(p[1], life[0]);
    }
    /* life[1] stays open in the template for good, and every instance
     * inherits it: the keeper sees it close when the last of them exits */
    close(life[0]);
    close(p[1]);
    n = read(p[0], &e, sizeof(e));
    close(p[0]);
    if (n != sizeof(e) || e) {
        errno = n == sizeof(e) ? e : EIO;
        return thaw__sb_fail(err, errlen, "mount /proc of the instances' pid namespace");
    }
    return 0;
}
