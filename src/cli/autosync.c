/* Before a build, `thaw dev` vendors pyproject.toml's dependencies when the
 * file is newer than the last sync (python_modules/.thaw-sync), by running
 * `thaw sync DIR --quiet` and waiting for it on the loop. The sync tool
 * touches the stamp only on success; a failure has printed the installer's
 * error, and the build goes on with the python_modules already there. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/log.h"

struct autosync {
    uv_poll_t poll;
    int pidfd;
    char dir[PATH_MAX];
    thaw_autosync_cb cb;
    void *data;
};

static int mtime_of(const char *path, struct timespec *ts)
{
    struct stat st;

    if (stat(path, &st) != 0)
        return -1;
    *ts = st.st_mtim;
    return 0;
}

static int newer(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

int thaw_needs_sync(const char *dir)
{
    char py[PATH_MAX], stamp[PATH_MAX];
    struct timespec tp, ts;

    snprintf(py, sizeof(py), "%s/pyproject.toml", dir);
    snprintf(stamp, sizeof(stamp), "%s/python_modules/.thaw-sync", dir);
    if (mtime_of(py, &tp) != 0)
        return 0;
    return mtime_of(stamp, &ts) != 0 || newer(&tp, &ts);
}

static void on_closed(uv_handle_t *h)
{
    struct autosync *a = h->data;
    int ok = !thaw_needs_sync(a->dir);

    close(a->pidfd);
    if (!ok)
        thaw_log("thaw sync failed (its error is above); building with the "
                 "python_modules/ already there");
    a->cb(a->data, ok);
    free(a);
}

static void on_exit_poll(uv_poll_t *h, int status, int events)
{
    uv_poll_stop(h);
    uv_close((uv_handle_t *)h, on_closed);
}

void thaw_autosync(uv_loop_t *loop, const char *dir, thaw_autosync_cb cb, void *data)
{
    struct autosync *a;
    char exe[PATH_MAX];
    sigset_t all, old;
    pid_t pid;

    if (!thaw_needs_sync(dir) || !(a = calloc(1, sizeof(*a)))) {
        cb(data, 1);
        return;
    }
    snprintf(a->dir, sizeof(a->dir), "%s", dir);
    a->cb = cb;
    a->data = data;
    snprintf(exe, sizeof(exe), "%s/thaw", thaw_exe_dir());
    thaw_log("pyproject.toml changed: running thaw sync");
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid = fork();
    if (pid == 0) {
        char *args[] = {exe, "sync", a->dir, "--quiet", NULL};
        int sig;
        for (sig = 1; sig < NSIG; sig++)
            signal(sig, SIG_DFL);
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        execv(exe, args);
        _exit(127);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    /* the supervisor's SIGCHLD handler reaps it; the pidfd says when */
    a->pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
    if (a->pidfd < 0 || uv_poll_init(loop, &a->poll, a->pidfd)) {
        thaw_log("cannot run thaw sync: %s", strerror(errno));
        if (a->pidfd >= 0)
            close(a->pidfd);
        free(a);
        cb(data, 0);
        return;
    }
    a->poll.data = a;
    uv_poll_start(&a->poll, UV_READABLE, on_exit_poll);
}
