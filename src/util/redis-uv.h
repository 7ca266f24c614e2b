/* hiredis's asynchronous API on a libuv loop: the glue shared by KV on
 * Redis (src/bind/kv-redis.c) and the cluster's Redis link
 * (src/cluster/link.c).
 *
 * hiredis 0.14's adapters/libuv.h ignores a poll error, and libuv reports
 * a refused connect as one (and stops the handle), so a command would wait
 * for its caller's timeout instead of failing at once. This glue hands an
 * error to hiredis as readiness: it then reads the socket's error itself.
 *
 * Lifetimes: the uv_poll_t is closed (uv_close) from hiredis's cleanup
 * hook, which redisAsyncFree and a broken connection run before hiredis
 * closes the socket, so the handle never watches a closed fd. */
#ifndef THAW_UTIL_REDIS_UV_H
#define THAW_UTIL_REDIS_UV_H

#include <stddef.h>

#include <hiredis/async.h>
#include <uv.h>

struct thaw_kv_redis_url;

/* Connects to u's host and port, watches the socket on loop and queues
 * AUTH and SELECT as u asks (their answers go to setup_cb, which may be
 * NULL). ac->data is data. NULL with a message in err on failure. */
redisAsyncContext *thaw_redis_uv_connect(uv_loop_t *loop, const struct thaw_kv_redis_url *u,
                                         redisCallbackFn *setup_cb, void *data,
                                         char *err, size_t errlen);

#endif
