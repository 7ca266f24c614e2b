/* Paths beneath a directory (src/util/beneath.c): `..`, absolute paths
 * and symlinks out are refused, after symlinks, for paths that exist and
 * for those that do not yet; the fallback walk is stricter still. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "serve/store.h"
#include "util/beneath.h"

static char top[] = "/tmp/thaw-beneath-XXXXXX";
static char root[256];

static void mk(const char *rel, const char *data)
{
    char p[512];
    FILE *f;

    snprintf(p, sizeof(p), "%s/%s", top, rel);
    if (!data) {
        assert_int_equal(mkdir(p, 0755), 0);
        return;
    }
    f = fopen(p, "w");
    assert_non_null(f);
    fputs(data, f);
    fclose(f);
}

static void ln(const char *target, const char *rel)
{
    char p[512];

    snprintf(p, sizeof(p), "%s/%s", top, rel);
    assert_int_equal(symlink(target, p), 0);
}

/* top/bundle is the root; top/secret lies beside it */
static int setup(void **state)
{
    char abs_in[512];

    assert_non_null(mkdtemp(top));
    snprintf(root, sizeof(root), "%s/bundle", top);
    mk("secret", "s3cret");
    mk("bundle", NULL);
    mk("bundle/public", NULL);
    mk("bundle/public/a.txt", "a");
    mk("bundle/wrangler.toml", "name = 'x'");
    ln("a.txt", "bundle/public/alias");        /* inside */
    ln("../wrangler.toml", "bundle/public/up"); /* inside the bundle, out of public */
    ln("/etc", "bundle/etc");
    ln("../secret", "bundle/neighbour");
    ln("/proc/self/root", "bundle/magic");
    snprintf(abs_in, sizeof(abs_in), "%s/public", root);
    ln(abs_in, "bundle/abs_in");               /* absolute, pointing inside */
    return 0;
}

static int teardown(void **state)
{
    thaw_rmtree(top);
    return 0;
}

static void judged(void **state)
{
    const char *in[] = {"public", "./public", "public/", "public/a.txt", ".",
                        "public/../wrangler.toml", "public/alias", "public/up",
                        "migrations", "not/yet/there", "public/new.txt",
                        "public/missing/../b"};
    const char *out[] = {"..", "../secret", "../../../..", "public/../..", "etc",
                         "etc/shadow", "neighbour", "magic", "magic/etc/shadow",
                         "missing/../../x", "public/missing/../../../x", "/etc",
                         "/etc/shadow", "abs_in", "abs_in/a.txt", "etc/not-there"};
    char p[512];
    size_t i;

    for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        if (thaw_path_beneath(root, in[i]) != 1)
            fail_msg("%s should be inside", in[i]);
    }
    for (i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
        if (thaw_path_beneath(root, out[i]) != 0)
            fail_msg("%s should be outside", out[i]);
    }
    /* absolute paths: inside only under the root */
    snprintf(p, sizeof(p), "%s/public/a.txt", root);
    assert_int_equal(thaw_path_beneath(root, p), 1);
    snprintf(p, sizeof(p), "%s/secret", top);
    assert_int_equal(thaw_path_beneath(root, p), 0);
    snprintf(p, sizeof(p), "%sx/y", root); /* a sibling sharing the prefix */
    assert_int_equal(thaw_path_beneath(root, p), 0);
    snprintf(p, sizeof(p), "%s/../secret", root);
    assert_int_equal(thaw_path_beneath(root, p), 0);
    assert_int_equal(thaw_path_beneath(root, ""), -1);
}

static void opened(void **state)
{
    int rootfd = open(root, O_PATH | O_DIRECTORY), fd;
    char buf[16] = "";

    assert_true(rootfd >= 0);
    fd = thaw_open_beneath(rootfd, "public/alias", O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, buf, sizeof(buf)), 1);
    assert_string_equal(buf, "a");
    close(fd);
    assert_int_equal(thaw_open_beneath(rootfd, "etc/hostname", O_RDONLY), -1);
    assert_int_equal(errno, EXDEV);
    assert_int_equal(thaw_open_beneath(rootfd, "neighbour", O_RDONLY), -1);
    assert_int_equal(errno, EXDEV);
    assert_int_equal(thaw_open_beneath(rootfd, "../secret", O_RDONLY), -1);
    assert_int_equal(thaw_open_beneath(rootfd, "/etc/hostname", O_RDONLY), -1);
    assert_int_equal(thaw_open_beneath(rootfd, "magic/etc/hostname", O_RDONLY), -1);

    /* the walk: the same refusals, and no symlink at all */
    fd = thaw__walk_beneath(rootfd, "public/a.txt", O_RDONLY);
    assert_true(fd >= 0);
    close(fd);
    fd = thaw__walk_beneath(rootfd, "public//a.txt", O_PATH);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(thaw__walk_beneath(rootfd, "public/alias", O_RDONLY), -1);
    assert_int_equal(thaw__walk_beneath(rootfd, "public/alias", O_PATH), -1);
    assert_int_equal(errno, ELOOP);
    assert_int_equal(thaw__walk_beneath(rootfd, "etc/hostname", O_RDONLY), -1);
    assert_int_equal(thaw__walk_beneath(rootfd, "neighbour", O_RDONLY), -1);
    assert_int_equal(thaw__walk_beneath(rootfd, "public/../../secret", O_RDONLY), -1);
    assert_int_equal(errno, EXDEV);
    assert_int_equal(thaw__walk_beneath(rootfd, "/etc/hostname", O_RDONLY), -1);
    assert_int_equal(errno, EXDEV);
    close(rootfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(judged),
        cmocka_unit_test(opened),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
