/* The header conversions of asgi.fetch, per request and per field: the
 * scope's (bytes, bytes) pairs from the Request's str pairs, and the
 * app's response headers checked and made str pairs (what
 * python/workers/_headers.py's Headers._thaw_from_bytes does). */
#define PY_SSIZE_T_CLEAN
#include "zygote/fast-py.h"

#include <string.h>

/* RFC 9110 tchar, as _headers.py's _TCHARS */
static int tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static PyObject *pair_item(PyObject *pair, Py_ssize_t i)
{
    if (PyTuple_Check(pair) && PyTuple_GET_SIZE(pair) == 2)
        return PyTuple_GET_ITEM(pair, i);
    if (PyList_Check(pair) && PyList_GET_SIZE(pair) == 2)
        return PyList_GET_ITEM(pair, i);
    return NULL;
}

/* latin1_pairs(pairs) -> [(bytes, bytes)]: str pairs encoded as latin-1
 * (the ASGI scope's headers); UnicodeEncodeError as str.encode raises. */
PyObject *thaw__asgi_latin1_pairs(PyObject *self, PyObject *pairs)
{
    PyObject *seq = PySequence_Fast(pairs, "header pairs must be a sequence"), *out;
    Py_ssize_t i, n;

    if (!seq)
        return NULL;
    n = PySequence_Fast_GET_SIZE(seq);
    if (!(out = PyList_New(n)))
        goto fail;
    for (i = 0; i < n; i++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(seq, i), *name, *value, *bn, *bv, *t;

        name = pair_item(pair, 0);
        value = pair_item(pair, 1);
        if (!name || !PyUnicode_Check(name) || !PyUnicode_Check(value)) {
            PyErr_SetString(PyExc_TypeError, "header pairs must be (str, str) pairs");
            goto fail;
        }
        bn = PyUnicode_AsLatin1String(name);
        bv = bn ? PyUnicode_AsLatin1String(value) : NULL;
        t = bv ? PyTuple_Pack(2, bn, bv) : NULL;
        Py_XDECREF(bn);
        Py_XDECREF(bv);
        if (!t)
            goto fail;
        PyList_SET_ITEM(out, i, t);
    }
    Py_DECREF(seq);
    return out;
fail:
    Py_XDECREF(out);
    Py_DECREF(seq);
    return NULL;
}

/* asgi_headers(pairs) -> [(lower-case name, value)] or None: an ASGI
 * response's (bytes, bytes) headers as Headers stores them, the value
 * stripped of spaces and tabs. None when a field is not bytes, or a name
 * is not a token, or a value holds CR, LF or NUL: the caller then takes
 * Headers' own path, which raises the precise error. */
PyObject *thaw__asgi_headers(PyObject *self, PyObject *pairs)
{
    PyObject *seq = PySequence_Fast(pairs, "ASGI headers must be a sequence"), *out;
    Py_ssize_t i, n;

    if (!seq)
        return NULL;
    n = PySequence_Fast_GET_SIZE(seq);
    if (!(out = PyList_New(n)))
        goto fail;
    for (i = 0; i < n; i++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(seq, i), *name, *value, *sn, *sv, *t;
        const unsigned char *np, *vp;
        Py_ssize_t nn, vn, k;
        Py_UCS1 *d;

        name = pair_item(pair, 0);
        value = pair_item(pair, 1);
        if (!name || !PyBytes_Check(name) || !PyBytes_Check(value))
            goto slow;
        np = (const unsigned char *)PyBytes_AS_STRING(name);
        nn = PyBytes_GET_SIZE(name);
        vp = (const unsigned char *)PyBytes_AS_STRING(value);
        vn = PyBytes_GET_SIZE(value);
        if (!nn)
            goto slow;
        for (k = 0; k < nn; k++)
            if (!tchar(np[k]))
                goto slow;
        while (vn && (vp[0] == ' ' || vp[0] == '\t'))
            vp++, vn--;
        while (vn && (vp[vn - 1] == ' ' || vp[vn - 1] == '\t'))
            vn--;
        if (memchr(vp, '\r', (size_t)vn) || memchr(vp, '\n', (size_t)vn) ||
            memchr(vp, '\0', (size_t)vn))
            goto slow;
        if (!(sn = PyUnicode_New(nn, 127)))
            goto fail;
        d = PyUnicode_1BYTE_DATA(sn);
        for (k = 0; k < nn; k++)
            d[k] = np[k] >= 'A' && np[k] <= 'Z' ? (Py_UCS1)(np[k] + 32) : np[k];
        sv = PyUnicode_DecodeLatin1((const char *)vp, vn, NULL);
        t = sv ? PyTuple_Pack(2, sn, sv) : NULL;
        Py_DECREF(sn);
        Py_XDECREF(sv);
        if (!t)
            goto fail;
        PyList_SET_ITEM(out, i, t);
    }
    Py_DECREF(seq);
    return out;
slow:
    Py_DECREF(out);
    Py_DECREF(seq);
    Py_RETURN_NONE;
fail:
    Py_XDECREF(out);
    Py_DECREF(seq);
    return NULL;
}
