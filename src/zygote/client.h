/* The supervisor's side of the zygote: starts the thaw-zygote process and
 * asks it for TOML parsing and template builds. No Python here: the
 * zygote is a separate executable, and this is a socket to it. The zygote
 * starts with a fixed environment (worker_env in client.c), never thaw's
 * own: every worker is forked from it. */
#ifndef THAW_ZYGOTE_CLIENT_H
#define THAW_ZYGOTE_CLIENT_H

#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

struct thaw_zygote;

/* ok 1: text is JSON; 0: text is what is wrong with the file; -1: the
 * zygote could not answer (thaw's failure, not the file's). */
typedef void (*thaw_toml_cb)(void *data, int ok, const char *text, size_t len);
/* A template was forked: pid and pidfd (taken over by the callee), or
 * pid -1 with an error message. */
typedef void (*thaw_forked_cb)(void *data, pid_t pid, int pidfd, const char *err);

/* The zygote is ready (HELLO): on_ready(data, z), after each (re)start. */
typedef void (*thaw_zygote_ready_cb)(void *data, struct thaw_zygote *z);

/* preload: NULL, or a comma-separated list of packages the zygote imports
 * so every template forked from it has them loaded (the shared base). */
int thaw_zygote_start(uv_loop_t *loop, const char *exe_dir, const char *preload,
                      thaw_zygote_ready_cb on_ready, void *data,
                      struct thaw_zygote **out);
/* Every zygote started after this runs sandboxed (on) or not, with the
 * pids cgroup cgroup_dir (NULL or "": none). src/cli/sandbox.c decides. */
void thaw_zygote_set_sandbox(int on, const char *cgroup_dir);
/* The run's memory cgroup (src/sandbox/cgroup.h), NULL or "": none. */
void thaw_zygote_set_memcg(const char *dir);
/* The run's v1 CPU groups (at most 2: cpu, cpuacct), joined like the
 * memory one. */
void thaw_zygote_set_cpucg(const char *const *dirs, int n);
/* isolation = "per-worker": a zygote of its own for one worker (named in
 * the log and in errors), started like proto (same executable and SDK, no
 * preload). thaw_zygote_free stops it; its memory goes once its process
 * and restart timer have (nothing calls back into its owner after this).
 *
 * A zygote whose process exits is started again after a backoff (at once,
 * then 100 ms doubling to 10 s; zygote/backoff.h). Two exceptions: thaw's
 * own that exits before its first HELLO ends thaw (exit 1), and a
 * per-worker one whose process exits before its HELLO is started again
 * only by the next build that needs it (builds meanwhile fail at once:
 * thaw_zygote_why). */
int thaw_zygote_start_like(const struct thaw_zygote *proto, const char *worker,
                           struct thaw_zygote **out);
void thaw_zygote_free(struct thaw_zygote *z);
/* Why a build cannot go to z (z NULL, not running, restarting, or down
 * since it failed to start), into buf, for the version's error. */
const char *thaw_zygote_why(const struct thaw_zygote *z, char *buf, size_t n);
/* Whether the zygote is ready, and whether its preload holds a top-level
 * module named `name` (a worker vendoring its own copy must not use it). */
int thaw_zygote_ready(const struct thaw_zygote *z);
/* Whether a build now would find z running or start it (1), or fail at
 * once because it is restarting or down within its backoff (0). */
int thaw_zygote_can_start(const struct thaw_zygote *z);
int thaw_zygote_holds(const struct thaw_zygote *z, const char *name);
int thaw_zygote_toml(struct thaw_zygote *z, const char *path, thaw_toml_cb cb,
                     void *data);
/* Asks for a template for version `version`: chan_fd (taken over) becomes
 * the template's channel to the supervisor, out_fd (taken over) its fd 1
 * and 2 (pool/output.h). sandbox_json: the template's sandbox settings
 * (python/thaw_runtime/sandbox.py). */
int thaw_zygote_build(struct thaw_zygote *z, uint32_t version, int chan_fd, int out_fd,
                      const char *name, const char *dir, const char *main,
                      const char *config_json, const char *sandbox_json,
                      thaw_forked_cb cb, void *data);
/* Whether zygotes start sandboxed (thaw_zygote_set_sandbox). */
int thaw_zygote_sandboxed(void);
/* Forgets the callbacks that carry `data` (its owner is going away). */
void thaw_zygote_forget(struct thaw_zygote *z, void *data);
void thaw_zygote_signal(struct thaw_zygote *z, int sig);
int thaw_zygote_alive(const struct thaw_zygote *z);
void thaw_zygote_shutdown(struct thaw_zygote *z);

#endif
