/* The thaw command line: one table of subcommands (STYLE.md habit 10). */
#ifndef THAW_CLI_H
#define THAW_CLI_H

#include <stddef.h>

#include <uv.h>

#include "config/config.h"

struct thaw_zygote;

struct thaw_command {
    const char *name;
    const char *args;
    const char *help;
    int (*run)(int argc, char **argv);
};

extern const struct thaw_command thaw_commands[];

int thaw_cmd_dev(int argc, char **argv);
int thaw_cmd_serve(int argc, char **argv);
int thaw_cmd_help(int argc, char **argv);
int thaw_cmd_version(int argc, char **argv);
int thaw_cmd_doctor(int argc, char **argv);
int thaw_cmd_cluster(int argc, char **argv);
/* sandbox.c: probes the sandbox, prints what it found and sets how
 * zygotes start. strict (thaw serve): -1 when a layer is missing. Returns
 * 1 sandboxed, 0 not (--no-sandbox, or thaw dev on a machine without the
 * namespaces), -1 refused. */
int thaw_cli_sandbox(const char *cmd, int no_sandbox, int strict);
/* Runs `python3 -m thaw_tools NAME ARGS...` (sync, init, types, d1). */
int thaw_cmd_tool(int argc, char **argv);

/* The directory holding the thaw executable (thaw-zygote lives there). */
const char *thaw_exe_dir(void);
/* "64K", "100M", "1G" or plain bytes; -1 when malformed. */
long long thaw_parse_size(const char *s);

/* Loads dir's config: JSON/JSONC here, TOML through the zygote. Calls cb
 * once with 0 and the config (which cb takes over), or with
 * THAW_LOAD_E_CONFIG and what is wrong with the config (naming the file),
 * or THAW_LOAD_E_INTERNAL and why thaw could not read it. */
enum { THAW_LOAD_E_CONFIG = -1, THAW_LOAD_E_INTERNAL = -2 };
typedef void (*thaw_load_cb)(void *data, int rc, struct thaw_config *cfg,
                             const char *err);
void thaw_load_config(struct thaw_zygote *z, const char *dir, thaw_load_cb cb,
                      void *data);

/* autosync.c: runs `thaw sync DIR` when pyproject.toml is newer than the
 * last sync, then calls cb (ok = the stamp is now fresh); at once when
 * there is nothing to do. */
typedef void (*thaw_autosync_cb)(void *data, int ok);
int thaw_needs_sync(const char *dir);
void thaw_autosync(uv_loop_t *loop, const char *dir, thaw_autosync_cb cb, void *data);

#endif
