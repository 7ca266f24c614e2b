/* The words of an outbound WebSocket's handshake, for wsclient.c: pure
 * functions, no handles (unit-testable on their own). */
#ifndef THAW_BIND_WSCLIENT_HEAD_H
#define THAW_BIND_WSCLIENT_HEAD_H

#include <jansson.h>
#include <stddef.h>

#include "bind/httphead.h"

/* Where a ws://, wss://, http:// or https:// URL goes. */
struct thaw_wsc_url {
    char *url;          /* as given (strdup) */
    char host[256];     /* without brackets: for DNS and the TLS name */
    char hosthdr[300];  /* the Host header: brackets, and the port unless default */
    char *target;       /* path and query (malloc) */
    int port, secure;
};

/* The URL into u (url and target allocated: the caller frees them); NULL,
 * or why not (in err, or a constant) for the worker's TypeError. */
const char *thaw_wsc_parse_url(struct thaw_wsc_url *u, const char *url, char *err, size_t n);
/* The worker's [[name, value], ...]: names are tokens, values ASCII
 * without a line break. NULL, or why not. */
const char *thaw_wsc_check_headers(json_t *headers, char *err, size_t n);
/* 1 for a header thaw writes itself (Host, Upgrade, the key, framing):
 * the worker's is dropped. */
int thaw_wsc_own_header(const char *name);
/* Why the server's 101 is not the handshake thaw made with key (the
 * Sec-WebSocket-Key it sent), or NULL. */
const char *thaw_wsc_bad_101(const struct thaw_http_head *head, const char *key);

#endif
