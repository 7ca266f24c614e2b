/* Durable Object calls in a cluster (owner-do.h): route, then run here or
 * forward (owner-call.h has what D1 shares).
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
#include "cluster/internal.h"
#include "cluster/owner-call.h"
#include "cluster/owner-do.h"
#include "cluster/owner.h"
#include "cluster/relay.h"
#include "util/buf.h"

#define UNAVAILABLE "503 Service Unavailable: "
#define HEAD_HEADER "x-thaw-do-head:"
/* the error answer of an owner, before any head */
#define MAX_ERROR_BODY 65536

struct dfwd {
    struct thaw_owner_call oc; /* first: the kind's callbacks get &f->oc */
    thaw_owner_do_here_fn here;
    void *impl;
    char key[256];
    int begun;                  /* the head went to the caller */
    json_t *head;               /* from x-thaw-do-head */
    struct thaw_buf err;        /* a non-200's body */
};

void thaw_owner_do_key(const char *class_name, const char *id, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", class_name, id);
}

static void dfwd_free(struct thaw_owner_call *oc)
{
    struct dfwd *f = (struct dfwd *)oc;

    json_decref(f->head);
    thaw_buf_free(&f->err);
    free(f);
}

static void reset(struct thaw_owner_call *oc)
{
    struct dfwd *f = (struct dfwd *)oc;

    thaw_buf_free(&f->err);
    thaw_buf_init(&f->err, MAX_ERROR_BODY);
    json_decref(f->head);
    f->head = NULL;
}

static void on_done(struct thaw_curlm_xfer *x, CURLcode rc)
{
    struct thaw_owner_call *oc = thaw_owner_call_of(x);
    struct dfwd *f = (struct dfwd *)oc;
    long status = thaw_owner_call_ended(oc);
    char msg[700];

    if (f->begun) {
        snprintf(msg, sizeof(msg), "the answer from the object's owner node %s was cut "
                 "short: %s", oc->node, oc->errbuf[0] ? oc->errbuf : curl_easy_strerror(rc));
        thaw_bind_end(oc->call, rc == CURLE_OK ? NULL : msg);
    } else if (rc != CURLE_OK) {
        thaw_owner_call_forget(oc);
        thaw_bind_fail(oc->call, "Error", "Durable Object call failed: " UNAVAILABLE
                       "Durable Object %s of worker %s lives on node %s, which did not "
                       "answer at %s (%s); its storage is on that node's disk, and it is "
                       "served again once %s is back", f->key, oc->worker, oc->node,
                       oc->internal, oc->errbuf[0] ? oc->errbuf : curl_easy_strerror(rc),
                       oc->node);
    } else if (thaw_owner_call_moved(oc, status)) {
        return;
    } else {
        thaw_owner_call_refused(oc, f->err.data, f->err.len, "Durable Object call failed",
                                status);
    }
    thaw_owner_call_free(oc);
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
        curl_easy_getinfo(f->oc.x.easy, CURLINFO_RESPONSE_CODE, &status);
        if (status == 200 && json_is_object(f->head) && !f->begun) {
            f->begun = 1;
            thaw_bind_begin(f->oc.call, f->head);
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
    if (thaw_bind_congested(f->oc.call)) {
        thaw_curlm_tick_soon(&f->oc.x); /* on_tick resumes it */
        return CURL_WRITEFUNC_PAUSE;
    }
    return thaw_bind_data(f->oc.call, p, len) < 0 ? 0 : len;
}

static void on_tick(struct thaw_curlm_xfer *x)
{
    struct thaw_owner_call *oc = thaw_owner_call_of(x);

    if (oc->removing)
        thaw_owner_call_drop(oc);
    else if (thaw_bind_congested(oc->call))
        thaw_curlm_tick_soon(x);
    else
        thaw_curlm_resume(x);
}

static void gone(struct thaw_bind_call *call)
{
    thaw_bind_end(call, "cancelled");
}

/* The forward's body: a line of JSON, then the call's body. */
static int build_payload(struct thaw_owner_call *oc, char *err, size_t n)
{
    struct dfwd *f = (struct dfwd *)oc;
    json_t *line;
    char *text;
    size_t tlen;

    if (!oc->payload) {
        /* the class is the key's part before '/' */
        line = json_pack("{s:s,s:s%,s:s,s:O}", "worker", oc->worker, "class", f->key,
                         strcspn(f->key, "/"), "op", oc->call->op, "args", oc->call->args);
        text = line ? json_dumps(line, JSON_COMPACT) : NULL;
        json_decref(line);
        if (!text) {
            snprintf(err, n, "out of memory");
            return -1;
        }
        tlen = strlen(text);
        oc->payload_len = tlen + 1 + oc->call->body_len;
        if (!(oc->payload = malloc(oc->payload_len))) {
            free(text);
            snprintf(err, n, "out of memory");
            return -1;
        }
        memcpy(oc->payload, text, tlen);
        oc->payload[tlen] = '\n';
        if (oc->call->body_len)
            memcpy(oc->payload + tlen + 1, oc->call->body, oc->call->body_len);
        free(text);
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

static int relay(struct thaw_owner_call *oc)
{
    struct dfwd *f = (struct dfwd *)oc;
    struct thaw_bind_call *call = oc->call;
    char err[300];

    if (strcmp(call->op, "fetch") || !wants_websocket(call->args))
        return 0;
    call->on_cancel = NULL;
    call->data = NULL;
    if (build_payload(oc, err, sizeof(err)) ||
        thaw_relay_start(oc->o, call, oc->node, oc->internal, f->key, oc->worker,
                         oc->payload, oc->payload_len, err, sizeof(err)))
        thaw_owner_call_fail_there(oc, err);
    return 1;
}

static void here(struct thaw_owner_call *oc, const struct thaw_owner_answer *a)
{
    struct dfwd *f = (struct dfwd *)oc;

    f->here(f->impl, oc->call);
}

static const struct thaw_owner_call_kind do_kind = {
    .table = "do",
    .path = THAW_INTERNAL_DO_PATH,
    .timeout_ms = 0, /* no time limit of its own: the owner applies the worker's */
    .unavailable = "Durable Object call failed: " UNAVAILABLE,
    .name_prefix = "Durable Object ",
    .name_suffix = "",
    .here = here,
    .elsewhere = relay,
    .payload = build_payload,
    .reset = reset,
    .on_header = on_header,
    .on_body = on_body,
    .done = on_done,
    .tick = on_tick,
    .gone = gone,
    .free = dfwd_free,
};

void thaw_owner_do_call(struct thaw_owners *o, const char *worker, const char *class_name,
                        struct thaw_bind_call *call, thaw_owner_do_here_fn here, void *impl)
{
    const char *id = json_string_value(json_object_get(call->args, "id"));
    struct dfwd *f = calloc(1, sizeof(*f));

    if (!f || thaw_owner_call_init(&f->oc, &do_kind, o, call, worker, f->key)) {
        free(f);
        thaw_bind_fail(call, "Error", "out of memory");
        return;
    }
    f->here = here;
    f->impl = impl;
    thaw_owner_do_key(class_name, id ? id : "", f->key, sizeof(f->key));
    thaw_buf_init(&f->err, MAX_ERROR_BODY);
    thaw_owner_call_route(&f->oc);
}
