/* Cron expressions as Cloudflare's Cron Triggers read them: five fields
 * (minute hour day-of-month month day-of-week) in UTC, with `*`, ranges,
 * lists, steps, JAN-DEC and SUN-SAT names, and the Quartz extensions
 * Cloudflare documents: `L`, `L-n`, `LW` and `nW` in the day of month,
 * `nL` and `n#k` in the day of week. Weekdays are numbered 1-7 with
 * 1 = Sunday, as on Cloudflare (not 0-6 as in Vixie cron).
 *
 * Pure functions: no clock, no allocation, no global state. */
#ifndef THAW_CRON_H
#define THAW_CRON_H

#include <stddef.h>
#include <stdint.h>

struct thaw_cron {
    uint64_t minute;      /* bit m: minute m (0-59) */
    uint32_t hour;        /* bit h (0-23) */
    uint32_t dom;         /* bit d: day d of the month (1-31) */
    uint16_t month;       /* bit m (1-12) */
    uint8_t dow;          /* bit w: weekday w, 0 = Sunday (inside only) */
    uint8_t dow_last;     /* bit w: the last such weekday of the month (nL) */
    uint8_t dow_nth[7];   /* [w] bit k-1: the k-th such weekday (n#k) */
    uint32_t dom_last;    /* bit n: n days before the month's last (L, L-n) */
    uint32_t dom_near;    /* bit d: the weekday nearest day d (dW) */
    uint8_t dom_last_wd;  /* LW: the month's last weekday (Mon-Fri) */
    /* field began with `*` or was `?`: with one of the two day fields
     * starred both must match, else either one (Vixie cron's rule) */
    uint8_t dom_star, dow_star;
};

/* Parses expr. Returns 0, or -1 with a message in err that names the
 * field and the fault ("step 0 in the minute field"), without the
 * expression itself (the caller knows where it came from). An expression
 * that can never fire (day 30 of February) is refused too. */
int thaw_cron_parse(const char *expr, struct thaw_cron *c, char *err, size_t errlen);

/* Whether c fires at the minute holding t (seconds since the epoch, UTC). */
int thaw_cron_matches(const struct thaw_cron *c, int64_t t);

/* The first minute strictly after `after` (seconds since the epoch, UTC)
 * at which c fires, in seconds (a multiple of 60); -1 when it never fires
 * (only for expressions parse refuses). At worst it walks 400 years of
 * days, so a rare expression (29 February on a Tuesday) costs a few ms. */
int64_t thaw_cron_next(const struct thaw_cron *c, int64_t after);

#endif
