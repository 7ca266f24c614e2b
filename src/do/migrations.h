/* The `migrations` list of a worker config, applied in order to an empty
 * set of classes, as Cloudflare applies them at deploy. Internal to
 * src/do/ (config.c). */
#ifndef THAW_DO_MIGRATIONS_H
#define THAW_DO_MIGRATIONS_H

#include <jansson.h>
#include <stddef.h>

struct thaw_do_classes {
    /* class name -> {"origin": first name, "sqlite": bool, "tag": tag} */
    json_t *live;
    /* class name -> tag of the migration that deleted or renamed it away */
    json_t *gone;
    /* the tags, in order */
    json_t *tags;
    /* [{"origin": first name, "tag": tag}]: each class deleted, in order
     * (its objects' data is deleted when its tag first applies, bind.c) */
    json_t *deleted;
};

/* migs may be NULL (no `migrations`). Fills out (json objects and an array
 * the caller decrefs, also on error). 0, or -1 with err naming the file,
 * the migration and the fix. */
int thaw__do_migrations(json_t *migs, const char *file, struct thaw_do_classes *out,
                        char *err, size_t errlen);
void thaw__do_classes_free(struct thaw_do_classes *c);

#endif
