"""The kernel tells thaw when a worker version's memory cgroup hits its
limit (src/pool/memwatch.c: an eventfd on memory.oom_control in cgroup v1,
memory.events in v2), so an OOM kill is logged when it happens, not at the
worker's next wakeup: an idle worker has no timer running (issue 21), and
a child its instance left behind may still eat memory. Root only."""
import os

import pytest

from servelib import serve_factory  # noqa: F401 (fixture)
from thawlib import write_worker

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="cgroups need root")

# answers at once; a child it leaves behind allocates 300 MB a second later,
# while the worker is idle (the version's limit: 128 MB x (1 + 1))
LATE_HOG = '''
import os, time
from workers import Response, WorkerEntrypoint

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        if os.fork() == 0:
            try:
                time.sleep(1)
                hog = bytearray(300 << 20)
                for i in range(0, len(hog), 4096):
                    hog[i] = 1
            finally:
                os._exit(0)
        return Response("forked")
'''


def test_an_oom_kill_in_an_idle_worker_is_logged_when_it_happens(serve_factory, tmp_path):
    # no deadline for an hour: nothing of the worker wakes thaw up
    srv = serve_factory(args=["--max-instances", "1", "--idle-timeout", "3600s"])
    if "memory: memory counted per instance only" in srv.log():
        pytest.skip("no memory cgroup here (thaw's start line says why)")
    write_worker(tmp_path / "late", LATE_HOG, name="late")
    srv.cli("deploy", str(tmp_path / "late"))
    r = srv.host_get("late.localhost")
    assert r.status == 200 and r.text == "forked", r
    needle = "the worker's memory limit was reached"
    log = srv.wait_log(needle, timeout=15)
    assert needle in log, log[-2000:]
    # the instance lives on: only the child was killed
    r = srv.host_get("late.localhost")
    assert r.status == 200, r
