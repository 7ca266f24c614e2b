/* D1 calls in a cluster (owner-d1.h): route, then run here or forward
 * (owner-call.h has what Durable Objects share).
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
#include "bind/d1-exec.h"
#include "cluster/internal.h"
#include "cluster/owner-call.h"
#include "cluster/owner-d1.h"
#include "cluster/owner.h"
#include "util/buf.h"

/* D1's own limit, and time to connect and answer around it */
#define FORWARD_TIMEOUT_MS ((long)THAW_D1_TIMEOUT_MS + 10000)
#define UNAVAILABLE "D1_ERROR: 503 Service Unavailable: "

struct fwd {
    struct thaw_owner_call oc; /* first: the kind's callbacks get &f->oc */
    thaw_owner_here_fn here;
    void *impl;
    char *id;
    struct thaw_buf in;
};

static void fwd_free(struct thaw_owner_call *oc)
{
    struct fwd *f = (struct fwd *)oc;

    thaw_buf_free(&f->in);
    free(f->id);
    free(f);
}

static void reset(struct thaw_owner_call *oc)
{
    struct fwd *f = (struct fwd *)oc;

    thaw_buf_free(&f->in);
    thaw_buf_init(&f->in, THAW_D1_MAX_RESULT + 65536);
}

static void on_forwarded(struct thaw_curlm_xfer *x, CURLcode rc)
{
    struct thaw_owner_call *oc = thaw_owner_call_of(x);
    struct fwd *f = (struct fwd *)oc;
    long status = thaw_owner_call_ended(oc);

    if (rc != CURLE_OK) {
        /* the owner is down or unreachable: ask the store next time (its
         * heartbeat tells when it is gone) */
        thaw_owner_call_forget(oc);
        thaw_bind_fail(oc->call, "Error", UNAVAILABLE "D1 database \"%s\" lives on node %s, "
                       "which did not answer at %s (%s); its data is on that node's disk, "
                       "and it is served again once %s is back", f->id, oc->node,
                       oc->internal, oc->errbuf[0] ? oc->errbuf : curl_easy_strerror(rc),
                       oc->node);
    } else if (status == 200) {
        thaw_bind_ok_body(oc->call, NULL, f->in.data, f->in.len);
    } else if (thaw_owner_call_moved(oc, status)) {
        return;
    } else {
        char what[300];
        snprintf(what, sizeof(what), "D1_ERROR: D1 database \"%s\"", f->id);
        thaw_owner_call_refused(oc, f->in.data, f->in.len, what, status);
    }
    thaw_owner_call_free(oc);
}

static size_t on_data(char *p, size_t size, size_t n, void *data)
{
    struct fwd *f = data;

    return thaw_buf_append(&f->in, p, size * n) ? 0 : size * n;
}

static void gone(struct thaw_bind_call *call)
{
    thaw_bind_fail(call, "Error", "D1_ERROR: the request that ran this query went away");
}

static int payload(struct thaw_owner_call *oc, char *err, size_t n)
{
    struct fwd *f = (struct fwd *)oc;
    json_t *body;

    if (!oc->payload) {
        body = json_pack("{s:s,s:s,s:s,s:O}", "worker", oc->worker, "id", f->id, "op",
                         oc->call->op, "args", oc->call->args);
        oc->payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
        oc->payload_len = oc->payload ? strlen(oc->payload) : 0;
        json_decref(body);
    }
    return 0; /* NULL: out of memory, said by the forward */
}

static void here(struct thaw_owner_call *oc, const struct thaw_owner_answer *a)
{
    struct fwd *f = (struct fwd *)oc;

    f->here(f->impl, oc->call, (double)a->lease_until);
}

static const struct thaw_owner_call_kind d1_kind = {
    .table = "d1",
    .path = THAW_INTERNAL_D1_PATH,
    .timeout_ms = FORWARD_TIMEOUT_MS,
    .unavailable = UNAVAILABLE,
    .name_prefix = "D1 database \"",
    .name_suffix = "\"",
    .here = here,
    .payload = payload,
    .reset = reset,
    .on_body = on_data,
    .done = on_forwarded,
    .gone = gone,
    .free = fwd_free,
};

void thaw_owner_d1_call(struct thaw_owners *o, const char *id, struct thaw_bind_call *call,
                        thaw_owner_here_fn here, void *impl)
{
    struct fwd *f = calloc(1, sizeof(*f));

    if (!f || !(f->id = strdup(id)) ||
        thaw_owner_call_init(&f->oc, &d1_kind, o, call, call->worker, f->id)) {
        if (f)
            free(f->id);
        free(f);
        thaw_bind_fail(call, "Error", "D1_ERROR: out of memory");
        return;
    }
    f->here = here;
    f->impl = impl;
    thaw_buf_init(&f->in, THAW_D1_MAX_RESULT + 65536);
    thaw_owner_call_route(&f->oc);
}
