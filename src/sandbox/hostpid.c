/* The supervisor's name for a process of a worker version. Instances are
 * forked by their template inside the version's pid namespace
 * (keeper.c), so the pid a template reports is a number of that
 * namespace (2, 3, ...), meaningless out here; the pidfd it sends with it
 * names the process itself, and the kernel says its pid in the
 * supervisor's namespace (fdinfo's "Pid:"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/hostpid.h"

pid_t thaw_sb_host_pid(int pidfd, pid_t reported)
{
    char path[64], line[128];
    FILE *f;
    long pid = 0;
    int found = 0;

    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
    if (pidfd < 0 || !(f = fopen(path, "re")))
        return reported;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "Pid:", 4) == 0) {
            pid = strtol(line + 4, NULL, 10);
            found = 1;
            break;
        }
    fclose(f);
    /* no such line: a kernel that does not say (the forker's number is
     * all there is); -1: the process is gone already, and its number in
     * the version's namespace must not be read as a host pid: 0 */
    return !found ? reported : pid > 0 ? (pid_t)pid : 0;
}
