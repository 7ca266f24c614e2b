/* Counters of one worker, read by GET /metrics on the admin address.
 * Types only: the HTTP side counts requests, the pool counts builds. */
#ifndef THAW_METRICS_H
#define THAW_METRICS_H

#include <stdint.h>

/* upper bounds of the latency histogram, in seconds */
#define THAW_LATENCY_BUCKETS {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, \
                              0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0}
#define THAW_N_LATENCY_BUCKETS 14

struct thaw_metrics {
    uint64_t by_status[600];     /* responses by status code; [0]: cut short */
    uint64_t latency[THAW_N_LATENCY_BUCKETS + 1]; /* last: +Inf */
    double latency_sum;
    uint64_t latency_count;
    uint64_t starts_warm;        /* served by an instance that served before */
    uint64_t starts_fork;        /* an instance's first request (a cold start) */
    uint64_t template_builds;
    uint64_t template_evictions; /* template_idle_timeout_ms */
    /* routing (pool.c), to see why requests wait: */
    uint64_t queued;             /* requests that waited in a version's queue */
    uint64_t blocked_skips;      /* a busy instance passed over as blocked */
    uint64_t syscall_reads;      /* /proc/PID/syscall reads for that check */
    uint64_t packed;             /* sent to a busy instance they fit (pick()) */
};

#endif
