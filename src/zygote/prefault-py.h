/* _thaw.prefault(ranges): populates, writable, the pages a new instance
 * is about to copy anyway (src/pool/prefault.h says why and which). */
#ifndef THAW_ZYGOTE_PREFAULT_PY_H
#define THAW_ZYGOTE_PREFAULT_PY_H

#include <Python.h>

PyObject *thaw_py_prefault(PyObject *self, PyObject *arg);

#endif
