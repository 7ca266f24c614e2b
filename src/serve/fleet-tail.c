/* thaw serve's tails: a worker's log and output lines, as NDJSON, to
 * every `tail` client of the worker (GET /v1/workers/NAME/tail) and, in
 * a cluster with Redis, to the other nodes' tails (cluster/tail.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/tail.h"
#include "serve/fleet-internal.h"

/* A tail client that does not read as fast as lines come is not allowed
 * to grow thaw's memory: past this many unsent bytes its lines are
 * dropped and counted, and it gets {"type":"dropped","count":N} once it
 * caught up. */
#define TAIL_MAX_QUEUED (1 << 20)

/* line: one JSON object ending in a newline. */
static void tail_send(struct thaw_hosted *h, const char *line, size_t n)
{
    struct thaw_api_req *r;
    char note[96];

    for (r = h->tails; r; r = r->next_sub) {
        if (thaw_api_stream_queued(r) > TAIL_MAX_QUEUED) {
            r->dropped++;
            continue;
        }
        if (r->dropped) {
            int k = snprintf(note, sizeof(note), "{\"type\":\"dropped\",\"count\":%lld}\n",
                             r->dropped);
            thaw_api_stream_write(r, note, (size_t)k);
            r->dropped = 0;
        }
        thaw_api_stream_write(r, line, n);
    }
}

void thaw__fleet_on_log(struct thaw_worker *w, const char *line, size_t n)
{
    struct thaw_hosted *h = w->data;
    char buf[1100];

    if (!h->tails && !thaw_cluster_tail_wanted(h->name))
        return;
    if (n > sizeof(buf) - 1)
        n = sizeof(buf) - 1;
    memcpy(buf, line, n);
    buf[n] = '\n';
    thaw_cluster_tail_publish(h->name, buf, n + 1); /* to the other nodes' tails */
    tail_send(h, buf, n + 1);
}

/* Worker output is not guaranteed UTF-8: other bytes become U+FFFD. */
static json_t *text_json(const char *p, size_t n)
{
    json_t *j = json_stringn(p, n);
    char *copy;
    size_t i, k = 0;

    if (j || !(copy = malloc(n * 3 + 1)))
        return j ? j : json_string("");
    for (i = 0; i < n; i++) {
        if ((unsigned char)p[i] < 0x80) {
            copy[k++] = p[i];
        } else {
            memcpy(copy + k, "\xef\xbf\xbd", 3);
            k += 3;
        }
    }
    j = json_stringn(copy, k);
    free(copy);
    return j ? j : json_string("");
}

/* A line the worker's processes wrote (pool/output.h): the worker is the
 * pipe's, never a name in the text. */
void thaw__fleet_on_output(struct thaw_worker *w, long long request, const char *msg,
                           size_t n, int truncated)
{
    struct thaw_hosted *h = w->data;
    struct timespec ts;
    struct tm tm;
    char when[32], stamp[64], *text;
    json_t *j;

    if (!h->tails && !thaw_cluster_tail_wanted(h->name))
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp, sizeof(stamp), "%s.%03ldZ", when, ts.tv_nsec / 1000000);
    j = json_pack("{s:s,s:s,s:o,s:o,s:s}", "type", "log", "worker", h->name, "request",
                  request >= 0 ? json_integer(request) : json_null(), "message",
                  text_json(msg, n), "time", stamp);
    if (j && truncated)
        json_object_set_new(j, "truncated", json_true());
    text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (text) {
        size_t len = strlen(text);
        text[len] = '\n'; /* json_dumps gave len + 1 bytes */
        thaw_cluster_tail_publish(h->name, text, len + 1);
        tail_send(h, text, len + 1);
    }
    free(text);
    json_decref(j);
}

static void tail_gone(struct thaw_api_req *r)
{
    struct thaw_hosted *h = r->pending;
    struct thaw_api_req **pp;

    for (pp = &h->tails; *pp; pp = &(*pp)->next_sub)
        if (*pp == r) {
            *pp = r->next_sub;
            h->fleet->n_tails--;
            thaw_cluster_tail_watch(h->name, -1);
            break;
        }
}

void thaw_fleet_tail_remote(void *data, const char *worker, const char *line, size_t n)
{
    struct thaw_hosted *h = thaw_fleet_find(data, worker);

    if (h && h->live && h->tails)
        tail_send(h, line, n);
}

void thaw_fleet_tail(struct thaw_fleet *f, struct thaw_hosted *h, struct thaw_api_req *r)
{
    thaw_api_stream_begin(r, "application/x-ndjson");
    r->pending = h;
    r->on_gone = tail_gone;
    r->next_sub = h->tails;
    h->tails = r;
    f->n_tails++;
    thaw_cluster_tail_watch(h->name, +1); /* the other nodes' lines too */
}
