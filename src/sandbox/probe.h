/* What the kernel offers the sandbox, found by trying each layer in a
 * throw-away child (the supervisor's side: `thaw doctor`, and the check
 * `thaw dev` and `thaw serve` make at start). */
#ifndef THAW_SANDBOX_PROBE_H
#define THAW_SANDBOX_PROBE_H

#include <stdio.h>

enum thaw_sb_layer {
    THAW_SB_USERNS,   /* user namespace: no capability over the host */
    THAW_SB_MOUNTNS,  /* mount namespace, read-only mounts, private /tmp */
    THAW_SB_NETNS,    /* network namespace without interfaces */
    THAW_SB_PIDNS,    /* pid namespace per worker version, its own /proc */
    THAW_SB_SECCOMP,  /* seccomp filters */
    THAW_SB_LANDLOCK, /* file access allowlist (and ABI 6: signal scoping) */
    THAW_SB_NPROC,    /* a process count per worker: RLIMIT_NPROC, or a pids cgroup as root */
    THAW_SB_NLAYERS
};

struct thaw_sb_probe {
    int ok[THAW_SB_NLAYERS];
    char why[THAW_SB_NLAYERS][160];   /* when not ok */
    int required[THAW_SB_NLAYERS];    /* thaw will not run sandboxed without it */
    int landlock_abi;
    int root;
    char cgroup_root[256];            /* where per-run pids cgroups go, or "" */
    int memcg;                        /* enum thaw_memcg_kind (cgroup.h) */
    char memcg_base[512];             /* where the run's memory group goes */
    char memcg_why[400];              /* why there is none */
};

void thaw_sb_probe(struct thaw_sb_probe *p);
/* Whether every required layer is there. */
int thaw_sb_probe_complete(const struct thaw_sb_probe *p);
/* One line per layer: available, or missing with why and what thaw does. */
void thaw_sb_probe_print(const struct thaw_sb_probe *p, FILE *out, const char *indent);
/* One line: which memory accounting is used (cgroup v2, v1, or none and
 * why), for thaw doctor. */
void thaw_sb_probe_print_memory(const struct thaw_sb_probe *p, FILE *out, const char *indent);
/* What counts a worker's memory, in a few words for the start line. */
const char *thaw_sb_probe_memory(const struct thaw_sb_probe *p);

/* cgroup.c: when root with a pids cgroup controller: makes the run's
 * cgroup (one sub-cgroup per worker version is made by its template) and
 * removes it at exit. Returns 0 and the path, or -1 (no cgroup). */
int thaw_sb_cgroup_create(const struct thaw_sb_probe *p, char *path, size_t len);
void thaw_sb_cgroup_remove(const char *path);

#endif
