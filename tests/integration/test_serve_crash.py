"""Crash recovery across workers (issue 4.3, "no other worker notices"):
under `thaw serve`, kill -9 of one worker's instance, of its template, or
of the shared zygote while requests flow to two workers. Only the request
on the killed instance fails (502); the other worker sees nothing but 200s,
and the victim is rebuilt by itself."""
import os
import signal
import threading
import time

import pytest

from servelib import project, serve_factory  # noqa: F401 (fixture)
from thawlib import proc_descendants, proc_stat, thaw_processes

VICTIM = '''
import os, time
from urllib.parse import urlparse
from workers import WorkerEntrypoint, Response

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        if urlparse(request.url).path == "/slow":
            time.sleep(3)
        return Response(str(os.getpid()))
'''


class Flow:
    """Requests to one Host from a thread until stopped."""

    def __init__(self, srv, host):
        self.srv, self.host, self.statuses = srv, host, []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run)

    def run(self):
        while not self.stop.is_set():
            try:
                self.statuses.append(self.srv.host_get(self.host, timeout=10).status)
            except Exception as e:  # a failure, counted below
                self.statuses.append(repr(e))

    def failures(self):
        return [s for s in self.statuses if s != 200]


@pytest.fixture
def fleet(serve_factory, tmp_path):
    """A serve with the victim and the innocent worker; srv.victim_template
    is the victim's template process. Sandboxed instances report pids of
    their own pid namespace, so processes are told apart from outside: the
    victim is deployed first, alone."""
    srv = serve_factory()
    victim = project(tmp_path, "victim")
    (victim / "src" / "entry.py").write_text(VICTIM)
    srv.cli("deploy", str(victim))
    (srv.victim_template,) = thaw_processes(srv.proc.pid, "thaw-template")
    srv.cli("deploy", str(project(tmp_path, "innocent", "innocent")))
    assert srv.host_get("innocent.localhost").text == "innocent"
    return srv


def victim_instances(srv):
    mine = proc_descendants(srv.victim_template)
    return [p for p in thaw_processes(srv.proc.pid, "thaw-instance") if p in mine]


def flows(srv, hosts, action):
    fs = [Flow(srv, h) for h in hosts]
    for f in fs:
        f.t.start()
    time.sleep(0.4)
    try:
        action()
        time.sleep(0.8)
    finally:
        for f in fs:
            f.stop.set()
        for f in fs:
            f.t.join(20)
    for f in fs:
        assert len(f.statuses) > 3, (f.host, f.statuses)
    return fs


def test_killing_an_instance_fails_only_its_request(fleet):
    srv = fleet
    slow = {}
    t = threading.Thread(target=lambda: slow.setdefault(
        "r", srv.host_get("victim.localhost", "/slow", timeout=20)))
    t.start()
    time.sleep(0.5)  # the slow request is inside time.sleep in its instance
    # every instance of the victim goes; only /slow is in flight on them
    # (the flow goes to the innocent worker)
    candidates = victim_instances(srv)
    assert candidates

    def kill():
        for p in candidates:
            os.kill(p, signal.SIGKILL)
        t.join(20)
    (innocent,) = flows(srv, ["innocent.localhost"], kill)
    assert slow["r"].status == 502, slow["r"]
    assert innocent.failures() == []
    assert srv.host_get("victim.localhost").status == 200


def test_killing_a_template_is_noticed_by_no_worker(fleet):
    srv = fleet
    assert srv.host_get("victim.localhost").status == 200
    template = srv.victim_template
    victim, innocent = flows(srv, ["victim.localhost", "innocent.localhost"],
                             lambda: os.kill(template, signal.SIGKILL))
    assert innocent.failures() == []
    assert victim.failures() == []  # its warm instance served on meanwhile


def test_killing_the_zygote_is_noticed_by_no_worker(fleet, tmp_path):
    srv = fleet
    (zygote,) = [p for p in thaw_processes(srv.proc.pid, "thaw-zygote")
                 if proc_stat(p)[1] == srv.proc.pid][:1]
    victim, innocent = flows(srv, ["victim.localhost", "innocent.localhost"],
                             lambda: os.kill(zygote, signal.SIGKILL))
    assert innocent.failures() == [] and victim.failures() == []
    # the next deploy goes through a new zygote
    srv.cli("deploy", str(project(tmp_path, "innocent", "after")))
    assert srv.host_get("innocent.localhost").text == "after"
