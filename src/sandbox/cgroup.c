/* The run's cgroups, the supervisor's side (as root only; see probe.c).
 * pids: the supervisor makes the run's group; each template makes and
 * joins a sub-cgroup with its own pids.max (sandbox/template.c); at exit
 * the supervisor removes what is empty. memory (cgroup.h): the supervisor
 * makes a group per worker version, with its limit, before the template
 * is forked, and removes it when the version goes; the template joins it
 * (sandbox/cgroup-join.c). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/cgroup-sweep.h"
#include "sandbox/cgroup.h"
#include "sandbox/probe.h"

/* the run's pids group: a version's group in it is removed with the
 * version's memory group (try_remove) */
static char pids_run[512];

static void clear_stale_run(const char *run);

int thaw_sb_cgroup_create(const struct thaw_sb_probe *p, char *path, size_t len)
{
    if (!p->cgroup_root[0])
        return -1;
    snprintf(path, len, "%s/thaw-%ld", p->cgroup_root, (long)getpid());
    if (mkdir(path, 0755)) {
        if (errno != EEXIST) {
            path[0] = '\0';
            return -1;
        }
        clear_stale_run(path);
    }
    snprintf(pids_run, sizeof(pids_run), "%s", path);
    thaw__cg_sweep_add(path);
    return 0;
}

void thaw_sb_cgroup_remove(const char *path)
{
    DIR *d;
    struct dirent *e;
    char sub[512];

    if (!path || !*path || !(d = opendir(path)))
        return;
    while ((e = readdir(d)))
        if (e->d_type == DT_DIR && e->d_name[0] != '.') {
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            rmdir(sub);
        }
    closedir(d);
    rmdir(path);
}

/* ---- memory: a group per worker version (cgroup.h) ------------------- */

static int memcg_kind;
static char memcg_run[512];
static long memcg_seq;
/* groups the kernel would not remove yet (processes still exiting) */
#define MAX_PENDING 256
static long pending[MAX_PENDING];
static int n_pending;
/* when each was first refused, and whether thaw said so yet: a group that
 * stays is a process no one reaps or a version no one freed, and a log
 * line naming what it holds is the only trace of it (thaw_memcg_overdue) */
static struct timespec pending_at[MAX_PENDING];
static char pending_told[MAX_PENDING];
/* the last directory try_remove could not remove, and why */
static char stuck_dir[640];
static int stuck_errno;

const char *thaw_memcg_name(int kind)
{
    return kind == THAW_MEMCG_V2 ? "cgroup v2" : kind == THAW_MEMCG_V1 ? "cgroup v1" : "none";
}

int thaw_memcg_active(void) { return memcg_kind; }

static int read_text(const char *path, char *buf, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t k;

    if (fd < 0)
        return -1;
    k = read(fd, buf, n - 1);
    close(fd);
    if (k < 0)
        return -1;
    buf[k] = '\0';
    return 0;
}

static int write_text(const char *dir, const char *file, const char *text)
{
    char path[640];
    int fd, rc;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
        return -1;
    rc = write(fd, text, strlen(text)) == (ssize_t)strlen(text) ? 0 : -1;
    close(fd);
    return rc;
}

/* Whether the word w is in s, a list separated by spaces or commas. */
static int has_word(const char *s, const char *w)
{
    const char *start = s, *p;
    size_t n = strlen(w);

    for (p = s; (p = strstr(p, w)); p += n)
        if ((p == start || p[-1] == ' ' || p[-1] == ',') &&
            (p[n] == '\0' || p[n] == ' ' || p[n] == '\n' || p[n] == ','))
            return 1;
    return 0;
}

/* The mount point of the v2 hierarchy, or of the v1 one that has the
 * controller ctl (/proc/self/mountinfo: "... MOUNTPOINT ... - TYPE SRC OPTS"). */
static int find_mount_of(int v2, const char *ctl, char *out, size_t n)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[1024], mnt[256], type[64], opts[512];
    int found = 0;

    if (!f)
        return -1;
    while (!found && fgets(line, sizeof(line), f)) {
        char *dash = strstr(line, " - ");
        if (!dash || sscanf(line, "%*s %*s %*s %*s %255s", mnt) != 1 ||
            sscanf(dash + 3, "%63s %*s %511s", type, opts) != 2)
            continue;
        if (v2 ? strcmp(type, "cgroup2") == 0
               : strcmp(type, "cgroup") == 0 && has_word(opts, ctl)) {
            snprintf(out, n, "%s", mnt);
            found = 1;
        }
    }
    fclose(f);
    return found ? 0 : -1;
}

/* This process's cgroup in the v2 hierarchy ("0::/a/b") or in v1's
 * hierarchy of ctl ("4:memory:/a/b"). */
static int own_cgroup_of(int v2, const char *ctl, char *out, size_t n)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    char line[1024];
    int found = 0;

    if (!f)
        return -1;
    while (!found && fgets(line, sizeof(line), f)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        line[strcspn(line, ":")] = '\0';
        c2[1 + strcspn(c2 + 1, "\n")] = '\0';
        if (v2 ? strcmp(line, "0") == 0 && c1[1] == '\0' : has_word(c1 + 1, ctl)) {
            snprintf(out, n, "%s", c2 + 1);
            found = 1;
        }
    }
    fclose(f);
    return found ? 0 : -1;
}

static int find_mount(int v2, char *out, size_t n)
{
    return find_mount_of(v2, "memory", out, n);
}

static int own_cgroup(int v2, char *out, size_t n)
{
    return own_cgroup_of(v2, "memory", out, n);
}

static int probe_v2(char *base, size_t n, char *why, size_t whyn)
{
    char mnt[256], own[256], path[600], ctl[512];
    char *slash;

    if (find_mount(1, mnt, sizeof(mnt)) || own_cgroup(1, own, sizeof(own))) {
        snprintf(why, whyn, "no cgroup v2 hierarchy");
        return -1;
    }
    /* v2 keeps processes out of a group whose children have controllers:
     * the run's group goes beside the supervisor's own, or at the root */
    slash = strrchr(own, '/');
    if (slash)
        *slash = '\0';
    snprintf(base, n, "%s%s", mnt, own);
    snprintf(path, sizeof(path), "%s/cgroup.controllers", base);
    if (read_text(path, ctl, sizeof(ctl)) || !has_word(ctl, "memory")) {
        snprintf(why, whyn, "the cgroup v2 hierarchy at %.120s has no memory controller "
                 "(it is bound to cgroup v1)", mnt);
        return -1;
    }
    if (access(base, W_OK)) {
        snprintf(why, whyn, "%s is not writable (%s)", base, strerror(errno));
        return -1;
    }
    return 0;
}

static int probe_v1(char *base, size_t n, char *why, size_t whyn)
{
    char mnt[256], own[256], lim[640];

    if (find_mount(0, mnt, sizeof(mnt)) || own_cgroup(0, own, sizeof(own))) {
        snprintf(why, whyn, "no cgroup v1 memory controller mounted");
        return -1;
    }
    snprintf(base, n, "%s%s", mnt, strcmp(own, "/") == 0 ? "" : own);
    snprintf(lim, sizeof(lim), "%s/memory.limit_in_bytes", base);
    if (access(lim, F_OK) || access(base, W_OK)) {
        snprintf(why, whyn, "%s is not writable (%s)", base, strerror(errno));
        return -1;
    }
    return 0;
}

int thaw_memcg_probe(char *base, size_t n, char *why, size_t whyn)
{
    char why2[256], why1[256];

    if (geteuid() != 0) {
        /* a delegated v2 subtree could serve an ordinary user; thaw does
         * not look for one yet */
        snprintf(why, whyn, "not root: no cgroup to write to");
        return THAW_MEMCG_NONE;
    }
    if (probe_v2(base, n, why2, sizeof(why2)) == 0)
        return THAW_MEMCG_V2;
    if (probe_v1(base, n, why1, sizeof(why1)) == 0)
        return THAW_MEMCG_V1;
    snprintf(why, whyn, "%s; %s", why2, why1);
    base[0] = '\0';
    return THAW_MEMCG_NONE;
}

/* ---- CPU: the same groups in the cpu (and cpuacct) hierarchies ------ */

/* The weight of a group that may use `percent` of one CPU: as much as
 * that many processes have (cpu.shares 1024 each on v1, cpu.weight 100
 * on v2). At the default weight a version's instances together weighed one
 * process against every process outside thaw (wrk, other work): on a busy
 * machine two instances got one process's CPU (issue 16). Best effort: a
 * kernel that refuses it leaves the default. */
static void set_cpu_weight(const char *dir, int v2, long long percent)
{
    char num[32];
    long long w = v2 ? percent : percent * 1024 / 100;

    if (v2)
        w = w < 1 ? 1 : w > 10000 ? 10000 : w;
    else
        w = w < 2 ? 2 : w > 262144 ? 262144 : w;
    snprintf(num, sizeof(num), "%lld", w);
    write_text(dir, v2 ? "cpu.weight" : "cpu.shares", num);
}

/* The run's group holds every version: it weighs as one process per CPU. */
static void set_run_weight(const char *dir, int v2)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    set_cpu_weight(dir, v2, 100LL * (cpus > 0 ? cpus : 1));
}

/* v1: the run's groups in the cpu and the cpuacct hierarchies (one when
 * they are mounted together), each beside the memory one; v2: the cpu
 * controller enabled in the memory one's run group. */
#define MAX_CPU_DIRS 2
static char cpu_run[MAX_CPU_DIRS][560];
static int cpu_quota[MAX_CPU_DIRS]; /* 1: this one has the cpu controller */
static int n_cpu_run, cpu_v2;

static int remove_dir(const char *dir);

/* A run group that already existed belongs to an earlier thaw that had
 * our pid and died without removing it (SIGKILL): its version groups
 * ("v1", ...) would make our first build fail with EEXIST. They are
 * emptied (their processes killed) and removed. */
static void clear_stale_run(const char *run)
{
    thaw__cg_remove_tree(run, 1, NULL);
}

static void cpu_run_create(void)
{
    static const char *const CTL[MAX_CPU_DIRS] = {"cpu", "cpuacct"};
    char mnt[256], own[256];
    int i;

    if (memcg_kind == THAW_MEMCG_V2) {
        cpu_v2 = write_text(memcg_run, "cgroup.subtree_control", "+cpu") == 0;
        if (cpu_v2)
            set_run_weight(memcg_run, 1);
        return;
    }
    for (i = 0; i < MAX_CPU_DIRS; i++) {
        char *dir = cpu_run[n_cpu_run];

        if (find_mount_of(0, CTL[i], mnt, sizeof(mnt)) ||
            own_cgroup_of(0, CTL[i], own, sizeof(own)))
            continue;
        snprintf(dir, sizeof(cpu_run[0]), "%s%s/thaw-%ld", mnt,
                 strcmp(own, "/") == 0 ? "" : own, (long)getpid());
        if (n_cpu_run == 1 && strcmp(dir, cpu_run[0]) == 0)
            continue; /* cpu,cpuacct mounted together */
        if (mkdir(dir, 0755)) {
            if (errno != EEXIST)
                continue;
            clear_stale_run(dir);
        }
        if (i == 0)
            set_run_weight(dir, 0);
        thaw__cg_sweep_add(dir);
        cpu_quota[n_cpu_run++] = i == 0;
    }
}

int thaw_cpucg_dirs(const char **dirs, int max)
{
    int i;

    for (i = 0; i < n_cpu_run && i < max; i++)
        dirs[i] = cpu_run[i];
    return i;
}

const char *thaw_cpucg_name(void)
{
    return cpu_v2 ? "cgroup v2" : n_cpu_run ? "cgroup v1" : "none";
}

int thaw_memcg_run_create(int kind, const char *base, char *path, size_t len, char *why,
                          size_t whyn)
{
    if (kind == THAW_MEMCG_NONE)
        return -1;
    snprintf(path, len, "%s/thaw-%ld", base, (long)getpid());
    if (mkdir(path, 0755)) {
        if (errno != EEXIST) {
            snprintf(why, whyn, "cannot make %s: %s", path, strerror(errno));
            path[0] = '\0';
            return -1;
        }
        clear_stale_run(path);
    }
    if (kind == THAW_MEMCG_V2 && write_text(path, "cgroup.subtree_control", "+memory")) {
        snprintf(why, whyn, "cannot enable the memory controller in %s: %s", path,
                 strerror(errno));
        rmdir(path);
        path[0] = '\0';
        return -1;
    }
    memcg_kind = kind;
    snprintf(memcg_run, sizeof(memcg_run), "%s", path);
    thaw__cg_sweep_add(path);
    cpu_run_create();
    return 0;
}

static void group_path(long id, char *out, size_t n)
{
    snprintf(out, n, "%s/v%ld", memcg_run, id);
}

/* A version's group "v<id>" in each of the run's CPU groups. */
static void cpu_group_path(int i, long id, char *out, size_t n)
{
    snprintf(out, n, "%.560s/v%ld", cpu_run[i], id);
}

/* cpu.cfs_quota_us (v1) or cpu.max (v2) of a version's group in dir:
 * percent of one CPU, per 100 ms period; and its weight to match */
static int set_cpu_quota(const char *dir, int v2, long long percent)
{
    char num[64];

    set_cpu_weight(dir, v2, percent);
    if (v2) {
        snprintf(num, sizeof(num), "%lld 100000", percent * 1000);
        return write_text(dir, "cpu.max", num);
    }
    snprintf(num, sizeof(num), "%lld", percent * 1000);
    return write_text(dir, "cpu.cfs_period_us", "100000") ||
                   write_text(dir, "cpu.cfs_quota_us", num) ? -1 : 0;
}

long thaw_memcg_create(long long bytes, long long cpu_percent, char *err, size_t errlen)
{
    char dir[640], num[32];
    long id;
    int i;

    if (!memcg_kind)
        return 0;
    thaw_memcg_reap();
    id = ++memcg_seq;
    group_path(id, dir, sizeof(dir));
    snprintf(num, sizeof(num), "%lld", bytes);
    if (mkdir(dir, 0755)) {
        snprintf(err, errlen, "cannot make the worker's memory cgroup %s: %s", dir,
                 strerror(errno));
        return -1;
    }
    /* swap would let the version hold more than its limit in RAM + swap:
     * the swap limit (where the kernel accounts swap) equals it */
    if (memcg_kind == THAW_MEMCG_V1
            ? write_text(dir, "memory.limit_in_bytes", num) ||
                  (write_text(dir, "memory.memsw.limit_in_bytes", num) && errno != ENOENT)
            : write_text(dir, "memory.max", num) ||
                  (write_text(dir, "memory.swap.max", "0") && errno != ENOENT)) {
        snprintf(err, errlen, "cannot set the memory limit of %s: %s", dir, strerror(errno));
        rmdir(dir);
        return -1;
    }
    /* CPU: the version's share (cpu_percent of one CPU) and its count */
    if (cpu_v2 && cpu_percent > 0 && set_cpu_quota(dir, 1, cpu_percent)) {
        snprintf(err, errlen, "cannot set the CPU limit of %s: %s", dir, strerror(errno));
        thaw_memcg_remove(id);
        return -1;
    }
    for (i = 0; i < n_cpu_run; i++) {
        cpu_group_path(i, id, dir, sizeof(dir));
        if (mkdir(dir, 0755) ||
            (cpu_quota[i] && cpu_percent > 0 && set_cpu_quota(dir, 0, cpu_percent))) {
            snprintf(err, errlen, "cannot make the worker's CPU cgroup %s: %s", dir,
                     strerror(errno));
            thaw_memcg_remove(id);
            return -1;
        }
    }
    return id;
}

/* SIGKILL to every process left in a group (a child an instance started
 * that outlived it, the pid namespace's init). */
static void kill_group(const char *dir)
{
    char path[700], buf[4096], *p, *end;
    long pid;

    if (memcg_kind == THAW_MEMCG_V2 && write_text(dir, "cgroup.kill", "1") == 0)
        return;
    snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
    if (read_text(path, buf, sizeof(buf)))
        return;
    for (p = buf; (pid = strtol(p, &end, 10)) > 0 && end != p; p = end)
        kill((pid_t)pid, SIGKILL);
}

static int remove_dir(const char *dir)
{
    if (rmdir(dir) == 0 || errno == ENOENT)
        return 0;
    kill_group(dir);
    if (rmdir(dir) == 0 || errno == ENOENT)
        return 0;
    stuck_errno = errno;
    snprintf(stuck_dir, sizeof(stuck_dir), "%s", dir);
    errno = stuck_errno;
    return -1;
}

/* Deeper than thaw makes (run/v<id>, at most one level more): a tree
 * deeper than this is not thaw's */
#define MAX_TREE_DEPTH 8

static int remove_tree_at(const char *dir, int keep_top, int depth,
                          struct thaw__cg_stuck *stuck)
{
    DIR *d;
    struct dirent *e;
    char sub[1024];
    int removed = 0;

    if (depth < MAX_TREE_DEPTH && (d = opendir(dir))) {
        while ((e = readdir(d)))
            if (e->d_type == DT_DIR && strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
                removed += remove_tree_at(sub, 0, depth + 1, stuck);
            }
        closedir(d);
    }
    if (keep_top)
        return removed;
    if (remove_dir(dir) == 0)
        return removed + 1;
    if (stuck && !stuck->dir[0]) { /* the deepest that stayed says why */
        stuck->err = errno;
        snprintf(stuck->dir, sizeof(stuck->dir), "%s", dir);
    }
    return removed;
}

int thaw__cg_remove_tree(const char *dir, int keep_top, struct thaw__cg_stuck *stuck)
{
    if (stuck)
        stuck->dir[0] = '\0';
    return remove_tree_at(dir, keep_top, 0, stuck);
}

static int try_remove(long id)
{
    char dir[640];
    int i, rc;

    group_path(id, dir, sizeof(dir));
    rc = remove_dir(dir);
    if (pids_run[0]) { /* the template made it (sandbox/template.c) */
        snprintf(dir, sizeof(dir), "%.560s/v%ld", pids_run, id);
        rc |= remove_dir(dir);
    }
    for (i = 0; i < n_cpu_run; i++) {
        cpu_group_path(i, id, dir, sizeof(dir));
        rc |= remove_dir(dir);
    }
    return rc;
}

void thaw_memcg_remove(long id)
{
    if (id <= 0 || !memcg_kind)
        return;
    if (try_remove(id) && n_pending < MAX_PENDING) {
        clock_gettime(CLOCK_MONOTONIC, &pending_at[n_pending]);
        pending_told[n_pending] = 0;
        pending[n_pending++] = id;
    }
}

int thaw_memcg_pending(void)
{
    return n_pending;
}

void thaw_memcg_reap(void)
{
    int i, k = 0;

    for (i = 0; i < n_pending; i++)
        if (try_remove(pending[i])) {
            pending_at[k] = pending_at[i];
            pending_told[k] = pending_told[i];
            pending[k++] = pending[i];
        }
    n_pending = k;
}

int thaw_memcg_overdue(long after_ms, char *msg, size_t len)
{
    struct timespec now;
    char path[700], procs[256];
    long ms;
    int i;

    clock_gettime(CLOCK_MONOTONIC, &now);
    for (i = 0; i < n_pending; i++) {
        ms = (now.tv_sec - pending_at[i].tv_sec) * 1000 +
             (now.tv_nsec - pending_at[i].tv_nsec) / 1000000;
        if (pending_told[i] || ms < after_ms)
            continue;
        pending_told[i] = 1;
        if (!try_remove(pending[i])) /* sets stuck_dir to what is still there */
            continue;                /* gone now: the next reap drops it */
        snprintf(path, sizeof(path), "%s/cgroup.procs", stuck_dir);
        if (read_text(path, procs, sizeof(procs)))
            snprintf(procs, sizeof(procs), "(unreadable)");
        for (char *p = procs; *p; p++)
            if (*p == '\n')
                *p = ' ';
        snprintf(msg, len, "the cgroup %s of a removed worker version is still there after "
                 "%ld ms (%s); it holds: %s", stuck_dir, ms, strerror(stuck_errno),
                 procs[0] ? procs : "no processes");
        return 1;
    }
    return 0;
}

long long thaw_memcg_oom_kills(long id)
{
    char path[700], buf[1024], *p;

    if (id <= 0 || !memcg_kind)
        return 0;
    group_path(id, path, sizeof(path));
    strncat(path, memcg_kind == THAW_MEMCG_V1 ? "/memory.oom_control" : "/memory.events",
            sizeof(path) - strlen(path) - 1);
    if (read_text(path, buf, sizeof(buf)) || !(p = strstr(buf, "oom_kill ")))
        return 0;
    return strtoll(p + 9, NULL, 10);
}

int thaw_memcg_oom_fd(long id, int *prioritized)
{
    char dir[700], path[760], text[32];
    int efd, cfd, fd;

    if (id <= 0 || !memcg_kind)
        return -1;
    group_path(id, dir, sizeof(dir));
    if (memcg_kind == THAW_MEMCG_V2) {
        *prioritized = 1;
        snprintf(path, sizeof(path), "%s/memory.events", dir);
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0)
            thaw_memcg_oom_fd_drain(fd); /* what it says now is seen */
        return fd;
    }
    *prioritized = 0;
    snprintf(path, sizeof(path), "%s/memory.oom_control", dir);
    if ((efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
        return -1;
    if ((cfd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        close(efd);
        return -1;
    }
    /* the registration holds the eventfd; the control file may go */
    snprintf(text, sizeof(text), "%d %d", efd, cfd);
    if (write_text(dir, "cgroup.event_control", text)) {
        close(cfd);
        close(efd);
        return -1;
    }
    close(cfd);
    return efd;
}

void thaw_memcg_oom_fd_drain(int fd)
{
    char buf[512];

    /* v1: the eventfd's counter; v2: reading memory.events again is what
     * tells kernfs the change was seen */
    if (memcg_kind == THAW_MEMCG_V2)
        (void)!pread(fd, buf, sizeof(buf), 0);
    else
        (void)!read(fd, buf, 8);
}

void thaw_memcg_prefer_victim(pid_t pid)
{
    char dir[64];

    if (!memcg_kind || pid <= 0)
        return;
    snprintf(dir, sizeof(dir), "/proc/%d", (int)pid);
    write_text(dir, "oom_score_adj", "1000");
}

void thaw_memcg_run_remove(void)
{
    struct timespec ten_ms = {0, 10 * 1000 * 1000};
    DIR *d;
    struct dirent *e;
    int tries;

    if (!memcg_kind || !(d = opendir(memcg_run)))
        return;
    while ((e = readdir(d)))
        if (e->d_type == DT_DIR && e->d_name[0] == 'v')
            thaw_memcg_remove(atol(e->d_name + 1));
    closedir(d);
    /* at exit: the killed have a moment to go, then the rest stays */
    for (tries = 0; n_pending && tries < 100; tries++) {
        nanosleep(&ten_ms, NULL);
        thaw_memcg_reap();
    }
    rmdir(memcg_run);
    for (tries = 0; tries < n_cpu_run; tries++)
        rmdir(cpu_run[tries]);
}
