/* The template's side of the memory cgroups (cgroup.h): the zygote opens
 * the run's memory group before its mounts turn read-only; each template
 * joins the group the supervisor made for its version, before the
 * worker's top level runs, and closes the handle, so no worker code holds
 * a writable way into the host's cgroup tree. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sandbox/sandbox-internal.h"

static int memcg_fd = -1;
/* the run's v1 cpu and cpuacct groups (-1: none) */
static int cpucg_fd[2] = {-1, -1};

int thaw_sb_cpucg_open(const char *dir, char *err, size_t errlen)
{
    int i = cpucg_fd[0] < 0 ? 0 : 1;

    if (!dir || !*dir)
        return 0;
    if (cpucg_fd[i] >= 0) {
        errno = EEXIST;
        return thaw__sb_fail(err, errlen, "open the CPU cgroups: more than two");
    }
    cpucg_fd[i] = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return cpucg_fd[i] < 0 ? thaw__sb_fail(err, errlen, "open the CPU cgroup") : 0;
}

int thaw_sb_memcg_open(const char *dir, char *err, size_t errlen)
{
    if (!dir || !*dir)
        return 0;
    memcg_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return memcg_fd < 0 ? thaw__sb_fail(err, errlen, "open the memory cgroup") : 0;
}

/* "v" and digits: the supervisor's names, nothing that walks elsewhere */
static int group_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;

    return n > 1 && n < 24 && name[0] == 'v' && strspn(name + 1, "0123456789") == n - 1;
}

/* Moves this thread into group `name` under dir_fd (v1: "tasks"; v2 has
 * no "tasks": cgroup.procs, the template's one thread being all of it). */
static int join(int dir_fd, const char *name)
{
    char path[64];
    int fd, rc;

    snprintf(path, sizeof(path), "%s/tasks", name);
    fd = openat(dir_fd, path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        snprintf(path, sizeof(path), "%s/cgroup.procs", name);
        fd = openat(dir_fd, path, O_WRONLY | O_CLOEXEC);
    }
    if (fd < 0)
        return -1;
    rc = write(fd, "0", 1) == 1 ? 0 : -1;
    close(fd);
    return rc;
}

int thaw__sb_memcg_join(const char *name, char *err, size_t errlen)
{
    int i, rc = 0;

    if (memcg_fd < 0 && (!name || !*name))
        return 0; /* no memory cgroup on this run: memory is counted per instance */
    if (memcg_fd < 0 || !group_name(name)) {
        errno = EINVAL;
        rc = thaw__sb_fail(err, errlen, memcg_fd < 0 ? "the version has a memory cgroup "
                           "but the zygote holds none" : "a bad memory cgroup name");
    }
    /* v1: "tasks" moves only this thread, without the lock a whole
     * process's move takes (template.c says why that matters; the template
     * has one thread: join_cgroup checked); v2 has no "tasks" */
    if (!rc && join(memcg_fd, name))
        rc = thaw__sb_fail(err, errlen, "join the worker's memory cgroup");
    /* the same name in the CPU groups: its CPU is counted and capped */
    for (i = 0; i < 2; i++) {
        if (!rc && cpucg_fd[i] >= 0 && join(cpucg_fd[i], name))
            rc = thaw__sb_fail(err, errlen, "join the worker's CPU cgroup");
        if (cpucg_fd[i] >= 0)
            close(cpucg_fd[i]);
        cpucg_fd[i] = -1;
    }
    if (memcg_fd >= 0)
        close(memcg_fd);
    memcg_fd = -1;
    return rc;
}
