/* _thaw.prefault: one madvise(MADV_POPULATE_WRITE) per range. The kernel
 * copies each copy-on-write page of the range without a fault per page
 * (Linux 5.14+). Ranges come from a sibling instance's pagemap: one that
 * is not mapped here, or not writable, fails with ENOMEM or EFAULT and is
 * skipped (nothing is touched that the instance could not write itself). */
#define PY_SSIZE_T_CLEAN
#include "zygote/prefault-py.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    int i;

    for (i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Returns how many pages it populated. */
PyObject *thaw_py_prefault(PyObject *self, PyObject *arg)
{
    Py_buffer buf;
    const unsigned char *p;
    Py_ssize_t i;
    unsigned long long pages = 0;
    long psz = sysconf(_SC_PAGESIZE);

    if (PyObject_GetBuffer(arg, &buf, PyBUF_SIMPLE))
        return NULL;
    p = buf.buf;
    for (i = 0; i + 16 <= buf.len; i += 16) {
        uint64_t start = le64(p + i), len = le64(p + i + 8);

        if (madvise((void *)(uintptr_t)start, (size_t)len, MADV_POPULATE_WRITE) == 0)
            pages += len / (uint64_t)psz;
        else if (errno == EINVAL)
            break; /* a kernel without MADV_POPULATE_WRITE */
    }
    PyBuffer_Release(&buf);
    return PyLong_FromUnsignedLongLong(pages);
}
