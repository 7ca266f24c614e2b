/* A call on its way to its owner node (owner-call.h): the route, the
 * forward's start, its cancel, its retry and its failures, the same for
 * D1 and Durable Objects. What each kind says and does differently is in
 * its struct thaw_owner_call_kind. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind/bind.h"
#include "cluster/owner-call.h"
#include "cluster/owner-forward.h"
#include "cluster/owner.h"

static void on_routed(void *data, const struct thaw_owner_answer *a);

int thaw_owner_call_init(struct thaw_owner_call *oc, const struct thaw_owner_call_kind *kind,
                         struct thaw_owners *o, struct thaw_bind_call *call,
                         const char *worker, const char *key)
{
    if (!(oc->worker = strdup(worker ? worker : "")))
        return -1;
    oc->kind = kind;
    oc->o = o;
    oc->call = call;
    oc->key = key;
    return 0;
}

void thaw_owner_call_free(struct thaw_owner_call *oc)
{
    if (oc->x.easy)
        curl_easy_cleanup(oc->x.easy);
    curl_slist_free_all(oc->headers);
    free(oc->payload);
    free(oc->worker);
    oc->kind->free(oc);
}

struct thaw_owner_call *thaw_owner_call_of(struct thaw_curlm_xfer *x)
{
    return (struct thaw_owner_call *)((char *)x - offsetof(struct thaw_owner_call, x));
}

void thaw_owner_call_drop(struct thaw_owner_call *oc)
{
    thaw_curlm_remove(&oc->x);
    oc->kind->gone(oc->call);
    thaw_owner_call_free(oc);
}

/* The instance cancelled (or went away) during the route or the forward. */
static void on_cancel(struct thaw_bind_call *call)
{
    struct thaw_owner_call *oc = call->data;

    if (oc->routing) {
        oc->cancelled = 1; /* ended when the route's answer comes */
        return;
    }
    if (oc->kind->tick && thaw_curlm_in_callback(thaw_owner_multi(oc->o->loop))) {
        oc->removing = 1;
        thaw_curlm_tick_soon(&oc->x);
        return;
    }
    thaw_owner_call_drop(oc);
}

void thaw_owner_call_route(struct thaw_owner_call *oc)
{
    oc->call->data = oc;
    oc->call->on_cancel = on_cancel;
    oc->routing = 1;
    thaw_owner_route(oc->o, oc->kind->table, oc->worker, oc->key, on_routed, oc);
}

long thaw_owner_call_ended(struct thaw_owner_call *oc)
{
    long status = 0;

    curl_easy_getinfo(oc->x.easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(oc->x.easy);
    oc->x.easy = NULL;
    oc->call->on_cancel = NULL;
    return status;
}

void thaw_owner_call_forget(struct thaw_owner_call *oc)
{
    thaw_owner_forget(oc->o, oc->kind->table, oc->worker, oc->key);
}

int thaw_owner_call_moved(struct thaw_owner_call *oc, long status)
{
    if (status != 409 || ++oc->tries >= 2)
        return 0;
    thaw_owner_call_forget(oc);
    oc->kind->reset(oc);
    thaw_owner_call_route(oc);
    return 1;
}

void thaw_owner_call_refused(struct thaw_owner_call *oc, const char *body, size_t n,
                             const char *what, long status)
{
    if (status == 409 || status >= 500)
        thaw_owner_call_forget(oc);
    thaw_owner_fail_answer(oc->call, body, n, what, oc->node, oc->internal, status);
}

void thaw_owner_call_fail_there(struct thaw_owner_call *oc, const char *err)
{
    const struct thaw_owner_call_kind *k = oc->kind;

    thaw_bind_fail(oc->call, "Error", "%s%s%s%s lives on node %s: %s", k->unavailable,
                   k->name_prefix, oc->key, k->name_suffix, oc->node, err);
}

/* Starts the forward to oc->internal. */
static int forward(struct thaw_owner_call *oc, char *err, size_t n)
{
    const struct thaw_owner_call_kind *k = oc->kind;
    struct thaw_curlm *m = thaw_owner_multi(oc->o->loop);
    CURL *e;

    if (!oc->headers && !(oc->headers = thaw_owner_headers(oc->node, err, n)))
        return -1;
    if (k->payload(oc, err, n))
        return -1;
    if (!m || !oc->payload ||
        !(e = thaw_owner_easy(oc->internal, k->path, oc->headers, oc->payload,
                              oc->payload_len, oc->errbuf, k->timeout_ms))) {
        snprintf(err, n, "out of memory");
        return -1;
    }
    if (k->on_header) {
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, k->on_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, oc);
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, k->on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, oc);
    oc->x.easy = e;
    oc->x.done = k->done;
    oc->x.tick = k->tick;
    if (thaw_curlm_add(m, &oc->x) < 0) {
        curl_easy_cleanup(e);
        oc->x.easy = NULL;
        snprintf(err, n, "cannot start the forward");
        return -1;
    }
    return 0;
}

static void on_routed(void *data, const struct thaw_owner_answer *a)
{
    struct thaw_owner_call *oc = data;
    const struct thaw_owner_call_kind *k = oc->kind;
    struct thaw_bind_call *call = oc->call;
    char err[300];

    oc->routing = 0;
    if (oc->cancelled) {
        k->gone(call);
        thaw_owner_call_free(oc);
        return;
    }
    switch (a->where) {
    case THAW_OWNER_HERE:
        call->on_cancel = NULL;
        call->data = NULL;
        k->here(oc, a);
        thaw_owner_call_free(oc);
        return;
    case THAW_OWNER_NONE:
        thaw_bind_fail(call, "Error", "%s%s", k->unavailable, a->why);
        thaw_owner_call_free(oc);
        return;
    case THAW_OWNER_THERE:
        snprintf(oc->node, sizeof(oc->node), "%s", a->node);
        snprintf(oc->internal, sizeof(oc->internal), "%s", a->internal);
        if (k->elsewhere && k->elsewhere(oc)) {
            thaw_owner_call_free(oc);
            return;
        }
        if (forward(oc, err, sizeof(err))) {
            thaw_owner_call_fail_there(oc, err);
            thaw_owner_call_free(oc);
            return;
        }
        call->data = oc;
        call->on_cancel = on_cancel;
        return;
    }
}
