/* Calls to Durable Objects (call.h). The object runs in the host
 * instance as a request whose pseudo-headers say which object and what
 * to call (`:event` = "durable-object"; python/workers/_durable_host.py),
 * so an object's call has what a request has: the wall-clock and CPU
 * limits, a cancel when the caller goes, a 502-style failure when its
 * instance dies. Its response comes back to the caller as the reply's
 * head ({status, headers}) and body. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cluster/owner-do.h"
#include "cluster/owner.h"
#include "do/call.h"
#include "do/scripts.h"
#include "do/live.h"
#include "do/ws.h"
#include "ipc/codec.h"
#include "pool/pool.h"
#include "util/log.h"
#include "util/outcome.h"

struct do_call {
    struct thaw_exchange ex; /* first: the ops get &c->ex */
    struct thaw_bind_call *call; /* NULL once the caller is gone */
    struct thaw_worker *caller;  /* another worker's call (script_name), or NULL */
    int begun;
};

static void finish(struct do_call *c)
{
    thaw_exchange_release(&c->ex);
    if (c->call) {
        c->call->on_cancel = NULL;
        c->call->data = NULL;
    }
    free(c);
}

static void on_resp_head(struct thaw_exchange *ex, int status, const char *reason,
                         const char **names, const char **values, int n)
{
    struct do_call *c = (struct do_call *)ex;
    json_t *headers = json_array();
    int i;

    if (!c->call)
        return;
    for (i = 0; i < n; i++) {
        json_array_append_new(headers, json_pack("[s,s]", names[i], values[i]));
        /* the object's socket: the calling worker may return it (ws.h) */
        if (c->caller && status == 101 && strcasecmp(names[i], "x-thaw-ws") == 0)
            thaw__do_ws_allow(values[i], c->caller);
    }
    c->begun = 1;
    thaw_bind_begin(c->call, json_pack("{s:i, s:s, s:o}", "status", status, "statusText",
                                       reason ? reason : "", "headers", headers));
}

static void on_resp_body(struct thaw_exchange *ex, const char *p, size_t n)
{
    struct do_call *c = (struct do_call *)ex;

    if (c->call && c->begun)
        thaw_bind_data(c->call, p, n);
}

static void on_resp_end(struct thaw_exchange *ex)
{
    struct do_call *c = (struct do_call *)ex;
    struct thaw_bind_call *call = c->call;

    finish(c);
    if (call)
        thaw_bind_end(call, NULL);
}

static void on_fail(struct thaw_exchange *ex, int status, const char *msg)
{
    struct do_call *c = (struct do_call *)ex;
    struct thaw_bind_call *call = c->call;
    char text[512];

    thaw_fail_text(text, sizeof(text), msg, "the object's instance failed");
    finish(c);
    if (!call)
        return;
    if (status == 504)
        thaw_bind_fail(call, "TimeoutError", "Durable Object call: %s", text);
    else
        thaw_bind_fail(call, "Error", "Durable Object call failed: %s", text);
}

static const struct thaw_exchange_ops call_ops = {
    .on_resp_head = on_resp_head,
    .on_resp_body = on_resp_body,
    .on_resp_end = on_resp_end,
    .on_fail = on_fail,
};

/* The caller went away (its task was cancelled, its instance died). */
static void on_cancel(struct thaw_bind_call *call)
{
    struct do_call *c = call->data;

    if (!c)
        return;
    c->call = NULL;
    call->data = NULL;
    finish(c); /* CANCEL to the host: the object's handler is cancelled */
    thaw_bind_end(call, "cancelled");
}

int thaw__do_hex64(const char *s)
{
    size_t i;

    if (!s || strlen(s) != 64)
        return 0;
    for (i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static int put_pair(struct thaw_buf *b, const char *k, const char *v)
{
    return thaw_ipc_put_str(b, k) || thaw_ipc_put_str(b, v);
}

/* REQ_HEAD (method, url, headers, then the pseudo-headers), the body in
 * chunks, REQ_END: one buffer, sent as it is. */
static int build(struct thaw_buf *b, uint32_t sid, const char *cls, const char *op,
                 json_t *args, const char *body, size_t body_len)
{
    const char *id = json_string_value(json_object_get(args, "id"));
    const char *name = json_string_value(json_object_get(args, "name"));
    const char *method = json_string_value(json_object_get(args, "method"));
    const char *url = json_string_value(json_object_get(args, "url"));
    json_t *headers = json_object_get(args, "headers"), *h;
    size_t mark, i, off;
    int rc;

    if ((rc = thaw_ipc_begin(b, THAW_IPC_REQ_HEAD, 0, sid, &mark)))
        return rc;
    /* an RPC call is a POST of its arguments to a URL of no meaning */
    if ((rc = thaw_ipc_put_str(b, strcmp(op, "fetch") == 0 ? method : "POST")) ||
        (rc = thaw_ipc_put_str(b, url ? url : "http://durable-object/rpc")))
        return rc;
    /* the pseudo-headers lead: the instance reads them there (codec-head.c) */
    if ((rc = put_pair(b, ":event", "durable-object")) ||
        (rc = put_pair(b, ":do-class", cls)) || (rc = put_pair(b, ":do-id", id)) ||
        (rc = put_pair(b, ":do-op", op)) ||
        (strcmp(op, "rpc") == 0 && (rc = put_pair(b, ":do-method", method))) ||
        (name && (rc = put_pair(b, ":do-name", name))))
        return rc;
    json_array_foreach(headers, i, h) {
        const char *n = json_string_value(json_array_get(h, 0));
        const char *v = json_string_value(json_array_get(h, 1));
        /* the length is the body's, said once, below */
        if (n && v && n[0] != ':' && strcasecmp(n, "content-length") &&
            strcasecmp(n, "transfer-encoding") && (rc = put_pair(b, n, v)))
            return rc;
    }
    if (body_len) {
        char len[32];
        snprintf(len, sizeof(len), "%zu", body_len);
        if ((rc = put_pair(b, "content-length", len)))
            return rc;
    }
    if ((rc = thaw_ipc_end(b, mark)))
        return rc;
    for (off = 0; off < body_len; off += THAW_IPC_CHUNK) {
        size_t k = body_len - off > THAW_IPC_CHUNK ? THAW_IPC_CHUNK : body_len - off;
        if ((rc = thaw_ipc_begin(b, THAW_IPC_REQ_BODY, 0, sid, &mark)) ||
            (rc = thaw_ipc_put_raw(b, body + off, k)) || (rc = thaw_ipc_end(b, mark)))
            return rc;
    }
    if ((rc = thaw_ipc_begin(b, THAW_IPC_REQ_END, 0, sid, &mark)))
        return rc;
    return thaw_ipc_end(b, mark);
}

int thaw_do_start(struct thaw_worker *w, struct thaw_exchange *ex, const char *class_name,
                  const char *op, json_t *args, const char *body, size_t body_len)
{
    struct thaw_buf b;

    ex->pinned = 1;
    thaw_buf_init(&b, body_len + 2 * THAW_IPC_MAX_PAYLOAD);
    if (build(&b, ex->sid, class_name, op, args, body, body_len)) {
        thaw_buf_free(&b);
        return -1;
    }
    ex->req_done = 1;
    /* live.h: to its host, its idle clock; may end the exchange at once
     * (no version, a failed one) */
    thaw__do_live_send(w, class_name, json_string_value(json_object_get(args, "id")), ex,
                       b.data, b.len);
    thaw_buf_free(&b);
    return 0;
}

/* The call, run on this node. Another worker's class (script_name) is
 * looked up again here: in a cluster the owner's answer may come after
 * that worker was deployed again or deleted. */
static void call_here(void *impl, struct thaw_bind_call *call)
{
    struct thaw_do_ns *ns = impl;
    struct thaw_worker *w = ns->worker, *caller = NULL;
    struct thaw_do_target t;
    struct do_call *c;
    char err[1024];

    if (ns->script) {
        if (thaw__do_resolve(ns->from, ns->script, ns->class_name, &t, err, sizeof(err))) {
            thaw_bind_fail(call, "Error", "%s (class %s of worker %s): %s", ns->binding,
                           ns->class_name, ns->script, err);
            return;
        }
        w = t.w;
        caller = ns->worker;
    }
    if (!w) {
        thaw_bind_fail(call, "Error", "Durable Objects are not run here");
        return;
    }
    if (!(c = calloc(1, sizeof(*c)))) {
        thaw_bind_fail(call, "Error", "out of memory");
        return;
    }
    thaw_exchange_init(&c->ex, &call_ops, c);
    c->call = call;
    c->caller = caller != w ? caller : NULL;
    call->data = c;
    call->on_cancel = on_cancel;
    if (thaw_do_start(w, &c->ex, ns->class_name, call->op, call->args, call->body,
                      call->body_len)) {
        call->data = NULL;
        call->on_cancel = NULL;
        c->call = NULL;
        finish(c);
        thaw_bind_fail(call, "TypeError", "%s.%s: the call's headers do not fit in a frame",
                       call->binding, call->op);
    }
}

void thaw__do_call(struct thaw_do_ns *ns, struct thaw_bind_call *call)
{
    json_t *args = call->args;
    const char *id = json_string_value(json_object_get(args, "id"));
    const char *method = json_string_value(json_object_get(args, "method"));

    /* the SDK sends these; a worker that speaks the protocol itself is
     * refused here, not in the host */
    if (!thaw__do_hex64(id) || !method || !*method ||
        (strcmp(call->op, "fetch") == 0 && !json_is_string(json_object_get(args, "url")))) {
        thaw_bind_fail(call, "TypeError", "%s.%s: a Durable Object call needs an id of 64 "
                       "hex digits and a method", call->binding, call->op);
        return;
    }
    /* in a cluster the object lives on its owner node (owner-do.h), keyed
     * by the worker whose class it is */
    if (thaw_owners_cluster)
        thaw_owner_do_call(thaw_owners_cluster, ns->script ? ns->script : call->worker,
                           ns->class_name, call, call_here, ns);
    else
        call_here(ns, call);
}
