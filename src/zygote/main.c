/* thaw-zygote: the one process that initialises CPython. The supervisor
 * starts it with a control socket on fd 3; it imports thaw's runtime and
 * hands over to thaw_runtime.zygote.main(), which forks templates (and
 * templates fork instances) with os.fork(), so PyOS_BeforeFork and
 * PyOS_AfterFork_Child bracket every fork.
 *
 * The `_thaw` built-in module registered here is where the runtime reaches
 * the kernel for what the stdlib lacks (prctl, the sandbox). With
 * --sandbox it leaves the host's namespaces before CPython starts
 * (src/sandbox/zygote.c); the supervisor probed that it can. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "sandbox/timing.h"
#include "zygote/fast-py.h"
#include "zygote/prefault-py.h"
#include "zygote/sandbox-py.h"

static PyObject *thaw_set_pdeathsig(PyObject *self, PyObject *arg)
{
    long sig = PyLong_AsLong(arg);

    if (sig == -1 && PyErr_Occurred())
        return NULL;
    if (prctl(PR_SET_PDEATHSIG, sig) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyObject *thaw_set_name(PyObject *self, PyObject *arg)
{
    const char *name = PyUnicode_AsUTF8(arg);

    if (!name)
        return NULL;
    /* comm is 15 bytes; it is what ps and /proc/PID/comm show */
    prctl(PR_SET_NAME, name, 0, 0, 0);
    Py_RETURN_NONE;
}

static PyMethodDef thaw_methods[] = {
    {"set_pdeathsig", thaw_set_pdeathsig, METH_O,
     "Signal this process receives when its parent dies."},
    {"set_name", thaw_set_name, METH_O, "Set the process name (comm)."},
    {"sandbox_template", thaw_py_sandbox_template, METH_VARARGS,
     "Sandbox this freshly forked template (src/sandbox/template.c)."},
    {"sandbox_instance", thaw_py_sandbox_instance, METH_O,
     "Sandbox this freshly forked instance; the argument is its tmp directory."},
    {"pidns_new", thaw_py_pidns_new, METH_O,
     "Make the next fork the first of a new pid namespace, alive while the "
     "peer of this channel fd is (src/sandbox/keeper.c); returns its control fd."},
    {"pidns_hold", thaw_py_pidns_hold, METH_VARARGS,
     "Hand the pid namespace's init (control fd) a copy of an instance's channel fd."},
    {"seccomp_report", thaw_py_seccomp_report, METH_VARARGS,
     "Report a trapped call of the top level on this channel fd (-1: stop)."},
    {"sandbox_active", thaw_py_sandbox_active, METH_NOARGS,
     "Whether the zygote runs sandboxed."},
    {"prefault", thaw_py_prefault, METH_O,
     "Populate (copy now) the pages of (start, length) uint64 pairs; returns the count."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef thaw_module = {
    PyModuleDef_HEAD_INIT, "_thaw", "thaw's native helpers", -1, thaw_methods,
    NULL, NULL, NULL, NULL,
};

static PyObject *init_thaw_module(void) { return PyModule_Create(&thaw_module); }

static int fail_status(PyStatus st)
{
    fprintf(stderr, "[thaw-zygote] Python failed to start: %s%s%s\n",
            st.func ? st.func : "", st.func ? ": " : "",
            st.err_msg ? st.err_msg : "");
    return 1;
}

int main(int argc, char **argv)
{
    const char *pydir = NULL, *preload = "", *cgroup = NULL, *memcg = NULL;
    const char *cpucg[2] = {NULL, NULL};
    int sandbox = 0;
    char sberr[512];
    char realdir[PATH_MAX];
    int fd = 3, i;
    long ppid = 0;
    PyConfig config;
    PyStatus st;
    PyObject *mod, *res, *path, *dir;

    for (i = 1; i < argc && strcmp(argv[i], "--sandbox") == 0; i++)
        sandbox = 1;
    for (; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--cgroup") == 0)
            cgroup = argv[i + 1];
        else if (strcmp(argv[i], "--memory-cgroup") == 0)
            memcg = argv[i + 1];
        else if (strcmp(argv[i], "--cpu-cgroup") == 0)
            cpucg[cpucg[0] ? 1 : 0] = argv[i + 1];
        else if (strcmp(argv[i], "--python-dir") == 0)
            pydir = argv[i + 1];
        else if (strcmp(argv[i], "--fd") == 0)
            fd = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--ppid") == 0)
            ppid = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--preload") == 0)
            preload = argv[i + 1];
    }
    if (!pydir) {
        fprintf(stderr, "usage: thaw-zygote --python-dir DIR [--fd N] [--ppid PID]\n"
                        "(started by thaw; not meant to be run by hand)\n");
        return 2;
    }
    /* die with the supervisor, even when it is killed with SIGKILL */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (ppid && getppid() != ppid)
        return 1;
    /* Ctrl-C, `timeout` and `kill -- -PGID` signal a whole process group:
     * the Python tree gets its own, so the supervisor alone decides how it
     * stops (and does not mistake an orderly stop for crashes). */
    setpgid(0, 0);
    signal(SIGINT, SIG_IGN);
    /* read now, while the environment has it: zygote.py drops it before
     * any template exists, and templates inherit this answer */
    thaw__sb_timing_on();
    if (sandbox && (thaw_sb_memcg_open(memcg, sberr, sizeof(sberr)) ||
                    thaw_sb_cpucg_open(cpucg[0], sberr, sizeof(sberr)) ||
                    thaw_sb_cpucg_open(cpucg[1], sberr, sizeof(sberr)) ||
                    thaw_sb_zygote(cgroup, sberr, sizeof(sberr)))) {
        fprintf(stderr, "[thaw-zygote] %s\n", sberr);
        return 3;
    }

    if (PyImport_AppendInittab("_thaw", init_thaw_module) < 0 ||
        PyImport_AppendInittab("_thaw_fast", PyInit__thaw_fast) < 0)
        return 1;
    PyConfig_InitIsolatedConfig(&config);
    config.install_signal_handlers = 1;
    config.write_bytecode = 0; /* worker trees may be read-only */
    st = PyConfig_SetBytesString(&config, &config.program_name, "thaw-zygote");
    if (PyStatus_Exception(st))
        return fail_status(st);
    st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st))
        return fail_status(st);

    /* a clean path: tracebacks are matched against it to hide thaw's frames */
    if (realpath(pydir, realdir))
        pydir = realdir;
    path = PySys_GetObject("path"); /* borrowed */
    dir = PyUnicode_DecodeFSDefault(pydir);
    if (!path || !dir || PyList_Insert(path, 0, dir) < 0)
        goto error;
    Py_DECREF(dir);

    mod = PyImport_ImportModule("thaw_runtime.zygote");
    if (!mod)
        goto error;
    res = PyObject_CallMethod(mod, "main", "is", fd, preload);
    Py_DECREF(mod);
    if (!res)
        goto error;
    Py_DECREF(res);
    return Py_FinalizeEx() < 0 ? 1 : 0;
error:
    PyErr_Print();
    return 1;
}
