/* Opening and judging paths beneath a directory (beneath.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/beneath.h"

static int no_openat2; /* the kernel said ENOSYS once: walk instead */

static void close_keep_errno(int fd)
{
    int saved = errno;

    close(fd);
    errno = saved;
}

/* The fallback: one component at a time, refusing `..`, absolute paths
 * and every symlink (even one that stays inside: stricter than openat2,
 * never looser). */
int thaw__walk_beneath(int dirfd, const char *rel, int flags)
{
    char comp[NAME_MAX + 1];
    const char *p = rel;
    int fd = dirfd, next;
    struct stat st;

    if (rel[0] == '/') {
        errno = EXDEV;
        return -1;
    }
    for (;;) {
        size_t n;
        int last;

        while (*p == '/')
            p++;
        n = strcspn(p, "/");
        last = p[n + strspn(p + n, "/")] == '\0';
        if (n > NAME_MAX || (n == 2 && p[0] == '.' && p[1] == '.')) {
            errno = n > NAME_MAX ? ENAMETOOLONG : EXDEV;
            next = -1;
        } else {
            memcpy(comp, p, n);
            comp[n] = '\0';
            next = openat(fd, comp, last ? flags | O_NOFOLLOW | O_CLOEXEC
                                         : O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (next >= 0 && last && (flags & O_PATH) && fstat(next, &st) == 0 &&
            S_ISLNK(st.st_mode)) {
            close(next); /* O_PATH|O_NOFOLLOW opened the link itself */
            next = -1;
            errno = ELOOP;
        }
        if (fd != dirfd)
            close_keep_errno(fd);
        if (next < 0 || last)
            return next;
        fd = next;
        p += n;
    }
}

int thaw_open_beneath(int dirfd, const char *rel, int flags)
{
    struct open_how how;
    long fd;

    if (!no_openat2) {
        memset(&how, 0, sizeof(how));
        how.flags = (unsigned long long)(flags | O_CLOEXEC);
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
        if (fd >= 0 || errno != ENOSYS)
            return (int)fd;
        no_openat2 = 1;
    }
    return thaw__walk_beneath(dirfd, rel, flags);
}

/* Whether the `..` of a relative path, taken lexically, never climb above
 * where it starts (as os.path.normpath or a URL parser would take them). */
static int lexically_inside(const char *p, size_t n)
{
    const char *end = p + n;
    long depth = 0;

    while (p < end) {
        const char *s = memchr(p, '/', (size_t)(end - p));
        size_t len = (size_t)((s ? s : end) - p);

        if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (--depth < 0)
                return 0;
        } else if (len && !(len == 1 && p[0] == '.')) {
            depth++;
        }
        p += len + (s != NULL);
    }
    return 1;
}

/* An absolute path under root (as given, or its realpath) becomes
 * relative to it; NULL when it names something else. */
static const char *strip_root(const char *root, const char *path)
{
    char real[PATH_MAX];
    const char *roots[2] = {root, realpath(root, real)};
    int i;

    for (i = 0; i < 2; i++) {
        size_t n = roots[i] ? strlen(roots[i]) : 0;

        while (n > 1 && roots[i][n - 1] == '/')
            n--;
        if (n && strncmp(path, roots[i], n) == 0 && (path[n] == '/' || !path[n])) {
            path += n;
            while (*path == '/')
                path++;
            return *path ? path : ".";
        }
    }
    return NULL;
}

static int judge(int rootfd, const char *rel)
{
    char prefix[PATH_MAX];
    size_t n = strlen(rel), plen = n;
    int fd;

    if (!lexically_inside(rel, n))
        return 0;
    if (n >= sizeof(prefix)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (;;) {
        /* rel's first plen bytes, "." for none */
        memcpy(prefix, plen ? rel : ".", plen ? plen : 1);
        prefix[plen ? plen : 1] = '\0';
        fd = thaw_open_beneath(rootfd, prefix, O_PATH);
        if (fd >= 0) {
            close(fd);
            /* what does not exist yet may not climb out of what does */
            return lexically_inside(rel + plen, n - plen);
        }
        if (errno == EXDEV || errno == ELOOP)
            return 0;
        if ((errno != ENOENT && errno != ENOTDIR) || plen == 0)
            return -1; /* root itself cannot be opened */
        while (plen > 0 && rel[plen - 1] == '/')
            plen--;
        while (plen > 0 && rel[plen - 1] != '/')
            plen--;
        while (plen > 0 && rel[plen - 1] == '/')
            plen--;
    }
}

int thaw_path_beneath(const char *root, const char *path)
{
    int rootfd, r, saved;

    if (!path || !*path) {
        errno = EINVAL;
        return -1;
    }
    if (path[0] == '/' && !(path = strip_root(root, path)))
        return 0;
    rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return -1;
    r = judge(rootfd, path);
    saved = errno;
    close(rootfd);
    errno = saved;
    return r;
}
