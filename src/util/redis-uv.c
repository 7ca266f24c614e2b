/* hiredis on the libuv loop (redis-uv.h). */
#include <stdio.h>
#include <stdlib.h>

#include "bind/kv.h"
#include "util/redis-uv.h"

struct rpoll {
    redisAsyncContext *ac; /* NULL once hiredis cleaned up */
    uv_poll_t handle;
    int events;
};

static void rpoll_cb(uv_poll_t *h, int status, int events)
{
    struct rpoll *p = h->data;
    int ev = status < 0 ? p->events : events;

    if (p->ac && (ev & UV_READABLE))
        redisAsyncHandleRead(p->ac);
    if (p->ac && (ev & UV_WRITABLE))
        redisAsyncHandleWrite(p->ac);
}

static void rpoll_set(struct rpoll *p, int events)
{
    p->events = events;
    if (events)
        uv_poll_start(&p->handle, events, rpoll_cb);
    else
        uv_poll_stop(&p->handle);
}

static void rpoll_add_read(void *d) { rpoll_set(d, ((struct rpoll *)d)->events | UV_READABLE); }
static void rpoll_del_read(void *d) { rpoll_set(d, ((struct rpoll *)d)->events & ~UV_READABLE); }
static void rpoll_add_write(void *d) { rpoll_set(d, ((struct rpoll *)d)->events | UV_WRITABLE); }
static void rpoll_del_write(void *d) { rpoll_set(d, ((struct rpoll *)d)->events & ~UV_WRITABLE); }

static void rpoll_closed(uv_handle_t *h)
{
    free(h->data);
}

/* hiredis calls this before it closes the socket */
static void rpoll_cleanup(void *d)
{
    struct rpoll *p = d;

    p->ac = NULL;
    uv_close((uv_handle_t *)&p->handle, rpoll_closed);
}

static int rpoll_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    struct rpoll *p = calloc(1, sizeof(*p));

    if (!p || uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
        free(p);
        return -1;
    }
    p->ac = ac;
    p->handle.data = p;
    ac->ev.data = p;
    ac->ev.addRead = rpoll_add_read;
    ac->ev.delRead = rpoll_del_read;
    ac->ev.addWrite = rpoll_add_write;
    ac->ev.delWrite = rpoll_del_write;
    ac->ev.cleanup = rpoll_cleanup;
    return 0;
}

redisAsyncContext *thaw_redis_uv_connect(uv_loop_t *loop, const struct thaw_kv_redis_url *u,
                                         redisCallbackFn *setup_cb, void *data,
                                         char *err, size_t errlen)
{
    redisAsyncContext *ac = redisAsyncConnect(u->host, u->port);

    if (!ac) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (ac->err) {
        snprintf(err, errlen, "%s", ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = data;
    if (rpoll_attach(ac, loop) < 0) {
        snprintf(err, errlen, "cannot watch its socket");
        redisAsyncFree(ac);
        return NULL;
    }
    if (u->password[0])
        redisAsyncCommand(ac, setup_cb, NULL, "AUTH %s", u->password);
    if (u->db)
        redisAsyncCommand(ac, setup_cb, NULL, "SELECT %d", u->db);
    return ac;
}
