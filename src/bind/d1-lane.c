#include <stdlib.h>
#include <string.h>

#include "bind/d1-lane.h"

struct turn {
    struct thaw_d1_lane *lane;
    struct thaw_sqlq *q;
    thaw_sqlq_work_cb work;
    thaw_sqlq_done_cb done;
    void *arg;
    struct turn *next;
};

struct thaw_d1_lane {
    char *name;
    int refs;
    int busy;                  /* a turn is on the pool */
    struct turn *head, *tail;  /* waiting */
    struct thaw_d1_lane *next;
};

static struct thaw_d1_lane *lanes;

struct thaw_d1_lane *thaw_d1_lane_get(const char *name)
{
    struct thaw_d1_lane *l;

    name = name ? name : "";
    for (l = lanes; l; l = l->next) {
        if (strcmp(l->name, name) == 0) {
            l->refs++;
            return l;
        }
    }
    l = calloc(1, sizeof(*l));
    if (!l || !(l->name = strdup(name))) {
        free(l);
        return NULL;
    }
    l->refs = 1;
    l->next = lanes;
    lanes = l;
    return l;
}

void thaw_d1_lane_put(struct thaw_d1_lane *l)
{
    struct thaw_d1_lane **pp;

    if (!l || --l->refs > 0)
        return;
    for (pp = &lanes; *pp; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    }
    free(l->name);
    free(l);
}

static void start(struct turn *t);

static void on_work(sqlite3 *db, void *arg)
{
    struct turn *t = arg;

    t->work(db, t->arg);
}

static void on_done(void *arg)
{
    struct turn *t = arg, *next;
    struct thaw_d1_lane *l = t->lane;

    /* done may release the last binding of the lane: hold it till the
     * next turn is started */
    l->refs++;
    t->done(t->arg);
    free(t);
    next = l->head;
    if (next) {
        l->head = next->next;
        if (!l->head)
            l->tail = NULL;
        start(next);
    } else {
        l->busy = 0;
    }
    thaw_d1_lane_put(l);
}

static void start(struct turn *t)
{
    t->lane->busy = 1;
    thaw_sqlq_submit(t->q, on_work, on_done, t);
}

void thaw_d1_lane_submit(struct thaw_d1_lane *l, struct thaw_sqlq *q,
                         thaw_sqlq_work_cb work, thaw_sqlq_done_cb done, void *arg)
{
    struct turn *t = calloc(1, sizeof(*t));

    if (!t)
        abort(); /* as thaw_sqlq_submit: nothing sensible to answer with */
    t->lane = l;
    t->q = q;
    t->work = work;
    t->done = done;
    t->arg = arg;
    if (!l->busy) {
        start(t);
        return;
    }
    if (l->tail)
        l->tail->next = t;
    else
        l->head = t;
    l->tail = t;
}
