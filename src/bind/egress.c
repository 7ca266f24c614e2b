#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind/egress.h"

/* A range of addresses. IPv4 ranges are kept in their IPv4-mapped IPv6
 * form (::ffff:a.b.c.d, 96 more bits), so one comparison serves both. */
struct rule {
    uint8_t addr[16];
    int bits;
    int port; /* 0: every port */
    const char *what;
    char text[64];
};

struct thaw_egress {
    struct rule *allow;
    int n_allow, cap_allow;
    unsigned char open_port[65536 / 8]; /* allow_ports, a bitmap */
};

/* Ports refused on every address unless allow_ports opens them. */
static const struct { int port; const char *what; } DENY_PORTS[] = {
    {25, "SMTP relay (refused so that workers cannot send spam straight to mail servers; "
         "submission ports 465 and 587 are open)"},
};
#define N_DENY_PORTS (sizeof(DENY_PORTS) / sizeof(DENY_PORTS[0]))

/* What a worker may not reach unless its config allows it. */
static const struct { const char *cidr, *what; } DENY[] = {
    {"0.0.0.0/8", "\"this network\" (0.0.0.0 reaches the host itself)"},
    {"10.0.0.0/8", "private (RFC 1918)"},
    {"100.64.0.0/10", "shared address space (carrier-grade NAT)"},
    {"127.0.0.0/8", "loopback"},
    {"169.254.0.0/16", "link-local (the cloud metadata service 169.254.169.254 lives here)"},
    {"172.16.0.0/12", "private (RFC 1918)"},
    {"192.0.0.0/24", "IETF protocol assignments (192.0.0.192 is a cloud metadata address)"},
    {"192.168.0.0/16", "private (RFC 1918)"},
    {"198.18.0.0/15", "benchmarking"},
    {"224.0.0.0/4", "multicast"},
    {"240.0.0.0/4", "reserved (255.255.255.255 is broadcast)"},
    {"::/128", "the unspecified address (reaches the host itself)"},
    {"::1/128", "loopback"},
    {"fc00::/7", "unique local (private; fd00:ec2::254 is a cloud metadata address)"},
    {"fe80::/10", "link-local"},
    {"fec0::/10", "site-local (deprecated, private)"},
    {"ff00::/8", "multicast"},
};
#define N_DENY (sizeof(DENY) / sizeof(DENY[0]))

static struct rule deny_rules[N_DENY];
static int deny_ready;

static const uint8_t MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
static const uint8_t NAT64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};

/* "a.b.c.d/n", "x::y/n" or a bare address -> rule. 0, or -1 with err. */
static int parse_cidr(const char *s, struct rule *r, char *err, size_t errlen)
{
    char host[INET6_ADDRSTRLEN + 8];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    int max, v4, i;
    uint8_t mask[16];

    memset(r, 0, sizeof(*r));
    if (n == 0 || n >= sizeof(host)) {
        snprintf(err, errlen, "\"%s\" is not an address range: write it like "
                 "\"127.0.0.0/8\", \"10.1.2.3\" or \"fd00::/8\"", s);
        return -1;
    }
    memcpy(host, s, n);
    host[n] = 0;
    if (inet_pton(AF_INET, host, r->addr + 12) == 1) {
        memcpy(r->addr, MAPPED, 12);
        v4 = 1;
        max = 32;
    } else if (inet_pton(AF_INET6, host, r->addr) == 1) {
        v4 = 0;
        max = 128;
    } else {
        snprintf(err, errlen, "\"%s\" is not an address range: \"%s\" is neither an "
                 "IPv4 nor an IPv6 address (write it like \"127.0.0.0/8\" or \"::1\"; "
                 "hostnames are not accepted)", s, host);
        return -1;
    }
    r->bits = max;
    if (slash) {
        char *end;
        long b = strtol(slash + 1, &end, 10);
        if (slash[1] < '0' || slash[1] > '9' || *end || b < 0 || b > max) {
            snprintf(err, errlen, "\"%s\": the prefix length after / must be a number "
                     "from 0 to %d", s, max);
            return -1;
        }
        r->bits = (int)b;
    }
    if (v4)
        r->bits += 96;
    /* host bits set ("127.0.0.1/8") is usually a typo for a wider or a
     * narrower range: make the writer say which */
    memset(mask, 0, sizeof(mask));
    for (i = 0; i < r->bits; i++)
        mask[i / 8] |= (uint8_t)(0x80 >> (i % 8));
    for (i = 0; i < 16; i++) {
        if (r->addr[i] & ~mask[i]) {
            uint8_t net[16];
            char text[INET6_ADDRSTRLEN];
            int k;
            for (k = 0; k < 16; k++)
                net[k] = r->addr[k] & mask[k];
            if (v4)
                inet_ntop(AF_INET, net + 12, text, sizeof(text));
            else
                inet_ntop(AF_INET6, net, text, sizeof(text));
            snprintf(err, errlen, "\"%s\" has bits set after its /%d prefix: write "
                     "\"%s/%d\" for the whole range, or \"%s\" for one address", s,
                     r->bits - (v4 ? 96 : 0), text, r->bits - (v4 ? 96 : 0), host);
            return -1;
        }
    }
    snprintf(r->text, sizeof(r->text), "%s/%d", host, r->bits - (v4 ? 96 : 0));
    return 0;
}

static void init_deny(void)
{
    char err[256];
    size_t i;

    if (deny_ready)
        return;
    for (i = 0; i < N_DENY; i++) {
        if (parse_cidr(DENY[i].cidr, &deny_rules[i], err, sizeof(err)) < 0)
            abort(); /* the table above is wrong */
        deny_rules[i].what = DENY[i].what;
    }
    deny_ready = 1;
}

struct thaw_egress *thaw_egress_new(void)
{
    init_deny();
    return calloc(1, sizeof(struct thaw_egress));
}

void thaw_egress_free(struct thaw_egress *e)
{
    if (e) {
        free(e->allow);
        free(e);
    }
}

int thaw_egress_allow(struct thaw_egress *e, const char *cidr, char *err, size_t errlen)
{
    struct rule r;

    if (parse_cidr(cidr, &r, err, errlen) < 0)
        return -1;
    if (e->n_allow == e->cap_allow) {
        int cap = e->cap_allow ? e->cap_allow * 2 : 4;
        struct rule *a = realloc(e->allow, (size_t)cap * sizeof(*a));
        if (!a) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        e->allow = a;
        e->cap_allow = cap;
    }
    r.what = "allowed by the config";
    e->allow[e->n_allow++] = r;
    return 0;
}

int thaw_egress_allow_port(struct thaw_egress *e, int port, char *err, size_t errlen)
{
    if (port < 1 || port > 65535) {
        snprintf(err, errlen, "%d is not a TCP port (1 to 65535)", port);
        return -1;
    }
    e->open_port[port / 8] |= (unsigned char)(1 << (port % 8));
    return 0;
}

void thaw_egress_fix(const struct thaw_egress_verdict *why, const char *config_file,
                     char *buf, size_t n)
{
    if (why->key && strcmp(why->key, "allow_ports") == 0)
        snprintf(buf, n, "add %d to `allow_ports` in the [thaw.egress] table of %s "
                 "(\"thaw\": {\"egress\": {\"allow_ports\": [%d]}} in JSON)", why->port,
                 config_file, why->port);
    else
        snprintf(buf, n, "add \"%s\" to `allow` in the [thaw.egress] table of %s "
                 "(\"thaw\": {\"egress\": {\"allow\": [...]}} in JSON)", why->rule,
                 config_file);
}

static int in_rule(const struct rule *r, const uint8_t *a, int port)
{
    int full = r->bits / 8, rest = r->bits % 8;

    if (r->port && r->port != port)
        return 0;
    if (memcmp(r->addr, a, (size_t)full) != 0)
        return 0;
    return rest == 0 || ((r->addr[full] ^ a[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

static const struct rule *match(const struct rule *rules, int n, const uint8_t *a, int port)
{
    int i;

    for (i = 0; i < n; i++)
        if (in_rule(&rules[i], a, port))
            return &rules[i];
    return NULL;
}

/* The IPv4 address an IPv6 one carries, as ::ffff:a.b.c.d; 0 when none. */
static int embedded_v4(const uint8_t *a, uint8_t *out)
{
    memcpy(out, MAPPED, 12);
    if (memcmp(a, NAT64, 12) == 0) {
        memcpy(out + 12, a + 12, 4);
        return 1;
    }
    if (a[0] == 0x20 && a[1] == 0x02) { /* 6to4: 2002:AABB:CCDD::/48 */
        memcpy(out + 12, a + 2, 4);
        return 1;
    }
    return 0;
}

int thaw_egress_check(const struct thaw_egress *e, int family, const void *addr,
                      int port, struct thaw_egress_verdict *why)
{
    uint8_t a[16], inner[16];
    int has_inner = 0;
    const struct rule *deny;

    size_t i;

    memset(why, 0, sizeof(*why));
    why->port = port;
    why->key = "allow";
    if (family == AF_INET) {
        memcpy(a, MAPPED, 12);
        memcpy(a + 12, addr, 4);
        inet_ntop(AF_INET, addr, why->addr, sizeof(why->addr));
    } else if (family == AF_INET6) {
        memcpy(a, addr, 16);
        inet_ntop(AF_INET6, addr, why->addr, sizeof(why->addr));
        has_inner = embedded_v4(a, inner);
    } else {
        snprintf(why->addr, sizeof(why->addr), "(family %d)", family);
        snprintf(why->rule, sizeof(why->rule), "non-IP");
        why->what = "not an Internet address";
        return 0;
    }
    for (i = 0; i < N_DENY_PORTS; i++) {
        if (port == DENY_PORTS[i].port &&
            !(port > 0 && port < 65536 && (e->open_port[port / 8] & (1 << (port % 8))))) {
            snprintf(why->rule, sizeof(why->rule), "port %d", port);
            why->what = DENY_PORTS[i].what;
            why->key = "allow_ports";
            return 0;
        }
    }
    if (match(e->allow, e->n_allow, a, port) ||
        (has_inner && match(e->allow, e->n_allow, inner, port)))
        return 1;
    deny = match(deny_rules, (int)N_DENY, a, port);
    if (!deny && has_inner)
        deny = match(deny_rules, (int)N_DENY, inner, port);
    if (!deny)
        return 1;
    snprintf(why->rule, sizeof(why->rule), "%s", deny->text);
    why->what = deny->what;
    return 0;
}

int thaw_egress_check_sockaddr(const struct thaw_egress *e, const struct sockaddr *sa,
                               struct thaw_egress_verdict *why)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        return thaw_egress_check(e, AF_INET, &in->sin_addr, ntohs(in->sin_port), why);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        return thaw_egress_check(e, AF_INET6, &in6->sin6_addr, ntohs(in6->sin6_port), why);
    }
    return thaw_egress_check(e, sa->sa_family, NULL, 0, why);
}
