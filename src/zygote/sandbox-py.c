/* The `_thaw` module's sandbox calls (src/sandbox/sandbox.h), for
 * python/thaw_runtime/sandbox.py. Part of thaw-zygote. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "sandbox/sandbox.h"
#include "zygote/sandbox-py.h"

/* the template's settings, which its instances reuse */
static struct thaw_sb_template tpl;

static int str_list(PyObject *seq, const char **out, int *n, const char *what)
{
    Py_ssize_t i, len;

    seq = PySequence_Fast(seq, what);
    if (!seq)
        return -1;
    len = PySequence_Fast_GET_SIZE(seq);
    if (len > THAW_SB_MAX_PATHS) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "%s: more than %d paths", what, THAW_SB_MAX_PATHS);
        return -1;
    }
    for (i = 0; i < len; i++) {
        PyObject *b = NULL;
        if (!PyUnicode_FSConverter(PySequence_Fast_GET_ITEM(seq, i), &b)) {
            Py_DECREF(seq);
            return -1;
        }
        out[i] = strdup(PyBytes_AS_STRING(b)); /* lives as long as the process */
        Py_DECREF(b);
    }
    *n = (int)len;
    Py_DECREF(seq);
    return 0;
}

PyObject *thaw_py_sandbox_template(PyObject *self, PyObject *args)
{
    const char *name;
    PyObject *read, *keep;
    char err[512];

    const char *memcg = "";

    if (!PyArg_ParseTuple(args, "sOOLLLLLI|s", &name, &read, &keep, &tpl.tmp_bytes,
                          &tpl.nproc, &tpl.nofile, &tpl.fsize, &tpl.as_bytes, &tpl.uid,
                          &memcg))
        return NULL;
    tpl.name = strdup(name);
    tpl.memcg = strdup(memcg);
    if (str_list(read, tpl.read, &tpl.n_read, "read paths") ||
        str_list(keep, tpl.keep, &tpl.n_keep, "kept paths"))
        return NULL;
    if (thaw_sb_template(&tpl, err, sizeof(err)))
        return PyErr_Format(PyExc_OSError, "%s", err);
    Py_RETURN_NONE;
}

PyObject *thaw_py_sandbox_instance(PyObject *self, PyObject *arg)
{
    PyObject *b = NULL;
    char err[512];
    int rc;

    if (!PyUnicode_FSConverter(arg, &b))
        return NULL;
    rc = thaw_sb_instance(&tpl, PyBytes_AS_STRING(b), err, sizeof(err));
    Py_DECREF(b);
    if (rc)
        return PyErr_Format(PyExc_OSError, "%s", err);
    Py_RETURN_NONE;
}

PyObject *thaw_py_pidns_new(PyObject *self, PyObject *arg)
{
    char err[512];
    int ctl, fd = PyLong_AsLong(arg) == -1 && PyErr_Occurred() ? -2 : (int)PyLong_AsLong(arg);

    if (fd == -2)
        return NULL;
    if (thaw_sb_pidns_new(fd, &ctl, err, sizeof(err)))
        return PyErr_Format(PyExc_OSError, "%s", err);
    return PyLong_FromLong(ctl);
}

PyObject *thaw_py_pidns_hold(PyObject *self, PyObject *args)
{
    int ctl, fd;

    if (!PyArg_ParseTuple(args, "ii", &ctl, &fd))
        return NULL;
    if (thaw_sb_pidns_hold(ctl, fd))
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

PyObject *thaw_py_seccomp_report(PyObject *self, PyObject *args)
{
    int fd;
    unsigned stream;

    if (!PyArg_ParseTuple(args, "iI", &fd, &stream))
        return NULL;
    thaw_sb_seccomp_report(fd, stream);
    Py_RETURN_NONE;
}

PyObject *thaw_py_sandbox_active(PyObject *self, PyObject *unused)
{
    return PyBool_FromLong(thaw_sb_active());
}
