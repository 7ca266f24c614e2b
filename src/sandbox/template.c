/* A worker version's layer, set up by its template right after the fork
 * from the zygote and before the worker's top level runs. Order matters:
 * what needs capabilities (namespaces, mounts, the /proc of the version's
 * pid namespace, which the zygote forked it into) comes first; then rlimits; then every capability goes; then Landlock and
 * seccomp, which the instances inherit and can only narrow. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/sandbox-internal.h"
#include "sandbox/timing.h"

/* Host paths a worker has no business seeing: each gets an empty tmpfs
 * (/tmp a writable, size-limited one: the worker's private tmp). */
static const char *const HIDE[] = {"/tmp", "/run", "/dev/shm", "/var/tmp", "/home", "/root"};

static int under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* A thread directory of /proc counts one link per thread (plus . and ..). */
static int single_threaded(void)
{
    struct stat st;

    return stat("/proc/self/task", &st) == 0 && st.st_nlink == 3;
}

/* Joins a pids cgroup of its own under the one the supervisor made: the
 * process count that RLIMIT_NPROC cannot bound when thaw runs as root.
 * Its name is the version's memory cgroup's ("v12"), which the supervisor
 * removes with the version (sandbox/cgroup.h). Never the template's pid:
 * in its own pid namespace every template is pid 2, and one shared group
 * let one worker's children use up every worker's process budget. Without
 * a memory cgroup the name is made unique here, and the group goes when
 * thaw exits. */
static int join_cgroup(const struct thaw_sb_template *t, char *err, size_t errlen)
{
    char name[64], path[128], num[32];
    struct timespec ts;
    int fd, rc = 0;

    if (thaw__sb_cgroup_fd < 0)
        return 0;
    if (t->memcg && t->memcg[0]) {
        snprintf(name, sizeof(name), "%.60s", t->memcg);
    } else {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        snprintf(name, sizeof(name), "t%lld.%09ld", (long long)ts.tv_sec, ts.tv_nsec);
    }
    if (mkdirat(thaw__sb_cgroup_fd, name, 0755) && errno != EEXIST)
        rc = thaw__sb_fail(err, errlen, "make the worker's pids cgroup");
    snprintf(num, sizeof(num), "%lld", t->nproc);
    snprintf(path, sizeof(path), "%s/pids.max", name);
    if (!rc && ((fd = openat(thaw__sb_cgroup_fd, path, O_WRONLY | O_CLOEXEC)) < 0 ||
                write(fd, num, strlen(num)) < 0 || close(fd)))
        rc = thaw__sb_fail(err, errlen, "set pids.max");
    /* "tasks", not "cgroup.procs": moving a whole process takes the
     * kernel's cgroup_threadgroup_rwsem for writing, which waits for an RCU
     * grace period (5-16 ms here, most of a template's sandbox time);
     * moving only the calling thread does not (the kernel skips the lock
     * for "0" written to tasks; a kernel without that optimisation takes
     * it either way). A template fresh from fork() has exactly one
     * thread, so moving it moves the process, and all it forks (the pid
     * namespace's init, instances, their threads) is born there. */
    if (!rc && !single_threaded()) {
        errno = EBUSY;
        rc = thaw__sb_fail(err, errlen, "join the pids cgroup (the template has threads)");
    }
    snprintf(path, sizeof(path), "%s/tasks", name);
    if (!rc && ((fd = openat(thaw__sb_cgroup_fd, path, O_WRONLY | O_CLOEXEC)) < 0 ||
                write(fd, "0", 1) < 0 || close(fd)))
        rc = thaw__sb_fail(err, errlen, "join the pids cgroup");
    /* a writable handle on the host's cgroup tree: gone before worker code */
    close(thaw__sb_cgroup_fd);
    thaw__sb_cgroup_fd = -1;
    return rc;
}

static int mkdirs(const char *path)
{
    char buf[PATH_MAX], *p;

    snprintf(buf, sizeof(buf), "%s", path);
    for (p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

/* What a kept path is bound onto: a directory, or for a kept file (the
 * worker's CA file) an empty file in its directory. */
int thaw__sb_mountpoint(const char *path, int fd)
{
    char dir[PATH_MAX], *slash;
    struct stat st;
    int f;

    if (fstat(fd, &st))
        return -1;
    if (S_ISDIR(st.st_mode))
        return mkdirs(path);
    if (access(path, F_OK) == 0)
        return 0; /* already visible: inside the bundle, bound before */
    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (mkdirs(dir))
            return -1;
    }
    f = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0444);
    return f < 0 ? -1 : close(f);
}

/* Covers each HIDE path with a tmpfs, then binds back the trees (and
 * files) the worker needs that live below one (a bundle under /tmp, as in
 * tests; a CA file in a home directory). */
int thaw__sb_private_mounts(const struct thaw_sb_template *t, char *err, size_t errlen)
{
    int keep_fd[THAW_SB_MAX_PATHS], i, k, rc = 0;
    char opts[64], src[64];
    size_t h;

    for (k = 0; k < t->n_keep; k++)
        keep_fd[k] = open(t->keep[k], O_PATH | O_CLOEXEC);
    for (h = 0; h < sizeof(HIDE) / sizeof(HIDE[0]) && !rc; h++) {
        const char *dir = HIDE[h];
        int is_tmp = strcmp(dir, "/tmp") == 0, nested = 0, binds;
        struct stat st;

        if (lstat(dir, &st) || !S_ISDIR(st.st_mode))
            continue;
        for (i = 0; i < (int)h; i++)
            nested |= under(dir, HIDE[i]);
        if (nested)
            continue;
        for (k = 0, binds = 0; k < t->n_keep; k++)
            binds |= under(t->keep[k], dir);
        snprintf(opts, sizeof(opts), is_tmp ? "size=%lld,mode=1777" : "size=64k,mode=755",
                 t->tmp_bytes);
        /* read-only at once when nothing is bound into it (no remount) */
        if (mount("tmpfs", dir, "tmpfs",
                  MS_NOSUID | MS_NODEV | (!is_tmp && !binds ? MS_RDONLY : 0), opts)) {
            rc = thaw__sb_fail(err, errlen, "mount a private tmpfs");
            break;
        }
        for (k = 0; k < t->n_keep && !rc; k++) {
            if (!under(t->keep[k], dir))
                continue;
            if (keep_fd[k] < 0) {
                errno = ENOENT;
                rc = thaw__sb_fail(err, errlen, t->keep[k]);
                break;
            }
            snprintf(src, sizeof(src), "/proc/self/fd/%d", keep_fd[k]);
            if (thaw__sb_mountpoint(t->keep[k], keep_fd[k]) ||
                mount(src, t->keep[k], NULL, MS_BIND | MS_REC, NULL))
                rc = thaw__sb_fail(err, errlen, "bind the worker's files into its mounts");
        }
        if (!rc && !is_tmp && binds &&
            mount(NULL, dir, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, opts))
            rc = thaw__sb_fail(err, errlen, "make a hidden path read-only");
    }
    for (k = 0; k < t->n_keep; k++)
        if (keep_fd[k] >= 0)
            close(keep_fd[k]);
    return rc;
}

/* The /proc of the version's pid namespace, as a detached read-only
 * mount (fsopen + fsmount), made while the template is still root of the
 * zygote's user namespace, which owns that pid namespace: once in its own
 * user namespace it could no longer mount it. Attached over /proc (and so
 * over the host's, which showed every host pid) by attach_proc. */
static int make_proc(char *err, size_t errlen)
{
    int fs, mnt;

    fs = (int)syscall(SYS_fsopen, "proc", 1 /* FSOPEN_CLOEXEC */);
    if (fs < 0)
        return thaw__sb_fail(err, errlen, "fsopen(proc)");
    if (syscall(SYS_fsconfig, fs, 6 /* FSCONFIG_CMD_CREATE */, NULL, NULL, 0)) {
        close(fs);
        return thaw__sb_fail(err, errlen, "create the /proc of the version's pid namespace");
    }
    mnt = (int)syscall(SYS_fsmount, fs, 1 /* FSMOUNT_CLOEXEC */,
                       THAW__MOUNT_ATTR_RDONLY | THAW__MOUNT_ATTR_NOSUID |
                           0x4 /* NODEV */ | 0x8 /* NOEXEC */);
    close(fs);
    if (mnt < 0)
        return thaw__sb_fail(err, errlen, "fsmount the /proc of the version's pid namespace");
    return mnt;
}

static int attach_proc(int mnt, char *err, size_t errlen)
{
    int rc = (int)syscall(SYS_move_mount, mnt, "", AT_FDCWD, "/proc",
                          0x4 /* MOVE_MOUNT_F_EMPTY_PATH */);

    close(mnt);
    return rc ? thaw__sb_fail(err, errlen, "mount the /proc of the version's pid namespace")
              : 0;
}

int thaw_sb_template(const struct thaw_sb_template *t, char *err, size_t errlen)
{
    int proc_mnt;
    struct thaw__sb_clock clk;
    int own_uid = t->uid > 0 && thaw__sb_worker_ids;

    if (!thaw_sb_active()) {
        errno = EINVAL;
        return thaw__sb_fail(err, errlen, "the zygote is not sandboxed");
    }
    thaw__sb_clock_start(&clk, "template", t->name);
    /* a handle on a host file: gone before worker code */
    thaw__sb_keeper_close();
    if (join_cgroup(t, err, errlen) || thaw__sb_memcg_join(t->memcg, err, errlen))
        return -1;
    thaw__sb_clock_mark(&clk, "cgroup");
    if ((proc_mnt = make_proc(err, errlen)) < 0)
        return -1;
    thaw__sb_clock_mark(&clk, "proc");
    /* its own user namespace: RLIMIT_NPROC counts per (namespace, uid), so
     * one worker's fork bomb does not use up another's processes; and the
     * mounts copied into it become locked read-only. As root, under a host
     * uid of its own, its mounts made first while still privileged
     * (worker-uid.c) */
    if (own_uid) {
        if (thaw__sb_worker_uid(t, err, errlen)) {
            close(proc_mnt);
            return -1;
        }
    } else {
        if (unshare(CLONE_NEWUSER)) {
            close(proc_mnt);
            return thaw__sb_fail(err, errlen, "unshare(CLONE_NEWUSER) for the template");
        }
        thaw__sb_clock_mark(&clk, "userns");
        if (thaw__sb_map_self(0, 0, err, errlen)) {
            close(proc_mnt);
            return -1;
        }
    }
    thaw__sb_clock_mark(&clk, "idmap");
    if (unshare(CLONE_NEWNS)) {
        close(proc_mnt);
        return thaw__sb_fail(err, errlen, "unshare(CLONE_NEWNS) for the template");
    }
    thaw__sb_clock_mark(&clk, "mntns");
    if (!own_uid && thaw__sb_private_mounts(t, err, errlen)) {
        close(proc_mnt);
        return -1;
    }
    thaw__sb_clock_mark(&clk, "mounts");
    /* after the id maps, written through the host's /proc, now covered */
    if (attach_proc(proc_mnt, err, errlen))
        return -1;
    thaw__sb_clock_mark(&clk, "proc-mount");
    /* kill(0, ...) reaches only its own group */
    if (setsid() < 0)
        return thaw__sb_fail(err, errlen, "setsid");
    if (thaw_sb_rlimits(t, err, errlen))
        return -1;
    thaw__sb_clock_mark(&clk, "rlimits");
    if (thaw_sb_drop_caps(err, errlen))
        return -1;
    thaw__sb_clock_mark(&clk, "caps");
    if (thaw_sb_landlock_abi() > 0 &&
        thaw_sb_landlock(t->read, t->n_read, "/tmp", err, errlen))
        return -1;
    thaw__sb_clock_mark(&clk, "landlock");
    if (thaw_sb_seccomp(t->name, err, errlen))
        return -1;
    thaw__sb_clock_mark(&clk, "seccomp");
    thaw__sb_clock_print(&clk);
    return 0;
}

int thaw_sb_instance(const struct thaw_sb_template *t, const char *tmpdir, char *err,
                     size_t errlen)
{
    struct thaw__sb_clock clk;

    thaw__sb_clock_start(&clk, "instance", t->name);
    thaw_sb_seccomp_report(-1, 0); /* the template's channel is not its own */
    if (setsid() < 0)
        return thaw__sb_fail(err, errlen, "setsid");
    if (thaw_sb_landlock_abi() > 0 &&
        thaw_sb_landlock(t->read, t->n_read, tmpdir, err, errlen))
        return -1;
    thaw__sb_clock_mark(&clk, "landlock");
    thaw__sb_clock_print(&clk);
    return 0;
}
