/* Tries each layer of the sandbox in a child process, which then exits:
 * what the kernel refuses there, it would refuse the zygote. */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/cgroup.h"
#include "sandbox/probe.h"

static const char *const NAMES[THAW_SB_NLAYERS] = {
    "user namespace", "mount namespace", "network namespace", "pid namespace",
    "seccomp", "landlock", "process limit",
};

struct result {
    int err[THAW_SB_NLAYERS]; /* 0: ok, else errno (-1: not tried) */
};

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC), rc;

    if (fd < 0)
        return -1;
    rc = write(fd, text, strlen(text)) == (ssize_t)strlen(text) ? 0 : -1;
    close(fd);
    return rc;
}

static void try_layers(struct result *r)
{
    unsigned uid = geteuid(), gid = getegid();
    char line[64];
    uint64_t attr[4] = {1 /* MOUNT_ATTR_RDONLY */, 0, 0, 0};
    struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = {1, &allow};
    pid_t pid;
    int st, i;

    for (i = 0; i < THAW_SB_NLAYERS; i++)
        r->err[i] = -1;
    if (unshare(CLONE_NEWUSER)) {
        r->err[THAW_SB_USERNS] = errno;
        return;
    }
    write_file("/proc/self/setgroups", "deny");
    snprintf(line, sizeof(line), "0 %u 1\n", uid);
    if (write_file("/proc/self/uid_map", line)) {
        r->err[THAW_SB_USERNS] = errno;
        return;
    }
    snprintf(line, sizeof(line), "0 %u 1\n", gid);
    r->err[THAW_SB_USERNS] = write_file("/proc/self/gid_map", line) ? errno : 0;
    if (r->err[THAW_SB_USERNS])
        return;
    r->err[THAW_SB_NETNS] = unshare(CLONE_NEWNET) ? errno : 0;
    if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
        syscall(SYS_mount_setattr, AT_FDCWD, "/", 0x8000 /* AT_RECURSIVE */, attr,
                sizeof(attr)))
        r->err[THAW_SB_MOUNTNS] = errno;
    else
        r->err[THAW_SB_MOUNTNS] = 0;
    /* a pid namespace whose init can mount its own /proc */
    if (unshare(CLONE_NEWPID)) {
        r->err[THAW_SB_PIDNS] = errno;
    } else if ((pid = fork()) == 0) {
        _exit(r->err[THAW_SB_MOUNTNS] ? 0 :
              mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) ? errno : 0);
    } else if (pid < 0 || waitpid(pid, &st, 0) < 0) {
        r->err[THAW_SB_PIDNS] = errno;
    } else {
        r->err[THAW_SB_PIDNS] = WIFEXITED(st) ? WEXITSTATUS(st) : EIO;
    }
    r->err[THAW_SB_SECCOMP] = prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
                              prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) ? errno : 0;
}

void thaw_sb_probe(struct thaw_sb_probe *p)
{
    struct result r;
    int fds[2], st, i;
    long abi;
    pid_t pid;
    struct stat sb;

    memset(p, 0, sizeof(*p));
    memset(&r, 0, sizeof(r));
    for (i = 0; i < THAW_SB_NLAYERS; i++)
        r.err[i] = EIO;
    p->root = geteuid() == 0;
    if (pipe2(fds, O_CLOEXEC) == 0) {
        pid = fork();
        if (pid == 0) {
            close(fds[0]);
            try_layers(&r);
            _exit(write(fds[1], &r, sizeof(r)) == sizeof(r) ? 0 : 1);
        }
        close(fds[1]);
        if (pid > 0) {
            if (read(fds[0], &r, sizeof(r)) != sizeof(r))
                for (i = 0; i < THAW_SB_NLAYERS; i++)
                    r.err[i] = EIO;
            waitpid(pid, &st, 0);
        }
        close(fds[0]);
    }
    for (i = 0; i <= THAW_SB_SECCOMP; i++) {
        p->ok[i] = r.err[i] == 0;
        if (r.err[i] == -1)
            snprintf(p->why[i], sizeof(p->why[i]), "needs a user namespace");
        else if (r.err[i])
            snprintf(p->why[i], sizeof(p->why[i]), "%s", strerror(r.err[i]));
    }
    if (!p->ok[THAW_SB_USERNS] && r.err[THAW_SB_USERNS] != -1)
        snprintf(p->why[THAW_SB_USERNS], sizeof(p->why[0]),
                 "%s (user namespaces off? see /proc/sys/user/max_user_namespaces, "
                 "kernel.unprivileged_userns_clone, apparmor_restrict_unprivileged_userns)",
                 strerror(r.err[THAW_SB_USERNS]));

    abi = syscall(444 /* landlock_create_ruleset */, NULL, 0, 1U);
    p->landlock_abi = abi > 0 ? (int)abi : 0;
    p->ok[THAW_SB_LANDLOCK] = p->landlock_abi > 0;
    if (!p->ok[THAW_SB_LANDLOCK])
        snprintf(p->why[THAW_SB_LANDLOCK], sizeof(p->why[0]),
                 "the kernel has no Landlock (%s; needs Linux 5.13+ with lsm=landlock)",
                 strerror(errno));
    else if (p->landlock_abi < 6)
        snprintf(p->why[THAW_SB_LANDLOCK], sizeof(p->why[0]),
                 "ABI %d: no signal scoping (ABI 6, Linux 6.12)", p->landlock_abi);

    /* RLIMIT_NPROC does not bind uid 0, so as root the count is a cgroup */
    if (!p->root) {
        p->ok[THAW_SB_NPROC] = 1;
    } else if (stat("/sys/fs/cgroup/pids/cgroup.procs", &sb) == 0 &&
               access("/sys/fs/cgroup/pids", W_OK) == 0) {
        p->ok[THAW_SB_NPROC] = 1;
        snprintf(p->cgroup_root, sizeof(p->cgroup_root), "/sys/fs/cgroup/pids");
    } else {
        snprintf(p->why[THAW_SB_NPROC], sizeof(p->why[0]),
                 "running as root, and no writable cgroup v1 pids controller at "
                 "/sys/fs/cgroup/pids (RLIMIT_NPROC does not bind root)");
    }
    p->memcg = thaw_memcg_probe(p->memcg_base, sizeof(p->memcg_base), p->memcg_why,
                                sizeof(p->memcg_why));
    for (i = 0; i < THAW_SB_NLAYERS; i++)
        p->required[i] = 1;
    /* Landlock is what keeps a worker from reading files by owner bits; a
     * worker that is not root is kept out of the host's files by their
     * modes, so only root needs it */
    p->required[THAW_SB_LANDLOCK] = p->root;
}

int thaw_sb_probe_complete(const struct thaw_sb_probe *p)
{
    int i;

    for (i = 0; i < THAW_SB_NLAYERS; i++)
        if (p->required[i] && !p->ok[i])
            return 0;
    return 1;
}

static const char *const WHAT[THAW_SB_NLAYERS] = {
    "workers hold no capability over the host",
    "read-only files, a private size-limited /tmp per worker",
    "no network interface: bindings go through the supervisor",
    "an instance sees and signals only its own worker's processes",
    "ptrace, mount, bpf, kexec, keyctl, modules, namespaces, exec, new sockets: EPERM",
    "files: stdlib, packages and the worker's own bundle only",
    "forks and threads per worker version are bounded",
};

void thaw_sb_probe_print(const struct thaw_sb_probe *p, FILE *out, const char *indent)
{
    int i;

    for (i = 0; i < THAW_SB_NLAYERS; i++) {
        if (p->ok[i] && !p->why[i][0]) {
            fprintf(out, "%s%-18s available: %s", indent, NAMES[i], WHAT[i]);
            if (i == THAW_SB_LANDLOCK)
                fprintf(out, " (ABI %d)", p->landlock_abi);
            if (i == THAW_SB_NPROC)
                fprintf(out, " (%s)", p->root ? "pids cgroup" : "RLIMIT_NPROC");
            fputc('\n', out);
        } else if (p->ok[i]) {
            fprintf(out, "%s%-18s partial: %s; %s\n", indent, NAMES[i], WHAT[i], p->why[i]);
        } else {
            fprintf(out, "%s%-18s MISSING: %s; %s\n", indent, NAMES[i], p->why[i],
                    p->required[i] ? "thaw will not sandbox without it"
                                   : "thaw runs without it (files are still kept by "
                                     "their modes, since thaw is not root)");
        }
    }
}

const char *thaw_sb_probe_memory(const struct thaw_sb_probe *p)
{
    return p->memcg == THAW_MEMCG_V2   ? "memory cgroup v2 per worker version"
           : p->memcg == THAW_MEMCG_V1 ? "memory cgroup v1 per worker version"
                                       : "memory counted per instance only";
}

/* Not a layer of its own: without it thaw still limits memory, less well. */
void thaw_sb_probe_print_memory(const struct thaw_sb_probe *p, FILE *out, const char *indent)
{
    if (p->memcg)
        fprintf(out, "%s%-18s %s: the kernel counts all of a worker version's memory "
                "(instances, their children, memfds, its /tmp) against its limit (%s)\n",
                indent, "memory", thaw_memcg_name(p->memcg), p->memcg_base);
    else
        fprintf(out, "%s%-18s none: %s; thaw counts each instance's private memory from "
                "/proc instead (memfds, /tmp and child processes are not counted)\n",
                indent, "memory", p->memcg_why);
}
