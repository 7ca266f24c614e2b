/* The admin API's D1 migrations of a deployed worker (docs/api.md):
 *
 *   GET  /v1/workers/NAME/d1/DB/migrations         applied and unapplied files
 *   POST /v1/workers/NAME/d1/DB/migrations/apply   apply the unapplied, in order
 *
 * DB is the binding or the database_name. The files are the serving
 * version's: `migrations_dir` of its bundle (default "migrations"), opened
 * beneath the bundle (util/beneath.h), so a folder or file that leads out
 * of it is refused, not read. The SQL is the tenant's: it runs on the
 * worker's own D1 connection, in its turn, under the D1 policy
 * (bind/d1-migrate.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bind/d1.h"
#include "bind/d1-migrate.h"
#include "cluster/owner.h"
#include "serve/fleet.h"
#include "serve/migrations.h"
#include "util/beneath.h"

/* What one deployed worker's migrations may weigh, all files together. */
#define MAX_MIGRATIONS_BYTES (64u << 20)
#define MAX_MIGRATIONS 10000

struct mig_job {
    struct thaw_api_req *r;   /* NULL once the client left */
    char worker[64], db[256], key[128], mdir[1024];
    char id[512];             /* database_id, else database_name: its owner's key */
    struct thaw_d1_migrate m;
    char table[256];
    char path[4096];          /* its file on this node */
    uv_loop_t *loop;
};

static void job_free(struct mig_job *j)
{
    size_t k;

    for (k = 0; k < j->m.n; k++) {
        free(j->m.files[k].name);
        free(j->m.files[k].sql);
    }
    free(j->m.files);
    free(j);
}

/* ---- the files ---------------------------------------------------------------- */

/* wrangler's order: by leading number, numbered before unnumbered, then
 * by name. Numbers compare by their digits (no overflow). */
static int by_number(const void *a, const void *b)
{
    const char *x = ((const struct thaw_d1_migration *)a)->name;
    const char *y = ((const struct thaw_d1_migration *)b)->name;
    size_t nx = strspn(x, "0123456789"), ny = strspn(y, "0123456789");
    const char *px = x, *py = y;
    size_t lx, ly;
    int c;

    if (!nx != !ny)
        return nx ? -1 : 1;
    while (nx > 1 && *px == '0')
        px++, nx--;
    while (ny > 1 && *py == '0')
        py++, ny--;
    lx = nx, ly = ny;
    if (lx != ly)
        return lx < ly ? -1 : 1;
    if ((c = strncmp(px, py, lx)))
        return c;
    return strcmp(x, y);
}

/* The whole file, opened beneath the bundle; NULL with errno (EFBIG: too
 * big, EILSEQ: a NUL byte in it). */
static char *read_beneath(int bundle, const char *rel, size_t budget, size_t *len)
{
    int fd = thaw_open_beneath(bundle, rel, O_RDONLY);
    struct stat st;
    char *text = NULL;
    ssize_t got;
    size_t n = 0;

    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) < 0)
        goto fail;
    if (!S_ISREG(st.st_mode)) {
        errno = EISDIR; /* a folder named x.sql is not a migration */
        goto fail;
    }
    if ((size_t)st.st_size > budget) {
        errno = EFBIG;
        goto fail;
    }
    if (!(text = malloc((size_t)st.st_size + 1)))
        goto fail;
    while (n < (size_t)st.st_size && (got = read(fd, text + n, (size_t)st.st_size - n)) > 0)
        n += (size_t)got;
    text[n] = '\0';
    if (memchr(text, '\0', n)) {
        errno = EILSEQ;
        goto fail;
    }
    close(fd);
    *len = n;
    return text;
fail:
    free(text);
    close(fd);
    return NULL;
}

/* Lists the *.sql files of the migrations folder (and reads them when applying). 0, or an
 * HTTP status with err. */
static int load_files(struct mig_job *j, const char *bundle_dir, const char *cfgfile,
                      char *err, size_t errlen)
{
    int bundle = open(bundle_dir, O_PATH | O_DIRECTORY | O_CLOEXEC), fd = -1, status = 0;
    size_t budget = MAX_MIGRATIONS_BYTES, cap = 0, len;
    struct thaw_d1_migration *grown;
    struct dirent *e;
    DIR *d = NULL;
    char rel[2048];

    if (bundle >= 0)
        fd = thaw_open_beneath(bundle, j->mdir, O_RDONLY | O_DIRECTORY);
    if (fd < 0 && (errno == EXDEV || errno == ELOOP)) {
        snprintf(err, errlen, "%s: %s \"%s\" is outside the worker's bundle: paths in a "
                 "deployed worker's config are relative to its directory and stay inside "
                 "it (no absolute path, no `..` above it, no symlink out)", cfgfile, j->key,
                 j->mdir);
        status = 400;
    } else if (fd < 0) {
        snprintf(err, errlen, "%s: no migrations folder \"%s\" (%s) in the deployed bundle "
                 "of %s: %s. Create migrations with `thaw d1 migrations create %s MESSAGE` "
                 "and deploy again", cfgfile, j->mdir, j->key, j->worker, strerror(errno),
                 j->db);
        status = 404;
    } else if (!(d = fdopendir(fd))) {
        snprintf(err, errlen, "cannot read %s: %s", j->mdir, strerror(errno));
        close(fd);
        status = 500;
    }
    while (!status && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        struct thaw_d1_migration *f;
        if (n < 5 || strcmp(e->d_name + n - 4, ".sql") != 0 || e->d_name[0] == '.')
            continue;
        if (j->m.n == MAX_MIGRATIONS) {
            snprintf(err, errlen, "%s holds over %d migrations", j->mdir, MAX_MIGRATIONS);
            status = 422;
            break;
        }
        if (j->m.n == cap) {
            cap = cap ? 2 * cap : 32;
            if (!(grown = realloc(j->m.files, cap * sizeof(*grown)))) {
                status = 500;
                snprintf(err, errlen, "out of memory");
                break;
            }
            j->m.files = grown;
        }
        f = &j->m.files[j->m.n];
        memset(f, 0, sizeof(*f));
        if (!(f->name = strdup(e->d_name))) {
            status = 500;
            snprintf(err, errlen, "out of memory");
            break;
        }
        j->m.n++;
        snprintf(rel, sizeof(rel), "%s/%s", j->mdir, e->d_name);
        if (!j->m.apply) {
            struct stat st; /* a folder named x.sql is not a migration */
            if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISDIR(st.st_mode))
                free(j->m.files[--j->m.n].name);
            continue;
        }
        if ((f->sql = read_beneath(bundle, rel, budget, &len))) {
            budget -= len;
        } else if (errno == EISDIR) {
            free(j->m.files[--j->m.n].name);
        } else {
            status = errno == EXDEV || errno == ELOOP ? 400 : 422;
            snprintf(err, errlen, "%.1024s: %s", rel,
                     errno == EXDEV || errno == ELOOP ? "a link out of the worker's bundle"
                     : errno == EFBIG ? "the migrations are over 64 MiB together"
                     : errno == EILSEQ ? "holds a NUL byte: not SQL text" : strerror(errno));
        }
    }
    if (d)
        closedir(d);
    if (bundle >= 0)
        close(bundle);
    if (!status && j->m.n)
        qsort(j->m.files, j->m.n, sizeof(*j->m.files), by_number);
    return status;
}

/* ---- the config ------------------------------------------------------------------ */

/* Finds DB in the worker's d1_databases and fills the job; 0 or a status. */
static int find_db(struct thaw_hosted *h, struct mig_job *j, const char *db, char *path,
                   size_t pathlen, char *err, size_t errlen)
{
    json_t *cfg = json_loads(h->w.cfg.json ? h->w.cfg.json : "{}", 0, NULL);
    json_t *list = json_object_get(cfg, "d1_databases"), *e, *v;
    const char *cfile = h->w.cfg.file ? h->w.cfg.file : "the config", *s;
    char known[1024] = "";
    size_t i, at = 0;
    int status = 404;

    json_array_foreach(list, i, e) {
        const char *b = json_string_value(json_object_get(e, "binding"));
        const char *n = json_string_value(json_object_get(e, "database_name"));
        const char *id = json_string_value(json_object_get(e, "database_id"));
        if (!(b && strcmp(b, db) == 0) && !(n && strcmp(n, db) == 0)) {
            at += (size_t)snprintf(known + at, at < sizeof(known) ? sizeof(known) - at : 0,
                                   "%s%s (%s)", at ? ", " : "", b ? b : "?", n ? n : "?");
            if (at >= sizeof(known))
                at = sizeof(known) - 1;
            continue;
        }
        v = json_object_get(e, id && *id ? "database_id" : "database_name");
        snprintf(j->id, sizeof(j->id), "%s", json_string_value(v));
        thaw_d1_file(h->w.state_dir, json_string_value(v), json_string_length(v), path,
                     pathlen);
        snprintf(j->db, sizeof(j->db), "%s", b ? b : db);
        s = json_string_value(json_object_get(e, "migrations_dir"));
        snprintf(j->mdir, sizeof(j->mdir), "%s", s && *s ? s : "migrations");
        snprintf(j->key, sizeof(j->key), "d1_databases[%zu].migrations_dir%s", i,
                 s && *s ? "" : " (default \"migrations\")");
        s = json_string_value(json_object_get(e, "migrations_table"));
        snprintf(j->table, sizeof(j->table), "%s", s && *s ? s : "d1_migrations");
        status = 0;
        if (json_object_get(e, "migrations_pattern")) {
            snprintf(err, errlen, "%s: d1_databases[%zu].migrations_pattern is not "
                     "supported by thaw yet: keep the migrations as %s/NNNN_name.sql files "
                     "and remove the key", cfile, i, j->mdir);
            status = 400;
        }
        break;
    }
    if (status == 404)
        snprintf(err, errlen, "%s has no D1 database \"%s\" (a binding or database_name)%s%s",
                 h->name, db, known[0] ? ": it has " : "", known);
    json_decref(cfg);
    return status;
}

/* ---- the answer ------------------------------------------------------------------ */

static json_t *names(const struct thaw_d1_migrate *m, int applied)
{
    json_t *a = json_array();
    size_t k;

    for (k = 0; k < m->n; k++)
        if (applied ? m->files[k].applied == applied : !m->files[k].applied)
            json_array_append_new(a, json_string(m->files[k].name));
    return a;
}

static void on_gone(struct thaw_api_req *r)
{
    struct mig_job *j = r->pending;

    j->r = NULL; /* answered by nobody; the SQL stops at its next step */
    __atomic_store_n(&j->m.ctl.cancelled, 1, __ATOMIC_RELAXED);
}

static void on_work(sqlite3 *db, void *arg);
static void on_done(void *arg);

/* Runs the job on this node's file (answered in on_done). */
static void run(struct mig_job *j)
{
    char err[2048];

    if (thaw_d1_run(j->loop, j->worker, j->path, on_work, on_done, j, err, sizeof(err)) < 0) {
        j->r->pending = NULL;
        j->r->on_gone = NULL;
        thaw_api_error(j->r, 500, "D1 database %s of %s: %s", j->db, j->worker, err);
        job_free(j);
    }
}

static void on_routed(void *data, const struct thaw_owner_answer *a)
{
    struct mig_job *j = data;
    struct thaw_api_req *r = j->r;

    if (!r) {
        job_free(j);
        return;
    }
    if (a->where == THAW_OWNER_HERE) {
        run(j);
        return;
    }
    r->pending = NULL;
    r->on_gone = NULL;
    if (a->where == THAW_OWNER_THERE)
        thaw_api_error(r, 409, "D1 database %s of %s lives on node %s, not on this one (%s): "
                       "send its migrations to that node's admin API", j->db, j->worker,
                       a->node, thaw_owners_cluster->node);
    else
        thaw_api_error(r, 503, "D1 database %s of %s: %s", j->db, j->worker, a->why);
    job_free(j);
}

static void on_work(sqlite3 *db, void *arg)
{
    thaw_d1_migrate(db, &((struct mig_job *)arg)->m);
}

static void on_done(void *arg)
{
    struct mig_job *j = arg;
    struct thaw_d1_migrate *m = &j->m;
    struct thaw_api_req *r = j->r;
    json_t *a;
    char file[1300];

    if (!r) {
        job_free(j);
        return;
    }
    r->on_gone = NULL;
    r->pending = NULL;
    if (m->rc == 0 && !m->apply) {
        thaw_api_reply_json(r, 200, json_pack("{s:s,s:s,s:s,s:s,s:o,s:o}", "worker", j->worker,
                                              "database", j->db, "migrations_dir", j->mdir,
                                              "migrations_table", j->table, "applied",
                                              names(m, 1), "unapplied", names(m, 0)));
    } else if (m->rc == 0) {
        thaw_api_reply_json(r, 200, json_pack("{s:s,s:s,s:o,s:o}", "worker", j->worker,
                                              "database", j->db, "applied", names(m, 2),
                                              "unapplied", names(m, 0)));
    } else if (m->failed >= 0) { /* the tenant's SQL: 422, as a worker's code */
        snprintf(file, sizeof(file), "%s/%s", j->mdir, m->files[m->failed].name);
        a = json_pack("{s:s,s:s,s:i,s:o,s:o}", "error", "", "file", file, "line", m->line,
                      "applied", names(m, 2), "unapplied", names(m, 0));
        if (m->line)
            json_object_set_new(a, "error", json_sprintf("%s:%d: %s", file, m->line, m->err));
        else
            json_object_set_new(a, "error", json_sprintf("%s: %s", file, m->err));
        thaw_api_reply_json(r, 422, a);
    } else {
        thaw_api_error(r, 422, "the migrations table \"%s\" of %s: %s", j->table, j->db,
                       m->err);
    }
    job_free(j);
}

void thaw_migrations_handle(struct thaw_fleet *f, struct thaw_hosted *h, const char *db,
                            int apply, struct thaw_api_req *r)
{
    struct mig_job *j;
    char path[4096], err[2048];
    int status;

    if (h->op) {
        thaw_api_error(r, 409, "a deploy or rollback of %s is in flight: run the "
                       "migrations once it has finished", h->name);
        return;
    }
    if (!h->started || !h->w.cfg.dir || !h->w.state_dir) {
        thaw_api_error(r, 409, "%s has no built version yet: retry shortly", h->name);
        return;
    }
    if (!(j = calloc(1, sizeof(*j)))) {
        thaw_api_error(r, 500, "out of memory");
        return;
    }
    snprintf(j->worker, sizeof(j->worker), "%s", h->name);
    j->m.apply = apply;
    j->m.table = j->table;
    if ((status = find_db(h, j, db, path, sizeof(path), err, sizeof(err))) ||
        (status = load_files(j, h->w.cfg.dir, h->w.cfg.file ? h->w.cfg.file : "the config",
                             err, sizeof(err)))) {
        thaw_api_error(r, status, "%s", err);
        job_free(j);
        return;
    }
    j->r = r;
    snprintf(j->path, sizeof(j->path), "%s", path);
    j->loop = f->loop;
    r->pending = j;
    r->on_gone = on_gone;
    /* in a cluster the file that counts is the owner node's (docs/scale-out.md) */
    if (thaw_owners_cluster)
        thaw_owner_route(thaw_owners_cluster, "d1", j->worker, j->id, on_routed, j);
    else
        run(j);
}
