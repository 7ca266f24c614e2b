/* Cron expressions: parsing (and its error messages) and the next fire
 * time across hour, day, month and year boundaries, leap days, the
 * day-of-month / day-of-week rule, names, steps and the Quartz forms. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "cron/cron.h"

/* "YYYY-MM-DD HH:MM" (UTC) -> seconds */
static int64_t at(const char *s)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    assert_non_null(strptime(s, "%Y-%m-%d %H:%M", &tm));
    return (int64_t)timegm(&tm);
}

/* The next fire time after `from` as "YYYY-MM-DD HH:MM Day". */
static const char *next(const char *expr, const char *from)
{
    static char out[64];
    struct thaw_cron c;
    char err[256];
    int64_t t;
    time_t tt;
    struct tm tm;

    if (thaw_cron_parse(expr, &c, err, sizeof(err)))
        fail_msg("parse \"%s\": %s", expr, err);
    t = thaw_cron_next(&c, at(from));
    if (t < 0)
        return "never";
    assert_int_equal(t % 60, 0);
    assert_true(thaw_cron_matches(&c, t));
    tt = (time_t)t;
    gmtime_r(&tt, &tm);
    strftime(out, sizeof(out), "%Y-%m-%d %H:%M %a", &tm);
    return out;
}

static const char *error_of(const char *expr)
{
    static char err[256];
    struct thaw_cron c;

    err[0] = 0;
    if (thaw_cron_parse(expr, &c, err, sizeof(err)) == 0)
        return "(accepted)";
    return err;
}

static void every_minute_and_steps(void **state)
{
    assert_string_equal(next("* * * * *", "2024-05-01 10:00"), "2024-05-01 10:01 Wed");
    /* strictly after: a time on the boundary gives the one after it */
    assert_string_equal(next("*/5 * * * *", "2024-05-01 10:05"), "2024-05-01 10:10 Wed");
    assert_string_equal(next("*/5 * * * *", "2024-05-01 10:07"), "2024-05-01 10:10 Wed");
    assert_string_equal(next("*/5 * * * *", "2024-05-01 23:58"), "2024-05-02 00:00 Thu");
    assert_string_equal(next("10-30/10 * * * *", "2024-05-01 10:20"), "2024-05-01 10:30 Wed");
    assert_string_equal(next("10-30/10 * * * *", "2024-05-01 10:30"), "2024-05-01 11:10 Wed");
    /* a/n: from a to the end of the field */
    assert_string_equal(next("50/4 * * * *", "2024-05-01 10:55"), "2024-05-01 10:58 Wed");
    assert_string_equal(next("50/4 * * * *", "2024-05-01 10:58"), "2024-05-01 11:50 Wed");
    assert_string_equal(next("0 */6 * * *", "2024-05-01 12:00"), "2024-05-01 18:00 Wed");
}

static void lists_and_ranges(void **state)
{
    assert_string_equal(next("5,35 9-10 * * *", "2024-05-01 09:35"), "2024-05-01 10:05 Wed");
    assert_string_equal(next("5,35 9-10 * * *", "2024-05-01 10:35"), "2024-05-02 09:05 Thu");
    assert_string_equal(next("0 0 1,15 * *", "2024-05-02 00:00"), "2024-05-15 00:00 Wed");
}

static void month_and_year_boundaries(void **state)
{
    assert_string_equal(next("0 0 1 * *", "2024-12-31 23:59"), "2025-01-01 00:00 Wed");
    assert_string_equal(next("59 23 31 12 *", "2024-12-31 23:59"), "2025-12-31 23:59 Wed");
    /* day 31 skips the months without one */
    assert_string_equal(next("0 12 31 * *", "2024-04-01 00:00"), "2024-05-31 12:00 Fri");
    assert_string_equal(next("0 12 31 * *", "2024-05-31 12:00"), "2024-07-31 12:00 Wed");
}

static void leap_day(void **state)
{
    assert_string_equal(next("0 0 29 2 *", "2024-03-01 00:00"), "2028-02-29 00:00 Tue");
    assert_string_equal(next("0 0 29 2 *", "2023-01-01 00:00"), "2024-02-29 00:00 Thu");
    /* 2100 is not a leap year: eight years from 2096 */
    assert_string_equal(next("0 0 29 2 *", "2096-03-01 00:00"), "2104-02-29 00:00 Fri");
    assert_string_equal(next("0 0 L 2 *", "2024-01-01 00:00"), "2024-02-29 00:00 Thu");
    /* 29 February on a Sunday (a starred day of week: both must match):
     * 40 years apart here; found, not given up on */
    assert_string_equal(next("0 0 29 2 */7", "2089-01-01 00:00"), "2128-02-29 00:00 Sun");
    /* what the fuzzer found: the weekday nearest 29 February, when it is a
     * Tuesday or a Thursday (a step of 2 from Sunday: Sun, Tue, Thu, Sat) */
    assert_string_equal(next("0 5 29W 2 */2", "2099-12-31 23:59"), "2120-02-29 05:00 Thu");
    assert_string_equal(next("0 0 L 2 *", "2025-01-01 00:00"), "2025-02-28 00:00 Fri");
}

static void names_any_case(void **state)
{
    assert_string_equal(next("0 9 * jan,Jul *", "2024-02-01 00:00"), "2024-07-01 09:00 Mon");
    assert_string_equal(next("10 7 * * mon-fri", "2024-05-03 07:10"), "2024-05-06 07:10 Mon");
    assert_string_equal(next("0 17 * * SUN", "2024-05-01 00:00"), "2024-05-05 17:00 Sun");
    assert_string_equal(next("0 0 * MAR-may SaT", "2024-01-01 00:00"), "2024-03-02 00:00 Sat");
}

/* Cloudflare's numbering: 1 = Sunday ... 7 = Saturday */
static void weekdays_count_from_sunday(void **state)
{
    assert_string_equal(next("0 17 * * 1", "2024-05-01 00:00"), "2024-05-05 17:00 Sun");
    assert_string_equal(next("10 7 * * 2-6", "2024-05-04 00:00"), "2024-05-06 07:10 Mon");
    assert_string_equal(next("0 0 * * 7", "2024-05-01 00:00"), "2024-05-04 00:00 Sat");
    assert_string_equal(next("0 0 * * 1-7", "2024-05-01 00:00"), "2024-05-02 00:00 Thu");
}

/* Both day fields restricted: either one matches (Vixie cron); one of them
 * starred (`*`, `* /n`, `?`): both must. */
static void dom_dow_rule(void **state)
{
    /* the 13th, or any Friday */
    assert_string_equal(next("0 0 13 * FRI", "2024-05-01 00:00"), "2024-05-03 00:00 Fri");
    assert_string_equal(next("0 0 13 * FRI", "2024-05-10 00:00"), "2024-05-13 00:00 Mon");
    /* starred day of month: Fridays only */
    assert_string_equal(next("0 0 * * FRI", "2024-05-10 00:00"), "2024-05-17 00:00 Fri");
    assert_string_equal(next("0 0 ? * FRI", "2024-05-10 00:00"), "2024-05-17 00:00 Fri");
    /* starred with a step: odd days that are also Mondays */
    assert_string_equal(next("0 0 */2 * MON", "2024-05-01 00:00"), "2024-05-13 00:00 Mon");
}

static void quartz_last_and_weekday_forms(void **state)
{
    /* L: last day of the month; L-n: n days before it */
    assert_string_equal(next("0 0 L * *", "2024-04-01 00:00"), "2024-04-30 00:00 Tue");
    assert_string_equal(next("0 0 L-2 * *", "2024-04-01 00:00"), "2024-04-28 00:00 Sun");
    /* LW: the last weekday (2024-03-31 is a Sunday) */
    assert_string_equal(next("59 23 LW * *", "2024-03-01 00:00"), "2024-03-29 23:59 Fri");
    assert_string_equal(next("59 23 LW * *", "2024-04-01 00:00"), "2024-04-30 23:59 Tue");
    /* nW: the weekday nearest day n, within the month (2024-06-01 is a
     * Saturday: the Monday after, not the Friday before) */
    assert_string_equal(next("0 0 1W * *", "2024-05-15 00:00"), "2024-06-03 00:00 Mon");
    assert_string_equal(next("0 0 15W * *", "2024-06-01 00:00"), "2024-06-14 00:00 Fri");
    assert_string_equal(next("0 0 16W * *", "2024-06-01 00:00"), "2024-06-17 00:00 Mon");
    /* nL: the last such weekday; n#k: the k-th */
    assert_string_equal(next("0 18 * * 6L", "2024-05-01 00:00"), "2024-05-31 18:00 Fri");
    assert_string_equal(next("0 18 * * friL", "2024-06-01 00:00"), "2024-06-28 18:00 Fri");
    assert_string_equal(next("0 10 * * MON#2", "2024-05-01 00:00"), "2024-05-13 10:00 Mon");
    assert_string_equal(next("0 10 * * 2#1", "2024-05-07 00:00"), "2024-06-03 10:00 Mon");
    /* a fifth Thursday only in the months that have one */
    assert_string_equal(next("0 0 * * THU#5", "2024-06-01 00:00"), "2024-08-29 00:00 Thu");
    /* L alone in the day of week: Saturday (Quartz) */
    assert_string_equal(next("0 0 * * L", "2024-05-01 00:00"), "2024-05-04 00:00 Sat");
}

static void matches(void **state)
{
    struct thaw_cron c;
    char err[200];

    assert_int_equal(thaw_cron_parse("30 8 * * *", &c, err, sizeof(err)), 0);
    assert_true(thaw_cron_matches(&c, at("2024-05-01 08:30") + 59));
    assert_false(thaw_cron_matches(&c, at("2024-05-01 08:31")));
    /* before 1970 too: the calendar arithmetic floors */
    assert_true(thaw_cron_matches(&c, at("1969-12-31 08:30")));
    assert_string_equal(next("0 0 1 1 *", "1969-06-01 00:00"), "1970-01-01 00:00 Thu");
}

static void whitespace(void **state)
{
    assert_string_equal(next("  0\t12  * * *  ", "2024-05-01 00:00"), "2024-05-01 12:00 Wed");
}

static void errors(void **state)
{
    assert_string_equal(error_of("*/0 * * * *"), "step 0 in the minute field");
    assert_string_equal(error_of("* 24 * * *"), "24 is out of range 0-23 in the hour field");
    assert_string_equal(error_of("* * 0 * *"),
                        "0 is out of range 1-31 in the day-of-month field");
    assert_string_equal(error_of("* * * 13 *"), "13 is out of range 1-12 in the month field");
    assert_string_equal(error_of("* * * * 8"),
                        "8 is out of range 1-7 in the day-of-week field");
    assert_non_null(strstr(error_of("* * * * 0"), "weekday 0 is not valid: weekdays are "
                                                  "numbered 1-7 with 1 = Sunday"));
    assert_string_equal(error_of("* * * * *"), "(accepted)");
    assert_string_equal(error_of("* * * *"),
                        "a cron expression has 5 fields (minute hour day-of-month month "
                        "day-of-week), this one has 4");
    assert_non_null(strstr(error_of("0 * * * * *"), "has more than 5 (thaw and Cloudflare "
                                                    "have no seconds or year field)"));
    assert_non_null(strstr(error_of(""), "this one has 0"));
    assert_string_equal(error_of("30-10 * * * *"),
                        "range 30-10 runs backwards in the minute field");
    assert_string_equal(error_of("* * * FOO *"), "unknown name \"FOO\" in the month field");
    assert_string_equal(error_of("* * * * MON-XYZ"),
                        "unknown name \"XYZ\" in the day-of-week field");
    assert_string_equal(error_of("* JAN * * *"), "unknown name \"JAN\" in the hour field");
    assert_string_equal(error_of("1,,2 * * * *"), "a value is missing in the minute field");
    assert_string_equal(error_of("1, * * * *"), "a value is missing in the minute field");
    assert_string_equal(error_of("*/ * * * *"),
                        "a step needs a number after \"/\" in the minute field");
    assert_string_equal(error_of("5x * * * *"), "unexpected \"x\" in the minute field");
    assert_string_equal(error_of("L * * * *"),
                        "\"L\" is only allowed in the day-of-month and day-of-week fields, "
                        "not in the minute field");
    assert_string_equal(error_of("? * * * *"),
                        "\"?\" is only allowed in the day-of-month and day-of-week fields, "
                        "not in the minute field");
    assert_string_equal(error_of("* * 5W * 2#6"),
                        "\"#\" needs a week 1-5 after it in the day-of-week field");
    assert_string_equal(error_of("* * 1#2 * *"), "unexpected \"#\" in the day-of-month field");
    assert_string_equal(error_of("* * * * 2W"), "unexpected \"W\" in the day-of-week field");
    assert_string_equal(error_of("0 0 30 2 *"),
                        "it never fires: no date has that day of the month in those months");
    assert_string_equal(error_of("0 0 31 4,6,9,11 *"),
                        "it never fires: no date has that day of the month in those months");
    /* either day field may save it */
    assert_string_equal(error_of("0 0 30 2 MON"), "(accepted)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_minute_and_steps),
        cmocka_unit_test(lists_and_ranges),
        cmocka_unit_test(month_and_year_boundaries),
        cmocka_unit_test(leap_day),
        cmocka_unit_test(names_any_case),
        cmocka_unit_test(weekdays_count_from_sunday),
        cmocka_unit_test(dom_dow_rule),
        cmocka_unit_test(quartz_last_and_weekday_forms),
        cmocka_unit_test(matches),
        cmocka_unit_test(whitespace),
        cmocka_unit_test(errors),
    };
    return cmocka_run_group_tests_name("cron", tests, NULL, NULL);
}
