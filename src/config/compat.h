/* Compatibility dates and flags (seed post 2, "Future proofing"): one table
 * maps each flag to the behaviour it selects and to the date from which it
 * is on by default. docs/config.md mirrors it. */
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

/* The flags in effect for a worker: those whose date has come, plus the
 * ones it names, minus the ones it disables. Writes them as a JSON array
 * into out. Returns 0, or -1 with a message (an unknown flag, a date in
 * the future, a flag named together with its disable flag). `today` is
 * "YYYY-MM-DD" (a parameter so tests can pin it). */
int thaw_compat_resolve(const char *file, const char *date, char *const *flags, int nflags,
                        const char *today, char *out, size_t outlen, char *err,
                        size_t errlen);

#endif
