/* A file name for a binding's data from an id the worker's config gives
 * (a KV namespace `id`, a D1 `database_id`): any string, as wrangler
 * accepts any (templates ship "<YOUR_KV_NAMESPACE_ID>"), so no config
 * text reaches the filesystem as it is.
 *
 * Letters, digits, '-', '_' and '.' (not first) stay; every other byte
 * becomes %XX (upper-case hex). So an id that was always valid keeps the
 * file it had, "../x" cannot climb (it is "..%2Fx"), and two ids never
 * share a name. A name that would pass MAX_ESCAPED bytes is cut and ends
 * in "~" and 32 hex digits of a 128-bit hash of the whole id ('~' is
 * escaped elsewhere, so such a name meets no unhashed one). Mirrored in
 * python/thaw_tools/d1.py (id_filename), which finds the same files. */
#ifndef THAW_UTIL_IDNAME_H
#define THAW_UTIL_IDNAME_H

#include <stddef.h>

enum { THAW_IDNAME_MAX_ESCAPED = 160, THAW_IDNAME_KEEP = 100, THAW_IDNAME_SIZE = 168 };

/* Writes the name of id (len bytes, may hold any byte) into out, which has
 * room for THAW_IDNAME_SIZE bytes. Returns its length; -1 when len is 0. */
int thaw_id_filename(const char *id, size_t len, char *out);

/* Whether s is 1 to max letters, digits, '-', '_' or '.': a name the
 * operator gives (a node's, a Redis key prefix) that goes into keys and
 * log lines as it is. */
int thaw_plain_name(const char *s, size_t max);

#endif
