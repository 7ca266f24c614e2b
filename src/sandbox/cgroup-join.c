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

int thaw__sb_memcg_join(const char *name, char *err, size_t errlen)
{
    char path[64];
    int fd, rc = 0;

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
    if (!rc) {
        snprintf(path, sizeof(path), "%s/tasks", name);
        fd = openat(memcg_fd, path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
            snprintf(path, sizeof(path), "%s/cgroup.procs", name);
            fd = openat(memcg_fd, path, O_WRONLY | O_CLOEXEC);
        }
        if (fd < 0 || write(fd, "0", 1) != 1)
            rc = thaw__sb_fail(err, errlen, "join the worker's memory cgroup");
        if (fd >= 0)
            close(fd);
    }
    if (memcg_fd >= 0)
        close(memcg_fd);
    memcg_fd = -1;
    return rc;
}
