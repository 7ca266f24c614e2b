/* Serving asset files to a client. The answer goes through the
 * connection's own exchange callbacks (head, end), as a worker's would, so
 * logging, keep-alive and pipelining work unchanged; the file's bytes are
 * read straight into the connection's output, at most SEND_BUDGET per
 * write the client completes, so a large file streams at the client's
 * pace and is never held in memory. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "assets/assets.h"
#include "bind/assets.h"
#include "ipc/codec.h"
#include "pool/pool-internal.h"
#include "server/conn.h"
#include "server/static.h"
#include "util/log.h"

#define SEND_BUDGET (1u << 20)

struct thaw_static_send {
    int fd;
    uint64_t left;
};

/* The first value of request header `name` (lower case), or NULL. */
static const char *header(struct conn *c, const char *name, char *out, size_t n)
{
    struct thaw_ipc_frame f = {.payload = (const uint8_t *)c->hdrs.data,
                               .len = (uint32_t)c->hdrs.len};
    struct thaw_ipc_fields it;
    const uint8_t *k, *v;
    size_t kn, vn, len = strlen(name);

    thaw_ipc_fields_init(&it, &f);
    while (thaw_ipc_next_field(&it, &k, &kn) == 1 && thaw_ipc_next_field(&it, &v, &vn) == 1) {
        if (kn == len && memcmp(k, name, len) == 0) {
            if (vn >= n)
                vn = n - 1;
            memcpy(out, v, vn);
            out[vn] = '\0';
            return out;
        }
    }
    return NULL;
}

void thaw_static_stop(struct conn *c)
{
    struct thaw_static_send *s = c->static_send;

    if (!s)
        return;
    c->static_send = NULL;
    c->h1.paced = 0;
    close(s->fd);
    free(s);
}

/* Reads up to SEND_BUDGET more of the file into the output; ends the
 * response at the end of the file. */
static void send_more(struct conn *c)
{
    struct thaw_static_send *s = c->static_send;
    size_t budget = SEND_BUDGET;

    while (s->left > 0 && budget > 0) {
        size_t want = s->left < THAW_ASSETS_CHUNK ? (size_t)s->left : THAW_ASSETS_CHUNK;
        ssize_t n;

        if (thaw_buf_reserve(&c->h1.out, want)) {
            thaw_h1_close(&c->h1);
            return;
        }
        n = read(s->fd, c->h1.out.data + c->h1.out.len, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            /* the file shrank under us: content-length promised more, so
             * the client must see a cut response, not a short one */
            thaw_log("assets: %s changed while it was sent; connection cut", c->req_path);
            thaw_h1_close(&c->h1);
            return;
        }
        c->h1.out.len += (size_t)n;
        s->left -= (uint64_t)n;
        budget -= (size_t)n < budget ? (size_t)n : budget;
    }
    thaw_h1_mark(&c->h1);
    if (s->left == 0) {
        thaw_static_stop(c);
        c->ex.ops->on_resp_end(&c->ex);
    }
}

void thaw_static_drained(struct conn *c)
{
    if (c->static_send && !c->h1.closing && c->h1.out.len == 0)
        send_more(c);
}

int thaw_static_try(struct conn *c)
{
    struct thaw_version *v = c->worker ? c->worker->current : NULL;
    struct thaw_assets *a = v ? thaw_bind_assets_of(v->bindings) : NULL;
    char path[4096], inm[1024], mode[32], tmp[8];
    const char *query;
    struct thaw_asset_req rq;
    struct thaw_asset_resp r;
    struct thaw_static_send *s;

    if (!a || (c->h1.parser.method != HTTP_GET && c->h1.parser.method != HTTP_HEAD))
        return 0;
    if (thaw_assets_normalize(c->target, c->target_len, path, sizeof(path), &query) < 0 ||
        thaw_assets_worker_first(a, path))
        return 0;
    memset(&rq, 0, sizeof(rq));
    rq.method = c->h1.is_head ? "HEAD" : "GET";
    rq.target = c->target;
    rq.target_len = c->target_len;
    rq.if_none_match = header(c, "if-none-match", inm, sizeof(inm));
    rq.no_cache_control = header(c, "authorization", tmp, sizeof(tmp)) ||
                          header(c, "range", tmp, sizeof(tmp));
    rq.navigate = header(c, "sec-fetch-mode", mode, sizeof(mode)) &&
                  strcmp(mode, "navigate") == 0;
    if (!thaw_assets_resolve(a, &rq, &r))
        return 0;
    thaw_asset_resp_head(&r);
    c->ex.ops->on_resp_head(&c->ex, r.status, NULL, r.names, r.values, r.n_headers);
    if (r.fd < 0 || c->h1.is_head || r.size == 0) {
        thaw_asset_resp_free(&r);
        c->ex.ops->on_resp_end(&c->ex);
        return 1;
    }
    if (!(s = malloc(sizeof(*s)))) {
        thaw_asset_resp_free(&r);
        thaw_h1_close(&c->h1); /* the head promised a body */
        return 1;
    }
    s->fd = r.fd;
    s->left = r.size;
    r.fd = -1;
    thaw_asset_resp_free(&r);
    c->static_send = s;
    c->h1.paced = 1; /* each part is read when the last one is written */
    send_more(c);
    return 1;
}
