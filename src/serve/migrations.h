/* The admin API's D1 migrations of a deployed worker (migrations.c). */
#ifndef THAW_SERVE_MIGRATIONS_H
#define THAW_SERVE_MIGRATIONS_H

#include "serve/api.h"

struct thaw_fleet;
struct thaw_hosted;

/* GET (apply 0) or POST .../apply (apply 1) for the database db (binding
 * or database_name) of h; answers r now or when the SQL ran. */
void thaw_migrations_handle(struct thaw_fleet *f, struct thaw_hosted *h, const char *db,
                            int apply, struct thaw_api_req *r);

#endif
