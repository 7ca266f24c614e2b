/* _thaw_fast.lighten_task_set(weakset): asyncio's registry of tasks
 * (asyncio.tasks._all_tasks, which asyncio.all_tasks() reads) with its
 * `add` and its weak references' callback in C.
 *
 * On Python 3.11 every asyncio.Task registers itself with
 * `_all_tasks.add(task)`, a WeakSet written in Python, and when the task
 * is freed the weak reference's callback (WeakSet._remove, Python too)
 * takes it out again: two Python calls per task, and an instance makes
 * one or two tasks per request (the handler's, asgi.fetch's app). Python
 * 3.12 moved this registry to C; this does the same for 3.11 without
 * replacing the object: the WeakSet stays the one asyncio and _asyncio
 * hold, its contents the same weak references in the same `data` set,
 * and only these two of its functions change. They are set on the
 * instance (an instance attribute overrides a Python method), so the
 * WeakSet's other methods (discard, __iter__, __len__, update, which
 * calls self.add) and its iteration guard work as before.
 *
 * What add and remove do is WeakSet's, line for line (Lib/_weakrefset.py):
 * add commits removals deferred while someone iterated, then adds a
 * weak reference whose callback is remove; remove defers while an
 * iteration runs (`_iterating` not empty), else discards. */
#define PY_SSIZE_T_CLEAN
#include "zygote/fast-py.h"

/* the WeakSet's own containers, which it never rebinds (checked at install) */
static PyObject *ts_set, *ts_data, *ts_pending, *ts_iterating, *ts_remove;

static PyObject *ts_add(PyObject *self, PyObject *item)
{
    PyObject *ref, *r;
    int rc;

    if (PyList_GET_SIZE(ts_pending) > 0) {
        if (!(r = PyObject_CallMethod(ts_set, "_commit_removals", NULL)))
            return NULL;
        Py_DECREF(r);
    }
    if (!(ref = PyWeakref_NewRef(item, ts_remove)))
        return NULL;
    rc = PySet_Add(ts_data, ref);
    Py_DECREF(ref);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *ts_remove_cb(PyObject *self, PyObject *ref)
{
    if (PySet_GET_SIZE(ts_iterating) > 0) {
        if (PyList_Append(ts_pending, ref) < 0)
            return NULL;
    } else if (PySet_Discard(ts_data, ref) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef ts_add_def = {"add", ts_add, METH_O,
                                 "WeakSet.add of asyncio's task registry, in C."};
static PyMethodDef ts_remove_def = {"_remove", ts_remove_cb, METH_O,
                                    "WeakSet._remove of asyncio's task registry, in C."};

/* lighten_task_set(weakset) -> True, or False when it is not a WeakSet
 * this can take over (left as it was) */
PyObject *thaw__lighten_task_set(PyObject *self, PyObject *ws)
{
    PyObject *data = NULL, *pending = NULL, *iterating = NULL, *add = NULL, *rm = NULL;
    PyObject *out = NULL;

    if (ts_set == ws)
        Py_RETURN_TRUE; /* a second call */
    if (ts_set) /* one registry per process: asyncio has one */
        Py_RETURN_FALSE;
    data = PyObject_GetAttrString(ws, "data");
    pending = PyObject_GetAttrString(ws, "_pending_removals");
    iterating = PyObject_GetAttrString(ws, "_iterating");
    if (!data || !pending || !iterating) {
        PyErr_Clear();
        out = Py_NewRef(Py_False);
        goto done;
    }
    /* exactly the containers WeakSet makes; anything else stays Python */
    if (!PySet_CheckExact(data) || !PyList_CheckExact(pending) ||
        !PySet_CheckExact(iterating)) {
        out = Py_NewRef(Py_False);
        goto done;
    }
    if (!(add = PyCFunction_New(&ts_add_def, NULL)) ||
        !(rm = PyCFunction_New(&ts_remove_def, NULL)))
        goto done;
    if (PyObject_SetAttrString(ws, "_remove", rm) < 0 ||
        PyObject_SetAttrString(ws, "add", add) < 0)
        goto done;
    ts_set = Py_NewRef(ws);
    ts_data = Py_NewRef(data);
    ts_pending = Py_NewRef(pending);
    ts_iterating = Py_NewRef(iterating);
    ts_remove = Py_NewRef(rm);
    out = Py_NewRef(Py_True);
done:
    Py_XDECREF(data);
    Py_XDECREF(pending);
    Py_XDECREF(iterating);
    Py_XDECREF(add);
    Py_XDECREF(rm);
    return out;
}
