/* Edit distance between names, for "did you mean" in config errors
 * (compatibility flags, wrangler keys). */
#ifndef THAW_UTIL_EDITDIST_H
#define THAW_UTIL_EDITDIST_H

#include <stddef.h>

/* Levenshtein distance of a and b; (size_t)-1 when either is longer than
 * 96 bytes (names are short: a longer one is near none of them). */
size_t thaw_edit_distance(const char *a, const char *b);

#endif
