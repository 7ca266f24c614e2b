/* thaw serve's fleet: the table of every worker deployed into the state
 * directory, each a struct thaw_hosted found by name or by route, and
 * each one's memory. A hosted worker leaves the table one way
 * (hosted_remove: into the graveyard, its worker closed) and is freed in
 * one place (hosted_maybe_free), once nothing holds it: what runs on it
 * (operations, fleet-op.c; config loads, fleet-start.c) is elsewhere. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/tail.h"
#include "serve/fleet-internal.h"
#include "server/server.h"

static unsigned bucket_of(const char *name)
{
    unsigned h = 2166136261u;

    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 16777619u;
    return h % THAW_FLEET_BUCKETS;
}

struct thaw_hosted *thaw_fleet_find(struct thaw_fleet *f, const char *name)
{
    struct thaw_hosted *h;

    for (h = f->buckets[bucket_of(name)]; h; h = h->next)
        if (strcmp(h->name, name) == 0)
            return h;
    return NULL;
}

struct thaw_hosted *thaw__fleet_hosted_new(struct thaw_fleet *f, const char *name)
{
    struct thaw_hosted *h = calloc(1, sizeof(*h));
    unsigned b = bucket_of(name);

    if (!h)
        return NULL;
    snprintf(h->name, sizeof(h->name), "%s", name);
    h->fleet = f;
    h->next = f->buckets[b];
    f->buckets[b] = h;
    h->next_all = f->all;
    f->all = h;
    f->n++;
    return h;
}

static void graveyard_unlink(struct thaw_fleet *f, struct thaw_hosted *h)
{
    struct thaw_hosted **pp;

    for (pp = &f->graveyard; *pp; pp = &(*pp)->next_all)
        if (*pp == h) {
            *pp = h->next_all;
            break;
        }
}

/* The one place a hosted worker's memory goes: deleted, its worker closed
 * (pool: processes gone, pidfds and timers closed), no load pending. */
void thaw__fleet_hosted_maybe_free(struct thaw_hosted *h)
{
    if (!h->removed || h->worker_closing || h->loads)
        return;
    graveyard_unlink(h->fleet, h);
    free(h);
}

static void on_worker_closed(struct thaw_worker *w)
{
    struct thaw_hosted *h = w->data;

    h->worker_closing = 0;
    thaw__fleet_hosted_maybe_free(h);
}

/* Out of the tables, into the graveyard; its worker is closed (requests
 * fail, processes killed) and its memory goes once that finished. */
void thaw__fleet_hosted_remove(struct thaw_fleet *f, struct thaw_hosted *h)
{
    struct thaw_hosted **pp;

    if (h->removed)
        return;
    h->removed = 1;
    /* first, so that the cron timer's uv_close (below) completes before
     * the worker's handles do (libuv runs close callbacks newest first) */
    if (h->started) {
        h->worker_closing = 1;
        thaw_worker_close(&h->w, on_worker_closed);
    }
    if (h->cron_on) {
        thaw_cron_sched_stop(&h->cron);
        h->cron_on = 0;
    }
    while (h->tails) { /* their streams end with the worker */
        struct thaw_api_req *r = h->tails;
        h->tails = r->next_sub;
        f->n_tails--;
        thaw_cluster_tail_watch(h->name, -1);
        thaw_api_stream_end(r);
    }
    for (pp = &f->buckets[bucket_of(h->name)]; *pp; pp = &(*pp)->next)
        if (*pp == h) {
            *pp = h->next;
            break;
        }
    for (pp = &f->all; *pp; pp = &(*pp)->next_all)
        if (*pp == h) {
            *pp = h->next_all;
            break;
        }
    thaw_router_remove(&f->router, h);
    h->live = 0;
    h->next_all = f->graveyard;
    f->graveyard = h;
    f->n--;
    thaw__fleet_hosted_maybe_free(h);
}

struct thaw_worker *thaw_fleet_route(struct thaw_server *s, const char *host,
                                     const char *target, size_t n)
{
    struct thaw_fleet *f = s->route_data;
    struct thaw_hosted *h = NULL;
    char hn[256], path[16], name[64];

    /* NAME.DOMAIN first: no route can take a worker's own host */
    thaw_router_split(host, target, n, hn, sizeof(hn), path, sizeof(path));
    if (thaw_router_host_name(hn, f->domain, name, sizeof(name)))
        h = thaw_fleet_find(f, name);
    if (!h || !h->live)
        h = thaw_router_match(&f->router, host, target, n);
    return h && h->live ? &h->w : NULL;
}

int thaw_fleet_busy(struct thaw_hosted *h)
{
    return h->op || h->loads || h->removed || (h->started && h->w.building);
}

int thaw_fleet_alive(struct thaw_fleet *f)
{
    struct thaw_hosted *lists[2] = {f->all, f->graveyard}, *h;
    int n = 0, i;

    for (i = 0; i < 2; i++)
        for (h = lists[i]; h; h = h->next_all)
            if (h->started)
                n += thaw_worker_alive(&h->w);
    return n;
}

void thaw_fleet_signal(struct thaw_fleet *f, int sig)
{
    struct thaw_hosted *lists[2] = {f->all, f->graveyard}, *h;
    int i;

    for (i = 0; i < 2; i++)
        for (h = lists[i]; h; h = h->next_all)
            if (h->started)
                thaw_worker_terminate(&h->w, sig);
}

int thaw_fleet_pending(struct thaw_fleet *f)
{
    struct thaw_hosted *h;
    int n = 0;

    for (h = f->all; h; h = h->next_all)
        n += !h->loaded && h->version > 0;
    return n;
}
