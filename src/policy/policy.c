/* The operator config of `thaw serve` (policy.h). */
#include <stdio.h>
#include <string.h>

#include "policy/policy.h"

/* Every table an operator config may have: a misspelt one would silently
 * leave a wall open, so anything else is refused. */
static const char *const TABLES[] = {"limits", "egress", "kv", "routes", "durable_objects",
                                     "cluster", NULL};

void thaw_policy_init(struct thaw_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->tenant = 1;
    p->root = json_object();
}

int thaw_policy_load_json(struct thaw_policy *p, const char *json, const char *file,
                          char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loads(json, 0, &jerr), *v;
    const char *key;
    int i;

    if (!root || !json_is_object(root)) {
        snprintf(err, errlen, "%s: not a config (line %d: %s)", file, jerr.line,
                 root ? "the top level must be a table" : jerr.text);
        json_decref(root);
        return -1;
    }
    json_object_foreach(root, key, v) {
        for (i = 0; TABLES[i] && strcmp(TABLES[i], key) != 0; i++)
            ;
        if (!TABLES[i]) {
            snprintf(err, errlen, "%s: unknown table `%s` (an operator config has [limits], "
                     "[egress], [kv], [routes], [durable_objects] and [cluster]: see "
                     "docs/security.md)", file, key);
            json_decref(root);
            return -1;
        }
        if (!json_is_object(v)) {
            snprintf(err, errlen, "%s: `%s` must be a table", file, key);
            json_decref(root);
            return -1;
        }
    }
    json_decref(p->root);
    p->root = root;
    snprintf(p->file, sizeof(p->file), "%s", file);
    return 0;
}

json_t *thaw_policy_table(const struct thaw_policy *p, const char *name)
{
    return p && p->root ? json_object_get(p->root, name) : NULL;
}

void thaw_policy_free(struct thaw_policy *p)
{
    json_decref(p->root);
    p->root = NULL;
}
