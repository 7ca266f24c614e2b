/* Shared by the sandbox's files; not for the rest of thaw. */
#ifndef THAW_SANDBOX_INTERNAL_H
#define THAW_SANDBOX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sandbox/sandbox.h"

/* struct mount_attr and its flags (Debian 12's headers predate them) */
struct thaw__mount_attr {
    uint64_t attr_set, attr_clr, propagation, userns_fd;
};
#define THAW__MOUNT_ATTR_RDONLY 0x00000001
#define THAW__MOUNT_ATTR_NOSUID 0x00000002
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

/* the pids cgroup the zygote opened, or -1 */
extern int thaw__sb_cgroup_fd;
/* 1: the zygote's namespace maps the workers' host ids (sandbox/uids.h) */
extern int thaw__sb_worker_ids;

int thaw__sb_fail(char *err, size_t errlen, const char *step);
/* cgroup-join.c: a template joins its version's memory cgroup (name from
 * the supervisor; "" when the run has none) and closes the run's handle */
int thaw__sb_memcg_join(const char *name, char *err, size_t errlen);
int thaw__sb_write_file(const char *path, const char *text);
int thaw__sb_map_self(unsigned uid, unsigned gid, char *err, size_t errlen);
/* seccomp.c: the filter's BPF program, compiled once in the zygote, and
 * the system calls' names by number for the SIGSYS message (NULL where
 * unknown); seccomp-load.c installs them in a template. */
#define THAW__SB_MAX_NR 512
struct sock_fprog;
extern struct sock_fprog thaw__sb_filter;
extern const char *thaw__sb_syscall_names[THAW__SB_MAX_NR];

/* template.c: covers the paths the sandbox hides (/tmp, /home, ...) with
 * tmpfs and binds back the template's kept paths below them; what a kept
 * path is bound onto. worker-uid.c: as root, those mounts, kept paths
 * below directories others may not enter made reachable, then the
 * template's own host uid (t->uid) and a user namespace mapping 0 to it. */
int thaw__sb_private_mounts(const struct thaw_sb_template *t, char *err, size_t errlen);
int thaw__sb_mountpoint(const char *path, int fd);
int thaw__sb_worker_uid(const struct thaw_sb_template *t, char *err, size_t errlen);

/* keeper.c: thaw__sb_keeper_open (in the zygote) opens the
 * thaw-pidns-init program next to thaw-zygote (thaw_sb_pidns_new starts
 * it); a template closes its inherited copy with thaw__sb_keeper_close. */
int thaw__sb_keeper_open(char *err, size_t errlen);
void thaw__sb_keeper_close(void);

#endif
