/* _thaw_fast.AsgiCall: the base class of asgi.fetch's _HttpCall
 * (python/workers/asgi.py), with the state of one request's exchange as
 * slots and the app's `send` in C for the messages nearly every response
 * is made of:
 *
 *   - http.response.start, headers a list or tuple of valid (bytes,
 *     bytes) pairs (asgi-headers.c), nobody waiting for it yet;
 *   - http.response.body, the whole body as bytes in one message (no
 *     more_body), nothing sent before it.
 *
 * Those complete at once: send returns `DONE`, an awaitable that has
 * already finished (awaiting it costs no frame, and no coroutine is made
 * per message). Any other message, or one of these in any other state,
 * goes to _HttpCall._send, the Python coroutine that handles everything
 * (streaming, the pipe, errors) and is the reference: a message takes
 * exactly one of the two paths, decided before anything is changed, so
 * both see the same state and the app sees the same outcome. */
#define PY_SSIZE_T_CLEAN
#include "zygote/fast-py.h"

#include <structmember.h>

typedef struct {
    PyObject_HEAD
    /* as _HttpCall's class defaults were (None / False); read by Python */
    PyObject *body_iter, *request_done, *head, *pipe, *whole, *finished;
    PyObject *finish_waiters, *head_waiter, *error, *app_done, *task;
} AsgiCall;

static PyObject *s_type, *s_status, *s_headers, *s_body, *s_more_body, *s_start, *s_body_kind;
static PyObject *s_send_slow, *s_finish, *empty_tuple;
/* for sized_response: workers.Headers and workers.Response (asgi_call_types) */
static PyObject *headers_type, *response_type;
static PyObject *a_pairs, *a_status, *a_reason, *a_headers, *a_payload, *a_used;

/* cls.__new__(cls), as the runtime's own constructors make them */
static PyObject *new_object(PyObject *cls)
{
    PyTypeObject *t = (PyTypeObject *)cls;

    return t->tp_new(t, empty_tuple, NULL);
}

/* asgi_call_types(Headers, Response) */
PyObject *thaw__asgi_call_types(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyType_Check(args[0]) || !PyType_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "asgi_call_types(Headers, Response)");
        return NULL;
    }
    Py_XSETREF(headers_type, Py_NewRef(args[0]));
    Py_XSETREF(response_type, Py_NewRef(args[1]));
    Py_RETURN_NONE;
}

/* same(x) -> x: a property's getter that returns its object, with no frame */
PyObject *thaw__same(PyObject *self, PyObject *x)
{
    return Py_NewRef(x);
}

/* ---- DONE: an awaitable that has finished, with None ----------------- */

static PyTypeObject Done_Type;
static PyObject done_singleton = {_PyObject_EXTRA_INIT 1, &Done_Type};

static PyObject *done_await(PyObject *self)
{
    return Py_NewRef(self);
}

static PySendResult done_am_send(PyObject *self, PyObject *arg, PyObject **result)
{
    *result = Py_NewRef(Py_None);
    return PYGEN_RETURN;
}

static PyObject *done_iternext(PyObject *self)
{
    PyErr_SetNone(PyExc_StopIteration);
    return NULL;
}

static PyObject *done_send(PyObject *self, PyObject *arg)
{
    return done_iternext(self);
}

/* as a coroutine that has not started: the exception comes straight out */
static PyObject *done_throw(PyObject *self, PyObject *args)
{
    return thaw__raise_thrown(args);
}

static PyObject *done_close(PyObject *self, PyObject *unused)
{
    Py_RETURN_NONE;
}

static PyMethodDef done_methods[] = {
    {"send", done_send, METH_O, NULL},
    {"throw", done_throw, METH_VARARGS, NULL},
    {"close", done_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyAsyncMethods done_async = {.am_await = done_await, .am_send = done_am_send};

static PyTypeObject Done_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_thaw_fast.Done",
    .tp_basicsize = sizeof(PyObject),
    .tp_as_async = &done_async,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "What the ASGI send of asgi.fetch returns for a message it took at once: "
              "awaiting it gives None.",
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = done_iternext,
    .tp_methods = done_methods,
};

/* ---- AsgiCall ------------------------------------------------------------ */

static PyObject *call_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    AsgiCall *c = (AsgiCall *)type->tp_alloc(type, 0);

    if (!c)
        return NULL;
    c->body_iter = Py_NewRef(Py_None);
    c->request_done = Py_NewRef(Py_False);
    c->head = Py_NewRef(Py_None);
    c->pipe = Py_NewRef(Py_None);
    c->whole = Py_NewRef(Py_None);
    c->finished = Py_NewRef(Py_False);
    c->finish_waiters = Py_NewRef(Py_None);
    c->head_waiter = Py_NewRef(Py_None);
    c->error = Py_NewRef(Py_None);
    c->app_done = Py_NewRef(Py_False);
    c->task = Py_NewRef(Py_None);
    return (PyObject *)c;
}

static int call_traverse(PyObject *self, visitproc visit, void *arg)
{
    AsgiCall *c = (AsgiCall *)self;

    Py_VISIT(c->body_iter);
    Py_VISIT(c->request_done);
    Py_VISIT(c->head);
    Py_VISIT(c->pipe);
    Py_VISIT(c->whole);
    Py_VISIT(c->finished);
    Py_VISIT(c->finish_waiters);
    Py_VISIT(c->head_waiter);
    Py_VISIT(c->error);
    Py_VISIT(c->app_done);
    Py_VISIT(c->task);
    return 0;
}

static int call_clear(PyObject *self)
{
    AsgiCall *c = (AsgiCall *)self;

    Py_CLEAR(c->body_iter);
    Py_CLEAR(c->request_done);
    Py_CLEAR(c->head);
    Py_CLEAR(c->pipe);
    Py_CLEAR(c->whole);
    Py_CLEAR(c->finished);
    Py_CLEAR(c->finish_waiters);
    Py_CLEAR(c->head_waiter);
    Py_CLEAR(c->error);
    Py_CLEAR(c->app_done);
    Py_CLEAR(c->task);
    return 0;
}

/* for the Python subclass's instances, subtype_dealloc has untracked the
 * object and drops the reference to the type after this */
static void call_dealloc(PyObject *self)
{
    PyObject_GC_UnTrack(self);
    call_clear(self);
    Py_TYPE(self)->tp_free(self);
}

static void set_field(PyObject **field, PyObject *value)
{
    PyObject *old = *field;

    *field = Py_NewRef(value);
    Py_XDECREF(old);
}

static PyObject *slow(PyObject *self, PyObject *message)
{
    return PyObject_CallMethodOneArg(self, s_send_slow, message);
}

/* dict.get(key) without a new reference; NULL: missing (no error) or error */
static PyObject *get(PyObject *d, PyObject *key)
{
    return PyDict_GetItemWithError(d, key);
}

/* send(message) -> DONE, or the coroutine of _send(message) */
static PyObject *call_send(PyObject *self, PyObject *message)
{
    AsgiCall *c = (AsgiCall *)self;
    PyObject *kind, *v;

    if (!PyDict_CheckExact(message) || !(kind = get(message, s_type)) || !PyUnicode_CheckExact(kind))
        goto slow;
    if (PyUnicode_Compare(kind, s_body_kind) == 0) {
        PyObject *body;

        if (c->head == Py_None || c->pipe != Py_None || c->whole != Py_None)
            goto slow;
        if ((v = get(message, s_more_body)) && v != Py_False && v != Py_None)
            goto slow;
        if (PyErr_Occurred())
            return NULL;
        body = get(message, s_body);
        if (!body) {
            if (PyErr_Occurred())
                return NULL;
            body = PyBytes_FromStringAndSize(NULL, 0);
            if (!body)
                return NULL;
            set_field(&c->whole, body);
            Py_DECREF(body);
        } else if (PyBytes_CheckExact(body)) {
            set_field(&c->whole, body);
        } else {
            goto slow;
        }
        if (c->finished == Py_False) {
            if (c->finish_waiters != Py_None) {
                /* receive() calls wait: finish() wakes them */
                PyObject *r = PyObject_CallMethodNoArgs(self, s_finish);

                if (!r)
                    return NULL;
                Py_DECREF(r);
            } else {
                set_field(&c->finished, Py_True);
            }
        }
        return Py_NewRef(&done_singleton);
    }
    if (PyUnicode_Compare(kind, s_start) == 0) {
        PyObject *status, *headers, *pairs, *head;

        if (c->head != Py_None || c->head_waiter != Py_None)
            goto slow;
        if (!(status = get(message, s_status)))
            goto slow_or_error;
        headers = get(message, s_headers);
        if (!headers) {
            if (PyErr_Occurred())
                return NULL;
            headers = empty_tuple;
        }
        if (!PyList_CheckExact(headers) && !PyTuple_CheckExact(headers))
            goto slow;
        if (!(pairs = thaw__asgi_headers(NULL, headers)))
            return NULL;
        if (pairs == Py_None) { /* not valid: the Python path says why */
            Py_DECREF(pairs);
            goto slow;
        }
        head = PyTuple_Pack(3, status, pairs, Py_None);
        Py_DECREF(pairs);
        if (!head)
            return NULL;
        set_field(&c->head, head);
        Py_DECREF(head);
        return Py_NewRef(&done_singleton);
    }
slow_or_error:
    if (PyErr_Occurred())
        return NULL;
slow:
    return slow(self, message);
}

/* sized_response() -> the workers.Response of an exchange that ended the
 * usual way (a head, the whole body as bytes, no pipe, a status from 200
 * to 599 with a body), as _HttpCall.response() and
 * Response._thaw_sized make it; None for anything else (response() then) */
static PyObject *call_sized_response(PyObject *self, PyObject *unused)
{
    AsgiCall *c = (AsgiCall *)self;
    PyObject *status, *pairs, *headers = NULL, *resp = NULL;
    long st;

    if (!response_type || !PyTuple_CheckExact(c->head) || PyTuple_GET_SIZE(c->head) != 3 ||
        c->pipe != Py_None || !PyBytes_CheckExact(c->whole))
        Py_RETURN_NONE;
    status = PyTuple_GET_ITEM(c->head, 0);
    pairs = PyTuple_GET_ITEM(c->head, 1);
    if (!PyLong_CheckExact(status) || !PyList_CheckExact(pairs))
        Py_RETURN_NONE;
    st = PyLong_AsLong(status);
    if (st == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    if (st < 200 || st > 599 || st == 204 || st == 205 || st == 304)
        Py_RETURN_NONE;
    if (!(headers = new_object(headers_type)) || PyObject_SetAttr(headers, a_pairs, pairs) < 0 ||
        !(resp = new_object(response_type)) || PyObject_SetAttr(resp, a_status, status) < 0 ||
        PyObject_SetAttr(resp, a_reason, Py_None) < 0 ||
        PyObject_SetAttr(resp, a_headers, headers) < 0 ||
        PyObject_SetAttr(resp, a_payload, c->whole) < 0 ||
        PyObject_SetAttr(resp, a_used, Py_False) < 0)
        Py_CLEAR(resp);
    Py_XDECREF(headers);
    return resp;
}

static PyMethodDef call_methods[] = {
    {"sized_response", call_sized_response, METH_NOARGS,
     "The workers.Response of an exchange that ended with the whole body, or None."},
    {"send", call_send, METH_O,
     "The ASGI send: DONE for a message taken at once, else the coroutine of "
     "self._send(message)."},
    {NULL, NULL, 0, NULL},
};

#define FIELD(name) {#name, T_OBJECT, offsetof(AsgiCall, name), 0, NULL}
static PyMemberDef call_members[] = {
    FIELD(body_iter), FIELD(request_done), FIELD(head), FIELD(pipe), FIELD(whole),
    FIELD(finished), FIELD(finish_waiters), FIELD(head_waiter), FIELD(error),
    FIELD(app_done), FIELD(task),
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject AsgiCall_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_thaw_fast.AsgiCall",
    .tp_basicsize = sizeof(AsgiCall),
    .tp_dealloc = call_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The state of one asgi.fetch exchange, and its ASGI send in C "
              "(src/zygote/asgi-call.c).",
    .tp_traverse = call_traverse,
    .tp_clear = call_clear,
    .tp_methods = call_methods,
    .tp_members = call_members,
    .tp_new = call_new,
};

static PyObject *intern(const char *s)
{
    return PyUnicode_InternFromString(s);
}

int thaw__asgi_call_init(PyObject *module)
{
    PyObject *abc, *coroutine, *r;

    if (PyType_Ready(&Done_Type) < 0 || PyType_Ready(&AsgiCall_Type) < 0)
        return -1;
    if (!s_type) {
        if (!(s_type = intern("type")) || !(s_status = intern("status")) ||
            !(s_headers = intern("headers")) || !(s_body = intern("body")) ||
            !(s_more_body = intern("more_body")) ||
            !(s_start = intern("http.response.start")) ||
            !(s_body_kind = intern("http.response.body")) ||
            !(s_send_slow = intern("_send")) || !(s_finish = intern("finish")) ||
            !(a_pairs = intern("_pairs")) || !(a_status = intern("status")) ||
            !(a_reason = intern("_reason")) || !(a_headers = intern("headers")) ||
            !(a_payload = intern("_payload")) || !(a_used = intern("_used")) ||
            !(empty_tuple = PyTuple_New(0)))
            return -1;
        /* asyncio.ensure_future / create_task take what iscoroutine() accepts */
        if (!(abc = PyImport_ImportModule("collections.abc")))
            return -1;
        coroutine = PyObject_GetAttrString(abc, "Coroutine");
        Py_DECREF(abc);
        r = coroutine ? PyObject_CallMethod(coroutine, "register", "O", (PyObject *)&Done_Type)
                      : NULL;
        Py_XDECREF(coroutine);
        if (!r)
            return -1;
        Py_DECREF(r);
    }
    if (PyModule_AddObjectRef(module, "AsgiCall", (PyObject *)&AsgiCall_Type) < 0 ||
        PyModule_AddObjectRef(module, "DONE", &done_singleton) < 0)
        return -1;
    return 0;
}
