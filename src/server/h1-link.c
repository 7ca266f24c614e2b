/* A client connection's socket and clock, the same on every port. */
#include <stdio.h>

#include "server/h1.h"

static void on_handle_closed(uv_handle_t *h)
{
    struct thaw_h1_link *l = h->data;

    if (--l->handles > 0)
        return; /* the tcp handle and the timer both close */
    l->on_free(l);
}

int thaw_h1_link_accept(struct thaw_h1_link *l, uv_stream_t *server,
                        struct thaw_h1_link **list, void (*on_free)(struct thaw_h1_link *l))
{
    uv_loop_t *loop = server->loop;

    l->on_free = on_free;
    uv_tcp_init(loop, &l->tcp);
    l->tcp.data = l;
    l->handles = 1;
    if (uv_accept(server, (uv_stream_t *)&l->tcp)) {
        uv_close((uv_handle_t *)&l->tcp, on_handle_closed);
        return -1;
    }
    uv_timer_init(loop, &l->timer);
    l->timer.data = l;
    l->handles = 2;
    thaw_h1_peer(&l->tcp, l->peer_ip, sizeof(l->peer_ip), l->peer_port, sizeof(l->peer_port));
    l->list = list;
    l->next = *list;
    if (*list)
        (*list)->prev = l;
    *list = l;
    return 0;
}

void thaw_h1_link_close(struct thaw_h1_link *l)
{
    if (l->prev)
        l->prev->next = l->next;
    else
        *l->list = l->next;
    if (l->next)
        l->next->prev = l->prev;
    uv_close((uv_handle_t *)&l->timer, on_handle_closed);
    uv_close((uv_handle_t *)&l->tcp, on_handle_closed);
}
