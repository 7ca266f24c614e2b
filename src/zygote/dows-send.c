/* The frames a Durable Object's host queues from C (src/zygote/dows.h):
 * an event's answer, and ws.send's BIND_WS_* frame on the host's pipe
 * (WsSend), python/workers/_durable_ws.py's _sender and _answer being
 * the reference. */
#define PY_SSIZE_T_CLEAN
#include "zygote/fast-py.h"
#include "zygote/dows.h"

#include <stddef.h>
#include <string.h>

#include "ipc/ipc-proto.h"

static PyObject *s_out, *s_out_size, *s_flush_pending, *s_queue, *s_done, *s_id, *s_pipe,
    *s_pipe_call, *s_client, *s_send, *s_shut;

/* ---- queueing frames on the instance's channel -------------------------- */

/* inst._queue(data), without the call while the dispatch's flush is
 * pending (instance._process): out.append, out_size += len. Steals data. */
int thaw__dows_queue(PyObject *data)
{
    /* its attributes, in its __dict__ (Instance has no slots) */
    PyObject *pending = PyDict_GetItemWithError(thaw__dows_rt.inst_dict, s_flush_pending), *out, *size, *more;
    int rc = -1;

    if (!pending || pending != Py_True ||
        !(out = PyDict_GetItemWithError(thaw__dows_rt.inst_dict, s_out)) || !PyList_Check(out) ||
        !(size = PyDict_GetItemWithError(thaw__dows_rt.inst_dict, s_out_size)) || !PyLong_CheckExact(size)) {
        PyObject *r;
        if (PyErr_Occurred())
            goto done;
        r = PyObject_CallMethodOneArg(thaw__dows_rt.inst, s_queue, data);
        rc = r ? 0 : -1;
        Py_XDECREF(r);
        goto done;
    }
    if (PyList_Append(out, data))
        goto done;
    more = PyLong_FromSsize_t(PyLong_AsSsize_t(size) + PyBytes_GET_SIZE(data));
    if (more) {
        rc = PyDict_SetItem(thaw__dows_rt.inst_dict, s_out_size, more);
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
int thaw__dows_answer_200(uint32_t sid)
{
    static const char head[] = "\3\0\0\0" "200" "\0\0\0\0";
    PyObject *b = PyBytes_FromStringAndSize(NULL, 2 * THAW_IPC_HEADER_SIZE + 11);
    char *d;

    if (!b)
        return -1;
    d = put_header(PyBytes_AS_STRING(b), 11, THAW_IPC_RESP_HEAD, sid);
    memcpy(d, head, 11);
    put_header(d + 11, 0, THAW_IPC_RESP_END, sid);
    return thaw__dows_queue(b);
}

/* ---- WsSend: ws.send's frames for the pipe -------------------------------- */

#define ID_BYTES 16
#define MAX_SEND (1024 * 1024 - ID_BYTES)

/* gate: the object's output gate (workers/_durable_gate.py); while its
 * `shut` is true (a storage write on its way) a message goes to held,
 * _durable_ws._sender's closure, which holds it in the gate. held refers
 * to the socket, which refers to this: a cycle, so the type is GC'd. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *gate;
    PyObject *held;
    char id[ID_BYTES];
} WsSend;

static PyObject *wssend_vcall(PyObject *self, PyObject *const *args, size_t nargsf,
                              PyObject *kwnames);

static PyObject *wssend_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    const char *id;
    Py_ssize_t n;
    PyObject *gate, *held;
    WsSend *s;

    if (!PyArg_ParseTuple(args, "y#OO:WsSend", &id, &n, &gate, &held))
        return NULL;
    if (!PyCallable_Check(held)) {
        PyErr_SetString(PyExc_TypeError, "WsSend(id, gate, held): held is a function");
        return NULL;
    }
    if (n != ID_BYTES) {
        PyErr_SetString(PyExc_ValueError, "WsSend(id): a socket id of 16 bytes");
        return NULL;
    }
    if (!(s = (WsSend *)type->tp_alloc(type, 0)))
        return NULL;
    memcpy(s->id, id, ID_BYTES);
    s->gate = Py_NewRef(gate);
    s->held = Py_NewRef(held);
    s->vectorcall = wssend_vcall;
    return (PyObject *)s;
}

static int wssend_traverse(PyObject *self, visitproc visit, void *arg)
{
    WsSend *s = (WsSend *)self;

    Py_VISIT(s->gate);
    Py_VISIT(s->held);
    return 0;
}

static int wssend_clear(PyObject *self)
{
    WsSend *s = (WsSend *)self;

    Py_CLEAR(s->gate);
    Py_CLEAR(s->held);
    return 0;
}

static void wssend_dealloc(PyObject *self)
{
    PyObject_GC_UnTrack(self);
    wssend_clear(self);
    Py_TYPE(self)->tp_free(self);
}

/* the instance's pipe (_durable_ws._pipe_call: made again once done) */
static PyObject *get_pipe(void)
{
    PyObject *pipe, *done;

    if (!thaw__dows_rt.ws_module && !(thaw__dows_rt.ws_module = PyImport_ImportModule("workers._durable_ws")))
        return NULL;
    if (!(pipe = PyObject_GetAttr(thaw__dows_rt.ws_module, s_pipe)))
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
    return PyObject_CallMethodNoArgs(thaw__dows_rt.ws_module, s_pipe_call);
}

/* send(ftype, payload): as _durable_ws._sender's closure, then
 * PendingCall.send_ws */
static PyObject *wssend_vcall(PyObject *self, PyObject *const *args, size_t nargsf,
                              PyObject *kwnames)
{
    WsSend *s = (WsSend *)self;
    long ftype;
    Py_buffer p;
    PyObject *pipe = NULL, *pid = NULL, *done = NULL, *frame = NULL, *out = NULL, *shut;
    unsigned long cid;
    char *d;

    if (PyVectorcall_NARGS(nargsf) != 2 || kwnames) {
        PyErr_SetString(PyExc_TypeError, "send(ftype, payload)");
        return NULL;
    }
    if (!s->gate || !s->held) {
        PyErr_SetString(PyExc_RuntimeError, "send(): this socket's sender was cleared");
        return NULL;
    }
    if (!(shut = PyObject_GetAttr(s->gate, s_shut)))
        return NULL;
    Py_DECREF(shut);
    if (shut != Py_False) /* the output gate holds it: the Python way */
        return PyObject_Vectorcall(s->held, args, 2, NULL);
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
    if (thaw__dows_rt.inst) {
        int rc = thaw__dows_queue(frame);
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
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = wssend_traverse,
    .tp_clear = wssend_clear,
    .tp_dealloc = wssend_dealloc,
    .tp_vectorcall_offset = offsetof(WsSend, vectorcall),
    .tp_doc = "WsSend(id, gate, held)(ftype, payload): a Durable Object's WebSocket "
              "frame, on the host's pipe; held(ftype, payload) while gate.shut.",
    .tp_new = wssend_new,
    .tp_call = PyVectorcall_Call,
};

int thaw__dows_send_init(PyObject *module)
{
    if (PyType_Ready(&WsSend_Type) < 0 ||
        PyModule_AddObjectRef(module, "WsSend", (PyObject *)&WsSend_Type) < 0)
        return -1;
    if (s_out)
        return 0; /* a second import of the module (tests) */
    if (!(s_out = PyUnicode_InternFromString("out")) ||
        !(s_out_size = PyUnicode_InternFromString("out_size")) ||
        !(s_flush_pending = PyUnicode_InternFromString("flush_pending")) ||
        !(s_queue = PyUnicode_InternFromString("_queue")) ||
        !(s_done = PyUnicode_InternFromString("_done")) ||
        !(s_id = PyUnicode_InternFromString("id")) ||
        !(s_pipe = PyUnicode_InternFromString("_pipe")) ||
        !(s_pipe_call = PyUnicode_InternFromString("_pipe_call")) ||
        !(s_client = PyUnicode_InternFromString("_client")) ||
        !(s_send = PyUnicode_InternFromString("send")) ||
        !(s_shut = PyUnicode_InternFromString("shut")))
        return -1;
    return 0;
}
