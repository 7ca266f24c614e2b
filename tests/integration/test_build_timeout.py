"""A worker's top level that never ends (issue 15, item 2): a build runs
for at most build_timeout_ms of wall clock (and the worker's cpu_ms of
CPU); past it the deploy is refused with the line the top level was at,
the previous version keeps serving, a DELETE during a build cancels it,
and a stored worker that hangs at thaw serve's start does not hang the
start. The timeouts here are short so the tests are; no test asserts
how long anything took."""
import json
import re
import sys
import threading
import time

import pytest

from servelib import serve_factory  # noqa: F401 (fixture)
from thawlib import REPO, proc_comm, proc_descendants, write_main, write_worker

sys.path.insert(0, str(REPO / "python"))
from thaw_tools.remote import bundle  # noqa: E402

HELLO = '''
from workers import Response, WorkerEntrypoint

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("{body}")
'''

# (top level, the line of src/entry.py it is stuck at)
STUCK = {
    "busy-loop": ("import time\nx = 0\nwhile True: x += 1\n", 3),
    "sleep": ("import time\n\ntime.sleep(1000)\n", 3),
}


def _put(srv, root, name, source, **cfg):
    d = root / name
    write_worker(d, source, name=name, **cfg)
    data, _ = bundle(str(d))
    return srv.api("PUT", f"/v1/workers/{name}", body=data)


def _templates(srv, names=("thaw-template",)):
    return [p for p in proc_descendants(srv.proc.pid) if proc_comm(p) in names]


def _worker_processes(srv):
    return _templates(srv, ("thaw-template", "thaw-instance"))


def _wait(pred, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


@pytest.mark.parametrize("kind", sorted(STUCK))
def test_a_top_level_past_the_build_timeout_is_refused_with_its_line(
        serve_factory, tmp_path, kind):
    srv = serve_factory(args=["--build-timeout", "1500"])
    status, doc = _put(srv, tmp_path, "app", HELLO.format(body="v1"))
    assert status == 200, doc
    source, line = STUCK[kind]
    status, doc = _put(srv, tmp_path, "app", source + HELLO.format(body="v2"))
    assert status == 422, doc
    want = f"top level still running after 1500 ms (at src/entry.py:{line})"
    assert doc["error"].startswith(want), doc
    assert "previous version keeps serving" in doc["error"], doc
    assert f'src/entry.py", line {line}' in doc["traceback"], doc
    assert "build_timeout_ms" in doc["traceback"], doc
    r = srv.host_get("app.localhost")
    assert r.status == 200 and r.text == "v1", r
    assert srv.api("GET", "/v1/workers/app")[1]["version"] == 1
    assert want in srv.log()
    # the stopped template is gone; only v1's remains
    assert _wait(lambda: len(_templates(srv)) == 1), _templates(srv)


def test_a_worker_may_lower_the_build_timeout_but_not_raise_it(serve_factory, tmp_path):
    srv = serve_factory(args=["--build-timeout", "5000"])
    status, doc = _put(srv, tmp_path, "up", HELLO.format(body="x"),
                       thaw={"build_timeout_ms": 60000})
    assert status == 400, doc
    assert "build_timeout_ms" in doc["error"] and "5000" in doc["error"], doc
    source, line = STUCK["busy-loop"]
    status, doc = _put(srv, tmp_path, "down", source + HELLO.format(body="x"),
                       thaw={"build_timeout_ms": 800})
    assert status == 422, doc
    assert doc["error"].startswith(
        f"top level still running after 800 ms (at src/entry.py:{line})"), doc


def test_a_top_level_over_the_cpu_limit_is_refused(serve_factory, tmp_path):
    srv = serve_factory(args=["--build-timeout", "20000"])
    source, line = STUCK["busy-loop"]
    status, doc = _put(srv, tmp_path, "spin", source + HELLO.format(body="x"),
                       limits={"cpu_ms": 1200})
    assert status == 422, doc
    assert doc["error"].startswith(
        f"top level used more than 1200 ms of CPU time (limits.cpu_ms) "
        f"(at src/entry.py:{line})"), doc


def test_a_top_level_that_ignores_the_stop_signal_is_killed(serve_factory, tmp_path):
    srv = serve_factory(args=["--build-timeout", "1000"])
    source = ("import signal, time\nsignal.signal(signal.SIGUSR2, signal.SIG_IGN)\n"
              "time.sleep(1000)\n")
    status, doc = _put(srv, tmp_path, "deaf", source + HELLO.format(body="x"))
    assert status == 422, doc
    assert doc["error"].startswith("top level still running after 1000 ms (at an unknown "
                                   "line"), doc
    assert _wait(lambda: not _templates(srv)), _templates(srv)


def test_delete_during_a_build_cancels_it(serve_factory, tmp_path):
    srv = serve_factory()  # the default build timeout (30 s) is far off
    status, doc = _put(srv, tmp_path, "app", HELLO.format(body="v1"))
    assert status == 200, doc
    answer = {}

    def deploy():
        answer["put"] = _put(srv, tmp_path, "app",
                             STUCK["busy-loop"][0] + HELLO.format(body="v2"))
    t = threading.Thread(target=deploy)
    t.start()
    assert _wait(lambda: len(_templates(srv)) == 2), _templates(srv)
    status, doc = srv.api("DELETE", "/v1/workers/app")
    assert status == 200 and doc == {"deleted": "app"}, doc
    t.join(30)
    assert not t.is_alive()
    status, doc = answer["put"]
    assert status == 409 and "deleted" in doc["error"], doc
    assert srv.api("GET", "/v1/workers/app")[0] == 404
    assert srv.host_get("app.localhost").status == 404
    assert _wait(lambda: not _worker_processes(srv)), _worker_processes(srv)
    # the name is free again
    status, doc = _put(srv, tmp_path, "app", HELLO.format(body="v3"))
    assert status == 200, doc
    assert srv.host_get("app.localhost").text == "v3"


def test_delete_during_a_first_build_cancels_it(serve_factory, tmp_path):
    srv = serve_factory()  # the default build timeout (30 s) is far off
    answer = {}

    def deploy():
        answer["put"] = _put(srv, tmp_path, "new",
                             STUCK["sleep"][0] + HELLO.format(body="x"))
    t = threading.Thread(target=deploy)
    t.start()
    assert _wait(lambda: len(_templates(srv)) == 1), _templates(srv)
    status, doc = srv.api("DELETE", "/v1/workers/new")
    assert status == 200, doc
    t.join(30)
    assert answer["put"][0] == 409, answer
    assert srv.api("GET", "/v1/workers/new")[0] == 404
    assert _wait(lambda: not _worker_processes(srv)), _worker_processes(srv)


HANG_IF_MARKED = '''
import os, time
if os.path.exists(os.path.join(os.path.dirname(__file__), "..", "hang")):
    while True:
        time.sleep(0.05)
''' + HELLO.format(body="fine")


def test_a_stored_worker_that_hangs_at_start_does_not_hang_serve(serve_factory, tmp_path):
    state = tmp_path / "state"
    srv = serve_factory(state=state, args=["--build-timeout", "1500"])
    assert _put(srv, tmp_path, "hangs", HANG_IF_MARKED)[0] == 200
    assert _put(srv, tmp_path, "good", HELLO.format(body="good"))[0] == 200
    srv.stop()
    (state / "workers" / "hangs" / "versions" / "1" / "hang").write_text("")
    for _ in range(2):  # and again at the next start: no loop, no hang
        srv.start()
        assert _wait(lambda: srv.host_get("good.localhost").status == 200)
        assert _wait(lambda: srv.api("GET", "/readyz", token="")[0] == 200, 30)
        # its clients learn only that it could not start, and why in
        # general: the line its code was at is for its owner
        r = srv.host_get("hangs.localhost")
        assert r.status == 500, r
        assert "worker 'hangs' could not start (its top level ran past the build " \
               "timeout)" in r.text, r.text
        assert "entry.py" not in r.text, r.text
        doc = srv.api("GET", "/v1/workers/hangs")[1]
        assert doc["state"] == "failed", doc
        assert re.search(r"top level still running after 1500 ms \(at src/entry.py:5\)",
                         doc["error"]), doc
        assert _wait(lambda: len(_templates(srv)) == 1), _templates(srv)
        srv.stop()


def test_thaw_dev_shows_a_top_level_past_the_build_timeout(workdir, thaw_factory):
    source, line = STUCK["busy-loop"]
    write_worker(workdir, source + HELLO.format(body="x"), thaw={"build_timeout_ms": 1500})
    srv = thaw_factory(workdir)
    r = srv.get("/")
    assert r.status == 500, r
    assert f"top level still running after 1500 ms (at src/entry.py:{line})" in r.text, r
    write_main(workdir, HELLO.format(body="fixed"))
    srv.poll_until(lambda r: r.status == 200 and r.body == b"fixed", timeout=20)
