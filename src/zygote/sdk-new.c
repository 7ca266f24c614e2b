/* _thaw_fast.new_request(method, url, pairs, body, client, http_version):
 * the workers.Request of a request the instance decoded, as
 * Request._thaw_decoded (python/workers/_request.py, the reference) makes
 * it: the same attributes, set in the same order, on an object made by
 * Request.__new__, its Headers' pairs the decoder's own list. One C call
 * per request instead of two Python frames (_thaw_decoded and
 * Headers._thaw_owned). request_types(Request, Headers, incoming) hands
 * this the classes, and the marker of a cf made when asked for. */
#define PY_SSIZE_T_CLEAN
#include "zygote/fast-py.h"

static PyObject *request_type, *headers_type, *incoming, *empty_args;
static PyObject *a_method, *a_url, *a_headers, *a_redirect, *a_cf, *a_payload, *a_used;
static PyObject *a_client, *a_version, *a_pairs, *v_follow;

/* request_types(Request, Headers, incoming) */
PyObject *thaw__request_types(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyType_Check(args[0]) || !PyType_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "request_types(Request, Headers, incoming)");
        return NULL;
    }
#define I(var, s) if (!var && !(var = PyUnicode_InternFromString(s))) return NULL
    I(a_method, "method"); I(a_url, "url"); I(a_headers, "headers"); I(a_redirect, "redirect");
    I(a_cf, "_cf"); I(a_payload, "_payload"); I(a_used, "_used"); I(a_client, "_thaw_client");
    I(a_version, "_thaw_http_version"); I(a_pairs, "_pairs"); I(v_follow, "follow");
#undef I
    if (!empty_args && !(empty_args = PyTuple_New(0)))
        return NULL;
    Py_XSETREF(request_type, Py_NewRef(args[0]));
    Py_XSETREF(headers_type, Py_NewRef(args[1]));
    Py_XSETREF(incoming, Py_NewRef(args[2]));
    Py_RETURN_NONE;
}

static PyObject *new_object(PyObject *cls)
{
    PyTypeObject *t = (PyTypeObject *)cls;

    return t->tp_new(t, empty_args, NULL);
}

PyObject *thaw__new_request(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *req, *headers;

    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "new_request(method, url, pairs, body, client, http_version)");
        return NULL;
    }
    if (!request_type) {
        PyErr_SetString(PyExc_RuntimeError, "request_types() was not called");
        return NULL;
    }
    if (!(headers = new_object(headers_type)))
        return NULL;
    if (PyObject_SetAttr(headers, a_pairs, args[2]) < 0 || !(req = new_object(request_type))) {
        Py_DECREF(headers);
        return NULL;
    }
    if (PyObject_SetAttr(req, a_method, args[0]) < 0 || PyObject_SetAttr(req, a_url, args[1]) < 0 ||
        PyObject_SetAttr(req, a_headers, headers) < 0 ||
        PyObject_SetAttr(req, a_redirect, v_follow) < 0 ||
        PyObject_SetAttr(req, a_cf, incoming) < 0 || PyObject_SetAttr(req, a_payload, args[3]) < 0 ||
        PyObject_SetAttr(req, a_used, Py_False) < 0 ||
        (args[4] != Py_None && PyObject_SetAttr(req, a_client, args[4]) < 0) ||
        (args[5] != Py_None && PyObject_SetAttr(req, a_version, args[5]) < 0))
        Py_CLEAR(req);
    Py_DECREF(headers);
    return req;
}
