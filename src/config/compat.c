#include <stdio.h>
#include <string.h>

#include "config/compat.h"
#include "util/editdist.h"

/* The flags thaw acts on, and the Python Workers flags, each with what it
 * does here. Only a flag with an enable_date is switched on by a date: the
 * others are in effect when named. */
const struct thaw_compat_flag thaw_compat_flags[] = {
    {"python_workers", NULL, NULL,
     "accepted for wrangler configs: every worker thaw runs is a Python worker"},
    {"python_no_global_handlers", "disable_python_no_global_handlers", "2025-08-14",
     "handlers live in `class Default(WorkerEntrypoint)`; a module-level `on_fetch` "
     "is not called"},
    {"python_request_headers_preserve_commas",
     "disable_python_request_headers_preserve_commas", "2026-02-17",
     "a request header value that contains commas stays one value (before, it was "
     "split into one value per comma-separated part)"},
    {"python_process_pth_files", "disable_python_process_pth_files", "2026-05-26",
     "the .pth files in python_modules/ are processed (site.addsitedir) before the "
     "worker's top level runs; without it they are ignored"},
    {"python_dedicated_snapshot", "disable_python_dedicated_snapshot", NULL,
     "no effect: thaw always snapshots a worker after its top level ran (the "
     "template process), with or without the flag"},
    {"python_workers_force_new_vendor_path", NULL, NULL,
     "no effect: thaw always puts python_modules/ on sys.path (Cloudflare's behaviour "
     "with the flag, on by default from 2025-08-11)"},
    {"python_check_rng_state", "disable_python_check_rng_state", NULL,
     "no effect: a top level that draws randomness always fails the deploy here "
     "(docs/python-api.md, entropy)"},
    {"python_workers_20250116", "no_python_workers_20250116", NULL,
     "no effect: selects Pyodide 0.28 (Python 3.13) on Cloudflare; thaw runs its own "
     "CPython, and a build whose pyproject.toml requires-python excludes it says so"},
    {"python_workers_314", NULL, NULL,
     "no effect: selects Python 3.14 on Cloudflare (by date from 2026-09-08); thaw "
     "runs its own CPython, and the build checks requires-python against it"},
    {"python_workers_20260610", NULL, NULL,
     "no effect: selects Pyodide 314 on Cloudflare; thaw runs its own CPython"},
    {"python_workers_20260817", NULL, NULL,
     "no effect: an experimental Pyodide release on Cloudflare"},
    {"python_workers_development", NULL, NULL,
     "no effect: Cloudflare's in-development Pyodide bundle"},
    {"enable_python_external_sdk", "disable_python_external_sdk", NULL,
     "no effect: thaw provides the `workers` SDK itself (thaw sync skips "
     "workers-runtime-sdk)"},
    {"python_workflows", "disable_python_workflows", NULL,
     "no effect: thaw does not run Workflows (a WorkflowEntrypoint class may be "
     "defined; no workflow binding reaches it)"},
    {"python_workflows_implicit_dependencies", "no_python_workflows_implicit_dependencies",
     NULL, "no effect: thaw does not run Workflows"},
    {"python_workers_durable_objects", NULL, NULL,
     "no effect: an obsolete flag (Durable Objects need no flag)"},
    {"python_external_packages", NULL, NULL, "no effect: an obsolete flag"},
    {"nodejs_compat", NULL, NULL, "accepted for wrangler configs; no effect on Python"},
    {"nodejs_compat_v2", NULL, NULL, "accepted for wrangler configs; no effect on Python"},
};
const int thaw_n_compat_flags = sizeof(thaw_compat_flags) / sizeof(thaw_compat_flags[0]);

int thaw_compat_known(const char *name)
{
    int i;

    for (i = 0; i < thaw_n_compat_flags; i++)
        if (strcmp(name, thaw_compat_flags[i].name) == 0 ||
            (thaw_compat_flags[i].disable && strcmp(name, thaw_compat_flags[i].disable) == 0))
            return 1;
    for (i = 0; i < thaw_n_compat_inert; i++)
        if (strcmp(name, thaw_compat_inert[i]) == 0)
            return 1;
    return 0;
}

static void consider(const char *name, const char *cand, const char **best, size_t *d)
{
    size_t n;

    if (!cand)
        return;
    n = thaw_edit_distance(name, cand);
    if (n < *d) {
        *d = n;
        *best = cand;
    }
}

const char *thaw_compat_closest(const char *name)
{
    const char *best = thaw_compat_flags[0].name;
    size_t d = (size_t)-1;
    int i;

    for (i = 0; i < thaw_n_compat_flags; i++) {
        consider(name, thaw_compat_flags[i].name, &best, &d);
        consider(name, thaw_compat_flags[i].disable, &best, &d);
    }
    for (i = 0; i < thaw_n_compat_inert; i++)
        consider(name, thaw_compat_inert[i], &best, &d);
    return best;
}

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
        for (j = 0; j < thaw_n_compat_flags; j++) {
            const struct thaw_compat_flag *f = &thaw_compat_flags[j];
            if (f->disable && strcmp(flags[i], f->name) == 0 && named(flags, nflags, f->disable)) {
                snprintf(err, errlen, "%s: `compatibility_flags` has both %s and %s", file,
                         f->name, f->disable);
                return -1;
            }
        }
        if (!thaw_compat_known(flags[i])) {
            snprintf(err, errlen,
                     "%s: unknown compatibility flag \"%s\": Cloudflare defines no such "
                     "flag; did you mean \"%s\"? (docs/compat.md lists the flags)", file,
                     flags[i], thaw_compat_closest(flags[i]));
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
