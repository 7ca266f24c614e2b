/* WebSockets of Durable Objects (docs/bindings/durable-objects.md,
 * "WebSockets"). An object that answers its fetch with Response(None,
 * status=101, web_socket=client) owns the client's socket: the supervisor
 * keeps a record of it here (object, tags, attachment, whether it is
 * hibernatable), the public connection (server/ws-conn.c) hands each
 * message to it, and each message goes to the object's host as an event
 * of its own (`:do-op` = "ws"), so no exchange holds the host between
 * messages: the host may go (an exit, a kill, a new version) and the
 * socket stays; its next message makes the object again. What the object
 * sends comes back on one long binding call per host instance (`:do-ws`
 * "pipe"), each message led by the socket's id. */
#ifndef THAW_DO_WS_H
#define THAW_DO_WS_H

#include <stddef.h>

#include "bind/bind.h"

struct thaw_do_ws;

/* Where a socket's frames for the client go: THAW_IPC_WS_TEXT / _BINARY /
 * _CLOSE (a close's payload as the instance writes it), or
 * THAW_DO_WS_LOST: the worker is going, fail the connection now (1011)
 * and detach. */
#define THAW_DO_WS_LOST (-1)
typedef void (*thaw_do_ws_out)(void *conn, int type, const char *p, size_t n);

/* The worker's 101 carried the object's socket id: the connection takes
 * the socket. NULL when no such socket waits for a connection in this
 * worker. */
struct thaw_do_ws *thaw_do_ws_claim(struct thaw_worker *w, const char *id, void *conn,
                                    thaw_do_ws_out out);
/* The 101 with socket `id` answers a call of worker w to another
 * worker's object (script_name): w's fetch may return it, and claim it. */
void thaw__do_ws_allow(const char *id, struct thaw_worker *w);
/* Once the 101 is written: what the object sent before it goes now. */
void thaw_do_ws_flush(struct thaw_do_ws *s);
/* A whole message from the client: to the object (or answered by its
 * auto-response). */
void thaw_do_ws_message(struct thaw_do_ws *s, int type, const void *p, size_t n);
/* The client's side closed (its close frame, or thaw failed it): the
 * object's close event. */
void thaw_do_ws_closed(struct thaw_do_ws *s, int code, const char *reason, size_t n,
                       int clean);
/* The connection is over: the record goes (a close event first if none
 * went). */
void thaw_do_ws_detach(struct thaw_do_ws *s);

/* The worker is being deleted (thaw serve): its objects' sockets end
 * (their connections fail with 1011) and their records go. */
void thaw_do_ws_worker_closed(struct thaw_worker *w);

/* How many of w's sockets are open and hibernatable (acceptWebSocket):
 * held by the supervisor whether or not their object is in memory
 * (/metrics: thaw_do_websockets). */
int thaw_do_ws_open(const struct thaw_worker *w);

/* bind.c: the ":do-ws" binding of a version whose worker has classes. */
int thaw__do_ws_add(const struct thaw_bind_env *env, struct thaw_bindings *set, char *err,
                    size_t errlen);

#endif
