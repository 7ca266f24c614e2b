/* D1 calls in a cluster (owner-d1.h): route, then run here or forward.
 *
 * The forward is one POST of {worker, id, op, args} to the owner's
 * internal port (internal.c) with the cluster's secret; the owner checks
 * its own lease before it runs the call. Its answer is the D1 JSON the
 * binding would have sent (200), or {"class", "error"}: the exception to
 * raise in the worker. A 409 (the owner says it is not the owner any
 * more: the row moved) is asked once more of the store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind/bind.h"
#include "bind/curlmulti.h"
#include "bind/d1-exec.h"
#include "cluster/internal.h"
#include "cluster/owner-d1.h"
#include "cluster/owner-forward.h"
#include "cluster/owner.h"
#include "util/buf.h"

/* D1's own limit, and time to connect and answer around it */
#define FORWARD_TIMEOUT_MS ((long)THAW_D1_TIMEOUT_MS + 10000)
#define UNAVAILABLE "D1_ERROR: 503 Service Unavailable: "

struct fwd {
    struct thaw_owners *o;
    struct thaw_bind_call *call;
    thaw_owner_here_fn here;
    void *impl;
    char *id;
    char *worker;
    int routing;        /* waiting for thaw_owner_route's answer */
    int cancelled;      /* the instance cancelled while routing */
    int tries;
    struct thaw_curlm_xfer x;   /* x.easy: a forward in flight */
    struct curl_slist *headers;
    char *payload;
    struct thaw_buf in;
    char node[THAW_CLUSTER_MAX_NODE + 1];
    char internal[128];
    char errbuf[CURL_ERROR_SIZE];
};

static void fwd_free(struct fwd *f)
{
    if (f->x.easy)
        curl_easy_cleanup(f->x.easy);
    curl_slist_free_all(f->headers);
    free(f->payload);
    thaw_buf_free(&f->in);
    free(f->id);
    free(f->worker);
    free(f);
}

static void on_routed(void *data, const struct thaw_owner_answer *a);
static void on_cancel(struct thaw_bind_call *call);

static void on_forwarded(struct thaw_curlm_xfer *x, CURLcode rc)
{
    struct fwd *f = (struct fwd *)((char *)x - offsetof(struct fwd, x));
    long status = 0;

    f->call->on_cancel = NULL;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(x->easy);
    x->easy = NULL;
    if (rc != CURLE_OK) {
        /* the owner is down or unreachable: ask the store next time (its
         * heartbeat tells when it is gone) */
        thaw_owner_forget(f->o, "d1", f->worker, f->id);
        thaw_bind_fail(f->call, "Error", UNAVAILABLE "D1 database \"%s\" lives on node %s, "
                       "which did not answer at %s (%s); its data is on that node's disk, "
                       "and it is served again once %s is back", f->id, f->node,
                       f->internal, f->errbuf[0] ? f->errbuf : curl_easy_strerror(rc),
                       f->node);
    } else if (status == 200) {
        thaw_bind_ok_body(f->call, NULL, f->in.data, f->in.len);
    } else if (status == 409 && ++f->tries < 2) {
        /* the row moved since this node read it: once more, from the store */
        thaw_owner_forget(f->o, "d1", f->worker, f->id);
        thaw_buf_free(&f->in);
        thaw_buf_init(&f->in, THAW_D1_MAX_RESULT + 65536);
        f->call->on_cancel = on_cancel;
        f->routing = 1;
        thaw_owner_route(f->o, "d1", f->worker, f->id, on_routed, f);
        return;
    } else {
        if (status == 409 || status >= 500)
            thaw_owner_forget(f->o, "d1", f->worker, f->id);
        char what[300];
        snprintf(what, sizeof(what), "D1_ERROR: D1 database \"%s\"", f->id);
        thaw_owner_fail_answer(f->call, f->in.data, f->in.len, what, f->node, f->internal,
                               status);
    }
    fwd_free(f);
}

static size_t on_data(char *p, size_t size, size_t n, void *data)
{
    struct fwd *f = data;

    return thaw_buf_append(&f->in, p, size * n) ? 0 : size * n;
}

/* The instance cancelled (or went away) during the forward. */
static void on_cancel(struct thaw_bind_call *call)
{
    struct fwd *f = call->data;

    if (f->routing) {
        f->cancelled = 1; /* ended when the route's answer comes */
        return;
    }
    thaw_curlm_remove(&f->x);
    thaw_bind_fail(call, "Error", "D1_ERROR: the request that ran this query went away");
    fwd_free(f);
}

static int forward(struct fwd *f, char *err, size_t n)
{
    struct thaw_curlm *m = thaw_owner_multi(f->o->loop);
    json_t *body;
    CURL *e;

    if (!f->headers && !(f->headers = thaw_owner_headers(f->node, err, n)))
        return -1;
    if (!f->payload) {
        body = json_pack("{s:s,s:s,s:s,s:O}", "worker", f->worker, "id", f->id, "op",
                         f->call->op, "args", f->call->args);
        f->payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
    }
    if (!m || !f->payload ||
        !(e = thaw_owner_easy(f->internal, THAW_INTERNAL_D1_PATH, f->headers, f->payload,
                              strlen(f->payload), f->errbuf, FORWARD_TIMEOUT_MS))) {
        snprintf(err, n, "out of memory");
        return -1;
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
    f->x.easy = e;
    f->x.done = on_forwarded;
    if (thaw_curlm_add(m, &f->x) < 0) {
        curl_easy_cleanup(e);
        f->x.easy = NULL;
        snprintf(err, n, "cannot start the forward");
        return -1;
    }
    return 0;
}

static void on_routed(void *data, const struct thaw_owner_answer *a)
{
    struct fwd *f = data;
    struct thaw_bind_call *call = f->call;
    char err[300];

    f->routing = 0;
    if (f->cancelled) {
        thaw_bind_fail(call, "Error", "D1_ERROR: the request that ran this query went away");
        fwd_free(f);
        return;
    }
    switch (a->where) {
    case THAW_OWNER_HERE:
        call->on_cancel = NULL;
        call->data = NULL;
        f->here(f->impl, call, (double)a->lease_until);
        fwd_free(f);
        return;
    case THAW_OWNER_NONE:
        thaw_bind_fail(call, "Error", UNAVAILABLE "%s", a->why);
        fwd_free(f);
        return;
    case THAW_OWNER_THERE:
        snprintf(f->node, sizeof(f->node), "%s", a->node);
        snprintf(f->internal, sizeof(f->internal), "%s", a->internal);
        if (forward(f, err, sizeof(err))) {
            thaw_bind_fail(call, "Error", UNAVAILABLE "D1 database \"%s\" lives on node %s: "
                           "%s", f->id, f->node, err);
            fwd_free(f);
            return;
        }
        call->data = f;
        call->on_cancel = on_cancel;
        return;
    }
}

void thaw_owner_d1_call(struct thaw_owners *o, const char *id, struct thaw_bind_call *call,
                        thaw_owner_here_fn here, void *impl)
{
    struct fwd *f = calloc(1, sizeof(*f));

    if (!f || !(f->id = strdup(id)) ||
        !(f->worker = strdup(call->worker ? call->worker : ""))) {
        if (f)
            free(f->id);
        free(f);
        thaw_bind_fail(call, "Error", "D1_ERROR: out of memory");
        return;
    }
    f->o = o;
    f->call = call;
    f->here = here;
    f->impl = impl;
    thaw_buf_init(&f->in, THAW_D1_MAX_RESULT + 65536);
    call->data = f;
    call->on_cancel = on_cancel;
    f->routing = 1;
    thaw_owner_route(o, "d1", f->worker, id, on_routed, f);
}
