/* thaw serve's workers: every worker deployed into the state directory,
 * each a struct thaw_worker of its own (versions, template, instances, as
 * in thaw dev), found by name or route; deploys, rollbacks and deletes,
 * and the tail subscribers of each worker. */
#ifndef THAW_SERVE_FLEET_H
#define THAW_SERVE_FLEET_H

#include <uv.h>

#include "cli/cli.h"
#include "config/limits.h"
#include "cron/sched.h"
#include "policy/policy.h"
#include "pool/pool.h"
#include "serve/api.h"
#include "serve/router.h"

#define THAW_FLEET_BUCKETS 4096

struct thaw_control;
struct thaw_op;
struct thaw_server;

struct thaw_hosted {
    char name[64];
    struct thaw_fleet *fleet;
    struct thaw_worker w;
    int started;            /* thaw_worker_init done */
    int live;               /* routable: it has a deployed version */
    int loaded;             /* its first build since start finished (readyz) */
    int version;            /* the serving version (store numbering) */
    struct thaw_op *op;     /* a deploy or rollback waiting for its build */
    struct thaw_api_req *tails;
    struct thaw_cron_sched cron; /* its triggers.crons (set up when built) */
    int cron_on;
    int cron_version;       /* the version whose crons are armed */
    int removed;            /* deleted: in the graveyard until freed */
    int worker_closing;     /* thaw_worker_close() not yet called back */
    int loads;              /* config loads in flight that hold it */
    struct thaw_hosted *next;      /* in its bucket */
    struct thaw_hosted *next_all;  /* every hosted worker */
};

struct thaw_fleet {
    uv_loop_t *loop;
    struct thaw_zygote *zygote, *preload;
    char state[4096];
    const char *domain;
    int64_t cron_offset_ms;   /* THAW_CRON_CLOCK_START (tests) */
    struct thaw_policy policy; /* the operator's: --config and the command line */
    struct thaw_limits cli;   /* what the command line set ... */
    int cli_set[64];          /* ... and which */
    struct thaw_router router;
    json_t *grants;           /* the admin API's route grants (routes.h) */
    /* the cluster's control store (cluster/control.h), NULL without one:
     * then deploys, rollbacks, deletes and grants are answered once
     * PostgreSQL has them, and every node follows it */
    struct thaw_control *control;
    struct thaw_hosted *buckets[THAW_FLEET_BUCKETS];
    struct thaw_hosted *all;
    /* deleted: freed once its worker closed (processes gone, handles
     * closed) and no config load holds it */
    struct thaw_hosted *graveyard;
    int n_tails;              /* tail streams open, all workers */
    int n;
    int started;
    int configs_pending;      /* at start: worker configs still loading */
    /* every worker found at start has its config loaded (and is routable) */
    void (*on_started)(struct thaw_fleet *f);
    /* thaw_load_config (src/cli/load.c; a pointer so the unit tests link
     * without the CLI) */
    void (*load_config)(struct thaw_zygote *z, const char *dir, thaw_load_cb cb,
                        void *data);
};

/* Starts every worker of the state directory at its current version
 * (the zygotes must be ready); on_started runs once each is routable. */
void thaw_fleet_start(struct thaw_fleet *f);
struct thaw_hosted *thaw_fleet_find(struct thaw_fleet *f, const char *name);
/* The server's routing callback (route_data is the fleet). */
struct thaw_worker *thaw_fleet_route(struct thaw_server *s, const char *host,
                                     const char *target, size_t n);
/* Answer r when done. The bundle is unpacked as a new version; it serves
 * only once its template built. */
void thaw_fleet_deploy(struct thaw_fleet *f, const char *name, const void *bundle,
                       size_t len, struct thaw_api_req *r);
void thaw_fleet_rollback(struct thaw_fleet *f, struct thaw_hosted *h, int version,
                         struct thaw_api_req *r);
void thaw_fleet_delete(struct thaw_fleet *f, struct thaw_hosted *h);
/* The admin API's delete: with a control store, answered once it has it. */
void thaw_fleet_delete_api(struct thaw_fleet *f, struct thaw_hosted *h, struct thaw_api_req *r);
/* The control store's word: name serves version (unpacked with its .json
 * already), built here without an API request. 0 started, 1 busy (a
 * deploy, rollback or build in flight: later), -1 failed. */
int thaw_fleet_apply(struct thaw_fleet *f, const char *name, int version);
/* A deploy, rollback, build or config load of h is in flight. */
int thaw_fleet_busy(struct thaw_hosted *h);
void thaw_fleet_tail(struct thaw_fleet *f, struct thaw_hosted *h, struct thaw_api_req *r);
/* A line of worker's from another node of the cluster (cluster/tail.h's
 * sink; data is the fleet): to its tails here. */
void thaw_fleet_tail_remote(void *data, const char *worker, const char *line, size_t n);
/* Processes still alive (shutdown); signal sends sig to all of them. */
int thaw_fleet_alive(struct thaw_fleet *f);
void thaw_fleet_signal(struct thaw_fleet *f, int sig);
/* Workers whose first build has not finished. */
int thaw_fleet_pending(struct thaw_fleet *f);

/* endpoints.c: the admin API's paths (docs/api.md); data is the fleet. */
void thaw_endpoints_handle(struct thaw_api_req *r, void *data);
/* /healthz and /readyz (no token): a status, or 0 for another path. */
int thaw_endpoints_probe(const char *path, char *body, size_t n, void *data);

#endif
