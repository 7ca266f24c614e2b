/* `triggers.crons` of the config (triggers.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron/triggers.h"
#include "util/log.h"

int thaw_cron_list_from_config(json_t *root, const char *file, struct thaw_cron_list *out,
                               char *err, size_t errlen)
{
    json_t *trig = json_object_get(root, "triggers"), *crons, *v;
    const char *key;
    size_t i;

    memset(out, 0, sizeof(*out));
    if (!trig)
        return 0;
    if (!json_is_object(trig)) {
        snprintf(err, errlen, "%s: `triggers` must be a table/object, like "
                 "triggers = { crons = [\"*/5 * * * *\"] }", file);
        return -1;
    }
    json_object_foreach(trig, key, v)
        if (strcmp(key, "crons") != 0)
            thaw_log("%s: unknown key `triggers.%s` ignored (thaw knows `triggers.crons`)",
                     file, key);
    crons = json_object_get(trig, "crons");
    if (!crons)
        return 0;
    if (!json_is_array(crons)) {
        snprintf(err, errlen, "%s: `triggers.crons` must be an array of cron expressions, "
                 "like [\"*/5 * * * *\"]", file);
        return -1;
    }
    out->exprs = calloc(json_array_size(crons) + 1, sizeof(char *));
    out->crons = calloc(json_array_size(crons) + 1, sizeof(struct thaw_cron));
    if (!out->exprs || !out->crons) {
        snprintf(err, errlen, "%s: out of memory reading `triggers.crons`", file);
        goto fail;
    }
    json_array_foreach(crons, i, v) {
        char why[256];
        if (!json_is_string(v)) {
            snprintf(err, errlen, "%s: triggers.crons[%zu] must be a string, like "
                     "\"*/5 * * * *\"", file, i);
            goto fail;
        }
        if (thaw_cron_parse(json_string_value(v), &out->crons[out->n], why, sizeof(why))) {
            snprintf(err, errlen, "%s: triggers.crons[%zu] \"%s\": %s", file, i,
                     json_string_value(v), why);
            goto fail;
        }
        out->exprs[out->n++] = strdup(json_string_value(v));
    }
    return 0;
fail:
    thaw_cron_list_free(out);
    return -1;
}

void thaw_cron_list_free(struct thaw_cron_list *l)
{
    int i;

    for (i = 0; i < l->n; i++)
        free(l->exprs[i]);
    free(l->exprs);
    free(l->crons);
    memset(l, 0, sizeof(*l));
}
