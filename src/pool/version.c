/* Lifecycle of versions (a template process each) and of instances (forked
 * from a template): build, spawn, death, retirement. Every process is
 * watched through a pidfd that its forker sent, so the supervisor sees
 * every death though only the zygote is its child. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <poll.h>

#include "pool/output.h"
#include "pool/pool-internal.h"
#include "policy/policy.h"
#include "sandbox/uids.h"
#include "sandbox/cgroup.h"
#include "sandbox/hostpid.h" /* sandbox hook: instance pids (issue 15) */
#include "util/log.h"
#include "zygote/client.h"

static uint32_t next_instance_id = 1;

int thaw__pidfd_alive(int pidfd)
{
    struct pollfd p = {.fd = pidfd, .events = POLLIN};

    if (pidfd < 0)
        return 0;
    return poll(&p, 1, 0) == 0;
}

void thaw__instance_kill(struct thaw_instance *inst, int status, const char *msg)
{
    if (inst->kill_status)
        return;
    inst->kill_status = status;
    snprintf(inst->kill_msg, sizeof(inst->kill_msg), "%s", msg);
    thaw_log("worker %s: killing instance %u (pid %d): %s", inst->ver->name, inst->id,
             (int)inst->pid, msg);
    if (inst->pidfd >= 0)
        syscall(SYS_pidfd_send_signal, inst->pidfd, SIGKILL, NULL, 0);
}

static void pidfd_signal(int pidfd, int sig)
{
    if (pidfd >= 0)
        syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* ---- freeing, once every handle is closed ---------------------------- */

/* Versions are freed at the end of a loop iteration, never inside a call
 * chain that may still hold a pointer to one (retiring the last instance
 * of a draining version happens deep inside routing). */
static struct thaw_version *doomed;
static uv_check_t reaper;
static int reaper_on;

static void free_version(struct thaw_version *v)
{
    thaw_memcg_remove(v->memcg);
    if (v->pidfd >= 0)
        close(v->pidfd);
    if (v->zygote)
        thaw_zygote_forget(v->zygote, v);
    thaw_bindings_release(v->bindings);
    thaw_sb_uid_put(v->uid_slot);
    thaw_outpipe_free(v->out);
    free(v->error);
    free(v->name);
    free(v);
}

static void on_reap(uv_check_t *h)
{
    while (doomed) {
        struct thaw_version *v = doomed;
        doomed = v->next;
        free_version(v);
    }
    uv_check_stop(h);
}

static void on_version_handle_closed(uv_handle_t *h);

static void maybe_free_version(struct thaw_version *v)
{
    struct thaw_worker *w = v->worker;
    struct thaw_version **pp;

    /* a draining version keeps its template only while instances live */
    if (v->state == VER_DRAINING && v->n_instances == 0 && v->chan) {
        thaw_chan_close(v->chan);
        v->chan = NULL;
        v->chan_gone = 1;
    }
    if (v->state != VER_DRAINING || v->doomed || v->instances || v->pending_closes ||
        thaw__pidfd_alive(v->pidfd) || !v->chan_gone)
        return;
    if (v->pid_poll_on) {
        /* the template is gone but its exit event is not in yet: the poll
         * is closed before its fd, or libuv keeps watching a closed fd
         * number and the next fd to get it (a channel, another pidfd)
         * reports to freed memory */
        uv_poll_stop(&v->pid_poll);
        v->pid_poll_on = 0;
        v->pending_closes++;
        uv_close((uv_handle_t *)&v->pid_poll, on_version_handle_closed);
        return;
    }
    for (pp = &w->versions; *pp; pp = &(*pp)->next)
        if (*pp == v) {
            *pp = v->next;
            break;
        }
    v->doomed = 1;
    v->next = doomed;
    doomed = v;
    if (!reaper_on) {
        uv_check_init(w->loop, &reaper);
        uv_unref((uv_handle_t *)&reaper);
        reaper_on = 1;
    }
    uv_check_start(&reaper, on_reap);
}

static void on_version_handle_closed(uv_handle_t *h)
{
    struct thaw_version *v = h->data;

    v->pending_closes--;
    maybe_free_version(v);
}

static void unlink_instance(struct thaw_instance *inst)
{
    struct thaw_version *v = inst->ver;
    struct thaw_instance **pp;

    for (pp = &v->instances; *pp; pp = &(*pp)->next)
        if (*pp == inst) {
            *pp = inst->next;
            break;
        }
}

static void on_instance_handle_closed(uv_handle_t *h)
{
    struct thaw_instance *inst = h->data;
    struct thaw_version *v = inst->ver;

    v->pending_closes--;
    if (inst->pidfd >= 0)
        close(inst->pidfd);
    free(inst);
    maybe_free_version(v);
}

/* Forgets an instance whose process is gone (or never started). */
static void instance_free(struct thaw_instance *inst)
{
    struct thaw_version *v = inst->ver;

    unlink_instance(inst);
    thaw_bind_peer_close(&inst->bind);
    if (inst->state == INST_LIVE)
        v->n_instances--;
    if (inst->chan) {
        thaw_chan_close(inst->chan);
        inst->chan = NULL;
    }
    if (inst->pid_poll_on) {
        v->pending_closes++; /* v outlives the close callback */
        uv_close((uv_handle_t *)&inst->pid_poll, on_instance_handle_closed);
        return;
    }
    if (inst->pidfd >= 0)
        close(inst->pidfd);
    free(inst);
    maybe_free_version(v);
}

/* ---- instances -------------------------------------------------------- */

void thaw__instance_dead(struct thaw_instance *inst, const char *why)
{
    struct thaw_version *v = inst->ver;
    int ready = v->state == VER_READY; /* v may be freed below */

    thaw__memcg_blame(inst);
    if (inst->state == INST_LIVE && !v->worker->stopping && !inst->kill_status)
        thaw_log("worker %s: instance %u (pid %d) %s", v->name, inst->id,
                 (int)inst->pid, why);
    if (inst->kill_status)
        thaw__instance_fail_all(inst, inst->kill_status, inst->kill_msg);
    else
        thaw__instance_fail_all(inst, 502,
            "502 Bad Gateway: the worker's instance exited while handling this "
            "request (a crash, os._exit() or a kill); thaw started a new one for "
            "the next request.\n");
    instance_free(inst);
    /* queued requests need an instance that is alive */
    if (ready) {
        thaw__pool_run_queue(v);
        thaw__pool_ensure_spares(v);
    }
}

static void on_instance_exit(uv_poll_t *h, int status, int events)
{
    struct thaw_instance *inst = h->data;

    uv_poll_stop(h);
    thaw__instance_dead(inst, "exited");
}

static void on_instance_frame(struct thaw_chan *c, const struct thaw_ipc_frame *f,
                              int fd, void *data)
{
    if (fd >= 0)
        close(fd);
    thaw__instance_on_frame(data, f);
}

static void on_instance_chan_close(struct thaw_chan *c, int err, void *data)
{
    struct thaw_instance *inst = data;

    inst->chan = NULL;
    thaw_bind_peer_close(&inst->bind);
    if (err && err != -ECONNRESET && inst->state == INST_LIVE)
        thaw_log("worker %s: instance %u channel failed: %s", inst->ver->name,
                 inst->id, err == THAW_IPC_E_TOOBIG || err == THAW_IPC_E_BADHDR
                               ? "malformed frame" : strerror(-err));
    /* the channel is how requests reach it: without it the instance is
     * useless even if the process lingers */
    pidfd_signal(inst->pidfd, SIGKILL);
    thaw__instance_dead(inst, "closed its channel");
}

static void on_instance_drain(struct thaw_chan *c, void *data)
{
    struct thaw_instance *inst = data;
    struct thaw_exchange *ex, *next;

    for (ex = inst->ex_head; ex; ex = next) {
        next = ex->next;
        if (ex->ops->on_writable)
            ex->ops->on_writable(ex);
    }
}

struct thaw_instance *thaw__instance_spawn(struct thaw_version *v)
{
    struct thaw_instance *inst;
    int sv[2];

    if (!v->chan)
        return NULL;
    inst = calloc(1, sizeof(*inst));
    if (!inst)
        return NULL;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        thaw_log("socketpair: %s", strerror(errno));
        free(inst);
        return NULL;
    }
    inst->id = next_instance_id++;
    /* born idle: the idle timeout counts from now */
    inst->progress_ms = inst->idle_since_ms = uv_now(v->worker->loop);
    inst->ver = v;
    inst->pidfd = -1;
    inst->pid = -1;
    if (thaw_chan_open(v->worker->loop, sv[0], on_instance_frame,
                       on_instance_chan_close, inst, &inst->chan)) {
        close(sv[0]);
        close(sv[1]);
        free(inst);
        return NULL;
    }
    thaw_chan_on_drain(inst->chan, on_instance_drain);
    thaw_bind_peer_init(&inst->bind, inst->chan, v->bindings, v->name, inst->id);
    /* the instance reads frames queued before it even exists: no wait */
    if (thaw_chan_send_fields(v->chan, THAW_IPC_SPAWN, inst->id, sv[1], 0, NULL)) {
        thaw_chan_close(inst->chan);
        free(inst);
        return NULL;
    }
    inst->next = v->instances;
    v->instances = inst;
    v->n_instances++;
    return inst;
}

void thaw__instance_retire(struct thaw_instance *inst)
{
    if (inst->state == INST_RETIRED)
        return;
    inst->state = INST_RETIRED;
    inst->ver->n_instances--;
    /* EOF on its channel makes the instance exit by itself */
    if (inst->chan) {
        thaw_chan_close(inst->chan);
        inst->chan = NULL;
    }
    if (!inst->pid_poll_on && inst->pid < 0) {
        maybe_free_version(inst->ver); /* SPAWNED not in yet: freed later */
        return;
    }
    if (!inst->pid_poll_on) {
        instance_free(inst);
        return;
    }
    maybe_free_version(inst->ver);
}

static struct thaw_instance *find_instance(struct thaw_version *v, uint32_t id)
{
    struct thaw_instance *i;

    for (i = v->instances; i; i = i->next)
        if (i->id == id)
            return i;
    return NULL;
}

static void instance_spawned(struct thaw_version *v, uint32_t id, pid_t pid, int pidfd)
{
    struct thaw_instance *inst = find_instance(v, id);

    if (!inst) {
        close(pidfd);
        return;
    }
    /* sandbox hook (issue 15): the template names its instances by their
     * pid in the version's pid namespace; /proc reads need the host's */
    inst->pid = pid = thaw_sb_host_pid(pidfd, pid);
    inst->pidfd = pidfd;
    thaw_memcg_prefer_victim(pid);
    if (uv_poll_init(v->worker->loop, &inst->pid_poll, pidfd) == 0) {
        inst->pid_poll.data = inst;
        inst->pid_poll_on = 1;
        uv_poll_start(&inst->pid_poll, UV_READABLE, on_instance_exit);
    }
    if (v->state == VER_READY && v->last_request_ms)
        thaw__pool_ensure_spares(v); /* it waited for this one to start */
}

/* ---- the template ---------------------------------------------------- */

static void build_finished(struct thaw_version *v)
{
    thaw__worker_built(v->worker, v);
}

static void fields_text(const struct thaw_ipc_frame *f, char **out)
{
    struct thaw_ipc_fields it;
    const uint8_t *p;
    size_t n;

    thaw_ipc_fields_init(&it, f);
    if (thaw_ipc_next_field(&it, &p, &n) != 1) {
        p = (const uint8_t *)"";
        n = 0;
    }
    *out = strndup((const char *)p, n);
}

static void set_failed(struct thaw_version *v, const char *msg)
{
    free(v->error);
    v->error = strdup(msg);
    v->state = VER_FAILED;
}

static void on_template_frame(struct thaw_chan *c, const struct thaw_ipc_frame *f,
                              int fd, void *data)
{
    struct thaw_version *v = data;
    char *text = NULL;

    switch (f->type) {
    case THAW_IPC_BUILT: {
        struct thaw_worker *w = v->worker;
        struct thaw_ipc_fields it;
        const uint8_t *p;
        size_t n;
        int k = 0;

        if (v->state != VER_BUILDING)
            break;
        thaw_ipc_fields_init(&it, f);
        while (thaw_ipc_next_field(&it, &p, &n) == 1)
            if (++k == 3) /* module, handler kind, top level ms */
                v->top_level_ms = strtod(strndupa((const char *)p, n), NULL);
        v->build_ms = (double)(uv_hrtime() - v->build_start) / 1e6;
        v->ready_ms = uv_now(w->loop);
        if (!w->lazy_spares) {
            v->last_request_ms = v->ready_ms; /* thaw dev: an edit is activity */
        } else if (w->current && w->current != v &&
                   w->current->last_request_ms > v->last_request_ms) {
            v->last_request_ms = w->current->last_request_ms; /* a deploy is not */
        }
        v->state = VER_READY;
        build_finished(v);
        break;
    }
    case THAW_IPC_BUILD_ERR:
        fields_text(f, &text);
        if (v->state == VER_BUILDING) {
            set_failed(v, text);
            build_finished(v);
        }
        break;
    case THAW_IPC_SPAWNED:
        fields_text(f, &text);
        if (fd >= 0) {
            instance_spawned(v, f->stream, (pid_t)atol(text), fd);
            fd = -1;
        }
        break;
    case THAW_IPC_SPAWN_ERR: {
        struct thaw_instance *inst = find_instance(v, f->stream);
        fields_text(f, &text);
        thaw_log("worker %s: template could not fork an instance: %s", v->name, text);
        if (inst)
            thaw__instance_dead(inst, "could not be forked");
        break;
    }
    }
    free(text);
    if (fd >= 0)
        close(fd);
}

static void template_gone(struct thaw_version *v, const char *why)
{
    struct thaw_worker *w = v->worker;

    if (v->state == VER_BUILDING) {
        char msg[512];
        if (thaw_memcg_oom_kills(v->memcg) > 0)
            snprintf(msg, sizeof(msg),
                     "the template process of worker %s was killed while running the top "
                     "level of %s: the worker's memory limit of %lld MB was reached "
                     "(memory_mb x (max_instances + 1))", v->name, w->cfg.main, v->memcg_mb);
        else
            snprintf(msg, sizeof(msg),
                     "the template process of worker %s %s while running the top "
                     "level of %s (a crash in an extension, os._exit() or a kill)",
                     v->name, why, w->cfg.main);
        set_failed(v, msg);
        build_finished(v);
        return;
    }
    if (v->state == VER_READY && !w->stopping) {
        thaw_log("worker %s: template of version %u %s; rebuilding", v->name,
                 v->id, why);
        if (w->current == v && w->on_lost)
            w->on_lost(w);
    }
}

static void on_template_chan_close(struct thaw_chan *c, int err, void *data)
{
    struct thaw_version *v = data;

    v->chan = NULL;
    v->chan_gone = 1;
    template_gone(v, "exited");
    maybe_free_version(v);
}

static void on_template_exit(uv_poll_t *h, int status, int events)
{
    struct thaw_version *v = h->data;

    uv_poll_stop(h);
    if (v->chan) {
        thaw_chan_close(v->chan);
        v->chan = NULL;
        v->chan_gone = 1;
        template_gone(v, "exited");
    }
    v->pending_closes++;
    uv_close((uv_handle_t *)h, on_version_handle_closed);
    v->pid_poll_on = 0;
}

static void on_template_forked(void *data, pid_t pid, int pidfd, const char *err)
{
    struct thaw_version *v = data;

    if (pid < 0) {
        char msg[512];
        snprintf(msg, sizeof(msg), "could not start a template: %s", err);
        if (v->chan) {
            thaw_chan_close(v->chan);
            v->chan = NULL;
        }
        v->chan_gone = 1;
        if (v->state == VER_BUILDING) {
            set_failed(v, msg);
            build_finished(v);
        }
        maybe_free_version(v);
        return;
    }
    v->pid = pid;
    v->pidfd = pidfd;
    if (uv_poll_init(v->worker->loop, &v->pid_poll, pidfd) == 0) {
        v->pid_poll.data = v;
        v->pid_poll_on = 1;
        uv_poll_start(&v->pid_poll, UV_READABLE, on_template_exit);
    }
}

static struct thaw_version *version_alloc(struct thaw_worker *w)
{
    struct thaw_version *v = calloc(1, sizeof(*v));

    if (!v)
        return NULL;
    v->id = ++w->next_version;
    v->worker = w;
    v->name = strdup(w->cfg.name ? w->cfg.name : "worker");
    v->pidfd = -1;
    v->pid = -1;
    v->state = VER_BUILDING;
    v->build_start = uv_hrtime();
    v->next = w->versions;
    w->versions = v;
    thaw__tick_start(w);
    return v;
}

struct thaw_version *thaw__version_failed(struct thaw_worker *w, const char *msg)
{
    struct thaw_version *v = version_alloc(w);

    if (v) {
        set_failed(v, msg);
        v->chan_gone = 1;
    }
    return v;
}

/* The module name a python_modules/ entry provides, or NULL. */
static const char *vendored_module(const char *entry, char *out, size_t n)
{
    const char *dot;

    if (entry[0] == '.' || strcmp(entry, "__pycache__") == 0 || strcmp(entry, "bin") == 0 ||
        strstr(entry, ".dist-info") || strstr(entry, ".egg-info") || strstr(entry, ".pth"))
        return NULL;
    dot = strchr(entry, '.'); /* pkg, mod.py, ext.cpython-311-x86_64-linux-gnu.so */
    snprintf(out, n, "%.*s", dot ? (int)(dot - entry) : (int)strlen(entry), entry);
    return out;
}

/* The preloaded base, unless the worker vendors its own copy of a module
 * the base already imported (sys.modules would hand it the base's copy). */
static struct thaw_zygote *pick_zygote(struct thaw_worker *w)
{
    char path[PATH_MAX], name[256];
    struct dirent *e;
    DIR *d;

    /* a zygote of its own: no address-space layout shared with another
     * worker (docs/security.md) */
    if (w->limits.isolation == THAW_ISOLATION_PER_WORKER) {
        if (!w->own_zygote && thaw_zygote_start_like(w->zygote, &w->own_zygote))
            thaw_log("worker %s: cannot start its own zygote; building it from the "
                     "shared one", w->cfg.name);
        if (w->own_zygote)
            return w->own_zygote;
    }
    if (!w->preload || !thaw_zygote_ready(w->preload))
        return w->zygote;
    snprintf(path, sizeof(path), "%s/python_modules", w->cfg.dir);
    if (!(d = opendir(path)))
        return w->preload;
    while ((e = readdir(d))) {
        if (vendored_module(e->d_name, name, sizeof(name)) &&
            thaw_zygote_holds(w->preload, name)) {
            thaw_log("worker %s vendors its own `%s`, which the preloaded base holds: "
                     "building it from the plain zygote", w->cfg.name, name);
            closedir(d);
            return w->zygote;
        }
    }
    closedir(d);
    return w->preload;
}

/* The version's bindings, from its config: a binding that cannot open (a
 * bad entry, a store that cannot be created) fails the version. */
static int open_bindings(struct thaw_version *v)
{
    struct thaw_worker *w = v->worker;
    struct thaw_bind_env env;
    json_error_t jerr;
    char err[1024];
    const char *file;

    memset(&env, 0, sizeof(env));
    env.loop = w->loop;
    env.worker_name = v->name;
    env.worker_dir = w->cfg.dir;
    env.state_dir = w->state_dir;
    env.policy = w->policy;
    file = w->cfg.file ? strrchr(w->cfg.file, '/') : NULL;
    env.config_file = file ? file + 1 : (w->cfg.file ? w->cfg.file : "config");
    env.config = json_loads(w->cfg.json ? w->cfg.json : "{}", 0, &jerr);
    if (!env.config)
        env.config = json_object();
    v->bindings = thaw_bindings_open(&env, err, sizeof(err));
    json_decref(env.config);
    if (!v->bindings) {
        set_failed(v, err);
        v->chan_gone = 1;
        return -1;
    }
    return 0;
}

static void version_output(void *data, long long request, const char *msg, size_t n,
                           int truncated)
{
    struct thaw_version *v = data;

    if (v->worker->on_output)
        v->worker->on_output(v->worker, request, msg, n, truncated);
}

struct thaw_version *thaw__version_new(struct thaw_worker *w)
{
    struct thaw_version *v = version_alloc(w);
    char sandbox[512], err[700], memcg[24] = "";
    int sv[2], out_fd, rc;

    if (!v)
        return NULL;
    if (open_bindings(v) < 0)
        return v;
    /* the kernel counts the whole version's memory and CPU
     * (sandbox/cgroup.h; sandbox hook, issue 15: cpu_percent) */
    if (thaw_zygote_sandboxed() &&
        (v->memcg = thaw_memcg_create(thaw_limits_version_memory(&w->limits),
                                      w->limits.cpu_percent, err, sizeof(err))) < 0) {
        v->memcg = 0;
        set_failed(v, err);
        v->chan_gone = 1;
        return v;
    }
    if (v->memcg) {
        snprintf(memcg, sizeof(memcg), "v%ld", v->memcg);
        v->memcg_mb = thaw_limits_version_memory(&w->limits) >> 20;
    }
    /* its output is told apart by this pipe, never by its text: no pipe,
     * no build */
    if ((rc = thaw_outpipe_open(w->loop, v->name, version_output, v, &v->out, &out_fd))) {
        set_failed(v, "cannot open the worker's output pipe");
        thaw_log("worker %s: cannot open its output pipe: %s", v->name, uv_strerror(rc));
        v->chan_gone = 1;
        return v;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        close(out_fd);
        set_failed(v, strerror(errno));
        v->chan_gone = 1;
        return v;
    }
    if (thaw_chan_open(w->loop, sv[0], on_template_frame, on_template_chan_close,
                       v, &v->chan)) {
        close(sv[0]);
        close(sv[1]);
        close(out_fd);
        set_failed(v, "cannot open the template channel");
        v->chan_gone = 1;
        return v;
    }
    v->zygote = pick_zygote(w);
    w->metrics.template_builds++;
    /* thaw serve as root: a host uid of its own (sandbox/uids.h). Not in
     * dev, whose project files may be readable by their owner only. */
    v->uid_slot = thaw_zygote_sandboxed() && w->policy && w->policy->tenant
                      ? thaw_sb_uid_take() : 0;
    /* the sandbox's per-version limits (python/thaw_runtime/sandbox.py);
     * the address-space cap is far above memory_mb, which the tick
     * enforces: it only turns a 10 GB allocation into a MemoryError */
    snprintf(sandbox, sizeof(sandbox),
             "{\"on\":%d,\"tmp_bytes\":%lld,\"nproc\":%lld,\"nofile\":%lld,"
             "\"fsize\":%lld,\"as_bytes\":%lld,\"tenant\":%d,\"uid\":%u,\"memcg\":\"%s\"}",
             thaw_zygote_sandboxed(), w->limits.tmp_size, w->limits.max_processes,
             w->limits.max_open_files, w->limits.tmp_size,
             (w->limits.memory_mb * 16 > 4096 ? w->limits.memory_mb * 16 : 4096) << 20,
             w->policy && w->policy->tenant, v->uid_slot, memcg);
    if (thaw_zygote_build(v->zygote, v->id, sv[1], out_fd, w->cfg.name, w->cfg.dir,
                          w->cfg.main, w->cfg.json, sandbox, on_template_forked, v)) {
        thaw_chan_close(v->chan);
        v->chan = NULL;
        v->chan_gone = 1;
        set_failed(v, "the zygote is not running");
    }
    return v;
}

/* No new requests; instances go as they become idle; the template goes
 * with the last of them. */
void thaw__version_retire(struct thaw_version *v)
{
    struct thaw_instance *inst, *next;

    v->state = VER_DRAINING;
    for (inst = v->instances; inst; inst = next) {
        next = inst->next;
        if (inst->inflight == 0 && !inst->background)
            thaw__instance_retire(inst);
    }
    thaw__pool_fail_queue(v, 503, "503 Service Unavailable: the worker was replaced "
                          "while this request waited; retry\n");
    maybe_free_version(v);
}

/* ---- shutdown -------------------------------------------------------- */

int thaw_worker_alive(struct thaw_worker *w)
{
    struct thaw_version *v;
    struct thaw_instance *i;
    int n = 0;

    for (v = w->versions; v; v = v->next) {
        n += thaw__pidfd_alive(v->pidfd);
        for (i = v->instances; i; i = i->next)
            n += thaw__pidfd_alive(i->pidfd);
    }
    return n;
}

void thaw_worker_terminate(struct thaw_worker *w, int sig)
{
    struct thaw_version *v;
    struct thaw_instance *i;

    w->stopping = 1;
    if (w->own_zygote) {
        thaw_zygote_free(w->own_zygote);
        w->own_zygote = NULL;
    }
    for (v = w->versions; v; v = v->next) {
        pidfd_signal(v->pidfd, sig);
        for (i = v->instances; i; i = i->next)
            pidfd_signal(i->pidfd, sig);
    }
}
