/* Closing a descriptor that a libuv handle may have watched. libuv keeps
 * watching an fd *number*: an fd closed while a uv_poll_t still holds it
 * (or closed before that handle's uv_close) lets the next descriptor that
 * gets the number be dropped from epoll or reported to freed memory. So a
 * handle is closed with uv_close first, and its fd in the close callback,
 * through thaw_close_fd(), which checks that no watcher is left on it. */
#ifndef THAW_UTIL_FD_H
#define THAW_UTIL_FD_H

#include <uv.h>

/* Closes fd (ignores -1). In a debug build (THAW_DEBUG, or ASAN) an fd
 * still watched by the loop aborts; otherwise it is logged as a bug. */
void thaw_close_fd(uv_loop_t *loop, int fd);
/* Whether the loop still has a watcher registered on fd. */
int thaw_fd_watched(uv_loop_t *loop, int fd);

#endif
