/* Exchanges whose outcome is their status, and failures' messages
 * (outcome.h). */
#include <stdio.h>
#include <string.h>

#include "util/outcome.h"

static void on_resp_head(struct thaw_exchange *ex, int status, const char *reason,
                         const char **names, const char **values, int n)
{
    ((struct thaw_outcome_ex *)ex)->status = status;
}

static void on_resp_body(struct thaw_exchange *ex, const char *p, size_t n)
{
    /* the outcome is the status; the instance logged what went wrong */
}

static void on_resp_end(struct thaw_exchange *ex)
{
    struct thaw_outcome_ex *o = (struct thaw_outcome_ex *)ex;

    o->done(o, o->status, NULL);
}

static void on_fail(struct thaw_exchange *ex, int status, const char *msg)
{
    struct thaw_outcome_ex *o = (struct thaw_outcome_ex *)ex;

    o->done(o, status, msg && *msg ? msg : o->fail_default);
}

const struct thaw_exchange_ops thaw_outcome_ops = {
    .on_resp_head = on_resp_head,
    .on_resp_body = on_resp_body,
    .on_resp_end = on_resp_end,
    .on_fail = on_fail,
};

char *thaw_fail_text(char *out, size_t n, const char *msg, const char *dflt)
{
    size_t len;

    snprintf(out, n, "%s", msg && *msg ? msg : dflt);
    len = strlen(out);
    while (len && out[len - 1] == '\n')
        out[--len] = 0;
    return out;
}
