/* Objects that live in one place (docs/scale-out.md, "Objects and
 * databases that live in one place"): a D1 database is a SQLite file on
 * one node's disk, so in a cluster each has one owner node, recorded in
 * the control store:
 *
 *   thaw_owners (worker, kind, id, node, epoch, moved_at)
 *
 * The first use picks the owner by rendezvous hashing over the live nodes
 * and INSERTs it ... ON CONFLICT DO NOTHING: nodes that race agree on the
 * row that won. The row is sticky: membership changes do not move data.
 * An owner that is down (no heartbeat) makes its objects unavailable
 * (503, naming it) until it returns.
 *
 * Fencing: a node serves an object only under a lease: the store said it
 * owns it less than THAW_OWNER_LEASE_MS ago (else it asks again before
 * serving, and refuses when the store cannot be asked). An operator who
 * moves an object (UPDATE node, epoch + 1, moved_at = now()) is safe: the
 * new owner does not serve it until the row is a lease old, by which time
 * the old owner's lease ran out. Two nodes never serve one object at once.
 *
 * The lookups use a PostgreSQL connection of their own (not the control
 * store's, whose jobs may be long bundle pulls). */
#ifndef THAW_CLUSTER_OWNER_H
#define THAW_CLUSTER_OWNER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cluster/config.h"
#include "cluster/control-conn.h"

struct thaw_control;
struct owner_entry;

#define THAW_OWNER_LEASE_MS 1000

enum thaw_owner_where {
    THAW_OWNER_HERE,   /* serve it locally */
    THAW_OWNER_THERE,  /* forward it to node (at internal) */
    THAW_OWNER_NONE,   /* unavailable: why (a 503) */
};

struct thaw_owner_answer {
    enum thaw_owner_where where;
    const char *node;      /* the owner's name ("" when unknown) */
    const char *internal;  /* its internal HOST:PORT (THERE) */
    long long epoch;
    uint64_t lease_until;  /* HERE: uv_now() ms when this node's lease ends */
    const char *why;       /* NONE: the reason, naming the owner */
};

/* Called once per route, maybe before thaw_owner_route returns. The
 * answer's strings are good during the call. */
typedef void (*thaw_owner_cb)(void *data, const struct thaw_owner_answer *a);

#define OWNER_BUCKETS 1024

struct thaw_owners {
    struct thaw_pg pg;
    uv_loop_t *loop;
    struct thaw_control *control;   /* membership: the live nodes */
    char node[THAW_CLUSTER_MAX_NODE + 1];
    struct owner_entry *buckets[OWNER_BUCKETS];
};

/* The cluster's owners (serve.c sets it when [cluster] names a control
 * store): NULL on one machine, where every object is local. */
extern struct thaw_owners *thaw_owners_cluster;

void thaw_owners_start(struct thaw_owners *o, uv_loop_t *loop,
                       const struct thaw_cluster_config *cc, struct thaw_control *c);

/* Where object (kind, worker, id) is served: kind "d1" (id: the
 * database_id, else database_name; each worker has its own file) or
 * "do". */
void thaw_owner_route(struct thaw_owners *o, const char *kind, const char *worker,
                      const char *id, thaw_owner_cb cb, void *data);
/* The owner did not answer, or said it is not the owner: ask the store
 * at the next route. */
void thaw_owner_forget(struct thaw_owners *o, const char *kind, const char *worker,
                       const char *id);

/* Rendezvous hashing: the node of `nodes` (names, n of them) with the
 * highest score for key; -1 when n is 0. */
int thaw_owner_pick(const char *const *nodes, int n, const char *key);

#endif
