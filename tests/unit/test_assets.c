/* Static assets: path normalisation (no way above the root), content
 * types, run_worker_first patterns, and the resolver on a real folder
 * (HTML handling, ETag, If-None-Match, symlinks out). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "assets/assets.h"

static char *norm(const char *target, char *out, size_t n)
{
    const char *q;

    if (thaw_assets_normalize(target, strlen(target), out, n, &q) < 0)
        return NULL;
    return out;
}

static void normalize_never_climbs(void **state)
{
    char out[256];
    const char *q;

    assert_string_equal(norm("/", out, sizeof(out)), "/");
    assert_string_equal(norm("/a/b/", out, sizeof(out)), "/a/b/");
    assert_string_equal(norm("/a//b", out, sizeof(out)), "/a/b");
    assert_string_equal(norm("/../etc/passwd", out, sizeof(out)), "/etc/passwd");
    assert_string_equal(norm("/%2e%2e/%2E%2E/x", out, sizeof(out)), "/x");
    assert_string_equal(norm("/a/..%2f..%2fx", out, sizeof(out)), "/x");
    assert_string_equal(norm("/a/./b/../c", out, sizeof(out)), "/a/c");
    assert_string_equal(norm("/a/b/..", out, sizeof(out)), "/a");
    assert_string_equal(norm("/%20x", out, sizeof(out)), "/ x");
    assert_string_equal(norm("http://h:1/a/../b?x=1", out, sizeof(out)), "/b");
    assert_string_equal(norm("http://h", out, sizeof(out)), "/");
    assert_null(norm("/a%00b", out, sizeof(out)));
    assert_null(norm("/a%zz", out, sizeof(out)));
    assert_null(norm("/a%2", out, sizeof(out)));
    assert_null(norm("a/b", out, sizeof(out)));
    assert_int_equal(thaw_assets_normalize("/a?q=1", 6, out, sizeof(out), &q), 0);
    assert_string_equal(q, "?q=1");
}

static void content_types(void **state)
{
    assert_string_equal(thaw_assets_mime("/a/b.HTML"), "text/html; charset=utf-8");
    assert_string_equal(thaw_assets_mime("x.woff2"), "font/woff2");
    assert_string_equal(thaw_assets_mime("x.tar.gz"), "application/gzip");
    assert_string_equal(thaw_assets_mime("/a.b/noext"), "application/octet-stream");
    assert_string_equal(thaw_assets_mime("x."), "application/octet-stream");
}

static void worker_first_patterns(void **state)
{
    struct thaw_assets a = {0};
    char *rules[] = {"/api/*", "!/api/docs/*", "/exact"};

    a.rules = rules;
    a.n_rules = 3;
    assert_true(thaw_assets_worker_first(&a, "/api/x/y"));
    assert_false(thaw_assets_worker_first(&a, "/api/docs/z"));
    assert_true(thaw_assets_worker_first(&a, "/exact"));
    assert_false(thaw_assets_worker_first(&a, "/exact/more"));
    assert_false(thaw_assets_worker_first(&a, "/apix"));
    a.worker_first = 1;
    assert_true(thaw_assets_worker_first(&a, "/anything"));
}

/* A folder with a page, a folder page and a symlink out. */
static struct thaw_assets *make_dir(char *dir)
{
    char path[512], err[512];
    json_t *t;
    struct thaw_assets *a;
    FILE *f;

    strcpy(dir, "/tmp/thaw-assets-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/pub", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/pub/page.html", dir);
    f = fopen(path, "w");
    fputs("page", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/pub/sub", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/pub/sub/index.html", dir);
    f = fopen(path, "w");
    fputs("sub", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/pub/out", dir);
    assert_int_equal(symlink("/etc/hostname", path), 0);
    t = json_pack("{s:s}", "directory", "pub");
    a = thaw_assets_open(t, dir, "wrangler.toml", 0, err, sizeof(err));
    json_decref(t);
    assert_non_null(a);
    return a;
}

static int resolve(struct thaw_assets *a, const char *target, const char *inm,
                   struct thaw_asset_resp *r)
{
    struct thaw_asset_req rq = {.method = "GET", .target = target,
                                .target_len = strlen(target), .if_none_match = inm,
                                .binding = 1};
    return thaw_assets_resolve(a, &rq, r);
}

static void resolver_on_a_folder(void **state)
{
    char dir[64], etag[24], cmd[128];
    struct thaw_asset_resp r;
    struct thaw_assets *a = make_dir(dir);

    assert_int_equal(resolve(a, "/page", NULL, &r), 1);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.size, 4);
    assert_string_equal(r.content_type, "text/html; charset=utf-8");
    strcpy(etag, r.etag);
    thaw_asset_resp_free(&r);

    resolve(a, "/page", etag, &r);
    assert_int_equal(r.status, 304);
    assert_int_equal(r.fd, -1);
    thaw_asset_resp_free(&r);

    resolve(a, "/page.html?a=b", NULL, &r);
    assert_int_equal(r.status, 307);
    assert_string_equal(r.location, "/page?a=b");
    thaw_asset_resp_free(&r);

    resolve(a, "/sub", NULL, &r);
    assert_int_equal(r.status, 307);
    assert_string_equal(r.location, "/sub/");
    thaw_asset_resp_free(&r);

    resolve(a, "/out", NULL, &r); /* a symlink out of the folder */
    assert_int_equal(r.status, 404);
    assert_int_equal(r.fd, -1);
    thaw_asset_resp_free(&r);

    thaw_assets_unref(a);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void missing_directory_is_an_error(void **state)
{
    char err[512];
    json_t *t = json_pack("{s:s}", "directory", "./nope");

    assert_null(thaw_assets_open(t, "/tmp", "wrangler.toml", 0, err, sizeof(err)));
    assert_non_null(strstr(err, "wrangler.toml: `assets.directory` \"./nope\""));
    json_decref(t);
}

/* thaw serve: the folder stays in the worker's directory, and only a
 * symlink the kernel resolves beneath the folder is followed; thaw dev
 * also keeps an absolute symlink that points back inside. */
static void tenant_folder_and_symlinks(void **state)
{
    char dir[64], path[512], target[512], err[512], cmd[128];
    struct thaw_asset_resp r;
    struct thaw_assets *a = make_dir(dir), *t;
    const char *outside[] = {"/etc", "..", "../..", "pub/../..", "pub/root", "pub/root/etc"};
    json_t *table;
    FILE *f;
    size_t i;

    snprintf(path, sizeof(path), "%s/pub/abs", dir);
    snprintf(target, sizeof(target), "%s/pub/page.html", dir);
    assert_int_equal(symlink(target, path), 0);
    snprintf(path, sizeof(path), "%s/pub/root", dir);
    assert_int_equal(symlink("/", path), 0);
    snprintf(path, sizeof(path), "%s/pub/up", dir);
    assert_int_equal(symlink("..", path), 0);
    snprintf(path, sizeof(path), "%s/secret.txt", dir);
    f = fopen(path, "w");
    fputs("secret", f);
    fclose(f);
    for (i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
        table = json_pack("{s:s}", "directory", outside[i]);
        assert_null(thaw_assets_open(table, dir, "wrangler.toml", 1, err, sizeof(err)));
        assert_non_null(strstr(err, "is outside the worker's bundle"));
        json_decref(table);
    }
    table = json_pack("{s:s}", "directory", "pub");
    t = thaw_assets_open(table, dir, "wrangler.toml", 1, err, sizeof(err));
    json_decref(table);
    assert_non_null(t);

    resolve(a, "/abs", NULL, &r); /* dev: inside once resolved */
    assert_int_equal(r.status, 200);
    thaw_asset_resp_free(&r);
    resolve(t, "/abs", NULL, &r);
    assert_int_equal(r.status, 404);
    thaw_asset_resp_free(&r);
    for (i = 0; i < 2; i++) {
        struct thaw_assets *x = i ? t : a;
        resolve(x, "/root/etc/hostname", NULL, &r);
        assert_int_equal(r.status, 404);
        assert_int_equal(r.fd, -1);
        thaw_asset_resp_free(&r);
        resolve(x, "/out", NULL, &r);
        assert_int_equal(r.status, 404);
        thaw_asset_resp_free(&r);
        resolve(x, "/up/secret.txt", NULL, &r);
        assert_int_equal(r.status, 404);
        thaw_asset_resp_free(&r);
        resolve(x, "/sub/", NULL, &r);
        assert_int_equal(r.status, 200);
        thaw_asset_resp_free(&r);
    }
    thaw_assets_unref(a);
    thaw_assets_unref(t);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(normalize_never_climbs),
        cmocka_unit_test(content_types),
        cmocka_unit_test(worker_first_patterns),
        cmocka_unit_test(resolver_on_a_folder),
        cmocka_unit_test(missing_directory_is_an_error),
        cmocka_unit_test(tenant_folder_and_symlinks),
    };
    return cmocka_run_group_tests_name("assets", tests, NULL, NULL);
}
