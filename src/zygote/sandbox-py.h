/* The `_thaw` module's sandbox calls (sandbox-py.c). */
#ifndef THAW_ZYGOTE_SANDBOX_PY_H
#define THAW_ZYGOTE_SANDBOX_PY_H

#include <Python.h>

/* sandbox_template(name, read, keep, tmp_bytes, nproc, nofile, fsize, as_bytes[, memcg]) */
PyObject *thaw_py_sandbox_template(PyObject *self, PyObject *args);
/* sandbox_instance(tmpdir) */
PyObject *thaw_py_sandbox_instance(PyObject *self, PyObject *arg);
/* pidns_new(chan_fd) -> ctl_fd: the next fork is born in a new pid
 * namespace that lives while the supervisor keeps chan_fd's peer, or the
 * peer of an instance channel sent on ctl_fd, open */
PyObject *thaw_py_pidns_new(PyObject *self, PyObject *arg);
/* pidns_hold(ctl_fd, chan_fd): the init holds an instance's channel too */
PyObject *thaw_py_pidns_hold(PyObject *self, PyObject *args);
/* seccomp_report(fd, stream): a trapped call of the top level is reported
 * on fd as the build's error; fd -1 stops it */
PyObject *thaw_py_seccomp_report(PyObject *self, PyObject *args);
/* sandbox_active() -> bool */
PyObject *thaw_py_sandbox_active(PyObject *self, PyObject *unused);

#endif
