/* Starts the init of a worker version's pid namespace (keeper-main.c,
 * the thaw-pidns-init program) right after the template's
 * unshare(CLONE_NEWPID): its first child becomes that namespace's pid 1.
 *
 * vfork + exec rather than fork: a fork copies the page tables of the
 * whole template (1.3 ms for a hello template, 2.5 ms with the preloaded
 * FastAPI base) and makes its pages copy-on-write once more; exec of a
 * small static program costs a fraction of that. The program is opened
 * by the zygote (thaw__sb_keeper_open) while its directory is surely
 * visible: a template's own mounts may hide it (a build under /tmp or
 * /home). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/sandbox-internal.h"

#define KEEPER_EXE "thaw-pidns-init"

/* the program, opened by the zygote; each template closes its copy */
static int keeper_fd = -1;

int thaw__sb_keeper_open(char *err, size_t errlen)
{
    char exe[PATH_MAX], path[PATH_MAX + sizeof(KEEPER_EXE) + 1], step[PATH_MAX + 128], *slash;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

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
    return 0;
}

struct spawn {
    int exe_fd, report_fd, life_fd;
    char *argv[4];
};

/* The vfork child: shares the template's memory until exec, with every
 * signal blocked, so it only makes system calls. An exec failure goes to
 * the report pipe as a negative errno (a failed mount is positive). */
static int child(void *arg)
{
    struct spawn *s = arg;
    char *envp[] = {NULL};
    int e;

    if (fcntl(s->report_fd, F_SETFD, 0) == 0 && fcntl(s->life_fd, F_SETFD, 0) == 0)
        syscall(SYS_execveat, s->exe_fd, "", s->argv, envp, AT_EMPTY_PATH);
    e = -errno;
    if (write(s->report_fd, &e, sizeof(e)) < 0)
        _exit(127);
    _exit(127);
}

/* The vfork child's stack: the template is suspended until the exec */
static char child_stack[32 * 1024] __attribute__((aligned(16)));

int thaw__sb_pidns_init(char *err, size_t errlen)
{
    char report_arg[16], life_arg[16];
    struct spawn s;
    sigset_t all, old;
    int p[2], life[2], e = 0;
    pid_t pid;
    ssize_t n;

    if (keeper_fd < 0) {
        errno = EBADF;
        return thaw__sb_fail(err, errlen, "the zygote did not open " KEEPER_EXE);
    }
    if (pipe2(p, O_CLOEXEC))
        return thaw__sb_fail(err, errlen, "pipe");
    if (pipe2(life, O_CLOEXEC)) {
        close(p[0]);
        close(p[1]);
        return thaw__sb_fail(err, errlen, "pipe");
    }
    snprintf(report_arg, sizeof(report_arg), "%d", p[1]);
    snprintf(life_arg, sizeof(life_arg), "%d", life[0]);
    s = (struct spawn){keeper_fd, p[1], life[0],
                       {(char *)KEEPER_EXE, report_arg, life_arg, NULL}};
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid = clone(child, child_stack + sizeof(child_stack), CLONE_VM | CLONE_VFORK | SIGCHLD,
                &s);
    e = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    /* a handle on a host file: gone before worker code */
    close(keeper_fd);
    keeper_fd = -1;
    /* life[1] stays open in the template for good, and every instance
     * inherits it: the keeper sees it close when the last of them exits */
    close(life[0]);
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        close(life[1]);
        errno = e;
        return thaw__sb_fail(err, errlen, "start the pid namespace's init");
    }
    e = 0;
    n = read(p[0], &e, sizeof(e));
    close(p[0]);
    if (n != sizeof(e) || e) {
        errno = n != sizeof(e) ? EIO : e < 0 ? -e : e;
        return thaw__sb_fail(err, errlen, n == sizeof(e) && e < 0
                                              ? "exec " KEEPER_EXE " (the pid namespace's init)"
                                              : "mount /proc of the instances' pid namespace");
    }
    return 0;
}
