"""Prefault profiles (src/pool/prefault.h): after one instance has served,
later instances copy the pages it wrote before they serve, so their first
request takes (almost) no copy-on-write faults. Counted with the
instance's own minor-fault counter, sandboxed and not."""
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
    # a new instance per request, forked when the request arrives (after
    # the profile of the one before it reached the template)
    srv = thaw_factory(d, "--requests-per-instance", "1", "--prefork", "0", sandbox=sandbox)
    got = []
    for _ in range(4):
        r = srv.get("/")
        assert r.status == 200, r
        pid, faults, _n = r.text.split()
        got.append((pid, int(faults)))
    assert len({pid for pid, _ in got}) == 4, got   # four instances
    first = got[0][1]
    later = max(f for _, f in got[2:])
    # the first instance had nothing to go by: it copies the pages itself
    assert first >= 100, got
    # its successors had them copied before the request arrived
    assert later * 5 < first, got
