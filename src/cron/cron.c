/* Parsing cron expressions and finding when they fire next (cron.h). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cron/cron.h"

enum field { F_MINUTE, F_HOUR, F_DOM, F_MONTH, F_DOW, N_FIELDS };

static const struct {
    const char *name;
    int min, max;
} FIELDS[N_FIELDS] = {
    {"minute", 0, 59},
    {"hour", 0, 23},
    {"day-of-month", 1, 31},
    {"month", 1, 12},
    {"day-of-week", 1, 7},
};

static const char *const MONTHS[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                     "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
/* Cloudflare (like Quartz) numbers weekdays from 1 = Sunday */
static const char *const WEEKDAYS[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

struct parser {
    const char *p;     /* the next character of the current item */
    enum field f;
    char *err;
    size_t errlen;
};

static int fail(struct parser *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "<what went wrong> in the <name> field" into ps->err; returns -1. */
static int fail(struct parser *ps, const char *fmt, ...)
{
    char msg[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(ps->err, ps->errlen, "%s in the %s field", msg, FIELDS[ps->f].name);
    return -1;
}

/* A name of the field's table (3 letters, any case) at ps->p: its value,
 * or 0 when there is none there. */
static int name_at(struct parser *ps)
{
    const char *const *names = ps->f == F_MONTH ? MONTHS : ps->f == F_DOW ? WEEKDAYS : NULL;
    int n = ps->f == F_MONTH ? 12 : 7, i;

    if (!names || !isalpha((unsigned char)ps->p[0]) || !isalpha((unsigned char)ps->p[1]) ||
        !isalpha((unsigned char)ps->p[2]))
        return 0;
    for (i = 0; i < n; i++)
        if (strncasecmp(ps->p, names[i], 3) == 0) {
            ps->p += 3;
            return i + 1;
        }
    return 0;
}

static int number(struct parser *ps, int *out)
{
    long v = 0;

    if (!isdigit((unsigned char)*ps->p))
        return -1;
    while (isdigit((unsigned char)*ps->p)) {
        v = v * 10 + (*ps->p++ - '0');
        if (v > 9999)
            v = 9999; /* reported as out of range below */
    }
    *out = (int)v;
    return 0;
}

/* A value of the field: a number in its range, or a name. */
static int value(struct parser *ps, int *out)
{
    int v = name_at(ps);
    char bad[2] = {*ps->p, 0};

    if (v) {
        *out = v;
        return 0;
    }
    if (number(ps, &v)) {
        if (isalpha((unsigned char)*ps->p))
            return fail(ps, "unknown name \"%.3s\"", ps->p);
        if (!*ps->p || *ps->p == ',')
            return fail(ps, "a value is missing");
        return fail(ps, "unexpected \"%s\"", bad);
    }
    if (ps->f == F_DOW && v == 0)
        return fail(ps, "weekday 0 is not valid: weekdays are numbered 1-7 with 1 = "
                        "Sunday as on Cloudflare (or use SUN-SAT)");
    if (v < FIELDS[ps->f].min || v > FIELDS[ps->f].max)
        return fail(ps, "%d is out of range %d-%d", v, FIELDS[ps->f].min,
                    FIELDS[ps->f].max);
    *out = v;
    return 0;
}

static void set_bits(struct thaw_cron *c, enum field f, int lo, int hi, int step)
{
    int v;

    for (v = lo; v <= hi; v += step) {
        switch (f) {
        case F_MINUTE: c->minute |= 1ULL << v; break;
        case F_HOUR: c->hour |= 1U << v; break;
        case F_DOM: c->dom |= 1U << v; break;
        case F_MONTH: c->month |= (uint16_t)(1U << v); break;
        case F_DOW: c->dow |= (uint8_t)(1U << (v - 1)); break;
        default: break;
        }
    }
}

static int step(struct parser *ps, int *out)
{
    if (*ps->p != '/') {
        *out = 1;
        return 0;
    }
    ps->p++;
    if (number(ps, out))
        return fail(ps, "a step needs a number after \"/\"");
    if (*out == 0)
        return fail(ps, "step 0");
    return 0;
}

/* `L`, `L-n` and `LW` of the day of month; ps->p is just after the L. */
static int dom_last(struct parser *ps, struct thaw_cron *c)
{
    int n = 0;

    if (*ps->p == 'W' || *ps->p == 'w') {
        ps->p++;
        c->dom_last_wd = 1;
        return 0;
    }
    if (*ps->p == '-') {
        ps->p++;
        if (number(ps, &n) || n > 30)
            return fail(ps, "\"L-\" needs a number of days 0-30");
    }
    c->dom_last |= 1U << n;
    return 0;
}

/* One item of a list. */
static int item(struct parser *ps, struct thaw_cron *c)
{
    int lo, hi, st, k;

    if (*ps->p == '*' || *ps->p == '?') {
        if (*ps->p == '?' && ps->f != F_DOM && ps->f != F_DOW)
            return fail(ps, "\"?\" is only allowed in the day-of-month and day-of-week "
                            "fields, not");
        if (*ps->p++ == '?' && *ps->p == '/')
            return fail(ps, "\"?\" takes no step");
        if (step(ps, &st))
            return -1;
        set_bits(c, ps->f, FIELDS[ps->f].min, FIELDS[ps->f].max, st);
        return 0;
    }
    if (*ps->p == 'L' || *ps->p == 'l') { /* no month or weekday name starts with L */
        ps->p++;
        if (ps->f == F_DOM)
            return dom_last(ps, c);
        if (ps->f == F_DOW) {
            c->dow |= 1U << 6; /* Quartz: L alone is the week's last day, Saturday */
            return 0;
        }
        return fail(ps, "\"L\" is only allowed in the day-of-month and day-of-week "
                        "fields, not");
    }
    if (value(ps, &lo))
        return -1;
    if ((*ps->p == 'W' || *ps->p == 'w') && ps->f == F_DOM) {
        ps->p++;
        c->dom_near |= 1U << lo;
        return 0;
    }
    if ((*ps->p == 'L' || *ps->p == 'l') && ps->f == F_DOW) {
        ps->p++;
        c->dow_last |= (uint8_t)(1U << (lo - 1));
        return 0;
    }
    if (*ps->p == '#' && ps->f == F_DOW) {
        ps->p++;
        if (number(ps, &k) || k < 1 || k > 5)
            return fail(ps, "\"#\" needs a week 1-5 after it");
        c->dow_nth[lo - 1] |= (uint8_t)(1U << (k - 1));
        return 0;
    }
    hi = lo;
    if (*ps->p == '-') {
        ps->p++;
        if (value(ps, &hi))
            return -1;
        if (hi < lo)
            return fail(ps, "range %d-%d runs backwards", lo, hi);
    } else if (*ps->p == '/') {
        hi = FIELDS[ps->f].max; /* a/n: from a to the end, every n */
    }
    if (step(ps, &st))
        return -1;
    set_bits(c, ps->f, lo, hi, st);
    return 0;
}

static int field(struct parser *ps, struct thaw_cron *c, const char *text)
{
    ps->p = text;
    if (ps->f == F_DOM)
        c->dom_star = text[0] == '*' || text[0] == '?';
    if (ps->f == F_DOW)
        c->dow_star = text[0] == '*' || text[0] == '?';
    for (;;) {
        if (item(ps, c))
            return -1;
        if (!*ps->p)
            return 0;
        if (*ps->p != ',') {
            char bad[2] = {*ps->p, 0};
            return fail(ps, "unexpected \"%s\"", bad);
        }
        ps->p++;
    }
}

int thaw_cron_parse(const char *expr, struct thaw_cron *c, char *err, size_t errlen)
{
    struct parser ps = {.err = err, .errlen = errlen};
    char buf[256], *tok[N_FIELDS + 1], *save = NULL, *t;
    int n = 0;

    memset(c, 0, sizeof(*c));
    if (strlen(expr) >= sizeof(buf)) {
        snprintf(err, errlen, "the expression is too long (over %zu characters)",
                 sizeof(buf) - 1);
        return -1;
    }
    strcpy(buf, expr);
    for (t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (n == N_FIELDS) {
            n++;
            break;
        }
        tok[n++] = t;
    }
    if (n != N_FIELDS) {
        snprintf(err, errlen, "a cron expression has 5 fields (minute hour day-of-month "
                 "month day-of-week), this one has %s%d%s", n > N_FIELDS ? "more than " : "",
                 n > N_FIELDS ? N_FIELDS : n,
                 n > N_FIELDS ? " (thaw and Cloudflare have no seconds or year field)" : "");
        return -1;
    }
    for (ps.f = 0; ps.f < N_FIELDS; ps.f++)
        if (field(&ps, c, tok[ps.f]))
            return -1;
    if (thaw_cron_next(c, 0) < 0) {
        snprintf(err, errlen, "it never fires: no date has that day of the month in "
                 "those months");
        return -1;
    }
    return 0;
}

/* ---- calendar ------------------------------------------------------- */

/* Days since 1970-01-01 -> year, month (1-12), day (1-31); Howard
 * Hinnant's civil_from_days, valid for every int64 day we meet. */
static void civil(int64_t z, int *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int days_in(int y, int m)
{
    static const int n[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : n[m - 1];
}

/* Weekday (0 = Sunday) of day d, given weekday wd of day ref. */
static int wd_of(int d, int ref, int wd)
{
    return ((wd + d - ref) % 7 + 7) % 7;
}

/* The weekday (Mon-Fri) nearest day n of the month, not leaving it. */
static int nearest_weekday(int n, int ndays, int ref, int wd)
{
    int w = wd_of(n, ref, wd);

    if (w == 6)
        return n == 1 ? 3 : n - 1;
    if (w == 0)
        return n == ndays ? n - 2 : n + 1;
    return n;
}

static int dom_ok(const struct thaw_cron *c, int d, int ndays, int wd)
{
    int n;

    if (c->dom & (1U << d))
        return 1;
    if (ndays - d <= 30 && (c->dom_last & (1U << (ndays - d))))
        return 1;
    if (c->dom_last_wd) {
        int last = ndays, w = wd_of(last, d, wd);
        last -= w == 0 ? 2 : w == 6 ? 1 : 0;
        if (d == last)
            return 1;
    }
    for (n = 1; n <= ndays && c->dom_near >> n; n++)
        if ((c->dom_near & (1U << n)) && nearest_weekday(n, ndays, d, wd) == d)
            return 1;
    return 0;
}

static int dow_ok(const struct thaw_cron *c, int d, int ndays, int wd)
{
    return (c->dow & (1U << wd)) || ((c->dow_last & (1U << wd)) && d + 7 > ndays) ||
           (c->dow_nth[wd] & (1U << ((d - 1) / 7)));
}

/* Whether c fires on day d (y, m, d known; wd its weekday). */
static int day_ok_ymd(const struct thaw_cron *c, int y, int m, int d, int wd)
{
    int ndays = days_in(y, m);

    if (!(c->month & (1U << m)))
        return 0;
    if (c->dom_star || c->dow_star)
        return dom_ok(c, d, ndays, wd) && dow_ok(c, d, ndays, wd);
    return dom_ok(c, d, ndays, wd) || dow_ok(c, d, ndays, wd);
}

static int weekday(int64_t day)
{
    return (int)(((day % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
}

static int day_ok(const struct thaw_cron *c, int64_t day)
{
    int y, m, d;

    civil(day, &y, &m, &d);
    return day_ok_ymd(c, y, m, d, weekday(day));
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

int thaw_cron_matches(const struct thaw_cron *c, int64_t t)
{
    int64_t day = floor_div(t, 86400), sec = t - day * 86400;

    return day_ok(c, day) && (c->hour & (1U << (sec / 3600))) &&
           (c->minute & (1ULL << (sec % 3600 / 60)));
}

/* The Gregorian calendar, weekdays included, repeats every 400 years
 * (146097 days, a whole number of weeks): what does not fire within them
 * never does. Months the expression skips are jumped over whole. */
#define SEARCH_DAYS 146097

int64_t thaw_cron_next(const struct thaw_cron *c, int64_t after)
{
    int64_t t = floor_div(after, 60) * 60 + 60;
    int64_t day = floor_div(t, 86400), first = day;
    int h0 = (int)((t - day * 86400) / 3600), m0 = (int)((t - day * 86400) % 3600 / 60);

    while (day <= first + SEARCH_DAYS) {
        int y, m, d, h, mi;
        civil(day, &y, &m, &d);
        if (!(c->month & (1U << m))) {
            day += days_in(y, m) - d + 1; /* to the 1st of the next month */
            h0 = m0 = 0;
            continue;
        }
        if (day_ok_ymd(c, y, m, d, weekday(day))) {
            for (h = h0; h < 24; h++, m0 = 0) {
                if (!(c->hour & (1U << h)))
                    continue;
                for (mi = m0; mi < 60; mi++)
                    if (c->minute & (1ULL << mi))
                        return day * 86400 + h * 3600 + mi * 60;
            }
        }
        day++;
        h0 = m0 = 0;
    }
    return -1;
}
