/* thaw-pidns-init: the init of a worker version's pid namespace
 * (keeper.c). The template is forked into the namespace as pid 2, its
 * instances after it, and whatever they fork; the kernel kills all of
 * them when this process exits, which it does when the supervisor closes
 * the template's channel: the version is gone, so is everything of it.
 * Until then it reaps the orphans that are reparented to it. A separate
 * tiny process rather than the template: the template must be free to
 * exit on its own (a draining version keeps its template only while
 * instances live, and the namespace goes with it then). It runs no Python.
 *
 * A program of its own, statically linked, that the zygote starts with
 * vfork + exec (keeper.c).
 *
 * usage: thaw-pidns-init 0 (started by thaw only; fd 0 is a copy of the
 * template's end of its channel) */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* fd 0 reports POLLHUP (or POLLRDHUP) once the supervisor's end of the
 * template's channel is closed, however that happened; data on it is the
 * template's to read, never this process's (POLLIN is not asked for). */
int main(int argc, char **argv)
{
    sigset_t set;
    int sfd;

    if (argc != 2 || strcmp(argv[1], "0") != 0) {
        fprintf(stderr, "usage: thaw-pidns-init 0 (started by thaw)\n");
        return 2;
    }
    /* set, not added to: the zygote blocked every signal around the
     * vfork, and a mask survives exec */
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_SETMASK, &set, NULL);
    prctl(PR_SET_NAME, "thaw-pidns-init", 0, 0, 0);
    /* nothing of this process to read through /proc for the version's
     * processes, which share its namespace */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    syscall(SYS_close_range, 1, ~0U, 0);
    /* without it, a poll of a second at a time does the reaping */
    sfd = signalfd(-1, &set, SFD_CLOEXEC);
    for (;;) {
        struct pollfd pfd[2] = {{0, POLLRDHUP, 0}, {sfd, POLLIN, 0}};
        struct signalfd_siginfo si;

        if (poll(pfd, sfd < 0 ? 1 : 2, sfd < 0 ? 1000 : -1) < 0 && errno != EINTR)
            return 1;
        if (pfd[0].revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL))
            return 0; /* the version is gone: the kernel ends the rest */
        if (sfd >= 0 && (pfd[1].revents & POLLIN) && read(sfd, &si, sizeof(si)) < 0)
            return 1;
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
    }
}
