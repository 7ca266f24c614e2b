/* Noticing edits in a worker directory. libuv has no recursive watch on
 * Linux and inotify needs a watch per directory (new ones included), so
 * this polls: a walk of a small source tree every few hundred ms is cheap
 * and sees every change, new directories too. */
#ifndef THAW_WATCH_H
#define THAW_WATCH_H

#include <stdint.h>
#include <uv.h>

struct thaw_watch {
    uv_timer_t timer;
    char *dir;
    uint64_t sig;
    void (*on_change)(struct thaw_watch *w);
    void *data;
};

/* A hash of the names, sizes and mtimes of the files that make a worker:
 * *.py, wrangler.toml/.json/.jsonc, .dev.vars, pyproject.toml. */
uint64_t thaw_watch_signature(const char *dir);
int thaw_watch_start(struct thaw_watch *w, uv_loop_t *loop, const char *dir,
                     unsigned interval_ms, void (*on_change)(struct thaw_watch *));
void thaw_watch_stop(struct thaw_watch *w);

#endif
