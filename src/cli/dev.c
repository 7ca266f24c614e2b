/* `thaw dev`: serve one worker directory and rebuild it on every edit. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "pool/output.h"
#include "cron/sched.h"
#include "pool/pool.h"
#include "server/admin.h"
#include "server/server.h"
#include "util/log.h"
#include "watch/watch.h"
#include "zygote/client.h"

/* SIGINT/SIGTERM: SIGTERM to every process, SIGKILL to what is left
 * after KILL_AFTER_MS, exit by EXIT_BY_MS whatever happens. */
#define KILL_AFTER_MS 1000
#define EXIT_BY_MS 1800

struct dev {
    uv_loop_t *loop;
    char dir[PATH_MAX];
    char state[PATH_MAX + 64];    /* bindings' local data */
    const char *state_arg;
    const char *ip;
    int port;
    struct thaw_limits cli;       /* what the command line set ... */
    int cli_set[64];              /* ... and which of them */
    struct thaw_limits lim;       /* effective: defaults < config < command line */
    struct thaw_zygote *zygote;
    struct thaw_zygote *preload;
    const char *preload_list;
    int started;
    struct thaw_worker worker;
    int worker_started;
    struct thaw_server server;
    struct thaw_admin admin;
    const char *admin_addr;
    struct thaw_watch watch;
    struct thaw_cron_sched cron;  /* triggers.crons */
    int ready;
    int loading;
    int again;
    uv_signal_t sigint, sigterm, sigchld;
    uv_timer_t stop_timer;
    int stopping;
    uint64_t stop_ms;
    int no_sandbox;               /* --no-sandbox */
};

static void usage(void)
{
    fprintf(stderr, "usage: thaw dev [DIR] [--port N] [--ip ADDR] [--admin IP:PORT]\n"
                    "                [--preload PKG,...] [--state DIR] [--no-sandbox] [LIMITS...]\n"
                    "--state DIR (or --persist-to DIR): where KV and D1 data live;\n"
                    "                default DIR/.thaw/state\n"
                    "limits (see docs/config.md):\n");
    thaw_limits_usage(stderr);
}

static void reload(struct dev *d);
static void on_lost(struct thaw_worker *w);

static void on_built(struct thaw_worker *w, struct thaw_version *v)
{
    struct dev *d = w->data;

    if (v->state == VER_FAILED) {
        thaw_log("worker %s failed to build; serving the error as 500 until it is fixed:",
                 v->name);
        thaw_log_block(v->name, v->error, strlen(v->error));
    } else {
        thaw_log("worker %s %s (version %u): template built in %.1f ms, top level %.1f ms",
                 v->name, d->ready ? "reloaded" : "ready", v->id, v->build_ms,
                 v->top_level_ms);
    }
    if (!d->ready) {
        d->ready = 1;
        printf("Ready on http://%s%s%s:%d\n", strchr(d->ip, ':') ? "[" : "", d->ip,
               strchr(d->ip, ':') ? "]" : "", d->port);
        fflush(stdout);
    }
    if (d->again) {
        d->again = 0;
        reload(d);
    }
}

/* cpu_percent that neither the config nor the command line set: one CPU
 * per instance (limits.h, thaw_limits_dev_cpu_percent). thaw serve keeps
 * its operator's default and ceiling. */
static void dev_cpu_default(struct dev *d, const int *cfg_set)
{
    int i = thaw_limit_index("cpu_percent");

    if (i >= 0 && !d->cli_set[i] && !(cfg_set && cfg_set[i]))
        d->lim.cpu_percent = thaw_limits_dev_cpu_percent(&d->lim);
}

static void on_loaded(void *data, int rc, struct thaw_config *cfg, const char *err)
{
    struct dev *d = data;
    char limerr[512];
    int cfg_set[64];

    d->loading = 0;
    if (d->stopping) {
        if (cfg)
            thaw_config_free(cfg);
        return;
    }
    if (rc) {
        if (!d->worker_started) {
            fprintf(stderr, "thaw: error: %s\n", err);
            exit(1);
        }
        thaw_log("config error: %s", err);
        thaw_worker_set_error(&d->worker, err);
        return;
    }
    thaw_limits_defaults(&d->lim);
    memset(cfg_set, 0, sizeof(cfg_set));
    if (thaw_limits_from_config_set(&d->lim, cfg_set, cfg->json, cfg->file, limerr,
                                    sizeof(limerr))) {
        thaw_config_free(cfg);
        on_loaded(d, -1, NULL, limerr);
        return;
    }
    thaw_limits_override(&d->lim, &d->cli, d->cli_set);
    dev_cpu_default(d, cfg_set);
    thaw_cron_sched_config(&d->cron, cfg->json, cfg->file);
    if (!d->worker_started) {
        d->worker_started = 1;
        thaw_worker_init(&d->worker, d->loop, d->zygote, d->preload, d->dir, d->state, cfg,
                         &d->lim, NULL /* the developer is the operator */, on_built, d);
        d->worker.on_lost = on_lost;
        if ((rc = thaw_server_accept(&d->server))) {
            fprintf(stderr, "thaw: cannot accept on %s:%d: %s\n", d->ip, d->port,
                    uv_strerror(rc));
            exit(1);
        }
        return;
    }
    d->worker.limits = d->lim; /* a config edit may change them */
    thaw_worker_rebuild(&d->worker, cfg);
}

static void synced(void *data, int ok)
{
    struct dev *d = data;

    if (d->stopping)
        return;
    thaw_load_config(d->zygote, d->dir, on_loaded, d);
}

static void reload(struct dev *d)
{
    if (d->stopping)
        return;
    if (d->loading || d->worker.building) {
        d->again = 1; /* one build at a time; the latest edit wins */
        return;
    }
    d->loading = 1;
    thaw_autosync(d->loop, d->dir, synced, d);
}

static void on_change(struct thaw_watch *w)
{
    struct dev *d = w->data;

    thaw_log("change detected; rebuilding");
    reload(d);
}

static void on_lost(struct thaw_worker *w)
{
    reload(w->data);
}

/* The first build waits for every zygote, so a worker that can use the
 * preloaded base is built from it. */
static void on_zygote_ready(void *data, struct thaw_zygote *z)
{
    struct dev *d = data;

    if (d->started || !thaw_zygote_ready(d->zygote) ||
        (d->preload && !thaw_zygote_ready(d->preload)))
        return;
    d->started = 1;
    thaw_watch_start(&d->watch, d->loop, d->dir, 250, on_change);
    thaw_autosync(d->loop, d->dir, synced, d);
}

static void on_stop_tick(uv_timer_t *t)
{
    struct dev *d = t->data;
    uint64_t elapsed = uv_now(d->loop) - d->stop_ms;
    int alive = thaw_worker_alive(&d->worker) + thaw_zygote_alive(d->zygote) +
                (d->preload ? thaw_zygote_alive(d->preload) : 0);
    int children;

    /* as subreaper, the orphans of the tree come here to be reaped; leave
     * none behind as zombies for an init that may not reap */
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    children = !(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);
    if ((!alive && !children) || elapsed >= EXIT_BY_MS) {
        thaw_outpipe_drain_all(); /* the workers' last words */
        exit(0);
    }
    if (elapsed >= KILL_AFTER_MS) {
        thaw_worker_terminate(&d->worker, SIGKILL);
        thaw_zygote_signal(d->zygote, SIGKILL);
        if (d->preload)
            thaw_zygote_signal(d->preload, SIGKILL);
    }
}

static void on_signal(uv_signal_t *s, int sig)
{
    struct dev *d = s->data;

    if (d->stopping)
        return;
    d->stopping = 1;
    thaw_log("stopping (signal %d)", sig);
    thaw_watch_stop(&d->watch);
    thaw_cron_sched_stop(&d->cron);
    thaw_server_close(&d->server);
    thaw_admin_close(&d->admin);
    if (d->worker_started)
        thaw_worker_terminate(&d->worker, SIGTERM);
    thaw_zygote_shutdown(d->zygote);
    thaw_zygote_signal(d->zygote, SIGTERM);
    if (d->preload) {
        thaw_zygote_shutdown(d->preload);
        thaw_zygote_signal(d->preload, SIGTERM);
    }
    d->stop_ms = uv_now(d->loop);
    uv_timer_init(d->loop, &d->stop_timer);
    d->stop_timer.data = d;
    uv_timer_start(&d->stop_timer, on_stop_tick, 20, 20);
}

/* Every process of the tree is reparented here when its parent dies
 * (PR_SET_CHILD_SUBREAPER), so the supervisor reaps them all. */
static void on_sigchld(uv_signal_t *s, int sig)
{
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

static int parse_args(struct dev *d, int argc, char **argv)
{
    const char *dir = ".";
    char err[256];
    int i, rc;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--port") == 0 && v) {
            d->port = atoi(v);
            if (d->port <= 0 || d->port > 65535) {
                fprintf(stderr, "thaw: --port must be 1..65535, got '%s'\n", v);
                return -1;
            }
            i++;
        } else if (strcmp(a, "--no-sandbox") == 0) {
            d->no_sandbox = 1;
        } else if (strcmp(a, "--admin") == 0 && v) {
            d->admin_addr = v;
            i++;
        } else if (strcmp(a, "--preload") == 0 && v) {
            d->preload_list = v;
            i++;
        } else if ((strcmp(a, "--state") == 0 || strcmp(a, "--persist-to") == 0) && v) {
            d->state_arg = v;
            i++;
        } else if (strcmp(a, "--ip") == 0 && v) {
            d->ip = v;
            i++;
        } else if (a[0] == '-' && (rc = thaw_limits_flag(&d->cli, d->cli_set, a, v, err,
                                                         sizeof(err)))) {
            if (rc < 0) {
                fprintf(stderr, "thaw: %s\n", err);
                return -1;
            }
            i++;
        } else if (a[0] == '-') {
            fprintf(stderr, "thaw: unknown option '%s'\n", a);
            usage();
            return -1;
        } else {
            dir = a;
        }
    }
    if (!realpath(dir, d->dir)) {
        fprintf(stderr, "thaw: cannot open worker directory '%s'\n", dir);
        return -1;
    }
    if (!d->state_arg) {
        snprintf(d->state, sizeof(d->state), "%s/.thaw/state", d->dir);
    } else if (d->state_arg[0] == '/') {
        snprintf(d->state, sizeof(d->state), "%s", d->state_arg);
    } else {
        char cwd[PATH_MAX / 2];
        if (!getcwd(cwd, sizeof(cwd)) || strlen(d->state_arg) > PATH_MAX / 2 - 1) {
            fprintf(stderr, "thaw: getcwd: %s\n", strerror(errno));
            return -1;
        }
        snprintf(d->state, sizeof(d->state), "%s/%s", cwd, d->state_arg);
    }
    return 0;
}

int thaw_cmd_dev(int argc, char **argv)
{
    static struct dev d;
    int rc;

    d.ip = "127.0.0.1";
    d.port = 8787;
    thaw_limits_defaults(&d.cli);
    if (parse_args(&d, argc, argv))
        return 2;
    thaw_limits_defaults(&d.lim);
    thaw_limits_override(&d.lim, &d.cli, d.cli_set);
    dev_cpu_default(&d, NULL);
    d.worker.limits = d.lim; /* what connections see before the first build */
    thaw_cli_sandbox("dev", d.no_sandbox, 0);
    /* the developer is the operator here; under thaw serve the same keys
     * are tenant input held to the operator's policy (docs/security.md) */
    fprintf(stderr, "thaw dev: the worker's config is trusted here (you are the operator): "
            "its limits, [thaw.egress], [thaw.kv] backend and paths outside the project "
            "are honoured as written; thaw serve holds them to the operator's policy\n");
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    d.loop = uv_default_loop();
    uv_signal_init(d.loop, &d.sigchld);
    uv_signal_start(&d.sigchld, on_sigchld, SIGCHLD);

    if ((rc = thaw_zygote_start(d.loop, thaw_exe_dir(), NULL, on_zygote_ready, &d,
                                &d.zygote)) ||
        (d.preload_list && (rc = thaw_zygote_start(d.loop, thaw_exe_dir(), d.preload_list,
                                                   on_zygote_ready, &d, &d.preload)))) {
        fprintf(stderr, "thaw: cannot start the Python zygote (%s/thaw-zygote): %s\n",
                thaw_exe_dir(), strerror(-rc));
        return 1;
    }
    d.worker.data = &d;
    {
        char err[256];
        if (thaw_cron_sched_init(&d.cron, d.loop, &d.worker, err, sizeof(err))) {
            fprintf(stderr, "thaw: %s\n", err);
            return 2;
        }
    }
    /* accepting starts with the first build (on_loaded): a client early
     * waits for it instead of finding no version to answer */
    if ((rc = thaw_server_bind(&d.server, d.loop, d.ip, d.port, &d.worker))) {
        fprintf(stderr, "thaw: cannot listen on %s:%d: %s\n", d.ip, d.port,
                uv_strerror(rc));
        return 1;
    }

    if (d.admin_addr && (rc = thaw_admin_listen(&d.admin, d.loop, d.admin_addr, &d.worker))) {
        fprintf(stderr, "thaw: cannot listen on the admin address '%s': %s (want IP:PORT)\n",
                d.admin_addr, uv_strerror(rc));
        return 1;
    }
    uv_signal_init(d.loop, &d.sigint);
    uv_signal_init(d.loop, &d.sigterm);
    d.sigint.data = d.sigterm.data = &d;
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);

    d.watch.data = &d;
    d.loading = 1; /* until the zygotes are ready */
    uv_run(d.loop, UV_RUN_DEFAULT);
    return 0;
}
