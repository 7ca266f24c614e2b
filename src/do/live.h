/* Which of a worker's Durable Objects are live, as the supervisor sees
 * them: every event it sends one (a call, call.c; an alarm, alarms.c)
 * touches it. An object with no event for durable_object_idle_timeout_ms
 * gets an `evict` event: its host drops it from memory (its storage
 * stays) unless a call holds or awaits it, and it is made again at its
 * next event (python/workers/_durable_host.py). One libuv timer per
 * worker, for the first object due; none while no object is live, so an
 * idle thaw sleeps. An object whose host instance is gone is forgotten
 * without an event (its memory went with the instance).
 *
 * Each object is known with the version whose host got its events, so
 * that it is never live in two hosts at once: see thaw__do_live_send. An
 * object's states: IDLE (in the map, events go straight to its version's
 * host), EVICTING (its evict event out), MOVING (a handoff out to an old
 * host, its events parked), gone from the map (not live anywhere). */
#ifndef THAW_DO_LIVE_H
#define THAW_DO_LIVE_H

#include "pool/pool.h"
#include "util/buf.h"

/* An event for object (class, id), the head of a request with no body:
 * the pseudo-headers call.c's calls lead with (`:event` = "durable-object",
 * `:do-class`, `:do-id`, `:do-op`), then the pairs of extra (name, value,
 * ..., NULL). 0, or -1 if it does not fit. */
int thaw__do_event(struct thaw_buf *b, uint32_t sid, const char *cls, const char *id,
                   const char *op, const char *const *extra);

/* Sends an event for object (class, id), ex pinned with its frames in
 * (head, len), to the object's host: the current version's, unless the
 * object is still in the memory of an old version's host (a deploy, a
 * rollback or a reload took over while it ran). Then the event waits,
 * with every later one of the object, until that host has run the
 * object's earlier events and dropped it (a `handoff` event), or is gone;
 * they then go to the current version in arrival order. A handoff not
 * answered within the call time limit (an old call that never lets go)
 * kills the old host: one object per id, whatever it costs the old
 * version. It also restarts the object's idle clock. As
 * thaw_pool_dispatch: ex may end before this returns. */
void thaw__do_live_send(struct thaw_worker *w, const char *cls, const char *id,
                        struct thaw_exchange *ex, const void *head, size_t len);
/* How many objects are live (/metrics). */
int thaw_do_live_count(const struct thaw_worker *w);
/* The worker is deleted or stops: events waiting fail (503). */
void thaw_do_live_close(struct thaw_worker *w);

#endif
