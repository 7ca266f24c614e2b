/* `thaw cluster haproxy-config` (docs/scale-out.md): the HAProxy
 * configuration of a cluster's front. Pure: no I/O, so unit tests read
 * what it writes. HAProxy 2.6 (Debian 12's) or later. */
#ifndef THAW_CLUSTER_HAPROXY_H
#define THAW_CLUSTER_HAPROXY_H

#include <stddef.h>

#include "util/buf.h"

#define THAW_HAPROXY_MAX_NODES 64

struct thaw_haproxy_node {
    char name[64];   /* the server's name: NAME= or n1, n2, ... by position */
    char host[128];
    int port;        /* thaw serve --listen */
    int admin_port;  /* its --admin, where /readyz answers (default port + 1) */
};

struct thaw_haproxy_opts {
    struct thaw_haproxy_node nodes[THAW_HAPROXY_MAX_NODES];
    int n;
    char front[160];      /* HOST:PORT HAProxy listens on (default *:80) */
    int check_ms;         /* health check interval (default 1000) */
    int balance_factor;   /* hash-balance-factor, >= 100 (default 150) */
    char stats[160];      /* "" or HOST:PORT of HAProxy's stats page */
};

/* Parses --nodes: comma-separated [NAME=]HOST:PORT[/ADMINPORT]. 0, or -1
 * with a message naming the item and the fix. */
int thaw_haproxy_parse_nodes(struct thaw_haproxy_opts *o, const char *list, char *err,
                             size_t errlen);
/* Sets the defaults of everything but the nodes. */
void thaw_haproxy_defaults(struct thaw_haproxy_opts *o);
/* Writes the configuration into out (initialised by the caller). 0 or -1
 * (out of memory). */
int thaw_haproxy_config(const struct thaw_haproxy_opts *o, struct thaw_buf *out);

#endif
