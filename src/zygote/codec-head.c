/* _thaw_fast.decode: every complete frame of a read buffer in one call,
 * and each REQ_HEAD taken apart into the objects the instance builds its
 * Request from (what instance.py did per frame with ipc.decode and
 * ipc.parse_fields, in bytecode). */
#define PY_SSIZE_T_CLEAN
#include "zygote/fast-py.h"

#include <stdint.h>
#include <string.h>

#include "ipc/ipc-proto.h"

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* str.strip() with no argument, on latin-1 text: Python's whitespace */
static int py_space(unsigned char c)
{
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0;
}

static void strip(const unsigned char **p, size_t *n)
{
    while (*n && py_space((*p)[0])) {
        (*p)++;
        (*n)--;
    }
    while (*n && py_space((*p)[*n - 1]))
        (*n)--;
}

/* Interned: every request has these, so none is made per request. */
enum { S_GET, S_POST, S_HEAD, S_PUT, S_DELETE, S_OPTIONS, S_PATCH, S_V11, S_V10, S_COUNT };
static const char *const common_text[S_COUNT] = {
    "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "1.1", "1.0",
};
static PyObject *common[S_COUNT];

int thaw__codec_head_init(void)
{
    int i;

    for (i = 0; i < S_COUNT; i++)
        if (!(common[i] = PyUnicode_InternFromString(common_text[i])))
            return -1;
    return 0;
}

static PyObject *latin1(const unsigned char *p, size_t n, int first, int last)
{
    int i;

    for (i = first; i <= last; i++)
        if (strlen(common_text[i]) == n && memcmp(common_text[i], p, n) == 0)
            return Py_NewRef(common[i]);
    return PyUnicode_DecodeLatin1((const char *)p, (Py_ssize_t)n, NULL);
}

/* A header name as Headers stores it: lower case (the supervisor sends
 * names in lower case already: src/server/h1-head.c). */
static PyObject *name_str(const unsigned char *p, size_t n)
{
    PyObject *s;
    Py_UCS1 *d;
    size_t i;
    int upper = 0;

    for (i = 0; i < n; i++) {
        if (p[i] >= 0x80) { /* not from thaw's parser: str.lower() decides */
            PyObject *raw = PyUnicode_DecodeLatin1((const char *)p, (Py_ssize_t)n, NULL);

            if (!raw)
                return NULL;
            s = PyObject_CallMethod(raw, "lower", NULL);
            Py_DECREF(raw);
            return s;
        }
        upper |= p[i] >= 'A' && p[i] <= 'Z';
    }
    if (!(s = PyUnicode_New((Py_ssize_t)n, 127)))
        return NULL;
    d = PyUnicode_1BYTE_DATA(s);
    for (i = 0; i < n; i++)
        d[i] = upper && p[i] >= 'A' && p[i] <= 'Z' ? (Py_UCS1)(p[i] + 32) : p[i];
    return s;
}

struct head_state {
    PyObject *pairs;
    int body_known; /* the first transfer-encoding or content-length decided */
    int has_body;
};

/* instance.py's _has_body, on the pairs in order (after splitting) */
static void note_body(struct head_state *h, const unsigned char *name, size_t nn,
                      const unsigned char *v, size_t vn)
{
    if (h->body_known)
        return;
    if (nn == 17 && memcmp(name, "transfer-encoding", 17) == 0) {
        h->body_known = h->has_body = 1;
    } else if (nn == 14 && memcmp(name, "content-length", 14) == 0) {
        strip(&v, &vn);
        h->body_known = 1;
        h->has_body = !(vn == 0 || (vn == 1 && v[0] == '0'));
    }
}

static int add_pair(struct head_state *h, PyObject *name, const unsigned char *v, size_t vn)
{
    PyObject *value = PyUnicode_DecodeLatin1((const char *)v, (Py_ssize_t)vn, NULL);
    PyObject *pair;
    int rc;

    if (!value)
        return -1;
    pair = PyTuple_Pack(2, name, value);
    Py_DECREF(value);
    if (!pair)
        return -1;
    rc = PyList_Append(h->pairs, pair);
    Py_DECREF(pair);
    return rc;
}

/* One header field; split_commas: the compatibility behaviour before
 * python_request_headers_preserve_commas (instance.py's _split_commas:
 * one field per non-empty, stripped, comma-separated part). */
static int add_header(struct head_state *h, const unsigned char *np, size_t nn,
                      const unsigned char *v, size_t vn, int split_commas)
{
    PyObject *name = name_str(np, nn);
    const unsigned char *lname;
    Py_ssize_t lnn;
    int rc = 0;

    if (!name)
        return -1;
    lname = (const unsigned char *)PyUnicode_AsUTF8AndSize(name, &lnn);
    if (!lname) {
        Py_DECREF(name);
        return -1;
    }
    if (split_commas && memchr(v, ',', vn)) {
        const unsigned char *end = v + vn;

        while (!rc) {
            const unsigned char *comma = memchr(v, ',', (size_t)(end - v));
            const unsigned char *part = v;
            size_t pn = (size_t)((comma ? comma : end) - v);

            strip(&part, &pn);
            if (pn) {
                note_body(h, lname, (size_t)lnn, part, pn);
                rc = add_pair(h, name, part, pn);
            }
            if (!comma)
                break;
            v = comma + 1;
        }
    } else {
        note_body(h, lname, (size_t)lnn, v, vn);
        rc = add_pair(h, name, v, vn);
    }
    Py_DECREF(name);
    return rc;
}

struct field {
    const unsigned char *p;
    size_t n;
};

/* ipc.parse_fields' checks, same messages; returns the field count */
static Py_ssize_t count_fields(const unsigned char *p, size_t len)
{
    size_t off = 0;
    Py_ssize_t count = 0;

    while (off < len) {
        uint32_t n;

        if (len - off < 4) {
            PyErr_SetString(thaw__codec_error, "truncated field length");
            return -1;
        }
        n = le32(p + off);
        off += 4;
        if (n > len - off) {
            PyErr_SetString(thaw__codec_error, "field overruns its frame");
            return -1;
        }
        off += n;
        count++;
    }
    return count;
}

static void next_field(const unsigned char *p, size_t *off, struct field *f)
{
    f->n = le32(p + *off);
    f->p = p + *off + 4;
    *off += 4 + f->n;
}

static int is(const struct field *f, const char *s)
{
    size_t n = strlen(s);

    return f->n == n && memcmp(f->p, s, n) == 0;
}

/* The thaw-made fields that lead a head (':client-ip' ...; ipc-proto.h):
 * client, http_version, and a dict of them all when any other is there
 * (a scheduled event's :event, :cron, :scheduled-time). */
struct meta {
    struct field ip, port, version;
    int has_ip, has_port, has_version, other;
};

static PyObject *meta_dict(const unsigned char *p, size_t off, Py_ssize_t npairs)
{
    PyObject *d = PyDict_New();
    Py_ssize_t i;

    for (i = 0; d && i < npairs; i++) {
        struct field n, v;
        PyObject *k, *val;
        int rc;

        next_field(p, &off, &n);
        next_field(p, &off, &v);
        if (!n.n || n.p[0] != ':')
            break;
        k = PyUnicode_DecodeLatin1((const char *)n.p, (Py_ssize_t)n.n, NULL);
        val = PyUnicode_DecodeLatin1((const char *)v.p, (Py_ssize_t)v.n, NULL);
        rc = k && val ? PyDict_SetItem(d, k, val) : -1;
        Py_XDECREF(k);
        Py_XDECREF(val);
        if (rc)
            Py_CLEAR(d);
    }
    return d;
}

static PyObject *client_of(const struct meta *m)
{
    PyObject *ip, *port, *client;

    if (!m->has_ip)
        Py_RETURN_NONE;
    if (!(ip = PyUnicode_DecodeLatin1((const char *)m->ip.p, (Py_ssize_t)m->ip.n, NULL)))
        return NULL;
    if (m->has_port && m->port.n) { /* int(meta.get(":client-port") or 0) */
        PyObject *text = PyUnicode_DecodeLatin1((const char *)m->port.p,
                                                (Py_ssize_t)m->port.n, NULL);

        port = text ? PyLong_FromUnicodeObject(text, 10) : NULL;
        Py_XDECREF(text);
    } else {
        port = PyLong_FromLong(0);
    }
    client = port ? PyTuple_Pack(2, ip, port) : NULL;
    Py_DECREF(ip);
    Py_XDECREF(port);
    return client;
}

/* REQ_HEAD payload -> (method, url, pairs, client, http_version, meta,
 * has_body): pairs are (lower-case name, value) str tuples without the
 * leading ':' fields; client is (ip, port) or None; meta is None unless
 * a ':' field other than the client's and the version's is there. */
static PyObject *parse_head(const unsigned char *p, size_t len, int split_commas)
{
    Py_ssize_t nf = count_fields(p, len), npairs, i;
    size_t off = 0, pairs_off;
    struct field method, url, n, v;
    struct meta m = {0};
    struct head_state h = {0};
    PyObject *out = NULL, *o_method = NULL, *o_url = NULL, *client = NULL, *version = NULL;
    PyObject *meta = NULL;

    if (nf < 0)
        return NULL;
    if (nf < 2) {
        PyErr_SetString(thaw__codec_error, "request head without a method and a URL");
        return NULL;
    }
    next_field(p, &off, &method);
    next_field(p, &off, &url);
    npairs = (nf - 2) / 2;
    pairs_off = off;
    for (i = 0; i < npairs; i++) {
        size_t at = off;

        next_field(p, &off, &n);
        next_field(p, &off, &v);
        if (!n.n || n.p[0] != ':') {
            off = at;
            break;
        }
        /* a repeated one: the last wins, as in a dict */
        if (is(&n, ":client-ip"))
            m.ip = v, m.has_ip = 1;
        else if (is(&n, ":client-port"))
            m.port = v, m.has_port = 1;
        else if (is(&n, ":http-version"))
            m.version = v, m.has_version = 1;
        else
            m.other = 1;
    }
    if (!(h.pairs = PyList_New(0)))
        return NULL;
    for (; i < npairs; i++) {
        next_field(p, &off, &n);
        next_field(p, &off, &v);
        if (add_header(&h, n.p, n.n, v.p, v.n, split_commas))
            goto done;
    }
    o_method = latin1(method.p, method.n, S_GET, S_PATCH);
    o_url = o_method ? PyUnicode_DecodeUTF8((const char *)url.p, (Py_ssize_t)url.n,
                                            "surrogateescape") : NULL;
    client = o_url ? client_of(&m) : NULL;
    if (!client)
        goto done;
    version = m.has_version ? latin1(m.version.p, m.version.n, S_V11, S_V10)
                            : Py_NewRef(common[S_V11]);
    if (!version)
        goto done;
    if (!m.other)
        meta = Py_NewRef(Py_None);
    else if (!(meta = meta_dict(p, pairs_off, npairs)))
        goto done;
    out = PyTuple_Pack(7, o_method, o_url, h.pairs, client, version, meta,
                       h.has_body ? Py_True : Py_False);
done:
    Py_XDECREF(o_method);
    Py_XDECREF(o_url);
    Py_XDECREF(client);
    Py_XDECREF(version);
    Py_XDECREF(meta);
    Py_DECREF(h.pairs);
    return out;
}

/* decode(buf, end=-1, split_commas=False) -> ([(type, flags, stream,
 * payload)], consumed, error): the complete frames of buf[:end]. payload
 * is bytes, or parse_head()'s tuple for a REQ_HEAD. error is None, or the
 * ProtocolError of a malformed frame (decoding stops there; the good
 * frames before it come back, to be dispatched before it is raised). */
PyObject *thaw__codec_decode(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Py_ssize_t end = -1;
    int split_commas = 0;
    size_t off = 0, len;
    const unsigned char *p;
    PyObject *frames, *out = NULL, *error = NULL;

    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "decode(buf, end=-1, split_commas=False)");
        return NULL;
    }
    if (nargs > 1 && (end = PyLong_AsSsize_t(args[1])) == -1 && PyErr_Occurred())
        return NULL;
    if (nargs > 2 && (split_commas = PyObject_IsTrue(args[2])) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE))
        return NULL;
    p = view.buf;
    len = (size_t)(end < 0 || end > view.len ? view.len : end);
    if (!(frames = PyList_New(0)))
        goto fail;
    while (len - off >= THAW_IPC_HEADER_SIZE) {
        const unsigned char *h = p + off;
        uint32_t n = le32(h);
        unsigned type = h[4], flags = h[5];
        PyObject *payload, *frame;

        if (n > THAW_IPC_MAX_PAYLOAD || h[6] || h[7]) {
            PyErr_SetString(thaw__codec_error, "bad frame header");
            goto bad;
        }
        if (len - off - THAW_IPC_HEADER_SIZE < n)
            break;
        if (type == THAW_IPC_REQ_HEAD)
            payload = parse_head(h + THAW_IPC_HEADER_SIZE, n, split_commas);
        else
            payload = PyBytes_FromStringAndSize((const char *)h + THAW_IPC_HEADER_SIZE, n);
        if (!payload)
            goto bad;
        frame = Py_BuildValue("(IIkN)", type, flags, (unsigned long)le32(h + 8), payload);
        if (!frame || PyList_Append(frames, frame)) {
            Py_XDECREF(frame);
            goto fail;
        }
        Py_DECREF(frame);
        off += THAW_IPC_HEADER_SIZE + n;
    }
    goto done;
bad:
    if (!PyErr_ExceptionMatches(thaw__codec_error))
        goto fail;
    {
        PyObject *type, *tb;

        PyErr_Fetch(&type, &error, &tb);
        PyErr_NormalizeException(&type, &error, &tb);
        Py_XDECREF(type);
        Py_XDECREF(tb);
    }
done:
    out = Py_BuildValue("(OnO)", frames, (Py_ssize_t)off, error ? error : Py_None);
    Py_XDECREF(error);
fail:
    Py_XDECREF(frames);
    PyBuffer_Release(&view);
    return out;
}
