/* Which migrations a worker's deployed versions applied: the tags, in
 * order, in <state_dir>/do/migrations.json, written when a version built
 * ready (bind.c's ready hook). Cloudflare keeps the same fact per script:
 * a later deploy must still hold the last applied tag, or it is refused.
 * Internal to src/do/. */
#ifndef THAW_DO_HISTORY_H
#define THAW_DO_HISTORY_H

#include <jansson.h>
#include <stddef.h>

/* The recorded tags (a new reference), an empty array when there is none,
 * NULL when the file cannot be read (err says why). */
json_t *thaw__do_history_load(const char *path, char *err, size_t errlen);
/* Writes tags durably (temporary file, fsync, rename). 0 or -errno. */
int thaw__do_history_save(const char *path, json_t *tags);

#endif
