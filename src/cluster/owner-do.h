/* A call to a Durable Object (stub.fetch, RPC) in a cluster (owner.h):
 * run on this node when it owns the object, else forwarded to the owner's
 * internal port (internal.h), whose streamed answer becomes the call's.
 * The object's WebSockets and alarms stay on the owner: a WebSocket
 * upgrade through another node is refused, naming the owner. */
#ifndef THAW_CLUSTER_OWNER_DO_H
#define THAW_CLUSTER_OWNER_DO_H

#include <stddef.h>

struct thaw_owners;
struct thaw_bind_call;

/* Runs the (checked) call on this node. */
typedef void (*thaw_owner_do_here_fn)(void *impl, struct thaw_bind_call *call);

/* The call's args carry the object's id; class_name is its namespace's
 * class, of worker `worker` (the caller's own, or the one its binding's
 * script_name names). Ends the call, or hands it to here(impl, call). */
void thaw_owner_do_call(struct thaw_owners *o, const char *worker, const char *class_name,
                        struct thaw_bind_call *call, thaw_owner_do_here_fn here, void *impl);

/* The owner key of an object: "CLASS/ID" into out. */
void thaw_owner_do_key(const char *class_name, const char *id, char *out, size_t n);

#endif
