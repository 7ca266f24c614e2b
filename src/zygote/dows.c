/* _thaw_fast's path for a Durable Object's WebSocket message (issue 18:
 * the echo's round trip), python/workers/_durable_ws.py being the
 * reference: the same steps, in C, for the common case only.
 *
 * ws_event(sid, payload) takes a message event (a DO_WS frame, from
 * src/do/ws.c) when its object is in memory and free (its gate not
 * busy, no blockConcurrencyWhile pending), the socket is a hibernatable
 * one the object knows, and the object has a webSocketMessage; else it
 * returns the event's meta before doing anything, and the Python path
 * (_durable_host.start) takes the event. It then does what that path
 * does: the gate taken, request_id set in the event's own context,
 * webSocketMessage(ws, message) started eagerly, and when it finishes in
 * that step with no storage write pending (an echo), the answer queued
 * and the gate given back, all in this call.
 *
 * No asyncio.Task per message: each object has one task of its own (a
 * Relay's), made on its first message, which is asyncio.current_task()
 * while a handler runs. A handler that suspends goes on in that task:
 * _durable_ws.fast_rest (Python) takes over the handler's coroutine and
 * does the rest of the event (its output gate, the answer, the gate).
 * The object's gate keeps its events one at a time, so the task runs
 * at most one at a time; idle, it waits on a future of its own.
 *
 * WsSend(id) is ws.send's way out for such a socket: the BIND_WS_* frame
 * on the host's pipe, built and queued here. */
#define PY_SSIZE_T_CLEAN
#include "zygote/fast-py.h"

#include <stddef.h>
#include <string.h>

#include "ipc/ipc-proto.h"

/* set once by ws_setup (one instance per process) */
static PyObject *inst;        /* thaw_runtime.instance.Instance */
static PyObject *inst_dict;   /* its __dict__ */
static PyObject *objects;     /* _durable_host._objects: (class, id) -> _Live */
static PyObject *state_type;  /* _durable_host.DurableObjectState */
static PyObject *storage_type; /* _durable_storage.DurableObjectStorage */
static PyObject *request_id;  /* thaw_runtime.output.request_id */
static PyObject *slow;        /* _durable_ws.fast_slow */
static PyObject *ws_module;   /* workers._durable_ws: its _pipe, _pipe_call */
static PyObject *loop;
static PyObject *task_type, *current_tasks;

/* interned names */
static PyObject *s_gate, *s_busy, *s_waiters, *s_obj, *s_ctx, *s_gates, *s_ws, *s_by_id, *s_do,
    *s_hib, *s_handler, *s_relay, *s_storage, *s_unconfirmed, *s_broken, *s_release,
    *s_out, *s_out_size, *s_flush_pending, *s_queue, *s_create_future, *s_blocking,
    *s_set_result, *s_uncancel, *s_done, *s_id, *s_pipe, *s_pipe_call, *s_client, *s_send,
    *s_loop_kw, *s_done_m;

/* ---- queueing frames on the instance's channel -------------------------- */

/* inst._queue(data), without the call while the dispatch's flush is
 * pending (instance._process): out.append, out_size += len. Steals data. */
static int queue(PyObject *data)
{
    /* its attributes, in its __dict__ (Instance has no slots) */
    PyObject *pending = PyDict_GetItemWithError(inst_dict, s_flush_pending), *out, *size, *more;
    int rc = -1;

    if (!pending || pending != Py_True ||
        !(out = PyDict_GetItemWithError(inst_dict, s_out)) || !PyList_Check(out) ||
        !(size = PyDict_GetItemWithError(inst_dict, s_out_size)) || !PyLong_CheckExact(size)) {
        PyObject *r;
        if (PyErr_Occurred())
            goto done;
        r = PyObject_CallMethodOneArg(inst, s_queue, data);
        rc = r ? 0 : -1;
        Py_XDECREF(r);
        goto done;
    }
    if (PyList_Append(out, data))
        goto done;
    more = PyLong_FromSsize_t(PyLong_AsSsize_t(size) + PyBytes_GET_SIZE(data));
    if (more) {
        rc = PyDict_SetItem(inst_dict, s_out_size, more);
        Py_DECREF(more);
    }
done:
    Py_DECREF(data);
    return rc;
}

static char *put_header(char *d, uint32_t len, uint8_t type, uint32_t sid)
{
    d[0] = (char)len, d[1] = (char)(len >> 8), d[2] = (char)(len >> 16), d[3] = (char)(len >> 24);
    d[4] = (char)type, d[5] = 0, d[6] = 0, d[7] = 0;
    d[8] = (char)sid, d[9] = (char)(sid >> 8), d[10] = (char)(sid >> 16), d[11] = (char)(sid >> 24);
    return d + THAW_IPC_HEADER_SIZE;
}

/* The event's answer, as _durable_ws._answer(inst, st, 200) makes it
 * (fast.response(sid, 200, None, (), None, False, False)). */
static int answer_200(uint32_t sid)
{
    static const char head[] = "\3\0\0\0" "200" "\0\0\0\0";
    PyObject *b = PyBytes_FromStringAndSize(NULL, 2 * THAW_IPC_HEADER_SIZE + 11);
    char *d;

    if (!b)
        return -1;
    d = put_header(PyBytes_AS_STRING(b), 11, THAW_IPC_RESP_HEAD, sid);
    memcpy(d, head, 11);
    put_header(d + 11, 0, THAW_IPC_RESP_END, sid);
    return queue(b);
}

/* ---- WsSend: ws.send's frames for the pipe -------------------------------- */

#define ID_BYTES 16
#define MAX_SEND (1024 * 1024 - ID_BYTES)

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    char id[ID_BYTES];
} WsSend;

static PyObject *wssend_vcall(PyObject *self, PyObject *const *args, size_t nargsf,
                              PyObject *kwnames);

static PyObject *wssend_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    const char *id;
    Py_ssize_t n;
    WsSend *s;

    if (!PyArg_ParseTuple(args, "y#:WsSend", &id, &n))
        return NULL;
    if (n != ID_BYTES) {
        PyErr_SetString(PyExc_ValueError, "WsSend(id): a socket id of 16 bytes");
        return NULL;
    }
    if (!(s = (WsSend *)type->tp_alloc(type, 0)))
        return NULL;
    memcpy(s->id, id, ID_BYTES);
    s->vectorcall = wssend_vcall;
    return (PyObject *)s;
}

/* the instance's pipe (_durable_ws._pipe_call: made again once done) */
static PyObject *get_pipe(void)
{
    PyObject *pipe, *done;

    if (!ws_module && !(ws_module = PyImport_ImportModule("workers._durable_ws")))
        return NULL;
    if (!(pipe = PyObject_GetAttr(ws_module, s_pipe)))
        return NULL;
    if (pipe != Py_None) {
        if (!(done = PyObject_GetAttr(pipe, s_done))) {
            Py_DECREF(pipe);
            return NULL;
        }
        Py_DECREF(done);
        if (done == Py_False)
            return pipe;
    }
    Py_DECREF(pipe);
    return PyObject_CallMethodNoArgs(ws_module, s_pipe_call);
}

/* send(ftype, payload): as _durable_ws._sender's closure, then
 * PendingCall.send_ws */
static PyObject *wssend_vcall(PyObject *self, PyObject *const *args, size_t nargsf,
                              PyObject *kwnames)
{
    WsSend *s = (WsSend *)self;
    long ftype;
    Py_buffer p;
    PyObject *pipe = NULL, *pid = NULL, *done = NULL, *frame = NULL, *out = NULL;
    unsigned long cid;
    char *d;

    if (PyVectorcall_NARGS(nargsf) != 2 || kwnames) {
        PyErr_SetString(PyExc_TypeError, "send(ftype, payload)");
        return NULL;
    }
    if ((ftype = PyLong_AsLong(args[0])) == -1 && PyErr_Occurred())
        return NULL;
    if (ftype < THAW_IPC_WS_TEXT || ftype > THAW_IPC_WS_CLOSE) {
        PyErr_SetString(PyExc_ValueError, "send(ftype, payload): a WS_* frame type");
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &p, PyBUF_SIMPLE) < 0)
        return NULL;
    if (p.len > MAX_SEND) {
        PyErr_Format(PyExc_ValueError, "a Durable Object's WebSocket message of %zd bytes is "
                     "over thaw's limit of %d bytes", p.len, MAX_SEND);
        goto done;
    }
    if (!(pipe = get_pipe()) || !(done = PyObject_GetAttr(pipe, s_done)))
        goto done;
    if (done != Py_False) { /* send_ws: a pipe that ended takes nothing */
        out = Py_NewRef(Py_None);
        goto done;
    }
    if (!(pid = PyObject_GetAttr(pipe, s_id)))
        goto done;
    cid = PyLong_AsUnsignedLong(pid);
    if (cid == (unsigned long)-1 && PyErr_Occurred())
        goto done;
    if (!(frame = PyBytes_FromStringAndSize(NULL, THAW_IPC_HEADER_SIZE + ID_BYTES + p.len)))
        goto done;
    d = put_header(PyBytes_AS_STRING(frame), (uint32_t)(ID_BYTES + p.len),
                   (uint8_t)(ftype + THAW_IPC_BIND_WS_TEXT - THAW_IPC_WS_TEXT), (uint32_t)cid);
    memcpy(d, s->id, ID_BYTES);
    memcpy(d + ID_BYTES, p.buf, (size_t)p.len);
    if (inst) {
        int rc = queue(frame);
        frame = NULL;
        if (rc == 0)
            out = Py_NewRef(Py_None);
    } else { /* no instance set up (tests of the SDK): the pipe's own way */
        PyObject *client = PyObject_GetAttr(pipe, s_client);
        out = client ? PyObject_CallMethodOneArg(client, s_send, frame) : NULL;
        Py_XDECREF(client);
    }
done:
    PyBuffer_Release(&p);
    Py_XDECREF(pipe);
    Py_XDECREF(pid);
    Py_XDECREF(done);
    Py_XDECREF(frame);
    return out;
}

static PyTypeObject WsSend_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_thaw_fast.WsSend",
    .tp_basicsize = sizeof(WsSend),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(WsSend, vectorcall),
    .tp_doc = "WsSend(id)(ftype, payload): a Durable Object's WebSocket frame, on the "
              "host's pipe.",
    .tp_new = wssend_new,
    .tp_call = PyVectorcall_Call,
};

/* ---- Relay: the coroutine of an object's own task ------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *task;    /* the task whose coroutine this is */
    PyObject *idle;    /* the future the task waits on while idle, or NULL */
    PyObject *current; /* a suspended event's rest (fast_rest), or NULL */
    PyObject *ctx;     /* its context */
    PyObject *first;   /* what its first step (ws_event's) yielded, for the task */
    int stopping;      /* stop(): the task ends at its next step */
    int dead;          /* the task ended: a new Relay is made */
} Relay;

static PyTypeObject Relay_Type;

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
    if (!(fut = PyObject_CallMethodNoArgs(loop, s_create_future)) ||
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
static int relay_wake(Relay *r)
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
    if (!r->current && relay_wake(r) < 0)
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

static PyTypeObject Relay_Type = {
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

/* A new relay and its task (its first step, to come, makes it wait). */
static Relay *relay_new(void)
{
    Relay *r = PyObject_GC_New(Relay, &Relay_Type);
    PyObject *argv[2], *kw;

    if (!r)
        return NULL;
    r->task = r->idle = r->current = r->ctx = r->first = NULL;
    r->stopping = r->dead = 0;
    PyObject_GC_Track((PyObject *)r);
    argv[0] = (PyObject *)r;
    argv[1] = loop;
    kw = PyTuple_Pack(1, s_loop_kw);
    r->task = kw ? PyObject_Vectorcall(task_type, argv, 1, kw) : NULL;
    Py_XDECREF(kw);
    if (!r->task) {
        Py_DECREF(r);
        return NULL;
    }
    return r;
}

/* ---- the event ---------------------------------------------------------- */

/* attribute or NULL, no exception (a missing one sends the event the
 * Python way) */
static PyObject *attr(PyObject *o, PyObject *name)
{
    PyObject *v = NULL;

    if (_PyObject_LookupAttr(o, name, &v) < 0)
        PyErr_Clear();
    return v;
}

/* asyncio's _enter_task / _leave_task, on the dict they keep
 * (asyncio.tasks._current_tasks: loop -> task), without their calls */
static int enter(PyObject *task)
{
    return PyDict_SetItem(current_tasks, loop, task);
}

static int leave(void)
{
    return PyDict_DelItem(current_tasks, loop);
}

/* ---- strings of the frame, made once ---------------------------------- */

/* The same few objects, sockets and classes come again and again: their
 * latin-1 strings (and an object's (class, id) key) are kept in small
 * direct-mapped tables, so a message's lookups hash nothing new. */
#define SLOTS 256

static PyObject *strs[SLOTS];
static PyObject *keys[SLOTS]; /* (class, id) tuples */

static unsigned slot_of(const char *p, Py_ssize_t n)
{
    uint64_t a = 0, b = 0;

    if (n >= 8) {
        memcpy(&a, p, 8);
        memcpy(&b, p + n - 8, 8);
    } else {
        memcpy(&a, p, (size_t)n);
    }
    return (unsigned)(((a ^ (b * 0x9e3779b97f4a7c15ull) ^ (uint64_t)n) * 0xff51afd7ed558ccdull) >>
                      56) % SLOTS;
}

static int same(PyObject *str, const char *p, Py_ssize_t n)
{
    return PyUnicode_GET_LENGTH(str) == n && PyUnicode_KIND(str) == PyUnicode_1BYTE_KIND &&
           memcmp(PyUnicode_1BYTE_DATA(str), p, (size_t)n) == 0;
}

/* the latin-1 string of p (a new reference) */
static PyObject *str_of(const char *p, Py_ssize_t n)
{
    PyObject **s = &strs[slot_of(p, n)], *v;

    if (*s && same(*s, p, n))
        return Py_NewRef(*s);
    if (!(v = PyUnicode_DecodeLatin1(p, n, NULL)))
        return NULL;
    if (PyObject_Hash(v) == -1) { /* cached in the string from now on */
        Py_DECREF(v);
        return NULL;
    }
    Py_XSETREF(*s, Py_NewRef(v));
    return v;
}

/* the object's key in _durable_host._objects (a new reference) */
static PyObject *key_of(const char *c, Py_ssize_t cn, const char *o, Py_ssize_t on)
{
    PyObject **k = &keys[slot_of(o, on)], *cls, *oid, *v;

    if (*k && same(PyTuple_GET_ITEM(*k, 1), o, on) && same(PyTuple_GET_ITEM(*k, 0), c, cn))
        return Py_NewRef(*k);
    cls = str_of(c, cn);
    oid = cls ? str_of(o, on) : NULL;
    v = oid ? PyTuple_Pack(2, cls, oid) : NULL;
    Py_XDECREF(cls);
    Py_XDECREF(oid);
    if (v)
        Py_XSETREF(*k, Py_NewRef(v));
    return v;
}

/* Storage with no write in flight and none failed: the output gate and
 * _settle have nothing to wait for. */
static int storage_clean(PyObject *state)
{
    PyObject *st = attr(state, s_storage), *unc, *broken;
    int clean;

    if (!st)
        return 1; /* (the Python path's isinstance check: nothing to settle) */
    if (!PyObject_TypeCheck(st, (PyTypeObject *)storage_type)) {
        Py_DECREF(st);
        return 1;
    }
    unc = attr(st, s_unconfirmed);
    broken = attr(st, s_broken);
    clean = unc && PyList_Check(unc) && PyList_GET_SIZE(unc) == 0 && broken == Py_None;
    Py_XDECREF(unc);
    Py_XDECREF(broken);
    Py_DECREF(st);
    return clean;
}

/* The gate given back (_Gate.release: its first waiter's, else free). */
static int gate_release(PyObject *gate)
{
    PyObject *w = attr(gate, s_waiters), *r;
    int rc;

    if (w && w != Py_None && PyObject_Length(w) != 0) {
        Py_DECREF(w);
        r = PyObject_CallMethodNoArgs(gate, s_release);
        Py_XDECREF(r);
        return r ? 0 : -1;
    }
    Py_XDECREF(w);
    if (PyErr_Occurred())
        PyErr_Clear();
    rc = PyObject_SetAttr(gate, s_busy, Py_False);
    return rc;
}

/* DO_WS's fields (ipc-proto.h): kind, socket id, hib, class, object id,
 * message, [name] */
enum { F_KIND, F_WS, F_HIB, F_CLASS, F_ID, F_DATA, F_NAME, N_FIELDS };

struct event {
    const char *p[N_FIELDS];
    Py_ssize_t n[N_FIELDS];
    int count;
};

static int parse(const char *p, Py_ssize_t len, struct event *e)
{
    Py_ssize_t off = 0;

    for (e->count = 0; off < len; e->count++) {
        uint32_t n;
        if (e->count == N_FIELDS || len - off < 4)
            return -1;
        n = (uint32_t)(uint8_t)p[off] | (uint32_t)(uint8_t)p[off + 1] << 8 |
            (uint32_t)(uint8_t)p[off + 2] << 16 | (uint32_t)(uint8_t)p[off + 3] << 24;
        off += 4;
        if ((Py_ssize_t)n > len - off)
            return -1;
        e->p[e->count] = p + off;
        e->n[e->count] = (Py_ssize_t)n;
        off += n;
    }
    return e->count >= F_NAME ? 0 : -1;
}

static int is(const struct event *e, int f, const char *lit)
{
    return e->n[f] == (Py_ssize_t)strlen(lit) && memcmp(e->p[f], lit, (size_t)e->n[f]) == 0;
}

static PyObject *latin1(const struct event *e, int f)
{
    return PyUnicode_DecodeLatin1(e->p[f], e->n[f], NULL);
}

static int put(PyObject *meta, const char *key, PyObject *v)
{
    int rc = v ? PyDict_SetItemString(meta, key, v) : -1;

    Py_XDECREF(v);
    return rc;
}

/* The event as the Python path takes it: the meta of src/do/ws.c's
 * REQ_HEAD (its values latin-1 text, as codec-head.c makes them). */
static PyObject *event_meta(const struct event *e)
{
    PyObject *meta = PyDict_New();

    if (!meta)
        return NULL;
    if (put(meta, ":event", PyUnicode_FromString("durable-object")) ||
        put(meta, ":do-class", latin1(e, F_CLASS)) || put(meta, ":do-id", latin1(e, F_ID)) ||
        put(meta, ":do-op", PyUnicode_FromString("ws")) || put(meta, ":do-ws", latin1(e, F_WS)) ||
        put(meta, ":do-ws-event", latin1(e, F_KIND)) || put(meta, ":do-ws-hib", latin1(e, F_HIB)) ||
        put(meta, ":do-ws-data", latin1(e, F_DATA)) ||
        (e->count > F_NAME && put(meta, ":do-name", latin1(e, F_NAME)))) {
        Py_DECREF(meta);
        return NULL;
    }
    return meta;
}

/* The C path's event: 1 taken, 0 for the Python path (nothing done), -1
 * an error. */
static int take(PyObject *sid, const struct event *e)
{
    PyObject *wsid = NULL, *key = NULL;
    PyObject *live = NULL, *gate = NULL, *busy = NULL, *obj = NULL, *state = NULL;
    PyObject *gates = NULL, *socks = NULL, *by_id = NULL, *ws = NULL, *dod = NULL;
    PyObject *handler = NULL;
    PyObject *relay = NULL, *msg = NULL, *ctx = NULL, *coro = NULL, *result = NULL;
    PyObject *outer = NULL, *hib, *rest = NULL;
    PyObject *etype = NULL, *evalue = NULL, *etb = NULL;
    int text, entered = 0, in_task = 0, clean = 0, handed = 0;
    int outcome; /* 0 suspended, 1 returned, 2 raised */
    int out = -1;
    unsigned long usid;
    PySendResult st;

    usid = PyLong_AsUnsignedLong(sid);
    if (usid == (unsigned long)-1 && PyErr_Occurred())
        return -1;
    if (is(e, F_KIND, "text"))
        text = 1;
    else if (is(e, F_KIND, "binary"))
        text = 0;
    else
        return 0;
    if (!(key = key_of(e->p[F_CLASS], e->n[F_CLASS], e->p[F_ID], e->n[F_ID])) ||
        !(wsid = str_of(e->p[F_WS], e->n[F_WS])))
        goto fail;
    if (!(live = PyDict_GetItemWithError(objects, key)))
        goto python;
    Py_INCREF(live); /* held: the handler may drop the object or the socket */
    if (!(gate = attr(live, s_gate)) || !(busy = attr(gate, s_busy)) || busy != Py_False)
        goto python;
    if (!(obj = attr(live, s_obj)) || obj == Py_None)
        goto python;
    if (!(state = attr(obj, s_ctx)) || Py_TYPE(state) != (PyTypeObject *)state_type)
        goto python;
    if (!(gates = attr(state, s_gates)) || !PyList_Check(gates) || PyList_GET_SIZE(gates))
        goto python;
    if (!(socks = attr(state, s_ws)) || !(by_id = attr(socks, s_by_id)) || !PyDict_Check(by_id))
        goto python;
    if (!(ws = PyDict_GetItemWithError(by_id, wsid)))
        goto python;
    Py_INCREF(ws);
    if (!(dod = attr(ws, s_do)) || !PyDict_Check(dod) || !(hib = PyDict_GetItemWithError(dod, s_hib)) ||
        PyObject_IsTrue(hib) != 1)
        goto python;
    if (!(handler = attr(obj, s_handler)))
        goto python;
    if ((relay = attr(live, s_relay)) && relay != Py_None &&
        (!PyObject_TypeCheck(relay, &Relay_Type) || ((Relay *)relay)->current))
        goto python;
    if (!relay || relay == Py_None || ((Relay *)relay)->dead) {
        Py_XSETREF(relay, (PyObject *)relay_new());
        if (!relay || PyObject_SetAttr(live, s_relay, relay) < 0)
            goto fail;
    }
    /* the message, as deliver() makes it */
    msg = text ? PyUnicode_DecodeUTF8(e->p[F_DATA], e->n[F_DATA], NULL)
               : PyBytes_FromStringAndSize(e->p[F_DATA], e->n[F_DATA]);
    if (!msg) {
        PyErr_Clear();
        goto python; /* not UTF-8: the Python path says so as it did */
    }
    /* from here on the event is taken */
    if (PyObject_SetAttr(gate, s_busy, Py_True) < 0)
        goto fail;
    if (!(ctx = PyContext_CopyCurrent()) || PyContext_Enter(ctx) < 0)
        goto fail_gate;
    entered = 1;
    {
        PyObject *tok = PyContextVar_Set(request_id, sid);
        if (!tok)
            goto fail_gate;
        Py_DECREF(tok);
    }
    /* the object's task is the current one meanwhile (asyncio.current_task(),
     * asyncio.timeout), as eager.c does for a request's */
    outer = PyDict_GetItemWithError(current_tasks, loop);
    if (!outer && PyErr_Occurred())
        goto fail_gate;
    outer = Py_NewRef(outer ? outer : Py_None);
    if (outer != Py_None && leave() < 0)
        goto fail_gate;
    if (enter(((Relay *)relay)->task) < 0)
        goto fail_outer;
    in_task = 1;
    {
        PyObject *argv[2] = {ws, msg};
        coro = PyObject_Vectorcall(handler, argv, 2, NULL);
    }
    if (!coro) {
        outcome = 2;
    } else if (PyCoro_CheckExact(coro)) {
        st = PyIter_Send(coro, Py_None, &result);
        outcome = st == PYGEN_NEXT ? 0 : st == PYGEN_RETURN ? 1 : 2;
        if (st == PYGEN_RETURN) {
            Py_CLEAR(result); /* an event's result is not used */
        }
    } else if (coro == Py_None) {
        outcome = 1;
    } else {
        outcome = 1; /* an awaitable of another kind: fast_slow awaits it */
        result = Py_NewRef(coro);
    }
    if (outcome == 2) {
        PyErr_Fetch(&etype, &evalue, &etb);
        PyErr_NormalizeException(&etype, &evalue, &etb);
        if (etb)
            PyException_SetTraceback(evalue, etb);
    }
    if (outcome == 2 && (PyErr_GivenExceptionMatches(etype, PyExc_KeyboardInterrupt) ||
                         PyErr_GivenExceptionMatches(etype, PyExc_SystemExit))) {
        /* these leave the loop, as from any task */
        PyErr_Restore(etype, evalue, etb);
        etype = evalue = etb = NULL;
    } else if (outcome == 1 && !result && storage_clean(state)) {
        clean = 1; /* the echo */
    } else {
        /* the rest in Python (fast_slow(relay, live, sid, state, ws,
         * outcome, value, pending) -> its coroutine), its first step now,
         * still in the event's context and task: from there on a cancel
         * finds it started (its finally gives the gate back), and it
         * goes on in the object's task */
        PyObject *argv[8] = {relay, live, sid, state, ws, PyLong_FromLong(outcome),
                             outcome == 0 ? coro : outcome == 2 ? evalue : result,
                             outcome == 0 ? result : Py_None};
        PyObject *y;

        if (!argv[6])
            argv[6] = Py_None;
        rest = argv[5] ? PyObject_Vectorcall(slow, argv, 8, NULL) : NULL;
        Py_XDECREF(argv[5]);
        if (rest) {
            st = PyIter_Send(rest, Py_None, &y);
            if (st == PYGEN_NEXT) {
                Relay *r = (Relay *)relay;
                r->current = Py_NewRef(rest);
                r->ctx = Py_NewRef(ctx);
                r->first = y;
                handed = 1;
            } else if (st == PYGEN_RETURN) {
                Py_DECREF(y); /* done in that step (a raise, its storage settled) */
            } else if (!PyErr_ExceptionMatches(PyExc_KeyboardInterrupt) &&
                       !PyErr_ExceptionMatches(PyExc_SystemExit)) {
                /* a CancelledError the handler raised itself: the event
                 * ends as a cancelled task's would (unanswered; its
                 * finally gave the gate back), the other events go on */
                PyErr_Clear();
            }
        }
    }
    in_task = 0;
    {
        /* the caller's task and context back, whatever happened */
        PyObject *t, *v, *tb;
        int bad;

        PyErr_Fetch(&t, &v, &tb);
        bad = leave() < 0 || (outer != Py_None && enter(outer) < 0);
        PyContext_Exit(ctx);
        entered = 0;
        if (bad) {
            Py_XDECREF(t);
            Py_XDECREF(v);
            Py_XDECREF(tb);
        } else {
            PyErr_Restore(t, v, tb);
        }
    }
    if (PyErr_Occurred()) {
        if (!rest) { /* else its finally gave the gate back */
            PyObject *t, *v, *tb;
            PyErr_Fetch(&t, &v, &tb);
            if (gate_release(gate) < 0)
                PyErr_Clear();
            PyErr_Restore(t, v, tb);
        }
        goto fail;
    }
    if (clean && (answer_200((uint32_t)usid) < 0 || gate_release(gate) < 0))
        goto fail;
    if (handed && relay_wake((Relay *)relay) < 0)
        goto fail;
    out = 1;
    goto done;

fail_outer:
    if (in_task) {
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        if (leave() < 0)
            PyErr_Clear();
        PyErr_Restore(t, v, tb);
    }
    if (outer && outer != Py_None) {
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        if (enter(outer) < 0)
            PyErr_Clear();
        PyErr_Restore(t, v, tb);
    }
fail_gate:
    {
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        if (gate_release(gate) < 0)
            PyErr_Clear();
        PyErr_Restore(t, v, tb);
    }
    goto fail;
python:
    if (PyErr_Occurred())
        goto fail;
    out = 0;
    goto done;
fail:
done:
    if (entered)
        PyContext_Exit(ctx);
    Py_XDECREF(wsid);
    Py_XDECREF(live);
    Py_XDECREF(ws);
    Py_XDECREF(etype);
    Py_XDECREF(evalue);
    Py_XDECREF(etb);
    Py_XDECREF(key);
    Py_XDECREF(gate);
    Py_XDECREF(busy);
    Py_XDECREF(obj);
    Py_XDECREF(state);
    Py_XDECREF(gates);
    Py_XDECREF(socks);
    Py_XDECREF(by_id);
    Py_XDECREF(dod);
    Py_XDECREF(handler);
    Py_XDECREF(relay);
    Py_XDECREF(msg);
    Py_XDECREF(ctx);
    Py_XDECREF(coro);
    Py_XDECREF(result);
    Py_XDECREF(outer);
    Py_XDECREF(rest);
    return out;
}

/* ws_event(sid, payload) -> None when the event (a DO_WS frame's payload)
 * was taken, else its meta for the Python path (_durable_host.start) */
PyObject *thaw__dows_event(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    struct event e;
    char *p;
    Py_ssize_t n;
    int rc;

    if (nargs != 2 || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "ws_event(sid, payload)");
        return NULL;
    }
    if (PyBytes_AsStringAndSize(args[1], &p, &n) < 0)
        return NULL;
    if (parse(p, n, &e) < 0) {
        PyErr_SetString(thaw__codec_error, "malformed Durable Object WebSocket event");
        return NULL;
    }
    if (inst) {
        /* the payload stays alive (args) while its fields are read */
        if ((rc = take(args[0], &e)) < 0)
            return NULL;
        if (rc)
            Py_RETURN_NONE;
    }
    return event_meta(&e);
}

/* ws_setup(inst, objects, state_type, storage_type, request_id, fast_slow,
 * ws_module): once per instance, by _durable_ws.setup_fast */
PyObject *thaw__dows_setup(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "ws_setup(inst, objects, state_type, storage_type, "
                        "request_id, fast_slow, ws_module)");
        return NULL;
    }
    if (!PyDict_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "ws_setup: objects is a dict");
        return NULL;
    }
    Py_XSETREF(loop, PyObject_GetAttrString(args[0], "loop"));
    if (!loop)
        return NULL;
    Py_XSETREF(inst_dict, PyObject_GenericGetDict(args[0], NULL));
    if (!inst_dict)
        return NULL;
    Py_XSETREF(inst, Py_NewRef(args[0]));
    Py_XSETREF(objects, Py_NewRef(args[1]));
    Py_XSETREF(state_type, Py_NewRef(args[2]));
    Py_XSETREF(storage_type, Py_NewRef(args[3]));
    Py_XSETREF(request_id, Py_NewRef(args[4]));
    Py_XSETREF(slow, Py_NewRef(args[5]));
    Py_XSETREF(ws_module, Py_NewRef(args[6]));
    Py_RETURN_NONE;
}

#define INTERN(var, text) \
    if (!(var = PyUnicode_InternFromString(text))) \
        return -1

int thaw__dows_init(PyObject *module)
{
    PyObject *aio;

    if (PyType_Ready(&WsSend_Type) < 0 || PyType_Ready(&Relay_Type) < 0 ||
        PyModule_AddObjectRef(module, "WsSend", (PyObject *)&WsSend_Type) < 0 ||
        PyModule_AddObjectRef(module, "Relay", (PyObject *)&Relay_Type) < 0)
        return -1;
    if (task_type)
        return 0; /* a second import of the module (tests) */
    if (!(aio = PyImport_ImportModule("asyncio.tasks")))
        return -1;
    task_type = PyObject_GetAttrString(aio, "Task");
    current_tasks = PyObject_GetAttrString(aio, "_current_tasks");
    Py_DECREF(aio);
    if (!task_type || !current_tasks)
        return -1;
    if (!PyDict_Check(current_tasks)) {
        PyErr_SetString(PyExc_ImportError, "asyncio.tasks._current_tasks is not a dict");
        return -1;
    }
    {
        /* asyncio.Task takes only what asyncio.iscoroutine() accepts */
        PyObject *abc = PyImport_ImportModule("collections.abc"), *c, *r;
        c = abc ? PyObject_GetAttrString(abc, "Coroutine") : NULL;
        Py_XDECREF(abc);
        r = c ? PyObject_CallMethod(c, "register", "O", (PyObject *)&Relay_Type) : NULL;
        Py_XDECREF(c);
        if (!r)
            return -1;
        Py_DECREF(r);
    }
    INTERN(s_gate, "gate");
    INTERN(s_busy, "busy");
    INTERN(s_waiters, "waiters");
    INTERN(s_obj, "obj");
    INTERN(s_ctx, "ctx");
    INTERN(s_gates, "_gates");
    INTERN(s_ws, "_ws");
    INTERN(s_by_id, "by_id");
    INTERN(s_do, "_do");
    INTERN(s_hib, "hib");
    INTERN(s_handler, "webSocketMessage");
    INTERN(s_relay, "relay");
    INTERN(s_storage, "storage");
    INTERN(s_unconfirmed, "_unconfirmed");
    INTERN(s_broken, "broken");
    INTERN(s_release, "release");
    INTERN(s_out, "out");
    INTERN(s_out_size, "out_size");
    INTERN(s_flush_pending, "flush_pending");
    INTERN(s_queue, "_queue");
    INTERN(s_create_future, "create_future");
    INTERN(s_blocking, "_asyncio_future_blocking");
    INTERN(s_set_result, "set_result");
    INTERN(s_uncancel, "uncancel");
    INTERN(s_done, "_done");
    INTERN(s_id, "id");
    INTERN(s_pipe, "_pipe");
    INTERN(s_pipe_call, "_pipe_call");
    INTERN(s_client, "_client");
    INTERN(s_send, "send");
    INTERN(s_loop_kw, "loop");
    INTERN(s_done_m, "done");
    return 0;
}
