/* Routing: which instance serves an exchange, and the frames between an
 * exchange and its instance. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <unistd.h>

#include "pool/pool-internal.h"
#include "pool/prefault.h"
#include "util/log.h"

#define MAX_RESP_HEADERS 256

static uint32_t sid_counter;
static uint64_t use_clock;

uint32_t thaw_next_sid(void)
{
    if (++sid_counter == 0)
        ++sid_counter;
    return sid_counter;
}

void thaw_exchange_init(struct thaw_exchange *ex, const struct thaw_exchange_ops *ops,
                        void *conn)
{
    memset(ex, 0, sizeof(*ex));
    ex->sid = thaw_next_sid();
    ex->ops = ops;
    ex->conn = conn;
    thaw_buf_init(&ex->pending, 4 * 1024 * 1024);
}

/* ---- queue ----------------------------------------------------------- */

static void enqueue(struct thaw_version *v, struct thaw_exchange *ex)
{
    v->queue_len++;
    v->worker->metrics.queued++;
    ex->queued_ms = uv_now(v->worker->loop);
    ex->next = NULL;
    ex->prev = v->queue_tail;
    if (v->queue_tail)
        v->queue_tail->next = ex;
    else
        v->queue_head = ex;
    v->queue_tail = ex;
    thaw__worker_soon(v->worker); /* its queue timeout */
}

static void dequeue(struct thaw_version *v, struct thaw_exchange *ex)
{
    v->queue_len--;
    if (ex->prev)
        ex->prev->next = ex->next;
    else
        v->queue_head = ex->next;
    if (ex->next)
        ex->next->prev = ex->prev;
    else
        v->queue_tail = ex->prev;
    ex->next = ex->prev = NULL;
}

/* ---- attach / detach -------------------------------------------------- */

/* head (len bytes, may be NULL): the request's REQ_HEAD frame when it
 * did not wait in the queue; it goes straight onto the channel, ahead of
 * whatever the exchange holds (body frames), with no copy of its own. */
void thaw__pool_attach(struct thaw_instance *inst, struct thaw_exchange *ex, const void *head,
                       size_t len)
{
    uint64_t now = uv_now(inst->ver->worker->loop);

    ex->inst = inst;
    ex->inst_id = inst->id;
    ex->cold = inst->served == 0;
    if (ex->cold)
        inst->ver->worker->metrics.starts_fork++;
    else
        inst->ver->worker->metrics.starts_warm++;
    ex->started_ms = now;
    ex->cpu_base_ms = -1; /* read by the tick when it first looks */
    if (inst->inflight == 0)
        inst->progress_ms = now;
    ex->next = NULL;
    ex->prev = inst->ex_tail;
    if (inst->ex_tail)
        inst->ex_tail->next = ex;
    else
        inst->ex_head = ex;
    inst->ex_tail = ex;
    inst->inflight++;
    inst->served++;
    inst->last_used = ++use_clock;
    thaw__worker_soon(inst->ver->worker); /* its limits are watched while it runs */
    if (head)
        thaw_chan_send(inst->chan, head, len, -1);
    if (ex->pending.len)
        thaw_chan_send(inst->chan, ex->pending.data, ex->pending.len, -1);
    thaw_buf_free(&ex->pending);
    if (ex->ops->on_writable)
        ex->ops->on_writable(ex);
    if (inst->served == 1)
        thaw__pool_ensure_spares(inst->ver); /* a spare was just used */
}

static void detach(struct thaw_exchange *ex)
{
    struct thaw_instance *inst = ex->inst;

    if (!inst)
        return;
    if (ex->prev)
        ex->prev->next = ex->next;
    else
        inst->ex_head = ex->next;
    if (ex->next)
        ex->next->prev = ex->prev;
    else
        inst->ex_tail = ex->prev;
    ex->next = ex->prev = NULL;
    ex->inst = NULL;
    if (--inst->inflight == 0)
        inst->idle_since_ms = uv_now(inst->ver->worker->loop);
}

/* The instance finished a request: retire it if its version is draining,
 * else give it queued work. */
static int used_up(const struct thaw_instance *inst)
{
    int max = inst->ver->worker->limits.requests_per_instance;
    return max > 0 && inst->served >= max;
}

static void instance_idle_check(struct thaw_instance *inst)
{
    struct thaw_version *v = inst->ver;

    /* a CANCEL it has not answered: a stuck instance would not read the
     * EOF of a retire, nor run queued work; its answer or the tick's kill
     * (tick.c) comes back here */
    if (inst->n_cancels)
        return;
    if (v->state == VER_DRAINING || used_up(inst)) {
        /* ctx.wait_until() work keeps it alive until done (or the tick
         * stops it at the wall-clock limit) */
        if (inst->inflight == 0 && !inst->background)
            thaw__instance_retire(inst);
        return;
    }
    if (v->queue_head)
        thaw__pool_run_queue(v);
}

/* An instance with requests in flight is blocked when its event loop
 * cannot take another one soon: it sits in a blocking system call other
 * than epoll (time.sleep, a blocking socket), or it has been running
 * without sending anything for BLOCKED_MS (a CPU-bound handler). */
#define BLOCKED_MS 20
#define FRESH_MS 2
/* A reading of /proc/PID/syscall serves this long: an instance running a
 * batch of slow requests (30 FastAPI requests take ~3 ms) sends nothing
 * for longer than FRESH_MS, and reading its state for each request routed
 * meanwhile was three system calls a request (issue 16) */
#define BLOCKED_RECHECK_MS 2

static int blocked(struct thaw_instance *i, uint64_t now)
{
    int st;

    /* an instance that sent a frame this very moment is making progress:
     * spare the /proc read, the common case under load */
    if (i->inflight == 0 || i->pid <= 0 || now - i->progress_ms < FRESH_MS)
        return 0;
    if (i->sys_state_ms && now - i->sys_state_ms < BLOCKED_RECHECK_MS &&
        i->sys_state_ms > i->progress_ms) {
        st = i->sys_state;
    } else {
        st = thaw__proc_syscall_state(i->pid);
        i->sys_state = st;
        i->sys_state_ms = now;
        i->ver->worker->metrics.syscall_reads++;
    }
    if (st == THAW_PROC_IN_EPOLL)
        return 0;
    if (st == THAW_PROC_RUNNING)
        return now - i->progress_ms >= BLOCKED_MS;
    return 1;
}

/* Packing. Waking an instance costs CPU on both sides (the supervisor's
 * send and wakeup, the instance's context switch, epoll_wait, read and
 * write: about 10 µs here), more than a cheap request itself. So a
 * request goes to an instance already busy with others while the work it
 * holds stays under PACK_BUDGET_US: its requests in flight times the
 * version's CPU per request (v->cost_us, sampled by the tick; unknown:
 * no packing). A hello-sized request (5-20 µs) fills one instance before
 * another is woken, and a loop turn's requests leave in one write; a
 * FastAPI-sized one (35-60 µs) spreads over the cores after a few, as
 * uvicorn's processes do (docs/performance.md). */
#define PACK_BUDGET_US 200
/* and at most this much unread or queued for it */
#define PACK_BYTES (64 * 1024)

static int fits(const struct thaw_instance *i)
{
    int cost = i->ver->cost_us;

    return cost >= 0 && (long long)(i->inflight + 1) * cost <= PACK_BUDGET_US;
}

/* An instance has a backlog when it has not yet read everything thaw sent
 * it: its event loop is busy running handlers (a CPU-bound app under
 * load), so a request sent there waits behind them. One ioctl on the
 * channel (SIOCOUTQ: bytes the peer has not consumed), no /proc read.
 * An instance the request fits (above) may hold a small backlog: it reads
 * it with the next request in one read when it is next scheduled; unless
 * it sent nothing for FRESH_MS (a handler that holds its loop, or a
 * machine too busy to run it: another instance may). */
static int backlogged(const struct thaw_instance *i, int fit, uint64_t now)
{
    int unread = 0;
    size_t queued = thaw_chan_queued(i->chan);

    if (fit && now - i->progress_ms >= FRESH_MS)
        fit = 0;
    if (queued && !fit)
        return 1;
    if (ioctl(thaw_chan_fd(i->chan), SIOCOUTQ, &unread) != 0)
        return 0;
    return fit ? queued + (size_t)unread >= PACK_BYTES : unread > 0;
}

static int online_cpus(void)
{
    static int n;

    if (!n) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    return n;
}

/* Whether i may take a request now. n_cancels: it may be stuck (tick.c
 * decides); kill_status: its SIGKILL is on its way, and what it holds
 * then fails with the kill's answer. */
static int takes_work(const struct thaw_instance *i, const struct thaw_limits *lim)
{
    return i->state == INST_LIVE && i->chan && !used_up(i) && i->inflight < lim->concurrency &&
           !i->n_cancels && !i->kill_status;
}

/* In order:
 * - an instance this loop turn already sent requests to (not written yet:
 *   it is not woken twice), if the request fits it (packing, above);
 * - a busy instance the request fits, that keeps up (packing);
 * - the most recently used idle warm instance;
 * - the most recently used busy one with room that is neither blocked nor
 *   backlogged (traffic packs onto few instances, so the others go idle
 *   and are reclaimed, while an I/O-bound instance keeps taking work);
 * - a spare, while fewer instances are backlogged than there are cores
 *   (a CPU-bound app spreads over the cores, as uvicorn's processes do;
 *   beyond that another instance would only share a core);
 * - the backlogged one with the fewest requests in flight;
 * - a spare, then a new fork while under max_instances (every instance is
 *   blocked or full).
 * NULL: queue. */
static struct thaw_instance *pick(struct thaw_version *v)
{
    const struct thaw_limits *lim = &v->worker->limits;
    uint64_t now = uv_now(v->worker->loop);
    struct thaw_instance *i, *idle = NULL, *spare = NULL, *busy = NULL, *least = NULL;
    struct thaw_instance *packed = NULL;
    int n_backlogged = 0, any_busy = 0;
    /* one more request fits next to one in flight */
    int packs = v->cost_us >= 0 && 2 * v->cost_us <= PACK_BUDGET_US;

    /* queued this turn need not mean routed this turn (a body frame for
     * a request it holds): blocked() still applies, free while it sends */
    for (i = v->instances; packs && i; i = i->next)
        if (i->inflight && takes_work(i, lim) && thaw_chan_flush_pending(i->chan) && fits(i) &&
            thaw_chan_queued(i->chan) < PACK_BYTES && !blocked(i, now)) {
            v->worker->metrics.packed++;
            return i;
        }
    /* first the instances with nothing in flight: no system call needed */
    for (i = v->instances; i; i = i->next) {
        if (!takes_work(i, lim))
            continue;
        if (i->inflight == 0 && i->served == 0) {
            if (!spare)
                spare = i;
        } else if (i->inflight == 0) {
            if (!idle || i->last_used > idle->last_used)
                idle = i;
        } else {
            any_busy = 1;
        }
    }
    if (idle && !packs)
        return idle;
    /* then the busy ones: blocked (/proc, cached) and backlogged (ioctl) */
    for (i = v->instances; any_busy && i; i = i->next) {
        int fit;

        if (i->inflight == 0 || !takes_work(i, lim))
            continue;
        if (blocked(i, now)) {
            v->worker->metrics.blocked_skips++;
            continue;
        }
        fit = packs && fits(i);
        if (backlogged(i, fit, now)) {
            n_backlogged++;
            if (!least || i->inflight < least->inflight ||
                (i->inflight == least->inflight && i->last_used > least->last_used))
                least = i;
        } else if (fit) {
            if (!packed || i->last_used > packed->last_used)
                packed = i;
        } else if (!busy || i->last_used > busy->last_used) {
            busy = i;
        }
    }
    if (packed) {
        v->worker->metrics.packed++;
        return packed;
    }
    if (idle)
        return idle;
    if (busy)
        return busy;
    if (spare && n_backlogged < online_cpus())
        return spare;
    if (least)
        return least;
    if (spare)
        return spare;
    if (v->n_instances < lim->max_instances)
        return thaw__instance_spawn(v);
    return NULL;
}

/* The instance that hosts the version's Durable Objects: the one chosen
 * before while it lives (every object of the worker lives in it, so at
 * most one of each id does), else a new choice. Concurrency and recycling
 * do not apply to it: an object's calls must not wait behind or move to
 * another instance while it runs. */
static struct thaw_instance *host(struct thaw_version *v)
{
    struct thaw_instance *i;

    /* kill_status: its SIGKILL is on its way (src/do/ws.c sends the
     * events it held to the next host while it dies) */
    for (i = v->instances; v->do_host && i; i = i->next)
        if (i->id == v->do_host && i->state == INST_LIVE && i->chan && !i->kill_status)
            return i;
    for (i = v->instances; i; i = i->next) /* any live one before a fork */
        if (i->state == INST_LIVE && i->chan && !i->n_cancels && !used_up(i) &&
            !i->kill_status)
            break;
    if (!i && v->n_instances < v->worker->limits.max_instances)
        i = thaw__instance_spawn(v);
    v->do_host = i ? i->id : 0;
    return i;
}

void thaw__pool_ensure_spares(struct thaw_version *v)
{
    const struct thaw_limits *lim = &v->worker->limits;
    struct thaw_instance *i;
    int spares = 0;

    if (v->state != VER_READY || v->worker->stopping)
        return;
    /* scale to zero: a worker without recent traffic keeps no spare */
    if (uv_now(v->worker->loop) - v->last_request_ms > (uint64_t)lim->idle_timeout_ms)
        return;
    for (i = v->instances; i; i = i->next) {
        if (i->state != INST_LIVE || !i->chan)
            continue;
        if (i->pid <= 0)
            return; /* one still starting: a burst must not chain forks */
        if (i->served == 0)
            spares++;
    }
    while (spares < lim->prefork && v->n_instances < lim->max_instances &&
           thaw__instance_spawn(v))
        spares++;
}

void thaw__pool_fail_queue(struct thaw_version *v, int status, const char *msg)
{
    while (v->queue_head) {
        struct thaw_exchange *ex = v->queue_head;
        dequeue(v, ex);
        ex->ver = NULL;
        ex->ops->on_fail(ex, status, msg);
    }
}

void thaw__pool_run_queue(struct thaw_version *v)
{
    while (v->queue_head && v->state == VER_READY) {
        struct thaw_instance *inst = v->queue_head->pinned ? host(v) : pick(v);
        struct thaw_exchange *ex;
        if (!inst)
            return;
        ex = v->queue_head;
        dequeue(v, ex);
        thaw__pool_attach(inst, ex, NULL, 0);
    }
}

/* head: the REQ_HEAD frame, when it is not in ex->pending yet; it is
 * copied there only if the exchange has to wait. */
static void route(struct thaw_version *v, struct thaw_exchange *ex, const void *head,
                  size_t len)
{
    struct thaw_instance *inst;

    ex->ver = v;
    v->last_request_ms = uv_now(v->worker->loop);
    if (v->state == VER_READY && (!v->queue_head || ex->pinned) &&
        (inst = ex->pinned ? host(v) : pick(v))) {
        thaw__pool_attach(inst, ex, head, len);
        return;
    }
    if (v->state == VER_READY && !v->chan && v->lost_answer) {
        /* no live instance takes it and none can be forked (worker.c,
         * lost_and_failed): answered now, and a new build is asked for */
        ex->ver = NULL;
        ex->ops->on_fail(ex, 500, v->lost_answer);
        thaw__worker_relost(v->worker);
        return;
    }
    if (head && v->state != VER_FAILED && thaw_buf_append(&ex->pending, head, len)) {
        ex->ver = NULL;
        ex->ops->on_fail(ex, 500, "500 Internal Server Error: request head too large\n");
        return;
    }
    switch (v->state) {
    case VER_READY:
        if (v->queue_len >= v->worker->limits.max_queue) {
            ex->ver = NULL;
            ex->ops->on_fail(ex, 503, "503 Service Unavailable: every instance of this "
                             "worker is busy and the queue is full (max_instances, "
                             "max_queue); retry shortly\n");
            return;
        }
        enqueue(v, ex);
        return;
    case VER_FAILED: {
        char why[512];
        ex->ver = NULL;
        ex->ops->on_fail(ex, 500, thaw__version_answer(v, why, sizeof(why)));
        return;
    }
    default:
        enqueue(v, ex);
        return;
    }
}

void thaw_pool_dispatch(struct thaw_worker *w, struct thaw_exchange *ex,
                        const void *head, size_t len)
{
    if (!w->current && w->cold)
        thaw__worker_wake(w);
    if (!w->current) {
        ex->ops->on_fail(ex, 500, "500 Internal Server Error: no version of the worker is built\n");
        return;
    }
    route(w->current, ex, head, len);
}

/* Moves what waits for an old version to the new one. */
void thaw__pool_requeue(struct thaw_version *from, struct thaw_version *to)
{
    while (from->queue_head) {
        struct thaw_exchange *ex = from->queue_head;
        dequeue(from, ex);
        route(to, ex, NULL, 0); /* its head is in ex->pending */
    }
}

/* ---- request frames --------------------------------------------------- */

static void send_frame(struct thaw_exchange *ex, uint8_t type, const char *p, size_t n)
{
    size_t mark;

    if (ex->inst && ex->inst->chan) {
        thaw_chan_send_frame(ex->inst->chan, type, ex->sid, p, n);
        return;
    }
    if (ex->ver && !thaw_ipc_begin(&ex->pending, type, 0, ex->sid, &mark)) {
        thaw_ipc_put_raw(&ex->pending, p, n);
        thaw_ipc_end(&ex->pending, mark);
    }
}

void thaw_exchange_body(struct thaw_exchange *ex, const char *p, size_t n)
{
    while (n) {
        size_t k = n > THAW_IPC_CHUNK ? THAW_IPC_CHUNK : n;
        send_frame(ex, THAW_IPC_REQ_BODY, p, k);
        p += k;
        n -= k;
    }
}

void thaw_exchange_end(struct thaw_exchange *ex)
{
    if (ex->req_done)
        return;
    ex->req_done = 1;
    send_frame(ex, THAW_IPC_REQ_END, NULL, 0);
}

void thaw_exchange_frame(struct thaw_exchange *ex, uint8_t type, const char *p, size_t n)
{
    send_frame(ex, type, p, n);
}

int thaw_exchange_congested(const struct thaw_exchange *ex)
{
    if (!ex->inst)
        return ex->ver != NULL; /* queued: hold the body back */
    return !ex->inst->chan || thaw_chan_queued(ex->inst->chan) > THAW_CHAN_HIGH;
}

static void set_hold(struct thaw_exchange *ex, int hold)
{
    struct thaw_instance *inst = ex->inst;

    if (!inst || ex->holding == hold)
        return;
    ex->holding = hold;
    inst->holds += hold ? 1 : -1;
    if (!inst->chan)
        return;
    if (inst->holds > 0)
        thaw_chan_read_stop(inst->chan);
    else
        thaw_chan_read_start(inst->chan);
}

void thaw_exchange_hold(struct thaw_exchange *ex, int hold)
{
    set_hold(ex, hold);
}

void thaw_exchange_release(struct thaw_exchange *ex)
{
    struct thaw_instance *inst = ex->inst;

    set_hold(ex, 0);
    if (ex->park)
        thaw__pool_unpark_one(ex);
    if (inst) {
        /* the client left mid-request: the answer to this CANCEL is
         * awaited as after a timeout (tick.c), so a handler that never
         * yields is found now, not by the next request sent to it */
        if (inst->chan) {
            thaw_chan_send_fields(inst->chan, THAW_IPC_CANCEL, ex->sid, -1, 0, NULL);
            thaw__instance_cancel_sent(inst, ex->sid, ex->cpu_base_ms);
        }
        detach(ex);
        instance_idle_check(inst);
    } else if (ex->ver) {
        dequeue(ex->ver, ex);
    }
    ex->ver = NULL;
    thaw_buf_free(&ex->pending);
}

/* ---- response frames -------------------------------------------------- */

/* After an instance's first response, once per version: the pages it
 * holds alone go to the template, so later instances copy them before
 * they serve rather than one fault at a time during their first request
 * (pool/prefault.h). */
static void learn_prefault(struct thaw_instance *inst)
{
    static int warned;
    struct thaw_version *v = inst->ver;
    struct thaw_buf b;
    size_t mark;
    long pages = 0;

    if (v->prefault_tried || !v->chan || inst->pid <= 0 || v->state != VER_READY)
        return;
    v->prefault_tried = 1;
    thaw_buf_init(&b, THAW_IPC_MAX_PAYLOAD + THAW_IPC_HEADER_SIZE);
    if (!thaw_ipc_begin(&b, THAW_IPC_PREFAULT, 0, 0, &mark) &&
        (pages = thaw_prefault_profile(inst->pid, &b, THAW_IPC_MAX_PAYLOAD / 16)) > 0 &&
        !thaw_ipc_end(&b, mark))
        thaw_chan_send(v->chan, b.data, b.len, -1);
    else if (pages < 0 && !warned++)
        thaw_log("cannot read /proc/%ld/pagemap of an instance (%s): instances take "
                 "their copy-on-write faults during their first request",
                 (long)inst->pid, strerror((int)-pages));
    thaw_buf_free(&b);
}

/* BUSY: how many ctx.wait_until() tasks the instance still runs. */
static void on_busy(struct thaw_instance *inst, const struct thaw_ipc_frame *f)
{
    struct thaw_ipc_fields it;
    const uint8_t *p;
    size_t n;
    char num[16];
    int was = inst->background;

    thaw_ipc_fields_init(&it, f);
    if (thaw_ipc_next_field(&it, &p, &n) != 1 || n >= sizeof(num))
        return;
    memcpy(num, p, n);
    num[n] = 0;
    inst->background = atoi(num);
    if (inst->background > 0 && !was) {
        inst->background_since_ms = uv_now(inst->ver->worker->loop);
        thaw__worker_soon(inst->ver->worker);
    }
    if (!inst->background && was) {
        if (inst->inflight == 0)
            inst->idle_since_ms = uv_now(inst->ver->worker->loop);
        instance_idle_check(inst);
    }
}

static struct thaw_exchange *find_ex(struct thaw_instance *inst, uint32_t sid)
{
    struct thaw_exchange *ex;

    for (ex = inst->ex_head; ex; ex = ex->next)
        if (ex->sid == sid)
            return ex;
    return NULL;
}

/* RESP_HEAD: status, reason, then name, value pairs, handed on as C
 * strings. They are copied, NUL-terminated, into one buffer kept for the
 * next head (a payload is at most THAW_IPC_MAX_PAYLOAD): no allocation per
 * field, which a head used to cost (a strndup each). */
static int on_head(struct thaw_exchange *ex, const struct thaw_ipc_frame *f)
{
    static const char *names[MAX_RESP_HEADERS], *values[MAX_RESP_HEADERS];
    static const char *field[2 * MAX_RESP_HEADERS + 2];
    static char *arena;
    static size_t arena_cap;
    struct thaw_ipc_fields it;
    const uint8_t *p;
    size_t n, used = 0, need = (size_t)f->len + 2 * MAX_RESP_HEADERS + 2;
    int k = 0, i, status, nh;

    if (need > arena_cap) {
        char *more = realloc(arena, need);
        if (!more)
            return -1;
        arena = more;
        arena_cap = need;
    }
    thaw_ipc_fields_init(&it, f);
    while (k < 2 * MAX_RESP_HEADERS + 2) {
        int r = thaw_ipc_next_field(&it, &p, &n);
        if (r == 0)
            break;
        if (r < 0)
            return -1;
        /* the fields fit: their bytes are within the payload, plus a NUL each */
        memcpy(arena + used, p, n);
        arena[used + n] = '\0';
        field[k++] = arena + used;
        used += n + 1;
    }
    if (k < 2 || k % 2)
        return -1;
    status = atoi(field[0]);
    if (status < 100 || status > 999)
        return -1;
    nh = (k - 2) / 2;
    for (i = 0; i < nh; i++) {
        names[i] = field[2 + 2 * i];
        values[i] = field[3 + 2 * i];
    }
    ex->head_seen = 1;
    ex->ops->on_resp_head(ex, status, field[1], names, values, nh);
    if (arena_cap > 64 * 1024) {
        free(arena); /* a rare huge head's memory does not stay (issue 15) */
        arena = NULL;
        arena_cap = 0;
    }
    return 0;
}

void thaw__instance_on_frame(struct thaw_instance *inst, const struct thaw_ipc_frame *f)
{
    struct thaw_exchange *ex = find_ex(inst, f->stream);

    inst->progress_ms = uv_now(inst->ver->worker->loop);
    if ((f->type >= THAW_IPC_BIND_CALL && f->type <= THAW_IPC_BIND_CANCEL) ||
        (f->type >= THAW_IPC_BIND_WS_TEXT && f->type <= THAW_IPC_BIND_WS_CLOSE)) {
        if (thaw_bind_peer_frame(&inst->bind, f) < 0) {
            thaw_log("worker %s: instance %u broke the binding protocol; killing it",
                     inst->ver->name, inst->id);
            thaw__instance_kill(inst, 502, "502 Bad Gateway: the worker's instance "
                                "broke thaw's binding protocol\n");
        }
        return;
    }
    if (f->type == THAW_IPC_BUSY) {
        on_busy(inst, f);
        return;
    }
    if (f->type == THAW_IPC_WARM) {
        /* which app later instances start ahead of their first request:
         * the first instance's word goes to the template, once (a short
         * list of names; the template ignores what it cannot parse) */
        struct thaw_version *v = inst->ver;
        if (!v->warm_sent && v->chan && f->len <= 1024) {
            thaw_chan_send_frame(v->chan, THAW_IPC_WARM, 0, f->payload, f->len);
            v->warm_sent = 1;
        }
        return;
    }
    if (!ex) {
        /* a stream the client already left, or one thaw aborted: the
         * instance answers its CANCEL so (python/thaw_runtime/instance.py),
         * which shows its event loop runs */
        if ((f->type == THAW_IPC_RESP_END || f->type == THAW_IPC_RESP_ABORT) &&
            thaw__instance_cancel_answered(inst, f->stream) && !inst->n_cancels)
            instance_idle_check(inst);
        return;
    }
    switch (f->type) {
    case THAW_IPC_RESP_HEAD:
        if (ex->head_seen || on_head(ex, f) < 0) {
            thaw_log("worker %s: instance %u sent a malformed response head",
                     inst->ver->name, inst->id);
            detach(ex);
            ex->ver = NULL;
            ex->ops->on_fail(ex, ex->head_seen ? 0 : 502,
                             "502 Bad Gateway: the worker sent a malformed response\n");
            instance_idle_check(inst);
        }
        break;
    case THAW_IPC_WS_TEXT:
    case THAW_IPC_WS_BINARY:
    case THAW_IPC_WS_CLOSE:
        if (ex->head_seen && ex->ops->on_ws)
            ex->ops->on_ws(ex, f->type, (const char *)f->payload, f->len);
        break;
    case THAW_IPC_RESP_BODY:
        if (ex->head_seen)
            ex->ops->on_resp_body(ex, (const char *)f->payload, f->len);
        break;
    case THAW_IPC_RESP_END:
    case THAW_IPC_RESP_ABORT: {
        int cold = ex->cold;

        set_hold(ex, 0);
        detach(ex);
        ex->ver = NULL;
        if (f->type == THAW_IPC_RESP_END && ex->head_seen)
            ex->ops->on_resp_end(ex);
        else
            ex->ops->on_fail(ex, ex->head_seen ? 0 : 502,
                             "502 Bad Gateway: the worker's response failed\n");
        if (cold && f->type == THAW_IPC_RESP_END)
            learn_prefault(inst); /* after the client has its answer */
        instance_idle_check(inst);
        break;
    }
    }
}

void thaw__instance_fail_all(struct thaw_instance *inst, int status, const char *msg)
{
    while (inst->ex_head) {
        struct thaw_exchange *ex = inst->ex_head;
        set_hold(ex, 0);
        detach(ex);
        ex->ver = NULL;
        ex->ops->on_fail(ex, ex->head_seen ? 0 : status, msg);
    }
}

void thaw__exchange_abort(struct thaw_exchange *ex, int status, const char *msg)
{
    struct thaw_instance *inst = ex->inst;
    long long cpu_base = ex->cpu_base_ms;

    set_hold(ex, 0);
    if (inst && inst->chan) {
        /* its answer is awaited (also when the channel's queue is full:
         * an instance that reads nothing is the stuck kind) */
        thaw_chan_send_fields(inst->chan, THAW_IPC_CANCEL, ex->sid, -1, 0, NULL);
        thaw__instance_cancel_sent(inst, ex->sid, cpu_base);
    }
    detach(ex);
    ex->ver = NULL;
    ex->ops->on_fail(ex, ex->head_seen ? 0 : status, msg);
    if (inst)
        instance_idle_check(inst);
}

void thaw__pool_expire_queue(struct thaw_version *v, uint64_t now, long long timeout_ms)
{
    while (v->queue_head && now - v->queue_head->queued_ms > (uint64_t)timeout_ms) {
        struct thaw_exchange *ex = v->queue_head;
        char msg[256];
        dequeue(v, ex);
        ex->ver = NULL;
        snprintf(msg, sizeof(msg),
                 "503 Service Unavailable: no instance of this worker was free within "
                 "%lld ms (queue_timeout_ms); retry shortly\n", timeout_ms);
        ex->ops->on_fail(ex, 503, msg);
    }
}
