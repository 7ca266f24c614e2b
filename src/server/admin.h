/* The admin address (--admin 127.0.0.1:PORT): GET /metrics in Prometheus
 * text format and GET /healthz. Keep it on loopback or a private network:
 * it has no authentication yet. */
#ifndef THAW_ADMIN_H
#define THAW_ADMIN_H

#include <uv.h>

#include "pool/pool.h"
#include "server/h1-conn.h"

struct thaw_admin {
    struct thaw_h1_server srv;  /* the HTTP/1 core (h1-conn.h) */
    struct thaw_worker *worker;
};

/* A few dozen scrapers and probes at once (h1-server.c: the cap). */
#define THAW_ADMIN_MAX_CONNS 64

/* addr is "IP:PORT" (or "[IPv6]:PORT"). 0, or a libuv error / UV_EINVAL. */
int thaw_admin_listen(struct thaw_admin *a, uv_loop_t *loop, const char *addr,
                      struct thaw_worker *w);
void thaw_admin_close(struct thaw_admin *a);
/* The /metrics text for w; malloc'd. */
char *thaw_admin_metrics(struct thaw_worker *w, size_t *len);
/* The same for n workers (thaw serve), one block per metric family. */
char *thaw_admin_metrics_many(struct thaw_worker **ws, int n, size_t *len);

#endif
