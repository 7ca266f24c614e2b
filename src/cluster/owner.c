/* Which node serves an object that lives in one place (owner.h): the
 * store's row, asked for at most once a lease per object, and the
 * rendezvous hash that picks the owner of a new one. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/control.h"
#include "cluster/owner.h"
#include "util/log.h"

struct thaw_owners *thaw_owners_cluster;

/* the control store's membership window (control.c's LIVE_SECONDS) */
#define LIVE_SECONDS "5"

static const char *const schema[] = {
    "BEGIN",
    "SELECT pg_advisory_xact_lock(7345020)",
    "CREATE TABLE IF NOT EXISTS thaw_owners (worker text NOT NULL, kind text NOT NULL, "
    "id text NOT NULL, node text NOT NULL, epoch bigint NOT NULL, moved_at timestamptz, "
    "PRIMARY KEY (worker, kind, id))",
    "COMMIT",
};

struct waiter {
    thaw_owner_cb cb;
    void *data;
    struct waiter *next;
};

struct owner_entry {
    struct owner_entry *next;
    char *kind, *worker, *id;
    int asking;
    int known;           /* the answer below is the store's, as of `at` */
    uint64_t at;         /* uv_now() when the store was asked */
    char node[THAW_CLUSTER_MAX_NODE + 1];
    char internal[128];
    long long epoch;
    int alive;           /* the owner's heartbeat is recent */
    long long moved_ms;  /* since the row last changed hands (big: never) */
    struct waiter *waiters;
    struct waiter **wtail;
};

static uint64_t fnv(uint64_t h, const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* splitmix64's finalizer: FNV's low bits alone mix poorly */
static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int thaw_owner_pick(const char *const *nodes, int n, const char *key)
{
    uint64_t best = 0, k = fnv(14695981039346656037ULL, key, strlen(key) + 1);
    int i, at = -1;

    for (i = 0; i < n; i++) {
        uint64_t s = mix(fnv(k, nodes[i], strlen(nodes[i])));
        if (at < 0 || s > best || (s == best && strcmp(nodes[i], nodes[at]) < 0)) {
            best = s;
            at = i;
        }
    }
    return at;
}

static uint64_t entry_hash(const char *kind, const char *worker, const char *id)
{
    uint64_t h = 14695981039346656037ULL;

    h = fnv(h, kind, strlen(kind) + 1);
    h = fnv(h, worker, strlen(worker) + 1);
    return mix(fnv(h, id, strlen(id)));
}

static struct owner_entry *entry_find(struct thaw_owners *o, const char *kind,
                                      const char *worker, const char *id, int make)
{
    struct owner_entry **b = &o->buckets[entry_hash(kind, worker, id) % OWNER_BUCKETS], *e;

    for (e = *b; e; e = e->next)
        if (!strcmp(e->kind, kind) && !strcmp(e->worker, worker) && !strcmp(e->id, id))
            return e;
    if (!make || !(e = calloc(1, sizeof(*e))))
        return NULL;
    e->kind = strdup(kind);
    e->worker = strdup(worker);
    e->id = strdup(id);
    if (!e->kind || !e->worker || !e->id) {
        free(e->kind);
        free(e->worker);
        free(e->id);
        free(e);
        return NULL;
    }
    e->wtail = &e->waiters;
    e->next = *b;
    *b = e;
    return e;
}

/* ---- answers ---------------------------------------------------------- */

static void what(const struct owner_entry *e, char *out, size_t n)
{
    if (!strcmp(e->kind, "d1"))
        snprintf(out, n, "D1 database \"%s\" of worker %s", e->id, e->worker);
    else
        snprintf(out, n, "Durable Object %s of worker %s", e->id, e->worker); /* CLASS/ID */
}

/* The cached answer, or 0 when the store must be asked (first, or the
 * lease ran out). */
static int cached(struct thaw_owners *o, struct owner_entry *e, struct thaw_owner_answer *a,
                  char *why, size_t n)
{
    char obj[300];

    if (!e->known || uv_now(o->loop) - e->at >= THAW_OWNER_LEASE_MS)
        return 0;
    memset(a, 0, sizeof(*a));
    a->node = e->node;
    a->internal = e->internal;
    a->epoch = e->epoch;
    a->why = why;
    what(e, obj, sizeof(obj));
    if (!strcmp(e->node, o->node)) {
        a->where = THAW_OWNER_HERE;
        a->lease_until = e->at + THAW_OWNER_LEASE_MS;
    } else if (!e->alive) {
        a->where = THAW_OWNER_NONE;
        snprintf(why, n, "%s is unavailable: it lives on node %s, which is down (no "
                 "heartbeat in the control store for " LIVE_SECONDS " s); its data is on "
                 "that node's disk, and it is served again once %s is back", obj, e->node,
                 e->node);
    } else if (!e->internal[0]) {
        a->where = THAW_OWNER_NONE;
        snprintf(why, n, "%s lives on node %s, which has no [cluster] internal address "
                 "to forward to", obj, e->node);
    } else {
        a->where = THAW_OWNER_THERE;
    }
    return 1;
}

static void answer_all(struct owner_entry *e, const struct thaw_owner_answer *a)
{
    struct waiter *w = e->waiters, *next;

    e->waiters = NULL;
    e->wtail = &e->waiters;
    for (; w; w = next) {
        next = w->next;
        w->cb(w->data, a);
        free(w);
    }
}

static void fail_all(struct owner_entry *e, const char *fmt, const char *detail)
{
    struct thaw_owner_answer a = {.where = THAW_OWNER_NONE, .node = "", .internal = ""};
    char why[1024], obj[300];

    what(e, obj, sizeof(obj));
    snprintf(why, sizeof(why), fmt, obj, detail);
    a.why = why;
    answer_all(e, &a);
}

/* ---- asking the store ------------------------------------------------- */

struct ask {
    struct thaw_owners *o;
    struct owner_entry *e;
    uint64_t sent;
    int select_at;   /* the SELECT's statement */
};

static void on_asked(void *data, struct thaw_pg_job *job, const char *err)
{
    struct ask *k = data;
    struct owner_entry *e = k->e;
    struct thaw_owners *o = k->o;
    PGresult *r = err ? NULL : thaw_pg_result(job, k->select_at);
    struct thaw_owner_answer a;
    char why[1024], obj[300];

    e->asking = 0;
    e->known = 0;
    if (err || !r) {
        fail_all(e, "%s is unavailable: its owner cannot be looked up in the control "
                 "store (PostgreSQL): %s", err ? err : "no answer");
        free(k);
        return;
    }
    if (PQntuples(r) != 1) {
        fail_all(e, "%s is unavailable: it has no owner yet and no live node to give it "
                 "to (%s)", "the cluster's membership is not known yet: retry");
        free(k);
        return;
    }
    snprintf(e->node, sizeof(e->node), "%s", PQgetvalue(r, 0, 0));
    e->epoch = atoll(PQgetvalue(r, 0, 1));
    e->moved_ms = PQgetisnull(r, 0, 2) ? -1 : atoll(PQgetvalue(r, 0, 2));
    snprintf(e->internal, sizeof(e->internal), "%s", PQgetvalue(r, 0, 3));
    e->alive = PQgetvalue(r, 0, 4)[0] == 't';
    e->at = k->sent; /* the lease counts from the question, not the answer */
    free(k);
    what(e, obj, sizeof(obj));
    if (!strcmp(e->node, o->node) && e->moved_ms >= 0 && e->moved_ms < THAW_OWNER_LEASE_MS) {
        /* handed to this node a moment ago: the node it came from may
         * still hold a lease on it; not cached, so the next call asks */
        snprintf(why, sizeof(why), "%s moved to this node (%s, epoch %lld) %lld ms ago: it "
                 "is served here once the previous owner's lease (%d ms) ran out; retry",
                 obj, o->node, e->epoch, e->moved_ms, THAW_OWNER_LEASE_MS);
        a = (struct thaw_owner_answer){.where = THAW_OWNER_NONE, .node = e->node,
                                       .internal = e->internal, .epoch = e->epoch, .why = why};
        answer_all(e, &a);
        return;
    }
    e->known = 1;
    if (!cached(o, e, &a, why, sizeof(why))) {
        /* the answer came after the lease it would give had run out */
        e->known = 0;
        fail_all(e, "%s is unavailable: the control store (PostgreSQL) took longer than "
                 "the owner's lease (%s) to answer; retry", "1000 ms");
        return;
    }
    answer_all(e, &a);
}

static void ask(struct thaw_owners *o, struct owner_entry *e)
{
    json_t *live = thaw_control_live_nodes(o->control), *n;
    const char *names[256];
    int count = 0, at;
    size_t i;
    struct ask *k;
    struct thaw_pg_job *j;
    char key[1024];

    if (!thaw_pg_ready(&o->pg)) {
        fail_all(e, "%s is unavailable: the control store (PostgreSQL), which says which "
                 "node owns it, is unreachable: %s", o->pg.why[0] ? o->pg.why : "connecting");
        return;
    }
    if (!(k = calloc(1, sizeof(*k)))) {
        fail_all(e, "%s is unavailable: %s", "out of memory");
        return;
    }
    json_array_foreach(live, i, n) {
        const char *name = json_string_value(json_object_get(n, "name"));
        const char *internal = json_string_value(json_object_get(n, "internal"));
        /* only a node others can reach may own what they forward */
        if (name && internal && *internal && count < 256)
            names[count++] = name;
    }
    k->o = o;
    k->e = e;
    k->sent = uv_now(o->loop);
    e->asking = 1;
    j = thaw_pg_job_new(on_asked, k);
    snprintf(key, sizeof(key), "%s\n%s\n%s", e->kind, e->worker, e->id);
    if ((at = thaw_owner_pick(names, count, key)) >= 0) {
        /* two nodes racing for a new object: one INSERT wins, both read it */
        const char *v[4] = {e->worker, e->kind, e->id, names[at]};
        thaw_pg_job_add(j, "INSERT INTO thaw_owners (worker, kind, id, node, epoch) "
                        "VALUES ($1, $2, $3, $4, 1) ON CONFLICT DO NOTHING", 4, v, NULL, 0);
        k->select_at = 1;
    }
    {
        const char *v[3] = {e->worker, e->kind, e->id};
        thaw_pg_job_add(j, "SELECT o.node, o.epoch, "
                        "(extract(epoch FROM now() - o.moved_at) * 1000)::bigint, "
                        "coalesce(n.internal, ''), coalesce(n.heartbeat > now() - "
                        "interval '" LIVE_SECONDS " seconds', false) "
                        "FROM thaw_owners o LEFT JOIN thaw_nodes n ON n.name = o.node "
                        "WHERE o.worker = $1 AND o.kind = $2 AND o.id = $3", 3, v, NULL, 0);
    }
    thaw_pg_run(&o->pg, j);
}

void thaw_owner_route(struct thaw_owners *o, const char *kind, const char *worker,
                      const char *id, thaw_owner_cb cb, void *data)
{
    struct owner_entry *e = entry_find(o, kind, worker, id, 1);
    struct thaw_owner_answer a;
    struct waiter *w;
    char why[1024];

    if (!e || !(w = calloc(1, sizeof(*w)))) {
        a = (struct thaw_owner_answer){.where = THAW_OWNER_NONE, .node = "", .internal = "",
                                       .why = "out of memory"};
        cb(data, &a);
        return;
    }
    if (!e->asking && cached(o, e, &a, why, sizeof(why))) {
        free(w);
        cb(data, &a);
        return;
    }
    w->cb = cb;
    w->data = data;
    *e->wtail = w;
    e->wtail = &w->next;
    if (!e->asking)
        ask(o, e);
}

void thaw_owner_forget(struct thaw_owners *o, const char *kind, const char *worker,
                       const char *id)
{
    struct owner_entry *e = entry_find(o, kind, worker, id, 0);

    if (e)
        e->known = 0;
}

/* ---- start ------------------------------------------------------------ */

static struct thaw_pg_job *setup_job(void *data)
{
    struct thaw_pg_job *j = thaw_pg_job_new(NULL, NULL);
    size_t i;

    for (i = 0; i < sizeof(schema) / sizeof(schema[0]); i++)
        thaw_pg_job_add(j, schema[i], 0, NULL, NULL, 0);
    return j;
}

void thaw_owners_start(struct thaw_owners *o, uv_loop_t *loop,
                       const struct thaw_cluster_config *cc, struct thaw_control *c)
{
    o->loop = loop;
    o->control = c;
    snprintf(o->node, sizeof(o->node), "%s", cc->node);
    snprintf(o->pg.conninfo, sizeof(o->pg.conninfo), "%s", cc->control);
    o->pg.setup = setup_job;
    o->pg.data = o;
    thaw_pg_start(&o->pg, loop);
    thaw_owners_cluster = o;
}
