/* thaw's own log: one line per event on stderr, prefixed so it is told
 * apart from worker output, which shares the stream. */
#ifndef THAW_LOG_H
#define THAW_LOG_H

#include <stdarg.h>

void thaw_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Writes `text` line by line, each prefixed with `tag`. */
void thaw_log_block(const char *tag, const char *text, size_t len);

#endif
