/* _thaw_codec: the IPC frames of src/ipc/ipc-proto.h for a Python
 * instance, in C. An instance spends most of a small request's CPU in
 * Python bytecode; taking a read's frames apart, a request head into its
 * method, URL and header pairs, and a response into its frames are the
 * parts that need no Python at all.
 *
 * Built into thaw-zygote (registered in main.c), and also as a shared
 * module (build/py/_thaw_codec*.so) for tests and bench/instance-cpu.
 * python/thaw_runtime/ipc.py is the reference: the same frames, the same
 * errors (ProtocolError, with ipc.py's messages). */
#ifndef THAW_ZYGOTE_CODEC_PY_H
#define THAW_ZYGOTE_CODEC_PY_H

#include <Python.h>

PyMODINIT_FUNC PyInit__thaw_codec(void);

/* codec-head.c: decode(buf, end=-1, split_commas=False) */
PyObject *thaw__codec_decode(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
/* set up by PyInit__thaw_codec, used by codec-head.c */
extern PyObject *thaw__codec_error;
int thaw__codec_head_init(void);

#endif
