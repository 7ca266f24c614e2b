"""The supervisor's memory under load (issue 15, the soak's RSS growth):
`thaw serve` with many workers, GETs spread over all of them from several
keep-alive clients while workers are redeployed and rolled back. Once the
load stops and thaw is idle again, its fds and processes are back at the
baseline and its RSS within 3 MiB of it.

What grew before: every IPC channel (one per zygote, template and
instance) kept a 256-512 KiB read buffer for its whole life, so each
redeploy under load left fresh heap pages touched (~9 MiB in one round of
this test)."""
import http.client
import random
import threading

import pytest

import churnlib as churn
from servelib import serve_factory  # noqa: F401 (fixture)
from test_leak import idle_usage

WORKERS = 16
CLIENTS = 4
WARMUP = 10
ACTIONS = 40
RSS_SLACK_KB = 3072


class Load:
    """CLIENTS threads sending keep-alive GETs to random workers."""

    def __init__(self, srv, names):
        self.srv, self.names = srv, names
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(CLIENTS)]
        for t in self.threads:
            t.start()

    def run(self, seed):
        rnd, conn = random.Random(seed), None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.srv.port,
                                                      timeout=15)
                conn.request("GET", "/", headers={
                    "Host": f"{rnd.choice(self.names)}.localhost"})
                conn.getresponse().read()
            except (OSError, http.client.HTTPException):
                conn = None     # a redeploy may cut the connection: reconnect

    def end(self):
        self.stop.set()
        for t in self.threads:
            t.join()


def test_redeploys_and_rollbacks_under_load_leave_nothing(serve_factory, tmp_path):
    srv = serve_factory(args=("--idle-timeout", "3s"))
    root = tmp_path / "projects"
    names = [f"w{i}" for i in range(WORKERS)]
    versions = {}
    rnd = random.Random(1)

    def action():
        name = rnd.choice(names)
        if rnd.random() < 0.6 or versions[name] < 2:
            versions[name] += 1
            churn.deploy(srv, name, churn.hello_bundle(root, name, f"{name} v{versions[name]}"))
        else:
            status, doc = srv.api("POST", f"/v1/workers/{name}/rollback", body=b"")
            assert status == 200, (name, status, doc)
            versions[name] -= 1     # the rolled-back-to version can be the next target

    for name in names:
        versions[name] = 1
        churn.deploy(srv, name, churn.hello_bundle(root, name, f"{name} v1"))
    load = Load(srv, names)
    for _ in range(WARMUP):
        action()
    load.end()
    base = idle_usage(srv.proc.pid)

    load = Load(srv, names)
    for _ in range(ACTIONS):
        action()
    load.end()
    idle_usage(srv.proc.pid)
    ok, now = churn.settle(srv.proc.pid, base, RSS_SLACK_KB)
    print(f"\nbaseline {churn.fmt(base)}; after {churn.fmt(now)}")
    if not ok:
        pytest.fail(f"after {ACTIONS} redeploys/rollbacks under load thaw holds more "
                    f"than at its baseline:\n  baseline: {churn.fmt(base)}\n"
                    f"  after:    {churn.fmt(now)}\n  now: {churn.describe(srv.proc.pid)}")
