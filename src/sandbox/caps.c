/* Limits of one process and the end of its privileges. */
#include <errno.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/sandbox-internal.h"

static int set_limit(int res, long long v, const char *what, char *err, size_t errlen)
{
    struct rlimit r;

    if (v <= 0)
        return 0;
    /* never above what the process already has: thaw's own caller may
     * have set a lower hard limit on purpose */
    if (getrlimit(res, &r))
        return thaw__sb_fail(err, errlen, what);
    if (r.rlim_max != RLIM_INFINITY && (rlim_t)v > r.rlim_max)
        v = (long long)r.rlim_max;
    r.rlim_cur = r.rlim_max = (rlim_t)v;
    if (setrlimit(res, &r))
        return thaw__sb_fail(err, errlen, what);
    return 0;
}

int thaw_sb_rlimits(const struct thaw_sb_template *t, char *err, size_t errlen)
{
    struct stat st;
    /* RLIMIT_FSIZE is about the offset written at: with thaw's log (fd 2)
     * a regular file, a log longer than the limit would make every line a
     * worker prints fail. The private /tmp, the only place a worker can
     * create files, is size-limited by its tmpfs anyway. */
    long long fsize = fstat(2, &st) == 0 && S_ISREG(st.st_mode) ? 0 : t->fsize;

    if (set_limit(RLIMIT_NPROC, t->nproc, "RLIMIT_NPROC", err, errlen) ||
        set_limit(RLIMIT_NOFILE, t->nofile, "RLIMIT_NOFILE", err, errlen) ||
        set_limit(RLIMIT_FSIZE, fsize, "RLIMIT_FSIZE", err, errlen) ||
        set_limit(RLIMIT_AS, t->as_bytes, "RLIMIT_AS", err, errlen) ||
        set_limit(RLIMIT_CORE, 1, "RLIMIT_CORE", err, errlen) ||
        set_limit(RLIMIT_MEMLOCK, 64 * 1024, "RLIMIT_MEMLOCK", err, errlen))
        return -1;
    /* /proc/PID/mem, environ, maps and ptrace need capabilities over a
     * process that is not dumpable: a sandboxed process has none, so one
     * worker cannot read another's memory even with the same uid */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))
        return thaw__sb_fail(err, errlen, "PR_SET_DUMPABLE");
    return 0;
}

int thaw_sb_drop_caps(char *err, size_t errlen)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {{0, 0, 0}, {0, 0, 0}};
    int cap;

    for (cap = 0; cap <= 63; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EINVAL)
            return thaw__sb_fail(err, errlen, "PR_CAPBSET_DROP");
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
        return thaw__sb_fail(err, errlen, "PR_CAP_AMBIENT_CLEAR_ALL");
    /* uid 0 of the namespace must not win capabilities back by exec */
    if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED |
                                     SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED |
                                     SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                                     SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED, 0, 0, 0))
        return thaw__sb_fail(err, errlen, "PR_SET_SECUREBITS");
    if (syscall(SYS_capset, &hdr, data))
        return thaw__sb_fail(err, errlen, "capset");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
        return thaw__sb_fail(err, errlen, "PR_SET_NO_NEW_PRIVS");
    return 0;
}
