/* Shared inside thaw serve's fleet (src/serve/fleet*.c): the operation
 * object, and what each file of the fleet offers the others. Who owns what:
 *   fleet.c          the table of hosted workers (by name, by route) and
 *                    each one's memory: hosted_remove is the one way out
 *                    of it, hosted_maybe_free the one place it is freed
 *   fleet-start.c    a hosted worker's thaw_worker and its config: at
 *                    thaw serve's start and after its template was lost
 *   fleet-op.c       an operation (struct thaw_op, its one owner): from
 *                    its config load through its build to its answer
 *   fleet-deploy.c   the admin API's deploy, rollback and delete
 *   fleet-control.c  the same with a cluster's control store: commits,
 *                    and the store's own word (thaw_fleet_apply)
 *   fleet-tail.c     a worker's log and output lines to its tails */
#ifndef THAW_SERVE_FLEET_INTERNAL_H
#define THAW_SERVE_FLEET_INTERNAL_H

#include "serve/fleet.h"

/* A deploy or rollback in flight: from its config load to its build. */
struct thaw_op {
    struct thaw_fleet *f;
    struct thaw_hosted *h;
    struct thaw_api_req *req;  /* NULL once the client left */
    int version;
    int is_deploy;             /* a failed deploy drops its version */
    int building;              /* its config loaded, the build asked for */
    int cancelled;             /* its worker was deleted while its config loaded */
    int files;
    long long bytes;
    uint64_t start_ns;
    struct thaw_limits old_limits;
    /* with a control store (fleet.h): */
    int publish;               /* an API call: committed there before it is answered */
    int remote;                /* the store's word: nothing to publish */
    int committing;            /* built; its transaction not yet answered */
    void *bundle;              /* the deploy's bundle, kept for the commit */
    size_t bundle_len;
    char *meta;                /* the version's .json, as the store has it */
    int existed;               /* the worker was in the store when the deploy began */
    double build_ms, top_level_ms;
};

/* fleet.c */
struct thaw_hosted *thaw__fleet_hosted_new(struct thaw_fleet *f, const char *name);
/* Out of the tables, into the graveyard; freed once its worker closed. */
void thaw__fleet_hosted_remove(struct thaw_fleet *f, struct thaw_hosted *h);
void thaw__fleet_hosted_maybe_free(struct thaw_hosted *h);

/* fleet-start.c */
int thaw__fleet_set_routes(struct thaw_fleet *f, struct thaw_hosted *h, const char *json,
                           int check_only, char *err, size_t errlen);
/* h's thaw_worker, built from cfg (which it takes) in dir. */
void thaw__fleet_start_worker(struct thaw_fleet *f, struct thaw_hosted *h, const char *dir,
                              struct thaw_config *cfg, const struct thaw_limits *lim);

/* fleet-op.c */
struct thaw_op *thaw__fleet_op_new(struct thaw_fleet *f, struct thaw_hosted *h, int version,
                                   struct thaw_api_req *r);
void thaw__fleet_op_free(struct thaw_op *op);
void thaw__fleet_op_finish(struct thaw_op *op, int status, json_t *answer);
void thaw__fleet_op_refuse(struct thaw_op *op, int status, const char *msg, const char *tb);
void thaw__fleet_op_cancel(struct thaw_op *op);
/* The op's config loaded (a thaw_load_cb; data is the op). */
void thaw__fleet_op_loaded(void *data, int rc, struct thaw_config *cfg, const char *err);
void thaw__fleet_op_succeed(struct thaw_op *op);
/* Every hosted worker's on_built (pool.h). */
void thaw__fleet_on_built(struct thaw_worker *w, struct thaw_version *v);

/* fleet-control.c */
/* The built op to the control store; it succeeds once committed. */
void thaw__fleet_publish(struct thaw_op *op);
int thaw__fleet_published(struct thaw_fleet *f, struct thaw_hosted *h);

/* fleet-tail.c: a worker's lines to its tails (the worker's on_log and
 * on_output). */
void thaw__fleet_on_log(struct thaw_worker *w, const char *line, size_t n);
void thaw__fleet_on_output(struct thaw_worker *w, long long request, const char *msg,
                           size_t n, int truncated);

#endif
