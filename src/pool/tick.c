/* A worker's deadlines, on one libuv timer per worker that is armed only
 * while a deadline exists (thaw__worker_arm): requests that waited too
 * long in the queue, requests over their wall-clock or CPU limit,
 * instances over their memory limit (and OOM kills in a version's memory
 * cgroup, for the log), instances stuck in a handler that never yields (a
 * CANCEL unanswered for THAW_CANCEL_GRACE_MS), idle instances (scale to
 * zero) and an idle template (template_idle_timeout_ms). CPU and memory
 * are read from /proc every POLL_MS, but only for instances that run a
 * request or ctx.wait_until() work, or owe the answer to a CANCEL; an idle
 * worker's timer waits for its next eviction, and a worker with nothing
 * left to evict has no timer running: an idle thaw sleeps, however many
 * workers it holds. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool/pool-internal.h"
#include "sandbox/cgroup.h"
#include "util/log.h"

#define POLL_MS 50
#define MEMORY_EVERY 4 /* polls: smaps_rollup walks page tables */

static int read_small(const char *path, char *buf, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t k;

    if (fd < 0)
        return -1;
    k = read(fd, buf, n - 1);
    close(fd);
    if (k < 0)
        return -1;
    buf[k] = '\0';
    return (int)k;
}

int thaw__proc_syscall_state(pid_t pid)
{
    char path[64], buf[128];
    long nr;

    snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
    if (read_small(path, buf, sizeof(buf)) <= 0)
        return THAW_PROC_IN_EPOLL; /* unknown: do not call it blocked */
    if (strncmp(buf, "running", 7) == 0)
        return THAW_PROC_RUNNING;
    nr = strtol(buf, NULL, 10);
    /* epoll_wait, epoll_pwait, epoll_pwait2 */
    return nr == 232 || nr == 281 || nr == 441 ? THAW_PROC_IN_EPOLL : THAW_PROC_IN_SYSCALL;
}

long long thaw__proc_cpu_ms(pid_t pid)
{
    static long tck;
    char path[64], buf[1024], *p;
    unsigned long long ut, st;

    if (!tck)
        tck = sysconf(_SC_CLK_TCK);
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (read_small(path, buf, sizeof(buf)) <= 0 || !(p = strrchr(buf, ')')))
        return -1;
    /* after "pid (comm)": state is field 3, utime 14, stime 15 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (long long)((ut + st) * 1000 / (unsigned long long)tck);
}

/* Private (unshared) memory in kB: what the instance costs beyond its
 * template; -1 when it is gone. */
static long long private_kb(pid_t pid)
{
    char path[64], buf[2048], *p;
    long long kb = 0;

    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    if (read_small(path, buf, sizeof(buf)) <= 0)
        return -1;
    if ((p = strstr(buf, "Private_Clean:")))
        kb += strtoll(p + 14, NULL, 10);
    if ((p = strstr(buf, "Private_Dirty:")))
        kb += strtoll(p + 14, NULL, 10);
    return kb;
}

/* Resident memory in kB (/proc/PID/statm), shared pages included: an
 * upper bound of the private memory, read in microseconds, where
 * smaps_rollup walks every page (~0.5 ms for a FastAPI instance: a stall of
 * the whole event loop, felt in the latency of every request in flight).
 * -1 when it is gone. */
static long long resident_kb(pid_t pid)
{
    char path[64], buf[256];
    long long size, resident;

    snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
    if (read_small(path, buf, sizeof(buf)) <= 0 ||
        sscanf(buf, "%lld %lld", &size, &resident) != 2)
        return -1;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* The kernel counts the whole version in its memory cgroup (memfds, /tmp,
 * children: what private_kb cannot see) and kills in it when the version
 * is over its limit; the log says so once per kill. Returns the count. */
long long thaw__memcg_logged(struct thaw_version *v)
{
    long long n = thaw_memcg_oom_kills(v->memcg);

    if (n > v->memcg_oom_logged) {
        thaw_log("worker %s: the worker's memory limit was reached: version %u is over its "
                 "%lld MB (memory cgroup: memory_mb x (max_instances + 1), for all its "
                 "instances, their child processes, memfds and /tmp); the kernel killed %lld "
                 "process%s", v->name, v->id, v->memcg_mb, n - v->memcg_oom_logged,
                 n - v->memcg_oom_logged == 1 ? "" : "es");
        v->memcg_oom_logged = n;
    }
    return n;
}

void thaw__memcg_blame(struct thaw_instance *inst)
{
    struct thaw_version *v = inst->ver;
    long long n;

    if (!v->memcg || inst->kill_status || (n = thaw__memcg_logged(v)) <= v->memcg_oom_blamed)
        return;
    v->memcg_oom_blamed = n;
    inst->kill_status = 503;
    snprintf(inst->kill_msg, sizeof(inst->kill_msg),
             "503 Service Unavailable: the worker reached its memory limit of %lld MB "
             "(memory_mb x (max_instances + 1), for all its instances, child processes, "
             "memfds and /tmp); the kernel killed its instance\n", v->memcg_mb);
}

/* The exact private memory is read when the resident bound is over the
 * limit, and at least this often for /metrics */
#define MEMORY_EXACT_MS 5000

/* An instance holding a WebSocket that sent no frame for this long has
 * its CPU counted against cpu_ms from then on (check_instance). */
#define TUNNEL_QUIET_MS 1000

/* Before a kill for culprit's limit (NULL: the instance's own): the
 * others are bystanders (src/do/ws.c gives their events to the next
 * host). */
static void blame(struct thaw_instance *inst, struct thaw_exchange *culprit)
{
    struct thaw_exchange *ex;

    for (ex = inst->ex_head; ex; ex = ex->next)
        ex->over_limit = ex == culprit ? THAW_EX_OVER_LIMIT : THAW_EX_BYSTANDER;
}

/* Only a kill stops a handler that never yields. */
static void kill_over_cpu(struct thaw_instance *inst)
{
    char msg[256];

    snprintf(msg, sizeof(msg),
             "503 Service Unavailable: the worker exceeded its CPU time limit of "
             "%lld ms per request (limits.cpu_ms); its instance was replaced\n",
             inst->ver->worker->limits.cpu_ms);
    thaw__instance_kill(inst, 503, msg);
}

/* An instance that has not answered the CANCEL of a request thaw aborted
 * or its client left (pool.c routes nothing to it meanwhile). Past THAW_CANCEL_GRACE_MS its
 * event loop is held by a handler that never yields: it would keep that
 * core and never serve again, so it goes (its other requests, stuck with
 * it, get 503) and a fresh instance takes the next requests; one that
 * waits in epoll_wait then gets ten times that. Until then the aborted
 * request's CPU still counts against cpu_ms. Returns 1 when
 * nothing else is to be checked (killed, or no request of its own). */
static int check_cancels(struct thaw_instance *inst, uint64_t now)
{
    const struct thaw_limits *lim = &inst->ver->worker->limits;
    char msg[320];
    long long cpu;

    /* one back in epoll_wait has its answer on the way (a starved loop
     * on a loaded machine may take longer): only a far longer silence
     * there means it does not read its channel at all */
    if (now - inst->cancel_ms >= THAW_CANCEL_GRACE_MS &&
        (now - inst->cancel_ms >= 10 * THAW_CANCEL_GRACE_MS ||
         thaw__proc_syscall_state(inst->pid) != THAW_PROC_IN_EPOLL)) {
        snprintf(msg, sizeof(msg),
                 "503 Service Unavailable: the worker has a handler that never yields: "
                 "a request was cancelled (its client left, or it ran past its "
                 "wall-clock limit of %lld ms, request_timeout_ms) and its instance did "
                 "not stop it within %llu ms; its instance was replaced\n",
                 lim->request_timeout_ms, (unsigned long long)(now - inst->cancel_ms));
        blame(inst, NULL); /* the culprit's answer went at its cancel */
        thaw__instance_kill(inst, 503, msg);
        return 1;
    }
    if ((cpu = thaw__proc_cpu_ms(inst->pid)) >= 0) {
        if (inst->cancel_cpu_base < 0) {
            inst->cancel_cpu_base = cpu;
        } else if (cpu - inst->cancel_cpu_base > lim->cpu_ms) {
            blame(inst, NULL);
            kill_over_cpu(inst);
            return 1;
        }
    }
    return inst->inflight == 0; /* not idle: no idle timeout, no retire */
}

/* CPU per request of a version's instances (v->cost_us, which pool.c's
 * pick() reads): from this instance's CPU reading (cpu, ms, from the
 * check below) and the requests it took since the last sample. /proc's
 * CPU times move in 10 ms steps: a sample waits for COST_SAMPLE_MS of
 * CPU, so it is right to within a fifth; two samples are averaged. */
#define COST_SAMPLE_MS 50

static void sample_cost(struct thaw_instance *inst, long long cpu)
{
    struct thaw_version *v = inst->ver;
    long long n, us;

    if (inst->cost_based && cpu >= inst->cost_cpu_ms) {
        if (cpu - inst->cost_cpu_ms < COST_SAMPLE_MS)
            return;
        n = inst->served - inst->cost_served;
        us = n > 0 ? (cpu - inst->cost_cpu_ms) * 1000 / n : 1000000;
        if (us > 1000000)
            us = 1000000;
        v->cost_us = v->cost_us < 0 ? (int)us : (int)((v->cost_us + us) / 2);
    }
    inst->cost_based = 1;
    inst->cost_cpu_ms = cpu;
    inst->cost_served = inst->served;
}

static void check_instance(struct thaw_instance *inst, uint64_t now, int mem_round)
{
    const struct thaw_limits *lim = &inst->ver->worker->limits;
    struct thaw_exchange *ex, *next;
    char msg[256];
    long long cpu = -1;

    if (inst->state != INST_LIVE || inst->pid <= 0 || inst->kill_status)
        return;
    if (mem_round && (inst->inflight || inst->background || inst->n_cancels) && (resident_kb(inst->pid) > lim->memory_mb * 1024 ||
                      !inst->mem_read_ms || now - inst->mem_read_ms >= MEMORY_EXACT_MS)) {
        long long kb = private_kb(inst->pid), mb = kb / 1024;
        inst->private_kb = kb;
        inst->mem_read_ms = now;
        if (mb > lim->memory_mb) {
            snprintf(msg, sizeof(msg),
                     "503 Service Unavailable: the worker's instance used %lld MB, over its "
                     "memory limit of %lld MB (memory_mb), and was killed\n", mb,
                     lim->memory_mb);
            thaw__instance_kill(inst, 503, msg);
            return;
        }
    }
    if (inst->n_cancels && check_cancels(inst, now))
        return;
    if (inst->inflight == 0 && inst->background) {
        /* ctx.wait_until() work after the response: it has the same
         * wall-clock limit as a request, counted from when it began */
        if (now - inst->background_since_ms > (uint64_t)lim->request_timeout_ms) {
            thaw_log("worker %s: instance %u: ctx.wait_until() work ran past the "
                     "wall-clock limit of %lld ms (request_timeout_ms); stopping it",
                     inst->ver->name, inst->id, lim->request_timeout_ms);
            inst->background = 0;
            thaw__instance_retire(inst);
        }
        return;
    }
    if (inst->inflight == 0) {
        /* scale to zero; a spare goes too once the worker is quiet */
        if (now - inst->idle_since_ms > (uint64_t)lim->idle_timeout_ms &&
            now - inst->ver->last_request_ms > (uint64_t)lim->idle_timeout_ms)
            thaw__instance_retire(inst);
        return;
    }
    for (ex = inst->ex_head; ex; ex = next) {
        next = ex->next;
        /* a WebSocket lives as long as its client: no wall clock */
        if (!ex->tunnel && now - ex->started_ms > (uint64_t)lim->request_timeout_ms) {
            snprintf(msg, sizeof(msg),
                     "504 Gateway Timeout: the worker did not finish its response within "
                     "%lld ms (request_timeout_ms)\n", lim->request_timeout_ms);
            thaw_log("worker %s: request on instance %u over its wall-clock limit",
                     inst->ver->name, inst->id);
            /* an instance stuck outside its event loop (time.sleep, a
             * blocking call) cannot run the cancel, and would take the
             * next request into the same hole: it goes */
            if (thaw__proc_syscall_state(inst->pid) == THAW_PROC_IN_SYSCALL) {
                blame(inst, ex);
                thaw__instance_kill(inst, 504, msg);
                return;
            }
            ex->over_limit = THAW_EX_OVER_LIMIT;
            thaw__exchange_abort(ex, 504, msg);
            continue;
        }
        if (cpu < 0 && (cpu = thaw__proc_cpu_ms(inst->pid)) < 0)
            return;
        /* A WebSocket is held for as long as its client stays: its CPU
         * counts only while the instance is silent (no frame for
         * TUNNEL_QUIET_MS). A loop held by a handler that never yields
         * sends nothing and is killed at cpu_ms; an instance that keeps
         * answering is not stuck, whatever its sockets cost in total. */
        if (ex->tunnel && (ex->cpu_base_ms < 0 || now - inst->progress_ms < TUNNEL_QUIET_MS)) {
            ex->cpu_base_ms = cpu;
            continue;
        }
        if (ex->cpu_base_ms < 0) {
            ex->cpu_base_ms = cpu;
        } else if (cpu - ex->cpu_base_ms > lim->cpu_ms) {
            blame(inst, ex);
            kill_over_cpu(inst); /* a CPU-bound handler never yields */
            return;
        }
    }
    if (cpu >= 0)
        sample_cost(inst, cpu);
}

/* ---- the deadline ---------------------------------------------------- */

/* When the worker next has something to check, or 0: nothing (its timer
 * stops and the worker costs no wakeup until an event arms it again).
 * Running work is polled (CPU and memory come from /proc); everything
 * else is a deadline that is known in advance. */
static uint64_t next_deadline(struct thaw_worker *w, uint64_t now)
{
    const struct thaw_limits *lim = &w->limits;
    struct thaw_version *v;
    struct thaw_instance *i;
    uint64_t next = 0, t;

#define SOONER(x) do { t = (x); if (!next || t < next) next = t; } while (0)
    for (v = w->versions; v; v = v->next) {
        if (v->state == VER_CLOSING)
            continue;
        if (v->queue_head) {
            SOONER(v->queue_head->queued_ms + (uint64_t)lim->queue_timeout_ms + 1);
            if (v->state == VER_READY)
                SOONER(now + POLL_MS); /* a blocked instance may be free again */
        }
        for (i = v->instances; i; i = i->next) {
            if (i->state != INST_LIVE)
                continue;
            if (i->inflight || i->background || i->n_cancels) {
                SOONER(now + POLL_MS); /* n_cancels: its grace, its CPU */
            } else if (v->state == VER_READY || v->state == VER_DRAINING) {
                uint64_t since = i->idle_since_ms > v->last_request_ms ? i->idle_since_ms
                                                                       : v->last_request_ms;
                SOONER(since + (uint64_t)lim->idle_timeout_ms + 1);
            }
        }
    }
    v = w->current;
    if (lim->template_idle_timeout_ms > 0 && v && v->state == VER_READY) {
        uint64_t last = v->last_request_ms > v->ready_ms ? v->last_request_ms : v->ready_ms;
        SOONER(last + (uint64_t)lim->template_idle_timeout_ms + 1);
    }
#undef SOONER
    return next;
}

static void on_tick(uv_timer_t *t);

void thaw__worker_arm(struct thaw_worker *w, uint64_t when)
{
    uint64_t now;

    if (w->closing || !w->tick_on)
        return;
    now = uv_now(w->loop);
    when = when > now ? when - now : 0;
    if (uv_is_active((uv_handle_t *)&w->tick) && uv_timer_get_due_in(&w->tick) <= when)
        return; /* it wakes sooner anyway, and looks again then */
    uv_timer_start(&w->tick, on_tick, when, 0);
}

void thaw__worker_soon(struct thaw_worker *w)
{
    thaw__worker_arm(w, uv_now(w->loop) + POLL_MS);
}

static void on_tick(uv_timer_t *t)
{
    struct thaw_worker *w = t->data;
    struct thaw_version *v;
    struct thaw_instance *i, *next;
    uint64_t now = uv_now(w->loop), when;
    int mem_round = (++w->ticks % MEMORY_EVERY) == 0;

    if (w->stopping)
        return;
    thaw__worker_maybe_evict(w, now);
    for (v = w->versions; v; v = v->next) {
        if (v->state == VER_CLOSING)
            continue;
        /* a child killed: its instance lives on. Without the kernel's
         * word (pool/memwatch.h) it is read at every wakeup: the timer
         * runs only while something runs, and once more after */
        if (v->memcg && !v->memwatch)
            thaw__memcg_logged(v);
        for (i = v->instances; i; i = next) {
            next = i->next;
            check_instance(i, now, mem_round);
        }
        if (v->queue_head) {
            thaw__pool_expire_queue(v, now, w->limits.queue_timeout_ms);
            if (v->state == VER_READY)
                thaw__pool_run_queue(v); /* a blocked instance may be free now */
        }
    }
    if (!w->closing && !w->stopping && (when = next_deadline(w, now)))
        thaw__worker_arm(w, when);
}

void thaw__tick_start(struct thaw_worker *w)
{
    if (w->closing || w->tick_on)
        return;
    uv_timer_init(w->loop, &w->tick);
    w->tick.data = w;
    w->tick_on = 1;
}
