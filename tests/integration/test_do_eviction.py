"""Eviction of idle Durable Objects (issue 18 point 3), black-box through
the real thaw dev: an object with no event for
durable_object_idle_timeout_ms leaves its host's memory (its in-memory
state goes, its storage stays) and is made again at its next event;
/metrics counts the live ones (thaw_do_objects)."""
import json
import urllib.request

import pytest

from thawlib import free_port, wait_for, write_worker

WORKER = """
    import json
    from workers import DurableObject, Response, WorkerEntrypoint


    class Counter(DurableObject):
        def __init__(self, ctx, env):
            super().__init__(ctx, env)
            self.calls = 0  # memory: goes with the object

        async def increment(self):
            self.calls += 1
            value = ((await self.ctx.storage.get("value")) or 0) + 1
            await self.ctx.storage.put("value", value)
            return [value, self.calls]


    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            name = request.url.rsplit("/", 1)[-1]
            return Response(json.dumps(await self.env.COUNTER.getByName(name).increment()))
"""


def make(workdir, thaw_factory, **thaw_cfg):
    admin = free_port()
    write_worker(workdir, WORKER, fmt="json", name="do-evict", thaw=thaw_cfg,
                 durable_objects={"bindings": [{"name": "COUNTER", "class_name": "Counter"}]},
                 migrations=[{"tag": "v1", "new_sqlite_classes": ["Counter"]}])
    srv = thaw_factory(workdir, "--admin", f"127.0.0.1:{admin}")

    def live():
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5) as r:
            text = r.read().decode()
        line = [x for x in text.splitlines() if x.startswith('thaw_do_objects{worker="do-evict"}')]
        assert len(line) == 1, text
        return int(line[0].split()[-1])
    return srv, live


def test_an_idle_object_is_evicted_and_comes_back_from_storage(workdir, thaw_factory):
    srv, live = make(workdir, thaw_factory, durable_object_idle_timeout_ms=300)
    assert live() == 0
    assert json.loads(srv.get("/a").text) == [1, 1]
    assert json.loads(srv.get("/a").text) == [2, 2]
    assert json.loads(srv.get("/b").text) == [1, 1]
    assert live() >= 1
    wait_for(lambda: live() == 0, "the idle objects' eviction")
    # a new object: memory from zero, storage where it was
    assert json.loads(srv.get("/a").text) == [3, 1]
    assert live() == 1


def test_objects_stay_while_the_timeout_has_not_passed(workdir, thaw_factory):
    srv, live = make(workdir, thaw_factory)  # the default: 70 s
    assert json.loads(srv.get("/a").text) == [1, 1]
    assert json.loads(srv.get("/a").text) == [2, 2]
    assert live() == 1


@pytest.mark.parametrize("value", [50, "soon"])
def test_a_bad_timeout_is_a_config_error(workdir, thaw_factory, value):
    write_worker(workdir, WORKER, fmt="json", name="do-evict",
                 thaw={"durable_object_idle_timeout_ms": value},
                 durable_objects={"bindings": [{"name": "COUNTER", "class_name": "Counter"}]},
                 migrations=[{"tag": "v1", "new_sqlite_classes": ["Counter"]}])
    srv = thaw_factory(workdir, start=False)
    srv.spawn()
    assert srv.proc.wait(timeout=30) != 0
    assert "durable_object_idle_timeout_ms" in srv.log(), srv.log()
