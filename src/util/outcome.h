/* What thaw's own senders of exchanges (pool.h) share when they want
 * only to know how one ended: a cron's scheduled event (cron/sched.c), a
 * Durable Object's alarm (do/alarms.c) and a live object's evict or
 * handoff (do/live.c) are requests nobody streams, so their outcome is
 * the response's status, or the failure and its message; and a failure's
 * message (the instance's traceback) is cut of its trailing newlines
 * before it goes into a log line, an exception or an answer (do/alarms.c,
 * do/call.c, cluster/internal.c). */
#ifndef THAW_UTIL_OUTCOME_H
#define THAW_UTIL_OUTCOME_H

#include <stddef.h>

#include "pool/pool.h"

/* An exchange whose body nobody reads (the instance logged what went
 * wrong). Embed it first and init its ex with thaw_outcome_ops. */
struct thaw_outcome_ex {
    struct thaw_exchange ex; /* first: the ops get &o->ex */
    int status;              /* the response's, once its head came */
    /* The end, once. msg NULL: the response ended with status; else the
     * exchange failed (status: on_fail's) with msg, or fail_default when
     * it said nothing. */
    void (*done)(struct thaw_outcome_ex *o, int status, const char *msg);
    const char *fail_default;
};

extern const struct thaw_exchange_ops thaw_outcome_ops;

/* msg (dflt when NULL or empty) into out (n bytes) without its trailing
 * newlines. Returns out. */
char *thaw_fail_text(char *out, size_t n, const char *msg, const char *dflt);

#endif
