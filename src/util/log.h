/* thaw's own log: one line per event on stderr, prefixed so it is told
 * apart from worker output, which shares the stream. */
#ifndef THAW_LOG_H
#define THAW_LOG_H

#include <stdarg.h>

void thaw_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Writes `text` line by line, each prefixed with `tag`. */
void thaw_log_block(const char *tag, const char *text, size_t len);

/* Appends one line (without its newline) to the buffered log, written
 * out by thaw_log_flush() once per loop iteration: one write for many
 * request lines. */
void thaw_log_buffered(const char *line, size_t len);
void thaw_log_flush(void);

#endif
