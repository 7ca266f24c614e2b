/* Prefault profiles: which pages an instance writes early in its life.
 *
 * An instance is a fork of its template, so every page it writes is first
 * copied (a copy-on-write fault, ~6 us each on a VM) and a FastAPI
 * instance's first request takes some 340 of them, most of its cold-start
 * time. Those pages are the same ones in every instance of a version (same
 * template, same addresses). So after one instance has served its first
 * request, thaw reads which pages it holds alone (/proc/PID/pagemap's
 * "exclusively mapped" bit, in its private writable mappings) and sends
 * that list to the template; each instance forked afterwards copies those
 * pages with one madvise(MADV_POPULATE_WRITE) per range before it serves,
 * which costs a fraction of taking the faults one by one during a request.
 * They are pages the instance would have copied anyway, so its memory does
 * not grow. */
#ifndef THAW_POOL_PREFAULT_H
#define THAW_POOL_PREFAULT_H

#include <stddef.h>
#include <sys/types.h>

#include "util/buf.h"

/* Appends to out one (start, length) pair of little-endian uint64 per run
 * of pages that pid alone maps in its private writable mappings (a run
 * never spans two mappings), at most max_ranges pairs and 32 MiB. Returns
 * the number of pages found (at least those listed), or -errno. */
long thaw_prefault_profile(pid_t pid, struct thaw_buf *out, size_t max_ranges);

#endif
