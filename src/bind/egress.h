/* The egress policy: which addresses a worker's outbound connections may
 * reach. Everything is open except the ranges that lead into the host or
 * its network (loopback, private, link-local with the cloud metadata
 * address, CGNAT, multicast, reserved), unless the config allows some of
 * them:
 *
 *     [thaw.egress]
 *     allow = ["127.0.0.0/8", "10.1.0.0/16", "::1"]
 *
 * The check runs on the address a connection is about to use, after DNS
 * resolution, so a hostname that resolves into a denied range is refused
 * too. IPv6 addresses that carry an IPv4 address (::ffff:a.b.c.d,
 * 64:ff9b::a.b.c.d, 2002:aabb:ccdd::) are judged by that IPv4 address.
 *
 * Ports: port 25 (SMTP, where a compromised worker would send spam) is
 * refused on every address unless `allow_ports = [25]` opens it.
 *
 * Used by outbound fetch (bind/fetch.c) and TCP sockets (bind/connect.c). */
#ifndef THAW_BIND_EGRESS_H
#define THAW_BIND_EGRESS_H

#include <jansson.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

struct thaw_egress;

/* Why an address was refused. */
struct thaw_egress_verdict {
    char addr[INET6_ADDRSTRLEN]; /* the address checked, as text */
    int port;
    char rule[64];               /* the range that denied it: "127.0.0.0/8" */
    const char *what;            /* what that range is: "loopback" */
    const char *key;             /* the [thaw.egress] key that would open it:
                                    "allow" (rule is a range) or "allow_ports"
                                    (rule is "port 25") */
};

/* The default policy (the deny list, nothing allowed). NULL: no memory. */
struct thaw_egress *thaw_egress_new(void);
void thaw_egress_free(struct thaw_egress *e);

/* Opens a range: "10.1.0.0/16", "fd00::/8", or one address ("::1").
 * 0, or -1 with a message saying what is wrong with it. */
int thaw_egress_allow(struct thaw_egress *e, const char *cidr, char *err, size_t errlen);

/* Opens a port the policy refuses everywhere (25). 0, or -1 with err. */
int thaw_egress_allow_port(struct thaw_egress *e, int port, char *err, size_t errlen);

/* The sentence that tells a worker's author how to open what why refused:
 * 'add "127.0.0.0/8" to `allow` in the [thaw.egress] table of FILE ...'. */
void thaw_egress_fix(const struct thaw_egress_verdict *why, const char *config_file,
                     char *buf, size_t n);

/* 1 when a connection to addr (a struct in_addr for AF_INET, in6_addr for
 * AF_INET6) on port may be made; 0 when refused (why is filled in).
 * Other families are refused. */
int thaw_egress_check(const struct thaw_egress *e, int family, const void *addr,
                      int port, struct thaw_egress_verdict *why);
/* The same for a socket address (the port is taken from it). */
int thaw_egress_check_sockaddr(const struct thaw_egress *e, const struct sockaddr *sa,
                               struct thaw_egress_verdict *why);

/* ---- the [thaw.egress] config table ------------------------------------ */

struct thaw_egress_config {
    struct thaw_egress *policy;
    long long timeout_ms;         /* a whole request, redirects and body included */
    long long connect_timeout_ms; /* one connection, DNS included */
    long long max_response_bytes; /* one response body */
    char *ca_file;                /* NULL: the system's CA store */
    long long max_connections;    /* TCP sockets one instance may hold open */
};

/* Reads `thaw.egress` of a worker config (absent: the defaults). dir
 * resolves a relative ca_file. 0, or -1 with a message naming the config
 * file, the key and the fix. */
int thaw_egress_config_load(struct thaw_egress_config *c, json_t *config, const char *file,
                            const char *dir, char *err, size_t errlen);
void thaw_egress_config_free(struct thaw_egress_config *c);

#endif
