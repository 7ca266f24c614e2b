/* An HTTP response head, line by line as libcurl's header callback hands
 * it over (status lines of every response, 1xx included, then fields,
 * then the empty line), kept as JSON for the instance: header bytes are
 * Latin-1 on the wire (JS ByteString), so they are converted to UTF-8. */
#ifndef THAW_BIND_HTTPHEAD_H
#define THAW_BIND_HTTPHEAD_H

#include <jansson.h>
#include <stddef.h>

struct thaw_http_head {
    int status;
    char *reason;     /* NULL when none (HTTP/2) */
    json_t *headers;  /* [[lower-case name, value], ...] */
    size_t bytes;     /* of fields so far, against max */
    size_t max;
    int done;         /* the final (non-1xx) head is complete */
};

enum { THAW_HEAD_MORE = 0, THAW_HEAD_DONE = 1, THAW_HEAD_TOOBIG = -1 };

/* max: the most header bytes kept. 0, or -1 without memory. */
int thaw_http_head_init(struct thaw_http_head *h, size_t max);
void thaw_http_head_free(struct thaw_http_head *h);
/* Forgets the last response (a redirect hop starts over). */
void thaw_http_head_reset(struct thaw_http_head *h);
/* One line as curl gives it (CRLF included). THAW_HEAD_DONE once, when
 * the empty line ends a final head; lines after it (trailers) are
 * ignored until the next status line. */
int thaw_http_head_line(struct thaw_http_head *h, const char *line, size_t n);
/* The first value of a (lower-case) field, or NULL. */
const char *thaw_http_head_get(const struct thaw_http_head *h, const char *name);

#endif
