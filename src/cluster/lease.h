/* Cron leases (docs/scale-out.md): in a cluster every node runs each
 * worker's cron schedulers, and a scheduled event fires on the one node
 * that wins its lease in Redis:
 *
 *     SET PREFIX:cron:WORKER:SCHEDULED_MS:CRON NODE NX PX THAW_LEASE_TTL_MS
 *
 * One key per (worker, cron expression, scheduled time): the first node to
 * set it fires the event, the others skip it, and the value records which
 * node fired. A node that dies mid-run holds only that one run's key, so
 * the next run (another key) is never stuck behind it; the key expires
 * after THAW_LEASE_TTL_MS, long enough that a node whose clock lags the
 * others' by minutes still finds it. Redis unreachable: the event is not
 * fired (logged): a cluster's promise is once, not at least once. */
#ifndef THAW_CLUSTER_LEASE_H
#define THAW_CLUSTER_LEASE_H

#define THAW_LEASE_TTL_MS (15 * 60 * 1000)

/* The cron scheduler asks the lease from now on (link.c calls these). */
void thaw_cluster_lease_start(void);
void thaw_cluster_lease_stop(void);

#endif
