/* Worker output under thaw serve. The zygotes' stderr is a pipe that the
 * supervisor reads (templates and instances inherit it), instead of
 * thaw's own stderr: every byte is copied to thaw's stderr as it comes
 * (the log reads as in thaw dev), and each complete line tagged by
 * python/thaw_runtime/output.py, `[NAME req=N] text` or `[NAME] text`,
 * is handed to on_line for NAME's tail subscribers.
 *
 * Bounded: one fixed read buffer and one line buffer; a line longer than
 * THAW_OUT_LINE_MAX reaches on_line cut at that length (with truncated
 * set); thaw's stderr gets it whole. A worker that writes faster than
 * thaw's stderr takes is slowed by the pipe, as a write to stderr was. */
#ifndef THAW_SERVE_OUTPUT_H
#define THAW_SERVE_OUTPUT_H

#include <stddef.h>
#include <uv.h>

#define THAW_OUT_LINE_MAX 8192

struct thaw_outpipe {
    uv_pipe_t pipe;
    int open;
    char line[THAW_OUT_LINE_MAX];
    size_t len;
    int truncated;            /* the line in progress went past the buffer */
    /* name: the worker from the tag; request: -1 when the line has none */
    void (*on_line)(void *data, const char *name, long long request, const char *msg,
                    size_t n, int truncated);
    /* 0: nobody listens, skip parsing lines */
    int (*wanted)(void *data);
    void *data;
};

/* Opens the pipe; *write_fd is the end the zygotes get as stderr
 * (close-on-exec: the zygote client dup2()s it). 0 or -errno. */
int thaw_outpipe_open(struct thaw_outpipe *o, uv_loop_t *loop, int *write_fd);

/* At exit: copies what is still in the pipe to thaw's stderr. */
void thaw_outpipe_drain(struct thaw_outpipe *o);

/* Parses `[NAME req=N] text` / `[NAME] text`: 0 with the parts, -1 for a
 * line without that tag. Exposed for the unit test. */
int thaw_outpipe_parse(const char *line, size_t n, char *name, size_t name_len,
                       long long *request, size_t *msg_off);

#endif
