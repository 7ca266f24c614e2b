/* A call to a Durable Object (stub.fetch, RPC): made by the instance of
 * the caller as a BIND_CALL to the namespace's binding, routed by the
 * supervisor as an exchange pinned to the version's object host
 * (pool.c, thaw__pool_host), answered back as the call's streamed reply.
 * Internal to src/do/ (bind.c). */
#ifndef THAW_DO_CALL_H
#define THAW_DO_CALL_H

#include "bind/bind.h"

/* A binding's class, as bind.c registered it: of the worker itself
 * (worker set), or of worker `script` (scripts.h: found at each call). */
struct thaw_do_ns {
    char *binding;
    char *class_name;
    struct thaw_worker *worker;
    char *script;  /* NULL: the worker's own class */
    char *from;    /* the binding worker's name (script bindings) */
};

/* Whether s is 64 lower-case hex digits: an object's id, a namespace's
 * key. Both name files (storage.c), so nothing else is let through. */
int thaw__do_hex64(const char *s);

/* op "fetch" or "rpc" on a namespace: args {"id": 64 hex, "name": str or
 * null, "method", "url", "headers": [[n, v], ...]} (fetch) or {"id",
 * "name", "method": RPC method name} (rpc); the call's body is the
 * request's body, or the RPC arguments (JSON). The object is of class
 * ns->class_name: the class of the namespace's own worker, or of the one
 * it binds (ns->script, scripts.h), whose 101 the namespace's worker may
 * then return. In a cluster the call goes to the object's owner node
 * (cluster/owner-do.h). Ends the call. */
void thaw__do_call(struct thaw_do_ns *ns, struct thaw_bind_call *call);

/* Starts a call (op "fetch" or "rpc", args as above, checked) to an
 * object of class_name in worker w on this node: ex (initialized with
 * the caller's ops) gets the response, or fails. A call forwarded from
 * another node of a cluster (cluster/internal.c) starts here too. 0, or
 * -1 when the call's head does not fit in a frame (ex untouched). */
struct thaw_exchange;
int thaw_do_start(struct thaw_worker *w, struct thaw_exchange *ex, const char *class_name,
                  const char *op, json_t *args, const char *body, size_t body_len);

#endif
