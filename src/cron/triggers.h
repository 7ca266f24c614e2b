/* `triggers.crons` of a worker's config: checked when the config loads
 * (a bad expression is a config error naming it) and read again by the
 * scheduler. */
#ifndef THAW_CRON_TRIGGERS_H
#define THAW_CRON_TRIGGERS_H

#include <jansson.h>
#include <stddef.h>

#include "cron/cron.h"

struct thaw_cron_list {
    int n;
    char **exprs;              /* as written in the config */
    struct thaw_cron *crons;   /* parsed, same order */
};

/* Reads root's `triggers` (absent: an empty list). Returns 0, or -1 with
 * a message naming the file and the expression, like
 * `wrangler.toml: triggers.crons[1] "61 * * * *": 61 is out of range 0-59
 * in the minute field`. out is empty on error. */
int thaw_cron_list_from_config(json_t *root, const char *file, struct thaw_cron_list *out,
                               char *err, size_t errlen);
void thaw_cron_list_free(struct thaw_cron_list *l);

#endif
