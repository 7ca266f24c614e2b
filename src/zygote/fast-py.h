/* _thaw_fast: the hot path of a Python instance, in C. An instance spends
 * most of a small request's CPU in Python bytecode; these are parts that
 * need none:
 *   - the IPC frames of src/ipc/ipc-proto.h (codec-head.c, codec-resp.c):
 *     a read's frames taken apart in one call, a request head into its
 *     method, URL and header pairs, a response into its frames.
 *     python/thaw_runtime/ipc.py is the reference: the same frames, the
 *     same errors (ProtocolError, with ipc.py's messages).
 *   - eager tasks (eager.c): a coroutine's first step run at once, inside
 *     its own task, for a request's handler and asgi.fetch's app
 *     (python/workers/_asgi_eager.py is the same in Python).
 *   - asgi.fetch's header conversions (asgi-headers.c).
 *   - asgi.fetch's exchange state and `send` (asgi-call.c), its scope
 *     (asgi-scope.c).
 *   - the workers.Request of a decoded request head (sdk-new.c).
 *   - asyncio's task registry, add and remove in C (taskset.c).
 *   - a Durable Object's WebSocket message event, and ws.send's frame
 *     (dows.c; python/workers/_durable_ws.py is the reference).
 *
 * Built into thaw-zygote (registered in main.c), and also as a shared
 * module (build/py/_thaw_fast.so) for tests and bench/instance-cpu. */
#ifndef THAW_ZYGOTE_FAST_PY_H
#define THAW_ZYGOTE_FAST_PY_H

#include <Python.h>

PyMODINIT_FUNC PyInit__thaw_fast(void);

/* _thaw_fast.ProtocolError (fast-py.c) */
extern PyObject *thaw__codec_error;

/* codec-head.c: decode(buf, end=-1, split_commas=False) */
PyObject *thaw__codec_decode(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
int thaw__codec_head_init(void);

/* codec-resp.c: response(...), head(...), body(...), frame(...) */
PyObject *thaw__codec_response(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *thaw__codec_head(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *thaw__codec_body(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *thaw__codec_frame(PyObject *self, PyObject *const *args, Py_ssize_t nargs);

/* eager.c: start(coro, loop) -> (task, finished);
 * step(coro, loop) -> (task, state, value, context) */
PyObject *thaw__eager_start(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *thaw__eager_step(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
int thaw__eager_init(PyObject *module);
/* throw(typ[, val[, tb]])'s arguments raised as they are, for an
 * awaitable that has nothing to throw them into: NULL, the error set */
PyObject *thaw__raise_thrown(PyObject *args);

/* asgi-headers.c: latin1_pairs(pairs), asgi_headers(pairs) */
PyObject *thaw__asgi_latin1_pairs(PyObject *self, PyObject *pairs);
PyObject *thaw__asgi_headers(PyObject *self, PyObject *pairs);

/* asgi-call.c: the AsgiCall type and DONE, added to the module */
int thaw__asgi_call_init(PyObject *module);
PyObject *thaw__asgi_call_types(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *thaw__same(PyObject *self, PyObject *x);

/* asgi-scope.c: asgi_scope(request, env, state), asgi_scope_init(...) */
PyObject *thaw__asgi_scope(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *thaw__asgi_scope_init(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
int thaw__asgi_scope_init_names(void);

/* sdk-new.c: request_types(Request, Headers, incoming), new_request(...) */
PyObject *thaw__request_types(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *thaw__new_request(PyObject *self, PyObject *const *args, Py_ssize_t nargs);

/* taskset.c: lighten_task_set(weakset) -> bool */
PyObject *thaw__lighten_task_set(PyObject *self, PyObject *ws);
/* dows.c: ws_event(sid, meta), ws_setup(...), WsSend, Relay */
PyObject *thaw__dows_event(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *thaw__dows_setup(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
int thaw__dows_init(PyObject *module);

#endif
