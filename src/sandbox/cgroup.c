/* The run's pids cgroup (as root only; see probe.c). The supervisor makes
 * it; each template makes and joins a sub-cgroup with its own pids.max
 * (sandbox/template.c); at exit the supervisor removes what is empty. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/probe.h"

int thaw_sb_cgroup_create(const struct thaw_sb_probe *p, char *path, size_t len)
{
    if (!p->cgroup_root[0])
        return -1;
    snprintf(path, len, "%s/thaw-%ld", p->cgroup_root, (long)getpid());
    if (mkdir(path, 0755) && errno != EEXIST) {
        path[0] = '\0';
        return -1;
    }
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
        if (e->d_type == DT_DIR && e->d_name[0] == 'v') {
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            rmdir(sub);
        }
    closedir(d);
    rmdir(path);
}
