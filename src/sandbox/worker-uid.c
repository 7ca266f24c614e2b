/* As root, each worker version runs under a host uid of its own
 * (sandbox/uids.h), so the host's file modes keep it out of root's files
 * and sockets even if another wall fails, and two workers cannot touch
 * each other's processes by uid.
 *
 * The catch is reaching its own files: a state directory of a root thaw
 * is often under a directory only root may enter (a 0700 tmp dir in
 * tests, /var/lib/x). So the template makes its mounts while still root
 * of the zygote's namespace: the usual hidden paths (template.c), then a
 * read-only tmpfs over each directory that others may not enter and that
 * holds a kept path (its bundle, the SDK, sys.path), with the kept paths
 * bound back on directories others may enter. The rest of that directory
 * disappears from its view. Only then does it drop to its uid and make
 * its own user namespace, mapping 0 to that uid (which needs no
 * privilege), where the rest of the sandbox goes on as for an ordinary
 * user's thaw. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/sandbox-internal.h"

/* The length of path's topmost strict ancestor that others may not enter
 * (search permission), or 0 when every one is open. */
static size_t closed_ancestor(const char *path)
{
    char buf[PATH_MAX];
    struct stat st;
    size_t i, n = strlen(path);

    if (n >= sizeof(buf))
        return 0;
    memcpy(buf, path, n + 1);
    for (i = 1; i < n; i++) {
        if (buf[i] != '/')
            continue;
        buf[i] = '\0';
        if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode) && !(st.st_mode & S_IXOTH))
            return i;
        buf[i] = '/';
    }
    return 0;
}

static int under_prefix(const char *path, const char *dir, size_t n)
{
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* Covers one closed directory (the first `len` bytes of t->keep[c]) and
 * binds back every kept path below it. */
static int cover(const struct thaw_sb_template *t, int c, size_t len, char *err,
                 size_t errlen)
{
    char dir[PATH_MAX], src[64];
    int fd[THAW_SB_MAX_PATHS], k, rc = 0;

    snprintf(dir, sizeof(dir), "%.*s", (int)len, t->keep[c]);
    for (k = 0; k < t->n_keep; k++)
        fd[k] = under_prefix(t->keep[k], dir, len)
                    ? open(t->keep[k], O_PATH | O_CLOEXEC) : -1;
    if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=755"))
        rc = thaw__sb_fail(err, errlen, "cover a directory others may not enter");
    for (k = 0; k < t->n_keep && !rc; k++) {
        if (fd[k] < 0)
            continue;
        snprintf(src, sizeof(src), "/proc/self/fd/%d", fd[k]);
        if (thaw__sb_mountpoint(t->keep[k], fd[k]) ||
            mount(src, t->keep[k], NULL, MS_BIND | MS_REC, NULL))
            rc = thaw__sb_fail(err, errlen, "bind the worker's files back");
    }
    if (!rc && mount(NULL, dir, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
                     "size=64k,mode=755"))
        rc = thaw__sb_fail(err, errlen, "make a covered directory read-only");
    for (k = 0; k < t->n_keep; k++)
        if (fd[k] >= 0)
            close(fd[k]);
    return rc;
}

/* A kept path others may not read (thaw's bundles are 0755/0644, unless
 * thaw ran with a umask like 077) would fail the worker later, at an
 * import, with a bare EACCES: say here what it is. */
static int readable_by_others(const char *path, char *err, size_t errlen)
{
    struct stat st;
    mode_t need;

    if (stat(path, &st))
        return 0; /* gone: the bind below names it */
    need = S_ISDIR(st.st_mode) ? S_IROTH | S_IXOTH : S_IROTH;
    if ((st.st_mode & need) == need)
        return 0;
    snprintf(err, errlen, "sandbox: as root, each worker runs under a host uid of its own "
             "(docs/security.md), and %s (mode %04o) is not readable by others: make it "
             "0755 (a file 0644), or run thaw with umask 022",
             path, (unsigned)(st.st_mode & 07777));
    return -1;
}

static int reachable(const struct thaw_sb_template *t, char *err, size_t errlen)
{
    size_t len[THAW_SB_MAX_PATHS];
    int k, j, dup;

    for (k = 0; k < t->n_keep; k++)
        if (readable_by_others(t->keep[k], err, errlen))
            return -1;

    /* decided before any cover: one cover changes what stat sees below it */
    for (k = 0; k < t->n_keep; k++)
        len[k] = closed_ancestor(t->keep[k]);
    for (k = 0; k < t->n_keep; k++) {
        if (!len[k])
            continue;
        for (j = 0, dup = 0; j < k && !dup; j++)
            dup = len[j] == len[k] && strncmp(t->keep[j], t->keep[k], len[k]) == 0;
        if (!dup && cover(t, k, len[k], err, errlen))
            return -1;
    }
    return 0;
}

int thaw__sb_worker_uid(const struct thaw_sb_template *t, char *err, size_t errlen)
{
    unsigned id = t->uid;

    /* the mount points made below must be enterable by the worker's uid
     * whatever umask the operator started thaw with (077 is common for
     * root); the worker's own files get the usual 022 too */
    umask(022);
    if (unshare(CLONE_NEWNS))
        return thaw__sb_fail(err, errlen, "unshare(CLONE_NEWNS) for the template's mounts");
    if (thaw__sb_private_mounts(t, err, errlen) || reachable(t, err, errlen))
        return -1;
    /* no supplementary group of root's may stay: they count on the host
     * even where this namespace does not map them */
    if (setgroups(0, NULL))
        return thaw__sb_fail(err, errlen, "setgroups");
    if (setresgid(id, id, id))
        return thaw__sb_fail(err, errlen, "setresgid to the worker's own id");
    if (setresuid(id, id, id))
        return thaw__sb_fail(err, errlen, "setresuid to the worker's own id");
    /* a uid change makes the process undumpable, which makes its /proc
     * files root's: it could not write its own maps (caps.c ends it
     * again) */
    if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0))
        return thaw__sb_fail(err, errlen, "PR_SET_DUMPABLE");
    if (unshare(CLONE_NEWUSER))
        return thaw__sb_fail(err, errlen, "unshare(CLONE_NEWUSER) for the template");
    return thaw__sb_map_self(id, id, err, errlen);
}
