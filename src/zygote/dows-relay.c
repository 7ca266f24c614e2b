/* The coroutine of a Durable Object's own asyncio task (src/zygote/
 * dows.h): one task per object, not one per WebSocket message. While a
 * message's handler runs (dows.c) the task is asyncio.current_task(); a
 * handler that suspends goes on in it (its rest: _durable_ws.fast_rest,
 * in the event's context); idle, the task waits on a future of its own,
 * which ws_event resolves when it hands it the next rest. A cancel (the
 * event's time limit) goes to the rest; the task itself goes on
 * (uncancel). stop() ends it (the object evicted). */
#define PY_SSIZE_T_CLEAN
#include "zygote/fast-py.h"
#include "zygote/dows.h"

static PyObject *task_type;
static PyObject *s_create_future, *s_blocking, *s_set_result, *s_uncancel, *s_loop_kw, *s_done_m;



/* Idle: a future of the loop's to wait on (yielded as `await` would). */
static PySendResult relay_idle(Relay *r, PyObject **result)
{
    PyObject *fut;

    Py_CLEAR(r->current);
    Py_CLEAR(r->ctx);
    Py_CLEAR(r->first);
    if (r->stopping) {
        r->dead = 1;
        *result = Py_NewRef(Py_None);
        return PYGEN_RETURN;
    }
    if (!(fut = PyObject_CallMethodNoArgs(thaw__dows_rt.loop, s_create_future)) ||
        PyObject_SetAttr(fut, s_blocking, Py_True) < 0) {
        Py_XDECREF(fut);
        r->dead = 1;
        *result = NULL;
        return PYGEN_ERROR;
    }
    Py_XSETREF(r->idle, Py_NewRef(fut));
    *result = fut;
    return PYGEN_NEXT;
}

/* The current event's rest took a step: on to idle when it ended. A
 * CancelledError out of it (its event cancelled) is its end: the task
 * goes on (uncancel, as asyncio.timeout does for its own). */
static PySendResult relay_after(Relay *r, PySendResult st, PyObject **result)
{
    if (st == PYGEN_NEXT)
        return st;
    if (st == PYGEN_RETURN)
        Py_CLEAR(*result);
    else if (PyErr_ExceptionMatches(PyExc_BaseException) &&
             (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt) ||
              PyErr_ExceptionMatches(PyExc_SystemExit))) {
        r->dead = 1; /* these leave the loop, as from any task */
        return st;
    } else {
        PyObject *u;
        /* fast_rest catches everything else but the cancel */
        PyErr_Clear();
        if (r->task && (u = PyObject_CallMethodNoArgs(r->task, s_uncancel)))
            Py_DECREF(u);
        else
            PyErr_Clear();
    }
    return relay_idle(r, result);
}

static PySendResult relay_step(Relay *r, PyObject *arg, PyObject *exc, PyObject **result)
{
    PyObject *cur = r->current, *ctx = r->ctx;
    PySendResult st;

    Py_CLEAR(r->idle);
    if (!cur) {
        if (exc) { /* cancelled while idle: nothing to cancel */
            PyObject *u = r->task ? PyObject_CallMethodNoArgs(r->task, s_uncancel) : NULL;
            Py_XDECREF(u);
            PyErr_Clear();
        }
        return relay_idle(r, result);
    }
    if (r->first) {
        PyObject *f = r->first;
        r->first = NULL;
        if (!exc) { /* hand the task what the first step awaits */
            *result = f;
            return PYGEN_NEXT;
        }
        Py_DECREF(f); /* a cancel before the task took it: thrown in below */
    }
    Py_INCREF(cur);
    Py_INCREF(ctx);
    if (PyContext_Enter(ctx) < 0) {
        st = PYGEN_ERROR;
    } else {
        if (exc) {
            PyObject *r2 = PyObject_CallMethod(cur, "throw", "O", exc);
            if (r2) {
                *result = r2;
                st = PYGEN_NEXT;
            } else if (PyErr_ExceptionMatches(PyExc_StopIteration)) {
                PyObject *t, *v, *tb;
                PyErr_Fetch(&t, &v, &tb);
                Py_XDECREF(t);
                Py_XDECREF(v);
                Py_XDECREF(tb);
                *result = Py_NewRef(Py_None);
                st = PYGEN_RETURN;
            } else {
                *result = NULL;
                st = PYGEN_ERROR;
            }
        } else {
            st = PyIter_Send(cur, arg, result);
        }
        PyContext_Exit(ctx);
    }
    Py_DECREF(cur);
    Py_DECREF(ctx);
    return relay_after(r, st, result);
}

static PySendResult relay_am_send(PyObject *self, PyObject *arg, PyObject **result)
{
    Relay *r = (Relay *)self;

    if (r->dead) {
        PyErr_SetString(PyExc_RuntimeError, "a Durable Object's relay ended");
        *result = NULL;
        return PYGEN_ERROR;
    }
    return relay_step(r, arg, NULL, result);
}

static PyObject *relay_send(PyObject *self, PyObject *arg)
{
    PyObject *result;
    PySendResult st = relay_am_send(self, arg, &result);

    if (st == PYGEN_RETURN) { /* it returns None only */
        Py_DECREF(result);
        PyErr_SetNone(PyExc_StopIteration);
        return NULL;
    }
    return st == PYGEN_NEXT ? result : NULL;
}

static PyObject *relay_iternext(PyObject *self)
{
    return relay_send(self, Py_None);
}

static PyObject *relay_throw(PyObject *self, PyObject *args)
{
    Relay *r = (Relay *)self;
    PyObject *typ, *val = NULL, *tb = NULL, *exc, *result;
    PySendResult st;

    if (!PyArg_UnpackTuple(args, "throw", 1, 3, &typ, &val, &tb))
        return NULL;
    if (PyExceptionInstance_Check(typ))
        exc = Py_NewRef(typ);
    else if (PyExceptionClass_Check(typ))
        exc = val && PyExceptionInstance_Check(val) ? Py_NewRef(val)
                                                    : PyObject_CallNoArgs(typ);
    else {
        PyErr_SetString(PyExc_TypeError, "exceptions must derive from BaseException");
        return NULL;
    }
    if (!exc)
        return NULL;
    if (r->dead || (!r->current && (PyErr_GivenExceptionMatches(exc, PyExc_GeneratorExit) ||
                        PyErr_GivenExceptionMatches(exc, PyExc_KeyboardInterrupt) ||
                        PyErr_GivenExceptionMatches(exc, PyExc_SystemExit)))) {
        r->dead = 1;
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
        return NULL;
    }
    st = relay_step(r, NULL, exc, &result);
    Py_DECREF(exc);
    if (st == PYGEN_RETURN) {
        Py_DECREF(result);
        PyErr_SetNone(PyExc_StopIteration);
        return NULL;
    }
    return st == PYGEN_NEXT ? result : NULL;
}

static PyObject *relay_close(PyObject *self, PyObject *unused)
{
    Relay *r = (Relay *)self;
    PyObject *cur = r->current, *out;

    r->dead = 1;
    Py_CLEAR(r->idle);
    Py_CLEAR(r->first);
    if (!cur)
        Py_RETURN_NONE;
    r->current = NULL;
    out = PyObject_CallMethod(cur, "close", NULL);
    Py_DECREF(cur);
    Py_CLEAR(r->ctx);
    return out;
}

/* Wakes the idle task: its next step runs `current`, or ends it. */
int thaw__relay_wake(Relay *r)
{
    PyObject *fut = r->idle, *res;

    if (!fut)
        return 0; /* not waiting yet: its first step is to come */
    r->idle = NULL;
    if (!(res = PyObject_CallMethodNoArgs(fut, s_done_m))) {
        Py_DECREF(fut);
        return -1;
    }
    Py_DECREF(res);
    if (res == Py_True) { /* its step is due already */
        Py_DECREF(fut);
        return 0;
    }
    res = PyObject_CallMethodOneArg(fut, s_set_result, Py_None);
    Py_DECREF(fut);
    if (!res)
        return -1;
    Py_DECREF(res);
    return 0;
}

/* stop(): the object goes (evicted): its task ends rather than wait
 * forever (a pending task collected is logged as an error). */
static PyObject *relay_stop(PyObject *self, PyObject *unused)
{
    Relay *r = (Relay *)self;

    r->stopping = 1;
    if (!r->current && thaw__relay_wake(r) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static int relay_traverse(PyObject *self, visitproc visit, void *arg)
{
    Relay *r = (Relay *)self;

    Py_VISIT(r->task);
    Py_VISIT(r->idle);
    Py_VISIT(r->current);
    Py_VISIT(r->ctx);
    Py_VISIT(r->first);
    return 0;
}

static int relay_clear(PyObject *self)
{
    Relay *r = (Relay *)self;

    Py_CLEAR(r->task);
    Py_CLEAR(r->idle);
    Py_CLEAR(r->current);
    Py_CLEAR(r->ctx);
    Py_CLEAR(r->first);
    return 0;
}

static void relay_dealloc(PyObject *self)
{
    PyObject_GC_UnTrack(self);
    relay_clear(self);
    PyObject_GC_Del(self);
}

static PyObject *relay_task(PyObject *self, void *closure)
{
    Relay *r = (Relay *)self;

    return Py_NewRef(r->task ? r->task : Py_None);
}

static PyObject *relay_qualname(PyObject *self, void *closure)
{
    return PyUnicode_FromString("durable_object_events");
}

static PyMethodDef relay_methods[] = {
    {"send", relay_send, METH_O, NULL},
    {"throw", relay_throw, METH_VARARGS, NULL},
    {"close", relay_close, METH_NOARGS, NULL},
    {"stop", relay_stop, METH_NOARGS, "stop(): the object's task ends."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef relay_getset[] = {
    {"task", relay_task, NULL, NULL, NULL},
    {"__qualname__", relay_qualname, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyAsyncMethods relay_async = {.am_send = relay_am_send};

PyTypeObject thaw__Relay_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_thaw_fast.Relay",
    .tp_basicsize = sizeof(Relay),
    .tp_dealloc = relay_dealloc,
    .tp_as_async = &relay_async,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The coroutine of a Durable Object's own task (_thaw_fast.ws_event).",
    .tp_traverse = relay_traverse,
    .tp_clear = relay_clear,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = relay_iternext,
    .tp_methods = relay_methods,
    .tp_getset = relay_getset,
};

Relay *thaw__relay_new(void)
{
    Relay *r = PyObject_GC_New(Relay, &thaw__Relay_Type);
    PyObject *argv[2], *kw;

    if (!r)
        return NULL;
    r->task = r->idle = r->current = r->ctx = r->first = NULL;
    r->stopping = r->dead = 0;
    PyObject_GC_Track((PyObject *)r);
    argv[0] = (PyObject *)r;
    argv[1] = thaw__dows_rt.loop;
    kw = PyTuple_Pack(1, s_loop_kw);
    r->task = kw ? PyObject_Vectorcall(task_type, argv, 1, kw) : NULL;
    Py_XDECREF(kw);
    if (!r->task) {
        Py_DECREF(r);
        return NULL;
    }
    return r;
}

int thaw__dows_relay_init(PyObject *module)
{
    PyObject *aio, *abc, *c, *r;

    if (PyType_Ready(&thaw__Relay_Type) < 0 ||
        PyModule_AddObjectRef(module, "Relay", (PyObject *)&thaw__Relay_Type) < 0)
        return -1;
    if (task_type)
        return 0; /* a second import of the module (tests) */
    if (!(aio = PyImport_ImportModule("asyncio.tasks")))
        return -1;
    task_type = PyObject_GetAttrString(aio, "Task");
    Py_DECREF(aio);
    if (!task_type)
        return -1;
    /* asyncio.Task takes only what asyncio.iscoroutine() accepts */
    abc = PyImport_ImportModule("collections.abc");
    c = abc ? PyObject_GetAttrString(abc, "Coroutine") : NULL;
    Py_XDECREF(abc);
    r = c ? PyObject_CallMethod(c, "register", "O", (PyObject *)&thaw__Relay_Type) : NULL;
    Py_XDECREF(c);
    if (!r)
        return -1;
    Py_DECREF(r);
    if (!(s_create_future = PyUnicode_InternFromString("create_future")) ||
        !(s_blocking = PyUnicode_InternFromString("_asyncio_future_blocking")) ||
        !(s_set_result = PyUnicode_InternFromString("set_result")) ||
        !(s_uncancel = PyUnicode_InternFromString("uncancel")) ||
        !(s_loop_kw = PyUnicode_InternFromString("loop")) ||
        !(s_done_m = PyUnicode_InternFromString("done")))
        return -1;
    return 0;
}
