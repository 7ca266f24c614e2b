/* The cron trigger scheduler of `thaw dev` and `thaw serve` (sched.h). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron/sched.h"
#include "ipc/codec.h"
#include "util/log.h"
#include "util/outcome.h"

/* The timer never sleeps longer than this, so a wall clock that jumps
 * (NTP, a suspended laptop) is noticed within a minute. */
#define MAX_SLEEP_MS 60000

/* One scheduled event in flight: its exchange with an instance. */
struct event {
    struct thaw_outcome_ex o;  /* first: the ops get &ev->o.ex */
    struct thaw_worker *worker;
    char *cron;
    int64_t scheduled_ms;
    uint64_t start_ns;
};

void thaw__cron_route_enable(void); /* route.c */

static int64_t real_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The testing aids' clock (THAW_CRON_CLOCK_AT and _RATE): the scheduler's
 * time is anchor + (real - anchor) * rate + offset; anchor 0, rate 1
 * normally. */
static int64_t clock_anchor_ms;
static int64_t clock_rate = 1;

static int64_t now_ms(const struct thaw_cron_sched *s)
{
    int64_t real = real_ms();

    return clock_anchor_ms + (real - clock_anchor_ms) * clock_rate + s->offset_ms;
}

/* ---- the cluster's claim (sched.h) ------------------------------------ */

static thaw_cron_claim_fn claim_fn;
static char claim_node[64];

/* An event waiting for the cluster's answer; s NULL once its scheduler
 * stopped (the answer then fires nothing). */
struct thaw_cron_claim {
    struct thaw_cron_sched *s;
    char *cron;
    int64_t scheduled_ms;
    struct thaw_cron_claim *next, **prevp;
};

void thaw_cron_set_claim(thaw_cron_claim_fn fn, const char *node)
{
    claim_fn = fn;
    snprintf(claim_node, sizeof(claim_node), "%s", node ? node : "");
}

static void iso_time(int64_t ms, char *out, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- the outcome of an event ----------------------------------------- */

/* One JSON line like a request's (src/server/reqlog.c), then the event
 * is gone. status 0: the instance died during it. */
static void finish(struct event *ev, int status, const char *msg)
{
    struct thaw_worker *w = ev->worker;
    double ms = (double)(uv_hrtime() - ev->start_ns) / 1e6;
    char when[40], stamp[48];
    struct timespec ts;
    json_t *line;
    char *text;

    thaw_exchange_release(&ev->o.ex);
    clock_gettime(CLOCK_REALTIME, &ts);
    iso_time((int64_t)ts.tv_sec * 1000, when, sizeof(when));
    when[strlen(when) - 1] = '\0'; /* the Z goes after the milliseconds */
    snprintf(stamp, sizeof(stamp), "%s.%03ldZ", when, ts.tv_nsec / 1000000);
    line = json_pack("{s:s, s:s, s:s, s:s, s:I, s:i, s:f, s:s, s:i, s:i}",
                     "time", stamp, "worker", w->cfg.name ? w->cfg.name : "",
                     "event", "scheduled", "cron", ev->cron,
                     "scheduled_time", (json_int_t)ev->scheduled_ms, "status", status,
                     "duration_ms", (double)(long long)(ms * 1000) / 1000,
                     "start", ev->o.ex.inst_id ? (ev->o.ex.cold ? "cold" : "warm") : "none",
                     "instance", (int)ev->o.ex.inst_id, "request", (int)ev->o.ex.sid);
    if (line && claim_fn) /* a cluster: which node fired it */
        json_object_set_new(line, "node", json_string(claim_node));
    text = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER |
                                       JSON_REAL_PRECISION(12))
                : NULL;
    if (text) {
        thaw_log_buffered(text, strlen(text));
        if (w->on_log) /* thaw serve's tail streams */
            w->on_log(w, text, strlen(text));
    }
    free(text);
    json_decref(line);
    if (msg) {
        size_t n = strlen(msg);
        while (n && msg[n - 1] == '\n')
            n--;
        thaw_log("scheduled event for cron \"%s\" failed: %.*s", ev->cron, (int)n, msg);
    }
    free(ev->cron);
    free(ev);
}

/* The event's end (util/outcome.h); its body is not read: the instance
 * logged what went wrong, and the body only serves the /__scheduled route. */
static void on_outcome(struct thaw_outcome_ex *o, int status, const char *msg)
{
    finish((struct event *)o, status, msg);
}

/* Sends one scheduled event to the worker, like a request without body. */
static void dispatch(struct thaw_cron_sched *s, const char *cron, int64_t scheduled_ms)
{
    struct event *ev = calloc(1, sizeof(*ev));
    struct thaw_buf head;
    char when[32];
    size_t mark;
    int rc;

    if (!ev || !(ev->cron = strdup(cron))) {
        free(ev);
        thaw_log("cron \"%s\": out of memory; event skipped", cron);
        return;
    }
    ev->worker = s->worker;
    ev->scheduled_ms = scheduled_ms;
    ev->start_ns = uv_hrtime();
    thaw_exchange_init(&ev->o.ex, &thaw_outcome_ops, ev);
    ev->o.done = on_outcome;
    ev->o.fail_default = "the instance failed";
    snprintf(when, sizeof(when), "%lld", (long long)scheduled_ms);
    thaw_buf_init(&head, THAW_IPC_MAX_PAYLOAD + THAW_IPC_HEADER_SIZE);
    /* method and url mean nothing to a scheduled event; :event decides */
    rc = thaw_ipc_begin(&head, THAW_IPC_REQ_HEAD, 0, ev->o.ex.sid, &mark);
    if (!rc)
        rc = thaw_ipc_put_str(&head, "SCHEDULED");
    if (!rc)
        rc = thaw_ipc_put_str(&head, "");
    if (!rc && !(rc = thaw_ipc_put_str(&head, ":event")) &&
        !(rc = thaw_ipc_put_str(&head, "scheduled")) &&
        !(rc = thaw_ipc_put_str(&head, ":cron")) &&
        !(rc = thaw_ipc_put_str(&head, cron)) &&
        !(rc = thaw_ipc_put_str(&head, ":scheduled-time")))
        rc = thaw_ipc_put_str(&head, when);
    if (!rc)
        rc = thaw_ipc_end(&head, mark);
    /* REQ_END goes with the head, so nothing touches ev after dispatch
     * (which may finish it at once: no version built) */
    if (!rc && !(rc = thaw_ipc_begin(&head, THAW_IPC_REQ_END, 0, ev->o.ex.sid, &mark)))
        rc = thaw_ipc_end(&head, mark);
    if (rc) {
        thaw_buf_free(&head);
        thaw_exchange_release(&ev->o.ex);
        free(ev->cron);
        free(ev);
        thaw_log("cron \"%s\": the event does not fit in a frame; skipped", cron);
        return;
    }
    ev->o.ex.req_done = 1;
    thaw_pool_dispatch(s->worker, &ev->o.ex, head.data, head.len);
    thaw_buf_free(&head);
}

static void claim_done(void *arg, int fire)
{
    struct thaw_cron_claim *c = arg;

    if (c->s) {
        *c->prevp = c->next;
        if (c->next)
            c->next->prevp = c->prevp;
        if (fire)
            dispatch(c->s, c->cron, c->scheduled_ms);
    }
    free(c->cron);
    free(c);
}

/* One machine: fire. A cluster: fire if this node wins the event. */
static void fire(struct thaw_cron_sched *s, const char *cron, int64_t scheduled_ms)
{
    struct thaw_cron_claim *c;

    if (!claim_fn) {
        dispatch(s, cron, scheduled_ms);
        return;
    }
    if (!(c = calloc(1, sizeof(*c))) || !(c->cron = strdup(cron))) {
        free(c);
        thaw_log("cron \"%s\": out of memory; event skipped", cron);
        return;
    }
    c->s = s;
    c->scheduled_ms = scheduled_ms;
    c->next = s->claims;
    if (c->next)
        c->next->prevp = &c->next;
    c->prevp = &s->claims;
    s->claims = c;
    claim_fn(s->worker->cfg.name ? s->worker->cfg.name : "", cron, scheduled_ms,
             claim_done, c);
}

/* ---- the timer ------------------------------------------------------- */

static int64_t next_minute(const struct thaw_cron_sched *s, int64_t after_s)
{
    int64_t best = -1;
    int i;

    for (i = 0; i < s->list.n; i++) {
        int64_t t = thaw_cron_next(&s->list.crons[i], after_s);
        if (t >= 0 && (best < 0 || t < best))
            best = t;
    }
    return best;
}

static void on_timer(uv_timer_t *t);

static void arm(struct thaw_cron_sched *s)
{
    int64_t now = now_ms(s), wait;

    /* the first boundary after this second: one that passed is done */
    s->next_s = next_minute(s, now / 1000);
    if (s->next_s < 0) {
        uv_timer_stop(&s->timer);
        return;
    }
    wait = s->next_s * 1000 - now;
    if (wait < 0)
        wait = 0;
    wait = (wait + clock_rate - 1) / clock_rate; /* in real ms */
    uv_timer_start(&s->timer, on_timer,
                   (uint64_t)(wait > MAX_SLEEP_MS ? MAX_SLEEP_MS : wait), 0);
}

static void on_timer(uv_timer_t *t)
{
    struct thaw_cron_sched *s = t->data;
    int64_t due = s->next_s;
    int i;

    /* woken early (the wall clock moved, or a capped sleep): look again */
    if (due >= 0 && now_ms(s) >= due * 1000) {
        for (i = 0; i < s->list.n; i++)
            if (thaw_cron_matches(&s->list.crons[i], due))
                fire(s, s->list.exprs[i], due * 1000);
    }
    arm(s);
}

/* ---- setup ----------------------------------------------------------- */

/* THAW_CRON_CLOCK_START=2030-01-01T00:59:58Z: the scheduler's clock reads
 * that time now and runs on at real speed, so a test sees a cron fire
 * within seconds, on any date it picks. */
int thaw_cron_clock_offset(int64_t *offset_ms, char *err, size_t errlen)
{
    const char *v = getenv("THAW_CRON_CLOCK_START"), *at, *rate;
    struct tm tm;
    const char *end;
    char *num_end;
    char when[40];

    *offset_ms = 0;
    if (!v || !*v)
        return 0;
    memset(&tm, 0, sizeof(tm));
    end = strptime(v, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end || strcmp(end, "Z") != 0) {
        snprintf(err, errlen, "THAW_CRON_CLOCK_START=\"%s\": want a UTC time like "
                 "2030-01-01T00:59:58Z (or unset it)", v);
        return -1;
    }
    if ((at = getenv("THAW_CRON_CLOCK_AT")) && *at) {
        clock_anchor_ms = strtoll(at, &num_end, 10);
        if (*num_end || clock_anchor_ms <= 0) {
            snprintf(err, errlen, "THAW_CRON_CLOCK_AT=\"%s\": want the real time in ms since "
                     "the epoch at which the clock reads THAW_CRON_CLOCK_START", at);
            return -1;
        }
    } else {
        clock_anchor_ms = real_ms();
    }
    if ((rate = getenv("THAW_CRON_CLOCK_RATE")) && *rate) {
        clock_rate = strtoll(rate, &num_end, 10);
        if (*num_end || clock_rate < 1 || clock_rate > 3600) {
            snprintf(err, errlen, "THAW_CRON_CLOCK_RATE=\"%s\": want an integer from 1 to "
                     "3600, how many times faster than real time the clock runs", rate);
            return -1;
        }
    }
    /* now_ms: anchor + (real - anchor) * rate + offset reads START at anchor */
    *offset_ms = (int64_t)timegm(&tm) * 1000 - clock_anchor_ms;
    iso_time(clock_anchor_ms + (real_ms() - clock_anchor_ms) * clock_rate + *offset_ms, when,
             sizeof(when));
    thaw_log("cron: THAW_CRON_CLOCK_START is set: the scheduler's clock reads %s now "
             "(a testing aid: triggers fire at the wrong real time)", when);
    return 0;
}

void thaw_cron_sched_setup(struct thaw_cron_sched *s, uv_loop_t *loop, struct thaw_worker *w,
                           int64_t offset_ms)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->worker = w;
    s->next_s = -1;
    s->offset_ms = offset_ms;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    s->timer_init = 1;
}

int thaw_cron_sched_init(struct thaw_cron_sched *s, uv_loop_t *loop, struct thaw_worker *w,
                         char *err, size_t errlen)
{
    int64_t offset;

    if (thaw_cron_clock_offset(&offset, err, errlen))
        return -1;
    thaw_cron_sched_setup(s, loop, w, offset);
    thaw__cron_route_enable();
    return 0;
}

void thaw_cron_sched_config(struct thaw_cron_sched *s, const char *config_json,
                            const char *file)
{
    json_t *root = json_loads(config_json, 0, NULL);
    struct thaw_cron_list list;
    char err[512], when[40];
    int i;

    if (!s->timer_init)
        return;
    if (!root || thaw_cron_list_from_config(root, file, &list, err, sizeof(err))) {
        /* thaw_config_from_json checked these already */
        thaw_log("cron: %s", root ? err : "the config is not JSON");
        json_decref(root);
        return;
    }
    json_decref(root);
    thaw_cron_list_free(&s->list);
    s->list = list;
    arm(s);
    for (i = 0; i < s->list.n; i++) {
        iso_time(thaw_cron_next(&s->list.crons[i], now_ms(s) / 1000) * 1000, when,
                 sizeof(when));
        thaw_log("cron trigger \"%s\": next at %s", s->list.exprs[i], when);
    }
}

void thaw_cron_sched_stop(struct thaw_cron_sched *s)
{
    struct thaw_cron_claim *c;

    if (!s->timer_init)
        return;
    /* answers still to come find no scheduler: s may be freed after this */
    for (c = s->claims; c; c = c->next)
        c->s = NULL;
    s->claims = NULL;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, NULL);
    s->timer_init = 0;
    thaw_cron_list_free(&s->list);
}
