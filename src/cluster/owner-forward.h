/* A call forwarded to its owner node's internal port (internal.h): the
 * transfer's setup, shared by D1 (owner-d1.c) and Durable Objects
 * (owner-do.c). */
#ifndef THAW_CLUSTER_OWNER_FORWARD_H
#define THAW_CLUSTER_OWNER_FORWARD_H

#include <curl/curl.h>
#include <stddef.h>
#include <uv.h>

struct thaw_curlm;

/* The connections to other nodes (one cache for all of them). NULL when
 * out of memory. */
struct thaw_curlm *thaw_owner_multi(uv_loop_t *loop);

/* The headers of every forward: the secret, the type. NULL with err when
 * THAW_CLUSTER_SECRET is not set (or out of memory); node names the
 * owner for the message. */
struct curl_slist *thaw_owner_headers(const char *node, char *err, size_t n);

/* A POST of payload (len bytes, the caller's until done) to
 * http://INTERNAL/PATH; timeout_ms 0: none. NULL when out of memory. */
CURL *thaw_owner_easy(const char *internal, const char *path, struct curl_slist *headers,
                      const char *payload, size_t len, char *errbuf, long timeout_ms);

/* Ends call with the owner's error answer {"class", "error"} (body, n
 * bytes); one thaw cannot read is said as "WHAT: its owner node NODE
 * (INTERNAL) answered STATUS". */
struct thaw_bind_call;
void thaw_owner_fail_answer(struct thaw_bind_call *call, const char *body, size_t n,
                            const char *what, const char *node, const char *internal,
                            long status);

#endif
