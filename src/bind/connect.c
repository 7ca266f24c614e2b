/* TCP sockets: `workers.connect()` and the standard library's socket API
 * inside a worker (python/workers/sockets.py, python/thaw_runtime/netpatch.py).
 * The supervisor makes the connection, so an instance needs no network of
 * its own (the sandbox gives it none): it resolves the name, checks every
 * address against the egress policy (egress.h), connects without blocking
 * the loop and hands the connected socket to the instance with its reply
 * (SCM_RIGHTS). Bytes then flow between the instance and the peer
 * directly; TLS is done in the instance.
 *
 * The kind registers one binding, CONNECT_BINDING, that env does not show.
 * Its ops:
 *   "connect" {"hostname", "port", "family"?: 4|6} -> {"address", "port", "family"} + fd
 *   "resolve" {"hostname"}         -> {"addresses": [[family, "address"], ...]}
 *   "socket"  {"family": 4|6}      -> {"family"} + fd: an unconnected TCP socket
 * "socket" exists for the sandbox: seccomp lets an instance create no inet
 * socket, yet `socket.socket(AF_INET, SOCK_STREAM)` must give worker code
 * a real socket object, whose fd connect() later replaces (dup2) with the
 * connected one. The unconnected socket belongs to the supervisor's
 * network namespace (the host's), so the instance must not use it any
 * other way: seccomp refuses it connect, bind, listen and MSG_FASTOPEN,
 * and Landlock (ABI 4) TCP bind and connect (src/sandbox/seccomp.c).
 * Each reply carries one fd that the supervisor closes once it is sent;
 * the channel holds at most a few dozen unsent ones (ipc/chan.c) and the
 * instance at most its RLIMIT_NOFILE, so a worker that asks in a loop
 * costs the supervisor no descriptors. The instance counts its TCP
 * sockets, connected or not, against thaw.egress.max_connections
 * (python/thaw_runtime/netpatch.py).
 * Failures name their class: TypeError (bad arguments), PermissionError
 * (the egress policy), DNSError (the name does not resolve),
 * ConnectionRefusedError, TimeoutError (thaw.egress.connect_timeout_ms, DNS
 * included) and ConnectionError (anything else). */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bind/bind.h"
#include "bind/egress.h"
#include "bind/kinds.h"

#define CONNECT_BINDING "__connect"
#define MAX_HOSTNAME 253

struct connector {
    uv_loop_t *loop;
    struct thaw_egress_config cfg;
    char *config_file;
};

enum op { OP_CONNECT, OP_RESOLVE };

/* One call. Lives until its call ended, the resolver answered and its
 * handles closed (libuv calls back after uv_close). */
struct job {
    struct connector *cn;
    struct thaw_bind_call *call; /* NULL once ended */
    enum op op;
    char host[MAX_HOSTNAME + 1];
    int port;
    int family; /* AF_UNSPEC, or the one the caller's socket has */
    uv_getaddrinfo_t gai;
    int resolving;
    struct addrinfo *res, *next;
    uv_timer_t timer;
    uv_poll_t *poll; /* the connect in progress */
    int fd;
    int open_handles;
    char refused[1200]; /* the first refusal by the policy */
    char error[300];    /* the last connect error */
    int last_errno;
};

static void try_next(struct job *j);

static void maybe_free(struct job *j)
{
    if (j->call || j->resolving || j->open_handles)
        return;
    if (j->res)
        uv_freeaddrinfo(j->res);
    free(j);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct job *j = h->data;

    if ((void *)h != (void *)&j->timer)
        free(h);
    j->open_handles--;
    maybe_free(j);
}

/* Stops the connect in progress (its fd is closed unless handed out). */
static void stop_attempt(struct job *j)
{
    if (j->poll) {
        uv_poll_stop(j->poll);
        uv_close((uv_handle_t *)j->poll, on_handle_closed);
        j->poll = NULL;
    }
    if (j->fd >= 0) {
        close(j->fd);
        j->fd = -1;
    }
}

/* The call is over (answered by the caller just before): tidy up. */
static void ended(struct job *j)
{
    j->call = NULL;
    stop_attempt(j);
    if (!uv_is_closing((uv_handle_t *)&j->timer)) {
        uv_timer_stop(&j->timer);
        uv_close((uv_handle_t *)&j->timer, on_handle_closed);
    }
    if (j->resolving)
        uv_cancel((uv_req_t *)&j->gai); /* on_resolved still comes */
    maybe_free(j);
}

static void fail(struct job *j, const char *cls, const char *msg)
{
    struct thaw_bind_call *call = j->call;

    if (!call)
        return;
    call->on_cancel = NULL;
    thaw_bind_fail(call, cls, "%s", msg);
    ended(j);
}

static void addr_text(const struct sockaddr *sa, char *buf, size_t n, int *port)
{
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, buf, (socklen_t)n);
        *port = ntohs(a->sin6_port);
    } else {
        const struct sockaddr_in *a = (const void *)sa;
        inet_ntop(AF_INET, &a->sin_addr, buf, (socklen_t)n);
        *port = ntohs(a->sin_port);
    }
}

static void connected(struct job *j, const struct addrinfo *ai)
{
    struct thaw_bind_call *call = j->call;
    char addr[INET6_ADDRSTRLEN];
    int port, fd = j->fd;

    addr_text(ai->ai_addr, addr, sizeof(addr), &port);
    j->fd = -1; /* handed over */
    call->on_cancel = NULL;
    thaw_bind_ok_fd(call, json_pack("{s:s, s:i, s:i}", "address", addr, "port", port,
                                    "family", ai->ai_family == AF_INET6 ? 6 : 4), fd);
    ended(j);
}

static void on_writable(uv_poll_t *p, int status, int events)
{
    struct job *j = p->data;
    int err = 0;
    socklen_t len = sizeof(err);

    /* libuv reports a failed connect (POLLERR) as UV_EBADF: the socket's
     * own error says what happened */
    if (getsockopt(j->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err == 0 && status < 0)
        err = -status;
    if (err == 0) {
        const struct addrinfo *ai = j->next;
        uv_poll_stop(j->poll);
        uv_close((uv_handle_t *)j->poll, on_handle_closed);
        j->poll = NULL;
        connected(j, ai);
        return;
    }
    j->last_errno = err;
    snprintf(j->error, sizeof(j->error), "%s", strerror(err));
    stop_attempt(j);
    j->next = j->next->ai_next;
    try_next(j);
}

/* Connects to j->next, or the next address after it the policy allows. */
static void try_next(struct job *j)
{
    for (; j->next; j->next = j->next->ai_next) {
        struct addrinfo *ai = j->next;
        struct thaw_egress_verdict why;
        char fix[400];

        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        if (!thaw_egress_check_sockaddr(j->cn->cfg.policy, ai->ai_addr, &why)) {
            if (!j->refused[0]) {
                thaw_egress_fix(&why, j->cn->config_file, fix, sizeof(fix));
                if (!strcmp(why.key, "allow_ports"))
                    snprintf(j->refused, sizeof(j->refused),
                             "thaw egress policy refused the connection to %s:%d: port %d "
                             "is closed on every address, %s. Workers may not reach it "
                             "unless the config allows it: %s", j->host, j->port, j->port,
                             why.what, fix);
                else
                    snprintf(j->refused, sizeof(j->refused),
                             "thaw egress policy refused the connection to %s:%d (address "
                             "%s): %s is in %s, %s. Workers may not reach it unless the "
                             "config allows it: %s", j->host, j->port, why.addr, why.addr,
                             why.rule, why.what, fix);
            }
            continue;
        }
        j->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (j->fd < 0) {
            j->last_errno = errno;
            snprintf(j->error, sizeof(j->error), "socket: %s", strerror(errno));
            continue;
        }
        if (connect(j->fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            connected(j, ai);
            return;
        }
        if (errno == EINPROGRESS) {
            j->poll = malloc(sizeof(*j->poll));
            if (j->poll && uv_poll_init(j->cn->loop, j->poll, j->fd) == 0) {
                j->poll->data = j;
                j->open_handles++;
                uv_poll_start(j->poll, UV_WRITABLE, on_writable);
                return;
            }
            free(j->poll);
            j->poll = NULL;
            errno = ENOMEM;
        }
        j->last_errno = errno;
        snprintf(j->error, sizeof(j->error), "%s", strerror(errno));
        close(j->fd);
        j->fd = -1;
    }
    if (j->error[0]) {
        char msg[600];
        snprintf(msg, sizeof(msg), "could not connect to %s:%d: %s", j->host, j->port,
                 j->error);
        fail(j, j->last_errno == ECONNREFUSED ? "ConnectionRefusedError" : "ConnectionError",
             msg);
    } else if (j->refused[0]) {
        fail(j, "PermissionError", j->refused);
    } else {
        char msg[600];
        snprintf(msg, sizeof(msg), "%s has no IPv4 or IPv6 address", j->host);
        fail(j, "DNSError", msg);
    }
}

static void resolved_list(struct job *j)
{
    json_t *list = json_array();
    struct addrinfo *ai;

    for (ai = j->res; ai; ai = ai->ai_next) {
        char addr[INET6_ADDRSTRLEN];
        int port, dup = 0;
        size_t i;
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        addr_text(ai->ai_addr, addr, sizeof(addr), &port);
        for (i = 0; i < json_array_size(list); i++)
            if (!strcmp(json_string_value(json_array_get(json_array_get(list, i), 1)), addr))
                dup = 1;
        if (!dup)
            json_array_append_new(list, json_pack("[is]", ai->ai_family == AF_INET6 ? 6 : 4,
                                                  addr));
    }
    j->call->on_cancel = NULL;
    thaw_bind_ok(j->call, json_pack("{s:o}", "addresses", list));
    ended(j);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct job *j = req->data;

    j->resolving = 0;
    j->res = res;
    if (!j->call) { /* ended meanwhile (timeout, cancel) */
        maybe_free(j);
        return;
    }
    if (status < 0) {
        char msg[600];
        snprintf(msg, sizeof(msg), "could not resolve \"%s\": %s", j->host,
                 uv_strerror(status));
        fail(j, "DNSError", msg);
        return;
    }
    if (j->op == OP_RESOLVE) {
        resolved_list(j);
        return;
    }
    j->next = res;
    try_next(j);
}

static void on_timeout(uv_timer_t *t)
{
    struct job *j = t->data;
    char msg[1000];

    snprintf(msg, sizeof(msg), "%s %s:%d timed out after %lld ms (thaw.egress."
             "connect_timeout_ms, DNS included)%s%s", j->op == OP_RESOLVE ? "resolving" :
             "connecting to", j->host, j->port, j->cn->cfg.connect_timeout_ms,
             j->error[0] ? "; an earlier address failed: " : "", j->error);
    fail(j, "TimeoutError", msg);
}

static void on_cancel(struct thaw_bind_call *call)
{
    struct job *j = call->data;

    call->on_cancel = NULL;
    thaw_bind_fail(call, "Error", "cancelled");
    ended(j);
}

/* Checks the arguments into j; NULL, or a message. */
static const char *parse_args(struct job *j, json_t *args, char *err, size_t errlen)
{
    const char *host = json_string_value(json_object_get(args, "hostname"));
    json_t *port = json_object_get(args, "port");
    json_int_t family;

    if (!host || !*host)
        return "hostname must be a non-empty string";
    if (strlen(host) > MAX_HOSTNAME)
        return snprintf(err, errlen, "hostname \"%.40s...\" is over %d characters", host,
                        MAX_HOSTNAME), err;
    snprintf(j->host, sizeof(j->host), "%s", host);
    if (j->op == OP_RESOLVE)
        return NULL;
    if (!json_is_integer(port) || json_integer_value(port) < 1 ||
        json_integer_value(port) > 65535)
        return "port must be a whole number from 1 to 65535";
    j->port = (int)json_integer_value(port);
    family = json_integer_value(json_object_get(args, "family"));
    j->family = family == 4 ? AF_INET : family == 6 ? AF_INET6 : AF_UNSPEC;
    return NULL;
}

/* "socket": answered at once. */
static void socket_call(struct thaw_bind_call *call)
{
    json_t *family = json_object_get(call->args, "family");
    json_int_t f = json_is_integer(family) ? json_integer_value(family) : 0;
    int fd;

    if (f != 4 && f != 6) {
        thaw_bind_fail(call, "TypeError", "socket: family must be 4 or 6");
        return;
    }
    fd = socket(f == 6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        thaw_bind_fail(call, "OSError", "thaw could not make a TCP socket: %s",
                       strerror(errno));
        return;
    }
    thaw_bind_ok_fd(call, json_pack("{s:I}", "family", f), fd);
}

static void connect_call(void *impl, struct thaw_bind_call *call)
{
    struct connector *cn = impl;
    struct addrinfo hints;
    struct job *j;
    const char *bad;
    char err[400], port[8];
    int rc;

    if (!strcmp(call->op, "socket")) {
        socket_call(call);
        return;
    }
    j = calloc(1, sizeof(*j));
    if (!j) {
        thaw_bind_fail(call, "Error", "out of memory");
        return;
    }
    if (!strcmp(call->op, "connect")) {
        j->op = OP_CONNECT;
    } else if (!strcmp(call->op, "resolve")) {
        j->op = OP_RESOLVE;
    } else {
        free(j);
        thaw_bind_fail(call, "TypeError", "connect has no operation \"%s\"", call->op);
        return;
    }
    if ((bad = parse_args(j, call->args, err, sizeof(err)))) {
        free(j);
        thaw_bind_fail(call, "TypeError", "%s", bad);
        return;
    }
    j->cn = cn;
    j->call = call;
    j->fd = -1;
    call->data = j;
    call->on_cancel = on_cancel;
    uv_timer_init(cn->loop, &j->timer);
    j->timer.data = j;
    j->open_handles = 1;
    uv_timer_start(&j->timer, on_timeout, (uint64_t)cn->cfg.connect_timeout_ms, 0);

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = j->family;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", j->port);
    j->gai.data = j;
    rc = uv_getaddrinfo(cn->loop, &j->gai, on_resolved, j->host, port, &hints);
    if (rc < 0) {
        snprintf(err, sizeof(err), "could not resolve \"%s\": %s", j->host, uv_strerror(rc));
        fail(j, "DNSError", err);
        return;
    }
    j->resolving = 1;
}

static int connect_open(const struct thaw_bind_env *env, struct thaw_bindings *set,
                        char *err, size_t errlen)
{
    struct connector *cn = calloc(1, sizeof(*cn));

    if (!cn) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (thaw_egress_config_load(&cn->cfg, env->config, env->config_file, env->worker_dir,
                                env->policy, err, errlen) < 0) {
        free(cn);
        return -1;
    }
    cn->loop = env->loop;
    cn->config_file = strdup(env->config_file ? env->config_file : "the config");
    if (thaw_bindings_add(set, CONNECT_BINDING, &thaw_bind_connect, cn, err, errlen) < 0) {
        thaw_egress_config_free(&cn->cfg);
        free(cn->config_file);
        free(cn);
        return -1;
    }
    return 0;
}

static void connect_close(void *impl)
{
    struct connector *cn = impl;

    thaw_egress_config_free(&cn->cfg);
    free(cn->config_file);
    free(cn);
}

const struct thaw_bind_kind thaw_bind_connect = {
    .name = "connect",
    .open = connect_open,
    .call = connect_call,
    .close = connect_close,
};
