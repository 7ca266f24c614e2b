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
    char text[96];  /* as written back: "10.0.0.0/8", "10.0.0.0/8:443" */
    char range[96]; /* without the port */
};

struct rules {
    struct rule *r;
    int n, cap;
};

struct thaw_egress {
    struct rules allow;                 /* opened out of DENY */
    struct rules deny;                  /* closed, allowed or not */
    unsigned char open_port[65536 / 8]; /* allow_ports, a bitmap */
    /* thaw serve: the operator's policy, which must allow an address too
     * (owned); owner names its file for messages, "" when serve has none */
    struct thaw_egress *outer;
    char *owner;
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

/* The ":PORT" that ends a range ("10.0.0.0/8:443", "[::1]:6379"), split
 * off into *port; s without it goes to out. 0, or -1 with err. */
static int split_port(const char *s, char *out, size_t outlen, int *port, char *err,
                      size_t errlen)
{
    const char *colon = strrchr(s, ':'), *close = strchr(s, ']');
    size_t n = strlen(s);

    *port = 0;
    if (s[0] == '[') { /* [v6]/n:port or [v6]:port */
        if (!close || !colon || colon < close) {
            snprintf(err, errlen, "\"%s\": an IPv6 range in brackets must end in a port, "
                     "like \"[::1]:6379\" or \"[fd00::]/8:443\"", s);
            return -1;
        }
        n = (size_t)(colon - s);
    } else if (colon && strchr(s, ':') == colon) { /* one colon: IPv4 with a port */
        n = (size_t)(colon - s);
    } else {
        colon = NULL;
    }
    if (colon) {
        char *end;
        long p = strtol(colon + 1, &end, 10);
        if (colon[1] < '0' || colon[1] > '9' || *end || p < 1 || p > 65535) {
            snprintf(err, errlen, "\"%s\": the port after the last ':' must be a number "
                     "from 1 to 65535", s);
            return -1;
        }
        *port = (int)p;
    }
    if (n >= outlen) {
        snprintf(err, errlen, "\"%s\" is not an address range: write it like "
                 "\"127.0.0.0/8\", \"10.1.2.3\" or \"fd00::/8\"", s);
        return -1;
    }
    if (s[0] == '[') { /* drop the brackets: "[::1]/64" -> "::1/64" */
        size_t in = (size_t)(close - s);
        memcpy(out, s + 1, in - 1);
        memcpy(out + in - 1, close + 1, n - in - 1);
        out[n - 2] = 0;
    } else {
        memcpy(out, s, n);
        out[n] = 0;
    }
    return 0;
}

/* "a.b.c.d/n", "x::y/n" or a bare address, each optionally with a port
 * ("10.0.0.0/8:443", "[::1]:6379") -> rule. 0, or -1 with err. */
static int parse_rule(const char *spec, struct rule *r, char *err, size_t errlen)
{
    char s[INET6_ADDRSTRLEN + 16], host[INET6_ADDRSTRLEN + 8];
    const char *slash;
    size_t n;
    int max, v4, i, port;
    uint8_t mask[16];

    memset(r, 0, sizeof(*r));
    if (split_port(spec, s, sizeof(s), &port, err, errlen) < 0)
        return -1;
    slash = strchr(s, '/');
    n = slash ? (size_t)(slash - s) : strlen(s);
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
    r->port = port;
    snprintf(r->range, sizeof(r->range), "%s/%d", host, r->bits - (v4 ? 96 : 0));
    if (!port)
        snprintf(r->text, sizeof(r->text), "%s/%d", host, r->bits - (v4 ? 96 : 0));
    else
        snprintf(r->text, sizeof(r->text), v4 ? "%s/%d:%d" : "[%s]/%d:%d", host,
                 r->bits - (v4 ? 96 : 0), port);
    return 0;
}

static void init_deny(void)
{
    char err[256];
    size_t i;

    if (deny_ready)
        return;
    for (i = 0; i < N_DENY; i++) {
        if (parse_rule(DENY[i].cidr, &deny_rules[i], err, sizeof(err)) < 0)
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
        free(e->allow.r);
        free(e->deny.r);
        thaw_egress_free(e->outer);
        free(e->owner);
        free(e);
    }
}

static int rules_add(struct rules *rs, const char *spec, const char *what, char *err,
                     size_t errlen)
{
    struct rule r;

    if (parse_rule(spec, &r, err, errlen) < 0)
        return -1;
    if (rs->n == rs->cap) {
        int cap = rs->cap ? rs->cap * 2 : 4;
        struct rule *a = realloc(rs->r, (size_t)cap * sizeof(*a));
        if (!a) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        rs->r = a;
        rs->cap = cap;
    }
    r.what = what;
    rs->r[rs->n++] = r;
    return 0;
}

int thaw_egress_allow(struct thaw_egress *e, const char *cidr, char *err, size_t errlen)
{
    return rules_add(&e->allow, cidr, "allowed by the config", err, errlen);
}

int thaw_egress_deny(struct thaw_egress *e, const char *cidr, char *err, size_t errlen)
{
    return rules_add(&e->deny, cidr, "denied by the config's `deny`", err, errlen);
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

int thaw_egress_set_outer(struct thaw_egress *e, struct thaw_egress *outer, const char *owner)
{
    char *o = strdup(owner ? owner : "");

    if (!o)
        return -1;
    thaw_egress_free(e->outer);
    free(e->owner);
    e->outer = outer;
    e->owner = o;
    return 0;
}

void thaw_egress_fix(const struct thaw_egress_verdict *why, const char *config_file,
                     char *buf, size_t n)
{
    if (why->operator_file && why->operator_file[0])
        snprintf(buf, n, "only the operator of this server can open it, in the [egress] "
                 "table of %s (thaw serve --config); a worker's [thaw.egress] can only "
                 "narrow that policy", why->operator_file);
    else if (why->operator_file)
        snprintf(buf, n, "only the operator of this server can open it, in the [egress] "
                 "table of an operator config (thaw serve --config FILE); a worker's "
                 "[thaw.egress] can only narrow that policy");
    else if (why->key && strcmp(why->key, "allow_ports") == 0)
        snprintf(buf, n, "add %d to `allow_ports` in the [thaw.egress] table of %s "
                 "(\"thaw\": {\"egress\": {\"allow_ports\": [%d]}} in JSON)", why->port,
                 config_file, why->port);
    else if (why->within_operator && strcmp(why->key, "allow") == 0)
        snprintf(buf, n, strchr(why->addr, ':') ?
                 "add \"[%s]:%d\" to `allow` in the [thaw.egress] table of %s (this "
                 "server's operator allows it)" :
                 "add \"%s:%d\" to `allow` in the [thaw.egress] table of %s (this "
                 "server's operator allows it)", why->addr, why->port, config_file);
    else if (why->key && strcmp(why->key, "deny") == 0)
        snprintf(buf, n, "remove \"%s\" from `deny` in the [thaw.egress] table of %s",
                 why->rule, config_file);
    else
        snprintf(buf, n, "add \"%s\" to `allow` in the [thaw.egress] table of %s "
                 "(\"thaw\": {\"egress\": {\"allow\": [...]}} in JSON)", why->rule,
                 config_file);
}

static int in_range(const struct rule *r, const uint8_t *a)
{
    int full = r->bits / 8, rest = r->bits % 8;

    if (memcmp(r->addr, a, (size_t)full) != 0)
        return 0;
    return rest == 0 || ((r->addr[full] ^ a[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

static int in_rule(const struct rule *r, const uint8_t *a, int port)
{
    return (!r->port || r->port == port) && in_range(r, a);
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

static int port_open(const struct thaw_egress *e, int port)
{
    size_t i;

    for (i = 0; i < N_DENY_PORTS; i++)
        if (port == DENY_PORTS[i].port &&
            !(port > 0 && port < 65536 && (e->open_port[port / 8] & (1 << (port % 8)))))
            return 0;
    return 1;
}

int thaw_egress_port_allowed(const struct thaw_egress *e, int port)
{
    return port_open(e, port) && (!e->outer || port_open(e->outer, port));
}

static const char *deny_port_what(int port)
{
    size_t i;

    for (i = 0; i < N_DENY_PORTS; i++)
        if (port == DENY_PORTS[i].port)
            return DENY_PORTS[i].what;
    return "closed";
}

/* One policy's verdict on a[16] (the IPv4-mapped form for IPv4). */
static int check_one(const struct thaw_egress *e, const uint8_t *a, int has_inner,
                     const uint8_t *inner, int port, struct thaw_egress_verdict *why)
{
    const struct rule *r;

    if (!port_open(e, port)) {
        snprintf(why->rule, sizeof(why->rule), "port %d", port);
        why->what = deny_port_what(port);
        why->key = "allow_ports";
        return 0;
    }
    r = match(e->deny.r, e->deny.n, a, port);
    if (!r && has_inner)
        r = match(e->deny.r, e->deny.n, inner, port);
    if (r) {
        snprintf(why->rule, sizeof(why->rule), "%s", r->text);
        why->what = r->what;
        why->key = "deny";
        return 0;
    }
    if (match(e->allow.r, e->allow.n, a, port) ||
        (has_inner && match(e->allow.r, e->allow.n, inner, port)))
        return 1;
    r = match(deny_rules, (int)N_DENY, a, port);
    if (!r && has_inner)
        r = match(deny_rules, (int)N_DENY, inner, port);
    if (!r)
        return 1;
    snprintf(why->rule, sizeof(why->rule), "%s", r->text);
    why->what = r->what;
    why->key = "allow";
    return 0;
}

int thaw_egress_check(const struct thaw_egress *e, int family, const void *addr,
                      int port, struct thaw_egress_verdict *why)
{
    uint8_t a[16], inner[16];
    int has_inner = 0;

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
    /* the operator's policy first: when it refuses, no worker setting
     * could open the address, and the message must say so */
    if (e->outer && !check_one(e->outer, a, has_inner, inner, port, why)) {
        why->operator_file = e->owner ? e->owner : "";
        return 0;
    }
    if (check_one(e, a, has_inner, inner, port, why))
        return 1;
    why->within_operator = e->outer != NULL;
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

/* ---- one policy inside another (thaw serve's deploy check) ------------- */

/* a holds every address of b (CIDR ranges either nest or are apart) */
static int contains(const struct rule *a, const struct rule *b)
{
    return a->bits <= b->bits && in_range(a, b->addr);
}

static int overlaps(const struct rule *a, const struct rule *b)
{
    return contains(a, b) || contains(b, a);
}

int thaw_egress_covers(const struct thaw_egress *e, const char *spec, char *what, size_t n)
{
    struct rule r;
    int i, k;

    if (parse_rule(spec, &r, what, n) < 0)
        return -1;
    for (i = 0; i < e->deny.n; i++) {
        const struct rule *d = &e->deny.r[i];
        if ((!d->port || !r.port || d->port == r.port) && overlaps(&r, d)) {
            snprintf(what, n, "%s is denied by the operator's `deny`", d->text);
            return 0;
        }
    }
    /* outside the default deny list everything is open already; inside
     * it, the part of the range that meets each denied range must lie
     * within one range the operator allows, on the same port */
    for (i = 0; i < (int)N_DENY; i++) {
        const struct rule *d = &deny_rules[i];
        const struct rule *part = contains(d, &r) ? &r : d;
        if (!overlaps(&r, d))
            continue;
        for (k = 0; k < e->allow.n; k++) {
            const struct rule *a = &e->allow.r[k];
            if ((!a->port || a->port == r.port) && contains(a, part))
                break;
        }
        if (k == e->allow.n) {
            if (r.port)
                snprintf(what, n, "%s on port %d (%s) is not allowed", part->range, r.port,
                         d->what);
            else
                snprintf(what, n, "%s (%s) is not allowed (on every port)", part->range,
                         d->what);
            return 0;
        }
    }
    return 1;
}
