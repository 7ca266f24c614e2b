/* The HAProxy configuration of a cluster's front (haproxy.h). Every line
 * it writes is explained in docs/scale-out.md; the comments in the output
 * say why in a few words, for the operator reading the file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/haproxy.h"

void thaw_haproxy_defaults(struct thaw_haproxy_opts *o)
{
    snprintf(o->front, sizeof(o->front), "*:80");
    o->check_ms = 1000;
    o->balance_factor = 200;
    o->stats[0] = '\0';
}

static int port_of(const char *s, size_t n)
{
    char buf[8], *end;
    long v;

    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    v = strtol(buf, &end, 10);
    return *end || v < 1 || v > 65535 ? -1 : (int)v;
}

static int name_ok(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > 63)
        return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
            return 0;
    return 1;
}

static int parse_one(struct thaw_haproxy_node *nd, const char *s, size_t n, int idx,
                     char *err, size_t errlen)
{
    const char *eq = memchr(s, '=', n), *slash, *colon, *hs;
    size_t rest;

    if (eq) {
        if (!name_ok(s, (size_t)(eq - s)))
            goto bad;
        snprintf(nd->name, sizeof(nd->name), "%.*s", (int)(eq - s), s);
        hs = eq + 1;
    } else {
        snprintf(nd->name, sizeof(nd->name), "n%d", idx + 1);
        hs = s;
    }
    rest = n - (size_t)(hs - s);
    slash = memchr(hs, '/', rest);
    /* the last ':' before the slash: HOST may be [v6] */
    colon = NULL;
    for (const char *p = hs; p < (slash ? slash : hs + rest); p++)
        if (*p == ':')
            colon = p;
    if (!colon || colon == hs || (size_t)(colon - hs) >= sizeof(nd->host))
        goto bad;
    snprintf(nd->host, sizeof(nd->host), "%.*s", (int)(colon - hs), hs);
    nd->port = port_of(colon + 1, (size_t)((slash ? slash : hs + rest) - colon - 1));
    if (nd->port < 0)
        goto bad;
    nd->admin_port = slash ? port_of(slash + 1, (size_t)(hs + rest - slash - 1))
                           : (nd->port < 65535 ? nd->port + 1 : -1);
    if (nd->admin_port < 0)
        goto bad;
    return 0;
bad:
    snprintf(err, errlen, "--nodes item %d \"%.*s\": want [NAME=]HOST:PORT[/ADMINPORT], "
             "like n1=10.0.0.1:8787/8788 (PORT is the node's --listen, ADMINPORT its "
             "--admin, where /readyz answers; default PORT+1)", idx + 1, (int)n, s);
    return -1;
}

int thaw_haproxy_parse_nodes(struct thaw_haproxy_opts *o, const char *list, char *err,
                             size_t errlen)
{
    const char *p = list;
    int i, j;

    o->n = 0;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (o->n == THAW_HAPROXY_MAX_NODES) {
            snprintf(err, errlen, "--nodes: at most %d nodes", THAW_HAPROXY_MAX_NODES);
            return -1;
        }
        if (parse_one(&o->nodes[o->n], p, n, o->n, err, errlen) < 0)
            return -1;
        o->n++;
        p += n + (comma ? 1 : 0);
    }
    if (o->n == 0) {
        snprintf(err, errlen, "--nodes: name at least one node, like "
                 "--nodes 10.0.0.1:8787,10.0.0.2:8787");
        return -1;
    }
    for (i = 0; i < o->n; i++)
        for (j = 0; j < i; j++)
            if (strcmp(o->nodes[i].name, o->nodes[j].name) == 0) {
                snprintf(err, errlen, "--nodes: two nodes are named %s; each needs its "
                         "own name", o->nodes[i].name);
                return -1;
            }
    return 0;
}

int thaw_haproxy_config(const struct thaw_haproxy_opts *o, struct thaw_buf *b)
{
    int i, rc = 0;

    rc |= thaw_buf_printf(b,
        "# The front of a thaw cluster, written by `thaw cluster haproxy-config`.\n"
        "# docs/scale-out.md explains every line. HAProxy 2.6 or later.\n"
        "global\n"
        "    # maxconn: left to HAProxy, which derives it from the fd limit (ulimit -n)\n"
        "    log stderr format short local0 notice\n"
        "\n"
        "defaults\n"
        "    mode http\n"
        "    # one connection to a node carries many requests\n"
        "    option http-keep-alive\n"
        "    http-reuse safe\n"
        "    timeout connect 1s\n"
        "    timeout client 60s\n"
        "    timeout server 120s\n"
        "    timeout http-request 10s\n"
        "    timeout http-keep-alive 10s\n"
        "    timeout queue 5s\n"
        "    timeout check 2s\n"
        "    # a request that never reached a worker is tried again on another node:\n"
        "    # the connection failed, or the node closed it without a byte of answer\n"
        "    # (it died); never after a status, never for a timeout\n"
        "    retries 3\n"
        "    option redispatch 1\n"
        "    retry-on conn-failure empty-response\n"
        "\n"
        "frontend thaw_front\n"
        "    bind %s\n"
        "    default_backend thaw_nodes\n"
        "\n"
        "backend thaw_nodes\n"
        "    # each worker (Host) to the node that holds it warm; consistent hashing\n"
        "    # moves only a dead node's workers, and bounded load spills a hot one\n"
        "    balance hdr(host)\n"
        "    hash-type consistent\n"
        "    hash-balance-factor %d\n"
        "    # only GET and HEAD are sent again after the node may have seen them\n"
        "    http-request disable-l7-retry unless METH_GET || METH_HEAD\n"
        "    # a node takes requests once it has every worker built\n"
        "    option httpchk\n"
        "    http-check send meth GET uri /readyz\n"
        "    http-check expect status 200\n"
        "    default-server check inter %d fall 2 rise 2\n",
        o->front, o->balance_factor, o->check_ms);
    for (i = 0; i < o->n; i++)
        rc |= thaw_buf_printf(b, "    server %s %s:%d port %d\n", o->nodes[i].name,
                              o->nodes[i].host, o->nodes[i].port, o->nodes[i].admin_port);
    if (o->stats[0])
        rc |= thaw_buf_printf(b,
            "\n"
            "# HAProxy's own page: which nodes are up (add ;csv for a machine)\n"
            "frontend thaw_stats\n"
            "    bind %s\n"
            "    stats enable\n"
            "    stats uri /\n"
            "    stats refresh 5s\n", o->stats);
    return rc ? -1 : 0;
}
