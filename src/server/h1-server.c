/* A listening port of the HTTP/1 core: accepting clients under the
 * connection cap, the once-per-iteration flush of every connection's
 * output, and shutdown. At the cap a new client takes the place of the
 * oldest connection that is idle or still sending its head, so a flood of
 * idle or trickling clients cannot lock out the next one. */
#include <stdlib.h>

#include "server/h1-conn.h"

long long thaw_h1_max_body(const struct thaw_h1_server *s)
{
    return s->max_body ? s->max_body : s->limits->max_body;
}

/* At the cap: the oldest connection waiting between requests or reading
 * a head goes; one whose request is in progress, or whose last answer is
 * still being written, never does. */
static int make_room(struct thaw_h1_server *s)
{
    struct thaw_h1_link *l;
    struct thaw_h1_conn *victim = NULL;

    if (!s->max_conns || s->n_conns < s->max_conns)
        return 0;
    for (l = s->conns; l; l = l->next) {
        struct thaw_h1_conn *c = (struct thaw_h1_conn *)l;
        if ((c->phase == THAW_H1_IDLE || c->phase == THAW_H1_HEAD) && !thaw_h1_queued(c))
            victim = c;
    }
    if (!victim)
        return -1;
    thaw_h1_close(victim);
    return 0;
}

/* A connection refused at the cap has only its handles to let go of. */
static void free_refused(struct thaw_h1_link *l)
{
    free(l);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct thaw_h1_server *s = server->data;
    struct thaw_h1_conn *c;
    int room;

    if (status < 0 || !(c = calloc(1, s->conn_size)))
        return;
    room = make_room(s) == 0;
    c->srv = s;
    if (thaw_h1_link_accept(&c->link, server, &s->conns, room ? thaw__h1_free : free_refused))
        return;
    if (!room) {
        thaw_h1_link_close(&c->link); /* every connection is busy: refused */
        return;
    }
    thaw__h1_open(c);
}

static void on_prepare(uv_prepare_t *h)
{
    thaw__h1_flush_all(h->data);
}

int thaw_h1_server_bind(struct thaw_h1_server *s, uv_loop_t *loop, const char *ip, int port,
                        int backlog, char *authority, size_t alen)
{
    int rc;

    s->loop = loop;
    if ((rc = thaw_h1_listen(&s->listener, loop, ip, port, backlog, NULL, authority, alen)))
        return rc;
    s->listener.data = s;
    s->listening = 1;
    s->backlog = backlog;
    uv_prepare_init(loop, &s->flusher);
    s->flusher.data = s;
    uv_prepare_start(&s->flusher, on_prepare);
    return 0;
}

int thaw_h1_server_accept(struct thaw_h1_server *s)
{
    int rc;

    if (!s->listening || s->accepting)
        return 0;
    if ((rc = uv_listen((uv_stream_t *)&s->listener, s->backlog, on_connection)))
        return rc;
    s->accepting = 1;
    return 0;
}

int thaw_h1_server_listen(struct thaw_h1_server *s, uv_loop_t *loop, const char *ip,
                          int port, int backlog, char *authority, size_t alen)
{
    int rc = thaw_h1_server_bind(s, loop, ip, port, backlog, authority, alen);

    if (!rc && (rc = thaw_h1_server_accept(s)))
        thaw_h1_server_close(s);
    return rc;
}

int thaw_h1_server_listen_addr(struct thaw_h1_server *s, uv_loop_t *loop, const char *addr)
{
    char host[128];
    int port, rc;

    if ((rc = thaw_h1_parse_addr(addr, host, sizeof(host), &port)))
        return rc;
    return thaw_h1_server_listen(s, loop, host, port, 128, NULL, 0);
}

void thaw_h1_server_close(struct thaw_h1_server *s)
{
    if (s->listening) {
        uv_close((uv_handle_t *)&s->listener, NULL);
        uv_prepare_stop(&s->flusher);
        uv_close((uv_handle_t *)&s->flusher, NULL);
        s->listening = 0;
        s->accepting = 0;
    }
    while (s->conns)
        thaw_h1_close((struct thaw_h1_conn *)s->conns);
}
