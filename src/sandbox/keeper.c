/* The init of a worker version's pid namespace. Instances are forked into
 * that namespace, so they see (and can signal) only their own siblings,
 * never the supervisor, the template or another worker. The kernel kills
 * every process of a pid namespace when its init dies, so the init is a
 * separate tiny process rather than the first instance, and it outlives
 * the template for as long as instances are left (a killed template must
 * not take its live instances with it). It runs no Python. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/sandbox-internal.h"

static void __attribute__((noreturn)) keeper_main(int report_fd)
{
    sigset_t set;
    siginfo_t si;
    int orphaned = 0, e = 0;

    /* told through SIGTERM when the template exits; the signal comes from
     * outside this namespace, so its si_pid is 0 (an instance cannot fake
     * it: its own pids are all > 0 here) */
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    prctl(PR_SET_NAME, "thaw-pidns-init", 0, 0, 0);
    /* this namespace's own /proc: an instance lists only its siblings */
    if (mount("proc", "/proc", "proc", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
        e = errno;
    if (write(report_fd, &e, sizeof(e)) < 0 || e)
        _exit(1);
    syscall(SYS_close_range, 0, ~0U, 0);
    for (;;) {
        if (sigwaitinfo(&set, &si) == SIGTERM && si.si_pid == 0)
            orphaned = 1;
        for (;;) {
            pid_t p = waitpid(-1, NULL, WNOHANG);
            if (p > 0)
                continue;
            if (p < 0 && errno == ECHILD && orphaned)
                _exit(0);
            break;
        }
    }
}

int thaw__sb_pidns_init(char *err, size_t errlen)
{
    int p[2], e = 0;
    pid_t pid;
    ssize_t n;

    if (pipe2(p, O_CLOEXEC))
        return thaw__sb_fail(err, errlen, "pipe");
    pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return thaw__sb_fail(err, errlen, "fork the pid namespace's init");
    }
    if (pid == 0) {
        close(p[0]);
        keeper_main(p[1]);
    }
    close(p[1]);
    n = read(p[0], &e, sizeof(e));
    close(p[0]);
    if (n != sizeof(e) || e) {
        errno = n == sizeof(e) ? e : EIO;
        return thaw__sb_fail(err, errlen, "mount /proc of the instances' pid namespace");
    }
    return 0;
}
