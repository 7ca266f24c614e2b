/* libcurl's multi interface on the libuv loop: curl tells us which sockets
 * to watch (CURLMOPT_SOCKETFUNCTION -> uv_poll) and when to wake it
 * (CURLMOPT_TIMERFUNCTION -> uv_timer); we tell curl what happened
 * (curl_multi_socket_action). Thousands of transfers cost one poll handle
 * per connection and nothing per idle transfer.
 *
 * One thaw_curlm owns one connection cache: a caller that applies a policy
 * to connections (egress.h) keeps one per policy, so a connection opened
 * under one config is never reused under another. */
#ifndef THAW_BIND_CURLMULTI_H
#define THAW_BIND_CURLMULTI_H

#include <curl/curl.h>
#include <uv.h>

struct thaw_curlm;

/* One transfer: embed it, set easy, and CURLOPT_PRIVATE is ours. */
struct thaw_curlm_xfer {
    CURL *easy;
    /* The transfer ended (result CURLE_OK or an error). It is out of the
     * multi already; the callee owns easy (curl_easy_cleanup it). */
    void (*done)(struct thaw_curlm_xfer *x, CURLcode result);
    /* Called from the loop after thaw_curlm_tick_soon (never from inside
     * a curl callback): resume a paused transfer, or abort one. */
    void (*tick)(struct thaw_curlm_xfer *x);

    /* private */
    struct thaw_curlm *m;
    struct thaw_curlm_xfer *tick_next;
    int ticking;
};

struct thaw_curlm *thaw_curlm_new(uv_loop_t *loop);
/* Frees it once its handles are closed. No transfer may be in it. */
void thaw_curlm_free(struct thaw_curlm *m);

/* Starts x->easy. 0, or -1 (then done is never called). */
int thaw_curlm_add(struct thaw_curlm *m, struct thaw_curlm_xfer *x);
/* Stops a transfer without calling done; the caller owns easy again.
 * Must not be called from inside one of curl's callbacks: from there, use
 * thaw_curlm_tick_soon and remove in tick. */
void thaw_curlm_remove(struct thaw_curlm_xfer *x);
/* Asks for x->tick about 5 ms from now. */
void thaw_curlm_tick_soon(struct thaw_curlm_xfer *x);
/* Resumes a transfer its write callback paused (CURL_WRITEFUNC_PAUSE);
 * curl may deliver data to it before this returns. */
void thaw_curlm_resume(struct thaw_curlm_xfer *x);
/* Whether curl is running one of our callbacks right now. */
int thaw_curlm_in_callback(const struct thaw_curlm *m);
/* Transfers in the multi. */
int thaw_curlm_count(const struct thaw_curlm *m);

#endif
