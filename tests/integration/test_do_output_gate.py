"""Durable Objects' output gate (issue 18), black-box through thaw dev: a
storage write the object does not await (`self.ctx.storage.put(k, v)`, as
Cloudflare allows) is committed before the object's answer leaves, and a
write that fails turns the answer into an error, never a success."""
import asyncio
import json
import signal
import time

import pytest
import websockets

from thawlib import write_worker

WORKER = """
    import json
    from urllib.parse import urlparse, parse_qs
    from workers import DurableObject, Response, WebSocketPair, WorkerEntrypoint

    MADE = {}  # how many times each object was made, in this host


    class Gate(DurableObject):
        def __init__(self, ctx, env):
            super().__init__(ctx, env)
            MADE[ctx.id.name] = MADE.get(ctx.id.name, 0) + 1

        def fire(self, n):
            # not awaited, none of them: the answer must still wait for them
            for i in range(n):
                self.ctx.storage.put(f"k{i:03}", i)
            self.ctx.storage.put({"n": n, "last": "rpc"})
            return "sent"

        async def fetch(self, request):
            if request.headers.get("Upgrade") == "websocket":
                client, server = WebSocketPair.new().object_values()
                self.ctx.acceptWebSocket(server)
                return Response(None, status=101, web_socket=client)
            n = int(parse_qs(urlparse(request.url).query).get("n", ["1"])[0])
            for i in range(n):
                self.ctx.storage.put(f"f{i:03}", i)
            return Response("sent by fetch")

        async def in_order(self):
            st = self.ctx.storage
            st.put("a", 1)
            st.put("b", 2)
            st.delete("a")
            st.setAlarm(4102444800000)  # 2100: never fires in a test
            # each call is sent when made: the reads after them see them
            return [await st.get("a"), await st.get("b"), await st.getAlarm(),
                    self.ctx.storage.sql.exec("SELECT count(*) AS n FROM _cf_KV").one().n]

        async def webSocketMessage(self, ws, message):
            self.ctx.storage.put("said", message)  # not awaited
            ws.send("heard " + message)

        def unserializable(self):
            self.ctx.storage.put("bad", object())
            return "claims success"

        def save(self):
            self.ctx.storage.put("k", 1)
            return "saved"

        async def save_and_swallow(self):
            try:
                await self.ctx.storage.put("k", 1)
            except Exception:
                return "handled"
            return "saved"

        async def read(self):
            return await self.ctx.storage.list()

        def made(self):
            return MADE.get(self.ctx.id.name, 0)


    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            url = urlparse(request.url)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            ns = self.env.GATE
            if url.path == "/id":
                return Response(str(ns.idFromName(q["name"])))
            stub = ns.getByName(q["name"])
            try:
                if url.path == "/ws":
                    return await stub.fetch(request)
                if url.path == "/fetch":
                    return await stub.fetch(f"http://do/?n={q.get('n', '1')}")
                args = json.loads(q.get("args", "[]"))
                result = await getattr(stub, url.path[1:])(*args)
            except Exception as e:
                return Response(json.dumps({"error": type(e).__name__, "message": str(e)}),
                                status=500)
            return Response(json.dumps({"result": result}))
"""

CONFIG = dict(durable_objects={"bindings": [{"name": "GATE", "class_name": "Gate"}]},
              migrations=[{"tag": "v1", "new_sqlite_classes": ["Gate"]}])


def call(srv, method, name, *args, status=200):
    r = srv.get(f"/{method}?name={name}&args={json.dumps(list(args))}")
    assert r.status == status, f"{r.status}: {r.text}\n{srv.log()[-3000:]}"
    return r.json()


@pytest.fixture
def srv(workdir, thaw_factory):
    write_worker(workdir, WORKER, fmt="json", name="do-gate", **CONFIG)
    return thaw_factory(workdir)


def test_unawaited_writes_of_an_rpc_survive_a_sigkill_right_after_its_answer(workdir,
                                                                              thaw_factory):
    write_worker(workdir, WORKER, fmt="json", name="do-gate", **CONFIG)
    srv = thaw_factory(workdir)
    assert call(srv, "fire", "kill", 60) == {"result": "sent"}
    srv.stop(signal.SIGKILL)  # at once: no write may still be on its way
    again = thaw_factory(workdir)
    stored = call(again, "read", "kill")["result"]
    assert stored == {**{f"k{i:03}": i for i in range(60)}, "n": 60, "last": "rpc"}


def test_unawaited_writes_of_a_fetch_survive_a_sigkill_right_after_its_response(workdir,
                                                                                thaw_factory):
    write_worker(workdir, WORKER, fmt="json", name="do-gate", **CONFIG)
    srv = thaw_factory(workdir)
    r = srv.get("/fetch?name=web&n=40")
    assert (r.status, r.text) == (200, "sent by fetch"), srv.log()[-2000:]
    srv.stop(signal.SIGKILL)
    again = thaw_factory(workdir)
    assert call(again, "read", "web")["result"] == {f"f{i:03}": i for i in range(40)}


def test_unawaited_writes_are_sent_in_call_order_and_reads_see_them(srv):
    assert call(srv, "in_order", "order")["result"] == [None, 2, 4102444800000, 1]


def test_a_value_that_cannot_be_stored_fails_the_call_not_claims_success(srv):
    out = call(srv, "unserializable", "clone", status=500)
    assert out["error"] == "TypeError", out
    assert "object" in out["message"], out
    assert call(srv, "read", "clone")["result"] == {}


def _break_storage(srv, workdir, name):
    """Makes the object's file impossible to open: a directory where the
    supervisor would create it. Another object first, so the class's
    directory exists."""
    call(srv, "save", "warm")
    ns_dirs = list((workdir / ".thaw" / "state" / "do").glob("*/"))
    assert len(ns_dirs) == 1, ns_dirs
    (ns_dirs[0] / (srv.get(f"/id?name={name}").text + ".sqlite")).mkdir()


def test_a_write_the_supervisor_fails_turns_the_answer_into_an_error(srv, workdir):
    _break_storage(srv, workdir, "broken")
    out = call(srv, "save", "broken", status=500)
    assert out["error"] == "JsException", out
    assert "a storage write of this Durable Object failed, so its answer is not sent " \
           "(the output gate)" in out["message"], out
    assert "cannot be opened" in out["message"], out
    # the object is made again for its next event: its memory may hold
    # what its storage does not (Cloudflare resets it too)
    assert call(srv, "made", "broken")["result"] == 2
    # a fetch answer is held back the same way
    r = srv.get("/fetch?name=broken")
    assert r.status == 500 and "the output gate" in r.json()["message"], r.text


def test_a_failed_write_the_object_caught_still_fails_its_answer(srv, workdir):
    _break_storage(srv, workdir, "swallow")
    out = call(srv, "save_and_swallow", "swallow", status=500)
    assert "the output gate" in out["message"], out


def test_a_websocket_event_whose_write_fails_closes_its_socket_with_1011(srv, workdir):
    async def talk(name):
        async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws?name={name}") as ws:
            await ws.send("hello")
            try:
                return await asyncio.wait_for(ws.recv(), 10), None
            except websockets.ConnectionClosed as e:
                return None, e.rcvd.code if e.rcvd else None

    # the event's write fails: the socket goes as if the handler had
    # raised, and the message the handler sent after the write, held
    # behind it (test_do_output_gate2.py), never arrives
    _break_storage(srv, workdir, "socket")
    assert asyncio.run(talk("socket")) == (None, 1011)
    for _ in range(100):
        if "the output gate" in srv.log():
            break
        time.sleep(0.1)
    assert "the output gate" in srv.log()
