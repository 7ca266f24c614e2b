/* What src/do/ws.c (the records, the events, the connection's side) and
 * src/do/ws-bind.c (the ":do-ws" binding the host reaches them through)
 * share. Internal to src/do/. */
#ifndef THAW_DO_WS_INTERNAL_H
#define THAW_DO_WS_INTERNAL_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "do/ws.h"
#include "util/buf.h"

/* a socket's id: 16 hex digits, made by the host (workers/_durable_ws.py) */
#define THAW_DO_WS_ID_LEN 16
/* what an object may send before its 101 reached the client */
#define THAW_DO_WS_EARLY_MAX (16u << 20)

struct thaw_do_ws {
    char id[THAW_DO_WS_ID_LEN + 1];
    struct thaw_worker *worker;
    char *cls, *oid, *name;
    json_t *tags;            /* array of strings */
    char *att;               /* the attachment, wire-encoded; NULL: none */
    int hib;                 /* acceptWebSocket (else accept()) */
    void *conn;              /* the public connection, once claimed */
    /* another worker whose fetch may return this socket: it called the
     * object through a script_name binding (call.c); compared, never
     * followed */
    struct thaw_worker *claimer;
    thaw_do_ws_out out;
    struct thaw_buf early;   /* frames before the claim: type, u32 len, bytes */
    uint64_t born_ms;
    int close_told;          /* the object had its close event */
    /* wall clock (ms since the epoch) of the last auto-response sent on
     * it, 0: none yet (getWebSocketAutoResponseTimestamp); kept here, not
     * in the host, since most go while the object is not in memory */
    int64_t auto_at_ms;
    struct thaw_do_ws *next, *prev;
};

/* An object's auto-response (setWebSocketAutoResponse). */
struct thaw_do_autoresp {
    struct thaw_worker *worker;
    char *cls, *oid, *req, *resp;
    struct thaw_do_autoresp *next;
};

extern struct thaw_do_ws *thaw__do_socks;          /* every record */
extern struct thaw_do_autoresp *thaw__do_autos;

/* The record of a socket id, or NULL. */
struct thaw_do_ws *thaw__do_ws_find(const char *id);
/* A new record (id, object, tags taken as they are), listed; NULL when out
 * of memory. */
struct thaw_do_ws *thaw__do_ws_new(const char *id, struct thaw_worker *w, const char *cls,
                                   const char *oid, const char *name, json_t *tags, int hib,
                                   uint64_t now_ms);
void thaw__do_ws_free(struct thaw_do_ws *s);
/* Whether s is (w, cls, oid)'s; how many records that object has. */
int thaw__do_ws_same(const struct thaw_do_ws *s, struct thaw_worker *w, const char *cls,
                     const char *oid);
int thaw__do_ws_count(struct thaw_worker *w, const char *cls, const char *oid);
/* Records whose 101 never reached a connection, dropped once old. */
void thaw__do_ws_sweep(uv_loop_t *loop);
void thaw__do_autoresp_free(struct thaw_do_autoresp *a);

#endif
