"""Durable Objects' output gate on the object's other outgoing messages
(issue 18), black-box through thaw dev: a WebSocket message, an outbound
fetch() or a call to another object leaves only once every storage write
the object issued before it is committed (a SIGKILL of thaw the moment it
is seen loses none of them), and never when one of those writes failed.
test_do_output_gate.py has the event's answer."""
import asyncio
import http.client
import json
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import websockets

from test_do_output_gate import _break_storage, call  # its worker has `save` too
from thawlib import write_worker

N = 200  # writes not awaited before the message: each a commit of its own
SIZE = 1000
BIG = 20000  # 4 MB in all: one transaction still (workers/_durable_storage.py)

WORKER = """
    import asyncio
    import json
    from urllib.parse import urlparse, parse_qs
    from workers import DurableObject, Response, WebSocketPair, WorkerEntrypoint, fetch

    N, SIZE, BIG = %d, %d, %d


    class Gate(DurableObject):
        def _write_many(self, tag, size=SIZE):
            for i in range(N):
                self.ctx.storage.put(f"{tag}{i:03}", tag * size)  # not awaited

        async def fetch(self, request):
            url = urlparse(request.url)
            if url.path == "/pair":  # the standard API: server.accept(), a listener
                client, server = WebSocketPair.new().object_values()
                server.accept()

                def on_message(event):
                    if event.data == "write":
                        self._write_many("p")
                    server.send("saved " + event.data)
                server.addEventListener("message", on_message)
                return Response(None, status=101, web_socket=client)
            client, server = WebSocketPair.new().object_values()
            self.ctx.acceptWebSocket(server)
            return Response(None, status=101, web_socket=client)

        async def webSocketMessage(self, ws, message):
            if message == "write":
                self._write_many("w")
                ws.send("saved")
            elif message == "order":
                ws.send("1")  # nothing pending: at once
                self.ctx.storage.put("o", 1)
                ws.send("2")  # these two wait for it, in order
                ws.send("3")
            elif message == "one":
                self.ctx.storage.put("one", 1)
                ws.send("saved")
            elif message == "ping":
                ws.send("pong")
            elif message.startswith("fetch "):
                # an outbound call from a message event (its fast C path,
                # src/zygote/dows.c) waits for the writes before it too
                ws.send(await self.write_then_fetch(message[6:]))

        # the outbound request takes the supervisor's curl: more to write
        # than before a WebSocket message, so that it would win the race
        async def write_then_fetch(self, url):
            self._write_many("f", BIG)
            r = await fetch(url)
            return await r.text()

        async def write_then_call(self, url):
            self._write_many("c", BIG)
            return await self.env.GATE.getByName("other").call_out(url)

        async def call_out(self, url):
            r = await fetch(url)
            return await r.text()

        def ping(self):
            return "pong"

        async def one_turn(self, bad):
            st = self.ctx.storage
            st.put("a", 1)
            st.put({"b": 2, "c": 3})
            st.delete("c")
            if bad:  # a key SQLite refuses (over its 2,000,000 bytes): the batch fails
                st.put("x" * 2100000, 4)
            return "sent"

        async def two_turns(self):
            st = self.ctx.storage
            st.put("a", 1)
            await asyncio.sleep(0)  # the turn ends: "a" is a transaction of its own
            st.put("x" * 2100000, 4)
            return "sent"

        def too_big(self):
            self.ctx.storage.put("small", 1)
            self.ctx.storage.put("big", "x" * (1024 * 1024))  # raises: the batch never goes
            return "claims success"

        async def big_turn(self):
            # over one frame's worth of arguments: the batch goes as a body
            self._write_many("b")
            self._write_many("B")
            return "sent"

        async def save(self):
            await self.ctx.storage.put("k", 1)

        async def read(self):
            return await self.ctx.storage.list()

        def summary(self):
            row = self.ctx.storage.sql.exec(
                "SELECT count(*) AS n, sum(length(value)) AS size FROM _cf_KV").one()
            return [row.n, row.size]


    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            url = urlparse(request.url)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            ns = self.env.GATE
            if url.path == "/id":
                return Response(str(ns.idFromName(q["name"])))
            stub = ns.getByName(q["name"])
            try:
                if url.path in ("/ws", "/pair"):
                    return await stub.fetch(request)
                args = json.loads(q.get("args", "[]"))
                result = await getattr(stub, url.path[1:])(*args)
            except Exception as e:
                return Response(json.dumps({"error": type(e).__name__, "message": str(e)}),
                                status=500)
            return Response(json.dumps({"result": result}))
""" % (N, SIZE, BIG)

CONFIG = dict(durable_objects={"bindings": [{"name": "GATE", "class_name": "Gate"}]},
              migrations=[{"tag": "v1", "new_sqlite_classes": ["Gate"]}],
              thaw={"egress": {"allow": ["127.0.0.0/8"]}})


def written(tag):
    return {f"{tag}{i:03}": tag * SIZE for i in range(N)}


@pytest.fixture
def start(workdir, thaw_factory):
    write_worker(workdir, WORKER, fmt="json", name="do-gate2", **CONFIG)
    return lambda: thaw_factory(workdir)


def kill_on_message(srv, path, message):
    """Sends message on the object's socket; the moment the reply arrives,
    SIGKILLs thaw (no write still on its way may finish). The reply."""
    async def talk():
        async with websockets.connect(f"ws://127.0.0.1:{srv.port}{path}") as ws:
            await ws.send(message)
            heard = await asyncio.wait_for(ws.recv(), 30)
            srv.proc.send_signal(signal.SIGKILL)
            return heard
    heard = asyncio.run(talk())
    srv.stop(signal.SIGKILL)
    return heard


@pytest.mark.parametrize("path,message,reply,tag", [
    ("/ws?name=hib", "write", "saved", "w"),           # ctx.acceptWebSocket
    ("/pair?name=pair", "write", "saved write", "p"),  # server.accept() in the object
])
def test_a_websocket_message_leaves_only_once_the_writes_before_it_are_committed(
        start, path, message, reply, tag):
    srv = start()
    assert kill_on_message(srv, path, message) == reply
    again = start()
    name = path.split("=")[1]
    assert call(again, "read", name)["result"] == written(tag)


def test_messages_held_behind_a_write_keep_their_order(start):
    srv = start()

    async def talk():
        async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws?name=order") as ws:
            await ws.send("order")
            return [await asyncio.wait_for(ws.recv(), 10) for _ in range(3)]
    assert asyncio.run(talk()) == ["1", "2", "3"]


class Upstream(ThreadingHTTPServer):
    """An HTTP server on loopback that SIGKILLs thaw when a request reaches
    it (before it answers): what the object wrote before that request
    must be in its file already."""
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.target = None
        self.hits = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, path):
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.hits.append(self.path)
        if self.server.target is not None:
            self.server.target.proc.send_signal(signal.SIGKILL)
            return
        body = b"reached"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def upstream():
    u = Upstream()
    yield u
    u.shutdown()
    u.server_close()


@pytest.mark.parametrize("method,name", [
    ("write_then_fetch", "fetcher"),  # workers.fetch
    ("write_then_call", "caller"),    # a stub call to another object (its fetch)
])
def test_an_outgoing_call_leaves_only_once_the_writes_before_it_are_committed(
        start, upstream, method, name):
    srv = start()
    upstream.target = srv
    try:
        r = srv.get(f"/{method}?name={name}&args={json.dumps([upstream.url('/hit')])}")
        pytest.fail(f"thaw answered ({r.status}: {r.text}): it should be dead")
    except (OSError, http.client.HTTPException):
        pass  # killed before it could answer
    srv.stop(signal.SIGKILL)
    assert upstream.hits == ["/hit"]
    upstream.target = None
    again = start()
    assert call(again, "summary", name)["result"] == [N, N * (BIG + 2)]  # "ff...f"


def test_an_outgoing_call_from_a_websocket_message_waits_for_the_writes_before_it(
        start, upstream):
    srv = start()
    upstream.target = srv

    async def talk():
        async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws?name=wsfetch") as ws:
            await ws.send("ping")  # the object is made: the next message takes the C path
            assert await asyncio.wait_for(ws.recv(), 30) == "pong"
            await ws.send("fetch " + upstream.url("/hit"))
            try:
                await asyncio.wait_for(ws.recv(), 30)
            except websockets.ConnectionClosed:
                return "killed"
            return "answered"
    assert asyncio.run(talk()) == "killed"  # before it could answer
    srv.stop(signal.SIGKILL)
    assert upstream.hits == ["/hit"]
    upstream.target = None
    again = start()
    assert call(again, "summary", "wsfetch")["result"] == [N, N * (BIG + 2)]


def test_a_websocket_message_behind_a_failed_write_never_leaves(start, workdir):
    srv = start()
    _break_storage(srv, workdir, "lost")

    async def talk():
        async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws?name=lost") as ws:
            await ws.send("one")
            try:
                return await asyncio.wait_for(ws.recv(), 10)
            except websockets.ConnectionClosed as e:
                return e.rcvd.code if e.rcvd else None
    assert asyncio.run(talk()) == 1011
    wait_for_log(srv, "the output gate")


def wait_for_log(srv, text):
    """The socket closed as the write failed; the event's log line follows."""
    import time
    for _ in range(100):
        if text in srv.log():
            return
        time.sleep(0.1)
    assert text in srv.log()


@pytest.mark.parametrize("method", ["write_then_fetch", "write_then_call"])
def test_an_outgoing_call_behind_a_failed_write_is_never_made(start, workdir, upstream,
                                                               method):
    srv = start()
    _break_storage(srv, workdir, "refused")
    out = call(srv, method, "refused", upstream.url("/hit"), status=500)
    assert "a storage write of this Durable Object failed, so" in out["message"], out
    assert "the output gate" in out["message"], out
    assert upstream.hits == []
    assert call(srv, "ping", "refused")["result"] == "pong"  # made again, answers


# ---------------------------------------------------------------- coalescing

def test_the_writes_of_one_turn_are_one_transaction(start):
    srv = start()
    assert call(srv, "one_turn", "good", False)["result"] == "sent"
    assert call(srv, "read", "good")["result"] == {"a": 1, "b": 2}
    # one write of the turn fails: none of them is kept, not even those
    # before it (each on its own would have been committed)
    out = call(srv, "one_turn", "atomic", True, status=500)
    assert "the output gate" in out["message"], out
    assert call(srv, "read", "atomic")["result"] == {}


def test_a_turn_ends_at_an_await_that_yields(start):
    srv = start()
    out = call(srv, "two_turns", "turns", status=500)
    assert "the output gate" in out["message"], out
    assert call(srv, "read", "turns")["result"] == {"a": 1}


def test_a_turn_whose_writes_are_over_a_frame_is_still_one_batch(start):
    srv = start()
    assert call(srv, "big_turn", "big")["result"] == "sent"
    assert call(srv, "read", "big")["result"] == {**written("b"), **written("B")}


def test_a_value_over_the_limit_raises_at_its_call(start):
    srv = start()
    out = call(srv, "too_big", "huge", status=500)
    assert "RangeError: a storage value is at most 1048576 bytes" in out["message"], out
    # the event raised: its answer is the error; what it wrote before went
    # (the object's code, not the storage, failed), as Cloudflare's would
    assert call(srv, "read", "huge")["result"] == {"small": 1}
