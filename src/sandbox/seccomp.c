/* The seccomp allowlist of templates and instances, compiled to BPF once
 * in the zygote with libseccomp (thaw_sb_seccomp_prepare); every template
 * inherits the program and loads it (seccomp-load.c), so no template pays
 * for compiling it (3.5-4.5 ms each, measured).
 *
 * Three outcomes. A call on ALLOW runs. A call on DENY (ptrace, mount,
 * bpf, kexec, keyctl, modules, namespaces, uid changes, exec, new sockets,
 * ...) fails with EPERM, which Python raises as PermissionError:
 * a worker that tries finds out at once and can catch it. Any other call
 * (one no Python worker has a reason to make) traps: SIGSYS, whose handler
 * writes the call's name to thaw's log and ends the process; only that
 * instance dies, and the supervisor answers its requests with 502.
 * A worker's TCP sockets come from the supervisor, connected or not
 * (src/bind/connect.c, op "socket"), so refusing socket() of every family
 * costs it nothing; a unix socket of its own could reach any pathname
 * socket of the host (Landlock does not cover connecting to one). The
 * sockets a worker holds are its channel, the supervisor's TCP sockets
 * and its own AF_UNIX SOCK_STREAM socketpairs (asyncio's self-pipe): all
 * connected but the supervisor's unconnected TCP ones, which live in the
 * host's network namespace. So connect, bind, listen and accept are
 * refused outright (listen() would bind an unbound TCP socket to a host
 * port, which Landlock's TCP rules do not see), as is MSG_FASTOPEN (a
 * connect by sendto/sendmsg), and no datagram or seqpacket socketpair
 * (an unconnected datagram socket can sendto() any pathname socket). */
#include <errno.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/sandbox-internal.h"

static const char *const ALLOW[] = {
    /* files and descriptors */
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
    "preadv2", "pwritev2", "open", "openat", "openat2", "close", "close_range", "creat",
    "stat", "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs", "lseek",
    "access", "faccessat", "faccessat2", "dup", "dup2", "dup3", "fcntl", "flock",
    "fsync", "fdatasync", "sync", "syncfs", "truncate", "ftruncate", "fallocate",
    "fadvise64", "getdents", "getdents64", "getcwd", "chdir", "fchdir", "rename",
    "renameat", "renameat2", "mkdir", "mkdirat", "rmdir", "link", "linkat", "unlink",
    "unlinkat", "symlink", "symlinkat", "readlink", "readlinkat", "chmod", "fchmod",
    "fchmodat", "chown", "fchown", "lchown", "fchownat", "umask", "utime", "utimes",
    "utimensat", "futimesat", "getxattr", "lgetxattr", "fgetxattr", "listxattr",
    "llistxattr", "flistxattr", "setxattr", "lsetxattr", "fsetxattr", "removexattr",
    "lremovexattr", "fremovexattr", "sendfile", "splice", "tee", "copy_file_range",
    "pipe", "pipe2", "memfd_create", "eventfd", "eventfd2", "signalfd", "signalfd4",
    "timerfd_create", "timerfd_settime", "timerfd_gettime", "inotify_init",
    "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
    /* waiting */
    "select", "pselect6", "poll", "ppoll", "epoll_create", "epoll_create1", "epoll_ctl",
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "nanosleep", "clock_nanosleep",
    "futex", "futex_waitv", "sched_yield", "restart_syscall",
    /* memory */
    "mmap", "mprotect", "munmap", "mremap", "msync", "madvise", "mincore", "brk",
    "mlock", "mlock2", "munlock", "mlockall", "munlockall", "membarrier",
    "get_mempolicy", "set_mempolicy", "mbind", "pkey_alloc", "pkey_free", "pkey_mprotect",
    /* signals and processes (kill and clone have argument rules below) */
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait",
    "rt_sigsuspend", "sigaltstack", "pause", "getitimer", "setitimer", "alarm",
    "fork", "vfork", "exit", "exit_group", "wait4", "waitid", "pidfd_open",
    "pidfd_send_signal", "set_tid_address", "set_robust_list", "get_robust_list", "rseq",
    "arch_prctl", "sched_getaffinity", "sched_setaffinity", "sched_getparam",
    "sched_getscheduler", "sched_get_priority_max", "sched_get_priority_min",
    "sched_getattr", "sched_rr_get_interval", "getpriority",
    "setpriority", "getcpu",
    /* identity (reading it) */
    "getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getresuid",
    "getresgid", "getgroups", "getpgrp", "getpgid", "getsid", "setsid", "setpgid",
    "capget", "uname", "sysinfo", "times", "getrusage", "getrlimit", "setrlimit",
    /* time and entropy */
    "time", "gettimeofday", "clock_gettime", "clock_getres", "getrandom",
    /* sockets it holds (socketpair and the send calls have argument
     * rules below) */
    "recvfrom", "recvmsg", "recvmmsg", "shutdown", "getsockname", "getpeername",
    "setsockopt", "getsockopt",
    /* sandboxing oneself further (instances add their Landlock layer) */
    "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", "seccomp",
};

/* What a worker is told it may not do (EPERM: PermissionError). */
static const char *const DENY[] = {
    "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "pidfd_getfd",
    "kcmp", "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree",
    "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "unshare", "setns",
    "clone3", "execve", "execveat", "bpf", "perf_event_open", "kexec_load",
    "kexec_file_load", "init_module", "finit_module", "delete_module", "keyctl", "add_key",
    "request_key", "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
    "setfsuid", "setfsgid", "setgroups", "capset", "userfaultfd", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "name_to_handle_at", "open_by_handle_at",
    "reboot", "swapon", "swapoff", "acct", "quotactl", "syslog", "settimeofday",
    "clock_settime", "clock_adjtime", "adjtimex", "sethostname", "setdomainname",
    "iopl", "ioperm", "mknod", "mknodat", "personality", "vhangup", "lookup_dcookie",
    "fanotify_init", "shmget", "shmat", "shmctl", "shmdt", "semget", "semop", "semctl",
    "semtimedop", "msgget", "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink",
    "migrate_pages", "move_pages", "set_mempolicy_home_node", "socket", "connect", "bind",
    "listen", "accept", "accept4",
    /* scheduling policy: a worker may lower its priority with nice
     * (setpriority), never change class (SCHED_FIFO, SCHED_IDLE, deadline,
     * utilisation clamps) */
    "sched_setscheduler", "sched_setparam", "sched_setattr", "ioprio_set",
};

/* socketpair(AF_UNIX, type) other than SOCK_STREAM: EPERM (other values
 * are no socket type: the call traps) */
static const int PAIR_DENIED[] = {SOCK_DGRAM, SOCK_RAW, SOCK_RDM, SOCK_SEQPACKET, SOCK_DCCP,
                                  SOCK_PACKET};
/* the type's flags, on 32 bits: the kernel reads the argument as an int */
#define TYPE_MASK ((uint32_t) ~(SOCK_NONBLOCK | SOCK_CLOEXEC))

/* clone's namespace flags: each one alone makes the call fail with EPERM */
static const uint32_t NS_FLAG[] = {CLONE_NEWNS,  CLONE_NEWUSER, CLONE_NEWPID,
                                   CLONE_NEWNET, CLONE_NEWUTS,  CLONE_NEWIPC,
                                   CLONE_NEWCGROUP, 0x00000080 /* CLONE_NEWTIME */};
#define N_NS_FLAGS (sizeof(NS_FLAG) / sizeof(NS_FLAG[0]))

struct sock_fprog thaw__sb_filter;
const char *thaw__sb_syscall_names[THAW__SB_MAX_NR];

static int add(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
               const struct scmp_arg_cmp *cmp, char *err, size_t errlen)
{
    int nr = seccomp_syscall_resolve_name(name);
    int rc;

    if (nr == __NR_SCMP_ERROR)
        return 0; /* not on this architecture */
    rc = seccomp_rule_add_array(ctx, action, nr, n, cmp);
    if (rc < 0) {
        snprintf(err, errlen, "sandbox: seccomp rule for %s: %s", name, strerror(-rc));
        return -1;
    }
    return 0;
}

/* Reads the program libseccomp wrote to fd into thaw__sb_filter. */
static int read_program(int fd, char *err, size_t errlen)
{
    struct stat st;
    unsigned char *buf;
    size_t got = 0;
    ssize_t n;

    if (fstat(fd, &st) || lseek(fd, 0, SEEK_SET) < 0)
        return thaw__sb_fail(err, errlen, "read the compiled seccomp filter");
    if (st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) ||
        st.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS) {
        snprintf(err, errlen, "sandbox: the compiled seccomp filter has a bad size (%lld bytes)",
                 (long long)st.st_size);
        return -1;
    }
    buf = malloc((size_t)st.st_size);
    if (!buf) {
        errno = ENOMEM;
        return thaw__sb_fail(err, errlen, "read the compiled seccomp filter");
    }
    while (got < (size_t)st.st_size) {
        n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            free(buf);
            return thaw__sb_fail(err, errlen, "read the compiled seccomp filter");
        }
        got += (size_t)n;
    }
    /* lives as long as the zygote; templates inherit it */
    thaw__sb_filter.filter = (struct sock_filter *)buf;
    thaw__sb_filter.len = (unsigned short)(got / sizeof(struct sock_filter));
    return 0;
}

/* socketpair: AF_UNIX SOCK_STREAM only. sendto, sendmsg, sendmmsg:
 * without MSG_FASTOPEN (the flags are the 4th, 3rd and 4th argument). */
static int socket_rules(scmp_filter_ctx ctx, char *err, size_t errlen)
{
    uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
    struct scmp_arg_cmp pair[2] = {SCMP_A0(SCMP_CMP_EQ, AF_UNIX),
                                   SCMP_A1(SCMP_CMP_MASKED_EQ, TYPE_MASK, SOCK_STREAM)};
    struct scmp_arg_cmp not_unix = SCMP_A0(SCMP_CMP_NE, AF_UNIX);
    struct scmp_arg_cmp fo2[2] = {SCMP_A2(SCMP_CMP_MASKED_EQ, MSG_FASTOPEN, 0),
                                  SCMP_A2(SCMP_CMP_MASKED_EQ, MSG_FASTOPEN, MSG_FASTOPEN)};
    struct scmp_arg_cmp fo3[2] = {SCMP_A3(SCMP_CMP_MASKED_EQ, MSG_FASTOPEN, 0),
                                  SCMP_A3(SCMP_CMP_MASKED_EQ, MSG_FASTOPEN, MSG_FASTOPEN)};
    size_t i;
    int rc;

    rc = add(ctx, SCMP_ACT_ALLOW, "socketpair", 2, pair, err, errlen) ||
         add(ctx, eperm, "socketpair", 1, &not_unix, err, errlen);
    for (i = 0; i < sizeof(PAIR_DENIED) / sizeof(PAIR_DENIED[0]) && !rc; i++) {
        pair[1].datum_b = (scmp_datum_t)PAIR_DENIED[i];
        rc = add(ctx, eperm, "socketpair", 2, pair, err, errlen);
    }
    return rc || add(ctx, SCMP_ACT_ALLOW, "sendto", 1, &fo3[0], err, errlen) ||
           add(ctx, eperm, "sendto", 1, &fo3[1], err, errlen) ||
           add(ctx, SCMP_ACT_ALLOW, "sendmsg", 1, &fo2[0], err, errlen) ||
           add(ctx, eperm, "sendmsg", 1, &fo2[1], err, errlen) ||
           add(ctx, SCMP_ACT_ALLOW, "sendmmsg", 1, &fo3[0], err, errlen) ||
           add(ctx, eperm, "sendmmsg", 1, &fo3[1], err, errlen) ? -1 : 0;
}

static int add_rules(scmp_filter_ctx ctx, char *err, size_t errlen)
{
    size_t i;
    int rc = 0;
    uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
    uint32_t ns_flags = 0;
    struct scmp_arg_cmp no_ns, ns;
    /* kill(-1) and kill(-pgrp): to everything it may signal or to a
     * group; a worker has no use for either */
    struct scmp_arg_cmp pid_pos = SCMP_A0(SCMP_CMP_MASKED_EQ, 0x80000000u, 0);
    struct scmp_arg_cmp pid_neg = SCMP_A0(SCMP_CMP_MASKED_EQ, 0x80000000u, 0x80000000u);
    struct scmp_arg_cmp not_tiocsti = SCMP_A1(SCMP_CMP_NE, TIOCSTI);
    struct scmp_arg_cmp tiocsti = SCMP_A1(SCMP_CMP_EQ, TIOCSTI);
    struct scmp_arg_cmp not_dumpable = SCMP_A0(SCMP_CMP_NE, PR_SET_DUMPABLE);
    struct scmp_arg_cmp dumpable = SCMP_A0(SCMP_CMP_EQ, PR_SET_DUMPABLE);
    struct scmp_arg_cmp self = SCMP_A0(SCMP_CMP_EQ, 0);
    struct scmp_arg_cmp other = SCMP_A0(SCMP_CMP_NE, 0);

    for (i = 0; i < N_NS_FLAGS; i++)
        ns_flags |= NS_FLAG[i];
    no_ns = (struct scmp_arg_cmp)SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags, 0);
    for (i = 0; i < sizeof(ALLOW) / sizeof(ALLOW[0]) && !rc; i++)
        rc = add(ctx, SCMP_ACT_ALLOW, ALLOW[i], 0, NULL, err, errlen);
    /* clone with any namespace flag: one rule per flag, since a single
     * masked compare can only say "none of them" or "all of them" (the
     * filter once said the latter, so CLONE_NEWUSER alone trapped) */
    for (i = 0; i < N_NS_FLAGS && !rc; i++) {
        ns = (struct scmp_arg_cmp)SCMP_A0(SCMP_CMP_MASKED_EQ, NS_FLAG[i], NS_FLAG[i]);
        rc = add(ctx, eperm, "clone", 1, &ns, err, errlen);
    }
    for (i = 0; i < sizeof(DENY) / sizeof(DENY[0]) && !rc; i++)
        rc = add(ctx, strcmp(DENY[i], "clone3") == 0 ? SCMP_ACT_ERRNO(ENOSYS) : eperm,
                 DENY[i], 0, NULL, err, errlen);
    /* clone3's flags live in memory seccomp cannot read: ENOSYS makes glibc
     * (2.34 and later: pthread_create, posix_spawn) fall back to clone,
     * whose flags it can; fork() is clone already */
    if (!rc)
        rc = add(ctx, SCMP_ACT_ALLOW, "clone", 1, &no_ns, err, errlen) ||
             add(ctx, SCMP_ACT_ALLOW, "kill", 1, &pid_pos, err, errlen) ||
             add(ctx, eperm, "kill", 1, &pid_neg, err, errlen) ||
             add(ctx, SCMP_ACT_ALLOW, "tgkill", 1, &pid_pos, err, errlen) ||
             add(ctx, eperm, "tgkill", 1, &pid_neg, err, errlen) ||
             add(ctx, SCMP_ACT_ALLOW, "tkill", 1, &pid_pos, err, errlen) ||
             add(ctx, eperm, "tkill", 1, &pid_neg, err, errlen) ||
             add(ctx, SCMP_ACT_ALLOW, "rt_sigqueueinfo", 1, &pid_pos, err, errlen) ||
             add(ctx, eperm, "rt_sigqueueinfo", 1, &pid_neg, err, errlen) ||
             add(ctx, SCMP_ACT_ALLOW, "rt_tgsigqueueinfo", 1, &pid_pos, err, errlen) ||
             add(ctx, eperm, "rt_tgsigqueueinfo", 1, &pid_neg, err, errlen) ||
             add(ctx, SCMP_ACT_ALLOW, "ioctl", 1, &not_tiocsti, err, errlen) ||
             add(ctx, eperm, "ioctl", 1, &tiocsti, err, errlen) ||
             add(ctx, SCMP_ACT_ALLOW, "prctl", 1, &not_dumpable, err, errlen) ||
             add(ctx, eperm, "prctl", 1, &dumpable, err, errlen) ||
             /* prlimit64 on itself only: no looking at or lowering others */
             add(ctx, SCMP_ACT_ALLOW, "prlimit64", 1, &self, err, errlen) ||
             add(ctx, eperm, "prlimit64", 1, &other, err, errlen);
    return rc || socket_rules(ctx, err, errlen) ? -1 : 0;
}

int thaw_sb_seccomp_prepare(char *err, size_t errlen)
{
    scmp_filter_ctx ctx;
    int fd, rc, nr;

    /* names by number for the SIGSYS message (its handler may not
     * allocate); resolved here once rather than in every template */
    for (nr = 0; nr < THAW__SB_MAX_NR; nr++)
        thaw__sb_syscall_names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    ctx = seccomp_init(SCMP_ACT_TRAP);
    if (!ctx) {
        snprintf(err, errlen, "sandbox: seccomp_init failed");
        return -1;
    }
    /* every system call of an instance runs the filter: a binary search
     * over the allowlist instead of a linear walk (libseccomp >= 2.5;
     * without it the filter is the same, only slower) */
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    if (add_rules(ctx, err, errlen)) {
        seccomp_release(ctx);
        return -1;
    }
    fd = memfd_create("thaw-seccomp", MFD_CLOEXEC);
    if (fd < 0) {
        seccomp_release(ctx);
        return thaw__sb_fail(err, errlen, "memfd_create for the seccomp filter");
    }
    /* the same program seccomp_load() would install (libseccomp generates
     * it the same way for both) */
    rc = seccomp_export_bpf(ctx, fd);
    seccomp_release(ctx);
    if (rc < 0) {
        close(fd);
        snprintf(err, errlen, "sandbox: compile the seccomp filter (seccomp_export_bpf): %s",
                 strerror(-rc));
        return -1;
    }
    rc = read_program(fd, err, errlen);
    close(fd);
    return rc;
}
