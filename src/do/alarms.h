/* Durable Object alarms (`ctx.storage.setAlarm`): one per object, kept in
 * the object's own SQLite file (table `_cf_ALARM`, written through the
 * storage binding, storage.c) and mirrored here, per worker, so the
 * supervisor knows when to wake which object. One libuv timer per worker,
 * for the nearest due alarm; none while nothing is armed, so an idle thaw
 * sleeps.
 *
 * At a worker's first build (thaw dev's start, thaw serve's start or
 * deploy) its objects' files under STATE/do/ are read once for their
 * alarms, so an alarm survives a restart. When one is due the object
 * gets an `alarm` event (src/do/call.c's pseudo-headers, `:do-op` =
 * "alarm"; python/workers/_durable_alarm.py). A handler that raises is
 * retried after 2 s, 4 s, 8 s, ... (THAW_DO_ALARM_BACKOFF_MS sets the
 * first wait, for tests), at most THAW_DO_ALARM_RETRIES times, then
 * dropped with a log line. A deleted worker's alarms go with it. */
#ifndef THAW_DO_ALARMS_H
#define THAW_DO_ALARMS_H

#include <stdint.h>

#include "pool/pool.h"

#define THAW_DO_ALARM_RETRIES 6
/* The table of an object's alarm, in its own file (k is always 0). */
#define THAW_DO_ALARM_TABLE "CREATE TABLE IF NOT EXISTS _cf_ALARM (k INTEGER PRIMARY KEY " \
    "CHECK (k = 0), at INTEGER NOT NULL)"


/* After w's config changed (thaw_worker_init/rebuild): starts its alarms
 * at the first config that has Durable Object classes (reading the
 * armed ones from disk), and learns which class each namespace key is. */
void thaw_do_alarms_follow(struct thaw_worker *w);
/* The worker is deleted or thaw stops: no alarm of it fires again. */
void thaw_do_alarms_close(struct thaw_worker *w);
/* How many of w's objects have an alarm armed (/metrics). */
int thaw_do_alarms_armed(const struct thaw_worker *w);

/* storage.c, after a write of the object's alarm committed: at_ms >= 0
 * armed at that time, -1 deleted; if_at >= 0: deleted only if it was
 * if_at (the handler's own alarm, done). */
void thaw__do_alarms_note(struct thaw_worker *w, const char *ns, const char *id,
                          int64_t at_ms, int64_t if_at);
/* bind.c: a class's objects were deleted (deleted_classes): their
 * alarms go too. */
void thaw__do_alarms_forget(struct thaw_worker *w, const char *ns);

#endif
