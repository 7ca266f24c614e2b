#include <stdlib.h>
#include <unistd.h>

#include "util/fd.h"
#include "util/log.h"

#if defined(THAW_DEBUG) || defined(__SANITIZE_ADDRESS__)
#define FD_BUG_ABORTS 1
#else
#define FD_BUG_ABORTS 0
#endif

int thaw_fd_watched(uv_loop_t *loop, int fd)
{
    /* watchers[] is libuv's table of registered io watchers, by fd (a
     * public field of uv_loop_t on Unix) */
    return loop && fd >= 0 && (unsigned)fd < loop->nwatchers && loop->watchers[fd] != NULL;
}

void thaw_close_fd(uv_loop_t *loop, int fd)
{
    if (fd < 0)
        return;
    if (thaw_fd_watched(loop, fd)) {
        thaw_log("BUG: fd %d closed while a libuv handle still watches it", fd);
        if (FD_BUG_ABORTS)
            abort();
    }
    close(fd);
}
