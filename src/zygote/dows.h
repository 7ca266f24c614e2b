/* What src/zygote/dows.c (a Durable Object's WebSocket event),
 * dows-relay.c (an object's own task) and dows-send.c (the frames the
 * host queues) share. Internal to the _thaw_fast module. */
#ifndef THAW_ZYGOTE_DOWS_H
#define THAW_ZYGOTE_DOWS_H

#include <Python.h>
#include <stdint.h>

/* set by ws_setup (dows.c), one instance per process; inst NULL before */
struct thaw_dows_rt {
    PyObject *inst;      /* thaw_runtime.instance.Instance */
    PyObject *inst_dict; /* its __dict__ */
    PyObject *loop;
    PyObject *ws_module; /* workers._durable_ws: its _pipe, _pipe_call */
};
extern struct thaw_dows_rt thaw__dows_rt;

/* dows-send.c: data (bytes, stolen) onto the instance's out queue, as
 * inst._queue does; the event's answer (RESP_HEAD 200, RESP_END) */
int thaw__dows_queue(PyObject *data);
int thaw__dows_answer_200(uint32_t sid);
int thaw__dows_send_init(PyObject *module);

/* dows-relay.c: the coroutine of an object's own task. current: a
 * suspended event's rest (fast_rest), run in ctx; first: what its first
 * step (ws_event's) yielded, for the task to take. */
typedef struct {
    PyObject_HEAD
    PyObject *task;    /* the task whose coroutine this is */
    PyObject *idle;    /* the future the task waits on while idle, or NULL */
    PyObject *current;
    PyObject *ctx;
    PyObject *first;
    int stopping;      /* stop(): the task ends at its next step */
    int dead;          /* the task ended: a new Relay is made */
} Relay;

extern PyTypeObject thaw__Relay_Type;
/* a new relay and its task (its first step, to come, makes it wait) */
Relay *thaw__relay_new(void);
/* wakes the idle task: its next step runs `current`, or ends it */
int thaw__relay_wake(Relay *r);
int thaw__dows_relay_init(PyObject *module);

#endif
