/* TLS for a connection the supervisor makes itself (an outbound WebSocket,
 * ws/client's wss://): OpenSSL over memory BIOs, so the socket stays
 * libuv's and this file never blocks or touches a descriptor. The owner
 * feeds what the network sent (thaw_tls_feed), reads the plaintext out
 * (thaw_tls_read), writes plaintext in (thaw_tls_write) and sends what
 * thaw_tls_take gives it.
 *
 * Certificates are checked as outbound fetch checks them (libcurl's
 * defaults there): the peer's chain against the system's CA store, or
 * only against thaw.egress.ca_file when the worker sets one, and its name
 * (or IP address) against the URL's host. */
#ifndef THAW_BIND_TLS_H
#define THAW_BIND_TLS_H

#include <stddef.h>
#include <sys/types.h>

struct thaw_tls_ctx;
struct thaw_tls;

/* ca_file NULL: the system's store. NULL with err when it cannot load. */
struct thaw_tls_ctx *thaw_tls_ctx_new(const char *ca_file, char *err, size_t n);
void thaw_tls_ctx_free(struct thaw_tls_ctx *x);

/* A client session for host (a name, or an IP address without brackets). */
struct thaw_tls *thaw_tls_new(struct thaw_tls_ctx *x, const char *host);
void thaw_tls_free(struct thaw_tls *t);

/* Bytes from the network. 0, or -1 without memory. */
int thaw_tls_feed(struct thaw_tls *t, const void *p, size_t n);
/* Drives the handshake: 1 done, 0 it needs more bytes from the network,
 * -1 failed (err says why, with the certificate's problem when that was
 * it). */
int thaw_tls_handshake(struct thaw_tls *t, char *err, size_t n);
/* Plaintext received: > 0 bytes, 0 none yet, -1 the peer closed the TLS
 * session or it failed. */
ssize_t thaw_tls_read(struct thaw_tls *t, void *buf, size_t n);
/* Plaintext to send (after the handshake). 0, or -1. */
int thaw_tls_write(struct thaw_tls *t, const void *p, size_t n);
/* Ciphertext for the network, taken out into buf: its length (0: none). */
size_t thaw_tls_take(struct thaw_tls *t, void *buf, size_t n);

#endif
