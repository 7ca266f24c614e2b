#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
    uv_process_t proc;
    int alive;
    int stopping;
    char exe[PATH_MAX];
    char pydir[PATH_MAX];
    struct thaw_chan *chan;
    struct waiter *waiters;
    uint32_t next_cookie;
};

static int spawn(struct thaw_zygote *z);

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

static void on_frame(struct thaw_chan *c, const struct thaw_ipc_frame *f, int fd,
                     void *data)
{
    struct thaw_zygote *z = data;
    struct waiter *w = take_waiter(z, f->stream);
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
            w->toml_cb(w->data, 0, msg, strlen(msg));
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

static void on_close_proc(uv_handle_t *h)
{
    struct thaw_zygote *z = h->data;

    if (!z->stopping) {
        thaw_log("zygote died; starting a new one");
        if (spawn(z))
            thaw_log("cannot restart the zygote");
    }
}

static void on_zygote_exit(uv_process_t *p, int64_t status, int sig)
{
    struct thaw_zygote *z = p->data;

    z->alive = 0;
    if (!z->stopping)
        thaw_log("zygote exited (status %lld, signal %d)", (long long)status, sig);
    if (z->chan) {
        thaw_chan_close(z->chan);
        z->chan = NULL;
        fail_waiters(z, "the zygote process exited");
    }
    uv_close((uv_handle_t *)p, on_close_proc);
}

static int spawn(struct thaw_zygote *z)
{
    int sv[2], rc;
    char fdarg[16], ppid[32];
    char *args[] = {z->exe, "--python-dir", z->pydir, "--fd", fdarg, "--ppid", ppid, NULL};
    uv_process_options_t opt = {0};
    uv_stdio_container_t stdio[4];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    snprintf(fdarg, sizeof(fdarg), "3");
    snprintf(ppid, sizeof(ppid), "%ld", (long)getpid());
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = 1;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    stdio[3].flags = UV_INHERIT_FD;
    stdio[3].data.fd = sv[1];
    opt.file = z->exe;
    opt.args = args;
    opt.exit_cb = on_zygote_exit;
    opt.stdio = stdio;
    opt.stdio_count = 4;
    z->proc.data = z;
    rc = uv_spawn(z->loop, &z->proc, &opt);
    close(sv[1]);
    if (rc) {
        close(sv[0]);
        thaw_log("cannot start %s: %s", z->exe, uv_strerror(rc));
        return rc;
    }
    z->alive = 1;
    rc = thaw_chan_open(z->loop, sv[0], on_frame, on_chan_close, z, &z->chan);
    if (rc)
        close(sv[0]);
    return rc;
}

int thaw_zygote_start(uv_loop_t *loop, const char *exe_dir, struct thaw_zygote **out)
{
    struct thaw_zygote *z = calloc(1, sizeof(*z));
    const char *env = getenv("THAW_PYTHON_DIR");
    int rc;

    if (!z)
        return -ENOMEM;
    z->loop = loop;
    z->next_cookie = 1;
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

int thaw_zygote_build(struct thaw_zygote *z, uint32_t version, int chan_fd,
                      const char *name, const char *dir, const char *main,
                      const char *config_json, thaw_forked_cb cb, void *data)
{
    struct waiter *w;
    const char *fields[] = {name, dir, main, config_json};
    int rc;

    if (!z->chan) {
        close(chan_fd);
        return -EPIPE;
    }
    if (!(w = add_waiter(z, data))) {
        close(chan_fd);
        return -ENOMEM;
    }
    /* the version id is the supervisor's business; the zygote answers on
     * the cookie, like every request to it */
    (void)version;
    w->forked_cb = cb;
    rc = thaw_chan_send_fields(z->chan, THAW_IPC_BUILD, w->cookie, chan_fd, 4, fields);
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
        uv_process_kill(&z->proc, sig);
}

int thaw_zygote_alive(const struct thaw_zygote *z) { return z->alive; }

void thaw_zygote_shutdown(struct thaw_zygote *z)
{
    z->stopping = 1;
    if (z->chan) {
        thaw_chan_close(z->chan);
        z->chan = NULL;
    }
}
