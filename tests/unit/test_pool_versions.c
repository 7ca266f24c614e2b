/* The pool driven with fake processes (pool/procops.h): a fake template
 * is the other end of the template channel and "forks" instances by
 * answering SPAWN with SPAWNED; a process's "pidfd" is an eventfd, which
 * polls readable (the process exited) once the fake writes to it. Real
 * channels, real frames, a real libuv loop: only the processes are fake.
 *
 * Cases: version replacement during a request, delete during a build,
 * instance death with requests queued, a deleted worker closing
 * completely, a request that comes while an instance's kill is on its
 * way, a lost template whose rebuild fails, exchanges parked and
 * dispatched later. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "pool/pool-internal.h"
#include "pool/procops.h"

/* ---- fake processes ----------------------------------------------------- */

struct fake {
    int efd;                 /* the process's "pidfd": readable once it exited */
    struct thaw_chan *chan;  /* its side of its channel */
    int exited;
    int hold;                /* an instance: do not answer requests yet */
    uint32_t held_sid;
    int is_template;
};

#define MAX_FAKES 64
static struct fake fakes[MAX_FAKES];
static int n_fakes;
static uv_loop_t *loop;

/* the template fork the pool asked for last */
static struct {
    struct thaw_version *v;
    int chan_fd, pending, forgotten;
    thaw_forked_cb cb;
} build;

static struct fake *fake_new(int is_template)
{
    struct fake *f = &fakes[n_fakes++];

    memset(f, 0, sizeof(*f));
    f->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    f->is_template = is_template;
    return f;
}

static void fake_exit(struct fake *f)
{
    uint64_t one = 1;

    if (f->exited)
        return;
    f->exited = 1;
    if (f->chan) {
        thaw_chan_close(f->chan);
        f->chan = NULL;
    }
    if (write(f->efd, &one, sizeof(one)) < 0)
        fail();
}

/* The pool holds its own copy of a fake's eventfd (a dup, or one that
 * came through SCM_RIGHTS): kcmp tells which fake it is. */
static int same_file(int a, int b)
{
    return syscall(SYS_kcmp, getpid(), getpid(), 0 /* KCMP_FILE */, a, b) == 0;
}

static int fake_signal(int pidfd, int sig)
{
    int i;

    for (i = 0; i < n_fakes; i++)
        if (same_file(pidfd, fakes[i].efd)) {
            fake_exit(&fakes[i]);
            return 0;
        }
    return -1;
}
static void inst_frame(struct thaw_chan *c, const struct thaw_ipc_frame *f, int fd, void *data)
{
    struct fake *p = data;
    const char *head[] = {"200", "OK"};

    if (fd >= 0)
        close(fd);
    if (f->type != THAW_IPC_REQ_END)
        return;
    if (p->hold) {
        p->held_sid = f->stream;
        return;
    }
    thaw_chan_send_fields(c, THAW_IPC_RESP_HEAD, f->stream, -1, 2, head);
    thaw_chan_send_fields(c, THAW_IPC_RESP_END, f->stream, -1, 0, NULL);
}

static void fake_chan_closed(struct thaw_chan *c, int err, void *data)
{
    struct fake *p = data;

    p->chan = NULL; /* EOF: a template or instance exits */
    fake_exit(p);
}

static void send_pidfd(struct thaw_chan *tc, uint8_t type, uint32_t stream, struct fake *p)
{
    char pid[16];
    const char *fields[] = {pid};
    int copy = dup(p->efd);

    snprintf(pid, sizeof(pid), "%d", 100000 + (int)(p - fakes));
    thaw_chan_send_fields(tc, type, stream, copy, 1, fields);
}

static void tmpl_frame(struct thaw_chan *c, const struct thaw_ipc_frame *f, int fd, void *data)
{
    if (f->type == THAW_IPC_SPAWN && fd >= 0) {
        struct fake *inst = fake_new(0);
        thaw_chan_open(loop, fd, inst_frame, fake_chan_closed, inst, &inst->chan);
        send_pidfd(c, THAW_IPC_SPAWNED, f->stream, inst);
        return;
    }
    if (fd >= 0)
        close(fd);
}

static int fake_fork_template(struct thaw_version *v, int chan_fd, int out_fd,
                              const char *sandbox_json, thaw_forked_cb cb)
{
    close(out_fd);
    build.v = v;
    build.chan_fd = chan_fd;
    build.cb = cb;
    build.pending = 1;
    build.forgotten = 0;
    return 0;
}

static void fake_forget_template(struct thaw_version *v)
{
    if (build.pending && build.v == v)
        build.forgotten = 1;
}

static const struct thaw_proc_ops fake_ops = {
    .fork_template = fake_fork_template,
    .forget_template = fake_forget_template,
    .signal = fake_signal,
};

/* The zygote answers the pending fork, and the template runs its top
 * level: BUILT (ok) or BUILD_ERR. */
static struct fake *finish_build(int ok)
{
    struct fake *t;
    const char *built[] = {"entry", "fetch", "1.0"};
    const char *err[] = {"Traceback: boom"};
    int pidfd;

    assert_true(build.pending);
    build.pending = 0;
    if (build.forgotten) {
        close(build.chan_fd);
        return NULL;
    }
    t = fake_new(1);
    thaw_chan_open(loop, build.chan_fd, tmpl_frame, fake_chan_closed, t, &t->chan);
    pidfd = dup(t->efd);
    build.cb(build.v, 100000 + (int)(t - fakes), pidfd, NULL);
    if (ok)
        thaw_chan_send_fields(t->chan, THAW_IPC_BUILT, 0, -1, 3, built);
    else
        thaw_chan_send_fields(t->chan, THAW_IPC_BUILD_ERR, 0, -1, 1, err);
    return t;
}

/* ---- a fake HTTP side ----------------------------------------------------- */

struct client {
    struct thaw_exchange ex;
    int status;      /* 0 until answered */
    int done;
};

static void c_head(struct thaw_exchange *ex, int status, const char *reason,
                   const char **names, const char **values, int n)
{
    ((struct client *)ex->conn)->status = status;
}
static void c_body(struct thaw_exchange *ex, const char *p, size_t n) {}
static void c_end(struct thaw_exchange *ex)
{
    struct client *c = ex->conn;
    c->done = 1;
    thaw_exchange_release(ex);
}
static void c_fail(struct thaw_exchange *ex, int status, const char *msg)
{
    struct client *c = ex->conn;
    c->status = status ? status : -1;
    c->done = 1;
    thaw_exchange_release(ex);
}
static const struct thaw_exchange_ops c_ops = {c_head, c_body, c_end, c_fail, NULL};

static void send_request(struct thaw_worker *w, struct client *c)
{
    struct thaw_buf head;
    size_t mark;

    memset(c, 0, sizeof(*c));
    thaw_exchange_init(&c->ex, &c_ops, c);
    thaw_buf_init(&head, 65536);
    assert_int_equal(thaw_ipc_begin(&head, THAW_IPC_REQ_HEAD, 0, c->ex.sid, &mark), 0);
    thaw_ipc_put_str(&head, "GET");
    thaw_ipc_put_str(&head, "/");
    thaw_ipc_end(&head, mark);
    thaw_ipc_begin(&head, THAW_IPC_REQ_END, 0, c->ex.sid, &mark);
    thaw_ipc_end(&head, mark);
    c->ex.req_done = 1;
    thaw_pool_dispatch(w, &c->ex, head.data, head.len);
    thaw_buf_free(&head);
}

/* Runs the loop until cond holds (bounded in iterations, not time). */
#define RUN_UNTIL(cond)                                                  \
    do {                                                                 \
        int k_;                                                          \
        for (k_ = 0; k_ < 2000 && !(cond); k_++)                         \
            uv_run(loop, UV_RUN_NOWAIT);                                 \
        assert_true(cond);                                               \
    } while (0)

/* ---- the worker under test ----------------------------------------------- */

static struct thaw_worker W;
static int baseline_fds;

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ., .. and the DIR's own fd */
}
static int built_calls, built_failed, closed_calls;
static char dir[] = "/tmp/thaw-test-pool-XXXXXX";

static void on_built(struct thaw_worker *w, struct thaw_version *v)
{
    built_calls++;
    built_failed += v->state != VER_READY;
}

static void on_closed(struct thaw_worker *w) { closed_calls++; }

static void config(struct thaw_config *cfg, const char *name)
{
    char err[256];
    char json[256];

    snprintf(json, sizeof(json), "{\"name\":\"%s\",\"main\":\"src/entry.py\",\"compatibility_date\":\"2025-01-01\"}", name);
    if (thaw_config_from_json(json, "wrangler.json", dir, cfg, err, sizeof(err)))
        fail_msg("%s", err);
}

static int setup(void **state)
{
    struct thaw_config cfg;
    struct thaw_limits lim;

    loop = uv_default_loop();
    thaw_proc_ops = &fake_ops;
    n_fakes = 0;
    memset(&build, 0, sizeof(build));
    built_calls = built_failed = closed_calls = 0;
    strcpy(dir, "/tmp/thaw-test-pool-XXXXXX");
    assert_non_null(mkdtemp(dir));
    {
        char p[128];
        FILE *f;
        snprintf(p, sizeof(p), "%s/src", dir);
        mkdir(p, 0755);
        snprintf(p, sizeof(p), "%s/src/entry.py", dir);
        f = fopen(p, "w");
        fclose(f);
    }
    baseline_fds = open_fds();
    thaw_limits_defaults(&lim);
    lim.prefork = 0;
    lim.max_instances = 1;
    lim.concurrency = 1;
    config(&cfg, "fake");
    assert_int_equal(thaw_worker_init(&W, loop, NULL, NULL, dir, dir, &cfg, &lim, NULL,
                                      on_built, NULL), 0);
    W.keep_serving = 1;
    return 0;
}

static int teardown(void **state)
{
    int i;

    if (!closed_calls) {
        thaw_worker_close(&W, on_closed);
        RUN_UNTIL(closed_calls == 1);
    }
    for (i = 0; i < n_fakes; i++) {
        if (fakes[i].chan)
            thaw_chan_close(fakes[i].chan);
        close(fakes[i].efd);
    }
    for (i = 0; i < 4; i++)
        uv_run(loop, UV_RUN_NOWAIT);
    thaw_proc_ops = &thaw_proc_ops_real;
    {
        char cmd[160];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd))
            fail();
    }
    return 0;
}

static int live_instances(void)
{
    struct thaw_worker_stats st;

    thaw_worker_stats(&W, &st);
    return st.instances;
}

/* ---- cases ---------------------------------------------------------------- */

static void replacement_during_a_request(void **state)
{
    struct client a, b;
    struct thaw_config cfg;
    struct thaw_version *v1;

    finish_build(1);
    RUN_UNTIL(built_calls == 1);
    v1 = W.current;
    send_request(&W, &a);
    RUN_UNTIL(n_fakes == 2); /* the instance was forked */
    fakes[1].hold = 1;
    RUN_UNTIL(fakes[1].held_sid != 0); /* it runs the request */
    config(&cfg, "fake");
    assert_int_equal(thaw_worker_rebuild(&W, &cfg), 0);
    finish_build(1);
    RUN_UNTIL(built_calls == 2);
    assert_ptr_not_equal(W.current, v1);
    assert_int_equal(v1->state, VER_DRAINING); /* its request keeps it */
    /* the old instance finishes on its old version */
    {
        const char *head[] = {"200", "OK"};
        thaw_chan_send_fields(fakes[1].chan, THAW_IPC_RESP_HEAD, fakes[1].held_sid, -1, 2, head);
        thaw_chan_send_fields(fakes[1].chan, THAW_IPC_RESP_END, fakes[1].held_sid, -1, 0, NULL);
    }
    RUN_UNTIL(a.done);
    assert_int_equal(a.status, 200);
    /* then it and its template exit, and v1 is freed: one version left */
    RUN_UNTIL(fakes[1].exited && fakes[0].exited && W.versions && !W.versions->next);
    send_request(&W, &b);
    RUN_UNTIL(b.done);
    assert_int_equal(b.status, 200);
}

static void delete_during_a_build(void **state)
{
    struct client a;

    send_request(&W, &a); /* waits for the build */
    thaw_worker_close(&W, on_closed);
    RUN_UNTIL(a.done);
    assert_int_equal(a.status, 503);
    assert_int_equal(built_calls, 1); /* told the build ended: cancelled */
    assert_int_equal(built_failed, 1);
    assert_true(build.forgotten);
    RUN_UNTIL(closed_calls == 1);
    finish_build(1); /* the zygote's late answer goes nowhere */
}

static void instance_death_with_requests_queued(void **state)
{
    struct client a, b;

    finish_build(1);
    RUN_UNTIL(built_calls == 1);
    send_request(&W, &a);
    RUN_UNTIL(n_fakes == 2);
    fakes[1].hold = 1;
    RUN_UNTIL(fakes[1].held_sid != 0);
    send_request(&W, &b); /* max_instances 1, concurrency 1: queued */
    assert_int_equal(W.current->queue_len, 1);
    fake_exit(&fakes[1]); /* the instance crashes */
    RUN_UNTIL(a.done);
    assert_int_equal(a.status, 502);
    /* the queued request goes to a new instance */
    RUN_UNTIL(b.done);
    assert_int_equal(b.status, 200);
    assert_int_equal(n_fakes, 3);
    assert_int_equal(live_instances(), 1);
}

static void deleted_worker_closes_completely(void **state)
{
    struct client a;
    int i;

    finish_build(1);
    RUN_UNTIL(built_calls == 1);
    send_request(&W, &a);
    RUN_UNTIL(n_fakes == 2);
    fakes[1].hold = 1;
    RUN_UNTIL(fakes[1].held_sid != 0);
    thaw_worker_close(&W, on_closed);
    assert_true(a.done);
    assert_int_equal(a.status, 503);
    RUN_UNTIL(closed_calls == 1);
    assert_null(W.versions);
    /* every process was killed, and no pidfd the pool held is open */
    for (i = 0; i < n_fakes; i++)
        assert_true(fakes[i].exited);
    /* and every fd it opened is closed: only the fakes' own are left */
    assert_int_equal(open_fds(), baseline_fds + n_fakes);
}

static void no_request_goes_to_an_instance_being_killed(void **state)
{
    struct client a, b;

    finish_build(1);
    RUN_UNTIL(built_calls == 1);
    send_request(&W, &a);
    RUN_UNTIL(a.done);
    assert_int_equal(a.status, 200);
    /* the idle instance is killed (a limit, an eviction); its death is
     * not seen yet when the next request comes: that request must not
     * share the fate (and the error) of the instance */
    thaw__instance_kill(W.current->instances, 503, "503 killed on purpose\n");
    send_request(&W, &b);
    RUN_UNTIL(b.done);
    assert_int_equal(b.status, 200);
    assert_int_equal(n_fakes, 3); /* a new instance served it */
}

/* src/do/live.c parks an object's events while the object moves: they
 * keep their order, one whose client leaves comes off, and each one
 * dispatched later carries the frames it was parked with. */
static void parked_exchanges_keep_their_order_and_frames(void **state)
{
    struct client a, b, c;
    struct client *all[] = {&a, &b, &c};
    struct thaw_park park = {0};
    struct thaw_buf head;
    size_t mark;
    int i;

    finish_build(1);
    RUN_UNTIL(built_calls == 1);
    for (i = 0; i < 3; i++) {
        memset(all[i], 0, sizeof(*all[i]));
        thaw_exchange_init(&all[i]->ex, &c_ops, all[i]);
        thaw_buf_init(&head, 65536);
        assert_int_equal(thaw_ipc_begin(&head, THAW_IPC_REQ_HEAD, 0, all[i]->ex.sid, &mark), 0);
        thaw_ipc_put_str(&head, "GET");
        thaw_ipc_put_str(&head, "/");
        thaw_ipc_end(&head, mark);
        thaw_ipc_begin(&head, THAW_IPC_REQ_END, 0, all[i]->ex.sid, &mark);
        thaw_ipc_end(&head, mark);
        all[i]->ex.req_done = 1;
        assert_int_equal(thaw_pool_park(&park, &all[i]->ex, head.data, head.len), 0);
        thaw_buf_free(&head);
    }
    thaw_exchange_release(&b.ex); /* its client left */
    assert_ptr_equal(thaw_pool_unpark(&park), &a.ex);
    assert_ptr_equal(thaw_pool_unpark(&park), &c.ex);
    assert_null(thaw_pool_unpark(&park));
    assert_null(park.head);
    assert_null(park.tail);
    thaw_pool_dispatch(&W, &a.ex, NULL, 0);
    thaw_pool_dispatch(&W, &c.ex, NULL, 0);
    RUN_UNTIL(a.done && c.done);
    assert_int_equal(a.status, 200);
    assert_int_equal(c.status, 200);
    assert_int_equal(b.done, 0);
}

/* thaw serve: the template of the serving version dies and the rebuild
 * fails because its zygote does not start. A request waiting for an
 * instance is answered 500 at once (it waited for its queue timeout), so
 * is the next, which also asks for another rebuild, one at a time; once a
 * rebuild succeeds the worker serves again. */
static int lost_calls;

static void on_lost_rebuild(struct thaw_worker *w)
{
    struct thaw_config cfg;

    lost_calls++;
    config(&cfg, "fake");
    assert_int_equal(thaw_worker_rebuild(w, &cfg), 0);
}

static void lost_template_with_a_failed_rebuild(void **state)
{
    struct client a, b, c, d;
    struct thaw_version *v1;

    lost_calls = 0;
    W.on_lost = on_lost_rebuild;
    finish_build(1);
    RUN_UNTIL(built_calls == 1);
    v1 = W.current;
    fake_exit(&fakes[0]); /* the template dies: a rebuild is asked for */
    RUN_UNTIL(lost_calls == 1 && build.pending);
    send_request(&W, &a); /* no instance, none can be forked: it waits */
    assert_false(a.done);
    build.pending = 0; /* the zygote exits before it is ready */
    build.cb(build.v, -1, -1, "the zygote for worker fake exited before it was ready");
    RUN_UNTIL(a.done);
    assert_int_equal(a.status, 500);
    assert_ptr_equal(W.current, v1); /* it still serves what its instances can */
    send_request(&W, &b); /* at once, and another rebuild is asked for */
    assert_true(b.done);
    assert_int_equal(b.status, 500);
    assert_int_equal(lost_calls, 2);
    send_request(&W, &c); /* while that one builds: no third */
    assert_true(c.done);
    assert_int_equal(lost_calls, 2);
    finish_build(1);
    RUN_UNTIL(built_calls == 3);
    assert_ptr_not_equal(W.current, v1);
    send_request(&W, &d);
    RUN_UNTIL(d.done);
    assert_int_equal(d.status, 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(replacement_during_a_request, setup, teardown),
        cmocka_unit_test_setup_teardown(delete_during_a_build, setup, teardown),
        cmocka_unit_test_setup_teardown(instance_death_with_requests_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(deleted_worker_closes_completely, setup, teardown),
        cmocka_unit_test_setup_teardown(no_request_goes_to_an_instance_being_killed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(lost_template_with_a_failed_rebuild, setup, teardown),
        cmocka_unit_test_setup_teardown(parked_exchanges_keep_their_order_and_frames, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
