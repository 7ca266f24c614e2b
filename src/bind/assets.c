/* The ASSETS binding: `await env.ASSETS.fetch(request)` answers from the
 * worker's `assets.directory` with the resolver the HTTP side uses
 * (assets/assets.h). The kind also keeps the version's assets for the
 * HTTP side under a name no env key can have (":assets"), so a version
 * serves its own files even when it declares no binding.
 *
 * Bodies up to SMALL_BODY go in one answer; bigger files stream in
 * chunks, paused while the instance's channel is backed up, so a large
 * file is never held in memory. */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "assets/assets.h"
#include "bind/assets.h"
#include "bind/kinds.h"
#include "policy/policy.h"
#include "util/log.h"

#define HIDDEN_NAME ":assets"
#define SMALL_BODY (1u << 20)
#define RETRY_MS 2

/* What the binding set holds (registered once or twice). */
struct impl {
    int refs;
    uv_loop_t *loop;
    struct thaw_assets *assets;
};

struct stream {
    uv_timer_t timer;
    struct thaw_bind_call *call;
    struct thaw_assets *assets;
    int fd;
    uint64_t left;
    int cancelled;
    char *buf;
};

struct thaw_assets *thaw_bind_assets_of(struct thaw_bindings *set)
{
    struct impl *im = set ? thaw_bindings_find(set, HIDDEN_NAME, &thaw_bind_assets) : NULL;

    return im ? im->assets : NULL;
}

static int open_assets(const struct thaw_bind_env *env, struct thaw_bindings *set,
                       char *err, size_t errlen)
{
    json_t *table = json_object_get(env->config, "assets");
    struct impl *im;

    if (!table)
        return 0;
    im = calloc(1, sizeof(*im));
    if (!im) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    im->loop = env->loop;
    im->assets = thaw_assets_open(table, env->worker_dir, env->config_file,
                                  env->policy && env->policy->tenant, err, errlen);
    if (!im->assets) {
        free(im);
        return -1;
    }
    /* one reference per registration: close() drops each */
    im->refs = 1;
    if (thaw_bindings_add(set, HIDDEN_NAME, &thaw_bind_assets, im, err, errlen) < 0) {
        thaw_assets_unref(im->assets);
        free(im);
        return -1;
    }
    if (im->assets->binding) {
        im->refs++;
        if (thaw_bindings_add(set, im->assets->binding, &thaw_bind_assets, im, err,
                              errlen) < 0) {
            im->refs--;
            return -1; /* the set frees im with its first registration */
        }
    }
    return 0;
}

static void close_assets(void *p)
{
    struct impl *im = p;

    if (--im->refs > 0)
        return;
    thaw_assets_unref(im->assets);
    free(im);
}

/* ---- fetch ------------------------------------------------------------- */

static void stream_freed(uv_handle_t *h)
{
    struct stream *s = h->data;

    if (s->fd >= 0)
        close(s->fd);
    thaw_assets_unref(s->assets);
    free(s->buf);
    free(s);
}

static void stream_end(struct stream *s, const char *error)
{
    thaw_bind_end(s->call, error);
    uv_close((uv_handle_t *)&s->timer, stream_freed);
}

static void stream_cancel(struct thaw_bind_call *call)
{
    struct stream *s = call->data;

    s->cancelled = 1; /* the timer's next run ends the call */
}

/* Sends chunks until the file is done or the channel is full. */
static void stream_pump(uv_timer_t *t)
{
    struct stream *s = t->data;

    while (s->left > 0) {
        size_t want = s->left < THAW_ASSETS_CHUNK ? (size_t)s->left : THAW_ASSETS_CHUNK;
        ssize_t n;

        if (s->cancelled) {
            stream_end(s, "cancelled");
            return;
        }
        if (thaw_bind_congested(s->call)) {
            uv_timer_start(&s->timer, stream_pump, RETRY_MS, 0);
            return;
        }
        n = read(s->fd, s->buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            /* the file shrank while it was sent: the body cannot be whole */
            stream_end(s, n < 0 ? strerror(errno) : "the asset file changed while it was read");
            return;
        }
        if (thaw_bind_data(s->call, s->buf, (size_t)n) < 0) {
            stream_end(s, "cancelled");
            return;
        }
        s->left -= (uint64_t)n;
    }
    stream_end(s, NULL);
}

/* Reads all of a small file; 0 or -1. */
static int read_all(int fd, char *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t k = read(fd, buf + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        got += (size_t)k;
    }
    return 0;
}

/* The answer's head: {"status", "headers": [[name, value]...], "size"}. */
static json_t *head_json(struct thaw_asset_resp *r)
{
    json_t *h = json_array();
    int i;

    thaw_asset_resp_head(r);
    for (i = 0; i < r->n_headers; i++)
        json_array_append_new(h, json_pack("[ss]", r->names[i], r->values[i]));
    return json_pack("{s:i,s:o,s:I}", "status", r->status, "headers", h, "size",
                     (json_int_t)(r->fd >= 0 ? r->size : 0));
}

/* args: {"method", "url", "headers": [[name, value]...]} */
static void do_fetch(struct impl *im, struct thaw_bind_call *call)
{
    struct thaw_assets *a = im->assets;
    const char *method = json_string_value(json_object_get(call->args, "method"));
    const char *url = json_string_value(json_object_get(call->args, "url"));
    json_t *headers = json_object_get(call->args, "headers"), *pair;
    struct thaw_asset_req rq;
    struct thaw_asset_resp r;
    struct stream *s;
    json_t *head;
    size_t i;

    if (!method || !url || (headers && !json_is_array(headers))) {
        thaw_bind_fail(call, "TypeError",
                       "%s.fetch() needs a request: a workers.Request or a URL string",
                       call->binding);
        return;
    }
    memset(&rq, 0, sizeof(rq));
    rq.method = method;
    rq.target = url;
    rq.target_len = strlen(url);
    rq.binding = 1;
    json_array_foreach(headers, i, pair) {
        const char *k = json_string_value(json_array_get(pair, 0));
        const char *v = json_string_value(json_array_get(pair, 1));
        if (!k || !v)
            continue;
        if (strcasecmp(k, "if-none-match") == 0)
            rq.if_none_match = v;
        else if (strcasecmp(k, "authorization") == 0 || strcasecmp(k, "range") == 0)
            rq.no_cache_control = 1;
        else if (strcasecmp(k, "sec-fetch-mode") == 0 && strcmp(v, "navigate") == 0)
            rq.navigate = 1;
    }
    thaw_assets_resolve(a, &rq, &r);
    if (strcmp(method, "HEAD") == 0 && r.fd >= 0) {
        close(r.fd); /* the head says the size; no body goes back */
        r.fd = -1;
    }
    head = head_json(&r);
    if (r.fd < 0 || r.size == 0) {
        thaw_asset_resp_free(&r);
        thaw_bind_ok(call, head);
        return;
    }
    if (r.size <= SMALL_BODY) {
        char *buf = malloc(r.size);
        if (!buf || read_all(r.fd, buf, r.size) < 0) {
            free(buf);
            json_decref(head);
            thaw_bind_fail(call, "Error", "cannot read the asset for %s", url);
        } else {
            thaw_bind_ok_body(call, head, buf, r.size);
            free(buf);
        }
        thaw_asset_resp_free(&r);
        return;
    }
    s = calloc(1, sizeof(*s));
    if (!s || !(s->buf = malloc(THAW_ASSETS_CHUNK))) {
        free(s);
        json_decref(head);
        thaw_asset_resp_free(&r);
        thaw_bind_fail(call, "Error", "out of memory");
        return;
    }
    s->call = call;
    s->assets = a;
    thaw_assets_ref(a);
    s->fd = r.fd;
    r.fd = -1;
    s->left = r.size;
    thaw_asset_resp_free(&r);
    uv_timer_init(im->loop, &s->timer);
    s->timer.data = s;
    call->data = s;
    call->on_cancel = stream_cancel;
    thaw_bind_begin(call, head);
    stream_pump(&s->timer);
}

static void call_assets(void *impl, struct thaw_bind_call *call)
{
    if (strcmp(call->op, "fetch") == 0) {
        do_fetch(impl, call);
        return;
    }
    thaw_bind_fail(call, "TypeError", "%s has no method %s(); static assets have fetch()",
                   call->binding, call->op);
}

const struct thaw_bind_kind thaw_bind_assets = {
    .name = "assets",
    .open = open_assets,
    .call = call_assets,
    .close = close_assets,
};
