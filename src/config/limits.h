/* Every tunable limit of a worker, in one table (STYLE.md habit 10): the
 * command line flag, the config key (`[thaw]` table, or `[limits]` where
 * Cloudflare has the same knob), the default. docs/config.md mirrors it.
 * Precedence: defaults, then the config file, then the command line. */
#ifndef THAW_LIMITS_H
#define THAW_LIMITS_H

#include <stddef.h>
#include <stdio.h>

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
    long long template_idle_timeout_ms; /* a quiet worker's template goes; 0: never */
    long long isolation;             /* THAW_ISOLATION_*: which zygote a worker forks from */
    long long tmp_size;              /* bytes of a worker version's private /tmp */
    long long max_processes;         /* processes + threads of a worker version */
    long long max_open_files;        /* open files of one process */
};

/* isolation = "shared": every worker forks from the run's zygote (one
 * address-space layout, stack canary and hash seed for all); "per-worker":
 * each worker gets a freshly exec'd zygote of its own. docs/security.md. */
enum { THAW_ISOLATION_SHARED = 0, THAW_ISOLATION_PER_WORKER = 1 };

/* THAW_LIM_CHOICE: a word (the one such limit is isolation), stored as its index */
enum thaw_limit_kind { THAW_LIM_COUNT, THAW_LIM_SIZE, THAW_LIM_MS, THAW_LIM_CHOICE };

struct thaw_limit_spec {
    const char *flag;   /* "--max-instances" */
    const char *table;  /* "thaw" or "limits" */
    const char *key;    /* "max_instances" */
    size_t offset;      /* into struct thaw_limits */
    enum thaw_limit_kind kind;
    long long def, min, max;
    const char *help;
};

extern const struct thaw_limit_spec thaw_limit_specs[];
extern const int thaw_n_limit_specs;

void thaw_limits_defaults(struct thaw_limits *l);
/* Applies the `[thaw]` and `[limits]` tables of a config (compact JSON).
 * Returns 0, or -1 with a message naming the file, key and allowed range. */
int thaw_limits_from_config(struct thaw_limits *l, const char *json, const char *file,
                            char *err, size_t errlen);
/* A command line flag: 1 and stores it in l (and marks it in set[]), 0 when
 * flag is not a limit, -1 with a message when the value is bad. */
int thaw_limits_flag(struct thaw_limits *l, int *set, const char *flag, const char *value,
                     char *err, size_t errlen);
/* Overrides in dst every limit that set[] marks, from src. */
void thaw_limits_override(struct thaw_limits *dst, const struct thaw_limits *src,
                          const int *set);

/* One line per limit flag, for `thaw help`. */
void thaw_limits_usage(FILE *out);

#endif
