/* Binding a port, the same way for all three servers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/h1.h"

/* A TCP socket bound to sa and listening in the kernel, or -errno. Made
 * here rather than by uv_tcp_bind, which holds EADDRINUSE back until
 * uv_listen: a port that is taken must fail at once, even when accepting
 * starts later. */
static int bound_socket(const struct sockaddr_storage *sa, int backlog)
{
    socklen_t len = sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
    int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP), on = 1, err;

    if (fd < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) ||
        bind(fd, (const struct sockaddr *)sa, len) || listen(fd, backlog)) {
        err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int thaw_h1_listen(uv_tcp_t *l, uv_loop_t *loop, const char *ip, int port, int backlog,
                   uv_connection_cb cb, char *authority, size_t alen)
{
    struct sockaddr_storage sa;
    int v6 = strchr(ip, ':') != NULL, rc, fd;

    rc = v6 ? uv_ip6_addr(ip, port, (struct sockaddr_in6 *)&sa)
            : uv_ip4_addr(ip, port, (struct sockaddr_in *)&sa);
    if (rc)
        return rc;
    if (authority)
        snprintf(authority, alen, v6 ? "[%s]:%d" : "%s:%d", ip, port);
    if ((fd = bound_socket(&sa, backlog)) < 0)
        return fd;
    uv_tcp_init(loop, l);
    if ((rc = uv_tcp_open(l, fd))) {
        close(fd);
        uv_close((uv_handle_t *)l, NULL);
        return rc;
    }
    if (cb && (rc = uv_listen((uv_stream_t *)l, backlog, cb))) {
        uv_close((uv_handle_t *)l, NULL);
        return rc;
    }
    return 0;
}

int thaw_h1_parse_addr(const char *addr, char *host, size_t n, int *port)
{
    const char *colon = strrchr(addr, ':');

    if (!colon || colon == addr || (size_t)(colon - addr) >= n)
        return UV_EINVAL;
    *port = atoi(colon + 1);
    if (*port <= 0 || *port > 65535)
        return UV_EINVAL;
    snprintf(host, n, "%.*s", (int)(colon - addr), addr);
    if (host[0] == '[') {
        size_t k = strlen(host);
        if (k < 2 || host[k - 1] != ']')
            return UV_EINVAL;
        memmove(host, host + 1, k - 2);
        host[k - 2] = '\0';
    }
    return 0;
}

void thaw_h1_peer(uv_tcp_t *t, char *ip, size_t iplen, char *port, size_t portlen)
{
    struct sockaddr_storage sa;
    int len = sizeof(sa);

    if (uv_tcp_getpeername(t, (struct sockaddr *)&sa, &len))
        return;
    if (sa.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&sa, ip, iplen);
        if (port)
            snprintf(port, portlen, "%u", ntohs(((struct sockaddr_in6 *)&sa)->sin6_port));
    } else {
        uv_ip4_name((struct sockaddr_in *)&sa, ip, iplen);
        if (port)
            snprintf(port, portlen, "%u", ntohs(((struct sockaddr_in *)&sa)->sin_port));
    }
}
