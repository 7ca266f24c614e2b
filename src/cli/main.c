/* thaw: a self-hosted runtime for Python Workers. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "config/limits.h"

#define THAW_VERSION "0.1.0"

const struct thaw_command thaw_commands[] = {
    {"dev", "[DIR] [--port N] [--ip ADDR] [--admin IP:PORT] [--preload PKG,...] [--state DIR] [--no-sandbox] [LIMITS...]",
     "serve the worker in DIR (default .), rebuilding it when its files change",
     thaw_cmd_dev},
    {"serve", "--state DIR [--listen IP:PORT] [--admin IP:PORT] [--domain D] [--no-sandbox] [LIMITS...]",
     "host every worker deployed into DIR, with the admin API (docs/api.md)", thaw_cmd_serve},
    {"deploy", "[DIR] --to URL [--token T]",
     "sync, bundle and upload the worker in DIR to a thaw serve", thaw_cmd_tool},
    {"list", "--to URL", "list the workers of a thaw serve", thaw_cmd_tool},
    {"delete", "NAME --to URL", "delete a worker, its versions and its data", thaw_cmd_tool},
    {"rollback", "NAME [--version N] --to URL",
     "serve an earlier version again (default: the one before)", thaw_cmd_tool},
    {"tail", "NAME --to URL [--format json|pretty]",
     "stream the request log of a worker live", thaw_cmd_tool},
    {"routes", "grant NAME PATTERN... | revoke NAME [PATTERN...] | list [NAME] --to URL",
     "let a worker route more than NAME.DOMAIN, take it back, list grants", thaw_cmd_tool},
    {"sync", "[DIR]", "vendor pyproject.toml's dependencies into DIR/python_modules",
     thaw_cmd_tool},
    {"init", "[DIR] [--template hello|fastapi|django|kv|cron]",
     "write a new worker project that `thaw dev` serves at once", thaw_cmd_tool},
    {"types", "[DIR] [-o OUTDIR]", "write .pyi stubs for the worker's env and `workers`",
     thaw_cmd_tool},
    {"d1", "execute NAME [DIR] (--file FILE | --command SQL) [--json] [--state DIR]",
     "run SQL against the worker's local D1 database NAME (binding or database_name)",
     thaw_cmd_tool},
    {"d1", "migrations create|list|apply NAME [DIR] [--to URL]",
     "D1 migrations as wrangler's: write the next, list or apply the unapplied ones",
     thaw_cmd_tool},
    {"cluster", "haproxy-config --nodes [NAME=]HOST:PORT[/ADMINPORT],... [--front HOST:PORT] [--check-interval MS]",
     "print the HAProxy configuration of a cluster's front (docs/scale-out.md)",
     thaw_cmd_cluster},
    {"doctor", "", "check the sandbox: each layer available, or missing and why",
     thaw_cmd_doctor},
    {"version", "", "print thaw's version", thaw_cmd_version},
    {"help", "", "this text", thaw_cmd_help},
    {NULL, NULL, NULL, NULL},
};

int thaw_cmd_help(int argc, char **argv)
{
    const struct thaw_command *c;

    printf("usage: thaw COMMAND [ARGS]\n\ncommands:\n");
    for (c = thaw_commands; c->name; c++)
        printf("  thaw %s %s\n      %s\n", c->name, c->args, c->help);
    printf("\nlimits (flags of thaw dev; see docs/config.md):\n");
    thaw_limits_usage(stdout);
    return 0;
}

int thaw_cmd_version(int argc, char **argv)
{
    printf("thaw %s\n", THAW_VERSION);
    return 0;
}

const char *thaw_exe_dir(void)
{
    static char dir[PATH_MAX];
    ssize_t n;
    char *slash;

    if (dir[0])
        return dir;
    n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
    if (n <= 0)
        return strcpy(dir, ".");
    dir[n] = '\0';
    slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    return dir;
}

long long thaw_parse_size(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);

    if (end == s || v < 0)
        return -1;
    switch (*end) {
    case '\0': return v;
    case 'k': case 'K': v <<= 10; break;
    case 'm': case 'M': v <<= 20; break;
    case 'g': case 'G': v <<= 30; break;
    default: return -1;
    }
    if (end[1] && !(end[1] == 'B' && !end[2]) && !(end[1] == 'b' && !end[2]))
        return -1;
    return v;
}

int main(int argc, char **argv)
{
    const struct thaw_command *c;

    if (argc < 2) {
        thaw_cmd_help(0, NULL);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
        return thaw_cmd_version(0, NULL);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return thaw_cmd_help(0, NULL);
    for (c = thaw_commands; c->name; c++)
        if (strcmp(c->name, argv[1]) == 0)
            return c->run(argc - 1, argv + 1);
    fprintf(stderr, "thaw: unknown command '%s' (try: thaw help)\n", argv[1]);
    return 2;
}
