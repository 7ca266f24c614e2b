/* Worker output, attributed by the channel it arrives on. Each worker
 * version gets a pipe of its own: the supervisor makes it, the zygote
 * dup2()s its write end onto the template's fd 1 and 2 before the worker's
 * code runs (python/thaw_runtime/zygote.py), and its instances inherit it.
 * So whatever arrives on a version's pipe is that worker's, whatever the
 * text says: a line is never attributed by parsing a name out of it.
 *
 * Each line goes to thaw's stderr (the log) and to on_line (thaw serve's
 * tail). python/thaw_runtime/output.py tags lines `[NAME req=N] text`:
 * when NAME is the pipe's own worker the line is logged as it is and
 * on_line gets N (a worker can only mislabel its own requests); any other
 * line (a raw os.write(2, ...), a C extension, text that names another
 * worker) is logged as `[NAME] line` with the pipe's NAME, and reaches
 * on_line whole, without a request. Control characters other than tab are
 * escaped (\xNN) in the log, so a carriage return cannot make a line look
 * like another's on a terminal.
 *
 * Bounded: one shared read buffer, and per pipe one line buffer of
 * THAW_OUT_LINE_MAX bytes, allocated at its first output. A longer line
 * reaches on_line cut there (truncated set); the log gets it whole. A
 * worker that writes faster than thaw's stderr takes is slowed by its
 * pipe. */
#ifndef THAW_POOL_OUTPUT_H
#define THAW_POOL_OUTPUT_H

#include <stddef.h>
#include <uv.h>

#define THAW_OUT_LINE_MAX 8192

struct thaw_outpipe;

/* request: from the worker's own tag, -1 when the line has none. */
typedef void (*thaw_outpipe_line_cb)(void *data, long long request, const char *msg,
                                     size_t n, int truncated);

/* Opens the pipe of worker `name`. *write_fd (close-on-exec) is the end
 * its processes get as fd 1 and 2: the caller passes it on and closes its
 * own copy. on_line may be NULL. 0 or -errno. */
int thaw_outpipe_open(uv_loop_t *loop, const char *name, thaw_outpipe_line_cb on_line,
                      void *data, struct thaw_outpipe **out, int *write_fd);

/* The owner is done with it (the version is freed): what the pipe still
 * holds is read and handed on, then the handle is closed and the memory
 * freed once libuv let go of it; on_line is not called afterwards. The
 * handle closes earlier by itself when every writer is gone (EOF), so a
 * version that lingers holds no fd. NULL is allowed. */
void thaw_outpipe_free(struct thaw_outpipe *o);

/* At exit: what every open pipe still holds goes to thaw's stderr. */
void thaw_outpipe_drain_all(void);

/* Parses `[NAME req=N] text` / `[NAME] text`: 0 with the parts, -1 for a
 * line without that tag. Exposed for the unit test. */
int thaw_outpipe_parse(const char *line, size_t n, char *name, size_t name_len,
                       long long *request, size_t *msg_off);

/* Unit tests: the bytes a pipe read, as if they had arrived on it, and
 * where the log goes (default 2). */
void thaw__outpipe_feed(struct thaw_outpipe *o, const char *p, size_t n);
void thaw__outpipe_set_log_fd(int fd);

#endif
