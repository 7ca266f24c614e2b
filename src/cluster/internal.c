/* The internal port (internal.h): the owner's side of a forwarded call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind/bind.h"
#include "bind/d1-exec.h"
#include "bind/d1.h"
#include "do/call.h"
#include "pool/pool.h"
#include "cluster/internal.h"
#include "cluster/internal-ws.h"
#include "cluster/owner-do.h"
#include "cluster/owner.h"
#include "serve/api.h"
#include "serve/fleet.h"
#include "util/log.h"
#include "util/outcome.h"

/* each WebSocket another node relays to an object here holds one for its
 * life (internal-ws.h); over it a new one is refused (the relaying node
 * answers 503) */
#define MAX_CONNS 16384

const char *thaw_cluster_secret(void)
{
    const char *s = getenv("THAW_CLUSTER_SECRET");

    return s ? s : "";
}

/* One forwarded call; outlives its connection when the client leaves
 * while the SQL runs (conn NULL then). */
struct icall {
    struct iconn *conn;
    struct thaw_internal *in;
    json_t *req;            /* {worker, id, op, args} */
    struct thaw_d1_ctl ctl;
    struct thaw_buf out;
    int rc;
    char err[4096];
};

/* A forwarded Durable Object call: an exchange with the object's host,
 * whose answer is streamed to the forwarding node. */
struct dcall {
    struct thaw_exchange ex;  /* first: the ops get &d->ex */
    struct iconn *conn;       /* NULL once it left */
    struct thaw_internal *in;
    json_t *req;              /* {worker, class, op, args} */
    char *body;
    size_t body_len;
    struct thaw_worker *w;    /* the object's worker, once started */
    int started;              /* handed to the pool (else: being routed) */
    int begun;
};

struct iconn {
    struct thaw_h1_conn h1;  /* first */
    int authed;
    int path;                /* 1: /v1/d1, 2: /v1/do */
    struct thaw_buf body;
    struct icall *call;      /* in flight */
    struct dcall *dcall;
    struct thaw_iws *iws;    /* upgraded: a forwarded object's WebSocket */
};

static void reply_error(struct thaw_h1_conn *c, int status, const char *cls, const char *msg)
{
    json_t *j = json_pack("{s:s,s:s}", "class", cls, "error", msg);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

    if (text)
        thaw_h1_reply(c, status, "application/json", NULL, text, strlen(text));
    else
        thaw_h1_error(c, 500, "out of memory");
    free(text);
    json_decref(j);
}

static void icall_free(struct icall *k)
{
    if (k->conn)
        k->conn->call = NULL;
    json_decref(k->req);
    thaw_buf_free(&k->out);
    free(k);
}

/* ---- running a D1 call ------------------------------------------------ */

static void on_work(sqlite3 *db, void *arg)
{
    struct icall *k = arg;

    k->rc = thaw_d1_work(db, &k->ctl, json_string_value(json_object_get(k->req, "op")),
                         json_object_get(k->req, "args"), &k->out, k->err, sizeof(k->err));
}

static void on_done(void *arg)
{
    struct icall *k = arg;

    if (k->conn) {
        if (k->rc < 0)
            reply_error(&k->conn->h1, 422, "Error", k->err);
        else
            thaw_h1_reply(&k->conn->h1, 200, "application/json", NULL, k->out.data,
                          k->out.len);
    }
    icall_free(k);
}

static void on_routed(void *data, const struct thaw_owner_answer *a)
{
    struct icall *k = data;
    const char *id = json_string_value(json_object_get(k->req, "id"));
    const char *worker = json_string_value(json_object_get(k->req, "worker"));
    char path[4096], msg[1200];
    struct thaw_hosted *h;

    if (!k->conn) {
        icall_free(k);
        return;
    }
    if (a->where == THAW_OWNER_THERE) {
        /* the forwarder's view is stale, or this node's was */
        snprintf(msg, sizeof(msg), "D1_ERROR: node %s is not the owner of D1 database "
                 "\"%s\": the control store says %s (epoch %lld)",
                 k->in->owners->node, id, a->node, a->epoch);
        reply_error(&k->conn->h1, 409, "Error", msg);
        icall_free(k);
        return;
    }
    if (a->where == THAW_OWNER_NONE) {
        snprintf(msg, sizeof(msg), "D1_ERROR: 503 Service Unavailable: %s", a->why);
        reply_error(&k->conn->h1, 503, "Error", msg);
        icall_free(k);
        return;
    }
    /* the worker's own data directory, as its binding names the file */
    h = thaw_fleet_find(k->in->fleet, worker);
    if (!h || !h->w.state_dir) {
        snprintf(msg, sizeof(msg), "D1_ERROR: 503 Service Unavailable: worker %s is not "
                 "deployed on its D1 database's owner node %s yet: retry", worker,
                 k->in->owners->node);
        reply_error(&k->conn->h1, 503, "Error", msg);
        icall_free(k);
        return;
    }
    thaw_d1_file(h->w.state_dir, id, strlen(id), path, sizeof(path));
    k->ctl.lease_until_ms = (double)a->lease_until;
    if (thaw_d1_run(k->in->loop, worker, path, on_work, on_done, k, msg, sizeof(msg)) < 0) {
        char full[1400];
        snprintf(full, sizeof(full), "D1_ERROR: the owner node cannot open the database: %s",
                 msg);
        reply_error(&k->conn->h1, 500, "Error", full);
        icall_free(k);
    }
}

static void handle_d1(struct iconn *ic)
{
    struct thaw_internal *in = ic->h1.srv->data;
    json_t *req = json_loadb(ic->body.data ? ic->body.data : "", ic->body.len, 0, NULL);
    const char *worker = json_string_value(json_object_get(req, "worker"));
    const char *id = json_string_value(json_object_get(req, "id"));
    const char *op = json_string_value(json_object_get(req, "op"));
    json_t *args = json_object_get(req, "args");
    const char *cls;
    char why[600];
    struct icall *k;

    if (!worker || !id || !*id || !op || !args) {
        reply_error(&ic->h1, 400, "Error", "D1_ERROR: a forwarded call is a JSON object "
                    "{worker, id, op, args}");
        json_decref(req);
        return;
    }
    if (thaw_d1_check(op, args, &cls, why, sizeof(why))) {
        reply_error(&ic->h1, 422, cls, why);
        json_decref(req);
        return;
    }
    if (!(k = calloc(1, sizeof(*k)))) {
        reply_error(&ic->h1, 500, "Error", "D1_ERROR: out of memory");
        json_decref(req);
        return;
    }
    k->conn = ic;
    k->in = in;
    k->req = req;
    thaw_buf_init(&k->out, THAW_D1_MAX_RESULT);
    ic->call = k;
    /* fencing: served only under this node's own lease, whatever the
     * forwarder believed */
    thaw_owner_route(in->owners, "d1", worker, id, on_routed, k);
}

/* ---- running a Durable Object call ------------------------------------- */

static void dcall_free(struct dcall *d)
{
    thaw_exchange_release(&d->ex); /* the host's call is cancelled if it runs */
    if (d->conn)
        d->conn->dcall = NULL;
    json_decref(d->req);
    free(d->body);
    free(d);
}

/* The connection, let go of before it is answered: an answer that closes
 * it (detach) must not free d a second time. */
static struct iconn *take(struct dcall *d)
{
    struct iconn *ic = d->conn;

    if (ic)
        ic->dcall = NULL;
    d->conn = NULL;
    return ic;
}

static void d_head(struct thaw_exchange *ex, int status, const char *reason,
                   const char **names, const char **values, int n)
{
    struct dcall *d = (struct dcall *)ex;
    json_t *headers = json_array(), *head;
    char *text;
    int i;

    const char *sid = NULL;

    if (!d->conn)
        return;
    for (i = 0; i < n; i++) {
        json_array_append_new(headers, json_pack("[s,s]", names[i], values[i]));
        if (!strcasecmp(names[i], "x-thaw-ws"))
            sid = values[i];
    }
    head = json_pack("{s:i,s:s,s:o}", "status", status, "statusText", reason ? reason : "",
                     "headers", headers);
    text = head ? json_dumps(head, JSON_COMPACT) : NULL; /* one line: escapes \r \n */
    json_decref(head);
    if (status == 101 && sid && text && d->w) {
        /* the object's WebSocket: this connection is its client's from
         * now on (internal-ws.h); the call itself is over */
        struct iconn *ic = take(d);
        if (!(ic->iws = thaw_iws_start(&ic->h1, d->w, sid, text)))
            reply_error(&ic->h1, 500, "Error", "Durable Object call failed: the object's "
                        "WebSocket is gone or out of memory");
        free(text);
        return;
    }
    d->begun = 1;
    thaw_h1_status(&d->conn->h1, 200, NULL);
    thaw_h1_printf(&d->conn->h1, "x-thaw-do-head: %s\r\n", text ? text : "{}");
    thaw_h1_head_end(&d->conn->h1, THAW_H1_OPEN);
    free(text);
}

static void d_body(struct thaw_exchange *ex, const char *p, size_t n)
{
    struct dcall *d = (struct dcall *)ex;

    if (d->conn && d->begun)
        thaw_h1_body(&d->conn->h1, p, n);
}

static void d_end(struct thaw_exchange *ex)
{
    struct dcall *d = (struct dcall *)ex;
    struct iconn *ic = take(d);

    if (ic)
        thaw_h1_done(&ic->h1);
    dcall_free(d);
}

static void d_fail(struct thaw_exchange *ex, int status, const char *msg)
{
    struct dcall *d = (struct dcall *)ex;
    struct iconn *ic = take(d);
    char text[600];

    thaw_fail_text(text, sizeof(text), msg, "the object's instance failed");
    if (ic && d->begun) {
        thaw_h1_close(&ic->h1); /* cut: the forwarding node ends the call with an error */
    } else if (ic) {
        char full[700];
        snprintf(full, sizeof(full), "Durable Object call%s: %s",
                 status == 504 ? "" : " failed", text);
        reply_error(&ic->h1, status == 504 ? 504 : 502,
                    status == 504 ? "TimeoutError" : "Error", full);
    }
    dcall_free(d);
}

static const struct thaw_exchange_ops do_ops = {
    .on_resp_head = d_head,
    .on_resp_body = d_body,
    .on_resp_end = d_end,
    .on_fail = d_fail,
};

static void on_do_routed(void *data, const struct thaw_owner_answer *a)
{
    struct dcall *d = data;
    const char *worker = json_string_value(json_object_get(d->req, "worker"));
    const char *cls = json_string_value(json_object_get(d->req, "class"));
    json_t *args = json_object_get(d->req, "args");
    char msg[1200], key[256];
    struct thaw_hosted *h;
    struct iconn *ic = d->conn;

    thaw_owner_do_key(cls, json_string_value(json_object_get(args, "id")), key, sizeof(key));
    if (!ic) {
        dcall_free(d);
        return;
    }
    h = thaw_fleet_find(d->in->fleet, worker);
    if (a->where != THAW_OWNER_HERE || !h || !h->live || !h->started)
        take(d); /* answered below */
    if (a->where == THAW_OWNER_THERE) {
        snprintf(msg, sizeof(msg), "Durable Object call failed: node %s is not the owner of "
                 "Durable Object %s of worker %s: the control store says %s (epoch %lld)",
                 d->in->owners->node, key, worker,
                 a->node, a->epoch);
        reply_error(&ic->h1, 409, "Error", msg);
    } else if (a->where == THAW_OWNER_NONE) {
        snprintf(msg, sizeof(msg), "Durable Object call failed: 503 Service Unavailable: %s",
                 a->why);
        reply_error(&ic->h1, 503, "Error", msg);
    } else if (!h || !h->live || !h->started) {
        snprintf(msg, sizeof(msg), "Durable Object call failed: 503 Service Unavailable: "
                 "worker %s is not deployed on node %s, the owner of its Durable Object %s, "
                 "yet: retry", worker, d->in->owners->node,
                 key);
        reply_error(&ic->h1, 503, "Error", msg);
    } else {
        /* the exchange's ops answer (maybe before this returns) */
        d->started = 1;
        d->w = &h->w;
        if (thaw_do_start(&h->w, &d->ex, cls, json_string_value(json_object_get(d->req, "op")),
                          args, d->body, d->body_len) == 0)
            return;
        d->started = 0;
        take(d);
        reply_error(&ic->h1, 422, "TypeError", "Durable Object call: the call's headers do "
                    "not fit in a frame");
    }
    dcall_free(d);
}

static void handle_do(struct iconn *ic)
{
    struct thaw_internal *in = ic->h1.srv->data;
    const char *p = ic->body.data ? ic->body.data : "";
    const char *nl = memchr(p, '\n', ic->body.len);
    json_t *req = nl ? json_loadb(p, (size_t)(nl - p), 0, NULL) : NULL;
    const char *worker = json_string_value(json_object_get(req, "worker"));
    const char *cls = json_string_value(json_object_get(req, "class"));
    const char *op = json_string_value(json_object_get(req, "op"));
    json_t *args = json_object_get(req, "args");
    const char *id = json_string_value(json_object_get(args, "id"));
    const char *method = json_string_value(json_object_get(args, "method"));
    struct dcall *d;
    char key[256];

    if (!worker || !cls || !*cls || !op || (strcmp(op, "fetch") && strcmp(op, "rpc")) ||
        !thaw__do_hex64(id) || !method || !*method ||
        (!strcmp(op, "fetch") && !json_is_string(json_object_get(args, "url")))) {
        reply_error(&ic->h1, 400, "TypeError", "Durable Object call: a forwarded call is a "
                    "line of JSON {worker, class, op: fetch|rpc, args: {id: 64 hex, method, "
                    "url}}, then its body");
        json_decref(req);
        return;
    }
    if (!(d = calloc(1, sizeof(*d)))) {
        reply_error(&ic->h1, 500, "Error", "out of memory");
        json_decref(req);
        return;
    }
    thaw_exchange_init(&d->ex, &do_ops, d);
    d->conn = ic;
    d->in = in;
    d->req = req;
    d->body_len = ic->body.len - (size_t)(nl + 1 - p);
    if (d->body_len && !(d->body = malloc(d->body_len))) {
        d->conn = NULL;
        dcall_free(d);
        reply_error(&ic->h1, 500, "Error", "out of memory");
        return;
    }
    if (d->body_len)
        memcpy(d->body, nl + 1, d->body_len);
    ic->dcall = d;
    thaw_owner_do_key(cls, id, key, sizeof(key));
    /* fencing: run only under this node's own lease */
    thaw_owner_route(in->owners, "do", worker, key, on_do_routed, d);
}

/* ---- the port --------------------------------------------------------- */

static void on_begin(struct thaw_h1_conn *c)
{
    struct iconn *ic = (struct iconn *)c;

    ic->authed = 0;
    thaw_buf_free(&ic->body);
    thaw_buf_init(&ic->body, (size_t)thaw_h1_max_body(c->srv));
}

static int on_header(struct thaw_h1_conn *c, const char *name, size_t nlen,
                     const char *value, size_t vlen)
{
    struct iconn *ic = (struct iconn *)c;
    struct thaw_internal *in = c->srv->data;
    char got[512];

    if (nlen != 13 || memcmp(name, "authorization", 13) != 0)
        return 0;
    if (vlen < 7 || vlen - 7 >= sizeof(got) || strncasecmp(value, "Bearer ", 7) != 0)
        return 0;
    snprintf(got, sizeof(got), "%.*s", (int)(vlen - 7), value + 7);
    ic->authed = in->secret[0] && thaw_api_token_equal(got, in->secret);
    return 0;
}

static int on_head(struct thaw_h1_conn *c)
{
    struct iconn *ic = (struct iconn *)c;
    size_t n = c->head.url.len;

    if (!ic->authed) {
        thaw_log("internal port: 401 from %s: %s", c->link.peer_ip,
                 "no or a wrong cluster secret");
        c->keep_alive = 0; /* a stranger's body is not read */
        thaw_h1_error(c, 401, "this is a thaw cluster's internal port: it answers only "
                      "the cluster's nodes (Authorization: Bearer $THAW_CLUSTER_SECRET)");
        return 0;
    }
#define IS(path) (n == sizeof(path) - 1 && memcmp(c->head.url.data, path, n) == 0)
    ic->path = IS(THAW_INTERNAL_D1_PATH) ? 1 : IS(THAW_INTERNAL_DO_PATH) ? 2 : 0;
#undef IS
    if (c->parser.method != HTTP_POST || !ic->path)
        thaw_h1_error(c, 404, "the internal port has POST " THAW_INTERNAL_D1_PATH " and "
                      THAW_INTERNAL_DO_PATH " only");
    return 0;
}

static int on_body(struct thaw_h1_conn *c, const char *at, size_t n)
{
    return thaw_buf_append(&((struct iconn *)c)->body, at, n) ? 413 : 0;
}

static int on_body_end(struct thaw_h1_conn *c)
{
    struct iconn *ic = (struct iconn *)c;

    if (ic->path == 2)
        handle_do(ic);
    else
        handle_d1(ic);
    thaw_buf_free(&ic->body);
    return 0;
}

static void detach(struct thaw_h1_conn *c)
{
    struct iconn *ic = (struct iconn *)c;

    if (ic->call) {
        __atomic_store_n(&ic->call->ctl.cancelled, 1, __ATOMIC_RELAXED);
        ic->call->conn = NULL;
        ic->call = NULL;
    }
    if (ic->dcall) {
        struct dcall *d = ic->dcall;
        ic->dcall = NULL;
        d->conn = NULL;
        /* routing: freed when the route answers; else the host's call is
         * cancelled now */
        if (d->started)
            dcall_free(d);
    }
}

static void on_abort(struct thaw_h1_conn *c, int status)
{
    detach(c);
    thaw_iws_detach(((struct iconn *)c)->iws);
}

static void on_close(struct thaw_h1_conn *c)
{
    detach(c);
    thaw_iws_detach(((struct iconn *)c)->iws);
}

static int body_full(struct thaw_h1_conn *c)
{
    return thaw_iws_full(((struct iconn *)c)->iws);
}

static void on_full(struct thaw_h1_conn *c)
{
    thaw_iws_hold(((struct iconn *)c)->iws, 1);
}

static void on_drain(struct thaw_h1_conn *c)
{
    thaw_iws_hold(((struct iconn *)c)->iws, 0);
}

/* An upgraded connection's bytes: a forwarded WebSocket's frames. */
static void on_raw(struct thaw_h1_conn *c, const char *p, size_t n)
{
    struct iconn *ic = (struct iconn *)c;

    if (ic->iws)
        thaw_iws_raw(ic->iws, p, n);
}

static void on_free(struct thaw_h1_conn *c)
{
    detach(c);
    thaw_iws_free(((struct iconn *)c)->iws);
    ((struct iconn *)c)->iws = NULL;
    thaw_buf_free(&((struct iconn *)c)->body);
}

static const struct thaw_h1_ops internal_ops = {
    .on_begin = on_begin,
    .on_header = on_header,
    .on_head = on_head,
    .on_body = on_body,
    .on_body_end = on_body_end,
    .on_abort = on_abort,
    .body_full = body_full,
    .on_full = on_full,
    .on_drain = on_drain,
    .on_close = on_close,
    .on_free = on_free,
    .on_raw = on_raw,
};

int thaw_internal_listen(struct thaw_internal *in, uv_loop_t *loop, const char *addr,
                         struct thaw_fleet *fleet, struct thaw_owners *o,
                         const struct thaw_limits *limits, char *err, size_t errlen)
{
    int rc;

    snprintf(in->secret, sizeof(in->secret), "%s", thaw_cluster_secret());
    if (!in->secret[0]) {
        snprintf(err, errlen, "[cluster] internal = \"%s\" needs the cluster's shared "
                 "secret in the environment: set THAW_CLUSTER_SECRET (the same on every "
                 "node)", addr);
        return -2;
    }
    in->loop = loop;
    in->owners = o;
    in->fleet = fleet;
    in->srv = (struct thaw_h1_server){
        .limits = limits, .max_body = THAW_BIND_MAX_BODY, .max_conns = MAX_CONNS,
        .ops = &internal_ops, .conn_size = sizeof(struct iconn), .data = in,
    };
    if ((rc = thaw_h1_server_listen_addr(&in->srv, loop, addr))) {
        snprintf(err, errlen, "cannot listen on [cluster] internal = \"%s\": %s", addr,
                 uv_strerror(rc));
        return -1;
    }
    thaw_log("cluster: internal port on %s", addr);
    return 0;
}
