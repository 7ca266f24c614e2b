/* Starting a version: the zygote it forks from, its bindings, its memory
 * cgroup and output pipe, and the BUILD that forks its template. A version
 * that cannot start comes back FAILED (version.c owns it either way). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pool/build-deadline.h"
#include "pool/memwatch.h"
#include "pool/output.h"
#include "pool/pool-internal.h"
#include "pool/procops.h"
#include "policy/policy.h"
#include "sandbox/uids.h"
#include "sandbox/cgroup.h"
#include "util/log.h"
#include "zygote/client.h"

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
        if (!w->own_zygote &&
            thaw_zygote_start_like(w->zygote, w->cfg.name ? w->cfg.name : "worker",
                                   &w->own_zygote))
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
    int internal;

    memset(&env, 0, sizeof(env));
    env.loop = w->loop;
    env.worker_name = v->name;
    env.worker_dir = w->cfg.dir;
    env.state_dir = w->state_dir;
    env.policy = w->policy;
    env.worker = w;
    env.ws_max_message = w->limits.ws_max_message;
    file = w->cfg.file ? strrchr(w->cfg.file, '/') : NULL;
    env.config_file = file ? file + 1 : (w->cfg.file ? w->cfg.file : "config");
    env.config = json_loads(w->cfg.json ? w->cfg.json : "{}", 0, &jerr);
    if (!env.config)
        env.config = json_object();
    v->bindings = thaw_bindings_open(&env, &internal, err, sizeof(err));
    json_decref(env.config);
    if (!v->bindings) {
        /* a config error names file and key; a store thaw cannot create
         * is thaw's (its log has the details) */
        thaw__version_set_failed(v, internal ? THAW_FAULT_INTERNAL : THAW_FAULT_CONFIG, err);
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
    struct thaw_version *v = thaw__version_alloc(w);
    char sandbox[512], err[700], memcg[24] = "";
    int sv[2], out_fd, rc;

    if (!v)
        return NULL;
    if (open_bindings(v) < 0)
        return v;
    /* the kernel counts the whole version's memory and CPU (sandbox/cgroup.h) */
    if (thaw_zygote_sandboxed() &&
        (v->memcg = thaw_memcg_create(thaw_limits_version_memory(&w->limits),
                                      w->limits.cpu_percent, err, sizeof(err))) < 0) {
        v->memcg = 0;
        thaw__version_set_failed(v, THAW_FAULT_INTERNAL, err);
        return v;
    }
    if (v->memcg) {
        snprintf(memcg, sizeof(memcg), "v%ld", v->memcg);
        v->memcg_mb = thaw_limits_version_memory(&w->limits) >> 20;
        thaw__memwatch_start(v);
    }
    /* its output is told apart by this pipe, never by its text: no pipe,
     * no build */
    if ((rc = thaw_outpipe_open(w->loop, v->name, version_output, v, &v->out, &out_fd))) {
        thaw__version_set_failed(v, THAW_FAULT_INTERNAL, "cannot open the worker's output pipe");
        thaw_log("worker %s: cannot open its output pipe: %s", v->name, uv_strerror(rc));
        return v;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        close(out_fd);
        thaw__version_set_failed(v, THAW_FAULT_INTERNAL, strerror(errno));
        return v;
    }
    if (thaw_chan_open(w->loop, sv[0], thaw__version_template_frame,
                       thaw__version_template_chan_close,
                       v, &v->chan)) {
        close(sv[0]);
        close(sv[1]);
        close(out_fd);
        thaw__version_set_failed(v, THAW_FAULT_INTERNAL, "cannot open the template channel");
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
    if (thaw_proc_ops->fork_template(v, sv[1], out_fd, sandbox,
                                     thaw__version_template_forked)) {
        thaw_chan_close(v->chan);
        v->chan = NULL;
        thaw__version_set_failed(v, THAW_FAULT_INTERNAL,
                                 thaw_zygote_why(v->zygote, err, sizeof(err)));
        return v;
    }
    thaw__build_deadline_start(v);
    return v;
}
