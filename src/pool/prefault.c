/* Reads an instance's exclusively mapped pages from /proc (prefault.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool/prefault.h"

#define PM_PRESENT (1ULL << 63)
#define PM_EXCLUSIVE (1ULL << 56)
/* pagemap entries read per pread: 32 KiB */
#define CHUNK 4096
/* examine at most this many pages (1 GiB of mappings): a huge reserved
 * region (a thread arena) would otherwise make the read long */
#define MAX_PAGES (1UL << 18)
/* list at most this many (32 MiB on x86-64): a first request that wrote
 * a big buffer must not make every later instance copy one up front */
#define MAX_LISTED (1L << 13)

struct ranges {
    struct thaw_buf *out;
    size_t max, n;
    uint64_t start, end; /* the run being built */
    long pages;
};

static int put_u64(struct thaw_buf *b, uint64_t v)
{
    unsigned char le[8];
    int i;

    for (i = 0; i < 8; i++)
        le[i] = (unsigned char)(v >> (8 * i));
    return thaw_buf_append(b, le, sizeof(le));
}

static int flush_run(struct ranges *r)
{
    int rc;

    if (r->end == r->start)
        return 0;
    if (r->n >= r->max)
        return 1;
    if ((rc = put_u64(r->out, r->start)) || (rc = put_u64(r->out, r->end - r->start)))
        return rc;
    r->n++;
    r->start = r->end = 0;
    return 0;
}

static int add_page(struct ranges *r, uint64_t addr, uint64_t psz)
{
    int rc;

    if (r->pages >= MAX_LISTED)
        return 1;
    r->pages++;
    if (r->end == addr && r->end != r->start) {
        r->end += psz;
        return 0;
    }
    if ((rc = flush_run(r)))
        return rc;
    r->start = addr;
    r->end = addr + psz;
    return 0;
}

/* Private and writable: copy-on-write from the template, or the
 * instance's own. Not the kernel's special mappings. */
static int wanted(const char *perms, const char *path)
{
    if (perms[0] != 'r' || perms[1] != 'w' || perms[3] != 'p')
        return 0;
    return strncmp(path, "[v", 2) != 0; /* [vdso], [vvar], [vsyscall] */
}

static int scan(int pm, uint64_t lo, uint64_t hi, uint64_t psz, struct ranges *r,
                size_t *budget)
{
    static uint64_t ent[CHUNK];
    uint64_t page = lo / psz, last = hi / psz;
    int rc;

    while (page < last && *budget) {
        size_t want = last - page, i;
        ssize_t got;

        if (want > CHUNK)
            want = CHUNK;
        if (want > *budget)
            want = *budget;
        got = pread(pm, ent, want * sizeof(ent[0]), (off_t)(page * sizeof(ent[0])));
        if (got <= 0)
            return got < 0 ? -errno : 0;
        want = (size_t)got / sizeof(ent[0]);
        for (i = 0; i < want; i++) {
            if ((ent[i] & (PM_PRESENT | PM_EXCLUSIVE)) != (PM_PRESENT | PM_EXCLUSIVE))
                continue;
            if ((rc = add_page(r, (page + i) * psz, psz)))
                return rc;
        }
        page += want;
        *budget -= want;
    }
    return 0;
}

long thaw_prefault_profile(pid_t pid, struct thaw_buf *out, size_t max_ranges)
{
    char path[64], *line = NULL;
    size_t cap = 0, budget = MAX_PAGES;
    uint64_t psz = (uint64_t)sysconf(_SC_PAGESIZE);
    struct ranges r = {out, max_ranges, 0, 0, 0, 0};
    FILE *maps;
    int pm, rc = 0;

    snprintf(path, sizeof(path), "/proc/%ld/maps", (long)pid);
    if (!(maps = fopen(path, "re")))
        return -errno;
    snprintf(path, sizeof(path), "/proc/%ld/pagemap", (long)pid);
    if ((pm = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        rc = -errno;
        fclose(maps);
        return rc;
    }
    while (!rc && getline(&line, &cap, maps) > 0) {
        unsigned long long lo, hi;
        char perms[8] = "", name[256] = "";

        if (sscanf(line, "%llx-%llx %7s %*s %*s %*s %255s", &lo, &hi, perms, name) < 3)
            continue;
        /* a run never spans two mappings: a later instance may not have
         * one of them yet (an arena this one made), and madvise fails on
         * the whole range at the hole */
        if (wanted(perms, name) && !(rc = scan(pm, lo, hi, psz, &r, &budget)))
            rc = flush_run(&r);
    }
    free(line);
    close(pm);
    fclose(maps);
    if (rc < 0)
        return rc;
    return r.pages; /* rc 1: a maximum reached; what fits is listed */
}
