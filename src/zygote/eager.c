/* _thaw_fast.start(coro, loop) -> (task, finished): an eager task, as
 * Python 3.12's asyncio.Task(..., eager_start=True), for 3.11.
 *
 * The coroutine's first step runs at once, inside a task of its own: the
 * task is created first and made the loop's current task, so what the
 * first step enters (asyncio.timeout, anyio's cancel scopes, current_task()
 * itself) belongs to the task that carries on. A coroutine that finishes
 * in that step costs its caller no loop turn; one that suspends goes on in
 * its task. That is how a request's handler runs, and asgi.fetch's app
 * (python/workers/_asgi_eager.py has the same in Python, and says more).
 *
 * The task's coroutine is an Eager object wrapping the user's coroutine:
 * the task's first step gets from it what the first step awaits (or the
 * outcome, when it finished); after that it is a transparent proxy. */
#define PY_SSIZE_T_CLEAN
#include "zygote/fast-py.h"

#include <structmember.h>

enum eager_state {
    FIRST_SUSPENDED, /* the first step awaits `pending`: hand it to the task */
    FIRST_DONE,      /* the first step finished with `outcome` */
    RUNNING,         /* a proxy for the coroutine */
    CLOSED,
};

typedef struct {
    PyObject_HEAD
    PyObject *coro;
    PyObject *pending;
    PyObject *outcome; /* the result, or the exception (failed) */
    int failed;
    enum eager_state state;
} Eager;

static PyTypeObject Eager_Type;
/* from asyncio.tasks, looked up once */
static PyObject *task_type, *enter_task, *leave_task, *current_tasks, *task_kwnames;
static PyObject *get_task_factory; /* the method's name */

static void forget(Eager *e)
{
    e->state = CLOSED;
    Py_CLEAR(e->coro);
    Py_CLEAR(e->pending);
    Py_CLEAR(e->outcome);
}

static PySendResult eager_am_send(PyObject *self, PyObject *arg, PyObject **result)
{
    Eager *e = (Eager *)self;
    PySendResult r;

    switch (e->state) {
    case FIRST_SUSPENDED:
        e->state = RUNNING;
        if (!e->pending) /* start() failed before the first step: take it now */
            return eager_am_send(self, arg, result);
        *result = e->pending; /* the reference moves to the task */
        e->pending = NULL;
        return PYGEN_NEXT;
    case FIRST_DONE:
        if (e->failed) {
            PyObject *exc = e->outcome;

            e->outcome = NULL;
            PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
            *result = NULL;
            forget(e);
            return PYGEN_ERROR;
        }
        *result = e->outcome;
        e->outcome = NULL;
        forget(e);
        return PYGEN_RETURN;
    case RUNNING:
        r = PyIter_Send(e->coro, arg, result);
        if (r != PYGEN_NEXT)
            forget(e);
        return r;
    default:
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
        *result = NULL;
        return PYGEN_ERROR;
    }
}

static PyObject *eager_send(PyObject *self, PyObject *arg)
{
    PyObject *result;
    PySendResult r = eager_am_send(self, arg, &result);

    if (r == PYGEN_RETURN) {
        PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, result);

        Py_DECREF(result);
        if (stop) {
            PyErr_SetObject(PyExc_StopIteration, stop);
            Py_DECREF(stop);
        }
        return NULL;
    }
    return r == PYGEN_NEXT ? result : NULL;
}

static PyObject *eager_iternext(PyObject *self)
{
    return eager_send(self, Py_None);
}

/* throw's arguments raised as they are (fast-py.h) */
PyObject *thaw__raise_thrown(PyObject *args)
{
    PyObject *typ, *val = NULL, *tb = NULL;

    if (!PyArg_UnpackTuple(args, "throw", 1, 3, &typ, &val, &tb))
        return NULL;
    if (PyExceptionInstance_Check(typ))
        PyErr_SetObject((PyObject *)Py_TYPE(typ), typ);
    else if (PyExceptionClass_Check(typ))
        PyErr_SetObject(typ, val);
    else
        PyErr_SetString(PyExc_TypeError, "exceptions must derive from BaseException");
    return NULL;
}

/* A throw (the task's cancel) goes where the coroutine waits. After a
 * first step that finished, it is raised as it is: the task ends with it
 * (cancelled), as the task of an ordinary coroutine would. */
static PyObject *eager_throw(PyObject *self, PyObject *args)
{
    Eager *e = (Eager *)self;
    PyObject *coro = e->coro, *meth, *out;

    if (!coro || e->state == FIRST_DONE) {
        forget(e);
        return thaw__raise_thrown(args);
    }
    Py_INCREF(coro);
    Py_CLEAR(e->pending);
    e->state = RUNNING;
    meth = PyObject_GetAttrString(coro, "throw");
    out = meth ? PyObject_Call(meth, args, NULL) : NULL;
    Py_XDECREF(meth);
    if (!out)
        forget(e);
    Py_DECREF(coro);
    return out;
}

static PyObject *eager_close(PyObject *self, PyObject *unused)
{
    Eager *e = (Eager *)self;
    PyObject *coro = e->coro, *out;

    if (!coro)
        Py_RETURN_NONE;
    Py_INCREF(coro);
    forget(e);
    out = PyObject_CallMethod(coro, "close", NULL);
    Py_DECREF(coro);
    return out;
}

static PyObject *eager_qualname(PyObject *self, void *closure)
{
    Eager *e = (Eager *)self;

    if (e->coro)
        return PyObject_GetAttrString(e->coro, "__qualname__");
    return PyUnicode_FromString("eager");
}

static int eager_traverse(PyObject *self, visitproc visit, void *arg)
{
    Eager *e = (Eager *)self;

    Py_VISIT(e->coro);
    Py_VISIT(e->pending);
    Py_VISIT(e->outcome);
    return 0;
}

static int eager_clear(PyObject *self)
{
    forget((Eager *)self);
    return 0;
}

static void eager_dealloc(PyObject *self)
{
    PyObject_GC_UnTrack(self);
    forget((Eager *)self);
    PyObject_GC_Del(self);
}

static PyMethodDef eager_methods[] = {
    {"send", eager_send, METH_O, NULL},
    {"throw", eager_throw, METH_VARARGS, NULL},
    {"close", eager_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef eager_getset[] = {
    {"__qualname__", eager_qualname, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyAsyncMethods eager_async = {.am_send = eager_am_send};

static PyTypeObject Eager_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_thaw_fast.Eager",
    .tp_basicsize = sizeof(Eager),
    .tp_dealloc = eager_dealloc,
    .tp_as_async = &eager_async,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The coroutine of an eager task (_thaw_fast.start).",
    .tp_traverse = eager_traverse,
    .tp_clear = eager_clear,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = eager_iternext,
    .tp_methods = eager_methods,
    .tp_getset = eager_getset,
};

/* the task, made the loop's current one, first */
static PyObject *make_task(Eager *e, PyObject *loop, PyObject *ctx)
{
    PyObject *factory = PyObject_CallMethodNoArgs(loop, get_task_factory), *task;

    if (!factory)
        return NULL;
    if (factory == Py_None) {
        /* asyncio.Task itself: the loop's create_task wrapper costs more */
        PyObject *argv[3] = {(PyObject *)e, loop, ctx};

        task = PyObject_Vectorcall(task_type, argv, 1, task_kwnames);
    } else {
        PyObject *meth = PyObject_GetAttrString(loop, "create_task"), *argv[2] = {(PyObject *)e, ctx};
        PyObject *kw = PyTuple_Pack(1, PyTuple_GET_ITEM(task_kwnames, 1));

        task = meth && kw ? PyObject_Vectorcall(meth, argv, 1, kw) : NULL;
        Py_XDECREF(meth);
        Py_XDECREF(kw);
    }
    Py_DECREF(factory);
    return task;
}

static PyObject *call2(PyObject *fn, PyObject *a, PyObject *b)
{
    PyObject *argv[2] = {a, b};

    return PyObject_Vectorcall(fn, argv, 2, NULL);
}

/* The task, and its coroutine's first step. take: the caller takes the
 * outcome of a first step that finished (*value: the result, or the
 * exception when *failed), and the task ends with None. Else the task
 * ends with that outcome, and *value is NULL. Returns the task, or NULL
 * with an exception (KeyboardInterrupt and SystemExit of the first step
 * come out here, as from an ordinary task's step). *context: the task's
 * context (a new reference), when asked for. */
static PyObject *begin(PyObject *coro, PyObject *loop, int take, int *finished,
                       PyObject **value, int *failed, PyObject **context)
{
    PyObject *ctx, *task = NULL, *outer = NULL, *result = NULL, *r, *out = NULL;
    PyObject *etype = NULL, *evalue = NULL, *etb = NULL;
    Eager *e;
    PySendResult status;
    int reraise = 0;

    *value = NULL;
    *finished = *failed = 0;
    if (!(e = PyObject_GC_New(Eager, &Eager_Type)))
        return NULL;
    e->coro = Py_NewRef(coro);
    e->pending = e->outcome = NULL;
    e->failed = 0;
    e->state = FIRST_SUSPENDED;
    PyObject_GC_Track((PyObject *)e);
    if (!(ctx = PyContext_CopyCurrent()))
        goto done;
    if (!(task = make_task(e, loop, ctx)))
        goto done;
    /* asyncio.current_task(loop) */
    outer = PyDict_GetItemWithError(current_tasks, loop);
    if (!outer && PyErr_Occurred())
        goto done;
    outer = Py_NewRef(outer ? outer : Py_None);
    if (outer != Py_None && !(r = call2(leave_task, loop, outer)))
        goto done;
    if (outer != Py_None)
        Py_DECREF(r);
    if (!(r = call2(enter_task, loop, task)))
        goto restore_outer;
    Py_DECREF(r);
    if (PyContext_Enter(ctx) == 0) {
        status = PyIter_Send(coro, Py_None, &result);
        PyContext_Exit(ctx);
    } else {
        status = PYGEN_ERROR;
    }
    if (status == PYGEN_NEXT) {
        e->pending = result;
    } else if (status == PYGEN_RETURN) {
        e->state = FIRST_DONE;
        e->outcome = result;
    } else {
        e->state = FIRST_DONE;
        e->failed = 1;
        PyErr_Fetch(&etype, &evalue, &etb);
        PyErr_NormalizeException(&etype, &evalue, &etb);
        if (etb)
            PyException_SetTraceback(evalue, etb);
        e->outcome = Py_NewRef(evalue);
        /* as an ordinary task would, these leave the loop at once */
        reraise = PyErr_GivenExceptionMatches(etype, PyExc_KeyboardInterrupt) ||
                  PyErr_GivenExceptionMatches(etype, PyExc_SystemExit);
    }
    if (status != PYGEN_NEXT) {
        *finished = 1;
        if (take) {
            *value = e->outcome;
            *failed = e->failed;
            e->outcome = Py_NewRef(Py_None);
            e->failed = 0;
        }
    }
    if (!(r = call2(leave_task, loop, task)))
        goto restore_outer;
    Py_DECREF(r);
    if (outer != Py_None && !(r = call2(enter_task, loop, outer)))
        goto done;
    if (outer != Py_None)
        Py_DECREF(r);
    if (reraise) {
        PyErr_Restore(etype, evalue, etb);
        etype = evalue = etb = NULL;
        Py_CLEAR(*value);
        goto done;
    }
    out = Py_NewRef(task);
    if (context)
        *context = Py_NewRef(ctx);
    goto done;
restore_outer:
    if (outer && outer != Py_None) {
        PyObject *t, *v, *tb;

        PyErr_Fetch(&t, &v, &tb);
        Py_XDECREF(call2(enter_task, loop, outer));
        PyErr_Restore(t, v, tb);
    }
done:
    Py_XDECREF(etype);
    Py_XDECREF(evalue);
    Py_XDECREF(etb);
    Py_XDECREF(outer);
    Py_XDECREF(task);
    Py_XDECREF(ctx);
    Py_DECREF(e);
    if (!out)
        Py_CLEAR(*value);
    return out;
}

/* start(coro, loop) -> (task, finished) */
PyObject *thaw__eager_start(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *task, *value, *out;
    int finished, failed;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "start(coro, loop)");
        return NULL;
    }
    if (!(task = begin(args[0], args[1], 0, &finished, &value, &failed, NULL)))
        return NULL;
    out = PyTuple_Pack(2, task, finished ? Py_True : Py_False);
    Py_DECREF(task);
    return out;
}

/* step(coro, loop) -> (task, state, value, context): state 0, the
 * coroutine waits and goes on in task (value None); 1, it returned value;
 * 2, it raised value. After 1 and 2 the task ends with None: the outcome
 * is the caller's, who needs no wrapper coroutine to learn it. context:
 * the task's (Python 3.11 has no Task.get_context()), to go on in. */
PyObject *thaw__eager_step(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *task, *value, *out, *ctx;
    int finished, failed;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "step(coro, loop)");
        return NULL;
    }
    if (!(task = begin(args[0], args[1], 1, &finished, &value, &failed, &ctx)))
        return NULL;
    if (!(out = PyTuple_New(4))) {
        Py_DECREF(task);
        Py_DECREF(ctx);
        Py_XDECREF(value);
        return NULL;
    }
    PyTuple_SET_ITEM(out, 0, task);
    PyTuple_SET_ITEM(out, 1, PyLong_FromLong(!finished ? 0 : failed ? 2 : 1));
    PyTuple_SET_ITEM(out, 2, value ? value : Py_NewRef(Py_None));
    PyTuple_SET_ITEM(out, 3, ctx);
    return out;
}

int thaw__eager_init(PyObject *module)
{
    PyObject *aio, *abc, *coroutine, *r;

    if (PyType_Ready(&Eager_Type) < 0)
        return -1;
    if (task_type)
        return 0; /* a second import of the module (tests) */
    /* what asyncio itself uses (the C ones, unless _asyncio got imported
     * before asyncio: asyncio then falls back to its Python ones) */
    if (!(aio = PyImport_ImportModule("asyncio.tasks")))
        return -1;
    task_type = PyObject_GetAttrString(aio, "Task");
    enter_task = PyObject_GetAttrString(aio, "_enter_task");
    leave_task = PyObject_GetAttrString(aio, "_leave_task");
    current_tasks = PyObject_GetAttrString(aio, "_current_tasks"); /* loop -> task */
    Py_DECREF(aio);
    if (!task_type || !enter_task || !leave_task || !current_tasks)
        return -1;
    if (!PyDict_Check(current_tasks)) {
        PyErr_SetString(PyExc_ImportError, "asyncio.tasks._current_tasks is not a dict");
        return -1;
    }
    if (!(task_kwnames = Py_BuildValue("(ss)", "loop", "context")) ||
        !(get_task_factory = PyUnicode_InternFromString("get_task_factory")))
        return -1;
    /* asyncio.Task takes only what asyncio.iscoroutine() accepts */
    if (!(abc = PyImport_ImportModule("collections.abc")))
        return -1;
    coroutine = PyObject_GetAttrString(abc, "Coroutine");
    Py_DECREF(abc);
    r = coroutine ? PyObject_CallMethod(coroutine, "register", "O", (PyObject *)&Eager_Type) : NULL;
    Py_XDECREF(coroutine);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}
