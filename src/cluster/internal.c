/* The internal port (internal.h): the owner's side of a forwarded call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind/bind.h"
#include "bind/d1-exec.h"
#include "bind/d1.h"
#include "cluster/internal.h"
#include "cluster/owner.h"
#include "serve/api.h"
#include "serve/fleet.h"
#include "util/log.h"

#define MAX_CONNS 1024

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

struct iconn {
    struct thaw_h1_conn h1;  /* first */
    int authed;
    struct thaw_buf body;
    struct icall *call;      /* in flight */
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
    if (c->parser.method != HTTP_POST || n != sizeof(THAW_INTERNAL_D1_PATH) - 1 ||
        memcmp(c->head.url.data, THAW_INTERNAL_D1_PATH, n) != 0)
        thaw_h1_error(c, 404, "the internal port has POST " THAW_INTERNAL_D1_PATH " only");
    return 0;
}

static int on_body(struct thaw_h1_conn *c, const char *at, size_t n)
{
    return thaw_buf_append(&((struct iconn *)c)->body, at, n) ? 413 : 0;
}

static int on_body_end(struct thaw_h1_conn *c)
{
    struct iconn *ic = (struct iconn *)c;

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
}

static void on_abort(struct thaw_h1_conn *c, int status)
{
    detach(c);
}

static void on_free(struct thaw_h1_conn *c)
{
    detach(c);
    thaw_buf_free(&((struct iconn *)c)->body);
}

static const struct thaw_h1_ops internal_ops = {
    .on_begin = on_begin,
    .on_header = on_header,
    .on_head = on_head,
    .on_body = on_body,
    .on_body_end = on_body_end,
    .on_abort = on_abort,
    .on_close = detach,
    .on_free = on_free,
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
