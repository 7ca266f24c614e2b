/* A Durable Object's WebSocket whose owner is another node
 * (docs/scale-out.md): this node sends the object's fetch, upgrade
 * headers and all, to the owner's internal port on a connection of its
 * own; the owner runs it on its object, and when the object answers 101
 * that connection becomes the socket's client connection on the owner
 * (internal-ws.h). The call here gets the 101 with a relay id in place
 * of the owner's socket id; when the worker returns it, the public
 * connection claims the relay and from then on the bytes go both ways
 * unchanged (frames, close codes and all) between it and the owner. */
#ifndef THAW_CLUSTER_RELAY_H
#define THAW_CLUSTER_RELAY_H

#include <stddef.h>
#include <uv.h>

struct thaw_bind_call;
struct thaw_owners;
struct thaw_relay;

/* Sends call (a fetch with Upgrade: websocket) to the owner NODE at
 * INTERNAL (an "IP:PORT"): payload (len bytes, copied) is the forward's
 * body (internal.h, POST /v1/do). The call is answered: the object's
 * response, or an error naming the owner (503 when it cannot be
 * reached; o's cached route of the object is forgotten then, as after
 * a 409). 0, or -1 with err. */
int thaw_relay_start(struct thaw_owners *o, struct thaw_bind_call *call, const char *node,
                     const char *internal, const char *key, const char *worker,
                     const char *payload, size_t len, char *err, size_t n);

/* The public connection's side. */
struct thaw_relay_client {
    /* bytes from the owner for the client, in order */
    void (*write)(void *conn, const char *p, size_t n);
    /* the owner's side ended: end the connection once its output is out;
     * the relay is no longer the connection's (no call on it after) */
    void (*gone)(void *conn);
    /* the owner took what was queued for it: read the client again */
    void (*resume)(void *conn);
};

/* Worker WORKER's 101 carried relay id `id` (x-thaw-do-ws): conn takes
 * it. NULL when no such relay waits for that worker (the one whose call
 * made it). */
struct thaw_relay *thaw_relay_claim(const char *id, const char *worker, void *conn,
                                    const struct thaw_relay_client *ops);
/* Once the 101 is written: what the object sent before it goes now, and
 * the owner's bytes flow from then on. */
void thaw_relay_flush(struct thaw_relay *r);
/* Bytes from the client, for the owner. */
void thaw_relay_feed(struct thaw_relay *r, const char *p, size_t n);
/* 1 while more than a hold's worth waits for the owner: read no more of
 * the client until ops->resume. */
int thaw_relay_full(const struct thaw_relay *r);
/* The client reads slowly (1): read no more from the owner until 0. */
void thaw_relay_hold(struct thaw_relay *r, int hold);
/* The client's connection is over: so is the owner's (the object's
 * socket sees it closed). No call on r after. */
void thaw_relay_detach(struct thaw_relay *r);

#endif
