#include <stdio.h>
#include <string.h>

#include "config/compat.h"

const struct thaw_compat_flag thaw_compat_flags[] = {
    {"python_workers", NULL, NULL,
     "accepted for wrangler configs: every worker thaw runs is a Python worker"},
    {"python_no_global_handlers", "disable_python_no_global_handlers", "2025-08-14",
     "handlers live in `class Default(WorkerEntrypoint)`; a module-level `on_fetch` "
     "is not called"},
    {"python_request_headers_preserve_commas",
     "disable_python_request_headers_preserve_commas", "2026-02-05",
     "a request header value that contains commas stays one value (before, it was "
     "split into one value per comma-separated part)"},
    {"nodejs_compat", NULL, NULL, "accepted for wrangler configs; no effect on Python"},
    {"nodejs_compat_v2", NULL, NULL, "accepted for wrangler configs; no effect on Python"},
};
const int thaw_n_compat_flags = sizeof(thaw_compat_flags) / sizeof(thaw_compat_flags[0]);

static int valid_date(const char *s)
{
    int i;

    if (!s || strlen(s) != 10)
        return 0;
    for (i = 0; i < 10; i++)
        if ((i == 4 || i == 7) ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
            return 0;
    return 1;
}

static int named(char *const *flags, int n, const char *name)
{
    int i;

    for (i = 0; name && i < n; i++)
        if (strcmp(flags[i], name) == 0)
            return 1;
    return 0;
}

int thaw_compat_resolve(const char *file, const char *date, char *const *flags, int nflags,
                        const char *today, char *out, size_t outlen, char *err,
                        size_t errlen)
{
    size_t k = 0;
    int i, j, first = 1;

    if (!valid_date(date)) {
        snprintf(err, errlen, "%s: `compatibility_date` must be a date like \"%s\"", file,
                 today);
        return -1;
    }
    if (strcmp(date, today) > 0) {
        snprintf(err, errlen,
                 "%s: `compatibility_date` %s is in the future: use today's date (%s) or "
                 "an earlier one", file, date, today);
        return -1;
    }
    for (i = 0; i < nflags; i++) {
        int known = 0;
        for (j = 0; j < thaw_n_compat_flags; j++) {
            const struct thaw_compat_flag *f = &thaw_compat_flags[j];
            if (strcmp(flags[i], f->name) == 0 || (f->disable && strcmp(flags[i], f->disable) == 0))
                known = 1;
            if (f->disable && strcmp(flags[i], f->name) == 0 && named(flags, nflags, f->disable)) {
                snprintf(err, errlen, "%s: `compatibility_flags` has both %s and %s", file,
                         f->name, f->disable);
                return -1;
            }
        }
        if (!known) {
            int n = snprintf(err, errlen,
                             "%s: unknown compatibility flag \"%s\"; thaw knows:", file,
                             flags[i]);
            for (j = 0; j < thaw_n_compat_flags && n > 0 && (size_t)n < errlen; j++)
                n += snprintf(err + n, errlen - (size_t)n, " %s", thaw_compat_flags[j].name);
            return -1;
        }
    }
    k += (size_t)snprintf(out + k, outlen - k, "[");
    for (j = 0; j < thaw_n_compat_flags && k < outlen; j++) {
        const struct thaw_compat_flag *f = &thaw_compat_flags[j];
        int on = named(flags, nflags, f->name) ||
                 (f->enable_date && strcmp(date, f->enable_date) >= 0);
        if (f->disable && named(flags, nflags, f->disable))
            on = 0;
        if (on) {
            k += (size_t)snprintf(out + k, outlen - k, "%s\"%s\"", first ? "" : ",", f->name);
            first = 0;
        }
    }
    if (k < outlen)
        snprintf(out + k, outlen - k, "]");
    return k + 2 > outlen ? -1 : 0;
}
