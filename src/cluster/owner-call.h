/* A call on its way to the node that owns its object: what D1
 * (owner-d1.c) and Durable Objects (owner-do.c) share. The call is routed
 * (owner.h); then it runs here, fails with a 503 when no node can serve
 * it, or is forwarded to the owner's internal port (owner-forward.h),
 * whose answer the kind turns into the call's. The instance may cancel at
 * any point: while routing, the call ends when the route's answer comes;
 * while forwarding, at once. A kind embeds struct thaw_owner_call first in
 * its own struct and describes itself in a struct thaw_owner_call_kind. */
#ifndef THAW_CLUSTER_OWNER_CALL_H
#define THAW_CLUSTER_OWNER_CALL_H

#include <curl/curl.h>
#include <stddef.h>

#include "bind/curlmulti.h"
#include "cluster/config.h"

struct thaw_owners;
struct thaw_owner_answer;
struct thaw_bind_call;
struct thaw_owner_call;

struct thaw_owner_call_kind {
    const char *table;       /* the owners' kind: "d1", "do" */
    const char *path;        /* the owner's internal endpoint */
    long timeout_ms;         /* the forward's; 0: none */
    const char *unavailable; /* what a 503's message starts with */
    /* how errors name the object: PREFIX KEY SUFFIX */
    const char *name_prefix, *name_suffix;

    /* This node owns it: runs the call (its data and on_cancel cleared). */
    void (*here)(struct thaw_owner_call *oc, const struct thaw_owner_answer *a);
    /* Optional. Another node owns it (oc->node, oc->internal set): 1 when
     * the kind ended the call or handed it on another way than the
     * forward, 0 to forward it. */
    int (*elsewhere)(struct thaw_owner_call *oc);
    /* The forward's body into oc->payload and oc->payload_len, once;
     * -1 with err (oc->payload NULL: out of memory). */
    int (*payload)(struct thaw_owner_call *oc, char *err, size_t n);
    /* A forward starts again: what the last one answered goes. */
    void (*reset)(struct thaw_owner_call *oc);
    /* The transfer's callbacks (header and tick optional; a kind whose
     * transfers pause has a tick, and a cancel inside one of its curl
     * callbacks is done at the next tick). Their data is oc. */
    curl_write_callback on_header, on_body;
    void (*done)(struct thaw_curlm_xfer *x, CURLcode rc);
    void (*tick)(struct thaw_curlm_xfer *x);
    /* Ends a call its instance cancelled. */
    void (*gone)(struct thaw_bind_call *call);
    /* Frees the kind's struct around oc (after the shared parts). */
    void (*free)(struct thaw_owner_call *oc);
};

struct thaw_owner_call {
    const struct thaw_owner_call_kind *kind;
    struct thaw_owners *o;
    struct thaw_bind_call *call;
    char *worker;
    const char *key;          /* the kind's: the object's id in the table */
    int routing;              /* waiting for thaw_owner_route's answer */
    int cancelled;            /* the instance cancelled while routing */
    int tries;
    int removing;             /* cancelled inside a curl callback */
    struct thaw_curlm_xfer x; /* x.easy: a forward in flight */
    struct curl_slist *headers;
    char *payload;
    size_t payload_len;
    char node[THAW_CLUSTER_MAX_NODE + 1];
    char internal[128];
    char errbuf[CURL_ERROR_SIZE];
};

/* Sets oc up for call (worker copied; key stays the kind's). -1: out of
 * memory, nothing to free but the kind's own. */
int thaw_owner_call_init(struct thaw_owner_call *oc, const struct thaw_owner_call_kind *kind,
                         struct thaw_owners *o, struct thaw_bind_call *call,
                         const char *worker, const char *key);
/* Routes the call: ends it, or hands it to here, elsewhere or the forward. */
void thaw_owner_call_route(struct thaw_owner_call *oc);
/* The call's oc, from its transfer. */
struct thaw_owner_call *thaw_owner_call_of(struct thaw_curlm_xfer *x);
/* The forward is over (x.done): the easy handle goes, the call's cancel
 * too. Its HTTP status (0: none). */
long thaw_owner_call_ended(struct thaw_owner_call *oc);
/* The owner did not answer: ask the store at the next route. */
void thaw_owner_call_forget(struct thaw_owner_call *oc);
/* A 409 (the row moved since this node read it) is asked once more of
 * the store: 1 when it is (oc lives on), else 0. */
int thaw_owner_call_moved(struct thaw_owner_call *oc, long status);
/* Ends the call with the owner's error answer (body, n bytes; what
 * names the call in one thaw cannot read); a 409 or 5xx forgets the
 * owner. */
void thaw_owner_call_refused(struct thaw_owner_call *oc, const char *body, size_t n,
                             const char *what, long status);
/* Ends the call with a 503: the object lives on oc->node, err says why
 * it cannot be reached. */
void thaw_owner_call_fail_there(struct thaw_owner_call *oc, const char *err);
/* Stops the forward, ends the call as cancelled, frees oc. */
void thaw_owner_call_drop(struct thaw_owner_call *oc);
/* Frees oc's shared parts, then the kind's. */
void thaw_owner_call_free(struct thaw_owner_call *oc);

#endif
