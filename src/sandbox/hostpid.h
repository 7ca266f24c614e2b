/* The supervisor's pid of a process it holds a pidfd for (hostpid.c). */
#ifndef THAW_SANDBOX_HOSTPID_H
#define THAW_SANDBOX_HOSTPID_H

#include <sys/types.h>

/* The pid in the supervisor's pid namespace of the process pidfd names;
 * 0 when it is gone already; `reported` (what its forker said) when the
 * kernel does not say. */
pid_t thaw_sb_host_pid(int pidfd, pid_t reported);

#endif
