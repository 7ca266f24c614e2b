/* The state directory of thaw serve (layout in docs/api.md):
 *
 *   DIR/token                        the API token, 0600, made on first start
 *   DIR/workers/<name>/versions/<N>/ the unpacked bundle of version N
 *   DIR/workers/<name>/versions/<N>.json  written once N built: N is deployed
 *   DIR/workers/<name>/current       the serving version, replaced by rename
 *   DIR/workers/<name>/data/         the worker's KV and D1 data
 *   DIR/grants.json                  route grants of the admin API:
 *                                    {"<name>": ["pattern", ...], ...}
 *
 * Every write that must survive a crash goes to a temporary file, is
 * fsync'd and renamed over the old one. */
#ifndef THAW_SERVE_STORE_H
#define THAW_SERVE_STORE_H

#include <stddef.h>

/* Creates DIR/workers and drops what a crash left half-done (deleted
 * workers, versions that never finished building). 0 or -1 with err. */
int thaw_store_open(const char *dir, char *err, size_t errlen);

/* The API token: THAW_API_TOKEN when set, else DIR/token, created with
 * 32 random bytes (hex) and mode 0600 when missing. 0 or -1 with err. */
int thaw_store_token(const char *dir, char *tok, size_t n, char *err, size_t errlen);

/* Names of the deployed workers (with a `current`), malloc'd, NULL-ended. */
char **thaw_store_workers(const char *dir);
void thaw_store_free_list(char **list);

/* The serving version of name, 0 when none. */
int thaw_store_current(const char *dir, const char *name);
int thaw_store_set_current(const char *dir, const char *name, int version);
/* Deployed versions (with their .json), ascending; count in *n. malloc'd. */
int *thaw_store_versions(const char *dir, const char *name, int *n);
/* A version number never used by name, and its empty directory made. */
int thaw_store_new_version(const char *dir, const char *name, char *path, size_t n,
                           char *err, size_t errlen);
/* The empty directory of version exactly N (the control store numbers
 * versions for the cluster: cluster/control.h), a leftover without its
 * .json removed first. 0 or -1 with err. */
int thaw_store_make_version(const char *dir, const char *name, int version, char *path,
                            size_t n, char *err, size_t errlen);
/* Removes version N: its .json (it is no longer deployed), then its files. */
void thaw_store_forget_version(const char *dir, const char *name, int version);
/* Removes versions/<N>/ (a build that failed). */
void thaw_store_drop_version(const char *dir, const char *name, int version);
int thaw_store_write_meta(const char *dir, const char *name, int version,
                          const char *json);
char *thaw_store_read_meta(const char *dir, const char *name, int version);
/* Removes the worker and all its data. */
int thaw_store_delete(const char *dir, const char *name);

void thaw_store_version_dir(const char *dir, const char *name, int version, char *out,
                            size_t n);
void thaw_store_data_dir(const char *dir, const char *name, char *out, size_t n);

/* The route grants (DIR/grants.json) as text, malloc'd; NULL when there
 * are none yet (or the file cannot be read: *missing says which). */
char *thaw_store_read_grants(const char *dir, int *missing);
/* Replaces DIR/grants.json atomically. 0 or -1 (errno). */
int thaw_store_write_grants(const char *dir, const char *json);

/* rm -rf that does not follow symlinks. */
int thaw_rmtree(const char *path);

#endif
