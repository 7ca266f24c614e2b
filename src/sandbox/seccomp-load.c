/* Installs the seccomp program that seccomp.c compiled in the zygote:
 * a template only sets its SIGSYS handler and makes one seccomp(2) call.
 * While the template runs the worker's top level, the handler also tells
 * the supervisor which call it was, as the build's error (a BUILD_ERR
 * frame on the template's channel), so the deploy's 422 names it rather
 * than only "exited while running the top level".
 * The flags are the ones libseccomp's seccomp_load() uses with thaw's
 * attributes (no TSYNC: a template has one thread; no LOG, no SPEC_ALLOW,
 * no listener): 0. no_new_privs is set first, as seccomp_load() does. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ipc/ipc-proto.h"
#include "sandbox/sandbox-internal.h"

static char who[96];
/* the template's channel while its top level runs, else -1 */
static int report_fd = -1;
static uint32_t report_stream;

void thaw_sb_seccomp_report(int fd, unsigned stream)
{
    report_fd = fd;
    report_stream = stream;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = v & 0xff, p[1] = (v >> 8) & 0xff, p[2] = (v >> 16) & 0xff, p[3] = v >> 24;
}

/* A BUILD_ERR frame (src/ipc/ipc-proto.h: u32 length, u8 type, u8 flags,
 * u16 reserved, u32 stream; then one field: u32 length and the text),
 * built by hand: a signal handler may not allocate. */
static void report(const char *name, int nr)
{
    unsigned char frame[12 + 4 + 320];
    char *text = (char *)frame + 16;
    int n = snprintf(text, sizeof(frame) - 16,
                     "the worker's top level made a system call the sandbox forbids: %s "
                     "(number %d), and the template was stopped (docs/security.md, "
                     "seccomp)\n", name, nr);

    if (n <= 0 || (size_t)n >= sizeof(frame) - 16)
        return;
    put32(frame, (uint32_t)n + 4);
    frame[4] = THAW_IPC_BUILD_ERR;
    frame[5] = frame[6] = frame[7] = 0;
    put32(frame + 8, report_stream);
    put32(frame + 12, (uint32_t)n);
    if (write(report_fd, frame, 16 + (size_t)n) < 0)
        return;
    /* the supervisor sees the template's exit by its pidfd and may close
     * the channel before reading what is queued on it: a moment for it
     * to read the frame and let go of the version (its end closing) */
    {
        struct pollfd p = {report_fd, POLLRDHUP, 0};
        poll(&p, 1, 1000);
    }
}

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

    if (report_fd >= 0)
        report(name, nr);
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
