/* The sweep at start (cgroup.h, thaw_cgroup_sweep): the run groups of
 * thaw processes that no longer run, beside this thaw's own, in every
 * hierarchy it uses. Without it a thaw that was SIGKILLed left thaw-<pid>
 * in pids, memory, cpu and cpuacct for ever (cgroup.c's clear_stale_run
 * cleared one only when a new thaw happened to get the same pid), and a
 * memory cgroup removed late pins kernel memory all the while.
 *
 * Who owns a group is read from its name only (thaw-<pid>), so "dead"
 * must be sure: two thaws on one host (dev and serve) are normal, and
 * sweeping a living one's group would kill its workers. A group stays
 * when its pid runs a thaw (by its executable, its name or its command
 * line: thaw under valgrind still counts) or when /proc cannot say. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/cgroup-sweep.h"
#include "sandbox/cgroup.h"

/* pids, memory, cpu, cpuacct: the directories the run groups are in */
#define MAX_PARENTS 4
static char parents[MAX_PARENTS][512];
static int n_parents;

/* A group that stays after every kill is a process the kernel does not
 * let go (in D state, or outside this pid namespace): retried this long
 * while the killed ones exit, then left for the next start. */
#define RETRY_MS 200

void thaw__cg_sweep_add(const char *run)
{
    char dir[512];
    char *slash;
    int i;

    snprintf(dir, sizeof(dir), "%s", run);
    if (!(slash = strrchr(dir, '/')) || slash == dir)
        return;
    *slash = '\0';
    for (i = 0; i < n_parents; i++)
        if (strcmp(parents[i], dir) == 0)
            return;
    if (n_parents < MAX_PARENTS)
        snprintf(parents[n_parents++], sizeof(parents[0]), "%s", dir);
}

/* The pid in a name made by thaw ("thaw-123": no sign, no leading zero,
 * nothing after), else 0: thaw-foo, thawx-123 or thaw-0123 are not
 * thaw's and are never touched. */
static long run_pid(const char *name)
{
    char canon[32];
    char *end;
    long pid;

    if (strncmp(name, "thaw-", 5) || name[5] < '1' || name[5] > '9')
        return 0;
    errno = 0;
    pid = strtol(name + 5, &end, 10);
    if (errno || *end || pid <= 0 || pid > INT_MAX)
        return 0;
    snprintf(canon, sizeof(canon), "thaw-%ld", pid);
    return strcmp(canon, name) == 0 ? pid : 0;
}

/* The names a thaw supervisor goes by: "thaw", and this binary's own
 * (installed under another name, both run it). */
struct names {
    char exe[256], comm[32];
};

static const char *base_of(char *path)
{
    char *slash = strrchr(path, '/');
    size_t n = strlen(path);

    /* the binary was replaced (a rebuild) while it runs */
    if (n > 10 && strcmp(path + n - 10, " (deleted)") == 0)
        path[n - 10] = '\0';
    return slash ? slash + 1 : path;
}

static int is_thaw(const char *name, const struct names *me)
{
    return strcmp(name, "thaw") == 0 || (me->exe[0] && strcmp(name, me->exe) == 0) ||
           (me->comm[0] && strcmp(name, me->comm) == 0);
}

/* -1, or how many bytes of /proc/<pid>/<file> were read (NUL-ended) */
static ssize_t read_proc(long pid, const char *file, char *buf, size_t n)
{
    char path[64];
    FILE *f;
    size_t k;

    snprintf(path, sizeof(path), "/proc/%ld/%s", pid, file);
    if (!(f = fopen(path, "re")))
        return -1;
    k = fread(buf, 1, n - 1, f);
    fclose(f);
    buf[k] = '\0';
    return (ssize_t)k;
}

static void own_names(struct names *me)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

    me->exe[0] = me->comm[0] = '\0';
    if (n > 0) {
        exe[n] = '\0';
        snprintf(me->exe, sizeof(me->exe), "%s", base_of(exe));
    }
    if (read_proc((long)getpid(), "comm", me->comm, sizeof(me->comm)) > 0)
        me->comm[strcspn(me->comm, "\n")] = '\0';
}

enum owner { OWNER_GONE, OWNER_THAW, OWNER_UNSURE };

/* Whether pid is a thaw process. Its executable, its name (comm) and its
 * command line are each asked (exe needs rights comm does not; under
 * valgrind only the command line says thaw); "gone" needs /proc to say
 * the pid is free, or at least one of them read and none saying thaw. */
static enum owner owner_of(long pid, const struct names *me)
{
    char path[64], buf[4096];
    struct stat st;
    ssize_t n;
    int seen = 0;
    char *p;

    snprintf(path, sizeof(path), "/proc/%ld", pid);
    if (stat(path, &st))
        return errno == ENOENT ? OWNER_GONE : OWNER_UNSURE;
    snprintf(path, sizeof(path), "/proc/%ld/exe", pid);
    if ((n = readlink(path, buf, sizeof(buf) - 1)) > 0) {
        buf[n] = '\0';
        if (is_thaw(base_of(buf), me))
            return OWNER_THAW;
        seen = 1;
    }
    if (read_proc(pid, "comm", buf, sizeof(buf)) > 0) {
        buf[strcspn(buf, "\n")] = '\0';
        if (is_thaw(buf, me))
            return OWNER_THAW;
        seen = 1;
    }
    if ((n = read_proc(pid, "cmdline", buf, sizeof(buf))) >= 0) {
        for (p = buf; p < buf + n; p += strlen(p) + 1)
            if (is_thaw(base_of(p), me))
                return OWNER_THAW;
        seen = 1;
    }
    if (seen)
        return OWNER_GONE;
    snprintf(path, sizeof(path), "/proc/%ld", pid);
    return stat(path, &st) && errno == ENOENT ? OWNER_GONE : OWNER_UNSURE;
}

/* A run group that stayed: retried while the kernel says EBUSY (its
 * killed processes are still exiting), then named in the log. */
struct left {
    char dir[512];
    long pid;
    struct thaw__cg_stuck stuck;
};

/* What one sweep found: the run groups that stayed, and the pids whose
 * groups went. */
struct sweep {
    struct left *left;
    long *pids;
    int n_left, cap_left, n_pids, cap_pids, removed;
};

/* Room for one more in *arr (n used of *cap); 0 when there is none. */
static int room(void **arr, int n, int *cap, size_t size)
{
    void *p;

    if (n < *cap)
        return 1;
    if (!(p = realloc(*arr, (size_t)(*cap ? 2 * *cap : 16) * size)))
        return 0;
    *arr = p;
    *cap = *cap ? 2 * *cap : 16;
    return 1;
}

static void note_pid(struct sweep *s, long pid)
{
    if (s->n_pids && s->pids[s->n_pids - 1] == pid)
        return;
    if (room((void **)&s->pids, s->n_pids, &s->cap_pids, sizeof(*s->pids)))
        s->pids[s->n_pids++] = pid;
}

/* Removes a run group and all below it; 1 when something stayed. */
static int remove_run(struct sweep *s, const char *run, long pid, struct thaw__cg_stuck *stuck)
{
    int n = thaw__cg_remove_tree(run, 0, stuck);

    s->removed += n;
    if (n)
        note_pid(s, pid);
    return stuck->dir[0] != '\0';
}

static void sweep_parent(const char *parent, const struct names *me, struct sweep *s)
{
    DIR *d = opendir(parent);
    struct dirent *e;
    struct left one;
    long pid;

    if (!d)
        return;
    while ((e = readdir(d))) {
        if (e->d_type != DT_DIR || !(pid = run_pid(e->d_name)) || pid == (long)getpid() ||
            owner_of(pid, me) != OWNER_GONE)
            continue;
        snprintf(one.dir, sizeof(one.dir), "%.480s/%.20s", parent, e->d_name);
        one.pid = pid;
        if (remove_run(s, one.dir, pid, &one.stuck) &&
            room((void **)&s->left, s->n_left, &s->cap_left, sizeof(*s->left)))
            s->left[s->n_left++] = one;
    }
    closedir(d);
}

static long ms_since(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

static int any_busy(const struct sweep *s)
{
    int i;

    for (i = 0; i < s->n_left; i++)
        if (s->left[i].stuck.err == EBUSY)
            return 1;
    return 0;
}

/* Groups whose processes were just killed go once those exited: retried
 * (killing again) for a moment while the kernel says they are busy. */
static void retry_left(struct sweep *s, const struct timespec *t0)
{
    struct timespec five_ms = {0, 5 * 1000 * 1000};
    int i, k;

    while (any_busy(s) && ms_since(t0) < RETRY_MS) {
        nanosleep(&five_ms, NULL);
        for (i = k = 0; i < s->n_left; i++)
            if (remove_run(s, s->left[i].dir, s->left[i].pid, &s->left[i].stuck))
                s->left[k++] = s->left[i];
        s->n_left = k;
    }
}

/* "...; it holds: 1234 1240": the processes of a group that stayed */
static void read_procs(const char *dir, char *out, size_t n)
{
    char path[1100];
    FILE *f;
    size_t k = 0;
    int opened;

    snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
    if ((opened = (f = fopen(path, "re")) != NULL)) {
        k = fread(out, 1, n - 1, f);
        fclose(f);
    }
    while (k && out[k - 1] == '\n')
        k--;
    out[k] = '\0';
    for (char *p = out; *p; p++)
        if (*p == '\n')
            *p = ' ';
    if (!k)
        snprintf(out, n, "%s", opened ? "no process this thaw can see" : "(unreadable)");
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;

    return x < y ? -1 : x > y;
}

/* "removed 12 cgroups left by 3 thaw processes that no longer run (pids
 * 101, 202, 303)": the pids named up to a handful */
static void log_summary(struct sweep *s, const char *who, FILE *log, long ms)
{
    int i, k = 0;

    qsort(s->pids, s->n_pids, sizeof(*s->pids), cmp_long);
    for (i = 0; i < s->n_pids; i++)
        if (!k || s->pids[k - 1] != s->pids[i])
            s->pids[k++] = s->pids[i];
    fprintf(log, "thaw %s: removed %d cgroup%s left by %d thaw process%s that no longer "
            "run%s (pid%s", who, s->removed, s->removed == 1 ? "" : "s", k,
            k == 1 ? "" : "es", k == 1 ? "s" : "", k == 1 ? "" : "s");
    for (i = 0; i < k && i < 10; i++)
        fprintf(log, "%s%ld", i ? ", " : " ", s->pids[i]);
    if (k > 10)
        fprintf(log, " and %d more", k - 10);
    fprintf(log, "; %ld ms)\n", ms);
}

void thaw_cgroup_sweep(const char *who, FILE *log)
{
    struct sweep s = {0};
    struct timespec t0;
    struct names me;
    char procs[256];
    int i;

    /* without /proc no pid can be judged: nothing is touched */
    if (!n_parents || access("/proc/self/stat", F_OK))
        return;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    own_names(&me);
    for (i = 0; i < n_parents; i++)
        sweep_parent(parents[i], &me, &s);
    retry_left(&s, &t0);
    if (s.removed)
        log_summary(&s, who, log, ms_since(&t0));
    for (i = 0; i < s.n_left; i++) {
        read_procs(s.left[i].stuck.dir, procs, sizeof(procs));
        fprintf(log, "thaw %s: cannot remove the cgroup %s left by thaw process %ld, which "
                "no longer runs: %s; it holds: %s\n", who, s.left[i].stuck.dir,
                s.left[i].pid, strerror(s.left[i].stuck.err), procs);
    }
    free(s.left);
    free(s.pids);
}
