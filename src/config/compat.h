/* Compatibility dates and flags (seed post 2, "Future proofing"): one table
 * maps each flag thaw acts on or explains to the behaviour it selects and
 * to the date from which it is on by default; a second one (compat-inert.c)
 * names every other flag Cloudflare defines, accepted with no effect, as
 * wrangler accepts them. docs/config.md and docs/compat.md mirror them. */
#ifndef THAW_COMPAT_H
#define THAW_COMPAT_H

#include <stddef.h>

struct thaw_compat_flag {
    const char *name;
    const char *disable;     /* the flag that turns it off, or NULL */
    const char *enable_date; /* on by default from this date, or NULL */
    const char *what;
};

extern const struct thaw_compat_flag thaw_compat_flags[];
extern const int thaw_n_compat_flags;

/* compat-inert.c: flag names (enable and disable) that change nothing here */
extern const char *const thaw_compat_inert[];
extern const int thaw_n_compat_inert;

/* Whether Cloudflare defines the flag `name` (either table). */
int thaw_compat_known(const char *name);

/* The known flag nearest to `name` by edit distance (never NULL). */
const char *thaw_compat_closest(const char *name);

/* The flags in effect for a worker: those whose date has come, plus the
 * ones it names, minus the ones it disables. Writes them as a JSON array
 * into out. Returns 0, or -1 with a message (an unknown flag, naming the
 * closest known one; a date in the future; a flag named together with its
 * disable flag). `today` is "YYYY-MM-DD" (a parameter so tests can pin it). */
int thaw_compat_resolve(const char *file, const char *date, char *const *flags, int nflags,
                        const char *today, char *out, size_t outlen, char *err,
                        size_t errlen);

#endif
