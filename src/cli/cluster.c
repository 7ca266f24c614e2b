/* `thaw cluster SUBCOMMAND`: helpers for running thaw on several machines
 * (docs/scale-out.md). Today: haproxy-config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cluster/haproxy.h"

static void usage(void)
{
    fprintf(stderr,
            "usage: thaw cluster haproxy-config --nodes [NAME=]HOST:PORT[/ADMINPORT],...\n"
            "                                   [--front HOST:PORT] [--check-interval MS]\n"
            "                                   [--balance-factor N] [--stats HOST:PORT]\n"
            "prints the HAProxy configuration of a cluster's front (docs/scale-out.md)\n"
            "--nodes           each node's --listen, and its --admin port where /readyz\n"
            "                  answers (default PORT+1); NAME defaults to n1, n2, ...\n"
            "--front           where HAProxy listens (default *:80)\n"
            "--check-interval  health check interval in ms (default 1000)\n"
            "--balance-factor  hash-balance-factor: a node takes at most N%% of the\n"
            "                  average load before its workers spill (default 200)\n"
            "--stats           serve HAProxy's stats page there\n");
}

static int int_arg(const char *flag, const char *v, int lo, int hi, int *out)
{
    char *end;
    long n = strtol(v, &end, 10);

    if (!*v || *end || n < lo || n > hi) {
        fprintf(stderr, "thaw cluster: %s wants a number from %d to %d, got '%s'\n", flag,
                lo, hi, v);
        return -1;
    }
    *out = (int)n;
    return 0;
}

static int haproxy_config(int argc, char **argv)
{
    static struct thaw_haproxy_opts o;
    struct thaw_buf b;
    const char *nodes = NULL;
    char err[512];
    int i;

    thaw_haproxy_defaults(&o);
    for (i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "thaw cluster: %s wants a value\n", a);
            usage();
            return 2;
        }
        if (strcmp(a, "--nodes") == 0) {
            nodes = v;
        } else if (strcmp(a, "--front") == 0 || strcmp(a, "--stats") == 0) {
            char *dst = a[2] == 'f' ? o.front : o.stats;
            if (!strchr(v, ':') || strlen(v) >= sizeof(o.front)) {
                fprintf(stderr, "thaw cluster: %s wants HOST:PORT, got '%s'\n", a, v);
                return 2;
            }
            snprintf(dst, sizeof(o.front), "%s", v);
        } else if (strcmp(a, "--check-interval") == 0) {
            if (int_arg(a, v, 100, 60000, &o.check_ms))
                return 2;
        } else if (strcmp(a, "--balance-factor") == 0) {
            if (int_arg(a, v, 100, 100000, &o.balance_factor))
                return 2;
        } else {
            fprintf(stderr, "thaw cluster: unknown option '%s'\n", a);
            usage();
            return 2;
        }
    }
    if (!nodes) {
        fprintf(stderr, "thaw cluster: haproxy-config needs --nodes\n");
        usage();
        return 2;
    }
    if (thaw_haproxy_parse_nodes(&o, nodes, err, sizeof(err))) {
        fprintf(stderr, "thaw cluster: %s\n", err);
        return 2;
    }
    thaw_buf_init(&b, 1 << 20);
    if (thaw_haproxy_config(&o, &b)) {
        fprintf(stderr, "thaw cluster: out of memory\n");
        return 1;
    }
    fwrite(b.data, 1, b.len, stdout);
    thaw_buf_free(&b);
    return 0;
}

int thaw_cmd_cluster(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "haproxy-config") == 0)
        return haproxy_config(argc - 1, argv + 1);
    usage();
    return 2;
}
