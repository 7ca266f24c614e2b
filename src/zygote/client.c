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

static void on_chan_close(struct thaw_chan *c, int err, void *data)
{
    struct thaw_zygote *z = data;

    z->chan = NULL;
    fail_waiters(z, "the zygote process exited");
}

static void on_zygote_exit(uv_poll_t *h, int status, int events)
{
    struct thaw_zygote *z = h->data;

    uv_poll_stop(h);
    z->alive = 0;
    z->ready = 0;
    if (z->chan) {
        thaw_chan_close(z->chan);
        z->chan = NULL;
        fail_waiters(z, "the zygote process exited");
    }
    uv_close((uv_handle_t *)h, (uv_close_cb)free);
    z->poll = NULL;
    close(z->pidfd);
    z->pidfd = -1;
    if (z->freeing) {
        z->alive = 0;
        thaw_zygote_free(z);
        return;
    }
    if (!z->stopping && z->needed && !z->ever_ready) {
        /* it never got as far as its HELLO: starting it again would fail
         * the same way, for ever, while clients wait */
        fprintf(stderr, "thaw: the Python zygote (%s) exited before it was ready, so thaw "
                "cannot run Python workers: its output above says why (a Python that "
                "does not start, a module it cannot import; `thaw doctor` checks the "
                "sandbox)\n", z->exe);
        exit(1);
    }
    if (!z->stopping) {
        thaw_log("zygote exited; starting a new one");
        if (spawn(z))
            thaw_log("cannot restart the zygote");
    }
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

int thaw_zygote_start(uv_loop_t *loop, const char *exe_dir, const char *preload,
                      thaw_zygote_ready_cb on_ready, void *data,
                      struct thaw_zygote **out)
{
    struct thaw_zygote *z = calloc(1, sizeof(*z));
    const char *env = getenv("THAW_PYTHON_DIR");
    int rc;

    if (!z)
        return -ENOMEM;
    z->loop = loop;
    z->preload = preload && *preload ? strdup(preload) : NULL;
    z->on_ready = on_ready;
    z->ready_data = data;
    z->next_cookie = 1;
    z->pidfd = -1;
    z->needed = 1;
    snprintf(z->exe, sizeof(z->exe), "%s/thaw-zygote", exe_dir);
    if (env && *env)
        snprintf(z->pydir, sizeof(z->pydir), "%s", env);
    else
        snprintf(z->pydir, sizeof(z->pydir), "%s/../python", exe_dir);
    if ((rc = spawn(z))) {
        free(z);
        return rc;
    }
    *out = z;
    return 0;
}

int thaw_zygote_start_like(const struct thaw_zygote *proto, struct thaw_zygote **out)
{
    struct thaw_zygote *z = calloc(1, sizeof(*z));
    int rc;

    if (!z)
        return -ENOMEM;
    z->loop = proto->loop;
    z->next_cookie = 1;
    z->pidfd = -1;
    memcpy(z->exe, proto->exe, sizeof(z->exe));
    memcpy(z->pydir, proto->pydir, sizeof(z->pydir));
    if ((rc = spawn(z))) {
        free(z);
        return rc;
    }
    *out = z;
    return 0;
}

void thaw_zygote_free(struct thaw_zygote *z)
{
    int i;

    /* its process is told to go; the pidfd poll ends when it has gone */
    thaw_zygote_shutdown(z);
    thaw_zygote_signal(z, SIGKILL);
    fail_waiters(z, "the worker's zygote was stopped");
    if (z->alive) {
        z->freeing = 1; /* on_zygote_exit frees it */
        return;
    }
    for (i = 0; i < z->n_modules; i++)
        free(z->modules[i]);
    free(z->modules);
    free(z->preload);
    free(z);
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
    if (z->alive)
        syscall(SYS_pidfd_send_signal, z->pidfd, sig, NULL, 0);
}

int thaw_zygote_alive(const struct thaw_zygote *z) { return z->alive; }

int thaw_zygote_ready(const struct thaw_zygote *z) { return z->ready; }

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
    if (z->chan) {
        thaw_chan_close(z->chan);
        z->chan = NULL;
    }
}
