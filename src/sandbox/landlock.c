/* Landlock: the files a sandboxed process may touch, whatever its uid.
 * Reading is allowed beneath the stdlib, the built-in package set, thaw's
 * SDK and the worker's own bundle (the caller's list); writing only
 * beneath `rw` (the private tmp). Nothing may be executed. With ABI 4 no
 * TCP bind/connect; with ABI 6 no signal to, and no abstract unix socket
 * of, any process outside the process's own domain. Each instance adds its
 * own layer, so it is apart from its template and its siblings too. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/sandbox-internal.h"

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

#define LL_EXECUTE (1ULL << 0)
#define LL_WRITE_FILE (1ULL << 1)
#define LL_READ_FILE (1ULL << 2)
#define LL_READ_DIR (1ULL << 3)
#define LL_REMOVE_DIR (1ULL << 4)
#define LL_REMOVE_FILE (1ULL << 5)
#define LL_MAKE_CHAR (1ULL << 6)
#define LL_MAKE_DIR (1ULL << 7)
#define LL_MAKE_REG (1ULL << 8)
#define LL_MAKE_SOCK (1ULL << 9)
#define LL_MAKE_FIFO (1ULL << 10)
#define LL_MAKE_BLOCK (1ULL << 11)
#define LL_MAKE_SYM (1ULL << 12)
#define LL_REFER (1ULL << 13)
#define LL_TRUNCATE (1ULL << 14)
#define LL_IOCTL_DEV (1ULL << 15)
#define LL_NET_BIND_TCP (1ULL << 0)
#define LL_NET_CONNECT_TCP (1ULL << 1)
#define LL_SCOPE_ABSTRACT_UNIX (1ULL << 0)
#define LL_SCOPE_SIGNAL (1ULL << 1)
#define LL_RULE_PATH_BENEATH 1

struct ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net; /* ABI 4 */
    uint64_t scoped;             /* ABI 6 */
};

struct path_beneath {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

int thaw_sb_landlock_abi(void)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, 1U /* _VERSION */);
    return abi < 0 ? 0 : (int)abi;
}

static uint64_t fs_rights(int abi)
{
    uint64_t all = (LL_MAKE_SYM << 1) - 1;

    if (abi >= 2)
        all |= LL_REFER;
    if (abi >= 3)
        all |= LL_TRUNCATE;
    if (abi >= 5)
        all |= LL_IOCTL_DEV;
    return all;
}

/* Allows `access` beneath path (a file gets only the rights files have). */
static int allow(int ruleset, const char *path, uint64_t access, char *err, size_t errlen)
{
    struct path_beneath pb;
    struct stat st;
    int fd = open(path, O_PATH | O_CLOEXEC);

    if (fd < 0)
        return errno == ENOENT ? 0 : thaw__sb_fail(err, errlen, path);
    if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
        access &= LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_TRUNCATE | LL_IOCTL_DEV;
    pb.allowed_access = access;
    pb.parent_fd = fd;
    if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &pb, 0)) {
        int e = errno;
        close(fd);
        errno = e;
        return thaw__sb_fail(err, errlen, "landlock_add_rule");
    }
    close(fd);
    return 0;
}

/* Devices every Python process opens: the null sink and the entropy pool. */
static const char *const DEVICES[] = {"/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"};

int thaw_sb_landlock(const char *const *read, int n_read, const char *rw, char *err,
                     size_t errlen)
{
    int abi = thaw_sb_landlock_abi(), ruleset, i, rc = 0;
    struct ruleset_attr attr = {0, 0, 0};
    size_t size = sizeof(uint64_t);
    uint64_t all, ro = LL_READ_FILE | LL_READ_DIR;

    if (abi <= 0) {
        errno = EOPNOTSUPP;
        return thaw__sb_fail(err, errlen, "landlock");
    }
    all = fs_rights(abi);
    attr.handled_access_fs = all;
    if (abi >= 4) {
        attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
        size = 2 * sizeof(uint64_t);
    }
    if (abi >= 6) {
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
        size = sizeof(attr);
    }
    ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    if (ruleset < 0)
        return thaw__sb_fail(err, errlen, "landlock_create_ruleset");
    for (i = 0; i < n_read && !rc; i++)
        rc = allow(ruleset, read[i], ro, err, errlen);
    for (i = 0; i < (int)(sizeof(DEVICES) / sizeof(DEVICES[0])) && !rc; i++)
        rc = allow(ruleset, DEVICES[i], LL_READ_FILE | LL_WRITE_FILE, err, errlen);
    if (!rc && rw)
        rc = allow(ruleset, rw, all & ~(LL_EXECUTE | LL_MAKE_CHAR | LL_MAKE_BLOCK), err,
                   errlen);
    if (!rc && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
        rc = thaw__sb_fail(err, errlen, "PR_SET_NO_NEW_PRIVS");
    if (!rc && syscall(SYS_landlock_restrict_self, ruleset, 0))
        rc = thaw__sb_fail(err, errlen, "landlock_restrict_self");
    close(ruleset);
    return rc;
}
