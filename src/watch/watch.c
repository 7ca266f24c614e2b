#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "watch/watch.h"

#define MAX_FILES 20000

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;

    while (n--) {
        h ^= *s++;
        h *= 1099511628211ull; /* FNV-1a */
    }
    return h;
}

static int relevant(const char *name)
{
    size_t n = strlen(name);

    return (n > 3 && strcmp(name + n - 3, ".py") == 0) ||
           strcmp(name, "wrangler.toml") == 0 || strcmp(name, "wrangler.json") == 0 ||
           strcmp(name, "wrangler.jsonc") == 0 || strcmp(name, ".dev.vars") == 0 ||
           strcmp(name, "pyproject.toml") == 0;
}

static int skipped_dir(const char *name)
{
    return name[0] == '.' || strcmp(name, "__pycache__") == 0 ||
           strcmp(name, "node_modules") == 0;
}

static void walk(const char *dir, int depth, uint64_t *h, int *count)
{
    DIR *d;
    struct dirent *e;
    char path[PATH_MAX];
    struct stat st;

    if (depth > 16 || !(d = opendir(dir)))
        return;
    while ((e = readdir(d)) && *count < MAX_FILES) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (!skipped_dir(e->d_name))
                walk(path, depth + 1, h, count);
        } else if (relevant(e->d_name)) {
            (*count)++;
            *h = mix(*h, path, strlen(path));
            *h = mix(*h, &st.st_size, sizeof(st.st_size));
            *h = mix(*h, &st.st_mtim, sizeof(st.st_mtim));
            *h = mix(*h, &st.st_ino, sizeof(st.st_ino));
        }
    }
    closedir(d);
}

uint64_t thaw_watch_signature(const char *dir)
{
    uint64_t h = 14695981039346656037ull;
    int count = 0;

    /* readdir order is stable for an unchanged directory, so the hash of
     * an untouched tree is stable too */
    walk(dir, 0, &h, &count);
    return h ^ (uint64_t)count;
}

static void on_tick(uv_timer_t *t)
{
    struct thaw_watch *w = t->data;
    uint64_t sig = thaw_watch_signature(w->dir);

    if (sig != w->sig) {
        w->sig = sig;
        w->on_change(w);
    }
}

int thaw_watch_start(struct thaw_watch *w, uv_loop_t *loop, const char *dir,
                     unsigned interval_ms, void (*on_change)(struct thaw_watch *))
{
    w->dir = strdup(dir);
    w->sig = thaw_watch_signature(dir);
    w->on_change = on_change;
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    return uv_timer_start(&w->timer, on_tick, interval_ms, interval_ms);
}

void thaw_watch_stop(struct thaw_watch *w)
{
    uv_timer_stop(&w->timer);
}
