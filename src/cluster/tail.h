/* `tail` across a cluster (docs/scale-out.md): a worker's log lines from
 * every node reach a tail opened on any node, through Redis pub/sub on the
 * channel PREFIX:tail:WORKER.
 *
 * A node publishes a worker's lines only while someone tails that worker
 * on another node: it asks Redis (PUBSUB NUMSUB) at most once a second
 * per worker, and holds the lines that come meanwhile (up to
 * THAW_TAIL_HELD) until the answer. A node with a tail open on a worker
 * subscribes to its channel, and hands the other nodes' lines to its
 * local tails with "node": NAME added. Without a cluster Redis every call
 * is a no-op. */
#ifndef THAW_CLUSTER_TAIL_H
#define THAW_CLUSTER_TAIL_H

#include <stddef.h>

#define THAW_TAIL_CHECK_MS 1000
#define THAW_TAIL_HELD 256

/* Where the other nodes' lines go (the fleet's local tails). */
typedef void (*thaw_cluster_tail_sink)(void *data, const char *worker, const char *line,
                                       size_t n);
void thaw_cluster_tail_set_sink(thaw_cluster_tail_sink sink, void *data);

/* 1 when worker's lines should be made and handed to publish: someone on
 * another node may be tailing it. */
int thaw_cluster_tail_wanted(const char *worker);
/* One line (JSON, ending in a newline) of worker's, made on this node. */
void thaw_cluster_tail_publish(const char *worker, const char *line, size_t n);
/* A local tail of worker opened (+1) or ended (-1). */
void thaw_cluster_tail_watch(const char *worker, int delta);
/* Shutdown (link.c): the subscriber connection and timer closed. */
void thaw_cluster_tail_stop(void);

#endif
