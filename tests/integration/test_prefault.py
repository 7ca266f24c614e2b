"""Prefault profiles (src/pool/prefault.h): after one instance has served,
later instances copy the pages it wrote before they serve, so their first
request takes (almost) no copy-on-write faults. Counted with the
instance's own minor-fault counter, sandboxed and not."""
import time

import pytest

from thawlib import write_worker

# 30,000 small strings made at top level: reading each one writes its
# reference count, so a fresh instance copies a few hundred pages of the
# template's heap while the handler walks them
WORKER = '''
import os, resource
from workers import WorkerEntrypoint, Response

DATA = [str(i) * 3 for i in range(30000)]

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        n = 0
        for s in DATA:
            n += len(s)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
        return Response(f"{os.getpid()} {faults} {n}")
'''


@pytest.mark.parametrize("sandbox", [False, True], ids=["plain", "sandboxed"])
def test_later_instances_take_their_faults_before_serving(tmp_path, thaw_factory, sandbox):
    d = tmp_path / "worker"
    write_worker(d, WORKER)
    # a new instance per request; each request goes to the spare forked
    # while the one before was served (the third one's spare is the first
    # forked after the profile reached the template)
    srv = thaw_factory(d, "--requests-per-instance", "1", sandbox=sandbox)
    got = []
    for _ in range(8):
        r = srv.get("/")
        assert r.status == 200, r
        pid, faults, _n = r.text.split()
        got.append((pid, int(faults)))
        time.sleep(0.3)  # the next spare forks and copies its pages meanwhile
    assert len({pid for pid, _ in got}) == 8, got   # eight instances
    first = got[0][1]
    # the first instance had nothing to go by: it copies the pages itself
    assert first >= 100, got
    # spares forked after it had them copied before their request came (a
    # spare still starting when its request comes skips the copy: on a busy
    # machine some may, not all)
    assert min(f for _, f in got[2:]) * 5 < first, got
    assert sum(f * 5 < first for _, f in got[2:]) >= 3, got


# An ASGI app whose lifespan startup leaves a mark named after its process
ASGI_WORKER = '''
import os
import asgi
from workers import WorkerEntrypoint

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                with open(os.path.join(scope["env"].MARKS, str(os.getpid())), "a") as f:
                    f.write("started;")
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return await asgi.fetch(app, request, self.env)
'''


def test_later_instances_start_the_asgi_app_before_their_first_request(tmp_path, thaw_factory):
    marks = tmp_path / "marks"
    marks.mkdir()
    d = tmp_path / "worker"
    write_worker(d, ASGI_WORKER, vars={"MARKS": str(marks)})
    srv = thaw_factory(d, "--requests-per-instance", "1")
    served = []
    for _ in range(2):
        r = srv.get("/")
        assert r.status == 200, r
        served.append(r.text)
    # The first instance started the app during its request and told thaw
    # which app it was. A spare forked after that starts it with no
    # request at all: a mark appears for a process that served nothing.
    deadline = time.monotonic() + 20
    while True:
        early = {p.name for p in marks.iterdir()} - set(served)
        if early:
            break
        assert time.monotonic() < deadline, (
            f"no instance started the app ahead of a request\n{srv.log()[-3000:]}")
        time.sleep(0.05)
    r = srv.get("/")
    assert r.status == 200, r
    assert r.text in early, (r.text, early)   # that spare served the next one
    # and startup ran once in it, not again for the request
    assert (marks / r.text).read_text() == "started;"
