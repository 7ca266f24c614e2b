/* The cluster's control state in PostgreSQL (docs/scale-out.md, "Control
 * state: PostgreSQL"): the system of record for deployments when the
 * operator's [cluster] table names `control`.
 *
 *   thaw_workers  (name, current)                  which version serves
 *   thaw_versions (name, version, bundle, meta)    every deployed version
 *   thaw_grants   (name, patterns)                 the admin API's grants
 *   thaw_nodes    (name, internal, heartbeat)      membership
 *   thaw_schema   (version)
 *
 * A deploy, rollback, delete or grant sent to a node's admin API is
 * answered once its transaction committed; the transaction NOTIFYs
 * channel thaw_control ("w:NAME", "g:NAME") and every node reconciles
 * that worker: it pulls the versions it lacks into its own state
 * directory, builds the current one and switches (control-sync.c). On
 * (re)connect a node re-reads everything (NOTIFYs missed while down). */
#ifndef THAW_CLUSTER_CONTROL_H
#define THAW_CLUSTER_CONTROL_H

#include <jansson.h>
#include <stddef.h>

#include "cluster/config.h"
#include "cluster/control-conn.h"

struct thaw_fleet;

/* status 0: committed; 409: it conflicts with what another node did
 * meanwhile; 503: the store is unreachable (err says why). */
typedef void (*thaw_control_cb)(void *data, int status, const char *err);

struct thaw_control {
    struct thaw_pg pg;
    struct thaw_fleet *fleet;
    char node[THAW_CLUSTER_MAX_NODE + 1];
    char internal[128];
    uv_timer_t heartbeat;
    uv_timer_t kick;          /* reconciles what was left for later */
    int kick_on;
    json_t *dirty;            /* names to reconcile */
    json_t *active;           /* names being reconciled */
    json_t *want;             /* name -> version at the first full read (readyz) */
    json_t *settled;          /* names reconciled since start */
    json_t *nodes;            /* the live nodes at the latest heartbeat */
    int synced;               /* the first full read is done */
    int caught_up;            /* ... and every worker serves what it said */
};

/* Connects (in the background) and keeps connected. */
void thaw_control_start(struct thaw_control *c, uv_loop_t *loop,
                        const struct thaw_cluster_config *cc, struct thaw_fleet *f);

/* 1 when an admin API change may be made now; else 0 and why (503). */
int thaw_control_accepting(struct thaw_control *c, char *why, size_t n);
/* 1 once this node serves what the store held when it (re)started; else
 * 0 and why (/readyz's 503). */
int thaw_control_caught_up(struct thaw_control *c, char *why, size_t n);

/* The admin API's changes, answered by cb once committed (or not). The
 * bundle and strings are the caller's until cb. A deploy says whether the
 * worker is in the store as the node saw it (existed): when that changed
 * meanwhile (another node deleted it, or deployed it first) it is a 409,
 * not a worker brought back or taken over. */
void thaw_control_publish_deploy(struct thaw_control *c, const char *name, int version,
                                 const void *bundle, size_t len, const char *meta,
                                 int existed, thaw_control_cb cb, void *data);
void thaw_control_publish_rollback(struct thaw_control *c, const char *name, int version,
                                   thaw_control_cb cb, void *data);
void thaw_control_publish_delete(struct thaw_control *c, const char *name,
                                 thaw_control_cb cb, void *data);
/* patterns: a JSON array (text); "[]" removes the row. */
void thaw_control_publish_grants(struct thaw_control *c, const char *name,
                                 const char *patterns, thaw_control_cb cb, void *data);

/* A version the store asked for failed to build on this node: it no
 * longer holds /readyz back (the node keeps what it served). */
void thaw_control_apply_failed(struct thaw_control *c, const char *name);

/* Membership: the nodes whose heartbeat (every second) is at most 5 s
 * old, as of this node's latest heartbeat: [{"name", "internal"}, ...]
 * sorted by name; borrowed, never NULL. */
json_t *thaw_control_live_nodes(struct thaw_control *c);

/* control-sync.c: reconciling this node with the store. */
void thaw__control_sync_all(struct thaw_control *c);
void thaw__control_mark(struct thaw_control *c, const char *name);
void thaw__control_grants_changed(struct thaw_control *c, const char *name);

#endif
