/* _thaw_fast.asgi_scope(request, env, state): the ASGI `http` scope of a
 * workers.Request, as python/workers/_asgi_scope.py's http_scope builds
 * it (the reference, and the fallback without this module): the same
 * keys in the same order, the same values. The URL's parts come from the
 * same cache (_targets, filled by _target on a miss, bounded the same
 * way); the header list from the Headers' own pairs, encoded as latin-1;
 * a request whose headers are not a workers.Headers goes through
 * header_pairs. asgi_scope_init hands this the Python parts once. */
#define PY_SSIZE_T_CLEAN
#include "zygote/fast-py.h"

static PyObject *targets, *target_fn, *header_pairs_fn, *headers_type;
static Py_ssize_t targets_max, target_url_max;
static PyObject *k_type, *k_asgi, *k_http_version, *k_method, *k_scheme, *k_path, *k_raw_path;
static PyObject *k_query_string, *k_root_path, *k_headers, *k_client, *k_server, *k_extensions;
static PyObject *k_env, *k_state, *k_version, *k_spec_version;
static PyObject *v_http, *v_30, *v_23, *v_11, *v_empty;
static PyObject *a_url, *a_method, *a_headers, *a_pairs, *a_client, *a_http_version, *a_upper;

/* asgi_scope_init(targets, target, header_pairs, Headers, targets_max, url_max) */
PyObject *thaw__asgi_scope_init(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 || !PyDict_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError,
                        "asgi_scope_init(targets dict, target, header_pairs, Headers, max, url_max)");
        return NULL;
    }
    if ((targets_max = PyLong_AsSsize_t(args[4])) < 0 ||
        (target_url_max = PyLong_AsSsize_t(args[5])) < 0)
        return NULL;
    Py_XSETREF(targets, Py_NewRef(args[0]));
    Py_XSETREF(target_fn, Py_NewRef(args[1]));
    Py_XSETREF(header_pairs_fn, Py_NewRef(args[2]));
    Py_XSETREF(headers_type, Py_NewRef(args[3]));
    Py_RETURN_NONE;
}

/* (scheme, (host, port), path, raw_path, query) of url, cached */
static PyObject *target_of(PyObject *url)
{
    PyObject *t = PyDict_GetItemWithError(targets, url);

    if (t)
        return Py_NewRef(t);
    if (PyErr_Occurred() || !(t = PyObject_CallOneArg(target_fn, url)))
        return NULL;
    if (PyUnicode_Check(url) && PyUnicode_GET_LENGTH(url) <= target_url_max) {
        if (PyDict_GET_SIZE(targets) >= targets_max)
            PyDict_Clear(targets);
        if (PyDict_SetItem(targets, url, t) < 0) {
            Py_DECREF(t);
            return NULL;
        }
    }
    if (!PyTuple_CheckExact(t) || PyTuple_GET_SIZE(t) != 5) {
        Py_DECREF(t);
        PyErr_SetString(PyExc_TypeError, "_target() must return a 5-tuple");
        return NULL;
    }
    return t;
}

/* str.upper(), without a new string when it is upper-case ASCII already */
static PyObject *upper(PyObject *s)
{
    if (PyUnicode_CheckExact(s) && PyUnicode_IS_ASCII(s)) {
        const Py_UCS1 *p = PyUnicode_1BYTE_DATA(s);
        Py_ssize_t i, n = PyUnicode_GET_LENGTH(s);

        for (i = 0; i < n; i++)
            if (p[i] >= 'a' && p[i] <= 'z')
                break;
        if (i == n)
            return Py_NewRef(s);
    }
    return PyObject_CallMethodNoArgs(s, a_upper);
}

/* getattr(obj, name, default), a new reference */
static PyObject *attr_or(PyObject *obj, PyObject *name, PyObject *dflt)
{
    PyObject *v;

    if (_PyObject_LookupAttr(obj, name, &v) < 0)
        return NULL;
    return v ? v : Py_NewRef(dflt);
}

static PyObject *header_list(PyObject *request)
{
    PyObject *h = PyObject_GetAttr(request, a_headers), *pairs, *out;

    if (!h)
        return NULL;
    if ((PyObject *)Py_TYPE(h) == headers_type) {
        pairs = PyObject_GetAttr(h, a_pairs); /* stored lower-case already */
    } else {
        pairs = PyObject_CallOneArg(header_pairs_fn, request);
    }
    Py_DECREF(h);
    if (!pairs)
        return NULL;
    out = thaw__asgi_latin1_pairs(NULL, pairs);
    Py_DECREF(pairs);
    return out;
}

static int put(PyObject *d, PyObject *k, PyObject *v)
{
    int rc;

    if (!v)
        return -1;
    rc = PyDict_SetItem(d, k, v);
    Py_DECREF(v);
    return rc;
}

/* asgi_scope(request, env, state) -> dict */
PyObject *thaw__asgi_scope(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *request, *env, *state, *url, *target, *scope, *asgi;

    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "asgi_scope(request, env, state)");
        return NULL;
    }
    if (!targets) {
        PyErr_SetString(PyExc_RuntimeError, "asgi_scope_init() was not called");
        return NULL;
    }
    request = args[0], env = args[1], state = args[2];
    if (!(url = PyObject_GetAttr(request, a_url)))
        return NULL;
    target = target_of(url);
    Py_DECREF(url);
    if (!target)
        return NULL;
    if (!(scope = _PyDict_NewPresized(15)))
        goto fail_target;
    if (!(asgi = _PyDict_NewPresized(2)) ||
        PyDict_SetItem(asgi, k_version, v_30) < 0 ||
        PyDict_SetItem(asgi, k_spec_version, v_23) < 0) {
        Py_XDECREF(asgi);
        goto fail;
    }
    if (PyDict_SetItem(scope, k_type, v_http) < 0 || put(scope, k_asgi, asgi) < 0 ||
        put(scope, k_http_version, attr_or(request, a_http_version, v_11)) < 0)
        goto fail;
    {
        PyObject *m = PyObject_GetAttr(request, a_method);

        if (!m || put(scope, k_method, upper(m)) < 0) {
            Py_XDECREF(m);
            goto fail;
        }
        Py_DECREF(m);
    }
    if (PyDict_SetItem(scope, k_scheme, PyTuple_GET_ITEM(target, 0)) < 0 ||
        PyDict_SetItem(scope, k_path, PyTuple_GET_ITEM(target, 2)) < 0 ||
        PyDict_SetItem(scope, k_raw_path, PyTuple_GET_ITEM(target, 3)) < 0 ||
        PyDict_SetItem(scope, k_query_string, PyTuple_GET_ITEM(target, 4)) < 0 ||
        PyDict_SetItem(scope, k_root_path, v_empty) < 0 ||
        put(scope, k_headers, header_list(request)) < 0 ||
        put(scope, k_client, attr_or(request, a_client, Py_None)) < 0 ||
        PyDict_SetItem(scope, k_server, PyTuple_GET_ITEM(target, 1)) < 0 ||
        put(scope, k_extensions, PyDict_New()) < 0 ||
        PyDict_SetItem(scope, k_env, env) < 0)
        goto fail;
    if (state != Py_None) {
        /* each request gets a shallow copy of the lifespan state (ASGI spec) */
        PyObject *copy = PyDict_CheckExact(state) ? PyDict_Copy(state)
                                                  : PyObject_CallOneArg((PyObject *)&PyDict_Type, state);

        if (put(scope, k_state, copy) < 0)
            goto fail;
    }
    Py_DECREF(target);
    return scope;
fail:
    Py_DECREF(scope);
fail_target:
    Py_DECREF(target);
    return NULL;
}

int thaw__asgi_scope_init_names(void)
{
#define I(var, s) if (!(var = PyUnicode_InternFromString(s))) return -1
    if (k_type)
        return 0;
    I(k_type, "type"); I(k_asgi, "asgi"); I(k_http_version, "http_version");
    I(k_method, "method"); I(k_scheme, "scheme"); I(k_path, "path"); I(k_raw_path, "raw_path");
    I(k_query_string, "query_string"); I(k_root_path, "root_path"); I(k_headers, "headers");
    I(k_client, "client"); I(k_server, "server"); I(k_extensions, "extensions");
    I(k_env, "env"); I(k_state, "state"); I(k_version, "version");
    I(k_spec_version, "spec_version"); I(v_http, "http"); I(v_30, "3.0"); I(v_23, "2.3");
    I(v_11, "1.1"); I(v_empty, ""); I(a_url, "url"); I(a_method, "method");
    I(a_headers, "headers"); I(a_pairs, "_pairs"); I(a_client, "_thaw_client");
    I(a_http_version, "_thaw_http_version"); I(a_upper, "upper");
#undef I
    return 0;
}
