"""Restarts of a loaded `thaw serve` (issue 15, item 1): 100 workers, 10
restarts, SIGTERM and SIGKILL in turn. After each, thaw must be ready with
every worker built (none `failed`), a redeploy of every worker must succeed
and serve its new version, and no process of the previous thaw (zygote,
templates, instances, pid namespace inits) may outlive it.

The outage this guards against hit 3 of 6 restarts with 67 workers: a
stale libuv watcher on a reused fd made every template and instance start
fail until the next restart.

Not in `make test` (it takes several minutes): `make restart-churn`.
Run: /usr/bin/python3 -m pytest -q tests/churn/test_restart_churn.py"""
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import churnlib as churn  # noqa: E402
from servelib import serve_factory  # noqa: E402,F401 (fixture)
from thawlib import is_alive, proc_comm, proc_identity  # noqa: E402

WORKERS = 100
RESTARTS = 10
PARALLEL = 4        # deploys in flight at once, as a CI pipeline's would be


def wait_ready(srv, timeout=120.0):
    """Waits (bounded) for /readyz; returns the workers' list."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = srv.api("GET", "/readyz")
        if status == 200:
            break
        if time.monotonic() > deadline or srv.proc.poll() is not None:
            pytest.fail(f"not ready after {timeout} s: {status} {body}\n{srv.status()}\n"
                        f"log:\n{srv.log()[-3000:]}")
        time.sleep(0.2)
    status, doc = srv.api("GET", "/v1/workers")
    assert status == 200, doc
    return doc["workers"]


def restart(srv, sig):
    """Stops thaw with sig, checks that every process it had is gone
    (waiting a bounded time for them to exit), starts it again."""
    tree = [(i, proc_comm(i[0])) for i in map(proc_identity, churn.live_descendants(srv.proc.pid))
            if i]
    srv.proc.send_signal(sig)
    srv.proc.wait(30)
    deadline = time.monotonic() + 15
    while True:
        left = [(ident[0], comm) for ident, comm in tree if is_alive(ident)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not left, f"after signal {sig} to thaw, its processes are still alive: {left}"
    srv.start()


def test_restarts_under_100_workers(serve_factory, tmp_path):
    srv = serve_factory()
    root = tmp_path / "projects"
    names = [f"w{i:03d}" for i in range(WORKERS)]

    def deploy_all(tag):
        def one(name):
            churn.deploy(srv, name, churn.hello_bundle(root, name, f"{name} {tag}"))
        with ThreadPoolExecutor(PARALLEL) as ex:
            list(ex.map(one, names))
        for name in names:
            churn.expect(srv, name, f"{name} {tag}")

    deploy_all("first")
    for n in range(RESTARTS):
        sig = signal.SIGTERM if n % 2 == 0 else signal.SIGKILL
        restart(srv, sig)
        workers = wait_ready(srv)
        bad = [(w["name"], w["state"]) for w in workers if w["state"] not in ("ready", "cold")]
        assert len(workers) == WORKERS and not bad, \
            f"restart {n + 1} (signal {sig}): workers not ready: {bad}\n" \
            f"log:\n{srv.log()[-3000:]}"
        deploy_all(f"after restart {n + 1}")
        print(f"restart {n + 1} (signal {int(sig)}): {churn.fmt(churn.usage(srv.proc.pid))}")
