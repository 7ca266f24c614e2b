/* libFuzzer target: a request head from arbitrary bytes, as any client of
 * any port may send it, through http-parser, the shared head reader
 * (h1-head.c) and the rules (h1-rules.c). The head never counts more
 * bytes than max_header, every header handed on lies inside the reader's
 * buffers, and a judged head has a status thaw answers with. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/h1.h"

#define MAX_HEADER 4096

struct fconn {
    struct thaw_h1_head head;
    int err_status;
};

static int on_header(struct thaw_h1_head *h, const char *name, size_t nlen,
                     const char *value, size_t vlen)
{
    if (name < h->field.data || name + nlen > h->field.data + h->field.len ||
        (vlen && (value < h->value.data || value + vlen > h->value.data + h->value.len)))
        abort();
    return 0;
}

THAW_H1_HEAD_CALLBACKS(struct fconn)

static int on_headers_complete(http_parser *p)
{
    struct fconn *c = p->data;
    const char *why = NULL;
    char host[256];
    int status;

    if (thaw_h1_head_done(&c->head))
        return -1;
    status = thaw_h1_check_head(p, c->head.hosts, &why);
    if (status && status != 400 && status != 501 && status != 505)
        abort();
    if (status && !why)
        abort();
    if (thaw_h1_absolute(c->head.url.data, c->head.url.len, host, sizeof(host)) >
        (long)c->head.url.len)
        abort();
    thaw_h1_declared_over(p, 0, 1000);
    return 1;
}

static int on_message_begin(http_parser *p)
{
    return 0;
}

static int on_chunk_header(http_parser *p)
{
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    return 0;
}

static int on_message_complete(http_parser *p)
{
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static http_parser_settings settings;
    struct fconn c = {0};
    http_parser p;

    THAW_H1_SET_CALLBACKS(settings);
    thaw_h1_head_init(&c.head, MAX_HEADER, on_header);
    /* http-parser is not instrumented: a request line from the first
     * byte lets the fuzzer reach the headers and the rules */
    static const char *const lines[] = {"", "GET / HTTP/1.1\r\n", "GET http://a.example/p HTTP/1.1\r\n",
                                        "POST /x HTTP/1.0\r\n", "CONNECT a:1 HTTP/1.1\r\n",
                                        "TRACE / HTTP/1.1\r\n", "GET / HTTP/9.9\r\n",
                                        "GET / HTTP/1.1\r\nHost: a\r\n"};
    const char *line = size ? lines[data[0] % (sizeof(lines) / sizeof(lines[0]))] : "";

    http_parser_init(&p, HTTP_REQUEST);
    p.data = &c;
    if (size) {
        data++, size--;
        http_parser_execute(&p, &settings, line, strlen(line));
    }
    if (HTTP_PARSER_ERRNO(&p) == HPE_OK)
        http_parser_execute(&p, &settings, (const char *)data, size);
    if (c.head.bytes > MAX_HEADER + size || c.head.url.len > MAX_HEADER)
        abort();
    thaw_h1_head_free(&c.head);
    return 0;
}
