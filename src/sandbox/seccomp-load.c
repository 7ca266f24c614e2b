/* Installs the seccomp program that seccomp.c compiled in the zygote:
 * a template only sets its SIGSYS handler and makes one seccomp(2) call.
 * The flags are the ones libseccomp's seccomp_load() uses with thaw's
 * attributes (no TSYNC: a template has one thread; no LOG, no SPEC_ALLOW,
 * no listener): 0. no_new_privs is set first, as seccomp_load() does. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/sandbox-internal.h"

static char who[96];

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
    char line[256];
    int nr = si->si_syscall;
    const char *name = nr >= 0 && nr < THAW__SB_MAX_NR && thaw__sb_syscall_names[nr]
                           ? thaw__sb_syscall_names[nr]
                           : "?";
    int n = snprintf(line, sizeof(line),
                     "[thaw] %s: seccomp: forbidden system call %s (number %d); "
                     "the process is stopped\n", who, name, nr);

    if (n > 0 && write(2, line, (size_t)n) < 0)
        _exit(159);
    _exit(159);
}

int thaw_sb_seccomp(const char *name, char *err, size_t errlen)
{
    struct sigaction sa;

    if (!thaw__sb_filter.filter || !thaw__sb_filter.len) {
        errno = ENOENT;
        return thaw__sb_fail(err, errlen, "the seccomp filter was not compiled in the zygote");
    }
    snprintf(who, sizeof(who), "worker %s pid %ld", name ? name : "?", (long)getpid());
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL))
        return thaw__sb_fail(err, errlen, "sigaction(SIGSYS)");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
        return thaw__sb_fail(err, errlen, "PR_SET_NO_NEW_PRIVS");
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &thaw__sb_filter))
        return thaw__sb_fail(err, errlen, "seccomp(SECCOMP_SET_MODE_FILTER)");
    return 0;
}
