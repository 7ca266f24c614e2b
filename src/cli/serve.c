/* `thaw serve`: host every worker deployed into a state directory, with
 * the admin API (src/serve/) for deploys, rollbacks, deletes and tail. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bind/egress.h"
#include "bind/kv.h"
#include "cli/cli.h"
#include "cluster/config.h"
#include "cluster/control.h"
#include "cluster/link.h"
#include "cluster/tail.h"
#include "cluster/internal.h"
#include "cluster/owner.h"
#include "pool/output.h"
#include "serve/bundle.h"
#include "serve/fleet.h"
#include "serve/store.h"
#include "serve/tenant-limits.h"
#include "server/server.h"
#include "util/log.h"
#include "zygote/client.h"

#define KILL_AFTER_MS 1000
#define EXIT_BY_MS 1800

struct serve {
    uv_loop_t *loop;
    const char *state_arg;
    const char *listen;
    const char *admin;
    const char *preload_list;
    const char *config_path;     /* --config: the operator's policy */
    int policy_state;            /* 0: to load, 1: loading (TOML), 2: loaded */
    long long max_bundle;
    struct thaw_fleet fleet;
    struct thaw_worker front;    /* server-wide limits; unrouted requests' metrics */
    struct thaw_server server;
    struct thaw_api api;
    struct thaw_cluster_config cluster; /* the operator's [cluster] */
    struct thaw_control control;        /* its control store, when it names one */
    struct thaw_owners owners;          /* who serves each D1 database */
    struct thaw_internal internal;      /* the port other nodes forward to */
    uv_signal_t sigint, sigterm, sigchld;
    uv_timer_t stop_timer;
    int stopping;
    uint64_t stop_ms;
};

static void usage(void)
{
    fprintf(stderr,
            "usage: thaw serve --state DIR [--listen IP:PORT] [--admin IP:PORT]\n"
            "                  [--domain DOMAIN] [--preload PKG,...] [--max-bundle-size N]\n"
            "                  [--config FILE] [LIMITS...]\n"
            "--config   the operator's policy (TOML or JSON): ceilings of worker limits,\n"
            "           egress, KV backend, route grants (docs/security.md), cluster\n"
            "           (docs/scale-out.md)\n"
            "--listen   where workers are served (default 127.0.0.1:8787)\n"
            "--admin    the admin API (default 127.0.0.1:8788); token: THAW_API_TOKEN\n"
            "           or DIR/token (made on first start, mode 0600)\n"
            "--domain   a worker NAME answers at NAME.DOMAIN (default localhost)\n"
            "limits (docs/config.md): each is every worker's default and its ceiling (a\n"
            "worker's config may lower it, not raise it; --config's [limits] table sets\n"
            "ceilings apart). The header/body size and header/keep-alive timeouts are\n"
            "the server's own:\n");
    thaw_limits_usage(stderr);
}

static int split_addr(const char *addr, char *ip, size_t n, int *port)
{
    const char *colon = strrchr(addr, ':');

    if (!colon || colon == addr || (size_t)(colon - addr) >= n)
        return -1;
    snprintf(ip, n, "%.*s", (int)(colon - addr), addr);
    if (ip[0] == '[') {
        memmove(ip, ip + 1, strlen(ip));
        if (ip[0])
            ip[strlen(ip) - 1] = '\0';
    }
    *port = atoi(colon + 1);
    return *port > 0 && *port <= 65535 ? 0 : -1;
}

static void policy_failed(const char *msg)
{
    fprintf(stderr, "thaw: %s\n", msg);
    exit(2);
}

static void on_zygote_ready(void *data, struct thaw_zygote *z);

static void on_policy_toml(void *data, int ok, const char *text, size_t len)
{
    struct serve *s = data;
    char *json = strndup(text, len), err[1024];

    if (!json || ok <= 0)
        policy_failed(json ? json : "out of memory");
    if (thaw_policy_load_json(&s->fleet.policy, json, s->config_path, err, sizeof(err)))
        policy_failed(err);
    free(json);
    s->policy_state = 2;
    on_zygote_ready(s, s->fleet.zygote);
}

/* The operator's config: JSON and JSONC at once, TOML through the zygote
 * (the supervisor has no TOML parser). 1 when it is loaded. */
static int load_policy(struct serve *s)
{
    char err[1024], *text, *json;
    size_t len = strlen(s->config_path);
    FILE *f;
    long n;

    if (s->policy_state)
        return s->policy_state == 2;
    s->policy_state = 1;
    if (len > 5 && strcmp(s->config_path + len - 5, ".toml") == 0) {
        if (thaw_zygote_toml(s->fleet.zygote, s->config_path, on_policy_toml, s))
            policy_failed("cannot ask the zygote to read the --config file");
        return 0;
    }
    if (!(f = fopen(s->config_path, "rb"))) {
        snprintf(err, sizeof(err), "--config %s: %s", s->config_path, strerror(errno));
        policy_failed(err);
    }
    if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || n > (1 << 20) ||
        fseek(f, 0, SEEK_SET) || !(text = calloc(1, (size_t)n + 1)) ||
        fread(text, 1, (size_t)n, f) != (size_t)n) {
        snprintf(err, sizeof(err), "--config %s: cannot read it (at most 1 MB)",
                 s->config_path);
        policy_failed(err);
    }
    fclose(f);
    if (thaw_jsonc_to_json(text, (size_t)n, &json, err, sizeof(err)) ||
        thaw_policy_load_json(&s->fleet.policy, json, s->config_path, err, sizeof(err)))
        policy_failed(err);
    free(text);
    free(json);
    s->policy_state = 2;
    return 1;
}

/* The operator's [egress], [kv] and [cluster] tables: a mistake stops
 * serve here, not at some later deploy. A [cluster] with a Redis starts
 * the node's link to it (cron leases, tail across nodes). */
static void check_network_policy(struct serve *s, const struct thaw_policy *p)
{
    struct thaw_egress_config eg;
    struct thaw_kv_policy kp;
    char err[1024];

    if (thaw_egress_operator_load(&eg, p, err, sizeof(err)) ||
        thaw_kv_policy_load(&kp, p, err, sizeof(err)) ||
        thaw_cluster_config_load(&s->cluster, p, err, sizeof(err)) ||
        thaw_cluster_link_start(s->loop, &s->cluster, kp.prefix, err, sizeof(err)))
        policy_failed(err);
    thaw_cluster_tail_set_sink(thaw_fleet_tail_remote, &s->fleet);
    thaw_egress_config_free(&eg);
}

/* Databases that live in one place get an owner node, and the internal
 * port takes the calls other nodes forward (docs/scale-out.md). A node
 * with an internal address is listed as a possible owner, so without the
 * secret it would be picked and never reached: it does not start. */
static void start_owners(struct serve *s)
{
    char err[1024];
    int rc;

    thaw_owners_start(&s->owners, s->loop, &s->cluster, &s->control);
    if (!s->cluster.internal[0])
        return;
    rc = thaw_internal_listen(&s->internal, s->loop, s->cluster.internal, &s->fleet,
                              &s->owners, &s->front.limits, err, sizeof(err));
    if (rc < 0)
        policy_failed(err);
}

static void on_zygote_ready(void *data, struct thaw_zygote *z)
{
    struct serve *s = data;
    char err[1024];

    if (s->fleet.started || !thaw_zygote_ready(s->fleet.zygote) ||
        (s->fleet.preload && !thaw_zygote_ready(s->fleet.preload)))
        return;
    if (s->config_path && !load_policy(s))
        return; /* on_policy_toml comes back here */
    check_network_policy(s, &s->fleet.policy);
    if (thaw_serve_limits_validate(&s->fleet, err, sizeof(err)))
        policy_failed(err);
    /* the fleet starts with what the state directory holds (it serves
     * even when PostgreSQL is down); the control store then brings it up
     * to date, and /readyz waits for that (s->cluster: read above) */
    if (s->cluster.control[0])
        s->fleet.control = &s->control;
    thaw_fleet_start(&s->fleet);
    if (s->fleet.control) {
        thaw_control_start(&s->control, s->loop, &s->cluster, &s->fleet);
        start_owners(s);
    }
}

/* Every worker is routable (its template may still build: requests wait
 * for it): only now are requests accepted, so none sees a 404 for a worker
 * that is deployed. */
static void on_fleet_started(struct thaw_fleet *f)
{
    struct serve *s = (struct serve *)((char *)f - offsetof(struct serve, fleet));
    char ip[128];
    int rc, port = 0;

    split_addr(s->listen, ip, sizeof(ip), &port);
    if ((rc = thaw_server_listen(&s->server, s->loop, ip, port, &s->front))) {
        fprintf(stderr, "thaw: cannot listen on %s: %s\n", s->listen, uv_strerror(rc));
        exit(1);
    }
    printf("Ready on http://%s (admin API on http://%s)\n", s->listen, s->admin);
    fflush(stdout);
}

static void on_stop_tick(uv_timer_t *t)
{
    struct serve *s = t->data;
    uint64_t elapsed = uv_now(s->loop) - s->stop_ms;
    int alive = thaw_fleet_alive(&s->fleet) + thaw_zygote_alive(s->fleet.zygote) +
                (s->fleet.preload ? thaw_zygote_alive(s->fleet.preload) : 0);
    int children;

    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    children = !(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);
    if ((!alive && !children) || elapsed >= EXIT_BY_MS) {
        thaw_outpipe_drain_all();
        exit(0);
    }
    if (elapsed >= KILL_AFTER_MS) {
        thaw_fleet_signal(&s->fleet, SIGKILL);
        thaw_zygote_signal(s->fleet.zygote, SIGKILL);
        if (s->fleet.preload)
            thaw_zygote_signal(s->fleet.preload, SIGKILL);
    }
}

static void on_signal(uv_signal_t *h, int sig)
{
    struct serve *s = h->data;

    if (s->stopping)
        return;
    s->stopping = 1;
    thaw_log("stopping (signal %d)", sig);
    thaw_server_close(&s->server);
    thaw_api_close(&s->api);
    thaw_cluster_link_stop();
    thaw_fleet_signal(&s->fleet, SIGTERM);
    thaw_zygote_shutdown(s->fleet.zygote);
    thaw_zygote_signal(s->fleet.zygote, SIGTERM);
    if (s->fleet.preload) {
        thaw_zygote_shutdown(s->fleet.preload);
        thaw_zygote_signal(s->fleet.preload, SIGTERM);
    }
    s->stop_ms = uv_now(s->loop);
    uv_timer_init(s->loop, &s->stop_timer);
    s->stop_timer.data = s;
    uv_timer_start(&s->stop_timer, on_stop_tick, 20, 20);
}

static void on_sigchld(uv_signal_t *h, int sig)
{
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

static int no_sandbox; /* --no-sandbox (src/cli/sandbox.c) */

static int parse_args(struct serve *s, int argc, char **argv)
{
    char err[256];
    int i, rc;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-sandbox") == 0) {
            no_sandbox = 1;
            continue; /* takes no value */
        }
        if (strcmp(a, "--state") == 0 && v) {
            s->state_arg = v;
        } else if (strcmp(a, "--listen") == 0 && v) {
            s->listen = v;
        } else if (strcmp(a, "--admin") == 0 && v) {
            s->admin = v;
        } else if (strcmp(a, "--domain") == 0 && v) {
            s->fleet.domain = v;
        } else if (strcmp(a, "--config") == 0 && v) {
            static char abs[PATH_MAX];
            if (!realpath(v, abs)) {
                fprintf(stderr, "thaw: --config %s: %s\n", v, strerror(errno));
                return -1;
            }
            s->config_path = abs;
        } else if (strcmp(a, "--preload") == 0 && v) {
            s->preload_list = v;
        } else if (strcmp(a, "--max-bundle-size") == 0 && v) {
            if ((s->max_bundle = thaw_parse_size(v)) <= 0) {
                fprintf(stderr, "thaw: --max-bundle-size wants a size like 100M, got '%s'\n", v);
                return -1;
            }
        } else if (a[0] == '-' && (rc = thaw_limits_flag(&s->fleet.cli, s->fleet.cli_set, a,
                                                         v, err, sizeof(err)))) {
            if (rc < 0) {
                fprintf(stderr, "thaw: %s\n", err);
                return -1;
            }
        } else {
            fprintf(stderr, "thaw: unknown option or missing value: '%s'\n", a);
            usage();
            return -1;
        }
        i++;
    }
    if (!s->state_arg) {
        fprintf(stderr, "thaw: serve needs --state DIR (where deployed workers live)\n");
        usage();
        return -1;
    }
    if (s->state_arg[0] == '/') {
        snprintf(s->fleet.state, sizeof(s->fleet.state), "%s", s->state_arg);
    } else {
        char cwd[PATH_MAX / 2];
        if (!getcwd(cwd, sizeof(cwd)) || strlen(s->state_arg) > PATH_MAX / 2 - 1) {
            fprintf(stderr, "thaw: getcwd: %s\n", strerror(errno));
            return -1;
        }
        snprintf(s->fleet.state, sizeof(s->fleet.state), "%s/%s", cwd, s->state_arg);
    }
    return 0;
}

int thaw_cmd_serve(int argc, char **argv)
{
    static struct serve s;
    char err[1024], ip[128];
    int rc, port;

    s.listen = "127.0.0.1:8787";
    s.admin = "127.0.0.1:8788";
    s.fleet.domain = "localhost";
    s.max_bundle = 100LL << 20;
    thaw_limits_defaults(&s.fleet.cli);
    thaw_policy_init(&s.fleet.policy);
    if (parse_args(&s, argc, argv))
        return 2;
    if (s.max_bundle > THAW_BUNDLE_MAX_LIMIT)
        s.max_bundle = THAW_BUNDLE_MAX_LIMIT;
    if (thaw_store_open(s.fleet.state, err, sizeof(err)) ||
        thaw_store_token(s.fleet.state, s.api.token, sizeof(s.api.token), err, sizeof(err))) {
        fprintf(stderr, "thaw: %s\n", err);
        return 1;
    }
    if (thaw_cron_clock_offset(&s.fleet.cron_offset_ms, err, sizeof(err))) {
        fprintf(stderr, "thaw: %s\n", err);
        return 2;
    }
    thaw_limits_defaults(&s.front.limits);
    thaw_limits_override(&s.front.limits, &s.fleet.cli, s.fleet.cli_set);
    if (thaw_cli_sandbox("serve", no_sandbox, 1) < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    s.loop = uv_default_loop();
    s.fleet.loop = s.loop;
    s.fleet.load_config = thaw_load_config;
    uv_signal_init(s.loop, &s.sigchld);
    uv_signal_start(&s.sigchld, on_sigchld, SIGCHLD);

    if ((rc = thaw_zygote_start(s.loop, thaw_exe_dir(), NULL, on_zygote_ready, &s,
                                &s.fleet.zygote)) ||
        (s.preload_list && (rc = thaw_zygote_start(s.loop, thaw_exe_dir(), s.preload_list,
                                                   on_zygote_ready, &s, &s.fleet.preload)))) {
        fprintf(stderr, "thaw: cannot start the Python zygote (%s/thaw-zygote): %s\n",
                thaw_exe_dir(), strerror(-rc));
        return 1;
    }
    if (split_addr(s.listen, ip, sizeof(ip), &port)) {
        fprintf(stderr, "thaw: --listen wants IP:PORT, got '%s'\n", s.listen);
        return 2;
    }
    s.server.route = thaw_fleet_route;
    s.server.route_data = &s.fleet;
    s.fleet.on_started = on_fleet_started;
    s.api.max_body = s.max_bundle;
    s.api.limits = &s.front.limits; /* its header, body and idle timeouts */
    s.api.handler = thaw_endpoints_handle;
    s.api.probe = thaw_endpoints_probe;
    s.api.data = &s.fleet;
    if ((rc = thaw_api_listen(&s.api, s.loop, s.admin))) {
        fprintf(stderr, "thaw: cannot listen on the admin address '%s': %s (want IP:PORT)\n",
                s.admin, uv_strerror(rc));
        return 1;
    }
    uv_signal_init(s.loop, &s.sigint);
    uv_signal_init(s.loop, &s.sigterm);
    s.sigint.data = s.sigterm.data = &s;
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);
    uv_run(s.loop, UV_RUN_DEFAULT);
    return 0;
}
