"""What a deploy leaves behind (issue 21, item 6): under `thaw serve` with
the sandbox on, 300 deploy/request/delete cycles and 300 redeploys of one
worker bring the supervisor's open fds and live descendant processes back
to their baseline, and its RSS to within 2 MiB of it. The baseline is taken
after a warm-up (the first deploys load code, fill caches and the
allocator's arenas), once thaw is idle and its numbers hold still.

bench/churn-leak runs the same churn for longer and prints the numbers."""
import time

import pytest

import churnlib as churn
from servelib import serve_factory  # noqa: F401 (fixture)

CYCLES = 300
NAMES = 40        # cycles go round this many worker names, as an operator's would
WARMUP = 40
RSS_SLACK_KB = 2048


def idle_usage(pid, timeout=20.0):
    """thaw's usage once two readings a second apart agree (instances and
    the processes of deleted versions exit asynchronously)."""
    deadline = time.monotonic() + timeout
    last = churn.usage(pid)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = churn.usage(pid)
        if now.fds == last.fds and now.procs == last.procs:
            return now
        last = now
    return last


def check_back(srv, base, what):
    pid = srv.proc.pid
    ok, now = churn.settle(pid, base, RSS_SLACK_KB)
    print(f"\n{what}: baseline {churn.fmt(base)}; after {churn.fmt(now)}")
    if not ok:
        pytest.fail(f"after {what} thaw holds more than at its baseline:\n"
                    f"  baseline: {churn.fmt(base)}\n  after:    {churn.fmt(now)}\n"
                    f"  now: {churn.describe(pid)}")


def test_deploy_request_delete_cycles_leave_nothing(serve_factory, tmp_path):
    srv = serve_factory()
    root = tmp_path / "projects"
    for i in range(WARMUP):
        churn.cycle(srv, root, f"c{i % NAMES}")
    base = idle_usage(srv.proc.pid)
    for i in range(CYCLES):
        churn.cycle(srv, root, f"c{i % NAMES}", body=f"cycle {i}")
    check_back(srv, base, f"{CYCLES} deploy/request/delete cycles")


def test_redeploys_leave_nothing(serve_factory, tmp_path):
    srv = serve_factory()
    root = tmp_path / "projects"

    def redeploy(i):
        churn.deploy(srv, "again", churn.hello_bundle(root, "again", f"v{i}"))
        churn.expect(srv, "again", f"v{i}")   # the new version serves at once
    for i in range(WARMUP):
        redeploy(i)
    base = idle_usage(srv.proc.pid)
    for i in range(WARMUP, WARMUP + CYCLES):
        redeploy(i)
    check_back(srv, base, f"{CYCLES} redeploys of one worker")
