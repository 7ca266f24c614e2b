/* The supervisor's side of the memory cgroups (cgroup.c): one group per
 * worker version, so the kernel counts every page the version costs, its
 * template's, its instances', their children's, memfds and its private
 * /tmp (tmpfs pages are charged to the cgroup of the process that wrote
 * them). The supervisor makes and removes each group and sets its limit;
 * the template joins it before the worker's top level runs
 * (cgroup-join.c). docs/security.md ("Memory"). */
#ifndef THAW_SANDBOX_CGROUP_H
#define THAW_SANDBOX_CGROUP_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

enum thaw_memcg_kind { THAW_MEMCG_NONE, THAW_MEMCG_V1, THAW_MEMCG_V2 };

/* Which memory controller this process may use, and where the run's group
 * would go (v2: beside the supervisor's own cgroup, or at the root; v1:
 * inside its own group, so a limit the host set on thaw still holds).
 * Returns the kind; base gets the directory, why the reason for NONE. */
int thaw_memcg_probe(char *base, size_t n, char *why, size_t whyn);
/* "cgroup v2", "cgroup v1", "none" */
const char *thaw_memcg_name(int kind);

/* Makes the run's group (thaw-PID under base; v2 enables the memory
 * controller for its children). 0 and its path, or -1 with why. */
int thaw_memcg_run_create(int kind, const char *base, char *path, size_t len, char *why,
                          size_t whyn);
/* At exit: stops what is left in the run's groups and removes them. */
void thaw_memcg_run_remove(void);
/* The kind of the run's group (NONE before thaw_memcg_run_create). */
int thaw_memcg_active(void);
/* After the run's groups were made (pids, memory, cpu): beside each,
 * removes the run groups of thaw processes that no longer run (a thaw
 * SIGKILLed or crashed leaves its own for ever), what is still in them
 * killed (cgroup-sweep.c). A directory named exactly thaw-<pid> goes
 * when no thaw process has that pid (the pid is free, or reused by
 * another program); a living thaw's, or one whose /proc entry cannot be
 * read, stays. Best effort: one line to log says what went (none when
 * nothing did), one names each group that would not go and why; it
 * never fails. `who` ("dev", "serve") prefixes the lines. */
void thaw_cgroup_sweep(const char *who, FILE *log);

/* A worker version's group with a limit of `bytes`, before its template
 * is forked: its id (name "v<id>" under the run's group), 0 when the run
 * has no memory cgroup, -1 with a message when it cannot be made. The
 * same "v<id>" is made in the run's CPU groups (where the kernel has
 * them: the cpu and cpuacct controllers, v1 or v2), which count the CPU
 * of every process of the version, after a response and in children
 * too, and hold all of them together to cpu_percent of one CPU (a
 * quota per 100 ms; 0: no quota). */
long thaw_memcg_create(long long bytes, long long cpu_percent, char *err, size_t errlen);
/* The run's v1 CPU groups (cpu, cpuacct: one when mounted together), for
 * the zygote to open: templates join "v<id>" in each. Returns the count. */
int thaw_cpucg_dirs(const char **dirs, int max);
/* "cgroup v2", "cgroup v1" or "none": what counts a version's CPU */
const char *thaw_cpucg_name(void);
/* The version is gone: what is left in its group is killed and the group
 * removed (at once, or by thaw_memcg_reap once the kernel let go of it). */
void thaw_memcg_remove(long id);
/* Retries removals the kernel refused (the killed processes were still
 * exiting): cheap when there are none. */
void thaw_memcg_reap(void);
/* How many removals wait for thaw_memcg_reap (its caller retries while
 * any do, with a timer that exists only then). */
int thaw_memcg_pending(void);
/* 1, with msg saying which directory stays and which processes it holds,
 * for one removal waiting for longer than after_ms that was not told
 * yet; 0 when none. A group that stays means a process thaw did not
 * reap: worth a line in the log, once. */
int thaw_memcg_overdue(long after_ms, char *msg, size_t len);
/* How many processes the kernel's OOM killer killed in the group. */
long long thaw_memcg_oom_kills(long id);
/* An fd that the kernel makes ready when the group's OOM killer runs, so
 * the supervisor hears of it without reading the count at intervals:
 * cgroup v1, an eventfd registered on memory.oom_control through
 * cgroup.event_control (readable; *prioritized 0); v2, memory.events
 * itself (POLLPRI when it changes; *prioritized 1). -1 when the group
 * has none or it cannot be set up. The caller closes it. */
int thaw_memcg_oom_fd(long id, int *prioritized);
/* After the fd was ready: takes the event, so the next one is seen. */
void thaw_memcg_oom_fd_drain(int fd);
/* Makes pid (an instance) the process the OOM killer takes first, before
 * its template: a memfd has no owner the kernel could weigh, so without
 * this the template (the largest) would go for an instance's memfd. The
 * value is set with CAP_SYS_RESOURCE, so the instance cannot lower it. */
void thaw_memcg_prefer_victim(pid_t pid);

#endif
