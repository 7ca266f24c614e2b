/* The sandbox of the Python tree (issue 6). The zygote calls
 * thaw_sb_zygote() before CPython starts; every template calls
 * thaw_sb_template() right after its fork, before the worker's top level
 * runs; every instance calls thaw_sb_instance() right after its fork.
 * docs/security.md explains each layer and what it stops.
 *
 * Every function returns 0, or -1 with a message in err naming the step
 * that failed: a sandbox that cannot be set up is an error, never a silent
 * fallback. */
#ifndef THAW_SANDBOX_H
#define THAW_SANDBOX_H

#include <stddef.h>

#define THAW_SB_MAX_PATHS 64

struct thaw_sb_template {
    const char *name;              /* the worker, for the log */
    const char *read[THAW_SB_MAX_PATHS]; /* trees it may read (stdlib, packages, bundle) */
    int n_read;
    const char *keep[THAW_SB_MAX_PATHS]; /* trees (or files) under /tmp that stay visible (bundle, CA file) */
    int n_keep;
    long long tmp_bytes;           /* size of the worker's private tmpfs */
    long long nproc;               /* processes + threads of one worker version */
    long long nofile;              /* open files of one process */
    long long fsize;               /* largest file one process may write */
    long long as_bytes;            /* address space of one process */
    unsigned uid;                  /* as root: its slot among the workers' host
                                    * ids (sandbox/uids.h); 0: none */
    const char *memcg;             /* its memory cgroup ("v12"), "" when none */
};

/* zygote.c: user, mount, network, IPC and UTS namespaces for the whole
 * Python tree; every mount read-only. cgroup_dir: NULL, or a pids cgroup
 * the supervisor made, kept open for templates to join. */
int thaw_sb_zygote(const char *cgroup_dir, char *err, size_t errlen);
/* cgroup-join.c: the run's memory cgroup (NULL or "": none), opened
 * before thaw_sb_zygote makes the mounts read-only; templates join their
 * version's group in it (src/sandbox/cgroup.h). */
int thaw_sb_memcg_open(const char *dir, char *err, size_t errlen);
/* cgroup-join.c: one of the run's v1 CPU groups (NULL: none), opened
 * likewise; templates join their version's "v<id>" in it too. */
int thaw_sb_cpucg_open(const char *dir, char *err, size_t errlen);
/* Whether thaw_sb_zygote ran in this process tree. */
int thaw_sb_active(void);

/* keeper.c, in the zygote, right before it forks a template: a new pid
 * namespace whose init (thaw-pidns-init) holds life_fd (the template's end
 * of its channel) and, sent to it over *ctl (a SEQPACKET socket: one fd
 * per message), the instances' ends of theirs; it exits, killing every
 * process of the namespace, once the supervisor has closed all of them.
 * The zygote's next child is born in the namespace. */
int thaw_sb_pidns_new(int life_fd, int *ctl, char *err, size_t errlen);
/* keeper.c, in a template: hands the init a copy of an instance's channel
 * fd (ctl from thaw_sb_pidns_new, inherited), before the instance's fork.
 * 0, or -1 with errno. */
int thaw_sb_pidns_hold(int ctl, int fd);

/* template.c: per worker version: a nested user namespace (its own process
 * count), a mount namespace with a private /tmp and the /proc of its pid
 * namespace (the zygote made that: thaw_sb_pidns_new), rlimits, no
 * capabilities, Landlock and seccomp. */
int thaw_sb_template(const struct thaw_sb_template *t, char *err, size_t errlen);

/* template.c: its own session, its own Landlock layer (writes only under
 * tmpdir, no signals outside itself). */
int thaw_sb_instance(const struct thaw_sb_template *t, const char *tmpdir, char *err,
                     size_t errlen);

/* landlock.c: the ABI version the kernel has (0: none). Restricts this
 * process to reading `read`, writing under `rw` (may be NULL) and, with
 * ABI 6, signalling only its own domain. */
int thaw_sb_landlock_abi(void);
int thaw_sb_landlock(const char *const *read, int n_read, const char *rw, char *err,
                     size_t errlen);

/* seccomp.c: compiles the allowlist (libseccomp) to a BPF program, once,
 * in the zygote (thaw_sb_zygote calls it); templates inherit it.
 * seccomp-load.c: installs that program in this process. Forbidden calls
 * that have an error fail with EPERM; a call outside the list stops the
 * process with a log line naming it. Fails when nothing was prepared. */
int thaw_sb_seccomp_prepare(char *err, size_t errlen);
int thaw_sb_seccomp(const char *name, char *err, size_t errlen);
/* seccomp-load.c: while fd >= 0 (the template's channel, while its top
 * level runs), a trapped call is also reported there as the build's error
 * (a BUILD_ERR frame of stream); -1 stops it (after BUILT, in instances). */
void thaw_sb_seccomp_report(int fd, unsigned stream);

/* caps.c: rlimits, not dumpable, no capabilities (bounding, ambient,
 * effective, permitted, inheritable), securebits locked, no_new_privs. */
int thaw_sb_rlimits(const struct thaw_sb_template *t, char *err, size_t errlen);
int thaw_sb_drop_caps(char *err, size_t errlen);

#endif
