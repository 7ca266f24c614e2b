#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind/d1-migrate.h"

/* ---- statements ------------------------------------------------------------ */

int thaw_d1_split(const char *sql, int (*each)(const char *s, size_t n, int line, void *arg),
                  void *arg)
{
    char *text = strdup(sql), *start, *semi, *end, saved;
    const char *word, *q;
    int line = 1, rc = 0;

    if (!text)
        return -1;
    start = semi = text;
    for (;;) {
        semi = strchr(semi, ';');
        end = semi ? semi + 1 : start + strlen(start);
        saved = *end;
        *end = '\0';
        /* a ';' inside a string, comment or trigger body does not end it */
        if (semi && !sqlite3_complete(start)) {
            *end = saved;
            semi = end;
            continue;
        }
        *end = saved;
        word = thaw_d1_skip_blank(start);
        if (word < end) {
            for (q = start; q < word; q++)
                line += *q == '\n';
            if ((rc = each(word, (size_t)(end - word), line, arg)))
                break;
            for (; q < end; q++)
                line += *q == '\n';
        } else {
            for (q = start; q < end; q++)
                line += *q == '\n';
        }
        if (!semi)
            break;
        start = semi = end;
    }
    free(text);
    return rc;
}

/* ---- the table ------------------------------------------------------------- */

/* "name" with its quotes doubled: the table's name is the config's. */
static char *ident(const char *name)
{
    size_t n = strlen(name), i, k = 0;
    char *out = malloc(2 * n + 3);

    if (!out)
        return NULL;
    out[k++] = '"';
    for (i = 0; i < n; i++) {
        if (name[i] == '"')
            out[k++] = '"';
        out[k++] = name[i];
    }
    out[k++] = '"';
    out[k] = '\0';
    return out;
}

/* The rows of a query (under the policy) as JSON; NULL with m->err. */
static json_t *rows_of(sqlite3 *db, struct thaw_d1_migrate *m, const char *sql,
                       json_t *params)
{
    struct thaw_buf out;
    json_t *res = NULL, *rows;

    thaw_buf_init(&out, THAW_D1_MAX_RESULT);
    if (thaw_d1_query(db, &m->ctl, sql, params, 0, &out, m->err, sizeof(m->err)) == 0) {
        res = json_loadb(out.data, out.len, 0, NULL);
        if (!res)
            snprintf(m->err, sizeof(m->err), "D1_ERROR: out of memory");
    }
    thaw_buf_free(&out);
    rows = json_incref(json_object_get(res, "rows"));
    json_decref(res);
    if (res && !rows)
        snprintf(m->err, sizeof(m->err), "D1_ERROR: out of memory");
    return rows;
}

/* Marks the files the table names as applied. */
static int read_applied(sqlite3 *db, struct thaw_d1_migrate *m, const char *qt)
{
    json_t *params = json_pack("[s]", m->table), *rows, *row;
    char sql[600];
    size_t i, k;

    rows = params ? rows_of(db, m, "SELECT 1 FROM sqlite_master WHERE type IN ('table', "
                            "'view') AND name = ?1 COLLATE NOCASE", params) : NULL;
    json_decref(params);
    if (!rows)
        return -1;
    k = json_array_size(rows);
    json_decref(rows);
    if (k == 0) /* never applied anything: a list does not create it */
        return 0;
    snprintf(sql, sizeof(sql), "SELECT name FROM %s ORDER BY id", qt);
    if (!(rows = rows_of(db, m, sql, NULL)))
        return -1;
    json_array_foreach(rows, i, row) {
        const char *name = json_string_value(json_array_get(row, 0));
        for (k = 0; name && k < m->n; k++)
            if (strcmp(m->files[k].name, name) == 0)
                m->files[k].applied = 1;
    }
    json_decref(rows);
    return 0;
}

/* ---- applying ---------------------------------------------------------------- */

struct stmts {
    json_t *list;   /* [{"sql": ...}, ...] for thaw_d1_batch_at */
    int *lines;
    size_t n, cap;
};

static int add_stmt(const char *s, size_t n, int line, void *arg)
{
    struct stmts *st = arg;
    int *grown;

    if (st->n == st->cap) {
        st->cap = st->cap ? 2 * st->cap : 16;
        if (!(grown = realloc(st->lines, st->cap * sizeof(int))))
            return -1;
        st->lines = grown;
    }
    st->lines[st->n++] = line;
    return json_array_append_new(st->list, json_pack("{s:s%}", "sql", s, n));
}

/* One file and its row, in one transaction (thaw_d1_batch_at's). */
static int apply_one(sqlite3 *db, struct thaw_d1_migrate *m, size_t k, const char *qt)
{
    struct thaw_d1_migration *f = &m->files[k];
    struct stmts st = {json_array(), NULL, 0, 0};
    struct thaw_buf out;
    char insert[600];
    long at = -1;
    int rc;

    snprintf(insert, sizeof(insert), "INSERT INTO %s (name) VALUES (?1)", qt);
    if (!st.list || thaw_d1_split(f->sql, add_stmt, &st) ||
        json_array_append_new(st.list, json_pack("{s:s,s:[s]}", "sql", insert, "params",
                                                 f->name))) {
        snprintf(m->err, sizeof(m->err), "D1_ERROR: out of memory");
        rc = -1;
    } else {
        m->ctl.deadline_ms = 0; /* each file has D1's 30 s */
        thaw_buf_init(&out, THAW_D1_MAX_RESULT);
        rc = thaw_d1_batch_at(db, &m->ctl, st.list, &out, &at, m->err, sizeof(m->err));
        thaw_buf_free(&out);
    }
    if (rc < 0) {
        m->failed = (long)k;
        m->line = at >= 0 && (size_t)at < st.n ? st.lines[at] : 0;
        /* batch()'s words would not fit a migration */
        if (strstr(m->err, "of the batch is a BEGIN"))
            snprintf(m->err, sizeof(m->err), "D1_ERROR: a BEGIN, COMMIT or ROLLBACK: "
                     "each migration already runs in a transaction of its own, leave "
                     "those out");
        else if (at == (long)st.n)
            snprintf(m->err + strlen(m->err), sizeof(m->err) - strlen(m->err),
                     " (recording it in the table %s)", qt);
    } else {
        f->applied = 2;
    }
    json_decref(st.list);
    free(st.lines);
    return rc;
}

void thaw_d1_migrate(sqlite3 *db, struct thaw_d1_migrate *m)
{
    char *qt = ident(m->table), create[800];
    size_t k;

    m->rc = -1;
    m->failed = -1;
    m->line = 0;
    if (!qt) {
        snprintf(m->err, sizeof(m->err), "D1_ERROR: out of memory");
        return;
    }
    if (m->apply) { /* wrangler's table, so either tool knows what the other applied */
        json_t *rows;
        snprintf(create, sizeof(create), "CREATE TABLE IF NOT EXISTS %s (id INTEGER PRIMARY "
                 "KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT "
                 "CURRENT_TIMESTAMP NOT NULL)", qt);
        if (!(rows = rows_of(db, m, create, NULL)))
            goto out;
        json_decref(rows);
    }
    if (read_applied(db, m, qt) < 0)
        goto out;
    for (k = 0; m->apply && k < m->n; k++)
        if (!m->files[k].applied && apply_one(db, m, k, qt) < 0)
            goto out;
    m->rc = 0;
out:
    free(qt);
}
