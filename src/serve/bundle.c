/* The deploy bundle: parsing is pure; unpacking creates files with
 * O_EXCL|O_NOFOLLOW under a directory fd, so neither a repeated path nor a
 * symlink can redirect a write. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve/bundle.h"

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

int thaw_bundle_path_ok(const char *path, size_t n)
{
    size_t i, start = 0;

    if (n == 0 || n > THAW_BUNDLE_MAX_PATH || path[0] == '/')
        return -1;
    for (i = 0; i <= n; i++) {
        if (i == n || path[i] == '/') {
            size_t len = i - start;
            if (len == 0 || (len == 1 && path[start] == '.') ||
                (len == 2 && path[start] == '.' && path[start + 1] == '.'))
                return -1;
            start = i + 1;
            continue;
        }
        if ((unsigned char)path[i] < 0x20 || path[i] == 0x7f || path[i] == '\\')
            return -1;
    }
    return 0;
}

int thaw_bundle_walk(const void *buf, size_t len, thaw_bundle_cb cb, void *data,
                     char *err, size_t errlen)
{
    const unsigned char *p = buf, *end = p + len;
    long long total = 0;
    int files = 0, rc;

    if ((long long)len > THAW_BUNDLE_MAX_BYTES) {
        snprintf(err, errlen, "the bundle is %zu bytes, over the limit of %lld", len,
                 THAW_BUNDLE_MAX_BYTES);
        return -1;
    }
    if (len < THAW_BUNDLE_MAGIC_LEN || memcmp(p, THAW_BUNDLE_MAGIC, THAW_BUNDLE_MAGIC_LEN)) {
        snprintf(err, errlen, "not a thaw bundle (it must start with \"%s\"): "
                 "upload what `thaw deploy` builds", THAW_BUNDLE_MAGIC);
        return -1;
    }
    p += THAW_BUNDLE_MAGIC_LEN;
    while (p < end) {
        struct thaw_bundle_entry e;
        uint32_t plen, size;

        /* u32 path length | path | u8 mode | u32 size | data */
        if (end - p < 4 || (plen = get_u32(p)) == 0 || plen > THAW_BUNDLE_MAX_PATH ||
            (size_t)(end - p - 4) < (size_t)plen + 5) {
            snprintf(err, errlen, "bundle entry %d is truncated or has a bad path length",
                     files + 1);
            return -1;
        }
        e.path = (const char *)p + 4;
        e.path_len = plen;
        p += 4 + plen;
        if (thaw_bundle_path_ok(e.path, e.path_len)) {
            snprintf(err, errlen, "bundle entry %d has an unsafe path \"%.*s\": only "
                     "relative paths without `..`, `.` or empty parts are allowed",
                     files + 1, (int)(plen > 200 ? 200 : plen), e.path);
            return -1;
        }
        if (p[0] > 1) {
            snprintf(err, errlen, "bundle entry \"%.*s\": mode byte must be 0 or 1",
                     (int)plen, e.path);
            return -1;
        }
        e.exec = p[0];
        size = get_u32(p + 1);
        p += 5;
        if ((size_t)(end - p) < size) {
            snprintf(err, errlen, "bundle entry \"%.*s\" is truncated", (int)plen, e.path);
            return -1;
        }
        e.data = (const char *)p;
        e.size = size;
        p += size;
        total += size;
        if (++files > THAW_BUNDLE_MAX_FILES) {
            snprintf(err, errlen, "the bundle holds over %d files", THAW_BUNDLE_MAX_FILES);
            return -1;
        }
        if (cb && (rc = cb(data, &e)))
            return rc;
    }
    return 0;
}

struct unpack {
    int dirfd;
    int files;
    long long bytes;
    int internal;   /* it failed for thaw's reason, not the bundle's */
    char *err;
    size_t errlen;
};

/* Opens (creating) the directories of path's parent under root; returns
 * a directory fd (root itself when the path has no '/'). */
static int open_parent(int root, const char *path, size_t n, const char **base)
{
    char comp[THAW_BUNDLE_MAX_PATH + 1];
    const char *p = path, *end = path + n, *slash;
    int fd = root;

    while ((slash = memchr(p, '/', (size_t)(end - p)))) {
        int next;
        snprintf(comp, sizeof(comp), "%.*s", (int)(slash - p), p);
        if (mkdirat(fd, comp, 0755) < 0 && errno != EEXIST)
            goto fail;
        next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next >= 0)
            fchmod(next, 0755); /* whatever the umask: see below */
        if (fd != root)
            close(fd);
        if (next < 0)
            return -1;
        fd = next;
        p = slash + 1;
    }
    *base = p;
    return fd;
fail:
    if (fd != root)
        close(fd);
    return -1;
}

static int write_entry(void *data, const struct thaw_bundle_entry *e)
{
    struct unpack *u = data;
    char name[THAW_BUNDLE_MAX_PATH + 1];
    const char *base;
    size_t off = 0;
    int dfd, fd;

    dfd = open_parent(u->dirfd, e->path, e->path_len, &base);
    if (dfd < 0) {
        u->internal = errno != EEXIST && errno != ENOTDIR;
        snprintf(u->err, u->errlen, "cannot create the directories of \"%.*s\": %s "
                 "(is a parent also a file in the bundle?)", (int)e->path_len, e->path,
                 strerror(errno));
        return -1;
    }
    snprintf(name, sizeof(name), "%.*s", (int)(e->path + e->path_len - base), base);
    fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                e->exec ? 0755 : 0644);
    if (dfd != u->dirfd)
        close(dfd);
    /* As root, a worker's processes run under a uid of their own
     * (src/sandbox/uids.h) and read the bundle as "others": an operator's
     * umask of 077 must not make every build fail. */
    if (fd >= 0)
        fchmod(fd, e->exec ? 0755 : 0644);
    if (fd < 0) {
        u->internal = errno != EEXIST && errno != ENOTDIR && errno != EISDIR;
        snprintf(u->err, u->errlen, "cannot create \"%.*s\": %s%s", (int)e->path_len,
                 e->path, strerror(errno),
                 errno == EEXIST ? " (the bundle names it twice)" : "");
        return -1;
    }
    while (off < e->size) {
        ssize_t w = write(fd, e->data + off, e->size - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            u->internal = 1;
            snprintf(u->err, u->errlen, "cannot write \"%.*s\": %s", (int)e->path_len,
                     e->path, strerror(errno));
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    close(fd);
    u->files++;
    u->bytes += (long long)e->size;
    return 0;
}

int thaw_bundle_unpack(const void *buf, size_t len, const char *dir, int *files,
                       long long *bytes, char *err, size_t errlen)
{
    struct unpack u = {.err = err, .errlen = errlen};
    int rc;

    /* check everything first: a bad bundle writes nothing */
    if (thaw_bundle_walk(buf, len, NULL, NULL, err, errlen))
        return -1;
    u.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (u.dirfd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", dir, strerror(errno));
        return THAW_BUNDLE_E_INTERNAL;
    }
    rc = thaw_bundle_walk(buf, len, write_entry, &u, err, errlen);
    close(u.dirfd);
    if (files)
        *files = u.files;
    if (bytes)
        *bytes = u.bytes;
    return !rc ? 0 : u.internal ? THAW_BUNDLE_E_INTERNAL : -1;
}
