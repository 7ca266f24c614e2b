/* Durable Object alarms (alarms.h). */
#include <dirent.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "do/alarms.h"
#include "do/call.h"
#include "do/live.h"
#include "ipc/codec.h"
#include "util/log.h"
#include "util/outcome.h"

/* Never asleep longer than this: a wall clock that jumps is noticed. */
#define MAX_SLEEP_MS 60000

struct entry {
    char ns[65], id[65];
    int64_t at;      /* the time the object asked for (ms since the epoch) */
    int64_t due;     /* the next try: at, or later while retrying */
    int retry;       /* failed tries of this alarm so far */
    int running;     /* its event is with the object */
    struct entry *next;
};

struct thaw_do_alarms {
    struct thaw_worker *w;   /* NULL once closed */
    uv_timer_t timer;
    json_t *classes;         /* namespace key -> class name, of the current config */
    struct entry *list;
    int armed;
    int refs;                /* the worker's, the timer handle's, each event's */
    int64_t backoff_ms;
};

/* An alarm event in flight to the object's host. */
struct event {
    struct thaw_outcome_ex o; /* first: the ops get &ev->o.ex */
    struct thaw_do_alarms *a;
    char ns[65], id[65];
    int64_t at;
    int last;       /* the last try: no retry after it */
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void unref(struct thaw_do_alarms *a)
{
    struct entry *e;

    if (--a->refs)
        return;
    while ((e = a->list)) {
        a->list = e->next;
        free(e);
    }
    json_decref(a->classes);
    free(a);
}

static const char *worker_name(const struct thaw_do_alarms *a)
{
    return a->w && a->w->cfg.name ? a->w->cfg.name : "worker";
}

static struct entry **find(struct thaw_do_alarms *a, const char *ns, const char *id)
{
    struct entry **pp;

    for (pp = &a->list; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->id, id) == 0 && strcmp((*pp)->ns, ns) == 0)
            return pp;
    return pp;
}

static void drop(struct thaw_do_alarms *a, struct entry **pp)
{
    struct entry *e = *pp;

    *pp = e->next;
    free(e);
    a->armed--;
}

static void put(struct thaw_do_alarms *a, const char *ns, const char *id, int64_t at)
{
    struct entry **pp = find(a, ns, id), *e = *pp;

    if (!e) {
        if (!(e = calloc(1, sizeof(*e)))) {
            thaw_log("worker %s: out of memory: an alarm of object %s is not armed",
                     worker_name(a), id);
            return;
        }
        snprintf(e->ns, sizeof(e->ns), "%s", ns);
        snprintf(e->id, sizeof(e->id), "%s", id);
        *pp = e;
        a->armed++;
    }
    e->at = e->due = at;
    e->retry = 0; /* a new alarm: its own tries */
}

/* ---- the timer --------------------------------------------------------- */

static void on_timer(uv_timer_t *t);

static void arm(struct thaw_do_alarms *a)
{
    struct entry *e;
    int64_t next = -1, wait;

    if (!a->w)
        return;
    for (e = a->list; e; e = e->next)
        if (!e->running && e->at >= 0 && (next < 0 || e->due < next))
            next = e->due;
    if (next < 0) {
        uv_timer_stop(&a->timer); /* nothing armed: no wake-ups */
        return;
    }
    wait = next - now_ms();
    if (wait < 0)
        wait = 0;
    uv_timer_start(&a->timer, on_timer, (uint64_t)(wait > MAX_SLEEP_MS ? MAX_SLEEP_MS : wait),
                   0);
}

/* ---- an alarm's event -------------------------------------------------- */

static void done(struct event *ev, int ok, const char *msg)
{
    struct thaw_do_alarms *a = ev->a;
    struct entry **pp, *e;

    thaw_exchange_release(&ev->o.ex);
    if (a->w && *(pp = find(a, ev->ns, ev->id))) {
        e = *pp;
        e->running = 0;
        if (!ok && ev->last)
            thaw_log("worker %s: Durable Object %s: alarm() failed %d times; the alarm "
                     "is dropped (Cloudflare gives up after %d retries too)%s%s",
                     worker_name(a), ev->id, THAW_DO_ALARM_RETRIES + 1,
                     THAW_DO_ALARM_RETRIES, msg ? ": " : "", msg ? msg : "");
        if (e->at < 0) {
            drop(a, pp); /* deleted meanwhile (by the handler, or done) */
        } else if (e->at != ev->at) {
            /* the handler set another alarm: that one stands, fresh */
        } else if (ok || ev->last) {
            drop(a, pp); /* done, or given up (the host deleted it from the file too) */
        } else {
            int64_t wait = a->backoff_ms << e->retry++;
            e->due = now_ms() + wait;
            thaw_log("worker %s: Durable Object %s: alarm() failed%s%s; retry %d of %d in "
                     "%lld ms", worker_name(a), ev->id, msg ? ": " : "", msg ? msg : "",
                     e->retry, THAW_DO_ALARM_RETRIES, (long long)wait);
        }
        arm(a);
    }
    unref(a);
    free(ev);
}

/* The event's end (util/outcome.h): the status says whether alarm()
 * succeeded; a failure's message goes into the log. */
static void on_outcome(struct thaw_outcome_ex *o, int status, const char *msg)
{
    char text[256];

    if (!msg) {
        done((struct event *)o, status == 200, NULL);
        return;
    }
    done((struct event *)o, 0, thaw_fail_text(text, sizeof(text), msg, o->fail_default));
}

/* An alarm event is a call with no caller (live.h's thaw__do_event),
 * `:do-op` = "alarm", with what alarm(alarm_info) is told. */
static int fire(struct thaw_do_alarms *a, struct entry *e, const char *cls)
{
    struct event *ev = calloc(1, sizeof(*ev));
    char at[32], retry[16];
    struct thaw_buf b;

    if (!ev)
        return -1;
    ev->a = a;
    ev->at = e->at;
    ev->last = e->retry >= THAW_DO_ALARM_RETRIES;
    memcpy(ev->ns, e->ns, sizeof(ev->ns));
    memcpy(ev->id, e->id, sizeof(ev->id));
    thaw_exchange_init(&ev->o.ex, &thaw_outcome_ops, ev);
    ev->o.done = on_outcome;
    ev->o.fail_default = "its instance failed";
    ev->o.ex.pinned = 1; /* to the object's host, as every call to it */
    snprintf(at, sizeof(at), "%lld", (long long)e->at);
    snprintf(retry, sizeof(retry), "%d", e->retry);
    const char *extra[] = {":do-alarm-at", at, ":do-retry", retry, ":do-last",
                           ev->last ? "1" : "0", NULL};
    thaw_buf_init(&b, 2 * THAW_IPC_MAX_PAYLOAD);
    if (thaw__do_event(&b, ev->o.ex.sid, cls, e->id, "alarm", extra)) {
        thaw_buf_free(&b);
        thaw_exchange_release(&ev->o.ex);
        free(ev);
        return -1;
    }
    e->running = 1;
    a->refs++;
    ev->o.ex.req_done = 1;
    /* live.h: to its host; may end the event at once (a version that
     * failed to build) */
    thaw__do_live_send(a->w, cls, e->id, &ev->o.ex, b.data, b.len);
    thaw_buf_free(&b);
    return 0;
}

static void on_timer(uv_timer_t *t)
{
    struct thaw_do_alarms *a = t->data;
    int64_t now = now_ms();
    struct entry **pp, *e;

    a->refs++; /* an event that ends at once must not free a meanwhile */
    /* one due alarm at a time, each from the head again: an event that
     * ends at once (no version to run it) changes the list under us */
    while (a->w) {
        const char *cls;
        for (pp = &a->list; (e = *pp); pp = &e->next)
            if (!e->running && e->at >= 0 && e->due <= now)
                break;
        if (!e)
            break;
        if (!(cls = json_string_value(json_object_get(a->classes, e->ns)))) {
            /* its class was deleted (its data with it) or is gone */
            thaw_log("worker %s: Durable Object %s: its class is no longer in the "
                     "worker's migrations; its alarm is dropped", worker_name(a), e->id);
            drop(a, pp);
        } else if (fire(a, e, cls)) {
            thaw_log("worker %s: Durable Object %s: out of memory; its alarm is retried "
                     "in a second", worker_name(a), e->id);
            e->due = now + 1000;
        }
    }
    arm(a);
    unref(a);
}

/* ---- start: the armed alarms on disk -------------------------------------- */

static int is_hex64(const char *s, size_t n)
{
    char buf[65];

    if (n != 64)
        return 0;
    memcpy(buf, s, 64);
    buf[64] = 0;
    return thaw__do_hex64(buf);
}

/* Reads `_cf_ALARM` of every object's file (once per worker, at its first
 * build: the cost is a file open per object that has storage). */
static void load(struct thaw_do_alarms *a, const char *state_dir)
{
    char dir[4096], path[4200];
    DIR *top, *d;
    struct dirent *t, *f;

    snprintf(dir, sizeof(dir), "%s/do", state_dir);
    if (!(top = opendir(dir)))
        return;
    while ((t = readdir(top))) {
        if (!is_hex64(t->d_name, strlen(t->d_name)))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, t->d_name);
        if (!(d = opendir(path)))
            continue;
        while ((f = readdir(d))) {
            size_t n = strlen(f->d_name);
            sqlite3 *db = NULL;
            sqlite3_stmt *st = NULL;
            char id[65];
            if (n != 64 + 7 || strcmp(f->d_name + 64, ".sqlite") || !is_hex64(f->d_name, 64))
                continue;
            memcpy(id, f->d_name, 64);
            id[64] = 0;
            snprintf(path, sizeof(path), "%s/%s/%s", dir, t->d_name, f->d_name);
            if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
                sqlite3_prepare_v2(db, "SELECT at FROM _cf_ALARM", -1, &st, NULL) == SQLITE_OK &&
                sqlite3_step(st) == SQLITE_ROW)
                put(a, t->d_name, id, sqlite3_column_int64(st, 0));
            sqlite3_finalize(st);
            sqlite3_close(db);
        }
        closedir(d);
    }
    closedir(top);
    if (a->armed)
        thaw_log("worker %s: %d Durable Object alarm%s armed from its storage",
                 worker_name(a), a->armed, a->armed == 1 ? "" : "s");
}

static int64_t backoff_ms(void)
{
    const char *v = getenv("THAW_DO_ALARM_BACKOFF_MS");
    long long n = v && *v ? atoll(v) : 0;

    return n > 0 && n <= 3600000 ? n : 2000;
}

void thaw_do_alarms_follow(struct thaw_worker *w)
{
    struct thaw_do_alarms *a = w->do_alarms;
    json_t *root, *classes, *info, *map;
    const char *name;

    if (!w->cfg.json || !w->state_dir)
        return;
    root = json_loads(w->cfg.json, 0, NULL);
    classes = json_object_get(json_object_get(root, "_thaw_do"), "classes");
    if (!a && json_object_size(classes) == 0) {
        json_decref(root);
        return; /* no objects: no timer, no scan */
    }
    map = json_object();
    json_object_foreach(classes, name, info) {
        const char *key = json_string_value(json_object_get(info, "key"));
        if (key)
            json_object_set_new(map, key, json_string(name));
    }
    json_decref(root);
    if (!a) {
        if (!(a = calloc(1, sizeof(*a)))) {
            json_decref(map);
            thaw_log("worker %s: out of memory: its Durable Object alarms do not run",
                     w->cfg.name ? w->cfg.name : "worker");
            return;
        }
        a->w = w;
        a->refs = 2; /* the worker's and the timer handle's */
        a->backoff_ms = backoff_ms();
        uv_timer_init(w->loop, &a->timer);
        a->timer.data = a;
        w->do_alarms = a;
        load(a, w->state_dir);
    }
    json_decref(a->classes);
    a->classes = map;
    arm(a);
}

static void on_timer_closed(uv_handle_t *h)
{
    unref(h->data);
}

void thaw_do_alarms_close(struct thaw_worker *w)
{
    struct thaw_do_alarms *a = w->do_alarms;

    if (!a)
        return;
    w->do_alarms = NULL;
    a->w = NULL;
    uv_timer_stop(&a->timer);
    uv_close((uv_handle_t *)&a->timer, on_timer_closed);
    unref(a); /* the worker's; events in flight hold theirs */
}

int thaw_do_alarms_armed(const struct thaw_worker *w)
{
    const struct thaw_do_alarms *a = w->do_alarms;

    return a ? a->armed : 0;
}

void thaw__do_alarms_note(struct thaw_worker *w, const char *ns, const char *id,
                          int64_t at_ms, int64_t if_at)
{
    struct thaw_do_alarms *a = w ? w->do_alarms : NULL;
    struct entry **pp;

    if (!a)
        return;
    if (at_ms >= 0) {
        put(a, ns, id, at_ms);
    } else if (*(pp = find(a, ns, id)) && (if_at < 0 || (*pp)->at == if_at)) {
        if ((*pp)->running)
            (*pp)->at = -1; /* its event ends it: done() sees another alarm */
        else
            drop(a, pp);
    }
    arm(a);
}

void thaw__do_alarms_forget(struct thaw_worker *w, const char *ns)
{
    struct thaw_do_alarms *a = w ? w->do_alarms : NULL;
    struct entry **pp;

    if (!a)
        return;
    for (pp = &a->list; *pp;) {
        if (strcmp((*pp)->ns, ns) != 0)
            pp = &(*pp)->next;
        else if ((*pp)->running)
            (*pp)->at = -1, pp = &(*pp)->next; /* its event's end drops it */
        else
            drop(a, pp);
    }
    arm(a);
}
