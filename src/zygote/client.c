#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipc/chan.h"
#include "util/log.h"
#include "zygote/backoff.h"
#include "zygote/client.h"

struct waiter {
    uint32_t cookie;
    thaw_toml_cb toml_cb;
    thaw_forked_cb forked_cb;
    void *data;
    struct waiter *next;
};

struct thaw_zygote {
    uv_loop_t *loop;
    pid_t pid;
    int pidfd;
    uv_poll_t *poll;   /* one per process: a new one while the old closes */
    int alive;
    int stopping;
    int freeing;              /* thaw_zygote_free: free once the process is gone */
    char label[160];          /* who it is in the log: "the zygote for worker X" */
    /* after an exit: the next start, after a backoff (zygote/backoff.h);
     * closed before the struct is freed (release) */
    uv_timer_t restart;
    unsigned backoff_ms;      /* the delay of the next restart */
    uint64_t ready_ms;        /* uv_now() of its process's HELLO */
    /* a per-worker zygote whose process exited before it was ready: no
     * process, no timer; the next build that needs it starts it, from
     * retry_ms on (the same start would fail the same way: once per need
     * rather than in a loop nobody asked for) */
    int down;
    uint64_t retry_ms;
    int restarted;            /* started again: its HELLO is logged */
    char event[160];          /* how its last process ended, for the log and errors */
    char exe[PATH_MAX];
    char pydir[PATH_MAX];
    char *preload;            /* NULL or "a,b,c" */
    int ready;
    int ever_ready;           /* a HELLO came since thaw started it */
    int needed;               /* thaw_zygote_start's: thaw cannot run without it */
    char **modules;           /* from HELLO */
    int n_modules;
    thaw_zygote_ready_cb on_ready;
    void *ready_data;
    struct thaw_chan *chan;
    struct waiter *waiters;
    uint32_t next_cookie;
};

static int spawn(struct thaw_zygote *z);

/* how every zygote of this run is started (thaw_zygote_set_sandbox) */
static int sandbox_on;
static char sandbox_cgroup[PATH_MAX];
static char sandbox_memcg[PATH_MAX];

int thaw_zygote_sandboxed(void) { return sandbox_on; }

void thaw_zygote_set_sandbox(int on, const char *cgroup_dir)
{
    sandbox_on = on;
    snprintf(sandbox_cgroup, sizeof(sandbox_cgroup), "%s", cgroup_dir ? cgroup_dir : "");
}

/* the run's v1 CPU groups (sandbox/cgroup.h: thaw_cpucg_dirs) */
static char sandbox_cpucg[2][PATH_MAX];

void thaw_zygote_set_cpucg(const char *const *dirs, int n)
{
    int i;

    for (i = 0; i < 2; i++)
        snprintf(sandbox_cpucg[i], sizeof(sandbox_cpucg[i]), "%s",
                 i < n && dirs[i] ? dirs[i] : "");
}

void thaw_zygote_set_memcg(const char *dir)
{
    snprintf(sandbox_memcg, sizeof(sandbox_memcg), "%s", dir ? dir : "");
}

static struct waiter *take_waiter(struct thaw_zygote *z, uint32_t cookie)
{
    struct waiter **pp;

    for (pp = &z->waiters; *pp; pp = &(*pp)->next) {
        if ((*pp)->cookie == cookie) {
            struct waiter *w = *pp;
            *pp = w->next;
            return w;
        }
    }
    return NULL;
}

static void first_field(const struct thaw_ipc_frame *f, const char **p, size_t *n)
{
    struct thaw_ipc_fields it;
    const uint8_t *q;

    thaw_ipc_fields_init(&it, f);
    if (thaw_ipc_next_field(&it, &q, n) == 1) {
        *p = (const char *)q;
    } else {
        *p = "";
        *n = 0;
    }
}

static void on_hello(struct thaw_zygote *z, const struct thaw_ipc_frame *f)
{
    struct thaw_ipc_fields it;
    const uint8_t *p;
    size_t n;
    int i;

    for (i = 0; i < z->n_modules; i++)
        free(z->modules[i]);
    free(z->modules);
    z->modules = NULL;
    z->n_modules = 0;
    thaw_ipc_fields_init(&it, f);
    while (thaw_ipc_next_field(&it, &p, &n) == 1) {
        char **m = realloc(z->modules, sizeof(char *) * (size_t)(z->n_modules + 1));
        if (!m)
            break;
        z->modules = m;
        z->modules[z->n_modules++] = strndup((const char *)p, n);
    }
    z->ready = 1;
    z->ever_ready = 1;
    z->ready_ms = uv_now(z->loop);
    if (z->restarted)
        thaw_log("%s is back (pid %ld)", z->label, (long)z->pid);
    z->restarted = 0;
    if (z->on_ready)
        z->on_ready(z->ready_data, z);
}

static void on_frame(struct thaw_chan *c, const struct thaw_ipc_frame *f, int fd,
                     void *data)
{
    struct thaw_zygote *z = data;
    struct waiter *w;

    if (f->type == THAW_IPC_HELLO) {
        if (fd >= 0)
            close(fd);
        on_hello(z, f);
        return;
    }
    w = take_waiter(z, f->stream);
    const char *p;
    size_t n;
    char msg[512];

    first_field(f, &p, &n);
    if (!w) {
        if (fd >= 0)
            close(fd);
        return;
    }
    switch (f->type) {
    case THAW_IPC_TOML_OK:
    case THAW_IPC_TOML_ERR:
        if (w->toml_cb)
            w->toml_cb(w->data, f->type == THAW_IPC_TOML_OK, p, n);
        break;
    case THAW_IPC_SPAWNED:
        if (w->forked_cb && fd >= 0) {
            w->forked_cb(w->data, (pid_t)strtol(p, NULL, 10), fd, NULL);
            fd = -1;
        } else if (fd >= 0) {
            /* forgotten (thaw_zygote_forget: its version went during the
             * build): nobody would watch or stop this template */
            syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
        }
        break;
    case THAW_IPC_SPAWN_ERR:
        snprintf(msg, sizeof(msg), "%.*s", (int)n, p);
        if (w->forked_cb)
            w->forked_cb(w->data, -1, -1, msg);
        break;
    }
    if (fd >= 0)
        close(fd);
    free(w);
}

static void fail_waiters(struct thaw_zygote *z, const char *msg)
{
    while (z->waiters) {
        struct waiter *w = z->waiters;
        z->waiters = w->next;
        if (w->toml_cb)
            w->toml_cb(w->data, -1, msg, strlen(msg));
        if (w->forked_cb)
            w->forked_cb(w->data, -1, -1, msg);
        free(w);
    }
}

/* What the builds that waited on a process that went are told: whose
 * fault it is and where to look, when it never got as far as its HELLO. */
static const char *exit_message(const struct thaw_zygote *z, char *buf, size_t n)
{
    if (z->ready)
        snprintf(buf, n, "%s exited", z->label);
    else
        snprintf(buf, n, "%s exited before it was ready: its output in thaw's log says "
                 "why (`thaw doctor` checks the sandbox)", z->label);
    return buf;
}

static void on_chan_close(struct thaw_chan *c, int err, void *data)
{
    struct thaw_zygote *z = data;
    char msg[512];

    z->chan = NULL;
    fail_waiters(z, exit_message(z, msg, sizeof(msg)));
}

static void on_released(uv_handle_t *h)
{
    struct thaw_zygote *z = h->data;
    int i;

    for (i = 0; i < z->n_modules; i++)
        free(z->modules[i]);
    free(z->modules);
    free(z->preload);
    free(z);
}

/* The one way the struct goes: its process is gone, its timer closes,
 * and the memory goes with the timer's close (nothing of it is touched
 * after this call). */
static void release(struct thaw_zygote *z)
{
    uv_timer_stop(&z->restart);
    uv_close((uv_handle_t *)&z->restart, on_released);
}

/* "exited (signal 11)": the status, when this reaps it first (thaw's
 * SIGCHLD handler may have), into z->event. */
static void describe_exit(struct thaw_zygote *z, int was_ready)
{
    siginfo_t si;
    char how[40] = "";

    memset(&si, 0, sizeof(si));
    if (waitid(P_PIDFD, (id_t)z->pidfd, &si, WEXITED | WNOHANG) == 0 && si.si_pid) {
        if (si.si_code == CLD_EXITED)
            snprintf(how, sizeof(how), " (exit status %d)", si.si_status);
        else
            snprintf(how, sizeof(how), " (signal %d)", si.si_status);
    }
    snprintf(z->event, sizeof(z->event), "exited%s%s", how,
             was_ready ? "" : " before it was ready");
}

static void restart(struct thaw_zygote *z);

/* ", in 400 ms at the earliest", or "" when it may start now */
static const char *earliest(uint64_t ms, char *buf, size_t n)
{
    if (ms == 0)
        return "";
    snprintf(buf, n, ", in %llu ms at the earliest", (unsigned long long)ms);
    return buf;
}

static void on_restart_due(uv_timer_t *t)
{
    restart(t->data);
}

/* Its process ended (z->event says how): started again after the
 * backoff, or, for a per-worker zygote that never got ready, at the next
 * build that needs it. */
static void after_exit(struct thaw_zygote *z, int was_ready)
{
    uint64_t now = uv_now(z->loop);
    unsigned delay;
    char when[48];

    if (z->needed && !z->ever_ready) {
        /* it never got as far as its HELLO: starting it again would fail
         * the same way, for ever, while clients wait */
        fprintf(stderr, "thaw: the Python zygote (%s) exited before it was ready, so thaw "
                "cannot run Python workers: its output above says why (a Python that "
                "does not start, a module it cannot import; `thaw doctor` checks the "
                "sandbox)\n", z->exe);
        exit(1);
    }
    delay = thaw_backoff_take(&z->backoff_ms, was_ready ? now - z->ready_ms : 0);
    if (!was_ready && !z->needed) {
        z->down = 1;
        z->retry_ms = now + delay;
        thaw_log("%s %s: the lines above say why (`thaw doctor` checks the sandbox); "
                 "the next build that needs it starts it again%s", z->label, z->event,
                 earliest(delay, when, sizeof(when)));
        return;
    }
    if (delay == 0) {
        thaw_log("%s %s; restarting at once", z->label, z->event);
        restart(z);
    } else {
        thaw_log("%s %s; restarting in %u ms", z->label, z->event, delay);
        uv_timer_start(&z->restart, on_restart_due, delay, 0);
    }
}

static void restart(struct thaw_zygote *z)
{
    int rc = spawn(z);

    if (rc == 0 || z->alive) {
        /* started (if its channel could not open, it is killed and its
         * exit comes back here through on_zygote_exit) */
        z->restarted = 1;
        if (rc)
            syscall(SYS_pidfd_send_signal, z->pidfd, SIGKILL, NULL, 0);
        return;
    }
    snprintf(z->event, sizeof(z->event), "could not be started (%s)", strerror(-rc));
    after_exit(z, 0);
}

static void on_zygote_exit(uv_poll_t *h, int status, int events)
{
    struct thaw_zygote *z = h->data;
    int was_ready = z->ready;
    char msg[512];

    uv_poll_stop(h);
    describe_exit(z, was_ready);
    /* alive until the waiters heard: one of them may free z (a deploy
     * refused, its worker gone), which then only marks it `freeing` */
    if (z->chan) {
        thaw_chan_close(z->chan);
        z->chan = NULL;
        fail_waiters(z, exit_message(z, msg, sizeof(msg)));
    }
    z->alive = 0;
    z->ready = 0;
    uv_close((uv_handle_t *)h, (uv_close_cb)free);
    z->poll = NULL;
    close(z->pidfd);
    z->pidfd = -1;
    if (z->freeing)
        release(z);
    else if (!z->stopping)
        after_exit(z, was_ready);
}

/* A per-worker zygote that is down starts again when a build needs it,
 * once its backoff allows; before that, the build fails at once. */
static void start_if_needed(struct thaw_zygote *z)
{
    if (!z->down || z->alive || z->stopping || uv_now(z->loop) < z->retry_ms)
        return;
    z->down = 0;
    thaw_log("%s: starting it again for a build", z->label);
    restart(z);
}

/* The whole environment of the Python tree (zygote, templates, instances):
 * these variables and nothing else of thaw's own environment, which may
 * hold THAW_API_TOKEN or the host's cloud credentials (docs/security.md,
 * "A worker's environment"). fixed: the value; NULL: thaw's value, when
 * thaw's environment has one. */
static const struct {
    const char *name;
    const char *fixed;
} worker_env[] = {
    {"LANG", "C.UTF-8"},
    {"HOME", "/tmp"},         /* Path.home() works; the sandbox's /tmp is private */
    {"TZ", NULL},             /* the operator's local time, as /etc/localtime */
    {"SSL_CERT_FILE", NULL},  /* OpenSSL reads them in the instance: TLS there */
    {"SSL_CERT_DIR", NULL},   /* trusts what thaw trusts (the sandbox grants them) */
    {"THAW_SB_TIMING", NULL}, /* the zygote's, not a worker's: zygote.py drops it */
};
#define WORKER_ENV_N (sizeof(worker_env) / sizeof(worker_env[0]))

/* envp for the zygote's exec, made before fork (no allocation in the
 * child); free_env() frees it. */
static char **make_env(void)
{
    char **envp = calloc(WORKER_ENV_N + 1, sizeof(char *));
    size_t i, n = 0;

    if (!envp)
        return NULL;
    for (i = 0; i < WORKER_ENV_N; i++) {
        const char *v = worker_env[i].fixed ? worker_env[i].fixed : getenv(worker_env[i].name);
        if (v && asprintf(&envp[n], "%s=%s", worker_env[i].name, v) >= 0)
            n++;
    }
    return envp;
}

static void free_env(char **envp)
{
    char **p;

    for (p = envp; p && *p; p++)
        free(*p);
    free(envp);
}

/* fork + exec with the spawn discipline of STYLE.md: signals blocked
 * across fork, defaults restored in the child, exec failure reported
 * through a close-on-exec pipe (EOF means the exec worked). */
static pid_t fork_exec(char *const args[], char *const envp[], int chan_fd, int *err)
{
    sigset_t all, old;
    int pipefd[2], e = 0;
    pid_t pid;
    ssize_t n;

    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        *err = errno;
        return -1;
    }
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid = fork();
    if (pid == 0) {
        int sig;
        for (sig = 1; sig < NSIG; sig++)
            signal(sig, SIG_DFL);
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        if (chan_fd == 3)
            fcntl(3, F_SETFD, 0);
        else if (dup2(chan_fd, 3) < 0)
            goto fail;
        execve(args[0], args, envp);
fail:
        e = errno;
        if (write(pipefd[1], &e, sizeof(e)) < 0)
            _exit(127);
        _exit(127);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(pipefd[1]);
    if (pid < 0) {
        *err = errno;
        close(pipefd[0]);
        return -1;
    }
    do
        n = read(pipefd[0], &e, sizeof(e));
    while (n < 0 && errno == EINTR);
    close(pipefd[0]);
    if (n == sizeof(e)) {
        waitpid(pid, NULL, 0);
        *err = e;
        return -1;
    }
    return pid;
}

static int spawn(struct thaw_zygote *z)
{
    int sv[2], rc, err = 0;
    char ppid[32];
    char *args[24], **envp;
    int n = 0, i;

    args[n++] = z->exe;
    if (sandbox_on) {
        args[n++] = "--sandbox";
        if (sandbox_cgroup[0]) {
            args[n++] = "--cgroup";
            args[n++] = sandbox_cgroup;
        }
        if (sandbox_memcg[0]) {
            args[n++] = "--memory-cgroup";
            args[n++] = sandbox_memcg;
        }
        for (i = 0; i < 2; i++)
            if (sandbox_cpucg[i][0]) {
                args[n++] = "--cpu-cgroup";
                args[n++] = sandbox_cpucg[i];
            }
    }
    args[n++] = "--python-dir";
    args[n++] = z->pydir;
    args[n++] = "--fd";
    args[n++] = "3";
    args[n++] = "--ppid";
    args[n++] = ppid;
    if (z->preload) {
        args[n++] = "--preload";
        args[n++] = z->preload;
    }
    args[n] = NULL;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    snprintf(ppid, sizeof(ppid), "%ld", (long)getpid());
    if (!(envp = make_env())) {
        close(sv[0]);
        close(sv[1]);
        return -ENOMEM;
    }
    z->pid = fork_exec(args, envp, sv[1], &err);
    free_env(envp);
    close(sv[1]);
    if (z->pid < 0) {
        close(sv[0]);
        thaw_log("cannot start %s: %s", z->exe, strerror(err));
        return -err;
    }
    z->pidfd = (int)syscall(SYS_pidfd_open, z->pid, 0);
    z->poll = malloc(sizeof(*z->poll));
    if (z->pidfd < 0 || !z->poll || uv_poll_init(z->loop, z->poll, z->pidfd)) {
        close(sv[0]);
        kill(z->pid, SIGKILL);
        free(z->poll);
        z->poll = NULL;
        return -EIO;
    }
    z->poll->data = z;
    uv_poll_start(z->poll, UV_READABLE, on_zygote_exit);
    z->alive = 1;
    rc = thaw_chan_open(z->loop, sv[0], on_frame, on_chan_close, z, &z->chan);
    if (rc)
        close(sv[0]);
    return rc;
}

/* The parts every zygote has, its timer initialised (so release works). */
static struct thaw_zygote *zygote_new(uv_loop_t *loop)
{
    struct thaw_zygote *z = calloc(1, sizeof(*z));

    if (!z)
        return NULL;
    z->loop = loop;
    z->next_cookie = 1;
    z->pidfd = -1;
    uv_timer_init(loop, &z->restart);
    z->restart.data = z;
    return z;
}

int thaw_zygote_start(uv_loop_t *loop, const char *exe_dir, const char *preload,
                      thaw_zygote_ready_cb on_ready, void *data,
                      struct thaw_zygote **out)
{
    struct thaw_zygote *z = zygote_new(loop);
    const char *env = getenv("THAW_PYTHON_DIR");
    int rc;

    if (!z)
        return -ENOMEM;
    z->preload = preload && *preload ? strdup(preload) : NULL;
    z->on_ready = on_ready;
    z->ready_data = data;
    z->needed = 1;
    snprintf(z->label, sizeof(z->label), "the %szygote", z->preload ? "preloaded " : "");
    snprintf(z->exe, sizeof(z->exe), "%s/thaw-zygote", exe_dir);
    if (env && *env)
        snprintf(z->pydir, sizeof(z->pydir), "%s", env);
    else
        snprintf(z->pydir, sizeof(z->pydir), "%s/../python", exe_dir);
    if ((rc = spawn(z))) {
        release(z);
        return rc;
    }
    *out = z;
    return 0;
}

int thaw_zygote_start_like(const struct thaw_zygote *proto, const char *worker,
                           struct thaw_zygote **out)
{
    struct thaw_zygote *z = zygote_new(proto->loop);
    int rc;

    if (!z)
        return -ENOMEM;
    snprintf(z->label, sizeof(z->label), "the zygote for worker %s", worker);
    memcpy(z->exe, proto->exe, sizeof(z->exe));
    memcpy(z->pydir, proto->pydir, sizeof(z->pydir));
    if ((rc = spawn(z))) {
        release(z);
        return rc;
    }
    *out = z;
    return 0;
}

void thaw_zygote_free(struct thaw_zygote *z)
{
    /* its process is told to go; the pidfd poll ends when it has gone,
     * and a restart that was due never comes */
    z->freeing = 1;
    thaw_zygote_shutdown(z);
    thaw_zygote_signal(z, SIGKILL);
    fail_waiters(z, "the worker's zygote was stopped");
    if (!z->alive)
        release(z); /* else on_zygote_exit does */
}

const char *thaw_zygote_why(const struct thaw_zygote *z, char *buf, size_t n)
{
    uint64_t now;
    char when[48];

    if (!z || (!z->down && !uv_is_active((const uv_handle_t *)&z->restart))) {
        snprintf(buf, n, "the zygote is not running");
        return buf;
    }
    now = uv_now(z->loop);
    if (z->down) {
        snprintf(buf, n, "%s is not running: it %s; its output in thaw's log says why "
                 "(`thaw doctor` checks the sandbox); the next build tries it again%s",
                 z->label, z->event,
                 earliest(z->retry_ms > now ? z->retry_ms - now : 0, when, sizeof(when)));
    } else {
        snprintf(buf, n, "%s is not running: it %s and restarts in %llu ms", z->label,
                 z->event, (unsigned long long)uv_timer_get_due_in(&z->restart));
    }
    return buf;
}

static struct waiter *add_waiter(struct thaw_zygote *z, void *data)
{
    struct waiter *w = calloc(1, sizeof(*w));

    if (!w)
        return NULL;
    w->cookie = z->next_cookie++;
    if (z->next_cookie == 0)
        z->next_cookie = 1;
    w->data = data;
    w->next = z->waiters;
    z->waiters = w;
    return w;
}

int thaw_zygote_toml(struct thaw_zygote *z, const char *path, thaw_toml_cb cb,
                     void *data)
{
    struct waiter *w;
    const char *fields[] = {path};
    int rc;

    start_if_needed(z);
    if (!z->chan)
        return -EPIPE;
    if (!(w = add_waiter(z, data)))
        return -ENOMEM;
    w->toml_cb = cb;
    rc = thaw_chan_send_fields(z->chan, THAW_IPC_TOML, w->cookie, -1, 1, fields);
    if (rc)
        free(take_waiter(z, w->cookie));
    return rc;
}

int thaw_zygote_build(struct thaw_zygote *z, uint32_t version, int chan_fd, int out_fd,
                      const char *name, const char *dir, const char *main,
                      const char *config_json, const char *sandbox_json,
                      thaw_forked_cb cb, void *data)
{
    struct waiter *w;
    const char *fields[] = {name, dir, main, config_json, sandbox_json};
    int rc;

    start_if_needed(z);
    if (!z->chan || !(w = add_waiter(z, data))) {
        close(chan_fd);
        close(out_fd);
        return z->chan ? -ENOMEM : -EPIPE;
    }
    /* the version id is the supervisor's business; the zygote answers on
     * the cookie, like every request to it */
    (void)version;
    w->forked_cb = cb;
    /* the output pipe first, on the same cookie: the zygote holds it for
     * the BUILD that follows (and refuses a BUILD without one) */
    rc = thaw_chan_send_fields(z->chan, THAW_IPC_STDIO, w->cookie, out_fd, 0, NULL);
    if (rc)
        close(chan_fd);
    else
        rc = thaw_chan_send_fields(z->chan, THAW_IPC_BUILD, w->cookie, chan_fd, 5, fields);
    if (rc)
        free(take_waiter(z, w->cookie));
    return rc;
}

void thaw_zygote_forget(struct thaw_zygote *z, void *data)
{
    struct waiter *w;

    for (w = z->waiters; w; w = w->next)
        if (w->data == data)
            w->toml_cb = NULL, w->forked_cb = NULL;
}

void thaw_zygote_signal(struct thaw_zygote *z, int sig)
{
    z->stopping = 1;
    uv_timer_stop(&z->restart); /* stopping: no restart */
    if (z->alive)
        syscall(SYS_pidfd_send_signal, z->pidfd, sig, NULL, 0);
}

int thaw_zygote_alive(const struct thaw_zygote *z) { return z->alive; }

int thaw_zygote_ready(const struct thaw_zygote *z) { return z->ready; }

int thaw_zygote_can_start(const struct thaw_zygote *z)
{
    return z->alive || (z->down && !z->stopping && uv_now(z->loop) >= z->retry_ms);
}

int thaw_zygote_holds(const struct thaw_zygote *z, const char *name)
{
    int i;

    for (i = 0; i < z->n_modules; i++)
        if (strcmp(z->modules[i], name) == 0)
            return 1;
    return 0;
}

void thaw_zygote_shutdown(struct thaw_zygote *z)
{
    z->stopping = 1;
    uv_timer_stop(&z->restart);
    if (z->chan) {
        thaw_chan_close(z->chan);
        z->chan = NULL;
    }
}
