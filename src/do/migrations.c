/* `migrations = [{tag, new_sqlite_classes, new_classes, renamed_classes,
 * deleted_classes}]`: each migration changes the set of Durable Object
 * classes the worker has; applied in order from nothing, they give the
 * classes a version may bind. Every step Cloudflare would refuse at deploy
 * is refused here with the migration's index and tag. */
#include <stdio.h>
#include <string.h>

#include "do/migrations.h"
#include "util/log.h"

/* What a migration may hold; anything else is logged and ignored. */
static const char *const KNOWN[] = {
    "tag", "new_classes", "new_sqlite_classes", "renamed_classes", "deleted_classes",
    "transferred_classes", NULL,
};

static int known(const char *key)
{
    int i;

    for (i = 0; KNOWN[i]; i++)
        if (strcmp(KNOWN[i], key) == 0)
            return 1;
    return 0;
}

void thaw__do_classes_free(struct thaw_do_classes *c)
{
    json_decref(c->live);
    json_decref(c->gone);
    json_decref(c->tags);
    json_decref(c->deleted);
    memset(c, 0, sizeof(*c));
}

/* "migrations[2] (tag "v3")", for messages. */
static const char *where(char *buf, size_t n, size_t i, const char *tag)
{
    snprintf(buf, n, "migrations[%zu] (tag \"%s\")", i, tag);
    return buf;
}

static int string_list(json_t *v, const char *file, const char *at, const char *key,
                       char *err, size_t errlen)
{
    size_t i;
    json_t *s;

    if (!json_is_array(v))
        goto bad;
    json_array_foreach(v, i, s)
        if (!json_is_string(s) || !*json_string_value(s))
            goto bad;
    return 0;
bad:
    snprintf(err, errlen, "%s: %s: `%s` must be an array of class names, like [\"Counter\"]",
             file, at, key);
    return -1;
}

static int create(struct thaw_do_classes *c, const char *file, const char *at,
                  const char *key, const char *tag, json_t *names, int sqlite,
                  char *err, size_t errlen)
{
    size_t i;
    json_t *s;

    json_array_foreach(names, i, s) {
        const char *name = json_string_value(s);
        json_t *had = json_object_get(c->live, name);
        if (had) {
            snprintf(err, errlen,
                     "%s: %s: `%s` creates class \"%s\", which migration \"%s\" already "
                     "created: a class is created once; remove it here",
                     file, at, key, name,
                     json_string_value(json_object_get(had, "tag")));
            return -1;
        }
        json_object_set_new(c->live, name,
                            json_pack("{s:s, s:b, s:s}", "origin", name, "sqlite", sqlite,
                                      "tag", tag));
        json_object_del(c->gone, name); /* a deleted name may be used again */
    }
    return 0;
}

static int missing(struct thaw_do_classes *c, const char *file, const char *at,
                   const char *key, const char *name, char *err, size_t errlen)
{
    json_t *by = json_object_get(c->gone, name);

    if (by)
        snprintf(err, errlen,
                 "%s: %s: `%s` names class \"%s\", which migration \"%s\" already deleted "
                 "or renamed away", file, at, key, name, json_string_value(by));
    else
        snprintf(err, errlen,
                 "%s: %s: `%s` names class \"%s\", which no earlier migration created: "
                 "check the name, or create it first with `new_sqlite_classes`",
                 file, at, key, name);
    return -1;
}

static int rename_all(struct thaw_do_classes *c, const char *file, const char *at,
                      const char *tag, json_t *list, char *err, size_t errlen)
{
    size_t i;
    json_t *r;

    if (!json_is_array(list))
        goto bad;
    json_array_foreach(list, i, r) {
        const char *from, *to;
        json_t *cls;
        if (!json_is_object(r) || !json_is_string(json_object_get(r, "from")) ||
            !json_is_string(json_object_get(r, "to")))
            goto bad;
        from = json_string_value(json_object_get(r, "from"));
        to = json_string_value(json_object_get(r, "to"));
        if (!(cls = json_object_get(c->live, from)))
            return missing(c, file, at, "renamed_classes", from, err, errlen);
        if (json_object_get(c->live, to)) {
            snprintf(err, errlen,
                     "%s: %s: `renamed_classes` renames \"%s\" to \"%s\", which already "
                     "exists: pick a new name, or delete \"%s\" in an earlier migration",
                     file, at, from, to, to);
            return -1;
        }
        /* the objects (and their ids) follow the class to its new name */
        json_incref(cls);
        json_object_del(c->live, from);
        json_object_set_new(c->live, to, cls);
        json_object_set_new(c->gone, from, json_string(tag));
        json_object_del(c->gone, to);
    }
    return 0;
bad:
    snprintf(err, errlen,
             "%s: %s: `renamed_classes` must be an array of tables like "
             "{ from = \"OldName\", to = \"NewName\" }", file, at);
    return -1;
}

static int delete_all(struct thaw_do_classes *c, const char *file, const char *at,
                      const char *tag, json_t *names, char *err, size_t errlen)
{
    size_t i;
    json_t *s;

    json_array_foreach(names, i, s) {
        const char *name = json_string_value(s);
        json_t *cls = json_object_get(c->live, name);
        if (!cls)
            return missing(c, file, at, "deleted_classes", name, err, errlen);
        json_array_append_new(c->deleted, json_pack("{s:O, s:s}", "origin",
                                                    json_object_get(cls, "origin"), "tag", tag));
        json_object_del(c->live, name);
        json_object_set_new(c->gone, name, json_string(tag));
    }
    return 0;
}

/* One migration: its tag checked, then its steps in Cloudflare's order
 * (create, rename, delete). */
static int apply(struct thaw_do_classes *c, json_t *m, size_t i, const char *file,
                 char *err, size_t errlen)
{
    char at[160];
    const char *tag, *key;
    json_t *v, *t;
    size_t j;

    if (!json_is_object(m)) {
        snprintf(err, errlen,
                 "%s: migrations[%zu] must be a table like { tag = \"v1\", "
                 "new_sqlite_classes = [\"Counter\"] }", file, i);
        return -1;
    }
    v = json_object_get(m, "tag");
    if (!json_is_string(v) || !*json_string_value(v)) {
        snprintf(err, errlen,
                 "%s: migrations[%zu]: `tag` must be a non-empty string naming the "
                 "migration, like \"v%zu\" (each migration needs its own)", file, i, i + 1);
        return -1;
    }
    tag = json_string_value(v);
    json_array_foreach(c->tags, j, t) {
        if (strcmp(json_string_value(t), tag) == 0) {
            snprintf(err, errlen,
                     "%s: migrations[%zu]: tag \"%s\" is the tag of migrations[%zu] too: "
                     "tags are unique names; give this migration its own, like \"v%zu\"",
                     file, i, tag, j, i + 1);
            return -1;
        }
    }
    json_array_append_new(c->tags, json_string(tag));
    where(at, sizeof(at), i, tag);
    json_object_foreach(m, key, v) {
        if (!known(key))
            thaw_log("%s: %s: `%s` is not a migration key thaw knows: ignored", file, at,
                     key);
    }
    if (json_object_get(m, "transferred_classes")) {
        snprintf(err, errlen,
                 "%s: %s: `transferred_classes` moves classes from another worker, which "
                 "thaw does not run yet: remove it (docs/bindings/durable-objects.md)",
                 file, at);
        return -1;
    }
    if ((v = json_object_get(m, "new_sqlite_classes")) &&
        (string_list(v, file, at, "new_sqlite_classes", err, errlen) ||
         create(c, file, at, "new_sqlite_classes", tag, v, 1, err, errlen)))
        return -1;
    if ((v = json_object_get(m, "new_classes")) &&
        (string_list(v, file, at, "new_classes", err, errlen) ||
         create(c, file, at, "new_classes", tag, v, 0, err, errlen)))
        return -1;
    if ((v = json_object_get(m, "renamed_classes")) &&
        rename_all(c, file, at, tag, v, err, errlen))
        return -1;
    if ((v = json_object_get(m, "deleted_classes")) &&
        (string_list(v, file, at, "deleted_classes", err, errlen) ||
         delete_all(c, file, at, tag, v, err, errlen)))
        return -1;
    return 0;
}

int thaw__do_migrations(json_t *migs, const char *file, struct thaw_do_classes *out,
                        char *err, size_t errlen)
{
    size_t i;
    json_t *m;

    out->live = json_object();
    out->gone = json_object();
    out->tags = json_array();
    out->deleted = json_array();
    if (!out->live || !out->gone || !out->tags || !out->deleted) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!migs)
        return 0;
    if (!json_is_array(migs)) {
        snprintf(err, errlen,
                 "%s: `migrations` must be an array of tables, like [[migrations]] "
                 "tag = \"v1\" new_sqlite_classes = [\"Counter\"]", file);
        return -1;
    }
    json_array_foreach(migs, i, m)
        if (apply(out, m, i, file, err, errlen))
            return -1;
    return 0;
}
