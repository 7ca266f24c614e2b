/* Paths that must stay inside a directory: a deployed worker's bundle
 * under `thaw serve`, a worker's assets folder. The kernel resolves them
 * (openat2 with RESOLVE_BENEATH), so `..`, absolute paths, symlinks that
 * lead out and /proc magic links are refused in one atomic step, with no
 * window between a check and the open. Kernels without openat2 get a
 * stricter walk: component by component, no `..` and no symlink at all. */
#ifndef THAW_UTIL_BENEATH_H
#define THAW_UTIL_BENEATH_H

/* Opens rel (relative to dirfd) without leaving dirfd's tree; flags are
 * open(2)'s (O_CLOEXEC is added; O_PATH works). Returns an fd, or -1 with
 * errno: EXDEV when the path leads out (absolute, `..` above dirfd, a
 * symlink pointing out), ELOOP for a magic link, ENOENT, ENOTDIR... */
int thaw_open_beneath(int dirfd, const char *rel, int flags);
/* The fallback walk thaw_open_beneath takes without openat2 (extern for
 * its unit test). */
int thaw__walk_beneath(int dirfd, const char *rel, int flags);

/* Where a path from a config lands: path is absolute or relative to root
 * (a directory). 1 when it resolves inside root (root itself included),
 * after symlinks; a path that does not exist yet is judged by its
 * longest existing prefix, which must resolve inside, and by the rest,
 * which must hold no `..` (a consumer normalising it lexically would
 * otherwise climb out). 0 when it leads out; -1 with errno when root
 * cannot be opened or the path is not a path (empty). */
int thaw_path_beneath(const char *root, const char *path);

#endif
