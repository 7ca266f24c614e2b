"""One live Durable Object per id across a version switch (issue 18: "At
most one live instance of each id per thaw; events for it are delivered
one at a time in arrival order"; docs/bindings/durable-objects.md, "A new
version takes over"). While a deploy, a rollback or a `thaw dev` reload
replaces the version, an object still running a call in the old
version's host keeps its later events waiting until the old object is
done and dropped; then they run, in order, in the new version.

The proofs are the object's own: a counter whose method reads, sleeps and
writes loses an update when two instances of it overlap (the count at the
end is short), and each instance of the object names itself (a random tag
made in __init__) in what it answers, with the wall-clock interval of the
call: calls of two different instances must never overlap. The calls
come from several clients at once, before, during and after the switch."""
import asyncio
import json
import threading
import time

import pytest
import websockets

import churnlib as churn
from servelib import ThawServe
from thawlib import REPO, wait_for, write_main, write_worker

import sys
sys.path.insert(0, str(REPO / "python"))
from thaw_tools.remote import bundle  # noqa: E402

WORKER = '''
import asyncio
import json
import os
import time
from urllib.parse import urlparse, parse_qs
from pyodide.ffi import create_proxy
from workers import DurableObject, Response, WebSocketPair, WorkerEntrypoint

VERSION = "{version}"


class Counter(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.tag = os.urandom(8).hex()   # this instance of the object

    async def bump(self, delay):
        start = time.time()
        n = await self.ctx.storage.get("n") or 0
        await asyncio.sleep(delay)       # a lost update needs two instances here
        await self.ctx.storage.put("n", n + 1)
        return [self.tag, VERSION, start, time.time()]

    async def count(self):
        return await self.ctx.storage.get("n") or 0

    async def stuck(self, marks):
        open(os.path.join(marks, "stuck"), "w").close()
        while True:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                pass  # it will not let go

    async def fetch(self, request):
        client, server = WebSocketPair.new().object_values()
        if "plain" in request.url:  # the standard API: the socket lives in memory
            server.accept()
            server.addEventListener("message", create_proxy(
                lambda event: server.send(f"{VERSION}:{event.data}")))
        else:
            self.ctx.acceptWebSocket(server)
        return Response(None, status=101, web_socket=client)

    async def webSocketMessage(self, ws, message):
        ws.send(json.dumps(await self.bump(float(message))))

    async def alarm(self):
        done = await self.ctx.storage.get("alarms") or []
        done.append(await self.bump(0.2))
        await self.ctx.storage.put("alarms", done)
        if len(done) < 8:
            await self.ctx.storage.setAlarm(time.time() * 1000 + 50)

    async def start_alarms(self):
        await self.ctx.storage.setAlarm(time.time() * 1000 + 50)

    async def alarms(self):
        return await self.ctx.storage.get("alarms") or []


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        url = urlparse(request.url)
        q = parse_qs(url.query)
        stub = self.env.COUNTER.getByName(q.get("id", ["c"])[0])
        if url.path == "/count":
            return Response(str(await stub.count()))
        if url.path == "/alarms":
            if "start" in q:
                await stub.start_alarms()
            return Response(json.dumps(await stub.alarms()))
        if url.path == "/version":
            return Response(VERSION)
        if url.path == "/stuck":
            return Response(str(await stub.stuck(q["marks"][0])))
        if url.path == "/ws":
            return await stub.fetch(request)
        return Response(json.dumps(await stub.bump(float(q.get("delay", ["0.3"])[0]))))
'''

BIND = {"bindings": [{"name": "COUNTER", "class_name": "Counter"}]}
MIGRATE = [{"tag": "v1", "new_sqlite_classes": ["Counter"]}]


def _source(version):
    return WORKER.replace("{version}", version)


def _write(d, version, name="switch", **cfg):
    write_worker(d, _source(version), name=name, fmt="json", durable_objects=BIND,
                 migrations=MIGRATE, **cfg)


def _overlaps(calls):
    """Pairs of calls served by two different instances of the object
    whose wall-clock intervals overlap."""
    bad = []
    for i, a in enumerate(calls):
        for b in calls[i + 1:]:
            if a[0] != b[0] and a[2] < b[3] and b[2] < a[3]:
                bad.append((a, b))
    return bad


class Clients:
    """THREADS clients, each sending calls one after another until told to
    stop; every answer is kept (a failure too: the test shows it)."""

    def __init__(self, get, threads=4, delay=0.3):
        self.get, self.delay = get, delay
        self.answers, self.errors = [], []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True)
                        for _ in range(threads)]

    def _run(self):
        while not self.stop.is_set():
            try:
                r = self.get(f"/bump?delay={self.delay}")
            except Exception as e:  # noqa: BLE001 (shown by the test)
                self.errors.append(repr(e))
                continue
            if r.status == 200:
                self.answers.append(json.loads(r.text))
            else:
                self.errors.append(f"{r.status} {r.text}")

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def wait_for_answers(self, n, timeout=60):
        wait_for(lambda: len(self.answers) >= n, f"{n} answers", timeout=timeout)

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=90)


def _check(clients, count, versions):
    calls = clients.answers
    assert not clients.errors, clients.errors
    assert not _overlaps(calls), f"two instances of one object ran at once: {_overlaps(calls)}"
    # a lost update: two instances read the same n
    assert count == len(calls), f"{len(calls)} calls counted {count}"
    served = {c[1] for c in calls}
    assert served >= set(versions), f"versions that answered: {served}"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    root = tmp_path_factory.mktemp("do-switch")
    s = ThawServe(root / "state", root)
    s.start()
    yield s
    s.stop()


def _deploy(srv, d, version, name="switch"):
    _write(d, version, name=name)
    data, _ = bundle(str(d))
    status, doc = srv.api("PUT", f"/v1/workers/{name}", body=data)
    assert status == 200, doc
    return doc["version"]


@pytest.mark.parametrize("how", ["deploy", "rollback"])
def test_calls_across_a_deploy_or_rollback_run_in_one_instance_at_a_time(srv, tmp_path, how):
    name = f"switch-{how}"
    d = tmp_path / name
    _deploy(srv, d, "one", name)
    if how == "rollback":
        _deploy(srv, d, "two", name)
    host = f"{name}.localhost"
    with Clients(lambda p: srv.host_get(host, p, timeout=60)) as clients:
        clients.wait_for_answers(2)
        # the object's host is busy with calls queued behind its lock
        if how == "deploy":
            _deploy(srv, d, "two", name)
        else:
            srv.cli("rollback", name)
        n = len(clients.answers)
        clients.wait_for_answers(n + 6)
    count = int(srv.host_get(host, "/count").text)
    _check(clients, count, ["one", "two"])


def test_hibernated_websocket_messages_and_calls_across_a_deploy(srv, tmp_path):
    """A message event of a hibernatable socket is an event of the object
    like a call: it too waits for the old instance to be done."""
    name = "switch-ws"
    d = tmp_path / name
    _deploy(srv, d, "one", name)
    host = f"{name}.localhost"

    async def talk(stop, got):
        # the URI names the worker (Host); the connection goes to thaw
        async with websockets.connect(f"ws://{host}/ws", host="127.0.0.1", port=srv.port,
                                      open_timeout=30) as ws:
            while not stop.is_set():
                await ws.send("0.2")
                got.append(json.loads(await asyncio.wait_for(ws.recv(), 60)))

    stop, got, failed = threading.Event(), [], []

    def run():
        try:
            asyncio.run(talk(stop, got))
        except Exception as e:  # noqa: BLE001
            failed.append(repr(e))

    t = threading.Thread(target=run, daemon=True)
    with Clients(lambda p: srv.host_get(host, p, timeout=60), threads=2) as clients:
        t.start()
        wait_for(lambda: len(got) >= 2 or failed, "socket messages", timeout=30)
        _deploy(srv, d, "two", name)
        n, m = len(clients.answers), len(got)
        clients.wait_for_answers(n + 4)
        wait_for(lambda: len(got) >= m + 4 or failed, "socket messages after", timeout=60)
        stop.set()
        t.join(timeout=90)
    assert not failed, failed
    count = int(srv.host_get(host, "/count").text)
    clients.answers += got
    _check(clients, count, ["one", "two"])


def test_alarms_and_calls_across_a_deploy(srv, tmp_path):
    """An alarm is an event of the object like a call: one that comes
    while the old instance runs waits for it."""
    name = "switch-alarm"
    d = tmp_path / name
    _deploy(srv, d, "one", name)
    host = f"{name}.localhost"
    srv.host_get(host, "/alarms?start=1")
    with Clients(lambda p: srv.host_get(host, p, timeout=60), threads=2) as clients:
        clients.wait_for_answers(2)
        _deploy(srv, d, "two", name)
        n = len(clients.answers)
        clients.wait_for_answers(n + 4)

    def alarms_run():
        return json.loads(srv.host_get(host, "/alarms").text)
    wait_for(lambda: len(alarms_run()) >= 8, "8 alarms", timeout=60)
    alarms = alarms_run()
    count = int(srv.host_get(host, "/count").text)
    clients.answers += alarms
    _check(clients, count, ["one", "two"])


def test_a_dev_reload_moves_the_object_once_its_calls_are_done(tmp_path, thaw_factory):
    d = tmp_path / "worker"
    _write(d, "one")
    dev = thaw_factory(d)
    with Clients(lambda p: dev.get(p, timeout=60)) as clients:
        clients.wait_for_answers(2)
        write_main(d, _source("two"))
        wait_for(lambda: any(c[1] == "two" for c in clients.answers), "the new version",
                 timeout=60)
        n = len(clients.answers)
        clients.wait_for_answers(n + 4)
    count = int(dev.get("/count").text)
    _check(clients, count, ["one", "two"])


def test_an_old_call_that_never_lets_go_ends_with_its_host(tmp_path, thaw_factory):
    """An old call that swallows its cancel holds the object past its time
    limit: the old host is killed, and the waiting event runs in the new
    version. A hibernatable socket's message waits (it has no caller whose
    own time limit could end first)."""
    d, marks = tmp_path / "worker", tmp_path / "marks"
    marks.mkdir()
    _write(d, "one", thaw={"request_timeout_ms": 3000})
    dev = thaw_factory(d)

    async def send(ws, text):
        await ws.send(text)
        return json.loads(await asyncio.wait_for(ws.recv(), 60))

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{dev.port}/ws") as ws:
            first = await send(ws, "0")
            stuck = asyncio.get_running_loop().run_in_executor(
                None, lambda: dev.get(f"/stuck?marks={marks}", timeout=60))
            await asyncio.to_thread(wait_for, lambda: (marks / "stuck").exists(),
                                    "the stuck call", 30)
            write_main(d, _source("two"))
            await asyncio.to_thread(dev.poll_until, lambda r: r.body == b"two", "/version",
                                    60)
            after = await send(ws, "0")
            return first, (await stuck).status, after

    first, stuck_status, after = asyncio.run(go())
    assert first[1] == "one" and after[1] == "two", (first, after)
    assert after[0] != first[0]
    assert stuck_status != 200
    assert "did not let go" in dev.log(), dev.log()[-3000:]
    assert int(dev.get("/count").text) == 2


def test_a_standard_api_socket_closes_when_its_object_moves(tmp_path, thaw_factory):
    """A socket the object took with server.accept() lives in the old
    object's memory: when the object moves (a call comes for it while
    the old host still runs a call), the socket closes with 1012."""
    d = tmp_path / "worker"
    _write(d, "one")
    dev = thaw_factory(d)

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{dev.port}/ws?plain=1") as ws:
            await ws.send("hi")
            first = await ws.recv()
            # another object's slow call keeps the old host running
            slow = asyncio.get_running_loop().run_in_executor(
                None, lambda: dev.get("/bump?id=other&delay=3", timeout=60))
            await asyncio.sleep(0.5)
            write_main(d, _source("two"))
            await asyncio.to_thread(dev.poll_until, lambda r: r.body == b"two", "/version",
                                    60)
            moved = await asyncio.to_thread(dev.get, "/bump?delay=0", timeout=60)
            await asyncio.wait_for(ws.wait_closed(), 30)
            return first, ws.close_code, json.loads(moved.text), (await slow).status

    first, code, moved, slow = asyncio.run(go())
    assert first == "one:hi"
    assert code == 1012
    assert moved[1] == "two" and slow == 200


def test_deploys_and_a_delete_while_calls_wait_leave_nothing(tmp_path):
    """Calls wait for an old host's slow call while the version they wait
    for is replaced again, and then the worker is deleted: every call
    answers (an error is fine), and thaw holds no more fds or processes
    than before."""
    srv = ThawServe(tmp_path / "state", tmp_path)
    srv.start()
    try:
        name = "switch-gone"
        d = tmp_path / name
        host = f"{name}.localhost"
        _deploy(srv, d, "one", name)
        assert srv.host_get(host, "/count").text == "0"
        srv.api("DELETE", f"/v1/workers/{name}")
        time.sleep(1)
        base = churn.usage(srv.proc.pid)
        _deploy(srv, d, "one", name)
        done = []

        def call(delay):
            try:
                done.append(srv.host_get(host, f"/bump?delay={delay}", timeout=60).status)
            except Exception as e:  # noqa: BLE001
                done.append(repr(e))
        slow = threading.Thread(target=call, args=(3,), daemon=True)
        slow.start()
        time.sleep(0.5)
        _deploy(srv, d, "two", name)
        waiting = [threading.Thread(target=call, args=(0,), daemon=True) for _ in range(3)]
        for t in waiting:
            t.start()
        _deploy(srv, d, "three", name)
        status, doc = srv.api("DELETE", f"/v1/workers/{name}")
        assert status == 200, doc
        for t in [slow] + waiting:
            t.join(timeout=60)
        assert len(done) == 4, done
        ok, now = churn.settle(srv.proc.pid, base, rss_slack_kb=64 * 1024)
        assert ok, f"baseline {churn.fmt(base)}, after {churn.fmt(now)}: " \
                   f"{churn.describe(srv.proc.pid)}"
    finally:
        srv.stop()
