/* The prefault profile (src/pool/prefault.c): after a fork, the pages the
 * child wrote, and only those, are listed as its own; the list is (start,
 * length) pairs of little-endian uint64 and respects its maximum. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "pool/prefault.h"

#define NPAGES 32

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    int i;

    for (i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Whether [a, a + n) lies inside one listed range. */
static int listed(const struct thaw_buf *b, uint64_t a, uint64_t n)
{
    size_t i;

    for (i = 0; i + 16 <= b->len; i += 16) {
        uint64_t s = le64((const unsigned char *)b->data + i);
        uint64_t l = le64((const unsigned char *)b->data + i + 8);
        if (a >= s && a + n <= s + l)
            return 1;
    }
    return 0;
}

/* Whether any byte of [a, a + n) is listed. */
static int touches(const struct thaw_buf *b, uint64_t a, uint64_t n)
{
    size_t i;

    for (i = 0; i + 16 <= b->len; i += 16) {
        uint64_t s = le64((const unsigned char *)b->data + i);
        uint64_t l = le64((const unsigned char *)b->data + i + 8);
        if (a < s + l && s < a + n)
            return 1;
    }
    return 0;
}

/* A child of this process that writes to pages 3-5 and 10 of mem (all of
 * which the parent wrote before the fork: shared copy-on-write), then
 * waits to be profiled. */
static pid_t child_writing(char *mem, long psz, int *ready_fd)
{
    int ready[2];
    pid_t pid;

    assert_int_equal(pipe(ready), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        mem[3 * psz] = 1;
        mem[4 * psz + 7] = 1;
        mem[5 * psz + psz - 1] = 1;
        mem[10 * psz] = 1;
        if (write(ready[1], "x", 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    close(ready[1]);
    *ready_fd = ready[0];
    return pid;
}

static void lists_what_the_child_copied(void **state)
{
    long psz = sysconf(_SC_PAGESIZE);
    char *mem = mmap(NULL, NPAGES * psz, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t base = (uint64_t)(uintptr_t)mem;
    struct thaw_buf b;
    int ready, i;
    char c;
    pid_t pid;
    long pages;

    assert_true(mem != MAP_FAILED);
    memset(mem, 0xab, NPAGES * psz); /* present, and shared once forked */
    pid = child_writing(mem, psz, &ready);
    assert_int_equal(read(ready, &c, 1), 1);

    thaw_buf_init(&b, 1 << 20);
    pages = thaw_prefault_profile(pid, &b, 1 << 16);
    assert_true(pages > 0);
    assert_int_equal(b.len % 16, 0);
    assert_true(listed(&b, base + 3 * psz, 3 * psz));   /* 3-5: one run */
    assert_true(listed(&b, base + 10 * psz, psz));
    for (i = 0; i < NPAGES; i++)
        if (!(i >= 3 && i <= 5) && i != 10)
            assert_false(touches(&b, base + i * psz, psz));
    /* the child's own stack is its own too (written after the fork) */
    assert_true(pages >= 4);

    /* a maximum of one range: one pair, and still no error */
    thaw_buf_free(&b);
    thaw_buf_init(&b, 1 << 20);
    assert_true(thaw_prefault_profile(pid, &b, 1) > 0);
    assert_int_equal(b.len, 16);

    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(ready);
    thaw_buf_free(&b);
    munmap(mem, NPAGES * psz);
}

static void a_missing_process_is_an_error(void **state)
{
    struct thaw_buf b;
    pid_t pid = fork();

    if (pid == 0)
        _exit(0);
    waitpid(pid, NULL, 0); /* reaped: its /proc entry is gone */
    thaw_buf_init(&b, 1 << 20);
    assert_true(thaw_prefault_profile(pid, &b, 16) < 0);
    assert_int_equal(b.len, 0);
    thaw_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lists_what_the_child_copied),
        cmocka_unit_test(a_missing_process_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
