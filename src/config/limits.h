/* Every tunable limit of a worker, in one table (STYLE.md habit 10): the
 * command line flag, the config key (`[thaw]` table, or `[limits]` where
 * Cloudflare has the same knob), the default, and the ceiling `thaw serve`
 * holds a tenant's worker to. docs/config.md mirrors it.
 * thaw dev: defaults, then the config file, then the command line.
 * thaw serve: see ceilings.c (the operator sets ceilings, a worker's
 * config may only lower its limits). */
#ifndef THAW_LIMITS_H
#define THAW_LIMITS_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

struct thaw_limits {
    long long max_body;              /* request body bytes; over it: 413 */
    long long max_header;            /* request line + headers; over it: 431 */
    long long max_instances;         /* per worker version */
    long long concurrency;           /* requests in flight per instance */
    long long requests_per_instance; /* recycle after this many; 0: never */
    long long prefork;               /* spares forked ahead of demand */
    long long max_queue;             /* requests waiting for an instance */
    long long queue_timeout_ms;      /* then 503 with Retry-After */
    long long idle_timeout_ms;       /* an idle instance exits after this */
    long long cpu_ms;                /* CPU time per request; over it: 503 */
    long long memory_mb;             /* private memory per instance */
    long long request_timeout_ms;    /* wall clock per request; over it: 504 */
    long long header_timeout_ms;     /* to send a request's head; then 408 */
    long long keepalive_timeout_ms;  /* an idle client connection is closed */
    long long body_timeout_ms;       /* longest gap between body bytes; then 408 */
    long long body_min_rate;         /* body bytes/s after a grace; under it: 408 */
    long long template_idle_timeout_ms; /* a quiet worker's template goes; 0: never */
    long long isolation;             /* THAW_ISOLATION_*: which zygote a worker forks from */
    long long tmp_size;              /* bytes of a worker version's private /tmp */
    long long max_processes;         /* processes + threads of a worker version */
    long long max_open_files;        /* open files of one process */
    long long cpu_percent;           /* CPU of a whole worker version, % of one CPU */
    long long build_timeout_ms;      /* wall clock of a build's top level; over it: refused */
    long long access_log;            /* 1: a JSON line per request on thaw's log; 0: none */
    long long ws_max_message;        /* bytes of a WebSocket message from a client; 1009 over it */
    long long ws_idle_timeout_ms;    /* a WebSocket with no message either way is cut; 0: never */
    long long do_idle_timeout_ms;    /* a Durable Object with no event leaves memory */
    long long do_max_websockets;     /* WebSockets one Durable Object may own */
};

/* isolation = "shared": every worker forks from the run's zygote (one
 * address-space layout, stack canary and hash seed for all); "per-worker":
 * each worker gets a freshly exec'd zygote of its own. docs/security.md. */
enum { THAW_ISOLATION_SHARED = 0, THAW_ISOLATION_PER_WORKER = 1 };

/* THAW_LIM_CHOICE: a word (isolation: "shared"/"per-worker"; access_log:
 * "off"/"on"), stored as its index */
enum thaw_limit_kind { THAW_LIM_COUNT, THAW_LIM_SIZE, THAW_LIM_MS, THAW_LIM_CHOICE };

struct thaw_limit_spec {
    const char *flag;   /* "--max-instances" */
    const char *table;  /* "thaw" or "limits" */
    const char *key;    /* "max_instances" */
    size_t offset;      /* into struct thaw_limits */
    enum thaw_limit_kind kind;
    long long def, min, max;
    const char *help;
    long long ceiling;  /* thaw serve's built-in ceiling (ceilings.c) */
    unsigned flags;     /* THAW_LIM_SERVER, THAW_LIM_ZERO_NEVER */
};

/* THAW_LIM_SERVER: the server's own (it applies before a worker is known:
 * header and body size, header, body and keep-alive timeouts); under serve a
 * worker's value for it is not used. THAW_LIM_ZERO_NEVER: 0 means "never"
 * (no limit), the largest value there is when held to a ceiling. */
enum { THAW_LIM_SERVER = 1, THAW_LIM_ZERO_NEVER = 2 };

extern const struct thaw_limit_spec thaw_limit_specs[];
extern const int thaw_n_limit_specs;

void thaw_limits_defaults(struct thaw_limits *l);
/* Applies the `[thaw]` and `[limits]` tables of a config (compact JSON).
 * Returns 0, or -1 with a message naming the file, key and allowed range. */
int thaw_limits_from_config(struct thaw_limits *l, const char *json, const char *file,
                            char *err, size_t errlen);
/* As thaw_limits_from_config, and marks in set[] (when not NULL) every
 * limit the config gave. */
int thaw_limits_from_config_set(struct thaw_limits *l, int *set, const char *json,
                                const char *file, char *err, size_t errlen);
/* The index in thaw_limit_specs of the limit with config key `key`, -1. */
int thaw_limit_index(const char *key);
/* thaw dev's cpu_percent when neither the command line nor the config
 * gives one: one CPU per instance the version may run (max_instances), up
 * to the machine's online CPUs. The built-in 100 (one CPU for the whole
 * version) throttled `--max-instances 2` on 2 cores to one core: the
 * cgroup's quota, not the pool, capped the instances (docs/performance.md). */
long long thaw_limits_dev_cpu_percent(const struct thaw_limits *l);
/* A command line flag: 1 and stores it in l (and marks it in set[]), 0 when
 * flag is not a limit, -1 with a message when the value is bad. */
int thaw_limits_flag(struct thaw_limits *l, int *set, const char *flag, const char *value,
                     char *err, size_t errlen);
/* Overrides in dst every limit that set[] marks, from src. */
void thaw_limits_override(struct thaw_limits *dst, const struct thaw_limits *src,
                          const int *set);

/* The field of l that s describes. */
long long *thaw_limit_field(struct thaw_limits *l, const struct thaw_limit_spec *s);
/* A config value (a JSON integer, or a string with a unit: "64M", "2s",
 * "shared") for s: 0 and *out, or -1 when it is not one or out of range. */
int thaw_limit_parse_json(const struct thaw_limit_spec *s, json_t *v, long long *out);
/* What s takes, for messages: "a whole number from 1 to 10000 ms" or
 * "\"shared\" or \"per-worker\"" (a static buffer). */
const char *thaw_limit_range_text(const struct thaw_limit_spec *s);
/* A value as a person would write it: "64M", "300000 ms", "0 (never)",
 * "\"shared\"". */
void thaw_limit_format(const struct thaw_limit_spec *s, long long v, char *buf, size_t n);
/* The memory cgroup limit of a worker version, in bytes: memory_mb for
 * each instance it may have, and one more share for its template (the
 * worker's imports, which its instances share). docs/config.md. */
long long thaw_limits_version_memory(const struct thaw_limits *l);

/* ---- ceilings.c: thaw serve's ceilings -------------------------------- */

/* Where a limit's ceiling comes from, for messages. */
enum thaw_ceiling_from {
    THAW_CEIL_BUILTIN,   /* the spec's ceiling column */
    THAW_CEIL_FLAG,      /* serve's command line */
    THAW_CEIL_OPERATOR,  /* [limits] of the operator config */
};

struct thaw_limit_bounds {
    struct thaw_limits def;   /* a worker's limits before its config */
    struct thaw_limits ceil;  /* what its config may not go over */
    unsigned char from[64];   /* enum thaw_ceiling_from, per spec */
};

/* Bounds under thaw serve from the operator's `[limits]` table (ops, may
 * be NULL; keys as in a worker's config: memory_mb, cpu_ms, tmp_size...)
 * and serve's command line (cli, cli_set). Ceiling: the operator's value,
 * else the flag, else the built-in one. Default: the flag, else thaw's
 * default, never over the ceiling. Returns 0, or -1 with a message naming
 * the file and key (an unknown key, a value out of range). */
int thaw_limit_bounds(struct thaw_limit_bounds *b, json_t *ops, const char *ops_file,
                      const struct thaw_limits *cli, const int *cli_set, char *err,
                      size_t errlen);
/* Whether v is over the ceiling c (0 is "never" for THAW_LIM_ZERO_NEVER). */
int thaw_limit_over(const struct thaw_limit_spec *s, long long v, long long c);

/* One line per limit flag, for `thaw help`. */
void thaw_limits_usage(FILE *out);

#endif
