/* The pid namespace of a worker version: made by the zygote before it
 * forks the version's template, so the template, its instances and all
 * they fork live in it, and no process of the version can see, count or
 * probe (kill(pid, 0)) a host pid: none exists there.
 *
 * The namespace's init is thaw-pidns-init (keeper-main.c). The zygote
 * points the pid namespace of its next child at it (setns with the init's
 * pidfd) and forks the template, which becomes pid 2. The kernel kills
 * every process of a pid namespace when its init dies, and the init lives
 * exactly as long as the supervisor keeps one of the version's channels
 * open: it holds a copy of the template's end of the template's channel,
 * and the template hands it a copy of each instance's channel over a
 * control socket (src/sandbox/keeper-main.c) before forking the instance.
 * Once the supervisor has closed all of them (the version retired,
 * failed, deleted, evicted, or the supervisor gone, SIGKILL included) the
 * init exits. So nothing a version started survives it: not a forked
 * child, not a double-forked or setsid'd one; and a template that dies
 * while its instances serve leaves them serving.
 *
 * The inits are started by a small helper the zygote forks before CPython
 * starts (the pidns forker): clone(CLONE_NEWPID) needs a caller whose
 * children's pid namespace is still its own, which the zygote's is no
 * longer once it has entered a version's namespace for a fork (and it
 * cannot go back: its own namespace belongs to the host's user namespace).
 * The zygote sends the helper the channel fd and gets the init's pidfd
 * back (SCM_RIGHTS over a socketpair).
 *
 * vfork + exec of a small static program rather than a fork: it costs a
 * fraction of copying page tables. The program is opened once while its
 * directory is surely visible. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/sandbox-internal.h"

#define KEEPER_EXE "thaw-pidns-init"
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

/* the program, held by the helper only */
static int keeper_fd = -1;
/* the zygote's end of the socketpair to the helper; templates close it */
static int helper_sock = -1;

struct spawn {
    int exe_fd, life_fd, ctl_fd, exec_errno;
    char *argv[3];
};

/* The vfork child: shares the helper's memory until exec, so it only
 * makes system calls. An exec failure is left in exec_errno. */
static int child(void *arg)
{
    struct spawn *s = arg;
    char *envp[] = {NULL};

    /* fd 0: the template's channel; fd 1: the control socket (neither is
     * 0 or 1 already: the helper keeps its stdio) */
    if (dup2(s->life_fd, 0) == 0 && dup2(s->ctl_fd, 1) == 1)
        syscall(SYS_execveat, s->exe_fd, "", s->argv, envp, AT_EMPTY_PATH);
    s->exec_errno = errno ? errno : EIO;
    _exit(127);
}

/* The vfork child's stack: the helper is suspended until the exec */
static char child_stack[32 * 1024] __attribute__((aligned(16)));

/* One init for life_fd and ctl_fd: its pidfd, or -errno. */
static int spawn_init(int life_fd, int ctl_fd)
{
    struct spawn s = {keeper_fd, life_fd, ctl_fd, 0,
                      {(char *)KEEPER_EXE, (char *)"0", NULL}};
    int pidfd = -1;
    pid_t pid = clone(child, child_stack + sizeof(child_stack),
                      CLONE_VM | CLONE_VFORK | CLONE_NEWPID | CLONE_PIDFD | SIGCHLD, &s,
                      &pidfd);

    if (pid < 0)
        return -errno;
    if (s.exec_errno) {
        close(pidfd);
        return -s.exec_errno;
    }
    return pidfd;
}

/* Sends an int and the n (0-2) fds with it. */
static int send_fds(int sock, int value, const int *fds, int n)
{
    char ctl[CMSG_SPACE(2 * sizeof(int))];
    struct iovec iov = {&value, sizeof(value)};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    struct cmsghdr *c;

    memset(ctl, 0, sizeof(ctl));
    if (n > 0) {
        m.msg_control = ctl;
        m.msg_controllen = CMSG_SPACE(n * sizeof(int));
        c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(n * sizeof(int));
        memcpy(CMSG_DATA(c), fds, n * sizeof(int));
    }
    return sendmsg(sock, &m, MSG_NOSIGNAL) == sizeof(value) ? 0 : -1;
}

/* Receives an int and up to two fds (-1 where none came); returns how
 * many came, or -1. */
static int recv_fds(int sock, int *value, int *fds)
{
    char ctl[CMSG_SPACE(2 * sizeof(int))];
    struct iovec iov = {value, sizeof(*value)};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                       .msg_controllen = sizeof(ctl)};
    struct cmsghdr *c;
    ssize_t n;
    int k = 0;

    fds[0] = fds[1] = -1;
    do
        n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n != sizeof(*value))
        return -1;
    c = CMSG_FIRSTHDR(&m);
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        k = k > 2 ? 2 : k;
        memcpy(fds, CMSG_DATA(c), k * sizeof(int));
    }
    return k;
}

/* Closes every fd from 3 on but keep[0] and keep[1]: the helper must not
 * hold the zygote's channel to the supervisor (its EOF is how the
 * supervisor sees the zygote go). */
static void close_all_but(int a, int b)
{
    int lo = a < b ? a : b, hi = a < b ? b : a;

    if (lo > 3)
        syscall(SYS_close_range, 3, lo - 1, 0);
    if (hi > lo + 1)
        syscall(SYS_close_range, lo + 1, hi - 1, 0);
    syscall(SYS_close_range, hi + 1, ~0U, 0);
}

static void helper_main(int sock, pid_t zygote)
{
    int value, fd[2];

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != zygote)
        _exit(0);
    prctl(PR_SET_NAME, "thaw-pidns-fork", 0, 0, 0);
    /* the inits it starts are reaped by the kernel */
    signal(SIGCHLD, SIG_IGN);
    close_all_but(sock, keeper_fd);
    while (recv_fds(sock, &value, fd) >= 0) {
        int pidfd = fd[0] >= 0 && fd[1] >= 0 ? spawn_init(fd[0], fd[1]) : -EBADF;

        if (fd[0] >= 0)
            close(fd[0]);
        if (fd[1] >= 0)
            close(fd[1]);
        /* a failure: the zygote is gone */
        send_fds(sock, pidfd < 0 ? -pidfd : 0, &pidfd, pidfd >= 0);
        if (pidfd >= 0)
            close(pidfd);
    }
    _exit(0);
}

int thaw__sb_keeper_open(char *err, size_t errlen)
{
    char exe[PATH_MAX], path[PATH_MAX + sizeof(KEEPER_EXE) + 1], step[PATH_MAX + 128], *slash;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    int sv[2];
    pid_t pid, self = getpid();

    if (n < 0)
        return thaw__sb_fail(err, errlen, "readlink /proc/self/exe");
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    snprintf(path, sizeof(path), "%s/%s", exe, KEEPER_EXE);
    keeper_fd = open(path, O_PATH | O_CLOEXEC);
    if (keeper_fd < 0) {
        snprintf(step, sizeof(step), "open %s (the pid namespace's init, built by make)", path);
        return thaw__sb_fail(err, errlen, step);
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
        return thaw__sb_fail(err, errlen, "socketpair for the pid namespace forker");
    pid = fork();
    if (pid < 0)
        return thaw__sb_fail(err, errlen, "fork the pid namespace forker");
    if (pid == 0) {
        close(sv[0]);
        helper_main(sv[1], self);
    }
    close(sv[1]);
    close(keeper_fd);
    keeper_fd = -1;
    helper_sock = sv[0];
    return 0;
}

void thaw__sb_keeper_close(void)
{
    if (helper_sock >= 0)
        close(helper_sock);
    helper_sock = -1;
}

int thaw_sb_pidns_new(int life_fd, int *ctl, char *err, size_t errlen)
{
    int e, fd[2], pair[2], pidfd;

    if (helper_sock < 0) {
        errno = EBADF;
        return thaw__sb_fail(err, errlen, "the zygote has no pid namespace forker");
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair))
        return thaw__sb_fail(err, errlen, "socketpair for the pid namespace's init");
    fd[0] = life_fd;
    fd[1] = pair[1];
    if (send_fds(helper_sock, 0, fd, 2) || recv_fds(helper_sock, &e, fd) < 0) {
        close(pair[0]);
        close(pair[1]);
        errno = EPIPE;
        return thaw__sb_fail(err, errlen, "ask the pid namespace forker");
    }
    close(pair[1]);
    pidfd = fd[0];
    if (e || pidfd < 0) {
        close(pair[0]);
        errno = e ? e : EIO;
        return thaw__sb_fail(err, errlen, "start the pid namespace's init " KEEPER_EXE);
    }
    /* the zygote's next child (the template) is born in the namespace */
    if (setns(pidfd, CLONE_NEWPID)) {
        e = errno;
        syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
        close(pidfd);
        close(pair[0]);
        errno = e;
        return thaw__sb_fail(err, errlen, "enter the version's pid namespace (setns)");
    }
    close(pidfd);
    *ctl = pair[0];
    return 0;
}

int thaw_sb_pidns_hold(int ctl, int fd)
{
    char byte = 'i', cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {&byte, 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                       .msg_controllen = sizeof(cbuf)};
    struct cmsghdr *c;

    memset(cbuf, 0, sizeof(cbuf));
    c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    return sendmsg(ctl, &m, MSG_NOSIGNAL) == 1 ? 0 : -1;
}
