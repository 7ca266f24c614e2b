/* The internal port (docs/scale-out.md): where the other nodes of a
 * cluster reach this one, at [cluster] internal = "HOST:PORT". It is not
 * the public port and answers nothing without the cluster's secret
 * (THAW_CLUSTER_SECRET, sent as "Authorization: Bearer SECRET" and
 * compared in constant time): 401.
 *
 *   POST /v1/d1  {worker, id, op, args}
 *       a D1 call forwarded by a node that does not own the database
 *       (owner-d1.c). Run here only while the store says this node owns
 *       it (owner.h's lease); else 409 (another node owns it) or 503.
 *       200: the D1 answer's JSON; else {"class", "error"}.
 *
 *   POST /v1/do  a line of JSON {worker, class, op, args}, then the body
 *       a Durable Object call (fetch, RPC) forwarded by a node that does
 *       not own the object (owner-do.c), fenced the same way. 200 with
 *       the object's response head as JSON in x-thaw-do-head and its body
 *       streamed (cut short when the object's call fails midway); else
 *       {"class", "error"}. A fetch whose object answers 101 (a
 *       WebSocket, sent by relay.c) is answered 101 with x-thaw-do-head,
 *       and the connection is the socket's from then on
 *       (internal-ws.h). */
#ifndef THAW_CLUSTER_INTERNAL_H
#define THAW_CLUSTER_INTERNAL_H

#include <stddef.h>

#include "server/h1-conn.h"

struct thaw_fleet;
struct thaw_owners;

#define THAW_INTERNAL_D1_PATH "/v1/d1"
#define THAW_INTERNAL_DO_PATH "/v1/do"

struct thaw_internal {
    struct thaw_h1_server srv;
    uv_loop_t *loop;
    struct thaw_fleet *fleet;     /* the workers (their data directories) */
    struct thaw_owners *owners;
    char secret[512];             /* THAW_CLUSTER_SECRET, at start */
};

/* The cluster's secret (THAW_CLUSTER_SECRET): "" when unset. */
const char *thaw_cluster_secret(void);

/* Listens on addr ("HOST:PORT"). 0, or -1 with err (a bad address, the
 * port taken), or -2 with err when THAW_CLUSTER_SECRET is not set. */
int thaw_internal_listen(struct thaw_internal *in, uv_loop_t *loop, const char *addr,
                         struct thaw_fleet *fleet, struct thaw_owners *o,
                         const struct thaw_limits *limits, char *err, size_t errlen);

#endif
