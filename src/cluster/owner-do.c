/* Durable Object calls in a cluster (owner-do.h): route, then run here or
 * forward.
 *
 * The forward is one POST to the owner's internal port: a line of JSON
 * {worker, class, op, args}, then the call's body (the request's, or the
 * RPC arguments). The owner answers 200 with the object's response head
 * as JSON in x-thaw-do-head and its body streamed, which this node
 * passes on as the call's streamed reply; or an error {"class", "error"}
 * before any head. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bind/bind.h"
#include "bind/curlmulti.h"
#include "cluster/internal.h"
#include "cluster/owner-do.h"
#include "cluster/owner-forward.h"
#include "cluster/owner.h"
#include "cluster/relay.h"
#include "util/buf.h"

#define UNAVAILABLE "503 Service Unavailable: "
#define HEAD_HEADER "x-thaw-do-head:"
/* the error answer of an owner, before any head */
#define MAX_ERROR_BODY 65536

struct dfwd {
    struct thaw_owners *o;
    struct thaw_bind_call *call;
    thaw_owner_do_here_fn here;
    void *impl;
    char *worker;
    char key[256];
    int routing, cancelled, tries;
    int begun;                  /* the head went to the caller */
    int removing;               /* cancelled inside a curl callback */
    struct thaw_curlm_xfer x;
    struct curl_slist *headers;
    char *payload;
    size_t payload_len;
    json_t *head;               /* from x-thaw-do-head */
    struct thaw_buf err;        /* a non-200's body */
    char node[THAW_CLUSTER_MAX_NODE + 1];
    char internal[128];
    char errbuf[CURL_ERROR_SIZE];
};

void thaw_owner_do_key(const char *class_name, const char *id, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", class_name, id);
}

static void dfwd_free(struct dfwd *f)
{
    if (f->x.easy)
        curl_easy_cleanup(f->x.easy);
    curl_slist_free_all(f->headers);
    free(f->payload);
    json_decref(f->head);
    thaw_buf_free(&f->err);
    free(f->worker);
    free(f);
}

static void on_routed(void *data, const struct thaw_owner_answer *a);
static void on_cancel(struct thaw_bind_call *call);

static void on_done(struct thaw_curlm_xfer *x, CURLcode rc)
{
    struct dfwd *f = (struct dfwd *)((char *)x - offsetof(struct dfwd, x));
    long status = 0;
    char msg[700];

    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(x->easy);
    x->easy = NULL;
    f->call->on_cancel = NULL;
    if (f->begun) {
        snprintf(msg, sizeof(msg), "the answer from the object's owner node %s was cut "
                 "short: %s", f->node, f->errbuf[0] ? f->errbuf : curl_easy_strerror(rc));
        thaw_bind_end(f->call, rc == CURLE_OK ? NULL : msg);
    } else if (rc != CURLE_OK) {
        thaw_owner_forget(f->o, "do", f->worker, f->key);
        thaw_bind_fail(f->call, "Error", "Durable Object call failed: " UNAVAILABLE
                       "Durable Object %s of worker %s lives on node %s, which did not "
                       "answer at %s (%s); its storage is on that node's disk, and it is "
                       "served again once %s is back", f->key, f->worker, f->node,
                       f->internal, f->errbuf[0] ? f->errbuf : curl_easy_strerror(rc),
                       f->node);
    } else if (status == 409 && ++f->tries < 2) {
        /* the row moved since this node read it: once more, from the store */
        thaw_owner_forget(f->o, "do", f->worker, f->key);
        thaw_buf_free(&f->err);
        thaw_buf_init(&f->err, MAX_ERROR_BODY);
        json_decref(f->head);
        f->head = NULL;
        f->routing = 1;
        f->call->on_cancel = on_cancel;
        thaw_owner_route(f->o, "do", f->worker, f->key, on_routed, f);
        return;
    } else {
        if (status == 409 || status >= 500)
            thaw_owner_forget(f->o, "do", f->worker, f->key);
        thaw_owner_fail_answer(f->call, f->err.data, f->err.len, "Durable Object call failed",
                               f->node, f->internal, status);
    }
    dfwd_free(f);
}

static size_t on_header(char *p, size_t size, size_t n, void *data)
{
    struct dfwd *f = data;
    size_t len = size * n, k = sizeof(HEAD_HEADER) - 1;
    long status = 0;

    if (len >= k && strncasecmp(p, HEAD_HEADER, k) == 0) {
        json_decref(f->head);
        f->head = json_loadb(p + k, len - k, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, NULL);
    } else if (len <= 2 && (p[0] == '\r' || p[0] == '\n')) {
        /* the head is whole: the object's status and headers go now, so
         * an empty or slow body does not hold them */
        curl_easy_getinfo(f->x.easy, CURLINFO_RESPONSE_CODE, &status);
        if (status == 200 && json_is_object(f->head) && !f->begun) {
            f->begun = 1;
            thaw_bind_begin(f->call, f->head);
            f->head = NULL;
        }
    }
    return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *data)
{
    struct dfwd *f = data;
    size_t len = size * n;

    if (!f->begun)
        return thaw_buf_append(&f->err, p, len) ? 0 : len;
    if (thaw_bind_congested(f->call)) {
        thaw_curlm_tick_soon(&f->x); /* on_tick resumes it */
        return CURL_WRITEFUNC_PAUSE;
    }
    return thaw_bind_data(f->call, p, len) < 0 ? 0 : len;
}

static void on_tick(struct thaw_curlm_xfer *x)
{
    struct dfwd *f = (struct dfwd *)((char *)x - offsetof(struct dfwd, x));

    if (f->removing) {
        thaw_curlm_remove(x);
        thaw_bind_end(f->call, "cancelled");
        dfwd_free(f);
    } else if (thaw_bind_congested(f->call)) {
        thaw_curlm_tick_soon(x);
    } else {
        thaw_curlm_resume(x);
    }
}

static void on_cancel(struct thaw_bind_call *call)
{
    struct dfwd *f = call->data;

    if (f->routing) {
        f->cancelled = 1; /* ended when the route's answer comes */
        return;
    }
    if (thaw_curlm_in_callback(thaw_owner_multi(f->o->loop))) {
        f->removing = 1;
        thaw_curlm_tick_soon(&f->x);
        return;
    }
    thaw_curlm_remove(&f->x);
    thaw_bind_end(call, "cancelled");
    dfwd_free(f);
}

/* The forward's body: a line of JSON, then the call's body. */
static int build_payload(struct dfwd *f, char *err, size_t n)
{
    json_t *line;
    char *text;
    size_t tlen;

    if (!f->payload) {
        /* the class is the key's part before '/' */
        line = json_pack("{s:s,s:s%,s:s,s:O}", "worker", f->worker, "class", f->key,
                         strcspn(f->key, "/"), "op", f->call->op, "args", f->call->args);
        text = line ? json_dumps(line, JSON_COMPACT) : NULL;
        json_decref(line);
        if (!text) {
            snprintf(err, n, "out of memory");
            return -1;
        }
        tlen = strlen(text);
        f->payload_len = tlen + 1 + f->call->body_len;
        if (!(f->payload = malloc(f->payload_len))) {
            free(text);
            snprintf(err, n, "out of memory");
            return -1;
        }
        memcpy(f->payload, text, tlen);
        f->payload[tlen] = '\n';
        if (f->call->body_len)
            memcpy(f->payload + tlen + 1, f->call->body, f->call->body_len);
        free(text);
    }
    return 0;
}

static int forward(struct dfwd *f, char *err, size_t n)
{
    struct thaw_curlm *m = thaw_owner_multi(f->o->loop);
    CURL *e;

    if (!f->headers && !(f->headers = thaw_owner_headers(f->node, err, n)))
        return -1;
    if (build_payload(f, err, n))
        return -1;
    /* no time limit of its own: the owner applies the worker's */
    if (!m || !(e = thaw_owner_easy(f->internal, THAW_INTERNAL_DO_PATH, f->headers,
                                    f->payload, f->payload_len, f->errbuf, 0))) {
        snprintf(err, n, "out of memory");
        return -1;
    }
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, f);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
    f->x.easy = e;
    f->x.done = on_done;
    f->x.tick = on_tick;
    if (thaw_curlm_add(m, &f->x) < 0) {
        curl_easy_cleanup(e);
        f->x.easy = NULL;
        snprintf(err, n, "cannot start the forward");
        return -1;
    }
    return 0;
}

/* A WebSocket upgrade: relayed to the owner on a connection of its own
 * (relay.h), not through the transfers' cache. */
static int wants_websocket(json_t *args)
{
    json_t *h;
    size_t i;

    json_array_foreach(json_object_get(args, "headers"), i, h) {
        const char *n = json_string_value(json_array_get(h, 0));
        const char *v = json_string_value(json_array_get(h, 1));
        if (n && v && !strcasecmp(n, "upgrade") && strcasestr(v, "websocket"))
            return 1;
    }
    return 0;
}

static void on_routed(void *data, const struct thaw_owner_answer *a)
{
    struct dfwd *f = data;
    struct thaw_bind_call *call = f->call;
    char err[300];

    f->routing = 0;
    if (f->cancelled) {
        thaw_bind_end(call, "cancelled");
        dfwd_free(f);
        return;
    }
    switch (a->where) {
    case THAW_OWNER_HERE:
        call->on_cancel = NULL;
        call->data = NULL;
        f->here(f->impl, call);
        dfwd_free(f);
        return;
    case THAW_OWNER_NONE:
        thaw_bind_fail(call, "Error", "Durable Object call failed: " UNAVAILABLE "%s", a->why);
        dfwd_free(f);
        return;
    case THAW_OWNER_THERE:
        snprintf(f->node, sizeof(f->node), "%s", a->node);
        snprintf(f->internal, sizeof(f->internal), "%s", a->internal);
        if (!strcmp(call->op, "fetch") && wants_websocket(call->args)) {
            call->on_cancel = NULL;
            call->data = NULL;
            if (build_payload(f, err, sizeof(err)) ||
                thaw_relay_start(f->o, call, f->node, f->internal, f->key, f->worker,
                                 f->payload, f->payload_len, err, sizeof(err)))
                thaw_bind_fail(call, "Error", "Durable Object call failed: " UNAVAILABLE
                               "Durable Object %s lives on node %s: %s", f->key, f->node,
                               err);
            dfwd_free(f);
            return;
        }
        if (forward(f, err, sizeof(err))) {
            thaw_bind_fail(call, "Error", "Durable Object call failed: " UNAVAILABLE
                           "Durable Object %s lives on node %s: %s", f->key, f->node, err);
            dfwd_free(f);
            return;
        }
        call->data = f;
        call->on_cancel = on_cancel;
        return;
    }
}

void thaw_owner_do_call(struct thaw_owners *o, const char *worker, const char *class_name,
                        struct thaw_bind_call *call, thaw_owner_do_here_fn here, void *impl)
{
    const char *id = json_string_value(json_object_get(call->args, "id"));
    struct dfwd *f = calloc(1, sizeof(*f));

    if (!f || !(f->worker = strdup(worker ? worker : ""))) {
        free(f);
        thaw_bind_fail(call, "Error", "out of memory");
        return;
    }
    f->o = o;
    f->call = call;
    f->here = here;
    f->impl = impl;
    thaw_owner_do_key(class_name, id ? id : "", f->key, sizeof(f->key));
    thaw_buf_init(&f->err, MAX_ERROR_BODY);
    call->data = f;
    call->on_cancel = on_cancel;
    f->routing = 1;
    thaw_owner_route(o, "do", f->worker, f->key, on_routed, f);
}
