/* The frames an instance sends: a whole sized response (RESP_HEAD,
 * RESP_BODY chunks, RESP_END) as one bytes object, a streaming response's
 * head, body chunks, any frame. What instance.py built with ipc.fields
 * and ipc.frame, one call each. */
#define PY_SSIZE_T_CLEAN
#include "zygote/fast-py.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ipc/ipc-proto.h"

static char *put32(char *d, uint32_t v)
{
    d[0] = (char)(v & 0xff);
    d[1] = (char)(v >> 8 & 0xff);
    d[2] = (char)(v >> 16 & 0xff);
    d[3] = (char)(v >> 24 & 0xff);
    return d + 4;
}

static char *put_header(char *d, size_t len, unsigned type, unsigned flags, uint32_t sid)
{
    d = put32(d, (uint32_t)len);
    d[0] = (char)type;
    d[1] = (char)flags;
    d[2] = d[3] = 0;
    return put32(d + 4, sid);
}

static int too_large(size_t n)
{
    if (n <= THAW_IPC_MAX_PAYLOAD)
        return 0;
    PyErr_Format(thaw__codec_error, "frame payload of %zu bytes over the maximum", n);
    return 1;
}

/* The fields of a head, as ipc.fields encodes them (str as UTF-8 with
 * surrogateescape, bytes as they are), pointing into the objects. */
#define FIELDS_ON_STACK 64
struct fields {
    const char **p;
    Py_ssize_t *n;
    Py_ssize_t count, cap;
    size_t size; /* the payload: each field's length and bytes */
    PyObject *keep; /* list of encodings made here, or NULL */
    const char *sp[FIELDS_ON_STACK];
    Py_ssize_t sn[FIELDS_ON_STACK];
    char status[24], length[24];
};

static void fields_init(struct fields *fs)
{
    fs->p = fs->sp;
    fs->n = fs->sn;
    fs->count = 0;
    fs->cap = FIELDS_ON_STACK;
    fs->size = 0;
    fs->keep = NULL;
}

static void fields_free(struct fields *fs)
{
    if (fs->p != fs->sp) {
        PyMem_Free(fs->p);
        PyMem_Free(fs->n);
    }
    Py_XDECREF(fs->keep);
}

static int add_raw(struct fields *fs, const char *p, Py_ssize_t n)
{
    if (fs->count == fs->cap) {
        Py_ssize_t cap = fs->cap * 2;
        const char **np = PyMem_Malloc(sizeof(*np) * (size_t)cap);
        Py_ssize_t *nn = PyMem_Malloc(sizeof(*nn) * (size_t)cap);

        if (!np || !nn) {
            PyMem_Free(np);
            PyMem_Free(nn);
            PyErr_NoMemory();
            return -1;
        }
        memcpy(np, fs->p, sizeof(*np) * (size_t)fs->count);
        memcpy(nn, fs->n, sizeof(*nn) * (size_t)fs->count);
        if (fs->p != fs->sp) {
            PyMem_Free(fs->p);
            PyMem_Free(fs->n);
        }
        fs->p = np;
        fs->n = nn;
        fs->cap = cap;
    }
    fs->p[fs->count] = p;
    fs->n[fs->count++] = n;
    fs->size += 4 + (size_t)n;
    return 0;
}

/* keeps o alive until fields_free (o: a new reference, or NULL) */
static int keep(struct fields *fs, PyObject *o)
{
    int rc;

    if (!o)
        return -1;
    if (!fs->keep && !(fs->keep = PyList_New(0))) {
        Py_DECREF(o);
        return -1;
    }
    rc = PyList_Append(fs->keep, o);
    Py_DECREF(o);
    return rc;
}

static int add_obj(struct fields *fs, PyObject *o)
{
    Py_ssize_t n;
    const char *p;

    if (PyUnicode_Check(o)) {
        if (PyUnicode_IS_ASCII(o))
            return add_raw(fs, (const char *)PyUnicode_1BYTE_DATA(o), PyUnicode_GET_LENGTH(o));
        if ((p = PyUnicode_AsUTF8AndSize(o, &n)))
            return add_raw(fs, p, n);
        /* lone surrogates (a URL's undecodable bytes): as ipc.fields */
        PyErr_Clear();
        o = PyUnicode_AsEncodedString(o, "utf-8", "surrogateescape");
        if (keep(fs, o))
            return -1;
        return add_raw(fs, PyBytes_AS_STRING(o), PyBytes_GET_SIZE(o));
    }
    if (PyBytes_Check(o))
        return add_raw(fs, PyBytes_AS_STRING(o), PyBytes_GET_SIZE(o));
    PyErr_Format(PyExc_TypeError, "a frame field must be str or bytes, not %.100s",
                 Py_TYPE(o)->tp_name);
    return -1;
}

/* v in decimal into buf (24 bytes: any long); its length. What snprintf
 * "%ld" gives, without its format parsing once or twice per response. */
static int decimal(char *buf, long long v)
{
    char tmp[24];
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    int n = 0, k = 0;

    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        buf[k++] = '-';
    while (n)
        buf[k++] = tmp[--n];
    return k;
}

/* status, reason or "", then the pairs but content-length (thaw frames
 * the body itself), as instance.py's _respond put them */
static int add_head(struct fields *fs, PyObject *status, PyObject *reason, PyObject *pairs)
{
    PyObject *seq;
    Py_ssize_t i, n;
    int rc = 0;

    if (PyLong_CheckExact(status)) {
        long v = PyLong_AsLong(status);

        if (v == -1 && PyErr_Occurred())
            return -1;
        if (add_raw(fs, fs->status, decimal(fs->status, v)))
            return -1;
    } else {
        PyObject *s = PyObject_Str(status);

        if (keep(fs, s) || add_obj(fs, s))
            return -1;
    }
    if (reason == Py_None ? add_raw(fs, "", 0) : add_obj(fs, reason))
        return -1;
    if (!(seq = PySequence_Fast(pairs, "response headers must be a sequence of pairs")))
        return -1;
    n = PySequence_Fast_GET_SIZE(seq);
    for (i = 0; i < n && !rc; i++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(seq, i), *name, *value;

        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError, "a response header must be a (name, value) tuple");
            rc = -1;
            break;
        }
        name = PyTuple_GET_ITEM(pair, 0);
        value = PyTuple_GET_ITEM(pair, 1);
        if (PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, "content-length") == 0)
            continue;
        rc = add_obj(fs, name) || add_obj(fs, value) ? -1 : 0;
    }
    Py_DECREF(seq);
    return rc;
}

static char *put_fields(char *d, const struct fields *fs)
{
    Py_ssize_t i;

    for (i = 0; i < fs->count; i++) {
        d = put32(d, (uint32_t)fs->n[i]);
        memcpy(d, fs->p[i], (size_t)fs->n[i]);
        d += fs->n[i];
    }
    return d;
}

static size_t chunked_size(size_t n)
{
    return n + (n + THAW_IPC_CHUNK - 1) / THAW_IPC_CHUNK * THAW_IPC_HEADER_SIZE;
}

static char *put_chunks(char *d, uint32_t sid, const char *p, size_t n)
{
    while (n) {
        size_t k = n > THAW_IPC_CHUNK ? THAW_IPC_CHUNK : n;

        d = put_header(d, k, THAW_IPC_RESP_BODY, 0, sid);
        memcpy(d, p, k);
        d += k;
        p += k;
        n -= k;
    }
    return d;
}

static int sid_arg(PyObject *o, uint32_t *sid)
{
    unsigned long v = PyLong_AsUnsignedLong(o);

    if (v == (unsigned long)-1 && PyErr_Occurred())
        return -1;
    if (v > UINT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "stream id over 32 bits");
        return -1;
    }
    *sid = (uint32_t)v;
    return 0;
}

/* response(sid, status, reason, pairs, body, send_length, send_body) ->
 * bytes: RESP_HEAD (with content-length when send_length), the body in
 * RESP_BODY chunks when send_body, RESP_END. body: bytes-like or None. */
PyObject *thaw__codec_response(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    struct fields fs;
    Py_buffer body = {0};
    uint32_t sid;
    int send_length, send_body;
    size_t size, blen = 0;
    PyObject *out = NULL;
    char *d;

    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError,
                        "response(sid, status, reason, pairs, body, send_length, send_body)");
        return NULL;
    }
    if (sid_arg(args[0], &sid) || (send_length = PyObject_IsTrue(args[5])) < 0 ||
        (send_body = PyObject_IsTrue(args[6])) < 0)
        return NULL;
    if (args[4] != Py_None) {
        if (PyObject_GetBuffer(args[4], &body, PyBUF_SIMPLE))
            return NULL;
        blen = (size_t)body.len;
    }
    fields_init(&fs);
    if (add_head(&fs, args[1], args[2], args[3]))
        goto done;
    if (send_length && (add_raw(&fs, "content-length", 14) ||
                        add_raw(&fs, fs.length, decimal(fs.length, (long long)blen))))
        goto done;
    if (too_large(fs.size))
        goto done;
    if (!send_body)
        blen = 0;
    size = 2 * THAW_IPC_HEADER_SIZE + fs.size + chunked_size(blen);
    if (!(out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size)))
        goto done;
    d = PyBytes_AS_STRING(out);
    d = put_header(d, fs.size, THAW_IPC_RESP_HEAD, 0, sid);
    d = put_fields(d, &fs);
    d = put_chunks(d, sid, body.buf, blen);
    put_header(d, 0, THAW_IPC_RESP_END, 0, sid);
done:
    fields_free(&fs);
    if (body.obj)
        PyBuffer_Release(&body);
    return out;
}

/* head(sid, status, reason, pairs) -> a streaming response's RESP_HEAD */
PyObject *thaw__codec_head(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    struct fields fs;
    uint32_t sid;
    PyObject *out = NULL;

    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "head(sid, status, reason, pairs)");
        return NULL;
    }
    if (sid_arg(args[0], &sid))
        return NULL;
    fields_init(&fs);
    if (!add_head(&fs, args[1], args[2], args[3]) && !too_large(fs.size) &&
        (out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(THAW_IPC_HEADER_SIZE + fs.size))))
        put_fields(put_header(PyBytes_AS_STRING(out), fs.size, THAW_IPC_RESP_HEAD, 0, sid), &fs);
    fields_free(&fs);
    return out;
}

/* body(sid, data) -> RESP_BODY frames of at most THAW_IPC_CHUNK bytes */
PyObject *thaw__codec_body(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data;
    uint32_t sid;
    PyObject *out;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "body(sid, data)");
        return NULL;
    }
    if (sid_arg(args[0], &sid) || PyObject_GetBuffer(args[1], &data, PyBUF_SIMPLE))
        return NULL;
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)chunked_size((size_t)data.len));
    if (out)
        put_chunks(PyBytes_AS_STRING(out), sid, data.buf, (size_t)data.len);
    PyBuffer_Release(&data);
    return out;
}

/* frame(type, sid, payload=b"", flags=0) -> bytes, as ipc.frame */
PyObject *thaw__codec_frame(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data = {0};
    unsigned long type, flags = 0;
    uint32_t sid;
    PyObject *out = NULL;

    if (nargs < 2 || nargs > 4) {
        PyErr_SetString(PyExc_TypeError, "frame(type, sid, payload=b'', flags=0)");
        return NULL;
    }
    type = PyLong_AsUnsignedLong(args[0]);
    if ((type == (unsigned long)-1 && PyErr_Occurred()) || sid_arg(args[1], &sid))
        return NULL;
    if (nargs > 3 && (flags = PyLong_AsUnsignedLong(args[3])) == (unsigned long)-1 &&
        PyErr_Occurred())
        return NULL;
    if (type > 255 || flags > 255) {
        PyErr_SetString(PyExc_OverflowError, "frame type and flags are one byte each");
        return NULL;
    }
    if (nargs > 2 && PyObject_GetBuffer(args[2], &data, PyBUF_SIMPLE))
        return NULL;
    if (!too_large((size_t)data.len) &&
        (out = PyBytes_FromStringAndSize(NULL, THAW_IPC_HEADER_SIZE + data.len))) {
        char *d = put_header(PyBytes_AS_STRING(out), (size_t)data.len, (unsigned)type,
                             (unsigned)flags, sid);

        if (data.len)
            memcpy(d, data.buf, (size_t)data.len);
    }
    if (data.obj)
        PyBuffer_Release(&data);
    return out;
}

