/* Cron triggers (`thaw dev`, and one per worker in `thaw serve`): a timer that wakes at the next minute
 * where one of the worker's `triggers.crons` matches (UTC) and sends a
 * scheduled event for each matching expression to an instance, as a
 * request is (REQ_HEAD with :event, :cron and :scheduled-time), logging
 * one JSON line per event. Also the `/__scheduled?cron=...` route that
 * runs one now, as `wrangler dev --test-scheduled` does. */
#ifndef THAW_CRON_SCHED_H
#define THAW_CRON_SCHED_H

#include <stdint.h>
#include <uv.h>

#include "cron/triggers.h"
#include "pool/pool.h"
#include "util/buf.h"

struct thaw_cron_sched {
    uv_loop_t *loop;
    struct thaw_worker *worker;
    uv_timer_t timer;
    int timer_init;
    struct thaw_cron_list list;
    int64_t next_s;            /* the minute the timer waits for; -1: none */
    /* THAW_CRON_CLOCK_START (a testing aid): the scheduler's clock minus
     * the real one, in ms; 0 normally */
    int64_t offset_ms;
    struct thaw_cron_claim *claims; /* asked of the cluster, not answered yet */
};

/* A cluster (src/cluster/lease.c): before an event is sent, claim asks
 * whether this node fires it, and calls done(arg, 1) when it does (once,
 * maybe at once). node goes into the event's log line. NULL: every event
 * fires here (one machine). */
typedef void (*thaw_cron_claim_fn)(const char *worker, const char *cron,
                                   int64_t scheduled_ms,
                                   void (*done)(void *arg, int fire), void *arg);
void thaw_cron_set_claim(thaw_cron_claim_fn fn, const char *node);

/* thaw dev: sets up the scheduler for w (no triggers yet) and turns on
 * the /__scheduled route. Reads THAW_CRON_CLOCK_START; returns -1 with a
 * message in err when it is malformed. */
int thaw_cron_sched_init(struct thaw_cron_sched *s, uv_loop_t *loop, struct thaw_worker *w,
                         char *err, size_t errlen);
/* THAW_CRON_CLOCK_START read once (logged when set): the offset of the
 * schedulers' clock, 0 when unset; -1 with err when malformed. Two more
 * testing aids go with it: THAW_CRON_CLOCK_AT (the real time, in ms since
 * the epoch, at which the clock read START; default: now), so that
 * several processes share one clock, and THAW_CRON_CLOCK_RATE (an integer,
 * default 1), how many times faster than real time the clock runs. */
int thaw_cron_clock_offset(int64_t *offset_ms, char *err, size_t errlen);
/* thaw serve: a scheduler for w with that clock offset, without the
 * /__scheduled route (a deployed worker is not a test bench). */
void thaw_cron_sched_setup(struct thaw_cron_sched *s, uv_loop_t *loop, struct thaw_worker *w,
                           int64_t offset_ms);
/* The worker's config (JSON, already validated) was loaded: take its
 * triggers.crons, replacing the previous ones. */
void thaw_cron_sched_config(struct thaw_cron_sched *s, const char *config_json,
                            const char *file);
/* Shutdown: no more events. */
void thaw_cron_sched_stop(struct thaw_cron_sched *s);

/* The HTTP side, building the REQ_HEAD of a request for url (as the
 * client sent it): when it is `/__scheduled` or
 * `/cdn-cgi/handler/scheduled` and the route is on, appends the
 * pseudo-headers that make it a scheduled event (the instance answers
 * "Ran scheduled event"). Returns 0, or -1 when b is full. */
int thaw_cron_http_head(struct thaw_buf *b, const char *url, size_t n);

#endif
