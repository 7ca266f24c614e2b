/* The owner's side of a Durable Object's WebSocket forwarded by another
 * node (docs/scale-out.md): when the object answers a forwarded fetch
 * with 101, the internal connection it came on becomes the socket's
 * client connection on this node. The forwarding node relays its
 * client's bytes unchanged (relay.h), so the frames on it are the
 * client's own (masked) and this node speaks RFC 6455 on it exactly as
 * the public port does: the object's record, its hibernation and
 * ctx.getWebSockets stay here. */
#ifndef THAW_CLUSTER_INTERNAL_WS_H
#define THAW_CLUSTER_INTERNAL_WS_H

#include "server/h1-conn.h"

struct thaw_worker;
struct thaw_iws;

/* The object answered 101 with its socket sid (the x-thaw-ws header; or
 * a relay's id, relay.h, when the object passed on the 101 of an object
 * owned by a third node: then this connection is relayed on):
 * the 101 goes on c with the object's head as JSON (head_json, in
 * x-thaw-do-head), the connection is upgraded and the socket's frames
 * are this connection's from now on. NULL (nothing written) when no
 * such socket waits, or out of memory. */
struct thaw_iws *thaw_iws_start(struct thaw_h1_conn *c, struct thaw_worker *w,
                                const char *sid, const char *head_json);
/* Bytes from the forwarding node (the client's frames). */
void thaw_iws_raw(struct thaw_iws *s, const char *p, size_t n);
/* Backpressure of a relayed-on socket: 1 while the third node's side
 * takes no more (read no more of this connection); the forwarding node
 * reads slowly (hold 1) or again (0). */
int thaw_iws_full(const struct thaw_iws *s);
void thaw_iws_hold(struct thaw_iws *s, int hold);
/* The connection is closing: the object's socket is told (its close
 * event) and let go of. Again: nothing. */
void thaw_iws_detach(struct thaw_iws *s);
/* With the connection's memory. */
void thaw_iws_free(struct thaw_iws *s);

#endif
