"""A zygote that exits is started again with a backoff, never in a tight
loop (src/zygote/client.c, src/zygote/backoff.h): a crash loop costs a
start now and then, and a per-worker zygote that cannot start at all
fails the builds and requests that need it at once, with a 500 naming the
worker, and is tried again only by the next build that needs it.

The zygote here is a stand-in script in a copy of thaw's directory: it
runs the real thaw-zygote unless the test tells it to fail at once
(`never`: exit 1 before its HELLO) or to crash right after its HELLO
(`crash`: a SIGSEGV, as an extension that crashes every time). It writes
its pid to a file at every start, so the test counts starts; the counts
asserted are far below what a loop gives (thousands in a second for
`never`, one per ~50 ms for `crash`)."""
import http.client
import shutil
import signal
import os
import sys
import time

import pytest

import servelib
from servelib import project, serve_factory  # noqa: F401 (fixture)
from thawlib import REPO, THAW, proc_descendants, wait_for

sys.path.insert(0, str(REPO / "python"))
from thaw_tools.remote import bundle  # noqa: E402

# the HELLO frame (src/ipc/codec.h: length 0, type 57, flags 0, stream 0)
# in printf's octal
HELLO_FRAME = r"\000\000\000\000\071\000\000\000\000\000\000\000"

STAND_IN = """#!/bin/sh
echo $$ >> '{ctl}/starts'
case "$(cat '{ctl}/mode' 2>/dev/null)" in
never)
    echo "zygote stand-in: no Python here" >&2
    exit 1;;
crash)
    printf '{hello}' >&3
    sleep 0.05
    ulimit -c 0
    kill -SEGV $$
    exit 1;;
esac
exec '{real}' "$@"
"""


class StandIn:
    def __init__(self, ctl):
        self.ctl = ctl

    def mode(self, m):
        (self.ctl / "mode").write_text(m)

    def starts(self):
        p = self.ctl / "starts"
        return [int(x) for x in p.read_text().split()] if p.exists() else []


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    bindir, ctl = tmp_path / "bin", tmp_path / "ctl"
    bindir.mkdir()
    ctl.mkdir()
    for exe in THAW.parent.iterdir():
        if exe.is_file() and exe.name.startswith("thaw") and exe.name != "thaw-zygote":
            shutil.copy2(exe, bindir / exe.name)
    z = bindir / "thaw-zygote"
    z.write_text(STAND_IN.format(ctl=ctl, real=THAW.parent / "thaw-zygote", hello=HELLO_FRAME))
    z.chmod(0o755)
    monkeypatch.setattr(servelib, "THAW", bindir / "thaw")
    monkeypatch.setenv("THAW_PYTHON_DIR", str(REPO / "python"))
    return StandIn(ctl)


def _deploy_own(srv, stand_in, root, name):
    """Deploys name and returns its zygote's pid (the start it caused)."""
    before = len(stand_in.starts())
    srv.cli("deploy", str(project(root, name, f"{name} ok")))
    assert srv.host_get(f"{name}.localhost").text == f"{name} ok"
    starts = stand_in.starts()
    assert len(starts) == before + 1, "the worker has no zygote of its own"
    return starts[-1]


def _get(srv, host, timeout=8):
    try:
        return srv.host_get(host, timeout=timeout)
    except (OSError, http.client.HTTPException) as e:
        return e


def test_a_worker_zygote_that_cannot_start_fails_its_requests_at_once(
        serve_factory, stand_in, tmp_path):
    srv = serve_factory(args=["--isolation", "per-worker"])
    own = _deploy_own(srv, stand_in, tmp_path, "own")
    _deploy_own(srv, stand_in, tmp_path, "other")
    # its zygote goes, with its template and instances, and no zygote
    # starts any more: the template must be built again, from a zygote
    # that exits before it is ready
    tree = proc_descendants(own)
    stand_in.mode("never")
    n0 = len(stand_in.starts())
    os.kill(own, signal.SIGKILL)
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    srv.wait_log("worker own: template of version 1 exited", timeout=15)
    # each request is answered at once with a 500 naming the worker (its
    # queue timeout is 10 s: each would have waited that long, then 503)
    seen = []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        seen.append(_get(srv, "own.localhost"))
        time.sleep(0.05)
    statuses = [getattr(r, "status", r) for r in seen]
    # an instance killed under a request may answer 502 first
    assert all(s in (500, 502) for s in statuses), statuses
    last = seen[-1]
    assert last.status == 500 and "worker 'own' could not start" in last.text, last
    # thaw serves its other workers meanwhile
    assert srv.host_get("other.localhost").text == "other ok"
    # a start now and then, as requests need it, not a loop: the backoff
    # (100 ms doubling) allows about 6 in 3 s
    n = len(stand_in.starts()) - n0
    assert 1 <= n < 10, n
    log = srv.log()
    assert "zygote stand-in: no Python here" in log
    assert "the zygote for worker own exited" in log and "before it was ready" in log, log[-3000:]
    assert "`thaw doctor`" in log
    # once it can start again, the next request builds the worker again
    stand_in.mode("")
    wait_for(lambda: getattr(_get(srv, "own.localhost"), "text", "") == "own ok",
             "the worker to be built again from a zygote that starts", timeout=30)
    assert srv.proc.poll() is None


def _put(srv, root, name, **cfg):
    d = project(root, name, "v2", **cfg)
    data, _ = bundle(str(d))
    return srv.api("PUT", f"/v1/workers/{name}", body=data)


def test_a_refused_per_worker_deploy_leaves_no_zygote_restarting(
        serve_factory, stand_in, tmp_path):
    srv = serve_factory()  # isolation "shared"; the deploy asks for its own
    srv.cli("deploy", str(project(tmp_path, "app", "v1")))
    stand_in.mode("never")
    n0 = len(stand_in.starts())
    status, doc = _put(srv, tmp_path, "app", thaw={"isolation": "per-worker"})
    assert status == 500, doc
    assert doc["error"].startswith("internal error"), doc
    # nobody needs it now: it is not started again behind the scenes (it
    # was, in a loop, thousands of times a second)
    time.sleep(2)
    assert len(stand_in.starts()) - n0 == 1, len(stand_in.starts()) - n0
    log = srv.log()
    assert "the zygote for worker app exited" in log, log[-3000:]
    assert "the next build that needs it starts it again" in log, log[-3000:]
    assert "could not start a template: the zygote for worker app exited before it was " \
           "ready" in log, log[-3000:]
    assert srv.host_get("app.localhost").text == "v1"


def test_a_zygote_that_crashes_after_it_was_ready_is_restarted_with_a_backoff(
        serve_factory, stand_in, tmp_path):
    srv = serve_factory(args=["--isolation", "per-worker"])
    own = _deploy_own(srv, stand_in, tmp_path, "own")
    stand_in.mode("crash")
    n0 = len(stand_in.starts())
    os.kill(own, signal.SIGSEGV)
    time.sleep(3)
    n = len(stand_in.starts()) - n0
    # at once, then 100, 200, 400, 800 ms...: about 5 in 3 s
    assert 2 <= n < 10, n
    log = srv.log()
    # (the status, "(signal 11)", is there when thaw reaped the process
    # itself rather than its SIGCHLD handler)
    assert "the zygote for worker own exited" in log, log[-3000:]
    assert "; restarting at once" in log, log[-3000:]
    assert "; restarting in 100 ms" in log and "; restarting in 200 ms" in log, log[-3000:]
    assert "the zygote for worker own is back" in log
    # its template outlives it: the worker keeps serving
    assert srv.host_get("own.localhost").text == "own ok"
    assert srv.proc.poll() is None


def test_deleting_a_worker_while_its_zygote_restart_is_pending(
        serve_factory, stand_in, tmp_path):
    srv = serve_factory(args=["--isolation", "per-worker"])
    own = _deploy_own(srv, stand_in, tmp_path, "own")
    _deploy_own(srv, stand_in, tmp_path, "other")
    stand_in.mode("crash")
    os.kill(own, signal.SIGSEGV)
    pending = "; restarting in 400 ms"
    assert pending in srv.wait_log(pending, timeout=30)
    st, _ = srv.api("DELETE", "/v1/workers/own")
    assert st == 200
    n = len(stand_in.starts())
    # the restart that was due never comes (its timer went with the worker)
    time.sleep(1.5)
    assert len(stand_in.starts()) == n
    stand_in.mode("")
    assert srv.host_get("other.localhost").text == "other ok"
    assert srv.proc.poll() is None
    assert srv.stop() == 0
