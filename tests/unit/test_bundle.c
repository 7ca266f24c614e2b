/* The deploy bundle: safe paths only, truncation and bad magic caught,
 * unpacking writes exactly the files and refuses duplicates. */
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

#include "serve/bundle.h"
#include "serve/store.h"

static size_t put(char *b, size_t off, const char *path, int exec, const char *data)
{
    uint32_t pl = (uint32_t)strlen(path), dl = (uint32_t)strlen(data);

    memcpy(b + off, &pl, 4); /* little-endian host */
    memcpy(b + off + 4, path, pl);
    b[off + 4 + pl] = (char)exec;
    memcpy(b + off + 5 + pl, &dl, 4);
    memcpy(b + off + 9 + pl, data, dl);
    return off + 9 + pl + dl;
}

static size_t start(char *b)
{
    memcpy(b, THAW_BUNDLE_MAGIC, THAW_BUNDLE_MAGIC_LEN);
    return THAW_BUNDLE_MAGIC_LEN;
}

static void paths(void **state)
{
    const char *ok[] = {"a", "src/entry.py", "python_modules/x/__init__.py", ".dotfile",
                        "a/..b/c", "a/b..", "wrangler.toml"};
    const char *bad[] = {"", "/etc/passwd", "..", "../x", "a/../b", "a/..", "./a", "a/./b",
                         "a//b", "a/", "a\\b", "a\nb"};
    size_t i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_int_equal(thaw_bundle_path_ok(ok[i], strlen(ok[i])), 0);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(thaw_bundle_path_ok(bad[i], strlen(bad[i])), -1);
    assert_int_equal(thaw_bundle_path_ok("a\0b", 3), -1);
}

static void walk_errors(void **state)
{
    char b[512], err[512];
    size_t n = start(b), full;

    n = put(b, n, "src/entry.py", 0, "print(1)\n");
    full = n;
    assert_int_equal(thaw_bundle_walk(b, full, NULL, NULL, err, sizeof(err)), 0);
    /* every truncation is an error, never a read past the end */
    for (n = THAW_BUNDLE_MAGIC_LEN + 1; n < full; n++)
        assert_int_equal(thaw_bundle_walk(b, n, NULL, NULL, err, sizeof(err)), -1);
    assert_int_equal(thaw_bundle_walk("NOTABUND", 8, NULL, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a thaw bundle"));
    n = put(b, start(b), "../evil", 0, "x");
    assert_int_equal(thaw_bundle_walk(b, n, NULL, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unsafe path"));
    n = put(b, start(b), "a", 2, "x");
    assert_int_equal(thaw_bundle_walk(b, n, NULL, NULL, err, sizeof(err)), -1);
    /* an empty bundle (magic only) is valid: the config check refuses it */
    assert_int_equal(thaw_bundle_walk(b, THAW_BUNDLE_MAGIC_LEN, NULL, NULL, err, 512), 0);
}

static void unpack(void **state)
{
    char b[1024], err[512], dir[] = "/tmp/thaw-bundle-XXXXXX", path[256], got[64];
    size_t n = start(b);
    long long bytes;
    int files;
    struct stat st;
    FILE *f;

    assert_non_null(mkdtemp(dir));
    n = put(b, n, "wrangler.toml", 0, "name = 'x'\n");
    n = put(b, n, "src/entry.py", 0, "ok\n");
    n = put(b, n, "bin/run", 1, "#!/bin/sh\n");
    assert_int_equal(thaw_bundle_unpack(b, n, dir, &files, &bytes, err, sizeof(err)), 0);
    assert_int_equal(files, 3);
    assert_int_equal(bytes, 11 + 3 + 10);
    snprintf(path, sizeof(path), "%s/src/entry.py", dir);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(got, sizeof(got), f));
    fclose(f);
    assert_string_equal(got, "ok\n");
    snprintf(path, sizeof(path), "%s/bin/run", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_mode & S_IXUSR);
    thaw_rmtree(dir);

    /* the same path twice, and a path that is a file and a directory */
    assert_non_null(mkdtemp(strcpy(dir, "/tmp/thaw-bundle-XXXXXX")));
    n = put(b, start(b), "a.py", 0, "1");
    n = put(b, n, "a.py", 0, "2");
    assert_int_equal(thaw_bundle_unpack(b, n, dir, NULL, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "twice"));
    thaw_rmtree(dir);
    assert_non_null(mkdtemp(strcpy(dir, "/tmp/thaw-bundle-XXXXXX")));
    n = put(b, start(b), "a", 0, "1");
    n = put(b, n, "a/b", 0, "2");
    assert_int_equal(thaw_bundle_unpack(b, n, dir, NULL, NULL, err, sizeof(err)), -1);
    thaw_rmtree(dir);
}

/* Bytes an attacker writes by hand: every way out is refused before a
 * byte is written, and a symlink already in the target (which a fresh
 * version directory never holds) is not followed either. */
static void crafted(void **state)
{
    const char *names[] = {"/etc/thaw-pwned", "../pwned", "src/../../pwned", "./x",
                           "a//b", "..\\pwned", "a/..", "x\n/../../pwned"};
    char b[1024], err[512], dir[] = "/tmp/thaw-bundle-XXXXXX", out[] =
        "/tmp/thaw-bundle-out-XXXXXX", path[256];
    size_t i, n;
    struct stat st;
    int mode;

    assert_non_null(mkdtemp(dir));
    assert_non_null(mkdtemp(out));
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        n = put(b, start(b), "ok.txt", 0, "fine");
        n = put(b, n, names[i], 0, "pwned");
        assert_int_equal(thaw_bundle_unpack(b, n, dir, NULL, NULL, err, sizeof(err)), -1);
        snprintf(path, sizeof(path), "%s/ok.txt", dir);
        assert_int_equal(stat(path, &st), -1); /* checked whole before writing */
    }
    for (mode = 2; mode < 256; mode++) { /* no symlink, device or folder entry */
        n = put(b, start(b), "link", mode, "/etc/shadow");
        assert_int_equal(thaw_bundle_walk(b, n, NULL, NULL, err, sizeof(err)), -1);
    }
    /* a symlink in the target: neither a parent nor the file follows it */
    snprintf(path, sizeof(path), "%s/link", dir);
    assert_int_equal(symlink(out, path), 0);
    n = put(b, start(b), "link/x", 0, "pwned");
    assert_int_equal(thaw_bundle_unpack(b, n, dir, NULL, NULL, err, sizeof(err)), -1);
    n = put(b, start(b), "link", 0, "pwned");
    assert_int_equal(thaw_bundle_unpack(b, n, dir, NULL, NULL, err, sizeof(err)), -1);
    snprintf(path, sizeof(path), "%s/x", out);
    assert_int_equal(stat(path, &st), -1);
    assert_int_equal(rmdir(out), 0); /* still empty */
    thaw_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(paths),
        cmocka_unit_test(walk_errors),
        cmocka_unit_test(unpack),
        cmocka_unit_test(crafted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
