/* The ":do-ws" binding: how an object's host reaches the supervisor's
 * records of its sockets (ws.c has the list of operations and why). One
 * per version whose worker has Durable Object classes (bind.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "do/call.h"
#include "do/ws-internal.h"
#include "pool/pool.h"
#include "util/log.h"

#define ID_LEN THAW_DO_WS_ID_LEN
/* Cloudflare's limit for serializeAttachment */
#define MAX_ATTACHMENT 2048

struct ws_kind {
    struct thaw_worker *worker;
    uv_loop_t *loop;
};

static int good_id(const char *id)
{
    size_t i;

    if (!id || strlen(id) != ID_LEN)
        return 0;
    for (i = 0; i < ID_LEN; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return 0;
    return 1;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void op_open(struct ws_kind *k, struct thaw_bind_call *call)
{
    json_t *a = call->args, *tags = json_object_get(a, "tags"), *t;
    const char *id = json_string_value(json_object_get(a, "ws"));
    const char *cls = json_string_value(json_object_get(a, "class"));
    const char *oid = json_string_value(json_object_get(a, "id"));
    const char *name = json_string_value(json_object_get(a, "name"));
    long long max = k->worker->limits.do_max_websockets;
    size_t i;

    if (!good_id(id) || !cls || !thaw__do_hex64(oid) || thaw__do_ws_find(id) ||
        (tags && !json_is_array(tags))) {
        thaw_bind_fail(call, "TypeError", "a malformed WebSocket registration");
        return;
    }
    json_array_foreach(tags, i, t)
        if (!json_is_string(t)) {
            thaw_bind_fail(call, "TypeError", "a WebSocket's tags are strings");
            return;
        }
    thaw__do_ws_sweep(k->loop);
    if (thaw__do_ws_count(k->worker, cls, oid) >= max) {
        thaw_bind_fail(call, "Error", "this Durable Object has %lld WebSockets, the most it "
                       "may have (limit do_max_websockets; Cloudflare's is 32,768): close "
                       "some first, or raise the limit in [thaw] of the config", max);
        return;
    }
    if (!thaw__do_ws_new(id, k->worker, cls, oid, name, tags,
                         json_is_true(json_object_get(a, "hib")), uv_now(k->loop))) {
        thaw_bind_fail(call, "Error", "out of memory");
        return;
    }
    thaw_bind_ok(call, NULL);
}

static void op_attach(struct thaw_bind_call *call)
{
    struct thaw_do_ws *s = thaw__do_ws_find(json_string_value(json_object_get(call->args, "ws")) ?: "");
    const char *v = json_string_value(json_object_get(call->args, "value"));

    if (!s || (v && strlen(v) > MAX_ATTACHMENT)) {
        thaw_bind_fail(call, "Error", "no such WebSocket, or an attachment over 2048 bytes");
        return;
    }
    free(s->att);
    s->att = dup_or_null(v);
    thaw_bind_ok(call, NULL);
}

static void op_auto(struct ws_kind *k, struct thaw_bind_call *call)
{
    const char *cls = json_string_value(json_object_get(call->args, "class"));
    const char *oid = json_string_value(json_object_get(call->args, "id"));
    const char *req = json_string_value(json_object_get(call->args, "request"));
    const char *resp = json_string_value(json_object_get(call->args, "response"));
    struct thaw_do_autoresp *a, **pp;

    if (!cls || !thaw__do_hex64(oid)) {
        thaw_bind_fail(call, "TypeError", "a malformed auto-response");
        return;
    }
    for (pp = &thaw__do_autos; *pp; pp = &(*pp)->next)
        if ((*pp)->worker == k->worker && strcmp((*pp)->cls, cls) == 0 &&
            strcmp((*pp)->oid, oid) == 0) {
            a = *pp;
            *pp = a->next;
            thaw__do_autoresp_free(a);
            break;
        }
    if (req && resp && (a = calloc(1, sizeof(*a)))) {
        a->worker = k->worker;
        a->cls = strdup(cls), a->oid = strdup(oid), a->req = strdup(req), a->resp = strdup(resp);
        if (a->cls && a->oid && a->req && a->resp) {
            a->next = thaw__do_autos;
            thaw__do_autos = a;
        } else {
            thaw__do_autoresp_free(a);
        }
    }
    thaw_bind_ok(call, NULL);
}

static void op_list(struct ws_kind *k, struct thaw_bind_call *call)
{
    const char *cls = json_string_value(json_object_get(call->args, "class"));
    const char *oid = json_string_value(json_object_get(call->args, "id"));
    json_t *out = json_array();
    struct thaw_do_ws *s;

    for (s = thaw__do_socks; cls && oid && s; s = s->next)
        if (thaw__do_ws_same(s, k->worker, cls, oid) && !s->close_told)
            json_array_append_new(out, json_pack("{s:s, s:O, s:b, s:s?}", "ws", s->id,
                                                 "tags", s->tags, "hib", s->hib, "att",
                                                 s->att));
    thaw_bind_ok(call, json_pack("{s:o}", "sockets", out));
}

/* getWebSocketAutoResponseTimestamp: null for a socket that had none, or
 * is not (any longer) one of this object's (Cloudflare's is null for any
 * WebSocket without one). */
static void op_autots(struct ws_kind *k, struct thaw_bind_call *call)
{
    const char *id = json_string_value(json_object_get(call->args, "ws"));
    const char *cls = json_string_value(json_object_get(call->args, "class"));
    const char *oid = json_string_value(json_object_get(call->args, "id"));
    struct thaw_do_ws *s;

    if (!good_id(id) || !cls || !thaw__do_hex64(oid)) {
        thaw_bind_fail(call, "TypeError", "a malformed WebSocket");
        return;
    }
    s = thaw__do_ws_find(id);
    if (!s || !thaw__do_ws_same(s, k->worker, cls, oid) || !s->auto_at_ms)
        thaw_bind_ok(call, json_pack("{s:n}", "at"));
    else
        thaw_bind_ok(call, json_pack("{s:I}", "at", (json_int_t)s->auto_at_ms));
}

/* A frame of the host's pipe: a socket's message or close. */
static void pipe_message(struct thaw_bind_call *call, int type, const void *p, size_t n)
{
    const char *q = p;
    char id[ID_LEN + 1];
    struct thaw_do_ws *s;
    struct thaw_buf *e;
    uint8_t hdr[5];
    int ws_type = type - THAW_IPC_BIND_WS_TEXT + THAW_IPC_WS_TEXT;

    (void)call;
    if (n < ID_LEN)
        return;
    memcpy(id, q, ID_LEN);
    id[ID_LEN] = 0;
    if (!(s = thaw__do_ws_find(id)))
        return; /* closed meanwhile */
    if (s->conn) {
        s->out(s->conn, ws_type, q + ID_LEN, n - ID_LEN);
        return;
    }
    /* before the worker returned the 101: kept for the claim */
    e = &s->early;
    n -= ID_LEN;
    hdr[0] = (uint8_t)ws_type;
    hdr[1] = (uint8_t)n, hdr[2] = (uint8_t)(n >> 8), hdr[3] = (uint8_t)(n >> 16);
    hdr[4] = (uint8_t)(n >> 24);
    if (thaw_buf_append(e, hdr, 5) ||
        thaw_buf_append(e, q + ID_LEN, n))
        thaw_log("worker %s: a Durable Object sent more than 16 MiB on a WebSocket before "
                 "its 101 was returned: dropped", s->worker->cfg.name);
}

static void pipe_cancel(struct thaw_bind_call *call)
{
    thaw_bind_end(call, NULL);
}

static void ws_call(void *impl, struct thaw_bind_call *call)
{
    struct ws_kind *k = impl;

    if (!k->worker) {
        thaw_bind_fail(call, "Error", "Durable Objects are not run here");
    } else if (strcmp(call->op, "pipe") == 0) {
        call->on_message = pipe_message;
        call->on_cancel = pipe_cancel;
        thaw_bind_begin(call, json_object());
    } else if (strcmp(call->op, "open") == 0) {
        op_open(k, call);
    } else if (strcmp(call->op, "attach") == 0) {
        op_attach(call);
    } else if (strcmp(call->op, "auto") == 0) {
        op_auto(k, call);
    } else if (strcmp(call->op, "list") == 0) {
        op_list(k, call);
    } else if (strcmp(call->op, "autots") == 0) {
        op_autots(k, call);
    } else {
        thaw_bind_fail(call, "TypeError", "no operation \"%s\"", call->op);
    }
}

static void ws_close(void *impl)
{
    free(impl);
}

static const struct thaw_bind_kind ws_kind = {
    .name = "durable object websockets",
    .call = ws_call,
    .close = ws_close,
};

int thaw__do_ws_add(const struct thaw_bind_env *env, struct thaw_bindings *set, char *err,
                    size_t errlen)
{
    struct ws_kind *k = calloc(1, sizeof(*k));

    if (!k) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    k->worker = env->worker;
    k->loop = env->loop;
    if (thaw_bindings_add(set, ":do-ws", &ws_kind, k, err, errlen)) {
        free(k);
        return -1;
    }
    return 0;
}
