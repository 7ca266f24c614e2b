#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/limits.h"

#define L(field) offsetof(struct thaw_limits, field)
#define MB (1024LL * 1024)

static const char *const ISOLATION[] = {"shared", "per-worker", NULL};
static const char *const OFF_ON[] = {"off", "on", NULL};
#define CHOICES(s) ((s)->offset == L(access_log) ? OFF_ON : ISOLATION)

const struct thaw_limit_spec thaw_limit_specs[] = {
    {"--max-body-size", "thaw", "max_body_size", L(max_body), THAW_LIM_SIZE,
     100 * MB, 1, 64LL * 1024 * MB, "request body bytes (413 over it); like Cloudflare's 100 MB",
     100 * MB, THAW_LIM_SERVER},
    {"--max-header-size", "thaw", "max_header_size", L(max_header), THAW_LIM_SIZE,
     64 * 1024, 1024, 1 * MB, "request line and header bytes (431 over it)",
     64 * 1024, THAW_LIM_SERVER},
    {"--max-instances", "thaw", "max_instances", L(max_instances), THAW_LIM_COUNT,
     8, 1, 10000, "instances per worker version",
     8, 0},
    {"--concurrency", "thaw", "concurrency", L(concurrency), THAW_LIM_COUNT,
     32, 1, 100000, "requests in flight on one instance's event loop",
     32, 0},
    {"--requests-per-instance", "thaw", "requests_per_instance", L(requests_per_instance),
     THAW_LIM_COUNT, 0, 0, 1LL << 40, "recycle an instance after N requests (0: never)",
     0, THAW_LIM_ZERO_NEVER},
    {"--prefork", "thaw", "prefork", L(prefork), THAW_LIM_COUNT,
     1, 0, 64, "spare instances forked ahead of demand while the worker has traffic",
     1, 0},
    {"--max-queue", "thaw", "max_queue", L(max_queue), THAW_LIM_COUNT,
     1024, 0, 1000000, "requests waiting for an instance (503 beyond)",
     1024, 0},
    {"--queue-timeout", "thaw", "queue_timeout_ms", L(queue_timeout_ms), THAW_LIM_MS,
     10000, 1, 3600000, "how long a request may wait for an instance (503 after)",
     10000, 0},
    {"--idle-timeout", "thaw", "idle_timeout_ms", L(idle_timeout_ms), THAW_LIM_MS,
     60000, 1, 86400000, "an instance with nothing to do exits after this (scale to zero)",
     60000, 0},
    {"--cpu-ms", "limits", "cpu_ms", L(cpu_ms), THAW_LIM_MS,
     30000, 1, 3600000, "CPU time one request may use (503, instance replaced); Cloudflare's limits.cpu_ms",
     300000, 0},
    {"--memory", "thaw", "memory_mb", L(memory_mb), THAW_LIM_COUNT,
     128, 16, 1 << 20, "private memory of an instance in MB (killed over it, 503); like Workers' 128 MB",
     128, 0},
    {"--request-timeout", "thaw", "request_timeout_ms", L(request_timeout_ms), THAW_LIM_MS,
     300000, 1, 86400000, "wall-clock time to a complete response (504 after)",
     300000, 0},
    {"--header-timeout", "thaw", "header_timeout_ms", L(header_timeout_ms), THAW_LIM_MS,
     30000, 1, 3600000, "time a client has to send a request's line and headers (408 after)",
     30000, THAW_LIM_SERVER},
    {"--body-timeout", "thaw", "body_timeout_ms", L(body_timeout_ms), THAW_LIM_MS,
     30000, 1, 3600000, "longest gap between a request body's bytes (408 after); the body is "
     "read whole before the request takes an instance",
     30000, THAW_LIM_SERVER},
    {"--body-min-rate", "thaw", "body_min_rate", L(body_min_rate), THAW_LIM_SIZE,
     1024, 0, 1 * MB, "bytes per second a request body must average after its first 5 s "
     "(408 under it; 0: no minimum)",
     1024, THAW_LIM_SERVER},
    {"--keepalive-timeout", "thaw", "keepalive_timeout_ms", L(keepalive_timeout_ms),
     THAW_LIM_MS, 60000, 1, 3600000, "an idle keep-alive client connection is closed after this",
     60000, THAW_LIM_SERVER},
    {"--template-idle-timeout", "thaw", "template_idle_timeout_ms",
     L(template_idle_timeout_ms), THAW_LIM_MS, 0, 0, 7LL * 86400000,
     "a worker without traffic for this long loses its template; its next request rebuilds "
     "it (0: never)",
     0, THAW_LIM_ZERO_NEVER},
    {"--isolation", "thaw", "isolation", L(isolation), THAW_LIM_CHOICE, THAW_ISOLATION_SHARED,
     0, 1, "shared: workers fork from one zygote; per-worker: a zygote each (docs/security.md)",
     THAW_ISOLATION_PER_WORKER, 0}, /* more isolation for itself: a tenant may ask */
    {"--tmp-size", "thaw", "tmp_size", L(tmp_size), THAW_LIM_SIZE,
     64 * MB, 1 * MB, 64LL * 1024 * MB, "private /tmp of a worker version (sandbox; ENOSPC over it)",
     64 * MB, 0},
    {"--max-processes", "thaw", "max_processes", L(max_processes), THAW_LIM_COUNT,
     256, 16, 1000000, "processes and threads of a worker version (sandbox)",
     256, 0},
    {"--max-open-files", "thaw", "max_open_files", L(max_open_files), THAW_LIM_COUNT,
     1024, 64, 1048576, "open files of one instance (sandbox; EMFILE over it)",
     1024, 0},
    {"--cpu-percent", "thaw", "cpu_percent", L(cpu_percent), THAW_LIM_COUNT,
     100, 1, 100000, "CPU of a worker version, all its processes together, in % of one "
     "CPU (sandbox as root: a cgroup quota; its processes are throttled over it)",
     100, 0},
    /* the server's own: one sink (thaw's stderr) for every worker; under
     * thaw serve only its command line sets it */
    {"--access-log", "thaw", "access_log", L(access_log), THAW_LIM_CHOICE, 1, 0, 1,
     "one JSON line per request on thaw's log (\"on\" or \"off\"; config: also true/false)",
     1, THAW_LIM_SERVER},
    /* an operator's ceiling like the others: a top level that never ends
     * must not hold a deploy (or thaw serve's start) forever */
    {"--build-timeout", "thaw", "build_timeout_ms", L(build_timeout_ms), THAW_LIM_MS,
     30000, 1, 3600000, "wall-clock time a worker's top level may run in a build (refused "
     "after; its CPU time is held to cpu_ms too)",
     30000, 0},
    /* Cloudflare's limit is 1 MiB (32 MiB with increase_websocket_message_size);
     * a message travels to the instance in one frame, so 1 MiB is also the most */
    {"--ws-max-message", "thaw", "ws_max_message", L(ws_max_message), THAW_LIM_SIZE,
     1 * MB, 125, 1 * MB, "bytes of one WebSocket message from a client (the socket "
     "closes with 1009 over it)",
     1 * MB, 0},
    /* an open socket holds an instance slot: an operator may want them to
     * end when nothing moves (pings from the client count) */
    {"--ws-idle-timeout", "thaw", "ws_idle_timeout_ms", L(ws_idle_timeout_ms), THAW_LIM_MS,
     0, 0, 86400000, "a WebSocket with no message or ping either way for this long is cut "
     "(0: never)",
     0, THAW_LIM_ZERO_NEVER},
    /* Cloudflare evicts an idle object after 70-140 s; its instance's own
     * idle_timeout_ms may take it sooner (src/do/live.h) */
    {"--do-idle-timeout", "thaw", "durable_object_idle_timeout_ms", L(do_idle_timeout_ms),
     THAW_LIM_MS, 70000, 100, 86400000, "a Durable Object with no event for this long leaves "
     "its host's memory (its storage stays; its next event makes it again)",
     140000, 0},
    /* Cloudflare's: 32,768 WebSockets per object; the supervisor holds
     * each one's connection and a small record (src/do/ws.c) */
    {"--do-max-websockets", "thaw", "do_max_websockets", L(do_max_websockets), THAW_LIM_COUNT,
     32768, 1, 1000000, "WebSockets one Durable Object may own (acceptWebSocket raises over it)",
     32768, 0},
};
const int thaw_n_limit_specs = sizeof(thaw_limit_specs) / sizeof(thaw_limit_specs[0]);

long long *thaw_limit_field(struct thaw_limits *l, const struct thaw_limit_spec *s)
{
    return (long long *)((char *)l + s->offset);
}

void thaw_limits_defaults(struct thaw_limits *l)
{
    int i;

    memset(l, 0, sizeof(*l));
    for (i = 0; i < thaw_n_limit_specs; i++)
        *thaw_limit_field(l, &thaw_limit_specs[i]) = thaw_limit_specs[i].def;
}

/* "64K", "100M", "1G", "500ms", "2s" or a plain number. */
static int parse_value(const struct thaw_limit_spec *s, const char *v, long long *out)
{
    char *end;
    long long n;

    if (s->kind == THAW_LIM_CHOICE) {
        for (n = 0; CHOICES(s)[n]; n++)
            if (strcmp(CHOICES(s)[n], v) == 0) {
                *out = n;
                return 0;
            }
        return -1;
    }
    n = strtoll(v, &end, 10);
    if (end == v || n < 0)
        return -1;
    if (s->kind == THAW_LIM_SIZE) {
        switch (*end) {
        case 'k': case 'K': n <<= 10; end++; break;
        case 'm': case 'M': n <<= 20; end++; break;
        case 'g': case 'G': n <<= 30; end++; break;
        }
        if (*end == 'B' || *end == 'b')
            end++;
    } else if (s->kind == THAW_LIM_MS) {
        if (strcmp(end, "ms") == 0)
            end += 2;
        else if (strcmp(end, "s") == 0)
            n *= 1000, end += 1;
    }
    if (*end)
        return -1;
    *out = n;
    return 0;
}

/* "shared or per-worker" */
static const char *choice_list(const struct thaw_limit_spec *s)
{
    static char buf[128];
    size_t n = 0;
    int i;

    buf[0] = '\0';
    for (i = 0; CHOICES(s)[i]; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s\"%s\"", i ? " or " : "",
                              CHOICES(s)[i]);
    return buf;
}

static const char *unit(const struct thaw_limit_spec *s)
{
    return s->kind == THAW_LIM_SIZE ? " bytes" : s->kind == THAW_LIM_MS ? " ms" : "";
}

int thaw_limits_flag(struct thaw_limits *l, int *set, const char *flag, const char *value,
                     char *err, size_t errlen)
{
    int i;
    long long n;

    for (i = 0; i < thaw_n_limit_specs; i++) {
        const struct thaw_limit_spec *s = &thaw_limit_specs[i];
        if (strcmp(s->flag, flag) != 0)
            continue;
        if (!value || parse_value(s, value, &n) || n < s->min || n > s->max) {
            if (s->kind == THAW_LIM_CHOICE)
                snprintf(err, errlen, "%s takes %s, got '%s'", flag, choice_list(s),
                         value ? value : "");
            else
                snprintf(err, errlen, "%s takes a value from %lld to %lld%s, got '%s'", flag,
                         s->min, s->max, unit(s), value ? value : "");
            return -1;
        }
        *thaw_limit_field(l, s) = n;
        set[i] = 1;
        return 1;
    }
    return 0;
}

int thaw_limits_from_config(struct thaw_limits *l, const char *json, const char *file,
                            char *err, size_t errlen)
{
    return thaw_limits_from_config_set(l, NULL, json, file, err, errlen);
}

int thaw_limits_from_config_set(struct thaw_limits *l, int *set, const char *json,
                                const char *file, char *err, size_t errlen)
{
    json_t *root = json_loads(json, 0, NULL), *tbl, *v;
    const char *key;
    int i, rc = 0;

    if (!root)
        return 0;
    for (i = 0; i < thaw_n_limit_specs && !rc; i++) {
        const struct thaw_limit_spec *s = &thaw_limit_specs[i];
        long long n;
        tbl = json_object_get(root, s->table);
        v = tbl ? json_object_get(tbl, s->key) : NULL;
        if (!v)
            continue;
        if (thaw_limit_parse_json(s, v, &n)) {
            snprintf(err, errlen, "%s: `%s.%s` must be %s", file, s->table, s->key,
                     thaw_limit_range_text(s));
            rc = -1;
            break;
        }
        *thaw_limit_field(l, s) = n;
        if (set)
            set[i] = 1;
    }
    /* a misspelt key would silently do nothing: say so */
    for (i = 0; !rc && i < 2; i++) {
        const char *t = i ? "limits" : "thaw";
        tbl = json_object_get(root, t);
        if (!json_is_object(tbl))
            continue;
        json_object_foreach(tbl, key, v) {
            int k, known = i == 0 && (strcmp(key, "kv") == 0 || /* [thaw.kv]: bind/kv.c */
                                      /* a build setting: config.c checks it, the
                                       * template applies it (thaw_runtime/buildcheck.py) */
                                      strcmp(key, "strict_python") == 0);
            for (k = 0; k < thaw_n_limit_specs; k++)
                if (strcmp(thaw_limit_specs[k].table, t) == 0 &&
                    strcmp(thaw_limit_specs[k].key, key) == 0)
                    known = 1;
            /* sub-tables read by the parts they configure */
            if (!i && strcmp(key, "egress") == 0)
                known = 1; /* bind/egress-config.c */
            if (!known) {
                snprintf(err, errlen, "%s: unknown key `%s.%s` (see docs/config.md)", file, t,
                         key);
                rc = -1;
                break;
            }
        }
    }
    json_decref(root);
    return rc;
}

int thaw_limit_parse_json(const struct thaw_limit_spec *s, json_t *v, long long *out)
{
    long long n;

    if (s->kind == THAW_LIM_CHOICE) {
        if (json_is_boolean(v) && s->offset == L(access_log))
            n = json_is_true(v); /* access_log = false */
        else if (!json_is_string(v) || parse_value(s, json_string_value(v), &n))
            return -1;
    } else if (json_is_integer(v)) {
        n = json_integer_value(v);
    } else if (!json_is_string(v) || parse_value(s, json_string_value(v), &n)) {
        return -1;
    }
    if (n < s->min || n > s->max)
        return -1;
    *out = n;
    return 0;
}

const char *thaw_limit_range_text(const struct thaw_limit_spec *s)
{
    static char buf[160];

    if (s->kind == THAW_LIM_CHOICE)
        return choice_list(s);
    snprintf(buf, sizeof(buf), "a whole number from %lld to %lld%s", s->min, s->max,
             unit(s));
    return buf;
}

void thaw_limit_format(const struct thaw_limit_spec *s, long long v, char *buf, size_t n)
{
    static const char SUFFIX[] = "KMG";
    int i;

    if (s->kind == THAW_LIM_CHOICE && v >= 0 && v <= s->max) {
        snprintf(buf, n, "\"%s\"", CHOICES(s)[v]);
        return;
    }
    if (v == 0 && (s->flags & THAW_LIM_ZERO_NEVER)) {
        snprintf(buf, n, "0 (never)");
        return;
    }
    if (s->kind == THAW_LIM_SIZE) {
        /* the largest unit that divides it: 64G, 64M, 1536K */
        for (i = 2; i >= 0; i--)
            if (v && v % (1LL << (10 * (i + 1))) == 0) {
                snprintf(buf, n, "%lld%c", v >> (10 * (i + 1)), SUFFIX[i]);
                return;
            }
    }
    snprintf(buf, n, "%lld%s", v, unit(s));
}

int thaw_limit_index(const char *key)
{
    int i;

    for (i = 0; i < thaw_n_limit_specs; i++)
        if (strcmp(thaw_limit_specs[i].key, key) == 0)
            return i;
    return -1;
}

long long thaw_limits_dev_cpu_percent(const struct thaw_limits *l)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long long n = l->max_instances;

    if (cpus > 0 && n > cpus)
        n = cpus;
    return n > 0 ? 100 * n : 100;
}

long long thaw_limits_version_memory(const struct thaw_limits *l)
{
    return (l->memory_mb * (l->max_instances + 1)) << 20;
}

void thaw_limits_override(struct thaw_limits *dst, const struct thaw_limits *src,
                          const int *set)
{
    int i;

    for (i = 0; i < thaw_n_limit_specs; i++)
        if (set[i])
            *thaw_limit_field(dst, &thaw_limit_specs[i]) = *thaw_limit_field((struct thaw_limits *)src,
                                                       &thaw_limit_specs[i]);
}

void thaw_limits_usage(FILE *out)
{
    int i;

    for (i = 0; i < thaw_n_limit_specs; i++) {
        const struct thaw_limit_spec *s = &thaw_limit_specs[i];
        if (s->kind == THAW_LIM_CHOICE)
            fprintf(out, "  %-25s %s (default \"%s\"; config %s.%s)\n", s->flag, s->help,
                    CHOICES(s)[s->def], s->table, s->key);
        else
            fprintf(out, "  %-25s %s (default %lld%s; config %s.%s)\n", s->flag, s->help,
                    s->def, unit(s), s->table, s->key);
    }
}
