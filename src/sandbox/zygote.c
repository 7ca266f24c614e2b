/* The zygote's layer: it and everything forked from it leave the host's
 * user, mount, network, IPC and UTS namespaces before CPython starts.
 * Inside, the zygote is uid 0 of a user namespace that maps the user who
 * runs thaw (and, when that is root, the workers' range of host ids,
 * sandbox/uids.h): it has capabilities over its own namespaces (which
 * templates need to make theirs) and none over the host. Every mount is
 * made read-only; the network namespace has no interface at all, so a
 * worker's only way out is its IPC channel to the supervisor. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/sandbox-internal.h"
#include "sandbox/uids.h"

int thaw__sb_cgroup_fd = -1;
int thaw__sb_worker_ids;
static int active;

int thaw_sb_active(void) { return active; }

int thaw__sb_write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    ssize_t n;
    size_t len = strlen(text);

    if (fd < 0)
        return -1;
    n = write(fd, text, len);
    if (n != (ssize_t)len) {
        int e = n < 0 ? errno : EIO;
        close(fd);
        errno = e;
        return -1;
    }
    return close(fd);
}

/* Maps uid/gid 0 of a fresh user namespace to the caller's own ids: the
 * one mapping an unprivileged process may write for itself. */
int thaw__sb_map_self(unsigned uid, unsigned gid, char *err, size_t errlen)
{
    char line[64];

    if (thaw__sb_write_file("/proc/self/setgroups", "deny") && errno != ENOENT)
        return thaw__sb_fail(err, errlen, "write /proc/self/setgroups");
    snprintf(line, sizeof(line), "0 %u 1\n", uid);
    if (thaw__sb_write_file("/proc/self/uid_map", line))
        return thaw__sb_fail(err, errlen, "write /proc/self/uid_map");
    snprintf(line, sizeof(line), "0 %u 1\n", gid);
    if (thaw__sb_write_file("/proc/self/gid_map", line))
        return thaw__sb_fail(err, errlen, "write /proc/self/gid_map");
    return 0;
}

/* The helper's side of map_root: still in the host's namespaces, with
 * root's capabilities there, it writes the maps of pid's new namespace.
 * Exits 0 when the workers' range is mapped, 1 when only 0 -> 0 is (root
 * in a container that lacks those ids), 2 on failure. */
static void write_root_maps(pid_t pid, int go)
{
    char path[64], line[96];
    const char *what[] = {"uid_map", "gid_map"};
    int i, ranged = 1;
    ssize_t n;

    do
        n = read(go, line, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1)
        _exit(2);
    for (i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, what[i]);
        snprintf(line, sizeof(line), "0 0 1\n1 %u %u\n", THAW_SB_UID_BASE + 1,
                 THAW_SB_UID_COUNT - 1);
        /* a map is written once: the fallback only if the range failed */
        if (ranged && thaw__sb_write_file(path, line) == 0)
            continue;
        if (i == 1 && ranged)
            _exit(2); /* uids ranged, gids not: no consistent fallback */
        ranged = 0;
        if (thaw__sb_write_file(path, "0 0 1\n"))
            _exit(2);
    }
    _exit(ranged ? 0 : 1);
}

/* As root: a new user namespace mapping 0 -> 0 and the workers' range.
 * No process can write such a map for a namespace it is in (it holds no
 * capability in the parent any more), so a child forked first, still in
 * the host's namespace, writes it once the zygote has unshared. */
static int map_root(char *err, size_t errlen)
{
    int go[2], status;
    pid_t pid, self = getpid();

    if (pipe2(go, O_CLOEXEC))
        return thaw__sb_fail(err, errlen, "pipe for the id-map helper");
    pid = fork();
    if (pid < 0) {
        close(go[0]);
        close(go[1]);
        return thaw__sb_fail(err, errlen, "fork the id-map helper");
    }
    if (pid == 0) {
        close(go[1]);
        write_root_maps(self, go[0]);
    }
    close(go[0]);
    if (unshare(CLONE_NEWUSER)) {
        int e = errno;
        close(go[1]);
        waitpid(pid, NULL, 0);
        errno = e;
        return thaw__sb_fail(err, errlen, "unshare(CLONE_NEWUSER)");
    }
    if (write(go[1], "x", 1) != 1) {
        close(go[1]);
        waitpid(pid, NULL, 0);
        return thaw__sb_fail(err, errlen, "start the id-map helper");
    }
    close(go[1]);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return thaw__sb_fail(err, errlen, "wait for the id-map helper");
    if (!WIFEXITED(status) || WEXITSTATUS(status) > 1) {
        errno = EPERM;
        return thaw__sb_fail(err, errlen, "write the zygote's uid_map and gid_map");
    }
    thaw__sb_worker_ids = WEXITSTATUS(status) == 0;
    if (!thaw__sb_worker_ids)
        fprintf(stderr, "[thaw] sandbox: host ids %u-%u cannot be mapped here (root of a "
                        "container without them?): workers run as uid 0 of their own "
                        "namespaces, without a host uid of their own\n",
                THAW_SB_UID_BASE + 1, THAW_SB_UID_BASE + THAW_SB_UID_COUNT - 1);
    return 0;
}

int thaw__sb_fail(char *err, size_t errlen, const char *step)
{
    snprintf(err, errlen, "sandbox: %s: %s", step, strerror(errno));
    return -1;
}

int thaw_sb_zygote(const char *cgroup_dir, char *err, size_t errlen)
{
    unsigned uid = geteuid(), gid = getegid();
    struct thaw__mount_attr attr = {.attr_set = THAW__MOUNT_ATTR_RDONLY |
                                                THAW__MOUNT_ATTR_NOSUID};

    /* opened before the mounts turn read-only: a template joins the pids
     * cgroup through it (sandbox/template.c) */
    if (cgroup_dir && *cgroup_dir) {
        thaw__sb_cgroup_fd = open(cgroup_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (thaw__sb_cgroup_fd < 0)
            return thaw__sb_fail(err, errlen, "open the pids cgroup");
    }
    if (uid == 0 && gid == 0) {
        if (map_root(err, errlen))
            return -1;
    } else {
        if (unshare(CLONE_NEWUSER))
            return thaw__sb_fail(err, errlen, "unshare(CLONE_NEWUSER)");
        if (thaw__sb_map_self(uid, gid, err, errlen))
            return -1;
    }
    if (unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS))
        return thaw__sb_fail(err, errlen, "unshare(mount, network, IPC, UTS namespaces)");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
        return thaw__sb_fail(err, errlen, "make / private");
    if (syscall(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &attr, sizeof(attr)))
        return thaw__sb_fail(err, errlen, "make every mount read-only (mount_setattr)");
    /* /proc stays writable here: a template writes its user namespace's
     * maps there; then it covers it with a read-only /proc of its pid
     * namespace (sandbox/template.c), so no worker code ever sees a
     * writable /proc (whose /proc/sys trusts uid 0) */
    attr.attr_set = 0;
    attr.attr_clr = THAW__MOUNT_ATTR_RDONLY;
    if (syscall(SYS_mount_setattr, AT_FDCWD, "/proc", 0, &attr, sizeof(attr)))
        return thaw__sb_fail(err, errlen, "keep /proc writable for the templates");
    if (sethostname("thaw", 4))
        return thaw__sb_fail(err, errlen, "sethostname");
    /* the helper that starts each version's pid namespace (keeper.c) */
    if (thaw__sb_keeper_open(err, errlen))
        return -1;
    /* the same filter for every template: compiled here once */
    if (thaw_sb_seccomp_prepare(err, errlen))
        return -1;
    active = 1;
    return 0;
}
