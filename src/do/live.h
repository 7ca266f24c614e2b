/* Which of a worker's Durable Objects are live, as the supervisor sees
 * them: every event it sends one (a call, call.c; an alarm, alarms.c)
 * touches it. An object with no event for durable_object_idle_timeout_ms
 * gets an `evict` event: its host drops it from memory (its storage
 * stays) unless a call holds or awaits it, and it is made again at its
 * next event (python/workers/_durable_host.py). One libuv timer per
 * worker, for the first object due; none while no object is live, so an
 * idle thaw sleeps. An object whose host instance is gone is forgotten
 * without an event (its memory went with the instance). */
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

/* An event for the object is on its way. */
void thaw__do_live_touch(struct thaw_worker *w, const char *cls, const char *id);
/* How many objects are live (/metrics). */
int thaw_do_live_count(const struct thaw_worker *w);
/* The worker is deleted or stops. */
void thaw_do_live_close(struct thaw_worker *w);

#endif
