/* Worker output (src/pool/output.c): the `[NAME req=N] text` tag that
 * python/thaw_runtime/output.py writes, and lines attributed to the pipe
 * they came on, whatever name their text carries. */
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "pool/output.h"

static int parse(const char *line, char *name, long long *req, const char **msg)
{
    size_t off;
    int rc = thaw_outpipe_parse(line, strlen(line), name, 64, req, &off);

    *msg = line + off;
    return rc;
}

static void tagged_lines(void **state)
{
    char name[64];
    long long req;
    const char *msg;

    assert_int_equal(parse("[hello req=17] hi there", name, &req, &msg), 0);
    assert_string_equal(name, "hello");
    assert_int_equal(req, 17);
    assert_string_equal(msg, "hi there");
    assert_int_equal(parse("[my-worker] top level", name, &req, &msg), 0);
    assert_string_equal(name, "my-worker");
    assert_int_equal(req, -1);
    assert_string_equal(msg, "top level");
    assert_int_equal(parse("[w req=3]", name, &req, &msg), 0);
    assert_string_equal(msg, "");
}

static void untagged_lines(void **state)
{
    char name[64];
    long long req;
    const char *msg;

    assert_int_equal(parse("Traceback (most recent call last):", name, &req, &msg), -1);
    assert_int_equal(parse("[] x", name, &req, &msg), -1);
    assert_int_equal(parse("[w req=] x", name, &req, &msg), -1);
    assert_int_equal(parse("[w req=1x] x", name, &req, &msg), -1);
    assert_int_equal(parse("[w other] x", name, &req, &msg), -1);
    assert_int_equal(parse("[no closing bracket", name, &req, &msg), -1);
    /* a name longer than the buffer is not a worker's */
    assert_int_equal(parse("[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa] x",
                           name, &req, &msg), -1);
}

/* ---- lines through a pipe: what on_line and the log get ------------- */

struct seen {
    int n;
    long long req[8];
    char msg[8][THAW_OUT_LINE_MAX + 1];
    int truncated[8];
};

static void on_line(void *data, long long request, const char *msg, size_t n, int truncated)
{
    struct seen *s = data;

    assert_true(s->n < 8);
    s->req[s->n] = request;
    memcpy(s->msg[s->n], msg, n);
    s->msg[s->n][n] = '\0';
    s->truncated[s->n] = truncated;
    s->n++;
}

/* Feeds text to a pipe of worker "mine"; returns what the log got. */
static char *run(const char *text, size_t n, struct seen *s)
{
    static char log[4 * THAW_OUT_LINE_MAX];
    struct thaw_outpipe *o;
    int logp[2], wfd;
    ssize_t k;

    memset(s, 0, sizeof(*s));
    assert_int_equal(pipe2(logp, O_NONBLOCK), 0);
    fcntl(logp[1], F_SETPIPE_SZ, 1 << 20);
    thaw__outpipe_set_log_fd(logp[1]);
    assert_int_equal(thaw_outpipe_open(uv_default_loop(), "mine", on_line, s, &o, &wfd), 0);
    close(wfd);
    thaw__outpipe_feed(o, text, n);
    thaw_outpipe_free(o); /* a last line without newline counts */
    uv_run(uv_default_loop(), UV_RUN_NOWAIT);
    k = read(logp[0], log, sizeof(log) - 1);
    log[k > 0 ? k : 0] = '\0';
    close(logp[0]);
    close(logp[1]);
    thaw__outpipe_set_log_fd(2);
    return log;
}

static void own_tag_gives_the_request(void **state)
{
    struct seen s;
    const char text[] = "[mine req=7] hello\n[mine] top\n";
    char *log = run(text, sizeof(text) - 1, &s);

    assert_int_equal(s.n, 2);
    assert_int_equal(s.req[0], 7);
    assert_string_equal(s.msg[0], "hello");
    assert_int_equal(s.req[1], -1);
    assert_string_equal(s.msg[1], "top");
    assert_string_equal(log, "[mine req=7] hello\n[mine] top\n");
}

static void another_workers_tag_is_this_workers_line(void **state)
{
    const char text[] = "[victim req=1] pwned\nx\r[victim req=2] cr\nraw";
    struct seen s;
    char *log = run(text, sizeof(text) - 1, &s);

    assert_int_equal(s.n, 3);
    assert_int_equal(s.req[0], -1);
    assert_string_equal(s.msg[0], "[victim req=1] pwned");
    assert_string_equal(s.msg[1], "x\r[victim req=2] cr");
    assert_string_equal(s.msg[2], "raw");
    assert_string_equal(log, "[mine] [victim req=1] pwned\n"
                             "[mine] x\\x0d[victim req=2] cr\n"
                             "[mine] raw\n");
}

static void a_long_line_is_cut_for_tail_whole_in_the_log(void **state)
{
    size_t n = THAW_OUT_LINE_MAX + 100;
    char *text = malloc(n + 1), *log;
    struct seen s;

    memset(text, 'a', n);
    text[n] = '\n';
    log = run(text, n + 1, &s);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.truncated[0], 1);
    assert_int_equal(strlen(s.msg[0]), THAW_OUT_LINE_MAX);
    assert_int_equal(strlen(log), strlen("[mine] ") + n + 1);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tagged_lines),
        cmocka_unit_test(untagged_lines),
        cmocka_unit_test(own_tag_gives_the_request),
        cmocka_unit_test(another_workers_tag_is_this_workers_line),
        cmocka_unit_test(a_long_line_is_cut_for_tail_whole_in_the_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
