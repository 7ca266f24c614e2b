/* The egress policy: which addresses a worker's outbound connections may
 * reach. Everything is open except the ranges that lead into the host or
 * its network (loopback, private, link-local with the cloud metadata
 * address, CGNAT, multicast, reserved), unless the config allows some of
 * them; `deny` closes more ranges, allowed or not:
 *
 *     [thaw.egress]
 *     allow = ["127.0.0.0/8", "10.1.0.0/16", "::1", "10.2.0.5:6379"]
 *     deny = ["203.0.113.0/24"]
 *
 * A range may end in a port ("10.2.0.5:6379", "[::1]:6379", "[fd00::]/8:443"):
 * it then applies to that port only.
 *
 * The check runs on the address a connection is about to use, after DNS
 * resolution, so a hostname that resolves into a denied range is refused
 * too. IPv6 addresses that carry an IPv4 address (::ffff:a.b.c.d,
 * 64:ff9b::a.b.c.d, 2002:aabb:ccdd::) are judged by that IPv4 address.
 *
 * Ports: port 25 (SMTP, where a compromised worker would send spam) is
 * refused on every address unless `allow_ports = [25]` opens it.
 *
 * thaw serve: the operator's [egress] (its --config) is a policy of the same
 * form, set as the worker policy's `outer`: an address must pass both, so a
 * worker can narrow what the operator allows and never widen it.
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
    char rule[96];               /* the range that denied it: "127.0.0.0/8" */
    const char *what;            /* what that range is: "loopback" */
    const char *key;             /* the [thaw.egress] key that would open it:
                                    "allow" (rule is a range), "allow_ports"
                                    (rule is "port 25") or "deny" (rule is the
                                    entry of `deny` that closed it) */
    const char *operator_file;   /* non-NULL: the operator's policy refused it
                                    (its --config file, "" when none) */
    int within_operator;         /* the worker's policy refused what the
                                    operator's allows: the fix names the one
                                    address and port, the most it may ask */
};

/* The default policy (the deny list, nothing allowed). NULL: no memory. */
struct thaw_egress *thaw_egress_new(void);
void thaw_egress_free(struct thaw_egress *e);

/* Opens a range: "10.1.0.0/16", "fd00::/8", or one address ("::1").
 * 0, or -1 with a message saying what is wrong with it. */
int thaw_egress_allow(struct thaw_egress *e, const char *cidr, char *err, size_t errlen);

/* Closes a range (same forms), whether allowed or not. 0, or -1 with err. */
int thaw_egress_deny(struct thaw_egress *e, const char *cidr, char *err, size_t errlen);

/* Opens a port the policy refuses everywhere (25). 0, or -1 with err. */
int thaw_egress_allow_port(struct thaw_egress *e, int port, char *err, size_t errlen);

/* thaw serve: outer (the operator's policy; takes ownership of it) must
 * allow every connection too; owner is its file, for messages ("" when
 * serve has no --config). 0, or -1 when out of memory (outer not taken). */
int thaw_egress_set_outer(struct thaw_egress *e, struct thaw_egress *outer,
                          const char *owner);

/* 1 when e (and its outer policy) lets the port through on some address:
 * 0 for a port closed everywhere (25 unless allow_ports opened it). */
int thaw_egress_port_allowed(const struct thaw_egress *e, int port);

/* Whether e allows every address of spec (a range as `allow` takes it) on
 * its port, or on every port when it names none: 1, or 0 with what e
 * refuses of it in what ("127.0.0.0/8 (loopback) is not allowed"), -1 when
 * spec does not parse (what says why). Judges e alone, not its outer. */
int thaw_egress_covers(const struct thaw_egress *e, const char *spec, char *what, size_t n);

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
    unsigned set;                 /* which numbers the table set (a bit each) */
};

struct thaw_policy;

/* Reads `thaw.egress` of a worker config (absent: the defaults). dir
 * resolves a relative ca_file. Under thaw serve (policy, tenant) the result
 * is the intersection with the operator's [egress]: its policy must allow
 * every connection too, and its numbers are the ceilings and the defaults
 * of the worker's. 0, or -1 with a message naming the config file, the key
 * and the fix. */
int thaw_egress_config_load(struct thaw_egress_config *c, json_t *config, const char *file,
                            const char *dir, const struct thaw_policy *policy,
                            char *err, size_t errlen);
/* The operator's [egress] alone (the defaults when it has none). 0, or -1
 * with a message naming the operator's file and the key. */
int thaw_egress_operator_load(struct thaw_egress_config *c, const struct thaw_policy *policy,
                              char *err, size_t errlen);
/* thaw serve's deploy check: 0 when the worker's `thaw.egress` (already
 * known to load) asks for nothing outside op, the operator's; else -1 with a
 * message naming file, the key, the value and what the operator's policy
 * (opfile) does not allow. */
int thaw_egress_config_within(const struct thaw_egress_config *op, json_t *config,
                              const char *file, const char *opfile, char *err, size_t errlen);
void thaw_egress_config_free(struct thaw_egress_config *c);

#endif
