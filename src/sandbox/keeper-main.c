/* thaw-pidns-init: the init of a worker version's pid namespace
 * (keeper.c). The template is forked into the namespace as pid 2, its
 * instances after it, and whatever they fork; the kernel kills all of
 * them when this process exits, which it does once the supervisor has let
 * go of every channel of the version: the template's (fd 0 here is a copy
 * of its end) and each instance's (the template sends a copy of each on
 * the control socket, fd 1, before forking the instance). The version is
 * gone then, and so is everything of it. Until then it reaps the orphans
 * that are reparented to it. A separate tiny process rather than the
 * template, so a template that dies leaves its instances serving. It runs
 * no Python.
 *
 * What arrives on the control socket comes from a process that runs the
 * worker's top level, so it is checked: only a unix stream socket whose
 * peer lives outside this pid namespace (the supervisor's end of a
 * channel) is held; a socket of the worker's own, whose peer it could keep
 * open for ever, is not.
 *
 * A program of its own, statically linked, that the zygote's helper
 * starts with vfork + exec (keeper.c).
 *
 * usage: thaw-pidns-init 0 (started by thaw only) */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_HELD 4096
#define HUP (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)

/* 0: LIFE, 1: CTL, 2: the signalfd, then the instances' channels */
static struct pollfd pfd[3 + MAX_HELD];
static int n_held;

/* A channel of the supervisor's: a unix stream socket whose peer is not
 * in this namespace (SO_PEERCRED's pid, seen from here, is 0). */
static int supervisors(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    int type, dom;
    socklen_t n = sizeof(int);

    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &n) || dom != AF_UNIX)
        return 0;
    n = sizeof(int);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &n) || type != SOCK_STREAM)
        return 0;
    return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid == 0;
}

/* One message of the control socket: an instance's channel, held. */
static void take(int ctl)
{
    char byte, cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {&byte, 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                       .msg_controllen = sizeof(cbuf)};
    struct cmsghdr *c;
    int fd;

    ssize_t n = recvmsg(ctl, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        pfd[1].fd = -1; /* the template is gone */
    if (n <= 0)
        return;
    c = CMSG_FIRSTHDR(&m);
    if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
        return;
    memcpy(&fd, CMSG_DATA(c), sizeof(int));
    if (n_held < MAX_HELD && supervisors(fd)) {
        pfd[3 + n_held++] = (struct pollfd){fd, POLLRDHUP, 0};
        return;
    }
    close(fd);
}

int main(int argc, char **argv)
{
    sigset_t set;
    struct signalfd_siginfo si;
    int i, life = 1;

    if (argc != 2 || strcmp(argv[1], "0") != 0) {
        fprintf(stderr, "usage: thaw-pidns-init 0 (started by thaw)\n");
        return 2;
    }
    /* set, not added to: a mask survives exec */
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_SETMASK, &set, NULL);
    prctl(PR_SET_NAME, "thaw-pidns-init", 0, 0, 0);
    /* nothing of this process to read through /proc for the version's
     * processes, which share its namespace */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    syscall(SYS_close_range, 2, ~0U, 0);
    pfd[0] = (struct pollfd){0, POLLRDHUP, 0};
    pfd[1] = (struct pollfd){1, POLLIN, 0};
    /* without it, a poll of a second at a time does the reaping */
    pfd[2] = (struct pollfd){signalfd(-1, &set, SFD_CLOEXEC), POLLIN, 0};
    for (;;) {
        if (poll(pfd, 3 + n_held, pfd[2].fd < 0 ? 1000 : -1) < 0 && errno != EINTR)
            return 1;
        if (pfd[0].fd >= 0 && (pfd[0].revents & HUP)) {
            close(pfd[0].fd);
            pfd[0].fd = -1;
            life = 0;
        }
        /* what was sent before the template went is read first */
        if (pfd[1].revents & POLLIN)
            take(pfd[1].fd);
        else if (pfd[1].revents & HUP)
            pfd[1].fd = -1;
        for (i = 0; i < n_held;) {
            if (pfd[3 + i].revents & HUP) {
                close(pfd[3 + i].fd);
                pfd[3 + i] = pfd[3 + --n_held];
                continue;
            }
            i++;
        }
        if (!life && !n_held)
            return 0; /* the version is gone: the kernel ends the rest */
        if (pfd[2].fd >= 0 && (pfd[2].revents & POLLIN) && read(pfd[2].fd, &si, sizeof(si)) < 0)
            return 1;
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
    }
}
