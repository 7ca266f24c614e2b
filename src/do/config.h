/* Durable Objects in a worker's config: `durable_objects.bindings` and
 * `migrations`, checked as Cloudflare checks them at deploy (a class bound
 * but never created, a rename of a class that does not exist, a tag used
 * twice). What is left is one JSON object the runtime and the supervisor
 * read, `_thaw_do` in the config JSON:
 *
 *   {"worker": NAME,
 *    "bindings": {BINDING: {"class_name": C, "key": HEX, "sqlite": BOOL}},
 *    "classes":  {C: {"key": HEX, "sqlite": BOOL, "tag": TAG}},
 *    "tags": [TAG, ...],
 *    "deleted": [{"key": HEX, "tag": TAG}]}   (deleted_classes, in order)
 *
 * `key` (64 hex digits) names a class's namespace: the SHA-256 of the
 * worker's name and the name the class was first created under, so ids
 * stay the same across restarts and renames (python/workers/_durable_id.py
 * derives ids from it). */
#ifndef THAW_DO_CONFIG_H
#define THAW_DO_CONFIG_H

#include <jansson.h>
#include <stddef.h>

/* Checks root's `durable_objects` and `migrations` (file names the config
 * in messages, worker is the worker's name) and sets root's `_thaw_do`
 * when either is there. 0, or -1 with a message naming the file, the key
 * and the fix. No worker code runs for any of it. */
int thaw_do_config(json_t *root, const char *file, const char *worker, char *err,
                   size_t errlen);

#endif
