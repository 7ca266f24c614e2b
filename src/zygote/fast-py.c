/* _thaw_fast: the module (src/zygote/fast-py.h says what is in it). */
#define PY_SSIZE_T_CLEAN
#include "zygote/fast-py.h"

#include "ipc/ipc-proto.h"

PyObject *thaw__codec_error;

static PyMethodDef codec_methods[] = {
    {"decode", (PyCFunction)(void (*)(void))thaw__codec_decode, METH_FASTCALL,
     "decode(buf, end=-1, split_commas=False) -> ([(type, flags, stream, payload)], "
     "consumed, ProtocolError or None); a REQ_HEAD's payload is (method, url, pairs, client, http_version, "
     "meta, has_body)."},
    {"response", (PyCFunction)(void (*)(void))thaw__codec_response, METH_FASTCALL,
     "response(sid, status, reason, pairs, body, send_length, send_body) -> the frames "
     "of a sized response."},
    {"head", (PyCFunction)(void (*)(void))thaw__codec_head, METH_FASTCALL,
     "head(sid, status, reason, pairs) -> a streaming response's RESP_HEAD frame."},
    {"body", (PyCFunction)(void (*)(void))thaw__codec_body, METH_FASTCALL,
     "body(sid, data) -> RESP_BODY frames of data."},
    {"frame", (PyCFunction)(void (*)(void))thaw__codec_frame, METH_FASTCALL,
     "frame(type, sid, payload=b'', flags=0) -> one frame."},
    {"start", (PyCFunction)(void (*)(void))thaw__eager_start, METH_FASTCALL,
     "start(coro, loop) -> (task, finished): run coro's first step now, inside a new "
     "task (made the loop's current one meanwhile); finished: it already ended."},
    {"step", (PyCFunction)(void (*)(void))thaw__eager_step, METH_FASTCALL,
     "step(coro, loop) -> (task, state, value, context): as start, but the outcome of "
     "a first step that ended is the caller's: state 1, it returned value; 2, it raised "
     "value (the task then ends with None); 0, it goes on in the task. context: the "
     "task's."},
    {"latin1_pairs", thaw__asgi_latin1_pairs, METH_O,
     "latin1_pairs(pairs) -> [(bytes, bytes)]: str header pairs encoded as latin-1."},
    {"asgi_headers", thaw__asgi_headers, METH_O,
     "asgi_headers(pairs) -> [(lower-case name, stripped value)] of an ASGI app's "
     "(bytes, bytes) headers, or None when one is not valid (Headers says why)."},
    {"asgi_scope", (PyCFunction)(void (*)(void))thaw__asgi_scope, METH_FASTCALL,
     "asgi_scope(request, env, state) -> the ASGI http scope of a workers.Request "
     "(python/workers/_asgi_scope.py's http_scope, in C)."},
    {"asgi_scope_init", (PyCFunction)(void (*)(void))thaw__asgi_scope_init, METH_FASTCALL,
     "asgi_scope_init(targets, target, header_pairs, Headers, targets_max, url_max): "
     "the Python parts asgi_scope uses."},
    {"asgi_call_types", (PyCFunction)(void (*)(void))thaw__asgi_call_types, METH_FASTCALL,
     "asgi_call_types(Headers, Response): what AsgiCall.sized_response makes."},
    {"same", thaw__same, METH_O, "same(x) -> x (Request.js_object's getter)."},
    {"request_types", (PyCFunction)(void (*)(void))thaw__request_types, METH_FASTCALL,
     "request_types(Request, Headers, incoming): what new_request makes."},
    {"new_request", (PyCFunction)(void (*)(void))thaw__new_request, METH_FASTCALL,
     "new_request(method, url, pairs, body, client, http_version) -> Request, as "
     "Request._thaw_decoded makes it."},
    {"lighten_task_set", thaw__lighten_task_set, METH_O,
     "lighten_task_set(asyncio.tasks._all_tasks) -> bool: its add and its weak "
     "references' callback in C (src/zygote/taskset.c); False: left as it was."},
    {"ws_event", (PyCFunction)(void (*)(void))thaw__dows_event, METH_FASTCALL,
     "ws_event(sid, meta) -> True when a Durable Object's WebSocket message event was "
     "taken (src/zygote/dows.c), False when the Python path is to take it."},
    {"ws_setup", (PyCFunction)(void (*)(void))thaw__dows_setup, METH_FASTCALL,
     "ws_setup(inst, objects, state_type, storage_type, request_id, fast_slow, ws_module, "
     "gate_var): "
     "ws_event's instance, once."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef codec_module = {
    PyModuleDef_HEAD_INIT, "_thaw_fast", "the hot path of thaw's instances, in C", -1,
    codec_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__thaw_fast(void)
{
    PyObject *m = PyModule_Create(&codec_module);

    if (!m)
        return NULL;
    if (thaw__codec_head_init() < 0 || thaw__eager_init(m) < 0 ||
        thaw__asgi_call_init(m) < 0 || thaw__asgi_scope_init_names() < 0 ||
        thaw__dows_init(m) < 0)
        goto fail;
    if (!thaw__codec_error &&
        !(thaw__codec_error = PyErr_NewException("_thaw_fast.ProtocolError", NULL, NULL)))
        goto fail;
    if (PyModule_AddObjectRef(m, "ProtocolError", thaw__codec_error) < 0 ||
        PyModule_AddIntConstant(m, "MAX_PAYLOAD", THAW_IPC_MAX_PAYLOAD) < 0 ||
        PyModule_AddIntConstant(m, "CHUNK", THAW_IPC_CHUNK) < 0 ||
        PyModule_AddIntConstant(m, "HEADER_SIZE", THAW_IPC_HEADER_SIZE) < 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
