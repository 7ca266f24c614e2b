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
 * (dows-relay.c: that task; dows-send.c: the frames queued, and WsSend,
 * ws.send's way out for such a socket.) */
#define PY_SSIZE_T_CLEAN
#include "zygote/fast-py.h"
#include "zygote/dows.h"

#include <string.h>

struct thaw_dows_rt thaw__dows_rt;

/* set once by ws_setup */
static PyObject *objects;     /* _durable_host._objects: (class, id) -> _Live */
static PyObject *state_type;  /* _durable_host.DurableObjectState */
static PyObject *storage_type; /* _durable_storage.DurableObjectStorage */
static PyObject *request_id;  /* thaw_runtime.output.request_id */
/* workers/_durable_gate.py's `current`: the object's output gate, which
 * its outbound fetch and stub calls wait in (set per event, as
 * _durable_host._run does) */
static PyObject *gate_var;
static PyObject *slow;        /* _durable_ws.fast_slow */
static PyObject *current_tasks; /* asyncio.tasks._current_tasks */

/* interned names */
static PyObject *s_gate, *s_busy, *s_waiters, *s_obj, *s_ctx, *s_gates, *s_ws, *s_by_id, *s_do,
    *s_hib, *s_handler, *s_relay, *s_storage, *s_unconfirmed, *s_broken, *s_release, *s_buf,
    *s_gate_attr;

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
    return PyDict_SetItem(current_tasks, thaw__dows_rt.loop, task);
}

static int leave(void)
{
    return PyDict_DelItem(current_tasks, thaw__dows_rt.loop);
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
    PyObject *st = attr(state, s_storage), *unc, *broken, *buf;
    int clean;

    if (!st)
        return 1; /* (the Python path's isinstance check: nothing to settle) */
    if (!PyObject_TypeCheck(st, (PyTypeObject *)storage_type)) {
        Py_DECREF(st);
        return 1;
    }
    /* DurableObjectStorage.idle(): no write of this turn waiting to be
     * sent (_buf), none sent and unanswered, none failed */
    unc = attr(st, s_unconfirmed);
    broken = attr(st, s_broken);
    buf = attr(st, s_buf);
    clean = unc && PyList_Check(unc) && PyList_GET_SIZE(unc) == 0 && broken == Py_None &&
            buf == Py_None;
    Py_XDECREF(unc);
    Py_XDECREF(broken);
    Py_XDECREF(buf);
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
        (!PyObject_TypeCheck(relay, &thaw__Relay_Type) || ((Relay *)relay)->current))
        goto python;
    if (!relay || relay == Py_None || ((Relay *)relay)->dead) {
        Py_XSETREF(relay, (PyObject *)thaw__relay_new());
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
        PyObject *tok = PyContextVar_Set(request_id, sid), *st, *og;
        if (!tok)
            goto fail_gate;
        Py_DECREF(tok);
        st = attr(state, s_storage);
        og = st ? attr(st, s_gate_attr) : NULL;
        Py_XDECREF(st);
        if (og) {
            tok = PyContextVar_Set(gate_var, og);
            Py_DECREF(og);
            if (!tok)
                goto fail_gate;
            Py_DECREF(tok);
        }
    }
    /* the object's task is the current one meanwhile (asyncio.current_task(),
     * asyncio.timeout), as eager.c does for a request's */
    outer = PyDict_GetItemWithError(current_tasks, thaw__dows_rt.loop);
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
    if (clean && (thaw__dows_answer_200((uint32_t)usid) < 0 || gate_release(gate) < 0))
        goto fail;
    if (handed && thaw__relay_wake((Relay *)relay) < 0)
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
    if (thaw__dows_rt.inst) {
        /* the payload stays alive (args) while its fields are read */
        if ((rc = take(args[0], &e)) < 0)
            return NULL;
        if (rc)
            Py_RETURN_NONE;
    }
    return event_meta(&e);
}

/* ws_setup(inst, objects, state_type, storage_type, request_id, fast_slow,
 * ws_module, gate_var): once per instance, by _durable_ws.setup_fast */
PyObject *thaw__dows_setup(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8 || !PyContextVar_CheckExact(args[7])) {
        PyErr_SetString(PyExc_TypeError, "ws_setup(inst, objects, state_type, storage_type, "
                        "request_id, fast_slow, ws_module, gate_var)");
        return NULL;
    }
    if (!PyDict_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "ws_setup: objects is a dict");
        return NULL;
    }
    Py_XSETREF(thaw__dows_rt.loop, PyObject_GetAttrString(args[0], "loop"));
    if (!thaw__dows_rt.loop)
        return NULL;
    Py_XSETREF(thaw__dows_rt.inst_dict, PyObject_GenericGetDict(args[0], NULL));
    if (!thaw__dows_rt.inst_dict)
        return NULL;
    Py_XSETREF(thaw__dows_rt.inst, Py_NewRef(args[0]));
    Py_XSETREF(objects, Py_NewRef(args[1]));
    Py_XSETREF(state_type, Py_NewRef(args[2]));
    Py_XSETREF(storage_type, Py_NewRef(args[3]));
    Py_XSETREF(request_id, Py_NewRef(args[4]));
    Py_XSETREF(slow, Py_NewRef(args[5]));
    Py_XSETREF(thaw__dows_rt.ws_module, Py_NewRef(args[6]));
    Py_XSETREF(gate_var, Py_NewRef(args[7]));
    Py_RETURN_NONE;
}

#define INTERN(var, text) \
    if (!(var = PyUnicode_InternFromString(text))) \
        return -1

int thaw__dows_init(PyObject *module)
{
    PyObject *aio;

    if (thaw__dows_send_init(module) < 0 || thaw__dows_relay_init(module) < 0)
        return -1;
    if (current_tasks)
        return 0; /* a second import of the module (tests) */
    if (!(aio = PyImport_ImportModule("asyncio.tasks")))
        return -1;
    current_tasks = PyObject_GetAttrString(aio, "_current_tasks");
    Py_DECREF(aio);
    if (!current_tasks)
        return -1;
    if (!PyDict_Check(current_tasks)) {
        PyErr_SetString(PyExc_ImportError, "asyncio.tasks._current_tasks is not a dict");
        return -1;
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
    INTERN(s_buf, "_buf");
    INTERN(s_gate_attr, "_gate");
    INTERN(s_release, "release");
    return 0;
}
