/* The deploy bundle: a worker's files in one length-prefixed blob that
 * `thaw deploy` builds and the admin API unpacks (format in docs/api.md).
 * Only regular files, relative paths without `..`, bounded sizes: a bundle
 * cannot write outside the directory it is unpacked into. Pure parsing
 * (thaw_bundle_walk) apart from the unpacking, so it is unit-tested and
 * fuzzed on its own. */
#ifndef THAW_SERVE_BUNDLE_H
#define THAW_SERVE_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#define THAW_BUNDLE_MAGIC "THAWBND1"
#define THAW_BUNDLE_MAGIC_LEN 8
#define THAW_BUNDLE_MAX_PATH 1024
#define THAW_BUNDLE_MAX_FILES 20000
#define THAW_BUNDLE_MAX_BYTES (256LL * 1024 * 1024)
#define THAW_BUNDLE_MAX_LIMIT THAW_BUNDLE_MAX_BYTES

struct thaw_bundle_entry {
    const char *path;   /* not NUL-terminated */
    size_t path_len;
    int exec;           /* mode 0755 rather than 0644 */
    const char *data;
    size_t size;
};

/* Called for each entry in order; a non-zero return stops the walk and
 * becomes its result. */
typedef int (*thaw_bundle_cb)(void *data, const struct thaw_bundle_entry *e);

/* 0 when path (n bytes) is a safe relative file path: 1..MAX_PATH bytes,
 * '/'-separated, no empty, "." or ".." component, no NUL, backslash or
 * control character, not absolute. */
int thaw_bundle_path_ok(const char *path, size_t n);

/* Checks the whole bundle and calls cb for every entry (cb may be NULL).
 * Returns 0, the callback's non-zero value, or -1 with a message in err. */
int thaw_bundle_walk(const void *buf, size_t len, thaw_bundle_cb cb, void *data,
                     char *err, size_t errlen);

/* Writes every file under dir (which must exist and be empty). A path given
 * twice, or one that is both a file and a directory, is an error. Returns 0,
 * -1 with a message in err (the bundle's fault), or
 * THAW_BUNDLE_E_INTERNAL with the message (thaw could not write: a full
 * disk, no fds); *files and *bytes count what was written. */
#define THAW_BUNDLE_E_INTERNAL (-2)
int thaw_bundle_unpack(const void *buf, size_t len, const char *dir, int *files,
                       long long *bytes, char *err, size_t errlen);

#endif
