#include <stdlib.h>

#include "bind/curlmulti.h"
#include "util/log.h"

#define TICK_MS 5

/* One socket curl asked us to watch. */
struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct thaw_curlm *m;
    struct sock *next, *prev;
};

struct thaw_curlm {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer; /* curl's timeout */
    uv_timer_t ticker;
    struct thaw_curlm_xfer *ticks; /* due at the next tick */
    struct thaw_curlm_xfer *batch; /* being run */
    struct sock *socks;
    int n_xfers;
    int depth;        /* > 0 while curl runs our callbacks */
    int freeing;
    int closing;      /* uv handles still closing */
};

static void maybe_free(struct thaw_curlm *m)
{
    if (m->freeing && m->closing == 0)
        free(m);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct thaw_curlm *m = h->data;

    m->closing--;
    maybe_free(m);
}

static void on_sock_closed(uv_handle_t *h)
{
    struct sock *s = (struct sock *)h;
    struct thaw_curlm *m = s->m;

    free(s);
    m->closing--;
    maybe_free(m);
}

static void sock_close(struct sock *s)
{
    struct thaw_curlm *m = s->m;

    if (s->prev)
        s->prev->next = s->next;
    else
        m->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    m->closing++;
    uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

/* Every finished transfer: out of the multi, then to its owner. */
static void reap(struct thaw_curlm *m)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(m->multi, &left))) {
        struct thaw_curlm_xfer *x = NULL;
        CURLcode rc;

        if (msg->msg != CURLMSG_DONE)
            continue;
        rc = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        thaw_curlm_remove(x);
        x->done(x, rc);
    }
}

static void action(struct thaw_curlm *m, curl_socket_t fd, int flags)
{
    int running;

    m->depth++;
    curl_multi_socket_action(m->multi, fd, flags, &running);
    m->depth--;
    reap(m);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock *s = (struct sock *)h;
    int flags = 0;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    action(s->m, s->fd, flags);
}

static void on_timer(uv_timer_t *t)
{
    action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct thaw_curlm *m = userp;
    struct sock *s = socketp;
    int events = 0;

    if (what == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            curl_multi_assign(m->multi, fd, NULL);
            sock_close(s);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        if (uv_poll_init_socket(m->loop, &s->poll, fd) != 0) {
            thaw_log("fetch: cannot watch socket %d", (int)fd);
            free(s);
            return -1;
        }
        s->fd = fd;
        s->m = m;
        s->next = m->socks;
        if (m->socks)
            m->socks->prev = s;
        m->socks = s;
        curl_multi_assign(m->multi, fd, s);
    }
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

static int on_timeout_change(CURLM *multi, long ms, void *userp)
{
    struct thaw_curlm *m = userp;

    if (ms < 0)
        uv_timer_stop(&m->timer);
    else /* 0 too: curl must not be re-entered from here, so next iteration */
        uv_timer_start(&m->timer, on_timer, (uint64_t)ms, 0);
    return 0;
}

static void on_ticker(uv_timer_t *t)
{
    struct thaw_curlm *m = t->data;
    struct thaw_curlm_xfer *x;

    /* the callbacks may ask again, or remove others of this batch: the
     * batch is a list of m that untick() knows about */
    m->batch = m->ticks;
    m->ticks = NULL;
    for (x = m->batch; x; x = x->tick_next)
        x->ticking = 2;
    while ((x = m->batch)) {
        m->batch = x->tick_next;
        x->tick_next = NULL;
        x->ticking = 0;
        x->tick(x); /* may free x */
    }
    reap(m);
}

struct thaw_curlm *thaw_curlm_new(uv_loop_t *loop)
{
    struct thaw_curlm *m = calloc(1, sizeof(*m));
    static int global_done;

    if (!m)
        return NULL;
    if (!global_done) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        global_done = 1;
    }
    m->loop = loop;
    m->multi = curl_multi_init();
    if (!m->multi) {
        free(m);
        return NULL;
    }
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, on_timeout_change);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
    uv_timer_init(loop, &m->timer);
    uv_timer_init(loop, &m->ticker);
    m->timer.data = m->ticker.data = m;
    return m;
}

void thaw_curlm_free(struct thaw_curlm *m)
{
    if (!m)
        return;
    m->depth++;
    curl_multi_cleanup(m->multi); /* closes its connections */
    m->depth--;
    while (m->socks)
        sock_close(m->socks);
    m->closing += 2;
    uv_close((uv_handle_t *)&m->timer, on_handle_closed);
    uv_close((uv_handle_t *)&m->ticker, on_handle_closed);
    m->freeing = 1;
}

int thaw_curlm_add(struct thaw_curlm *m, struct thaw_curlm_xfer *x)
{
    x->m = m;
    x->ticking = 0;
    x->tick_next = NULL;
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)x);
    if (curl_multi_add_handle(m->multi, x->easy) != CURLM_OK)
        return -1;
    m->n_xfers++;
    return 0;
}

static void untick(struct thaw_curlm_xfer *x)
{
    struct thaw_curlm_xfer **p;

    if (x->ticking) {
        p = x->ticking == 1 ? &x->m->ticks : &x->m->batch;
        for (; *p; p = &(*p)->tick_next) {
            if (*p == x) {
                *p = x->tick_next;
                break;
            }
        }
    }
    x->ticking = 0;
    x->tick_next = NULL;
}

void thaw_curlm_remove(struct thaw_curlm_xfer *x)
{
    struct thaw_curlm *m = x->m;

    if (!m)
        return;
    untick(x);
    curl_multi_remove_handle(m->multi, x->easy);
    m->n_xfers--;
    x->m = NULL;
}

void thaw_curlm_tick_soon(struct thaw_curlm_xfer *x)
{
    struct thaw_curlm *m = x->m;

    if (!m || x->ticking)
        return; /* already due */
    x->ticking = 1;
    x->tick_next = m->ticks;
    m->ticks = x;
    if (!uv_is_active((uv_handle_t *)&m->ticker))
        uv_timer_start(&m->ticker, on_ticker, TICK_MS, 0);
}

void thaw_curlm_resume(struct thaw_curlm_xfer *x)
{
    struct thaw_curlm *m = x->m;

    if (!m)
        return;
    m->depth++;
    curl_easy_pause(x->easy, CURLPAUSE_CONT);
    m->depth--;
}

int thaw_curlm_in_callback(const struct thaw_curlm *m)
{
    return m->depth > 0;
}

int thaw_curlm_count(const struct thaw_curlm *m)
{
    return m->n_xfers;
}
